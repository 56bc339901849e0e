"""The attention classifier over 10-second windows of AudioSet embeddings, shared by training and tagging.

Importing this package loads no TensorFlow; :func:`load_classifier` does. The training loop lives in
:mod:`audiotagger.train` and is never needed to tag.
"""

from .classifier import Classifier, default_model_path, load_classifier
from .models import MODEL_TYPES, build_model, check_levels, model_config
from .tiling import retile, tile_to_ten

__all__ = [
    "Classifier",
    "MODEL_TYPES",
    "build_model",
    "check_levels",
    "default_model_path",
    "load_classifier",
    "model_config",
    "retile",
    "tile_to_ten",
]
