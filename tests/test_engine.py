"""The ONNX Runtime engine against the TensorFlow engine (and the official-format references).

Parity criterion, one for every network: ``|onnx - tf| <= 1e-5 * |tf| + 1e-5 * scale`` where ``scale``
is the largest magnitude of the output (1 for probabilities), i.e. 1e-5 relative, with an absolute floor
of 1e-5 of the output's range for values near zero (both engines accumulate float32 sums in different
orders; TensorFlow against itself at another batch size differs by about 1e-6). uint8 embeddings must be
identical.
"""

import os
import subprocess
import sys

import numpy as np
import pytest

from audiotagger.errors import AudioTaggerWarning, ModelError, ParameterError
from tests.panns_fixtures import panns_state_dict, write_pth


def assert_parity(onnx_out, tf_out, scale=None):
    onnx_out, tf_out = np.asarray(onnx_out, np.float64), np.asarray(tf_out, np.float64)
    scale = float(np.abs(tf_out).max()) if scale is None else scale
    assert onnx_out.shape == tf_out.shape
    np.testing.assert_allclose(onnx_out, tf_out, rtol=1e-5, atol=1e-5 * scale)


def test_check_engine():
    from audiotagger.engine import check_engine

    assert check_engine(None) == ("onnx", "fp32")
    assert check_engine("TF", "fp32") == ("tf", "fp32")
    with pytest.raises(ParameterError, match="--engine"):
        check_engine("torch")
    with pytest.raises(ParameterError, match="only with --engine onnx"):
        check_engine("tf", "int8")


# --- VGGish ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def pca_file(tmp_path_factory):
    rng = np.random.default_rng(7)
    basis, _ = np.linalg.qr(rng.standard_normal((128, 128)))
    path = tmp_path_factory.mktemp("pca") / "vggish_pca_params.npz"
    np.savez(path, pca_eigen_vectors=basis * 0.05, pca_means=np.zeros(128))
    return path


@pytest.fixture(scope="module")
def embedders(vggish_checkpoint, pca_file, tmp_path_factory):
    from audiotagger.vggish.embed import VGGishEmbedder

    cache = tmp_path_factory.mktemp("engine-cache")
    onnx = VGGishEmbedder(vggish_checkpoint, pca_file, cache, engine="onnx")
    tf = VGGishEmbedder(vggish_checkpoint, pca_file, cache, engine="tf")
    return onnx, tf, cache


def test_vggish_onnx_matches_official_graph_and_tf(embedders, vggish_reference):
    onnx, tf, _ = embedders
    assert onnx.model is None and onnx.runner.batch_size == 256
    examples = vggish_reference["examples"]
    got = onnx.runner(examples)
    assert_parity(got, vggish_reference["embeddings"])     # the tf-slim graph of the official definition
    assert_parity(got, tf.runner(examples))
    # batch composition does not matter (convolutions 16 at a time, dense over the gathered batch)
    np.testing.assert_allclose(onnx.runner(np.concatenate([examples] * 5))[-len(examples):], got,
                               rtol=1e-6, atol=1e-5)


def test_vggish_uint8_embeddings_identical(embedders, rng):
    onnx, tf, _ = embedders
    t = np.arange(25 * 16000) / 16000
    x = 0.3 * np.sin(2 * np.pi * (300 + 40 * t) * t) + 0.05 * rng.standard_normal(len(t))
    a, b = onnx.embed_waveform(x, 16000), tf.embed_waveform(x, 16000)
    assert_parity(a.raw, b.raw)
    np.testing.assert_array_equal(a.embedding, b.embedding)
    assert len(np.unique(a.embedding)) > 50            # the PCA scale spreads values over the range


def test_vggish_graph_cache_checked_and_shared(embedders, vggish_checkpoint, tmp_path):
    from audiotagger.engine.models import vggish_graphs
    from audiotagger.engine.store import MANIFEST

    _, _, cache = embedders
    folder = vggish_graphs(vggish_checkpoint, cache)
    assert (folder / MANIFEST).is_file() and (folder / "weights.bin").stat().st_size > 288e6
    stamp = (folder / "conv.onnx").stat().st_mtime_ns
    assert vggish_graphs(vggish_checkpoint, cache) == folder
    assert (folder / "conv.onnx").stat().st_mtime_ns == stamp
    # an altered graph is detected and rebuilt
    (folder / "dense.onnx").write_bytes((folder / "dense.onnx").read_bytes() + b"\0")
    with pytest.warns(AudioTaggerWarning, match="rejected"):
        assert vggish_graphs(vggish_checkpoint, cache) == folder
    from audiotagger.engine.store import check_folder

    digest = folder.name.split("-")[1]
    assert check_folder(folder, digest, ("conv", "dense")) is None


