"""YAMNet pieces that need no real weights: front end vs TensorFlow, patching, rows, the .h5 layout."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from audiotagger.cli import main
from audiotagger.errors import ModelError
from audiotagger.yamnet import features, params
from audiotagger.yamnet.tagging import aggregate, iter_patch_windows, num_patches, windows_to_patches
from audiotagger.yamnet.weights import read_weights, write_weights


def test_params_match_the_official_model():
    assert (params.WINDOW_SAMPLES, params.HOP_SAMPLES, params.FFT_LENGTH) == (400, 160, 512)
    assert (params.PATCH_FRAMES, params.PATCH_HOP_FRAMES, params.PATCH_SAMPLES) == (96, 48, 15600)
    # the model card: 3.7 M weights, 69.2 M multiply-adds per patch
    assert round(params.patch_flops() / 2 / 1e6, 1) == 69.2
    n = sum(int(np.prod(s)) for ws in params.weight_table().values() for _, s in ws)
    assert n == 3_751_369


def test_mel_matrix_is_tensorflows():
    import tensorflow as tf

    ref = tf.signal.linear_to_mel_weight_matrix(64, 257, 16000, 125.0, 7500.0).numpy()
    np.testing.assert_allclose(features.mel_matrix(), ref, atol=2e-5)


def test_log_mel_patches_match_tensorflow_reference(rng):
    """The numpy front end equals the official TensorFlow ops (stft magnitude, mel, log, frame)."""
    import tensorflow as tf

    x = (0.1 * rng.standard_normal(40_000)).astype(np.float32)
    padded = features.pad_waveform(x)
    spec = tf.abs(tf.signal.stft(padded, 400, 160, 512)).numpy()
    mel = tf.signal.linear_to_mel_weight_matrix(64, 257, 16000, 125.0, 7500.0).numpy()
    ref = tf.signal.frame(np.log(spec @ mel + 0.001), 96, 48, axis=0).numpy()
    ours = features.waveform_to_patches(x)
    assert ours.shape == ref.shape == (num_patches(x.size), 96, 64)
    np.testing.assert_allclose(ours, ref, atol=1e-4)


@pytest.mark.parametrize("n", [0, 1, 15_599, 15_600, 15_601, 23_280, 23_281, 40_000])
def test_streamed_windows_give_the_official_patches(n, rng):
    x = rng.standard_normal(n).astype(np.float32)
    chunks = [x[i:i + 777] for i in range(0, n, 777)]
    windows = np.stack(list(iter_patch_windows(chunks)))
    whole = features.waveform_to_patches(x)
    assert windows.shape[0] == num_patches(n) == whole.shape[0]
    np.testing.assert_allclose(windows_to_patches(windows), whole, atol=1e-5)
    np.testing.assert_allclose(windows_to_patches(windows, consecutive=True), whole, atol=1e-5)


def test_rows_take_the_max_of_the_patches_centred_in_them():
    times = np.arange(5) * 0.48                     # centres 0.48 0.96 1.44 1.92 2.40
    scores = np.array([[0.1], [0.9], [0.2], [0.3], [0.7]], np.float32)
    t, s = aggregate(times, scores, duration=2.5, hop=1.0)
    np.testing.assert_array_equal(t, [0.0, 1.0, 2.0])
    np.testing.assert_allclose(s[:, 0], [0.9, 0.3, 0.7])
    t, s = aggregate(times, scores, duration=2.5, hop=0.48)
    np.testing.assert_array_equal(s, scores)        # native rows kept
    t, s = aggregate(times[:1], scores[:1], duration=0.5, hop=0.25)   # rows without a centre: nearest
    np.testing.assert_allclose(s[:, 0], [0.1, 0.1])


def _random_weights(rng):
    table = params.weight_table()
    out = {}
    for layer, ws in table.items():
        out[layer] = [rng.standard_normal(s).astype(np.float32) * 0.1 for _, s in ws]
        if layer.endswith("/bn"):
            out[layer][2] = np.abs(out[layer][2]) + 0.5
    return out


def test_h5_is_written_in_the_official_layout_and_read_back(tmp_path, rng):
    weights = _random_weights(rng)
    path = write_weights(weights, tmp_path / "yamnet.h5")
    with h5py.File(path, "r") as fh:                # Keras 2 save_weights layout, as Google's file
        assert [n.decode() for n in fh.attrs["layer_names"]][:3] == [
            "layer1/conv", "layer1/conv/bn", "layer2/depthwise_conv"]
        assert list(fh["layer2/depthwise_conv/bn"].attrs["weight_names"]) == [
            b"layer2/depthwise_conv/bn/beta:0", b"layer2/depthwise_conv/bn/moving_mean:0",
            b"layer2/depthwise_conv/bn/moving_variance:0"]
        assert fh["dense/dense/kernel:0"].shape == (1024, 521)
    back = read_weights(path)
    for layer, arrays in weights.items():
        for a, b in zip(arrays, back[layer], strict=True):
            np.testing.assert_array_equal(a, b)


def _broken(tmp_path, rng, mutate):
    path = write_weights(_random_weights(rng), tmp_path / "yamnet.h5")
    with h5py.File(path, "a") as fh:
        mutate(fh)
    return path


@pytest.mark.parametrize("mutate, message", [
    (lambda fh: fh["layer7"].pop("pointwise_conv"), "layer 'layer7/pointwise_conv' is missing"),
    (lambda fh: (fh["dense"].pop("dense"), fh["dense"].create_dataset("dense/kernel:0", (1024, 520)),
                 fh["dense"].create_dataset("dense/bias:0", (521,))),
     "layer 'dense' weight 'kernel' has shape (1024, 520), YAMNet needs (1024, 521)"),
])
def test_bad_h5_one_line_error(tmp_path, rng, mutate, message, capsys):
    path = _broken(tmp_path, rng, mutate)
    with pytest.raises(ModelError, match=message.replace("(", r"\(").replace(")", r"\)")):
        read_weights(path)
    # the CLI: import refuses it (exit 1, one line), tag names it (exit 1, one line, nothing written)
    assert main(["models", "import", str(path), "--name", "yamnet", "--model-dir", str(tmp_path / "c")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("audiotagger: error:") and message in err[0]
    wav = tmp_path / "x.wav"
    import soundfile as sf

    sf.write(wav, np.zeros(16000, np.float32), 16000)
    assert main(["tag", str(wav), "--model", str(path), "-o", str(tmp_path / "out"), "-q"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and "Traceback" not in err[0]
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_not_hdf5_and_missing_file(tmp_path):
    bad = tmp_path / "yamnet.h5"
    bad.write_bytes(b"not hdf5")
    with pytest.raises(ModelError, match="not a readable HDF5"):
        read_weights(bad)
    with pytest.raises(ModelError, match="not found"):
        read_weights(tmp_path / "none.h5")


def test_waveform_graph_equals_numpy_front_end_and_network(rng):
    """The TensorFlow front end used for export gives the same scores as tagging's numpy one."""
    from audiotagger.yamnet.model import build_model, build_waveform_model
    from audiotagger.yamnet.weights import set_weights

    net = build_model(initializer="zeros")
    set_weights(net, _random_weights(rng))
    x = (0.1 * rng.standard_normal(15_600 + 2 * 7_680)).astype(np.float32)
    ours = net(features.waveform_to_patches(x))["scores"].numpy()
    graph = build_waveform_model(net, x.size)(x).numpy()
    assert graph.shape == ours.shape == (3, 521)
    np.testing.assert_allclose(graph, ours, atol=1e-4)


