"""Evaluation metrics of AudioSet taggers (SPEC §5): mAP, mean AUC and d′.

Per class k, ``AP_k = average_precision_score(target[:, k], output[:, k])`` and
``AUC_k = roc_auc_score(...)`` (scikit-learn); mAP and AUC are unweighted means over the classes;
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
    from sklearn.metrics import average_precision_score, roc_auc_score

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
    for k in np.flatnonzero(valid):
        ap[k] = float(average_precision_score(targets[:, k], probs[:, k]))
        auc[k] = float(roc_auc_score(targets[:, k], probs[:, k]))
    mean_ap = float(np.mean([v for v in ap if v is not None]))
    mean_auc = float(np.mean([v for v in auc if v is not None]))
    return {"mAP": mean_ap, "AUC": mean_auc, "d_prime": d_prime(mean_auc), "AP": ap, "auc": auc,
            "n_classes": int(valid.sum()), "n_clips": int(targets.shape[0])}


def summary(stats: dict) -> str:
    """One line: ``mAP 0.3012  AUC 0.9521  d' 2.3456``."""
    return f"mAP {stats['mAP']:.4f}  AUC {stats['AUC']:.4f}  d' {stats['d_prime']:.4f}"
