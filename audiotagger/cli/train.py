"""``audiotagger train``: train the attention classifier (resumable).

On AudioSet embeddings (``--data-dir``), or on a user's labelled audio (``--audio``/``--audio-csv``: custom
classes over a backbone's embeddings).
"""

from __future__ import annotations

import argparse
import sys

from ..classifier.models import ATTENTIONS, MODEL_TYPES
from ..params import (
    CUSTOM_BACKBONE,
    CUSTOM_BATCH_SIZE,
    CUSTOM_EVAL_EVERY,
    CUSTOM_ITERATIONS,
    DEFAULT_BATCH_SIZE,
    DEFAULT_DROPOUT,
    DEFAULT_HIDDEN_UNITS,
    DEFAULT_LEVELS,
    SAMPLERS,
    TEST_FOLD,
)
from ..train.models import LR_SCHEDULES
from .common import EXIT_FAILED, EXIT_OK, nonnegative_float, nonnegative_int, positive_float, positive_int

AUDIOSET_ITERATIONS, AUDIOSET_EVAL_EVERY = 30000, 1000
"""Defaults of ``--iterations`` and ``--eval-every`` on AudioSet embeddings."""


def _fraction(text: str) -> float:
    value = nonnegative_float(text)
    if value >= 1:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {text}")
    return value


