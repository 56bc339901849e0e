"""Sliding-window tagging with a PANNs network, as PaddleAudio's ``audio_tag.py`` (SPEC §8.1).

Windows of ``sample_duration`` seconds start every ``hop_duration`` seconds (0, h, 2h, ... while the
start is inside the audio), so an input of ``N`` samples gives ``ceil(N / h)`` windows; a window that runs
past the end is zero-padded. Each window goes through the PANNs front end and network, which score the
527 AudioSet classes. Audio is decoded and scored in a stream (bounded memory whatever the duration);
windows are scored in batches.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Iterator
from typing import NamedTuple

import numpy as np

from ..errors import AudioError, ParameterError
from ..params import ONNX_PANNS_BATCH as ONNX_BATCH_SIZE  # windows per call on ONNX Runtime
from ..stream import WindowCutter
from . import params


class PannsScores(NamedTuple):
    """Window scores of one input (unpacks as ``times, scores, duration``).

    Attributes
    ----------
    times : np.ndarray [shape=(n,), dtype=float64]
        Start of each window in seconds.
    scores : np.ndarray [shape=(n, 527), dtype=float32]
        ``clipwise_output`` of each window.
    duration : float
        Length of the input in seconds.
    """

    times: np.ndarray
    scores: np.ndarray
    duration: float

    @property
    def fractions(self) -> np.ndarray:
        """Window starts as fractions of the length: PaddleAudio's ``time`` array, shape (n,)."""
        if self.duration <= 0:
            return np.zeros_like(self.times)
        return self.times / self.duration


def window_samples(sample_duration: float, hop_duration: float,
                   sr: int = params.SAMPLE_RATE) -> tuple[int, int]:
    """Convert window and hop durations to samples (rounded to the nearest sample).

    Raises
    ------
    ParameterError
        If either is not a positive number of samples.
    """
    for flag, value in (("--sample-duration", sample_duration), ("--hop-duration", hop_duration)):
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) \
                or round(value * sr) < 1:
            raise ParameterError(f"{flag}: must be a positive number of seconds, got {value!r}")
    if sample_duration > params.MAX_SAMPLE_DURATION:
        raise ParameterError(f"--sample-duration: at most {params.MAX_SAMPLE_DURATION:g} s, got "
                             f"{sample_duration:g}")
    return int(round(sample_duration * sr)), int(round(hop_duration * sr))


def iter_windows(chunks: Iterable[np.ndarray], window: int, hop: int) -> Iterator[tuple[int, np.ndarray]]:
    """Cut a stream of audio chunks into windows of ``window`` samples every ``hop`` samples.

    Parameters
    ----------
    chunks : iterable of np.ndarray [shape=(m,)]
        Consecutive pieces of a mono signal (any lengths).
    window, hop : int
        Window length and hop in samples.

    Yields
    ------
    start : int
        First sample of the window.
    samples : np.ndarray [shape=(window,), dtype=float32]
        The signal from ``start``, zero-padded at the end of the input.

    Notes
    -----
    Starts are 0, hop, 2 hop, ... below the signal length ``N``: ``ceil(N / hop)`` windows, none for an
    empty signal. At most one chunk plus one window of samples is held at a time (see
    :class:`WindowCutter`, which does the cutting).
    """
    cutter = WindowCutter(window, hop)
    for chunk in chunks:
        yield from cutter.push(chunk)
    yield from cutter.finish()


