"""YAMNet on the ONNX Runtime engine against the Keras port (the TensorFlow engine).

Criterion as for every network in tests/test_engine.py: ``|onnx - tf| <= 1e-5 * |tf| + 1e-5 * scale``
(scale 1 for the sigmoid scores, the largest magnitude for the embeddings). Checked on a seeded YAMNet
written in the official ``yamnet.h5`` layout (He-scaled kernels and batch norms whose folding matters,
so CI without ``../shared`` tests it), and on real recordings with the real weights (skipped without
``../shared``).
"""

from __future__ import annotations

import numpy as np
import pytest

from audiotagger.errors import AudioTaggerWarning, ModelError, ParameterError
from audiotagger.yamnet import params
from tests.conftest import shared_file
from tests.test_engine import assert_parity


def seeded_weights(seed: int = 3) -> dict[str, list[np.ndarray]]:
    """A YAMNet whose activations neither vanish nor explode: He-scaled kernels, real batch norms."""
    rng = np.random.default_rng(seed)
    out = {}
    for layer, ws in params.weight_table().items():
        arrays = []
        for kind, shape in ws:
            if kind in ("kernel", "depthwise_kernel"):
                fan_in = int(np.prod(shape[:2] if kind == "depthwise_kernel" else shape[:-1]))
                arrays.append(rng.standard_normal(shape) * np.sqrt(2.0 / fan_in))
            elif kind == "moving_variance":
                arrays.append(rng.uniform(0.5, 2.0, shape))
            else:                               # beta, moving_mean, dense bias
                arrays.append(0.2 * rng.standard_normal(shape))
        out[layer] = [a.astype(np.float32) for a in arrays]
    return out


@pytest.fixture(scope="module")
def seeded_h5(tmp_path_factory):
    from audiotagger.yamnet.weights import write_weights

    return write_weights(seeded_weights(), tmp_path_factory.mktemp("yamnet-seeded") / "yamnet.h5")


@pytest.fixture(scope="module")
def seeded_models(seeded_h5, tmp_path_factory):
    from audiotagger.yamnet.tagging import YamnetModel

    cache = tmp_path_factory.mktemp("yamnet-onnx-cache")
    return (YamnetModel(seeded_h5, model_dir=cache), YamnetModel(seeded_h5, model_dir=cache, engine="tf"),
            cache)


def test_same_padding_is_tensorflows():
    from audiotagger.engine.graphs import same_pads

    assert same_pads(96, 3, 2) == (48, 0, 1)        # even size, stride 2: the extra row goes after
    assert same_pads(7, 3, 2) == (4, 1, 1)
    assert same_pads(3, 3, 2) == (2, 1, 1)
    assert same_pads(64, 3, 1) == (64, 1, 1)
    assert same_pads(12, 1, 1) == (12, 0, 0)


