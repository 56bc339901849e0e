"""Score a classifier on labelled AudioSet embeddings (``audiotagger evaluate``)."""

from __future__ import annotations

import json
import os

from ..fileio import atomic_write_text
from .data import read_embeddings
from .metrics import calculate_stats

SPLIT_PARTS = ("train", "validation", "test")
"""The parts of a training run's ``split.npz`` (video ids of each)."""


def split_part(clips, split: str | os.PathLike, part: str):
    """The clips of ``part`` of a training run's ``split.npz``, by video id.

    Parameters
    ----------
    clips : EmbeddingSet
    split : path-like
        ``WORKSPACE/TAG/split.npz`` of ``audiotagger train`` (arrays of video ids per part).
    part : {"train", "validation", "test"}

    Raises
    ------
    DataError
        The file is unreadable, the part is empty, or some of its clips are not in ``clips``.
    """
    import zipfile

    import numpy as np

    from ..errors import DataError

    try:
        with np.load(split, allow_pickle=False) as npz:
            ids = npz[part]
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as exc:
        raise DataError(f"{split}: not a training run's split.npz with a {part!r} part "
                        f"({type(exc).__name__}: {exc})") from None
    if len(ids) == 0:
        raise DataError(f"{split}: the {part} part is empty")
    where = {v: i for i, v in enumerate(clips.video_ids)}
    missing = [v for v in ids if v not in where]
    if missing:
        raise DataError(f"{split}: {len(missing)} of the {len(ids)} {part} clips are not in {clips.source} "
                        f"(first: {missing[0]})")
    return clips.subset(np.array([where[v] for v in ids]))


def evaluate(model: str | os.PathLike | None = None, data: str | os.PathLike = "", *,
             json_path: str | os.PathLike | None = None, batch_size: int = 1024,
             progress: bool = False, split: str | os.PathLike | None = None, part: str = "test") -> dict:
    """Compute mAP, AUC and d′ (SPEC §5) of a classifier on a TFRecord folder/glob or packed HDF5 file.

    Parameters
    ----------
    model : path-like or None
        A classifier file for :func:`audiotagger.classifier.load_classifier` (None: the packaged default).
    data : path-like or str
        Labelled clips (``.h5``, TFRecord folder or glob).
    json_path : path-like, optional
        Also write the stats (with per-class AP/AUC and the class ids) to this JSON file, atomically.
    batch_size : int
        Clips per model call.
    progress : bool
        Progress bar over the clips (with total and ETA) on stderr.
    split, part : path-like and str, optional
        Score only the clips of ``part`` of a training run's ``split.npz`` (:func:`split_part`).

    Returns
    -------
    dict
        ``mAP``, ``AUC``, ``d_prime``, ``AP``, ``auc`` (per class, None where a class has no positive),
        ``n_classes``, ``n_clips``, ``model``, ``data``.
    """
    from ..classifier import load_classifier
    from ..labels import load_labels

    clf = load_classifier(model)
    clips = read_embeddings(data)
    if split is not None:
        clips = split_part(clips, split, part)
    n = len(clips.x)
    if progress and n > batch_size:
        import sys

        import numpy as np
        from tqdm.auto import tqdm

        probs = np.empty((n, clf.num_classes), np.float32)
        with tqdm(total=n, desc="evaluate", unit="clip", leave=False, file=sys.stderr) as bar:
            for start in range(0, n, batch_size):
                stop = min(start + batch_size, n)
                probs[start:stop] = clf.predict(clips.x[start:stop], batch_size=batch_size)
                bar.update(stop - start)
    else:
        probs = clf.predict(clips.x, batch_size=batch_size)
    stats = calculate_stats(probs, clips.y)
    stats.update(model=clf.name, data=str(data) if split is None else f"{data} ({part} part of {split})",
                 mids=list(load_labels().mids))
    if json_path is not None:
        atomic_write_text(json_path, json.dumps(stats, indent=1))
    return stats
