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

Every speed row is measured for each engine/precision (``--configs tf:fp32,onnx:fp32,onnx:int8``, and
``official:fp32``: Google's tf-slim graph run as the official code runs it, one ``session.run`` over all the
examples, network row only), the configurations interleaved within each repeat; int8 graphs are
calibrated on ``../shared/data/audio``
(the configuration is skipped when it is absent).

Usage: ``python scripts/bench_embed.py [--seconds 600] [--long-minutes 60] [--configs ...]``.
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
from benchutil import best_of, cpu_seconds, matmul_gflops, matmul_gflops_cpu, print_table

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


SHARED_AUDIO = Path(__file__).resolve().parents[2] / "shared" / "data" / "audio"


def make_onnx_embedder(folder: Path, precision: str, batch_size: int | None = None):
    """The same seeded weights as :func:`make_embedder` on ONNX Runtime (graphs built from the .h5)."""
    import h5py

    from audiotagger.engine.builder import GraphBuilder
    from audiotagger.engine.graphs import vggish_conv, vggish_dense
    from audiotagger.engine.runtime import VGGishOnnxRunner
    from audiotagger.vggish.embed import VGGishEmbedder
    from audiotagger.vggish.postprocess import Postprocessor

    make_embedder(folder, DEFAULT_BATCH_SIZE)             # writes weights.h5 and pca.npz once
    fp32 = folder / "onnx-fp32"
    if not fp32.exists():
        import onnx

        fp32.mkdir()
        with h5py.File(folder / "weights.h5", "r") as w, open(fp32 / "weights.bin", "wb") as data:
            for part, add in (("conv", vggish_conv), ("dense", vggish_dense)):
                b = GraphBuilder(part, data)
                add(b, w)
                onnx.save_model(b.model(), str(fp32 / f"{part}.onnx"))
    graphs = fp32
    if precision == "int8":
        from audiotagger.engine.quantize import calibration_files, calibration_inputs, quantize_parts

        graphs = folder / "onnx-int8"
        if not graphs.exists():
            graphs.mkdir()
            quantize_parts(fp32, graphs, ("conv", "dense"),
                           calibration_inputs("vggish", calibration_files(SHARED_AUDIO)))
    runner = VGGishOnnxRunner(graphs, **({"batch_size": batch_size} if batch_size else {}))
    return VGGishEmbedder.from_runner(runner, Postprocessor(folder / "pca.npz"), "onnx", precision)


class OfficialNetwork:
    """Google's network as the official code runs it: the tf-slim graph, one ``session.run`` on all examples.

    The same seeded weights as :func:`make_embedder`; network only (the official frontend resamples with
    resampy, so the end-to-end rows are not comparable and are skipped for it).
    """

    def __init__(self, folder: Path):
        import h5py
        import tensorflow as tf

        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
        from vggish_fixtures import _define_vggish_slim

        make_embedder(folder, DEFAULT_BATCH_SIZE)             # writes weights.h5 once
        self.graph = tf.Graph()
        with self.graph.as_default():
            with tf.compat.v1.variable_scope("vggish"):
                self.features = tf.compat.v1.placeholder(tf.float32, shape=(None, 96, 64))
                self.embedding = _define_vggish_slim(self.features)
            self.sess = tf.compat.v1.Session(graph=self.graph)
            with h5py.File(folder / "weights.h5", "r") as w:
                for v in tf.compat.v1.global_variables():
                    v.load(w[v.op.name][()], self.sess)

    def runner(self, examples: np.ndarray) -> np.ndarray:
        """Embeddings (n, 128) of log-mel examples (n, 96, 64), as ``VGGishEmbedder.runner``."""
        return self.sess.run(self.embedding, feed_dict={self.features: examples})


def embedder_for(config: str, folder: Path, batch_size: int | None):
    engine, precision = config.split(":")
    if engine == "official":
        return OfficialNetwork(folder)
    if engine == "tf":
        return make_embedder(folder, batch_size or DEFAULT_BATCH_SIZE)
    return make_onnx_embedder(folder, precision, batch_size)


def rss_child(path: str, folder: str, batch_size: int, config: str = "tf:fp32") -> None:
    embedder = embedder_for(config, Path(folder), batch_size)
    emb = embedder.embed_file(path)
    # VmHWM, not ru_maxrss: the latter survives exec and so reports the benchmark parent's size
    # at fork time (the child is forked from a process already holding a model).
    status = Path("/proc/self/status").read_text()
    peak_kb = int(status.split("VmHWM:")[1].split()[0]) if "VmHWM:" in status else \
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"RSS {peak_kb / 1024:.1f} {len(emb)}")


