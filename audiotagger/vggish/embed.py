"""VGGish embeddings of files and waveforms: decode → log-mel examples → VGGish → PCA + uint8.

:class:`VGGishEmbedder` loads the network and the PCA parameters once. :meth:`~VGGishEmbedder.iter_embed`
streams any number of files through it: each file is decoded in chunks, its examples join one queue,
and the model runs on full batches drawn from that queue, so short files share batches and a long file
never holds more than a chunk of audio and a batch of examples in memory (plus its own (n, 128)
result, and its log-mels only when asked for). Results come back in input order; a file that fails
yields its error, and the others go on.
"""

from __future__ import annotations

import functools
import os
import sys
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..audio import stream_audio, to_mono
from ..errors import AudioError, AudioTaggerError
from . import params as P
from .features import ExampleStream, SecondSplicer, example_times, framing_hop, waveform_to_examples
from .model import DEFAULT_BATCH_SIZE


@dataclass
class Embedding:
    """VGGish embeddings of one input.

    Attributes
    ----------
    embedding : np.ndarray [shape=(n, 128), dtype=uint8]
        PCA-whitened, quantised embeddings (the AudioSet release format).
    raw : np.ndarray [shape=(n, 128), dtype=float32]
        Pre-activation VGGish outputs (before PCA).
    times : np.ndarray [shape=(n,), dtype=float64]
        Start of each example in seconds (``k * hop``).
    logmel : np.ndarray [shape=(n, 96, 64), dtype=float32] or None
        The log-mel examples, when asked for.
    duration : float
        Length of the decoded audio in seconds.
    hop : float
        Example hop in seconds.
    source : str
        File name (or ``"waveform"``).
    compat_truncate : bool
        Framed as the old AudioTagger did (``--compat-truncate``).
    """

    embedding: np.ndarray
    raw: np.ndarray
    times: np.ndarray
    logmel: np.ndarray | None
    duration: float
    hop: float = P.DEFAULT_HOP_SECONDS
    source: str = ""
    compat_truncate: bool = False

    def __len__(self) -> int:
        return len(self.embedding)


@dataclass
class _Job:
    source: Path
    hop: float
    save_logmel: bool
    compat_truncate: bool
    raw: list = field(default_factory=list)
    quantized: list = field(default_factory=list)
    logmel: list = field(default_factory=list)
    embedded: int = 0
    total: int | None = None
    duration: float = 0.0
    error: BaseException | None = None

    @property
    def finished(self) -> bool:
        return self.error is not None or (self.total is not None and self.embedded == self.total)


