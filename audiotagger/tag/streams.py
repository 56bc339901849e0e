"""The live streams of the two backends (the interface is described in :mod:`audiotagger.stream`).

:class:`VggishStream` frames the pushed 16 kHz samples into one VGGish example per second, embeds each
example as it completes and classifies second ``i`` once embedding ``i + right`` exists
(:class:`~audiotagger.stream.ContextRows`). :class:`PannsStream` cuts 32 kHz windows of
``sample_duration`` every ``hop_duration`` (:class:`~audiotagger.panns.tagging.WindowCutter`) and scores
each as it completes. Both end an input as ``tag`` ends a file, so a whole file pushed through a stream
gives ``tag``'s rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..params import NUM_CLASSES
from ..stream import ContextRows, Row, rows_array
from .result import TagResult


class VggishStream:
    """VGGish examples per second → embeddings → context-window classifier, one row per second.

    Parameters
    ----------
    tagger : audiotagger.tag.tagger.Tagger
        The loaded backend.
    left, right : int
        Context seconds before/after each second.
    """

    def __init__(self, tagger: Any, left: int, right: int):
        from ..vggish import params as P
        from ..vggish.features import ExampleStream

        self.sample_rate = P.SAMPLE_RATE
        self.hop = 1.0
        self._tagger = tagger
        self._examples = ExampleStream(1.0, name="stream")
        self._context = ContextRows(self._classify, left, right, hop=1.0)
        self.left, self.right = self._context.left, self._context.right

    def _classify(self, windows: np.ndarray) -> np.ndarray:
        return self._tagger.classifier.predict(windows, batch_size=self._tagger.batch_size)

    def _embed(self, examples: np.ndarray) -> np.ndarray:
        if not len(examples):
            return np.zeros((0, 128), np.uint8)
        embedding, _ = self._tagger.embedder.embed_examples(examples)
        return embedding

    @property
    def duration(self) -> float:
        """Seconds of audio pushed so far."""
        return self._examples.num_samples / self.sample_rate

    def push(self, samples: np.ndarray) -> list[Row]:
        """Add 16 kHz mono samples; return the seconds whose right context is now complete."""
        return self._context.push(self._embed(self._examples.push(samples)))

    def close(self) -> list[Row]:
        """End of input: the last seconds with ``tag``'s end-of-file windows (short audio padded)."""
        rows = self._context.push(self._embed(self._examples.finish()))
        return rows + self._context.close()

    def result(self, rows: Sequence[Row], source: str, duration: float | None = None) -> TagResult:
        """The rows as a :class:`TagResult` (what ``tag`` returns for the same audio)."""
        from .tagger import context_result

        times, probs = rows_array(rows, NUM_CLASSES)
        return context_result(self._tagger.model_name, probs, times, left=self.left, right=self.right,
                              source=source, hop=1.0,
                              duration=self.duration if duration is None else duration)


class PannsStream:
    """PANNs windows of ``sample_duration`` every ``hop_duration``, one row per window.

    Parameters
    ----------
    backend : audiotagger.tag.tagger.PannsBackend
        The loaded backend.
    sample_duration, hop_duration : float, optional
        Window length and hop in seconds (PANNs defaults when None).
    """

    def __init__(self, backend: Any, sample_duration: float | None, hop_duration: float | None):
        from ..panns import params as pp
        from ..panns.tagging import WindowCutter, window_samples

        sample = pp.DEFAULT_SAMPLE_DURATION if sample_duration is None else sample_duration
        self.sample_duration = float(sample)
        self.hop_duration = float(pp.DEFAULT_HOP_DURATION if hop_duration is None else hop_duration)
        window, hop = window_samples(self.sample_duration, self.hop_duration)
        self.sample_rate = pp.SAMPLE_RATE
        self.hop = self.hop_duration
        self._backend = backend
        backend.tagger.score_windows(np.zeros((0, window), np.float32))  # too short a window: fail now
        self._cutter = WindowCutter(window, hop)
        self._count = 0

    @property
    def duration(self) -> float:
        """Seconds of audio pushed so far."""
        return self._cutter.total / self.sample_rate

    def _rows(self, windows: list[tuple[int, np.ndarray]]) -> list[Row]:
        if not windows:
            return []
        scores = self._backend.tagger.score_windows(np.stack([w for _, w in windows]))
        rows = [Row(self._count + j, start / self.sample_rate, scores[j])
                for j, (start, _) in enumerate(windows)]
        self._count += len(rows)
        return rows

    def push(self, samples: np.ndarray) -> list[Row]:
        """Add 32 kHz mono samples; return the windows they complete."""
        return self._rows(self._cutter.push(samples))

    def close(self) -> list[Row]:
        """End of input: the windows that start before it, zero-padded (as ``tag``)."""
        return self._rows(self._cutter.finish())

    def result(self, rows: Sequence[Row], source: str, duration: float | None = None) -> TagResult:
        """The rows as a :class:`TagResult` (what ``tag`` returns for the same audio)."""
        from ..panns.tagging import PannsScores

        times, probs = rows_array(rows, NUM_CLASSES)
        scores = PannsScores(times, probs, self.duration if duration is None else duration)
        return self._backend.scores_result(scores, source, self.sample_duration, self.hop_duration)