def test_export_refuses_other_models():
    from audiotagger.errors import ParameterError
    from audiotagger.export import waveform_model

    with pytest.raises(ParameterError, match="export supports YAMNet"):
        waveform_model("panns-cnn14")


def test_cli_usage_errors_exit_2(capsys):
    for argv in (["tag", "x.wav", "--model", "yamnet", "--sample-duration", "2"],
                 ["tag", "x.wav", "--model", "yamnet", "--compat-truncate"],
                 ["embed", "x.wav", "-o", "o", "--model", "yamnet", "--hop", "0.96"]):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 2
        assert capsys.readouterr().err.strip().splitlines()[-1].startswith("audiotagger: error:")


def test_download_checks_layers_caches_and_loads_offline(tmp_path, rng, monkeypatch):
    """``--model yamnet`` on first use: fetched (here from a loopback mirror), checked layer by layer,
    cached, then loaded offline; a mis-shaped file from the server is refused and not cached."""
    from audiotagger import hub
    from audiotagger.errors import DownloadError
    from audiotagger.tag.tagger import load_backend
    from tests.loopback_http import LoopbackServer, Served

    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    good = write_weights(_random_weights(rng), tmp_path / "good" / "yamnet.h5").read_bytes()
    bad = _broken(tmp_path, rng, lambda fh: fh["layer3"].pop("pointwise_conv")).read_bytes()
    with LoopbackServer() as served:
        monkeypatch.setenv(hub.MIRROR_ENV, served.base)
        served.files["/yamnet.h5"] = Served(bad)
        with pytest.raises(DownloadError, match="layer 'layer3/pointwise_conv' is missing"):
            hub.locate("yamnet", progress=False)
        assert not (hub.cache_dir() / "yamnet.h5").exists()
        served.files["/yamnet.h5"] = Served(good)
        assert hub.locate("yamnet", progress=False).read_bytes() == good
    assert hub.status("yamnet").state == "verified"
    backend = load_backend("yamnet", offline=True)
    result = backend.tag_waveform(np.zeros(16000, np.float32), 16000)
    assert result.probs.shape == (1, 521) and result.meta["backend"] == "yamnet"
