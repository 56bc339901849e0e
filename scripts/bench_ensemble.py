#!/usr/bin/env python3
"""Benchmark what an ensemble classifier costs ``audiotagger tag``: one member against all of them.

Prints one table:

* ``tag`` of a 10-minute file (the shared video's soundtrack looped, AAC 44.1 kHz stereo, else a synthetic
  WAV), each run a fresh process on the onnx engine, the single member and the ensemble interleaved for
  ``--rounds`` rounds: median wall time and median CPU time (user + sys), and their ratios (target: the
  ensemble at most 3 % slower);
* the classifiers alone on the same 600 windows (in this process, best of 5), against the VGGish network
  on 600 examples, so the expected slowdown can be read off without the noise of whole runs.

The VGGish checkpoint is the tests' seeded official-format one (weights do not change the speed). The
single member is member 0 of the ensemble, written to its own file.

Usage: ``python scripts/bench_ensemble.py [--model audiotagger/data/models/default.npz] [--rounds 5]``
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from bench_tag import make_input, models
from benchutil import best_of, print_table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def first_member(path: Path, out: Path) -> Path:
    """Write member 0 of the ensemble ``path`` as a classifier file of its own."""
    from audiotagger.classifier import build_model
    from audiotagger.classifier.models import MEMBER_KEYS
    from audiotagger.classifier.store import read_model, restore_weights, write_model

    config, weights, _ = read_model(path)
    member = {k: v for k, v in config["ensemble"][0].items() if k in MEMBER_KEYS}
    model = build_model(**member)
    restore_weights(model, weights[:len(model.weights)], path)
    return write_model(out, model, {**member, "name": "member-0"})


def tag_once(audio: Path, out: Path, model_args: list[str], env: dict) -> tuple[float, float]:
    """One ``audiotagger tag`` process; (wall seconds, CPU seconds of the child)."""
    import subprocess

    cmd = [sys.executable, "-m", "audiotagger", "tag", str(audio), "-o", str(out), "-q", "-f", "srt,npz",
           "--overwrite", *model_args]
    before = os.times()
    t = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - t
    after = os.times()
    cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)
    return wall, cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=ROOT / "audiotagger/data/models/default.npz")
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()

    from audiotagger.classifier import load_classifier
    from audiotagger.classifier.store import read_config

    config, _ = read_config(args.model)
    if "ensemble" not in config:
        raise SystemExit(f"{args.model}: not an ensemble")
    k = len(config["ensemble"])
    with tempfile.TemporaryDirectory(prefix="bench-ens-") as tmp:
        work = Path(tmp)
        env = {**os.environ, "AUDIOTAGGER_HOME": str(work / "home"), "TF_CPP_MIN_LOG_LEVEL": "2"}
        base = models(work)[:4]                                  # --checkpoint, --pca-params
        single = first_member(args.model, work / "member0.npz")
        variants = {"1 member": [*base, "--model", str(single)],
                    f"{k} members": [*base, "--model", str(args.model)]}
        audio = make_input(work / "ten_minutes", 600)
        for margs in variants.values():                           # build graphs, warm the page cache
            tag_once(audio, work / "warm", margs, env)
        runs: dict[str, list[tuple[float, float]]] = {n: [] for n in variants}
        for _ in range(args.rounds):
            for name, margs in variants.items():
                runs[name].append(tag_once(audio, work / "out", margs, env))

        # the parts alone, in this process
        os.environ["AUDIOTAGGER_HOME"] = env["AUDIOTAGGER_HOME"]
        windows = np.random.default_rng(0).integers(0, 256, (600, 10, 128), dtype=np.uint8)
        alone = {}
        for name, path in (("1 member", single), (f"{k} members", args.model)):
            clf = load_classifier(path, engine="onnx")
            alone[name] = best_of(lambda clf=clf: clf.predict(windows), 5, warmup=1)[0]
        from audiotagger.vggish.embed import VGGishEmbedder

        embedder = VGGishEmbedder(base[1], base[3], engine="onnx")
        examples = np.random.default_rng(1).standard_normal((600, 96, 64)).astype(np.float32)
        vggish = best_of(lambda: embedder.runner(examples), 3, warmup=1)[0]

    med = {n: (statistics.median(w for w, _ in r), statistics.median(c for _, c in r))
           for n, r in runs.items()}
    one, many = med["1 member"], med[f"{k} members"]
    rows = [(f"tag, 10-min file, {n}", f"{w:.2f} s", f"{min(x for x, _ in runs[n]):.2f}–"
             f"{max(x for x, _ in runs[n]):.2f} s", f"{c:.2f} s", "") for n, (w, c) in med.items()]
    rows.append((f"ratio {k} members / 1", f"{many[0] / one[0]:.3f}", "", f"{many[1] / one[1]:.3f}",
                 "<= 1.03"))
    rows += [(f"classifier alone, 600 windows, {n}", f"{s * 1000:.1f} ms", "", "",
              f"{s / vggish * 100:.2f} % of VGGish") for n, s in alone.items()]
    rows.append(("VGGish network alone, 600 examples (onnx)", f"{vggish * 1000:.0f} ms", "", "", ""))
    print_table(("measure", "wall median", "range", "CPU median", "note / target"), rows)
    print(f"{args.rounds} interleaved rounds; {os.cpu_count()} CPU cores, load average "
          f"{os.getloadavg()[0]:.1f} (the machine is shared: compare within this run)")


if __name__ == "__main__":
    main()
