"""Google's YAMNet classification TFLite model → the official Keras weights (``yamnet.h5``).

The TFLite model (input one 15,600-sample waveform, output ``(1, 521)`` scores) holds the same network
with each batch norm folded into the convolution before it (``W' = W / sqrt(var + eps)``, a bias
``beta - mean / sqrt(var + eps)``), and with float32 or int8 weights (per-channel scales and zero
points; dequantised here). The conversion reads the model's operators with ``tf.lite.Interpreter``:

* the 27 convolutions (``CONV_2D``, then 13 × ``DEPTHWISE_CONV_2D`` + ``CONV_2D``) and the final
  ``FULLY_CONNECTED`` must form one chain (each consumes the previous one's output, through the
  ``MEAN`` pooling for the classifier), in the order and with the shapes of
  :func:`audiotagger.yamnet.params.weight_table`;
* the front end's mel matrix (a ``FULLY_CONNECTED`` with a ``(64, 257)`` weight), when present, must
  equal :func:`audiotagger.yamnet.features.mel_matrix` to its quantisation step.

A folded layer is written back unfolded and exactly equivalent: kernel ``W'``, ``moving_mean`` 0,
``moving_variance`` ``1 - eps`` (so the scale is 1), ``beta`` the folded bias.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from pathlib import Path

import numpy as np

from ..errors import AudioTaggerWarning, ModelError
from . import params
from .weights import Weights, write_weights

CONVERSION_FORMAT = 1
"""Bumped when the conversion changes (older cached conversions are then redone)."""


def _interpreter(path: Path):
    import tensorflow as tf

    try:
        resolver = tf.lite.experimental.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")               # tf.lite.Interpreter's deprecation notice
            interpreter = tf.lite.Interpreter(model_path=str(path), experimental_op_resolver_type=resolver)
        interpreter.allocate_tensors()
    except (ValueError, RuntimeError) as exc:
        raise ModelError(f"{path}: not a readable TFLite model ({str(exc).splitlines()[0]})") from None
    return interpreter


def _constant(interpreter, details: dict, path: Path) -> np.ndarray:
    """Read a constant tensor as float32, dequantising int8/uint8 (per-tensor or per-channel)."""
    try:
        data = np.array(interpreter.get_tensor(details["index"]))
    except ValueError as exc:
        raise ModelError(f"{path}: tensor {details['name'][:60]!r} has no constant data ({exc})") from None
    if data.dtype == np.float32:
        return data
    if data.dtype == np.float16:
        return data.astype(np.float32)
    q = details["quantization_parameters"]
    scales, zeros = np.asarray(q["scales"], np.float32), np.asarray(q["zero_points"], np.float32)
    if data.dtype not in (np.int8, np.uint8) or scales.size == 0:
        raise ModelError(f"{path}: weight {details['name'][:60]!r} has unsupported type {data.dtype}")
    shape = [1] * data.ndim
    if scales.size > 1:
        shape[q["quantized_dimension"]] = scales.size
    zeros = zeros if zeros.size == scales.size else np.zeros_like(scales)
    return ((data.astype(np.float32) - zeros.reshape(shape)) * scales.reshape(shape)).astype(np.float32)


def read_tflite(path: str | os.PathLike) -> Weights:
    """Read a YAMNet classification TFLite model as official-layout Keras weights.

    Parameters
    ----------
    path : path-like
        ``yamnet.tflite`` (float32 weights, or int8 weights with a dequantisation scale).

    Returns
    -------
    dict
        Official layer name → float32 arrays (see :func:`audiotagger.yamnet.weights.read_weights`).

    Raises
    ------
    ModelError
        Not a TFLite model, or not YAMNet: wrong number, order, chaining or shape of the layers (the
        message names the first offending one).
    """
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: TFLite model not found")
    interpreter = _interpreter(path)
    tensors = {d["index"]: d for d in interpreter.get_tensor_details()}
    try:
        ops = interpreter._get_ops_details()       # noqa: SLF001  (the only reader of the op graph)
    except AttributeError:
        raise ModelError(f"{path}: this TensorFlow's TFLite interpreter cannot list operators") from None
    ops = [op for op in ops if op["op_name"] != "DELEGATE"]
    convs = [op for op in ops if op["op_name"] in ("CONV_2D", "DEPTHWISE_CONV_2D")]
    fcs = [op for op in ops if op["op_name"] == "FULLY_CONNECTED"]
    _check_mel(interpreter, tensors, fcs, path)
    table = params.weight_table()
    plan = []                                    # (official conv layer, its bn layer or None, op kind)
    for i, layer in enumerate(params.LAYERS, start=1):
        if layer.kind == "conv":
            plan.append((f"layer{i}/conv", f"layer{i}/conv/bn", "CONV_2D"))
        else:
            plan.append((f"layer{i}/depthwise_conv", f"layer{i}/depthwise_conv/bn", "DEPTHWISE_CONV_2D"))
            plan.append((f"layer{i}/pointwise_conv", f"layer{i}/pointwise_conv/bn", "CONV_2D"))
    if len(convs) != len(plan):
        raise ModelError(f"{path}: has {len(convs)} convolutions, YAMNet has {len(plan)} "
                         "(not a YAMNet model?)")
    weights: Weights = {}
    previous = None
    for (layer, bn, kind), op in zip(plan, convs, strict=True):
        if op["op_name"] != kind:
            raise ModelError(f"{path}: operator {op['index']} is {op['op_name']}, "
                             f"YAMNet's {layer!r} is {kind}")
        inputs = [int(t) for t in op["inputs"]]
        if previous is not None and inputs[0] != previous:
            raise ModelError(f"{path}: {layer!r} (operator {op['index']}) does not take the previous layer's "
                             "output; the convolutions are not one chain")
        previous = int(op["outputs"][0])
        kernel = _constant(interpreter, tensors[inputs[1]], path).transpose(1, 2, 3, 0)
        expected = table[layer][0][1]
        if kernel.shape != expected:
            raise ModelError(f"{path}: {layer!r} weight has shape {kernel.shape} (Keras layout), "
                             f"YAMNet needs {expected}")
        channels = expected[2] if kind == "DEPTHWISE_CONV_2D" else expected[3]
        if len(inputs) > 2 and inputs[2] >= 0:
            bias = _constant(interpreter, tensors[inputs[2]], path).reshape(-1)
        else:
            bias = np.zeros(channels, np.float32)
        if bias.shape != (channels,):
            raise ModelError(f"{path}: {layer!r} bias has shape {bias.shape}, YAMNet needs {(channels,)}")
        weights[layer] = [kernel]
        weights[bn] = [bias, np.zeros(channels, np.float32),
                       np.full(channels, 1.0 - params.BATCHNORM_EPSILON, np.float32)]
    weights[params.CLASSIFIER_LAYER] = _classifier(interpreter, tensors, ops, fcs, previous, path)
    for layer, arrays in weights.items():
        if not all(np.isfinite(a).all() for a in arrays):
            raise ModelError(f"{path}: {layer!r} holds non-finite weights")
    return weights


def _classifier(interpreter, tensors, ops, fcs, last_conv: int, path: Path) -> list[np.ndarray]:
    shape = (params.NUM_CLASSES, params.EMBEDDING_SIZE)
    heads = [op for op in fcs if tuple(tensors[int(op["inputs"][1])]["shape"]) == shape]
    if len(heads) != 1:
        raise ModelError(f"{path}: expected one {shape} classifier (FULLY_CONNECTED), found {len(heads)}")
    head = heads[0]
    pooled = int(head["inputs"][0])
    pools = [op for op in ops if int(op["outputs"][0]) == pooled]
    if not pools or pools[0]["op_name"] != "MEAN" or int(pools[0]["inputs"][0]) != last_conv:
        raise ModelError(f"{path}: the classifier does not read the average of the last convolution")
    kernel = _constant(interpreter, tensors[int(head["inputs"][1])], path).T
    bias_index = int(head["inputs"][2]) if len(head["inputs"]) > 2 else -1
    bias = (_constant(interpreter, tensors[bias_index], path).reshape(-1) if bias_index >= 0
            else np.zeros(params.NUM_CLASSES, np.float32))
    if bias.shape != (params.NUM_CLASSES,):
        raise ModelError(f"{path}: classifier bias has shape {bias.shape}, "
                         f"YAMNet needs ({params.NUM_CLASSES},)")
    return [np.ascontiguousarray(kernel), bias]


def _check_mel(interpreter, tensors, fcs, path: Path) -> None:
    from .features import mel_matrix

    ours = mel_matrix().T                                   # (64, 257), as a FULLY_CONNECTED weight
    for op in fcs:
        details = tensors[int(op["inputs"][1])]
        if tuple(details["shape"]) != ours.shape:
            continue
        theirs = _constant(interpreter, details, path)
        scales = details["quantization_parameters"]["scales"]
        step = float(np.max(scales)) if len(scales) else 1e-6
        if np.abs(theirs - ours).max() > step:
            raise ModelError(f"{path}: its mel matrix differs from YAMNet's front end (125-7500 Hz, "
                             "64 bands); not the official YAMNet features")


def convert_tflite(source: str | os.PathLike, dest: str | os.PathLike) -> Path:
    """Convert a YAMNet TFLite model to an official-layout ``yamnet.h5`` (written atomically).

    Returns
    -------
    pathlib.Path
        ``dest``.
    """
    return write_weights(read_tflite(source), dest)


def cached_conversion(source: str | os.PathLike, *, model_dir: str | os.PathLike | None = None) -> Path:
    """The ``yamnet.h5`` converted from ``source``, converted once and cached under ``<cache>/yamnet/``.

    The cache key covers the file's path, size and modification time.
    """
    from .. import hub

    source = Path(source)
    stat = source.stat()
    ident = f"{CONVERSION_FORMAT}|{source.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
    digest = hashlib.sha256(ident.encode("utf-8")).hexdigest()[:16]
    cached = hub.cache_dir(model_dir) / "yamnet" / f"{source.stem}.{digest}.h5"
    if cached.is_file():
        return cached
    weights = read_tflite(source)
    try:
        return write_weights(weights, cached)
    except OSError as exc:
        tmp = Path(os.environ.get("TMPDIR", "/tmp")) / f"audiotagger-{source.stem}.{digest}.h5"
        warnings.warn(f"{cached}: cannot cache the converted model ({exc}); using {tmp}", AudioTaggerWarning,
                      stacklevel=2)
        return write_weights(weights, tmp)
