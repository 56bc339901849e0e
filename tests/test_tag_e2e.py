"""End to end: ``audiotagger tag`` on real media with an official-format VGGish checkpoint made by the tests
and a small classifier written in the trainer's format. Semantics need the real weights; structure and
numbers do not: one step per second, times, shapes, the wiring of windows and classifier, and
``--from-probs`` reproducing the same files byte for byte."""

import json
import re
import subprocess
import warnings

import numpy as np
import pytest
import soundfile as sf

from audiotagger.cli import main
from audiotagger.errors import AudioTaggerWarning
from tests.conftest import shared_file

TEXT_FORMATS = ("srt", "vtt", "tsv", "csv", "json", "txt")


@pytest.fixture(scope="session")
def tag_models(tmp_path_factory):
    """(VGGish checkpoint, PCA parameters, classifier) paths; seeded."""
    pytest.importorskip("tf_slim")
    import keras

    from audiotagger.classifier import build_model, model_config
    from audiotagger.classifier.store import write_model
    from tests.vggish_fixtures import cached_slim_checkpoint

    ckpt = cached_slim_checkpoint()
    folder = tmp_path_factory.mktemp("tag-models")
    rng = np.random.default_rng(7)
    basis, _ = np.linalg.qr(rng.standard_normal((128, 128)))
    pca = folder / "vggish_pca_params.npz"
    np.savez(pca, pca_eigen_vectors=basis * 0.5, pca_means=np.zeros(128))
    keras.utils.set_random_seed(3)
    config = model_config(hidden_units=32)
    clf = write_model(folder / "small.npz", build_model(**config), {**config, "name": "test-small"})
    return ckpt, pca, clf


def model_args(tag_models):
    ckpt, pca, clf = tag_models
    return ["--checkpoint", str(ckpt), "--pca-params", str(pca), "--model", str(clf)]


def test_big_buck_bunny_every_format_and_from_probs(tag_models, tmp_path, capsys):
    video = shared_file("video", "big_buck_bunny_60s.mp4")
    out = tmp_path / "out"
    code = main(["tag", str(video), "-o", str(out), "-f", "all", "--per-second", "--threshold", "0.05",
                 "--left", "3", "--right", "1", *model_args(tag_models)])
    assert code == 0
    assert "big_buck_bunny_60s.mp4: 60.1 s, 60 steps" in capsys.readouterr().out

    srt = (out / "big_buck_bunny_60s.srt").read_text(encoding="utf-8")
    stamps = re.findall(r"^(\S+) --> (\S+)$", srt, flags=re.M)
    assert len(stamps) == 60
    assert stamps[0] == ("00:00:00,001", "00:00:01,000") and stamps[-1] == ("00:00:59,001", "00:01:00,000")

    with np.load(out / "big_buck_bunny_60s.npz", allow_pickle=False) as npz:
        probs, times = npz["probs"], npz["times"]
        assert probs.shape == (60, 527) and probs.dtype == np.float32
        np.testing.assert_array_equal(times, np.arange(60.0))
        assert (int(npz["left"]), int(npz["right"]), str(npz["model"])) == (3, 1, "test-small")
        assert np.all((probs >= 0) & (probs <= 1))

    # the matrix is the classifier applied to the context windows of the embeddings
    from audiotagger.tag.tagger import load_tagger
    from audiotagger.tag.windows import context_windows

    ckpt, pca, clf = tag_models
    tagger = load_tagger(clf, checkpoint=ckpt, pca_params=pca)      # reused by the Python API test
    emb = tagger.embedder.embed_file(video, hop=1.0)
    expected = tagger.classifier.predict(context_windows(emb.embedding, 3, 1))
    np.testing.assert_allclose(probs, expected, rtol=1e-5, atol=1e-6)

    assert (out / "big_buck_bunny_60s.png").read_bytes()[:4] == b"\x89PNG"
    info = subprocess.run([_ffmpeg(), "-hide_banner", "-i", str(out / "big_buck_bunny_60s.tagged.mp4")],
                          capture_output=True, text=True).stderr
    assert "Video: h264" in info and "Audio: aac" in info and "Subtitle: mov_text" in info

    again = tmp_path / "again"
    assert main(["tag", "--from-probs", str(out / "big_buck_bunny_60s.npz"), "-o", str(again), "-q",
                 "-f", ",".join((*TEXT_FORMATS, "npz"))]) == 0
    for fmt in (*TEXT_FORMATS, "npz"):
        name = f"big_buck_bunny_60s.{fmt}"
        assert (again / name).read_bytes() == (out / name).read_bytes(), name


