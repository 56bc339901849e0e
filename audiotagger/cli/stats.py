"""``audiotagger stats``: per-iteration mAP/AUC/d′ of a training run, with plot and probability ensemble."""

from __future__ import annotations

import sys

from ..params import STATS_FORMATS as FORMATS
from .common import nonnegative_int, positive_int


def add_parser(sub) -> None:
    """Register the ``stats`` subcommand."""
    p = sub.add_parser(
        "stats", help="per-iteration evaluation table of a training run",
        description="Print the evaluation stats (iteration, mAP, AUC, d') that `audiotagger train` saved. "
                    "Iterations run from --begin in steps of --step up to but EXCLUDING --end (as the "
                    "original get_avg_stats and Python's range); only evaluated iterations are listed.")
    p.add_argument("--workspace", required=True, metavar="W", help="the training workspace (or a run folder)")
    p.add_argument("--tag", help="run name (needed when the workspace holds several runs)")
    p.add_argument("--begin", type=nonnegative_int, help="first iteration (default: the first evaluated)")
    p.add_argument("--step", type=positive_int, help="iteration step (default: every evaluated iteration)")
    p.add_argument("--end", type=nonnegative_int,
                   help="stop before this iteration — exclusive (default: include the last evaluated)")
    p.add_argument("--ensemble", action="store_true",
                   help="also score the average of the chosen iterations' saved probabilities "
                        "(needs train --save-probs)")
    p.add_argument("-f", "--format", choices=FORMATS, default="table",
                   help="output format (default: %(default)s)")
    p.add_argument("-o", "--output", metavar="FILE", help="write the table to FILE instead of stdout")
    p.add_argument("--plot", metavar="PNG", help="also plot mAP, AUC and d' against iteration to PNG")
    p.set_defaults(func=run)


def run(args) -> int:
    """Run ``stats``."""
    from ..fileio import atomic_write_text
    from ..train.stats import format_rows, open_run, plot_rows, run_stats
    from .common import check_output_file

    check_output_file(args.output, "-o")          # before any work: a bad place fails at once
    check_output_file(args.plot, "--plot")
    rows = run_stats(args.workspace, args.tag, begin=args.begin, end=args.end, step=args.step,
                     with_ensemble=args.ensemble)
    text = format_rows(rows, args.format)
    if args.output:
        atomic_write_text(args.output, text)
    else:
        sys.stdout.write(text)
    if args.plot:
        plot_rows(rows, args.plot, title=open_run(args.workspace, args.tag).tag)
    return 0
