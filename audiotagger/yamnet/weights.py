"""The official YAMNet weights file ``yamnet.h5``: read with every layer checked, write, load a model.

``yamnet.h5`` is a Keras 2 HDF5 weights file (``model.save_weights``): the root lists ``layer_names``;
each layer is a group (``layer2/depthwise_conv``, nested by its ``/``) whose ``weight_names`` attribute
names its datasets (``layer2/depthwise_conv/depthwise_kernel:0``). :func:`read_weights` checks that every
layer of :func:`audiotagger.yamnet.params.weight_table` is there with weights of the right shapes and
finite values (a one-line :class:`~audiotagger.errors.ModelError` names the first that is not);
:func:`write_weights` writes the same layout (what ``models import yamnet.tflite`` produces), which the
official ``yamnet.py`` code loads too.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import ModelError
from . import params

Weights = dict[str, list[np.ndarray]]
"""Official layer name → arrays in the order of :func:`~audiotagger.yamnet.params.weight_table`."""


def _kind(weight_name: str) -> str:
    return weight_name.rsplit("/", 1)[-1].split(":", 1)[0]


def _text(value) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _open(path: Path):
    import h5py

    if not path.is_file():
        raise ModelError(f"{path}: YAMNet weights file not found")
    try:
        return h5py.File(path, "r")
    except OSError as exc:
        raise ModelError(f"{path}: not a readable HDF5 weights file ({str(exc).splitlines()[0]})") from None


def _datasets(fh, path: Path) -> dict[str, list]:
    """Every layer's datasets in table order, after checking names and shapes (no data is read)."""
    root = fh["model_weights"] if "model_weights" in fh else fh
    out: dict[str, list] = {}
    for layer, expected in params.weight_table().items():
        group = root.get(layer)
        names = [] if group is None else [_text(n) for n in group.attrs.get("weight_names", [])]
        if not names:
            raise ModelError(f"{path}: layer {layer!r} is missing (YAMNet needs it with "
                             f"{', '.join(f'{k} {s}' for k, s in expected)})")
        by_kind = {_kind(n): n for n in names}
        datasets = []
        for kind, shape in expected:
            if kind not in by_kind or by_kind[kind] not in group:
                raise ModelError(f"{path}: layer {layer!r} has no {kind!r} weight (has "
                                 f"{', '.join(sorted(by_kind))})")
            data = group[by_kind[kind]]
            if tuple(data.shape) != shape:
                raise ModelError(f"{path}: layer {layer!r} weight {kind!r} has shape {tuple(data.shape)}, "
                                 f"YAMNet needs {shape}")
            datasets.append(data)
        out[layer] = datasets
    return out


def check_file(path: str | os.PathLike) -> None:
    """Check that ``path`` holds every YAMNet layer with weights of the right shapes (no data read).

    Raises
    ------
    ModelError
        Not HDF5, a layer or weight missing, or a weight of another shape.
    """
    path = Path(path)
    with _open(path) as fh:
        _datasets(fh, path)


def read_weights(path: str | os.PathLike) -> Weights:
    """Read and check an official-layout ``yamnet.h5``.

    Parameters
    ----------
    path : path-like
        The weights file (``save_weights`` layout, or a full-model ``.h5`` with ``model_weights``).

    Returns
    -------
    dict
        Official layer name → float32 arrays (Keras layouts), one entry per layer of the table.

    Raises
    ------
    ModelError
        Not an HDF5 file; a layer missing; a weight missing, of another shape, or not finite; negative
        variances.
    """
    path = Path(path)
    out: Weights = {}
    with _open(path) as fh:
        for layer, datasets in _datasets(fh, path).items():
            arrays = [np.asarray(d, dtype=np.float32) for d in datasets]
            if not all(np.isfinite(a).all() for a in arrays):
                raise ModelError(f"{path}: layer {layer!r} holds non-finite weights")
            if layer.endswith("/bn") and (arrays[2] < 0).any():
                raise ModelError(f"{path}: layer {layer!r} has negative moving variances")
            out[layer] = arrays
    return out


