"""VGGish frontend: log-mel examples, the Keras network, the TF1 checkpoint reader, PCA post-processing.

Modules: :mod:`.params` (constants), :mod:`.features` (numpy log-mel), :mod:`.model` (Keras network),
:mod:`.checkpoint` (official checkpoint → Keras weights), :mod:`.postprocess` (PCA + uint8),
:mod:`.embed` (files and waveforms → :class:`~.embed.Embedding`). Importing this package does not
import TensorFlow.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "VGGishEmbedder": "audiotagger.vggish.embed",
    "Embedding": "audiotagger.vggish.embed",
    "embed_file": "audiotagger.vggish.embed",
    "embed_waveform": "audiotagger.vggish.embed",
    "waveform_to_examples": "audiotagger.vggish.features",
}

__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'audiotagger.vggish' has no attribute {name!r}")
