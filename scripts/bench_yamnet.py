"""Benchmark YAMNet tagging: ``tag --model yamnet`` on a long file, against the TFLite interpreter.

Prints one table. A ``--seconds`` (600) 16 kHz WAV is made by repeating the real ``musanmix.wav``
(music, noise, speech) from ``../shared/data/audio``; the weights are imported from the real
``../shared/models/yamnet/yamnet.tflite`` into a temporary cache, as ``audiotagger models import`` does.
Measured, interleaved in rounds (best of ``--repeats`` each, because the CPU is shared):

* ``matmul`` — numpy float32 4096² matmul rate (FLOPs = 2 n³), the reference of every fraction;
* ``tag e2e`` — :func:`audiotagger.tag.tag_file` with the loaded YAMNet backend (decode, resample-free
  16 kHz read, numpy log-mel, network, per-second rows, ``srt,npz`` written), once per engine
  (``--engines onnx,tf``: the ONNX Runtime graph and the Keras port);
* ``network`` — the network alone on the file's 1,250 precomputed patches, once per engine;
* ``interpreter`` — Google's TFLite model (int8 weights, its own front end) run by ``tf.lite.Interpreter``
  on the same 15,600-sample windows, one ``invoke`` per patch (its fixed input), default threads.

FLOP limit: YAMNet costs :func:`audiotagger.yamnet.params.patch_flops` (138.3 MFLOP, 2 × 69.2 M
multiply-adds) per patch and a file of ``s`` seconds has ``1 + ceil((16000 s - 15600) / 7680)`` patches;
``limit`` = matmul FLOP/s / FLOPs per audio second, fraction = audio-s/s / limit. A one-off
``audiotagger tag`` subprocess (start-up and model load included) is timed too (``--no-cli`` skips it).

Usage: ``python scripts/bench_yamnet.py [--seconds 600] [--repeats 2] [--engines onnx,tf] [--no-cli]``
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from benchutil import cpu_seconds, matmul_gflops, print_table  # noqa: E402

SHARED = ROOT.parent / "shared"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=600.0)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--tflite", default=str(SHARED / "models" / "yamnet" / "yamnet.tflite"))
    ap.add_argument("--no-cli", action="store_true", help="skip the one-off CLI subprocess timing")
    ap.add_argument("--engines", default="onnx,tf", help="engines to compare (comma-separated)")
    args = ap.parse_args()

    import soundfile as sf
    import tensorflow as tf

    from audiotagger import hub
    from audiotagger.audio import load_audio
    from audiotagger.tag.tagger import load_backend, tag_file
    from audiotagger.yamnet import params
    from audiotagger.yamnet.tagging import iter_patch_windows, num_patches, windows_to_patches

    tmp = Path(tempfile.mkdtemp(prefix="bench-yamnet-"))
    home = tmp / "cache"
    hub.import_file(args.tflite, model_dir=home)
    base = load_audio(SHARED / "data" / "audio" / "musanmix.wav")
    n = int(args.seconds * params.SAMPLE_RATE)
    audio = np.resize(base, n).astype(np.float32)
    wav = tmp / "long.wav"
    sf.write(wav, audio, params.SAMPLE_RATE, subtype="PCM_16")
    audio = load_audio(wav)

    engines = args.engines.split(",")
    backends = {e: load_backend("yamnet", model_dir=home, offline=True, engine=e) for e in engines}
    for backend in backends.values():
        tag_file(wav, tagger=backend, output_dir=tmp / "warm",
                 formats="srt,npz", overwrite=True)               # trace + warm caches
    windows = np.stack(list(iter_patch_windows([audio])))
    patches = windows_to_patches(windows)
    assert windows.shape[0] == num_patches(n)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        interp = tf.lite.Interpreter(args.tflite)
    interp.allocate_tensors()
    inp, out = interp.get_input_details()[0]["index"], interp.get_output_details()[0]["index"]

    def run_interpreter():
        for w in windows:
            interp.set_tensor(inp, w)
            interp.invoke()
            interp.get_tensor(out)

    def run_tag(backend):
        return tag_file(wav, tagger=backend, output_dir=tmp / "out", formats="srt,npz", overwrite=True)

    rates, t_int = [], []
    t_tag, t_net = {e: [] for e in engines}, {e: [] for e in engines}
    for _ in range(args.repeats):               # interleaved: each round measures every contender
        rates.append(matmul_gflops(repeats=3))
        for e, backend in backends.items():
            t_tag[e].append(cpu_seconds(lambda b=backend: run_tag(b)))
            t_net[e].append(cpu_seconds(lambda b=backend: b.model.score_patches(patches)))
        t_int.append(cpu_seconds(run_interpreter))
    rates.append(matmul_gflops(repeats=3))
    gflops = max(rates)
    patches_n = windows.shape[0]
    flops_per_audio_s = params.patch_flops() * patches_n / args.seconds
    limit = gflops * 1e9 / flops_per_audio_s

    cli = {}
    if not args.no_cli:
        env = {**os.environ, "PYTHONPATH": str(ROOT), "AUDIOTAGGER_HOME": str(home)}
        for e in engines:
            t = time.perf_counter()
            subprocess.run([sys.executable, "-m", "audiotagger", "tag", str(wav), "--model", "yamnet",
                            "--offline", "-o", str(tmp / "cli"), "-q", "--overwrite", "--engine", e],
                           env=env, check=True)
            cli[e] = time.perf_counter() - t

    def row(name, times, what):
        seconds = min(w for w, _ in times) if isinstance(times, list) else times
        cpu = f"{min(c for _, c in times):.2f}" if isinstance(times, list) else ""
        speed = args.seconds / seconds
        return (name, f"{seconds:.2f}", cpu, f"{speed:.1f}", f"{speed / limit:.2f}", what)

    def wall(times):
        return min(w for w, _ in times)

    def cpu(times):
        return min(c for _, c in times)

    rows = []
    for e, backend in backends.items():
        rows += [row(f"tag e2e ({e})", t_tag[e], "decode + log-mel + network + rows + srt,npz"),
                 row(f"network only ({e})", t_net[e],
                     f"{patches_n / wall(t_net[e]):.0f} patches/s, batch {backend.model.batch_size}")]
    rows.append(row("TFLite interpreter", t_int,
                    f"{patches_n / wall(t_int):.0f} patches/s, Google's int8 model, 1 patch per invoke"))
    for e, seconds in cli.items():
        rows.append(row(f"audiotagger tag (CLI, {e})", seconds,
                        "one run: start-up, model load, decode, outputs"))
    print(f"YAMNet, {args.seconds:.0f} s of 16 kHz audio = {patches_n} patches; "
          f"{params.patch_flops() / 1e6:.1f} MFLOP/patch; matmul {gflops:.0f} GFLOP/s "
          f"(best of {len(rates)}), "
          f"limit {limit:.0f} audio-s/s; machine shared with other jobs")
    print_table(("contender", "wall s", "CPU s", "audio-s/s", "of limit", "notes"), rows)
    for e in engines:
        print(f"{e}: tag e2e / interpreter: {wall(t_int) / wall(t_tag[e]):.2f}x; network / interpreter: "
              f"{wall(t_int) / wall(t_net[e]):.2f}x (wall, same run, best of {args.repeats})")
    if {"onnx", "tf"} <= set(engines):
        tag_w, tag_c = wall(t_tag["tf"]) / wall(t_tag["onnx"]), cpu(t_tag["tf"]) / cpu(t_tag["onnx"])
        net_w, net_c = wall(t_net["tf"]) / wall(t_net["onnx"]), cpu(t_net["tf"]) / cpu(t_net["onnx"])
        print(f"onnx vs tf (interleaved, best of {args.repeats}; > 1: onnx faster): tag e2e {tag_w:.2f}x "
              f"wall, {tag_c:.2f}x CPU; network {net_w:.2f}x wall, {net_c:.2f}x CPU; "
              f"load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
