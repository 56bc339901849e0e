"""Load Google's TF1 VGGish checkpoint into the Keras model, once; reuse the converted weights after.

``vggish_model.ckpt`` is a **V1** TensorFlow checkpoint (one file, no ``.index``), read here with
``tf.train.load_checkpoint`` (which also reads V2 prefixes). The 18 variables ``vggish/conv1/weights``
... ``vggish/fc2/biases`` are checked by name and shape, copied into :func:`.model.build_vggish`'s
layers (slim's ``[kh, kw, in, out]`` and ``[in, out]`` layouts are Keras' own, and the channels-last
flatten keeps slim's H, W, C order), and saved as a Keras ``.weights.h5`` file in the model cache,
keyed by the checkpoint's identity, so the next run loads that instead.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import warnings
from pathlib import Path

import numpy as np

from .. import hub
from ..errors import AudioTaggerWarning, ModelError
from ..fileio import atomic_path
from . import params as P
from .model import LAYER_VARIABLES, build_vggish

CONVERTED_SUBDIR = "converted"
"""Folder of the model cache holding converted Keras weights."""
_FORMAT_TAG = "vggish-keras-v1"
"""Changes whenever the converted layout changes, which invalidates old cache entries."""


def checkpoint_path(checkpoint: str | os.PathLike | None = None, *, model_dir=None, offline=None) -> Path:
    """Resolve the checkpoint to use.

    Parameters
    ----------
    checkpoint : path-like, optional
        ``--checkpoint``: a V1 checkpoint file, or a V2 prefix (``model.ckpt`` with ``.index`` beside
        it). None: the model cache (downloaded there on first use when allowed).
    model_dir : path-like, optional
        ``--model-dir``: cache folder.
    offline : bool, optional
        ``--offline``: never download.

    Returns
    -------
    pathlib.Path

    Raises
    ------
    ModelError
        Not found; the message says where the official file is downloaded from and which flag or
        cache path takes it.
    """
    if checkpoint is not None:
        p = Path(checkpoint).expanduser()
        if not p.is_file() and Path(f"{p}.index").is_file():
            return p
    return hub.locate("vggish", path=checkpoint, model_dir=model_dir, offline=offline)


def read_checkpoint(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read and validate the 18 VGGish variables of a TF checkpoint.

    Parameters
    ----------
    path : path-like
        V1 checkpoint file or V2 prefix.

    Returns
    -------
    dict of str to np.ndarray
        Variable name -> float32 array of the shape in :data:`.params.CHECKPOINT_VARIABLES`.
        Other variables in the file (``global_step``, optimiser slots) are ignored.

    Raises
    ------
    ModelError
        Not a readable checkpoint, or a variable missing or of the wrong shape (named in the message).
    """
    import tensorflow as tf

    try:
        reader = tf.train.load_checkpoint(str(path))
        shapes = reader.get_variable_to_shape_map()
    except Exception as exc:  # tf raises DataLossError, NotFoundError, ValueError, ...
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"{path}: not a readable TensorFlow checkpoint ({first})") from None
    out = {}
    for name, shape in P.CHECKPOINT_VARIABLES.items():
        if name not in shapes:
            raise ModelError(f"{path}: variable {name} is missing (not a VGGish checkpoint?)")
        if tuple(shapes[name]) != shape:
            raise ModelError(f"{path}: variable {name} has shape {tuple(shapes[name])}, expected {shape}")
        value = np.asarray(reader.get_tensor(name))
        if not np.issubdtype(value.dtype, np.floating):
            raise ModelError(f"{path}: variable {name} has dtype {value.dtype}, expected float32")
        if not np.isfinite(value).all():
            raise ModelError(f"{path}: variable {name} holds NaN or infinite values")
        out[name] = value.astype(np.float32, copy=False)
    return out


def assign_checkpoint(model, variables: dict[str, np.ndarray]) -> None:
    """Copy checkpoint variables (from :func:`read_checkpoint`) into a :func:`build_vggish` model."""
    for layer_name, scope in LAYER_VARIABLES.items():
        model.get_layer(layer_name).set_weights([variables[f"{scope}/weights"], variables[f"{scope}/biases"]])


def checkpoint_key(path: str | os.PathLike) -> str:
    """Identity of a checkpoint for the conversion cache.

    The key hashes the absolute path, size and modification time of the file(s) and the converted
    layout version: replacing or touching the checkpoint invalidates the cached conversion, and
    hashing 277 MB of content (about as slow as the conversion itself) is avoided.
    """
    p = Path(path).expanduser().resolve()
    files = [p] if p.is_file() else sorted(p.parent.glob(p.name + ".*"))
    h = hashlib.sha256(_FORMAT_TAG.encode())
    for f in files:
        st = f.stat()
        h.update(f"{f}\0{st.st_size}\0{st.st_mtime_ns}\0".encode())
    return h.hexdigest()[:20]


def converted_path(path: str | os.PathLike, model_dir: str | os.PathLike | None = None) -> Path:
    """Cache file of the Keras weights converted from checkpoint ``path``."""
    return hub.cache_dir(model_dir) / CONVERTED_SUBDIR / f"vggish-{checkpoint_key(path)}.weights.h5"


def load_vggish(checkpoint: str | os.PathLike | None = None, *, model_dir=None, offline=None,
                use_cache: bool = True):
    """Build the Keras VGGish model with the weights of an official-format checkpoint.

    Parameters
    ----------
    checkpoint : path-like, optional
        ``vggish_model.ckpt`` (see :func:`checkpoint_path`).
    model_dir : path-like, optional
        Model cache folder (holds the checkpoint if not given, and the converted weights).
    offline : bool, optional
        Never download the checkpoint.
    use_cache : bool
        Load/save converted weights in the cache (conversion happens once per checkpoint).

    Returns
    -------
    keras.Model
        See :func:`.model.build_vggish`; ``model.vggish_checkpoint`` holds the resolved path.

    Raises
    ------
    ModelError
        Missing, unreadable or mis-shaped checkpoint.
    """
    path = checkpoint_path(checkpoint, model_dir=model_dir, offline=offline)
    model = build_vggish()
    cached = converted_path(path, model_dir) if use_cache else None
    if cached is not None and cached.is_file():
        try:
            model.load_weights(cached)
            model.vggish_checkpoint = path
            return model
        except Exception as exc:  # a damaged cache entry: rebuild it from the checkpoint
            warnings.warn(f"{cached}: unreadable converted weights ({exc}); converting again",
                          AudioTaggerWarning, stacklevel=2)
    assign_checkpoint(model, read_checkpoint(path))
    if cached is not None:
        with contextlib.suppress(OSError):
            with atomic_path(cached) as tmp:
                model.save_weights(tmp)
    model.vggish_checkpoint = path
    return model