class PannsTagger:
    """A loaded PANNs network that scores sliding windows of audio files and waveforms.

    Parameters
    ----------
    model : str or path-like
        ``panns-cnn14``, ``panns-cnn10``, ``panns-cnn6``, or the path of a PANNs ``.pth`` checkpoint.
    checkpoint : path-like, optional
        Local copy of the named model's checkpoint (default: the model cache, downloaded on first use).
    model_dir : path-like, optional
        Model cache folder.
    offline : bool, optional
        Never download.
    batch_size : int, optional
        Windows per network call (default 8 with TensorFlow; 64 with ONNX Runtime, whose early
        blocks still run 8 at a time).
    engine : {"onnx", "tf"}, optional
        ``--engine`` (default onnx).
    precision : {"fp32", "int8"}, optional
        ``--precision`` (onnx only).

    Attributes
    ----------
    architecture : str
        ``cnn14``, ``cnn10`` or ``cnn6``.
    checkpoint_path : pathlib.Path
        The checkpoint the weights came from.
    """

    def __init__(self, model: str | os.PathLike = "panns-cnn14", checkpoint: str | os.PathLike | None = None,
                 *, model_dir: str | os.PathLike | None = None, offline: bool | None = None,
                 batch_size: int | None = None, engine: str | None = None, precision: str | None = None):
        from ..engine import check_engine

        self.engine, self.precision = check_engine(engine, precision)
        if batch_size is None:
            batch_size = ONNX_BATCH_SIZE if self.engine == "onnx" else params.DEFAULT_BATCH_SIZE
        if isinstance(batch_size, bool) or int(batch_size) != batch_size or batch_size < 1:
            raise ParameterError(f"--batch-size: must be an integer >= 1, got {batch_size!r}")
        self.batch_size = int(batch_size)
        self._call = None
        if self.engine == "onnx":
            from ..engine.models import panns_graphs
            from ..engine.runtime import PannsOnnxNetwork

            folder, self.architecture, self.checkpoint_path = panns_graphs(
                model, checkpoint, model_dir=model_dir, offline=offline, precision=self.precision)
            self.network = None
            self._call = PannsOnnxNetwork(folder, early_batch=min(self.batch_size, params.DEFAULT_BATCH_SIZE),
                                          batch_size=self.batch_size)
        else:
            from .checkpoint import load_model

            self.network, self.checkpoint_path = load_model(model, checkpoint, model_dir=model_dir,
                                                            offline=offline)
            self.architecture = self.network.name
        self.min_frames = params.get_architecture(self.architecture).min_frames

    @property
    def name(self) -> str:
        """Model id for result metadata (``panns-cnn14`` ...)."""
        return f"panns-{self.architecture}"

    def _compiled(self):
        if self._call is None:
            import tensorflow as tf

            net = self.network
            self._call = tf.function(lambda x: net(x, training=False), reduce_retracing=True)
        return self._call

    def score_windows(self, windows: np.ndarray, *, embedding: bool = False):
        """Score a batch of equal-length windows.

        Parameters
        ----------
        windows : np.ndarray [shape=(n, samples)]
            32 kHz mono windows.
        embedding : bool
            Also return the ``fc1`` embeddings.

        Returns
        -------
        scores : np.ndarray [shape=(n, 527), dtype=float32]
        embeddings : np.ndarray [shape=(n, 2048 or 512), dtype=float32]
            Only with ``embedding=True``.
        """
        from .frontend import logmel, num_frames

        windows = np.asarray(windows, dtype=np.float32)
        if windows.ndim != 2:
            raise ParameterError(f"windows must be (n, samples), got shape {windows.shape}")
        if num_frames(windows.shape[1]) < self.min_frames:
            shortest = (self.min_frames - 1) * params.HOP_SIZE / params.SAMPLE_RATE
            seconds = windows.shape[1] / params.SAMPLE_RATE
            raise ParameterError(f"--sample-duration: {seconds:g} s is too short for {self.name} "
                                 f"(at least {shortest:g} s)")
        scores, embeds = [], []
        call = self._compiled()
        for i in range(0, windows.shape[0], self.batch_size):
            out = call(logmel(windows[i:i + self.batch_size]))
            scores.append(np.asarray(out["clipwise_output"], dtype=np.float32))
            if embedding:
                embeds.append(np.asarray(out["embedding"], dtype=np.float32))
        n = params.NUM_CLASSES
        scores_arr = np.concatenate(scores) if scores else np.zeros((0, n), np.float32)
        if not embedding:
            return scores_arr
        width = params.get_architecture(self.architecture).embedding_size
        return scores_arr, (np.concatenate(embeds) if embeds else np.zeros((0, width), np.float32))

    def tag_chunks(self, chunks: Iterable[np.ndarray],
                   sample_duration: float = params.DEFAULT_SAMPLE_DURATION,
                   hop_duration: float = params.DEFAULT_HOP_DURATION, *, progress=None) -> PannsScores:
        """Score sliding windows of a 32 kHz mono signal given as a stream of chunks.

        Parameters
        ----------
        chunks : iterable of np.ndarray [shape=(m,)]
            The signal in consecutive pieces (e.g. :func:`audiotagger.audio.stream_audio` at 32 kHz).
        sample_duration, hop_duration : float
            Window length and hop in seconds.
        progress : callable, optional
            Called with the number of windows scored after each batch.

        Returns
        -------
        PannsScores
        """
        window, hop = window_samples(sample_duration, hop_duration)
        from ..audio import SampleCounter

        counted = SampleCounter(chunks)
        starts: list[int] = []
        scores: list[np.ndarray] = []
        batch: list[np.ndarray] = []
        for start, samples in iter_windows(counted, window, hop):
            starts.append(start)
            batch.append(samples)
            if len(batch) == self.batch_size:
                scores.append(self.score_windows(np.stack(batch)))
                batch = []
                if progress is not None:
                    progress(len(starts))
        if batch:
            scores.append(self.score_windows(np.stack(batch)))
            if progress is not None:
                progress(len(starts))
        times = np.asarray(starts, dtype=np.float64) / params.SAMPLE_RATE
        probs = np.concatenate(scores) if scores else np.zeros((0, params.NUM_CLASSES), np.float32)
        return PannsScores(times, probs, counted.total / params.SAMPLE_RATE)

    def tag_waveform(self, x: np.ndarray, sr: int = params.SAMPLE_RATE,
                     sample_duration: float = params.DEFAULT_SAMPLE_DURATION,
                     hop_duration: float = params.DEFAULT_HOP_DURATION, *,
                     channels_axis: int | None = None) -> PannsScores:
        """Score sliding windows of an in-memory waveform.

        Parameters
        ----------
        x : np.ndarray [shape=(samples,), (samples, channels) or (channels, samples)]
            Audio at ``sr`` (channels are averaged, see :func:`audiotagger.audio.to_mono` for
            ``channels_axis``; other rates are resampled to 32 kHz).
        sr : int
            Its sample rate.
        sample_duration, hop_duration : float
            Window length and hop in seconds.

        Returns
        -------
        PannsScores
        """
        from ..audio import check_finite, resample, to_mono

        x = to_mono(np.asarray(x), "waveform", channels_axis)
        check_finite(x, "waveform", sr)
        return self.tag_chunks([resample(x, sr, params.SAMPLE_RATE)], sample_duration, hop_duration)

    def tag_file(self, path: str | os.PathLike, sample_duration: float = params.DEFAULT_SAMPLE_DURATION,
                 hop_duration: float = params.DEFAULT_HOP_DURATION, *, progress=None,
                 strict: bool = False) -> PannsScores:
        """Decode a media file at 32 kHz in chunks and score its sliding windows.

        Parameters
        ----------
        path : path-like
            Any file :func:`audiotagger.audio.stream_audio` reads.
        sample_duration, hop_duration : float
            Window length and hop in seconds (PaddleAudio ``--sample_duration``/``--hop_duration``).
        progress : callable, optional
            See :meth:`tag_chunks`.
        strict : bool
            Refuse damaged media (default: keep what decodes, with a warning).

        Returns
        -------
        PannsScores
            ``(times, scores, duration)``: window starts in seconds, (n, 527) scores, length in seconds.

        Raises
        ------
        AudioError
            The file cannot be decoded or holds no samples.
        """
        from ..audio import stream_audio

        # tag_chunks checks the durations before it pulls the first chunk from the (lazy) decoder
        result = self.tag_chunks(stream_audio(path, params.SAMPLE_RATE, strict=strict), sample_duration,
                                 hop_duration,
                                 progress=progress)
        if result.scores.shape[0] == 0:
            raise AudioError(f"{path}: no audio samples")
        return result
