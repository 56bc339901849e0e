"""Compact storage of a selection's probabilities for the page: quantised, exact where it matters.

The page re-selects tags in the browser exactly as :mod:`audiotagger.tag.select` does, so what it stores
must give the same decisions as the float32 matrix:

* only *candidate* classes are stored (those reaching the slider's floor somewhere, or among a step's best
  :data:`~.params.COMPAT_KEEP`); probabilities under the floor are dropped (never shown at any slider
  position), which also makes the matrix mostly zeros that deflate to little;
* the rest are uint16 (:data:`~.params.QUANT_LEVELS`), nudged by one level where rounding would move a value
  across a slider threshold, so every ``p >= T`` on the slider's grid comes out as numpy computes it;
* values of one step that fall on the same level but differ (closer than a level) also keep their exact
  float32 value, which the page uses to order them, so top-k cuts never differ;
* with per-class thresholds (``--threshold auto``) every value at or above its class's threshold is
  stored, and a value whose level would compare with its class's threshold level otherwise than the
  float32 value compares with the threshold keeps its exact value too, so the page's ``auto`` choice
  decides exactly as numpy does.

Everything is packed into one deflated byte string (the page inflates it with the browser's own
``DecompressionStream``).
"""

from __future__ import annotations

import math
import zlib
from typing import Any

import numpy as np

from .params import COMPAT_KEEP, QUANT_LEVELS, THRESHOLD_FLOOR, THRESHOLD_STEP


def threshold_grid(run_threshold: float) -> np.ndarray:
    """The thresholds the page can select with: the slider's grid and the run's own value.

    Returns
    -------
    numpy.ndarray, float64, shape (t,)
        Sorted, unique.
    """
    steps = round(1.0 / THRESHOLD_STEP)
    grid = np.round(np.arange(0, steps + 1) * THRESHOLD_STEP, 10)
    grid = grid[grid >= floor_of(run_threshold)]
    return np.unique(np.append(grid, float(run_threshold)))


def floor_of(run_threshold: float) -> float:
    """Lowest threshold the page offers: :data:`~.params.THRESHOLD_FLOOR`, or the run's when lower."""
    return min(THRESHOLD_FLOOR, float(run_threshold))


def q_threshold(t: float) -> int:
    """Smallest stored level that counts as ``p >= t``.

    The page computes the same in JavaScript: ``Math.ceil(Math.fround(t) * QUANT_LEVELS) + 1``.
    """
    return int(math.ceil(float(np.float32(t)) * QUANT_LEVELS)) + 1


