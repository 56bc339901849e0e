"""Readers (TFRecords, packed HDF5), samplers and metrics of the trainer."""

from __future__ import annotations

import warnings

import h5py
import numpy as np
import pytest

from audiotagger.classifier import tile_to_ten
from audiotagger.errors import AudioTaggerWarning, DataError
from audiotagger.train.data import (
    load_training_data,
    pack_tfrecords,
    packed_path,
    read_embeddings,
    read_h5,
    read_tfrecords,
)
from audiotagger.train.metrics import calculate_stats, d_prime
from audiotagger.train.sampler import BalancedSampler, ShuffledSampler

from .conftest import shared_file


def write_records(path, clips):
    """Write AudioSet-format SequenceExamples: clips = [(video_id, [128-byte strings], [labels])]."""
    import tensorflow as tf

    with tf.io.TFRecordWriter(str(path)) as w:
        for vid, rows, labels in clips:
            ex = tf.train.SequenceExample()
            ex.context.feature["video_id"].bytes_list.value.append(vid.encode())
            ex.context.feature["labels"].int64_list.value.extend(labels)
            ex.context.feature["start_time_seconds"].float_list.value.append(0.0)
            ex.context.feature["end_time_seconds"].float_list.value.append(10.0)
            fl = ex.feature_lists.feature_list["audio_embedding"]
            for r in rows:
                fl.feature.add().bytes_list.value.append(r)
            w.write(ex.SerializeToString())


@pytest.fixture(scope="module")
def shared_sets():
    h5 = read_h5(shared_file("audioset", "bal_train.h5"))
    tfr = read_tfrecords(shared_file("audioset", "bal_train"))
    return h5, tfr


def test_both_readers_give_the_same_clips(shared_sets):
    h5, tfr = shared_sets
    assert len(h5) == len(tfr) == 22160
    a, b = np.argsort(h5.video_ids), np.argsort(tfr.video_ids)
    np.testing.assert_array_equal(h5.video_ids[a], tfr.video_ids[b])
    np.testing.assert_array_equal(h5.x[a], tfr.x[b])
    np.testing.assert_array_equal(h5.y[a], tfr.y[b])
    np.testing.assert_array_equal(h5.n_frames[a], tfr.n_frames[b])
    assert h5.x.dtype == np.uint8 and h5.y.dtype == bool and h5.x.shape[1:] == (10, 128)
    assert (h5.y.sum(0) >= 59).all()                      # every class has positives (README)


def test_packed_tfrecords_are_memory_mapped_and_equal_the_records(shared_sets, tmp_path, monkeypatch):
    """Google's bal_train/ packed by streaming (what --lazy and a > 2 GB TFRecord source do): the same
    clips, labels, ids and lengths as reading the records into memory, now from a memory map."""
    _, tfr = shared_sets
    monkeypatch.setenv("AUDIOTAGGER_HOME", str(tmp_path / "home"))
    source = shared_file("audioset", "bal_train")
    lazy = read_embeddings(source, lazy=True)
    packed = packed_path(sorted(source.glob("*.tfrecord")))
    assert packed.is_file() and packed.parent == tmp_path / "home" / "packed"
    assert lazy.lazy and isinstance(lazy.x, np.memmap) and str(packed) in lazy.source
    assert len(lazy) == len(tfr) == 22160
    idx = np.arange(len(tfr))
    x, y = lazy.batch(idx)
    np.testing.assert_array_equal(x, tfr.x)
    np.testing.assert_array_equal(y, tfr.y)
    np.testing.assert_array_equal(lazy.video_ids, tfr.video_ids)
    np.testing.assert_array_equal(lazy.n_frames, tfr.n_frames)
    stamp = packed.stat().st_mtime_ns
    assert len(read_embeddings(source, lazy=True)) == 22160         # the second run reuses the copy
    assert packed.stat().st_mtime_ns == stamp
    assert [p.name for p in packed.parent.iterdir()] == [packed.name]      # no temporary file left


