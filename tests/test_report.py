"""The ``html`` writer without a browser: exact compact storage, a self-contained page, media links and
embedding, the folder index, and the CLI wiring (``-f html``, ``--from-probs``, ``--embed-media``)."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import zlib

import numpy as np
import pytest
import soundfile as sf

from audiotagger.cli import main
from audiotagger.errors import AudioTaggerWarning
from audiotagger.tag import DisplayOptions, Selection
from audiotagger.tag.report import read_index_entry, write_index, write_page
from audiotagger.tag.report.encode import pack_probs, q_threshold, threshold_grid
from audiotagger.tag.report.params import QUANT_LEVELS
from audiotagger.tag.tagger import write_outputs
from tests.report_fixtures import episodes_result

pytestmark = pytest.mark.filterwarnings("ignore:.*media not found:audiotagger.errors.AudioTaggerWarning")


def block(html: str, block_id: str) -> str:
    m = re.search(rf'<script type="[^"]+" id="{block_id}">(.*?)</script>', html, flags=re.S)
    assert m, block_id
    return m.group(1)


def page_arrays(html: str) -> tuple[dict, dict]:
    meta = json.loads(block(html, "at-meta"))
    raw = zlib.decompress(base64.b64decode(block(html, "at-data")))
    types = {"Float64Array": "<f8", "Float32Array": "<f4", "Int32Array": "<i4", "Uint16Array": "<u2"}
    arrays = {lay["name"]: np.frombuffer(raw, dtype=types[lay["type"]], count=lay["length"],
                                         offset=lay["offset"]) for lay in meta["layout"]}
    return meta, arrays


def test_stored_levels_decide_every_slider_threshold_and_rank_like_float32(rng):
    p = (rng.random((400, 527)) ** 6).astype(np.float32)
    p[:, 5] = p[:, 9]                                     # exact ties: order by class index
    p[:, 7] = np.nextafter(p[:, 9], np.float32(1))        # closer than a level: kept exactly
    p[:50, 11] = np.float32(0.3)                          # on a slider threshold
    p[50:100, 11] = np.nextafter(np.float32(0.3), np.float32(0))
    packed = pack_probs(p, 0.1)
    cls, q = packed["classes"], packed["q"].astype(np.int64)
    sub = p[:, cls]
    stored = q > 0
    assert np.all(stored[sub >= 0.01])                    # everything the slider can show is stored
    for t in threshold_grid(0.1):
        np.testing.assert_array_equal(q >= q_threshold(t), sub >= np.float32(t), err_msg=str(t))
    # the page's order (level, then exact value where levels tie, then class) is numpy's stable order
    exact = np.full(sub.shape, np.nan, dtype=np.float64)
    exact[packed["tie_rows"], packed["tie_cols"]] = packed["tie_values"]
    j7 = list(cls).index(7)
    assert stored[:, j7].sum() > 100 and np.isfinite(exact[stored[:, j7], j7]).all()
    for i in range(p.shape[0]):
        cols = np.flatnonzero(stored[i])
        page = sorted(cols, key=lambda j: (-q[i, j], -np.nan_to_num(exact[i, j], nan=0.0), j))
        true = cols[np.argsort(-sub[i, cols], kind="stable")]
        assert list(page) == list(true), i
    assert np.abs((q[stored] - 1) / QUANT_LEVELS - sub[stored]).max() <= 1.5 / QUANT_LEVELS


def test_compat_keeps_each_steps_best_five_below_the_floor():
    p = np.full((3, 527), 1e-4, dtype=np.float32)
    p[:, 20:25] = [0.002, 0.003, 0.004, 0.005, 0.006]
    packed = pack_probs(p, 0.1)
    assert list(packed["classes"]) == [20, 21, 22, 23, 24]


@pytest.fixture
def small_result(tmp_path):
    wav = tmp_path / "media" / "beep.wav"
    wav.parent.mkdir()
    sf.write(wav, 0.2 * np.sin(2 * np.pi * 440 * np.arange(5 * 16000) / 16000), 16000)
    result = episodes_result(5, seed=3, classes={"Dog": [(1, 4, 0.8)]}, active=0, source=str(wav))
    return result, wav


def test_page_is_self_contained_and_links_media_relatively(small_result, tmp_path):
    result, wav = small_result
    out = tmp_path / "out" / "sub"
    paths = {"html": out / "beep.html", "srt": out / "beep.srt"}
    write_outputs(Selection(result, DisplayOptions()), paths, source=wav)
    html = paths["html"].read_text(encoding="utf-8")
    # no external resource of any kind; a policy forbids fetching anything but media
    assert not re.search(r"<(script|link|img|iframe)[^>]+(src|href)=", html)
    assert "default-src 'none'" in html and "http://" not in html and "https://" not in html
    meta, arrays = page_arrays(html)
    assert meta["media"]["href"] == "../../media/beep.wav"
    assert (paths["html"].parent / meta["media"]["href"]).resolve() == wav.resolve()
    assert meta["outputs"] == [{"format": "srt", "href": "beep.srt"}]
    np.testing.assert_array_equal(arrays["times"], np.arange(5.0))
    np.testing.assert_allclose(arrays["means"], result.probs.mean(axis=0, dtype=np.float64))
    dog = meta["names"].index("Dog")
    q = arrays["q"].reshape(meta["m"], meta["n"])[meta["classes"].index(dog)]
    assert list(q[[0, 4]]) == [0, 0]                       # under the floor: not stored
    np.testing.assert_allclose((q[1:4].astype(float) - 1) / QUANT_LEVELS, result.probs[1:4, dog], atol=1e-5)
    entry = read_index_entry(paths["html"])
    assert entry["name"] == "beep.wav" and "Dog" in entry["shown"] and entry["shown"]["Dog"] == 3.0
    assert entry["outputs"] == [{"format": "srt", "href": "beep.srt"}]


def test_embed_media_puts_a_small_audio_track_in_the_page(small_result, tmp_path):
    from audiotagger.audio import ffmpeg_exe

    result, wav = small_result
    page = write_page(Selection(result, DisplayOptions()), tmp_path / "beep.html", media=wav,
                      embed_media=True)
    html = page.read_text(encoding="utf-8")
    meta, _ = page_arrays(html)
    assert meta["media"]["embedded"] and meta["media"]["href"] is None
    track = tmp_path / "track.webm"
    track.write_bytes(base64.b64decode(block(html, "at-audio")))
    assert track.stat().st_size < 30_000
    info = subprocess.run([ffmpeg_exe(), "-hide_banner", "-i", str(track)], capture_output=True,
                          text=True).stderr
    assert "Audio: opus" in info and re.search(r"Duration: 00:00:0[45]\.", info), info


def test_missing_media_gives_a_page_without_player_source(tmp_path):
    result = episodes_result(20, seed=1, active=3, source=str(tmp_path / "gone.mp4"))
    with pytest.warns(AudioTaggerWarning, match="gone.mp4: media not found"):
        page = write_page(Selection(result, DisplayOptions()), tmp_path / "gone.html")
    meta, _ = page_arrays(page.read_text(encoding="utf-8"))
    assert meta["media"] == {"name": "gone.mp4", "kind": "video", "href": None, "embedded": False,
                             "found": False}


def test_cli_writes_pages_from_probs_and_an_index_for_several_inputs(tmp_path, capsys):
    npzs = []
    for k, stem in enumerate(("a", "b")):
        res = episodes_result(30 + k, seed=k, classes={"Dog": [(0, 10, 0.9)]} if k else {}, active=2,
                              source=f"{stem}.wav")
        npzs += ["--from-probs", str(write_outputs(Selection(res, DisplayOptions()),
                                                   {"npz": tmp_path / f"{stem}.npz"})[0])]
    out = tmp_path / "out"
    assert main(["tag", *npzs[:2], "-o", str(tmp_path / "one"), "-f", "html", "-q"]) == 0
    assert [p.name for p in (tmp_path / "one").iterdir()] == ["a.html"]          # one input: no index
    assert main(["tag", *npzs, "-o", str(out), "-f", "html,tsv", "-q"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["a.html", "a.tsv", "b.html", "b.tsv", "index.html"]
    (out / "notes.html").write_text("<html>not a report</html>")
    index = write_index(out).read_text(encoding="utf-8")
    files = json.loads(block(index, "at-files"))
    assert [f["name"] for f in files] == ["a.wav", "b.wav"]
    assert [f["href"] for f in files] == ["a.html", "b.html"]
    assert "Dog" in files[1]["shown"] and "Dog" not in files[0]["shown"]
    assert files[0]["outputs"] == [{"format": "tsv", "href": "a.tsv"}]
    assert "default-src 'none'" in index
    # the page's run settings and display options come from the .npz
    meta, _ = page_arrays((out / "b.html").read_text(encoding="utf-8"))
    assert meta["settings"]["model"] == "synthetic" and meta["options"]["threshold"] == 0.1


def test_html_is_part_of_all_and_needs_no_model(tmp_path):
    from audiotagger.tag.writers import parse_formats

    assert "html" in parse_formats("all")
    res = episodes_result(4, seed=2, active=1, source="x.wav")
    npz = write_outputs(Selection(res, DisplayOptions(threshold=0.2, exclude=("Dog",), top_k=3)),
                        {"npz": tmp_path / "x.npz"})[0]
    assert main(["tag", "--from-probs", str(npz), "-o", str(tmp_path), "-f", "html", "-q",
                 "--show-music-speech"]) == 0
    meta, _ = page_arrays((tmp_path / "x.html").read_text(encoding="utf-8"))
    assert meta["options"]["show_music_speech"] is True and meta["options"]["top_k"] == 3
    assert meta["options"]["exclude"] == [meta["names"].index("Dog")]


def test_index_of_a_recursive_run_links_into_sub_folders(tmp_path):
    out = tmp_path / "out"
    for rel in ("x/a", "x/y/b", "c"):
        res = episodes_result(10, seed=len(rel), active=2, source=f"{rel.rsplit('/', 1)[-1]}.wav")
        path = out / f"{rel}.html"
        write_outputs(Selection(res, DisplayOptions()), {"html": path, "srt": path.with_suffix(".srt")})
    files = json.loads(block(write_index(out).read_text(encoding="utf-8"), "at-files"))
    assert [(f["href"], f["dir"]) for f in files] == [("c.html", ""), ("x/a.html", "x"),
                                                      ("x/y/b.html", "x/y")]
    assert files[2]["outputs"] == [{"format": "srt", "href": "x/y/b.srt"}]
    assert all((out / f["outputs"][0]["href"]).is_file() for f in files)
