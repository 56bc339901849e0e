"""``audiotagger evaluate``: score a classifier on labelled AudioSet embeddings or on labelled audio."""

from __future__ import annotations

import sys

from .common import EXIT_FAILED, EXIT_OK, positive_int


def add_parser(sub) -> None:
    """Register the ``evaluate`` subcommand."""
    p = sub.add_parser(
        "evaluate", help="score a classifier on labelled AudioSet embeddings or labelled audio",
        description="Compute mAP, mean AUC and d' (classes without a positive clip are left out, with a "
                    "warning) of a classifier on a packed .h5 file or a folder/glob of AudioSet TFRecords; "
                    "or of a custom model on labelled audio (--audio/--audio-csv, scored clip by clip; "
                    "single-label models also get accuracy and a confusion matrix).")
    p.add_argument("--model", metavar="M",
                   help="classifier file written by `audiotagger train` (default: the packaged model)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--data", metavar="D", help="labelled AudioSet embeddings: .h5, TFRecord folder or glob")
    src.add_argument("--audio", metavar="DIR",
                     help="labelled audio, one sub-folder per class (custom models)")
    src.add_argument("--audio-csv", dest="audio_csv", metavar="FILE",
                     help="labelled audio as a csv path,labels[,start,end][,fold] (custom models)")
    p.add_argument("--split", metavar="NPZ",
                   help="with --data: score only one part of a training run's split (its split.npz)")
    p.add_argument("--part", choices=("train", "validation", "test"), default="test",
                   help="the part of --split to score (default: %(default)s)")
    p.add_argument("--json", metavar="FILE", help="also write the stats with per-class AP/AUC to FILE")
    p.add_argument("--batch-size", dest="batch_size", type=positive_int, default=1024,
                   help="clips per model call (default: %(default)s)")
    c = p.add_argument_group("custom models")
    c.add_argument("--embedding-cache", dest="embedding_cache", metavar="DIR",
                   help="embedding cache folder (default: MODEL-CACHE/embeddings)")
    c.add_argument("--checkpoint", metavar="FILE", help="the backbone's weights (default: model cache)")
    c.add_argument("--pca-params", "--pca_params", dest="pca_params", metavar="NPZ",
                   help="VGGish backbone: the PCA parameters (default: model cache)")
    c.add_argument("--model-dir", "--model_dir", dest="model_dir", metavar="DIR", help="model cache folder")
    c.add_argument("--offline", action="store_true", default=None, help="never download a model")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args) -> int:
    """Run ``evaluate``; exit 1 when some audio entry was left out (the others are scored)."""
    from .common import check_output_file

    check_output_file(args.json, "--json")        # before the (long) evaluation
    if args.data is not None:
        from ..train.evaluate import evaluate

        s = evaluate(args.model, args.data, json_path=args.json, batch_size=args.batch_size,
                     progress=not args.quiet, split=args.split, part=args.part)
        print(f"{s['model']} on {s['data']} ({s['n_clips']} clips, {s['n_classes']} classes): "
              f"mAP {s['mAP']:.4f}  AUC {s['AUC']:.4f}  d' {s['d_prime']:.4f}")
        return EXIT_OK
    from ..errors import ParameterError
    from ..train.custom import evaluate_audio
    from ..train.metrics import confusion_table

    if args.split is not None:
        raise ParameterError("--split: only with --data (labelled audio is held out by its csv fold column)")
    if args.model is None:
        raise ParameterError("--model: give the custom model to score on --audio/--audio-csv")
    s = evaluate_audio(args.model, audio_dir=args.audio, audio_csv=args.audio_csv,
                       embedding_cache=args.embedding_cache, checkpoint=args.checkpoint,
                       pca_params=args.pca_params, model_dir=args.model_dir, offline=args.offline,
                       json_path=args.json, batch_size=args.batch_size, progress=not args.quiet,
                       on_problem=lambda line: print(f"audiotagger: error: {line}", file=sys.stderr))
    line = (f"{s['model']} ({s['backbone']}) on {s['data']} ({s['n_clips']} clips, "
            f"{len(s['labels'])} classes): mAP {s['mAP']:.4f}  AUC {s['AUC']:.4f}  d' {s['d_prime']:.4f}")
    if "accuracy" in s:
        line += f"  accuracy {s['accuracy']:.4f}"
    print(line)
    if "confusion" in s:
        print(confusion_table(s["confusion"], s["labels"]))
    if s["problems"]:
        print(f"audiotagger: {len(s['problems'])} entr{'y' if len(s['problems']) == 1 else 'ies'} left out "
              "(see the errors above); the others were scored", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK
