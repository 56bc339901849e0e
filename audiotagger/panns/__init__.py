"""PANNs backend: CNN14 / CNN10 / CNN6 (Kong et al. 2020) on 32 kHz log-mel, in Keras.

Modules: :mod:`~audiotagger.panns.params` (constants), :mod:`~audiotagger.panns.frontend` (log-mel),
:mod:`~audiotagger.panns.models` (Keras networks), :mod:`~audiotagger.panns.pth` (restricted reader of
PyTorch checkpoints), :mod:`~audiotagger.panns.checkpoint` (state dict → Keras, conversion cache) and
:mod:`~audiotagger.panns.tagging` (sliding-window :class:`~audiotagger.panns.tagging.PannsTagger`).
Nothing heavy is imported here.
"""

__all__ = ["PannsScores", "PannsTagger", "build_model", "load_model", "load_pth", "load_state_dict", "logmel"]

_LAZY = {
    "PannsScores": "tagging", "PannsTagger": "tagging", "build_model": "models", "load_model": "checkpoint",
    "load_pth": "pth", "load_state_dict": "pth", "logmel": "frontend",
}


def __getattr__(name: str):
    """Import the public names on first use (``from audiotagger.panns import PannsTagger``)."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
