"""``-f html`` pages and the folder index, looked at in a real browser (headless Chromium via Playwright).

The shared 60 s video is tagged end to end (official-format VGGish checkpoint made by the tests, a small
classifier); a 3-hour result is synthetic. Each page must load without console errors or network
requests, seek the player where the heatmap is clicked, and re-select exactly what ``audiotagger tag``
writes for the same options. Skipped, with the reason, where Playwright or Chromium is missing.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from audiotagger.cli import main
from audiotagger.tag import DisplayOptions, Selection
from audiotagger.tag.tagger import write_outputs
from tests.conftest import shared_file
from tests.report_fixtures import (
    assert_same_events,
    browser,  # noqa: F401  (fixture)
    episodes_result,
    open_page,
    page_events,
    tsv_events,
    wait_until,
)
from tests.test_tag_e2e import model_args, tag_models  # noqa: F401  (fixture)

pytestmark = [pytest.mark.timeout(300),
              pytest.mark.filterwarnings("ignore:.*media not found:audiotagger.errors.AudioTaggerWarning")]


def rerender(npz, out, *flags) -> dict:
    """``audiotagger tag --from-probs NPZ -f tsv`` with ``flags``; returns the TSV's events."""
    assert main(["tag", "--from-probs", str(npz), "-f", "tsv", "-o", str(out), "-q", "--overwrite",
                 *flags]) == 0
    return tsv_events(out / (npz.stem + ".tsv"))


def set_slider(page, value: float) -> None:
    """Move the threshold slider with the keyboard (one arrow press per 0.01 step)."""
    slider = page.locator("#threshold")
    current = float(slider.input_value())
    steps = int(round((value - current) / 0.01))
    slider.focus()
    for _ in range(abs(steps)):
        page.keyboard.press("ArrowRight" if steps > 0 else "ArrowLeft")
    assert float(slider.input_value()) == pytest.approx(value)
    assert page.evaluate("audiotaggerReport.state.threshold") == pytest.approx(value)


@pytest.fixture(scope="module")
def video_run(tag_models, tmp_path_factory):  # noqa: F811
    """The shared video tagged end to end with ``-f html,tsv,npz,srt`` (a real run, real ffmpeg)."""
    video = shared_file("video", "big_buck_bunny_60s.mp4")
    out = tmp_path_factory.mktemp("video-report")
    assert main(["tag", str(video), "-o", str(out), "-f", "html,tsv,npz,srt", "-q",
                 *model_args(tag_models)]) == 0
    return video, out


