"""Command-line entry point: ``audiotagger SUBCOMMAND ...``.

Only argument plumbing lives here; each subcommand module calls one library function per input.
Nothing imported at module level pulls in TensorFlow, so ``--help`` and usage errors are instant.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from .. import __version__
from ..errors import AudioTaggerError, ParameterError
from .common import EXIT_FAILED, EXIT_USAGE, error_line
from .quiet import quiet_tensorflow_import

# Subcommand modules, in the order ``--help`` lists them. Each defines ``add_parser(subparsers)``
# (which sets ``func``) and a ``run(args) -> int``.
_COMMANDS = (
    "tag",
    "listen",
    "embed",
    "models",
    "train",
    "evaluate",
    "stats",
    "parse",
    "export",
)


def build_parser() -> argparse.ArgumentParser:
    """Return the top-level parser with every subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="audiotagger",
        description="Tag AudioSet sound events in audio and video files.",
    )
    parser.add_argument("--version", action="version", version=f"audiotagger {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in _COMMANDS:
        importlib.import_module(f"{__name__}.{name}").add_parser(sub)
    return parser


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse ``argv`` (default ``sys.argv[1:]``); exits with code 2 on a usage error."""
    return build_parser().parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return its exit code (0 success, 1 some input failed, 2 usage error)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    quiet_tensorflow_import()
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ParameterError as exc:
        parser.exit(EXIT_USAGE, f"{parser.prog}: error: {exc}\n")
    except AudioTaggerError as exc:
        print(error_line(exc), file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("audiotagger: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (``audiotagger models list | head``): stop quietly, as Unix tools do.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
