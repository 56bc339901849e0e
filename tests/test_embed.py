"""Embedding files and waveforms: the library API, batching across files, and ``audiotagger embed``."""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pytest
import soundfile as sf

from audiotagger.cli import main
from audiotagger.errors import AudioError, AudioTaggerWarning, ParameterError
from audiotagger.vggish.embed import VGGishEmbedder, embed_file
from audiotagger.vggish.features import waveform_to_examples
from audiotagger.vggish.postprocess import postprocess
from tests.conftest import shared_file


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="module")
def pca_file(tmp_path_factory):
    """PCA parameters of the official shape, scaled to the seeded test network's output range."""
    rng = np.random.default_rng(7)
    q, _ = np.linalg.qr(rng.standard_normal((128, 128)))
    path = tmp_path_factory.mktemp("pca") / "pca.npz"
    np.savez(path, pca_eigen_vectors=q / 8.0, pca_means=rng.normal(0, 1, 128))
    return path


@pytest.fixture(scope="module")
def embedder(vggish_checkpoint, pca_file, model_dir):
    return VGGishEmbedder(vggish_checkpoint, pca_file, model_dir=model_dir)


def assert_close(a, b):
    """Equal up to float32 summation order (oneDNN's convolutions depend on the batch size)."""
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=2e-5 * np.abs(b).max())


def tone(seconds: float, freq: float = 440.0, sr: int = 16000) -> np.ndarray:
    t = np.arange(int(round(seconds * sr))) / sr
    return (0.3 * np.sin(2 * np.pi * freq * t) + 0.05 * np.sin(2 * np.pi * 3 * freq * t)).astype(np.float32)


@pytest.fixture(scope="module")
def wavs(tmp_path_factory):
    d = tmp_path_factory.mktemp("wavs")
    for name, seconds, freq in [("a", 3.0, 300.0), ("b", 5.0, 800.0), ("c", 0.5, 1500.0), ("d", 2.0, 2500.0)]:
        sf.write(d / f"{name}.wav", tone(seconds, freq), 16000, subtype="FLOAT")
    (d / "broken.wav").write_text("not audio")
    return d


def test_embed_waveform_is_examples_then_network_then_pca(embedder):
    x = tone(4.0)
    emb = embedder.embed_waveform(x, 16000, save_logmel=True)
    examples = waveform_to_examples(x, 16000)
    raw = embedder.runner(examples)
    assert emb.embedding.dtype == np.uint8 and emb.embedding.shape == (4, 128)
    assert emb.raw.dtype == np.float32 and emb.times.dtype == np.float64
    np.testing.assert_array_equal(emb.logmel, examples)
    assert_close(emb.raw, raw)
    np.testing.assert_array_equal(emb.embedding, postprocess(emb.raw, embedder.postprocessor.eigen_vectors,
                                                             embedder.postprocessor.means))
    np.testing.assert_array_equal(emb.times, [0.0, 1.0, 2.0, 3.0])
    assert emb.duration == 4.0 and emb.hop == 1.0
    assert 10 < emb.embedding.std() and len(np.unique(emb.embedding)) > 50  # not saturated


def test_official_hop(embedder):
    emb = embedder.embed_waveform(tone(3.0, 1000.0), 16000, hop=0.96)
    assert len(emb) == 3
    np.testing.assert_allclose(emb.times, [0.0, 0.96, 1.92])


def test_file_and_waveform_agree(embedder, wavs):
    a = embedder.embed_file(wavs / "b.wav")
    b = embedder.embed_waveform(tone(5.0, 800.0), 16000)
    assert_close(a.raw, b.raw)
    assert a.source.endswith("b.wav") and a.duration == 5.0 and a.logmel is None


def test_each_result_comes_before_the_next_file_is_read(embedder, wavs):
    """Issue 13: a finished file's result is not held until the next file has been read."""
    pulled = []

    def sources():
        for name in ("a", "b", "d"):
            pulled.append(name)
            yield wavs / f"{name}.wav"

    seen = []
    for path, result in embedder.iter_embed(sources()):
        assert not isinstance(result, BaseException)
        seen.append((path.stem, list(pulled)))
    assert seen == [("a", ["a"]), ("b", ["a", "b"]), ("d", ["a", "b", "d"])]


