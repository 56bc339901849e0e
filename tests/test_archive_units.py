"""The archive driver's parts without a cluster: input lists, the manifest, labels CSV, the memory cap,
and training on several ``--data-dir`` sources joined lazily (memory-mapped)."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest

from audiotagger.errors import ParameterError

pytest.importorskip("pyarrow")
ROOT = Path(__file__).resolve().parents[1]


def test_input_list_is_streamed_validated_and_normalised(tmp_path):
    from audiotagger.archive.inputs import InputSource
    from audiotagger.archive.params import LIST_CHUNK
    from audiotagger.cli.common import MEDIA_EXTENSIONS

    listing = tmp_path / "list.txt"
    n = LIST_CHUNK + 7
    listing.write_text("# header\n\n" + "".join(f"rec{i}.wav\n" for i in range(n)) + "s3://b/x.mp4\n")
    src = InputSource([], str(listing), recursive=False, extensions=MEDIA_EXTENSIONS, cwd=str(tmp_path))
    assert src.prepare() == n + 1
    chunks = list(src.chunks())
    assert [len(c) for c in chunks] == [LIST_CHUNK, 8]                 # bounded chunks, never one big list
    assert chunks[0][3].key == str(tmp_path / "rec3.wav") and chunks[0][3].given == "rec3.wav"
    assert chunks[-1][-1].key == "s3://b/x.mp4"

    listing.write_text("a.wav\nb\x00.wav\n")
    with pytest.raises(ParameterError, match=r"list.txt:2: malformed line"):
        InputSource([], str(listing), recursive=False, extensions=MEDIA_EXTENSIONS).prepare()
    listing.write_text("a.wav\nftp://host/b.wav\n")
    with pytest.raises(ParameterError, match=r"list.txt:2: .*unsupported URL scheme ftp://"):
        InputSource([], str(listing), recursive=False, extensions=MEDIA_EXTENSIONS).prepare()
    with pytest.raises(ParameterError, match="no such file"):
        InputSource([], str(tmp_path / "none.txt"), recursive=False, extensions=MEDIA_EXTENSIONS).prepare()


def test_manifest_rewrites_atomically_latest_row_wins_and_pending(tmp_path):
    import pyarrow.parquet as pq

    from audiotagger.archive.inputs import Item
    from audiotagger.archive.manifest import Manifest, contains, path_hashes
    from audiotagger.archive.storage import OutputLocation

    now = datetime.now(timezone.utc)
    m = Manifest(OutputLocation(str(tmp_path)))
    m.add({"path": "/a.wav", "status": "failed", "error": "boom", "start": now, "end": now})
    m.add({"path": "/b.wav", "status": "done", "outputs": ["/o/b.srt"], "audio_s": 3.0})
    m.write()
    m.add({"path": "/a.wav", "status": "done", "outputs": ["/o/a.srt"]})
    m.write()
    assert not list(tmp_path.glob(".*part*"))
    rows = {r["path"]: r for r in pq.read_table(tmp_path / "_manifest.parquet").to_pylist()}
    assert rows["/a.wav"]["status"] == "done" and rows["/b.wav"]["audio_s"] == 3.0
    added = m.add_missing([[Item("a.wav", "/a.wav"), Item("c.wav", "/c.wav")]], "pending", "interrupted")
    assert added == 1 and m.counts() == {"done": 2, "pending": 1}
    again = Manifest(OutputLocation(str(tmp_path))).load()
    done = again.hashes(["done"])
    assert contains(done, path_hashes(["/a.wav", "/b.wav", "/c.wav"])).tolist() == [True, True, False]
    again.add({"path": "/d.wav", "status": "failed", "outputs": ["/o/d.srt"]})
    taken = again.output_hashes()                          # done and skipped rows' outputs only
    assert contains(taken, path_hashes(["/o/a.srt", "/o/b.srt", "/o/d.srt"])).tolist() == [True, True, False]
    (tmp_path / "_manifest.parquet").write_text("garbage")
    with pytest.raises(ParameterError, match="not a readable run manifest"):
        Manifest(OutputLocation(str(tmp_path))).load()


def test_labels_csv_mids_and_display_names(tmp_path):
    from audiotagger.archive.jobs import read_labels_csv
    from audiotagger.labels import load_labels

    names = load_labels().names
    csv = tmp_path / "labels.csv"
    csv.write_text('path,labels\n'
                   'a.wav,"/m/09x0r,/m/04rlf"\n'
                   '/data/b.wav,"Male speech, man speaking,Dog"\n'
                   'c.wav,Music|Speech\n', encoding="utf-8")
    got = read_labels_csv(str(csv), cwd="/data")
    assert sorted(names[i] for i in got["/data/a.wav"]) == ["Music", "Speech"]
    assert sorted(names[i] for i in got["/data/b.wav"]) == ["Dog", "Male speech, man speaking"]
    assert got["c.wav"] == got["/data/c.wav"]                          # also found by file name
    csv.write_text("a.wav,Not a class\n", encoding="utf-8")
    with pytest.raises(ParameterError, match=r"labels.csv:1: unknown label 'Not a class'"):
        read_labels_csv(str(csv))


def test_memory_cap_turns_a_huge_allocation_into_memoryerror():
    code = ("import numpy as np\n"
            "from audiotagger.archive.worker import limit_memory\n"
            "limit_memory(64 * 2**20)\n"
            "small = np.ones(8 * 2**20, np.uint8)\n"
            "try:\n"
            "    np.ones(512 * 2**20, np.uint8)\n"
            "except MemoryError:\n"
            "    print('MemoryError')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert out.stdout.strip() == "MemoryError", out.stderr


def _h5(path, x, y, contiguous=True):
    import h5py

    with h5py.File(path, "w") as fh:
        fh.create_dataset("x", data=x, chunks=None if contiguous else (4, 10, 128))
        fh.create_dataset("y", data=y)
        fh.create_dataset("video_id_list", data=np.array([f"v{i}".encode() for i in range(len(x))]))
    return path


def test_several_data_dirs_joined_lazily_give_the_same_batches(tmp_path, rng):
    from audiotagger.train.data import StackedClips, load_training_data

    xa = rng.integers(0, 256, (30, 10, 128), dtype=np.uint8)
    xb = rng.integers(0, 256, (20, 10, 128), dtype=np.uint8)
    ya, yb = rng.random((30, 527)) < 0.05, rng.random((20, 527)) < 0.05
    a, b = _h5(tmp_path / "a.h5", xa, ya), _h5(tmp_path / "b.h5", xb, yb, contiguous=False)
    eager, _ = load_training_data([str(a), str(b)])
    lazy, _ = load_training_data([str(a), str(b)], lazy=True)
    assert isinstance(lazy.x, StackedClips) and isinstance(lazy.x.parts[0], np.memmap)
    idx = np.array([49, 0, 29, 30, 7, 30, 45])
    xe, ye = eager.batch(idx)
    xl, yl = lazy.batch(idx)
    np.testing.assert_array_equal(xl, xe)
    np.testing.assert_array_equal(xl, np.concatenate([xa, xb])[idx])
    np.testing.assert_array_equal(yl, np.concatenate([ya, yb])[idx])
    assert list(lazy.video_ids[[0, 30]]) == ["v0", "v0"] and len(lazy) == 50


def test_train_cli_takes_several_data_dirs(tmp_path, rng):
    pytest.importorskip("tensorflow")
    from audiotagger.cli import main

    x = rng.integers(0, 256, (40, 10, 128), dtype=np.uint8)
    y = np.zeros((40, 527), bool)
    y[np.arange(40), rng.integers(0, 5, 40)] = True
    a, b = _h5(tmp_path / "a.h5", x[:25], y[:25]), _h5(tmp_path / "b.h5", x[25:], y[25:])
    args = ["train", "--data-dir", str(a), str(b), "--eval-data", str(a), "--workspace", str(tmp_path / "ws"),
            "--tag", "t", "--iterations", "4", "--eval-every", "2", "--batch-size", "8",
            "--hidden-units", "8", "-q", "--lazy"]
    assert main(args) == 0
    import json

    run = json.loads((tmp_path / "ws" / "t" / "run.json").read_text())
    assert run["data_dir"] == [str(a), str(b)]
    assert main([*args[:-1], "--iterations", "6"]) == 0          # resumes with the same sources
    assert (tmp_path / "ws" / "t" / "checkpoints" / "iter_0000006.npz").is_file()
