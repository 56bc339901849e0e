"""Tag audio/video files: embeddings → context windows → classifier → :class:`TagResult` → outputs.

:class:`Tagger` (VGGish + attention classifier) and :class:`PannsBackend` (PANNs CNN14/10/6) load their
models once and tag any number of inputs; :func:`load_backend` picks one from ``--model``.
:func:`tag_file` mirrors the ``audiotagger tag`` command (every flag is a keyword) and reuses one loaded
backend per model setting.
"""

from __future__ import annotations

import functools
import os
import warnings
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from ..errors import AudioError, AudioTaggerError, AudioTaggerWarning, ParameterError
from ..labels import LabelSet
from ..params import CLIP_SECONDS, DEFAULT_LEFT, DEFAULT_RIGHT, TAG_BATCH_SIZE
from ..vggish.params import FINAL_PARTIAL_MIN_SECONDS
from .result import TagResult, load_result
from .select import DisplayOptions, Selection
from .windows import check_context, context_windows
from .writers import get_writer, parse_formats

DEFAULT_BATCH_SIZE = TAG_BATCH_SIZE
"""Context windows per classifier call."""

_PROGRESS_MIN_WINDOWS = 4 * DEFAULT_BATCH_SIZE
"""Show a per-file progress bar over the classifier only for files at least this long (seconds)."""


def is_panns(model: str | os.PathLike | None) -> bool:
    """True if ``--model`` names the PANNs backend (``panns-cnn14|10|6`` or a ``.pth`` checkpoint)."""
    return model is not None and (str(model).startswith("panns-") or str(model).lower().endswith(".pth"))


def is_yamnet(model: str | os.PathLike | None) -> bool:
    """True if ``--model`` names the YAMNet backend: ``yamnet``, a ``.tflite`` file, or a YAMNet ``.h5``.

    An ``.h5`` file is YAMNet's if it holds the official ``layer1/conv`` group (read with h5py; no
    TensorFlow).
    """
    if model is None:
        return False
    text = str(model)
    if text == "yamnet" or text.lower().endswith(".tflite"):
        return True
    if text.lower().endswith(".h5") and Path(text).is_file():
        import h5py

        try:
            with h5py.File(text, "r") as fh:
                root = fh["model_weights"] if "model_weights" in fh else fh
                return "layer1/conv" in root
        except OSError:
            return False
    return False


def backend_name(model: str | os.PathLike | None) -> str:
    """Which backend ``--model`` selects: ``"panns"``, ``"yamnet"``, ``"custom"`` or ``"vggish"``."""
    if is_panns(model):
        return "panns"
    if is_yamnet(model):
        return "yamnet"
    return "custom" if is_custom(model) else "vggish"


def classify_embedding(classifier, embedding: np.ndarray, left: int = DEFAULT_LEFT,
                       right: int = DEFAULT_RIGHT, *, batch_size: int = DEFAULT_BATCH_SIZE,
                       progress: bool = False, desc: str = "seconds") -> np.ndarray:
    """Probabilities of every second of an embedding sequence from its context window.

    All windows are built at once (:func:`~audiotagger.tag.windows.context_windows`) and classified in
    batches; no Python loop over seconds.

    Parameters
    ----------
    classifier : audiotagger.classifier.Classifier
        A loaded classifier.
    embedding : numpy.ndarray, shape (n, D)
        One embedding row per step: uint8 AudioSet embeddings (D = 128), or a custom model's backbone rows.
    left, right : int
        Context steps before/after each step.
    batch_size : int
        Windows per classifier call.
    progress : bool
        Show a progress bar (only for long inputs).
    desc : str
        Progress-bar label.

    Returns
    -------
    numpy.ndarray, float32, shape (n, C)
    """
    dtype = getattr(classifier, "dtype", np.uint8)
    windows = context_windows(np.asarray(embedding, dtype=dtype), left, right)
    n = windows.shape[0]
    if not progress or n < _PROGRESS_MIN_WINDOWS:
        return classifier.predict(windows, batch_size=batch_size)
    import sys

    from tqdm.auto import tqdm

    out = np.empty((n, classifier.num_classes), dtype=np.float32)
    with tqdm(total=n, desc=desc, unit="s", leave=False, file=sys.stderr) as bar:
        for start in range(0, n, batch_size):
            stop = min(start + batch_size, n)
            out[start:stop] = classifier.predict(windows[start:stop], batch_size=batch_size)
            bar.update(stop - start)
    return out


def embedding_result(classifier, embedding: np.ndarray, *, left: int = DEFAULT_LEFT,
                     right: int = DEFAULT_RIGHT, source: str = "<embedding>", times: np.ndarray | None = None,
                     hop: float = 1.0, duration: float | None = None, batch_size: int = DEFAULT_BATCH_SIZE,
                     progress: bool = False) -> TagResult:
    """Tag a sequence of AudioSet embeddings (from ``audiotagger embed`` or the AudioSet release).

    Parameters
    ----------
    classifier : audiotagger.classifier.Classifier
        A loaded classifier.
    embedding : numpy.ndarray, uint8, shape (n, 128)
        One embedding per ``hop`` seconds.
    left, right : int
        Context steps before/after each step.
    source : str
        Name recorded in the result (a path that exists is also recorded as absolute ``path``).
    times : numpy.ndarray, shape (n,), optional
        Start of each step in seconds (default ``arange(n) * hop``).
    hop : float
        Seconds between embeddings.
    duration : float, optional
        Length of the audio in seconds (default ``n * hop``).
    batch_size, progress
        See :func:`classify_embedding`.

    Returns
    -------
    TagResult
    """
    left, right = check_context(left, right)
    embedding = np.asarray(embedding, dtype=np.uint8)
    n = embedding.shape[0]
    probs = classify_embedding(classifier, embedding, left, right, batch_size=batch_size, progress=progress,
                               desc=Path(source).name)
    return context_result(str(classifier.name), probs, np.arange(n) * hop if times is None else times,
                          left=left, right=right, source=source, hop=hop,
                          duration=float(n * hop if duration is None else duration), classifier=classifier)


