"""Backbones: the networks whose embedding sequences custom classifiers are trained on.

A backbone turns a waveform into a sequence of embedding rows, one every :attr:`Backbone.hop` seconds.
Custom models (``audiotagger train --audio``) are attention classifiers over that sequence; their model
file names the backbone, so tagging with them loads the right one by itself.

The registry maps a name to a :class:`BackboneSpec` (what the rows look like, and a loader). Importing
this module loads no TensorFlow; :func:`load_backbone` does. A later backend plugs in with
:func:`register_backbone` (or one entry in :data:`BACKBONES`), without touching training or tagging.

======================  =========  ======  ========  =================================================
name                    rows       width   dtype     rows from
======================  =========  ======  ========  =================================================
``vggish``              every 1 s  128     uint8     VGGish + PCA + 8-bit (the AudioSet release format)
``yamnet``              0.48 s     1024    float32   YAMNet's 0.96 s patches (``audiotagger.yamnet``)
``panns-cnn14``         every 1 s  2048    float32   CNN14 ``fc1`` on 1 s windows (also cnn10/cnn6: 512)
======================  =========  ======  ========  =================================================
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ModelError, ParameterError
from .params import PANNS_EMBED_HOP, PANNS_EMBED_WINDOW


@dataclass(frozen=True)
class BackboneSpec:
    """What a backbone's embedding rows look like, and where its implementation lives.

    Attributes
    ----------
    name : str
        Registry name (``--backbone``, recorded in custom model files).
    sample_rate : int
        Rate the waveform is decoded to.
    hop : float
        Seconds between rows.
    dim : int
        Width of one row.
    dtype : str
        ``"uint8"`` (quantised, scaled as ``(q - 128) / 128`` by the classifier) or ``"float32"``.
    loader : str
        ``"module:function"``; ``function(spec, **options)`` returns a :class:`Backbone`. The module is
        imported only when the backbone is loaded (an ImportError means "not installed").
    description : str
        One line for ``--help`` and ``models info``.
    """

    name: str
    sample_rate: int
    hop: float
    dim: int
    dtype: str
    loader: str
    description: str


BACKBONES: dict[str, BackboneSpec] = {}
"""Every known backbone by name, in registration order."""


def register_backbone(spec: BackboneSpec, *, replace: bool = False) -> BackboneSpec:
    """Add a backbone to the registry (ParameterError if the name is taken and not ``replace``)."""
    if spec.name in BACKBONES and not replace:
        raise ParameterError(f"backbone {spec.name!r} is already registered")
    if spec.dtype not in ("uint8", "float32"):
        raise ParameterError(f"backbone {spec.name!r}: dtype must be uint8 or float32, got {spec.dtype!r}")
    BACKBONES[spec.name] = spec
    return spec


def backbone_names() -> tuple[str, ...]:
    """Names of the registered backbones (the ``--backbone`` choices)."""
    return tuple(BACKBONES)


def get_backbone(name: str) -> BackboneSpec:
    """Return the spec called ``name``.

    Raises
    ------
    ParameterError
        Naming ``--backbone`` and the choices.
    """
    if name not in BACKBONES:
        raise ParameterError(f"--backbone: unknown {name!r} (choose from {', '.join(BACKBONES)})")
    return BACKBONES[name]


class Backbone:
    """A loaded backbone: waveform in, embedding rows out.

    Subclasses implement :meth:`embed_waveform` and :meth:`weights_files`.

    Attributes
    ----------
    spec : BackboneSpec
    """

    def __init__(self, spec: BackboneSpec):
        self.spec = spec

    name = property(lambda self: self.spec.name)
    hop = property(lambda self: self.spec.hop)
    dim = property(lambda self: self.spec.dim)
    sample_rate = property(lambda self: self.spec.sample_rate)
    dtype = property(lambda self: np.dtype(self.spec.dtype))

    def weights_files(self) -> list[Path]:
        """The files the weights were read from (their content goes into :meth:`identity`)."""
        raise NotImplementedError

    def embed_waveform(self, x: np.ndarray) -> np.ndarray:
        """Embed a mono waveform at :attr:`sample_rate`.

        Parameters
        ----------
        x : np.ndarray [shape=(samples,), dtype=float32]

        Returns
        -------
        np.ndarray [shape=(n, dim), dtype=uint8 or float32]
            Row ``k`` starts at ``k * hop`` seconds; audio shorter than one row gives one (padded) row.
        """
        raise NotImplementedError

    def embed_file(self, path: str | os.PathLike, start: float | None = None,
                   end: float | None = None) -> tuple[np.ndarray, float]:
        """Decode a media file (or the part from ``start`` to ``end`` seconds) and embed it.

        Returns
        -------
        rows : np.ndarray [shape=(n, dim)]
        duration : float
            Seconds of audio embedded.

        Raises
        ------
        AudioError
            The file cannot be decoded, or the part is empty or outside the file.
        """
        from .audio import load_audio
        from .errors import AudioError

        x = load_audio(path, self.sample_rate)
        if start is not None or end is not None:
            a = int(round((start or 0.0) * self.sample_rate))
            b = len(x) if end is None else min(len(x), int(round(end * self.sample_rate)))
            if a >= b:
                raise AudioError(f"{path}: segment {start or 0:g}-{'' if end is None else f'{end:g}'} s is "
                                 f"empty or outside the file ({len(x) / self.sample_rate:.2f} s)")
            x = x[a:b]
        return self.embed_waveform(x), len(x) / self.sample_rate

    @functools.cached_property
    def fingerprint(self) -> str:
        """SHA-256 of the backbone's name, row layout and weight files' bytes (embedding cache key)."""
        h = hashlib.sha256(repr((self.spec.name, self.spec.hop, self.spec.dim, self.spec.dtype,
                                 self.spec.sample_rate)).encode())
        for path in self.weights_files():
            h.update(file_sha256(path).encode())
        return h.hexdigest()

    def identity(self) -> dict[str, Any]:
        """JSON-serialisable description (name, hop, width, dtype, weights fingerprint)."""
        return {"name": self.name, "hop": self.hop, "dim": self.dim, "dtype": self.spec.dtype,
                "fingerprint": self.fingerprint}


@functools.lru_cache(maxsize=64)
def _sha256_cached(path: str, size: int, mtime_ns: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 hex digest of a file's bytes (remembered per path, size and mtime within a process)."""
    st = os.stat(path)
    return _sha256_cached(str(Path(path).resolve()), st.st_size, st.st_mtime_ns)


