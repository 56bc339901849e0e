"""Decoding with the bundled static ffmpeg: formats, channels, resampling, streaming, bad input."""

from __future__ import annotations

import subprocess
import time
import warnings

import numpy as np
import pytest
import soundfile as sf

from audiotagger.audio import ffmpeg_exe, load_audio, resample, stream_audio, to_mono
from audiotagger.errors import AudioError, AudioTaggerWarning, ParameterError
from tests.conftest import shared_file

SR = 44100
SECONDS = 2.0


def _stereo(sr: int = SR, seconds: float = SECONDS) -> np.ndarray:
    t = np.arange(int(sr * seconds)) / sr
    return np.stack([0.5 * np.sin(2 * np.pi * 440 * t), 0.25 * np.sin(2 * np.pi * 1000 * t)], axis=1)


def _ffmpeg(*args: str) -> None:
    subprocess.run([ffmpeg_exe(), "-nostdin", "-v", "error", "-y", *args], check=True)


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    """One stereo 44.1 kHz signal in every format the issue names, made with the same ffmpeg."""
    d = tmp_path_factory.mktemp("media")
    x = _stereo()
    for sub in ("PCM_16", "PCM_24", "PCM_32", "FLOAT"):
        sf.write(d / f"s_{sub}.wav", x, SR, subtype=sub)
    src = str(d / "s_PCM_16.wav")
    for name, codec in [("s.flac", []), ("s.ogg", ["-c:a", "libvorbis"]), ("s.opus", ["-c:a", "libopus"]),
                        ("s.mp3", ["-c:a", "libmp3lame"]), ("s.m4a", ["-c:a", "aac"])]:
        _ffmpeg("-i", src, *codec, str(d / name))
    video = ["-f", "lavfi", "-i", "testsrc=s=32x32:r=5:d=2"]
    for name, codecs in [("v.mp4", ["-c:v", "libx264", "-c:a", "aac"]),
                         ("v.mkv", ["-c:v", "libx264", "-c:a", "flac"]),
                         ("v.webm", ["-c:v", "libvpx", "-c:a", "libopus"]),
                         ("v.mov", ["-c:v", "libx264", "-c:a", "pcm_s16le"])]:
        _ffmpeg(*video, "-i", src, "-map", "0:v", "-map", "1:a", *codecs, "-shortest", str(d / name))
    _ffmpeg(*video, "-c:v", "libx264", str(d / "silent_video.mp4"))
    return d


@pytest.mark.parametrize("subtype", ["PCM_16", "PCM_24", "PCM_32", "FLOAT"])
def test_wav_sample_formats_decode_exactly_at_native_rate(media, subtype):
    x = load_audio(media / f"s_{subtype}.wav", sr=SR)
    ref, _ = sf.read(media / f"s_{subtype}.wav", dtype="float64")
    assert x.dtype == np.float32 and x.shape == (len(ref),)
    np.testing.assert_allclose(x, ref.mean(axis=1), atol=2e-7)


def test_lossless_16k_path_is_bit_exact_int16_over_32768(tmp_path):
    rng = np.random.default_rng(0)
    pcm = rng.integers(-32768, 32767, size=(16000, 2), dtype=np.int16)
    sf.write(tmp_path / "a.wav", pcm, 16000, subtype="PCM_16")
    x = load_audio(tmp_path / "a.wav")
    expected = (pcm.astype(np.float32) / 32768.0).mean(axis=1, dtype=np.float32)
    np.testing.assert_array_equal(x, expected)


@pytest.mark.parametrize("name", ["s.flac", "s.ogg", "s.opus", "s.mp3", "s.m4a",
                                  "v.mp4", "v.mkv", "v.webm", "v.mov"])
def test_every_container_and_codec_decodes_to_the_signal(media, name):
    x = load_audio(media / name)
    assert x.dtype == np.float32 and x.ndim == 1
    assert abs(len(x) / 16000 - SECONDS) < 0.06, len(x)
    # the mean of the channels: 0.25 sin(440) + 0.125 sin(1000) -> rms 0.198; both tones present
    mid = x[2000:-2000]
    assert np.sqrt(np.mean(mid ** 2)) == pytest.approx(np.sqrt(0.25 ** 2 / 2 + 0.125 ** 2 / 2), rel=0.1)
    spec = np.abs(np.fft.rfft(mid * np.hanning(len(mid))))
    freqs = np.fft.rfftfreq(len(mid), 1 / 16000)
    top2 = sorted(freqs[np.argsort(spec)[-40:]])
    assert any(abs(f - 440) < 5 for f in top2) and any(abs(f - 1000) < 5 for f in top2)


def test_lossless_formats_agree_with_wav_after_resampling(media):
    ref = load_audio(media / "s_PCM_16.wav")
    for name in ("s.flac", "v.mkv", "v.mov"):
        np.testing.assert_allclose(load_audio(media / name), ref, atol=1e-6, err_msg=name)


def test_resampling_44k_to_16k_is_accurate_and_band_limited():
    t = np.arange(SR * 2) / SR
    for f in (1000.0, 7000.0):
        y = resample(np.sin(2 * np.pi * f * t), SR, 16000)
        assert len(y) == 32000
        ref = np.sin(2 * np.pi * f * np.arange(32000) / 16000)
        assert np.max(np.abs(y - ref)[500:-500]) < 2e-3, f
    alias = resample(np.sin(2 * np.pi * 9000 * t), SR, 16000)  # above the new Nyquist: removed
    assert np.sqrt(np.mean(alias[500:-500] ** 2)) < 1e-3