def threshold_fields(classifier) -> tuple[np.ndarray | None, dict]:
    """A classifier's per-class thresholds and the settings entry that describes them.

    Returns
    -------
    thresholds : numpy.ndarray, float32, shape (C,), or None
        For :attr:`TagResult.thresholds`.
    meta : dict
        ``{"thresholds": <how they were chosen>}`` (the model's ``meta["thresholds"]``, ``{}`` if it does
        not say) when there are thresholds, else ``{}``.
    """
    thresholds = getattr(classifier, "thresholds", None)
    if thresholds is None:
        return None, {}
    return thresholds, {"thresholds": dict(getattr(classifier, "threshold_info", None) or {})}


def context_result(model_name: str, probs: np.ndarray, times: np.ndarray, *, left: int, right: int,
                   source: str, hop: float, duration: float, backend: str = "vggish",
                   classifier=None) -> TagResult:
    """The :class:`TagResult` of a context-window classifier (``tag`` and ``listen`` build it alike).

    Parameters
    ----------
    model_name : str
        Classifier id recorded as ``model``.
    probs : numpy.ndarray, float32, shape (n, C)
        Probabilities of every step.
    times : numpy.ndarray, shape (n,)
        Start of each step in seconds.
    left, right : int
        Context steps used.
    source : str
        Input name (a path that exists is also recorded as absolute ``path``).
    hop, duration : float
        Seconds between steps; length of the audio.
    backend : str
        Backend name recorded in the settings.
    classifier : optional
        The classifier: its per-class thresholds (if any) travel with the result
        (:func:`threshold_fields`).

    Returns
    -------
    TagResult
    """
    thresholds, described = threshold_fields(classifier)
    meta = {"model": model_name, "backend": backend, "left": left, "right": right, "version": __version__,
            **described}
    if source and Path(source).exists():
        meta["path"] = str(Path(source).resolve())
    return TagResult(source=source, times=times, probs=probs, hop=hop,
                     window=float(min(left + right + 1, CLIP_SECONDS)) * hop, duration=duration, meta=meta,
                     thresholds=thresholds)


