"""Scale benchmark of issue 9: Ray overhead, a second node, the driver's memory, training on 2 M clips.

Prints one table. Parts (all by default; ``--part`` picks one):

* ``tag``: the same 40 files (real recordings from ../shared/data/audio, looped to --seconds each) tagged by
  (a) the plain CLI and (b) ``--ray`` with a local cluster started by the command and (c) ``--ray`` joined to
  a running cluster, interleaved; throughput ratios (b)/(a), (c)/(a). VGGish weights are the tests'
  official-format checkpoint (the real one is not here; its cost is the same), PCA the real one.
* ``nodes``: a second Ray node started on the same machine (``ray start --address``); files per node from
  the manifest.
* ``list``: the driver's peak RSS for a 1,000,000-line ``--input-list`` (999,960 lines already done in the
  manifest, 40 real files to tag), polled from /proc.
* ``train``: clips/s and peak RSS of ``audiotagger train`` in memory (the real bal_train.h5) and on a
  SYNTHETIC 2,041,789-clip set built by scripts/make_synthetic_unbal.py from the real balanced clips
  (resampled, lightly perturbed; memory-mapped) plus bal_train.h5 (two --data-dir sources); and the
  one-time packing of Google's real bal_train/ TFRecords into a memory-mappable .h5 (what a TFRecord
  source over 2 GB, such as unbal_train/, goes through on its first run).

The machine is shared with other jobs: compare the ratios of one run, not absolute numbers across runs.
Everything is written under --work (default: a temporary folder), never into the repository.
Usage: python scripts/bench_scale.py [--part tag|nodes|list|train] [--work DIR]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

import numpy as np
from benchutil import print_table

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
sys.path.insert(0, str(ROOT))
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2",
       "RAY_AUTH_MODE": "disabled"}     # a loopback cluster of this benchmark only
N_FILES, SECONDS = 40, 10


def run(cmd, **kw) -> tuple[float, int, subprocess.CompletedProcess]:
    """Run ``cmd``; return (wall seconds, peak RSS in MB of that process, result)."""
    peak = [0]
    proc = subprocess.Popen(cmd, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)

    def poll():
        while proc.poll() is None:
            try:
                text = Path(f"/proc/{proc.pid}/status").read_text()
                peak[0] = max(peak[0], int(re.search(r"VmHWM:\s+(\d+)", text).group(1)) // 1024)
            except (OSError, AttributeError):
                pass
            time.sleep(0.05)

    t = time.perf_counter()
    watcher = threading.Thread(target=poll, daemon=True)
    watcher.start()
    out, err = proc.communicate()
    wall = time.perf_counter() - t
    watcher.join()
    result = subprocess.CompletedProcess(cmd, proc.returncode, out, err)
    if proc.returncode not in (0,):
        print(f"command failed ({proc.returncode}): {' '.join(map(str, cmd))}\n{err[-3000:]}",
              file=sys.stderr)
    return wall, peak[0], result


def media(work: Path) -> Path:
    import soundfile as sf

    from audiotagger.audio import load_audio

    folder = work / f"media-{SECONDS}s"
    if folder.is_dir() and len(list(folder.glob("*.wav"))) == N_FILES:
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    sources = sorted(p for p in (SHARED / "audio").iterdir() if p.suffix in (".wav", ".ogg", ".mp3", ".flac"))
    pool = np.concatenate([load_audio(p) for p in sources])
    for i in range(N_FILES):
        start = (i * 7919 * 160) % max(1, pool.size - 16000)
        x = np.resize(np.roll(pool, -start), SECONDS * 16000).astype(np.float32)
        sf.write(folder / f"rec{i:02d}.wav", x, 16000)
    return folder


def models(work: Path) -> list[str]:
    from tests.vggish_fixtures import cached_slim_checkpoint

    return ["--checkpoint", str(cached_slim_checkpoint()), "--pca-params",
            str(SHARED / "vggish" / "vggish_pca_params.npz")]


class Cluster:
    """A Ray head (and optionally a second node) on this machine; stopped by the pids of its processes."""

    def __init__(self, work: Path, cpus: int):
        self.temp = Path(tempfile.mkdtemp(prefix="rb", dir="/tmp"))   # short: Ray's socket paths are limited
        port = 6390 + os.getpid() % 500
        self.address = f"127.0.0.1:{port}"
        subprocess.run(["ray", "start", "--head", f"--port={port}", f"--num-cpus={cpus}",
                        "--node-ip-address=127.0.0.1", "--include-dashboard=false",
                        f"--temp-dir={self.temp}", "--disable-usage-stats"],
                       env=ENV, check=True, capture_output=True)

    def add_node(self, cpus: int) -> None:
        """Start a second node (another raylet on this machine) joined to the head."""
        subprocess.run(["ray", "start", f"--address={self.address}", f"--num-cpus={cpus}",
                        "--node-ip-address=127.0.0.1", "--disable-usage-stats"],
                       env=ENV, check=True, capture_output=True)

    def stop(self) -> None:
        """Kill the processes of this cluster only (found by its own temp folder in their command line)."""
        mine = str(self.temp)
        for pid in [int(p) for p in os.listdir("/proc") if p.isdigit()]:
            try:
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if mine in cmd and pid != os.getpid():
                try:
                    os.kill(pid, 9)
                except OSError:
                    pass


def part_tag(work: Path, rows: list, nodes: bool, args_rounds: int = 1) -> None:
    folder, m = media(work), models(work)
    base = ["-m", "audiotagger", "tag", str(folder), "-f", "srt,npz", "-q", "--overwrite", *m]
    cpus = os.cpu_count() or 2
    cluster = Cluster(work, cpus + 1)
    try:
        results = {"plain": [], "ray-local": [], "ray-cluster": []}
        for rnd in range(args_rounds):
            order = ("plain", "ray-cluster", "ray-local")[:: -1 if rnd % 2 else 1]
            for name in order:
                extra = {"plain": [], "ray-local": ["--ray"], "ray-cluster": ["--ray", cluster.address]}[name]
                out = work / f"out-{name}-{rnd}"
                shutil.rmtree(out, ignore_errors=True)     # a manifest left there would skip the files
                wall, rss, res = run([sys.executable, *base, "-o", str(out), *extra])
                results[name].append(wall)
        audio = N_FILES * SECONDS
        plain = min(results["plain"])
        for name, walls in results.items():
            best = min(walls)
            rows.append((f"tag 40 × {SECONDS} s files: {name}", f"{best:.1f} s wall (best of {len(walls)})",
                         f"{audio / best:.1f} audio-s/s", f"{plain / best:.2f}× plain"))
        if nodes:
            cluster.add_node(cpus + 1)
            out = work / "out-2nodes"
            shutil.rmtree(out, ignore_errors=True)
            wall, rss, res = run([sys.executable, *base, "-o", str(out), "--ray", cluster.address,
                                  "--workers", str(2 * cpus)])
            import pyarrow.parquet as pq

            table = pq.read_table(out / "_manifest.parquet").to_pandas()
            counts = table.groupby("node")["path"].count().to_dict()
            rows.append(("tag 40 files on 2 Ray nodes (same machine)", f"{wall:.1f} s wall",
                         f"{len(counts)} nodes used",
                         " / ".join(f"{k[:8]}: {v} files" for k, v in counts.items())))
    finally:
        cluster.stop()


def part_list(work: Path, rows: list) -> None:
    from audiotagger.archive.manifest import Manifest
    from audiotagger.archive.storage import OutputLocation

    folder, m = media(work), models(work)
    out = work / "out-list"
    shutil.rmtree(out, ignore_errors=True)         # outputs of an earlier run would make the 40 "skipped"
    out.mkdir(parents=True)
    listing = work / "list-1M.txt"
    n_fake = 1_000_000 - N_FILES
    with open(listing, "w", encoding="utf-8") as fh:
        for i in range(n_fake):
            fh.write(f"/archive/station{i % 97:02d}/day{i // 1000:04d}/rec{i:07d}.mp4\n")
        for p in sorted(folder.glob("*.wav")):
            fh.write(f"{p}\n")
    manifest = Manifest(OutputLocation(str(out)))
    now = datetime.now().astimezone()
    for i in range(n_fake):       # an earlier run did these
        manifest.add({"path": f"/archive/station{i % 97:02d}/day{i // 1000:04d}/rec{i:07d}.mp4",
                      "status": "done", "duration_s": 1.0, "audio_s": 600.0, "outputs": [], "worker": "w",
                      "node": "n", "start": now, "end": now, "top_classes": "Speech 0.9"})
    manifest.write()
    del manifest
    cluster = Cluster(work, (os.cpu_count() or 2) + 1)
    try:
        wall, rss, res = run([sys.executable, "-m", "audiotagger", "tag", "--input-list", str(listing), "-o",
                              str(out), "-f", "srt", *m, "--ray", cluster.address])
    finally:
        cluster.stop()
    done = re.search(r"(\d+) done", res.stderr)
    rows.append(("driver, 1,000,000-line --input-list (40 to tag)", f"{wall:.1f} s wall",
                 f"peak RSS {rss} MB", f"{done.group(1) if done else '?'} done this run"))


def part_train(work: Path, rows: list, every: int = 40) -> None:
    sys.path.insert(0, str(ROOT / "scripts"))
    from make_synthetic_unbal import build

    bal = SHARED / "audioset" / "bal_train.h5"
    synth = work / "unbal_train_SYNTHETIC.h5"
    if not synth.is_file():
        t = time.perf_counter()
        build(synth, bal)
        rows.append(("build SYNTHETIC 2,041,789-clip set", f"{time.perf_counter() - t:.0f} s",
                     f"{synth.stat().st_size / 1e9:.2f} GB", "resampled real bal clips, perturbed"))
    evalset = work / "eval_small.h5"
    if not evalset.is_file():
        build(evalset, bal, clips=2000, seed=5)
    for name, data in (("in memory: bal_train.h5 (22,160 clips)", [str(bal)]),
                       ("memory-mapped: SYNTHETIC 2,041,789 + bal_train", [str(synth), str(bal)])):
        ws = work / f"ws-{len(data)}"
        wall, rss, res = run([sys.executable, "-m", "audiotagger", "train", "--data-dir", *data,
                              "--eval-data", str(evalset), "--workspace", str(ws),
                              "--iterations", str(2 * every), "--eval-every", str(every), "--patience", "0",
                              "-q", "--tag", "bench"])
        log = next((ws / "bench" / "logs").glob("*.log")).read_text()
        stamps = {int(m.group(2)): (datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S,%f"), float(m.group(3)))
                  for m in re.finditer(r"^(\S+ \S+) INFO iteration (\d+): .*\[([\d.]+) s\]$", log, re.M)}
        (t1, _), (t2, ev2) = stamps[every], stamps[2 * every]
        rate = every * 500 / ((t2 - t1).total_seconds() - ev2)
        rows.append((f"train: {name}", f"{rate:.0f} clips/s", f"peak RSS {rss / 1024:.2f} GB",
                     f"{wall:.0f} s wall"))
    rows.append(("train rate ratio (memory-mapped 2 M / in memory)",
                 f"{float(rows[-1][1].split()[0]) / float(rows[-2][1].split()[0]):.2f}×", "", ""))
    records = SHARED / "audioset" / "bal_train"
    packed = work / "packed" / "bal_train.h5"
    code = "import sys; from audiotagger.train.data import pack_tfrecords; pack_tfrecords(*sys.argv[1:])"
    wall, rss, res = run([sys.executable, "-c", code, str(records), str(packed)])
    rows.append(("pack TFRecords (bal_train/, 4,070 files, 22,160 clips) for memory-mapping",
                 f"{22160 / wall:.0f} clips/s", f"peak RSS {rss / 1024:.2f} GB",
                 f"{wall:.1f} s wall (TensorFlow start included)"))


def main() -> int:
    global SECONDS
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--part", choices=("tag", "nodes", "list", "train", "all"), default="all")
    p.add_argument("--work", type=Path, default=None)
    p.add_argument("--seconds", type=int, default=SECONDS,
                   help=f"length of each of the 40 files of --part tag/nodes (default {SECONDS})")
    p.add_argument("--rounds", type=int, default=1, help="interleaved rounds of plain / ray runs (default 1)")
    p.add_argument("--train-every", type=int, default=40,
                   help="training iterations timed (between two evaluations; default 40)")
    args = p.parse_args()
    SECONDS = args.seconds
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    rows: list = []
    if args.part in ("tag", "nodes", "all"):
        part_tag(work, rows, nodes=args.part in ("nodes", "all"), args_rounds=args.rounds)
    if args.part in ("list", "all"):
        part_list(work, rows)
    if args.part in ("train", "all"):
        part_train(work, rows, args.train_every)
    print(f"machine: {os.cpu_count()} cores, shared with other jobs (ratios within this run)")
    print_table(("measurement", "value", "rate / memory", "ratio / detail"), rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
