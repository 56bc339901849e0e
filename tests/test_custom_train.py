"""Custom classes end to end through the CLI, on generated audio with the official-format VGGish test
checkpoint (and a PANNs CNN6 test checkpoint): train on a class-folder tree, embeddings cached by content
hash, tag with the model's own backbone and labels, evaluate, ``models list``/``info``, and every bad input
of issue 11."""

from __future__ import annotations

import contextlib
import io
import json
import shutil

import numpy as np
import pytest

from audiotagger.cli import main

SR = 16000
CLASSES = ("noise", "sweep", "tone")


def sound(kind: str, seconds: float, rng) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    if kind == "tone":
        x = 0.3 * np.sin(2 * np.pi * rng.uniform(400, 2500) * t)
    elif kind == "sweep":
        f0, f1 = rng.uniform(200, 600), rng.uniform(3000, 6000)
        x = 0.3 * np.sin(2 * np.pi * (f0 + (f1 - f0) * t / (2 * seconds)) * t)
    else:
        x = rng.uniform(0.05, 0.3) * rng.standard_normal(t.size)
    return (x + 0.005 * rng.standard_normal(t.size)).astype(np.float32)


def write_folder(root, per_class: int, seed: int):
    import soundfile as sf

    rng = np.random.default_rng(seed)
    for kind in CLASSES:
        (root / kind).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            sf.write(root / kind / f"{kind}{i}.wav", sound(kind, rng.uniform(1.5, 3.0), rng), SR)
    return root


def cli(*argv) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main([str(a) for a in argv])
        except SystemExit as exc:                 # usage errors leave through argparse
            code = exc.code
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """Test VGGish checkpoint + PCA, training and held-out folders, an embedding cache."""
    pytest.importorskip("tf_slim")
    pytest.importorskip("soundfile")
    from tests.vggish_fixtures import cached_slim_checkpoint

    root = tmp_path_factory.mktemp("custom")
    rng = np.random.default_rng(7)
    basis, _ = np.linalg.qr(rng.standard_normal((128, 128)))
    pca = root / "vggish_pca_params.npz"
    np.savez(pca, pca_eigen_vectors=basis * 0.5, pca_means=np.zeros(128))
    return {"root": root, "models": ["--checkpoint", cached_slim_checkpoint(), "--pca-params", pca],
            "train": write_folder(root / "train", 8, 1), "held": write_folder(root / "held", 4, 2),
            "cache": root / "cache", "ws": root / "ws"}


TINY = ["--hidden-units", "32", "--batch-size", "32", "--eval-every", "40", "-q"]


@pytest.fixture(scope="module")
def trained(env):
    """One single-label run on the class folders."""
    code, out, err = cli("train", "--audio", env["train"], "--workspace", env["ws"], "--single-label",
                         "--validation-split", "0.25", "--iterations", "160",
                         "--embedding-cache", env["cache"], *env["models"], *TINY)
    assert code == 0, err
    return env["ws"] / "vggish_single", out


def test_train_writes_a_model_with_labels_and_backbone(env, trained):
    run, out = trained
    assert "embeddings (vggish): 0 cached, 24 computed" in out and "accuracy" in out
    from audiotagger.classifier.store import read_config

    config, meta = read_config(run / "best.npz")
    assert config["labels"] == list(CLASSES) and config["backbone"] == "vggish"
    assert config["single_label"] is True and config["num_classes"] == 3
    stats = json.loads(sorted((run / "stats").iterdir())[-1].read_text())
    assert len(stats["confusion"]) == 3 and 0 <= stats["accuracy"] <= 1
    held = np.load(run / "split.npz")["validation"]
    assert len(held) == 6 and {str(v).split("/")[-2] for v in held} == set(CLASSES)   # 2 per class
    assert len(list((env["cache"] / "vggish").rglob("*.npz"))) == 24
    assert not list(run.rglob(".*.part*"))


