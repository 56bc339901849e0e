"""End to end: train a tiny model on a few hundred real AudioSet clips, resume (also after kill -9 during a
checkpoint write), stats and evaluate through the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import h5py
import numpy as np
import pytest

from audiotagger.cli import main

from .conftest import ROOT, shared_file

N_CLIPS = 400
TINY = ["--levels", "3", "1", "--hidden-units", "32", "--batch-size", "64", "--eval-every", "2",
        "--validation-split", "0.25", "--save-probs", "-q"]


@pytest.fixture(scope="module")
def small_h5(tmp_path_factory):
    """The first 400 clips of the shared balanced split (short clips included) as a packed HDF5 file."""
    src = shared_file("audioset", "bal_train.h5")
    path = tmp_path_factory.mktemp("data") / "small.h5"
    with h5py.File(src) as f, h5py.File(path, "w") as g:
        short = np.flatnonzero(f["n_frames"][()] < 10)[:20]
        idx = np.unique(np.concatenate([np.arange(N_CLIPS - short.size), short]))
        for key in ("x", "y", "video_id_list", "n_frames"):
            g[key] = f[key][()][idx]
    return path


@pytest.fixture(scope="module")
def trained(small_h5, tmp_path_factory):
    """An uninterrupted run of 6 iterations (the original flag spellings)."""
    ws = tmp_path_factory.mktemp("ws")
    cmd = ["train", "--data_dir", str(small_h5), "--workspace", str(ws), "--tag", "tiny", *TINY,
           "--iterations", "6"]
    assert main(cmd) == 0
    return ws, cmd


def test_train_writes_workspace(trained):
    ws, _ = trained
    run = ws / "tiny"
    its = (0, 2, 4, 6)
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == [f"iter_{i:07d}.npz" for i in its]
    assert sorted(p.name for p in (run / "stats").iterdir()) == [f"iter_{i:07d}.json" for i in its]
    assert (run / "probs" / "iter_0000006.npz").is_file() and (run / "probs" / "targets.npz").is_file()
    assert [p.name for p in (run / "logs").iterdir()] == ["00000.log"]
    stats = json.loads((run / "stats" / "iter_0000006.json").read_text())
    n_clips = len(np.load(run / "split.npz")["validation"])
    assert n_clips > 90 and stats["n_clips"] == n_clips and len(stats["AP"]) == 527 and 0 < stats["mAP"] < 1
    best = json.loads((run / "best.json").read_text())
    assert best["stats"]["mAP"] == max(json.loads(p.read_text())["mAP"] for p in (run / "stats").iterdir())
    assert not list(run.rglob(".*.part*"))
    settings = json.loads((run / "run.json").read_text())
    assert settings["lr"] == 1e-3 and settings["model"]["levels"] == [1, 3]


def test_rerun_with_other_settings_is_refused(trained, capsys):
    ws, cmd = trained
    with pytest.raises(SystemExit) as exc:
        main([*cmd, "--lr", "0.01"])
    assert exc.value.code == 2
    assert "different lr" in capsys.readouterr().err


def test_lr_is_really_used(trained):
    ws, _ = trained
    with np.load(ws / "tiny" / "checkpoints" / "iter_0000002.npz") as f:
        state = json.loads(str(f["train_state"]))
        assert state["iteration"] == 2
        assert int(f["opt000"]) == 2                          # optimizer iteration counter saved


def test_stats_table_range_ensemble_plot(trained, capsys, tmp_path):
    ws, _ = trained
    assert main(["stats", "--workspace", str(ws), "--tag", "tiny", "--begin", "2", "--step", "2",
                 "--end", "6"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["iterations", "mAP", "AUC", "d-prime"]
    assert [int(line.split()[0]) for line in lines[1:]] == [2, 4]              # --end is exclusive
    assert main(["stats", "--workspace", str(ws), "--ensemble", "-f", "json",
                 "--plot", str(tmp_path / "s.png")]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["iteration"] for r in rows] == [0, 2, 4, 6, "ensemble"]
    assert rows[-1]["iterations"] == [0, 2, 4, 6] and 0 < rows[-1]["mAP"] < 1
    assert (tmp_path / "s.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["stats", "--workspace", str(ws), "-f", "csv", "--begin", "6"]) == 0
    assert [line.split(",")[0] for line in capsys.readouterr().out.splitlines()] == ["iteration", "6"]


def test_evaluate_cli_matches_metrics(trained, small_h5, tmp_path, capsys):
    from audiotagger.classifier import load_classifier
    from audiotagger.train.data import read_h5
    from audiotagger.train.metrics import calculate_stats

    ws, _ = trained
    model = ws / "tiny" / "best.npz"
    assert main(["evaluate", "--model", str(model), "--data", str(small_h5),
                 "--json", str(tmp_path / "e.json")]) == 0
    assert "mAP" in capsys.readouterr().out
    got = json.loads((tmp_path / "e.json").read_text())
    data = read_h5(small_h5)
    want = calculate_stats(load_classifier(model).predict(data.x), data.y, warn=False)
    assert abs(got["mAP"] - want["mAP"]) < 1e-6 and abs(got["d_prime"] - want["d_prime"]) < 1e-6
    assert len(got["mids"]) == 527


KILL_SCRIPT = """
import os, signal, sys
import audiotagger.fileio as fio
real = fio.os.replace
def replace(src, dst):
    if str(dst).endswith("checkpoints/iter_0000004.npz"):
        os.kill(os.getpid(), signal.SIGKILL)          # dies with the checkpoint written but not renamed
    real(src, dst)
