"""A user's labelled audio: the clips of a class-folder tree or of a csv, checked row by row.

Two layouts:

* a folder with one sub-folder per class (the layout of Keras' ``audio_dataset_from_directory``): class
  names are the sub-folder names in sorted order, and every media file below a class folder is one clip
  of that class;
* a csv ``path,labels[,start,end][,fold]`` (a header row naming these columns is optional; without one,
  2 columns are ``path,labels``, 3 ``path,labels,fold``, 4 ``path,labels,start,end`` and 5 all): paths are
  relative to the csv's folder, several labels are separated by ``;``, ``start``/``end`` (seconds, either
  may be empty) cut a part of the file, and ``fold`` assigns the clip to ``validation``/``test`` parts.

A bad entry (a missing file, an empty class folder, an unknown or missing label, a bad time) is one
problem line naming it; the entry is left out and the others are used. Only data that cannot train a
classifier at all (fewer than two classes with clips, no usable row) is a :class:`DataError`.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import DataError
from ..params import CSV_LABEL_SEPARATOR, MEDIA_EXTENSIONS

_CSV_COLUMNS = {2: ("path", "labels"), 3: ("path", "labels", "fold"), 4: ("path", "labels", "start", "end"),
                5: ("path", "labels", "start", "end", "fold")}
_COLUMN_ALIASES = {"path": "path", "file": "path", "filename": "path", "labels": "labels", "label": "labels",
                   "start": "start", "end": "end", "stop": "end", "fold": "fold", "split": "fold"}


@dataclass(frozen=True)
class Clip:
    """One labelled piece of audio.

    Attributes
    ----------
    path : pathlib.Path
    labels : tuple of str
    start, end : float or None
        Seconds; None means the start / the end of the file.
    fold : str or None
        The csv's ``fold`` value.
    where : str
        Where it was listed (``data.csv line 4`` or the file's path), for messages.
    """

    path: Path
    labels: tuple[str, ...]
    start: float | None = None
    end: float | None = None
    fold: str | None = None
    where: str = ""

    @property
    def name(self) -> str:
        """``path`` or ``path[start-end]`` for a part."""
        if self.start is None and self.end is None:
            return str(self.path)
        return f"{self.path}[{_seconds(self.start)}-{_seconds(self.end)}]"


def _seconds(value: float | None) -> str:
    return "" if value is None else f"{value:g}"


@dataclass
class AudioData:
    """The clips of a data source, its classes, and the problems found while reading it.

    Attributes
    ----------
    clips : list of Clip
    labels : tuple of str
        Class names in column order.
    problems : list of str
        One line per entry left out (``<where>: <problem>``).
    source : str
        The folder or csv.
    has_folds : bool
        The csv has a ``fold`` column.
    """

    clips: list[Clip]
    labels: tuple[str, ...]
    problems: list[str] = field(default_factory=list)
    source: str = ""
    has_folds: bool = False


def read_audio_folder(folder: str | os.PathLike, labels: Sequence[str] | None = None) -> AudioData:
    """List the clips of a class-folder tree (one sub-folder per class).

    Parameters
    ----------
    folder : path-like
        The root; hidden sub-folders are skipped, files directly in it are ignored.
    labels : sequence of str, optional
        Known classes (``--labels``, or a model's when evaluating): a class folder not among them is a
        problem.

    Returns
    -------
    AudioData
        Classes in sorted folder order (or ``labels``' order); an empty class folder is a problem and
        its class is left out.

    Raises
    ------
    DataError
        The folder does not exist, or fewer than two classes hold audio (training needs two).
    """
    root = Path(folder)
    if not root.is_dir():
        raise DataError(f"{root}: no such folder (expected one sub-folder per class)")
    classes = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    problems: list[str] = []
    clips: list[Clip] = []
    found: list[str] = []
    for d in classes:
        files = sorted(p for p in d.rglob("*") if p.is_file() and p.suffix.lower() in MEDIA_EXTENSIONS
                       and not any(part.startswith(".") for part in p.relative_to(d).parts))
        if labels is not None and d.name not in labels:
            problems.append(f"{d}: class {d.name!r} is not among the known classes ({', '.join(labels)}); "
                            "left out")
            continue
        if not files:
            problems.append(f"{d}: class folder holds no audio files; class {d.name!r} left out")
            continue
        found.append(d.name)
        clips += [Clip(p, (d.name,), where=str(p)) for p in files]
    if labels is None:
        if len(found) < 2:
            what = f"found {len(found)}" + (f" ({found[0]})" if found else "")
            raise DataError(f"{root}: needs at least two class folders with audio files, {what}")
        out_labels = tuple(found)
    else:
        out_labels = tuple(labels)
        if not clips:
            raise DataError(f"{root}: no audio files in a class folder of the model's labels")
    return AudioData(clips, out_labels, problems, str(root))


def read_audio_csv(path: str | os.PathLike, labels: Sequence[str] | None = None,
                   single_label: bool = False) -> AudioData:
    """List the clips of a ``path,labels[,start,end][,fold]`` csv (see the module docstring).

    Parameters
    ----------
    path : path-like
        The csv (comma- or tab-separated, UTF-8).
    labels : sequence of str, optional
        The only classes allowed (``--labels``, or a model's when evaluating): a row with any other label
        is a problem. Default: every label the csv uses, sorted.
    single_label : bool
        A row with more than one label is a problem.

    Returns
    -------
    AudioData

    Raises
    ------
    DataError
        The csv is missing or unreadable, has no usable row, or (when ``labels`` is not given) fewer than
        two classes remain.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read csv ({getattr(exc, 'strerror', None) or exc})") from None
    lines = text.splitlines()
    delimiter = "\t" if lines and "\t" in lines[0] and "," not in lines[0] else ","
    rows = list(csv.reader(lines, delimiter=delimiter))
    header = None
    first = {c.strip().lower() for c in rows[0]} if rows else set()
    if first & {"path", "file", "filename"}:
        names = [c.strip().lower() for c in rows[0]]
        unknown = [c for c in names if c not in _COLUMN_ALIASES]
        if unknown or "labels" not in [_COLUMN_ALIASES[c] for c in names]:
            raise DataError(f"{path}: header must name path, labels and optionally start, end, fold; got "
                            f"{', '.join(rows[0])}")
        header = [_COLUMN_ALIASES[c] for c in names]
    allowed = None if labels is None else set(labels)
    problems: list[str] = []
    clips: list[Clip] = []
    has_folds = header is not None and "fold" in header
    for number, row in enumerate(rows, start=1):
        if header is not None and number == 1:
            continue
        if not row or all(not c.strip() for c in row) or row[0].lstrip().startswith("#"):
            continue
        where = f"{path} line {number}"
        columns = header or _CSV_COLUMNS.get(len(row))
        if columns is None or len(row) != len(columns):
            want = len(header) if header else "2 to 5"
            problems.append(f"{where}: {len(row)} columns, expected {want} (path,labels[,start,end][,fold])")
            continue
        has_folds = has_folds or "fold" in columns
        cell = {k: v.strip() for k, v in zip(columns, row, strict=True)}
        clip, problem = _csv_clip(path, where, cell, allowed, single_label)
        if problem:
            problems.append(f"{where}: {problem}")
        else:
            clips.append(clip)
    if not clips:
        raise DataError(f"{path}: no usable row" + (f" ({len(problems)} left out: {problems[0]})"
                                                    if problems else ""))
    if labels is None:
        used = sorted({label for c in clips for label in c.labels})
        if len(used) < 2:
            raise DataError(f"{path}: needs at least two classes, found {len(used)} ({', '.join(used)})")
        labels = used
    return AudioData(clips, tuple(labels), problems, str(path), has_folds)


def _csv_clip(csv_path: Path, where: str, cell: dict[str, str], allowed: set[str] | None,
              single_label: bool) -> tuple[Clip | None, str | None]:
    """One csv row as a clip, or the problem that leaves it out."""
    if not cell.get("path"):
        return None, "empty path"
    file = Path(cell["path"]).expanduser()
    if not file.is_absolute():
        file = csv_path.parent / file
    if not file.is_file():
        return None, f"{file}: no such file"
    labels = tuple(dict.fromkeys(x.strip() for x in cell.get("labels", "").split(CSV_LABEL_SEPARATOR)
                                 if x.strip()))
    if not labels:
        return None, f"{file}: no label"
    if allowed is not None:
        unknown = [x for x in labels if x not in allowed]
        if unknown:
            return None, f"{file}: unknown label {unknown[0]!r} (known: {', '.join(sorted(allowed))})"
    if single_label and len(labels) > 1:
        return None, f"{file}: {len(labels)} labels ({';'.join(labels)}), but --single-label needs one"
    times = []
    for key in ("start", "end"):
        text = cell.get(key, "")
        if not text:
            times.append(None)
            continue
        try:
            value = float(text)
        except ValueError:
            return None, f"{file}: {key} {text!r} is not a number of seconds"
        if not math.isfinite(value) or value < 0:
            return None, f"{file}: {key} {text!r} must be a finite number of seconds >= 0"
        times.append(value)
    start, end = times
    if start is not None and end is not None and end <= start:
        return None, f"{file}: end {end:g} s is not after start {start:g} s"
    return Clip(file, labels, start, end, cell.get("fold") or None, where), None
