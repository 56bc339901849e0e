"""YAMNet's log-mel front end in numpy (``features.py`` of the official YAMNet, SPEC-equivalent).

waveform (16 kHz) → frames of 400 samples every 160 → periodic Hann window → 512-point real FFT →
magnitude (not power) → 64 HTK-mel bands 125–7500 Hz (triangles on the mel scale, TensorFlow's
``linear_to_mel_weight_matrix``) → ``log(mel + 0.001)`` → patches of 96 frames every 48 frames.

The official model pads the waveform so that every sample is covered (:func:`pad_waveform`); only
complete patches are emitted. The STFT runs in float32 (numpy's pocketfft), as TensorFlow's
``tf.signal.stft`` does; the two agree to float32 rounding.
"""

from __future__ import annotations

import functools

import numpy as np

from . import params

_MEL_BREAK_HZ = 700.0
_MEL_HIGH_Q = 1127.0


def hertz_to_mel(f: np.ndarray | float) -> np.ndarray:
    """HTK mel scale, ``1127 ln(1 + f / 700)`` (the scale of TensorFlow's mel matrix)."""
    return _MEL_HIGH_Q * np.log1p(np.asarray(f, dtype=np.float64) / _MEL_BREAK_HZ)


@functools.lru_cache(maxsize=4)
def mel_matrix(num_bins: int = params.FFT_LENGTH // 2 + 1, sr: int = params.SAMPLE_RATE,
               bands: int = params.MEL_BANDS, fmin: float = params.MEL_MIN_HZ,
               fmax: float = params.MEL_MAX_HZ) -> np.ndarray:
    """Mel weight matrix that maps a magnitude spectrum to mel bands.

    Each band is a triangle on the HTK mel scale between ``bands + 2`` equally spaced mel edges from
    ``fmin`` to ``fmax``; a spectrum bin at ``f`` gets ``max(0, min(rising, falling))``. The DC bin gets
    no weight. This is the matrix ``tf.signal.linear_to_mel_weight_matrix`` builds.

    Returns
    -------
    np.ndarray [shape=(num_bins, bands), dtype=float32]
        The matrix is read-only (it is cached).
    """
    freqs = np.linspace(0.0, sr / 2.0, num_bins)[1:]
    mel = hertz_to_mel(freqs)[:, None]
    edges = np.linspace(hertz_to_mel(fmin), hertz_to_mel(fmax), bands + 2)
    lower, center, upper = edges[:-2], edges[1:-1], edges[2:]
    rising = (mel - lower) / (center - lower)
    falling = (upper - mel) / (upper - center)
    weights = np.maximum(0.0, np.minimum(rising, falling))
    out = np.concatenate([np.zeros((1, bands)), weights]).astype(np.float32)
    out.setflags(write=False)
    return out


@functools.lru_cache(maxsize=1)
def hann_window(n: int = params.WINDOW_SAMPLES) -> np.ndarray:
    """Periodic Hann window of ``n`` samples, ``0.5 - 0.5 cos(2πk/n)`` (float64, read-only)."""
    w = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n) / n)
    w.setflags(write=False)
    return w


def num_padded_samples(n: int) -> int:
    """Length the official ``pad_waveform`` gives an ``n``-sample waveform.

    At least one patch (:data:`~audiotagger.yamnet.params.PATCH_SAMPLES`), then rounded up to a whole
    number of patch hops, so that the last samples are covered by a patch.
    """
    first = params.PATCH_SAMPLES
    n = max(int(n), first)
    hops = -(-(n - first) // params.PATCH_HOP_SAMPLES)
    return first + hops * params.PATCH_HOP_SAMPLES


def pad_waveform(x: np.ndarray) -> np.ndarray:
    """Zero-pad a waveform as the official model does (see :func:`num_padded_samples`).

    Parameters
    ----------
    x : np.ndarray [shape=(n,)]

    Returns
    -------
    np.ndarray [shape=(num_padded_samples(n),), dtype=float32]
    """
    x = np.asarray(x, dtype=np.float32).reshape(-1)
    out = np.zeros(num_padded_samples(x.size), dtype=np.float32)
    out[:x.size] = x
    return out


def log_mel_spectrogram(x: np.ndarray) -> np.ndarray:
    """Log-mel spectrogram of a 16 kHz waveform (no padding: only complete STFT frames).

    Parameters
    ----------
    x : np.ndarray [shape=(n,)]
        16 kHz mono samples.

    Returns
    -------
    np.ndarray [shape=(1 + (n - 400) // 160, 64), dtype=float32]
        ``log(|STFT| @ mel + 0.001)``; zero rows for fewer than 400 samples.
    """
    x = np.asarray(x, dtype=np.float32).reshape(-1)
    if x.size < params.WINDOW_SAMPLES:
        return np.zeros((0, params.MEL_BANDS), np.float32)
    frames = np.lib.stride_tricks.sliding_window_view(x, params.WINDOW_SAMPLES)[::params.HOP_SAMPLES]
    out = np.empty((frames.shape[0], params.MEL_BANDS), np.float32)
    window = hann_window().astype(np.float32)
    step = 4096                                       # bounded memory for long inputs
    for i in range(0, frames.shape[0], step):
        spec = np.abs(np.fft.rfft(frames[i:i + step] * window, n=params.FFT_LENGTH))
        out[i:i + step] = np.log(spec @ mel_matrix() + np.float32(params.LOG_OFFSET))
    return out


def frame_patches(logmel: np.ndarray) -> np.ndarray:
    """Cut a log-mel spectrogram into patches of 96 frames every 48 (complete patches only).

    Parameters
    ----------
    logmel : np.ndarray [shape=(frames, 64)]

    Returns
    -------
    np.ndarray [shape=(n, 96, 64), dtype=float32]
        A strided view; ``n = 1 + (frames - 96) // 48`` (0 when there are fewer than 96 frames).
    """
    logmel = np.asarray(logmel, dtype=np.float32)
    if logmel.shape[0] < params.PATCH_FRAMES:
        return np.zeros((0, params.PATCH_FRAMES, params.MEL_BANDS), np.float32)
    view = np.lib.stride_tricks.sliding_window_view(logmel, params.PATCH_FRAMES, axis=0)
    return view[::params.PATCH_HOP_FRAMES].transpose(0, 2, 1)


def waveform_to_patches(x: np.ndarray, *, pad: bool = True) -> np.ndarray:
    """Log-mel patches of a 16 kHz waveform, the input of the YAMNet network.

    Parameters
    ----------
    x : np.ndarray [shape=(n,)]
        16 kHz mono samples.
    pad : bool
        Pad as the official model does (every sample is in a patch; at least one patch).

    Returns
    -------
    np.ndarray [shape=(patches, 96, 64), dtype=float32]
        Patch ``i`` starts at ``i * 0.48`` s. With ``pad``, ``patches = 1 + ceil(max(0, n - 15600) / 7680)``.
    """
    if pad:
        x = pad_waveform(x)
    return np.ascontiguousarray(frame_patches(log_mel_spectrogram(x)))


def patch_times(n: int) -> np.ndarray:
    """Start of each of ``n`` patches in seconds (``i * 0.48``), float64, shape (n,)."""
    return np.arange(n, dtype=np.float64) * (params.PATCH_HOP_SAMPLES / params.SAMPLE_RATE)
