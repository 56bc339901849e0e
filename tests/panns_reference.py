"""An independent PyTorch reference of PANNs CNN14/CNN10/CNN6 (written from SPEC §7, not copied).

torchlibrosa-style front end (centred reflect-padded STFT with a periodic Hann window, power, librosa mel
filters, 10 log10), ``bn0`` over mel bins, conv blocks, mean over frequency, max + mean over time,
``fc1`` + ReLU, ``fc_audioset`` + sigmoid. Module names follow the official state dicts. Used by the
tests and by ``scripts/bench_panns.py`` (the same-run PyTorch peer); needs torch.
"""

from __future__ import annotations

import numpy as np
import torch

from audiotagger.panns import params
from audiotagger.panns.frontend import mel_filters

nn = torch.nn
F = torch.nn.functional

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


def randomise(model, seed):
    """Give ``model`` He-scaled weights and non-trivial batch-norm statistics; return it in eval mode."""
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
