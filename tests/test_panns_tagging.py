"""Sliding-window PANNs tagging (SPEC §8.1) and ``audiotagger parse`` (SPEC §8.2)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from audiotagger.cli import main
from audiotagger.errors import ParameterError
from audiotagger.panns import params
from audiotagger.panns.tagging import PannsTagger, iter_windows, window_samples
from tests.panns_fixtures import panns_state_dict, write_pth

SR = params.SAMPLE_RATE


# --- windowing ------------------------------------------------------------------------------------

@pytest.mark.parametrize("n,window,hop", [(100, 30, 10), (101, 30, 10), (95, 7, 20), (5, 30, 10),
                                          (30, 30, 30)])
def test_windows_follow_paddleaudio(n, window, hop, rng):
    x = rng.standard_normal(n).astype(np.float32)
    got = list(iter_windows([x], window, hop))
    assert [s for s, _ in got] == list(range(0, n, hop))
    assert len(got) == math.ceil(n / hop)
    for start, w in got:
        expected = np.zeros(window, np.float32)
        piece = x[start:start + window]
        expected[:piece.size] = piece  # zero-padded at the end
        np.testing.assert_array_equal(w, expected)
    for _ in range(3):  # any chunking gives the same windows
        cuts = np.sort(rng.integers(0, n, size=4))
        chunked = list(iter_windows(np.split(x, cuts), window, hop))
        assert [s for s, _ in chunked] == [s for s, _ in got]
        for (_, a), (_, b) in zip(chunked, got, strict=True):
            np.testing.assert_array_equal(a, b)
    assert list(iter_windows([np.zeros(0, np.float32)], window, hop)) == []


def test_windows_stream_lazily():
    pulled = []

    def chunks():
        for i in range(1000):
            pulled.append(i)
            yield np.full(100, i, np.float32)

    windows = iter_windows(chunks(), 250, 100)
    start, first = next(windows)
    assert start == 0 and len(pulled) == 3  # only what the first window needs was read
    assert next(windows)[0] == 100 and len(pulled) == 4
    assert sum(1 for _ in windows) == 998


def test_registry_names():
    from audiotagger import hub

    for name in params.MODEL_NAMES:
        assert hub.REGISTRY[name].filename.endswith(".pth")


def test_window_samples():
    assert window_samples(2.0, 0.3) == (64000, 9600)
    for bad in ((0, 0.3), (2.0, -1), (2.0, float("nan")), (True, 0.3)):
        with pytest.raises(ParameterError, match="duration"):
            window_samples(*bad)


# --- the tagger -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def cnn6_tagger(tmp_path_factory):
    folder = tmp_path_factory.mktemp("panns")
    path = write_pth(folder / "Cnn6_mAP=0.343.pth", {"model": panns_state_dict("cnn6", 11)})
    return PannsTagger(path, model_dir=tmp_path_factory.mktemp("cache"), batch_size=4)


@pytest.fixture(scope="module")
def signal():
    rng = np.random.default_rng(3)
    t = np.arange(int(1.45 * SR)) / SR
    x = 0.2 * np.sin(2 * np.pi * 600 * t) * (t > 0.5) + 0.05 * rng.standard_normal(t.size)
    return x.astype(np.float32)


def test_tag_waveform_scores_each_padded_window(cnn6_tagger, signal):
    res = cnn6_tagger.tag_waveform(signal, SR, sample_duration=0.6, hop_duration=0.3)
    times, scores, duration = res
    assert cnn6_tagger.name == "panns-cnn6"
    assert duration == pytest.approx(1.45)
    np.testing.assert_allclose(times, [0.0, 0.3, 0.6, 0.9, 1.2])
    np.testing.assert_allclose(res.fractions, times / 1.45)
    assert scores.shape == (5, 527) and scores.dtype == np.float32
    window = int(0.6 * SR)
    manual = np.zeros((5, window), np.float32)
    for i, start in enumerate(range(0, signal.size, int(0.3 * SR))):
        piece = signal[start:start + window]
        manual[i, :piece.size] = piece
    np.testing.assert_allclose(scores, cnn6_tagger.score_windows(manual), atol=1e-6)
    assert np.ptp(scores, axis=0).max() > 1e-3  # windows differ


def test_streamed_chunks_and_batches_give_the_same_scores(cnn6_tagger, signal):
    whole = cnn6_tagger.tag_waveform(signal, SR, sample_duration=0.6, hop_duration=0.3)
    chunks = np.split(signal, [1000, 1001, 20000, 31000])
    streamed = cnn6_tagger.tag_chunks(chunks, sample_duration=0.6, hop_duration=0.3)
    np.testing.assert_array_equal(streamed.times, whole.times)
    np.testing.assert_allclose(streamed.scores, whole.scores, atol=1e-5)
    assert streamed.duration == whole.duration


def test_tag_file_decodes_at_32k(cnn6_tagger, signal, tmp_path):
    import soundfile as sf

    from audiotagger.audio import resample

    wav = tmp_path / "tone.wav"
    sf.write(wav, signal, SR, subtype="FLOAT")
    res = cnn6_tagger.tag_file(wav, sample_duration=0.6, hop_duration=0.3)
    ref = cnn6_tagger.tag_waveform(signal, SR, sample_duration=0.6, hop_duration=0.3)
    np.testing.assert_array_equal(res.times, ref.times)
    np.testing.assert_allclose(res.scores, ref.scores, atol=1e-5)
    wav16 = tmp_path / "tone16.wav"
    sf.write(wav16, resample(signal, SR, 16000), 16000, subtype="PCM_16")
    res16 = cnn6_tagger.tag_file(wav16, sample_duration=0.6, hop_duration=0.3)
    assert res16.duration == pytest.approx(1.45, abs=1e-3) and res16.scores.shape == (5, 527)


def test_real_recording_window_count(cnn6_tagger):
    from tests.conftest import shared_file

    wav = shared_file("audio", "R9_ZSCveAHg_7s.wav")  # 7 s at 32 kHz
    res = cnn6_tagger.tag_file(wav, sample_duration=2.0, hop_duration=0.3)
    assert res.duration == pytest.approx(7.0, abs=1e-3)
    assert res.scores.shape == (math.ceil(7.0 / 0.3), 527)  # 24 windows, the last ones zero-padded
    assert np.isfinite(res.scores).all() and ((res.scores >= 0) & (res.scores <= 1)).all()


def test_too_short_windows_and_bad_batch(cnn6_tagger, signal):
    with pytest.raises(ParameterError, match="too short for panns-cnn6"):
        cnn6_tagger.tag_waveform(signal, SR, sample_duration=0.1, hop_duration=0.1)
    with pytest.raises(ParameterError, match="--batch-size"):
        PannsTagger("panns-cnn6", batch_size=0)


# --- audiotagger parse ------------------------------------------------------------------------------

def _paddle_reference(scores, times, names, top_k, smooth_size=None):
    """PaddleAudio parse_result.py, re-stated: in-place smoothing from the last step down, then blocks."""
    s = scores.copy()
    if smooth_size:
        for i in range(len(s) - 1, -1, -1):
            left = 0 if i < smooth_size - 1 else i + 1 - smooth_size
            s[i] = np.sum(s[left:i + 1], axis=0) / (i + 1 - left)
    lines = []
    for t, row in zip(times, s, strict=True):
        lines.append(f"{t}")
        for c in np.argsort(-row, kind="stable")[:top_k]:
            lines.append(f"{names[c]}: {row[c]}")
        lines.append("")
    return lines


def test_parse_paddleaudio_npz(tmp_path, rng):
    from audiotagger.labels import load_labels

    scores = rng.random((7, 527)).astype(np.float32)
    time = np.arange(0, 1, 0.25)[:4]
    times = np.arange(7) * 0.25
    np.savez(tmp_path / "audioset_tagging_sr_32000.npz", time=times, scores=scores)
    out = tmp_path / "out"
    assert main(["parse", str(tmp_path / "audioset_tagging_sr_32000.npz"), "--top-k", "3", "--smooth",
                 "--smooth-size", "3", "-o", str(out), "-q"]) == 0
    text = (out / "audioset_tagging_sr_32000.txt").read_text(encoding="utf-8")
    ref = _paddle_reference(scores, times, load_labels().names, 3, smooth_size=3)
    got = text.split("\n")
    assert len(got) == len(ref) + 1 and got[-1] == ""
    for g, r in zip(got, ref, strict=False):
        if ": " in r:
            name, value = r.rsplit(": ", 1)
            assert g.startswith(name + ": ")
            assert float(g.rsplit(": ", 1)[1]) == pytest.approx(float(value), rel=1e-6)
        else:
            assert g == r
    assert time.size == 4
    # unsmoothed old-style flag spelling, and skipping an existing output
    assert main(["parse", str(tmp_path / "audioset_tagging_sr_32000.npz"), "--smooth", "False",
                 "-o", str(out), "-q"]) == 0
    assert (out / "audioset_tagging_sr_32000.txt").read_text(encoding="utf-8") == text


def test_parse_bad_inputs_are_isolated(tmp_path, capsys):
    good = tmp_path / "good.npz"
    np.savez(good, time=np.array([0.0]), scores=np.full((1, 527), 0.5, np.float32))
    bad = tmp_path / "bad.npz"
    np.savez(bad, time=np.array([0.0, 0.5]), scores=np.zeros((2, 10), np.float32))
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"garbage")
    code = main(["parse", str(bad), str(junk), str(good), "-o", str(tmp_path / "o"), "-q"])
    err = capsys.readouterr().err
    assert code == 1
    assert "bad.npz: scores (2, 10) and 2 time steps" in err
    assert "junk.npz: cannot read scores" in err
    assert (tmp_path / "o" / "good.txt").read_text(encoding="utf-8").startswith("0.0\n")
    assert not (tmp_path / "o" / "bad.txt").exists()
