"""Load Google's TF1 VGGish checkpoint into the Keras model, once; reuse the converted weights after.

``vggish_model.ckpt`` is a **V1** TensorFlow checkpoint (one file, no ``.index``), read here with
``tf.train.load_checkpoint`` (which also reads V2 prefixes). The 18 variables ``vggish/conv1/weights``
... ``vggish/fc2/biases`` are checked by name and shape and, on first use, converted one at a time to
an HDF5 file of the same named float32 arrays in the model cache, keyed by the checkpoint's content.
Every load then builds :func:`.model.build_vggish` and copies that file into its variables in 4 MB
blocks (slim's ``[kh, kw, in, out]`` and ``[in, out]`` layouts are Keras' own, and the channels-last
flatten keeps slim's H, W, C order), so the process holds the weights once: peak RSS stays at
TensorFlow + model + a few MB (the one-off conversion peaks at about 1.2 GiB, before the model exists).
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from .. import hub
from ..errors import AudioTaggerWarning, ModelError
from ..fileio import atomic_path
from . import params as P
from .model import LAYER_VARIABLES, build_vggish

CONVERTED_SUBDIR = "converted"
"""Folder of the model cache holding converted Keras weights."""
_FORMAT_TAG = "vggish-h5-v1"
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


def iter_checkpoint(path: str | os.PathLike) -> Iterator[tuple[str, np.ndarray]]:
    """Validate a TF checkpoint's VGGish variables, then yield them one at a time.

    All names and shapes are checked before the first value is read; yielding one array at a time
    keeps at most one variable (``fc1_1``: 201 MB) in memory besides the model.

    Parameters
    ----------
    path : path-like
        V1 checkpoint file or V2 prefix.

    Yields
    ------
    name : str
        Checkpoint variable name (order of :data:`.params.CHECKPOINT_VARIABLES`).
    value : np.ndarray [dtype=float32]
        Its value, of the shape in :data:`.params.CHECKPOINT_VARIABLES`. Other variables in the file
        (``global_step``, optimiser slots) are ignored.

    Raises
    ------
    ModelError
        Not a readable checkpoint, or a variable missing, of the wrong shape or dtype, or not finite
        (named in the message).
    """
    import tensorflow as tf

    try:
        reader = tf.train.load_checkpoint(str(path))
        shapes = reader.get_variable_to_shape_map()
        dtypes = reader.get_variable_to_dtype_map()
    except Exception as exc:  # tf raises DataLossError, NotFoundError, ValueError, ...
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"{path}: not a readable TensorFlow checkpoint ({first})") from None
    for name, shape in P.CHECKPOINT_VARIABLES.items():
        if name not in shapes:
            raise ModelError(f"{path}: variable {name} is missing (not a VGGish checkpoint?)")
        if tuple(shapes[name]) != shape:
            raise ModelError(f"{path}: variable {name} has shape {tuple(shapes[name])}, expected {shape}")
        if not dtypes[name].is_floating:
            raise ModelError(f"{path}: variable {name} has dtype {dtypes[name].name}, expected float32")
    for name in P.CHECKPOINT_VARIABLES:
        try:
            value = np.asarray(reader.get_tensor(name)).astype(np.float32, copy=False)
        except Exception as exc:  # tf raises DataLossError, NotFoundError, ... for a damaged file
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelError(f"{path}: corrupt checkpoint: variable {name} cannot be read ({first})"
                             ) from None
        if not np.isfinite(value).all():
            raise ModelError(f"{path}: variable {name} holds NaN or infinite values")
        yield name, value
        del value  # at most one variable alive while the caller writes it


def read_checkpoint(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read and validate the 18 VGGish variables of a TF checkpoint (see :func:`iter_checkpoint`).

    Returns
    -------
    dict of str to np.ndarray
        Variable name -> float32 array.
    """
    return dict(iter_checkpoint(path))


