"""``audiotagger parse``: PaddleAudio-style top-k text from saved scores (``parse_result.py``)."""

from __future__ import annotations

import argparse
import sys

from ..panns.params import DEFAULT_SMOOTH_SIZE as _DEFAULT_SMOOTH_SIZE
from ..panns.params import DEFAULT_TOP_K as _DEFAULT_TOP_K
from .common import expand_inputs, plan_outputs, positive_int, run_each, smooth_steps, smooth_value


def add_parser(sub) -> None:
    """Register the ``parse`` subcommand."""
    p = sub.add_parser(
        "parse", help="top-k text (PaddleAudio parse_result.py) from saved scores",
        description="Write <stem>.txt with, for every time step, the time, the top-k classes as "
                    "'<label>: <score>' lines and a blank line. Reads .npz files of `audiotagger tag -f npz` "
                    "(times in seconds) or PaddleAudio audio_tag.py results (time as fractions).")
    p.add_argument("inputs", nargs="+", metavar="FILE.npz", help="score files, folders or glob patterns")
    p.add_argument("-o", "--output-dir", "--output_dir", dest="output_dir", default=".", metavar="DIR",
                   help="folder for <stem>.txt (default: .)")
    p.add_argument("--top-k", "--top_k", "--topk", dest="top_k", type=positive_int, default=_DEFAULT_TOP_K,
                   metavar="K", help=f"classes per time step (default: {_DEFAULT_TOP_K})")
    p.add_argument("--smooth", type=smooth_value, nargs="?", const=True, default=None, metavar="N",
                   help="causal moving average of the scores over N steps first (--smooth alone: "
                        "--smooth-size; --smooth no: off; default: off). Same syntax as 'tag --smooth'")
    p.add_argument("--smooth-size", "--smooth_size", dest="smooth_size", type=positive_int,
                   default=None, metavar="W",
                   help=f"steps averaged by --smooth (default: {_DEFAULT_SMOOTH_SIZE})")
    p.add_argument("-r", "--recursive", action="store_true", help="descend into folders")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs (default: skip them)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars and no summaries")
    p.add_argument("--debug", action="store_true", help="print tracebacks of failed inputs")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run ``parse``: one ``.txt`` per input, failures isolated."""
    from ..parse import parse_file

    items, problems = expand_inputs(args.inputs, recursive=args.recursive, extensions=frozenset({".npz"}))

    steps = smooth_steps(args.smooth if args.smooth is not None else False, args.smooth_size,
                         _DEFAULT_SMOOTH_SIZE) or 0
    plans = plan_outputs(items, lambda item: {"txt": item.output(args.output_dir, ".txt")},
                         overwrite=args.overwrite)

    def work(item) -> bool:
        out = item.output(args.output_dir, ".txt")
        if isinstance(plans[item], BaseException):
            raise plans[item]
        if not plans[item]:
            if not args.quiet:
                print(f"audiotagger: {item.path}: {out} exists, skipping (use --overwrite to redo)",
                      file=sys.stderr)
            return False
        parse_file(item.path, out, top_k=args.top_k, smooth=steps > 1, smooth_size=max(steps, 1),
                   overwrite=True)
        return True

    report = run_each(items, work, problems=problems, quiet=args.quiet, debug=args.debug, desc="files")
    return report.exit_code
