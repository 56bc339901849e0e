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

FORMATS = ("tflite", "onnx")
"""``--format`` choices."""
ONNX_OPSET = 17
"""ONNX opset of exported models (``DFT`` needs 17)."""


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
                   samples: int | None = None):
    """The waveform → scores Keras model of a ``--model`` value.

    Parameters
    ----------
    model : str or path-like
        ``yamnet`` or a YAMNet ``.h5``/``.tflite`` file.
    checkpoint, model_dir, offline
        As for ``tag``.
    samples : int, optional
        Input length in 16 kHz samples (default 15,600: one 0.975 s patch, the input of Google's
        classification TFLite model; longer inputs give ``1 + ceil((samples - 15600) / 7680)`` rows).

    Returns
    -------
    keras.Model
        Input ``waveform`` ``(samples,)``; output scores ``(patches, classes)``.

    Raises
    ------
    ParameterError
        A model that cannot be exported (VGGish, PANNs) or a bad ``samples``.
    """
    from .tag.tagger import backend_name

    backend = backend_name(model)
    if backend != "yamnet":
        raise ParameterError(f"--model: export supports YAMNet (yamnet, a yamnet.h5 or .tflite file), "
                             f"not {backend} model {os.fspath(model) if model else 'default'!r}")
    from .yamnet import params as yp
    from .yamnet.model import build_waveform_model
    from .yamnet.weights import load_model

    samples = yp.PATCH_SAMPLES if samples is None else samples
    if isinstance(samples, bool) or int(samples) != samples or samples < 1:
        raise ParameterError(f"--samples: must be a positive number of samples, got {samples!r}")
    network, _ = load_model(model, checkpoint, model_dir=model_dir, offline=offline)
    return build_waveform_model(network, int(samples))


def export_model(path: str | os.PathLike, fmt: str = "tflite", model: str | os.PathLike = "yamnet",
                 **kwargs) -> Path:
    """Build :func:`waveform_model` and write it with :func:`export_keras` (``audiotagger export``)."""
    if fmt not in FORMATS:
        raise ParameterError(f"--format: must be one of {', '.join(FORMATS)}, got {fmt!r}")
    return export_keras(waveform_model(model, **kwargs), path, fmt)
