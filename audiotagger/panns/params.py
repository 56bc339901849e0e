"""PANNs constants (Kong et al. 2020, ``qiuqiangkong/audioset_tagging_cnn``; SPEC §7, §8).

The front-end values are those every official CNN6/CNN10/CNN14 checkpoint was trained with; change
them only together with a checkpoint trained on other features. The architecture table lives here too
(no Keras needed to read it); :mod:`audiotagger.panns.models` builds the networks from it.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ParameterError

SAMPLE_RATE = 32000
"""Audio is resampled to 32 kHz mono."""
WINDOW_SIZE = 1024
"""STFT length and (periodic Hann) window length, in samples."""
HOP_SIZE = 320
"""STFT hop in samples (10 ms at 32 kHz: 100 frames per second)."""
MEL_BINS = 64
"""Mel bands (librosa Slaney mel scale with Slaney area normalisation)."""
FMIN = 50.0
"""Lowest mel band edge, Hz."""
FMAX = 14000.0
"""Highest mel band edge, Hz."""
AMIN = 1e-10
"""Floor of the power before ``10 * log10``."""
REF = 1.0
"""Reference power of the dB scale."""
BN_EPSILON = 1e-5
"""PyTorch's BatchNorm epsilon, used by every PANNs batch-norm layer."""

NUM_CLASSES = 527
"""Outputs of ``fc_audioset``."""

MODEL_NAMES = {"panns-cnn14": "cnn14", "panns-cnn10": "cnn10", "panns-cnn6": "cnn6"}
"""Registry name (:mod:`audiotagger.hub`) → architecture."""

PARAM_COUNTS = {"cnn14": 80_753_615, "cnn10": 5_219_279, "cnn6": 4_837_455}
"""Trainable parameters of each network (SPEC §1.4)."""

PUBLISHED_MULTIPLY_ADDS = {"cnn14": 42.22e9, "cnn10": 28.17e9, "cnn6": 21.99e9}
"""Multiply-adds per 10-second clip published with the models (``utils/plot_for_paper.py``)."""

DEFAULT_SAMPLE_DURATION = 2.0
"""Seconds of audio per scored window (PaddleAudio ``audio_tag.py`` ``--sample_duration``)."""
MAX_SAMPLE_DURATION = 60.0
"""Longest window accepted (the networks were trained on 10 s clips; a window of 100000 s would need
tens of GiB per batch)."""
DEFAULT_HOP_DURATION = 0.3
"""Seconds between window starts (``--hop_duration``)."""
DEFAULT_TOP_K = 10
"""Classes per block of the top-k text (``parse_result.py`` ``--top_k``)."""
DEFAULT_SMOOTH_SIZE = 5
"""Windows averaged by the causal posterior smoothing (``--smooth_size``)."""
DEFAULT_BATCH_SIZE = 8
"""Windows per network call (PaddleAudio scores batches of 8)."""


@dataclass(frozen=True)
class Block:
    """One convolution block: ``name`` (``conv_block1``), output channels, kernel, pooling."""

    name: str
    channels: int
    kernel: int
    pool: int

    @property
    def convs(self) -> int:
        """Convolutions in the block: two 3×3 (``ConvBlock``) or one 5×5 (``ConvBlock5x5``)."""
        return 2 if self.kernel == 3 else 1


@dataclass(frozen=True)
class Architecture:
    """A PANNs network: its convolution blocks and the width of ``fc1`` (= the embedding)."""

    name: str
    blocks: tuple[Block, ...]
    embedding_size: int

    @property
    def min_frames(self) -> int:
        """Fewest log-mel frames the pooling chain accepts (every pooled axis must stay >= 1)."""
        n = 1
        for block in self.blocks:
            n *= block.pool
        return n


def _blocks(channels, kernel, pools):
    pairs = enumerate(zip(channels, pools, strict=True))
    return tuple(Block(f"conv_block{i + 1}", c, kernel, p) for i, (c, p) in pairs)


ARCHITECTURES: dict[str, Architecture] = {
    "cnn14": Architecture("cnn14", _blocks((64, 128, 256, 512, 1024, 2048), 3, (2, 2, 2, 2, 2, 1)), 2048),
    "cnn10": Architecture("cnn10", _blocks((64, 128, 256, 512), 3, (2, 2, 2, 2)), 512),
    "cnn6": Architecture("cnn6", _blocks((64, 128, 256, 512), 5, (2, 2, 2, 2)), 512),
}


def get_architecture(name: str) -> Architecture:
    """Return the :class:`Architecture` called ``name`` (``cnn14``, ``cnn10`` or ``cnn6``).

    Raises
    ------
    ParameterError
        For an unknown name.
    """
    key = str(name).lower().removeprefix("panns-")
    if key not in ARCHITECTURES:
        raise ParameterError(f"unknown PANNs network {name!r} (choose from {', '.join(ARCHITECTURES)})")
    return ARCHITECTURES[key]