class Tagger:
    """VGGish embedder + attention classifier, loaded once and applied to many inputs.

    Parameters
    ----------
    model : str or path-like, optional
        Classifier: None/``"default"`` for the packaged default model, or the path of any model written
        by ``audiotagger train``.
    checkpoint : path-like, optional
        VGGish checkpoint (``vggish_model.ckpt``); default: the model cache.
    pca_params : path-like, optional
        ``vggish_pca_params.npz``; default: the model cache.
    model_dir : path-like, optional
        Model cache folder.
    offline : bool, optional
        Never download.
    batch_size : int
        Context windows per classifier call.
    engine : {"onnx", "tf"}, optional
        ``--engine``: where the networks run (default onnx, see :mod:`audiotagger.engine`).
    precision : {"fp32", "int8"}, optional
        ``--precision`` of VGGish (onnx only; the classifier stays fp32).
    resampler : {"soxr", "resampy"}, optional
        ``--resampler`` for inputs not at 16 kHz (resampy: Google's VGGish resampling).
    """

    backend = "vggish"

    def __init__(self, model: str | os.PathLike | None = None, *, checkpoint: str | os.PathLike | None = None,
                 pca_params: str | os.PathLike | None = None, model_dir: str | os.PathLike | None = None,
                 offline: bool | None = None, batch_size: int = DEFAULT_BATCH_SIZE, engine: str | None = None,
                 precision: str | None = None, resampler: str | None = None):
        if is_panns(model) or is_yamnet(model) or is_custom(model):
            raise ParameterError(f"--model: {model} is a {backend_name(model)} model; use load_backend()")
        from ..classifier import load_classifier
        from ..engine import check_engine
        from ..vggish.embed import VGGishEmbedder

        if int(batch_size) < 1:
            raise ParameterError(f"--batch-size: must be >= 1, got {batch_size}")
        self.engine, self.precision = check_engine(engine, precision)
        self.batch_size = int(batch_size)
        self.classifier = load_classifier(model, engine=self.engine, model_dir=model_dir)
        self.embedder = VGGishEmbedder(checkpoint=checkpoint, pca_params=pca_params, model_dir=model_dir,
                                       offline=offline, engine=self.engine, precision=self.precision,
                                       resampler=resampler)
        self.model_name = str(self.classifier.name)

    @property
    def thresholds(self) -> np.ndarray | None:
        """The classifier's per-class thresholds, float32 (527,), or None (``--threshold auto``)."""
        return self.classifier.thresholds

    def _result(self, source: str, emb, left: int, right: int, progress: bool) -> TagResult:
        if np.asarray(emb.embedding).shape[0] == 0:
            raise AudioError(f"{source}: no audio to tag")
        result = embedding_result(self.classifier, emb.embedding, left=left, right=right, source=source,
                                  times=emb.times, hop=float(emb.hop),
                                  duration=emb.duration, batch_size=self.batch_size, progress=progress)
        if emb.compat_truncate:
            result.meta["compat_truncate"] = True
        return result

    def tag(self, path: str | os.PathLike, *, left: int = DEFAULT_LEFT, right: int = DEFAULT_RIGHT,
            progress: bool = False, compat_truncate: bool = False, strict: bool = False,
            **_other_backend: Any) -> TagResult:
        """Tag one file.

        Parameters
        ----------
        path : path-like
            Any audio or video file ffmpeg can decode.
        left, right : int
            Context seconds before/after each second.
        progress : bool
            Progress bar for long files.
        compat_truncate : bool
            Frame the audio as the old AudioTagger did (``--compat-truncate``, SPEC §2.7): each second
            cut to its first 0.96 s, examples at the 0.96 s hop; still one step per second.
        strict : bool
            Refuse damaged media (default: keep what decodes, with a warning giving the decoded length
            against the container's stated duration).
        **_other_backend
            Options of the other backend (``sample_duration``, ``hop_duration``), ignored.

        Returns
        -------
        TagResult
            One step per second (``hop`` 1 s); audio under one second is padded to one step (with an
            :class:`~audiotagger.errors.AudioTaggerWarning` from the frontend), and a final partial
            second of at least :data:`~audiotagger.vggish.params.FINAL_PARTIAL_MIN_SECONDS` is tagged as
            one more step, padded the same way.
        """
        left, right = check_context(left, right)
        emb = self.embedder.embed_file(path, hop=1.0, compat_truncate=compat_truncate, strict=strict,
                                       final_partial=FINAL_PARTIAL_MIN_SECONDS)
        return self._result(str(path), emb, left, right, progress)

    def iter_tag(self, paths: Iterable[str | os.PathLike], *, left: int = DEFAULT_LEFT,
                 right: int = DEFAULT_RIGHT, progress: bool = False, compat_truncate: bool = False,
                 strict: bool = False, **_other_backend: Any
                 ) -> Iterator[tuple[Path, TagResult | AudioTaggerError | OSError]]:
        """Tag many files with one loaded model; each result comes as soon as its file is done.

        Parameters
        ----------
        paths : iterable of path-like
            Media files, processed in order.
        left, right : int
            Context seconds before/after each second.
        progress : bool
            Progress bar for long files.
        compat_truncate, strict : bool
            See :meth:`tag`.

        Yields
        ------
        path : pathlib.Path
            The input, in input order.
        result : TagResult or exception
            The result, or the error that made this input fail (the others go on).
        """
        left, right = check_context(left, right)
        for path, emb in self.embedder.iter_embed(paths, hop=1.0, progress=progress,
                                                  compat_truncate=compat_truncate, strict=strict,
                                                  final_partial=FINAL_PARTIAL_MIN_SECONDS):
            if isinstance(emb, BaseException):
                yield path, emb
                continue
            try:
                yield path, self._result(str(path), emb, left, right, progress)
            except (AudioTaggerError, OSError) as exc:
                yield path, exc

    def stream(self, *, left: int = DEFAULT_LEFT, right: int = DEFAULT_RIGHT, compat_truncate: bool = False,
               **_other_backend: Any):
        """A live stream of this backend (:mod:`audiotagger.stream`): 16 kHz samples in, seconds out.

        Parameters
        ----------
        left, right : int
            Context seconds before/after each second; second ``i`` comes out once the audio up to
            embedding ``i + right`` has been pushed.
        compat_truncate : bool
            Not available live (it splices the native-rate signal); must be False.

        Returns
        -------
        audiotagger.tag.streams.VggishStream
        """
        from .streams import VggishStream

        if compat_truncate:
            raise ParameterError("--compat-truncate: not available for live streams")
        return VggishStream(self, left, right)

    def tag_waveform(self, x: np.ndarray, sr: int, *, left: int = DEFAULT_LEFT, right: int = DEFAULT_RIGHT,
                     source: str = "<waveform>", compat_truncate: bool = False,
                     channels_axis: int | None = None) -> TagResult:
        """Tag an in-memory waveform at sample rate ``sr``.

        Parameters
        ----------
        x : numpy.ndarray, float, shape (n,), (n, channels) or (channels, n)
            Samples in [-1, 1]; channels are averaged.
        sr : int
            Sample rate in Hz.
        left, right : int
            Context seconds before/after each second.
        source : str
            Name recorded in the result and used in messages.
        compat_truncate : bool
            See :meth:`tag`.
        channels_axis : {None, 0, 1}
            Axis of the channels of a 2-D ``x`` (see :func:`audiotagger.audio.to_mono`); None infers it
            and refuses an ambiguous shape.

        Returns
        -------
        TagResult
        """
        from ..audio import to_mono

        left, right = check_context(left, right)
        mono = to_mono(x, source, channels_axis)
        emb = self.embedder.embed_waveform(mono, sr, hop=1.0, compat_truncate=compat_truncate)
        return self._result(source, emb, left, right, False)


class FileByFile:
    """``iter_tag`` for the backends that tag one whole file at a time (PANNs, YAMNet, custom models).

    (The VGGish :class:`Tagger` streams every input through one embedder instead.)
    """

    def iter_tag(self, paths: Iterable[str | os.PathLike], **options: Any
                 ) -> Iterator[tuple[Path, TagResult | AudioTaggerError | OSError]]:
        """Tag many files in order; yields ``(path, result or the error that made it fail)``."""
        for path in paths:
            try:
                yield Path(path), self.tag(path, **options)
            except (AudioTaggerError, OSError) as exc:
                yield Path(path), exc