def test_video_page_plays_seeks_and_reselects_like_tag(browser, video_run, tmp_path):  # noqa: F811
    video, out = video_run
    page_path, npz = out / "big_buck_bunny_60s.html", out / "big_buck_bunny_60s.npz"
    probs = np.load(npz)["probs"]
    with open_page(browser, page_path) as (page, log):
        assert page.evaluate("document.querySelector('video').getAttribute('src')").endswith(
            "big_buck_bunny_60s.mp4")
        wait_until(page, "document.querySelector('video').readyState >= 1", timeout=10)
        assert page.evaluate("document.querySelector('video').duration") == pytest.approx(60.1, abs=0.2)

        # the run's own selection first: exactly the TSV written beside the page
        assert_same_events(page_events(page), tsv_events(out / "big_buck_bunny_60s.tsv"))

        # clicking the heatmap at 30 s seeks the player there, and the playhead follows
        box = page.locator("#heat").bounding_box()
        x = page.evaluate("audiotaggerReport.clientX('heat', 30)")
        page.mouse.click(x, box["y"] + box["height"] - 5)
        wait_until(page, "Math.abs(document.querySelector('video').currentTime - 30) < 0.5", timeout=5)
        assert page.evaluate("document.querySelector('video').currentTime") == pytest.approx(30, abs=0.5)
        head = page.locator("#heat-head").bounding_box()
        assert head["x"] + head["width"] / 2 == pytest.approx(x, abs=2)

        # the player moves the playhead (playing, muted)
        page.evaluate("(() => { const v = document.querySelector('video'); v.muted = true; "
                      "v.currentTime = 10; return v.play(); })()")
        wait_until(page, "document.querySelector('video').currentTime > 10.3", timeout=10)
        page.evaluate("document.querySelector('video').pause()")
        t = page.evaluate("document.querySelector('video').currentTime")
        head = page.locator("#heat-head").bounding_box()
        assert head["x"] + head["width"] / 2 == pytest.approx(
            page.evaluate(f"audiotaggerReport.clientX('heat', {t})"), abs=3)

        # clicking an event bar seeks to its start
        events = page.evaluate("audiotaggerReport.events()")
        lanes = page.evaluate("audiotaggerReport.lanes()")
        near = [e for e in events if lanes.index(e["label"]) < 10]
        assert near
        if near:
            # the latest start among the first lanes (a start at 0 is still a seek: the video is at 10 s)
            first = max(near, key=lambda e: e["start"])
            lane = lanes.index(first["label"])
            page.locator("#lanes").scroll_into_view_if_needed()
            lbox = page.locator("#lanes").bounding_box()
            mid = (first["start"] + first["end"]) / 2
            page.mouse.click(page.evaluate(f"audiotaggerReport.clientX('lanes', {mid})"),
                             lbox["y"] + 20 + lane * 15 + 6)
            at = first["start"]
            wait_until(page, f"Math.abs(document.querySelector('video').currentTime - {at}) < 0.3", timeout=5)

        # the threshold slider re-selects what `tag --threshold T` writes, at several values
        visible = np.delete(probs, [0, 137], axis=1)                       # Speech and Music are hidden
        best = -np.sort(-visible, axis=1)[:, :5]                           # what top-5 can show
        values = sorted({round(float(np.quantile(best, q)), 2) for q in (0.2, 0.5, 0.9)} - {0.0})
        counts = []
        for value in values:
            set_slider(page, value)
            written = rerender(npz, tmp_path, "--threshold", str(value))
            assert_same_events(page_events(page), written)
            counts.append(sum(e[1] - e[0] for e in written))     # class-milliseconds shown
        assert len(values) >= 2 and counts[0] > counts[-1] > 0, (values, counts)
        # top-k, Speech/Music, exclude
        page.fill("#topk", "2")
        assert_same_events(page_events(page), rerender(npz, tmp_path, "--threshold", str(values[-1]),
                                                       "--top-k", "2"))
        page.check("#speech-music")
        assert_same_events(page_events(page), rerender(npz, tmp_path, "--threshold", str(values[-1]),
                                                       "--top-k", "2", "--show-music-speech"))
        top = page.evaluate("audiotaggerReport.summary()")[0]["label"]
        page.fill("#exclude", top)
        page.keyboard.press("Enter")
        assert top not in [e["label"] for e in page.evaluate("audiotaggerReport.events()")]
        assert_same_events(page_events(page), rerender(npz, tmp_path, "--threshold", str(values[-1]),
                                                       "--top-k", "2", "--show-music-speech",
                                                       "--exclude", top))
        assert not log.problems(), log.problems()
        requested = {u.rsplit("/", 1)[-1] for u in log.requests}
        assert requested <= {"big_buck_bunny_60s.html", "big_buck_bunny_60s.mp4"}, requested


def set_threshold(page, value: float) -> None:
    """Set the threshold slider's value and fire its ``input`` event (as a drag would)."""
    page.eval_on_selector("#threshold", "(el, v) => { el.value = String(v); "
                          "el.dispatchEvent(new Event('input', {bubbles: true})); }", value)
    assert page.evaluate("audiotaggerReport.state.threshold") == pytest.approx(value)


@pytest.fixture(scope="module")
def three_hours(tmp_path_factory):
    """A synthetic 3-hour result saved as ``.npz`` and re-rendered with ``--from-probs -f html,tsv``."""
    from audiotagger.tag.tagger import write_outputs

    out = tmp_path_factory.mktemp("three-hours")
    result = episodes_result(3 * 3600, seed=5, source="three_hours.wav")
    npz = write_outputs(Selection(result, DisplayOptions()), {"npz": out / "three_hours.npz"})[0]
    assert main(["tag", "--from-probs", str(npz), "-f", "html,tsv", "-o", str(out), "-q"]) == 0
    return npz, out


