"""The shared classifier package: tiling, model builders, attention pooling, the model file format."""

from __future__ import annotations

import numpy as np
import pytest

from audiotagger.classifier import (
    build_model,
    check_levels,
    load_classifier,
    model_config,
    retile,
    tile_to_ten,
)
from audiotagger.errors import ModelError, ParameterError

from .conftest import shared_file


def test_tile_to_ten_is_cyclic():
    rows = np.array([[1], [2], [3]], dtype=np.uint8)
    assert tile_to_ten(rows)[:, 0].tolist() == [1, 2, 3, 1, 2, 3, 1, 2, 3, 1]
    assert tile_to_ten(rows[:1])[:, 0].tolist() == [1] * 10
    long = np.arange(12)[:, None]
    assert tile_to_ten(long)[:, 0].tolist() == list(range(10))
    with pytest.raises(ParameterError):
        tile_to_ten(np.zeros((0, 128), np.uint8))
    with pytest.raises(ParameterError):
        tile_to_ten(np.zeros(10))


def test_retile_matches_tile_to_ten(rng):
    x = rng.integers(0, 256, (6, 10, 4), dtype=np.uint8)
    n = np.array([1, 3, 10, 7, 2, 9])
    out = retile(x, n)
    for i in range(6):
        np.testing.assert_array_equal(out[i], tile_to_ten(x[i, :n[i]]))
    with pytest.raises(ParameterError):
        retile(x, np.array([0, 1, 1, 1, 1, 1]))


def test_levels_validation():
    assert check_levels([3, 2]) == (2, 3)
    assert check_levels([1, 1]) == (1,)
    for bad in ([4], [], [0, 2], ["x"]):
        with pytest.raises(ParameterError, match="--levels"):
            check_levels(bad)
    with pytest.raises(ParameterError, match="--model-type"):
        model_config("lstm")


@pytest.fixture(scope="module")
def yu_model():
    return build_model("multi-level-attention", (2, 3), 600)


def test_yu_model_parameter_count(yu_model):
    trainable = sum(int(np.prod(w.shape)) for w in yu_model.trainable_weights)
    frozen = sum(int(np.prod(w.shape)) for w in yu_model.non_trainable_weights)
    assert (trainable, frozen) == (2_630_619, 9_126)          # SPEC §1.4


def test_levels_order_free_and_heads():
    a, b = build_model(levels=[3, 1], hidden_units=8), build_model(levels=[1, 3], hidden_units=8)
    assert [w.shape for w in a.weights] == [w.shape for w in b.weights]
    names = {layer.name for layer in a.layers}
    assert {"pool_1", "pool_3"} <= names and "pool_2" not in names
    one = build_model(levels=[2], hidden_units=8)
    assert "concat" not in {layer.name for layer in one.layers}


@pytest.mark.parametrize("model_type", ["single-attention", "feature-attention", "average", "max"])
def test_other_model_types(model_type, rng):
    m = build_model(model_type, hidden_units=16)
    out = np.asarray(m(rng.standard_normal((3, 10, 128)).astype(np.float32)))
    assert out.shape == (3, 527) and (out >= 0).all() and (out <= 1).all()


def test_attention_pooling_formula(rng):
    from audiotagger.classifier.layers import AttentionPooling

    cla = rng.random((2, 10, 5)).astype(np.float32)
    att = rng.random((2, 10, 5)).astype(np.float32)
    att[0, 0, 0] = 0.0                                       # clipped to 1e-7
    clipped = np.clip(att, 1e-7, 1 - 1e-7)
    expected = (clipped / clipped.sum(1, keepdims=True) * cla).sum(1)
    np.testing.assert_allclose(np.asarray(AttentionPooling()([cla, att])), expected, rtol=1e-5)


def test_npz_round_trip_and_predict(tmp_path, rng):
    from audiotagger.classifier.store import write_model

    cfg = model_config(levels=[1, 3], hidden_units=16, attention="sigmoid")
    model = build_model(**cfg)
    path = write_model(tmp_path / "m.npz", model, {**cfg, "name": "tiny"})
    clf = load_classifier(path)
    assert clf.name == "tiny" and clf.config["levels"] == [1, 3]
    q = rng.integers(0, 256, (7, 10, 128), dtype=np.uint8)
    expected = np.asarray(model((q.astype(np.float32) - 128) / 128, training=False))
    np.testing.assert_allclose(clf.predict(q, batch_size=3), expected, rtol=1e-5, atol=1e-6)
    with pytest.raises(ParameterError):
        clf.predict(q.astype(np.float32))
    with pytest.raises(ParameterError):
        clf.predict(q[:, :5])


def test_keras_file_reloads_without_lambda(tmp_path, rng):
    model = build_model(levels=[2, 3], hidden_units=8)
    model.save(tmp_path / "m.keras")
    clf = load_classifier(tmp_path / "m.keras")
    q = rng.integers(0, 256, (4, 10, 128), dtype=np.uint8)
    expected = np.asarray(model((q.astype(np.float32) - 128) / 128, training=False))
    np.testing.assert_allclose(clf.predict(q), expected, rtol=1e-5, atol=1e-6)


def test_bad_model_files(tmp_path):
    with pytest.raises(ModelError, match="not found"):
        load_classifier(tmp_path / "missing.npz")
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(ModelError, match="bad.npz"):
        load_classifier(bad)
    other = tmp_path / "other.npz"
    np.savez(other, a=np.zeros(3))
    with pytest.raises(ModelError, match="not an audiotagger classifier"):
        load_classifier(other)


def test_packaged_default_model():
    from audiotagger.classifier import default_model_path
    from audiotagger.classifier.store import read_model_file

    config, weights, meta, npz = read_model_file(default_model_path())
    npz.close()
    assert config["model_type"] == "multi-level-attention" and config["levels"] == [2, 3]
    # held-out numbers of the card (the 80 % model; the shipped one is refitted on every clip)
    assert meta["test_80pct"]["mAP"] > 0.3 and meta["validation_80pct"]["mAP"] > 0.3
    from audiotagger.classifier.store import read_thresholds

    thresholds = read_thresholds(default_model_path())
    assert thresholds.shape == (527,) and 0 < thresholds.min() <= thresholds.max() < 1
    assert meta["thresholds"]["rule"].startswith("per-class F1-optimal")
    clf = load_classifier()
    assert clf.name == config["name"] and clf is not None
    silence = np.full((2, 10, 128), 128, np.uint8)
    probs = clf.predict(silence)
    assert probs.shape == (2, 527) and np.isfinite(probs).all()


def test_packaged_model_tags_real_clips():
    from audiotagger.train.data import read_h5
    from audiotagger.train.metrics import calculate_stats

    data = read_h5(shared_file("audioset", "bal_train.h5"))
    idx = np.arange(0, len(data), 40)             # 554 clips, mostly training clips: a sanity check only
    stats = calculate_stats(load_classifier().predict(data.x[idx]), data.y[idx], warn=False)
    assert stats["mAP"] > 0.3 and stats["AUC"] > 0.9
