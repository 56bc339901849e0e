"""The streaming interface of the backends: samples in, one row per step out, as soon as it is final.

Every backend has ``stream(**options)``, which returns an object with

* ``sample_rate`` (int): the rate its :meth:`push` expects (16 kHz VGGish, 32 kHz PANNs);
* ``hop`` (float): seconds between rows; ``duration``: seconds of audio pushed so far;
* ``push(samples) -> list[Row]``: consume the next mono float32 samples; return the rows they complete;
* ``close() -> list[Row]``: the input ended; return the remaining rows, ended as ``tag`` ends a file;
* ``result(rows, source, duration) -> TagResult``: the rows as the result ``tag`` would give.

Pushing a whole file in pieces of any size and closing yields exactly the rows of ``tag`` on that file
(the same probabilities, within float round-off). The drivers (``audiotagger listen``) know nothing else
about a backend. This module holds the generic parts: :class:`Row`, :class:`ContextRows` (a classifier over
context windows of a growing embedding sequence, emitted once their right context exists) and
:func:`rows_array`, and :class:`WindowCutter` (sliding windows of a pushed signal).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from .params import CLIP_SECONDS


@dataclass(frozen=True)
class Row:
    """One step of a streamed result.

    Attributes
    ----------
    index : int
        Step number from the start of the stream (0, 1, ...).
    time : float
        Start of the step in seconds from the start of the stream.
    probs : numpy.ndarray, float32, shape (C,)
        Class probabilities of the step.
    """

    index: int
    time: float
    probs: np.ndarray


def rows_array(rows: Sequence[Row], num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Stack rows into ``times`` float64 (n,) and ``probs`` float32 (n, C)."""
    if not rows:
        return np.zeros(0, np.float64), np.zeros((0, num_classes), np.float32)
    return (np.array([r.time for r in rows], dtype=np.float64),
            np.stack([np.asarray(r.probs, dtype=np.float32) for r in rows]))


class ContextRows:
    """Classify each step of a growing embedding sequence from its context window.

    Step ``i``'s window (:func:`audiotagger.tag.windows.window_indices`) is final once embedding
    ``i + right`` exists, so it is classified then; :meth:`close` classifies the last ``right`` steps with
    the clipped (and cyclically tiled) windows ``tag`` uses at the end of a file. Only the embeddings a
    future window can still use are kept, so memory stays flat.

    Parameters
    ----------
    classify : callable
        ``classify(windows) -> probs``: windows (k, size, D) of embeddings to probabilities (k, C).
    left, right : int
        Context steps before/after each step.
    hop : float
        Seconds between embeddings (the time of step ``i`` is ``i * hop``).
    size : int
        Rows per window.
    """

    def __init__(self, classify: Callable[[np.ndarray], np.ndarray], left: int, right: int,
                 hop: float = 1.0, size: int = CLIP_SECONDS):
        from .tag.windows import check_context

        self.classify = classify
        self.left, self.right = check_context(left, right)
        self.hop, self.size = float(hop), int(size)
        self.count = 0          # embeddings received
        self.emitted = 0        # steps classified
        self._base = 0          # index of self._rows[0]
        self._rows: np.ndarray | None = None

    def push(self, embeddings: np.ndarray) -> list[Row]:
        """Add embeddings (k, D); return the rows whose right context is now complete."""
        embeddings = np.asarray(embeddings)
        if len(embeddings):
            self._rows = embeddings if self._rows is None else np.concatenate([self._rows, embeddings])
            self.count += len(embeddings)
        return self._emit(self.count - self.right)

    def close(self) -> list[Row]:
        """No more embeddings: classify the remaining steps with the end-of-input windows."""
        return self._emit(self.count)

    def _emit(self, stop: int) -> list[Row]:
        from .tag.windows import window_indices

        if stop <= self.emitted or self._rows is None:
            return []
        steps = np.arange(self.emitted, stop)
        # before the end, stop = count - right: every window is already the one of any longer input
        idx = window_indices(self.count, self.left, self.right, self.size, steps=steps)
        probs = self.classify(self._rows[idx - self._base])
        rows = [Row(int(i), float(i * self.hop), probs[j]) for j, i in enumerate(steps)]
        self.emitted = stop
        keep = max(self.emitted - self.left, self._base)   # no later window starts before this row
        self._rows = self._rows[keep - self._base:]
        self._base = keep
        return rows


class WindowCutter:
    """Push-style sliding windows: :meth:`push` chunks, get the windows they complete; :meth:`finish`.

    Parameters
    ----------
    window, hop : int
        Window length and hop in samples.
    """

    def __init__(self, window: int, hop: int):
        self.window, self.hop = int(window), int(hop)
        self.total = 0                                # samples received
        self._buf = np.zeros(0, dtype=np.float32)
        self._buf_start = 0                           # absolute index of _buf[0]
        self._start = 0                               # next window start

    def push(self, chunk: np.ndarray) -> list[tuple[int, np.ndarray]]:
        """Add samples; return ``(start, samples)`` of every window they complete."""
        chunk = np.asarray(chunk, dtype=np.float32).reshape(-1)
        self.total += chunk.size
        buf = np.concatenate([self._buf, chunk]) if self._buf.size else chunk
        end = self._buf_start + buf.size
        out = []
        while self._start + self.window <= end:
            at = self._start - self._buf_start
            out.append((self._start, buf[at:at + self.window].copy()))
            self._start += self.hop
        drop = min(self._start - self._buf_start, buf.size)
        self._buf, self._buf_start = buf[drop:], self._buf_start + drop
        return out

    def finish(self, count: int | None = None) -> list[tuple[int, np.ndarray]]:
        """End of input: the windows that start before it (or up to ``count`` windows in all), zero-padded."""
        end = self._buf_start + self._buf.size
        out = []
        while (self._start < end) if count is None else (self._start // self.hop < count):
            piece = self._buf[self._start - self._buf_start:]
            padded = np.zeros(self.window, dtype=np.float32)
            padded[:piece.size] = piece
            out.append((self._start, padded))
            self._start += self.hop
        return out
