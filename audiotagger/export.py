"""Export a waveform → scores model for small devices: TFLite (``tf.lite.TFLiteConverter``) or ONNX (tf2onnx).

:func:`export_keras` is generic: any Keras model whose input is one mono waveform ``(samples,)`` and whose
output is a score matrix ``(steps, classes)`` (YAMNet's
:func:`~audiotagger.yamnet.model.build_waveform_model`, or a custom model stacked on a backbone) is
written as a self-contained file (weights frozen in, float32).
:func:`waveform_model` builds that model for a ``--model`` value; :func:`export_model` does both, as the
``audiotagger export`` command.

Formats
-------
``tflite``
    ``TFLiteConverter.from_keras_model`` (built-in TFLite operators only: ``RFFT2D``, convolutions …);
    runs with the TFLite / LiteRT interpreter on a phone or a Raspberry Pi.
``onnx``
    ``tf2onnx.convert.from_function`` on the same graph (opset :data:`ONNX_OPSET`); runs with ONNX
    Runtime. Needs the optional ``tf2onnx`` and ``onnx`` packages (extra ``export``).
"""

from __future__ import annotations

import contextlib
import io
import os
from pathlib import Path

from .errors import ModelError, ParameterError
from .params import DEFAULT_LEFT, DEFAULT_RIGHT

FORMATS = ("tflite", "onnx")
"""``--format`` choices."""
ONNX_OPSET = 17
"""ONNX opset of exported models (``DFT`` needs 17)."""
LABELS_SUFFIX = ".labels.txt"
"""A custom model's labels are written beside its export as ``<file>.labels.txt``, one per line."""
EXPORT_REFUSED = {
    "vggish": "VGGish's PCA and 8-bit quantisation are not in the export graph",
    "panns": "the PANNs 32 kHz front end and network are not in the export graph",
}
"""Why a custom model on another backbone is refused (the ``--model`` error says it), by name prefix."""


def export_keras(model, path: str | os.PathLike, fmt: str = "tflite") -> Path:
    """Write a waveform → scores Keras model as a TFLite or ONNX file (atomically).

    Parameters
    ----------
    model : keras.Model
        Input one float32 waveform with a fixed length ``(samples,)``; output ``(steps, classes)``.
    path : path-like
        Output file.
    fmt : {"tflite", "onnx"}
        Format.

    Returns
    -------
    pathlib.Path
        ``path``. Its input is named ``waveform`` (ONNX; TFLite ``serving_default_waveform:0``), its
        single output holds the scores.

    Raises
    ------
    ParameterError
        Unknown format.
    ModelError
        The converter failed or (ONNX) tf2onnx is not installed.
    """
    from .fileio import atomic_path, atomic_write_bytes

    if fmt not in FORMATS:
        raise ParameterError(f"--format: must be one of {', '.join(FORMATS)}, got {fmt!r}")
    path = Path(path)
    import tensorflow as tf

    samples = model.inputs[0].shape[0]
    spec = tf.TensorSpec([samples], tf.float32, name="waveform")
    if fmt == "tflite":
        converter = tf.lite.TFLiteConverter.from_keras_model(model)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        try:
            with contextlib.redirect_stdout(io.StringIO()):     # Keras' export prints its signature
                data = converter.convert()
        except Exception as exc:  # noqa: BLE001  (the converter raises many types; one line for the user)
            why = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelError(f"{path}: TFLite conversion failed ({why})") from None
        return atomic_write_bytes(path, data)
    try:
        import tf2onnx
    except ImportError:
        raise ModelError(f"{path}: ONNX export needs tf2onnx and onnx (pip install 'audiotagger[export]')"
                         ) from None
    fn = tf.function(lambda w: model(w, training=False), input_signature=[spec])
    with atomic_path(path) as tmp:
        try:
            tf2onnx.convert.from_function(fn, input_signature=[spec], opset=ONNX_OPSET, output_path=str(tmp))
        except Exception as exc:  # noqa: BLE001
            why = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelError(f"{path}: ONNX conversion failed ({why})") from None
    return path


