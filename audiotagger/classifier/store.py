"""The classifier file format: one ``.npz`` holding the model config (JSON) and its weights.

No pickle and no Keras-version-specific archive: ``config`` is a JSON string, ``weight_names`` a JSON list
and ``w000``, ``w001``, ... the arrays of ``model.get_weights()`` (float32 or float16). Training
checkpoints are the same file with extra ``opt*``/``sampler_*`` arrays and a ``train_state`` JSON string,
so every checkpoint the trainer writes is also a classifier :func:`load_classifier` can read.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import numpy as np

from ..errors import ModelError
from ..fileio import atomic_save_npz

FORMAT = "audiotagger-classifier"
FORMAT_VERSION = 1


THRESHOLDS = "thresholds"
"""Optional member: per-class decision thresholds, float32 (classes,), chosen on validation data
(``tag --threshold auto``); how they were chosen is in ``meta["thresholds"]``."""


def model_arrays(model, config: dict, *, dtype: str = "float32", extra: dict | None = None,
                 thresholds=None) -> dict:
    """Return the named arrays that describe ``model`` (for :func:`write_model` or a checkpoint).

    Parameters
    ----------
    model : keras.Model
        Built by :func:`audiotagger.classifier.models.build_model` from ``config``.
    config : dict
        JSON-serialisable model config (``build_model`` keywords plus optional ``name``/``description``).
    dtype : {"float32", "float16"}
        Storage type of floating-point weights.
    extra : dict, optional
        JSON-serialisable metadata stored as ``meta``.
    thresholds : array_like, shape (classes,), optional
        Per-class thresholds in [0, 1] (see :data:`THRESHOLDS`).
    """
    arrays = {
        "format": np.array(FORMAT),
        "format_version": np.array(FORMAT_VERSION),
        "config": np.array(json.dumps(config, sort_keys=True)),
        "weight_names": np.array(json.dumps(weight_paths(model))),
        "meta": np.array(json.dumps(extra or {}, sort_keys=True)),
    }
    for i, w in enumerate(model.get_weights()):
        arrays[f"w{i:03d}"] = w.astype(dtype) if np.issubdtype(w.dtype, np.floating) else w
    if thresholds is not None:
        arrays[THRESHOLDS] = check_thresholds(thresholds, int(model.output_shape[-1]), "thresholds")
    return arrays


def weight_paths(model) -> list[str]:
    """Unique names of ``model.weights``, in order.

    ``layer/variable``, and ``member_i/layer/variable`` for the weights of an ensemble's sub-models
    (Keras names each sub-model's variables alone, so its own paths repeat across members).
    """
    names = []
    for layer in model.layers:
        inner = getattr(layer, "layers", None)
        names += [f"{layer.name}/{w.path}" if inner is not None else w.path for w in layer.weights]
    if len(names) != len(model.weights):   # a layer shared between models: fall back to Keras' own paths
        return [w.path for w in model.weights]
    return names


def check_thresholds(values, num_classes: int, source) -> np.ndarray:
    """Per-class thresholds as float32 ``(num_classes,)`` in [0, 1]; ModelError naming ``source`` if not."""
    values = np.asarray(values)
    if values.shape != (num_classes,) or not np.issubdtype(values.dtype, np.floating) \
            or not np.isfinite(values).all() or values.min() < 0 or values.max() > 1:
        raise ModelError(f"{source}: per-class thresholds must be {num_classes} numbers in [0, 1], got "
                         f"{values.dtype} {values.shape}")
    return values.astype(np.float32)


def write_model(path: str | os.PathLike, model, config: dict, *, dtype: str = "float32",
                extra: dict | None = None, thresholds=None) -> Path:
    """Save ``model`` atomically as a classifier ``.npz`` and return the path.

    ``thresholds``: optional per-class thresholds, see :data:`THRESHOLDS`.
    """
    return atomic_save_npz(path, **model_arrays(model, config, dtype=dtype, extra=extra,
                                                thresholds=thresholds))


def read_thresholds(path: str | os.PathLike) -> np.ndarray | None:
    """The per-class thresholds stored in a classifier ``.npz``, float32 ``(classes,)``; None if it has none.

    Cheap (reads one member, no TensorFlow). Raises ModelError if the file is unreadable or its
    thresholds are malformed.
    """
    path = Path(path)
    if path.suffix.lower() != ".npz":
        return None
    try:
        with np.load(path, allow_pickle=False) as npz:
            if THRESHOLDS not in npz.files:
                return None
            values = npz[THRESHOLDS]
            config = json.loads(str(npz["config"]))
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as exc:
        raise ModelError(f"{path}: not an audiotagger classifier file ({type(exc).__name__}: {exc})"
                         ) from None
    return check_thresholds(values, int(config.get("num_classes", values.shape[0] if values.ndim else 0)),
                            path)


def read_model_file(path: str | os.PathLike) -> tuple[dict, list[np.ndarray], dict, np.lib.npyio.NpzFile]:
    """Read and check a classifier ``.npz``.

    Returns
    -------
    config : dict
    weights : list of numpy.ndarray
        In ``model.get_weights()`` order.
    meta : dict
    npz : numpy.lib.npyio.NpzFile
        The open file (for extra arrays such as a checkpoint's optimizer state); caller closes it.

    Raises
    ------
    ModelError
        If the file is missing, not an npz, or not a classifier file.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: classifier file not found")
    try:
        npz = np.load(path, allow_pickle=False)
        if str(npz["format"]) != FORMAT:
            raise KeyError("format")
        config = json.loads(str(npz["config"]))
        meta = json.loads(str(npz["meta"])) if "meta" in npz.files else {}
        n = len(json.loads(str(npz["weight_names"])))
        weights = [npz[f"w{i:03d}"] for i in range(n)]
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as exc:
        raise ModelError(f"{path}: not an audiotagger classifier file ({type(exc).__name__}: {exc})"
                         ) from None
    return config, weights, meta, npz


def read_config(path: str | os.PathLike) -> tuple[dict, dict]:
    """Read only the ``config`` and ``meta`` of a classifier ``.npz`` (no weights; cheap, no TensorFlow).

    Raises
    ------
    ModelError
        As :func:`read_model_file`.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: classifier file not found")
    try:
        with np.load(path, allow_pickle=False) as npz:
            if str(npz["format"]) != FORMAT:
                raise KeyError("format")
            config = json.loads(str(npz["config"]))
            meta = json.loads(str(npz["meta"])) if "meta" in npz.files else {}
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as exc:
        raise ModelError(f"{path}: not an audiotagger classifier file ({type(exc).__name__}: {exc})"
                         ) from None
    return config, meta


def is_custom_model(path: str | os.PathLike) -> bool:
    """True if ``path`` is a classifier ``.npz`` of a custom model (its config names a ``backbone``)."""
    p = Path(path)
    if p.suffix.lower() != ".npz" or not p.is_file():
        return False
    try:
        config, _ = read_config(p)
    except ModelError:
        return False
    return "backbone" in config


def read_model(path: str | os.PathLike) -> tuple[dict, list[np.ndarray], dict]:
    """:func:`read_model_file` for callers that need only ``config, weights, meta`` (the file is closed)."""
    config, weights, meta, npz = read_model_file(path)
    npz.close()
    return config, weights, meta


def restore_weights(model, weights: list[np.ndarray], source: str | os.PathLike) -> None:
    """Set ``model``'s weights from a list, checking count and shapes (ModelError naming ``source``)."""
    expected = model.weights
    if len(weights) != len(expected):
        raise ModelError(f"{source}: {len(weights)} weight arrays, the model needs {len(expected)}")
    for var, arr in zip(expected, weights, strict=True):
        if tuple(arr.shape) != tuple(var.shape):
            raise ModelError(f"{source}: weight {var.path} has shape {arr.shape}, "
                             f"expected {tuple(var.shape)}")
        if np.issubdtype(arr.dtype, np.floating) and not np.isfinite(arr).all():
            raise ModelError(f"{source}: weight {var.path} holds NaN or infinite values (a damaged or "
                             "diverged model)")
    model.set_weights([np.asarray(w, dtype=np.float32) if np.issubdtype(w.dtype, np.floating) else w
                       for w in weights])
