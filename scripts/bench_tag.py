#!/usr/bin/env python3
"""Benchmark ``audiotagger tag`` end to end and print one table.

Measures, each as a separate ``audiotagger tag`` process (start-up, TensorFlow import and model loading
included, as a user sees it):

* a 10-minute file: wall time as a multiple of real time (target >= 50x);
* a 60-minute file: peak RSS relative to the 10-minute file's (target <= 1.25x);
* 20 short files in one call (one model load) against 1 short file: the marginal time per file;
* the same run's numpy float32 4096² matmul rate, since the machine is shared and timings are noisy.

Inputs are the shared Big Buck Bunny soundtrack looped to length (AAC at 44.1 kHz stereo, so decoding and
resampling are part of the cost) when ``../shared/data`` is there, else a synthetic 44.1 kHz WAV. The
VGGish checkpoint is the tests' seeded official-format one (weights don't change the speed); the classifier
is the packaged default model if present, else a seeded one of the default architecture.

Every row is measured for each ``--engines`` entry (``onnx:fp32,tf:fp32`` by default; ``onnx:int8``
needs ``$AUDIOTAGGER_CALIBRATION``), the engines interleaved measurement by measurement.

Usage: ``python scripts/bench_tag.py [--work DIR] [--keep] [--engines onnx:fp32,tf:fp32]``
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from benchutil import matmul_gflops, print_table

ROOT = Path(__file__).resolve().parents[1]
SHARED_VIDEO = ROOT.parent / "shared" / "data" / "video" / "big_buck_bunny_60s.mp4"
sys.path.insert(0, str(ROOT))

from audiotagger.audio import ffmpeg_exe  # noqa: E402
from audiotagger.vggish.params import FLOPS_PER_EXAMPLE  # noqa: E402

VGGISH_GFLOP_PER_SECOND = FLOPS_PER_EXAMPLE / 1e9
"""Cost of one VGGish example (one second of audio at hop 1 s)."""



def make_input(path: Path, seconds: int) -> Path:
    """An AAC file of ``seconds`` (the shared video's soundtrack looped), or a synthetic WAV."""
    if SHARED_VIDEO.is_file():
        loops = int(np.ceil(seconds / 60.0))
        subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-stream_loop", str(loops - 1),
                        "-i", str(SHARED_VIDEO), "-t", str(seconds), "-vn", "-c:a", "copy",
                        str(path.with_suffix(".m4a"))], check=True)
        return path.with_suffix(".m4a")
    import soundfile as sf

    rng = np.random.default_rng(0)
    sr = 44100
    with sf.SoundFile(path.with_suffix(".wav"), "w", sr, 2, "PCM_16") as f:
        for start in range(0, seconds, 60):
            t = np.arange(start * sr, min(start + 60, seconds) * sr) / sr
            x = 0.3 * np.sin(2 * np.pi * (300 + 50 * (t % 7)) * t) + 0.05 * rng.standard_normal(len(t))
            f.write(np.stack([x, x], axis=1).astype(np.float32))
    return path.with_suffix(".wav")


def models(work: Path) -> list[str]:
    from tests.vggish_fixtures import cached_slim_checkpoint

    ckpt = cached_slim_checkpoint()
    rng = np.random.default_rng(7)
    basis, _ = np.linalg.qr(rng.standard_normal((128, 128)))
    pca = work / "vggish_pca_params.npz"
    np.savez(pca, pca_eigen_vectors=basis * 0.5, pca_means=np.zeros(128))
    from audiotagger.classifier import default_model_path

    clf = default_model_path()
    if not clf.is_file():
        import keras

        from audiotagger.classifier import build_model, model_config
        from audiotagger.classifier.store import write_model

        keras.utils.set_random_seed(0)
        config = model_config()
        clf = write_model(work / "classifier.npz", build_model(**config), {**config, "name": "bench"})
    return ["--checkpoint", str(ckpt), "--pca-params", str(pca), "--model", str(clf)]


