"""Command-line entry point: ``audiotagger SUBCOMMAND ...``.

Only argument plumbing lives here; each subcommand module calls one library function per input.
Nothing imported at module level pulls in TensorFlow, so ``--help`` and usage errors are instant.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import importlib
import os
import signal
import sys
import warnings
from collections.abc import Sequence

from .. import __version__
from ..errors import AudioTaggerError, ParameterError
from .common import EXIT_FAILED, EXIT_USAGE, error_line, os_error_line, warning_line
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


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived: unwound like Ctrl-C, so temporary files are removed and nothing is half-written."""


def _on_sigterm(signum, frame) -> None:
    raise Terminated()


@contextlib.contextmanager
def _sigterm_as_interrupt():
    """Turn SIGTERM into :class:`Terminated` while the command runs (main thread only)."""
    try:
        previous = signal.signal(signal.SIGTERM, _on_sigterm)
    except ValueError:      # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return its exit code (0 success, 1 some input failed, 2 usage error).

    SIGTERM is handled like Ctrl-C (exit 143 instead of 130). Every warning is printed as one line
    ``audiotagger: warning: ...`` (with its source location only under ``--debug``).
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    quiet_tensorflow_import()
    parser = build_parser()
    args = parser.parse_args(argv)
    debug = bool(getattr(args, "debug", False))
    with _sigterm_as_interrupt(), warnings.catch_warnings():
        warnings.showwarning = functools.partial(warning_line, debug=debug)
        try:
            return int(args.func(args) or 0)
        except ParameterError as exc:
            parser.exit(EXIT_USAGE, f"{parser.prog}: error: {exc}\n")
        except AudioTaggerError as exc:
            print(error_line(exc), file=sys.stderr)
            return EXIT_FAILED
        except Terminated:
            print("audiotagger: terminated (SIGTERM); finished outputs are kept, nothing half-written",
                  file=sys.stderr)
            return 128 + signal.SIGTERM
        except KeyboardInterrupt:
            print("audiotagger: interrupted; finished outputs are kept, nothing half-written",
                  file=sys.stderr)
            return 130
        except BrokenPipeError:
            # The reader went away (``audiotagger models list | head``): stop quietly, as Unix tools do.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            return 141
        except OSError as exc:      # a full disk or a folder that went away while writing one output
            print(os_error_line(exc), file=sys.stderr)
            if debug:
                import traceback

                traceback.print_exc()
            return EXIT_FAILED
