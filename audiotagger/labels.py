"""AudioSet class labels and ontology, shipped as package data."""

from __future__ import annotations

import csv
import functools
import json
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING

from .errors import ParameterError
from .params import NUM_CLASSES

if TYPE_CHECKING:
    import numpy as np

_DATA = "data"
_LABELS_FILE = "class_labels_indices.csv"
_ONTOLOGY_FILE = "ontology.json"


@dataclass(frozen=True)
class LabelSet:
    """Classes in index order: AudioSet's 527 (:func:`load_labels`) or a custom model's.

    Attributes
    ----------
    mids : tuple of str
        Freebase machine ids (``/m/09x0r``), shape (527,).
    names : tuple of str
        Display names (``Speech``), shape (527,).
    """

    mids: tuple[str, ...]
    names: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.mids)

    def index(self, key: str | int) -> int:
        """Return the class index of a mid, a display name (case-insensitive) or an index.

        Raises
        ------
        ParameterError
            If ``key`` names no class.
        """
        if isinstance(key, int) or (isinstance(key, str) and key.strip().isdigit()):
            i = int(key)
            if 0 <= i < len(self):
                return i
            raise ParameterError(f"class index {i} is outside 0..{len(self) - 1}")
        k = key.strip()
        lookup = _lookup(self)
        if k in lookup:
            return lookup[k]
        if k.casefold() in lookup:
            return lookup[k.casefold()]
        raise ParameterError(f"unknown class {key!r} (give a mid, a display name or an index)")


@functools.cache
def _lookup(labels: LabelSet) -> dict[str, int]:
    table: dict[str, int] = {}
    for i, (mid, name) in enumerate(zip(labels.mids, labels.names, strict=True)):
        table[mid] = i
        table.setdefault(name.casefold(), i)
    return table


@functools.lru_cache(maxsize=1)
def load_labels() -> LabelSet:
    """Read the packaged ``class_labels_indices.csv`` (``index,mid,display_name``).

    Returns
    -------
    LabelSet
        527 classes in index order.
    """
    text = resources.files(__package__).joinpath(_DATA, _LABELS_FILE).read_text(encoding="utf-8")
    rows = list(csv.DictReader(text.splitlines()))
    rows.sort(key=lambda r: int(r["index"]))
    if [int(r["index"]) for r in rows] != list(range(NUM_CLASSES)):
        raise RuntimeError(f"packaged {_LABELS_FILE} does not hold indices 0..{NUM_CLASSES - 1}")
    return LabelSet(tuple(r["mid"] for r in rows), tuple(r["display_name"] for r in rows))


@functools.lru_cache(maxsize=1)
def load_ontology() -> dict[str, dict]:
    """Read the packaged AudioSet ``ontology.json``.

    Returns
    -------
    dict
        Maps each mid to its entry (``id``, ``name``, ``description``, ``child_ids``,
        ``restrictions``, ...); 632 entries, including abstract classes outside the 527.
    """
    text = resources.files(__package__).joinpath(_DATA, _ONTOLOGY_FILE).read_text(encoding="utf-8")
    return {entry["id"]: entry for entry in json.loads(text)}


def ancestor_matrix() -> np.ndarray:
    """Which AudioSet classes are ancestors of which in the ontology.

    Returns a bool (527, 527) matrix whose ``[c, a]`` is true when class ``a`` is a (transitive) parent
    of class ``c``.

    Ontology nodes that are not among the 527 classes (abstract groups) are passed through, so a class
    under an abstract group under another class still reaches it.
    """
    import numpy as np

    labels, onto = load_labels(), load_ontology()
    parents: dict[str, set[str]] = {}
    for mid, entry in onto.items():
        for child in entry.get("child_ids", ()):
            parents.setdefault(child, set()).add(mid)
    index = {mid: i for i, mid in enumerate(labels.mids)}
    out = np.zeros((len(labels), len(labels)), dtype=bool)
    for c, mid in enumerate(labels.mids):
        todo, seen = list(parents.get(mid, ())), set()
        while todo:
            p = todo.pop()
            if p in seen:
                continue
            seen.add(p)
            if p in index:
                out[c, index[p]] = True
            todo.extend(parents.get(p, ()))
    return out


def close_labels(y: np.ndarray) -> np.ndarray:
    """Ontology closure of multi-hot labels: each positive class makes its ancestors positive.

    Parameters
    ----------
    y : numpy.ndarray of bool, shape (N, 527)

    Returns
    -------
    numpy.ndarray of bool, shape (N, 527)
    """
    import numpy as np

    y = np.asarray(y, dtype=bool)
    return y | ((y.astype(np.float32) @ ancestor_matrix().astype(np.float32)) > 0)
