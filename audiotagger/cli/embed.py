"""``audiotagger embed IN... -o DIR``: VGGish embeddings of audio/video files.

Every flag is a keyword of :class:`audiotagger.vggish.embed.VGGishEmbedder` /
:meth:`~audiotagger.vggish.embed.VGGishEmbedder.iter_embed` /
:func:`audiotagger.vggish.embed.save_embedding`. The model is loaded once; examples of all inputs share
batches; each input fails alone.
"""

from __future__ import annotations

import argparse
import sys

from .archive import absolute, add_archive_arguments, check_plain, plain_inputs, run_archive_command
from .common import (
    EXIT_OK,
    add_engine_arguments,
    expand_inputs,
    plan_outputs,
    positive_float,
    positive_int,
    run_each,
)

FORMATS = {"npz": ".npz", "tfrecord": ".tfrecord"}


def add_parser(sub) -> None:
    """Register the ``embed`` subcommand."""
    p = sub.add_parser(
        "embed", help="compute AudioSet VGGish (or YAMNet) embeddings",
        description="Write <stem>.npz (embedding uint8 (n,128), raw float32 (n,128), times (n,), and "
                    "logmel (n,96,64) with --save-logmel) or an AudioSet-format <stem>.tfrecord for "
                    "each input file. With --model yamnet: embedding float32 (n,1024), scores float32 "
                    "(n,521) and times (n,), one row per 0.96 s patch every 0.48 s.")
    p.add_argument("inputs", nargs="*", metavar="IN",
                   help="audio/video files, folders, glob patterns (with --ray also URLs)")
    p.add_argument("-o", "--output-dir", required=True, metavar="DIR", help="output folder")
    p.add_argument("-f", "--format", choices=sorted(FORMATS), default="npz",
                   help="npz (default) or tfrecord (AudioSet release SequenceExample)")
    p.add_argument("--model", default=None, metavar="NAME|PATH",
                   help="vggish (default) or yamnet (or a yamnet.h5 / YAMNet .tflite file)")
    p.add_argument("--hop", type=positive_float, default=None, metavar="SECONDS",
                   help="example hop: 1.0 (default; one embedding per second) or 0.96 (official VGGish "
                        "framing)")
    p.add_argument("--compat-truncate", action="store_true",
                   help="frame as the old AudioTagger did: keep the first 0.96 s of every second but the "
                        "last, then hop 0.96 s (one embedding per second)")
    p.add_argument("--save-logmel", action="store_true", help="also store the log-mel examples (npz)")
    p.add_argument("--checkpoint", metavar="CKPT", help="VGGish checkpoint vggish_model.ckpt, or yamnet.h5 "
                   "(default: the model cache)")
    p.add_argument("--pca-params", metavar="NPZ", help="vggish_pca_params.npz (default: the model cache)")
    p.add_argument("--model-dir", metavar="DIR", help="model cache folder")
    p.add_argument("--offline", action="store_true", default=None, help="never download models")
    p.add_argument("--batch-size", type=positive_int, default=None, metavar="N",
                   help="examples per network call (default: 16 with --engine tf, 256 with onnx)")
    add_engine_arguments(p)
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    p.add_argument("--strict", action="store_true",
                   help="refuse damaged media (default: embed what decodes, with a warning)")
    p.add_argument("--recursive", action="store_true", help="descend into sub-folders of folder inputs")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress or summary unless something fails")
    p.add_argument("--debug", action="store_true", help=argparse.SUPPRESS)
    add_archive_arguments(p, embed=True)
    p.set_defaults(func=run)