# --- classifier -----------------------------------------------------------------------------------

@pytest.mark.parametrize("config", [
    {"levels": [2, 3], "hidden_units": 24},
    {"levels": [1], "hidden_units": 16, "attention": "sigmoid"},
    {"model_type": "single-attention", "hidden_units": 16},
    {"model_type": "feature-attention", "hidden_units": 16},
    {"model_type": "average", "hidden_units": 8},
    {"model_type": "max", "hidden_units": 8, "num_classes": 5},
])
def test_classifier_types(config, tmp_path, rng):
    import keras

    from audiotagger.classifier import build_model, load_classifier, model_config
    from audiotagger.classifier.store import write_model

    keras.utils.set_random_seed(5)
    cfg = model_config(**config)
    model = build_model(**cfg)
    # non-trivial batch-norm statistics, so that folding them is tested
    for layer in model.layers:
        if type(layer).__name__ == "BatchNormalization":
            g, b, m, v = layer.get_weights()
            layer.set_weights([rng.uniform(0.5, 2, g.shape), rng.normal(0, 0.3, b.shape),
                               rng.normal(0, 0.5, m.shape), rng.uniform(0.2, 3, v.shape)])
    path = write_model(tmp_path / "m.npz", model, {**cfg, "name": "t"})
    q = rng.integers(0, 256, (23, 10, 128), dtype=np.uint8)
    onnx = load_classifier(path, engine="onnx", model_dir=tmp_path / "cache")
    tf = load_classifier(path, engine="tf")
    assert (onnx.name, onnx.num_classes) == ("t", cfg["num_classes"])
    assert onnx.config["model_type"] == cfg["model_type"]
    assert_parity(onnx.predict(q, batch_size=10), tf.predict(q), scale=1.0)
    with pytest.raises(ParameterError):
        onnx.predict(q.astype(np.float32))


def _random_batch_norms(model, rng):
    for layer in model._flatten_layers():
        if type(layer).__name__ == "BatchNormalization":
            g, b, m, v = layer.get_weights()
            layer.set_weights([rng.uniform(0.5, 2, g.shape), rng.normal(0, 0.3, b.shape),
                               rng.normal(0, 0.5, m.shape), rng.uniform(0.2, 3, v.shape)])


def test_ensemble_is_the_mean_of_its_members_on_both_engines(tmp_path, rng):
    """K members in one file: one call averages their probabilities; ONNX equals TF; members stored apart."""
    import keras

    from audiotagger.classifier import build_model, load_classifier, model_config
    from audiotagger.classifier.models import ensemble_config
    from audiotagger.classifier.store import read_model, write_model

    keras.utils.set_random_seed(7)
    members = [model_config(levels=[2, 3], hidden_units=24), model_config(levels=[1, 2, 3], hidden_units=16),
               model_config(levels=[3], hidden_units=8, attention="sigmoid")]
    cfg = ensemble_config([{**m, "recipe": f"r{i}"} for i, m in enumerate(members)])
    model = build_model(**cfg)
    _random_batch_norms(model, rng)
    path = write_model(tmp_path / "ens.npz", model, {**cfg, "name": "ens"})
    q = rng.integers(0, 256, (19, 10, 128), dtype=np.uint8)
    tf = load_classifier(path, engine="tf")
    onnx = load_classifier(path, engine="onnx", model_dir=tmp_path / "cache")
    got = tf.predict(q)
    assert got.shape == (19, 527) and onnx.num_classes == 527
    assert_parity(onnx.predict(q, batch_size=7), got, scale=1.0)
    # each member alone, written as its own file, averaged by hand
    _, weights, _ = read_model(path)
    start, alone = 0, []
    for i, m in enumerate(members):
        single = build_model(**m)
        n = len(single.weights)
        single.set_weights(weights[start:start + n])
        start += n
        alone.append(load_classifier(write_model(tmp_path / f"m{i}.npz", single, m), engine="tf").predict(q))
    assert start == len(weights)
    np.testing.assert_allclose(got, np.mean(alone, axis=0), rtol=1e-6, atol=1e-7)
    assert not np.allclose(alone[0], alone[1])


def test_ensemble_config_refuses_mismatched_members():
    from audiotagger.classifier.models import ensemble_config, model_config

    with pytest.raises(ParameterError, match="at least one"):
        ensemble_config([])
    with pytest.raises(ParameterError, match="share classes"):
        ensemble_config([model_config(), model_config(num_classes=5)])
    with pytest.raises(ParameterError, match="--hidden-units"):
        ensemble_config([model_config(), {"hidden_units": 0}])