def assign_variable(variable, source, max_bytes: int = 4 << 20) -> None:
    """Copy ``source`` into a Keras variable in row blocks of at most ``max_bytes``.

    Parameters
    ----------
    variable : keras.Variable
        Destination (TensorFlow backend).
    source : np.ndarray or h5py.Dataset
        Value of the variable's shape; read block by block, so neither a second full copy nor a
        temporary tensor of the whole value is made.
    max_bytes : int
        Block size.
    """
    import tensorflow as tf

    shape = tuple(variable.shape)
    if tuple(source.shape) != shape:
        raise ModelError(f"{variable.path}: value of shape {tuple(source.shape)}, expected {shape}")
    row_bytes = 4 * int(np.prod(shape[1:], dtype=np.int64))
    step = max(1, max_bytes // row_bytes)
    handle = variable.value.handle
    # A raw strided-slice assignment writes into the variable's buffer; ``variable[a:b].assign``
    # and ``variable.assign`` read the variable first and then copy all of it on write. The slice
    # assignment puts the variable in TF's copy-on-read mode (every read would copy it, and a
    # copy of fc1_1 stayed resident: +200 MB), which DisableCopyOnRead turns off again.
    for start in range(0, shape[0], step):
        stop = min(start + step, shape[0])
        block = np.ascontiguousarray(source[start:stop], dtype=np.float32)
        tf.raw_ops.ResourceStridedSliceAssign(ref=handle, begin=[start] + [0] * (len(shape) - 1),
                                              end=[stop, *shape[1:]], strides=[1] * len(shape), value=block)
    tf.raw_ops.DisableCopyOnRead(resource=handle)


def _layer_variables(model) -> dict:
    out = {}
    for layer_name, scope in LAYER_VARIABLES.items():
        layer = model.get_layer(layer_name)
        out[f"{scope}/weights"], out[f"{scope}/biases"] = layer.kernel, layer.bias
    return out


def assign_checkpoint(model, variables) -> None:
    """Copy checkpoint variables into a :func:`build_vggish` model.

    Parameters
    ----------
    model : keras.Model
        From :func:`.model.build_vggish`.
    variables : mapping or iterable of (name, value)
        From :func:`read_checkpoint` / :func:`iter_checkpoint`, or an open converted ``.h5`` file.
    """
    targets = _layer_variables(model)
    items = variables.items() if hasattr(variables, "items") else variables
    for name, value in items:
        assign_variable(targets[name], value)


_KEY_INDEX = "keys.json"
"""File of the converted folder remembering each checkpoint file's content digest by path, size,
modification time and inode, so that the 277 MB are hashed once per file, not at every load."""


def _content_digest(files: list[Path], index_path: Path | None) -> str:
    """SHA-256 over the files' contents (with their names relative to the first), memoised in the index."""
    stats = [f.stat() for f in files]
    ident = json.dumps([[str(f), st.st_size, st.st_mtime_ns, st.st_ino]
                        for f, st in zip(files, stats, strict=True)])
    index: dict[str, str] = {}
    if index_path is not None:
        try:
            index = json.loads(index_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            index = {}
        if isinstance(index, dict) and isinstance(index.get(ident), str):
            return index[ident]
    h = hashlib.sha256(_FORMAT_TAG.encode())
    for f in files:
        h.update(f"\0{f.name.removeprefix(files[0].name)}\0".encode())
        with open(f, "rb") as fh:
            while block := fh.read(8 << 20):
                h.update(block)
    digest = h.hexdigest()
    if index_path is not None:
        from ..fileio import atomic_write_text

        index = {k: v for k, v in index.items() if _still_there(k)} if isinstance(index, dict) else {}
        index[ident] = digest
        try:
            atomic_write_text(index_path, json.dumps(index, indent=0, sort_keys=True) + "\n")
        except OSError:      # a read-only cache: hash again next time
            pass
    return digest


def _still_there(ident: str) -> bool:
    try:
        return all(Path(entry[0]).exists() for entry in json.loads(ident))
    except (ValueError, TypeError, IndexError, KeyError):
        return False


def checkpoint_key(path: str | os.PathLike, model_dir: str | os.PathLike | None = None) -> str:
    """Identity of a checkpoint for the conversion cache: a digest of its **content**.

    The same checkpoint at another path (or copied, or touched) maps to the same converted file, so
    the cache never holds two 288 MB conversions of one checkpoint, and a changed file (same path,
    new content) never reuses a stale one. The digest is remembered per path, size, modification time
    and inode (:data:`_KEY_INDEX`), so only a new or changed file is hashed.
    """
    p = Path(path).expanduser().resolve()
    files = [p] if p.is_file() else sorted(p.parent.glob(p.name + ".*"))
    index = hub.cache_dir(model_dir) / CONVERTED_SUBDIR / _KEY_INDEX
    try:
        index.parent.mkdir(parents=True, exist_ok=True)
    except OSError:
        pass
    return _content_digest(files, index if index.parent.is_dir() else None)[:20]


def converted_path(path: str | os.PathLike, model_dir: str | os.PathLike | None = None) -> Path:
    """Cache file of the weights converted from checkpoint ``path``."""
    return hub.cache_dir(model_dir) / CONVERTED_SUBDIR / f"vggish-{checkpoint_key(path, model_dir)}.h5"


def load_converted(model, cached: str | os.PathLike) -> None:
    """Load weights converted by :func:`load_vggish` (HDF5, datasets named like the checkpoint).

    Parameters
    ----------
    model : keras.Model
        From :func:`.model.build_vggish`.
    cached : path-like
        The converted file.

    Raises
    ------
    ModelError
        A variable is missing or of the wrong shape.
    """
    import h5py

    with h5py.File(cached, "r") as f:
        for name, shape in P.CHECKPOINT_VARIABLES.items():
            if name not in f or tuple(f[name].shape) != shape:
                raise ModelError(f"{cached}: converted weights lack {name}")
        assign_checkpoint(model, ((name, f[name]) for name in P.CHECKPOINT_VARIABLES))


def convert_checkpoint(path: str | os.PathLike, out: str | os.PathLike) -> Path:
    """Convert a VGGish checkpoint to the HDF5 file :func:`load_converted` reads, one variable at a time.

    Parameters
    ----------
    path : path-like
        The checkpoint (validated by :func:`iter_checkpoint`).
    out : path-like
        Destination, written atomically.

    Returns
    -------
    pathlib.Path
        ``out``.
    """
    import h5py

    with atomic_path(out) as tmp, h5py.File(tmp, "w") as f:
        f.attrs["source"] = str(path)
        f.attrs["format"] = _FORMAT_TAG
        for name, value in iter_checkpoint(path):
            f.create_dataset(name, data=value)
    return Path(out)


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

    Notes
    -----
    The converted weights are an HDF5 file of float32 datasets named like the checkpoint variables,
    read in 4 MB row blocks straight into the model's variables. Keras' own ``load_weights`` made
    two extra copies of the 288 MB of weights (peak RSS 1.5 GB instead of about 0.95 GB).
    """
    path = checkpoint_path(checkpoint, model_dir=model_dir, offline=offline)
    cached = converted_path(path, model_dir) if use_cache else None
    if cached is not None and not cached.is_file():
        try:  # before the model exists, so the conversion's buffers never add to its memory
            convert_checkpoint(path, cached)
        except OSError:  # cache folder not writable: load straight from the checkpoint
            cached = None
    model = build_vggish()
    if cached is not None:
        try:
            load_converted(model, cached)
            model.vggish_checkpoint = path
            return model
        except (OSError, ModelError) as exc:  # a damaged cache entry: load from the checkpoint
            warnings.warn(f"{cached}: unreadable converted weights ({exc}); reading the checkpoint",
                          AudioTaggerWarning, stacklevel=2)
            cached.unlink(missing_ok=True)
    assign_checkpoint(model, iter_checkpoint(path))
    model.vggish_checkpoint = path
    return model
