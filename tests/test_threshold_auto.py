"""``--threshold auto``: per-class thresholds stored in the classifier file, used by ``tag``, the library,
``--from-probs`` and ``listen``.

The selection rule is checked against a plain numpy/Python statement of it (every visible class at or above
its own threshold, at most top-k, highest probability first), on synthetic matrices and on real runs: the
shared 7 s clip tagged by the tests' official-format VGGish checkpoint and a small classifier written with
``write_model(..., thresholds=...)``, its thresholds chosen on a first run of the same weights (each
class's median over the steps, so every class is shown in some seconds and not in others).
"""

from __future__ import annotations

import io
import json
import sys

import numpy as np
import pytest

from audiotagger.cli import main
from audiotagger.errors import DataError, ParameterError
from audiotagger.labels import load_labels
from audiotagger.params import MUSIC_MID, SILENCE_MID, SPEECH_MID
from audiotagger.tag.result import TagResult, load_result
from audiotagger.tag.select import DisplayOptions, Selection, select_classes
from tests.conftest import shared_file
from tests.test_tag_e2e import model_args, tag_models  # noqa: F401  (session fixture)

L = load_labels()
HIDDEN = {L.index(SPEECH_MID), L.index(MUSIC_MID)}
CLIP = ("audio", "R9_ZSCveAHg_7s.wav")
INFO = {"rule": "median over the test clip's steps", "data": "tests"}


def expected_auto(probs, thresholds, top_k=5, hidden=HIDDEN):
    """The rule in plain Python: visible classes at or above their own threshold, best ``top_k`` by
    probability (ties: lower index first)."""
    out = []
    for row in np.asarray(probs, np.float32):
        ok = [c for c in range(len(row)) if c not in hidden and row[c] >= np.float32(thresholds[c])]
        out.append(sorted(ok, key=lambda c: (-row[c], c))[:top_k])
    return out


def shown(chosen):
    return [[int(c) for c in r if c >= 0] for r in chosen]


def random_case(seed, n=40):
    rng = np.random.default_rng(seed)
    probs = (rng.random((n, 527)) ** 30).astype(np.float32)
    probs[:2] = 0                                                     # nothing to show
    probs[2, 100:150] = 0.95                                          # more than any top-k
    probs[3:5, :40] = rng.uniform(0.2, 0.9, (2, 40))
    thresholds = rng.uniform(0.05, 0.9, 527).astype(np.float32)
    thresholds[:20] = probs[3, :20]                                   # exactly on a value: >= shows it
    thresholds[20:40] = np.nextafter(probs[4, 20:40], np.float32(1))   # one float32 step above: not shown
    return probs, thresholds


# --- the rule -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("top_k", [1, 3, 20])
def test_auto_selects_each_class_against_its_own_threshold(top_k):
    probs, thresholds = random_case(top_k)
    got = shown(select_classes(probs, DisplayOptions(threshold="auto", top_k=top_k), thresholds=thresholds))
    assert got == expected_auto(probs, thresholds, top_k)
    assert any(len(r) == top_k for r in got) and any(len(r) < top_k for r in got)
    assert all(c in got[3] or len(got[3]) == top_k for c in range(20) if c not in HIDDEN)
    # a class under its own threshold is out before the cap: a lower-probability class takes its place
    p = np.zeros((1, 527), np.float32)
    p[0, [10, 11, 12]] = 0.9, 0.5, 0.2
    t = np.full(527, 0.1, np.float32)
    t[10] = 0.95
    assert shown(select_classes(p, DisplayOptions(threshold="auto", top_k=2), thresholds=t)) == [[11, 12]]


def test_auto_with_one_threshold_for_all_is_that_threshold():
    probs, _ = random_case(7)
    for value in (0.0, 0.1, 0.37, 1.0):
        same = np.full(527, value, np.float32)
        for opts in ({"top_k": 3}, {"top_k": 20, "show_music_speech": True}, {"compat": True},
                     {"exclude": ("Dog",)}):
            auto = select_classes(probs, DisplayOptions(threshold="auto", **opts), thresholds=same)
            number = select_classes(probs, DisplayOptions(threshold=value, **opts))
            np.testing.assert_array_equal(auto, number)


