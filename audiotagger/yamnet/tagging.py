"""YAMNet over audio: per-patch scores, embeddings and times of a waveform or file; per-second rows.

:class:`YamnetModel` is what other parts build on (the YAMNet backend of ``tag``, ``embed --model
yamnet``, and training custom classes on YAMNet embeddings): it loads the network once and returns, for
any waveform or media file, a :class:`YamnetOutput` with one row per 0.96 s patch every 0.48 s, exactly
the patches of the official ``yamnet_frames_model`` (same padding, same count). Files are decoded at
16 kHz in chunks and scored in batches, so memory does not grow with the duration.

:func:`aggregate` turns patch rows into rows of any hop (per second by default) by the rule documented
there.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Iterator
from typing import NamedTuple

import numpy as np

from ..errors import AudioError, AudioTaggerError, ParameterError
from . import params


class YamnetOutput(NamedTuple):
    """YAMNet's view of one input (unpacks as ``times, scores, embeddings, duration``).

    Attributes
    ----------
    times : np.ndarray [shape=(n,), dtype=float64]
        Start of each patch in seconds (``i * 0.48``); patch ``i`` covers ``[times[i], times[i] + 0.96)``.
    scores : np.ndarray [shape=(n, 521), dtype=float32]
        Sigmoid scores of the 521 classes (:func:`audiotagger.yamnet.classes.class_map` order).
    embeddings : np.ndarray [shape=(n, 1024), dtype=float32]
        The network's embedding of each patch (average of the last convolution layer).
    duration : float
        Length of the input in seconds.
    """

    times: np.ndarray
    scores: np.ndarray
    embeddings: np.ndarray
    duration: float


def num_patches(samples: int) -> int:
    """Patches the official model gives ``samples`` samples: ``1 + ceil(max(0, samples - 15600) / 7680)``."""
    extra = max(0, int(samples) - params.PATCH_SAMPLES)
    return 1 + -(-extra // params.PATCH_HOP_SAMPLES)


def iter_patch_windows(chunks: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
    """Cut a 16 kHz signal given in chunks into the official model's 15,600-sample patch windows.

    Parameters
    ----------
    chunks : iterable of np.ndarray [shape=(m,)]
        Consecutive pieces of the signal (any lengths).

    Yields
    ------
    np.ndarray [shape=(15600,), dtype=float32]
        Window ``i`` starts at sample ``i * 7680``; the last ones are zero-padded, and there are
        :func:`num_patches` of them (at least one, even for an empty signal). At most one chunk plus one
        window of samples is held at a time.
    """
    size, hop = params.PATCH_SAMPLES, params.PATCH_HOP_SAMPLES
    buf = np.zeros(0, np.float32)
    buf_start = start = total = 0
    for chunk in chunks:
        chunk = np.asarray(chunk, dtype=np.float32).reshape(-1)
        total += chunk.size
        buf = np.concatenate([buf, chunk]) if buf.size else chunk
        while start + size <= buf_start + buf.size:
            yield buf[start - buf_start:start - buf_start + size].copy()
            start += hop
        drop = start - buf_start
        buf, buf_start = buf[drop:], buf_start + drop
    for i in range(start // hop, num_patches(total)):
        out = np.zeros(size, np.float32)
        piece = buf[i * hop - buf_start:]
        out[:min(piece.size, size)] = piece[:size]
        yield out


def windows_to_patches(windows: np.ndarray, *, consecutive: bool = False) -> np.ndarray:
    """Log-mel patches of a batch of 15,600-sample windows (one patch each).

    Parameters
    ----------
    windows : np.ndarray [shape=(b, 15600)]
    consecutive : bool
        The windows are consecutive patch windows of one signal (as :func:`iter_patch_windows` yields
        them): their overlapping STFT frames are then computed once, which halves the front end's work.

    Returns
    -------
    np.ndarray [shape=(b, 96, 64), dtype=float32]
        The same values as :func:`audiotagger.yamnet.features.waveform_to_patches` on the whole signal.
    """
    from .features import frame_patches, hann_window, log_mel_spectrogram, mel_matrix

    windows = np.asarray(windows, dtype=np.float32)
    if consecutive and windows.shape[0] > 1:
        overlap = params.PATCH_SAMPLES - params.PATCH_HOP_SAMPLES
        signal = np.concatenate([windows[0], windows[1:, overlap:].reshape(-1)])
        return np.ascontiguousarray(frame_patches(log_mel_spectrogram(signal)))
    frames = np.lib.stride_tricks.sliding_window_view(windows, params.WINDOW_SAMPLES, axis=1)
    frames = frames[:, ::params.HOP_SAMPLES][:, :params.PATCH_FRAMES]
    spec = np.abs(np.fft.rfft(frames * hann_window().astype(np.float32), n=params.FFT_LENGTH, axis=-1))
    return np.log(spec @ mel_matrix() + np.float32(params.LOG_OFFSET)).astype(np.float32)


def aggregate(times: np.ndarray, scores: np.ndarray, duration: float,
              hop: float = params.DEFAULT_HOP_DURATION) -> tuple[np.ndarray, np.ndarray]:
    """Rows of ``hop`` seconds from patch scores: the rule of ``tag --model yamnet``.

    Row ``r`` covers ``[r * hop, (r + 1) * hop)`` and takes, class by class, the **maximum** score of the
    patches whose centre (start + 0.48 s) falls in it; a row that holds no centre (only possible for a
    hop under 0.48 s or at the very end) takes the patch whose centre is nearest to its own. With the
    default 1 s hop every second gets two or three patches and every patch counts in exactly one
    second, so a half-second event (a bark, a door) keeps its full score in the second it is heard,
    instead of being halved by a mean or smeared over two seconds by an any-overlap rule. A hop equal
    to the native 0.48 s returns the patches themselves.

    Parameters
    ----------
    times : np.ndarray [shape=(n,)]
        Patch starts (seconds).
    scores : np.ndarray [shape=(n, c)]
        Patch scores.
    duration : float
        Input length in seconds; there are ``max(1, ceil(duration / hop))`` rows.
    hop : float
        Seconds per row.

    Returns
    -------
    row_times : np.ndarray [shape=(rows,), dtype=float64]
    row_scores : np.ndarray [shape=(rows, c), dtype=float32]
    """
    times = np.asarray(times, dtype=np.float64)
    scores = np.asarray(scores, dtype=np.float32)
    if not (isinstance(hop, int | float) and math.isfinite(hop) and hop > 0):
        raise ParameterError(f"--hop-duration: must be a positive number of seconds, got {hop!r}")
    if abs(hop - params.PATCH_HOP_SECONDS) < 1e-9 or times.size == 0:
        return times, scores
    rows = max(1, math.ceil(duration / hop - 1e-9))
    centres = times + params.PATCH_WINDOW_SECONDS / 2
    index = np.clip(np.floor(centres / hop + 1e-9).astype(np.int64), 0, rows - 1)
    out = np.full((rows, scores.shape[1]), -np.inf, np.float32)
    np.maximum.at(out, index, scores)
    empty = np.isinf(out[:, 0])
    if empty.any():
        row_centres = (np.flatnonzero(empty) + 0.5) * hop
        nearest = np.abs(centres[None, :] - row_centres[:, None]).argmin(axis=1)
        out[empty] = scores[nearest]
    return np.arange(rows, dtype=np.float64) * hop, out


class YamnetModel:
    """A loaded YAMNet: scores, embeddings and patch times of waveforms and media files.

    Parameters
    ----------
    model : str or path-like
        ``yamnet`` (the model cache, downloaded on first use), or a ``yamnet.h5`` / YAMNet ``.tflite`` path.
    checkpoint : path-like, optional
        Local ``yamnet.h5`` for ``model="yamnet"``.
    model_dir : path-like, optional
        Model cache folder.
    offline : bool, optional
        Never download.
    batch_size : int
        Patches per network call.
    engine : {"onnx", "tf"}, optional
        ``--engine``: ``onnx`` (default) runs the network as an ONNX graph built once from the weights
        (:func:`audiotagger.engine.models.yamnet_graphs`) on ONNX Runtime, without TensorFlow; ``tf`` runs
        the Keras port (:func:`audiotagger.yamnet.model.build_model`).
    precision : {"fp32", "int8"}, optional
        ``--precision`` (int8: onnx only, calibrated on ``$AUDIOTAGGER_CALIBRATION``).

    Attributes
    ----------
    network : keras.Model or None
        The Keras network (``engine="tf"``; None on onnx). See :func:`audiotagger.yamnet.model.build_model`.
    engine, precision : str
        What runs the network.
    weights_path : pathlib.Path
        The ``.h5`` the weights came from.
    labels : audiotagger.labels.LabelSet
        The 521 classes.
    hop : float
        Seconds between patches (0.48).

    Examples
    --------
    >>> m = YamnetModel()                                   # doctest: +SKIP
    >>> out = m.embed_file("talk.mp4")                      # doctest: +SKIP
    >>> out.embeddings.shape, out.scores.shape, out.times[:3]   # doctest: +SKIP
    ((n, 1024), (n, 521), array([0.  , 0.48, 0.96]))
    """

    hop = params.PATCH_HOP_SECONDS
    sample_rate = params.SAMPLE_RATE
    embedding_size = params.EMBEDDING_SIZE

    def __init__(self, model: str | os.PathLike = params.MODEL_NAME,
                 checkpoint: str | os.PathLike | None = None, *, model_dir: str | os.PathLike | None = None,
                 offline: bool | None = None, batch_size: int = params.DEFAULT_BATCH_SIZE,
                 engine: str | None = None, precision: str | None = None):
        if isinstance(batch_size, bool) or int(batch_size) != batch_size or batch_size < 1:
            raise ParameterError(f"--batch-size: must be an integer >= 1, got {batch_size!r}")
        from ..engine import check_engine
        from .classes import class_map

        self.engine, self.precision = check_engine(engine, precision)
        self.batch_size = int(batch_size)
        self._call = None
        if self.engine == "onnx":
            from ..engine.models import yamnet_graphs
            from ..engine.runtime import YamnetOnnxNetwork
            from .weights import resolve_weights

            self.weights_path = resolve_weights(model, checkpoint, model_dir=model_dir, offline=offline)
            self.network = None
            self._call = YamnetOnnxNetwork(yamnet_graphs(self.weights_path, model_dir, self.precision))
        else:
            from .weights import load_model

            self.network, self.weights_path = load_model(model, checkpoint, model_dir=model_dir,
                                                         offline=offline)
        self.labels = class_map()

    def _compiled(self):
        if self._call is None:
            import tensorflow as tf

            net = self.network
            spec = tf.TensorSpec([None, params.PATCH_FRAMES, params.MEL_BANDS], tf.float32)
            self._call = tf.function(lambda x: net(x, training=False), input_signature=[spec])
        return self._call

    def score_patches(self, patches: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Run the network on log-mel patches.

        Parameters
        ----------
        patches : np.ndarray [shape=(n, 96, 64)]

        Returns
        -------
        scores : np.ndarray [shape=(n, 521), dtype=float32]
        embeddings : np.ndarray [shape=(n, 1024), dtype=float32]
        """
        patches = np.asarray(patches, dtype=np.float32)
        if patches.ndim != 3 or patches.shape[1:] != (params.PATCH_FRAMES, params.MEL_BANDS):
            raise ParameterError(f"patches must be (n, {params.PATCH_FRAMES}, {params.MEL_BANDS}), "
                                 f"got {patches.shape}")
        scores, embeds = [], []
        call = self._compiled()
        for i in range(0, patches.shape[0], self.batch_size):
            out = call(patches[i:i + self.batch_size])
            scores.append(np.asarray(out["scores"], dtype=np.float32))
            embeds.append(np.asarray(out["embeddings"], dtype=np.float32))
        if not scores:
            return (np.zeros((0, params.NUM_CLASSES), np.float32),
                    np.zeros((0, params.EMBEDDING_SIZE), np.float32))
        return np.concatenate(scores), np.concatenate(embeds)

    def embed_chunks(self, chunks: Iterable[np.ndarray], *, progress=None) -> YamnetOutput:
        """Scores and embeddings of a 16 kHz mono signal given as a stream of chunks.

        Parameters
        ----------
        chunks : iterable of np.ndarray [shape=(m,)]
            The signal in consecutive pieces (e.g. :func:`audiotagger.audio.stream_audio` at 16 kHz).
        progress : callable, optional
            Called with the number of patches scored so far after each batch.

        Returns
        -------
        YamnetOutput
        """
        from ..audio import SampleCounter

        counted = SampleCounter(chunks)
        scores, embeds, batch = [], [], []
        done = 0

        def flush():
            nonlocal done
            s, e = self.score_patches(windows_to_patches(np.stack(batch), consecutive=True))
            scores.append(s)
            embeds.append(e)
            done += len(batch)
            batch.clear()
            if progress is not None:
                progress(done)

        for window in iter_patch_windows(counted):
            batch.append(window)
            if len(batch) == self.batch_size:
                flush()
        if batch:
            flush()
        from .features import patch_times

        return YamnetOutput(patch_times(done), np.concatenate(scores), np.concatenate(embeds),
                            counted.total / params.SAMPLE_RATE)

    def embed_waveform(self, x: np.ndarray, sr: int = params.SAMPLE_RATE) -> YamnetOutput:
        """Scores, embeddings and patch times of an in-memory waveform.

        Parameters
        ----------
        x : np.ndarray [shape=(samples,) or (samples, channels)]
            Audio at ``sr`` (channels are averaged; other rates are resampled to 16 kHz).
        sr : int
            Its sample rate.

        Returns
        -------
        YamnetOutput
            The official model's patches: ``1 + ceil(max(0, n - 15600) / 7680)`` of them (one for a
            waveform under 0.975 s, zero-padded).
        """
        from ..audio import check_finite, resample, to_mono

        x = to_mono(np.asarray(x))
        check_finite(x, "waveform", sr)
        return self.embed_chunks([resample(x, sr, params.SAMPLE_RATE)])

    def embed_file(self, path: str | os.PathLike, *, progress=None) -> YamnetOutput:
        """Decode a media file at 16 kHz in chunks and return its patch scores and embeddings.

        Raises
        ------
        AudioError
            The file cannot be decoded or holds no samples.
        """
        from ..audio import stream_audio

        out = self.embed_chunks(stream_audio(path, params.SAMPLE_RATE), progress=progress)
        if out.duration <= 0:
            raise AudioError(f"{path}: no audio samples")
        return out

    def iter_embed(self, paths: Iterable[str | os.PathLike], *, progress=None
                   ) -> Iterator[tuple[str | os.PathLike, YamnetOutput | AudioTaggerError | OSError]]:
        """:meth:`embed_file` over many files; yields ``(path, output or the error that made it fail)``."""
        for path in paths:
            try:
                yield path, self.embed_file(path, progress=progress)
            except (AudioTaggerError, OSError) as exc:
                yield path, exc



def save_output(out: YamnetOutput, path: str | os.PathLike, *, overwrite: bool = False,
                model: str = params.MODEL_NAME):
    """Write a :class:`YamnetOutput` as ``.npz`` atomically (``audiotagger embed --model yamnet``).

    The file holds ``embedding`` float32 (n, 1024), ``scores`` float32 (n, 521), ``times`` float64 (n,)
    (patch starts), ``duration`` and ``hop`` (0.48) scalars, and ``model`` (``yamnet``).

    Returns
    -------
    pathlib.Path
    """
    from ..fileio import atomic_save_npz

    return atomic_save_npz(path, overwrite=overwrite, embedding=out.embeddings, scores=out.scores,
                           times=out.times, duration=np.float64(out.duration),
                           hop=np.float64(params.PATCH_HOP_SECONDS), model=np.array(model))