def _ffmpeg():
    from audiotagger.audio import ffmpeg_exe

    return ffmpeg_exe()


def test_many_inputs_short_audio_and_a_broken_file(tag_models, tmp_path, capsys):
    jfk = shared_file("audio", "jfk.flac")
    phone = shared_file("audio", "R9_ZSCveAHg_7s.wav")
    baby = shared_file("audio", "crying_baby_1-60997-B.mp3")
    short = tmp_path / "short.wav"
    sf.write(short, 0.1 * np.sin(2 * np.pi * 440 * np.arange(8000) / 16000), 16000)
    broken = tmp_path / "broken.mp3"
    broken.write_bytes(b"\x00" * 1000)
    out = tmp_path / "out"
    code = main(["tag", str(jfk), str(broken), str(phone), str(short), str(baby), "-o", str(out),
                 "-f", "json,npz,mp4", *model_args(tag_models)])
    captured = capsys.readouterr()
    assert code == 1
    assert "broken.mp3" in captured.err and "1 failed" in captured.err
    assert "warning" in captured.err.lower() and "short.wav" in captured.err
    assert "jfk.flac: no video stream, so no mp4 output" in captured.err
    assert not list(out.glob("*.mp4"))
    assert not list(out.glob("broken.*"))
    for stem, seconds in (("jfk", 11), ("R9_ZSCveAHg_7s", 7), ("short", 1), ("crying_baby_1-60997-B", 5)):
        with np.load(out / f"{stem}.npz", allow_pickle=False) as npz:
            assert npz["probs"].shape == (seconds, 527), stem
        assert (out / f"{stem}.json").is_file()


def test_python_api_mirrors_the_cli(tag_models, tmp_path):
    from audiotagger import tag_file

    ckpt, pca, clf = tag_models
    wav = shared_file("audio", "R9_ZSCveAHg_7s.wav")
    with warnings.catch_warnings():
        warnings.simplefilter("error", AudioTaggerWarning)
        result = tag_file(wav, output_dir=tmp_path, formats="srt,tsv", checkpoint=ckpt, pca_params=pca,
                          model=clf, left=10, right=0, threshold=0.0, top_k=2)
    assert result.probs.shape == (7, 527) and result.meta["left"] == 10
    assert (tmp_path / "R9_ZSCveAHg_7s.srt").read_text().count("-->") >= 1
    assert len((tmp_path / "R9_ZSCveAHg_7s.tsv").read_text().splitlines()) > 1


def test_compat_truncate_frames_like_the_old_tagger(tag_models, tmp_path):
    from audiotagger import tag_file

    x = (0.3 * np.sin(2 * np.pi * 440 * np.arange(6 * 44100) / 44100)).astype(np.float32)
    wav = tmp_path / "six.wav"
    sf.write(wav, x * np.linspace(0.1, 1, len(x), dtype=np.float32), 44100, subtype="PCM_16")
    out = tmp_path / "out"
    assert main(["tag", str(wav), "--compat-truncate", "--per-second", "-f", "srt,npz", "-o", str(out), "-q",
                 *model_args(tag_models)]) == 0
    with np.load(out / "six.npz", allow_pickle=False) as npz:
        assert npz["probs"].shape == (6, 527)
        np.testing.assert_array_equal(npz["times"], np.arange(6.0))
        assert json.loads(str(npz["settings"]))["compat_truncate"] is True
        compat = npz["probs"]
    assert (out / "six.srt").read_text().count("-->") == 6
    ckpt, pca, clf = tag_models
    plain = tag_file(wav, checkpoint=ckpt, pca_params=pca, model=clf)
    assert "compat_truncate" not in plain.meta and plain.probs.shape == (6, 527)
    assert np.abs(plain.probs - compat).max() > 1e-4            # the framing really differs


