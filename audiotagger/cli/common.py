"""Helpers shared by the subcommands: argument types, input expansion, the per-input loop."""

from __future__ import annotations

import argparse
import glob
import os
import sys
import traceback
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import AudioTaggerError
from ..params import MEDIA_EXTENSIONS

__all__ = ["MEDIA_EXTENSIONS"]  # re-exported: the CLI's folder inputs and training folders share it

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2



def error_line(exc: BaseException) -> str:
    """Format an exception as the one line the CLI prints for it."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return f"audiotagger: error: {text}"


# --- argparse types -------------------------------------------------------------------------------

def positive_float(text: str) -> float:
    """Argparse type: a float > 0."""
    value = _number(text, float)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def nonnegative_float(text: str) -> float:
    """Argparse type: a float >= 0."""
    value = _number(text, float)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def positive_int(text: str) -> int:
    """Argparse type: an integer >= 1."""
    value = _number(text, int)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {text}")
    return value


def nonnegative_int(text: str) -> int:
    """Argparse type: an integer >= 0."""
    value = _number(text, int)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def probability(text: str) -> float:
    """Argparse type: a float in [0, 1]."""
    value = _number(text, float)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


def str2bool(text: str) -> bool:
    """Argparse type: yes/true/t/y/1 or no/false/f/n/0 (the original tool's spellings)."""
    value = text.strip().lower()
    if value in ("yes", "true", "t", "y", "1"):
        return True
    if value in ("no", "false", "f", "n", "0"):
        return False
    raise argparse.ArgumentTypeError(f"expected a boolean (yes/no), got {text!r}")


def _number(text: str, kind: type) -> int | float:
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid {kind.__name__} value: {text!r}") from None


def add_engine_arguments(group) -> None:
    """Add ``--engine`` and ``--precision`` (shared by ``tag`` and ``embed``)."""
    from ..engine import DEFAULT_ENGINE, DEFAULT_PRECISION, ENGINES, PRECISIONS

    group.add_argument("--engine", choices=ENGINES, default=None,
                       help=f"where the networks run: onnx (ONNX Runtime, no TensorFlow import) or tf "
                            f"(TensorFlow, the reference) (default: {DEFAULT_ENGINE})")
    group.add_argument("--precision", choices=PRECISIONS, default=None,
                       help=f"network precision; int8 is ONNX Runtime static quantisation, calibrated "
                            f"once on the recordings in $AUDIOTAGGER_CALIBRATION (onnx only; default: "
                            f"{DEFAULT_PRECISION})")
    group.add_argument("--resampler", choices=("soxr", "resampy"), default=None,
                       help="VGGish: resampling of inputs not at 16 kHz: soxr (VHQ, streamed; default) or "
                            "resampy (kaiser_best on the whole signal: Google's VGGish examples exactly; "
                            "needs the resampy extra)")


# --- inputs and outputs ---------------------------------------------------------------------------

@dataclass(frozen=True)
class InputFile:
    """One input and the folder its outputs go to, relative to ``-o`` (mirrors ``--recursive``)."""

    path: Path
    rel_dir: Path = Path()

    def output(self, out_dir: str | os.PathLike, suffix: str) -> Path:
        """Return ``out_dir/rel_dir/<stem><suffix>`` (``suffix`` includes the dot)."""
        return Path(out_dir) / self.rel_dir / f"{self.path.stem}{suffix}"


def expand_inputs(specs: Iterable[str], *, recursive: bool = False,
                  extensions: frozenset[str] = MEDIA_EXTENSIONS) -> tuple[list[InputFile], list[str]]:
    """Turn files, directories and glob patterns into a list of input files.

    Parameters
    ----------
    specs : iterable of str
        Paths as typed. A directory contributes its media files (with ``recursive``, those of its
        sub-folders too, whose outputs go to matching sub-folders of the output folder). A pattern
        with ``*``, ``?`` or ``[`` is expanded with :mod:`glob` (``**`` with ``recursive``).
    recursive : bool
        Descend into sub-folders.
    extensions : frozenset of str
        Lower-case suffixes taken from directories.

    Returns
    -------
    inputs : list of InputFile
        In the order given, each path once.
    problems : list of str
        One line for each spec that matched nothing (a missing path, an empty folder or glob).
        Explicit file paths are passed through unchecked so that the per-file loop reports them.
    """
    inputs: list[InputFile] = []
    problems: list[str] = []
    seen: set[Path] = set()

    def add(path: Path, rel: Path = Path()) -> None:
        key = path.resolve()
        if key not in seen:
            seen.add(key)
            inputs.append(InputFile(path, rel))

    for spec in specs:
        path = Path(spec)
        if path.is_dir():
            pattern = "**/*" if recursive else "*"
            found = sorted(p for p in path.glob(pattern)
                           if p.is_file() and p.suffix.lower() in extensions)
            if not found:
                problems.append(f"{spec}: no media files in this folder"
                                + ("" if recursive else " (use --recursive for sub-folders)"))
            for p in found:
                add(p, p.parent.relative_to(path))
        elif glob.has_magic(spec):
            found = sorted(Path(p) for p in glob.glob(spec, recursive=recursive))
            found = [p for p in found if p.is_file()]
            if not found:
                problems.append(f"{spec}: pattern matched no file")
            for p in found:
                add(p)
        else:
            add(path)
    return inputs, problems


@dataclass
class BatchReport:
    """Outcome of a loop over inputs."""

    done: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        """1 if any input failed, else 0."""
        return EXIT_FAILED if self.failed else EXIT_OK

    def summary(self) -> str:
        """Multi-line summary: counts, then one line per failure."""
        lines = [f"audiotagger: {len(self.done)} done, {len(self.skipped)} skipped, "
                 f"{len(self.failed)} failed"]
        lines += [f"  failed: {name}: {why}" for name, why in self.failed]
        return "\n".join(lines)


def run_each(items: Sequence[InputFile], work: Callable[[InputFile], bool | None], *,
             problems: Sequence[str] = (), quiet: bool = False, debug: bool = False,
             desc: str = "files") -> BatchReport:
    """Call ``work(item)`` for every input, isolating failures.

    Parameters
    ----------
    items : sequence of InputFile
        Inputs, processed in order.
    work : callable
        Does one input; returns False when it skipped the input (outputs already there).
        An :class:`AudioTaggerError` (or ``OSError``) fails that input only; its one-line message is
        printed and the loop goes on. Other exceptions are bugs and propagate.
    problems : sequence of str
        Failures found before the loop (specs that matched nothing); reported like the others.
    quiet : bool
        No progress bar and no summary when everything succeeded.
    debug : bool
        Print the traceback of each failure too.
    desc : str
        Progress-bar label.

    Returns
    -------
    BatchReport
    """
    from tqdm.auto import tqdm

    report = BatchReport()
    for line in problems:
        spec, _, why = line.partition(": ")
        report.failed.append((spec, why))
        print(f"audiotagger: error: {line}", file=sys.stderr)
    bar = tqdm(items, desc=desc, unit="file", disable=quiet or len(items) < 2, file=sys.stderr)
    for item in bar:
        try:
            result = work(item)
        except (AudioTaggerError, OSError) as exc:
            msg = error_line(exc).removeprefix("audiotagger: error: ")
            if not msg.startswith(str(item.path)):
                msg = f"{item.path}: {msg}"
            name, _, why = msg.partition(": ")
            report.failed.append((str(item.path), why or name))
            tqdm.write(f"audiotagger: error: {msg}", file=sys.stderr)
            if debug:
                traceback.print_exc()
            continue
        (report.skipped if result is False else report.done).append(item.path)
    if report.failed or not quiet:
        if len(items) + len(problems) > 1 or report.failed:
            print(report.summary(), file=sys.stderr)
    return report
