"""The result of tagging one input: per-step class probabilities and the settings that made them.

Both backends (VGGish + attention classifier, PANNs) produce a :class:`TagResult`; every writer consumes
one. It is saved as the ``.npz`` probability-matrix file of DESIGN.md (``probs``, ``times``, ``mids``,
``labels`` and the settings; never pickled) and read back by ``--from-probs``.
"""

from __future__ import annotations

import json
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError
from ..labels import load_labels

NPZ_FORMAT = "audiotagger-probs-1"
"""Identifier stored under ``format`` in every probability-matrix ``.npz``."""

_REQUIRED = ("probs", "times", "mids", "labels", "settings")
THRESHOLDS = "thresholds"
"""Optional array of the ``.npz``: the model's per-class thresholds, float32 (C,) (``--threshold auto``)."""

_STANDARD = frozenset(_REQUIRED) | {"format", "source", "hop", "window", "duration", "model", "backend",
                                    "version", "left", "right", THRESHOLDS}
"""Every array :meth:`TagResult.npz_arrays` writes itself; the rest of a file are :attr:`TagResult.extras`."""


@dataclass
class TagResult:
    """Class probabilities over time for one input.

    Attributes
    ----------
    source : str
        The input file (as given) or a name for an in-memory waveform.
    times : numpy.ndarray, float64, shape (n,)
        Start of each step in seconds.
    probs : numpy.ndarray, float32, shape (n, C)
        Probability of each class at each step (C = 527 AudioSet classes; 521 for YAMNet;
        a custom model's own).
    hop : float
        Seconds between steps; a step is shown from ``times[i]`` to ``times[i] + hop``.
    window : float
        Seconds of audio each step's prediction looks at (context included); may differ from ``hop``.
    duration : float
        Length of the input audio in seconds.
    meta : dict
        JSON-serialisable settings that made the result: ``model``, ``backend``, ``left``, ``right``,
        ``version``, ...
    mids, names : tuple of str
        Class mids and display names in column order (default: the packaged AudioSet labels).
    extras : dict of str to numpy.ndarray
        Backend-specific arrays also stored in the ``.npz`` (e.g. PaddleAudio's ``time``/``scores``).
    thresholds : numpy.ndarray, float32, shape (C,), optional
        The model's per-class thresholds (chosen on validation data; ``--threshold auto`` compares each
        class with its own); None when the model stores none. Saved in the ``.npz`` as ``thresholds``.
    """

    source: str
    times: np.ndarray
    probs: np.ndarray
    hop: float
    window: float
    duration: float
    meta: dict[str, Any] = field(default_factory=dict)
    mids: tuple[str, ...] = ()
    names: tuple[str, ...] = ()
    extras: dict[str, np.ndarray] = field(default_factory=dict)
    thresholds: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.times = np.asarray(self.times, dtype=np.float64).reshape(-1)
        self.probs = np.asarray(self.probs, dtype=np.float32)
        if self.probs.ndim != 2 or self.probs.shape[0] != self.times.shape[0]:
            raise DataError(f"{self.source}: probabilities {self.probs.shape} do not match "
                            f"{self.times.shape[0]} time steps")
        check_scores(self.probs, self.source)
        if not self.mids:
            labels = load_labels()
            self.mids, self.names = labels.mids, labels.names
        self.mids, self.names = tuple(self.mids), tuple(self.names)
        if not (len(self.mids) == len(self.names) == self.probs.shape[1]):
            raise DataError(f"{self.source}: {self.probs.shape[1]} probability columns but "
                            f"{len(self.mids)} class labels")
        self.hop, self.window, self.duration = float(self.hop), float(self.window), float(self.duration)
        self.thresholds = check_result_thresholds(self.thresholds, self.probs.shape[1], self.source)

    @property
    def num_steps(self) -> int:
        """Number of time steps ``n``."""
        return int(self.times.shape[0])

    @property
    def ends(self) -> np.ndarray:
        """End of each step in seconds: ``times + hop``, cut at ``duration`` when that is after the start.

        Returns
        -------
        numpy.ndarray, float64, shape (n,)
        """
        ends = self.times + self.hop
        return np.where(self.duration > self.times, np.minimum(ends, self.duration), ends)

    def settings(self) -> dict[str, Any]:
        """Everything about how the matrix was made, as one JSON-serialisable dict."""
        return {"source": self.source, "hop": self.hop, "window": self.window, "duration": self.duration,
                **self.meta}

    # --- the .npz probability-matrix file ------------------------------------------------------

    def npz_arrays(self, display: dict[str, Any] | None = None) -> dict[str, np.ndarray]:
        """Return the arrays of the ``.npz`` file (DESIGN.md probability-matrix contract).

        Parameters
        ----------
        display : dict, optional
            The display options (threshold, top-k, ...) the outputs were rendered with; stored so that
            ``--from-probs`` re-renders the same files.

        Returns
        -------
        dict of str to numpy.ndarray
            ``probs`` float32 (n, C), ``times`` float64 (n,) seconds, ``mids`` and ``labels`` str (C,),
            ``settings`` (a JSON string), and scalars ``model``, ``backend``, ``left``, ``right``, ``hop``,
            ``window``, ``duration``, ``version``, ``source``, ``format``; ``thresholds`` float32 (C,)
            when the result has per-class thresholds; plus :attr:`extras`.
        """
        settings = self.settings()
        arrays: dict[str, np.ndarray] = {
            "probs": self.probs,
            "times": self.times,
            "mids": np.array(self.mids, dtype=str),
            "labels": np.array(self.names, dtype=str),
            "settings": np.array(json.dumps({**settings, "display": display or {}}, sort_keys=True)),
            "format": np.array(NPZ_FORMAT),
            "source": np.array(self.source),
            "hop": np.array(self.hop),
            "window": np.array(self.window),
            "duration": np.array(self.duration),
        }
        for key in ("model", "backend", "version"):
            arrays[key] = np.array(str(settings.get(key, "")))
        for key in ("left", "right"):
            if settings.get(key) is not None:
                arrays[key] = np.array(int(settings[key]))
        if self.thresholds is not None:
            arrays[THRESHOLDS] = self.thresholds.astype(np.float32)
        for key, value in self.extras.items():
            if key in arrays:
                raise DataError(f"{self.source}: extra array {key!r} would replace a standard one")
            arrays[key] = np.asarray(value)
        return arrays


