#!/usr/bin/env python3
"""Benchmark ``audiotagger listen`` on a real-time loopback stream and print one table.

An ffmpeg sender streams a file in real time (``-re``) as raw 16 kHz s16le over UDP to 127.0.0.1; one
``audiotagger listen udp://… --jsonl`` process (the VGGish backend) tags it. Measured:

* latency of every second: from the moment its right context arrived (the listener's decoder thread read
  the block holding its last needed sample from ffmpeg) to the moment its line was written: the
  ``delay`` of its ``--jsonl`` line, median and 99th percentile (targets <= 0.15 s and <= 0.5 s). Also,
  from outside, the time the line was read minus the time the sender should have sent that audio
  (sender start + ``i + right + 0.975`` s); ffmpeg's ``-re`` paces whole input packets, so the sender runs
  up to a packet ahead and this figure can be below the other (even negative);
* CPU time per second of audio (listener + its ffmpeg decoder, start-up excluded);
* resident memory (VmRSS) after 1/6 of the run and at its end, and the peak (VmHWM); with ``--long`` the
  stream lasts 60 minutes so that the 10- and 60-minute figures come from one run (target: flat, <= 1.1x).

The input is ``../shared/data/audio/musanmix.wav`` (74.5 s of music, noise and speech) looped, or a
synthetic signal. Models as in ``bench_tag.py``: the tests' seeded official-format VGGish checkpoint and the
packaged default classifier (the weights do not change the speed).

Usage: ``python scripts/bench_listen.py [--duration 600] [--long] [--right 1]``
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from benchutil import print_table

ROOT = Path(__file__).resolve().parents[1]
MIX = ROOT.parent / "shared" / "data" / "audio" / "musanmix.wav"
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from bench_tag import models  # noqa: E402

from audiotagger.audio import ffmpeg_exe  # noqa: E402

EXAMPLE_SECONDS = 0.975
"""Audio one VGGish example spans (15 600 samples at 16 kHz)."""


def make_input(work: Path) -> Path:
    """A 16 kHz mono WAV to loop: the shared mix, or 60 s of synthetic tones and noise."""
    if MIX.is_file():
        return MIX
    import soundfile as sf

    t = np.arange(60 * 16000) / 16000
    noise = np.random.default_rng(0).standard_normal(len(t))
    x = 0.3 * np.sin(2 * np.pi * (300 + 50 * (t % 7)) * t) + 0.05 * noise
    path = work / "synthetic.wav"
    sf.write(path, x.astype(np.float32), 16000, subtype="PCM_16")
    return path


def udp_bound(port: int) -> bool:
    want = f"0100007F:{port:04X}"
    return any(line.split()[1] == want for line in Path("/proc/net/udp").read_text().splitlines()[1:])


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a live process and of its live children (ffmpeg), in seconds."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    pids = [pid]
    try:
        pids += [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        pass
    for p in pids:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


def memory(pid: int) -> dict[str, float]:
    """VmRSS and VmHWM of a process, MiB."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0]) / 1024.0
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=600.0, help="seconds streamed (default 600)")
    parser.add_argument("--long", action="store_true", help="stream 60 minutes (overrides --duration)")
    parser.add_argument("--right", type=int, default=1, help="--right of the listener (default 1)")
    parser.add_argument("--work", type=Path, default=None, help="scratch folder (default: a temp folder)")
    args = parser.parse_args()
    duration = 3600.0 if args.long else args.duration
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-listen-"))
    work.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "AUDIOTAGGER_HOME": str(work / "home"), "TF_CPP_MIN_LOG_LEVEL": "2",
           "PYTHONPATH": str(ROOT)}
    try:
        model_args = models(work)
        source = make_input(work)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        listener = subprocess.Popen(
            [sys.executable, "-m", "audiotagger", "listen", f"udp://127.0.0.1:{port}", "--format", "s16le",
             "--rate", "16000", "--jsonl", "--until", str(duration), "--right", str(args.right),
             "--open-timeout", "600", *model_args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        lines: list[tuple[float, dict]] = []
        samples: dict[str, object] = {}
        first_cpu: list[tuple[float, float]] = []

        def read_stdout() -> None:
            for raw in listener.stdout:
                now = time.time()
                doc = json.loads(raw)
                lines.append((now, doc))
                if not first_cpu:
                    first_cpu.append((doc["time"], cpu_seconds(listener.pid)))
                if doc["time"] >= duration / 6 and "early" not in samples:
                    samples["early"] = memory(listener.pid)
                if doc["time"] >= 600 and "ten" not in samples:
                    samples["ten"] = memory(listener.pid)
                if doc["time"] >= duration - args.right - 2 and "end" not in samples:
                    samples["end"] = memory(listener.pid)
                    samples["end_cpu"] = (doc["time"], cpu_seconds(listener.pid))

        errors: list[bytes] = []
        reader = threading.Thread(target=read_stdout, daemon=True)
        reader.start()
        threading.Thread(target=lambda: errors.append(listener.stderr.read()), daemon=True).start()
        while not udp_bound(port):                   # the listener has loaded its models and opened the port
            if listener.poll() is not None:
                raise SystemExit("listener ended before opening the stream")
            time.sleep(0.05)
        time.sleep(0.5)
        sent_at = time.time()
        sender = subprocess.Popen([ffmpeg_exe(), "-nostdin", "-v", "error", "-re",
                                   "-readrate_initial_burst", "0", "-stream_loop", "-1",
                                   "-i", str(source), "-t", str(duration + 5), "-ar", "16000", "-ac", "1",
                                   "-c:a", "pcm_s16le", "-f", "s16le",
                                   f"udp://127.0.0.1:{port}?pkt_size=1280"])
        listener.wait()
        reader.join(timeout=30)
        sender.kill()
        sender.wait()
        if listener.returncode != 0:
            raise SystemExit(f"listener failed ({listener.returncode}): {b''.join(errors)[-2000:].decode()}")

        right = args.right
        done = [(now, d) for now, d in lines if d["time"] + right + 1 <= duration]
        need = np.array([d["time"] + right + EXAMPLE_SECONDS for _, d in done])
        printed = np.array([now for now, _ in done])
        by_sender = printed - (sent_at + need)
        delay = np.array([d["delay"] for _, d in done])
        (t_first, cpu_first), (t_end, cpu_end) = first_cpu[0], samples["end_cpu"]
        cpu_per_second = (cpu_end - cpu_first) / max(t_end - t_first, 1e-9)
        early, end = samples["early"], samples["end"]
        rows = [
            ("seconds streamed in real time (UDP, raw s16le 16 kHz)", f"{duration:.0f} s, {len(lines)} lines",
             ""),
            ("latency, right context arrived → line written: median / p99",
             f"{np.median(delay):.3f} / {np.percentile(delay, 99):.3f} s", "<= 0.15 / 0.5 s"),
            ("  max", f"{delay.max():.3f} s", ""),
            ("line read by the bench − sender's schedule: median / p99",
             f"{np.median(by_sender):.3f} / {np.percentile(by_sender, 99):.3f} s", ""),
            ("CPU per audio second (listener + ffmpeg, after start-up)", f"{cpu_per_second:.3f} s", ""),
            (f"RSS after {duration / 6 / 60:.1f} min / at the end",
             f"{early['VmRSS']:.0f} / {end['VmRSS']:.0f} MiB", ""),
            ("RSS end ÷ early", f"{end['VmRSS'] / early['VmRSS']:.3f}×", "<= 1.1×"),
            ("peak RSS (VmHWM) at the end", f"{end['VmHWM']:.0f} MiB", ""),
        ]
        if "ten" in samples and duration > 600:
            ten = samples["ten"]
            rows.append(("RSS at 10 min / at 60 min", f"{ten['VmRSS']:.0f} / {end['VmRSS']:.0f} MiB "
                         f"({end['VmRSS'] / ten['VmRSS']:.3f}×)", "<= 1.1×"))
        print_table((f"audiotagger listen benchmark (VGGish, --right {right})", "measured", "target"), rows)
        print(f"{os.cpu_count()} CPU cores; load average at the end {os.getloadavg()[0]:.1f} "
              "(other processes share these cores)")
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
