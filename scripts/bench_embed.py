#!/usr/bin/env python3
"""Benchmark the VGGish frontend: speed against this run's matmul limit, and peak memory vs duration.

Prints one table. The network has seeded random weights (speed does not depend on them) and the PCA
file is generated, so nothing needs downloading. Rows:

* numpy float32 4096x4096 matmul rate (GFLOP/s), measured before and after the speed runs (the CPU
  is shared: the table uses their mean and shows both);
* the network alone on pre-computed log-mel examples, and end to end (decode, log-mel, network, PCA)
  on 600 s files: a 16 kHz mono WAV and a 44.1 kHz stereo AAC (.m4a, decoded by ffmpeg and
  resampled with soxr). Speed is audio seconds per wall second; "of limit" is the achieved
  GFLOP/s (1.728 GFLOP per example, one example per audio second at the default 1.0 s hop) over the
  matmul rate;
* peak RSS (``VmHWM``, MiB) of a fresh process that loads the weights as a cached conversion is
  loaded and embeds a 10-minute or a 60-minute 16 kHz WAV (each in its own subprocess).

Usage: ``python scripts/bench_embed.py [--seconds 600] [--long-minutes 60] [--batch-size 16]``.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402
from benchutil import best_of, matmul_gflops, print_table

from audiotagger.audio import CHUNK_SECONDS  # noqa: E402
from audiotagger.vggish.model import DEFAULT_BATCH_SIZE  # noqa: E402
from audiotagger.vggish.params import FLOPS_PER_EXAMPLE  # noqa: E402

GFLOP_PER_EXAMPLE = FLOPS_PER_EXAMPLE / 1e9


def chunked_logmel(x: np.ndarray, sr: int, chunk_seconds: float = CHUNK_SECONDS) -> int:
    """Log-mel examples of ``x`` fed in chunks, as the file pipeline does; returns their number."""
    from audiotagger.vggish.features import ExampleStream

    stream, step = ExampleStream(), int(chunk_seconds * sr)
    n = sum(len(stream.push(x[i:i + step])) for i in range(0, len(x), step))
    return n + len(stream.finish())


def write_test_wav(path: Path, seconds: float, sr: int = 16000) -> Path:
    """A tone-and-noise 16-bit WAV written in one-minute blocks (never held whole in memory)."""
    rng = np.random.default_rng(1)
    with sf.SoundFile(path, "w", sr, 1, "PCM_16") as fh:
        done = 0
        while done < seconds * sr:
            n = int(min(60 * sr, seconds * sr - done))
            t = (done + np.arange(n)) / sr
            x = 0.2 * np.sin(2 * np.pi * 440 * t) * (1 + np.sin(2 * np.pi * 0.1 * t)) / 2
            fh.write((x + 0.05 * rng.standard_normal(n)).astype(np.float32))
            done += n
    return path


def make_embedder(folder: Path, batch_size: int):
    """An embedder whose weights are loaded exactly as a cached conversion is (seeded random values)."""
    import h5py

    from audiotagger.vggish import params as P
    from audiotagger.vggish.checkpoint import load_converted
    from audiotagger.vggish.embed import VGGishEmbedder
    from audiotagger.vggish.model import build_vggish
    from audiotagger.vggish.postprocess import Postprocessor

    pca, weights = folder / "pca.npz", folder / "weights.h5"
    if not pca.exists():
        q, _ = np.linalg.qr(np.random.default_rng(2).standard_normal((128, 128)))
        np.savez(pca, pca_eigen_vectors=q, pca_means=np.zeros(128))
    if not weights.exists():
        rng = np.random.default_rng(3)
        with h5py.File(weights, "w") as f:
            for name, shape in P.CHECKPOINT_VARIABLES.items():
                fan_in = int(np.prod(shape[:-1])) if len(shape) > 1 else 1
                f.create_dataset(name, data=rng.standard_normal(shape, dtype=np.float32)
                                 * np.float32(np.sqrt(2.0 / fan_in) if len(shape) > 1 else 0.01))
    model = build_vggish()
    load_converted(model, weights)
    return VGGishEmbedder.from_model(model, Postprocessor(pca), batch_size=batch_size)


def rss_child(path: str, folder: str, batch_size: int) -> None:
    embedder = make_embedder(Path(folder), batch_size)
    emb = embedder.embed_file(path)
    # VmHWM, not ru_maxrss: the latter survives exec and so reports the benchmark parent's size
    # at fork time (the child is forked from a process already holding a model).
    status = Path("/proc/self/status").read_text()
    peak_kb = int(status.split("VmHWM:")[1].split()[0]) if "VmHWM:" in status else \
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"RSS {peak_kb / 1024:.1f} {len(emb)}")


def peak_rss(path: Path, folder: Path, batch_size: int) -> tuple[float, int]:
    out = subprocess.run([sys.executable, __file__, "--rss-child", str(path), "--folder", str(folder),
                          "--batch-size", str(batch_size)], capture_output=True, text=True, check=True)
    line = [ln for ln in out.stdout.splitlines() if ln.startswith("RSS ")][-1]
    _, mb, n = line.split()
    return float(mb), int(n)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=600.0)
    ap.add_argument("--short-minutes", type=float, default=10.0)
    ap.add_argument("--long-minutes", type=float, default=60.0)
    ap.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE)
    ap.add_argument("--repeats", type=int, default=2, help="speed runs per row; the fastest counts")
    ap.add_argument("--skip-rss", action="store_true", help="only the speed rows")
    ap.add_argument("--rss-child", help=argparse.SUPPRESS)
    ap.add_argument("--folder", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.rss_child:
        rss_child(args.rss_child, args.folder, args.batch_size)
        return

    from audiotagger.audio import ffmpeg_exe
    from audiotagger.vggish.features import waveform_to_examples

    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-embed-") as tmp:
        folder = Path(tmp)
        wav = write_test_wav(folder / "speed.wav", args.seconds)
        m4a = folder / "speed.m4a"
        subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-i", str(wav), "-ac", "2", "-ar", "44100",
                        "-c:a", "aac", "-b:a", "128k", str(m4a)], check=True)
        embedder = make_embedder(folder, args.batch_size)

        gf_before = matmul_gflops()
        x, sr = sf.read(wav, dtype="float32")
        examples = waveform_to_examples(x, sr)
        logmel_s = best_of(lambda: chunked_logmel(x, sr), args.repeats)[0]
        embedder.runner(examples[: args.batch_size])  # trace once
        model_s = best_of(lambda: embedder.runner(examples), args.repeats)[0]
        wav_s, n_wav = best_of(lambda: len(embedder.embed_file(wav)), args.repeats)
        m4a_s, n_m4a = best_of(lambda: len(embedder.embed_file(m4a)), args.repeats)
        gf_after = matmul_gflops()
        gf = (gf_before + gf_after) / 2

        def speed_row(name: str, n: int, seconds: float) -> tuple[str, str, str]:
            rate = args.seconds / seconds
            return name, f"{rate:.1f} audio-s/s", f"{n / seconds * GFLOP_PER_EXAMPLE / gf:.2f}"

        rows.append(("numpy float32 4096^2 matmul", f"{gf:.1f} GFLOP/s (before {gf_before:.0f}, after "
                     f"{gf_after:.0f})", "1.00"))
        rows.append((f"limit at {GFLOP_PER_EXAMPLE:.3f} GFLOP/example",
                     f"{gf / GFLOP_PER_EXAMPLE:.1f} audio-s/s", "1.00"))
        rows.append((f"log-mel only, {args.seconds:.0f} s in 10 s chunks",
                     f"{args.seconds / logmel_s:.0f} audio-s/s", "-"))
        rows.append(speed_row(f"network only, {len(examples)} examples", len(examples), model_s))
        rows.append(speed_row(f"end to end, {args.seconds:.0f} s 16 kHz WAV", n_wav, wav_s))
        rows.append(speed_row(f"end to end, {args.seconds:.0f} s 44.1 kHz stereo AAC", n_m4a, m4a_s))
        if not args.skip_rss:
            rows += rss_rows(folder, args)
    print_table(("measure", "value", "of limit / ratio"), rows)


def rss_rows(folder: Path, args) -> list[tuple[str, str, str]]:
    """Peak RSS of fresh processes embedding a short and a long file."""
    short = write_test_wav(folder / "short.wav", args.short_minutes * 60)
    rss_short, n_short = peak_rss(short, folder, args.batch_size)
    short.unlink()
    long = write_test_wav(folder / "long.wav", args.long_minutes * 60)
    rss_long, n_long = peak_rss(long, folder, args.batch_size)
    long.unlink()
    return [(f"peak RSS, {args.short_minutes:.0f}-min file ({n_short} examples)", f"{rss_short:.0f} MiB",
             "-"),
            (f"peak RSS, {args.long_minutes:.0f}-min file ({n_long} examples)", f"{rss_long:.0f} MiB",
             f"{rss_long / rss_short:.2f}x")]



if __name__ == "__main__":
    main()
