"""PANNs front end: 32 kHz waveform → log-mel spectrogram, as ``torchlibrosa`` computes it (SPEC §7.1).

Centred STFT (reflect padding of ``WINDOW_SIZE // 2`` at both ends) with a periodic Hann window of
1024 samples every 320 samples, power spectrum, 64 mel bands from :func:`librosa.filters.mel` (Slaney
scale and area normalisation, 50–14000 Hz), then ``10 * log10(max(mel, 1e-10))`` with reference 1 and no
``top_db`` clipping, all in float32 like the original (``scipy.fft`` on every core). The checkpoint's
``bn0`` is part of the network, not of this module.
"""

from __future__ import annotations

import functools

import numpy as np

from ..errors import ParameterError
from . import params


@functools.lru_cache(maxsize=4)
def mel_filters(sample_rate: int = params.SAMPLE_RATE, n_fft: int = params.WINDOW_SIZE,
                n_mels: int = params.MEL_BINS, fmin: float = params.FMIN,
                fmax: float = params.FMAX) -> np.ndarray:
    """Return the mel filter bank PANNs multiplies the power spectrum with.

    Returns
    -------
    np.ndarray [shape=(n_fft // 2 + 1, n_mels), dtype=float32]
        ``librosa.filters.mel(...).T`` (read-only), the layout of a checkpoint's ``logmel_extractor.melW``.
    """
    import librosa

    weights = librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax).T
    weights = np.ascontiguousarray(weights, dtype=np.float32)
    weights.flags.writeable = False
    return weights


@functools.lru_cache(maxsize=4)
def _window(n_fft: int) -> np.ndarray:
    from scipy.signal import get_window

    return get_window("hann", n_fft, fftbins=True).astype(np.float32)


def num_frames(num_samples: int, hop_size: int = params.HOP_SIZE) -> int:
    """Frames of the centred STFT of ``num_samples`` samples: ``1 + num_samples // hop_size``."""
    return 1 + int(num_samples) // int(hop_size)


def logmel(waveform: np.ndarray, *, n_fft: int = params.WINDOW_SIZE, hop_size: int = params.HOP_SIZE,
           sample_rate: int = params.SAMPLE_RATE, n_mels: int = params.MEL_BINS,
           fmin: float = params.FMIN, fmax: float = params.FMAX) -> np.ndarray:
    """Compute PANNs' log-mel spectrogram.

    Parameters
    ----------
    waveform : np.ndarray [shape=(samples,) or (batch, samples)]
        Mono audio at ``sample_rate``, nominally in [-1, 1]. At least ``n_fft // 2 + 1`` samples
        (the reflect padding needs them).
    n_fft, hop_size, sample_rate, n_mels, fmin, fmax
        Front-end settings; the defaults are those of the official checkpoints.

    Returns
    -------
    np.ndarray [shape=(frames, n_mels) or (batch, frames, n_mels), dtype=float32]
        ``frames = 1 + samples // hop_size``; values in dB (silence gives -100).

    Raises
    ------
    ParameterError
        If the waveform is not 1-D/2-D, not finite, or too short for the reflect padding.
    """
    x = np.asarray(waveform)
    if x.ndim not in (1, 2):
        raise ParameterError(f"waveform must be (samples,) or (batch, samples), got shape {x.shape}")
    pad = n_fft // 2
    if x.shape[-1] <= pad:
        raise ParameterError(f"waveform of {x.shape[-1]} samples is too short for the PANNs front end "
                             f"(needs more than {pad})")
    import scipy.fft

    x = x.astype(np.float32, copy=False)
    if not np.isfinite(x).all():
        raise ParameterError("waveform contains NaN or infinite samples")
    widths = [(0, 0)] * (x.ndim - 1) + [(pad, pad)]
    padded = np.pad(x, widths, mode="reflect")
    frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft, axis=-1)[..., ::hop_size, :]
    spectrum = scipy.fft.rfft(frames * _window(n_fft), axis=-1, workers=-1)
    power = spectrum.real ** 2 + spectrum.imag ** 2
    mel = power @ mel_filters(sample_rate, n_fft, n_mels, fmin, fmax)
    db = 10.0 * np.log10(np.maximum(mel, np.float32(params.AMIN)))
    if params.REF != 1.0:
        db -= np.float32(10.0 * np.log10(max(params.AMIN, params.REF)))
    return db.astype(np.float32, copy=False)