fio.os.replace = replace
from audiotagger.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_resume_after_kill_during_checkpoint_write(trained, small_h5, tmp_path, capsys):
    ws_done, _ = trained
    ws = tmp_path / "ws"
    cmd = ["train", "--data-dir", str(small_h5), "--workspace", str(ws), "--tag", "tiny", *TINY,
           "--iterations", "6"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", KILL_SCRIPT, *cmd], env=env, capture_output=True,
                          timeout=300)
    assert proc.returncode == -9, proc.stderr.decode()[-2000:]
    ckpt = ws / "tiny" / "checkpoints"
    assert sorted(p.name for p in ckpt.glob("iter_*")) == ["iter_0000000.npz", "iter_0000002.npz"]
    assert list(ckpt.glob(".iter_0000004.npz.*"))                    # the orphaned temporary file
    (ckpt / "iter_0000003.npz").write_bytes(b"PK\x03\x04 half a file")  # and a damaged one, too
    assert main(cmd) == 0
    err = capsys.readouterr().err
    assert "audiotagger: warning: " in err and "unreadable checkpoint skipped" in err
    assert f"resuming {ws / 'tiny'} at iteration 2 of 6 (checkpoint {ckpt / 'iter_0000002.npz'})" in err
    assert not list(ckpt.glob(".*"))
    assert "resumed at iteration 2" in sorted((ws / "tiny" / "logs").iterdir())[-1].read_text()
    # the resumed run drew exactly the batches and dropout masks of the uninterrupted one
    other = ws_done / "tiny" / "checkpoints" / "iter_0000006.npz"
    with np.load(ckpt / "iter_0000006.npz") as a, np.load(other) as b:
        assert sorted(a.files) == sorted(b.files) and "rng000" in a.files
        for key in ("sampler_lists", "sampler_pointers", "sampler_queue", "sampler_rng", "rng000"):
            np.testing.assert_array_equal(a[key], b[key])
        for key in (k for k in a.files if k[0] == "w" and k[1:].isdigit()):
            np.testing.assert_allclose(a[key], b[key], rtol=1e-5, atol=1e-6, err_msg=key)


def test_bad_input_fails_before_training(small_h5, tmp_path, capsys):
    ws = tmp_path / "ws"
    with pytest.raises(SystemExit) as exc:
        main(["train", "--data-dir", str(small_h5), "--workspace", str(ws), "--levels", "4"])
    assert exc.value.code == 2 and "--levels" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["train", "--data-dir", str(empty), "--workspace", str(ws),
                 "--validation-split", "0.2"]) == 1
    assert "no training data" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["train", "--data-dir", str(small_h5), "--workspace", str(ws)])
    assert exc.value.code == 2 and "--validation-split" in capsys.readouterr().err
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(SystemExit) as exc:
        main(["train", "--data-dir", str(small_h5), "--workspace", str(blocker / "ws"),
              "--validation-split", "0.2"])
    assert exc.value.code == 2 and "not writable" in capsys.readouterr().err
    assert not ws.exists()