def test_three_hour_page_is_small_fast_and_exact(browser, three_hours, tmp_path):  # noqa: F811
    npz, out = three_hours
    page_path = out / "three_hours.html"
    size = page_path.stat().st_size
    assert size < 5e6, size
    # interactive in under 2 s: the best of up to three loads, as the machine may be busy with other jobs
    loads = []
    for _ in range(3):
        with open_page(browser, page_path) as (page, log):
            loads.append(page.evaluate("audiotaggerReport.readyMs"))
            assert not log.problems(), log.problems()
        if loads[-1] < 2000:
            break
    assert min(loads) < 2000, loads
    with open_page(browser, page_path) as (page, log):
        assert page.evaluate("audiotaggerReport.meta.n") == 10800
        assert_same_events(page_events(page), tsv_events(out / "three_hours.tsv"))
        set_threshold(page, 0.37)
        assert_same_events(page_events(page), rerender(npz, tmp_path, "--threshold", "0.37"))
        # zoom with the wheel around the cursor, pan by dragging, hover read-out in h:mm:ss
        box = page.locator("#heat").bounding_box()
        x = page.evaluate("audiotaggerReport.clientX('heat', 5400)")
        page.mouse.move(x, box["y"] + 40)
        for _ in range(5):
            page.mouse.wheel(0, -400)
        page.wait_for_timeout(100)
        v0, v1 = page.evaluate("audiotaggerReport.view()")
        assert v1 - v0 < 3 * 3600 / 5 and v0 < 5400 < v1
        page.mouse.move(x + 1, box["y"] + 40)
        tip = page.locator("#tip")
        assert tip.is_visible() and tip.inner_text().startswith("1:30:0")
        page.mouse.down()
        page.mouse.move(x - 200, box["y"] + 40, steps=4)
        page.mouse.up()
        w0, w1 = page.evaluate("audiotaggerReport.view()")
        assert w0 > v0 and w1 - w0 == pytest.approx(v1 - v0)
        # the class search narrows heatmap rows and lanes
        page.fill("#search", "Speech")
        rows = page.evaluate("audiotaggerReport.heatRows()")
        assert rows and all("speech" in r.lower() for r in rows) and "Speech" not in rows   # hidden
        page.check("#speech-music")
        rows = page.evaluate("audiotaggerReport.heatRows()")
        assert "Speech" in rows and all("speech" in r.lower() for r in rows)
        assert "Speech" in page.evaluate("audiotaggerReport.lanes()")
        assert not log.problems(), log.problems()
        assert [u.rsplit("/", 1)[-1] for u in log.requests] == ["three_hours.html"]


def test_index_filter_finds_the_files_where_a_class_is_shown(browser, tmp_path):  # noqa: F811
    from audiotagger.tag.tagger import write_outputs

    spans = {"dog_park": {"Dog": [(10, 40, 0.8)]}, "kennel": {"Dog": [(0, 20, 0.9)], "Cat": [(30, 50, 0.7)]},
             "cattery": {"Cat": [(5, 60, 0.8)]}, "quiet": {}}
    npzs = []
    for k, (stem, classes) in enumerate(spans.items()):
        result = episodes_result(60 + 30 * k, seed=k, classes=classes, active=0, source=f"{stem}.wav")
        npzs.append(write_outputs(Selection(result, DisplayOptions()), {"npz": tmp_path / f"{stem}.npz"})[0])
    out = tmp_path / "out"
    args = [a for p in npzs for a in ("--from-probs", str(p))]
    assert main(["tag", *args, "-f", "html,srt", "-o", str(out), "-q"]) == 0
    assert sorted(p.name for p in out.glob("*.html")) == ["cattery.html", "dog_park.html", "index.html",
                                                          "kennel.html", "quiet.html"]
    with open_page(browser, out / "index.html",
                   ready="window.audiotaggerIndex && window.audiotaggerIndex.ready") as (page, log):
        assert page.evaluate("audiotaggerIndex.visible()") == ["cattery.wav", "dog_park.wav", "kennel.wav",
                                                               "quiet.wav"]
        page.fill("#class-filter", "Dog")
        assert page.evaluate("audiotaggerIndex.visible()") == ["dog_park.wav", "kennel.wav"]
        assert page.locator("#files tbody tr").count() == 2
        page.fill("#class-filter", "cat")
        assert page.evaluate("audiotaggerIndex.visible()") == ["cattery.wav", "kennel.wav"]
        page.fill("#class-filter", "")
        page.click("th[data-key=duration]")
        page.click("th[data-key=duration]")                    # longest first
        assert page.evaluate("audiotaggerIndex.visible()") == ["quiet.wav", "cattery.wav", "kennel.wav",
                                                               "dog_park.wav"]
        hrefs = page.eval_on_selector_all("#files a", "as => as.map(a => a.getAttribute('href'))")
        assert {"dog_park.html", "dog_park.srt"} <= set(hrefs)
        assert all((out / h).is_file() for h in hrefs)
        assert not log.problems(), log.problems()