def write_weights(weights: Weights, path: str | os.PathLike) -> Path:
    """Write weights as an official-layout ``yamnet.h5``, atomically.

    Parameters
    ----------
    weights : dict
        Official layer name → arrays, as :func:`read_weights` returns (shapes are checked).
    path : path-like
        Destination.

    Returns
    -------
    pathlib.Path
    """
    import h5py
    import keras

    from ..fileio import atomic_path

    table = params.weight_table()
    for layer, expected in table.items():
        got = [tuple(np.shape(a)) for a in weights.get(layer, [])]
        if got != [s for _, s in expected]:
            raise ModelError(f"{path}: cannot write layer {layer!r}: shapes {got}, YAMNet needs "
                             f"{[s for _, s in expected]}")
    path = Path(path)
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as fh:
        fh.attrs["layer_names"] = np.array([n.encode() for n in table], dtype="S")
        fh.attrs["backend"] = b"tensorflow"
        fh.attrs["keras_version"] = keras.__version__.encode()
        for layer, expected in table.items():
            group = fh.require_group(layer)
            names = [f"{layer}/{kind}:0" for kind, _ in expected]
            group.attrs["weight_names"] = np.array([n.encode() for n in names], dtype="S")
            for name, array in zip(names, weights[layer], strict=True):
                group.create_dataset(name, data=np.asarray(array, dtype=np.float32))
    return path


def set_weights(network, weights: Weights) -> None:
    """Copy checked weights into a network built by :func:`audiotagger.yamnet.model.build_model`."""
    from .model import keras_name

    for layer, arrays in weights.items():
        network.get_layer(keras_name(layer)).set_weights(arrays)


def get_weights(network) -> Weights:
    """Read a network's weights in the official layout (inverse of :func:`set_weights`)."""
    from .model import keras_name

    return {layer: [np.asarray(w, dtype=np.float32)
                    for w in network.get_layer(keras_name(layer)).get_weights()]
            for layer in params.weight_table()}


def resolve_weights(model: str | os.PathLike = params.MODEL_NAME, checkpoint: str | os.PathLike | None = None,
                    *, model_dir: str | os.PathLike | None = None, offline: bool | None = None) -> Path:
    """Turn ``--model yamnet`` (+ ``--checkpoint``) or a ``.h5``/``.tflite`` path into a ``.h5`` file.

    A ``.tflite`` file is converted once (cached under ``<model cache>/yamnet/``).
    """
    from .. import hub

    text = os.fspath(model)
    if text == params.MODEL_NAME:
        path = hub.locate(params.MODEL_NAME, checkpoint, model_dir=model_dir, offline=offline)
    else:
        if checkpoint is not None:
            raise ModelError(f"{text}: give either a YAMNet weights file as the model or --checkpoint, "
                             "not both")
        path = Path(text).expanduser()
        if not path.is_file():
            raise ModelError(f"{path}: YAMNet weights file not found")
    if path.suffix.lower() == ".tflite":
        from .tflite import cached_conversion

        path = cached_conversion(path, model_dir=model_dir)
    return path


def load_model(model: str | os.PathLike = params.MODEL_NAME, checkpoint: str | os.PathLike | None = None, *,
               model_dir: str | os.PathLike | None = None, offline: bool | None = None):
    """Build the Keras YAMNet network and fill it from its weights.

    Parameters
    ----------
    model : str or path-like
        ``yamnet`` (the model cache; downloaded on first use), or a ``yamnet.h5`` / YAMNet ``.tflite`` path.
    checkpoint : path-like, optional
        Local ``yamnet.h5`` for ``model="yamnet"``.
    model_dir, offline
        Model cache folder; never download (:func:`audiotagger.hub.locate`).

    Returns
    -------
    keras.Model
        See :func:`audiotagger.yamnet.model.build_model`.
    pathlib.Path
        The weights file.
    """
    from .model import build_model

    path = resolve_weights(model, checkpoint, model_dir=model_dir, offline=offline)
    weights = read_weights(path)
    network = build_model(initializer="zeros")
    set_weights(network, weights)
    return network, path