def test_streamed_chunks_equal_the_whole_decode(media):
    whole = load_audio(media / "s_PCM_24.wav")
    chunks = list(stream_audio(media / "s_PCM_24.wav", chunk_seconds=0.123))
    assert len(chunks) > 10
    np.testing.assert_allclose(np.concatenate(chunks), whole, atol=1e-6)


def test_to_mono_averages_columns_and_rejects_integers():
    x = np.array([[1.0, 0.0], [0.5, 0.5]])
    np.testing.assert_array_equal(to_mono(x, channels_axis=1), [0.5, 0.5])
    np.testing.assert_array_equal(to_mono(x, channels_axis=0), [0.75, 0.25])
    with pytest.raises(ParameterError, match="cannot tell samples from channels"):
        to_mono(x)                                           # (2, 2): ambiguous, refused
    stereo = np.stack([np.linspace(-1, 1, 100), np.zeros(100)]).astype(np.float32)   # (2, 100)
    np.testing.assert_allclose(to_mono(stereo), to_mono(stereo.T), atol=0)          # both layouts
    np.testing.assert_allclose(to_mono(stereo), stereo[0] / 2, atol=1e-7)
    with pytest.raises(ParameterError, match="dtype int16"):
        to_mono(np.zeros(10, np.int16))
    with pytest.raises(ParameterError, match="shape"):
        to_mono(np.zeros((2, 2, 2)))


# --- bad input ------------------------------------------------------------------------------------

def _error(path) -> str:
    with pytest.raises(AudioError) as info:
        load_audio(path)
    msg = str(info.value)
    assert "\n" not in msg and msg.startswith(str(path))
    return msg


def test_missing_directory_and_empty_files(tmp_path):
    assert "no such file" in _error(tmp_path / "nope.wav")
    assert "directory" in _error(tmp_path)
    (tmp_path / "empty.mp3").write_bytes(b"")
    assert "empty file" in _error(tmp_path / "empty.mp3")


def test_non_media_and_truncated_files(tmp_path, media):
    (tmp_path / "notes.wav").write_text("this is not audio\n" * 100)
    assert "not a media file" in _error(tmp_path / "notes.wav")
    data = (media / "v.mp4").read_bytes()
    (tmp_path / "cut.mp4").write_bytes(data[: len(data) // 2])
    assert "truncated or corrupt" in _error(tmp_path / "cut.mp4")
    wav = (media / "s_PCM_16.wav").read_bytes()
    (tmp_path / "cut.wav").write_bytes(wav[: len(wav) // 2 + 1])  # ends inside a sample frame
    with pytest.warns(AudioTaggerWarning, match="damaged media: decoded"):   # keeps what decodes (issue 13)
        assert len(load_audio(tmp_path / "cut.wav")) > 0
    with pytest.raises(AudioError, match="damaged media.*--strict"):
        list(stream_audio(tmp_path / "cut.wav", strict=True))


def test_video_without_audio_stream(media):
    assert "no audio stream" in _error(media / "silent_video.mp4")


def test_zero_length_audio_stream(tmp_path):
    sf.write(tmp_path / "zero.wav", np.zeros((0, 1)), 16000)
    assert "no audio samples" in _error(tmp_path / "zero.wav")


def test_non_finite_samples(tmp_path):
    x = np.zeros(48000, np.float32)
    x[20000] = np.nan
    x[30000] = np.inf
    sf.write(tmp_path / "nan.wav", x, 16000, subtype="FLOAT")
    msg = _error(tmp_path / "nan.wav")
    assert "2 non-finite samples" in msg and "1.250 s" in msg


def test_bad_rate_is_a_usage_error(media):
    with pytest.raises(ParameterError):
        load_audio(media / "s.flac", sr=0)


# --- real recordings ------------------------------------------------------------------------------

@pytest.mark.parametrize("name, seconds", [("audio/jfk.flac", 11.0), ("audio/metro_station-paris.wav", 10.0),
                                           ("audio/R9_ZSCveAHg_7s.mp3", 7.0),
                                           ("video/big_buck_bunny_60s.mp4", 60.1)])
def test_real_recordings(name, seconds):
    path = shared_file(*name.split("/"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        x = load_audio(path)
    assert abs(len(x) / 16000 - seconds) < 0.1
    assert np.isfinite(x).all() and 0.001 < np.sqrt(np.mean(x ** 2)) < 1.0 and np.abs(x).max() <= 1.0


def test_24bit_real_wav_matches_soundfile():
    path = shared_file("audio", "metro_station-paris.wav")
    ref, sr = sf.read(path, dtype="float64")
    np.testing.assert_allclose(load_audio(path, sr=sr), ref.mean(axis=1) if ref.ndim == 2 else ref,
                               atol=1e-7)


def test_many_channels_are_averaged(tmp_path, rng):
    x = rng.uniform(-0.5, 0.5, (16000, 6)).astype(np.float32)  # 5.1: WAVE_FORMAT_EXTENSIBLE from ffmpeg
    sf.write(tmp_path / "six.wav", x, 16000, subtype="FLOAT")
    np.testing.assert_allclose(load_audio(tmp_path / "six.wav"), x.mean(axis=1), atol=1e-7)


def test_stopping_early_ends_the_decoder(media):
    import threading

    before = threading.active_count()
    stream = stream_audio(media / "v.mkv", chunk_seconds=0.1)
    first = next(stream)
    stream.close()  # kills ffmpeg and the read-ahead thread
    assert len(first) > 0
    for _ in range(500):  # up to 10 s on a loaded machine; normally the first check
        if threading.active_count() <= before:
            break
        time.sleep(0.02)
    assert threading.active_count() <= before
