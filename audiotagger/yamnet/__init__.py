"""YAMNet backend: Google's MobileNet v1 AudioSet tagger (521 classes) on 16 kHz log-mel patches, in Keras.

Modules: :mod:`~audiotagger.yamnet.params` (constants), :mod:`~audiotagger.yamnet.features` (numpy
log-mel patches), :mod:`~audiotagger.yamnet.model` (Keras network, and the waveform → scores graph for
export), :mod:`~audiotagger.yamnet.weights` (the official ``yamnet.h5``: read with every layer checked,
write in the official layout), :mod:`~audiotagger.yamnet.tflite` (Google's classification ``.tflite`` →
``yamnet.h5``), :mod:`~audiotagger.yamnet.classes` (the packaged class map) and
:mod:`~audiotagger.yamnet.tagging` (:class:`~audiotagger.yamnet.tagging.YamnetModel`: scores,
embeddings and patch times of a waveform or file). Nothing heavy is imported here.
"""

__all__ = ["YamnetModel", "YamnetOutput", "build_model", "class_map", "load_model", "waveform_to_patches"]

_LAZY = {
    "YamnetModel": "tagging", "YamnetOutput": "tagging", "build_model": "model", "class_map": "classes",
    "load_model": "weights", "waveform_to_patches": "features",
}


def __getattr__(name: str):
    """Import the public names on first use (``from audiotagger.yamnet import YamnetModel``)."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