def load_backbone(name: str, **options: Any) -> Backbone:
    """Load the backbone called ``name``.

    Parameters
    ----------
    name : str
        A registered name (:func:`backbone_names`).
    **options
        Model-file options: ``checkpoint``, ``pca_params`` (VGGish), ``model_dir``, ``offline``; those a
        backbone does not use are ignored.

    Returns
    -------
    Backbone

    Raises
    ------
    ParameterError
        Unknown name.
    ModelError
        The backbone is not installed in this audiotagger, or its weights are missing or unreadable.
    """
    spec = get_backbone(name)
    module, _, func = spec.loader.partition(":")
    try:
        loader = getattr(importlib.import_module(module), func)
    except (ImportError, AttributeError) as exc:
        raise ModelError(f"backbone {name!r} is not installed ({type(exc).__name__}: {exc})") from None
    try:
        return loader(spec, **options)
    except ImportError as exc:            # the loader imports the backend's package
        raise ModelError(f"backbone {name!r} is not installed ({type(exc).__name__}: {exc})") from None


# --- VGGish -------------------------------------------------------------------------------------------


class VGGishBackbone(Backbone):
    """VGGish + PCA + uint8: exactly ``audiotagger embed``'s rows (hop 1 s).

    The weight files are resolved (and downloaded when allowed) at construction; the network is built on
    the first embedding, so a run whose embeddings are all cached never loads it.
    """

    def __init__(self, spec: BackboneSpec, *, checkpoint=None, pca_params=None, model_dir=None, offline=None,
                 **_other: Any):
        super().__init__(spec)
        from . import hub
        from .vggish.checkpoint import checkpoint_path

        self.checkpoint = checkpoint_path(checkpoint, model_dir=model_dir, offline=offline)
        self.pca_params = hub.locate("vggish-pca", path=pca_params, model_dir=model_dir, offline=offline)
        self._options = {"model_dir": model_dir, "offline": offline}

    @functools.cached_property
    def embedder(self):
        """The loaded :class:`~audiotagger.vggish.embed.VGGishEmbedder`."""
        from .vggish.embed import VGGishEmbedder

        return VGGishEmbedder(checkpoint=self.checkpoint, pca_params=self.pca_params, **self._options)

    def weights_files(self) -> list[Path]:
        """The VGGish checkpoint and the PCA parameters."""
        return [Path(self.checkpoint), Path(self.pca_params)]

    def embed_waveform(self, x: np.ndarray) -> np.ndarray:
        """One uint8 row per second (see :meth:`Backbone.embed_waveform`)."""
        return self.embedder.embed_waveform(x, self.sample_rate, hop=self.hop).embedding

    def embed_file(self, path, start=None, end=None):
        """Stream whole files through the VGGish embedder; decode parts (see :meth:`Backbone.embed_file`)."""
        if start is None and end is None:
            emb = self.embedder.embed_file(path, hop=self.hop)
            return emb.embedding, emb.duration
        return super().embed_file(path, start, end)


def _load_vggish(spec: BackboneSpec, **options: Any) -> VGGishBackbone:
    return VGGishBackbone(spec, **options)


# --- PANNs --------------------------------------------------------------------------------------------


