"""The Keras PANNs networks against an independent PyTorch reference, through real ``torch.save`` files.

The reference is written here from SPEC §7 (not copied): torchlibrosa-style front end (centred
reflect-padded STFT with a periodic Hann window, power, librosa mel filters, 10 log10), ``bn0`` over
mel bins, conv blocks, mean over frequency, max + mean over time, ``fc1`` + ReLU, ``fc_audioset`` +
sigmoid. Skipped when torch is not installed.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
nn = torch.nn
F = torch.nn.functional

from audiotagger.panns import params  # noqa: E402
from audiotagger.panns.frontend import logmel, mel_filters  # noqa: E402
from audiotagger.panns.pth import load_state_dict  # noqa: E402

CHANNELS = {"cnn14": (64, 128, 256, 512, 1024, 2048), "cnn10": (64, 128, 256, 512),
            "cnn6": (64, 128, 256, 512)}


class RefBlock(nn.Module):
    def __init__(self, cin, cout, kernel, pool):
        super().__init__()
        self.kernel, self.pool = kernel, pool
        self.conv1 = nn.Conv2d(cin, cout, kernel, padding=kernel // 2, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        if kernel == 3:
            self.conv2 = nn.Conv2d(cout, cout, kernel, padding=1, bias=False)
            self.bn2 = nn.BatchNorm2d(cout)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        if self.kernel == 3:
            x = F.relu(self.bn2(self.conv2(x)))
        return F.avg_pool2d(x, self.pool)


class RefFrontEnd(nn.Module):
    def __init__(self):
        super().__init__()
        window = torch.hann_window(params.WINDOW_SIZE, periodic=True, dtype=torch.float64)
        self.register_buffer("window", window)
        self.register_buffer("melW", torch.from_numpy(np.array(mel_filters(), dtype=np.float64)))

    def forward(self, wave):
        spec = torch.stft(wave.double(), params.WINDOW_SIZE, params.HOP_SIZE, window=self.window, center=True,
                          pad_mode="reflect", return_complex=True)
        power = spec.abs() ** 2  # (batch, bins, frames)
        mel = power.transpose(1, 2) @ self.melW
        return (10 * torch.log10(torch.clamp(mel, min=params.AMIN))).float()


class RefPanns(nn.Module):
    def __init__(self, arch):
        super().__init__()
        kernel = 5 if arch == "cnn6" else 3
        chans = CHANNELS[arch]
        self.bn0 = nn.BatchNorm2d(params.MEL_BINS)
        pools = [2] * len(chans)
        if arch == "cnn14":
            pools[-1] = 1
        cin = 1
        for i, (c, p) in enumerate(zip(chans, pools, strict=True)):
            setattr(self, f"conv_block{i + 1}", RefBlock(cin, c, kernel, p))
            cin = c
        self.n_blocks = len(chans)
        self.fc1 = nn.Linear(cin, cin)
        self.fc_audioset = nn.Linear(cin, params.NUM_CLASSES)

    def forward(self, logmel):  # (batch, frames, mel)
        x = logmel.unsqueeze(1).transpose(1, 3)  # (batch, mel, frames, 1)
        x = self.bn0(x).transpose(1, 3)  # (batch, 1, frames, mel)
        for i in range(self.n_blocks):
            x = getattr(self, f"conv_block{i + 1}")(x)
        x = x.mean(dim=3)
        x = x.max(dim=2).values + x.mean(dim=2)
        emb = F.relu(self.fc1(x))
        return torch.sigmoid(self.fc_audioset(emb)), emb


def _randomise(model, seed):
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, module in model.named_modules():
            if isinstance(module, nn.Conv2d | nn.Linear):  # He-scaled, so the scores depend on the input
                fan_in = module.weight[0].numel()
                gain = 4.0 if name == "fc_audioset" else 1.0
                module.weight.normal_(0, gain * (2.0 / fan_in) ** 0.5, generator=gen)
            if isinstance(module, nn.BatchNorm2d):
                n = module.num_features
                module.weight.uniform_(0.7, 1.3, generator=gen)
                module.bias.normal_(0, 0.1, generator=gen)
                if name == "bn0":
                    module.running_mean.normal_(-40, 5, generator=gen)
                    module.running_var.uniform_(100, 300, generator=gen)
                else:
                    module.running_mean.normal_(0.1, 0.1, generator=gen)
                    module.running_var.uniform_(0.5, 1.5, generator=gen)
                module.num_batches_tracked.fill_(12345)
                assert module.running_var.shape == (n,)
    return model.eval()


@pytest.fixture(scope="module")
def torch_checkpoints(tmp_path_factory):
    out = {}
    folder = tmp_path_factory.mktemp("torch_pth")
    for arch, seed in (("cnn6", 1), ("cnn10", 2)):
        ref = _randomise(RefPanns(arch), seed)
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