def run_tag(inputs: list[Path], out: Path, model_args: list[str], env: dict,
            config: str = "onnx:fp32") -> tuple[float, float]:
    """Run one ``audiotagger tag`` process; return (wall seconds, peak RSS in MiB)."""
    shutil.rmtree(out, ignore_errors=True)
    engine, precision = config.split(":")
    cmd = [sys.executable, "-m", "audiotagger", "tag", *map(str, inputs), "-o", str(out), "-q",
           "-f", "srt,npz", *model_args, "--engine", engine, "--precision", precision]
    t = time.perf_counter()
    with tempfile.TemporaryFile() as errfile:   # a file, not a pipe: a chatty run cannot block on it
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=errfile)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t
        errfile.seek(0)
        err = errfile.read().decode("utf-8", "replace")
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"audiotagger tag failed ({proc.returncode}):\n{err[-2000:]}")
    return wall, usage.ru_maxrss / 1024.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=None, help="scratch folder (default: a temp folder)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder")
    parser.add_argument("--engines", default="onnx:fp32,tf:fp32", help="engine:precision pairs, interleaved")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-tag-"))
    work.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "AUDIOTAGGER_HOME": str(work / "home"), "TF_CPP_MIN_LOG_LEVEL": "2"}
    try:
        gflops_before = matmul_gflops()
        model_args = models(work)
        ten = make_input(work / "ten_minutes", 600)
        hour = make_input(work / "sixty_minutes", 3600)
        shorts = [make_input(work / f"short_{i:02d}", 10) for i in range(20)]

        configs = args.engines.split(",")
        m: dict = {}

        def each(key, inputs):          # one measurement, every engine in turn
            for c in configs:
                m[(c, key)] = run_tag(inputs, work / f"o-{key}", model_args, env, c)

        each("cold", shorts[:1])        # converts the checkpoint / builds the graphs once
        each("one", shorts[:1])
        each("twenty", shorts)
        each("t10", [ten])
        each("t60", [hour])
        gflops_after = matmul_gflops()
        limit = 0.5 * (gflops_before + gflops_after) / VGGISH_GFLOP_PER_SECOND   # audio-s per second
        rows = [("numpy float32 4096² matmul (before / after)", "",
                 f"{gflops_before:.0f} / {gflops_after:.0f} GFLOP/s", "")]
        for c in configs:
            cold, one, twenty = m[(c, "cold")][0], m[(c, "one")][0], m[(c, "twenty")][0]
            (t10, rss10), (t60, rss60) = m[(c, "t10")], m[(c, "t60")]
            per_file = (twenty - one) / 19
            rows += [
                ("first run ever (checkpoint conversion), 1 × 10 s", c, f"{cold:.1f} s", ""),
                ("start-up + 1 × 10 s file", c, f"{one:.1f} s", ""),
                ("10-minute file, wall", c, f"{t10:.1f} s", ""),
                ("10-minute file, × real time", c, f"{600 / t10:.1f}×", ">= 50×"),
                ("60-minute file, wall", c, f"{t60:.1f} s ({3600 / t60:.1f}× real time)", ""),
                ("steady state without start-up: 3000 s / (T60 − T10)", c,
                 f"{3000 / (t60 - t10):.1f}× real time", ""),
                ("  ÷ limit set by the matmul rate (1.728 GFLOP per audio second)", c,
                 f"{3000 / (t60 - t10) / limit:.2f}", ""),
                ("peak RSS 10 min / 60 min", c, f"{rss10:.0f} / {rss60:.0f} MiB", ""),
                ("peak RSS 60 min ÷ 10 min", c, f"{rss60 / rss10:.2f}×", "<= 1.25×"),
                ("20 × 10 s files in one call, wall", c, f"{twenty:.1f} s", ""),
                ("marginal time per short file ((T20 − T1) / 19)", c,
                 f"{per_file:.2f} s ({10 / per_file:.0f}× real time)", ""),
            ]
        print_table(("audiotagger tag benchmark", "engine", "measured", "target"), rows)
        kind = ("Big Buck Bunny soundtrack looped (AAC 44.1 kHz stereo)" if SHARED_VIDEO.is_file()
                else "synthetic 44.1 kHz stereo WAV")
        print(f"input: {kind}; {os.cpu_count()} CPU cores; load average {os.getloadavg()[0]:.1f} (shared "
              "machine: engines interleaved)")
    finally:
        if not args.keep and args.work is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