def add_parser(sub) -> None:
    """Register the ``train`` subcommand."""
    p = sub.add_parser(
        "train", help="train the attention classifier on AudioSet embeddings",
        description="Train a classifier on AudioSet embeddings (official TFRecords or packed HDF5), or on "
                    "your own labelled audio (--audio/--audio-csv: custom classes over a backbone's "
                    "embeddings, computed once and cached by content hash). Each evaluation writes stats "
                    "(JSON) and a checkpoint named by iteration to WORKSPACE/TAG/; rerunning the same "
                    "command resumes from the last complete checkpoint.")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--data-dir", "--data_dir", dest="data_dir", nargs="+", metavar="D",
                     help="AudioSet embeddings (several are joined, e.g. unbal_train.h5 bal_train.h5; a .h5 "
                          "over 2 GB is memory-mapped): a packed .h5 file, a folder or glob of .tfrecord "
                          "files, or a folder with bal_train.h5/unbal_train.h5/eval.h5 (or bal_train/, "
                          "unbal_train/, eval/ TFRecord folders; its eval split is the evaluation set)")
    src.add_argument("--audio", metavar="DIR",
                     help="your labelled audio: one sub-folder per class (as Keras' "
                          "audio_dataset_from_directory), any format ffmpeg reads")
    src.add_argument("--audio-csv", dest="audio_csv", metavar="FILE",
                     help="your labelled audio as a csv: path,labels[,start,end][,fold] (labels separated by "
                          "';' for multi-label data; paths relative to the csv; optional header row)")
    p.add_argument("--workspace", required=True, metavar="W", help="output folder (the run is in W/TAG/)")
    p.add_argument("--tag",
                   help="run name (default: MODEL-TYPE_levels_LEVELS; custom: BACKBONE_single|multi)")
    c = p.add_argument_group("custom classes (--audio/--audio-csv)")
    c.add_argument("--backbone", default=CUSTOM_BACKBONE, metavar="NAME",
                   help="network whose embeddings the classifier reads: vggish, yamnet, panns-cnn14 (also "
                        "panns-cnn10, panns-cnn6) (default: %(default)s)")
    c.add_argument("--single-label", dest="single_label", action="store_true",
                   help="one class per clip: softmax output, accuracy and confusion matrix in the stats "
                        "(default: multi-label sigmoid outputs)")
    c.add_argument("--labels", metavar="A,B,...",
                   help="train only these classes (csv rows with another label are reported and left out)")
    c.add_argument("--validation-fold", dest="validation_fold", metavar="F",
                   help="csv fold value of the validation clips (default: validation, val, valid or eval)")
    c.add_argument("--test-fold", dest="test_fold", default=TEST_FOLD, metavar="F",
                   help="csv fold value of the test clips (default: %(default)s)")
    c.add_argument("--embedding-cache", dest="embedding_cache", metavar="DIR",
                   help="embedding cache folder (default: MODEL-CACHE/embeddings)")
    c.add_argument("--checkpoint", metavar="FILE",
                   help="the backbone's weights (VGGish checkpoint, PANNs .pth, ...; default: model cache)")
    c.add_argument("--pca-params", "--pca_params", dest="pca_params", metavar="NPZ",
                   help="VGGish backbone: the PCA parameters (default: model cache)")
    c.add_argument("--model-dir", "--model_dir", dest="model_dir", metavar="DIR", help="model cache folder")
    c.add_argument("--offline", action="store_true", default=None, help="never download a model")
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
    o.add_argument("--batch-size", dest="batch_size", type=positive_int, default=None,
                   help=f"clips per update (default: {DEFAULT_BATCH_SIZE}; custom: {CUSTOM_BATCH_SIZE})")
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
    o.add_argument("--iterations", type=positive_int, default=None,
                   help=f"total updates (a resumed run continues to this number; default: "
                        f"{AUDIOSET_ITERATIONS}; custom: {CUSTOM_ITERATIONS})")
    o.add_argument("--seed", type=int, default=1234, help="seed of sampler, mixup and init (default: 1234)")
    e = p.add_argument_group("evaluation")
    e.add_argument("--eval-every", dest="eval_every", type=positive_int, default=None,
                   help=f"evaluate and checkpoint every N iterations, also at 0 and the end (default: "
                        f"{AUDIOSET_EVAL_EVERY}; custom: {CUSTOM_EVAL_EVERY})")
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
    e.add_argument("--refit", action="store_true",
                   help="train on every clip, no evaluation set (the final fit, once the recipe and "
                        "iteration count were chosen on validation); with --average-last the model is the "
                        "average of the last checkpoints")
    o.add_argument("--label-closure", dest="label_closure", action="store_true",
                   help="a positive class makes its AudioSet-ontology ancestors positive in the training "
                        "labels (evaluation labels stay as annotated)")
    p.add_argument("--lazy", action="store_true",
                   help="keep the embeddings on disk, memory-mapped (sets larger than RAM); TFRecords are "
                        "packed once into the model cache for that (automatic above 2 GB)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args) -> int:
    """Run ``train``; exit 1 when some audio entry was left out (the model is trained on the others)."""
    custom = args.data_dir is None
    options = dict(
        tag=args.tag, levels=args.levels, model_type=args.model_type,
        hidden_units=args.hidden_units, dropout=args.dropout, attention=args.attention,
        batch_size=args.batch_size or (CUSTOM_BATCH_SIZE if custom else DEFAULT_BATCH_SIZE),
        lr=args.lr, lr_schedule=args.lr_schedule, warmup=args.warmup,
        weight_decay=args.weight_decay, mixup=args.mixup,
        iterations=args.iterations or (CUSTOM_ITERATIONS if custom else AUDIOSET_ITERATIONS),
        eval_every=args.eval_every or (CUSTOM_EVAL_EVERY if custom else AUDIOSET_EVAL_EVERY),
        validation_split=args.validation_split, test_split=args.test_split, split_seed=args.split_seed,
        seed=args.seed, sampler=args.sampler, patience=args.patience, save_probs=args.save_probs,
        average_last=args.average_last, prior_init=args.prior_init, progress=not args.quiet)
    if custom:
        from ..errors import ParameterError
        from ..train.custom import train_audio

        if args.refit or args.label_closure:
            raise ParameterError("--refit and --label-closure: only with --data-dir (AudioSet embeddings)")
        if args.eval_data is not None:
            raise ParameterError("--eval-data: only with --data-dir; custom data is held out with "
                                 "--validation-split or the csv's fold column")
        labels = None if args.labels is None else [x.strip() for x in args.labels.split(",") if x.strip()]
        result = train_audio(
            args.workspace, audio_dir=args.audio, audio_csv=args.audio_csv, backbone=args.backbone,
            labels=labels, single_label=args.single_label, validation_fold=args.validation_fold,
            test_fold=args.test_fold, embedding_cache=args.embedding_cache, checkpoint=args.checkpoint,
            pca_params=args.pca_params, model_dir=args.model_dir, offline=args.offline,
            on_problem=lambda line: print(f"audiotagger: error: {line}", file=sys.stderr), **options)
        rep = result.embed_report
        print(f"embeddings ({args.backbone}): {rep.cached} cached, {rep.embedded} computed"
              + (f" ({rep.seconds:.1f} s of audio)" if rep.embedded else "")
              + (f", {rep.failed} failed" if rep.failed else ""))
    else:
        from ..train.loop import train

        result = train(args.data_dir, args.workspace, eval_data=args.eval_data, lazy=args.lazy,
                       refit=args.refit, label_closure=args.label_closure, **options)
    b = result.best_stats
    if b is None:       # --refit: nothing to score
        model = result.workspace / ("averaged.npz" if (result.workspace / "averaged.npz").is_file()
                                    else "best.npz")
        print(f"trained to iteration {result.iteration} on every clip (--refit, no evaluation) -> {model}")
        return EXIT_OK
    acc = f"  accuracy {b['accuracy']:.4f}" if "accuracy" in b else ""
    print(f"best iteration {result.best_iteration}: mAP {b['mAP']:.4f}  AUC {b['AUC']:.4f}  "
          f"d' {b['d_prime']:.4f}{acc}  -> {result.workspace / 'best.npz'}")
    if result.averaged_stats:
        a = result.averaged_stats
        print(f"weight average: mAP {a['mAP']:.4f}  AUC {a['AUC']:.4f}  d' {a['d_prime']:.4f}  -> "
              f"{result.workspace / 'averaged.npz'}")
    for name, t in result.test_stats.items():
        acc = f"  accuracy {t['accuracy']:.4f}" if "accuracy" in t else ""
        print(f"test ({name}): mAP {t['mAP']:.4f}  AUC {t['AUC']:.4f}  d' {t['d_prime']:.4f}{acc}")
    if result.problems:
        print(f"audiotagger: {len(result.problems)} entr{'y' if len(result.problems) == 1 else 'ies'} left "
              "out (see the errors above); the model was trained on the others", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK
