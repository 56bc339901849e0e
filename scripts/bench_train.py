"""Benchmark of the trainer: clips/s of the compiled train step against the CPU's matmul rate, same run.

Prints one table: numpy float32 matmul GFLOP/s (4096², the machine's reference), then for each model the
training FLOPs per clip (3 × forward multiply-adds × 2, counted from the Dense layers), clips per second
over timed steps of batch 500, the GFLOP/s this implies and its fraction of the matmul rate (target
>= 0.5 for --levels 2 3), plus the time to load the shared AudioSet split from TFRecords and from HDF5.

Usage: python scripts/bench_train.py [--steps 30] [--data ../shared/data/audioset]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from benchutil import matmul_gflops


def train_flops_per_clip(model) -> float:
    """3 × (2 × multiply-adds of every Dense layer per clip): forward + two backward products."""
    import keras

    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.Dense):
            shape = layer.input.shape
            rows = int(np.prod(shape[1:-1])) if len(shape) > 2 else 1
            total += 2 * rows * int(shape[-1]) * layer.units
    return 3.0 * total


def clips_per_second(model_type: str, levels, steps: int, batch: int = 500) -> tuple[float, float]:
    from audiotagger.classifier.models import build_model
    from audiotagger.train.loop import make_train_step
    from audiotagger.train.models import make_optimizer

    model = build_model(model_type, levels)
    opt = make_optimizer(1e-3)
    opt.build(model.trainable_variables)
    step = make_train_step(model, opt)   # the step training runs (mixup off: lam 1, partners = self)

    rng = np.random.default_rng(0)
    q = rng.integers(0, 256, (batch, 10, 128), dtype=np.uint8)
    y = rng.random((batch, 527)) < 0.01
    lam, perm = np.ones(batch, np.float32), np.arange(batch, dtype=np.int32)
    for _ in range(3):
        step(q, y, lam, perm).numpy()
    t = time.perf_counter()
    for _ in range(steps):
        step(q, y, lam, perm).numpy()
    return steps * batch / (time.perf_counter() - t), train_flops_per_clip(model)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared/data/audioset"))
    args = ap.parse_args()

    rate = matmul_gflops()
    rows = []
    for label, mtype, levels in (("multi-level attention, levels 2 3", "multi-level-attention", (2, 3)),
                                 ("multi-level attention, levels 1 2 3", "multi-level-attention", (1, 2, 3)),
                                 ("single attention", "single-attention", (3,)),
                                 ("average pooling", "average", (3,))):
        cps, flops = clips_per_second(mtype, levels, args.steps)
        rows.append((label, flops / 1e6, cps, cps * flops / 1e9, cps * flops / 1e9 / rate))
    rate_after = matmul_gflops()

    load = []
    data = Path(args.data)
    if (data / "bal_train").is_dir():
        from audiotagger.train.data import read_h5, read_tfrecords

        t = time.perf_counter()
        n = len(read_tfrecords(data / "bal_train"))
        load.append((f"read {n} clips from {len(list((data / 'bal_train').glob('*.tfrecord')))} TFRecord "
                     "shards", time.perf_counter() - t))
        t = time.perf_counter()
        n = len(read_h5(data / "bal_train.h5"))
        load.append((f"read {n} clips from bal_train.h5", time.perf_counter() - t))

    print(f"numpy float32 matmul 4096²: {rate:.0f} GFLOP/s before, {rate_after:.0f} after "
          f"(fractions use the first; CPU shared, numbers noisy)")
    print(f"| {'model (batch 500)':<44} | MFLOP/clip/step | clips/s | GFLOP/s | fraction of matmul |")
    print(f"|{'-' * 46}|-----------------|---------|---------|--------------------|")
    for label, mflop, cps, gf, frac in rows:
        print(f"| {label:<44} | {mflop:15.1f} | {cps:7.0f} | {gf:7.1f} | {frac:18.2f} |")
    for what, secs in load:
        print(f"| {what:<44} | {'':15} | {'':7} | {'':7} | {secs:16.2f} s |")


if __name__ == "__main__":
    main()