def test_panns_backend_through_tag(tmp_path, capsys):
    from tests.panns_fixtures import panns_state_dict, write_pth

    wav = shared_file("audio", "R9_ZSCveAHg_7s.wav")
    pth = write_pth(tmp_path / "Cnn6_test.pth", {"model": panns_state_dict("cnn6", seed=1)})
    out = tmp_path / "out"
    code = main(["tag", str(wav), "--model", str(pth), "--sample-duration", "1.0", "--hop-duration", "1.0",
                 "-f", "srt,npz,txt", "--top-k", "3", "-o", str(out), "-q"])
    assert code == 0, capsys.readouterr().err
    with np.load(out / "R9_ZSCveAHg_7s.npz", allow_pickle=False) as npz:
        assert npz["probs"].shape == (7, 527) and str(npz["backend"]) == "panns"
        np.testing.assert_allclose(npz["times"], np.arange(7.0))
        np.testing.assert_allclose(npz["time"], np.arange(7.0) / 7.0, rtol=1e-6)   # PaddleAudio fractions
        np.testing.assert_array_equal(npz["scores"], npz["probs"])
    blocks = (out / "R9_ZSCveAHg_7s.txt").read_text().split("\n\n")
    assert len(blocks) == 8 and blocks[1].splitlines()[0] == "1.0" and len(blocks[1].splitlines()) == 4
    # without --top-k a PANNs model lists PaddleAudio's top 10
    code = main(["tag", str(wav), "--model", str(pth), "--sample-duration", "1.0", "--hop-duration", "1.0",
                 "-f", "txt", "-o", str(tmp_path / "top10"), "-q"])
    assert code == 0, capsys.readouterr().err
    blocks = (tmp_path / "top10" / "R9_ZSCveAHg_7s.txt").read_text().split("\n\n")
    assert len(blocks[0].splitlines()) == 11


def test_tag_waveform_and_embeddings(tag_models):
    from audiotagger.tag.tagger import embedding_result, load_tagger

    ckpt, pca, clf = tag_models
    tagger = load_tagger(clf, checkpoint=ckpt, pca_params=pca)
    x = 0.3 * np.sin(2 * np.pi * 1000 * np.arange(3 * 44100) / 44100)
    result = tagger.tag_waveform(np.stack([x, x], axis=1), 44100, left=0, right=0, source="sine")
    assert result.probs.shape == (3, 527) and result.duration == pytest.approx(3.0)
    # the same embeddings through the embedding-only path give the same probabilities
    emb = tagger.embedder.embed_waveform(np.stack([x, x], axis=1), 44100, hop=1.0)
    again = embedding_result(tagger.classifier, emb.embedding, left=0, right=0)
    np.testing.assert_array_equal(again.probs, result.probs)
    np.testing.assert_array_equal(again.times, [0.0, 1.0, 2.0])


def test_default_model_tags_real_audioset_features():
    """The packaged classifier on the released embeddings of a held-out clip (a dog barking, 17-27 s of
    YouTube video FeRaDiSPb2c): real features, so the tags mean something."""
    import h5py

    from audiotagger.classifier import default_model_path, load_classifier
    from audiotagger.labels import load_labels
    from audiotagger.tag.select import DisplayOptions, Selection
    from audiotagger.tag.tagger import embedding_result

    data = shared_file("audioset", "bal_train.h5")
    if not default_model_path().is_file():
        pytest.skip("the default classifier is not shipped")
    with h5py.File(data, "r") as f:
        ids = [v.decode() for v in f["video_id_list"][:]]
        x = f["x"][ids.index("FeRaDiSPb2c")]
    sel = Selection(embedding_result(load_classifier(), x, left=3, right=1), DisplayOptions())
    labels = load_labels()
    top = [labels.names[c] for c, _, _ in sel.summary()[:3]]
    assert "Dog" in top
    assert all(labels.index("Dog") in cue.classes for cue in sel.cues())