def test_another_recipe_reads_every_embedding_back(env, trained):
    files = sorted((env["cache"] / "vggish").rglob("*.npz"))
    stamps = [p.stat().st_mtime_ns for p in files]
    code, out, err = cli("train", "--audio", env["train"], "--workspace", env["ws"], "--tag", "recipe2",
                         "--validation-split", "0.25", "--iterations", "40", "--model-type", "average",
                         "--embedding-cache", env["cache"], *env["models"], *TINY)
    assert code == 0, err
    assert "embeddings (vggish): 24 cached, 0 computed" in out
    assert [p.stat().st_mtime_ns for p in sorted((env["cache"] / "vggish").rglob("*.npz"))] == stamps
    # the same file under another name is the same content: no new embedding either
    moved = env["root"] / "moved"
    shutil.copytree(env["train"], moved)
    code, out, _ = cli("train", "--audio", moved, "--workspace", env["ws"], "--tag", "moved",
                       "--validation-split", "0.25", "--iterations", "1", "--eval-every", "1",
                       "--embedding-cache", env["cache"], *env["models"], "-q")
    assert code == 0 and "24 cached, 0 computed" in out


def test_rerunning_the_command_resumes(env, trained):
    run, _ = trained
    code, out, err = cli("train", "--audio", env["train"], "--workspace", env["ws"], "--single-label",
                         "--validation-split", "0.25", "--iterations", "200",
                         "--embedding-cache", env["cache"], *env["models"], *TINY)
    assert code == 0, err
    assert "24 cached, 0 computed" in out
    assert [p.name for p in sorted((run / "checkpoints").iterdir())][-2:] == ["iter_0000160.npz",
                                                                             "iter_0000200.npz"]
    logs = sorted((run / "logs").iterdir())
    assert len(logs) == 2 and "resumed at iteration 160" in logs[-1].read_text()
    code, _, err = cli("train", "--audio", env["train"], "--workspace", env["ws"], "--single-label",
                       "--validation-split", "0.3", "--iterations", "200",
                       "--embedding-cache", env["cache"], *env["models"], *TINY)
    assert code == 2 and "holds a run with different validation_split" in err


def test_evaluate_on_held_out_audio(env, trained):
    run, _ = trained
    report = env["root"] / "eval.json"
    code, out, err = cli("evaluate", "--model", run / "best.npz", "--audio", env["held"], "--json", report,
                         "--embedding-cache", env["cache"], *env["models"], "-q")
    assert code == 0, err
    stats = json.loads(report.read_text())
    assert stats["n_clips"] == 12 and stats["labels"] == list(CLASSES)
    assert stats["embedding"] == {"cached": 0, "embedded": 12, "failed": 0}
    assert stats["accuracy"] >= 0.75, stats["confusion"]        # synthetic classes, random VGGish weights
    assert f"accuracy {stats['accuracy']:.4f}" in out
    assert out.splitlines()[1].split() == ["true", "\\", "predicted", *CLASSES]
    assert np.sum(stats["confusion"]) == 12


def test_tag_uses_the_models_backbone_and_labels(env, trained, tmp_path):
    import soundfile as sf

    run, _ = trained
    x = np.concatenate([sound("tone", 4.0, np.random.default_rng(3)),
                        sound("noise", 4.0, np.random.default_rng(4))])
    wav = tmp_path / "mix.wav"
    sf.write(wav, x, SR)
    out_dir = tmp_path / "out"
    code, out, err = cli("tag", wav, "--model", run / "best.npz", "-o", out_dir,
                         "-f", "srt,json,tsv,csv,txt,npz", "--threshold", "0.2",
                         "--checkpoint", env["models"][1], "--pca-params", env["models"][3])
    assert code == 0, err
    data = np.load(out_dir / "mix.npz")
    assert data["probs"].shape == (8, 3) and list(data["labels"]) == list(CLASSES) == list(data["mids"])
    np.testing.assert_allclose(data["probs"].sum(axis=1), 1.0, rtol=1e-5)          # softmax
    assert str(data["backend"]) == "custom" and json.loads(str(data["settings"]))["backbone"] == "vggish"
    doc = json.loads((out_dir / "mix.json").read_text())
    assert {t["label"] for cue in doc["segments"] for t in cue["tags"]} <= set(CLASSES)
    assert {t["label"] for t in doc["summary"]} <= set(CLASSES) and doc["summary"]
    for ext in ("srt", "tsv", "csv", "txt"):
        text = (out_dir / f"mix.{ext}").read_text()
        assert any(c in text for c in CLASSES), ext
    assert out.splitlines()[0].endswith("mix.wav: 8.0 s, 8 steps")
    # --exclude and --from-probs speak the model's labels
    code, _, err = cli("tag", "--from-probs", out_dir / "mix.npz", "-f", "tsv", "-o", tmp_path / "re",
                       "--exclude", "tone", "--threshold", "0")
    assert code == 0, err
    assert "tone" not in (tmp_path / "re" / "mix.tsv").read_text()
    code, _, err = cli("tag", wav, "--model", run / "best.npz", "--exclude", "Dog", "-o", tmp_path / "x")
    assert code == 2 and "--exclude: unknown class 'Dog'" in err


