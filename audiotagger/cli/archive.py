"""The archive options shared by ``tag`` and ``embed`` (``--ray``, ``--input-list``, ...) and their plumbing.

Only argument handling: the work is :func:`audiotagger.archive.driver.run_archive`.
"""

from __future__ import annotations

import argparse
import os

from ..archive.params import DEFAULT_SHARD_SIZE, MANIFEST_INTERVAL, MANIFEST_NAME, MEMORY_SHARE
from .common import MEDIA_EXTENSIONS, positive_float, positive_int


def add_archive_arguments(p: argparse.ArgumentParser, *, embed: bool = False) -> None:
    """Register ``--ray``, ``--workers``, ``--input-list``, ``--retry-failed``/``--only-new`` and friends."""
    a = p.add_argument_group("archives on Ray (--ray)")
    a.add_argument("--ray", nargs="?", const="local", default=None, metavar="ADDRESS",
                   help="spread the files over a Ray cluster: no ADDRESS starts a local one sized to this "
                        "machine; 'auto' or HOST:PORT joins an existing one (from one of its machines). "
                        "Writes "
                        f"<-o>/{MANIFEST_NAME}; rerunning the command skips what is done")
    a.add_argument("--workers", type=positive_int, default=None, metavar="N",
                   help="worker actors, each loading the model once (default: one per CPU of the cluster)")
    a.add_argument("--input-list", "--input_list", dest="input_list", default=None, metavar="FILE",
                   help="text file (path or URL) with one input path or URL per line (# comments); "
                        "streamed, so it may hold millions")
    mode = a.add_mutually_exclusive_group()
    mode.add_argument("--retry-failed", dest="mode", action="store_const", const="retry-failed",
                      default="default", help="--ray rerun: only the inputs the manifest lists as failed")
    mode.add_argument("--only-new", dest="mode", action="store_const", const="only-new",
                      help="--ray rerun: only inputs not in the manifest (do not retry failures)")
    a.add_argument("--memory-per-worker", dest="memory_per_worker", type=positive_float, default=None,
                   metavar="GB", help="memory one file may take in a worker; a file needing more fails "
                                      "with 'out of memory' (default: "
                                      f"{MEMORY_SHARE:.0%}% of a machine's memory shared by its workers)")
    a.add_argument("--manifest-interval", dest="manifest_interval", type=positive_float, default=None,
                   metavar="S", help=f"seconds between manifest rewrites (default: {MANIFEST_INTERVAL:g})")
    if embed:
        a.add_argument("--shard-size", dest="shard_size", type=positive_int, default=DEFAULT_SHARD_SIZE,
                       metavar="N", help=f"--ray -f tfrecord: clips per shard (default: "
                                         f"{DEFAULT_SHARD_SIZE})")
        a.add_argument("--labels-csv", dest="labels_csv", default=None, metavar="CSV",
                       help="--ray -f tfrecord: 'path,labels' rows (AudioSet mids or display names) for the "
                            "records' labels")


def check_plain(args: argparse.Namespace) -> None:
    """Usage errors for archive-only options without ``--ray``."""
    from ..archive.storage import is_remote
    from ..errors import ParameterError

    if args.ray is not None:
        return
    used = [flag for flag, on in (("--workers", args.workers), ("--retry-failed/--only-new",
                                                               args.mode != "default"),
                                  ("--memory-per-worker", args.memory_per_worker),
                                  ("--labels-csv", getattr(args, "labels_csv", None))) if on]
    remote = [s for s in [*args.inputs, args.input_list or "", args.output_dir or ""] if is_remote(s)]
    if used:
        raise ParameterError(f"{used[0]}: only with --ray")
    if remote:
        raise ParameterError(f"{remote[0]}: object-store URLs need --ray")


def plain_inputs(args: argparse.Namespace) -> list[str]:
    """The inputs of a plain run: the arguments plus the lines of ``--input-list`` (a local file)."""
    if args.input_list is None:
        return list(args.inputs)
    from ..archive.inputs import InputSource

    source = InputSource([], args.input_list, recursive=False, extensions=MEDIA_EXTENSIONS)
    source.prepare()
    return list(args.inputs) + [item.given for chunk in source.chunks() for item in chunk]


def absolute(path: str | None) -> str | None:
    """A path option made absolute when it names an existing file (workers may run elsewhere)."""
    if path is None or "://" in str(path) or not os.path.exists(str(path)):
        return None if path is None else str(path)
    return os.path.abspath(str(path))


def run_archive_command(args: argparse.Namespace, spec: dict) -> int:
    """Run ``spec`` on Ray with the archive options of ``args``."""
    from ..archive.driver import run_archive
    from ..archive.inputs import InputSource
    from ..errors import ParameterError

    if args.ray not in ("local", "auto") and ":" not in args.ray:
        # `--ray media/ -o out`: argparse took the first input for the optional ADDRESS; an address is
        # always `auto` or has a port, so give the input back and start a local cluster
        args.inputs, args.ray = [args.ray, *args.inputs], "local"
    if not args.inputs and args.input_list is None:
        raise ParameterError("no input given (files, folders, patterns, URLs, or --input-list FILE)")
    source = InputSource(args.inputs, args.input_list, recursive=args.recursive, extensions=MEDIA_EXTENSIONS)
    spec = {**spec, "overwrite": args.overwrite, "cwd": source.cwd,
            "memory": None if args.memory_per_worker is None else int(args.memory_per_worker * 2**30)}
    return run_archive(spec, source, args.output_dir, address=None if args.ray == "local" else args.ray,
                       workers=args.workers, mode=args.mode, quiet=args.quiet,
                       manifest_interval=args.manifest_interval,
                       shard_size=getattr(args, "shard_size", DEFAULT_SHARD_SIZE))
