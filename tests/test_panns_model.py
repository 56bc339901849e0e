"""PANNs front end, Keras networks and checkpoint conversion (the full CNN14 once, numerics on small nets)."""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest

from audiotagger.errors import AudioTaggerWarning, ModelError, ParameterError
from audiotagger.panns import params
from audiotagger.panns.checkpoint import load_model, load_weights, state_to_weights
from audiotagger.panns.frontend import logmel, mel_filters, num_frames
from audiotagger.panns.models import build_model, get_architecture, trainable_parameters
from tests.panns_fixtures import panns_state_dict, write_pth

# --- front end ------------------------------------------------------------------------------------

def test_logmel_matches_librosa(rng):
    import librosa

    x = (0.1 * rng.standard_normal(params.SAMPLE_RATE)).astype(np.float32)
    spec = librosa.feature.melspectrogram(
        y=x, sr=params.SAMPLE_RATE, n_fft=params.WINDOW_SIZE, hop_length=params.HOP_SIZE, window="hann",
        center=True, pad_mode="reflect", power=2.0, n_mels=params.MEL_BINS, fmin=params.FMIN,
        fmax=params.FMAX)
    ref = librosa.power_to_db(spec, ref=params.REF, amin=params.AMIN, top_db=None).T
    ours = logmel(x)
    assert ours.dtype == np.float32 and ours.shape == ref.shape == (101, 64)
    np.testing.assert_allclose(ours, ref, atol=1e-4)


def test_logmel_shapes_and_silence():
    assert num_frames(10 * params.SAMPLE_RATE) == 1001  # SPEC §7.1: a 10 s clip gives 1001 frames
    batch = logmel(np.zeros((3, 2 * params.SAMPLE_RATE), np.float32))
    assert batch.shape == (3, 201, 64)
    np.testing.assert_allclose(batch, -100.0, atol=1e-4)
    assert mel_filters().shape == (513, 64)
    with pytest.raises(ParameterError, match="too short"):
        logmel(np.zeros(100, np.float32))
    with pytest.raises(ParameterError, match="NaN"):
        logmel(np.full(2000, np.nan, np.float32))


# --- networks -------------------------------------------------------------------------------------

@pytest.mark.parametrize("arch,count", [("cnn10", 5_219_279), ("cnn6", 4_837_455)])
def test_parameter_counts(arch, count):  # CNN14 (80,753,615): test_cnn14_conversion_and_cache
    assert params.PARAM_COUNTS[arch] == count
    model = build_model(arch)
    assert trainable_parameters(model) == count
    out = model(np.zeros((2, get_architecture(arch).min_frames, 64), np.float32), training=False)
    assert out["clipwise_output"].shape == (2, 527)
    assert out["embedding"].shape == (2, params.get_architecture(arch).embedding_size)


def test_lazy_package_exports():
    import audiotagger.panns as panns

    assert panns.build_model is build_model and panns.logmel is logmel
    with pytest.raises(AttributeError):
        panns.nothing_here  # noqa: B018


def test_unknown_architecture():
    with pytest.raises(ParameterError, match="unknown PANNs network"):
        get_architecture("cnn12")


# --- conversion -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def cnn6_state():
    return panns_state_dict("cnn6", seed=3)


def test_conversion_layouts(cnn6_state):
    weights = state_to_weights(cnn6_state, "cnn6")
    conv = cnn6_state["conv_block2.conv1.weight"]  # (out, in, kh, kw)
    np.testing.assert_array_equal(weights["conv_block2_conv1"][0], conv.transpose(2, 3, 1, 0))
    np.testing.assert_array_equal(weights["fc_audioset"][0], cnn6_state["fc_audioset.weight"].T)
    gamma, beta, mean, var = weights["conv_block1_bn1"]
    np.testing.assert_array_equal(mean, cnn6_state["conv_block1.bn1.running_mean"])
    np.testing.assert_array_equal(var, cnn6_state["conv_block1.bn1.running_var"])