def test_embedded_audio_plays_and_seeks_without_the_media(browser, video_run, tmp_path):  # noqa: F811
    _video, out = video_run
    assert main(["tag", "--from-probs", str(out / "big_buck_bunny_60s.npz"), "-f", "html", "--embed-media",
                 "-o", str(tmp_path), "-q"]) == 0
    page_path = tmp_path / "big_buck_bunny_60s.html"
    assert page_path.stat().st_size < (out / "big_buck_bunny_60s.html").stat().st_size + 300_000   # 24 kbit/s
    with open_page(browser, page_path) as (page, log):
        assert page.evaluate("document.querySelector('video')") is None
        wait_until(page, "document.querySelector('audio').readyState >= 1", timeout=10)
        assert page.evaluate("document.querySelector('audio').duration") == pytest.approx(60.1, abs=0.2)
        box = page.locator("#heat").bounding_box()
        page.mouse.click(page.evaluate("audiotaggerReport.clientX('heat', 30)"), box["y"] + 30)
        wait_until(page, "Math.abs(document.querySelector('audio').currentTime - 30) < 0.5", timeout=5)
        assert not log.problems(), log.problems()
        assert [u.rsplit("/", 1)[-1] for u in log.requests if not u.startswith("data:")] == [
            "big_buck_bunny_60s.html"]


@pytest.mark.parametrize("flags", [("--per-second", "--threshold", "0.3"), ("--smooth", "3", "--top-k", "3"),
                                   ("--compat",), ("--exclude", "Animal", "--show-music-speech")],
                         ids=["per-second", "smooth", "compat", "exclude"])
def test_run_options_are_reproduced_and_compat_toggles(browser, video_run, tmp_path, flags):  # noqa: F811
    _video, out = video_run
    npz = out / "big_buck_bunny_60s.npz"
    assert main(["tag", "--from-probs", str(npz), "-f", "html,tsv", "-o", str(tmp_path), "-q", *flags]) == 0
    with open_page(browser, tmp_path / "big_buck_bunny_60s.html") as (page, log):
        assert_same_events(page_events(page), tsv_events(tmp_path / "big_buck_bunny_60s.tsv"))
        if "--compat" not in flags:
            page.check("#compat")                  # the original rule, live
            assert_same_events(page_events(page), rerender(npz, tmp_path / "c", *flags, "--compat"))
        else:
            set_slider(page, 0.6)
            assert_same_events(page_events(page), rerender(npz, tmp_path / "c", *flags, "--threshold", "0.6"))
        assert not log.problems(), log.problems()


def stressed_result(seconds: int = 300):
    """A synthetic result with the cases that break a careless port: values exactly on and one float32 step
    either side of slider thresholds, exact ties (stable order by class), values closer than a storage
    level, Silence among the best (the --compat rule), and runs broken by single steps."""
    result = episodes_result(seconds, seed=11, active=60, classes={"Silence": [(100, 160, 0.6)]})
    p = result.probs
    rng = np.random.default_rng(11)
    for c, t in ((300, 0.3), (301, 0.5), (302, 0.25)):
        at = np.float32(t)
        p[:, c] = rng.choice([at, np.nextafter(at, np.float32(0)), np.nextafter(at, np.float32(1)), 0.01],
                             size=p.shape[0])
    p[:, 310] = p[:, 311] = rng.choice([np.float32(0.4), np.float32(0.7)], size=p.shape[0])   # exact ties
    p[:, 312] = np.nextafter(p[:, 313], np.float32(1))            # closer than one level
    p[::7, 314] = 0.9                                             # every 7th step only
    return result