def test_models_list_and_info_show_custom_models(env, trained):
    run, _ = trained
    code, out, _ = cli("models", "list", "--workspace", env["ws"])
    assert code == 0
    line = next(x for x in out.splitlines() if "vggish_single/best.npz" in x)
    assert "3 classes (noise, sweep, tone); backbone vggish; single-label multi-level-attention" in line
    assert "validation mAP" in line and "accuracy" in line
    code, out, _ = cli("models", "info", run / "best.npz", "--json")
    info = json.loads(out)[0]
    assert code == 0 and info["kind"] == "custom" and info["labels"] == list(CLASSES)


def test_bad_folders_one_line_each_nothing_half_written(env, tmp_path):
    one = tmp_path / "one"
    shutil.copytree(env["train"] / "tone", one / "tone")
    (one / "empty").mkdir()
    ws = tmp_path / "ws"
    code, out, err = cli("train", "--audio", one, "--workspace", ws, "--embedding-cache", env["cache"],
                         "--validation-split", "0.25", *env["models"], *TINY)
    assert code == 1 and not ws.exists()
    assert err.strip().splitlines() == [
        f"audiotagger: error: {one}: needs at least two class folders with audio files, found 1 (tone)"]

    mixed = tmp_path / "mixed"
    shutil.copytree(env["train"], mixed)
    (mixed / "birds").mkdir()
    (mixed / "noise" / "broken.wav").write_bytes(b"RIFF....WAVEfmt garbage")
    code, out, err = cli("train", "--audio", mixed, "--workspace", ws, "--embedding-cache", env["cache"],
                         "--validation-split", "0.25", "--iterations", "2", "--eval-every", "1",
                         *env["models"], "-q")
    lines = err.strip().splitlines()
    assert code == 1
    assert lines[0] == f"audiotagger: error: {mixed / 'birds'}: class folder holds no audio files; class " \
                       "'birds' left out"
    assert lines[1].startswith(f"audiotagger: error: {mixed / 'noise' / 'broken.wav'}: ")
    assert lines[-1].startswith("audiotagger: 2 entries left out")
    assert len(lines) == 3 and "24 cached, 0 computed, 1 failed" in out
    from audiotagger.classifier.store import read_config

    assert read_config(ws / "vggish_multi" / "best.npz")[0]["labels"] == list(CLASSES)