def check_result_thresholds(thresholds, num_classes: int, source) -> np.ndarray | None:
    """Per-class thresholds of a result: None, or float32 ``(num_classes,)`` in [0, 1].

    Raises
    ------
    DataError
        Wrong shape, not numbers, or values outside [0, 1] (a damaged file).
    """
    if thresholds is None:
        return None
    values = np.asarray(thresholds)
    if (values.shape != (num_classes,) or not np.issubdtype(values.dtype, np.floating)
            or not np.isfinite(values).all() or (values.size and (values.min() < 0 or values.max() > 1))):
        raise DataError(f"{source}: per-class thresholds must be {num_classes} numbers in [0, 1], got "
                        f"{values.dtype} {values.shape}")
    return values.astype(np.float32)


def check_scores(scores: np.ndarray, source: str | os.PathLike, *, rows: bool = False) -> None:
    """The one validation rule for probability/score matrices (``tag``, ``--from-probs`` and ``parse``).

    Parameters
    ----------
    scores : numpy.ndarray, shape (n, C)
        Probabilities or scores.
    source : str or path-like
        Named in the message.
    rows : bool
        Also require at least one row (a saved file with no time steps has nothing to render).

    Raises
    ------
    DataError
        Not numeric, NaN or infinite values (e.g. from a model with NaN weights), or no rows.
    """
    scores = np.asarray(scores)
    if not np.issubdtype(scores.dtype, np.number):
        raise DataError(f"{source}: scores are not numbers (dtype {scores.dtype})")
    bad = ~np.isfinite(scores)
    if bad.any():
        raise DataError(f"{source}: {int(bad.sum())} of {scores.size} scores are NaN or infinite (a damaged "
                        "model or file)")
    if rows and (scores.ndim < 1 or scores.shape[0] == 0):
        raise DataError(f"{source}: the score matrix has no rows (no time steps to render)")


def load_result(path: str | os.PathLike) -> tuple[TagResult, dict[str, Any]]:
    """Read a probability-matrix ``.npz`` written by ``audiotagger tag`` (``-f npz``).

    Parameters
    ----------
    path : path-like
        The ``.npz`` file.

    Returns
    -------
    result : TagResult
        Probabilities, times, labels, settings and per-class thresholds (if any) exactly as saved.
    display : dict
        The display options stored with it (empty if none).

    Raises
    ------
    DataError
        If the file cannot be read, holds pickled objects, lacks an array of the contract, or its
        ``thresholds`` are malformed.
    """
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as npz:
            missing = [k for k in _REQUIRED if k not in npz.files]
            if missing:
                raise DataError(f"{path}: not an audiotagger probability file (missing {', '.join(missing)})")
            data = {k: npz[k] for k in npz.files}
    except DataError:
        raise
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"{path}: cannot read probability file ({first})") from None
    try:
        settings = json.loads(str(data["settings"]))
    except json.JSONDecodeError:
        raise DataError(f"{path}: 'settings' is not valid JSON") from None
    probs = data["probs"]
    if probs.ndim != 2 or probs.shape[1] != len(data["mids"]) or probs.shape[0] != data["times"].shape[0]:
        raise DataError(f"{path}: probs {probs.shape}, times {data['times'].shape} and "
                        f"{len(data['mids'])} labels do not agree")
    check_scores(probs, path, rows=True)
    display = settings.pop("display", {}) or {}
    source = settings.pop("source", path.stem)
    hop = settings.pop("hop")
    window = settings.pop("window", hop)
    duration = settings.pop("duration", float(data["times"][-1] + hop) if len(data["times"]) else 0.0)
    extras = {k: v for k, v in data.items() if k not in _STANDARD}
    result = TagResult(source=source, times=data["times"], probs=probs, hop=hop, window=window,
                       duration=duration, meta=settings, mids=tuple(str(m) for m in data["mids"]),
                       names=tuple(str(n) for n in data["labels"]), extras=extras,
                       thresholds=check_result_thresholds(data.get(THRESHOLDS), probs.shape[1], path))
    return result, display


def has_thresholds(path: str | os.PathLike) -> bool | None:
    """Whether a probability ``.npz`` stores per-class thresholds (reads only its member list).

    Returns
    -------
    bool or None
        None if the file cannot be read as an ``.npz`` (its own error comes when it is loaded).
    """
    try:
        with np.load(Path(path), allow_pickle=False) as npz:
            return THRESHOLDS in npz.files
    except Exception:  # noqa: BLE001  (not an .npz at all: loading it reports why)
        return None
