"""YAMNet's 521 classes: the packaged ``yamnet_class_map.csv`` (``index,mid,display_name``, Apache-2.0)."""

from __future__ import annotations

import csv
import functools
from importlib import resources

from ..labels import LabelSet
from . import params

CLASS_MAP_FILE = "yamnet_class_map.csv"
"""Package data file (``audiotagger/data/``), as published beside the official model."""


@functools.lru_cache(maxsize=1)
def class_map() -> LabelSet:
    """Read the packaged YAMNet class map.

    Returns
    -------
    LabelSet
        521 classes in output order (``mids``, ``names``); the mids are AudioSet mids.
    """
    text = resources.files("audiotagger").joinpath("data", CLASS_MAP_FILE).read_text(encoding="utf-8")
    rows = list(csv.DictReader(text.splitlines()))
    if [int(r["index"]) for r in rows] != list(range(params.NUM_CLASSES)):
        raise RuntimeError(f"packaged {CLASS_MAP_FILE} does not hold indices 0..{params.NUM_CLASSES - 1}")
    return LabelSet(tuple(r["mid"] for r in rows), tuple(r["display_name"] for r in rows))
