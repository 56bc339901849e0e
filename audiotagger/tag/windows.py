"""Context windows: for every second, the 10 embedding rows the classifier sees (SPEC §6.2).

For second ``i`` of an ``n``-second file the context is rows ``[i - left, i + right]`` clipped to the file.
More than 10 rows: the 10 nearest to ``i`` are kept (``i`` always among them; on a tie the earlier row
wins, so a centred window has 5 rows before ``i`` and 4 after). The original kept the first 10 and so
dropped the current second for ``left >= 10``. Fewer than 10 rows: completed by the shared cyclic tiling
rule :func:`audiotagger.classifier.tile_to_ten` (``ABC`` → ``ABCABCABCA``), exactly as in training.

Everything is one vectorised index computation; no Python loop over seconds.
"""

from __future__ import annotations

import functools

import numpy as np

from ..errors import ParameterError
from ..params import CLIP_SECONDS


def check_context(left: int, right: int) -> tuple[int, int]:
    """Validate ``--left``/``--right``: integers >= 0.

    Raises
    ------
    ParameterError
        Naming the flag and the bad value.
    """
    out = []
    for flag, value in (("--left", left), ("--right", right)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
            raise ParameterError(f"{flag}: must be an integer >= 0, got {value!r}")
        out.append(int(value))
    return out[0], out[1]


@functools.cache
def _tiling_table(size: int) -> np.ndarray:
    """Row pattern of the shared tiling rule for every window length: ``table[m] = tile_to_ten(0..m-1)``."""
    from ..classifier.tiling import tile_to_ten

    table = np.zeros((size + 1, size), dtype=np.int64)
    for m in range(1, size + 1):
        table[m] = tile_to_ten(np.arange(m)[:, None], size)[:, 0]
    return table


def window_indices(n: int, left: int, right: int, size: int = CLIP_SECONDS,
                   steps: np.ndarray | None = None) -> np.ndarray:
    """Row indices of every context window.

    Parameters
    ----------
    n : int
        Number of embedding rows (seconds), >= 0.
    left, right : int
        Seconds of context before and after the current one (>= 0).
    size : int
        Rows per window (10 for the AudioSet classifier).
    steps : numpy.ndarray of int, shape (k,), optional
        Only the windows of these seconds (default: all ``n``). A live stream asks for second ``i`` as
        soon as ``n > i + right`` rows exist: its window is then the same as for any longer ``n``.

    Returns
    -------
    numpy.ndarray, int64, shape (n, size) or (k, size)
        ``idx[j]`` are the rows forming the window of second ``j`` (or ``steps[j]``), in time order,
        tiled cyclically when fewer than ``size`` distinct rows are available.
    """
    left, right = check_context(left, right)
    i = np.arange(n, dtype=np.int64) if steps is None else np.asarray(steps, dtype=np.int64).reshape(-1)
    start = np.maximum(i - left, 0)
    stop = np.minimum(i + right, n - 1)                 # inclusive
    count = stop - start + 1
    over = count > size
    nearest = np.clip(i - size // 2, start, stop - size + 1)
    start = np.where(over, nearest, start)
    count = np.minimum(count, size)
    return start[:, None] + _tiling_table(size)[count]


def context_windows(embedding: np.ndarray, left: int, right: int, size: int = CLIP_SECONDS) -> np.ndarray:
    """Stack the context window of every second.

    Parameters
    ----------
    embedding : numpy.ndarray, shape (n, D)
        One embedding row per second (uint8 AudioSet features, D = 128).
    left, right : int
        Context seconds before and after each second.
    size : int
        Rows per window.

    Returns
    -------
    numpy.ndarray, shape (n, size, D)
        Same dtype as ``embedding``.
    """
    embedding = np.asarray(embedding)
    if embedding.ndim != 2:
        raise ParameterError(f"context_windows: expected embeddings of shape (n, D), got {embedding.shape}")
    return embedding[window_indices(embedding.shape[0], left, right, size)]
