"""The ONNX graphs of each network, from its source weights to a checked cache folder.

:func:`vggish_graphs`, :func:`classifier_graphs`, :func:`panns_graphs` and :func:`yamnet_graphs` return
the folder of cached graphs (building them on first use with :mod:`.graphs`) and facts about the model;
the runners of :mod:`.runtime` open them. Only VGGish's first conversion needs TensorFlow (to read
Google's TF1 checkpoint format); classifiers (``.npz``) and PANNs (``.pth``) are read with numpy alone,
YAMNet's ``yamnet.h5`` with h5py.
"""

from __future__ import annotations

import os
from pathlib import Path

from .builder import GraphBuilder
from .store import WEIGHTS, cached_graphs, content_digest, file_identity

VGGISH_PARTS = ("conv", "dense")
PANNS_PARTS = ("early", "late")
CLASSIFIER_PARTS = ("classifier",)
YAMNET_PARTS = ("yamnet",)


def _save(builder: GraphBuilder, folder: Path, part: str, **metadata) -> None:
    import onnx

    onnx.save_model(builder.model(metadata=metadata), str(folder / f"{part}.onnx"))


def _checkpoint_files(path: Path) -> list[Path]:
    return [path] if path.is_file() else sorted(path.parent.glob(path.name + ".*"))


def vggish_graphs(checkpoint: str | os.PathLike, model_dir=None, precision: str = "fp32") -> Path:
    """Folder with VGGish's ``conv.onnx`` and ``dense.onnx`` for an official-format checkpoint.

    Parameters
    ----------
    checkpoint : path-like
        Resolved checkpoint (V1 file or V2 prefix; :func:`audiotagger.vggish.checkpoint.checkpoint_path`).
    model_dir : path-like, optional
        Model cache folder.
    precision : {"fp32", "int8"}
        int8: the graphs quantised by :func:`audiotagger.engine.quantize.quantized_graphs`.

    Returns
    -------
    pathlib.Path
    """
    path = Path(checkpoint)
    if precision != "fp32":
        from .quantize import quantized_graphs

        return quantized_graphs("vggish", vggish_graphs(path, model_dir), VGGISH_PARTS, model_dir)
    files = _checkpoint_files(path)

    def build(folder: Path) -> dict:
        import h5py

        from ..vggish.checkpoint import convert_checkpoint, converted_path
        from .graphs import vggish_conv, vggish_dense

        h5 = converted_path(path, model_dir)
        if not h5.is_file():
            try:
                convert_checkpoint(path, h5)
            except OSError:
                h5 = folder / "converted.h5"
                convert_checkpoint(path, h5)
        with h5py.File(h5, "r") as weights, open(folder / WEIGHTS, "wb") as data:
            for part, add in zip(VGGISH_PARTS, (vggish_conv, vggish_dense), strict=True):
                b = GraphBuilder(f"vggish_{part}", data)
                add(b, weights)
                _save(b, folder, part, source=str(path))
        (folder / "converted.h5").unlink(missing_ok=True)
        return {"checkpoint": str(path)}

    folder, _ = cached_graphs("vggish", file_identity(*files), VGGISH_PARTS,
                              lambda: content_digest(*files, extra="vggish"), build, model_dir)
    return folder


def classifier_graphs(path: str | os.PathLike, model_dir=None) -> tuple[Path, dict, str]:
    """Folder with ``classifier.onnx`` for a classifier ``.npz`` (or ``.keras``) file.

    Returns
    -------
    folder : pathlib.Path
    config : dict
        The stored model config.
    name : str
        Model id (config ``name``, meta ``name`` or the file stem).
    """
    from ..errors import ModelError

    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: classifier file not found")

    def build(folder: Path) -> dict:
        from .graphs import classifier_graph

        config, named, name = _classifier_weights(path)
        with open(folder / WEIGHTS, "wb") as data:
            b = GraphBuilder("classifier", data)
            try:
                classifier_graph(b, config, named)
            except (KeyError, TypeError, ValueError) as exc:
                raise ModelError(f"{path}: weights do not fit the model config ({type(exc).__name__}: "
                                 f"{exc})") from None
            _save(b, folder, "classifier", name=name)
        return {"config": config, "name": name}

    folder, meta = cached_graphs("classifier", file_identity(path), CLASSIFIER_PARTS,
                                 lambda: content_digest(path, extra="classifier"), build, model_dir)
    return folder, meta["config"], meta["name"]


def _classifier_weights(path: Path) -> tuple[dict, dict, str]:
    import json

    if path.suffix == ".keras":
        from ..classifier.classifier import load_classifier

        clf = load_classifier(path, engine="tf")
        named = {w.path: w.numpy() for w in clf.model.weights}
        config = {"num_classes": clf.num_classes, **clf.config}
        return _keras_config(clf.model, config), named, clf.name
    from ..classifier.store import read_model_file

    config, weights, meta, npz = read_model_file(path)
    try:
        names = json.loads(str(npz["weight_names"]))
    finally:
        npz.close()
    import numpy as np

    from ..errors import ModelError

    for key, arr in zip(names, weights, strict=True):
        if np.issubdtype(arr.dtype, np.floating) and not np.isfinite(arr).all():   # as the TF loader says
            raise ModelError(f"{path}: weight {key} holds NaN or infinite values (a damaged or "
                             "diverged model)")
    name = config.get("name") or meta.get("name") or path.stem
    return config, dict(zip(names, weights, strict=True)), name


