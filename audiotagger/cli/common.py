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

from ..errors import AudioTaggerError, DataError
from ..params import MEDIA_EXTENSIONS

__all__ = ["MEDIA_EXTENSIONS"]  # re-exported: the CLI's folder inputs and training folders share it

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2



def error_line(exc: BaseException) -> str:
    """Format an exception as the one line the CLI prints for it."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return f"audiotagger: error: {text}"


def warning_line(message, category=None, filename=None, lineno=None, file=None, line=None, *,
                 debug: bool = False) -> None:
    """``warnings.showwarning`` of the CLI: one line ``audiotagger: warning: <message>`` on stderr.

    Written through tqdm so that progress bars are not torn; ``debug`` appends the source location.
    """
    from tqdm.auto import tqdm

    text = str(message).strip().replace("\n", " ")
    if debug and filename:
        text += f" [{category.__name__ if category else 'Warning'} at {filename}:{lineno}]"
    tqdm.write(f"audiotagger: warning: {text}", file=sys.stderr if file is None else file)


def os_error_line(exc: OSError) -> str:
    """One line for an ``OSError``: ``audiotagger: error: <file>: <strerror>``."""
    name = exc.filename if exc.filename is not None else ""
    why = exc.strerror or str(exc) or type(exc).__name__
    return f"audiotagger: error: {name}: {why}" if name else f"audiotagger: error: {why}"


def check_output_file(path: str | os.PathLike | None, flag: str) -> None:
    """Before any work: make sure ``path`` can be written (its folder is created and probed).

    Raises
    ------
    DataError
        The folder cannot be created or written, or ``path`` is a folder; the message names the flag.
    """
    if path is None:
        return
    from ..fileio import ensure_writable_dir

    path = Path(path)
    if path.is_dir():
        raise DataError(f"{flag} {path}: is a folder, expected a file name")
    try:
        ensure_writable_dir(path.parent if str(path.parent) else ".")
        if path.exists() and not os.access(path, os.W_OK) and os.geteuid() != 0:
            raise PermissionError(13, "Permission denied", str(path))
    except OSError as exc:
        raise DataError(f"{flag} {path}: cannot write there ({exc.strerror or exc})") from None


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


def threshold_value(text: str) -> float | str:
    """Argparse type of ``--threshold``: a float in [0, 1], or ``auto`` (each class's own threshold)."""
    if text.strip().lower() == "auto":
        return "auto"
    try:
        float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number between 0 and 1 or auto, got {text!r}") from None
    return probability(text)


def str2bool(text: str) -> bool:
    """Argparse type: yes/true/t/y/1 or no/false/f/n/0 (the original tool's spellings)."""
    value = text.strip().lower()
    if value in ("yes", "true", "t", "y", "1"):
        return True
    if value in ("no", "false", "f", "n", "0"):
        return False
    raise argparse.ArgumentTypeError(f"expected a boolean (yes/no), got {text!r}")


def smooth_value(text: str) -> int | bool:
    """Argparse type of ``--smooth`` (``tag`` and ``parse`` alike): a step count N >= 0, or yes/no.

    ``--smooth`` alone or ``--smooth yes`` smooths over ``--smooth-size`` steps (default 5); ``--smooth N``
    over N steps; ``--smooth no`` or ``--smooth 0`` not at all.
    """
    if text.strip().lstrip("+-").isdigit():
        return nonnegative_int(text)
    try:
        return str2bool(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"expected a number of steps or yes/no, got {text!r}") from None


def smooth_steps(smooth: int | bool | None, size: int | None, default: int) -> int | None:
    """Combine ``--smooth`` and ``--smooth-size`` into a step count (None: neither given)."""
    if smooth is None:
        return size
    if smooth is True:
        return default if size is None else size
    if smooth is False:
        return 0
    return int(smooth)


def _number(text: str, kind: type) -> int | float:
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid {kind.__name__} value: {text!r}") from None


def add_engine_arguments(group, *, resampler: bool = True) -> None:
    """Add ``--engine`` and ``--precision``, and ``--resampler`` unless ``resampler`` is False.

    ``tag`` and ``embed`` take all three; ``listen`` (live sources, never resampled as a whole) the first two.
    """
    from ..engine import DEFAULT_ENGINE, DEFAULT_PRECISION, ENGINES, PRECISIONS

    group.add_argument("--engine", choices=ENGINES, default=None,
                       help=f"where the networks run: onnx (ONNX Runtime, no TensorFlow import) or tf "
                            f"(TensorFlow, the reference) (default: {DEFAULT_ENGINE})")
    group.add_argument("--precision", choices=PRECISIONS, default=None,
                       help=f"network precision; int8 is ONNX Runtime static quantisation, calibrated "
                            f"once on the recordings in $AUDIOTAGGER_CALIBRATION (onnx only; default: "
                            f"{DEFAULT_PRECISION})")
    if not resampler:
        return
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
        with ``*``, ``?`` or ``[`` is expanded with :mod:`glob` (``**`` with ``recursive``). Folders
        and patterns skip hidden files and our own ``*.tagged.mp4`` outputs.
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
                           if p.is_file() and p.suffix.lower() in extensions
                           and not _own_or_hidden(p.relative_to(path)) and not any(
                               q.startswith(".") for q in p.relative_to(path).parts))
            if not found:
                problems.append(f"{spec}: no media files in this folder"
                                + ("" if recursive else " (use --recursive for sub-folders)"))
            for p in found:
                add(p, p.parent.relative_to(path))
        elif glob.has_magic(spec):
            found = sorted(Path(p) for p in glob.glob(spec, recursive=recursive))
            found = [p for p in found if p.is_file() and not _own_or_hidden(p)]
            if not found:
                problems.append(f"{spec}: pattern matched no file")
            for p in found:
                add(p)
        else:
            add(path)
    return inputs, problems


OWN_OUTPUT_SUFFIXES = (".tagged.mp4",)
"""Names our own outputs end with; folders and patterns never pick them up as inputs."""


def _own_or_hidden(path: Path) -> bool:
    return path.name.startswith(".") or path.name.lower().endswith(OWN_OUTPUT_SUFFIXES)


def _key(path: Path) -> str:
    try:
        return str(path.resolve())
    except (OSError, RuntimeError):
        return os.path.abspath(path)


def check_output_name(path: Path, source: Path) -> None:
    """Raise :class:`DataError` if a component of ``path`` is longer than its file system allows."""
    from ..fileio import name_max

    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    limit = name_max(folder)
    for part in path.parts:
        size = len(part.encode(errors="surrogateescape"))
        if size > limit:
            raise DataError(f"{source}: output name {part[:40]}... is {size} bytes, longer than the file "
                            f"system allows ({limit}); rename the input")


def plan_outputs(items: Sequence[InputFile], paths_of: Callable[[InputFile], dict[str, Path]], *,
                 overwrite: bool) -> dict[InputFile, dict[str, Path] | AudioTaggerError]:
    """Plan every input's outputs, each input on its own (a problem fails that input only).

    Parameters
    ----------
    items : sequence of InputFile
        The inputs of this call.
    paths_of : callable
        ``item -> {format: output path}``.
    overwrite : bool
        Existing outputs are redone (otherwise left out of the plan).

    Returns
    -------
    dict
        For each input, the outputs to write (empty: all exist, skip it), or the error that fails it:
        an output name too long for the file system, an output that is another input of this call
        (never written over, even with ``--overwrite``), or two inputs with the same output. An output
        that is the input itself is left out. Stale temporary files of killed runs are removed from
        the output folders (:func:`audiotagger.fileio.sweep_stale_parts`).
    """
    from ..fileio import sweep_stale_parts

    inputs = {_key(item.path): item for item in items}
    claimed: dict[str, InputFile] = {}
    swept: set[Path] = set()
    plans: dict[InputFile, dict[str, Path] | AudioTaggerError] = {}
    for item in items:
        try:
            pending: dict[str, Path] = {}
            for fmt, path in paths_of(item).items():
                check_output_name(path, item.path)
                key = _key(path)
                owner = inputs.get(key)
                if owner is item:
                    continue                      # never replace the input itself
                if owner is not None:
                    raise DataError(f"{item.path}: output {path} is also an input of this call; not "
                                    "writing over it (choose another -o folder)")
                if claimed.get(key, item) is not item:
                    raise DataError(f"{item.path}: output {path} is also the output of "
                                    f"{claimed[key].path}; tag them into separate -o folders")
                claimed[key] = item
                if path.parent not in swept:
                    swept.add(path.parent)
                    sweep_stale_parts(path.parent)
                if overwrite or not path.exists():
                    pending[fmt] = path
            plans[item] = pending
        except AudioTaggerError as exc:
            plans[item] = exc
        except OSError as exc:
            plans[item] = DataError(f"{item.path}: cannot plan its outputs ({exc.strerror or exc})")
    return plans


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
