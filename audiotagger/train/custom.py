"""Custom classes: train and evaluate classifiers on a user's labelled audio over any backbone.

``train_audio`` is ``audiotagger train --audio DIR`` / ``--audio-csv FILE``:

1. list the clips (:mod:`.audio`; bad entries are problem lines, the rest is used);
2. embed each clip with the backbone (:mod:`.embcache`: computed once, then read back by content hash);
3. cut each clip's rows into windows of 10 (:func:`audiotagger.classifier.tiling.clip_windows`: a clip of
   ``n`` rows gives ``ceil(n / 10)`` windows, the last tiled cyclically), each labelled with its clip's
   classes;
4. split by clip (never a window of one clip on both sides): the csv's ``fold`` column, or a seeded
   ``--validation-split``/``--test-split`` stratified by label set;
5. run the same training loop as the AudioSet models (:func:`audiotagger.train.loop.train`): balanced
   batches, resumable workspace, stats per evaluation, ``best.npz``. Every model file's config also
   holds ``labels`` and ``backbone``, so ``audiotagger tag --model best.npz`` needs nothing else.

``evaluate_audio`` scores a custom model on labelled audio clip by clip (the mean of a clip's window
probabilities): mAP/AUC/d′, plus accuracy and the confusion matrix for a single-label model.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..classifier.models import CUSTOM_BN_MOMENTUM
from ..errors import DataError, ParameterError
from ..params import (
    CUSTOM_BACKBONE,
    EMBEDDING_CACHE_DIR,
    TEST_FOLD,
    VALIDATION_FOLD,
)
from .audio import AudioData, Clip, read_audio_csv, read_audio_folder
from .data import EmbeddingSet
from .embcache import EmbedReport, embed_clips

VALIDATION_ALIASES = ("validation", "val", "valid", "eval")
"""csv ``fold`` values that mean validation when ``--validation-fold`` is left at its default."""


def default_cache_dir(model_dir: str | os.PathLike | None = None) -> Path:
    """``<model cache>/embeddings`` (``$AUDIOTAGGER_HOME``, ``--model-dir``, ...)."""
    from ..hub import cache_dir

    return cache_dir(model_dir) / EMBEDDING_CACHE_DIR


def read_audio_data(audio_dir=None, audio_csv=None, *, labels: Sequence[str] | None = None,
                    single_label: bool = False) -> AudioData:
    """Read ``--audio DIR`` or ``--audio-csv FILE`` (exactly one of them).

    Raises
    ------
    ParameterError
        Neither or both given.
    DataError
        See :func:`.audio.read_audio_folder` and :func:`.audio.read_audio_csv`.
    """
    if (audio_dir is None) == (audio_csv is None):
        raise ParameterError("give exactly one of --audio DIR and --audio-csv FILE")
    if audio_dir is not None:
        return read_audio_folder(audio_dir, labels)
    return read_audio_csv(audio_csv, labels, single_label)


def label_matrix(clips: Sequence[Clip], labels: Sequence[str]) -> np.ndarray:
    """Multi-hot labels (N, C) bool of clips over ``labels`` (labels outside it are ignored)."""
    index = {label: i for i, label in enumerate(labels)}
    y = np.zeros((len(clips), len(labels)), dtype=bool)
    for i, clip in enumerate(clips):
        for label in clip.labels:
            if label in index:
                y[i, index[label]] = True
    return y


def windows_set(rows: Sequence[np.ndarray], y: np.ndarray, names: Sequence[str], source: str) -> EmbeddingSet:
    """Windows of 10 rows of every clip, each labelled with its clip's classes.

    Parameters
    ----------
    rows : sequence of numpy.ndarray (n_i, D)
    y : numpy.ndarray of bool, shape (N, C)
    names : sequence of str
        Clip names (window ids become ``<name>#<k>``).
    source : str

    Returns
    -------
    EmbeddingSet
        ``x`` (W, 10, D) of the rows' dtype, ``y`` (W, C), ``video_ids`` (W,), ``n_frames`` (W,).
    """
    from ..classifier.tiling import clip_windows

    xs, ys, ids, counts = [], [], [], []
    for r, labels, name in zip(rows, y, names, strict=True):
        w, n = clip_windows(r)
        xs.append(w)
        ys.append(np.repeat(labels[None], len(w), axis=0))
        ids += [f"{name}#{k}" for k in range(len(w))]
        counts.append(n)
    return EmbeddingSet(np.concatenate(xs), np.concatenate(ys), np.array(ids), np.concatenate(counts), source)


def split_clips(clips: Sequence[Clip], y: np.ndarray, *, has_folds: bool, validation_split: float,
                test_split: float, split_seed: int, validation_fold: str | None,
                test_fold: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices of the (train, validation, test) clips.

    With a csv ``fold`` column: clips whose fold is ``validation_fold`` (default: any of
    :data:`VALIDATION_ALIASES`) validate, those of ``test_fold`` test, the rest train. Otherwise a seeded
    split stratified by label set: of each group of ``m`` clips with the same labels,
    ``round(m * test_split)`` test and ``round(m * validation_split)`` validate (at least one each when the
    fraction is > 0 and the group has a clip left to train on).

    Raises
    ------
    ParameterError
        Both a fold column and ``--validation-split``, or neither; a fraction outside [0, 1).
    """
    if has_folds:
        if validation_split > 0 or test_split > 0:
            raise ParameterError("--validation-split/--test-split: the csv has a fold column, which "
                                 "already assigns the held-out clips; give one or the other")
        folds = np.array([c.fold or "" for c in clips])
        val_names = VALIDATION_ALIASES if validation_fold is None else (validation_fold,)
        va = np.flatnonzero(np.isin(folds, val_names))
        te = np.flatnonzero(folds == test_fold)
        tr = np.setdiff1d(np.arange(len(clips)), np.concatenate([va, te]))
        if va.size == 0:
            raise ParameterError(f"fold column: no clip in the validation fold ({'/'.join(val_names)}); "
                                 "set --validation-fold")
        return tr, va, te
    for flag, frac in (("--validation-split", validation_split), ("--test-split", test_split)):
        if not 0.0 <= frac < 1.0:
            raise ParameterError(f"{flag}: must be in [0, 1), got {frac}")
    if validation_split <= 0:
        raise ParameterError("custom training needs held-out clips: give --validation-split or a fold "
                             "column in the csv")
    rng = np.random.default_rng(split_seed)
    groups: dict[bytes, list[int]] = {}
    for i, row in enumerate(y):
        groups.setdefault(row.tobytes(), []).append(i)
    tr, va, te = [], [], []
    for key in sorted(groups):
        members = rng.permutation(groups[key])
        m = len(members)
        n_te = _share(m, test_split)
        n_va = _share(m - n_te, validation_split) if m - n_te > 0 else 0
        te += members[:n_te].tolist()
        va += members[n_te:n_te + n_va].tolist()
        tr += members[n_te + n_va:].tolist()
    return np.sort(tr).astype(np.int64), np.sort(va).astype(np.int64), np.sort(te).astype(np.int64)


def _share(m: int, frac: float) -> int:
    """Clips of a group of ``m`` held out for ``frac``: rounded, >= 1 if ``frac > 0`` and ``m >= 2``."""
    if frac <= 0 or m < 2:
        return 0
    return int(min(m - 1, max(1, round(m * frac))))


def _load_backbone(name: str, **options: Any):
    from ..backbones import get_backbone, load_backbone

    get_backbone(name)                                        # unknown --backbone: usage error first
    return load_backbone(name, **options)


def train_audio(workspace: str | os.PathLike, *, audio_dir=None, audio_csv=None,
                backbone: str = CUSTOM_BACKBONE, labels: Sequence[str] | None = None,
                single_label: bool = False, validation_split: float = 0.0, test_split: float = 0.0,
                split_seed: int = 1234, validation_fold: str | None = None, test_fold: str = TEST_FOLD,
                embedding_cache: str | os.PathLike | None = None, checkpoint=None, pca_params=None,
                model_dir=None, offline: bool | None = None,
                on_problem: Callable[[str], None] | None = None, progress: bool = True,
                **train_options: Any):
    """Train a custom classifier on labelled audio (``audiotagger train --audio/--audio-csv``).

    Parameters
    ----------
    workspace : path-like
        As for :func:`audiotagger.train.loop.train` (the run is in ``<workspace>/<tag>/``).
    audio_dir, audio_csv : path-like
        Exactly one: a class-folder tree or a ``path,labels[,start,end][,fold]`` csv.
    backbone : str
        ``vggish``, ``yamnet``, ``panns-cnn14`` ... (:func:`audiotagger.backbones.backbone_names`).
    labels : sequence of str, optional
        Only these classes (csv: rows with other labels are problems); default all found.
    single_label : bool
        Softmax over the classes (one per clip); stats add accuracy and a confusion matrix.
    validation_split, test_split, split_seed
        Seeded, label-stratified held-out fractions of the clips (not with a fold column).
    validation_fold, test_fold : str
        The csv ``fold`` values of the held-out parts (validation default: validation/val/valid/eval).
    embedding_cache : path-like, optional
        Embedding cache folder (default ``<model cache>/embeddings``).
    checkpoint, pca_params, model_dir, offline
        The backbone's model files.
    on_problem : callable, optional
        Called with each problem line (an entry left out) as soon as it is found.
    progress : bool
        Progress bars.
    **train_options
        Model, optimisation and evaluation keywords of :func:`audiotagger.train.loop.train` (``tag``,
        ``model_type``, ``levels``, ``iterations``, ``batch_size``, ``eval_every``, ...).

    Returns
    -------
    audiotagger.train.loop.TrainResult
        With ``problems``: every entry left out (the run used the others).

    Raises
    ------
    ParameterError
        Bad flags, before anything is embedded or written.
    DataError
        Data that cannot train a classifier (see :mod:`.audio`), or a class left without training clips.
    ModelError
        The backbone is not installed or lacks its weights.
    """
    from ..backbones import get_backbone
    from .loop import train

    get_backbone(backbone)                                  # usage errors before reading any data
    for flag, frac in (("--validation-split", validation_split), ("--test-split", test_split)):
        if not 0.0 <= frac < 1.0:
            raise ParameterError(f"{flag}: must be in [0, 1), got {frac}")
    if audio_dir is not None and audio_csv is None and validation_split <= 0:
        raise ParameterError("custom training needs held-out clips: give --validation-split (a class "
                             "folder tree has no fold column)")
    data = read_audio_data(audio_dir, audio_csv, labels=labels, single_label=single_label)
    problems = list(data.problems)
    if on_problem is not None:
        for line in data.problems:
            on_problem(line)
    if labels is not None:
        absent = [x for x in data.labels if not any(x in c.labels for c in data.clips)]
        if absent:
            raise DataError(f"{data.source}: no clip of class {absent[0]!r} (--labels)")
    # usage errors of the split before any embedding
    y = label_matrix(data.clips, data.labels)
    split_clips(data.clips, y, has_folds=data.has_folds, validation_split=validation_split,
                test_split=test_split, split_seed=split_seed, validation_fold=validation_fold,
                test_fold=test_fold)

    bb = _load_backbone(backbone, checkpoint=checkpoint, pca_params=pca_params, model_dir=model_dir,
                        offline=offline)
    cache_dir = Path(embedding_cache) if embedding_cache is not None else default_cache_dir(model_dir)
    rows, failed, report = embed_clips(data.clips, bb, cache_dir, on_problem=on_problem, progress=progress)
    problems += failed
    keep = [i for i, r in enumerate(rows) if r is not None]
    if not keep:
        raise DataError(f"{data.source}: no clip could be embedded "
                        f"({failed[0] if failed else 'none listed'})")
    clips = [data.clips[i] for i in keep]
    rows = [rows[i] for i in keep]
    y = y[keep]
    tr, va, te = split_clips(clips, y, has_folds=data.has_folds, validation_split=validation_split,
                             test_split=test_split, split_seed=split_seed, validation_fold=validation_fold,
                             test_fold=test_fold)
    missing = [data.labels[k] for k in np.flatnonzero(~y[tr].any(axis=0))] if tr.size else list(data.labels)
    if missing:
        raise DataError(f"{data.source}: class {missing[0]!r} has no training clip (all its clips are held "
                        "out or failed)")
    names = [c.name for c in clips]

    def part(idx):
        return windows_set([rows[i] for i in idx], y[idx], [names[i] for i in idx], data.source)

    sets = (part(tr), part(va), part(te) if te.size else None)
    digest = hashlib.sha256(json.dumps(
        [[c.name, list(c.labels), c.fold, r.shape[0]] for c, r in zip(clips, rows, strict=True)]).encode())
    data_settings = {
        "audio": str(data.source), "backbone": bb.identity(), "labels": list(data.labels),
        "data_digest": digest.hexdigest(), "validation_fold": validation_fold, "test_fold": test_fold,
    }
    if not train_options.get("tag"):
        train_options["tag"] = f"{backbone}_{'single' if single_label else 'multi'}"
    result = train(str(data.source), workspace, validation_split=validation_split, test_split=test_split,
                   split_seed=split_seed, single_label=single_label, sets=sets, progress=progress,
                   model_extra={"labels": list(data.labels), "backbone": backbone,
                                "backbone_hop": bb.hop, "bn_momentum": CUSTOM_BN_MOMENTUM},
                   data_settings=data_settings, **train_options)
    result.problems = problems
    result.embed_report = report
    return result


def evaluate_audio(model: str | os.PathLike, *, audio_dir=None, audio_csv=None,
                   embedding_cache: str | os.PathLike | None = None, checkpoint=None, pca_params=None,
                   model_dir=None, offline: bool | None = None, json_path: str | os.PathLike | None = None,
                   batch_size: int = 1024, on_problem: Callable[[str], None] | None = None,
                   progress: bool = False) -> dict:
    """Score a custom model on labelled audio, clip by clip (``audiotagger evaluate --audio/--audio-csv``).

    A clip's probabilities are the mean over its windows (:func:`windows_set`). Entries with a class the
    model does not know, and clips that cannot be decoded, are problems (left out; see ``problems``).

    Returns
    -------
    dict
        ``mAP``, ``AUC``, ``d_prime``, per-class ``AP``/``auc``; ``accuracy`` and ``confusion`` (rows: true
        class, columns: predicted) for a single-label model; ``labels``, ``n_clips``, ``model``, ``data``,
        ``backbone``, ``problems``, ``embedding`` (cached/embedded counts).

    Raises
    ------
    ModelError
        Not a custom model, or its backbone is unavailable.
    DataError
        No usable clip.
    """
    from ..classifier import load_classifier
    from ..classifier.store import read_config
    from ..errors import ModelError
    from ..fileio import atomic_write_text
    from .metrics import calculate_stats, single_label_stats

    config, _ = read_config(model)
    if "backbone" not in config or "labels" not in config:
        raise ModelError(f"{model}: not a custom model (no backbone and labels); for AudioSet models give "
                         "--data")
    labels = tuple(config["labels"])
    data = read_audio_data(audio_dir, audio_csv, labels=labels)
    problems = list(data.problems)
    if on_problem is not None:
        for line in data.problems:
            on_problem(line)
    try:
        bb = _load_backbone(config["backbone"], checkpoint=checkpoint, pca_params=pca_params,
                            model_dir=model_dir, offline=offline)
    except (ParameterError, ModelError) as exc:
        raise ModelError(f"{model}: needs backbone {config['backbone']!r}, which is not available here: "
                         f"{str(exc).removeprefix('--backbone: ')}") from None
    cache_dir = Path(embedding_cache) if embedding_cache is not None else default_cache_dir(model_dir)
    rows, failed, report = embed_clips(data.clips, bb, cache_dir, on_problem=on_problem, progress=progress)
    problems += failed
    keep = [i for i, r in enumerate(rows) if r is not None]
    if not keep:
        raise DataError(f"{data.source}: no clip could be embedded")
    clf = load_classifier(model)
    y = label_matrix([data.clips[i] for i in keep], labels)
    windows = windows_set([rows[i] for i in keep], y, [data.clips[i].name for i in keep], data.source)
    window_probs = clf.predict(windows.x, batch_size=batch_size)
    owner = np.repeat(np.arange(len(keep)), [int(np.ceil(len(rows[i]) / 10)) for i in keep])
    probs = np.zeros((len(keep), len(labels)), np.float64)
    np.add.at(probs, owner, window_probs)
    probs = (probs / np.bincount(owner)[:, None]).astype(np.float32)
    try:
        stats = calculate_stats(probs, y)
    except DataError:     # e.g. every clip of one class: no AP, but accuracy is still defined
        nan = float("nan")
        stats = {"mAP": nan, "AUC": nan, "d_prime": nan, "AP": [None] * len(labels),
                 "auc": [None] * len(labels), "n_classes": 0, "n_clips": len(keep)}
    if config.get("single_label"):
        stats.update(single_label_stats(probs, y))
    stats.update(model=clf.name, data=str(data.source), labels=list(labels), backbone=config["backbone"],
                 problems=problems, single_label=bool(config.get("single_label")),
                 clips=[data.clips[i].name for i in keep],
                 predicted=[labels[k] for k in probs.argmax(axis=1)],
                 embedding={"cached": report.cached, "embedded": report.embedded, "failed": report.failed})
    if json_path is not None:
        atomic_write_text(json_path, json.dumps(stats, indent=1))
    return stats


__all__ = ["EmbedReport", "VALIDATION_FOLD", "default_cache_dir", "evaluate_audio", "read_audio_data",
           "split_clips", "train_audio", "windows_set"]
