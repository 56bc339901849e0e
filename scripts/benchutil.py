"""Shared by the ``bench_*.py`` scripts: timing, the matmul reference rate and the table printer."""

from __future__ import annotations

import time

import numpy as np


def best_of(fn, repeats: int, warmup: int = 0):
    """Return (fastest seconds, last value) of ``repeats`` calls after ``warmup`` untimed ones.

    The CPU is shared, so the fastest run is the least disturbed one.
    """
    for _ in range(warmup):
        fn()
    best, value = float("inf"), None
    for _ in range(repeats):
        t = time.perf_counter()
        value = fn()
        best = min(best, time.perf_counter() - t)
    return best, value


def matmul_gflops(n: int = 4096, repeats: int = 5) -> float:
    """Best float32 numpy ``n``×``n`` matmul rate over ``repeats`` runs, in GFLOP/s (2 n³ per product)."""
    a = np.random.default_rng(0).standard_normal((n, n), dtype=np.float32)
    seconds, _ = best_of(lambda: a @ a, repeats, warmup=1)
    return 2 * n ** 3 / seconds / 1e9


def cpu_seconds(fn) -> tuple[float, float]:
    """Return (wall seconds, CPU seconds of this process, all threads) of one call of ``fn``."""
    w, c = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - w, time.process_time() - c


def matmul_gflops_cpu(n: int = 4096, repeats: int = 3) -> float:
    """Float32 ``n``×``n`` matmul GFLOP per CPU second (all threads).

    Less disturbed by other processes than the wall rate, so a network's FLOP per CPU second over it is a
    steadier "of limit" ratio on a shared machine.
    """
    a = np.random.default_rng(0).standard_normal((n, n), dtype=np.float32)
    a @ a
    return 2 * n ** 3 / min(cpu_seconds(lambda: a @ a)[1] for _ in range(repeats)) / 1e9


def print_table(headers: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    """Print ``rows`` under ``headers``: left-aligned columns and a dashed rule (last column unpadded)."""
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers) - 1)]

    def line(cells) -> str:
        return "  ".join([f"{str(c):<{w}}" for c, w in zip(cells, widths, strict=False)] + [str(cells[-1])])

    print(line(headers))
    print(line(["-" * w for w in widths] + ["-" * len(headers[-1])]))
    for row in rows:
        print(line(row))