class PannsBackend(FileByFile):
    """The PANNs backend (CNN14/10/6 on sliding windows, SPEC §7–8) with the interface of :class:`Tagger`.

    Parameters
    ----------
    model : str or path-like
        ``panns-cnn14``, ``panns-cnn10``, ``panns-cnn6`` or a PANNs ``.pth`` checkpoint.
    checkpoint : path-like, optional
        Local copy of the named model's checkpoint.
    model_dir, offline
        Model cache folder; never download.
    batch_size : int, optional
        Windows per network call (default: the PANNs default of the engine).
    engine, precision : str, optional
        ``--engine`` and ``--precision`` (see :class:`Tagger`).
    """

    backend = "panns"
    thresholds = None
    """PANNs models store no per-class thresholds."""

    def __init__(self, model: str | os.PathLike = "panns-cnn14", *,
                 checkpoint: str | os.PathLike | None = None, model_dir: str | os.PathLike | None = None,
                 offline: bool | None = None, batch_size: int | None = None, engine: str | None = None,
                 precision: str | None = None, **_vggish_only: Any):
        from ..panns.tagging import PannsTagger

        self.tagger = PannsTagger(model, checkpoint, model_dir=model_dir, offline=offline,
                                  batch_size=batch_size, engine=engine, precision=precision)
        self.engine, self.precision = self.tagger.engine, self.tagger.precision
        self.model_name = self.tagger.name

    def tag(self, path: str | os.PathLike, *, sample_duration: float | None = None,
            hop_duration: float | None = None, progress: bool = False, strict: bool = False,
            **_vggish_only: Any) -> TagResult:
        """Tag one file: windows of ``sample_duration`` seconds every ``hop_duration`` seconds.

        Returns
        -------
        TagResult
            One step per window start (``hop`` = ``hop_duration``, ``window`` = ``sample_duration``);
            the ``.npz`` also carries PaddleAudio's ``time`` (fraction of the length) and ``scores``.
        """
        from ..panns import params as pp

        sample = pp.DEFAULT_SAMPLE_DURATION if sample_duration is None else float(sample_duration)
        hop = pp.DEFAULT_HOP_DURATION if hop_duration is None else float(hop_duration)
        if progress:
            import sys

            from tqdm.auto import tqdm

            with tqdm(desc=Path(path).name, unit="window", leave=False, file=sys.stderr) as bar:
                scores = self.tagger.tag_file(path, sample, hop, progress=lambda n: bar.update(n - bar.n),
                                              strict=strict)
        else:
            scores = self.tagger.tag_file(path, sample, hop, strict=strict)
        return self.scores_result(scores, str(path), sample, hop)

    def scores_result(self, scores, source: str, sample_duration: float, hop_duration: float) -> TagResult:
        """The :class:`TagResult` of window scores (:class:`~audiotagger.panns.tagging.PannsScores`).

        ``tag`` and ``listen`` build it alike: settings ``sample_duration``/``hop_duration``, and the
        ``.npz`` extras PaddleAudio writes (``time`` as a fraction of the length, ``scores``).
        """
        meta = {"model": self.model_name, "backend": self.backend, "sample_duration": sample_duration,
                "hop_duration": hop_duration, "version": __version__}
        if source and Path(source).exists():
            meta["path"] = str(Path(source).resolve())
        return TagResult(source=source, times=scores.times, probs=scores.scores, hop=hop_duration,
                         window=sample_duration, duration=scores.duration, meta=meta,
                         extras={"time": scores.fractions, "scores": scores.scores})

    def stream(self, *, sample_duration: float | None = None, hop_duration: float | None = None,
               **_vggish_only: Any):
        """A live stream of this backend (:mod:`audiotagger.stream`): 32 kHz samples in, windows out.

        Parameters
        ----------
        sample_duration, hop_duration : float, optional
            Window length and hop in seconds (default 2.0 and 0.3), as for :meth:`tag`.

        Returns
        -------
        audiotagger.tag.streams.PannsStream
        """
        from .streams import PannsStream

        return PannsStream(self, sample_duration, hop_duration)


class YamnetBackend(FileByFile):
    """The YAMNet backend (521 classes, 0.96 s patches every 0.48 s) with the interface of :class:`Tagger`.

    Parameters
    ----------
    model : str or path-like
        ``yamnet`` (model cache), or a ``yamnet.h5`` / YAMNet ``.tflite`` file.
    checkpoint : path-like, optional
        Local ``yamnet.h5`` for ``model="yamnet"``.
    model_dir, offline
        Model cache folder; never download.
    batch_size : int, optional
        Patches per network call (default 32).
    engine, precision : str, optional
        ``--engine`` (onnx by default, or tf: the Keras port) and ``--precision`` (see :class:`Tagger`).

    Attributes
    ----------
    model : audiotagger.yamnet.tagging.YamnetModel
        The loaded network; :meth:`embed` gives its embeddings.
    """

    backend = "yamnet"
    thresholds = None
    """YAMNet stores no per-class thresholds."""

    def __init__(self, model: str | os.PathLike = "yamnet", *, checkpoint: str | os.PathLike | None = None,
                 model_dir: str | os.PathLike | None = None, offline: bool | None = None,
                 batch_size: int | None = None, engine: str | None = None, precision: str | None = None,
                 **_other_backend: Any):
        from ..yamnet.tagging import YamnetModel

        kwargs = {} if batch_size is None else {"batch_size": batch_size}
        self.model = YamnetModel(model, checkpoint, model_dir=model_dir, offline=offline, engine=engine,
                                 precision=precision, **kwargs)
        self.engine, self.precision = self.model.engine, self.model.precision
        self.model_name = "yamnet"

    def embed(self, path: str | os.PathLike, *, progress: bool = False):
        """Patch scores, embeddings (n, 1024) and times of one file (a ``YamnetOutput``)."""
        if not progress:
            return self.model.embed_file(path)
        bar = _bar(path)
        try:
            return self.model.embed_file(path, progress=bar)
        finally:
            bar.close()

    def result(self, out, source: str, *, hop_duration: float | None = None) -> TagResult:
        """Turn patch scores into a :class:`TagResult` of ``hop_duration`` rows (default 1 s).

        Rows follow :func:`audiotagger.yamnet.tagging.aggregate` (the maximum over the patches centred
        in each row; ``0.48`` keeps the patches). The ``.npz`` also stores ``patch_times`` and
        ``patch_scores``.
        """
        from ..yamnet import params as yp
        from ..yamnet.tagging import aggregate

        hop = yp.DEFAULT_HOP_DURATION if hop_duration is None else float(hop_duration)
        times, probs = aggregate(out.times, out.scores, out.duration, hop)
        return self.rows_result(times, probs, source, out.duration, hop,
                                extras={"patch_times": out.times, "patch_scores": out.scores})

    def rows_result(self, times: np.ndarray, probs: np.ndarray, source: str, duration: float, hop: float,
                    extras: dict | None = None) -> TagResult:
        """The :class:`TagResult` of rows (``tag`` and ``listen`` build it alike)."""
        from ..yamnet import params as yp

        native = abs(hop - yp.PATCH_HOP_SECONDS) < 1e-9
        labels = self.model.labels
        meta = {"model": self.model_name, "backend": self.backend, "hop_duration": hop,
                "aggregation": "patches" if native else "max over patches centred in the row",
                "weights": str(self.model.weights_path), "version": __version__}
        if source and Path(source).exists():
            meta["path"] = str(Path(source).resolve())
        return TagResult(source=source, times=times, probs=probs, hop=hop,
                         window=yp.PATCH_WINDOW_SECONDS if native else hop + yp.PATCH_WINDOW_SECONDS,
                         duration=duration, meta=meta, mids=labels.mids, names=labels.names,
                         extras=extras or {})

    def stream(self, *, hop_duration: float | None = None, **_other_backend: Any):
        """A live stream of this backend (:mod:`audiotagger.stream`): 16 kHz samples in, rows out.

        Returns
        -------
        audiotagger.tag.streams.YamnetStream
        """
        from .streams import YamnetStream

        return YamnetStream(self, hop_duration)

    def tag(self, path: str | os.PathLike, *, hop_duration: float | None = None, progress: bool = False,
            **_other_backend: Any) -> TagResult:
        """Tag one file: per-second rows by default (``hop_duration`` seconds per row).

        Returns
        -------
        TagResult
            ``probs`` (rows, 521) with YAMNet's class map as ``mids``/``names``.
        """
        return self.result(self.embed(path, progress=progress), str(path), hop_duration=hop_duration)

    def tag_waveform(self, x: np.ndarray, sr: int, *, hop_duration: float | None = None,
                     source: str = "<waveform>", **_other_backend: Any) -> TagResult:
        """Tag an in-memory waveform (float, mono or (samples, channels)) at sample rate ``sr``."""
        return self.result(self.model.embed_waveform(x, sr), source, hop_duration=hop_duration)