def test_packing_skips_clips_without_embeddings_and_keeps_labels_in_place(tmp_path):
    rng = np.random.default_rng(4)
    rows = [rng.integers(0, 256, 128, dtype=np.uint8).tobytes() for _ in range(30)]
    write_records(tmp_path / "a.tfrecord", [("v1", rows[:10], [0, 5]), ("empty", [], [7]),
                                            ("v3", rows[10:13], [526]), ("v4", rows[13:30], [3])])
    with pytest.warns(AudioTaggerWarning, match="skipped 1 clip"):
        packed = read_h5(pack_tfrecords(tmp_path / "a.tfrecord", tmp_path / "out" / "p.h5"), lazy=True)
    with pytest.warns(AudioTaggerWarning, match="skipped 1 clip"):
        direct = read_tfrecords(tmp_path / "a.tfrecord")
    assert list(packed.video_ids) == list(direct.video_ids) == ["v1", "v3", "v4"]
    np.testing.assert_array_equal(packed.n_frames, [10, 3, 10])
    x, y = packed.batch([2, 0, 1])
    np.testing.assert_array_equal(x, direct.x[[2, 0, 1]])
    assert [list(np.flatnonzero(r)) for r in y] == [[3], [0, 5], [526]]
    with h5py.File(tmp_path / "out" / "p.h5") as fh:              # the packed layout: zero-padded rows
        assert not fh["x"][1, 3:].any() and fh["x"].chunks is None


def test_short_clips_are_tiled_not_zero_padded(shared_sets):
    h5, _ = shared_sets
    short = np.flatnonzero(h5.n_frames < 10)
    assert short.size == 378
    for i in short[:20]:
        n = h5.n_frames[i]
        np.testing.assert_array_equal(h5.x[i], tile_to_ten(h5.x[i, :n]))
    with h5py.File(shared_file("audioset", "bal_train.h5")) as f:
        raw = f["x"][short[0]]
    assert not raw[h5.n_frames[short[0]]:].any()          # the file itself zero-pads


def test_lazy_h5_memory_maps(tmp_path, rng):
    x = rng.integers(0, 256, (50, 10, 128), dtype=np.uint8)
    x[3, 4:] = 0
    y = rng.random((50, 527)) < 0.05
    n = np.full(50, 10, np.int16)
    n[3] = 4
    path = tmp_path / "u.h5"
    with h5py.File(path, "w") as f:
        f["x"], f["y"], f["n_frames"] = x, y, n
        f["video_id_list"] = np.array([b"v%02d" % i for i in range(50)])
    eager, lazy = read_h5(path), read_h5(path, lazy=True)
    assert isinstance(lazy.x, np.memmap)
    idx = np.array([7, 3, 3, 0, 49])
    for got, want in zip(lazy.batch(idx), eager.batch(idx), strict=True):
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(eager.x[3], tile_to_ten(x[3, :4]))


def test_tfrecord_errors(tmp_path):
    good = [bytes(range(128))] * 3
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="no .tfrecord"):
        read_embeddings(empty)
    write_records(tmp_path / "a.tfrecord", [("ok", good, [0, 5]), ("bad", good[:1] + [b"x" * 100], [1])])
    with pytest.raises(DataError, match=r"a\.tfrecord.*'bad'.*100 bytes"):
        read_tfrecords(tmp_path / "a.tfrecord")
    write_records(tmp_path / "b.tfrecord", [("lab", good, [3, 527])])
    with pytest.raises(DataError, match=r"b\.tfrecord.*'lab'.*label 527"):
        read_tfrecords(tmp_path / "b.tfrecord")
    (tmp_path / "c.tfrecord").write_bytes(b"not a record at all")
    with pytest.raises(DataError, match="cannot read"):
        read_tfrecords(tmp_path / "c.tfrecord")
    write_records(tmp_path / "d.tfrecord", [("short", good, [2]), ("none", [], [1])])
    with pytest.warns(AudioTaggerWarning, match="without embeddings"):
        s = read_tfrecords(tmp_path / "d.tfrecord")
    assert s.video_ids.tolist() == ["short"] and s.n_frames.tolist() == [3]
    assert s.y[0].nonzero()[0].tolist() == [2]


def test_h5_errors(tmp_path):
    def make(name, **arrays):
        with h5py.File(tmp_path / name, "w") as f:
            for k, v in arrays.items():
                f[k] = v
        return tmp_path / name

    ids = np.array([b"a", b"b"])
    x, y = np.zeros((2, 10, 128), np.uint8), np.zeros((2, 527), bool)
    with pytest.raises(DataError, match=r"f1\.h5: x must be uint8"):
        read_h5(make("f1.h5", x=x.astype(np.float32), y=y, video_id_list=ids))
    with pytest.raises(DataError, match=r"f2\.h5: y must be bool"):
        read_h5(make("f2.h5", x=x, y=y[:, :500], video_id_list=ids))
    with pytest.raises(DataError, match=r"f5\.h5: x must be uint8"):
        read_h5(make("f5.h5", x=x[:, :8], y=y, video_id_list=ids))
    with pytest.raises(DataError, match=r"f3\.h5: no dataset 'y'"):
        read_h5(make("f3.h5", x=np.zeros((2, 10, 128), np.uint8), video_id_list=ids))
    (tmp_path / "f4.h5").write_bytes(b"garbage")
    with pytest.raises(DataError, match=r"f4\.h5: cannot open"):
        read_h5(tmp_path / "f4.h5")


