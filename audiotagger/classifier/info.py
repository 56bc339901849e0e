"""What a classifier file is, read without TensorFlow: for ``audiotagger models info`` and ``models list``."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ..errors import ModelError
from .store import read_config

MODEL_FILES = ("best.npz", "averaged.npz")
"""The model files of a training run that ``models list --workspace`` shows."""


def model_summary(path: str | os.PathLike) -> dict[str, Any]:
    """Describe a classifier ``.npz``.

    Returns
    -------
    dict
        ``path``, ``name``, ``kind`` (``custom`` or ``audioset``), ``backbone`` (``vggish`` for AudioSet
        models), ``labels`` (None for AudioSet's 527), ``num_classes``, ``single_label``, ``model_type``,
        ``levels``, ``embedding_size``, ``iteration``, ``members`` (an ensemble's size, else None)
        and, for a run's ``best.npz``, the validation
        ``stats`` of ``best.json`` beside it.

    Raises
    ------
    ModelError
        Not a classifier file.
    """
    path = Path(path)
    config, meta = read_config(path)
    custom = "backbone" in config
    out = {
        "path": str(path), "name": config.get("name") or meta.get("name") or path.stem,
        "kind": "custom" if custom else "audioset", "backbone": config.get("backbone", "vggish"),
        "labels": config.get("labels"), "num_classes": int(config.get("num_classes", 0)),
        "single_label": bool(config.get("single_label", False)), "model_type": config.get("model_type"),
        "levels": config.get("levels"), "embedding_size": int(config.get("embedding_size", 128)),
        "iteration": meta.get("iteration"), "stats": None,
        "members": len(config["ensemble"]) if "ensemble" in config else None,
    }
    if out["members"]:
        out["model_type"], out["levels"] = "ensemble", None
    best = path.parent / "best.json"
    if path.name == "best.npz" and best.is_file():
        try:
            out["stats"] = json.loads(best.read_text(encoding="utf-8")).get("stats")
        except (OSError, ValueError):
            pass
    return out


def find_models(workspace: str | os.PathLike) -> list[dict[str, Any]]:
    """Summaries of the model files (:data:`MODEL_FILES`) of every run in a training workspace.

    Unreadable files are skipped; runs are in name order.
    """
    root = Path(workspace)
    found = []
    if not root.is_dir():
        return found
    for run in sorted(p for p in root.iterdir() if p.is_dir()):
        for name in MODEL_FILES:
            if (run / name).is_file():
                try:
                    found.append(model_summary(run / name))
                except ModelError:
                    continue
    return found


def summary_line(info: dict[str, Any]) -> str:
    """One line: classes, backbone, architecture, and the validation score when known."""
    labels = info["labels"]
    classes = (f"{len(labels)} classes ({', '.join(labels)})" if labels
               else f"{info['num_classes']} AudioSet classes")
    arch = info["model_type"] or "?"
    if info.get("members"):
        arch = f"ensemble of {info['members']} attention models (probabilities averaged)"
    if info["model_type"] == "multi-level-attention" and info["levels"]:
        arch += " levels " + " ".join(map(str, info["levels"]))
    kind = "single" if info["single_label"] else "multi"
    head = f"{classes}; backbone {info['backbone']}; {kind}-label {arch}"
    s = info.get("stats")
    if s:
        score = f"mAP {s['mAP']:.4f}" + (f", accuracy {s['accuracy']:.4f}" if "accuracy" in s else "")
        head += f"; validation {score} at iteration {s.get('iteration', info['iteration'])}"
    elif info["iteration"] is not None:
        head += f"; iteration {info['iteration']}"
    return head
