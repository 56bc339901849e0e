"""Log-mel examples against SPEC §1.2/§2.3–2.6 and an independent float64 re-derivation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from audiotagger.errors import AudioError, AudioTaggerWarning, ParameterError
from audiotagger.vggish import params as P
from audiotagger.vggish.features import (
    ExampleStream,
    SecondSplicer,
    example_times,
    framing_hop,
    hertz_to_mel,
    log_mel_frames,
    num_examples,
    periodic_hann,
    spectrogram_to_mel_matrix,
    waveform_to_examples,
)


def smoke_sine(seconds: float = 3.0) -> np.ndarray:
    t = np.arange(0, seconds, 1 / 16000)
    return np.sin(2 * np.pi * 1000 * t)


# --- an independent float64 implementation, written from the formulas with loops ------------------

def ref_mel_matrix() -> np.ndarray:
    def mel(f):
        return 1127.0 * math.log(1.0 + f / 700.0)

    lo, hi = mel(125.0), mel(7500.0)
    edges = [lo + (hi - lo) * i / 65 for i in range(66)]
    w = np.zeros((257, 64))
    for k in range(1, 257):  # DC row stays zero
        m = mel(8000.0 * k / 256)
        for b in range(64):
            left, centre, right = edges[b], edges[b + 1], edges[b + 2]
            w[k, b] = max(0.0, min((m - left) / (centre - left), (right - m) / (right - centre)))
    return w


def ref_examples(x: np.ndarray, hop_frames: int) -> np.ndarray:
    x = np.asarray(x, np.float64)
    n_frames = 1 + (len(x) - 400) // 160
    window = np.array([0.5 - 0.5 * math.cos(2 * math.pi * n / 400) for n in range(400)])
    frames = np.stack([x[i * 160:i * 160 + 400] * window for i in range(n_frames)])
    mag = np.abs(np.fft.rfft(frames, 512))
    logmel = np.log(mag @ ref_mel_matrix() + 0.01)
    n_ex = 1 + (n_frames - 96) // hop_frames
    return np.stack([logmel[k * hop_frames:k * hop_frames + 96] for k in range(n_ex)])


# --- acceptance -----------------------------------------------------------------------------------

def test_smoke_sine_acceptance_numbers():
    ex = waveform_to_examples(smoke_sine(), 16000, hop=0.96)
    assert ex.shape == (3, 96, 64) and ex.dtype == np.float32
    assert ex.mean() == pytest.approx(-3.4296, abs=1e-4)
    assert ex.std() == pytest.approx(2.1266, abs=1e-4)
    assert ex.min() == pytest.approx(-4.6012, abs=1e-4)
    assert ex.max() == pytest.approx(4.8111, abs=1e-4)
    assert int(np.argmax(ex.mean(axis=(0, 1)))) == 19


@pytest.mark.parametrize("hop, hop_frames", [(0.96, 96), (1.0, 100)])
def test_matches_independent_float64_reference(rng, hop, hop_frames):
    x = np.concatenate([smoke_sine(2.0), 0.3 * rng.standard_normal(16000 * 3 + 777), np.zeros(8000)])
    ours = waveform_to_examples(x, 16000, hop=hop)
    ref = ref_examples(x, hop_frames)
    assert ours.shape == ref.shape
    np.testing.assert_allclose(ours, ref, atol=1e-4, rtol=0)  # float32 arithmetic vs float64


def test_mel_matrix_properties_and_formula():
    w = spectrogram_to_mel_matrix()
    assert w.shape == (257, 64)
    np.testing.assert_allclose(w, ref_mel_matrix(), atol=1e-12)
    assert (w[0] == 0).all() and w.min() >= 0 and w.max() <= 1
    assert hertz_to_mel(125.0) == pytest.approx(185.17, abs=0.01)
    assert hertz_to_mel(7500.0) == pytest.approx(2773.33, abs=0.01)
    with pytest.raises(ParameterError):
        spectrogram_to_mel_matrix(upper_edge_hertz=9000)
    with pytest.raises(ParameterError):
        spectrogram_to_mel_matrix(lower_edge_hertz=-1)


def test_periodic_hann():
    np.testing.assert_allclose(periodic_hann(400), np.hanning(401)[:-1], atol=1e-12)


def test_silence_is_log_offset():
    ex = waveform_to_examples(np.zeros(32000), 16000)
    np.testing.assert_allclose(ex, np.log(0.01), atol=1e-6)


# --- framing and lengths --------------------------------------------------------------------------

@pytest.mark.parametrize("seconds, n_100, n_96", [(0.975, 1, 1), (1.0, 1, 1), (2.0, 2, 2), (3.0, 3, 3),
                                                  (10.0, 10, 10), (60.0, 60, 62)])
def test_example_counts(seconds, n_100, n_96):
    n = int(round(seconds * 16000))
    assert num_examples(n, 1.0) == n_100
    assert num_examples(n, 0.96) == n_96
    frames = 1 + (n - 400) // 160
    assert n_96 == 1 + (frames - 96) // 96  # the official rule


def test_n_seconds_give_n_examples_on_whole_seconds():
    ex_stream = ExampleStream(1.0)
    ex_stream.push(np.zeros(16000 * 7))
    assert ex_stream.num_examples == 7
    np.testing.assert_array_equal(example_times(7, 1.0), np.arange(7.0))
    np.testing.assert_allclose(example_times(3, 0.96), [0.0, 0.96, 1.92], rtol=0, atol=0)


def test_short_input_is_padded_to_one_example_with_a_warning():
    x = 0.1 * smoke_sine(0.5)
    with pytest.warns(AudioTaggerWarning, match="shorter than one VGGish example"):
        ex = waveform_to_examples(x, 16000)
    assert ex.shape == (1, 96, 64)
    padded = np.zeros(P.EXAMPLE_SAMPLES)
    padded[:len(x)] = x
    np.testing.assert_allclose(ex[0], ref_examples(padded, 100)[0], atol=1e-4)


def test_empty_input_gives_no_examples_and_no_warning(recwarn):
    assert waveform_to_examples(np.zeros(0), 16000).shape == (0, 96, 64)
    assert not [w for w in recwarn if issubclass(w.category, AudioTaggerWarning)]


@pytest.mark.parametrize("hop", [1.0, 0.96])
def test_streaming_in_any_chunks_equals_whole(rng, hop):
    x = (0.2 * rng.standard_normal(16000 * 9 + 1234)).astype(np.float32)
    whole = waveform_to_examples(x, 16000, hop=hop)
    stream = ExampleStream(hop)
    parts, pos = [], 0
    for size in rng.integers(1, 40000, size=100):
        parts.append(stream.push(x[pos:pos + size]))
        pos += size
        if pos >= len(x):
            break
    parts.append(stream.finish())
    np.testing.assert_array_equal(np.concatenate(parts), whole)
    assert stream.num_samples == len(x)


def test_stereo_is_averaged_and_other_rates_resampled():
    x = smoke_sine(2.0)
    stereo = np.stack([x, np.zeros_like(x)], axis=1)
    np.testing.assert_array_equal(waveform_to_examples(stereo, 16000), waveform_to_examples(0.5 * x, 16000))
    t = np.arange(0, 2.0, 1 / 44100)
    at44 = waveform_to_examples(np.sin(2 * np.pi * 1000 * t), 44100)
    assert at44.shape == (2, 96, 64)
    np.testing.assert_allclose(at44, waveform_to_examples(x, 16000), atol=0.05)


def test_bad_inputs():
    with pytest.raises(ParameterError, match="hop"):
        waveform_to_examples(np.zeros(16000), 16000, hop=0.005)
    with pytest.raises(ParameterError, match="hop"):
        ExampleStream(0.555)
    bad = np.zeros(16000)
    bad[5] = np.nan
    with pytest.raises(AudioError, match="non-finite"):
        waveform_to_examples(bad, 16000)
    assert log_mel_frames(np.zeros(399)).shape == (0, 64)


# --- --compat-truncate: the old AudioTagger's truncateAudioFs (SPEC §2.7) ---------------------------

def old_truncate(data: np.ndarray, fs: int) -> np.ndarray:
    """SPEC §2.7's rule on a (samples,) or (samples, channels) array: every second followed by more
    audio cut to its first int(fs * 0.96) samples, the rest (the last <= 1 s) kept whole."""
    pieces, i = [], 0
    while (i + 1) * fs < len(data):
        pieces.append(data[i * fs:i * fs + int(fs * 0.96)])
        i += 1
    pieces.append(data[i * fs:])
    return np.concatenate(pieces)


@pytest.mark.parametrize("fs", [16000, 44100, 22050, 11025, 48000])
@pytest.mark.parametrize("seconds", [0.3, 1.0, 1.00005, 3.0, 3.5, 7.99])
def test_second_splicer_is_truncate_audio_fs_in_any_chunks(rng, fs, seconds):
    x = rng.standard_normal((int(round(seconds * fs)), 2)).astype(np.float32)
    want = old_truncate(x, fs).mean(axis=1)                    # the old tool cut both channels
    whole = SecondSplicer()
    np.testing.assert_allclose(whole(x.mean(axis=1), fs, last=True), want, rtol=1e-6)
    assert whole.num_samples == len(x) and whole.rate == fs
    streamed, pos, parts = SecondSplicer(), 0, []
    for size in rng.integers(0, fs // 2, size=200):
        chunk = x[pos:pos + size].mean(axis=1)
        pos += size
        parts.append(streamed(chunk, fs, last=pos >= len(x)))
        if pos >= len(x):
            break
    np.testing.assert_array_equal(np.concatenate(parts), SecondSplicer()(x.mean(axis=1), fs, last=True))
    assert streamed.num_samples == len(x)


@pytest.mark.parametrize(("seconds", "n"), [(1, 1), (1.5, 1), (2, 2), (5, 5), (5.02, 5), (5.5, 5), (10, 10)])
def test_compat_framing_gives_one_example_per_whole_second(seconds, n):
    x = smoke_sine(seconds) * np.linspace(0.1, 1, int(round(seconds * 16000)))   # no two seconds alike
    spliced = SecondSplicer()(x.astype(np.float32), 16000, last=True)
    examples = waveform_to_examples(spliced, 16000, hop=framing_hop(1.0, compat_truncate=True))
    assert examples.shape == (n, 96, 64)
    x32 = x.astype(np.float32)
    if seconds > 1:   # example 0: the first 94 frames lie in the kept 0.96 s of second 0
        np.testing.assert_array_equal(examples[0, :94], log_mel_frames(x32[:15360]))
    if seconds == int(seconds):   # the last second is kept whole: the last example is exactly it
        start = (n - 1) * 16000
        np.testing.assert_array_equal(examples[-1], log_mel_frames(x32[start:start + 15600]))


def test_compat_framing_needs_the_default_hop():
    assert framing_hop(1.0) == 1.0 and framing_hop(0.96) == 0.96
    assert framing_hop(1.0, compat_truncate=True) == 0.96
    with pytest.raises(ParameterError, match="--compat-truncate"):
        framing_hop(0.96, compat_truncate=True)
    with pytest.raises(ParameterError, match="hop"):
        framing_hop(0.005)
