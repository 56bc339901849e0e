"""Backbone embeddings of clips, computed once and kept by content hash.

The key of a clip is the SHA-256 of (the file's bytes, the backbone's fingerprint — its name, row layout
and weight files' bytes — and the part's start/end), so renaming or moving a file costs nothing, editing
it or changing the backbone's weights makes a new entry, and a second run (or another recipe on the same
data) reads every embedding back instead of running the backbone. Entries are ``.npz`` files (``rows``,
``duration``; never pickled) written atomically under ``<cache>/<backbone>/<key[:2]>/<key>.npz``.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import warnings
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..backbones import Backbone, file_sha256
from ..errors import AudioTaggerError, AudioTaggerWarning
from ..fileio import atomic_save_npz, ensure_writable_dir
from .audio import Clip


@dataclass
class EmbedReport:
    """How a set of clips was embedded: counts, and seconds of audio run through the backbone."""

    cached: int = 0
    embedded: int = 0
    failed: int = 0
    seconds: float = 0.0


class EmbeddingCache:
    """The cache folder of one backbone.

    Parameters
    ----------
    folder : path-like
        Cache root (``--embedding-cache``; default ``<model cache>/embeddings``).
    backbone : Backbone
        Its :attr:`~audiotagger.backbones.Backbone.fingerprint` enters every key (weights are hashed, the
        network is not loaded).
    """

    def __init__(self, folder: str | os.PathLike, backbone: Backbone):
        self.root = Path(folder)
        self.backbone = backbone
        self.folder = self.root / backbone.name

    def key(self, clip: Clip) -> str:
        """The clip's content key (hex SHA-256)."""
        parts = {"file": file_sha256(clip.path), "backbone": self.backbone.fingerprint,
                 "start": clip.start, "end": clip.end}
        return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()

    def path(self, key: str) -> Path:
        """Where the entry of ``key`` lives."""
        return self.folder / key[:2] / f"{key}.npz"

    def get(self, key: str) -> np.ndarray | None:
        """The cached rows of ``key``, or None (a damaged entry is dropped and recomputed)."""
        path = self.path(key)
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as npz:
                rows = npz["rows"]
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
            path.unlink(missing_ok=True)
            return None
        if rows.ndim != 2 or rows.shape[1] != self.backbone.dim or rows.dtype != self.backbone.dtype:
            path.unlink(missing_ok=True)
            return None
        return rows

    def put(self, key: str, rows: np.ndarray, duration: float, source: str) -> None:
        """Store rows (atomically; a cache that cannot be written is only a warning)."""
        try:
            ensure_writable_dir(self.path(key).parent)
            atomic_save_npz(self.path(key), rows=rows, duration=np.float64(duration), source=np.array(source))
        except OSError as exc:
            warnings.warn(f"{self.root}: embedding cache not writable ({exc.strerror or exc})",
                          AudioTaggerWarning, stacklevel=2)


def embed_clips(clips: Sequence[Clip], backbone: Backbone, cache_dir: str | os.PathLike, *,
                on_problem: Callable[[str], None] | None = None, progress: bool = False
                ) -> tuple[list[np.ndarray | None], list[str], EmbedReport]:
    """Backbone rows of every clip, from the cache or computed (and then cached).

    Parameters
    ----------
    clips : sequence of Clip
    backbone : Backbone
    cache_dir : path-like
        Cache root.
    on_problem : callable, optional
        Called with each problem line as soon as it happens.
    progress : bool
        Progress bar over the clips (stderr).

    Returns
    -------
    rows : list of (numpy.ndarray (n, D) or None)
        Per clip; None for a clip that failed.
    problems : list of str
        ``<clip>: <problem>`` for each failure (undecodable file, empty part, ...).
    report : EmbedReport
    """
    from tqdm.auto import tqdm

    cache = EmbeddingCache(cache_dir, backbone)
    out: list[np.ndarray | None] = []
    problems: list[str] = []
    report = EmbedReport()
    for clip in tqdm(clips, desc=f"embedding ({backbone.name})", unit="clip", disable=not progress,
                     leave=False, file=sys.stderr):
        try:
            key = cache.key(clip)
        except OSError as exc:
            _problem(problems, on_problem, f"{clip.name}: cannot read ({exc.strerror or exc})")
            report.failed += 1
            out.append(None)
            continue
        rows = cache.get(key)
        if rows is not None:
            report.cached += 1
            out.append(rows)
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", AudioTaggerWarning)   # short parts are padded: expected
                rows, duration = backbone.embed_file(clip.path, clip.start, clip.end)
        except (AudioTaggerError, OSError) as exc:
            text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            text = text.removeprefix(f"{clip.path}: ")
            _problem(problems, on_problem, f"{clip.name}: {text}")
            report.failed += 1
            out.append(None)
            continue
        rows = np.ascontiguousarray(rows, dtype=backbone.dtype)
        cache.put(key, rows, duration, clip.name)
        report.embedded += 1
        report.seconds += duration
        out.append(rows)
    return out, problems, report


def _problem(problems: list[str], on_problem, line: str) -> None:
    problems.append(line)
    if on_problem is not None:
        on_problem(line)
