#!/usr/bin/env python3
"""Benchmark start-up: time to the first output of ``audiotagger tag clip.wav`` and ``--help``; one table.

Each case is a fresh process, as a user runs it. The clip is 10 s of 16 kHz mono WAV; "warm" means the
models are cached (the converted/ONNX graphs exist), "cold" a fresh model cache (the checkpoint is
converted and, for onnx, its graphs built: reading Google's TF1 checkpoint format needs TensorFlow once).
Cases are interleaved (onnx, tf, --help, bare python, onnx, tf, ...) and reported as median and range of
the wall time to the first line on stdout, with the median CPU time (user + sys, children included),
which the other processes sharing the machine disturb less than the wall time. Then the slowest imports
of each engine's run (``python -X importtime``, cumulative).

Usage: ``python scripts/bench_startup.py [--repeats N] [--cold N] [--work DIR]``
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from bench_tag import models
from benchutil import print_table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def first_output(cmd: list[str], env: dict) -> tuple[float, float]:
    """Run ``cmd``; return (wall seconds to its first stdout line, CPU seconds of the whole run)."""
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    proc.stdout.readline()
    wall = time.perf_counter() - t
    proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}")
    return wall, usage.ru_utime + usage.ru_stime


def import_times(cmd: list[str], env: dict, top: int = 8) -> list[tuple[str, float]]:
    """The ``top`` packages with the largest cumulative import time (s) in one run of ``cmd``."""
    run = subprocess.run([sys.executable, "-X", "importtime", *cmd[1:]], env=env, capture_output=True,
                         text=True)
    totals: dict[str, float] = {}
    for line in run.stderr.splitlines():
        m = re.match(r"import time:\s+\d+ \|\s+(\d+) \|( *)(\S+)", line)
        if m and len(m.group(2)) <= 3:                 # top-level imports only (nested ones are inside)
            name = m.group(3)
            totals[name] = totals.get(name, 0.0) + int(m.group(1)) / 1e6
    return sorted(totals.items(), key=lambda kv: -kv[1])[:top]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="interleaved rounds of the warm cases")
    parser.add_argument("--cold", type=int, default=1, help="rounds of the cold-cache cases")
    parser.add_argument("--work", type=Path, default=None)
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-startup-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        import soundfile as sf

        clip = work / "clip.wav"
        t = np.arange(160000) / 16000
        x = 0.3 * np.sin(2 * np.pi * 440 * t) + 0.05 * np.random.default_rng(0).standard_normal(len(t))
        sf.write(clip, x.astype(np.float32), 16000, subtype="PCM_16")
        model_args = models(work)
        base = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
        warm = {**base, "AUDIOTAGGER_HOME": str(work / "home")}

        def tag(engine: str) -> list[str]:
            return [sys.executable, "-m", "audiotagger", "tag", str(clip), "-o", str(work / "out"),
                    "--overwrite", "-f", "srt", "--engine", engine, *model_args]

        cases = {"tag, onnx engine, warm": (tag("onnx"), warm, "<= 1.5 s"),
                 "tag, tf engine, warm": (tag("tf"), warm, ""),
                 "audiotagger --help": ([sys.executable, "-m", "audiotagger", "--help"], base, "< 0.3 s"),
                 "python -c pass (floor)": ([sys.executable, "-c", "print()"], base, "")}
        for engine in ("onnx", "tf"):      # fill the warm cache
            first_output(tag(engine), warm)
        results: dict[str, list[tuple[float, float]]] = {name: [] for name in cases}
        for _ in range(args.repeats):
            for name, (cmd, env, _) in cases.items():
                results[name].append(first_output(cmd, env))
        for i in range(args.cold):
            for engine in ("onnx", "tf"):
                cold = {**base, "AUDIOTAGGER_HOME": str(work / f"cold-{engine}-{i}")}
                run = first_output(tag(engine), cold)
                results.setdefault(f"tag, {engine} engine, cold cache", []).append(run)
                shutil.rmtree(work / f"cold-{engine}-{i}", ignore_errors=True)
        rows = []
        for name, runs in results.items():
            walls, cpus = [w for w, _ in runs], [c for _, c in runs]
            target = cases[name][2] if name in cases else ""
            rows.append((name, f"{statistics.median(walls):.2f} s", f"{min(walls):.2f}–{max(walls):.2f} s",
                         f"{statistics.median(cpus):.2f} s", target))
        print_table(("first output of a 10 s 16 kHz clip", "wall median", "range", "CPU median", "target"),
                    rows)
        print(f"{len(results['audiotagger --help'])} interleaved rounds; {os.cpu_count()} CPU cores; load "
              f"average {os.getloadavg()[0]:.1f} (the machine is shared: compare within this run)")
        for engine in ("onnx", "tf"):
            slow = import_times(tag(engine), warm)
            print(f"slowest imports, tag --engine {engine}: "
                  + ", ".join(f"{name} {sec:.2f} s" for name, sec in slow))
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