def test_seeded_parity_scores_and_embeddings(seeded_models, rng):
    onnx, tf, _ = seeded_models
    assert (onnx.engine, tf.engine) == ("onnx", "tf") and onnx.network is None
    patches = (2.0 * rng.standard_normal((37, 96, 64)) - 4.0).astype(np.float32)   # log-mel-like values
    s1, e1 = onnx.score_patches(patches)
    s2, e2 = tf.score_patches(patches)
    assert s1.shape == (37, 521) and e1.shape == (37, 1024) and s1.dtype == e1.dtype == np.float32
    assert s2.std() > 0.05 and e2.std() > 0.05      # a network whose outputs carry information
    assert_parity(s1, s2, scale=1.0)
    assert_parity(e1, e2)
    # a single patch (a live step) gives the batch's numbers
    s3, e3 = onnx.score_patches(patches[5:6])
    np.testing.assert_allclose(s3, s1[5:6], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(e3, e1[5:6], rtol=1e-6, atol=1e-6)


def test_seeded_parity_on_a_waveform(seeded_models, rng):
    onnx, tf, _ = seeded_models
    t = np.arange(int(4.3 * 16000)) / 16000
    x = 0.3 * np.sin(2 * np.pi * (300 + 200 * t) * t) + 0.05 * rng.standard_normal(t.size)
    a, b = onnx.embed_waveform(x, 16000), tf.embed_waveform(x, 16000)
    np.testing.assert_array_equal(a.times, b.times)
    assert len(a.times) == 8
    assert_parity(a.scores, b.scores, scale=1.0)
    assert_parity(a.embeddings, b.embeddings)


def test_graph_cached_once_and_checked(seeded_models, seeded_h5):
    from audiotagger.engine.models import yamnet_graphs
    from audiotagger.engine.store import MANIFEST

    onnx, _, cache = seeded_models
    folder = yamnet_graphs(seeded_h5, cache)
    assert folder == onnx._call.folder and folder.name.startswith("yamnet-")
    assert (folder / MANIFEST).is_file() and (folder / "weights.bin").stat().st_size > 14e6
    stamp = (folder / "yamnet.onnx").stat().st_mtime_ns
    assert yamnet_graphs(seeded_h5, cache) == folder
    assert (folder / "yamnet.onnx").stat().st_mtime_ns == stamp
    (folder / "weights.bin").open("ab").write(b"\0")       # a damaged cache is rebuilt, with a warning
    with pytest.warns(AudioTaggerWarning, match="rejected"):
        assert yamnet_graphs(seeded_h5, cache) == folder


def test_engine_options_and_bad_weights(seeded_h5, tmp_path):
    from audiotagger.tag.tagger import load_backend
    from audiotagger.yamnet.tagging import YamnetModel

    with pytest.raises(ParameterError, match="only with --engine onnx"):
        YamnetModel(seeded_h5, engine="tf", precision="int8")
    with pytest.raises(ParameterError, match="--engine"):
        YamnetModel(seeded_h5, engine="torch")
    backend = load_backend(str(seeded_h5), engine="tf", model_dir=tmp_path)
    assert (backend.engine, backend.precision) == ("tf", "fp32") and backend.model.network is not None
    bad = tmp_path / "bad.h5"
    bad.write_bytes(b"not hdf5")
    with pytest.raises(ModelError, match="not a readable HDF5"):
        YamnetModel(bad, model_dir=tmp_path)
    assert not list((tmp_path / "onnx").glob("yamnet-*"))     # nothing half-built left in the cache


# --- real weights ------------------------------------------------------------------------------------

REAL = ["jfk.flac", "crying_baby_1-60997-B.mp3", "metro_station-paris.wav",
        "456440__inspectorj__bird-whistling-robin-single-13.ogg"]


@pytest.fixture(scope="module")
def real_models(yamnet_home):
    from audiotagger.yamnet.tagging import YamnetModel

    opts = {"model_dir": yamnet_home, "offline": True}
    return YamnetModel("yamnet", **opts), YamnetModel("yamnet", engine="tf", **opts)


@pytest.mark.parametrize("name", REAL)
def test_real_recordings_parity(real_models, name):
    onnx, tf = real_models
    path = shared_file("audio", name)
    a, b = onnx.embed_file(path), tf.embed_file(path)
    assert a.scores.shape == b.scores.shape and len(a.times) >= 5
    assert_parity(a.scores, b.scores, scale=1.0)
    assert_parity(a.embeddings, b.embeddings)
    np.testing.assert_array_equal(a.scores.argmax(1), b.scores.argmax(1))


def test_cli_embed_yamnet_engines_agree(yamnet_home, tmp_path):
    from audiotagger.cli import main

    jfk = shared_file("audio", "jfk.flac")
    common = ["--model", "yamnet", "--model-dir", str(yamnet_home), "--offline", "-q"]
    assert main(["embed", str(jfk), "-o", str(tmp_path / "onnx"), *common]) == 0
    assert main(["embed", str(jfk), "-o", str(tmp_path / "tf"), "--engine", "tf", *common]) == 0
    with np.load(tmp_path / "onnx" / "jfk.npz") as a, np.load(tmp_path / "tf" / "jfk.npz") as b:
        assert a["embedding"].shape == (22, 1024)
        assert_parity(a["embedding"], b["embedding"])
        assert_parity(a["scores"], b["scores"], scale=1.0)


def test_int8_graph(seeded_h5, tmp_path, monkeypatch, rng):
    """``--precision int8``: calibrated on $AUDIOTAGGER_CALIBRATION's recordings, cached, close to fp32."""
    import soundfile as sf

    from audiotagger.engine import quantize
    from audiotagger.yamnet.tagging import YamnetModel

    t = np.arange(3 * 16000) / 16000
    x = 0.3 * np.sin(2 * np.pi * (200 + 300 * t) * t) + 0.05 * rng.standard_normal(t.size)
    calib = tmp_path / "calib"
    calib.mkdir()
    sf.write(calib / "a.wav", x.astype(np.float32), 16000)
    monkeypatch.setenv(quantize.CALIBRATION_ENV, str(calib))
    monkeypatch.setattr(quantize, "CALIBRATION_EXAMPLES", 5)
    int8 = YamnetModel(seeded_h5, model_dir=tmp_path / "c", precision="int8")
    fp32 = YamnetModel(seeded_h5, model_dir=tmp_path / "c")
    folder = int8._call.folder
    assert int8.precision == "int8" and folder.name.startswith("yamnet-int8-")
    a, b = int8.embed_waveform(x, 16000), fp32.embed_waveform(x, 16000)
    assert not np.array_equal(a.embeddings, b.embeddings)
    assert np.corrcoef(a.embeddings.ravel(), b.embeddings.ravel())[0, 1] > 0.95
    assert YamnetModel(seeded_h5, model_dir=tmp_path / "c", precision="int8")._call.folder == folder


def test_tflite_path_runs_on_onnx(real_models, yamnet_home, tmp_path):
    """``--model yamnet.tflite``: converted once to ``yamnet.h5``, then the same ONNX graph (same content)."""
    from audiotagger.yamnet.tagging import YamnetModel
    from tests.yamnet_fixtures import yamnet_tflite

    model = YamnetModel(yamnet_tflite(), model_dir=yamnet_home)
    assert model.engine == "onnx" and model.network is None and model.weights_path.suffix == ".h5"
    assert model._call.folder == real_models[0]._call.folder          # keyed by content: one graph
    x = shared_file("audio", "sorohanro_-_solo-trumpet-06.ogg")
    np.testing.assert_array_equal(model.embed_file(x).scores, real_models[0].embed_file(x).scores)