class CustomBackend(FileByFile):
    """A custom model (``audiotagger train --audio``): its backbone's rows → context windows → its classes.

    The model file names its backbone and carries its labels, so no other flag is needed; the result's
    columns are the user's classes (``mids`` and ``names`` are both the label strings).

    Parameters
    ----------
    model : path-like
        A classifier ``.npz`` whose config has ``backbone`` and ``labels``.
    checkpoint, pca_params, model_dir, offline
        The backbone's model files (as for :func:`audiotagger.backbones.load_backbone`).
    batch_size : int
        Context windows per classifier call.

    Raises
    ------
    ModelError
        The file is not a custom model, or its backbone is unknown, not installed or lacks its weights
        (the message names the model file and the backbone).
    """

    backend = "custom"

    def __init__(self, model: str | os.PathLike, *, checkpoint: str | os.PathLike | None = None,
                 pca_params: str | os.PathLike | None = None, model_dir: str | os.PathLike | None = None,
                 offline: bool | None = None, batch_size: int | None = None):
        from ..backbones import load_backbone
        from ..classifier import load_classifier
        from ..classifier.store import read_config
        from ..errors import ModelError

        config, _ = read_config(model)
        name, labels = config.get("backbone"), config.get("labels")
        if not name or not labels or len(labels) != config.get("num_classes"):
            raise ModelError(f"{model}: not a custom model (no backbone and labels in its config)")
        self.batch_size = DEFAULT_BATCH_SIZE if batch_size is None else int(batch_size)
        if self.batch_size < 1:
            raise ParameterError(f"--batch-size: must be >= 1, got {batch_size}")
        try:
            self.backbone = load_backbone(name, checkpoint=checkpoint, pca_params=pca_params,
                                          model_dir=model_dir, offline=offline)
        except (ParameterError, ModelError) as exc:
            raise ModelError(f"{model}: needs backbone {name!r}, which is not available here: "
                             f"{str(exc).removeprefix('--backbone: ')}") from None
        want = config.get("embedding_size", 128), config.get("input_dtype", "uint8")
        if want != (self.backbone.dim, self.backbone.spec.dtype):
            raise ModelError(f"{model}: expects {want[1]} rows of width {want[0]}, backbone {name!r} gives "
                             f"{self.backbone.spec.dtype} rows of width {self.backbone.dim}")
        self.classifier = load_classifier(model)
        self.labels = tuple(str(x) for x in labels)
        self.model_name = str(self.classifier.name)

    @property
    def thresholds(self) -> np.ndarray | None:
        """Per-class thresholds stored in the model file, float32 (classes,), or None."""
        return self.classifier.thresholds

    def tag(self, path: str | os.PathLike, *, left: int = DEFAULT_LEFT, right: int = DEFAULT_RIGHT,
            progress: bool = False, compat_truncate: bool = False, **_other_backend: Any) -> TagResult:
        """Tag one file: one step per backbone row (its ``hop``), ``left``/``right`` rows of context.

        Returns
        -------
        TagResult
            ``probs`` (n, len(labels)); ``mids`` and ``names`` are the model's labels.
        """
        if compat_truncate:
            raise ParameterError("--compat-truncate: only for the packaged VGGish models, not custom models")
        left, right = check_context(left, right)
        rows, duration = self.backbone.embed_file(path)
        return self.rows_result(rows, source=str(path), left=left, right=right, duration=duration,
                                progress=progress)

    def rows_result(self, rows: np.ndarray, *, source: str, left: int = DEFAULT_LEFT,
                    right: int = DEFAULT_RIGHT, duration: float | None = None,
                    progress: bool = False) -> TagResult:
        """Classify a sequence of backbone rows (n, D) into a :class:`TagResult` (see :meth:`tag`)."""
        if len(rows) == 0:
            raise AudioError(f"{source}: no audio to tag")
        hop = self.backbone.hop
        probs = classify_embedding(self.classifier, rows, left, right, batch_size=self.batch_size,
                                   progress=progress, desc=Path(source).name)
        thresholds, described = threshold_fields(self.classifier)
        meta = {"model": self.model_name, "backend": self.backend, "backbone": self.backbone.name,
                "left": left, "right": right, "version": __version__, **described}
        if Path(source).exists():
            meta["path"] = str(Path(source).resolve())
        n = len(rows)
        return TagResult(source=source, times=np.arange(n) * hop, probs=probs, hop=hop,
                         window=float(min(left + right + 1, CLIP_SECONDS)) * hop,
                         duration=float(n * hop if duration is None else duration), meta=meta,
                         mids=self.labels, names=self.labels, thresholds=thresholds)


