"""Shared by the ``bench_*.py`` scripts: the reference rate every benchmark reports its ratios against."""

from __future__ import annotations

import time

import numpy as np


def matmul_gflops(n: int = 4096, repeats: int = 5) -> float:
    """Best float32 numpy ``n``×``n`` matmul rate over ``repeats`` runs, in GFLOP/s (2 n³ per product)."""
    a = np.random.default_rng(0).standard_normal((n, n), dtype=np.float32)
    a @ a
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        a @ a
        best = min(best, time.perf_counter() - t)
    return 2 * n ** 3 / best / 1e9


def print_table(headers: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    """Print ``rows`` under ``headers``: left-aligned columns and a dashed rule (last column unpadded)."""
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers) - 1)]

    def line(cells) -> str:
        return "  ".join([f"{str(c):<{w}}" for c, w in zip(cells, widths, strict=False)] + [str(cells[-1])])

    print(line(headers))
    print(line(["-" * w for w in widths] + ["-" * len(headers[-1])]))
    for row in rows:
        print(line(row))
