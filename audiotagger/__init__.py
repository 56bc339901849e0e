"""audiotagger: tag AudioSet sound events in audio and video.

The public API is imported lazily so that ``import audiotagger`` (and ``audiotagger --help``) never
pays for TensorFlow.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "embed_file": "audiotagger.vggish.embed",
    "embed_waveform": "audiotagger.vggish.embed",
    "tag_file": "audiotagger.tag.tagger",
    "listen": "audiotagger.live",
    "load_audio": "audiotagger.audio",
    "load_labels": "audiotagger.labels",
    "AudioTaggerError": "audiotagger.errors",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'audiotagger' has no attribute {name!r}")
