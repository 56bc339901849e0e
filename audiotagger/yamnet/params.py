"""YAMNet constants (``research/audioset/yamnet/params.py`` of tensorflow/models, and its model card).

The front-end and network values are those the released YAMNet weights were trained with; change them
only together with weights trained on other features. Only :data:`PATCH_HOP_SECONDS` may be changed
freely (a smaller hop gives more patches of the same audio). The architecture table lives here too (no
Keras needed to read it); :mod:`audiotagger.yamnet.model` builds the network from it.
"""

from __future__ import annotations

from typing import NamedTuple

SAMPLE_RATE = 16000
"""Audio is resampled to 16 kHz mono."""
STFT_WINDOW_SECONDS = 0.025
"""STFT window (periodic Hann): 25 ms = 400 samples."""
STFT_HOP_SECONDS = 0.010
"""STFT hop: 10 ms = 160 samples (100 frames per second)."""
MEL_BANDS = 64
"""Mel bands (HTK mel scale, triangular filters on the magnitude spectrum, no area normalisation)."""
MEL_MIN_HZ = 125.0
"""Lower edge of the lowest mel band, Hz."""
MEL_MAX_HZ = 7500.0
"""Upper edge of the highest mel band, Hz."""
LOG_OFFSET = 0.001
"""Added to the mel magnitudes before the natural log."""
PATCH_WINDOW_SECONDS = 0.96
"""Seconds of log-mel frames per patch (96 frames)."""
PATCH_HOP_SECONDS = 0.48
"""Seconds between patch starts (48 frames); the native time step of the scores."""

NUM_CLASSES = 521
"""Outputs of the classifier (AudioSet's 527 classes less 6 that were left out of YAMNet)."""
EMBEDDING_SIZE = 1024
"""Width of the embedding (global average of the last convolution layer)."""
BATCHNORM_EPSILON = 1e-4
"""Epsilon of every batch-norm layer (``center=True``, ``scale=False``: beta, no gamma)."""
CONV_PADDING = "same"
"""Padding of every convolution."""
CLASSIFIER_ACTIVATION = "sigmoid"
"""Activation of the 521 outputs."""

# --- derived sizes (as the official code derives them) ------------------------------------------------
WINDOW_SAMPLES = int(round(SAMPLE_RATE * STFT_WINDOW_SECONDS))
"""400 samples per STFT frame."""
HOP_SAMPLES = int(round(SAMPLE_RATE * STFT_HOP_SECONDS))
"""160 samples between STFT frames."""
FFT_LENGTH = 2 ** (WINDOW_SAMPLES - 1).bit_length()
"""512: the smallest power of two that holds a window."""
PATCH_FRAMES = int(round(PATCH_WINDOW_SECONDS / STFT_HOP_SECONDS))
"""96 log-mel frames per patch."""
PATCH_HOP_FRAMES = int(round(PATCH_HOP_SECONDS / STFT_HOP_SECONDS))
"""48 frames between patches."""
PATCH_SAMPLES = (PATCH_FRAMES - 1) * HOP_SAMPLES + WINDOW_SAMPLES
"""15,600 samples (0.975 s): the shortest waveform that gives one patch (the TFLite model's input)."""
PATCH_HOP_SAMPLES = PATCH_HOP_FRAMES * HOP_SAMPLES
"""7,680 samples between patch starts."""

# --- tagging defaults -----------------------------------------------------------------------------------
DEFAULT_HOP_DURATION = 1.0
"""Seconds per result row of ``tag --model yamnet`` (per-second rows, aggregated from the patches)."""
NATIVE_HOP_DURATION = PATCH_HOP_SECONDS
"""``--hop-duration 0.48`` keeps one row per patch."""
DEFAULT_BATCH_SIZE = 32
"""Patches per network call."""
DEFAULT_TOP_K = 5
"""Tags per row (the project default)."""