def test_page_selection_equals_select_py_over_a_sweep_of_options(browser, tmp_path):  # noqa: F811
    result = stressed_result()
    page_path = write_outputs(Selection(result, DisplayOptions()), {"html": tmp_path / "stress.html"})[0]
    thresholds = (0.01, 0.25, 0.3, 0.5, 0.9)
    combos = [(t, k, ms, False) for t in thresholds for k in (1, 5, 20) for ms in (False, True)] + [
        (t, 5, ms, True) for t in thresholds for ms in (False, True)]
    with open_page(browser, page_path) as (page, log):
        for t, k, ms, compat in combos:
            page.evaluate("([t, k, ms, compat]) => { const s = audiotaggerReport.state; s.threshold = t; "
                          "s.topK = k; s.showMS = ms; s.compat = compat; audiotaggerReport.refresh(); }",
                          [t, k, ms, compat])
            sel = Selection(result, DisplayOptions(threshold=t, top_k=k, show_music_speech=ms, compat=compat))
            expected = sorted((int(round(e.start * 1000)), int(round(e.end * 1000)), result.names[e.cls],
                               e.score) for e in sel.events())
            assert_same_events(page_events(page), expected)
            summary = page.evaluate("audiotaggerReport.summary()")
            assert [(s["label"], s["score"]) for s in summary] == [
                (result.names[c], pytest.approx(score, abs=1e-12)) for c, score, _ in sel.summary()]
        assert not log.problems(), log.problems()


def test_one_step_page(browser, tmp_path):  # noqa: F811
    result = episodes_result(1, seed=2, active=0, classes={"Dog": [(0, 1, 0.9)]})
    page_path = write_outputs(Selection(result, DisplayOptions()), {"html": tmp_path / "one.html"})[0]
    with open_page(browser, page_path) as (page, log):
        assert page.evaluate("audiotaggerReport.events()")[0]["label"] == "Dog"
        box = page.locator("#heat").bounding_box()
        page.mouse.click(page.evaluate("audiotaggerReport.clientX('heat', 0.5)"), box["y"] + 30)
        assert page.evaluate("audiotaggerReport.state.time") == pytest.approx(0.5, abs=0.05)
        assert not log.problems(), log.problems()


def test_a_yamnet_label_set_selects_like_select_py(browser, tmp_path):  # noqa: F811
    """521 YAMNet columns: Speech, Music and Silence are found by mid at their own indices."""
    from audiotagger.tag import TagResult
    from audiotagger.yamnet.classes import class_map

    labels = class_map()
    rng = np.random.default_rng(4)
    probs = (rng.random((120, len(labels.mids))) ** 12).astype(np.float32)
    for mid, level in (("/m/09x0r", 0.9), ("/m/04rlf", 0.6), ("/m/028v0c", 0.5)):   # Speech, Music, Silence
        probs[::3, labels.mids.index(mid)] = level
    result = TagResult(source="yamnet.wav", times=np.arange(120) * 0.48, probs=probs, hop=0.48, window=0.96,
                       duration=58.0, meta={"model": "yamnet", "backend": "yamnet"}, mids=labels.mids,
                       names=labels.names)
    page_path = write_outputs(Selection(result, DisplayOptions()), {"html": tmp_path / "yamnet.html"})[0]
    with open_page(browser, page_path) as (page, log):
        for t, ms, compat in ((0.1, False, False), (0.1, True, False), (0.3, False, True),
                              (0.05, True, True)):
            page.evaluate("([t, ms, compat]) => { const s = audiotaggerReport.state; s.threshold = t; "
                          "s.showMS = ms; s.compat = compat; audiotaggerReport.refresh(); }", [t, ms, compat])
            sel = Selection(result, DisplayOptions(threshold=t, show_music_speech=ms, compat=compat))
            expected = sorted((int(round(e.start * 1000)), int(round(e.end * 1000)), result.names[e.cls],
                               e.score) for e in sel.events())
            assert expected and any(e[2] == "Speech" for e in expected) == ms
            assert_same_events(page_events(page), expected)
        assert not log.problems(), log.problems()


