"""Training-side model pieces: the model built from a config, its optimizer and learning-rate schedule.

The architectures themselves live in :mod:`audiotagger.classifier.models` (the tagger rebuilds saved
models from there without importing training code).
"""

from __future__ import annotations

from ..classifier.models import MODEL_TYPES, build_model, check_levels, model_config
from ..errors import ParameterError

__all__ = ["LR_SCHEDULES", "MODEL_TYPES", "build_model", "check_levels", "check_optimizer_args",
           "make_optimizer", "model_config"]

LR_SCHEDULES = ("constant", "cosine")
"""``--lr-schedule`` choices: constant (the published recipes) or cosine decay to zero (with warm-up)."""


def check_optimizer_args(lr: float, *, schedule: str = "constant", iterations: int = 0, warmup: int = 0,
                         weight_decay: float = 0.0) -> None:
    """Raise ParameterError (naming the flag) for arguments :func:`make_optimizer` cannot use."""
    if not lr > 0:
        raise ParameterError(f"--lr: must be > 0, got {lr}")
    if schedule not in LR_SCHEDULES:
        raise ParameterError(f"--lr-schedule: unknown {schedule!r} (choose from {', '.join(LR_SCHEDULES)})")
    if warmup < 0 or weight_decay < 0:
        raise ParameterError("--warmup and --weight-decay must be >= 0")
    if schedule == "cosine" and iterations <= warmup:
        raise ParameterError(f"--lr-schedule cosine: needs --iterations > --warmup, got {iterations}")


def make_optimizer(lr: float = 1e-3, *, schedule: str = "constant", iterations: int = 0, warmup: int = 0,
                   weight_decay: float = 0.0):
    """Return the Adam optimizer of a run (AdamW when ``weight_decay`` > 0).

    Parameters
    ----------
    lr : float
        Peak learning rate (really used, unlike the original trainer, which compiled with ``'adam'``).
    schedule : {"constant", "cosine"}
        Constant rate, or linear warm-up over ``warmup`` steps then cosine decay to 0 at ``iterations``.
    iterations : int
        Total training iterations (for the cosine schedule).
    warmup : int
        Warm-up iterations (linear from 0 to ``lr``); applies to both schedules.
    weight_decay : float
        Decoupled weight decay (AdamW); 0 gives plain Adam (epsilon 1e-7, Keras' default).
    """
    import keras

    check_optimizer_args(lr, schedule=schedule, iterations=iterations, warmup=warmup,
                         weight_decay=weight_decay)
    if schedule == "cosine":
        rate = keras.optimizers.schedules.CosineDecay(
            initial_learning_rate=0.0 if warmup else lr, decay_steps=iterations - warmup, alpha=0.0,
            warmup_target=lr if warmup else None, warmup_steps=warmup)
    elif warmup:
        rate = keras.optimizers.schedules.CosineDecay(
            initial_learning_rate=0.0, decay_steps=1, alpha=1.0, warmup_target=lr, warmup_steps=warmup)
    else:
        rate = lr
    if weight_decay > 0:
        return keras.optimizers.AdamW(learning_rate=rate, weight_decay=weight_decay)
    return keras.optimizers.Adam(learning_rate=rate)
