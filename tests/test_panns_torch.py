"""The Keras PANNs networks against an independent PyTorch reference, through real ``torch.save`` files.

The reference (:mod:`tests.panns_reference`) is written from SPEC §7, not copied. Skipped when torch
is not installed.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from audiotagger.errors import ModelError  # noqa: E402
from audiotagger.panns import params  # noqa: E402
from audiotagger.panns.frontend import logmel  # noqa: E402
from audiotagger.panns.pth import load_state_dict  # noqa: E402
from tests.panns_reference import RefFrontEnd, RefPanns, randomise  # noqa: E402


@pytest.fixture(scope="module")
def torch_checkpoints(tmp_path_factory):
    out = {}
    folder = tmp_path_factory.mktemp("torch_pth")
    for arch, seed in (("cnn6", 1), ("cnn10", 2)):
        ref = randomise(RefPanns(arch), seed)
        state = ref.state_dict()
        path = folder / f"{arch}.pth"
        torch.save({"model": state}, path)
        out[arch] = (ref, path)
    return out


@pytest.fixture(scope="module")
def waveforms():
    rng = np.random.default_rng(7)
    t = np.arange(int(1.5 * params.SAMPLE_RATE)) / params.SAMPLE_RATE
    tone = 0.3 * np.sin(2 * np.pi * 440 * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))
    noise = 0.05 * rng.standard_normal(t.size)
    return np.stack([tone + noise, noise * 3]).astype(np.float32)


def test_frontend_matches_torch_stft(waveforms):
    ours = logmel(waveforms)
    ref = RefFrontEnd()(torch.from_numpy(waveforms)).numpy()
    assert ours.shape == ref.shape == (2, 1 + waveforms.shape[1] // params.HOP_SIZE, params.MEL_BINS)
    np.testing.assert_allclose(ours, ref, atol=2e-3)


def test_real_torch_save_reads_back_exactly(torch_checkpoints):
    ref, path = torch_checkpoints["cnn10"]
    state = load_state_dict(path)
    expected = ref.state_dict()
    assert list(state) == list(expected)
    for key, tensor in expected.items():
        assert state[key].shape == tuple(tensor.shape), key
        np.testing.assert_array_equal(state[key], tensor.numpy(), err_msg=key)
    assert state["bn0.num_batches_tracked"].dtype == np.int64


def test_legacy_torch_save_format(tmp_path, torch_checkpoints):
    ref, _ = torch_checkpoints["cnn6"]
    path = tmp_path / "legacy.pth"
    torch.save({"model": ref.state_dict(), "iteration": 3}, path, _use_new_zipfile_serialization=False)
    state = load_state_dict(path)
    for key, tensor in ref.state_dict().items():
        np.testing.assert_array_equal(state[key], tensor.numpy(), err_msg=key)
    cut = tmp_path / "cut.pth"
    cut.write_bytes(path.read_bytes()[:-1000])
    with pytest.raises(ModelError, match=r"cut\.pth: storage .* is truncated"):
        load_state_dict(cut)


@pytest.mark.parametrize("arch", ["cnn6", "cnn10"])
def test_keras_matches_pytorch_reference(arch, torch_checkpoints, waveforms):
    from audiotagger.panns.checkpoint import load_model

    ref, path = torch_checkpoints[arch]
    net, used = load_model(path)
    assert used == path and net.name == arch
    features = logmel(waveforms)
    out = net(features, training=False)
    with torch.no_grad():
        clip, emb = ref(torch.from_numpy(features))
    np.testing.assert_allclose(np.asarray(out["embedding"]), emb.numpy(), rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(np.asarray(out["clipwise_output"]), clip.numpy(), atol=1e-4)
    assert float(np.abs(clip.numpy()[0] - clip.numpy()[1]).max()) > 1e-3  # the inputs are told apart
