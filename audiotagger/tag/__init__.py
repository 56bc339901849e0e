"""Tagging: per-second probabilities from context windows, tag selection, and every output format.

``tag_file(path, **options)`` mirrors ``audiotagger tag``; :class:`Tagger` keeps the models loaded for many
inputs; :class:`TagResult` is what both backends produce and every writer consumes. Importing this
package loads no TensorFlow.
"""

from .result import TagResult, load_result
from .select import DisplayOptions, Selection
from .tagger import PannsBackend, Tagger, load_backend, load_tagger, tag_file
from .writers import DEFAULT_FORMATS, FORMATS, get_writer, parse_formats

__all__ = [
    "DEFAULT_FORMATS",
    "FORMATS",
    "DisplayOptions",
    "PannsBackend",
    "Selection",
    "TagResult",
    "Tagger",
    "get_writer",
    "load_backend",
    "load_result",
    "load_tagger",
    "parse_formats",
    "tag_file",
]
