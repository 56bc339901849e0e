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
