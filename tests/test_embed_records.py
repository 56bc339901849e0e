"""The AudioSet release format: our encoder against Google's own records, and the round trip."""

from __future__ import annotations

import numpy as np
import pytest

from audiotagger import records
from audiotagger.errors import ParameterError
from tests.conftest import shared_file


def test_round_trip(tmp_path, rng):
    emb = rng.integers(0, 256, size=(7, 128), dtype=np.uint8)
    rec = records.encode_sequence_example("abc_123", emb, 30.0, 37.0, [0, 137, 500])
    path = records.write_tfrecord(tmp_path / "x.tfrecord", [rec, rec])
    out = records.read_tfrecord(path)
    assert len(out) == 2
    got = out[0]
    assert got[records.VIDEO_ID_KEY] == "abc_123"
    assert got[records.START_TIME_KEY] == 30.0 and got[records.END_TIME_KEY] == 37.0
    np.testing.assert_array_equal(got[records.LABELS_KEY], [0, 137, 500])
    np.testing.assert_array_equal(got[records.EMBEDDING_KEY], emb)
    assert [p.name for p in tmp_path.iterdir()] == ["x.tfrecord"]


def test_default_end_time_and_validation():
    rec = records.decode_sequence_example(records.encode_sequence_example("v", np.zeros((3, 128), np.uint8)))
    assert rec[records.END_TIME_KEY] == 3.0 and rec[records.LABELS_KEY].size == 0
    with pytest.raises(ParameterError, match="uint8"):
        records.encode_sequence_example("v", np.zeros((3, 128), np.float32))
    with pytest.raises(ParameterError, match="128"):
        records.encode_sequence_example("v", np.zeros((3, 64), np.uint8))


def test_google_records_parse_and_re_encode_identically():
    import tensorflow as tf

    path = shared_file("audioset", "bal_train", "-0.tfrecord")
    raw = [r.numpy() for r in tf.data.TFRecordDataset(str(path)).take(3)]
    assert raw
    for serialized in raw:
        ours = records.decode_sequence_example(serialized)
        assert ours[records.EMBEDDING_KEY].dtype == np.uint8 and ours[records.EMBEDDING_KEY].shape[1] == 128
        again = records.encode_sequence_example(
            ours[records.VIDEO_ID_KEY], ours[records.EMBEDDING_KEY], ours[records.START_TIME_KEY],
            ours[records.END_TIME_KEY], ours[records.LABELS_KEY])
        # same message (field order within maps may differ, so compare parsed protos)
        assert tf.train.SequenceExample.FromString(again) == tf.train.SequenceExample.FromString(serialized)
