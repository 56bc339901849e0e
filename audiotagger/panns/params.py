"""PANNs constants (Kong et al. 2020, ``qiuqiangkong/audioset_tagging_cnn``; SPEC §7, §8).

The front-end values are those every official CNN6/CNN10/CNN14 checkpoint was trained with; change
them only together with a checkpoint trained on other features.
"""

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

ARCHITECTURES = ("cnn14", "cnn10", "cnn6")
"""Networks implemented in :mod:`audiotagger.panns.models`."""

MODEL_NAMES = {"panns-cnn14": "cnn14", "panns-cnn10": "cnn10", "panns-cnn6": "cnn6"}
"""Registry name (:mod:`audiotagger.hub`) → architecture."""

PARAM_COUNTS = {"cnn14": 80_753_615, "cnn10": 5_219_279, "cnn6": 4_837_455}
"""Trainable parameters of each network (SPEC §1.4)."""

PUBLISHED_MULTIPLY_ADDS = {"cnn14": 42.22e9, "cnn10": 28.17e9, "cnn6": 21.99e9}
"""Multiply-adds per 10-second clip published with the models (``utils/plot_for_paper.py``)."""

EMBEDDING_SIZES = {"cnn14": 2048, "cnn10": 512, "cnn6": 512}
"""Width of the ``embedding`` output (``fc1``)."""

DEFAULT_SAMPLE_DURATION = 2.0
"""Seconds of audio per scored window (PaddleAudio ``audio_tag.py`` ``--sample_duration``)."""
DEFAULT_HOP_DURATION = 0.3
"""Seconds between window starts (``--hop_duration``)."""
DEFAULT_TOP_K = 10
"""Classes per block of the top-k text (``parse_result.py`` ``--top_k``)."""
DEFAULT_SMOOTH_SIZE = 5
"""Windows averaged by the causal posterior smoothing (``--smooth_size``)."""
DEFAULT_BATCH_SIZE = 8
"""Windows per network call (PaddleAudio scores batches of 8)."""
