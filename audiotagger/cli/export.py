"""``audiotagger export --model yamnet|mine.npz --format tflite|onnx -o FILE``: waveform → scores."""

from __future__ import annotations

from ..params import DEFAULT_LEFT, DEFAULT_RIGHT
from .common import EXIT_OK, nonnegative_int, positive_int

FORMATS = ("tflite", "onnx")


def add_parser(sub) -> None:
    """Register the ``export`` subcommand."""
    p = sub.add_parser(
        "export", help="write a model as TFLite or ONNX (waveform in, scores out) for phones and boards",
        description="Export a tagger as one self-contained file: input one 16 kHz mono float32 waveform "
                    "of --samples samples, output the scores of its 0.96 s patches (patches, classes). "
                    "A custom model (train --audio, YAMNet backbone) gives its own classes; their names "
                    "are written beside the file as FILE.labels.txt.")
    p.add_argument("--model", default="yamnet", metavar="NAME|PATH",
                   help="yamnet (default), a yamnet.h5 / YAMNet .tflite file, or a custom model .npz "
                        "trained with --backbone yamnet")
    p.add_argument("--format", "-f", dest="fmt", choices=FORMATS, default="tflite",
                   help="tflite (default) or onnx")
    p.add_argument("-o", "--output", required=True, metavar="FILE", help="output file")
    p.add_argument("--samples", type=positive_int, default=None, metavar="N",
                   help="input length in 16 kHz samples (default 15600: one patch, as Google's TFLite model)")
    p.add_argument("--left", type=nonnegative_int, default=DEFAULT_LEFT, metavar="N",
                   help=f"custom models: rows of context before each row, as tag (default {DEFAULT_LEFT})")
    p.add_argument("--right", type=nonnegative_int, default=DEFAULT_RIGHT, metavar="N",
                   help=f"custom models: rows of context after each row, as tag (default {DEFAULT_RIGHT})")
    p.add_argument("--checkpoint", default=None, metavar="H5", help="yamnet.h5 (default: the model cache)")
    p.add_argument("--model-dir", default=None, metavar="DIR", help="model cache folder")
    p.add_argument("--offline", action="store_true", default=None, help="never download a model")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    p.set_defaults(func=run)


def run(args) -> int:
    """Run ``export``; return the exit code."""
    from pathlib import Path

    from ..errors import AudioTaggerError

    out = Path(args.output)
    if out.exists() and not args.overwrite:
        raise AudioTaggerError(f"{out}: exists (use --overwrite to replace it)")
    from ..export import export_model, labels_path
    from ..tag.tagger import is_custom

    path = export_model(out, args.fmt, args.model, checkpoint=args.checkpoint, model_dir=args.model_dir,
                        offline=args.offline, samples=args.samples, left=args.left, right=args.right)
    print(f"{path}: {args.fmt}, {path.stat().st_size / 1e6:.1f} MB")
    if is_custom(args.model):
        print(f"{labels_path(path)}: the score columns' labels, one per line")
    return EXIT_OK