def run(args) -> int:
    """Run ``embed``; return the exit code."""
    from ..errors import ParameterError
    from ..tag.tagger import backend_name
    from ..vggish.features import framing_hop

    yamnet = args.model not in (None, "vggish") and backend_name(args.model) == "yamnet"
    if args.model not in (None, "vggish") and not yamnet:
        raise ParameterError(f"--model: embed supports vggish and yamnet, not {args.model!r}")
    if yamnet:
        vggish_only = (("--hop", args.hop), ("--compat-truncate", args.compat_truncate),
                       ("--save-logmel", args.save_logmel), ("--pca-params", args.pca_params))
        given = [flag for flag, value in vggish_only if value]
        if args.format != "npz" or given:
            raise ParameterError(f"{(given or ['-f tfrecord'])[0]}: only for VGGish embeddings, not YAMNet")
    args.hop = 1.0 if args.hop is None else args.hop
    if args.format == "tfrecord" and args.save_logmel:
        raise ParameterError("--save-logmel: only with -f npz (the AudioSet format has no log-mels)")
    framing_hop(args.hop, args.compat_truncate)
    from ..engine import check_engine

    check_engine(args.engine, args.precision)
    from ..audio import check_resampler

    check_resampler(args.resampler)
    check_plain(args)
    if args.labels_csv and args.format != "tfrecord":
        raise ParameterError("--labels-csv: only with -f tfrecord")
    if args.ray is not None:
        if yamnet:
            raise ParameterError("--ray: embed --model yamnet does not run on Ray yet "
                                 "(tag --model yamnet does)")
        return run_archive_command(args, {
            "command": "embed", "format": args.format, "sharded": args.format == "tfrecord",
            "labels_csv": args.labels_csv, "hop": args.hop, "save_logmel": args.save_logmel,
            "compat_truncate": args.compat_truncate, "checkpoint": absolute(args.checkpoint),
            "pca_params": absolute(args.pca_params), "model_dir": absolute(args.model_dir),
            "offline": args.offline, "batch_size": args.batch_size, "engine": args.engine,
            "precision": args.precision, "resampler": args.resampler})
    args.inputs = plain_inputs(args)
    if not args.inputs:
        raise ParameterError("no input given (audio/video files, folders, patterns, or --input-list FILE)")
    suffix = FORMATS[args.format]
    items, problems = expand_inputs(args.inputs, recursive=args.recursive)

    plans = plan_outputs(items, lambda item: {args.format: item.output(args.output_dir, suffix)},
                         overwrite=args.overwrite)
    todo = [item for item in items if isinstance(plans[item], dict) and plans[item]]

    results = iter(())
    if todo and yamnet:
        from ..yamnet.tagging import YamnetModel

        kwargs = {"batch_size": args.batch_size} if args.batch_size else {}
        yam = YamnetModel(args.model, args.checkpoint, model_dir=args.model_dir, offline=args.offline,
                          engine=args.engine, precision=args.precision, **kwargs)
        results = yam.iter_embed([item.path for item in todo])
    elif todo:
        from ..vggish.embed import VGGishEmbedder

        embedder = VGGishEmbedder(args.checkpoint, args.pca_params, args.model_dir, args.offline,
                                  batch_size=args.batch_size, engine=args.engine, precision=args.precision,
                                  resampler=args.resampler)
        results = embedder.iter_embed([item.path for item in todo], hop=args.hop,
                                      save_logmel=args.save_logmel, progress=not args.quiet,
                                      compat_truncate=args.compat_truncate, strict=args.strict)

    def work(item) -> bool:
        from ..vggish.embed import save_embedding

        plan = plans[item]
        if isinstance(plan, BaseException):
            raise plan
        if not plan:
            if not args.quiet:
                print(f"audiotagger: {item.output(args.output_dir, suffix)} exists, skipped "
                      "(--overwrite replaces it)", file=sys.stderr)
            return False
        source, result = next(results)
        if isinstance(result, BaseException):
            raise result
        if yamnet:
            from ..yamnet.tagging import save_output

            save_output(result, plan[args.format], overwrite=True)
            return True
        save_embedding(result, plan[args.format], format=args.format, overwrite=True)
        return True

    report = run_each(items, work, problems=problems, quiet=args.quiet, debug=args.debug, desc="embed")
    return report.exit_code if (items or problems) else EXIT_OK