def waveform_model(model: str | os.PathLike = "yamnet", *, checkpoint: str | os.PathLike | None = None,
                   model_dir: str | os.PathLike | None = None, offline: bool | None = None,
                   samples: int | None = None, left: int = DEFAULT_LEFT, right: int = DEFAULT_RIGHT):
    """The waveform → scores Keras model of a ``--model`` value.

    Parameters
    ----------
    model : str or path-like
        ``yamnet``, a YAMNet ``.h5``/``.tflite`` file, or a custom model ``.npz`` (``audiotagger train
        --audio``) whose backbone is YAMNet.
    checkpoint, model_dir, offline
        As for ``tag`` (for a custom model: where its YAMNet backbone's weights are).
    samples : int, optional
        Input length in 16 kHz samples (default 15,600: one 0.975 s patch, the input of Google's
        classification TFLite model; longer inputs give ``1 + ceil((samples - 15600) / 7680)`` rows).
    left, right : int
        Custom models only: rows of context before/after each row, as ``tag --left/--right``.

    Returns
    -------
    keras.Model
        Input ``waveform`` ``(samples,)``; output scores ``(patches, classes)`` (a custom model: its
        labels' probabilities, one row per YAMNet patch, as :class:`~audiotagger.tag.tagger.CustomBackend`
        gives for the same waveform).

    Raises
    ------
    ParameterError
        A model that cannot be exported (VGGish, PANNs, or a custom model on those backbones) or a bad
        ``samples``/``left``/``right``.
    ModelError
        A custom model file that cannot be read.
    """
    from .tag.tagger import backend_name

    backend = backend_name(model)
    if backend not in ("yamnet", "custom"):
        raise ParameterError(f"--model: export supports YAMNet (yamnet, a yamnet.h5 or .tflite file) and "
                             f"custom models on the YAMNet backbone, not {backend} model "
                             f"{os.fspath(model) if model else 'default'!r}")
    from .yamnet import params as yp

    samples = yp.PATCH_SAMPLES if samples is None else samples
    if isinstance(samples, bool) or int(samples) != samples or samples < 1:
        raise ParameterError(f"--samples: must be a positive number of samples, got {samples!r}")
    if backend == "custom":
        return _custom_waveform_model(model, int(samples), left, right, checkpoint=checkpoint,
                                      model_dir=model_dir, offline=offline)
    from .yamnet.model import build_waveform_model
    from .yamnet.weights import load_model

    network, _ = load_model(model, checkpoint, model_dir=model_dir, offline=offline)
    return build_waveform_model(network, int(samples))


def patch_count(samples: int) -> int:
    """YAMNet patches (rows) of ``samples`` samples: ``1 + ceil(max(0, samples - 15600) / 7680)``."""
    from .yamnet import params as yp

    return 1 + -(-max(0, int(samples) - yp.PATCH_SAMPLES) // yp.PATCH_HOP_SAMPLES)


def custom_labels(model: str | os.PathLike) -> tuple[str, ...] | None:
    """A custom model file's labels (the exported scores' columns), or None for other models."""
    from .tag.tagger import model_labels

    labels = model_labels(model)
    return None if labels is None else tuple(labels.mids)


def _custom_waveform_model(model, samples: int, left: int, right: int, **weights):
    """YAMNet front end + network → 1024-d rows → constant gather of the context windows → classifier."""
    from .classifier import load_classifier
    from .classifier.store import read_config
    from .params import CLIP_SECONDS
    from .tag.windows import check_context, window_indices

    left, right = check_context(left, right)
    config, _ = read_config(model)
    backbone = config.get("backbone")
    if backbone != "yamnet":
        why = next((v for k, v in EXPORT_REFUSED.items() if str(backbone).startswith(k)),
                   "only YAMNet is in the export graph")
        raise ParameterError(f"--model: {os.fspath(model)}: export supports custom models on the yamnet "
                             f"backbone, not {backbone!r} ({why})")
    import keras
    import numpy as np

    from .yamnet import params as yp
    from .yamnet.model import build_waveform_model
    from .yamnet.weights import load_model

    classifier = load_classifier(model)
    if (classifier.embedding_size, classifier.dtype) != (yp.EMBEDDING_SIZE, np.dtype("float32")):
        raise ModelError(f"{model}: expects {classifier.dtype} rows of width {classifier.embedding_size}, "
                         f"backbone 'yamnet' gives float32 rows of width {yp.EMBEDDING_SIZE}")
    network, _ = load_model("yamnet", weights.pop("checkpoint"), **weights)
    embed = build_waveform_model(network, samples, output="embeddings")
    # The windows CustomBackend builds for this many rows (tag/windows.py), fixed at export time.
    index = window_indices(patch_count(samples), left, right, CLIP_SECONDS).astype(np.int32)
    rows = embed.output
    windows = keras.layers.Lambda(lambda r: keras.ops.take(r, keras.ops.convert_to_tensor(index), axis=0),
                                  name="context_windows")(rows)
    scores = classifier.model(windows)               # float32 rows: the classifier's scaling is the identity
    return keras.Model(embed.input, scores, name=f"{classifier.name}_waveform".replace("/", "_"))


def export_model(path: str | os.PathLike, fmt: str = "tflite", model: str | os.PathLike = "yamnet",
                 **kwargs) -> Path:
    """Build :func:`waveform_model` and write it with :func:`export_keras` (``audiotagger export``).

    A custom model's labels (the score columns, in order) are written beside it, one per line, as
    :func:`labels_path` ``(path)``.
    """
    from .fileio import atomic_write_text

    if fmt not in FORMATS:
        raise ParameterError(f"--format: must be one of {', '.join(FORMATS)}, got {fmt!r}")
    keras_model = waveform_model(model, **kwargs)
    labels = custom_labels(model)
    path = export_keras(keras_model, path, fmt)
    if labels is not None:
        atomic_write_text(labels_path(path), "".join(f"{x}\n" for x in labels))
    return path


def labels_path(path: str | os.PathLike) -> Path:
    """Where :func:`export_model` writes a custom model's labels: ``<file>.labels.txt``."""
    path = Path(path)
    return path.with_name(path.name + LABELS_SUFFIX)