def test_packaged_classifier_parity(rng):
    from audiotagger.classifier import load_classifier

    q = rng.integers(0, 256, (64, 10, 128), dtype=np.uint8)
    onnx, tf = load_classifier(engine="onnx"), load_classifier(engine="tf")
    assert_parity(onnx.predict(q), tf.predict(q), scale=1.0)


def test_bad_classifier_files_onnx(tmp_path):
    from audiotagger.classifier import load_classifier

    with pytest.raises(ModelError, match="not found"):
        load_classifier(tmp_path / "missing.npz", engine="onnx")
    other = tmp_path / "other.npz"
    np.savez(other, a=np.zeros(3))
    with pytest.raises(ModelError, match="not an audiotagger classifier"):
        load_classifier(other, engine="onnx")
    from audiotagger.classifier import build_model, model_config
    from audiotagger.classifier.store import write_model

    cfg = model_config(hidden_units=8)
    wrong = write_model(tmp_path / "wrong.npz", build_model(**cfg), {**cfg, "hidden_units": 9})
    with pytest.raises(ModelError, match="do not fit"):
        load_classifier(wrong, engine="onnx", model_dir=tmp_path / "cache")


# --- PANNs ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("arch", ["cnn6", "cnn10"])
def test_panns_parity(arch, tmp_path, rng):
    from audiotagger.panns.tagging import PannsTagger

    path = write_pth(tmp_path / f"{arch}.pth", {"model": panns_state_dict(arch, 3)})
    onnx = PannsTagger(path, model_dir=tmp_path / "c", engine="onnx", batch_size=5)
    tf = PannsTagger(path, model_dir=tmp_path / "c", engine="tf", batch_size=5)
    assert onnx.architecture == tf.architecture == arch
    windows = (0.1 * rng.standard_normal((7, 32000))).astype(np.float32)
    s1, e1 = onnx.score_windows(windows, embedding=True)
    s2, e2 = tf.score_windows(windows, embedding=True)
    assert_parity(s1, s2, scale=1.0)
    assert_parity(e1, e2)


def test_panns_cnn14_parity(tmp_path, rng):
    """The full CNN14 (its sixth block does not pool), one 1 s window."""
    from audiotagger.panns.tagging import PannsTagger

    path = write_pth(tmp_path / "Cnn14_mAP=0.431.pth", {"model": panns_state_dict("cnn14", 5)})
    windows = (0.1 * rng.standard_normal((2, 32000))).astype(np.float32)
    onnx = PannsTagger(path, model_dir=tmp_path / "c", engine="onnx")
    assert onnx.architecture == "cnn14" and onnx.batch_size == 64
    s1, e1 = onnx.score_windows(windows, embedding=True)
    del onnx
    tf = PannsTagger(path, model_dir=tmp_path / "c", engine="tf")
    s2, e2 = tf.score_windows(windows, embedding=True)
    assert_parity(s1, s2, scale=1.0)
    assert_parity(e1, e2)


# --- no TensorFlow on the onnx engine -------------------------------------------------------------