def test_examples_run_in_full_batches_and_failures_isolated(embedder, wavs):
    small = copy.copy(embedder)
    sizes = []

    class Recording:  # the real runner, called with batches of at most 4 examples (sizes recorded)
        batch_size = 4

        def __call__(self, batch):
            sizes.append(len(batch))
            return embedder.runner(batch)

    small.runner = Recording()
    names = ["a", "broken", "b", "c", "missing", "d"]
    with pytest.warns(AudioTaggerWarning, match="c.wav: audio is 0.500 s"):
        results = list(small.iter_embed([wavs / f"{n}.wav" for n in names], save_logmel=True))
    assert [p.stem for p, _ in results] == names
    # full batches within a file; its last partial batch runs when it ends (3, 5 = 4 + 1, 1, 2 examples);
    # the runners themselves run a batch of one doubled (a lone example must give what a batch gives), so
    # the embedder hands them the single example as it is
    assert sizes == [3, 4, 1, 1, 2]
    for (path, result), name in zip(results, names, strict=True):
        if name in ("broken", "missing"):
            assert isinstance(result, AudioError) and str(result).startswith(str(path))
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", AudioTaggerWarning)
            alone = embedder.embed_waveform(sf.read(path, dtype="float32")[0], 16000, save_logmel=True)
        assert_close(result.raw, alone.raw)
        np.testing.assert_array_equal(result.logmel, alone.logmel)
        assert len(result) == {"a": 3, "b": 5, "c": 1, "d": 2}[name]


def test_empty_waveform_is_an_error(embedder):
    with pytest.raises(AudioError, match="no samples"):
        embedder.embed_waveform(np.zeros(0), 16000)


def test_real_stereo_44k_recording(embedder):
    emb = embedder.embed_file(shared_file("audio", "jfk.flac"))
    assert len(emb) == 11 and emb.duration == pytest.approx(11.0, abs=0.01)


def test_module_level_api(vggish_checkpoint, pca_file, model_dir, wavs, embedder):
    emb = embed_file(wavs / "d.wav", checkpoint=vggish_checkpoint, pca_params=pca_file, model_dir=model_dir)
    assert_close(emb.raw, embedder.embed_file(wavs / "d.wav").raw)


def test_compat_truncate_file_and_waveform(embedder, wavs, tmp_path, model_args):
    from audiotagger.vggish.features import SecondSplicer

    x = tone(5.0, 810.0) * np.linspace(0.2, 1.0, 80000, dtype=np.float32)    # no two seconds alike
    sf.write(tmp_path / "r.wav", x, 16000, subtype="FLOAT")
    emb = embedder.embed_file(tmp_path / "r.wav", compat_truncate=True, save_logmel=True)
    want = waveform_to_examples(SecondSplicer()(x, 16000, last=True), 16000, hop=0.96)
    np.testing.assert_array_equal(emb.logmel, want)     # 16 kHz: the old tagger's examples exactly
    np.testing.assert_array_equal(emb.times, np.arange(5.0))
    assert emb.duration == 5.0 and emb.hop == 1.0 and emb.compat_truncate
    assert_close(emb.raw, embedder.embed_waveform(x, 16000, compat_truncate=True).raw)
    continuous = embedder.embed_file(tmp_path / "r.wav", save_logmel=True).logmel
    np.testing.assert_array_equal(emb.logmel[0, :94], continuous[0, :94])   # the same until the splice
    assert np.abs(emb.logmel[0, 94:] - continuous[0, 94:]).mean() > 1       # whose click shows
    # at another rate the cut happens before resampling, at the native rate (as the old tagger did)
    stereo = np.stack([tone(3.5, 500.0, 44100), tone(3.5, 900.0, 44100)], axis=1)
    sf.write(tmp_path / "s.wav", stereo, 44100, subtype="FLOAT")
    got = embedder.embed_file(tmp_path / "s.wav", compat_truncate=True, save_logmel=True)
    ref = waveform_to_examples(SecondSplicer()(stereo.mean(axis=1), 44100, last=True), 44100, hop=0.96)
    assert len(got) == 3 and got.duration == 3.5
    np.testing.assert_allclose(got.logmel, ref, atol=2e-4)  # chunked vs one-shot soxr
    with pytest.raises(ParameterError, match="--compat-truncate"):
        embedder.embed_file(wavs / "b.wav", hop=0.96, compat_truncate=True)
    out = tmp_path / "out"
    assert _cli(tmp_path / "r.wav", "-o", out, "-q", "--compat-truncate", model_args=model_args) == 0
    with np.load(out / "r.npz") as d:
        assert bool(d["compat_truncate"]) and d["times"].tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]
        assert_close(d["raw"], emb.raw)
    assert _cli(wavs / "b.wav", "-o", out, "-q", model_args=model_args) == 0
    with np.load(out / "b.npz") as d:
        assert "compat_truncate" not in d.files


# --- the command ----------------------------------------------------------------------------------

def _cli(*args, model_args):
    return main(["embed", *map(str, args), *model_args])


@pytest.fixture(scope="module")
def model_args(vggish_checkpoint, pca_file, model_dir):
    return ["--checkpoint", str(vggish_checkpoint), "--pca-params", str(pca_file),
            "--model-dir", str(model_dir)]