def test_data_folder_layout(tmp_path, rng):
    for split, n in (("bal_train", 6), ("eval", 4)):
        with h5py.File(tmp_path / f"{split}.h5", "w") as f:
            f["x"] = rng.integers(0, 256, (n, 10, 128), dtype=np.uint8)
            f["y"] = rng.random((n, 527)) < 0.1
            f["video_id_list"] = np.array([f"{split}{i}".encode() for i in range(n)])
    train, ev = load_training_data(tmp_path)
    assert len(train) == 6 and len(ev) == 4
    (tmp_path / "eval_only").mkdir()
    (tmp_path / "eval.h5").rename(tmp_path / "eval_only" / "eval.h5")
    with pytest.raises(DataError, match="no training data"):
        load_training_data(tmp_path / "eval_only")


def test_balanced_sampler_is_balanced_seeded_and_resumable(rng):
    y = np.zeros((300, 20), bool)
    y[np.arange(300), rng.integers(0, 20, 300)] = True
    y[:5, 19] = True                                       # class 19 is rare
    s = BalancedSampler(y, 40, seed=7)
    batches = [s.next_batch() for _ in range(50)]
    assert all(b.shape == (40,) for b in batches)
    drawn_per_class = y[np.concatenate(batches)].sum(0)
    assert drawn_per_class.min() >= 50 * 40 / 20 * 0.9    # every class about equally often, rare ones too
    again = BalancedSampler(y, 40, seed=7)
    assert all((again.next_batch() == b).all() for b in batches)
    state = {k: np.copy(v) for k, v in s.state().items()}
    ahead = [s.next_batch() for _ in range(5)]
    resumed = BalancedSampler(y, 40, seed=99)
    resumed.load_state(state)
    assert all((resumed.next_batch() == b).all() for b in ahead)
    with pytest.raises(DataError):
        BalancedSampler(y[:100], 40).load_state(state)


def test_shuffled_sampler_covers_each_epoch():
    s = ShuffledSampler(10, 4, seed=1)
    first = np.concatenate([s.next_batch() for _ in range(5)])[:10]
    assert sorted(first.tolist()) == list(range(10))
    state = {k: np.copy(v) for k, v in s.state().items()}
    nxt = s.next_batch()
    t = ShuffledSampler(10, 4, seed=2)
    t.load_state(state)
    np.testing.assert_array_equal(t.next_batch(), nxt)


def test_metrics_match_sklearn(rng):
    from sklearn.metrics import average_precision_score, roc_auc_score

    y = rng.random((200, 30)) < 0.15
    p = np.clip(y * 0.3 + rng.random((200, 30)) * 0.8, 0, 1).astype(np.float32)
    p[:, ::2] = np.round(p[:, ::2] * 8) / 8                # many tied scores in half of the classes
    s = calculate_stats(p, y)
    ap = [average_precision_score(y[:, k], p[:, k]) for k in range(30)]
    auc = [roc_auc_score(y[:, k], p[:, k]) for k in range(30)]
    assert abs(s["mAP"] - np.mean(ap)) < 1e-6 and abs(s["AUC"] - np.mean(auc)) < 1e-6
    np.testing.assert_allclose(s["AP"], ap, atol=1e-6)
    np.testing.assert_allclose(s["auc"], auc, atol=1e-6)
    assert abs(s["d_prime"] - np.sqrt(2) * __import__("scipy.stats").stats.norm.ppf(np.mean(auc))) < 1e-9
    assert abs(d_prime(0.5)) < 1e-12


def test_metrics_leave_out_classes_without_positives(rng):
    y = rng.random((50, 4)) < 0.3
    y[:, 2] = False
    p = rng.random((50, 4))
    with pytest.warns(AudioTaggerWarning, match="1 of 4 classes"):
        s = calculate_stats(p, y)
    assert s["AP"][2] is None and s["n_classes"] == 3
    from sklearn.metrics import average_precision_score

    assert abs(s["mAP"] - np.mean([average_precision_score(y[:, k], p[:, k]) for k in (0, 1, 3)])) < 1e-6
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        calculate_stats(p, y, warn=False)
    with pytest.raises(DataError):
        calculate_stats(p, np.zeros_like(y))
