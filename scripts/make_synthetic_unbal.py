"""Build a SYNTHETIC stand-in for AudioSet's unbal_train split (2,041,789 clips) from the real balanced clips.

The full unbalanced split is not available here. This script draws 2,041,789 clips with replacement from
the real ``bal_train.h5`` (22,160 clips), perturbs each lightly (every embedding byte moved by -2..+2,
the ten seconds rolled by a random offset within the clip's real length) and keeps its labels, so the file
has the size, layout and label statistics of unbal_train (about 2.6 GB of uint8 embeddings, packed HDF5
with ``x`` contiguous so that training memory-maps it). It is for memory and speed measurements only:
its clips are resampled copies, so any accuracy measured on it means nothing.

Usage: ``python scripts/make_synthetic_unbal.py OUT.h5 [--clips N] [--bal PATH]``. Write it to a temporary
or work folder, never into the repository or ../shared.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

UNBAL_CLIPS = 2_041_789
"""Clips in AudioSet's unbal_train split (the release's count)."""
CHUNK = 65_536


def build(out: Path, bal: Path, clips: int = UNBAL_CLIPS, seed: int = 2017) -> Path:
    """Write the synthetic set to ``out`` (atomically) and return it."""
    import h5py

    from audiotagger.fileio import atomic_path
    from audiotagger.train.data import read_h5

    src = read_h5(bal)                                    # real clips, tiled to ten rows
    rng = np.random.default_rng(seed)
    n_src = len(src)
    with atomic_path(out) as tmp, h5py.File(tmp, "w") as fh:
        fh.attrs["synthetic"] = ("resampled with replacement from the real bal_train clips and lightly "
                                 "perturbed (bytes +-2, random roll); for memory/speed benchmarks only")
        dx = fh.create_dataset("x", (clips, 10, 128), dtype=np.uint8)          # contiguous: memory-mappable
        dy = fh.create_dataset("y", (clips, src.y.shape[1]), dtype=bool,
                               chunks=(min(CHUNK, clips), src.y.shape[1]))
        dv = fh.create_dataset("video_id_list", (clips,), dtype="S12")
        dn = fh.create_dataset("n_frames", (clips,), dtype=np.int16)
        for start in range(0, clips, CHUNK):
            stop = min(start + CHUNK, clips)
            idx = rng.integers(0, n_src, stop - start)
            x = src.x[idx].astype(np.int16)
            x += rng.integers(-2, 3, x.shape, dtype=np.int16)
            shift = rng.integers(0, 10, stop - start)
            rows = (np.arange(10)[None, :] + shift[:, None]) % 10
            x = np.take_along_axis(x, rows[:, :, None], axis=1)
            dx[start:stop] = np.clip(x, 0, 255).astype(np.uint8)
            dy[start:stop] = src.y[idx]
            dv[start:stop] = np.char.encode(np.char.add("syn", np.char.zfill(
                np.arange(start, stop).astype(str), 9)), "ascii")
            dn[start:stop] = 10
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out", type=Path)
    p.add_argument("--clips", type=int, default=UNBAL_CLIPS)
    p.add_argument("--bal", type=Path, default=ROOT.parent / "shared" / "data" / "audioset" / "bal_train.h5")
    args = p.parse_args()
    t = time.perf_counter()
    build(args.out, args.bal, args.clips)
    size = args.out.stat().st_size / 1e9
    print(f"{args.out}: {args.clips:,} SYNTHETIC clips (resampled real bal_train clips, lightly perturbed), "
          f"{size:.2f} GB, {time.perf_counter() - t:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
