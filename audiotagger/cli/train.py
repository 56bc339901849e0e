"""``audiotagger train``: train the attention classifier on AudioSet embeddings (resumable)."""

from __future__ import annotations

import argparse

from ..classifier.models import ATTENTIONS, MODEL_TYPES
from ..params import DEFAULT_BATCH_SIZE, DEFAULT_DROPOUT, DEFAULT_HIDDEN_UNITS, DEFAULT_LEVELS
from ..train.models import LR_SCHEDULES
from ..train.sampler import SAMPLERS
from .common import nonnegative_float, nonnegative_int, positive_float, positive_int


def _fraction(text: str) -> float:
    value = nonnegative_float(text)
    if value >= 1:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {text}")
    return value


def add_parser(sub) -> None:
    """Register the ``train`` subcommand."""
    p = sub.add_parser(
        "train", help="train the attention classifier on AudioSet embeddings",
        description="Train a classifier on AudioSet embeddings (official TFRecords or packed HDF5). Each "
                    "evaluation writes stats (JSON) and a checkpoint named by iteration to WORKSPACE/TAG/; "
                    "rerunning the same command resumes from the last complete checkpoint.")
    p.add_argument("--data-dir", "--data_dir", dest="data_dir", required=True, metavar="D",
                   help="training data: a packed .h5 file, a folder or glob of .tfrecord files, or a folder "
                        "with bal_train.h5/unbal_train.h5/eval.h5 (or bal_train/, unbal_train/, eval/ "
                        "TFRecord folders; its eval split is the evaluation set)")
    p.add_argument("--workspace", required=True, metavar="W", help="output folder (the run is in W/TAG/)")
    p.add_argument("--tag", help="run name (default: MODEL-TYPE_levels_LEVELS)")
    m = p.add_argument_group("model")
    m.add_argument("--model-type", "--model_type", dest="model_type", choices=MODEL_TYPES,
                   default="multi-level-attention", help="architecture (default: %(default)s)")
    m.add_argument("--levels", type=int, nargs="+", default=list(DEFAULT_LEVELS), metavar="L",
                   help="hidden levels (any of 1 2 3, order free) whose attention heads feed the output "
                        "(multi-level attention; default: 2 3 = Yu et al. 2018)")
    m.add_argument("--hidden-units", dest="hidden_units", type=positive_int, default=DEFAULT_HIDDEN_UNITS,
                   help="units per hidden layer (default: %(default)s)")
    m.add_argument("--dropout", type=_fraction, default=DEFAULT_DROPOUT,
                   help="dropout (default: %(default)s)")
    m.add_argument("--attention", choices=ATTENTIONS, default="softmax",
                   help="attention activation: softmax over classes as in the released Keras models, or "
                        "sigmoid (default: %(default)s)")
    o = p.add_argument_group("optimisation")
    o.add_argument("--batch-size", dest="batch_size", type=positive_int, default=DEFAULT_BATCH_SIZE,
                   help="clips per update (default: %(default)s)")
    o.add_argument("--lr", type=positive_float, default=1e-3,
                   help="Adam learning rate, really used (default: %(default)s)")
    o.add_argument("--lr-schedule", dest="lr_schedule", choices=LR_SCHEDULES, default="constant",
                   help="constant, or cosine decay to 0 at --iterations (default: %(default)s)")
    o.add_argument("--warmup", type=nonnegative_int, default=0, help="linear warm-up iterations (default: 0)")
    o.add_argument("--weight-decay", dest="weight_decay", type=nonnegative_float, default=0.0,
                   help="decoupled weight decay, AdamW (default: 0 = Adam)")
    o.add_argument("--mixup", type=nonnegative_float, default=0.0,
                   help="mixup alpha on embeddings and labels (default: 0 = off)")
    o.add_argument("--sampler", choices=SAMPLERS, default="balanced",
                   help="class-balanced batches (SPEC §4.6) or plain shuffling (default: %(default)s)")
    o.add_argument("--iterations", type=positive_int, default=30000,
                   help="total updates (a resumed run continues to this number; default: %(default)s)")
    o.add_argument("--seed", type=int, default=1234, help="seed of sampler, mixup and init (default: 1234)")
    e = p.add_argument_group("evaluation")
    e.add_argument("--eval-every", dest="eval_every", type=positive_int, default=1000,
                   help="evaluate and checkpoint every N iterations, also at 0 and the end (default: 1000)")
    e.add_argument("--eval-data", dest="eval_data", metavar="E",
                   help="evaluation set (.h5, TFRecord folder or glob)")
    e.add_argument("--validation-split", dest="validation_split", type=_fraction, default=0.0,
                   help="hold out this fraction of the training data for evaluation (seeded)")
    e.add_argument("--test-split", dest="test_split", type=_fraction, default=0.0,
                   help="hold out this fraction as a test part, scored only at the end (test.json)")
    e.add_argument("--split-seed", dest="split_seed", type=int, default=1234,
                   help="seed of the held-out splits (default: 1234)")
    e.add_argument("--patience", type=nonnegative_int, default=10,
                   help="stop after N evaluations without a better mAP (0: never; default: %(default)s)")
    e.add_argument("--save-probs", dest="save_probs", action="store_true",
                   help="keep each evaluation's probabilities (for stats --ensemble)")
    e.add_argument("--average-last", dest="average_last", type=nonnegative_int, default=0,
                   help="at the end, average the weights of the K checkpoints ending at the best one "
                        "(averaged.npz)")
    o.add_argument("--prior-init", dest="prior_init", action="store_true",
                   help="start the output bias at the logit of each class's frequency in training batches "
                        "(much faster start than 0, i.e. probabilities of 0.5)")
    p.add_argument("--lazy", action="store_true", help="keep HDF5 embeddings on disk (sets larger than RAM)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args) -> int:
    """Run ``train``."""
    from ..train.loop import train

    result = train(
        args.data_dir, args.workspace, tag=args.tag, levels=args.levels, model_type=args.model_type,
        hidden_units=args.hidden_units, dropout=args.dropout, attention=args.attention,
        batch_size=args.batch_size, lr=args.lr, lr_schedule=args.lr_schedule, warmup=args.warmup,
        weight_decay=args.weight_decay, mixup=args.mixup, iterations=args.iterations,
        eval_every=args.eval_every, eval_data=args.eval_data, validation_split=args.validation_split,
        test_split=args.test_split, split_seed=args.split_seed, seed=args.seed, sampler=args.sampler,
        patience=args.patience, save_probs=args.save_probs, average_last=args.average_last,
        prior_init=args.prior_init, lazy=args.lazy,
        progress=not args.quiet)
    b = result.best_stats
    print(f"best iteration {result.best_iteration}: mAP {b['mAP']:.4f}  AUC {b['AUC']:.4f}  "
          f"d' {b['d_prime']:.4f}  -> {result.workspace / 'best.npz'}")
    if result.averaged_stats:
        a = result.averaged_stats
        print(f"weight average: mAP {a['mAP']:.4f}  AUC {a['AUC']:.4f}  d' {a['d_prime']:.4f}  -> "
              f"{result.workspace / 'averaged.npz'}")
    for name, t in result.test_stats.items():
        print(f"test ({name}): mAP {t['mAP']:.4f}  AUC {t['AUC']:.4f}  d' {t['d_prime']:.4f}")
    return 0
