"""Custom classes, the parts without a network: reading class folders and csvs (bad entries left out with one
line each), the clip split, windows of any length, single-label metrics, and the backbone registry."""

from __future__ import annotations

import numpy as np
import pytest

from audiotagger.backbones import BACKBONES, BackboneSpec, backbone_names, get_backbone, load_backbone
from audiotagger.classifier.tiling import clip_windows, tile_to_ten
from audiotagger.errors import DataError, ModelError, ParameterError
from audiotagger.train.audio import read_audio_csv, read_audio_folder
from audiotagger.train.custom import label_matrix, split_clips
from audiotagger.train.metrics import confusion_table, single_label_stats


def touch(path, data=b"RIFF"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_folder_classes_sorted_and_empty_class_left_out(tmp_path):
    for name in ("b.wav", "a.flac", "sub/c.ogg", ".hidden.wav", "notes.txt"):
        touch(tmp_path / "speech" / name)
    touch(tmp_path / "music" / "m.mp3")
    (tmp_path / "birds").mkdir()
    (tmp_path / ".cache").mkdir()
    touch(tmp_path / "loose.wav")
    data = read_audio_folder(tmp_path)
    assert data.labels == ("music", "speech")
    assert [c.path.relative_to(tmp_path).as_posix() for c in data.clips] == [
        "music/m.mp3", "speech/a.flac", "speech/b.wav", "speech/sub/c.ogg"]
    assert all(c.labels == (c.path.relative_to(tmp_path).parts[0],) for c in data.clips)
    assert data.problems == [
        f"{tmp_path / 'birds'}: class folder holds no audio files; class 'birds' left out"]


def test_folder_with_one_class_is_an_error(tmp_path):
    touch(tmp_path / "speech" / "a.wav")
    (tmp_path / "music").mkdir()
    with pytest.raises(DataError,
                       match=r"needs at least two class folders with audio files, found 1 \(speech\)"):
        read_audio_folder(tmp_path)
    with pytest.raises(DataError, match="no such folder"):
        read_audio_folder(tmp_path / "nope")


def test_folder_against_a_models_labels(tmp_path):
    touch(tmp_path / "speech" / "a.wav")
    touch(tmp_path / "whale" / "w.wav")
    data = read_audio_folder(tmp_path, labels=("music", "speech"))
    assert data.labels == ("music", "speech") and len(data.clips) == 1
    assert "class 'whale' is not among the known classes (music, speech); left out" in data.problems[0]


def test_csv_positional_rows_and_every_bad_row(tmp_path):
    touch(tmp_path / "a.wav")
    touch(tmp_path / "sub" / "b.wav")
    (tmp_path / "data.csv").write_text(
        "a.wav,speech\n"                         # path,labels
        "sub/b.wav,music;speech,val\n"           # path,labels,fold (multi-label)
        "a.wav,music,1.5,4\n"                    # path,labels,start,end
        "a.wav,noise,,2,test\n"                  # all five, open start
        "\n# a comment\n"
        "missing.wav,speech\n"
        "a.wav,\n"
        "a.wav,music,x,2\n"
        "a.wav,music,3,2\n"
        "a.wav,music,1,2,3,4,5,6\n", encoding="utf-8")
    data = read_audio_csv(tmp_path / "data.csv")
    assert data.labels == ("music", "noise", "speech") and data.has_folds
    got = [(c.path.name, c.labels, c.start, c.end, c.fold) for c in data.clips]
    assert got == [("a.wav", ("speech",), None, None, None),
                   ("b.wav", ("music", "speech"), None, None, "val"),
                   ("a.wav", ("music",), 1.5, 4.0, None), ("a.wav", ("noise",), None, 2.0, "test")]
    assert data.clips[2].name == f"{tmp_path / 'a.wav'}[1.5-4]"
    where = f"{tmp_path / 'data.csv'} line"
    assert data.problems == [
        f"{where} 7: {tmp_path / 'missing.wav'}: no such file",
        f"{where} 8: {tmp_path / 'a.wav'}: no label",
        f"{where} 9: {tmp_path / 'a.wav'}: start 'x' is not a number of seconds",
        f"{where} 10: {tmp_path / 'a.wav'}: end 2 s is not after start 3 s",
        f"{where} 11: 8 columns, expected 2 to 5 (path,labels[,start,end][,fold])",
    ]
    y = label_matrix(data.clips, data.labels)
    assert y.tolist() == [[0, 0, 1], [1, 0, 1], [1, 0, 0], [0, 1, 0]]


def test_csv_header_tabs_known_labels_and_single_label(tmp_path):
    touch(tmp_path / "a.wav")
    (tmp_path / "d.tsv").write_text("fold\tlabel\tpath\nval\tspeech\ta.wav\ntrain\tdog\ta.wav\n"
                                    "train\tmusic;speech\ta.wav\n", encoding="utf-8")
    data = read_audio_csv(tmp_path / "d.tsv", labels=("music", "speech"), single_label=True)
    assert [(c.labels, c.fold) for c in data.clips] == [(("speech",), "val")]
    assert data.labels == ("music", "speech")
    assert "unknown label 'dog' (known: music, speech)" in data.problems[0]
    assert "2 labels (music;speech), but --single-label needs one" in data.problems[1]
    (tmp_path / "h.csv").write_text("path,colour\na.wav,red\n", encoding="utf-8")
    with pytest.raises(DataError, match="header must name path, labels"):
        read_audio_csv(tmp_path / "h.csv")
    (tmp_path / "one.csv").write_text("a.wav,speech\nnope.wav,music\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"needs at least two classes, found 1 \(speech\)"):
        read_audio_csv(tmp_path / "one.csv")
    (tmp_path / "none.csv").write_text("nope.wav,music\n", encoding="utf-8")
    with pytest.raises(DataError, match="no usable row .1 left out: .*nope.wav: no such file"):
        read_audio_csv(tmp_path / "none.csv")
    with pytest.raises(DataError, match="cannot read csv"):
        read_audio_csv(tmp_path / "absent.csv")


def _clips(tmp_path, labels, folds=None):
    from audiotagger.train.audio import Clip

    folds = folds or [None] * len(labels)
    return [Clip(tmp_path / f"{i}.wav", tuple(lab.split(";")), fold=f) for i, (lab, f) in
            enumerate(zip(labels, folds, strict=True))]


def test_split_is_stratified_seeded_and_by_fold(tmp_path):
    clips = _clips(tmp_path, ["a"] * 10 + ["b"] * 3 + ["a;b"] * 1)
    y = label_matrix(clips, ("a", "b"))
    kw = dict(has_folds=False, validation_fold=None, test_fold="test", split_seed=5)
    tr, va, te = split_clips(clips, y, validation_split=0.2, test_split=0.1, **kw)
    assert sorted(np.concatenate([tr, va, te]).tolist()) == list(range(14))
    assert len(va) == 3 and len(te) == 2          # a: 2 val + 1 test; b: 1 val + 1 test; a;b: all train
    assert {0, 1}.issubset({int(np.flatnonzero(y[i])[0]) for i in va})
    assert 13 in tr
    again = split_clips(clips, y, validation_split=0.2, test_split=0.1, **kw)
    assert all((p == q).all() for p, q in zip((tr, va, te), again, strict=True))
    with pytest.raises(ParameterError, match="needs held-out clips"):
        split_clips(clips, y, validation_split=0.0, test_split=0.0, **kw)

    folded = _clips(tmp_path, ["a", "a", "b", "b", "a"], ["train", "eval", "x", "test", "val"])
    y = label_matrix(folded, ("a", "b"))
    tr, va, te = split_clips(folded, y, has_folds=True, validation_split=0, test_split=0,
                             validation_fold=None, test_fold="test", split_seed=0)
    assert (tr.tolist(), va.tolist(), te.tolist()) == ([0, 2], [1, 4], [3])
    tr, va, te = split_clips(folded, y, has_folds=True, validation_split=0, test_split=0,
                             validation_fold="x", test_fold="none", split_seed=0)
    assert (tr.tolist(), va.tolist(), te.tolist()) == ([0, 1, 3, 4], [2], [])
    with pytest.raises(ParameterError, match="fold column"):
        split_clips(folded, y, has_folds=True, validation_split=0.2, test_split=0, validation_fold=None,
                    test_fold="test", split_seed=0)


def test_clip_windows_cover_every_row_once():
    rows = np.arange(23 * 3).reshape(23, 3).astype(np.float32)
    windows, n = clip_windows(rows)
    assert windows.shape == (3, 10, 3) and n.tolist() == [10, 10, 3]
    np.testing.assert_array_equal(windows[:2].reshape(20, 3), rows[:20])
    np.testing.assert_array_equal(windows[2], tile_to_ten(rows[20:]))
    one, n1 = clip_windows(rows[:1].astype(np.uint8))
    assert one.dtype == np.uint8 and one.shape == (1, 10, 3) and n1.tolist() == [1]
    with pytest.raises(ParameterError):
        clip_windows(rows[:0])


def test_single_label_accuracy_and_confusion():
    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.5, 0.4, 0.1], [0.1, 0.1, 0.8]])
    y = np.eye(3, dtype=bool)[[0, 1, 1, 2]]
    s = single_label_stats(probs, y)
    assert s["accuracy"] == 0.75 and s["confusion"] == [[1, 0, 0], [1, 1, 0], [0, 0, 1]]
    table = confusion_table(s["confusion"], ["music", "noise", "speech"])
    assert table.splitlines()[0].split() == ["true", "\\", "predicted", "music", "noise", "speech"]
    assert table.splitlines()[2].split() == ["noise", "1", "1", "0"]