def test_compat_counts_classes_above_their_own_threshold():
    silence = L.index(SILENCE_MID)
    p = np.zeros((2, 527), np.float32)
    p[:, 200:210] = np.linspace(0.9, 0.45, 10)
    t = np.full(527, 0.95, np.float32)
    t[200:206] = 0.4                                   # 6 classes above their own: clip(6 - 1, 3, 5) = 5
    p[1, silence] = 0.72                               # below its own (0.95) but among the best 5: alone
    got = shown(select_classes(p, DisplayOptions(threshold="auto", compat=True), thresholds=t))
    assert got == [list(range(200, 205)), [silence]]
    t[200:206] = 0.99                                  # none above: still the original minimum of 3
    got = shown(select_classes(p[:1], DisplayOptions(threshold="auto", compat=True), thresholds=t))
    assert got == [[200, 201, 202]]
    t[200:204] = 0.1                                   # summary: 4 means above their own → clip(3, 3, 5) = 3
    res = TagResult(source="x.wav", times=np.arange(2.0), probs=p, hop=1.0, window=1.0, duration=2.0,
                    thresholds=t)
    assert [c for c, _, _ in Selection(res, DisplayOptions(threshold="auto", compat=True)).summary()] == [
        200, 201, 202]


def test_options_parse_auto_and_reject_words():
    assert DisplayOptions(threshold="auto").threshold == "auto"
    assert DisplayOptions(threshold=" AUTO ").auto
    assert DisplayOptions.from_dict(DisplayOptions(threshold="auto").to_dict()).threshold == "auto"
    assert DisplayOptions(threshold="0.25").threshold == 0.25 and not DisplayOptions(threshold=0.25).auto
    with pytest.raises(ParameterError, match=r"--threshold: must be a number between 0 and 1 or auto, "
                                             r"got 'foo'"):
        DisplayOptions(threshold="foo")
    with pytest.raises(ParameterError, match="--threshold: must be between 0 and 1"):
        DisplayOptions(threshold=1.5)


def test_auto_needs_thresholds_and_they_must_fit():
    res = TagResult(source="old.wav", times=np.arange(2.0), probs=np.zeros((2, 527), np.float32), hop=1.0,
                    window=1.0, duration=2.0)
    with pytest.raises(ParameterError, match=r"^old\.wav: no per-class thresholds \(--threshold auto needs "
                                             r"a model that stores them; give a number\)$"):
        Selection(res, DisplayOptions(threshold="auto"))
    for bad in (np.full(526, 0.5, np.float32), np.full(527, 1.5, np.float32), np.full(527, np.nan),
                np.zeros(527, np.int64)):
        with pytest.raises(DataError, match="per-class thresholds must be 527 numbers in"):
            TagResult(source="x", times=np.arange(2.0), probs=np.zeros((2, 527), np.float32), hop=1.0,
                      window=1.0, duration=2.0, thresholds=bad)


def test_probability_file_keeps_the_thresholds(tmp_path):
    probs, thresholds = random_case(3, n=6)
    res = TagResult(source="x.wav", times=np.arange(6.0), probs=probs, hop=1.0, window=1.0, duration=6.0,
                    meta={"model": "m", "thresholds": INFO}, thresholds=thresholds)
    np.savez(tmp_path / "x.npz", **res.npz_arrays(DisplayOptions(threshold="auto").to_dict()))
    back, display = load_result(tmp_path / "x.npz")
    assert display["threshold"] == "auto" and back.meta["thresholds"] == INFO and back.extras == {}
    np.testing.assert_array_equal(back.thresholds, thresholds)
    assert back.thresholds.dtype == np.float32
    arrays = res.npz_arrays({})
    arrays["thresholds"] = np.full(3, 0.5, np.float32)                   # a damaged file
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(DataError, match=r"bad\.npz: per-class thresholds must be 527 numbers"):
        load_result(tmp_path / "bad.npz")