def test_bad_csv_rows_and_multi_label(env, tmp_path):
    rows = ["path,labels,start,end,fold"]
    for i, kind in enumerate(CLASSES):
        for j in range(6):
            other = CLASSES[(i + 1) % 3]
            labels = f"{kind};{other}" if j == 5 else kind
            fold = "val" if j < 2 else "train"
            rows.append(f"{env['train'] / kind / f'{kind}{j}.wav'},{labels},0.2,,{fold}")
    tone7 = env["train"] / "tone" / "tone7.wav"
    rows += [f"{tmp_path / 'gone.wav'},tone,,,train", f"{tone7},whistle,,,train"]
    csv = tmp_path / "data.csv"
    csv.write_text("\n".join(rows) + "\n")
    ws = tmp_path / "ws"
    code, out, err = cli("train", "--audio-csv", csv, "--labels", ",".join(CLASSES), "--workspace", ws,
                         "--embedding-cache", env["cache"], "--iterations", "40", *env["models"], *TINY)
    lines = err.strip().splitlines()
    assert code == 1 and len(lines) == 3
    assert lines[0] == f"audiotagger: error: {csv} line 20: {tmp_path / 'gone.wav'}: no such file"
    assert lines[1] == (f"audiotagger: error: {csv} line 21: {tone7}: unknown label "
                        "'whistle' (known: noise, sweep, tone)")
    assert "18 computed" in out                       # parts (from 0.2 s) are new content keys
    model = ws / "vggish_multi" / "best.npz"
    from audiotagger.classifier.store import read_config

    config = read_config(model)[0]
    assert config["labels"] == list(CLASSES) and not config.get("single_label")
    assert len(np.load(ws / "vggish_multi" / "split.npz")["validation"]) == 6
    code, out, err = cli("evaluate", "--model", model, "--audio-csv", csv, "--embedding-cache", env["cache"],
                         *env["models"], "-q")
    assert code == 1 and "18 clips, 3 classes): mAP" in out and "accuracy" not in out
    assert len(err.strip().splitlines()) == 3


def test_model_whose_backbone_is_not_available(env, trained, tmp_path):
    run, _ = trained
    with np.load(run / "best.npz") as npz:
        arrays = {k: npz[k] for k in npz.files}
    config = json.loads(str(arrays["config"]))
    arrays["config"] = np.array(json.dumps({**config, "backbone": "openl3"}))
    ghost = tmp_path / "ghost.npz"
    np.savez(ghost, **arrays)
    out_dir = tmp_path / "out"
    wav = next((env["held"] / "tone").iterdir())
    code, out, err = cli("tag", wav, "--model", ghost, "-o", out_dir, *env["models"])
    assert code == 1 and not out_dir.exists()
    assert err.strip().splitlines() == [
        f"audiotagger: error: {ghost}: needs backbone 'openl3', which is not available here: "
        "unknown 'openl3' (choose from vggish, yamnet, panns-cnn14, panns-cnn10, panns-cnn6)"]
    code, _, err = cli("evaluate", "--model", ghost, "--audio", env["held"], *env["models"])
    assert code == 1 and "needs backbone 'openl3'" in err
    # a backbone that is known but whose weights are missing here: one line too
    code, _, err = cli("tag", wav, "--model", run / "best.npz", "-o", out_dir, "--offline")
    assert code == 1 and not out_dir.exists()
    assert err.startswith(f"audiotagger: error: {run / 'best.npz'}: needs backbone 'vggish', which is not "
                          "available here: ") and len(err.strip().splitlines()) == 1


def test_panns_backbone_float_embeddings(env, tmp_path):
    from tests.panns_fixtures import panns_state_dict, write_pth

    pth = write_pth(tmp_path / "Cnn6_mAP=0.343.pth", {"model": panns_state_dict("cnn6", 5)})
    ws = tmp_path / "ws"
    code, out, err = cli("train", "--audio", env["train"], "--backbone", "panns-cnn6", "--checkpoint", pth,
                         "--workspace", ws, "--embedding-cache", env["cache"], "--validation-split", "0.25",
                         "--iterations", "40", *TINY)
    assert code == 0, err
    assert "embeddings (panns-cnn6): 0 cached, 24 computed" in out
    from audiotagger.classifier.store import read_config

    config = read_config(ws / "panns-cnn6_multi" / "best.npz")[0]
    assert (config["embedding_size"], config["input_dtype"]) == (512, "float32")
    assert config["backbone"] == "panns-cnn6"
    rows = np.load(next((env["cache"] / "panns-cnn6").rglob("*.npz")))["rows"]
    assert rows.dtype == np.float32 and rows.shape[1] == 512 and rows.min() >= 0          # fc1 after ReLU
    wav = next((env["held"] / "sweep").iterdir())
    code, _, err = cli("tag", wav, "--model", ws / "panns-cnn6_multi" / "best.npz", "--checkpoint", pth,
                       "-o", tmp_path / "out", "-f", "npz", "-q")
    assert code == 0, err
    data = np.load(tmp_path / "out" / f"{wav.stem}.npz")
    assert data["probs"].shape[1] == 3 and float(data["hop"]) == 1.0
