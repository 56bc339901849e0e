import csv
import io
import json
import os
from pathlib import Path

import numpy as np
import pytest

from audiotagger.errors import DataError, ParameterError
from audiotagger.labels import load_labels
from audiotagger.params import SILENCE_MID, SPEECH_MID
from audiotagger.tag.result import TagResult, load_result
from audiotagger.tag.select import DisplayOptions, Selection
from audiotagger.tag.writers import (
    DEFAULT_FORMATS,
    FORMATS,
    format_timestamp,
    get_writer,
    parse_formats,
    topk_text,
)

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("AUDIOTAGGER_UPDATE_GOLDEN") == "1"
L = load_labels()


def golden_result() -> TagResult:
    """Eight seconds with a known story: a dog barks, speech (hidden), silence, a car horn near the end."""
    p = np.full((8, 527), 0.001, np.float32)
    dog, bark, horn = L.index("Dog"), L.index("Bark"), L.index("Vehicle horn, car horn, honking")
    p[0:3, dog] = [0.81, 0.74, 0.66]
    p[0:3, bark] = [0.52, 0.61, 0.23]
    p[3, dog] = 0.35
    p[4:6, L.index(SPEECH_MID)] = 0.93
    p[6, L.index(SILENCE_MID)] = 0.88
    p[6, dog] = 0.12
    p[7, horn] = 0.57
    p[7, dog] = 0.41
    return TagResult("walk.wav", np.arange(8.0), p, 1.0, 5.0, 8.2,
                     {"model": "golden", "backend": "vggish", "left": 3, "right": 1, "version": "test"})


CASES = {
    "walk.srt": ("srt", DisplayOptions(threshold=0.2)),
    "walk.vtt": ("vtt", DisplayOptions(threshold=0.2)),
    "walk.tsv": ("tsv", DisplayOptions(threshold=0.2)),
    "walk_per_second.srt": ("srt", DisplayOptions(threshold=0.2, per_second=True)),
    "walk_per_second.tsv": ("tsv", DisplayOptions(threshold=0.2, per_second=True)),
    "walk_compat.srt": ("srt", DisplayOptions(threshold=0.2, per_second=True, compat=True)),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_golden_files(name):
    fmt, options = CASES[name]
    text = get_writer(fmt).render(Selection(golden_result(), options))
    if UPDATE:
        (GOLDEN / name).write_text(text, encoding="utf-8")
    assert text == (GOLDEN / name).read_text(encoding="utf-8")


def test_srt_structure_parses_back():
    options = DisplayOptions(threshold=0.2, per_second=True)
    text = get_writer("srt").render(Selection(golden_result(), options))
    blocks = text.strip("\n").split("\n\n")
    assert len(blocks) == 8
    for i, block in enumerate(blocks, start=1):
        index, times, label = block.split("\n")
        assert int(index) == i
        assert times == f"{format_timestamp(i - 1 + 0.001)} --> {format_timestamp(i)}"
        assert label


def test_timestamps():
    assert format_timestamp(0.001) == "00:00:00,001"
    assert format_timestamp(3599.9996) == "01:00:00,000"
    assert format_timestamp(90061.5, ".") == "25:01:01.500"      # no 24 h wrap


def test_csv_quotes_names_with_commas_and_json_is_consistent():
    sel = Selection(golden_result(), DisplayOptions(threshold=0.2))
    rows = list(csv.DictReader(io.StringIO(get_writer("csv").render(sel))))
    tsv = get_writer("tsv").render(sel).splitlines()[1:]
    assert len(rows) == len(tsv)
    assert rows[-2]["label"] == "Vehicle horn, car horn, honking" and rows[-2]["mid"] == "/m/0912c9"
    doc = json.loads(get_writer("json").render(sel))
    assert doc["steps"] == 8 and doc["settings"]["model"] == "golden"
    assert [s["text"] for s in doc["segments"]] == [
        "Dog | Bark", "Dog", "Silence", "Vehicle horn, car horn, honking | Dog"]
    assert doc["summary"][0]["label"] == "Dog"


def test_txt_blocks_follow_paddleaudio_layout():
    res = golden_result()
    text = get_writer("txt").render(Selection(res, DisplayOptions(top_k=2)))
    blocks = text.split("\n\n")
    assert blocks[-1] == "" and len(blocks) == 9
    assert blocks[0].splitlines() == ["0.0", "Dog: 0.81", "Bark: 0.52"]
    times = np.array([0.0, 0.3, 0.6])
    blocks = topk_text(times, np.eye(3, 527, dtype=np.float32), L.names, 1).split("\n\n")
    assert blocks[2].split("\n") == ["0.6", f"{L.names[2]}: 1.0"]


def test_npz_round_trip_and_rerender_identical(tmp_path):
    res = golden_result()
    options = DisplayOptions(threshold=0.3, exclude=("Bark",), smooth=2)
    get_writer("npz").write(Selection(res, options), tmp_path / "walk.npz")
    with np.load(tmp_path / "walk.npz", allow_pickle=False) as npz:
        assert npz["probs"].shape == (8, 527) and npz["probs"].dtype == np.float32
        assert npz["mids"][0] == L.mids[0] and npz["labels"][0] == L.names[0]
        assert int(npz["left"]) == 3 and str(npz["model"]) == "golden"
    loaded, stored = load_result(tmp_path / "walk.npz")
    assert DisplayOptions.from_dict(stored) == options
    np.testing.assert_array_equal(loaded.probs, res.probs)
    for fmt in ("srt", "vtt", "tsv", "csv", "json", "txt"):
        a = get_writer(fmt).render(Selection(res, options))
        b = get_writer(fmt).render(Selection(loaded, DisplayOptions.from_dict(stored)))
        assert a == b, fmt


def test_load_result_rejects_other_files(tmp_path):
    np.savez(tmp_path / "other.npz", x=np.zeros(3))
    with pytest.raises(DataError, match="other.npz: not an audiotagger probability file"):
        load_result(tmp_path / "other.npz")
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(DataError, match="bad.npz: cannot read"):
        load_result(tmp_path / "bad.npz")
    get_writer("npz").write(Selection(golden_result(), DisplayOptions()), tmp_path / "whole.npz")
    (tmp_path / "cut.npz").write_bytes((tmp_path / "whole.npz").read_bytes()[:5000])
    with pytest.raises(DataError, match="cut.npz: cannot read"):
        load_result(tmp_path / "cut.npz")


def test_parse_formats():
    assert parse_formats(None) == DEFAULT_FORMATS
    assert parse_formats("all") == FORMATS
    assert parse_formats("vtt, srt,vtt") == ("vtt", "srt")
    assert parse_formats(["tsv", "json,npz"]) == ("tsv", "json", "npz")
    with pytest.raises(ParameterError, match="-f: unknown output format 'mp3'"):
        parse_formats("srt,mp3")
    with pytest.raises(ParameterError):
        parse_formats(",")
    assert get_writer("mp4").extension == "tagged.mp4"


def test_png_is_written_without_media(tmp_path):
    pytest.importorskip("matplotlib")
    path = get_writer("png").write(Selection(golden_result(), DisplayOptions()), tmp_path / "walk.png",
                                   source=tmp_path / "missing.wav")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
