#!/usr/bin/env python3
"""Tag one clip of the released AudioSet embeddings and print its SRT, summary and true labels.

The released AudioSet features are exactly what ``audiotagger embed`` computes with Google's VGGish
checkpoint, so this shows what ``audiotagger tag`` writes for that clip's audio without needing the
checkpoint (the README's SRT excerpt is made this way). Default input: the shared packed HDF5 of the
balanced training split; pick a clip whose ``video_id`` is in the classifier's held-out test part for an
honest example.

Usage: ``python scripts/tag_audioset_clip.py VIDEO_ID [--data bal_train.h5] [--model M] [--left 3]
[--right 1] [--threshold 0.1] [--per-second]``
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "audioset" / "bal_train.h5"


def main() -> None:
    from audiotagger.params import DEFAULT_LEFT, DEFAULT_RIGHT, DEFAULT_THRESHOLD, DEFAULT_TOP_K

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("video_id")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="packed HDF5 (x, y, video_id_list)")
    parser.add_argument("--model", default=None, help="classifier (default: the packaged model)")
    parser.add_argument("--left", type=int, default=DEFAULT_LEFT)
    parser.add_argument("--right", type=int, default=DEFAULT_RIGHT)
    parser.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD)
    parser.add_argument("--top-k", type=int, default=DEFAULT_TOP_K)
    parser.add_argument("--per-second", action="store_true")
    args = parser.parse_args()

    import h5py

    from audiotagger.classifier import load_classifier
    from audiotagger.labels import load_labels
    from audiotagger.tag.select import DisplayOptions, Selection
    from audiotagger.tag.tagger import embedding_result
    from audiotagger.tag.writers import get_writer

    with h5py.File(args.data, "r") as f:
        ids = [v.decode() if isinstance(v, bytes) else str(v) for v in f["video_id_list"][:]]
        if args.video_id not in ids:
            raise SystemExit(f"{args.data}: no clip {args.video_id!r}")
        i = ids.index(args.video_id)
        n = int(f["n_frames"][i]) if "n_frames" in f else f["x"].shape[1]
        x, y = f["x"][i, :n], f["y"][i]
        start = float(f["start_time_seconds"][i]) if "start_time_seconds" in f else 0.0
    result = embedding_result(load_classifier(args.model), x, left=args.left, right=args.right,
                              source=f"{args.video_id} ({start:g}-{start + n:g} s)")
    sel = Selection(result, DisplayOptions(threshold=args.threshold, top_k=args.top_k,
                                           per_second=args.per_second))
    labels = load_labels()
    print(get_writer("srt").render(sel), end="")
    print(sel.summary_text())
    print("true labels:", ", ".join(labels.names[c] for c in np.flatnonzero(y)))


if __name__ == "__main__":
    main()
