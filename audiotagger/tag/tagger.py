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
    embedding : numpy.ndarray, uint8, shape (n, 128)
        One AudioSet embedding per second.
    left, right : int
        Context seconds before/after each second.
    batch_size : int
        Windows per classifier call.
    progress : bool
        Show a progress bar (only for long inputs).
    desc : str
        Progress-bar label.

    Returns
    -------
    numpy.ndarray, float32, shape (n, 527)
    """
    windows = context_windows(np.asarray(embedding, dtype=np.uint8), left, right)
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
    meta = {"model": str(classifier.name), "backend": "vggish", "left": left, "right": right,
            "version": __version__}
    if Path(source).exists():
        meta["path"] = str(Path(source).resolve())
    return TagResult(source=source, times=np.arange(n) * hop if times is None else times, probs=probs,
                     hop=hop, window=float(min(left + right + 1, CLIP_SECONDS)) * hop,
                     duration=float(n * hop if duration is None else duration), meta=meta)


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
    """

    backend = "vggish"

    def __init__(self, model: str | os.PathLike | None = None, *, checkpoint: str | os.PathLike | None = None,
                 pca_params: str | os.PathLike | None = None, model_dir: str | os.PathLike | None = None,
                 offline: bool | None = None, batch_size: int = DEFAULT_BATCH_SIZE):
        if is_panns(model):
            raise ParameterError(f"--model: {model} is a PANNs model; use PannsBackend or load_backend()")
        from ..classifier import load_classifier
        from ..vggish.embed import VGGishEmbedder

        if int(batch_size) < 1:
            raise ParameterError(f"--batch-size: must be >= 1, got {batch_size}")
        self.batch_size = int(batch_size)
        self.classifier = load_classifier(model)
        self.embedder = VGGishEmbedder(checkpoint=checkpoint, pca_params=pca_params, model_dir=model_dir,
                                       offline=offline)
        self.model_name = str(self.classifier.name)

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