def _keras_config(model, config: dict) -> dict:
    """A ``.keras`` model's config in :func:`model_config` terms, read from its layer names."""
    from ..errors import ModelError

    layers = {layer.name for layer in model.layers}
    if "output" in layers:
        levels = sorted(int(n.split("_")[1]) for n in layers if n.startswith("pool_"))
        kind = "multi-level-attention"
    elif "pool" in layers:
        kind, levels = "feature-attention", [3]
    elif "cla" in layers and "att" in layers:
        kind, levels = "single-attention", [3]
    elif "cla" in layers:
        kind = "average" if type(model.get_layer("probs")).__name__.startswith("GlobalAverage") else "max"
        levels = [3]
    else:
        raise ModelError(f"{config.get('name')}: not an attention classifier built by audiotagger")
    att = [n for n in layers if n.startswith("att_") and n.count("_") == 2]
    attention = "sigmoid" if any(n.endswith("_sigmoid") for n in att) else "softmax"
    if kind == "single-attention":
        act = model.get_layer("att").get_config().get("activation")
        attention = "sigmoid" if act == "sigmoid" else "softmax"
    units = model.get_layer("dense_1").units
    return {"model_type": kind, "levels": levels, "hidden_units": units, "attention": attention,
            "num_classes": config["num_classes"], "name": config.get("name")}


def panns_graphs(model: str | os.PathLike = "panns-cnn14", checkpoint=None, *, model_dir=None,
                 offline=None, precision: str = "fp32") -> tuple[Path, str, Path]:
    """Folder with a PANNs network's ``early.onnx`` and ``late.onnx``.

    Returns
    -------
    folder : pathlib.Path
    architecture : str
        ``cnn14``, ``cnn10`` or ``cnn6``.
    checkpoint : pathlib.Path
        The ``.pth`` file.
    """
    from ..panns.checkpoint import resolve_checkpoint

    arch, path = resolve_checkpoint(model, checkpoint, model_dir=model_dir, offline=offline)

    def build(folder: Path) -> dict:
        from ..panns.checkpoint import load_weights
        from .graphs import panns_graph

        found, weights = load_weights(path, arch, model_dir=model_dir)
        with open(folder / WEIGHTS, "wb") as data:
            for part in PANNS_PARTS:
                b = GraphBuilder(f"panns_{found}_{part}", data)
                panns_graph(b, found, weights, part)
                _save(b, folder, part, architecture=found)
        return {"architecture": found, "checkpoint": str(path)}

    kind = f"panns-{arch or 'pth'}"
    folder, meta = cached_graphs(kind, file_identity(path, extra=kind), PANNS_PARTS,
                                 lambda: content_digest(path, extra=kind), build, model_dir)
    if precision != "fp32":
        from .quantize import quantized_graphs

        folder = quantized_graphs(f"panns-{meta['architecture']}", folder, PANNS_PARTS, model_dir)
    return folder, meta["architecture"], path


def yamnet_graphs(weights: str | os.PathLike, model_dir=None, precision: str = "fp32") -> Path:
    """Folder with ``yamnet.onnx`` for an official-layout ``yamnet.h5``.

    The weights are read (and every layer checked) with h5py by
    :func:`audiotagger.yamnet.weights.read_weights`: no TensorFlow, even for the first build.

    Parameters
    ----------
    weights : path-like
        Resolved ``yamnet.h5`` (:func:`audiotagger.yamnet.weights.resolve_weights`).
    model_dir : path-like, optional
        Model cache folder.
    precision : {"fp32", "int8"}
        int8: the graph quantised by :func:`audiotagger.engine.quantize.quantized_graphs`.

    Returns
    -------
    pathlib.Path

    Raises
    ------
    ModelError
        The file is not a readable YAMNet weights file (a layer missing, a shape wrong, ...).
    """
    path = Path(weights)

    def build(folder: Path) -> dict:
        from ..yamnet.weights import read_weights
        from .graphs import yamnet_graph

        named = read_weights(path)
        with open(folder / WEIGHTS, "wb") as data:
            b = GraphBuilder("yamnet", data)
            yamnet_graph(b, named)
            _save(b, folder, "yamnet", source=str(path))
        return {"weights": str(path)}

    folder, _ = cached_graphs("yamnet", file_identity(path, extra="yamnet"), YAMNET_PARTS,
                              lambda: content_digest(path, extra="yamnet"), build, model_dir)
    if precision != "fp32":
        from .quantize import quantized_graphs

        folder = quantized_graphs("yamnet", folder, YAMNET_PARTS, model_dir)
    return folder