def quantise(probs: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """uint16 levels of ``probs`` (``round(p * L) + 1``) that agree with float32 comparisons on ``grid``.

    Parameters
    ----------
    probs : numpy.ndarray, float32, shape (n, m)
    grid : numpy.ndarray, float64, shape (t,)
        Thresholds (see :func:`threshold_grid`).

    Returns
    -------
    numpy.ndarray, uint16, shape (n, m)
        For every ``T`` in ``grid``: ``q >= q_threshold(T)`` exactly where ``probs >= np.float32(T)``.
    """
    p = np.asarray(probs, dtype=np.float32)
    q = (np.rint(p.astype(np.float64) * QUANT_LEVELS) + 1).astype(np.int64)
    g32 = np.unique(np.asarray(grid, dtype=np.float32))
    qt = np.array([q_threshold(t) for t in g32] + [QUANT_LEVELS + 2], dtype=np.int64)
    j = np.searchsorted(g32, p, side="right")        # grid values <= p (float32 comparisons, as numpy's)
    low = np.where(j > 0, qt[np.maximum(j - 1, 0)], 1)
    return np.clip(q, low, qt[j] - 1).clip(1, QUANT_LEVELS + 1).astype(np.uint16)


def q_thresholds(thresholds: np.ndarray) -> np.ndarray:
    """:func:`q_threshold` of many float32 thresholds at once, int64 (the page computes the same)."""
    t = np.asarray(thresholds, dtype=np.float32).astype(np.float64)
    return (np.ceil(t * QUANT_LEVELS) + 1).astype(np.int64)


def pack_probs(probs: np.ndarray, run_threshold: float, thresholds: np.ndarray | None = None
               ) -> dict[str, Any]:
    """Choose the stored classes and encode their probabilities.

    Parameters
    ----------
    probs : numpy.ndarray, float32, shape (n, C)
        The selection's (smoothed) probabilities.
    run_threshold : float
        The threshold of the run (the slider's floor is at most this).
    thresholds : numpy.ndarray, float32, shape (C,), optional
        Per-class thresholds (the page's ``auto`` choice): values at or above their class's threshold are
        always stored, and exactly where their level would decide otherwise.

    Returns
    -------
    dict
        ``classes`` int64 (m,) stored class indices (ascending), ``q`` uint16 (n, m) levels (0 = not
        stored), ``tie_rows``, ``tie_cols`` int32 (e,) and ``tie_values`` float32 (e,): the exact values
        of entries that share a level with a different value of their step (and, with ``thresholds``, of
        entries whose level compares with their class's threshold level otherwise than the value with the
        threshold); ``floor`` float.
    """
    p = np.asarray(probs, dtype=np.float32)
    n, num = p.shape
    floor = floor_of(run_threshold)
    keep = p >= np.float32(floor)
    if thresholds is not None:
        thresholds = np.asarray(thresholds, dtype=np.float32)
        keep |= p >= thresholds[None, :]               # everything auto can show
    if n and num:
        k = min(COMPAT_KEEP, num)
        kth = -np.partition(-p, k - 1, axis=1)[:, k - 1]
        keep |= p >= kth[:, None]                       # each step's best k (ties included)
    classes = np.flatnonzero(keep.any(axis=0)) if n else np.zeros(0, dtype=np.int64)
    p, keep = p[:, classes], keep[:, classes]
    q = np.where(keep, quantise(p, threshold_grid(run_threshold)), 0).astype(np.uint16)
    # values of one step that share a level but differ: the page orders them by their exact values
    rows, cols = np.nonzero(keep)
    key = rows.astype(np.int64) * (QUANT_LEVELS + 2) + q[rows, cols]
    uniq, inv = np.unique(key, return_inverse=True)
    lo = np.full(len(uniq), np.inf, dtype=np.float32)
    hi = np.full(len(uniq), -np.inf, dtype=np.float32)
    vals = p[rows, cols]
    np.minimum.at(lo, inv, vals)
    np.maximum.at(hi, inv, vals)
    mixed = (lo != hi)[inv]
    if thresholds is not None:                           # levels that would misjudge a class's own threshold
        t = thresholds[classes]
        mixed |= (q[rows, cols] >= q_thresholds(t)[cols]) != (vals >= t[cols])
    return {"classes": classes.astype(np.int64), "q": q, "tie_rows": rows[mixed].astype(np.int32),
            "tie_cols": cols[mixed].astype(np.int32), "tie_values": vals[mixed].astype(np.float32),
            "floor": floor}


def pack_blob(arrays: list[tuple[str, np.ndarray]]) -> tuple[bytes, list[dict[str, Any]]]:
    """Concatenate arrays (each aligned to 8 bytes) and deflate them (zlib format).

    Parameters
    ----------
    arrays : list of (name, numpy.ndarray)
        Little-endian arrays of float64, float32, int32 or uint16.

    Returns
    -------
    blob : bytes
        Deflated bytes (``DecompressionStream("deflate")`` in the page).
    layout : list of dict
        ``name``, ``type`` (the JavaScript typed-array name), ``offset`` (bytes) and ``length`` (items).
    """
    types = {np.dtype("<f8"): "Float64Array", np.dtype("<f4"): "Float32Array", np.dtype("<i4"): "Int32Array",
             np.dtype("<u2"): "Uint16Array"}
    parts, layout, offset = [], [], 0
    for name, arr in arrays:
        a = np.ascontiguousarray(arr)
        a = a.astype(a.dtype.newbyteorder("<"), copy=False)
        if a.dtype not in types:
            raise TypeError(f"{name}: cannot store {a.dtype} in the page")
        raw = a.tobytes()
        layout.append({"name": name, "type": types[a.dtype], "offset": offset, "length": int(a.size)})
        pad = (-len(raw)) % 8
        parts.append(raw + b"\0" * pad)
        offset += len(raw) + pad
    return zlib.compress(b"".join(parts), 6), layout
