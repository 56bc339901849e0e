"""Benchmark of the custom-class trainer: clips/s with embeddings cached, against the same run's matmul rate.

Prints one table:

* the compiled train step of a custom model (multi-level attention, levels 2 3, 600 units, 3 classes, batch
  128) on each backbone's rows (VGGish 128 × uint8, YAMNet 1024 × float32, PANNs CNN14 2048 × float32):
  clips/s, training FLOPs per clip (3 × 2 × Dense multiply-adds) and the fraction of the numpy float32
  4096² matmul rate measured before and after;
* end to end with a real backbone (``--backbone yamnet`` with the shared ``yamnet.tflite`` by default):
  ``--clips`` generated 2 s clips are embedded once (the first run, timed apart), then a second run — the
  one a recipe change costs — lists the clips, hashes the files, reads every embedding back from the cache
  and trains ``--iterations`` updates; its clips/s counts training clips drawn per second of the whole run.

Usage: python scripts/bench_custom.py [--clips 150] [--iterations 60] [--backbone yamnet --checkpoint F]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from bench_train import train_flops_per_clip  # noqa: E402
from benchutil import matmul_gflops, print_table  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared"
SHAPES = (("vggish", 128, "uint8"), ("yamnet", 1024, "float32"), ("panns-cnn14", 2048, "float32"))
CLASSES = ("noise", "sweep", "tone")


def step_rate(dim: int, dtype: str, steps: int, batch: int = 128) -> tuple[float, float]:
    """Clips/s of the custom train step on (batch, 10, dim) rows, and its training FLOPs per clip."""
    from audiotagger.classifier.models import CUSTOM_BN_MOMENTUM, build_model
    from audiotagger.train.loop import make_train_step
    from audiotagger.train.models import make_optimizer

    model = build_model(num_classes=3, embedding_size=dim, input_dtype=dtype, single_label=True,
                        bn_momentum=CUSTOM_BN_MOMENTUM)
    opt = make_optimizer(1e-3)
    opt.build(model.trainable_variables)
    step = make_train_step(model, opt, single_label=True)
    rng = np.random.default_rng(0)
    q = (rng.integers(0, 256, (batch, 10, dim), dtype=np.uint8) if dtype == "uint8"
         else rng.random((batch, 10, dim), dtype=np.float32))
    y = np.eye(3, dtype=bool)[rng.integers(0, 3, batch)]
    lam, perm = np.ones(batch, np.float32), np.arange(batch, dtype=np.int32)
    for _ in range(3):
        step(q, y, lam, perm).numpy()
    t = time.perf_counter()
    for _ in range(steps):
        step(q, y, lam, perm).numpy()
    return steps * batch / (time.perf_counter() - t), train_flops_per_clip(model)


def write_clips(folder: Path, n: int) -> float:
    """``n`` generated 2 s clips in three class folders; returns their total seconds."""
    import soundfile as sf

    rng = np.random.default_rng(0)
    t = np.arange(32000) / 16000
    for i in range(n):
        kind = CLASSES[i % 3]
        if kind == "tone":
            x = 0.3 * np.sin(2 * np.pi * rng.uniform(400, 2500) * t)
        elif kind == "sweep":
            x = 0.3 * np.sin(2 * np.pi * (rng.uniform(200, 600) + 1000 * t) * t)
        else:
            x = 0.2 * rng.standard_normal(t.size)
        (folder / kind).mkdir(parents=True, exist_ok=True)
        sf.write(folder / kind / f"{i:04d}.wav", x.astype(np.float32), 16000)
    return 2.0 * n


def end_to_end(backbone: str, checkpoint, clips: int, iterations: int, batch: int) -> list[tuple]:
    """Rows of the end-to-end part (first run: embedding; second run: everything from the cache)."""
    from audiotagger.backbones import load_backbone
    from audiotagger.train.audio import read_audio_folder
    from audiotagger.train.custom import train_audio
    from audiotagger.train.embcache import embed_clips

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        seconds = write_clips(tmp / "audio", clips)
        bb = load_backbone(backbone, checkpoint=checkpoint, model_dir=tmp / "models", offline=True)
        data = read_audio_folder(tmp / "audio")
        t = time.perf_counter()
        _, failed, report = embed_clips(data.clips, bb, tmp / "cache")
        first = time.perf_counter() - t
        assert not failed and report.embedded == clips
        rows.append((f"first run: embed {clips} clips ({backbone}), cache them", clips, first, clips / first,
                     f"{seconds / first:.0f} audio-s/s"))
        t = time.perf_counter()
        _, _, report = embed_clips(data.clips, bb, tmp / "cache")
        cached = time.perf_counter() - t
        assert report.cached == clips
        rows.append(("second run: hash files, read embeddings back", clips, cached, clips / cached, ""))
        t = time.perf_counter()
        result = train_audio(tmp / "ws", audio_dir=tmp / "audio", backbone=backbone, checkpoint=checkpoint,
                             model_dir=tmp / "models", offline=True, embedding_cache=tmp / "cache",
                             single_label=True,
                             validation_split=0.2, iterations=iterations, eval_every=iterations,
                             batch_size=batch, progress=False)
        whole = time.perf_counter() - t
        assert result.embed_report.cached == clips and result.embed_report.embedded == 0
        drawn = iterations * batch
        rows.append((f"second run end to end: train --audio, {iterations} it × {batch}", drawn, whole,
                     drawn / whole, f"val accuracy {result.best_stats.get('accuracy', float('nan')):.2f}"))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=20, help="timed train steps per backbone shape")
    ap.add_argument("--clips", type=int, default=150)
    ap.add_argument("--iterations", type=int, default=60)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--backbone", default="yamnet")
    ap.add_argument("--checkpoint", default=None,
                    help="backbone weights (default for yamnet: ../shared/models/yamnet/yamnet.tflite)")
    args = ap.parse_args()
    checkpoint = args.checkpoint
    if checkpoint is None and args.backbone == "yamnet":
        checkpoint = SHARED / "models" / "yamnet" / "yamnet.tflite"

    rate = matmul_gflops()
    steps = []
    for name, dim, dtype in SHAPES:
        cps, flops = step_rate(dim, dtype, args.steps, args.batch_size)
        steps.append((name, dim, dtype, cps, flops))
    try:
        e2e = end_to_end(args.backbone, checkpoint, args.clips, args.iterations, args.batch_size)
    except Exception as exc:  # noqa: BLE001  (a missing backbone is reported in the table, not a traceback)
        why = (str(exc).splitlines() or [""])[0][-90:]
        e2e = [(f"end to end with {args.backbone}: not run ({type(exc).__name__}: ...{why})", "", "", "", "")]
    rate_after = matmul_gflops()

    print(f"numpy float32 matmul 4096²: {rate:.0f} GFLOP/s before, {rate_after:.0f} after (fractions use the "
          "mean; CPU shared with other jobs, numbers noisy)")
    mean = (rate + rate_after) / 2
    rows = [(f"train step, {name} rows ({dim} × {dtype}), batch {args.batch_size}", f"{flops / 1e6:.1f}",
             f"{cps:.0f}", f"{cps * flops / 1e9 / mean:.2f} of matmul")
            for name, dim, dtype, cps, flops in steps]
    for what, n, secs, cps, note in e2e:
        rows.append((what, "", f"{cps:.0f}" if cps != "" else "",
                     f"{n} in {secs:.1f} s" + (f"; {note}" if note else "") if secs != "" else ""))
    print_table(("custom trainer (3 classes, levels 2 3, 600 units)", "MFLOP/clip/step", "clips/s", "note"),
                rows)


if __name__ == "__main__":
    main()