def test_options_eval_data_test_split_lazy_average(small_h5, tmp_path, capsys):
    """The other switches in one short run: separate eval file, test part, lazy HDF5, mixup, cosine lr,
    prior init, AdamW, weight averaging, another model type."""
    ws = tmp_path / "ws"
    assert main(["train", "--data-dir", str(small_h5), "--eval-data", str(small_h5), "--workspace", str(ws),
                 "--tag", "opts", "--model-type", "feature-attention", "--hidden-units", "16",
                 "--batch-size", "32",
                 "--iterations", "3", "--eval-every", "1", "--test-split", "0.2", "--lazy", "--mixup", "0.4",
                 "--lr-schedule", "cosine", "--warmup", "1", "--weight-decay", "0.01", "--prior-init",
                 "--average-last", "2", "--sampler", "shuffled", "-q"]) == 0
    out = capsys.readouterr().out
    assert "weight average" in out and "test (best)" in out and "test (averaged)" in out
    run = ws / "opts"
    test = json.loads((run / "test.json").read_text())
    assert set(test) == {"best", "averaged"}
    assert test["best"]["n_clips"] == len(np.load(run / "split.npz")["test"])
    from audiotagger.classifier import load_classifier

    clf = load_classifier(run / "averaged.npz")
    assert clf.config["model_type"] == "feature-attention" and clf.name.startswith("opts@avg")


def test_evaluate_one_part_of_a_run_split(trained, small_h5, tmp_path, capsys):
    """evaluate --split/--part scores exactly the held-out clips the run recorded."""
    from audiotagger.classifier import load_classifier
    from audiotagger.train.data import read_h5
    from audiotagger.train.metrics import calculate_stats

    ws, _ = trained
    run = ws / "tiny"
    assert main(["evaluate", "--model", str(run / "best.npz"), "--data", str(small_h5), "--split",
                 str(run / "split.npz"), "--part", "validation", "--json", str(tmp_path / "v.json")]) == 0
    got = json.loads((tmp_path / "v.json").read_text())
    data = read_h5(small_h5)
    ids = set(np.load(run / "split.npz")["validation"])
    idx = np.array([i for i, v in enumerate(data.video_ids) if v in ids])
    want = calculate_stats(load_classifier(run / "best.npz").predict(data.x[idx]), data.y[idx], warn=False)
    assert got["n_clips"] == len(ids) == len(idx) and abs(got["mAP"] - want["mAP"]) < 1e-6
    # the run's own validation score at its best iteration
    best = json.loads((run / "best.json").read_text())["stats"]
    assert abs(got["mAP"] - best["mAP"]) < 1e-6
    capsys.readouterr()
    # the run has no test part
    assert main(["evaluate", "--data", str(small_h5), "--split", str(run / "split.npz")]) == 1
    assert "the test part is empty" in capsys.readouterr().err


def test_refit_and_label_closure(small_h5, tmp_path, capsys):
    """--refit trains on every clip with no evaluation set and averages the last checkpoints;
    --label-closure makes ontology ancestors positive in the training labels only."""
    from audiotagger.labels import ancestor_matrix, close_labels, load_labels

    labels = load_labels()
    a = ancestor_matrix()
    dog, bark, animal = (labels.index(n) for n in ("Dog", "Bark", "Animal"))
    assert a[bark, dog] and a[bark, animal] and a[dog, animal] and not a[animal].any()
    y = np.zeros((2, 527), bool)
    y[0, bark] = True
    closed = close_labels(y)
    assert closed[0, [bark, dog, animal]].all() and closed[0].sum() == 1 + a[bark].sum()
    assert not closed[1].any()

    ws = tmp_path / "ws"
    args = ["train", "--data-dir", str(small_h5), "--workspace", str(ws), "--tag", "all",
            "--hidden-units", "16", "--batch-size", "32", "--iterations", "4", "--eval-every", "2", "--refit",
            "--average-last", "2", "--label-closure", "--prior-init", "-q"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "on every clip (--refit, no evaluation)" in out and "averaged.npz" in out
    run = ws / "all"
    split = np.load(run / "split.npz")
    with h5py.File(small_h5) as f:
        assert len(split["train"]) == len(f["y"]) and len(split["validation"]) == 0
    assert json.loads((run / "best.json").read_text()) == {"iteration": 4, "stats": None}
    assert json.loads((run / "stats" / "averaged.json").read_text())["iterations"] == [2, 4]
    from audiotagger.classifier import load_classifier

    probs = load_classifier(run / "averaged.npz").predict(np.full((1, 10, 128), 128, np.uint8))
    assert probs.shape == (1, 527)
    with pytest.raises(SystemExit) as exc:
        main(["train", "--data-dir", str(small_h5), "--workspace", str(ws), "--tag", "bad", "--refit",
              "--validation-split", "0.2", "-q"])
    assert exc.value.code == 2 and "--refit" in capsys.readouterr().err