@pytest.mark.parametrize("edit,match", [
    (lambda s: s.pop("conv_block3.bn1.running_var"), r"'conv_block3\.bn1\.running_var' is missing"),
    (lambda s: s.__setitem__("fc1.weight", np.zeros((512, 256), np.float32)),
     r"'fc1\.weight' has shape \(512, 256\), PANNs cnn6 needs \(512, 512\)"),
    (lambda s: s.__setitem__("conv_block9.conv1.weight", np.zeros(3, np.float32)),
     r"unexpected tensor 'conv_block9\.conv1\.weight'"),
    (lambda s: s.__setitem__("logmel_extractor.melW", np.zeros((257, 64), np.float32)),
     r"'logmel_extractor\.melW' has shape \(257, 64\)"),
    (lambda s: s.__setitem__("bn0.running_var", -np.ones(64, np.float32)), "negative variances"),
    (lambda s: s.__setitem__("fc1.bias", np.full(512, np.nan, np.float32)), "not finite"),
])
def test_bad_state_dicts(tmp_path, cnn6_state, edit, match):
    state = dict(cnn6_state)
    edit(state)
    path = write_pth(tmp_path / "bad.pth", {"model": state})
    with pytest.raises(ModelError, match=r"bad\.pth: .*" + match):
        load_model(path)
    assert not any((tmp_path / "cache").rglob("*.npz")) if (tmp_path / "cache").exists() else True


def test_architecture_mismatch_and_melw_warning(tmp_path, cnn6_state):
    path = write_pth(tmp_path / "c6.pth", {"model": cnn6_state})
    with pytest.raises(ModelError, match="is a PANNs cnn6 checkpoint, not cnn10"):
        load_weights(path, "cnn10", cache=False)
    state = dict(cnn6_state)
    state["logmel_extractor.melW"] = state["logmel_extractor.melW"] * 2
    odd = write_pth(tmp_path / "odd.pth", {"model": state})
    with pytest.warns(AudioTaggerWarning, match="mel filter bank differs"):
        load_weights(odd, cache=False)


def test_named_model_without_a_file_is_a_clear_error(tmp_path):
    with pytest.raises(ModelError, match="panns-cnn6"):
        load_model("panns-cnn6", model_dir=tmp_path, offline=True)


def test_cnn14_conversion_and_cache(tmp_path, monkeypatch):
    """The full 80.7 M-parameter CNN14: official names, conversion, the cache, and (with torch) numerics."""
    state = panns_state_dict("cnn14", seed=5)
    path = write_pth(tmp_path / "Cnn14_mAP=0.431.pth", {"model": state})
    model_dir = tmp_path / "models"
    net, used = load_model("panns-cnn14", checkpoint=path, model_dir=model_dir)
    assert net.name == "cnn14" and used == path
    assert trainable_parameters(net) == params.PARAM_COUNTS["cnn14"] == 80_753_615
    caches = list((model_dir / "panns").glob("*.npz"))
    assert len(caches) == 1
    features = logmel(np.random.default_rng(0).standard_normal((1, 16000)).astype(np.float32) * 0.1)
    expected = np.asarray(net(features, training=False)["clipwise_output"])

    import audiotagger.panns.pth as pth

    def fail(*a, **k):
        raise AssertionError("the cached conversion should be used")

    monkeypatch.setattr(pth, "load_state_dict", fail)
    again, _ = load_model(path, model_dir=model_dir)  # a path: architecture comes from the cache name
    np.testing.assert_array_equal(np.asarray(again(features, training=False)["clipwise_output"]), expected)
    monkeypatch.undo()

    torch = pytest.importorskip("torch")
    from tests.panns_reference import RefPanns

    ref = RefPanns("cnn14").eval()
    ref.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in state.items()
                         if not k.startswith(("spectrogram_extractor", "logmel_extractor"))})
    with torch.no_grad():
        clip, emb = ref(torch.from_numpy(features))
    np.testing.assert_allclose(expected, clip.numpy(), atol=1e-4)
    del ref, net, again
    os.remove(path)


def test_cache_is_refreshed_when_the_checkpoint_changes(tmp_path, cnn6_state):
    path = write_pth(tmp_path / "c6.pth", {"model": cnn6_state})
    load_weights(path, model_dir=tmp_path)
    changed = dict(cnn6_state)
    changed["fc1.bias"] = changed["fc1.bias"] + 1
    write_pth(path, {"model": changed})
    os.utime(path, ns=(1, 1))
    _, weights = load_weights(path, model_dir=tmp_path)
    np.testing.assert_array_equal(weights["fc1"][1], changed["fc1.bias"])
    assert len(list((tmp_path / "panns").glob("*.npz"))) == 2
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_weights(path, model_dir=tmp_path)  # cache hit, no warning