class VGGishEmbedder:
    """VGGish network + PCA parameters, loaded once, applied to many inputs.

    Parameters
    ----------
    checkpoint : path-like, optional
        ``--checkpoint``: the official ``vggish_model.ckpt`` (TF1 V1 format); default: the model cache.
    pca_params : path-like, optional
        ``--pca-params``: the official ``vggish_pca_params.npz``; default: the model cache.
    model_dir : path-like, optional
        ``--model-dir``: model cache folder.
    offline : bool, optional
        ``--offline``: never download.
    batch_size : int, optional
        Examples per network call (default: 16 with TensorFlow; with ONNX Runtime 256, the batch
        the dense layers see, the convolutions running 16 at a time).
    engine : {"onnx", "tf"}, optional
        ``--engine`` (default onnx; see :mod:`audiotagger.engine`).
    precision : {"fp32", "int8"}, optional
        ``--precision`` (onnx only).
    resampler : {"soxr", "resampy"}, optional
        ``--resampler`` for inputs not at 16 kHz (see :func:`audiotagger.audio.stream_audio`).

    Raises
    ------
    ModelError
        A model file is missing (the message gives the official URL and the flag), unreadable, or
        of the wrong shape.
    """

    def __init__(self, checkpoint=None, pca_params=None, model_dir=None, offline=None,
                 batch_size: int | None = None, engine: str | None = None, precision: str | None = None,
                 resampler: str | None = None):
        from ..audio import check_resampler
        from ..engine import check_engine
        from .checkpoint import checkpoint_path
        from .postprocess import Postprocessor

        self.engine, self.precision = check_engine(engine, precision)
        self.resampler = check_resampler(resampler)
        path = checkpoint_path(checkpoint, model_dir=model_dir, offline=offline)  # fail fast, before TF
        self.postprocessor = Postprocessor(pca_params, model_dir=model_dir, offline=offline)
        self.pca_params = self.postprocessor.path
        self.checkpoint = path
        if self.engine == "onnx":
            from ..engine.models import vggish_graphs
            from ..engine.runtime import VGGishOnnxRunner

            folder = vggish_graphs(path, model_dir, precision=self.precision)
            self.model = None
            sizes = {} if batch_size is None else {"batch_size": batch_size}
            self.runner = VGGishOnnxRunner(folder, **sizes)
            return
        from .checkpoint import load_vggish
        from .model import VGGishRunner

        self.model = load_vggish(path, model_dir=model_dir, offline=offline)
        self.runner = VGGishRunner(self.model, batch_size or DEFAULT_BATCH_SIZE)

    @classmethod
    def from_model(cls, model, postprocessor, batch_size: int = DEFAULT_BATCH_SIZE) -> VGGishEmbedder:
        """Assemble an embedder from a built Keras model and a :class:`.postprocess.Postprocessor`.

        For benchmarks and tests that use seeded random weights instead of a checkpoint.
        """
        from .model import VGGishRunner

        self = cls.__new__(cls)
        self.engine, self.precision, self.resampler = "tf", "fp32", "soxr"
        self.model, self.postprocessor = model, postprocessor
        self.runner = VGGishRunner(model, batch_size)
        self.checkpoint = getattr(model, "vggish_checkpoint", None)
        self.pca_params = postprocessor.path
        return self

    @classmethod
    def from_runner(cls, runner, postprocessor, engine: str = "onnx",
                    precision: str = "fp32") -> VGGishEmbedder:
        """Assemble an embedder from any runner (``runner(examples) -> raw``, ``runner.batch_size``).

        For benchmarks and tests that build graphs from seeded weights instead of a checkpoint.
        """
        self = cls.__new__(cls)
        self.engine, self.precision, self.resampler = engine, precision, "soxr"
        self.model, self.postprocessor, self.runner = None, postprocessor, runner
        self.checkpoint, self.pca_params = None, postprocessor.path
        return self

    @property
    def batch_size(self) -> int:
        """Examples per network call."""
        return self.runner.batch_size

    def embed_examples(self, examples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Run the network and the post-processing on log-mel examples.

        Parameters
        ----------
        examples : np.ndarray [shape=(n, 96, 64)]
            Log-mel examples.

        Returns
        -------
        embedding : np.ndarray [shape=(n, 128), dtype=uint8]
        raw : np.ndarray [shape=(n, 128), dtype=float32]
        """
        raw = self.runner(examples)
        return self.postprocessor(raw), raw

    def embed_waveform(self, x: np.ndarray, sr: float, hop: float = P.DEFAULT_HOP_SECONDS,
                       save_logmel: bool = False, compat_truncate: bool = False,
                       channels_axis: int | None = None) -> Embedding:
        """Embed an in-memory signal.

        Parameters
        ----------
        x : np.ndarray [shape=(n,), (n, channels) or (channels, n)]
            Float samples in [-1, 1]; channels are averaged (``channels_axis``: see
            :func:`audiotagger.audio.to_mono`; None infers it and refuses an ambiguous shape).
        sr : float
            Sample rate (resampled to 16 kHz with libsoxr VHQ if different).
        hop : float
            Example hop in seconds: 1.0 (one example per second) or 0.96 (official framing).
        save_logmel : bool
            Keep the log-mel examples in the result.
        compat_truncate : bool
            Frame as the old AudioTagger did (:class:`.features.SecondSplicer`, then hop 0.96 s): one
            example per second; ``hop`` must stay 1.0.

        Returns
        -------
        Embedding

        Raises
        ------
        AudioError
            Empty or non-finite input.
        """
        x = np.asarray(x)
        if x.size == 0:
            raise AudioError("waveform: no samples")
        x = to_mono(x, "waveform", channels_axis)
        frame_hop, duration = framing_hop(hop, compat_truncate), len(x) / float(sr)
        if compat_truncate:
            x = SecondSplicer()(x, int(sr), last=True)
        examples = waveform_to_examples(x, sr, frame_hop, self.resampler)
        embedding, raw = self.embed_examples(examples)
        return Embedding(embedding, raw, example_times(len(raw), hop),
                         examples if save_logmel else None, duration, float(hop), "waveform", compat_truncate)

    def embed_file(self, path: str | os.PathLike, hop: float = P.DEFAULT_HOP_SECONDS,
                   save_logmel: bool = False, compat_truncate: bool = False, strict: bool = False,
                   final_partial: float | None = None) -> Embedding:
        """Embed a media file (any format ffmpeg reads), streaming it.

        Parameters
        ----------
        path : path-like
            Audio or video file.
        hop : float
            Example hop in seconds (1.0 or 0.96).
        save_logmel : bool
            Keep the log-mel examples in the result.
        compat_truncate : bool
            See :meth:`embed_waveform`.
        strict, final_partial
            See :meth:`iter_embed`.

        Returns
        -------
        Embedding

        Raises
        ------
        AudioError
            The file cannot be decoded (the message names it and the problem).
        """
        ((_, result),) = self.iter_embed([path], hop=hop, save_logmel=save_logmel,
                                         compat_truncate=compat_truncate, strict=strict,
                                         final_partial=final_partial)
        if isinstance(result, BaseException):
            raise result
        return result

    def iter_embed(self, sources: Iterable[str | os.PathLike], *, hop: float = P.DEFAULT_HOP_SECONDS,
                   save_logmel: bool = False, progress: bool = False, compat_truncate: bool = False,
                   strict: bool = False, final_partial: float | None = None
                   ) -> Iterator[tuple[Path, Embedding | AudioTaggerError]]:
        """Embed many files; each file's result is yielded as soon as that file is done.

        Examples run in full batches while a file streams; its last, partial batch runs when the file
        ends (the network has a free batch dimension, so a partial batch costs in proportion to its
        size), so a finished file's result never waits for the next file to be read.

        Parameters
        ----------
        sources : iterable of path-like
            Media files, processed in order (lazily: the iterable is read as results are consumed).
        hop : float
            Example hop in seconds.
        save_logmel : bool
            Keep the log-mel examples in the results.
        progress : bool
            Show a progress bar per file on stderr: audio seconds embedded, of the container's stated
            duration (with the rate and an ETA where the container states it).
        compat_truncate : bool
            See :meth:`embed_waveform`.
        strict : bool
            Refuse damaged media instead of keeping what decodes with a warning
            (:func:`audiotagger.audio.stream_audio`).
        final_partial : float, optional
            Seconds of audio after the last complete example that make one more, zero-padded example
            (see :class:`.features.ExampleStream`); None keeps only complete examples.

        Yields
        ------
        source : pathlib.Path
            The input, in input order.
        result : Embedding or AudioTaggerError
            The embeddings, or the error (an :class:`AudioTaggerError` or ``OSError``) that made this
            input fail; the other inputs are not affected.
        """
        frame_hop = framing_hop(hop, compat_truncate)  # a bad hop is a usage error for every input
        from tqdm.auto import tqdm

        bar = tqdm(desc="embedding", unit="audio-s", disable=not progress, leave=False, file=sys.stderr,
                   bar_format="{desc}: {n:.0f}/{total_fmt} {unit} [{elapsed}<{remaining}, {rate_fmt}]")
        pending: deque[_Job] = deque()
        queue: deque[tuple[_Job, np.ndarray]] = deque()

        def enqueue(job: _Job, examples: np.ndarray) -> None:
            if len(examples):
                queue.append((job, examples))
                if job.save_logmel:
                    job.logmel.append(examples)

        def run(force: bool) -> None:
            while queue:
                size = sum(len(ex) for _, ex in queue)
                if size < self.batch_size and not force:
                    return
                parts, owners = [], []
                need = self.batch_size
                while queue and need:
                    job, ex = queue.popleft()
                    if len(ex) > need:
                        queue.appendleft((job, ex[need:]))
                        ex = ex[:need]
                    parts.append(ex)
                    owners.append((job, len(ex)))
                    need -= len(ex)
                raw = self.runner(np.concatenate(parts) if len(parts) > 1 else parts[0])
                bar.update(len(raw) * float(hop))
                quantized = self.postprocessor(raw)  # per batch: no float64 copy of a whole long file
                start = 0
                for job, count in owners:
                    job.raw.append(raw[start:start + count])
                    job.quantized.append(quantized[start:start + count])
                    job.embedded += count
                    start += count

        def finished() -> Iterator[tuple[Path, Embedding | AudioTaggerError]]:
            while pending and pending[0].finished:
                job = pending.popleft()
                yield job.source, job.error if job.error is not None else self._result(job)

        for source in sources:
            job = _Job(Path(source), float(hop), save_logmel, compat_truncate)
            pending.append(job)
            try:
                stream = ExampleStream(frame_hop, name=str(job.source),
                                       final_partial=None if compat_truncate else final_partial)
                splicer = SecondSplicer() if compat_truncate else None
                info: dict = {}
                for chunk in stream_audio(job.source, pre_resample=splicer, strict=strict, info=info,
                                          resampler=self.resampler):
                    if "duration" in info:       # this file's stated length: a total and an ETA for its bar
                        bar.reset(total=info.pop("duration"))
                        bar.set_description(job.source.name[-40:], refresh=False)
                    enqueue(job, stream.push(chunk))
                    run(False)
                enqueue(job, stream.finish())
                job.total = stream.num_examples
                job.duration = (splicer.num_samples / splicer.rate if splicer else
                                stream.num_samples / P.SAMPLE_RATE)
            except (AudioTaggerError, OSError) as exc:
                job.error = exc
                kept = [(j, ex) for j, ex in queue if j is not job]
                queue.clear()
                queue.extend(kept)
                job.raw.clear()
                job.quantized.clear()
                job.logmel.clear()
            run(True)       # this file's last partial batch now: its result must not wait for the next file
            yield from finished()
        run(True)
        bar.close()
        yield from finished()

    def _result(self, job: _Job) -> Embedding:
        raw = np.concatenate(job.raw) if job.raw else np.zeros((0, P.EMBEDDING_SIZE), np.float32)
        quantized = (np.concatenate(job.quantized) if job.quantized
                     else np.zeros((0, P.EMBEDDING_SIZE), np.uint8))
        times = example_times(len(raw), job.hop)
        logmel = None
        if job.save_logmel:
            logmel = (np.concatenate(job.logmel) if job.logmel
                      else np.zeros((0, P.NUM_FRAMES, P.NUM_BANDS), np.float32))
        return Embedding(quantized, raw, times, logmel, job.duration, job.hop, str(job.source),
                         job.compat_truncate)


@functools.lru_cache(maxsize=1)
def _embedder(checkpoint, pca_params, model_dir, offline, engine=None, precision=None) -> VGGishEmbedder:
    return VGGishEmbedder(checkpoint, pca_params, model_dir, offline, engine=engine, precision=precision)


def embed_file(path: str | os.PathLike, *, checkpoint=None, pca_params=None, model_dir=None, offline=None,
               hop: float = P.DEFAULT_HOP_SECONDS, save_logmel: bool = False,
               compat_truncate: bool = False, engine: str | None = None,
               precision: str | None = None) -> Embedding:
    """Embed a media file (the library side of ``audiotagger embed``).

    The embedder of the last call is kept, so repeated calls with the same model files load them
    once.

    Parameters
    ----------
    path : path-like
        Audio or video file.
    checkpoint, pca_params, model_dir, offline
        See :class:`VGGishEmbedder` (``--checkpoint``, ``--pca-params``, ``--model-dir``, ``--offline``).
    hop : float
        ``--hop``: 1.0 (default) or 0.96.
    save_logmel : bool
        ``--save-logmel``.
    compat_truncate : bool
        ``--compat-truncate``: the old AudioTagger's framing (see :meth:`VGGishEmbedder.embed_waveform`).
    engine, precision : str, optional
        ``--engine`` (onnx, tf) and ``--precision`` (fp32, int8).

    Returns
    -------
    Embedding
    """
    return _embedder(_key(checkpoint), _key(pca_params), _key(model_dir), offline, engine,
                     precision).embed_file(path, hop=hop, save_logmel=save_logmel,
                                           compat_truncate=compat_truncate)


def embed_waveform(x: np.ndarray, sr: float, *, checkpoint=None, pca_params=None, model_dir=None,
                   offline=None, hop: float = P.DEFAULT_HOP_SECONDS, save_logmel: bool = False,
                   compat_truncate: bool = False, engine: str | None = None,
                   precision: str | None = None) -> Embedding:
    """Embed an in-memory signal; see :func:`embed_file` and :meth:`VGGishEmbedder.embed_waveform`.

    Parameters
    ----------
    x : np.ndarray [shape=(n,) or (n, channels)]
        Float samples in [-1, 1].
    sr : float
        Sample rate.
    checkpoint, pca_params, model_dir, offline, hop, save_logmel, compat_truncate, engine, precision
        As for :func:`embed_file`.

    Returns
    -------
    Embedding
    """
    return _embedder(_key(checkpoint), _key(pca_params), _key(model_dir), offline, engine,
                     precision).embed_waveform(
        x, sr, hop=hop, save_logmel=save_logmel, compat_truncate=compat_truncate)


def _key(path) -> str | None:
    return None if path is None else str(Path(path).expanduser().resolve())


def save_embedding(emb: Embedding, path: str | os.PathLike, *, format: str = "npz",
                   overwrite: bool = False) -> Path:
    """Write an :class:`Embedding` atomically.

    Parameters
    ----------
    emb : Embedding
        The result.
    path : path-like
        Destination (``<stem>.npz`` or ``<stem>.tfrecord``).
    format : {"npz", "tfrecord"}
        ``npz``: arrays ``embedding``, ``raw``, ``times`` (and ``logmel`` when present), plus
        ``duration`` and ``hop`` scalars (and ``compat_truncate`` = True for that framing).
        ``tfrecord``: one AudioSet release ``SequenceExample`` with ``video_id`` = the file stem,
        start 0, end = duration, no labels.
    overwrite : bool
        Replace an existing file (otherwise ``FileExistsError``, and nothing is written).

    Returns
    -------
    pathlib.Path
    """
    from ..fileio import atomic_save_npz

    path = Path(path)
    if format == "npz":
        arrays = {"embedding": emb.embedding, "raw": emb.raw, "times": emb.times,
                  "duration": np.float64(emb.duration), "hop": np.float64(emb.hop)}
        if emb.logmel is not None:
            arrays["logmel"] = emb.logmel
        if emb.compat_truncate:
            arrays["compat_truncate"] = np.bool_(True)
        return atomic_save_npz(path, overwrite=overwrite, **arrays)
    if format == "tfrecord":
        from ..records import encode_sequence_example, write_tfrecord

        stem = Path(emb.source).stem if emb.source else path.stem
        record = encode_sequence_example(stem, emb.embedding, 0.0, emb.duration, ())
        return write_tfrecord(path, [record], overwrite=overwrite)
    from ..errors import ParameterError

    raise ParameterError(f"format: must be 'npz' or 'tfrecord', got {format!r}")
