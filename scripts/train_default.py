r"""Reproduce the packaged default classifier (``audiotagger/data/models/default.npz``).

Step 1 trains with the exact recipe of the model card (resumable: rerun after an interruption)::

    audiotagger train --data-dir ../shared/data/audioset/bal_train.h5 --workspace workspaces --tag default \
        --levels 2 3 --prior-init --dropout 0.5 --mixup 0.2 --iterations 1400 --eval-every 200 --patience 0 \
        --validation-split 0.1 --test-split 0.1 --split-seed 1234 --seed 1234 --save-probs --average-last 3

(Yu et al.'s model and optimiser — 600 units, softmax attention, Adam 1e-3, balanced batches of 500 —
with ``--prior-init``, dropout 0.5 and mixup α 0.2; the weight average of iterations 1000-1400 has the best
validation mAP.)

Step 2 exports the model with the better *validation* mAP (the best checkpoint or the weight average;
the test part is never used to choose), stored as float16 only when that changes no validation metric at
4 decimals, with its metrics in the file's metadata.

Usage: python scripts/train_default.py [--workspace workspaces] [--data ../shared/data/audioset/bal_train.h5]
       [--export-only] [--out audiotagger/data/models/default.npz]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ["--levels", "2", "3", "--prior-init", "--dropout", "0.5", "--mixup", "0.2", "--iterations", "1400",
          "--eval-every", "200", "--patience", "0", "--validation-split", "0.1", "--test-split", "0.1",
          "--split-seed", "1234", "--seed", "1234", "--save-probs", "--average-last", "3"]


def parts(data, split_file: Path, *names: str) -> list:
    """The clips of the named held-out parts (by video id, as recorded in the run's split.npz)."""
    where = {v: i for i, v in enumerate(data.video_ids)}
    with np.load(split_file) as split:
        return [data.subset(np.array([where[v] for v in split[name]])) for name in names]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workspace", default=str(ROOT / "workspaces"))
    ap.add_argument("--data", default=str(ROOT.parent / "shared/data/audioset/bal_train.h5"))
    ap.add_argument("--tag", default="default")
    ap.add_argument("--export-only", action="store_true")
    ap.add_argument("--out", default=str(ROOT / "audiotagger/data/models/default.npz"))
    args = ap.parse_args()

    from audiotagger.cli import main as cli

    if not args.export_only:
        rc = cli(["train", "--data-dir", args.data, "--workspace", args.workspace, "--tag", args.tag,
                  *RECIPE])
        if rc:
            return rc

    from audiotagger.classifier import build_model
    from audiotagger.classifier.store import read_model, restore_weights, write_model
    from audiotagger.train.data import read_h5
    from audiotagger.train.loop import predict
    from audiotagger.train.metrics import calculate_stats

    run = Path(args.workspace) / args.tag
    data = read_h5(args.data)
    val, test = parts(data, run / "split.npz", "validation", "test")

    def score(weights, config, clips):
        model = build_model(**config)
        restore_weights(model, weights, "candidate")
        s = calculate_stats(predict(model, clips), clips.y, warn=False)
        return {k: round(s[k], 4) for k in ("mAP", "AUC", "d_prime")}

    results = {}
    for name in ("best", "averaged"):
        path = run / f"{name}.npz"
        if path.is_file():
            config, weights, meta = read_model(path)
            results[name] = (config, weights, meta, score(weights, config, val))
    choice = max(results, key=lambda n: results[n][3]["mAP"])
    config, weights, meta, val32 = results[choice]
    half = [w.astype(np.float16).astype(np.float32) for w in weights]
    val16 = score(half, config, val)
    dtype = "float16" if val16 == val32 else "float32"
    final = half if dtype == "float16" else weights
    test_stats = score(final, config, test)
    model = build_model(**config)
    restore_weights(model, final, "export")
    config = {**config, "name": "audiotagger-mla23-bal-v1"}
    extra = {"name": config["name"], "source": f"{args.tag}/{choice}.npz",
             "trained_on": "AudioSet balanced train (80 %, seeded split 1234)", "validation": val32,
             "validation_float16": val16, "test": test_stats, "dtype": dtype, "train_meta": meta}
    write_model(args.out, model, config, dtype=dtype, extra=extra)
    print(json.dumps({"chosen": choice, "dtype": dtype, "validation": {n: r[3] for n, r in results.items()},
                      "validation_float16": val16, "test": test_stats,
                      "size_bytes": Path(args.out).stat().st_size}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