# --- real runs ------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def auto_model(tag_models, tmp_path_factory):  # noqa: F811
    """``(model with thresholds, thresholds, probabilities of the clip)``: the tests' small classifier's
    weights written again with ``write_model(..., thresholds=...)``, each class's threshold its median
    over the clip's steps in a first run."""
    from audiotagger.classifier.models import build_model
    from audiotagger.classifier.store import read_model, restore_weights, write_model

    folder = tmp_path_factory.mktemp("auto-model")
    assert main(["tag", str(shared_file(*CLIP)), "-o", str(folder), "-f", "npz", "-q",
                 *model_args(tag_models)]) == 0
    probs = np.load(folder / "R9_ZSCveAHg_7s.npz")["probs"]
    thresholds = np.median(probs, axis=0).astype(np.float32)          # 7 steps: a value of each column
    _, _, clf = tag_models
    config, weights, meta = read_model(clf)
    model = build_model(**config)
    restore_weights(model, weights, clf)
    path = write_model(folder / "auto.npz", model, {**config, "name": "test-auto"},
                       extra={**meta, "thresholds": INFO}, thresholds=thresholds)
    return path, thresholds, probs


def auto_args(tag_models, auto_model):  # noqa: F811
    ckpt, pca, _ = tag_models
    return ["--checkpoint", str(ckpt), "--pca-params", str(pca), "--model", str(auto_model[0])]


def srt_tags(path):
    """Tags per cue of a ``--per-second`` SRT (one cue per step)."""
    blocks = path.read_text(encoding="utf-8").strip().split("\n\n")
    return [[] if b.split("\n")[2] == "-" else b.split("\n")[2].split(" | ") for b in blocks]


def test_classifier_objects_expose_the_thresholds(tag_models, auto_model):  # noqa: F811
    from audiotagger.classifier import load_classifier

    path, thresholds, _ = auto_model
    for engine in ("tf", "onnx"):
        clf = load_classifier(path, engine=engine)
        np.testing.assert_array_equal(clf.thresholds, thresholds)
        assert clf.threshold_info == INFO
        assert load_classifier(tag_models[2], engine=engine).thresholds is None


