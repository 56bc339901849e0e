"""Layout of a training workspace and the files in it.

``<workspace>/<tag>/`` holds one run::

    run.json                 settings of the run (checked when the same command is rerun to resume)
    split.npz                video ids of the train / validation / test parts (held-out splits)
    checkpoints/iter_0001000.npz   model + optimizer + sampler state after 1000 iterations
    stats/iter_0001000.json        validation mAP, AUC, d', per-class AP/AUC at that iteration
    probs/iter_0001000.npz         validation probabilities (``--save-probs``); probs/targets.npz
    best.npz, best.json            the classifier with the best validation mAP so far
    averaged.npz                   weight average of the checkpoints ending at the best (``--average-last``)
    test.json                      held-out test stats of the final models (``--test-split``)
    logs/00000.log                 one log per invocation (numbered, never overwritten)

Every file is written atomically, so an interrupted run (even ``kill -9``) leaves complete files only.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from ..errors import DataError, ParameterError
from ..fileio import ensure_writable_dir

_ITER_RE = re.compile(r"^iter_(\d+)\.(npz|json)$")


class Workspace:
    """Paths of one run: ``<root>/<tag>``."""

    def __init__(self, root: str | os.PathLike, tag: str):
        if not tag or "/" in tag or tag in (".", ".."):
            raise ParameterError(f"--tag: invalid name {tag!r}")
        self.root = Path(root)
        self.tag = tag
        self.dir = self.root / tag

    checkpoints = property(lambda self: self.dir / "checkpoints")
    stats = property(lambda self: self.dir / "stats")
    probs = property(lambda self: self.dir / "probs")
    logs = property(lambda self: self.dir / "logs")
    run_file = property(lambda self: self.dir / "run.json")
    best = property(lambda self: self.dir / "best.npz")
    best_json = property(lambda self: self.dir / "best.json")
    averaged = property(lambda self: self.dir / "averaged.npz")
    test_json = property(lambda self: self.dir / "test.json")
    split_file = property(lambda self: self.dir / "split.npz")

    def checkpoint(self, iteration: int) -> Path:
        """Path of the checkpoint after ``iteration`` updates."""
        return self.checkpoints / f"iter_{iteration:07d}.npz"

    def stats_file(self, iteration: int) -> Path:
        """Path of the stats of ``iteration``."""
        return self.stats / f"iter_{iteration:07d}.json"

    def probs_file(self, iteration: int) -> Path:
        """Path of the saved probabilities of ``iteration``."""
        return self.probs / f"iter_{iteration:07d}.npz"

    def prepare(self) -> None:
        """Create the folders and check they are writable (ParameterError naming ``--workspace``)."""
        try:
            for d in (self.checkpoints, self.stats, self.probs, self.logs):
                d.mkdir(parents=True, exist_ok=True)
            ensure_writable_dir(self.dir)
        except OSError as exc:
            raise ParameterError(f"--workspace {self.root}: not writable ({exc.strerror or exc})") from None
        for d in (self.dir, self.checkpoints, self.stats, self.probs):      # leftovers of a killed write
            for stale in d.glob(".*.part*"):
                stale.unlink(missing_ok=True)

    def new_log(self) -> Path:
        """Return the next free ``logs/NNNNN.log``."""
        taken = {int(p.stem) for p in self.logs.glob("*.log") if p.stem.isdigit()}
        return self.logs / f"{(max(taken) + 1) if taken else 0:05d}.log"

    def checkpoint_iterations(self) -> list[int]:
        """Iterations with a checkpoint, ascending."""
        return _iterations(self.checkpoints, "npz")

    def stats_iterations(self) -> list[int]:
        """Iterations with stats, ascending."""
        return _iterations(self.stats, "json")

    def read_stats(self, iteration: int) -> dict:
        """Load the stats of one iteration (DataError if absent or unreadable)."""
        return read_json(self.stats_file(iteration))


def _iterations(folder: Path, ext: str) -> list[int]:
    out = []
    if folder.is_dir():
        for p in folder.iterdir():
            m = _ITER_RE.match(p.name)
            if m and m.group(2) == ext:
                out.append(int(m.group(1)))
    return sorted(out)


def read_json(path: str | os.PathLike) -> dict:
    """Read a JSON file, raising DataError naming it when missing or malformed."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"{path}: not found") from None
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: unreadable ({exc})") from None


def find_tags(root: str | os.PathLike) -> list[str]:
    """Tags (runs) in a workspace: sub-folders with a ``stats/`` folder."""
    root = Path(root)
    return sorted(p.name for p in root.iterdir() if (p / "stats").is_dir()) if root.is_dir() else []
