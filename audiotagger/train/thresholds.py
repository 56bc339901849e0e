"""Per-class decision thresholds chosen on validation data, and the precision/recall they give.

``tag --threshold auto`` shows a class when its probability reaches that class's own threshold (stored in
the model file, :data:`audiotagger.classifier.store.THRESHOLDS`). :func:`f1_thresholds` picks each class's
F1-optimal point on a grid; classes with too few validation positives for that to mean anything get the
threshold that is F1-optimal over all of them together (micro-averaged).
"""

from __future__ import annotations

import numpy as np

GRID = np.round(np.arange(0.01, 1.0, 0.01), 2)
"""Candidate thresholds: 0.01, 0.02, ..., 0.99."""
MIN_POSITIVES = 5
"""Fewest validation positives for a class to get its own threshold."""


def _counts(probs: np.ndarray, y: np.ndarray, grid: np.ndarray) -> tuple[np.ndarray, ...]:
    """True positives, false positives and false negatives per (threshold, class): int64 (T, C) each."""
    probs, y = np.asarray(probs, np.float32), np.asarray(y, bool)
    pos = y.sum(0)
    tp = np.empty((len(grid), probs.shape[1]), np.int64)
    fp = np.empty_like(tp)
    for i, t in enumerate(grid):
        shown = probs >= np.float32(t)
        tp[i] = (shown & y).sum(0)
        fp[i] = shown.sum(0) - tp[i]
    return tp, fp, pos[None, :] - tp


def _f1(tp, fp, fn) -> np.ndarray:
    denom = 2 * tp + fp + fn
    return np.where(denom > 0, 2 * tp / np.maximum(denom, 1), 0.0)


def f1_thresholds(probs: np.ndarray, y: np.ndarray, *, grid: np.ndarray = GRID,
                  min_positives: int = MIN_POSITIVES) -> tuple[np.ndarray, float]:
    """Per-class F1-optimal thresholds.

    Parameters
    ----------
    probs : numpy.ndarray, shape (N, C)
        Validation probabilities.
    y : numpy.ndarray of bool, shape (N, C)
        Their labels.
    grid : numpy.ndarray, shape (T,)
        Candidate thresholds, ascending.
    min_positives : int
        Classes with fewer validation positives get the global threshold.

    Returns
    -------
    thresholds : numpy.ndarray, float32, shape (C,)
        Ties go to the lowest candidate.
    global_threshold : float
        The threshold with the best micro-averaged F1 over all classes.
    """
    tp, fp, fn = _counts(probs, y, grid)
    best_global = float(grid[int(np.argmax(_f1(tp.sum(1), fp.sum(1), fn.sum(1))))])
    own = grid[np.argmax(_f1(tp, fp, fn), axis=0)]
    enough = np.asarray(y, bool).sum(0) >= min_positives
    return np.where(enough, own, best_global).astype(np.float32), best_global


def precision_recall(probs: np.ndarray, y: np.ndarray, thresholds) -> dict[str, float]:
    """Micro-averaged precision, recall and F1, and macro F1, of showing ``probs >= thresholds``.

    Parameters
    ----------
    probs : numpy.ndarray, shape (N, C)
    y : numpy.ndarray of bool, shape (N, C)
    thresholds : float or numpy.ndarray of shape (C,)

    Returns
    -------
    dict
        ``precision``, ``recall``, ``f1`` (micro: every clip × class decision counts once), ``macro_f1``
        (mean over classes with a positive), ``tags_per_clip`` (mean number of classes shown).
    """
    probs, y = np.asarray(probs, np.float32), np.asarray(y, bool)
    shown = probs >= np.asarray(thresholds, np.float32)
    tp = (shown & y).sum(0)
    fp = shown.sum(0) - tp
    fn = y.sum(0) - tp
    has = y.sum(0) > 0
    t, f, n = tp.sum(), fp.sum(), fn.sum()
    return {"precision": float(t / max(t + f, 1)), "recall": float(t / max(t + n, 1)),
            "f1": float(_f1(t, f, n)), "macro_f1": float(_f1(tp, fp, fn)[has].mean()),
            "tags_per_clip": float(shown.sum(1).mean())}