def is_custom(model: str | os.PathLike | None) -> bool:
    """True if ``--model`` is a custom model file (a classifier ``.npz`` that names its backbone)."""
    from ..classifier.store import is_custom_model

    return model is not None and is_custom_model(model)


def model_thresholds(model: str | os.PathLike | None) -> np.ndarray | None:
    """The per-class thresholds ``--model`` stores, read without loading it (for ``--threshold auto``).

    Returns
    -------
    numpy.ndarray, float32, shape (C,), or None
        None for PANNs and YAMNet models and for classifier files without thresholds.

    Raises
    ------
    ModelError
        A classifier file that is missing, unreadable, or stores malformed thresholds.
    """
    if backend_name(model) in ("panns", "yamnet"):
        return None
    from ..classifier.classifier import default_model_path
    from ..classifier.store import read_thresholds
    from ..errors import ModelError

    path = default_model_path() if model is None or str(model) == "default" else Path(model)
    if not path.is_file():
        raise ModelError(f"{path}: classifier file not found")
    return read_thresholds(path)


def model_title(model: str | os.PathLike | None) -> str:
    """How messages name ``--model``: ``default model`` or the name/path given."""
    return "default model" if model is None or str(model) == "default" else str(model)


def check_auto(options: DisplayOptions, thresholds: np.ndarray | None, source: str | os.PathLike) -> None:
    """Usage error if ``options`` ask for ``--threshold auto`` and ``source`` has no per-class thresholds.

    Raises
    ------
    ParameterError
        ``audiotagger: error: <source>: no per-class thresholds (...)`` (exit 2 from the CLI).
    """
    options.limits(thresholds, str(source))


def model_labels(model: str | os.PathLike | None):
    """The classes ``--model`` outputs, read without loading it (for checking ``--exclude`` early).

    Returns
    -------
    audiotagger.labels.LabelSet or None
        A custom model's labels; None for the AudioSet models (the default label set).
    """
    from ..labels import LabelSet

    if not is_custom(model):
        return None
    from ..classifier.store import read_config

    labels = tuple(str(x) for x in read_config(model)[0]["labels"])
    return LabelSet(labels, labels)


def _bar(path):
    """A progress callback (patches scored so far) drawing a tqdm bar; closed when the file is done."""
    import sys

    from tqdm.auto import tqdm

    bar = tqdm(desc=Path(path).name, unit="patch", leave=False, file=sys.stderr)

    def update(n: int) -> None:
        bar.update(n - bar.n)

    update.close = bar.close
    return update


def load_backend(model: str | os.PathLike | None = None, **kwargs: Any
                 ) -> Tagger | PannsBackend | YamnetBackend | CustomBackend:
    """Load the backend ``--model`` names.

    :class:`PannsBackend` for PANNs models, :class:`YamnetBackend` for ``yamnet`` (or a YAMNet
    ``.h5``/``.tflite``), :class:`CustomBackend` for a custom model file (it loads the backbone the file
    names), else :class:`Tagger` (VGGish + an AudioSet classifier).

    Keyword arguments are those of the constructors (``checkpoint``, ``pca_params``, ``model_dir``,
    ``offline``, ``batch_size``, ``engine``, ``precision``, ``resampler``); ``pca_params`` is ignored by
    PANNs and YAMNet, ``resampler`` by PANNs and YAMNet.
    """
    if is_panns(model):
        return PannsBackend(model, **kwargs)
    if is_yamnet(model):
        return YamnetBackend(model, **{k: v for k, v in kwargs.items() if k != "pca_params"})
    if is_custom(model):
        return CustomBackend(model, **{k: v for k, v in kwargs.items()
                                       if k not in ("engine", "precision", "resampler")})
    return Tagger(model, **{k: v for k, v in kwargs.items() if v is not None or k != "batch_size"})


@functools.lru_cache(maxsize=2)
def _cached_backend(model, checkpoint, pca_params, model_dir, offline, batch_size, engine=None,
                    precision=None, resampler=None) -> Tagger | PannsBackend | YamnetBackend:
    extra = {} if resampler is None else {"resampler": resampler}
    return load_backend(model, checkpoint=checkpoint, pca_params=pca_params, model_dir=model_dir,
                        offline=offline, batch_size=batch_size, engine=engine, precision=precision, **extra)


