"""Official PANNs checkpoints → Keras weights: name and shape validation, conversion cache, model loading.

A PANNs ``.pth`` file holds ``{'model': state_dict}`` with PyTorch names (``conv_block1.conv1.weight``
``(64, 1, 3, 3)``, ``conv_block1.bn1.running_var`` ...). :func:`state_to_weights` checks every tensor the
network needs is there with the right shape and turns it into the Keras layout (convolutions
``(out, in, kh, kw)`` → ``(kh, kw, in, out)``, linear layers transposed, batch norm ``weight, bias,
running_mean, running_var`` → ``gamma, beta, moving_mean, moving_variance``). The frozen front-end
tensors a checkpoint also carries (``spectrogram_extractor.*``, ``logmel_extractor.melW``) are checked
against :mod:`audiotagger.panns.frontend`. Converted weights are cached as an ``.npz`` under
``<model cache>/panns/`` so that a checkpoint is converted once.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from pathlib import Path

import numpy as np

from .. import hub
from ..errors import AudioTaggerWarning, ModelError
from ..fileio import atomic_save_npz
from . import params
from .params import Architecture, get_architecture

CACHE_FORMAT = 1
"""Bumped whenever the layout of the cached conversion changes (old caches are then ignored)."""

_FRONTEND_SHAPES = {
    "spectrogram_extractor.stft.conv_real.weight": (params.WINDOW_SIZE // 2 + 1, 1, params.WINDOW_SIZE),
    "spectrogram_extractor.stft.conv_imag.weight": (params.WINDOW_SIZE // 2 + 1, 1, params.WINDOW_SIZE),
    "logmel_extractor.melW": (params.WINDOW_SIZE // 2 + 1, params.MEL_BINS),
}
_BN_FIELDS = ("weight", "bias", "running_mean", "running_var")


def layer_tensors(architecture: str | Architecture) -> dict[str, list[tuple[str, tuple[int, ...]]]]:
    """Return, per Keras layer, the PyTorch tensors (name, PyTorch shape) that fill its weights.

    Parameters
    ----------
    architecture : str or Architecture
        ``cnn14``, ``cnn10`` or ``cnn6``.

    Returns
    -------
    dict
        Keras layer name → list of ``(state-dict key, shape)`` in the order of the layer's weights.
    """
    arch = architecture if isinstance(architecture, Architecture) else get_architecture(architecture)

    def bn(prefix: str, n: int) -> list[tuple[str, tuple[int, ...]]]:
        return [(f"{prefix}.{field}", (n,)) for field in _BN_FIELDS]

    table = {"bn0": bn("bn0", params.MEL_BINS)}
    channels_in = 1
    for block in arch.blocks:
        for j in range(1, block.convs + 1):
            cin = channels_in if j == 1 else block.channels
            shape = (block.channels, cin, block.kernel, block.kernel)
            table[f"{block.name}_conv{j}"] = [(f"{block.name}.conv{j}.weight", shape)]
            table[f"{block.name}_bn{j}"] = bn(f"{block.name}.bn{j}", block.channels)
        channels_in = block.channels
    width = arch.embedding_size
    table["fc1"] = [("fc1.weight", (width, channels_in)), ("fc1.bias", (width,))]
    table["fc_audioset"] = [("fc_audioset.weight", (params.NUM_CLASSES, width)),
                            ("fc_audioset.bias", (params.NUM_CLASSES,))]
    return table


def detect_architecture(state: dict[str, np.ndarray], source: str = "checkpoint") -> str:
    """Tell CNN14, CNN10 and CNN6 apart from the tensors of a state dict.

    Raises
    ------
    ModelError
        If the state dict is not one of the three.
    """
    first = state.get("conv_block1.conv1.weight")
    if first is None or first.ndim != 4:
        raise ModelError(f"{source}: not a PANNs CNN checkpoint (no conv_block1.conv1.weight)")
    if first.shape[-1] == 5:
        return "cnn6"
    return "cnn14" if "conv_block6.conv1.weight" in state else "cnn10"


def _keras_layout(array: np.ndarray) -> np.ndarray:
    if array.ndim == 4:
        return np.ascontiguousarray(array.transpose(2, 3, 1, 0))
    if array.ndim == 2:
        return np.ascontiguousarray(array.T)
    return array


def state_to_weights(state: dict[str, np.ndarray], architecture: str,
                     source: str = "checkpoint") -> dict[str, list[np.ndarray]]:
    """Validate a PANNs state dict and convert it to Keras weights.

    Parameters
    ----------
    state : dict of str to np.ndarray
        The ``model`` entry of the checkpoint (PyTorch names and layouts).
    architecture : {"cnn14", "cnn10", "cnn6"}
        The network it must fill.
    source : str
        File name for error messages.

    Returns
    -------
    dict
        Keras layer name → list of float32 arrays, ready for ``layer.set_weights``.

    Raises
    ------
    ModelError
        A tensor is missing, has the wrong shape or non-finite values, or the dict holds tensors of
        another network (the message names the first offending tensor).
    """
    table = layer_tensors(architecture)
    expected = {key for tensors in table.values() for key, _ in tensors}
    allowed_extra = set(_FRONTEND_SHAPES) | {k for k in state if k.endswith(".num_batches_tracked")}
    unexpected = [k for k in state if k not in expected and k not in allowed_extra]
    if unexpected:
        raise ModelError(f"{source}: unexpected tensor {unexpected[0]!r} for PANNs {architecture} "
                         f"({len(unexpected)} unexpected; is this another network's checkpoint?)")
    _check_frontend(state, source)
    weights: dict[str, list[np.ndarray]] = {}
    for layer, tensors in table.items():
        arrays = []
        for key, shape in tensors:
            if key not in state:
                raise ModelError(f"{source}: tensor {key!r} is missing (PANNs {architecture} needs it)")
            array = state[key]
            if tuple(array.shape) != shape:
                raise ModelError(f"{source}: tensor {key!r} has shape {tuple(array.shape)}, "
                                 f"PANNs {architecture} needs {shape}")
            if not np.issubdtype(array.dtype, np.floating) or not np.isfinite(array).all():
                raise ModelError(f"{source}: tensor {key!r} is not finite floating point data")
            arrays.append(_keras_layout(array.astype(np.float32, copy=False)))
        if layer == "bn0" or "_bn" in layer:
            if (arrays[3] < 0).any():
                raise ModelError(f"{source}: tensor {tensors[3][0]!r} has negative variances")
        weights[layer] = arrays
    return weights


def _check_frontend(state: dict[str, np.ndarray], source: str) -> None:
    for key, shape in _FRONTEND_SHAPES.items():
        if key in state and tuple(state[key].shape) != shape:
            raise ModelError(f"{source}: tensor {key!r} has shape {tuple(state[key].shape)}, the 32 kHz "
                             f"PANNs front end needs {shape} (a checkpoint for other features?)")
    mel = state.get("logmel_extractor.melW")
    if mel is not None:
        from .frontend import mel_filters

        ours = mel_filters()
        if np.abs(mel.astype(np.float64) - ours).max() > 1e-4 * max(float(np.abs(ours).max()), 1e-12):
            warnings.warn(f"{source}: its mel filter bank differs from librosa's Slaney filters used here; "
                          "scores may differ from the original", AudioTaggerWarning, stacklevel=3)


def _cache_file(path: Path, architecture: str, model_dir: str | os.PathLike | None) -> Path:
    stat = path.stat()
    ident = f"{CACHE_FORMAT}|{architecture}|{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
    digest = hashlib.sha256(ident.encode("utf-8")).hexdigest()[:16]
    return hub.cache_dir(model_dir) / "panns" / f"{path.stem}.{architecture}.{digest}.npz"


def _read_cache(cache: Path, table: dict) -> dict[str, list[np.ndarray]] | None:
    try:
        with np.load(cache, allow_pickle=False) as data:
            return {layer: [data[f"{layer}:{i}"] for i in range(len(tensors))]
                    for layer, tensors in table.items()}
    except (OSError, ValueError, KeyError, EOFError):
        return None


def load_weights(path: str | os.PathLike, architecture: str | None = None, *,
                 model_dir: str | os.PathLike | None = None,
                 cache: bool = True) -> tuple[str, dict[str, list[np.ndarray]]]:
    """Read a PANNs checkpoint as Keras weights, through the conversion cache.

    Parameters
    ----------
    path : path-like
        The ``.pth`` file.
    architecture : {"cnn14", "cnn10", "cnn6"}, optional
        Network expected; detected from the tensors when omitted.
    model_dir : path-like, optional
        Model cache folder (see :func:`audiotagger.hub.cache_dir`).
    cache : bool
        Reuse and write ``<cache>/panns/<stem>.<arch>.<key>.npz`` (the key covers the file's path, size
        and modification time, so a changed checkpoint is converted again).

    Returns
    -------
    architecture : str
    weights : dict
        Keras layer name → arrays (see :func:`state_to_weights`).
    """
    from .pth import load_state_dict

    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: checkpoint not found")
    if architecture is not None:
        architecture = get_architecture(architecture).name
    candidates = [architecture] if architecture is not None else list(params.ARCHITECTURES)
    for arch in candidates if cache else ():
        cached = _cache_file(path, arch, model_dir)
        if cached.is_file():
            weights = _read_cache(cached, layer_tensors(arch))
            if weights is not None:
                return arch, weights
    state = load_state_dict(path)
    detected = detect_architecture(state, str(path))
    if architecture is not None and detected != architecture:
        raise ModelError(f"{path}: is a PANNs {detected} checkpoint, not {architecture}")
    architecture = detected
    weights = state_to_weights(state, architecture, str(path))
    if cache:
        cached = _cache_file(path, architecture, model_dir)
        arrays = {f"{layer}:{i}": a for layer, ws in weights.items() for i, a in enumerate(ws)}
        try:
            atomic_save_npz(cached, **arrays)
        except OSError as exc:
            warnings.warn(f"{cached}: cannot cache the converted checkpoint ({exc})", AudioTaggerWarning,
                          stacklevel=2)
    return architecture, weights


def resolve_checkpoint(model: str | os.PathLike = "panns-cnn14", checkpoint: str | os.PathLike | None = None,
                       *, model_dir: str | os.PathLike | None = None,
                       offline: bool | None = None) -> tuple[str | None, Path]:
    """Turn a model name or ``.pth`` path (+ optional explicit checkpoint) into (architecture, file).

    Parameters
    ----------
    model : str or path-like
        ``panns-cnn14``/``panns-cnn10``/``panns-cnn6`` (or ``cnn14`` ...), or a path to a ``.pth`` file
        (its architecture is then read from its tensors: ``None`` is returned for it).
    checkpoint : path-like, optional
        Local copy of the named model's file (skips the cache and the download).
    model_dir, offline
        Passed to :func:`audiotagger.hub.locate`.
    """
    text = os.fspath(model)
    if text.lower().endswith((".pth", ".pt")) or os.sep in text or Path(text).is_file():
        if checkpoint is not None:
            raise ModelError(f"{text}: give either a checkpoint path as the model or a checkpoint, not both")
        path = Path(text).expanduser()
        if not path.is_file():
            raise ModelError(f"{path}: checkpoint not found")
        return None, path
    arch = get_architecture(text).name
    return arch, hub.locate(f"panns-{arch}", checkpoint, model_dir=model_dir, offline=offline)


def load_model(model: str | os.PathLike = "panns-cnn14", checkpoint: str | os.PathLike | None = None, *,
               model_dir: str | os.PathLike | None = None, offline: bool | None = None, cache: bool = True):
    """Build a PANNs Keras model and fill it from its checkpoint.

    Parameters
    ----------
    model : str or path-like
        Registry name (``panns-cnn14``, ``panns-cnn10``, ``panns-cnn6``) or a ``.pth`` path.
    checkpoint : path-like, optional
        Explicit checkpoint for a named model.
    model_dir, offline
        Model cache folder and offline switch (:func:`audiotagger.hub.locate`).
    cache : bool
        Use the conversion cache.

    Returns
    -------
    keras.Model
        See :func:`audiotagger.panns.models.build_model`; ``model.name`` is the architecture.
    pathlib.Path
        The checkpoint file it was loaded from.
    """
    from .models import build_model

    arch, path = resolve_checkpoint(model, checkpoint, model_dir=model_dir, offline=offline)
    arch, weights = load_weights(path, arch, model_dir=model_dir, cache=cache)
    net = build_model(arch, initializer="zeros")
    for layer, arrays in weights.items():
        try:
            net.get_layer(layer).set_weights(arrays)
        except ValueError as exc:
            raise ModelError(f"{path}: cannot load layer {layer}: {exc}") from None
    return net, path