def auto_result():
    """:func:`stressed_result` with per-class thresholds that break a careless port of ``--threshold auto``:
    thresholds exactly on values and one float32 step either side, thresholds within one storage level of a
    slider threshold (a value between them is on one side of each), thresholds under the slider's floor (and
    0: every step), exact ties, Silence above its own threshold."""
    result = stressed_result()
    p = result.probs
    rng = np.random.default_rng(12)
    t = rng.uniform(0.1, 0.8, p.shape[1]).astype(np.float32)
    at = np.float32
    t[300] = at(0.3)                                                   # on the values at 0.3
    t[301] = np.nextafter(at(0.5), at(1))                              # just above the values at 0.5
    t[302] = at(0.25) + at(1e-6)                                       # the level of the slider's 0.25
    p[::3, 302] = np.nextafter(at(0.25), at(1))                        # ... and values between the two
    t[310], t[311], t[312] = at(0.4), at(0.7), p[5, 313]
    t[314] = at(0.9)
    background = np.argsort(p.mean(axis=0))[400:406]                   # around 0.01: under the floor
    t[background] = (0.0, 0.0, 0.003, 0.003, 0.006, 0.009)
    t[result.names.index("Silence")] = at(0.55)
    return replace(result, thresholds=t)                               # checked as a result's thresholds


def test_auto_choice_selects_like_select_py_over_a_sweep(browser, tmp_path):  # noqa: F811
    result = auto_result()
    page_path = write_outputs(Selection(result, DisplayOptions(threshold="auto")),
                              {"html": tmp_path / "auto.html", "tsv": tmp_path / "auto.tsv"})[0]
    combos = ([("auto", k, ms, False) for k in (1, 5, 20) for ms in (False, True)]
              + [("auto", 5, ms, True) for ms in (False, True)]
              + [(t, 5, False, c) for t in (0.01, 0.25, 0.3) for c in (False, True)])
    with open_page(browser, page_path) as (page, log):
        # the run used auto: the page opens with it, the slider off, and shows what tag wrote
        assert page.is_checked("#auto") and page.is_disabled("#threshold")
        assert page.locator("#threshold-out").inner_text() == "auto"
        assert_same_events(page_events(page), tsv_events(tmp_path / "auto.tsv"))
        for t, k, ms, compat in combos:
            page.evaluate("([t, k, ms, compat]) => { const s = audiotaggerReport.state; "
                          "s.auto = t === 'auto'; if (!s.auto) s.threshold = t; s.topK = k; s.showMS = ms; "
                          "s.compat = compat; audiotaggerReport.refresh(); }", [t, k, ms, compat])
            sel = Selection(result, DisplayOptions(threshold=t, top_k=k, show_music_speech=ms, compat=compat))
            expected = sorted((int(round(e.start * 1000)), int(round(e.end * 1000)), result.names[e.cls],
                               e.score) for e in sel.events())
            assert expected
            assert_same_events(page_events(page), expected)
            summary = page.evaluate("audiotaggerReport.summary()")
            assert [(s["label"], s["score"]) for s in summary] == [
                (result.names[c], pytest.approx(score, abs=1e-12)) for c, score, _ in sel.summary()]
        # the choice by hand: off gives the slider's threshold, on gives auto again
        page.evaluate("() => { const s = audiotaggerReport.state; s.auto = true; s.threshold = 0.1; "
                      "s.topK = 5; s.showMS = false; s.compat = false; audiotaggerReport.refresh(); }")
        page.uncheck("#auto")
        assert not page.is_disabled("#threshold")
        assert_same_events(page_events(page), sorted(
            (int(round(e.start * 1000)), int(round(e.end * 1000)), result.names[e.cls], e.score)
            for e in Selection(result, DisplayOptions(threshold=0.1)).events()))
        page.check("#auto")
        assert_same_events(page_events(page), tsv_events(tmp_path / "auto.tsv"))
        assert not log.problems(), log.problems()
    # a result without thresholds has no auto choice
    plain = write_outputs(Selection(replace(result, thresholds=None), DisplayOptions()),
                          {"html": tmp_path / "plain.html"})[0]
    with open_page(browser, plain) as (page, log):
        assert not page.locator("#auto-box").is_visible()
        assert page.evaluate("audiotaggerReport.meta.auto") is False
        assert not log.problems(), log.problems()
