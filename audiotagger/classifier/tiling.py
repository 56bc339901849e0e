"""Completing short clips and context windows to the classifier's 10 rows (SPEC §6.2 ``pad2Ten``).

One rule, used identically by training (clips under 10 s in the AudioSet release) and tagging (context
windows at the start/end of a file): rows are repeated cyclically, ``out[t] = rows[t % n]``, so ``ABC``
becomes ``ABCABCABCA``. Inputs longer than 10 rows keep their first 10 (the tagger chooses which 10).
"""

from __future__ import annotations

import numpy as np

from ..errors import ParameterError
from ..params import CLIP_SECONDS


def tile_to_ten(rows: np.ndarray, length: int = CLIP_SECONDS) -> np.ndarray:
    """Complete one clip/window to ``length`` rows by cyclic tiling.

    Parameters
    ----------
    rows : numpy.ndarray, shape (n, D)
        Embedding rows (any dtype, typically uint8 with D = 128); ``n >= 1``.
    length : int
        Rows wanted (10 for the AudioSet classifier).

    Returns
    -------
    numpy.ndarray, shape (length, D)
        ``out[t] = rows[t % n]`` for ``n < length``; the first ``length`` rows otherwise. Same dtype.

    Raises
    ------
    ParameterError
        If ``rows`` is not 2-D or has no rows (nothing to tile).
    """
    rows = np.asarray(rows)
    if rows.ndim != 2:
        raise ParameterError(f"tile_to_ten: expected rows of shape (n, D), got {rows.shape}")
    n = rows.shape[0]
    if n == 0:
        raise ParameterError("tile_to_ten: no rows to tile (input shorter than one embedding)")
    return rows[np.arange(length) % n] if n < length else rows[:length]


def retile(x: np.ndarray, n_valid: np.ndarray, length: int = CLIP_SECONDS) -> np.ndarray:
    """Apply :func:`tile_to_ten` to every clip of a batch whose tail rows are padding.

    Parameters
    ----------
    x : numpy.ndarray, shape (N, length, D)
        Clips whose first ``n_valid[i]`` rows are real (the rest, e.g. zero padding, is ignored).
    n_valid : numpy.ndarray of int, shape (N,)
        Real rows per clip, 1 to ``length``.
    length : int
        Rows per clip.

    Returns
    -------
    numpy.ndarray, shape (N, length, D)
        A new array (same dtype) with ``out[i, t] = x[i, t % n_valid[i]]``; clips with ``n_valid == length``
        are unchanged.

    Raises
    ------
    ParameterError
        If a count is outside 1..length or the shapes disagree.
    """
    x = np.asarray(x)
    n_valid = np.asarray(n_valid).astype(np.int64)
    if x.ndim != 3 or x.shape[1] != length or n_valid.shape != (x.shape[0],):
        raise ParameterError(f"retile: expected x (N,{length},D) and n_valid (N,), got {x.shape} and "
                             f"{n_valid.shape}")
    if n_valid.size and (n_valid.min() < 1 or n_valid.max() > length):
        raise ParameterError(f"retile: row counts must be within 1..{length}, got {n_valid.min()}.."
                             f"{n_valid.max()}")
    rows = np.arange(length)[None, :] % n_valid[:, None]          # (N, length)
    return np.take_along_axis(x, rows[:, :, None], axis=1)


def clip_windows(rows: np.ndarray, length: int = CLIP_SECONDS) -> tuple[np.ndarray, np.ndarray]:
    """Cut one clip's embedding sequence of any length into classifier windows.

    A clip of ``n`` rows gives ``ceil(n / length)`` consecutive windows; the last one, when shorter, is
    completed by :func:`tile_to_ten` (the rule of AudioSet's short clips), so every row is seen once.

    Parameters
    ----------
    rows : numpy.ndarray, shape (n, D)
        ``n >= 1`` embedding rows.
    length : int
        Rows per window.

    Returns
    -------
    windows : numpy.ndarray, shape (ceil(n / length), length, D)
        Same dtype as ``rows``.
    n_valid : numpy.ndarray of int16, shape (ceil(n / length),)
        Real rows in each window.
    """
    rows = np.asarray(rows)
    if rows.ndim != 2 or rows.shape[0] == 0:
        raise ParameterError(f"clip_windows: expected rows of shape (n >= 1, D), got {rows.shape}")
    starts = range(0, rows.shape[0], length)
    windows = np.stack([tile_to_ten(rows[s:s + length], length) for s in starts])
    n_valid = np.array([min(length, rows.shape[0] - s) for s in starts], dtype=np.int16)
    return windows, n_valid
