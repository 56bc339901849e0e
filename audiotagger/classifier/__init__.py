"""The attention classifier over 10-second windows of AudioSet embeddings, shared by training and tagging.

Importing this package loads nothing heavy (not even numpy: ``--help`` lists the model types from
:mod:`.models`); :func:`load_classifier` loads an engine. The training loop lives in
:mod:`audiotagger.train` and is never needed to tag.
"""

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

_LAZY = {
    "Classifier": "classifier", "default_model_path": "classifier", "load_classifier": "classifier",
    "MODEL_TYPES": "models", "build_model": "models", "check_levels": "models", "model_config": "models",
    "retile": "tiling", "tile_to_ten": "tiling",
}


def __getattr__(name: str):
    """Import the public names on first use (``from audiotagger.classifier import load_classifier``)."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