def test_backbone_registry_and_a_backbone_that_is_not_installed():
    assert backbone_names()[:3] == ("vggish", "yamnet", "panns-cnn14")
    spec = get_backbone("panns-cnn14")
    assert (spec.dim, spec.dtype, spec.sample_rate) == (2048, "float32", 32000)
    assert (get_backbone("vggish").dim, get_backbone("vggish").dtype) == (128, "uint8")
    with pytest.raises(ParameterError, match="--backbone: unknown 'openl3'"):
        get_backbone("openl3")
    ghost = BackboneSpec("ghost", 16000, 1.0, 8, "float32", "audiotagger.no_such_module:load", "test")
    from audiotagger.backbones import register_backbone

    register_backbone(ghost)
    try:
        with pytest.raises(ParameterError, match="already registered"):
            register_backbone(ghost)
        with pytest.raises(ModelError, match="backbone 'ghost' is not installed"):
            load_backbone("ghost")
    finally:
        del BACKBONES["ghost"]


def test_selection_over_a_custom_label_set():
    from audiotagger.labels import LabelSet
    from audiotagger.tag.result import TagResult
    from audiotagger.tag.select import DisplayOptions, Selection

    labels = ("music", "speech", "dog")
    res = TagResult("x.wav", np.arange(2.0), np.array([[0.6, 0.3, 0.1], [0.1, 0.2, 0.7]]), 1.0, 1.0, 2.0,
                    mids=labels, names=labels)
    sel = Selection(res, DisplayOptions(threshold=0.25))
    assert [[labels[c] for c in row if c >= 0] for row in sel.chosen] == [["music", "speech"], ["dog"]]
    assert [labels[c] for c, _, _ in sel.summary()][:2] == ["dog", "music"]    # the user's music is shown
    opts = DisplayOptions(threshold=0.25, exclude=("speech",)).check(LabelSet(labels, labels))
    assert [[labels[c] for c in row if c >= 0] for row in Selection(res, opts).chosen] == [["music"], ["dog"]]
    with pytest.raises(ParameterError, match="--exclude: unknown class 'cat'"):
        DisplayOptions(exclude=("cat",)).check(LabelSet(labels, labels))