def load_tagger(model: str | os.PathLike | None = None, **kwargs: Any
                ) -> Tagger | PannsBackend | YamnetBackend:
    """Return the backend for these model settings, reusing one already loaded in this process."""
    key = {k: (str(v) if isinstance(v, os.PathLike) else v) for k, v in kwargs.items()}
    default_batch = DEFAULT_BATCH_SIZE if backend_name(model) == "vggish" else None
    return _cached_backend(None if model is None else str(model), key.get("checkpoint"),
                           key.get("pca_params"), key.get("model_dir"), key.get("offline"),
                           key.get("batch_size") or default_batch, key.get("engine"), key.get("precision"),
                           key.get("resampler"))


def output_paths(stem_path: Path, out_dir: str | os.PathLike, formats: Sequence[str],
                 rel_dir: str | os.PathLike = "") -> dict[str, Path]:
    """Where each format of one input goes: ``out_dir/rel_dir/<stem>.<extension>``."""
    base = Path(out_dir) / rel_dir
    return {fmt: base / f"{stem_path.stem}.{get_writer(fmt).extension}" for fmt in formats}


def write_outputs(sel: Selection, paths: dict[str, Path], *, overwrite: bool = False, burn: bool = False,
                  source: str | os.PathLike | None = None, embed_media: bool = False,
                  progress: bool = False) -> list[Path]:
    """Write every requested format of one selection.

    Parameters
    ----------
    sel : Selection
        Result + display options.
    paths : dict of format to path
        Destinations (see :func:`output_paths`).
    overwrite : bool
        Replace existing files; otherwise formats whose file exists are left alone.
    burn : bool
        ``mp4``: draw the tags onto the frames instead of adding a subtitle track.
    source : path-like, optional
        The media file (for ``png``, ``mp4`` and ``html``); default ``sel.result.source``.
    embed_media : bool
        ``html``: embed a compressed audio track instead of linking to the media.
    progress : bool
        ``--burn``: a progress bar over the frames.

    Returns
    -------
    list of pathlib.Path
        The files written. An ``mp4`` for an input without a video stream is skipped with a warning.
        The outputs appear together when all are written (:class:`~audiotagger.fileio.AtomicGroup`): if
        one fails (a full disk, a video error, Ctrl-C), none is left and existing files are unchanged.
    """
    from ..fileio import AtomicGroup

    written = []
    src = Path(source if source is not None else sel.result.source)
    with AtomicGroup() as group:       # all of this input's outputs, or none of them
        for fmt, path in paths.items():
            if src.exists() and path.exists() and path.resolve() == src.resolve():
                warnings.warn(f"{path}: is the input itself; not writing {fmt}", AudioTaggerWarning,
                              stacklevel=2)
                continue
            if path.exists() and not overwrite:
                continue
            try:
                get_writer(fmt).write(sel, group.stage(path), overwrite=True, source=src, burn=burn,
                                      embed_media=embed_media, outputs=paths, progress=progress, final=path)
                written.append(path)
            except AudioError as exc:
                from .video import NoVideoStreamError

                if not isinstance(exc, NoVideoStreamError):
                    raise
                warnings.warn(str(exc), AudioTaggerWarning, stacklevel=2)
    return written


def tag_file(path: str | os.PathLike, *, output_dir: str | os.PathLike | None = None,
             formats: str | Iterable[str] | None = None, model: str | os.PathLike | None = None,
             checkpoint: str | os.PathLike | None = None, pca_params: str | os.PathLike | None = None,
             model_dir: str | os.PathLike | None = None, offline: bool | None = None,
             left: int = DEFAULT_LEFT, right: int = DEFAULT_RIGHT, threshold: float | str | None = None,
             top_k: int | None = None, show_music_speech: bool | None = None,
             exclude: Iterable[str] | None = None,
             compat: bool | None = None, smooth: int | None = None, per_second: bool | None = None,
             burn: bool = False, embed_media: bool = False, overwrite: bool = False, from_probs: bool = False,
             sample_duration: float | None = None, hop_duration: float | None = None,
             compat_truncate: bool = False, batch_size: int | None = None, progress: bool = False,
             engine: str | None = None, precision: str | None = None, resampler: str | None = None,
             strict: bool = False, tagger: Tagger | PannsBackend | YamnetBackend | None = None) -> TagResult:
    """Tag one file and optionally write its outputs (the Python form of ``audiotagger tag``).

    Parameters
    ----------
    path : path-like
        Audio/video file, or (``from_probs=True``) a probability ``.npz`` written by ``-f npz``.
    output_dir : path-like, optional
        Write the ``formats`` here as ``<stem>.<ext>``. None: the current folder when ``formats`` is
        given (as ``audiotagger tag``'s ``-o``), else nothing is written.
    formats : str or iterable of str, optional
        ``"srt,npz"`` (default), ``"all"``, or a list of names from
        :data:`audiotagger.tag.writers.FORMATS`.
    model, checkpoint, pca_params, model_dir, offline, batch_size
        Model selection (see :func:`load_backend`); ignored with ``tagger`` or ``from_probs``. ``model``
        ``panns-cnn14|10|6`` or a ``.pth`` file selects the PANNs backend; ``yamnet`` (or a YAMNet
        ``.h5``/``.tflite``) the YAMNet backend.
    left, right : int
        VGGish backend: context seconds before/after each second.
    compat_truncate : bool
        VGGish backend: the old AudioTagger's framing (see :meth:`Tagger.tag`).
    sample_duration, hop_duration : float, optional
        PANNs backend: window length and hop in seconds (default 2.0 and 0.3). YAMNet: ``hop_duration``
        is the row length (default 1.0; 0.48 keeps the native patches).
    threshold, top_k, show_music_speech, exclude, compat, smooth, per_second
        Display options (:class:`~audiotagger.tag.select.DisplayOptions`); None takes the value stored in
        the ``.npz`` with ``from_probs``, else the default. ``threshold="auto"`` compares each class with
        its own threshold stored in the model (a :class:`~audiotagger.errors.ParameterError` for a
        model or ``.npz`` without them).
    burn : bool
        ``mp4``: draw the tags on the frames (re-encodes the video).
    embed_media : bool
        ``html``: embed a compressed audio track in the page instead of linking to the media.
    overwrite : bool
        Replace existing outputs (otherwise they are kept).
    from_probs : bool
        Re-render from a saved probability matrix without running any model.
    progress : bool
        Progress bar over long files.
    engine, precision : str, optional
        ``--engine`` (onnx, tf) and ``--precision`` (fp32, int8); see :class:`Tagger`.
    resampler : str, optional
        VGGish backend: ``--resampler`` (soxr, resampy).
    strict : bool
        Refuse damaged media (default: keep what decodes, with a warning).
    tagger : Tagger, optional
        Already loaded models.

    Returns
    -------
    TagResult
    """
    display = {"threshold": threshold, "top_k": top_k, "show_music_speech": show_music_speech,
               "exclude": None if exclude is None else tuple(exclude), "compat": compat, "smooth": smooth,
               "per_second": per_second}
    fmts = parse_formats(formats)
    source: str | os.PathLike | None = None
    if from_probs:
        result, stored = load_result(path)
        options = resolve_display(display, stored, result_labels(result))
        check_auto(options, result.thresholds, path)
        source = media_source(result)
    else:
        check_context(left, right)
        if tagger is None and threshold is not None:
            check_auto(resolve_display({"threshold": threshold}, check=False), model_thresholds(model),
                       model_title(model))             # before loading anything
        tagger = tagger or load_tagger(model, checkpoint=checkpoint, pca_params=pca_params,
                                       model_dir=model_dir, offline=offline, batch_size=batch_size,
                                       engine=engine, precision=precision, resampler=resampler)
        backend = getattr(tagger, "backend", "vggish")
        labels = LabelSet(tagger.labels, tagger.labels) if isinstance(tagger, CustomBackend) else None
        options = resolve_display(backend_display(display, backend), labels=labels)
        check_auto(options, getattr(tagger, "thresholds", None), getattr(tagger, "model_name", model))
        check_backend_options(backend, compat_truncate=compat_truncate, sample_duration=sample_duration,
                              hop_duration=hop_duration)
        result = tagger.tag(path, left=left, right=right, sample_duration=sample_duration,
                            hop_duration=hop_duration, progress=progress, compat_truncate=compat_truncate,
                            strict=strict)
    if output_dir is None and formats is not None:
        output_dir = "."                     # as the CLI: formats asked for are written, by default here
    if output_dir is not None:
        paths = {fmt: p for fmt, p in output_paths(Path(path), output_dir, fmts).items()
                 if p.resolve() != Path(path).resolve()}      # never replace the input itself
        write_outputs(Selection(result, options), paths, overwrite=overwrite, burn=burn, source=source,
                      embed_media=embed_media)
    return result


