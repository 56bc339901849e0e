"""Keras VGGish vs the tf-slim reference graph; the V1 checkpoint reader; the conversion cache."""

from __future__ import annotations

import numpy as np
import pytest

from audiotagger.errors import ModelError
from audiotagger.vggish import checkpoint as ckpt_mod
from audiotagger.vggish import params as P
from audiotagger.vggish.checkpoint import converted_path, load_vggish, read_checkpoint
from audiotagger.vggish.model import VGGishRunner, build_vggish


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="module")
def keras_vggish(vggish_checkpoint, model_dir):
    assert not converted_path(vggish_checkpoint, model_dir).exists()
    return load_vggish(vggish_checkpoint, model_dir=model_dir)


def test_checkpoint_fixture_is_official_v1_format(vggish_checkpoint):
    from audiotagger import filecheck

    assert vggish_checkpoint.name == "vggish_model.ckpt"
    assert not vggish_checkpoint.with_name("vggish_model.ckpt.index").exists()  # V1: a single file
    filecheck.check_tf_table(vggish_checkpoint)
    variables = read_checkpoint(vggish_checkpoint)
    assert {k: v.shape for k, v in variables.items()} == P.CHECKPOINT_VARIABLES
    assert sum(v.size for v in variables.values()) == 72_141_184


def test_keras_matches_slim_graph(keras_vggish, vggish_reference):
    out = VGGishRunner(keras_vggish, batch_size=3)(vggish_reference["examples"])
    ref = vggish_reference["embeddings"]
    assert out.shape == ref.shape == (7, 128) and out.dtype == np.float32
    assert np.abs(ref).max() > 1.0 and (ref < 0).any()  # pre-activation output of a live network
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5 * np.abs(ref).max())


def test_runner_batches_do_not_change_results(keras_vggish, vggish_reference):
    ex = vggish_reference["examples"]
    a = VGGishRunner(keras_vggish, batch_size=8)(ex)
    b = VGGishRunner(keras_vggish, batch_size=5)(ex)
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
    assert VGGishRunner(keras_vggish)(ex[:0]).shape == (0, 128)


def test_architecture_parameters_and_flops():
    model = build_vggish()
    assert model.count_params() == 72_141_184
    assert model.output_shape == (None, 128)
    assert model.get_layer("fc2").activation.__name__ == "linear"
    flops = 0
    for layer in model.layers:
        if layer.name.startswith("conv"):
            h, w, c_out = layer.output.shape[1:]
            flops += 2 * h * w * 9 * layer.kernel.shape[2] * c_out
        elif layer.name.startswith("fc"):
            flops += 2 * layer.kernel.shape[0] * layer.kernel.shape[1]
    assert flops == pytest.approx(P.FLOPS_PER_EXAMPLE, rel=1e-3)


def test_conversion_is_cached_and_reused(keras_vggish, vggish_checkpoint, vggish_reference, model_dir,
                                         monkeypatch):
    cached = converted_path(vggish_checkpoint, model_dir)
    assert cached.is_file() and cached.suffix == ".h5"  # written by the first load

    def boom(path):
        raise AssertionError("checkpoint read again")

    monkeypatch.setattr(ckpt_mod, "read_checkpoint", boom)
    model = load_vggish(vggish_checkpoint, model_dir=model_dir)
    out = VGGishRunner(model)(vggish_reference["examples"][:2])
    np.testing.assert_allclose(out, vggish_reference["embeddings"][:2], rtol=1e-5, atol=1e-4)


def _small_v1_checkpoint(path, variables: dict, version: int = 1) -> str:
    import tensorflow as tf

    graph = tf.Graph()
    with graph.as_default(), tf.compat.v1.Session(graph=graph) as sess:
        for name, shape in variables.items():
            tf.compat.v1.get_variable(name, shape=shape, initializer=tf.compat.v1.zeros_initializer())
        sess.run(tf.compat.v1.global_variables_initializer())
        write_version = tf.compat.v1.train.SaverDef.V1 if version == 1 else tf.compat.v1.train.SaverDef.V2
        tf.compat.v1.train.Saver(write_version=write_version).save(sess, str(path), write_meta_graph=False)
    return str(path)


def test_missing_and_misshaped_variables_are_named(tmp_path):
    missing = _small_v1_checkpoint(tmp_path / "missing.ckpt", {"vggish/conv1/weights": (3, 3, 1, 64)})
    with pytest.raises(ModelError, match=r"missing\.ckpt: variable vggish/conv1/biases is missing"):
        read_checkpoint(missing)
    shapes = dict(P.CHECKPOINT_VARIABLES)
    shapes = {k: v for k, v in shapes.items() if not k.startswith("vggish/fc1")}
    shapes["vggish/conv2/weights"] = (3, 3, 64, 64)
    bad = _small_v1_checkpoint(tmp_path / "bad.ckpt", {k: v for k, v in list(shapes.items())[:4]})
    with pytest.raises(ModelError, match=r"vggish/conv2/weights has shape \(3, 3, 64, 64\), expected"):
        read_checkpoint(bad)


def test_unreadable_and_missing_checkpoints(tmp_path):
    junk = tmp_path / "junk.ckpt"
    junk.write_bytes(b"not a checkpoint" * 10)
    with pytest.raises(ModelError, match="junk.ckpt: not a readable TensorFlow checkpoint"):
        read_checkpoint(junk)
    with pytest.raises(ModelError, match="--checkpoint"):
        load_vggish(tmp_path / "absent.ckpt")
    with pytest.raises(ModelError) as info:
        load_vggish(None, model_dir=tmp_path, offline=True)
    assert "https://storage.googleapis.com/audioset/vggish_model.ckpt" in str(info.value)
    assert "--checkpoint" in str(info.value)


def test_v2_prefixes_are_accepted(tmp_path):
    from audiotagger.vggish.checkpoint import checkpoint_path

    prefix = _small_v1_checkpoint(tmp_path / "v2.ckpt", {"vggish/conv1/weights": (3, 3, 1, 64)}, version=2)
    assert not (tmp_path / "v2.ckpt").exists() and (tmp_path / "v2.ckpt.index").exists()
    assert checkpoint_path(prefix) == tmp_path / "v2.ckpt"
    with pytest.raises(ModelError, match="variable vggish/conv1/biases is missing"):
        read_checkpoint(prefix)
