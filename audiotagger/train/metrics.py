"""Evaluation metrics of AudioSet taggers (SPEC §5): mAP, mean AUC and d′.

Per class k, ``AP_k`` and ``AUC_k`` are exactly scikit-learn's ``average_precision_score`` and
``roc_auc_score`` (the tests check agreement to 1e-6), computed here with one sort per class instead of
sklearn's per-call validation, which cost seconds per evaluation of 527 classes on a busy CPU:
AP = Σ_n (R_n − R_{n−1}) P_n over the distinct score thresholds (ties form one threshold), and AUC is
the Mann–Whitney statistic with average ranks for ties. mAP and AUC are unweighted means over the classes;
``d′ = √2 · Φ⁻¹(AUC)`` from the *mean* AUC. Classes with no positive (or no negative) clip have no
defined AP/AUC: they are left out of the means with a warning and stored as ``None``.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from ..errors import AudioTaggerWarning, DataError


def d_prime(auc: float) -> float:
    """Return ``√2 · Φ⁻¹(auc)`` (NaN for NaN input)."""
    from scipy.stats import norm

    return float(math.sqrt(2.0) * norm.ppf(auc)) if np.isfinite(auc) else float("nan")


def calculate_stats(probs: np.ndarray, targets: np.ndarray, *, warn: bool = True) -> dict:
    """Compute mAP, AUC, d′ and per-class AP/AUC.

    Parameters
    ----------
    probs : numpy.ndarray of float, shape (N, C)
        Predicted probabilities (any monotone scores work).
    targets : numpy.ndarray of bool or {0, 1}, shape (N, C)
        True labels.
    warn : bool
        Emit an :class:`AudioTaggerWarning` when classes are left out.

    Returns
    -------
    dict
        ``mAP``, ``AUC``, ``d_prime`` (floats), ``AP`` and ``auc`` (lists of C floats, ``None`` for a
        class left out), ``n_classes`` (classes evaluated), ``n_clips``.

    Raises
    ------
    DataError
        If the shapes differ or no class can be evaluated.
    """
    from scipy.stats import rankdata

    probs = np.asarray(probs)
    targets = np.asarray(targets).astype(bool)
    if probs.shape != targets.shape or probs.ndim != 2:
        raise DataError(f"metrics: probabilities {probs.shape} and targets {targets.shape} differ")
    pos = targets.sum(axis=0)
    valid = (pos > 0) & (pos < targets.shape[0])
    if not valid.any():
        raise DataError("metrics: no class has both positive and negative clips")
    if warn and not valid.all():
        warnings.warn(f"metrics: {int((~valid).sum())} of {valid.size} classes have no positive (or no "
                      "negative) clip and are left out of mAP/AUC", AudioTaggerWarning, stacklevel=2)
    ap: list[float | None] = [None] * valid.size
    auc: list[float | None] = [None] * valid.size
    cols = np.flatnonzero(valid)
    scores = probs[:, cols].astype(np.float64)
    ranks = rankdata(scores, axis=0)                                  # average ranks for ties
    n_pos = pos[cols].astype(np.float64)
    n_neg = targets.shape[0] - n_pos
    u = (ranks * targets[:, cols]).sum(axis=0) - n_pos * (n_pos + 1) / 2
    for j, k in enumerate(cols):
        ap[k] = _average_precision(scores[:, j], targets[:, k])
        auc[k] = float(u[j] / (n_pos[j] * n_neg[j]))
    mean_ap = float(np.mean([v for v in ap if v is not None]))
    mean_auc = float(np.mean([v for v in auc if v is not None]))
    return {"mAP": mean_ap, "AUC": mean_auc, "d_prime": d_prime(mean_auc), "AP": ap, "auc": auc,
            "n_classes": int(valid.sum()), "n_clips": int(targets.shape[0])}


def _average_precision(score: np.ndarray, target: np.ndarray) -> float:
    """AP of one class, as ``sklearn.metrics.average_precision_score`` (step-wise, ties grouped)."""
    order = np.argsort(-score, kind="mergesort")
    s, t = score[order], target[order]
    last = np.r_[s[1:] != s[:-1], True]                    # last position of each distinct threshold
    tps = np.cumsum(t)[last].astype(np.float64)
    precision = tps / (np.flatnonzero(last) + 1)
    recall_step = np.diff(np.r_[0.0, tps]) / tps[-1]
    return float(np.sum(recall_step * precision))


def single_label_stats(probs: np.ndarray, targets: np.ndarray) -> dict:
    """Accuracy and confusion matrix of single-label predictions (the most probable class).

    Parameters
    ----------
    probs : numpy.ndarray of float, shape (N, C)
    targets : numpy.ndarray of bool, shape (N, C)
        One-hot labels (the first true class counts for a row with several).

    Returns
    -------
    dict
        ``accuracy`` (float) and ``confusion`` (C lists of C ints: row = true class, column = predicted).
    """
    probs = np.asarray(probs)
    targets = np.asarray(targets).astype(bool)
    if probs.shape != targets.shape or probs.ndim != 2:
        raise DataError(f"metrics: probabilities {probs.shape} and targets {targets.shape} differ")
    truth, pred = targets.argmax(axis=1), probs.argmax(axis=1)
    keep = targets.any(axis=1)
    confusion = np.zeros((probs.shape[1], probs.shape[1]), dtype=np.int64)
    np.add.at(confusion, (truth[keep], pred[keep]), 1)
    accuracy = float((truth[keep] == pred[keep]).mean()) if keep.any() else float("nan")
    return {"accuracy": accuracy, "confusion": confusion.tolist()}


def confusion_table(confusion, labels) -> str:
    """The confusion matrix as aligned text: one row per true class, one column per predicted class."""
    labels = [str(x) for x in labels]
    width = max(len(x) for x in [*labels, "true \\ predicted"])
    cells = [max(len(x), 5) for x in labels]
    lines = ["true \\ predicted".ljust(width) + "  " + "  ".join(x.rjust(c) for x, c in zip(labels, cells,
                                                                                             strict=True))]
    for label, row in zip(labels, confusion, strict=True):
        lines.append(label.ljust(width) + "  " + "  ".join(str(v).rjust(c) for v, c in zip(row, cells,
                                                                                             strict=True)))
    return "\n".join(lines)


def summary(stats: dict) -> str:
    """One line: ``mAP 0.3012  AUC 0.9521  d' 2.3456`` (and ``accuracy 0.9500`` for single-label stats)."""
    line = f"mAP {stats['mAP']:.4f}  AUC {stats['AUC']:.4f}  d' {stats['d_prime']:.4f}"
    return line + (f"  accuracy {stats['accuracy']:.4f}" if "accuracy" in stats else "")
