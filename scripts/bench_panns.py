"""Benchmark the PANNs networks: audio seconds scored per second on 10-second windows.

Prints one table. For each network (random weights: speed does not depend on them) it times a
compiled ``tf.function`` on a fixed batch of 10-second log-mel inputs (1001 x 64), the same with the
front end (waveform → log-mel → network, as the tagger runs), and, when torch is installed, the
independent PyTorch reference of ``tests/panns_reference.py`` on the same batch (the same-run peer).

Speed is related to the same run's numpy float32 matmul rate (4096 x 4096, FLOPs = 2 n^3), because the
CPU is shared and absolute numbers drift. Every figure is the best of ``--repeats`` timed calls, and the
matmul rate is the best of measurements taken before each network and at the end, so that a burst of
load from other processes lowers neither side of a ratio alone. Two conventions are shown:

* ``pub`` — the multiply-adds published with the models (CNN14 42.2 G, CNN10 28.2 G, CNN6 22.0 G per
  10 s) counted as *operations* (one published multiply-add = one FLOP). That is how DESIGN.md states
  the peers (PyTorch CNN14 at 0.55 of the limit). The published numbers are about twice the
  multiply-accumulates in the layer shapes, i.e. they already count the multiply and the add.
* ``count`` — the multiply-accumulates counted here from the layer shapes of a 10 s input, as FLOPs =
  2 x MACs.

``limit`` = matmul FLOP/s / FLOPs per audio second: the audio-s/s that running at the matmul rate would
give. Fraction = measured audio-s/s / limit.

Usage: ``python scripts/bench_panns.py [--batch 4] [--repeats 3] [--nets cnn14,cnn10,cnn6] [--no-torch]``
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
from benchutil import best_of, matmul_gflops

CLIP_SECONDS = 10.0



def counted_macs(arch: str, frames: int = 1001) -> float:
    """Multiply-accumulates of the convolutions and linear layers for one ``frames``-long input."""
    from audiotagger.panns.params import MEL_BINS, NUM_CLASSES, get_architecture

    spec = get_architecture(arch)
    t, f, cin, macs = frames, MEL_BINS, 1, 0.0
    for block in spec.blocks:
        for j in range(block.convs):
            macs += t * f * block.kernel ** 2 * (cin if j == 0 else block.channels) * block.channels
        cin = block.channels
        t, f = t // block.pool, f // block.pool
    return macs + cin * spec.embedding_size + spec.embedding_size * NUM_CLASSES


def best_time(fn, repeats: int) -> float:
    """Fastest of ``repeats`` calls after two warm-up calls."""
    return best_of(fn, repeats, warmup=2)[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=4, help="10 s windows per call (default 4)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--nets", default="cnn14,cnn10,cnn6")
    parser.add_argument("--no-torch", action="store_true", help="skip the PyTorch reference column")
    args = parser.parse_args()

    import tensorflow as tf

    from audiotagger.panns.frontend import logmel
    from audiotagger.panns.models import build_model
    from audiotagger.panns.params import PUBLISHED_MULTIPLY_ADDS, SAMPLE_RATE

    torch = None
    if not args.no_torch:
        try:
            import torch
        except ImportError:
            torch = None

    rng = np.random.default_rng(0)
    waves = (0.1 * rng.standard_normal((args.batch, int(CLIP_SECONDS * SAMPLE_RATE)))).astype(np.float32)
    features = logmel(waves)
    audio = args.batch * CLIP_SECONDS
    front = best_time(lambda: logmel(waves), args.repeats)
    rows = []
    rates = []
    for arch in args.nets.split(","):
        rates.append(matmul_gflops())
        net = build_model(arch)
        call = tf.function(lambda x, net=net: net(x, training=False))
        x = tf.constant(features)
        model_t = best_time(lambda call=call, x=x: call(x)["clipwise_output"].numpy(), args.repeats)
        e2e_t = best_time(lambda call=call: call(logmel(waves))["clipwise_output"].numpy(), args.repeats)
        torch_rate = None
        if torch is not None:
            from tests.panns_reference import RefPanns

            ref = RefPanns(arch).eval()
            tx = torch.from_numpy(features)
            with torch.no_grad():
                torch_rate = audio / best_time(lambda ref=ref, tx=tx: ref(tx), args.repeats)
            del ref
        rows.append((arch, audio / model_t, audio / e2e_t, torch_rate, PUBLISHED_MULTIPLY_ADDS[arch],
                     counted_macs(arch)))
        del net
    rates.append(matmul_gflops())
    rate = max(rates)

    print(f"numpy float32 matmul: {rate:.1f} GFLOP/s (best of {len(rates)}); batch {args.batch} x 10 s; "
          f"front end alone {audio / front:.0f} audio-s/s; TF {tf.__version__}, {os.cpu_count()} CPUs")
    head = (f"{'net':6} {'audio-s/s':>9} {'+front':>7} {'torch':>6} {'pub G':>6} {'limit':>6} "
            f"{'frac pub':>8} {'count G':>8} {'limit':>6} {'frac cnt':>8} {'torch frac':>10}")
    print(head)
    print("-" * len(head))
    for arch, model_rate, e2e_rate, torch_rate, pub, macs in rows:
        limit_pub = rate * 1e9 / (pub / CLIP_SECONDS)
        limit_cnt = rate * 1e9 / (2 * macs / CLIP_SECONDS)
        torch_txt = f"{torch_rate:6.1f}" if torch_rate else f"{'-':>6}"
        torch_frac = f"{torch_rate / limit_pub:10.2f}" if torch_rate else f"{'-':>10}"
        print(f"{arch:6} {model_rate:9.1f} {e2e_rate:7.1f} {torch_txt} {pub / 1e9:6.1f} {limit_pub:6.1f} "
              f"{model_rate / limit_pub:8.2f} {macs / 1e9:8.2f} {limit_cnt:6.1f} "
              f"{model_rate / limit_cnt:8.2f} {torch_frac}")


if __name__ == "__main__":
    main()