MODEL_NAME = "yamnet"
"""Registry name (:mod:`audiotagger.hub`) and ``--model`` value."""
H5_FILENAME = "yamnet.h5"
"""The official Keras weights file."""
URL = "https://storage.googleapis.com/audioset/yamnet.h5"
"""Where Google publishes it."""


class LayerDef(NamedTuple):
    """One MobileNet v1 block: ``conv`` (full 3×3) or ``separable`` (depthwise 3×3 + pointwise 1×1)."""

    kind: str
    kernel: int
    stride: int
    filters: int


LAYERS: tuple[LayerDef, ...] = (
    LayerDef("conv", 3, 2, 32),
    LayerDef("separable", 3, 1, 64),
    LayerDef("separable", 3, 2, 128),
    LayerDef("separable", 3, 1, 128),
    LayerDef("separable", 3, 2, 256),
    LayerDef("separable", 3, 1, 256),
    LayerDef("separable", 3, 2, 512),
    LayerDef("separable", 3, 1, 512),
    LayerDef("separable", 3, 1, 512),
    LayerDef("separable", 3, 1, 512),
    LayerDef("separable", 3, 1, 512),
    LayerDef("separable", 3, 1, 512),
    LayerDef("separable", 3, 2, 1024),
    LayerDef("separable", 3, 1, 1024),
)
"""``layer1`` … ``layer14`` of the official model, in order."""

CLASSIFIER_LAYER = "dense"
"""Name of the 1024 → 521 logits layer in the official ``yamnet.h5`` (Keras' default name)."""


def weight_table() -> dict[str, list[tuple[str, tuple[int, ...]]]]:
    """Every weighted layer of the official model with its weights, in file order.

    Returns
    -------
    dict
        Official layer name (``layer2/depthwise_conv/bn``) → list of ``(weight kind, shape)``, where the
        kind is the Keras 2 weight name without the layer prefix (``kernel``, ``depthwise_kernel``,
        ``beta``, ``moving_mean``, ``moving_variance``, ``bias``).
    """
    table: dict[str, list[tuple[str, tuple[int, ...]]]] = {}
    channels = 1

    def bn(name: str, n: int) -> None:
        table[name] = [("beta", (n,)), ("moving_mean", (n,)), ("moving_variance", (n,))]

    for i, layer in enumerate(LAYERS, start=1):
        k = layer.kernel
        if layer.kind == "conv":
            table[f"layer{i}/conv"] = [("kernel", (k, k, channels, layer.filters))]
            bn(f"layer{i}/conv/bn", layer.filters)
        else:
            table[f"layer{i}/depthwise_conv"] = [("depthwise_kernel", (k, k, channels, 1))]
            bn(f"layer{i}/depthwise_conv/bn", channels)
            table[f"layer{i}/pointwise_conv"] = [("kernel", (1, 1, channels, layer.filters))]
            bn(f"layer{i}/pointwise_conv/bn", layer.filters)
        channels = layer.filters
    table[CLASSIFIER_LAYER] = [("kernel", (EMBEDDING_SIZE, NUM_CLASSES)), ("bias", (NUM_CLASSES,))]
    return table


def patch_flops() -> int:
    """Floating-point operations (2 per multiply-add) of the network on one 96×64 patch.

    Counts the convolutions, depthwise convolutions and the classifier; batch norm, ReLU and pooling
    (a few per activation) are left out, as is usual for a FLOP limit.
    """
    h, w, channels = PATCH_FRAMES, MEL_BANDS, 1
    macs = 0
    for layer in LAYERS:
        h, w = -(-h // layer.stride), -(-w // layer.stride)
        k2 = layer.kernel * layer.kernel
        if layer.kind == "conv":
            macs += h * w * k2 * channels * layer.filters
        else:
            macs += h * w * k2 * channels + h * w * channels * layer.filters
        channels = layer.filters
    macs += EMBEDDING_SIZE * NUM_CLASSES
    return 2 * macs