class PannsBackend:
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
        Windows per network call (default: the PANNs default).
    """

    backend = "panns"

    def __init__(self, model: str | os.PathLike = "panns-cnn14", *,
                 checkpoint: str | os.PathLike | None = None, model_dir: str | os.PathLike | None = None,
                 offline: bool | None = None, batch_size: int | None = None, **_vggish_only: Any):
        from ..panns.tagging import PannsTagger

        kwargs = {} if batch_size is None else {"batch_size": batch_size}
        self.tagger = PannsTagger(model, checkpoint, model_dir=model_dir, offline=offline, **kwargs)
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
        meta = {"model": self.model_name, "backend": self.backend, "sample_duration": sample,
                "hop_duration": hop, "version": __version__}
        if Path(path).exists():
            meta["path"] = str(Path(path).resolve())
        return TagResult(source=str(path), times=scores.times, probs=scores.scores, hop=hop, window=sample,
                         duration=scores.duration, meta=meta,
                         extras={"time": scores.fractions, "scores": scores.scores})

    def iter_tag(self, paths: Iterable[str | os.PathLike], **options: Any
                 ) -> Iterator[tuple[Path, TagResult | AudioTaggerError | OSError]]:
        """Tag many files in order; yields ``(path, result or the error that made it fail)``."""
        for path in paths:
            try:
                yield Path(path), self.tag(path, **options)
            except (AudioTaggerError, OSError) as exc:
                yield Path(path), exc


def load_backend(model: str | os.PathLike | None = None, **kwargs: Any) -> Tagger | PannsBackend:
    """Load the backend ``--model`` names: :class:`PannsBackend` for PANNs models, else :class:`Tagger`.

    Keyword arguments are those of the two constructors (``checkpoint``, ``pca_params``, ``model_dir``,
    ``offline``, ``batch_size``); ``pca_params`` is ignored by PANNs.
    """
    if is_panns(model):
        return PannsBackend(model, **kwargs)
    return Tagger(model, **{k: v for k, v in kwargs.items() if v is not None or k != "batch_size"})


@functools.lru_cache(maxsize=2)
def _cached_backend(model, checkpoint, pca_params, model_dir, offline, batch_size) -> Tagger | PannsBackend:
    return load_backend(model, checkpoint=checkpoint, pca_params=pca_params, model_dir=model_dir,
                        offline=offline, batch_size=batch_size)


def load_tagger(model: str | os.PathLike | None = None, **kwargs: Any) -> Tagger | PannsBackend:
    """Return the backend for these model settings, reusing one already loaded in this process."""
    key = {k: (str(v) if isinstance(v, os.PathLike) else v) for k, v in kwargs.items()}
    default_batch = None if is_panns(model) else DEFAULT_BATCH_SIZE
    return _cached_backend(None if model is None else str(model), key.get("checkpoint"),
                           key.get("pca_params"), key.get("model_dir"), key.get("offline"),
                           key.get("batch_size") or default_batch)


def output_paths(stem_path: Path, out_dir: str | os.PathLike, formats: Sequence[str],
                 rel_dir: str | os.PathLike = "") -> dict[str, Path]:
    """Where each format of one input goes: ``out_dir/rel_dir/<stem>.<extension>``."""
    base = Path(out_dir) / rel_dir
    return {fmt: base / f"{stem_path.stem}.{get_writer(fmt).extension}" for fmt in formats}


def write_outputs(sel: Selection, paths: dict[str, Path], *, overwrite: bool = False, burn: bool = False,
                  source: str | os.PathLike | None = None, progress: bool = False) -> list[Path]:
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
        The media file (for ``png`` and ``mp4``); default ``sel.result.source``.
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
                                      progress=progress)
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
             left: int = DEFAULT_LEFT, right: int = DEFAULT_RIGHT, threshold: float | None = None,
             top_k: int | None = None, show_music_speech: bool | None = None,
             exclude: Iterable[str] | None = None,
             compat: bool | None = None, smooth: int | None = None, per_second: bool | None = None,
             burn: bool = False, overwrite: bool = False, from_probs: bool = False,
             sample_duration: float | None = None, hop_duration: float | None = None,
             compat_truncate: bool = False, batch_size: int | None = None, progress: bool = False,
             strict: bool = False, tagger: Tagger | PannsBackend | None = None) -> TagResult:
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
        ``panns-cnn14|10|6`` or a ``.pth`` file selects the PANNs backend.
    left, right : int
        VGGish backend: context seconds before/after each second.
    compat_truncate : bool
        VGGish backend: the old AudioTagger's framing (see :meth:`Tagger.tag`).
    sample_duration, hop_duration : float, optional
        PANNs backend: window length and hop in seconds (default 2.0 and 0.3).
    threshold, top_k, show_music_speech, exclude, compat, smooth, per_second
        Display options (:class:`~audiotagger.tag.select.DisplayOptions`); None takes the value stored in
        the ``.npz`` with ``from_probs``, else the default.
    burn : bool
        ``mp4``: draw the tags on the frames (re-encodes the video).
    overwrite : bool
        Replace existing outputs (otherwise they are kept).
    from_probs : bool
        Re-render from a saved probability matrix without running any model.
    progress : bool
        Progress bar over long files.
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
        options = resolve_display(display, stored)
        source = media_source(result)
    else:
        check_context(left, right)
        tagger = tagger or load_tagger(model, checkpoint=checkpoint, pca_params=pca_params,
                                       model_dir=model_dir, offline=offline, batch_size=batch_size)
        panns = isinstance(tagger, PannsBackend)
        options = resolve_display(backend_display(display, panns))
        check_backend_options(panns, compat_truncate=compat_truncate, sample_duration=sample_duration,
                              hop_duration=hop_duration)
        result = tagger.tag(path, left=left, right=right, sample_duration=sample_duration,
                            hop_duration=hop_duration, progress=progress, compat_truncate=compat_truncate,
                            strict=strict)
    if output_dir is None and formats is not None:
        output_dir = "."                     # as the CLI: formats asked for are written, by default here
    if output_dir is not None:
        paths = {fmt: p for fmt, p in output_paths(Path(path), output_dir, fmts).items()
                 if p.resolve() != Path(path).resolve()}      # never replace the input itself
        write_outputs(Selection(result, options), paths, overwrite=overwrite, burn=burn, source=source)
    return result


def media_source(result: TagResult) -> str:
    """The media file a (loaded) result came from: its recorded absolute path if that still exists."""
    path = result.meta.get("path")
    return path if path and Path(path).exists() else result.source


def check_backend_options(panns: bool, *, compat_truncate: bool = False, sample_duration: float | None = None,
                          hop_duration: float | None = None) -> None:
    """Raise ParameterError for an option of the other backend (``tag`` and :func:`tag_file` share this)."""
    if not panns and (sample_duration is not None or hop_duration is not None):
        raise ParameterError("--sample-duration/--hop-duration: only for PANNs models "
                             "(--model panns-cnn14 ...)")
    if panns and compat_truncate:
        raise ParameterError("--compat-truncate: only for the VGGish backend, not PANNs models")
    if panns and (sample_duration is not None or hop_duration is not None):
        from ..panns import params as pp
        from ..panns.tagging import window_samples

        window_samples(pp.DEFAULT_SAMPLE_DURATION if sample_duration is None else sample_duration,
                       pp.DEFAULT_HOP_DURATION if hop_duration is None else hop_duration)


def backend_display(display: dict[str, Any], panns: bool) -> dict[str, Any]:
    """``display`` with the PANNs default top-k (PaddleAudio lists the top 10) when none was given."""
    if panns and display.get("top_k") is None:
        from ..panns.params import DEFAULT_TOP_K as PANNS_TOP_K

        return {**display, "top_k": PANNS_TOP_K}
    return display


def resolve_display(given: dict[str, Any], stored: dict[str, Any] | None = None) -> DisplayOptions:
    """Combine display options: explicit values (not None) over stored ones over the defaults."""
    merged = {k: v for k, v in (stored or {}).items() if k in DisplayOptions.__dataclass_fields__}
    merged.update({k: v for k, v in given.items() if v is not None})
    return DisplayOptions.from_dict(merged)
