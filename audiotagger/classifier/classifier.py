"""Load a trained attention classifier and apply it to uint8 embedding windows."""

from __future__ import annotations

import json
import os
from importlib import resources
from pathlib import Path

import numpy as np

from ..errors import ModelError, ParameterError
from ..params import CLIP_SECONDS, EMBEDDING_SIZE
from .store import read_config, read_model, read_thresholds, restore_weights

DEFAULT_MODEL_NAME = "default.npz"
"""File name of the packaged default classifier inside ``audiotagger/data/models/``."""


def default_model_path() -> Path:
    """Return the path of the packaged default classifier (``audiotagger/data/models/default.npz``)."""
    return Path(str(resources.files("audiotagger") / "data" / "models" / DEFAULT_MODEL_NAME))


def scale_embeddings(q):
    """Map embeddings to the classifier's input (a TensorFlow op).

    uint8 rows (VGGish/AudioSet) become ``(q - 128) / 128`` in float32; float rows (other backbones) are
    only cast to float32.
    """
    import tensorflow as tf

    q = tf.convert_to_tensor(q)
    if q.dtype == tf.uint8:
        return tf.cast(q, tf.float32) / 128.0 - 1.0
    return tf.cast(q, tf.float32)


def compiled_forward(model, input_signature=None):
    """Return one ``tf.function``: embeddings (batch, 10, D) to probabilities, inference mode."""
    import tensorflow as tf

    return tf.function(lambda q: model(scale_embeddings(q), training=False), input_signature=input_signature,
                       reduce_retracing=True)


def check_windows(windows, batch_size: int = 1) -> np.ndarray:
    """Validate classifier input (shared by both engines): uint8 ``(n, 10, 128)``, ``batch_size >= 1``.

    Raises
    ------
    ParameterError
        Wrong shape, dtype or batch size.
    """
    windows = np.asarray(windows)
    if windows.ndim != 3 or windows.shape[1:] != (CLIP_SECONDS, EMBEDDING_SIZE):
        raise ParameterError(f"Classifier.predict: expected windows of shape (n, {CLIP_SECONDS}, "
                             f"{EMBEDDING_SIZE}), got {windows.shape}")
    if windows.dtype != np.uint8:
        raise ParameterError(f"Classifier.predict: expected uint8 embeddings, got {windows.dtype}")
    if batch_size < 1:
        raise ParameterError(f"batch_size: must be >= 1, got {batch_size}")
    return windows


class Classifier:
    """A Keras attention classifier with its config; ``predict`` maps uint8 windows to probabilities.

    Parameters
    ----------
    model : keras.Model
        Maps scaled (batch, 10, 128) float32 inputs to (batch, classes) probabilities.
    config : dict
        The model config (``build_model`` keywords, plus ``name`` when known).
    name : str
        Identifier recorded in outputs (model id).
    thresholds : numpy.ndarray, float32, shape (classes,), optional
        Per-class thresholds stored with the model (``--threshold auto``).
    threshold_info : dict, optional
        How they were chosen (the model's ``meta["thresholds"]``).

    Attributes
    ----------
    thresholds : numpy.ndarray or None
        As given (None: the model stores none).
    """

    engine = "tf"

    def __init__(self, model, config: dict, name: str, thresholds: np.ndarray | None = None,
                 threshold_info: dict | None = None):
        import tensorflow as tf

        self.model = model
        self.config = dict(config)
        self.name = name
        self.thresholds = thresholds
        self.threshold_info = threshold_info
        self.num_classes = int(config.get("num_classes", model.output_shape[-1]))
        self.embedding_size = int(config.get("embedding_size", EMBEDDING_SIZE))
        self.dtype = np.dtype(config.get("input_dtype", "uint8"))
        self._forward = compiled_forward(
            model, input_signature=[tf.TensorSpec((None, CLIP_SECONDS, self.embedding_size),
                                                  tf.as_dtype(self.dtype))])

    @property
    def labels(self) -> tuple[str, ...] | None:
        """A custom model's class names (None for AudioSet models)."""
        labels = self.config.get("labels")
        return None if labels is None else tuple(labels)

    @property
    def backbone(self) -> str | None:
        """A custom model's backbone name (None for AudioSet models, which read VGGish rows)."""
        return self.config.get("backbone")

    def predict(self, windows, batch_size: int = 1024) -> np.ndarray:
        """Classify windows of embeddings.

        Parameters
        ----------
        windows : array_like, shape (n, 10, D)
            Embedding rows of the model's width and type: uint8 (scaled here as ``(q - 128) / 128``) or
            float32, one batch at a time.
        batch_size : int
            Windows per model call.

        Returns
        -------
        numpy.ndarray of float32, shape (n, classes)
        """
        windows = np.asarray(windows)
        if windows.ndim != 3 or windows.shape[1:] != (CLIP_SECONDS, self.embedding_size):
            raise ParameterError(f"Classifier.predict: expected windows of shape (n, {CLIP_SECONDS}, "
                                 f"{self.embedding_size}), got {windows.shape}")
        if windows.dtype != self.dtype:
            if self.dtype == np.uint8:
                raise ParameterError(f"Classifier.predict: expected uint8 embeddings, got {windows.dtype}")
            windows = windows.astype(self.dtype)
        if batch_size < 1:
            raise ParameterError(f"batch_size: must be >= 1, got {batch_size}")
        out = np.empty((windows.shape[0], self.num_classes), dtype=np.float32)
        for start in range(0, windows.shape[0], batch_size):
            out[start:start + batch_size] = self._forward(windows[start:start + batch_size]).numpy()
        return out

    def __repr__(self) -> str:
        return f"Classifier(name={self.name!r}, config={self.config!r})"


