"""Per-iteration statistics of a training run, probability ensembles and their plot (`audiotagger stats`)."""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

import numpy as np

from ..errors import DataError, ParameterError
from ..params import STATS_FORMATS
from .metrics import calculate_stats
from .workspace import Workspace, find_tags

FORMATS = STATS_FORMATS


def open_run(workspace: str | os.PathLike, tag: str | None = None) -> Workspace:
    """Find the run ``<workspace>/<tag>``; without a tag, the workspace's only run (or the folder itself).

    Raises
    ------
    ParameterError
        If the run does not exist or the tag is ambiguous (the message lists the tags).
    """
    root = Path(workspace)
    if tag is None:
        if (root / "stats").is_dir():
            return Workspace(root.parent, root.name)
        tags = find_tags(root)
        if len(tags) != 1:
            raise ParameterError(f"--workspace {root}: " + (f"holds several runs, choose one with --tag: "
                                 f"{', '.join(tags)}" if tags else "no training run found"))
        tag = tags[0]
    ws = Workspace(root, tag)
    if not ws.stats.is_dir():
        tags = find_tags(root)
        raise ParameterError(f"--tag {tag}: no such run in {root}"
                             + (f" (runs: {', '.join(tags)})" if tags else ""))
    return ws


def select_iterations(available: list[int], begin: int | None = None, end: int | None = None,
                      step: int | None = None) -> list[int]:
    """Iterations ``begin <= i < end`` (end exclusive, as Python's ``range``) on the grid ``begin + k*step``.

    ``None`` means: from the first, to past the last, every available iteration.
    """
    lo = available[0] if begin is None and available else (begin or 0)
    out = [i for i in available if i >= lo and (end is None or i < end)]
    if step:
        out = [i for i in out if (i - lo) % step == 0]
    return out


def iteration_table(ws: Workspace, iterations: list[int]) -> list[dict]:
    """Rows ``{"iteration", "mAP", "AUC", "d_prime"}`` read from the run's stats files."""
    rows = []
    for it in iterations:
        s = ws.read_stats(it)
        rows.append({"iteration": it, "mAP": s["mAP"], "AUC": s["AUC"], "d_prime": s["d_prime"]})
    return rows


def ensemble(ws: Workspace, iterations: list[int]) -> dict:
    """Average the saved evaluation probabilities of ``iterations`` and score the average (Kong/Yu).

    Raises
    ------
    DataError
        If the probabilities were not saved (train with ``--save-probs``).
    """
    targets_file = ws.probs / "targets.npz"
    if not targets_file.is_file():
        raise DataError(f"{targets_file}: missing; train with --save-probs to use --ensemble")
    total = None
    for it in iterations:
        path = ws.probs_file(it)
        if not path.is_file():
            raise DataError(f"{path}: missing; train with --save-probs to use --ensemble")
        with np.load(path, allow_pickle=False) as f:
            p = f["probs"].astype(np.float64)
        total = p if total is None else total + p
    with np.load(targets_file, allow_pickle=False) as f:
        targets = f["targets"]
    stats = calculate_stats((total / len(iterations)).astype(np.float32), targets, warn=False)
    return {"iteration": "ensemble", "iterations": iterations, "mAP": stats["mAP"], "AUC": stats["AUC"],
            "d_prime": stats["d_prime"]}


def run_stats(workspace, tag: str | None = None, *, begin: int | None = None, end: int | None = None,
              step: int | None = None, with_ensemble: bool = False) -> list[dict]:
    """Rows of the per-iteration table (plus an ``ensemble`` row when asked).

    Parameters
    ----------
    workspace, tag
        The run (see :func:`open_run`).
    begin, end, step : int, optional
        Iterations ``begin, begin+step, ...`` below ``end`` (**end exclusive**) that have stats.
    with_ensemble : bool
        Append the stats of the averaged probabilities of the chosen iterations.

    Raises
    ------
    DataError
        If no evaluated iteration is in the range.
    """
    ws = open_run(workspace, tag)
    if step is not None and step < 1:
        raise ParameterError(f"--step: must be >= 1, got {step}")
    available = ws.stats_iterations()
    chosen = select_iterations(available, begin, end, step)
    if not chosen:
        raise DataError(f"{ws.stats}: no evaluated iteration in the range (available: "
                        f"{', '.join(map(str, available)) or 'none'})")
    rows = iteration_table(ws, chosen)
    if with_ensemble:
        rows.append(ensemble(ws, chosen))
    return rows


def format_rows(rows: list[dict], fmt: str = "table") -> str:
    """Render rows as an aligned table, CSV or JSON."""
    if fmt == "json":
        return json.dumps(rows, indent=1) + "\n"
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["iteration", "mAP", "AUC", "d_prime"])
        for r in rows:
            w.writerow([r["iteration"], f"{r['mAP']:.6f}", f"{r['AUC']:.6f}", f"{r['d_prime']:.6f}"])
        return buf.getvalue()
    if fmt != "table":
        raise ParameterError(f"-f: unknown format {fmt!r} (choose from {', '.join(FORMATS)})")
    lines = [f"{'iterations':>10}  {'mAP':>8}  {'AUC':>8}  {'d-prime':>8}"]
    for r in rows:
        lines.append(f"{r['iteration']!s:>10}  {r['mAP']:8.4f}  {r['AUC']:8.4f}  {r['d_prime']:8.4f}")
    return "\n".join(lines) + "\n"


def plot_rows(rows: list[dict], path: str | os.PathLike, title: str = "") -> Path:
    """Plot mAP, AUC and d′ against iteration to a PNG (atomic write); an ensemble row is a dashed line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..fileio import atomic_path

    its = [r for r in rows if isinstance(r["iteration"], int)]
    ens = [r for r in rows if not isinstance(r["iteration"], int)]
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
    for ax, key, label in zip(axes, ("mAP", "AUC", "d_prime"), ("mAP", "AUC", "d′"), strict=True):
        ax.plot([r["iteration"] for r in its], [r[key] for r in its], marker="o", ms=3)
        for r in ens:
            ax.axhline(r[key], ls="--", color="C1", label="ensemble")
        ax.set_xlabel("iteration")
        ax.set_title(label)
        ax.grid(alpha=0.3)
        if ens:
            ax.legend(loc="lower right")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
    return Path(path)