def test_tag_auto_numbers_from_probs_and_the_library(tag_models, auto_model, tmp_path, capsys):  # noqa: F811
    path, thresholds, first = auto_model
    clip = shared_file(*CLIP)
    out = tmp_path / "auto"
    assert main(["tag", str(clip), "-o", str(out), "-f", "srt,json,tsv,npz", "--per-second", "-q",
                 "--threshold", "auto", *auto_args(tag_models, auto_model)]) == 0
    with np.load(out / "R9_ZSCveAHg_7s.npz") as npz:
        probs = npz["probs"]
        np.testing.assert_array_equal(npz["thresholds"], thresholds)
        assert json.loads(str(npz["settings"]))["display"]["threshold"] == "auto"
    np.testing.assert_allclose(probs, first, rtol=1e-6, atol=1e-7)      # the same weights
    expected = expected_auto(probs, thresholds)
    assert srt_tags(out / "R9_ZSCveAHg_7s.srt") == [[L.names[c] for c in row] for row in expected]
    # per-class thresholds, not one: the best classes take turns, and some step skips a better class
    assert len({tuple(r) for r in expected}) > 1
    skipped = [c for i, row in enumerate(expected) if row for c in range(527)
               if c not in HIDDEN and c not in row and probs[i, c] > min(probs[i, row])]
    assert skipped
    doc = json.loads((out / "R9_ZSCveAHg_7s.json").read_text())
    assert doc["display"]["threshold"] == "auto" and doc["settings"]["thresholds"] == INFO

    # a number on the same model is today's rule, bit for bit
    assert main(["tag", str(clip), "-o", str(tmp_path / "num"), "-f", "srt", "--per-second", "-q",
                 "--threshold", "0.5", *auto_args(tag_models, auto_model)]) == 0
    number = srt_tags(tmp_path / "num" / "R9_ZSCveAHg_7s.srt")
    assert number == [[L.names[c] for c in row] for row in expected_auto(probs, np.full(527, 0.5))]
    assert number != srt_tags(out / "R9_ZSCveAHg_7s.srt")

    # --from-probs re-renders the same files without the model: stored auto, or asked for again
    for extra in ([], ["--threshold", "auto"]):
        again = tmp_path / f"again{len(extra)}"
        assert main(["tag", "--from-probs", str(out / "R9_ZSCveAHg_7s.npz"), "-o", str(again), "-q",
                     "-f", "srt,json,tsv,npz", *extra]) == 0
        for fmt in ("srt", "json", "tsv", "npz"):
            name = f"R9_ZSCveAHg_7s.{fmt}"
            assert (again / name).read_bytes() == (out / name).read_bytes(), (extra, name)
    # ... and with a number, from the same file
    assert main(["tag", "--from-probs", str(out / "R9_ZSCveAHg_7s.npz"), "-o", str(tmp_path / "n2"), "-q",
                 "-f", "srt", "--threshold", "0.5"]) == 0
    assert srt_tags(tmp_path / "n2" / "R9_ZSCveAHg_7s.srt") == number

    # the library: threshold="auto" as the flag
    from audiotagger import tag_file

    ckpt, pca, _ = tag_models
    res = tag_file(clip, model=path, checkpoint=ckpt, pca_params=pca, threshold="auto", per_second=True,
                   output_dir=tmp_path / "lib", formats="srt")
    np.testing.assert_array_equal(res.thresholds, thresholds)
    assert (tmp_path / "lib" / "R9_ZSCveAHg_7s.srt").read_bytes() == (out / "R9_ZSCveAHg_7s.srt").read_bytes()
    with pytest.raises(ParameterError, match=r"no per-class thresholds"):
        tag_file(clip, model=tag_models[2], checkpoint=ckpt, pca_params=pca, threshold="auto")
    assert main(["tag", str(clip), "-o", str(tmp_path / "old"), "-f", "npz", "-q",
                 *model_args(tag_models)]) == 0
    with pytest.raises(ParameterError, match=r"R9_ZSCveAHg_7s\.npz: no per-class thresholds"):
        tag_file(tmp_path / "old" / "R9_ZSCveAHg_7s.npz", from_probs=True, threshold="auto")
    capsys.readouterr()


def test_listen_auto_tags_alerts_and_saves_the_thresholds(tag_models, auto_model, tmp_path, capsys,  # noqa: F811
                                                          monkeypatch):
    from tests.test_listen import _raw, _to_16k

    path, thresholds, first = auto_model
    raw = tmp_path / "clip.s16"
    raw.write_bytes(_raw(_to_16k(tmp_path)))
    # the class most clearly above its own threshold in the first second fires an alert at once
    margin = first[0] - thresholds
    cls = int(np.argmax(margin))
    assert margin[cls] > 1e-4
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(open(raw, "rb")))
    code = main(["listen", "-", "--format", "s16le", "--rate", "16000", "--until", "3.5", "--jsonl",
                 "--threshold", "auto", "--alert", L.mids[cls], *auto_args(tag_models, auto_model),
                 "-o", str(tmp_path / "o"), "--name", "live"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    live, display = load_result(tmp_path / "o" / "live.npz")
    assert display["threshold"] == "auto" and live.num_steps == 3
    np.testing.assert_array_equal(live.thresholds, thresholds)
    lines = [json.loads(line) for line in captured.out.splitlines()]
    assert [[t["mid"] for t in line["tags"]] for line in lines] == [
        [L.mids[c] for c in row] for row in expected_auto(live.probs, thresholds)]
    alerts = [line for line in captured.err.splitlines() if "alert:" in line]
    assert len(alerts) == 1 and L.names[cls] in alerts[0]
    assert alerts[0].endswith(f"(>= {float(thresholds[cls]):g})")
