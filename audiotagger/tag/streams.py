"""The live streams of the two backends (the interface is described in :mod:`audiotagger.stream`).

:class:`VggishStream` frames the pushed 16 kHz samples into one VGGish example per second, embeds each
example as it completes and classifies second ``i`` once embedding ``i + right`` exists
(:class:`~audiotagger.stream.ContextRows`). :class:`PannsStream` cuts 32 kHz windows of
``sample_duration`` every ``hop_duration`` (:class:`~audiotagger.stream.WindowCutter`) and scores
each as it completes. Both end an input as ``tag`` ends a file, so a whole file pushed through a stream
gives ``tag``'s rows. :class:`YamnetStream` scores YAMNet's 0.96 s patches every 0.48 s and emits row ``r``
(the maximum over the patches centred in it, as ``tag --model yamnet``) once a patch centred after it is
scored.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..labels import load_labels
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
        self.labels = load_labels()
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
                              duration=self.duration if duration is None else duration,
                              classifier=self._tagger.classifier)


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
        from ..panns.tagging import window_samples
        from ..stream import WindowCutter

        sample = pp.DEFAULT_SAMPLE_DURATION if sample_duration is None else sample_duration
        self.sample_duration = float(sample)
        self.hop_duration = float(pp.DEFAULT_HOP_DURATION if hop_duration is None else hop_duration)
        window, hop = window_samples(self.sample_duration, self.hop_duration)
        self.sample_rate = pp.SAMPLE_RATE
        self.hop = self.hop_duration
        self.labels = load_labels()
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


class YamnetStream:
    """YAMNet patches (0.96 s every 0.48 s) scored as they complete; rows of ``hop_duration`` seconds.

    Parameters
    ----------
    backend : audiotagger.tag.tagger.YamnetBackend
        The loaded backend.
    hop_duration : float, optional
        Seconds per row (default 1 s: the maximum over the patches centred in it; 0.48 keeps the patches).
        Live rows need a hop of at least 0.48 s.
    """

    def __init__(self, backend: Any, hop_duration: float | None):
        from ..errors import ParameterError
        from ..stream import WindowCutter
        from ..yamnet import params as yp

        self.hop = float(yp.DEFAULT_HOP_DURATION if hop_duration is None else hop_duration)
        self.native = abs(self.hop - yp.PATCH_HOP_SECONDS) < 1e-9
        if not self.hop > yp.PATCH_HOP_SECONDS - 1e-9:
            raise ParameterError(f"--hop-duration: live YAMNet rows need at least {yp.PATCH_HOP_SECONDS} s "
                                 f"(one patch hop), got {self.hop}")
        self.sample_rate = yp.SAMPLE_RATE
        self.labels = backend.model.labels
        self._backend, self._yp = backend, yp
        self._cutter = WindowCutter(yp.PATCH_SAMPLES, yp.PATCH_HOP_SAMPLES)
        self._times: list[float] = []           # patches not yet in an emitted row (and the last one)
        self._scores: list[np.ndarray] = []
        self._patches = 0
        self._rows = 0

    @property
    def duration(self) -> float:
        """Seconds of audio pushed so far."""
        return self._cutter.total / self.sample_rate

    def _score(self, windows: list[tuple[int, np.ndarray]]) -> list[Row]:
        """Score patch windows; keep them; return them as native rows (patch index, start, scores)."""
        from ..yamnet.tagging import windows_to_patches

        if not windows:
            return []
        first = self._patches
        patches = windows_to_patches(np.stack([w for _, w in windows]), consecutive=True)
        scores, _ = self._backend.model.score_patches(patches)
        for (start, _), row in zip(windows, scores, strict=True):
            self._times.append(start / self.sample_rate)
            self._scores.append(row)
        self._patches += len(windows)
        new = zip(self._times[-len(windows):], self._scores[-len(windows):], strict=True)
        return [Row(first + j, t, s) for j, (t, s) in enumerate(new)]

    def _row_of(self, t: float) -> int:
        return int(np.floor((t + self._yp.PATCH_WINDOW_SECONDS / 2) / self.hop + 1e-9))

    def _emit(self, upto: int) -> list[Row]:
        """Rows ``< upto`` from the kept patches (each holds at least one patch centre)."""
        rows = []
        while self._rows < upto:
            r = self._rows
            mine = [s for t, s in zip(self._times, self._scores, strict=True) if self._row_of(t) == r]
            rows.append(Row(r, r * self.hop, np.max(np.stack(mine), axis=0)))
            self._rows += 1
        keep = [i for i, t in enumerate(self._times) if self._row_of(t) >= self._rows]
        first = min(keep) if keep else len(self._times) - 1        # keep the last patch (end rows)
        self._times, self._scores = self._times[first:], self._scores[first:]
        return rows

    def push(self, samples: np.ndarray) -> list[Row]:
        """Add 16 kHz mono samples; return the rows whose patches are all scored."""
        new = self._score(self._cutter.push(samples))
        if self.native:
            self._times, self._scores = self._times[-1:], self._scores[-1:]
            return new
        if not self._times:
            return []
        return self._emit(self._row_of(self._times[-1]))

    def close(self) -> list[Row]:
        """End of input: the padded last patches (the official count) and the last rows, as ``tag``."""
        from ..yamnet.tagging import aggregate, num_patches

        new = self._score(self._cutter.finish(num_patches(self._cutter.total)))
        if self.native:
            return new
        if not self._times:
            return []
        times, probs = aggregate(np.array(self._times), np.stack(self._scores), self.duration, self.hop)
        return [Row(int(r), float(times[r]), probs[r]) for r in range(self._rows, len(times))]

    def result(self, rows: Sequence[Row], source: str, duration: float | None = None) -> TagResult:
        """The rows as a :class:`TagResult` (``tag --model yamnet``'s, without the raw patch arrays)."""
        times, probs = rows_array(rows, len(self.labels.mids))
        length = self.duration if duration is None else duration
        return self._backend.rows_result(times, probs, source, length, self.hop)