def peak_rss(path: Path, folder: Path, batch_size: int | None, config: str) -> tuple[float, int]:
    cmd = [sys.executable, __file__, "--rss-child", str(path), "--folder", str(folder), "--configs", config]
    if batch_size:
        cmd += ["--batch-size", str(batch_size)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    line = [ln for ln in out.stdout.splitlines() if ln.startswith("RSS ")][-1]
    _, mb, n = line.split()
    return float(mb), int(n)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=600.0)
    ap.add_argument("--short-minutes", type=float, default=10.0)
    ap.add_argument("--long-minutes", type=float, default=60.0)
    ap.add_argument("--batch-size", type=int, default=None,
                    help="examples per network call (default: the engine's, 16 for tf and 256 for onnx)")
    ap.add_argument("--configs", default="official:fp32,tf:fp32,onnx:fp32,onnx:int8",
                    help="engine:precision pairs to compare, interleaved")
    ap.add_argument("--repeats", type=int, default=2, help="speed runs per row; the fastest counts")
    ap.add_argument("--skip-rss", action="store_true", help="only the speed rows")
    ap.add_argument("--rss-child", help=argparse.SUPPRESS)
    ap.add_argument("--folder", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.rss_child:
        rss_child(args.rss_child, args.folder, args.batch_size, args.configs)
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
        configs = [c for c in args.configs.split(",") if c.endswith("fp32") or SHARED_AUDIO.is_dir()]
        embedders = {c: embedder_for(c, folder, args.batch_size) for c in configs}

        gf_before = matmul_gflops()
        x, sr = sf.read(wav, dtype="float32")
        examples = waveform_to_examples(x, sr)
        logmel_s = best_of(lambda: chunked_logmel(x, sr), args.repeats)[0]
        for e in embedders.values():
            e.runner(examples[:16])  # trace / warm up once
        times: dict = {}
        cpu_rate: dict = {}
        gf_cpu = matmul_gflops_cpu()
        for _ in range(args.repeats):          # interleaved: every configuration once per round
            for c, e in embedders.items():
                for key, fn in (("model", lambda e=e: e.runner(examples)),
                                ("wav", lambda e=e: len(e.embed_file(wav))),
                                ("m4a", lambda e=e: len(e.embed_file(m4a)))):
                    if key != "model" and isinstance(e, OfficialNetwork):
                        continue
                    seconds, n = best_of(fn, 1)
                    if key == "model":
                        _, cpu = cpu_seconds(fn)
                        cpu_rate[c] = max(cpu_rate.get(c, 0.0), len(examples) * GFLOP_PER_EXAMPLE / cpu)
                    best = times.get((c, key), (float("inf"), 0))
                    times[(c, key)] = min(best, (seconds, n if key != "model" else len(examples)))
        gf_after = matmul_gflops()
        gf = (gf_before + gf_after) / 2

        def speed_row(name: str, config: str, key: str) -> tuple[str, ...]:
            seconds, n = times[(config, key)]
            rate = args.seconds / seconds
            engine, precision = config.split(":")
            return (name, engine, precision, f"{rate:.1f} audio-s/s",
                    f"{n / seconds * GFLOP_PER_EXAMPLE / gf:.2f}")

        rows.append(("numpy float32 4096^2 matmul", "", "", f"{gf:.1f} GFLOP/s (before {gf_before:.0f}, "
                     f"after {gf_after:.0f})", "1.00"))
        rows.append((f"limit at {GFLOP_PER_EXAMPLE:.3f} GFLOP/example", "", "",
                     f"{gf / GFLOP_PER_EXAMPLE:.1f} audio-s/s", "1.00"))
        rows.append((f"log-mel only, {args.seconds:.0f} s in 10 s chunks", "", "",
                     f"{args.seconds / logmel_s:.0f} audio-s/s", "-"))
        for name, key in ((f"network only, {len(examples)} examples", "model"),
                          (f"end to end, {args.seconds:.0f} s 16 kHz WAV", "wav"),
                          (f"end to end, {args.seconds:.0f} s 44.1 kHz stereo AAC", "m4a")):
            rows += [speed_row(name, c, key) for c in embedders if (c, key) in times]
        rows.append(("numpy float32 matmul per CPU second (all threads)", "", "", f"{gf_cpu:.1f} GFLOP/CPU-s",
                     "1.00"))
        rows += [("network only, GFLOP per CPU second", *c.split(":"), f"{cpu_rate[c]:.1f} GFLOP/CPU-s",
                  f"{cpu_rate[c] / gf_cpu:.2f}") for c in embedders]
        if not args.skip_rss:
            rows += rss_rows(folder, args)
    print_table(("measure", "engine", "precision", "value", "of limit / ratio"), rows)
    print(f"{os.cpu_count()} CPU cores, load average {os.getloadavg()[0]:.1f}: the machine is shared; the "
          f"configurations were interleaved, fastest of {args.repeats} rounds each")


def rss_rows(folder: Path, args) -> list[tuple[str, ...]]:
    """Peak RSS of fresh processes embedding a short and a long file, per configuration."""
    short = write_test_wav(folder / "short.wav", args.short_minutes * 60)
    long = write_test_wav(folder / "long.wav", args.long_minutes * 60)
    rows = []
    for config in args.configs.split(","):
        if config.startswith("official"):
            continue
        if config.endswith("int8") and not (folder / "onnx-int8").exists():
            continue
        engine, precision = config.split(":")
        rss_short, n_short = peak_rss(short, folder, args.batch_size, config)
        rss_long, n_long = peak_rss(long, folder, args.batch_size, config)
        rows += [(f"peak RSS, {args.short_minutes:.0f}-min file ({n_short} examples)", engine, precision,
                  f"{rss_short:.0f} MiB", "-"),
                 (f"peak RSS, {args.long_minutes:.0f}-min file ({n_long} examples)", engine, precision,
                  f"{rss_long:.0f} MiB", f"{rss_long / rss_short:.2f}x")]
    return rows


if __name__ == "__main__":
    main()