def load_classifier(spec: str | os.PathLike | None = None, *, engine: str | None = None,
                    model_dir: str | os.PathLike | None = None):
    """Load a classifier.

    Parameters
    ----------
    spec : path-like or None
        None or ``"default"``: the packaged default model. Otherwise a classifier ``.npz`` written by
        ``audiotagger train`` (best model, any iteration checkpoint, averaged model) or a Keras
        ``.keras`` file of a model built from :mod:`audiotagger.classifier.models`.
    engine : {"onnx", "tf"}, optional
        ``--engine``: ONNX Runtime (default; the graph is built once and cached under ``model_dir``)
        or TensorFlow.
    model_dir : path-like, optional
        Model cache folder (holds the ONNX graphs).

    Returns
    -------
    Classifier or audiotagger.engine.runtime.OnnxClassifier
        Both have ``name``, ``config``, ``num_classes``, ``thresholds`` (the per-class thresholds
        stored in the file, float32 (classes,), or None), ``threshold_info`` (how they were chosen: the
        file's ``meta["thresholds"]``, or None) and ``predict(windows, batch_size)``.

    Raises
    ------
    ModelError
        If the file is missing, unreadable or does not fit the model its config describes.
    """
    from ..engine import check_engine

    engine, _ = check_engine(engine)
    path = default_model_path() if spec is None or str(spec) == "default" else Path(spec)
    if engine == "onnx" and _audioset_classifier(path):
        from ..engine.models import classifier_graphs
        from ..engine.runtime import OnnxClassifier

        folder, config, name = classifier_graphs(path, model_dir)
        return OnnxClassifier(folder, config, name, **stored_thresholds(path))
    from .models import build_model

    if path.suffix == ".keras":
        return _load_keras(path)
    config, weights, meta = read_model(path)
    try:
        model = build_model(**config)
    except (TypeError, ValueError) as exc:
        raise ModelError(f"{path}: invalid model config ({exc})") from None
    restore_weights(model, weights, path)
    name = config.get("name") or meta.get("name") or path.stem
    return Classifier(model, config, name, **stored_thresholds(path))


def stored_thresholds(path: str | os.PathLike) -> dict:
    """``thresholds`` and ``threshold_info`` of a classifier file (keywords of both classifier classes).

    Cheap (no weights, no TensorFlow). ``thresholds`` is None for a file without them (and for
    ``.keras`` files); ``threshold_info`` is the file's ``meta["thresholds"]`` when they exist (a dict,
    ``{}`` if the file does not say how they were chosen).

    Raises
    ------
    ModelError
        The thresholds stored are malformed.
    """
    thresholds = read_thresholds(path)
    if thresholds is None:
        return {"thresholds": None, "threshold_info": None}
    info = read_config(path)[1].get("thresholds")
    return {"thresholds": thresholds, "threshold_info": info if isinstance(info, dict) else {}}


def _audioset_classifier(path: Path) -> bool:
    """True unless ``path`` is a custom model (other backbone, width or input type).

    Custom models (``train --audio``) run on TensorFlow whatever ``--engine`` says: the ONNX graphs
    cover the AudioSet classifiers over uint8 (10, 128) windows. Only the config member is read.
    """
    if path.suffix != ".npz" or not path.is_file():
        return True
    try:
        with np.load(path, allow_pickle=False) as npz:
            config = json.loads(str(npz["config"]))
    except Exception:  # unreadable files: the normal path reports them
        return True
    custom = ("backbone", "labels", "embedding_size", "input_dtype")
    return not any(key in config for key in custom)


def _load_keras(path: Path) -> Classifier:
    import keras

    from . import layers  # noqa: F401  (registers AttentionPooling)

    if not path.is_file():
        raise ModelError(f"{path}: classifier file not found")
    try:
        model = keras.saving.load_model(path, compile=False)
    except Exception as exc:  # keras raises many types for a bad archive
        raise ModelError(f"{path}: cannot load Keras model ({type(exc).__name__}: {exc})") from None
    if tuple(model.input_shape[1:]) != (CLIP_SECONDS, EMBEDDING_SIZE):
        raise ModelError(f"{path}: model input is {model.input_shape}, expected (None, 10, 128)")
    return Classifier(model, {"name": path.stem, "num_classes": int(model.output_shape[-1])}, path.stem)