def test_tag_on_onnx_engine_never_imports_tensorflow(vggish_checkpoint, pca_file, tmp_path):
    import soundfile as sf

    from audiotagger.classifier import build_model, model_config
    from audiotagger.classifier.store import write_model

    cfg = model_config(hidden_units=16)
    clf = write_model(tmp_path / "small.npz", build_model(**cfg), {**cfg, "name": "s"})
    rng = np.random.default_rng(1)
    sf.write(tmp_path / "clip.wav", (0.1 * rng.standard_normal(16000 * 4)).astype(np.float32), 16000)
    env = {**os.environ, "AUDIOTAGGER_HOME": str(tmp_path / "cache")}
    args = ["tag", str(tmp_path / "clip.wav"), "-o", str(tmp_path / "out"), "-f", "npz", "-q",
            "--checkpoint", str(vggish_checkpoint), "--pca-params", str(pca_file), "--model", str(clf)]
    # first run converts (the TF1 checkpoint format needs TensorFlow once); later runs must not import it
    code = ("import sys; from audiotagger.cli import main; rc = main(sys.argv[1:]); "
            "print('TF' if 'tensorflow' in sys.modules else 'NO-TF'); sys.exit(rc)")
    for expected in (None, "NO-TF"):
        run = subprocess.run([sys.executable, "-c", code, *args, "--overwrite"], env=env, capture_output=True,
                             text=True, timeout=600)
        assert run.returncode == 0, run.stderr
        if expected:
            assert run.stdout.strip().splitlines()[-1] == expected
    with np.load(tmp_path / "out" / "clip.npz") as npz:
        onnx_probs = npz["probs"]
    run = subprocess.run([sys.executable, "-m", "audiotagger", *args, "--overwrite", "--engine", "tf"],
                         env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    with np.load(tmp_path / "out" / "clip.npz") as npz:
        assert_parity(onnx_probs, npz["probs"], scale=1.0)


def test_yamnet_on_onnx_engine_never_imports_tensorflow(yamnet_home, tmp_path):
    """``tag``/``embed --model yamnet`` with the real weights: not even the first build imports TensorFlow
    (``yamnet.h5`` is read with h5py); ``--engine tf`` (the Keras port) gives the same probabilities."""
    import shutil

    from tests.conftest import shared_file

    models = tmp_path / "models"
    models.mkdir()
    shutil.copy2(yamnet_home / "yamnet.h5", models / "yamnet.h5")      # a fresh cache: no graph built yet
    jfk = shared_file("audio", "jfk.flac")
    env = {**os.environ, "AUDIOTAGGER_HOME": str(tmp_path / "home")}
    common = ["--model", "yamnet", "--model-dir", str(models), "--offline", "-q", "--overwrite"]
    code = ("import sys; from audiotagger.cli import main; rc = main(sys.argv[1:]); "
            "print('TF' if 'tensorflow' in sys.modules else 'NO-TF'); sys.exit(rc)")
    for command in (["tag", "-f", "npz"], ["embed"], ["tag", "-f", "npz"]):   # build, then cached
        run = subprocess.run([sys.executable, "-c", code, command[0], str(jfk), "-o", str(tmp_path / "out"),
                              *command[1:], *common], env=env, capture_output=True, text=True, timeout=600)
        assert run.returncode == 0, run.stderr
        assert run.stdout.strip().splitlines()[-1] == "NO-TF", command
    assert len(list((models / "onnx").glob("yamnet-*/yamnet.onnx"))) == 1
    with np.load(tmp_path / "out" / "jfk.npz") as npz:
        onnx_probs = npz["probs"]
    assert onnx_probs.shape == (11, 521)
    run = subprocess.run([sys.executable, "-m", "audiotagger", "tag", str(jfk), "-o", str(tmp_path / "out"),
                          "-f", "npz", "--engine", "tf", *common], env=env, capture_output=True, text=True,
                         timeout=600)
    assert run.returncode == 0, run.stderr
    with np.load(tmp_path / "out" / "jfk.npz") as npz:
        assert_parity(onnx_probs, npz["probs"], scale=1.0)


# --- int8 -----------------------------------------------------------------------------------------

def test_vggish_int8_graphs(vggish_checkpoint, pca_file, tmp_path, monkeypatch, rng):
    import soundfile as sf

    from audiotagger.engine import quantize
    from audiotagger.vggish.embed import VGGishEmbedder

    monkeypatch.delenv(quantize.CALIBRATION_ENV, raising=False)
    with pytest.raises(ParameterError, match="AUDIOTAGGER_CALIBRATION"):
        VGGishEmbedder(vggish_checkpoint, pca_file, tmp_path / "c", engine="onnx", precision="int8")
    t = np.arange(6 * 16000) / 16000
    x = 0.3 * np.sin(2 * np.pi * (200 + 300 * t) * t) + 0.05 * rng.standard_normal(len(t))
    calib = tmp_path / "calib"
    calib.mkdir()
    sf.write(calib / "a.wav", x.astype(np.float32), 16000)
    monkeypatch.setenv(quantize.CALIBRATION_ENV, str(calib))
    monkeypatch.setattr(quantize, "CALIBRATION_EXAMPLES", 6)
    int8 = VGGishEmbedder(vggish_checkpoint, pca_file, tmp_path / "c", engine="onnx", precision="int8")
    fp32 = VGGishEmbedder(vggish_checkpoint, pca_file, tmp_path / "c", engine="onnx")
    folder = int8.runner.folder
    assert folder.name.startswith("vggish-int8-") and (folder / "conv.onnx.data").is_file()
    a, b = int8.embed_waveform(x, 16000).raw, fp32.embed_waveform(x, 16000).raw
    assert np.corrcoef(a.ravel(), b.ravel())[0, 1] > 0.99 and not np.array_equal(a, b)
    again = VGGishEmbedder(vggish_checkpoint, pca_file, tmp_path / "c", engine="onnx", precision="int8")
    assert again.runner.folder == folder