def result_labels(result: TagResult):
    """The classes of a result as a :class:`~audiotagger.labels.LabelSet`."""
    return LabelSet(result.mids, result.names)


def media_source(result: TagResult) -> str:
    """The media file a (loaded) result came from: its recorded absolute path if that still exists."""
    path = result.meta.get("path")
    return path if path and Path(path).exists() else result.source


def check_backend_options(backend: str | bool, *, compat_truncate: bool = False,
                          sample_duration: float | None = None, hop_duration: float | None = None) -> None:
    """Raise ParameterError for an option of another backend (``tag`` and :func:`tag_file` share this).

    ``backend`` is ``"vggish"``, ``"panns"`` or ``"yamnet"`` (True/False mean PANNs/VGGish).
    """
    backend = {True: "panns", False: "vggish"}.get(backend, backend) if isinstance(backend, bool) else backend
    if backend in ("vggish", "custom") and (sample_duration is not None or hop_duration is not None):
        raise ParameterError("--sample-duration/--hop-duration: only for PANNs models "
                             "(--model panns-cnn14 ...) and YAMNet (--hop-duration)")
    if backend == "yamnet" and sample_duration is not None:
        raise ParameterError("--sample-duration: YAMNet's patches are always 0.96 s (use --hop-duration "
                             "for the row length)")
    if backend != "vggish" and compat_truncate:
        raise ParameterError(f"--compat-truncate: only for the VGGish backend, not {backend} models")
    if backend == "panns" and (sample_duration is not None or hop_duration is not None):
        from ..panns import params as pp
        from ..panns.tagging import window_samples

        window_samples(pp.DEFAULT_SAMPLE_DURATION if sample_duration is None else sample_duration,
                       pp.DEFAULT_HOP_DURATION if hop_duration is None else hop_duration)


def backend_display(display: dict[str, Any], backend: str | bool) -> dict[str, Any]:
    """``display`` with the PANNs default top-k (PaddleAudio lists the top 10) when none was given."""
    if backend in (True, "panns") and display.get("top_k") is None:
        from ..panns.params import DEFAULT_TOP_K as PANNS_TOP_K

        return {**display, "top_k": PANNS_TOP_K}
    return display


def resolve_display(given: dict[str, Any], stored: dict[str, Any] | None = None,
                    labels: LabelSet | None = None, *, check: bool = True) -> DisplayOptions:
    """Combine display options: explicit values (not None) over stored ones over the defaults.

    ``--exclude`` is checked against ``labels`` (a :class:`~audiotagger.labels.LabelSet`; default
    AudioSet's), so an unknown class is a usage error before any work; ``check=False`` leaves that to
    the selection (re-rendered files may each have their own classes).
    """
    merged = {k: v for k, v in (stored or {}).items() if k in DisplayOptions.__dataclass_fields__}
    merged.update({k: v for k, v in given.items() if v is not None})
    options = DisplayOptions.from_dict(merged)
    return options.check(labels) if check else options
