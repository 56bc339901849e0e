"""``audiotagger evaluate``: mAP, AUC and d′ of a classifier on labelled AudioSet embeddings."""

from __future__ import annotations

from .common import positive_int


def add_parser(sub) -> None:
    """Register the ``evaluate`` subcommand."""
    p = sub.add_parser(
        "evaluate", help="score a classifier on labelled AudioSet embeddings",
        description="Compute mAP, mean AUC and d' (classes without a positive clip are left out, with a "
                    "warning) of a classifier on a packed .h5 file or a folder/glob of AudioSet TFRecords.")
    p.add_argument("--model", metavar="M",
                   help="classifier file written by `audiotagger train` (default: the packaged model)")
    p.add_argument("--data", required=True, metavar="D", help="labelled clips: .h5, TFRecord folder or glob")
    p.add_argument("--json", metavar="FILE", help="also write the stats with per-class AP/AUC to FILE")
    p.add_argument("--batch-size", dest="batch_size", type=positive_int, default=1024,
                   help="clips per model call (default: %(default)s)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args) -> int:
    """Run ``evaluate``."""
    from ..train.evaluate import evaluate
    from .common import check_output_file

    check_output_file(args.json, "--json")        # before the (long) evaluation
    s = evaluate(args.model, args.data, json_path=args.json, batch_size=args.batch_size,
                 progress=not args.quiet)
    print(f"{s['model']} on {s['data']} ({s['n_clips']} clips, {s['n_classes']} classes): "
          f"mAP {s['mAP']:.4f}  AUC {s['AUC']:.4f}  d' {s['d_prime']:.4f}")
    return 0