class PannsBackbone(Backbone):
    """A PANNs network's ``fc1`` embedding of windows of ``PANNS_EMBED_WINDOW`` s every ``hop`` s.

    The checkpoint is resolved at construction, the network built on the first embedding.
    """

    def __init__(self, spec: BackboneSpec, *, checkpoint=None, model_dir=None, offline=None, **_other: Any):
        super().__init__(spec)
        from .panns.checkpoint import resolve_checkpoint

        _, self.checkpoint = resolve_checkpoint(spec.name, checkpoint, model_dir=model_dir, offline=offline)
        self._options = {"model_dir": model_dir, "offline": offline}

    @functools.cached_property
    def tagger(self):
        """The loaded :class:`~audiotagger.panns.tagging.PannsTagger`."""
        from .panns.tagging import PannsTagger

        return PannsTagger(self.spec.name, self.checkpoint, **self._options)

    def weights_files(self) -> list[Path]:
        """The ``.pth`` checkpoint."""
        return [Path(self.checkpoint)]

    def embed_waveform(self, x: np.ndarray) -> np.ndarray:
        """One float32 row per window start (``ceil(len / hop)`` windows, the last zero-padded)."""
        from .panns.tagging import iter_windows, window_samples

        window, hop = window_samples(PANNS_EMBED_WINDOW, self.hop, self.sample_rate)
        x = np.asarray(x, dtype=np.float32).reshape(-1)
        if x.size == 0:
            x = np.zeros(1, np.float32)
        windows = np.stack([w for _, w in iter_windows([x], window, hop)])
        return self.tagger.score_windows(windows, embedding=True)[1]


def _load_panns(spec: BackboneSpec, **options: Any) -> PannsBackbone:
    return PannsBackbone(spec, **options)


# --- YAMNet -------------------------------------------------------------------------------------------


class YamnetBackbone(Backbone):
    """YAMNet's 1024-d embedding of every 0.96 s patch, every 0.48 s (``audiotagger.yamnet``).

    The weights (``yamnet.h5``, or Google's ``.tflite`` converted once) are resolved at construction, the
    network built on the first embedding.
    """

    def __init__(self, spec: BackboneSpec, *, checkpoint=None, model_dir=None, offline=None, **_other: Any):
        super().__init__(spec)
        from .yamnet.weights import resolve_weights

        self.weights = resolve_weights("yamnet", checkpoint, model_dir=model_dir, offline=offline)
        self._model_dir = model_dir

    @functools.cached_property
    def model(self):
        """The loaded :class:`~audiotagger.yamnet.tagging.YamnetModel` (graph cached in ``model_dir``)."""
        from .yamnet.tagging import YamnetModel

        return YamnetModel(self.weights, model_dir=self._model_dir)

    def weights_files(self) -> list[Path]:
        """The ``yamnet.h5`` the weights are read from."""
        return [Path(self.weights)]

    def embed_waveform(self, x: np.ndarray) -> np.ndarray:
        """One float32 row per patch (``1 + ceil(max(0, n - 15600) / 7680)`` of them)."""
        return self.model.embed_waveform(np.asarray(x, dtype=np.float32), self.sample_rate).embeddings


def _load_yamnet(spec: BackboneSpec, **options: Any) -> YamnetBackbone:
    """YAMNet's backend lives in ``audiotagger.yamnet`` (ImportError where it is not installed)."""
    importlib.import_module(".yamnet.tagging", __package__)
    return YamnetBackbone(spec, **options)


for _spec in (
    BackboneSpec("vggish", 16000, 1.0, 128, "uint8", f"{__name__}:_load_vggish",
                 "VGGish + PCA + 8-bit, one row per second (the AudioSet release format)"),
    BackboneSpec("yamnet", 16000, 0.48, 1024, "float32", f"{__name__}:_load_yamnet",
                 "YAMNet (MobileNet v1), one 1024-d row per 0.96 s patch every 0.48 s"),
    BackboneSpec("panns-cnn14", 32000, PANNS_EMBED_HOP, 2048, "float32", f"{__name__}:_load_panns",
                 f"PANNs CNN14 fc1, {PANNS_EMBED_WINDOW:g} s windows every {PANNS_EMBED_HOP:g} s"),
    BackboneSpec("panns-cnn10", 32000, PANNS_EMBED_HOP, 512, "float32", f"{__name__}:_load_panns",
                 f"PANNs CNN10 fc1, {PANNS_EMBED_WINDOW:g} s windows every {PANNS_EMBED_HOP:g} s"),
    BackboneSpec("panns-cnn6", 32000, PANNS_EMBED_HOP, 512, "float32", f"{__name__}:_load_panns",
                 f"PANNs CNN6 fc1, {PANNS_EMBED_WINDOW:g} s windows every {PANNS_EMBED_HOP:g} s"),
):
    register_backbone(_spec)