def test_cli_npz_outputs_failures_and_skips(wavs, tmp_path, model_args, capsys, embedder):
    out = tmp_path / "out"
    code = _cli(wavs / "a.wav", wavs / "broken.wav", wavs / "c.wav", wavs / "nope.mp3", "-o", out,
                "--save-logmel", "-q", model_args=model_args)
    assert code == 1
    err = capsys.readouterr().err
    # the CLI prints every warning as one line in its own style (issue 13), not Python's
    assert "audiotagger: warning: " in err and "c.wav: audio is 0.500 s" in err and "Warning:" not in err
    assert "broken.wav: not a media file" in err and "nope.mp3: no such file" in err
    assert sorted(p.name for p in out.iterdir()) == ["a.npz", "c.npz"]  # nothing partial, no temp files
    with np.load(out / "a.npz") as d:
        assert d["embedding"].dtype == np.uint8 and d["embedding"].shape == (3, 128)
        assert d["raw"].dtype == np.float32 and d["logmel"].shape == (3, 96, 64)
        np.testing.assert_array_equal(d["times"], [0.0, 1.0, 2.0])
        assert_close(d["raw"], embedder.embed_file(wavs / "a.wav").raw)
    before = (out / "a.npz").stat().st_mtime_ns
    assert _cli(wavs / "a.wav", "-o", out, model_args=model_args) == 0
    assert (out / "a.npz").stat().st_mtime_ns == before and "exists, skipped" in capsys.readouterr().err


def test_cli_tfrecord_is_the_audioset_format(wavs, tmp_path, model_args, embedder):
    from audiotagger.records import read_tfrecord

    assert _cli(wavs / "b.wav", "-o", tmp_path, "-f", "tfrecord", "--hop", "0.96", "-q",
                model_args=model_args) == 0
    (record,) = read_tfrecord(tmp_path / "b.tfrecord")
    assert record["video_id"] == "b" and record["start_time_seconds"] == 0.0
    assert record["end_time_seconds"] == 5.0 and record["labels"].size == 0
    expected = embedder.embed_file(wavs / "b.wav", hop=0.96).embedding
    assert record["audio_embedding"].shape == (5, 128)
    assert np.abs(record["audio_embedding"].astype(int) - expected).max() <= 1  # uint8 rounding at most


def test_cli_usage_and_model_errors(wavs, tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        main(["embed", str(wavs / "a.wav"), "-o", str(tmp_path), "--hop", "0.005"])
    assert info.value.code == 2
    with pytest.raises(SystemExit) as info:
        main(["embed", str(wavs / "a.wav"), "-o", str(tmp_path), "-f", "tfrecord", "--save-logmel"])
    assert info.value.code == 2
    with pytest.raises(SystemExit) as info:
        main(["embed", str(wavs / "a.wav"), "-o", str(tmp_path), "--hop", "0.96", "--compat-truncate"])
    assert info.value.code == 2
    capsys.readouterr()
    assert main(["embed", str(wavs / "a.wav"), "-o", str(tmp_path), "--offline"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "vggish_model.ckpt" in err[0] and "--checkpoint" in err[0]
    assert not list(tmp_path.iterdir())


def test_cli_refuses_two_inputs_with_one_output(wavs, tmp_path, model_args, capsys):
    other = tmp_path / "in"
    other.mkdir()
    sf.write(other / "a.flac", tone(1.0), 16000)
    out = tmp_path / "out"
    assert _cli(wavs / "a.wav", other / "a.flac", "-o", out, "-q", model_args=model_args) == 1
    assert "is also the output of" in capsys.readouterr().err
    assert [p.name for p in out.iterdir()] == ["a.npz"]


def test_official_smoke_test_with_the_real_checkpoint():
    """Google's vggish_smoke_test.py (2023): needs the real checkpoint, which CI cannot download.

    Point ``AUDIOTAGGER_TEST_VGGISH_CKPT`` at ``vggish_model.ckpt`` to run it.
    """
    import os

    ckpt = os.environ.get("AUDIOTAGGER_TEST_VGGISH_CKPT")
    if not ckpt or not os.path.isfile(ckpt):
        pytest.skip("set AUDIOTAGGER_TEST_VGGISH_CKPT to the official vggish_model.ckpt to run")
    pca = shared_file("vggish", "vggish_pca_params.npz")
    embedder = VGGishEmbedder(ckpt, pca)
    t = np.arange(0, 3, 1 / 16000)
    emb = embedder.embed_waveform(np.sin(2 * np.pi * 1000 * t), 16000, hop=0.96)
    assert emb.raw.shape == (3, 128)
    np.testing.assert_allclose([emb.raw.mean(), emb.raw.std()], [0.000657, 0.343], rtol=0.1)
    np.testing.assert_allclose([emb.embedding.mean(), emb.embedding.std()], [126.0, 89.3], rtol=0.1)
