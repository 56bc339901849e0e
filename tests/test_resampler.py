"""``--resampler resampy`` reproduces Google's VGGish examples (``vggish_input.wavfile_to_examples``) at
other rates: int16 samples / 32768, channel mean, ``resampy.resample(x, sr, 16000)`` (kaiser_best) on the
whole signal, then the log-mel of the official code (re-derived independently in test_vggish_features)."""

import numpy as np
import pytest
import soundfile as sf

from audiotagger.audio import check_resampler, stream_audio
from audiotagger.errors import ParameterError
from audiotagger.vggish.features import waveform_to_examples
from tests.test_vggish_features import ref_examples

resampy = pytest.importorskip("resampy", reason="resampy is the optional resampler (pip install resampy)")


def official_examples(path):
    """Google's ``wavfile_to_examples`` with the log-mel written from the formulas (float64 throughout)."""
    data, sr = sf.read(path, dtype="int16")
    samples = data / 32768.0
    if samples.ndim > 1:
        samples = np.mean(samples, axis=1)
    if sr != 16000:
        samples = resampy.resample(samples, sr, 16000)
    return ref_examples(samples, 96)                      # hop 0.96 s = 96 frames


def write(path, sr, channels, seconds=4.3):
    rng = np.random.default_rng(sr)
    t = np.arange(int(seconds * sr)) / sr
    x = 0.4 * np.sin(2 * np.pi * (250 + 900 * t) * t) + 0.05 * rng.standard_normal(len(t))
    x = np.stack([x, np.roll(x, 37) * 0.7], axis=1)[:, :channels]
    sf.write(path, x, sr, subtype="PCM_16")
    return path


@pytest.mark.parametrize(("sr", "channels"), [(44100, 2), (32000, 1)])
def test_resampy_reproduces_official_examples(tmp_path, sr, channels):
    path = write(tmp_path / f"in{sr}.wav", sr, channels)
    want = official_examples(path)
    # the file path: ffmpeg decoding, then resampy on the whole native-rate signal
    decoded = np.concatenate(list(stream_audio(path, 16000, resampler="resampy", chunk_seconds=1.0)))
    got = waveform_to_examples(decoded, 16000, hop=0.96)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    # the waveform path
    x, _ = sf.read(path, dtype="int16", always_2d=True)
    np.testing.assert_allclose(waveform_to_examples(x / 32768.0, sr, hop=0.96, resampler="resampy"), want,
                               rtol=1e-5, atol=1e-5)
    # soxr (the default) differs by the resampler, as documented
    soxr = waveform_to_examples(np.concatenate(list(stream_audio(path, 16000))), 16000, hop=0.96)
    assert np.abs(soxr - want).max() > 1e-3


def test_resampler_names():
    assert check_resampler(None) == "soxr" and check_resampler("resampy") == "resampy"
    with pytest.raises(ParameterError, match="--resampler"):
        check_resampler("sinc")


def test_cli_resampler_usage_errors(tmp_path, capsys):
    from audiotagger.cli import main

    path = write(tmp_path / "a.wav", 32000, 1, 1.0)
    with pytest.raises(SystemExit) as exc:
        main(["tag", str(path), "--model", "panns-cnn6", "--resampler", "resampy"])
    assert exc.value.code == 2 and "only for the VGGish backend" in capsys.readouterr().err
