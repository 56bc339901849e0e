#!/usr/bin/env python3
"""Benchmark the ``-f html`` report page: size on disk, write time, and time to interactive in Chromium.

Real model output, no synthetic numbers: the packaged classifier (``--left 3 --right 1``) over Google's
released AudioSet embeddings (``../shared/data/audioset/bal_train.h5``), clips laid end to end:

* 60 s: 6 clips; also written with ``--embed-media`` (the audio of the shared 60 s video embedded);
* 3 h: 1,080 clips (10,800 one-second steps).

Each page is opened ``--repeats`` times in headless Chromium (Debian's ``chromium`` via Playwright),
interleaving the sizes (the machine is shared, so take the median). "ready" is the page's own
``performance.now()`` when its first full render is done (navigation start = 0); "re-select" is one
threshold change (selection, events, summary and redraw) measured inside the page.

Usage: ``python scripts/bench_report.py [--screenshot docs/report.png] [--repeats 3]``
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from benchutil import print_table

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from audiotagger.tag import DisplayOptions, Selection  # noqa: E402
from audiotagger.tag.report import write_page  # noqa: E402


def audioset_result(clips: int, name: str):
    """The packaged classifier's probabilities for the first ``clips`` released clips, end to end."""
    import h5py

    from audiotagger.classifier import load_classifier
    from audiotagger.tag.tagger import embedding_result

    with h5py.File(SHARED / "audioset" / "bal_train.h5", "r") as f:
        x = f["x"][:clips]
    return embedding_result(load_classifier("default"), x.reshape(-1, x.shape[-1]), left=3, right=1,
                            source=name)


def open_in_chromium(pw_browser, page_path: Path, screenshot: Path | None = None) -> dict:
    """Load the page once; return ready time, wall time, re-selection time, console problems, requests."""
    context = pw_browser.new_context(viewport={"width": 1200, "height": 900})
    blocked: list[str] = []
    context.route("**/*", lambda r: r.continue_() if r.request.url.startswith(("file:", "data:", "blob:"))
                  else (blocked.append(r.request.url), r.abort()))
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    start = time.perf_counter()
    page.goto(page_path.resolve().as_uri())
    while not page.evaluate("!!(window.audiotaggerReport && window.audiotaggerReport.ready)"):
        page.wait_for_timeout(10)
    wall = time.perf_counter() - start
    ready = page.evaluate("audiotaggerReport.readyMs")
    if screenshot is not None:        # the page as it opens
        page.screenshot(path=str(screenshot), clip={"x": 0, "y": 0, "width": 1200, "height": 900})
    reselect = page.evaluate("""() => {
        const el = document.querySelector('#threshold'), t0 = performance.now();
        el.value = '0.3'; el.dispatchEvent(new Event('input'));
        const n = audiotaggerReport.events().length;
        const t1 = performance.now();
        el.value = '0.1'; el.dispatchEvent(new Event('input'));
        const t2 = performance.now();
        audiotaggerReport.setView(0, audiotaggerReport.meta.end / 3);
        audiotaggerReport.draw();
        return [t1 - t0, n, performance.now() - t2];
    }""")
    context.close()
    return {"ready": ready, "wall": wall * 1000, "reselect": reselect[0], "redraw": reselect[2],
            "problems": problems + blocked}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--screenshot", type=Path, default=None, help="save a PNG of the 60 s page here")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--work", type=Path, default=None)
    args = parser.parse_args()
    if not (SHARED / "audioset" / "bal_train.h5").is_file():
        sys.exit(f"bench_report: {SHARED / 'audioset' / 'bal_train.h5'} not found")
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-report-"))
    work.mkdir(parents=True, exist_ok=True)

    cases = []
    for label, clips, name, embed in (("60 s", 6, "audioset_60s.wav", False),
                                      ("60 s, --embed-media", 6, "audioset_60s_embedded.wav", True),
                                      ("3 h", 1080, "audioset_3h.wav", False)):
        result = audioset_result(clips, name)
        sel = Selection(result, DisplayOptions())
        path = work / name.replace(".wav", ".html")
        media = SHARED / "video" / "big_buck_bunny_60s.mp4" if embed else None
        t = time.perf_counter()
        write_page(sel, path, media=media, embed_media=embed)
        cases.append({"label": label, "path": path, "write": time.perf_counter() - t,
                      "size": path.stat().st_size, "steps": result.num_steps, "runs": []})

    from playwright.sync_api import sync_playwright

    sys.path.insert(0, str(ROOT / "tests"))
    from report_fixtures import find_chromium

    exe = find_chromium()
    if exe is None:
        sys.exit("bench_report: no Chromium (apt-get install chromium)")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=exe, args=["--no-sandbox"])
        open_in_chromium(browser, cases[0]["path"])                       # warm-up
        for r in range(args.repeats):
            for case in cases:
                shot = args.screenshot if (r == 0 and case is cases[0]) else None
                case["runs"].append(open_in_chromium(browser, case["path"], shot))
        version = browser.version
        browser.close()

    rows = []
    for case in cases:
        ready = statistics.median(x["ready"] for x in case["runs"])
        wall = statistics.median(x["wall"] for x in case["runs"])
        resel = statistics.median(x["reselect"] for x in case["runs"])
        redraw = statistics.median(x["redraw"] for x in case["runs"])
        problems = sum(len(x["problems"]) for x in case["runs"])
        rows.append((case["label"], f"{case['steps']:,}", f"{case['size'] / 1e6:.2f} MB",
                     f"{case['write']:.2f} s", f"{ready:.0f} ms", f"{wall:.0f} ms", f"{resel:.0f} ms",
                     f"{redraw:.0f} ms", f"{ready / 2000:.2f}", str(problems)))
    print(f"Chromium {version}, median of {args.repeats} loads each "
          "(shared machine: other jobs were running)")
    print_table(("page", "steps", "size", "write", "ready", "load (wall)", "re-select", "redraw",
                 "ready / 2 s", "console errors + requests"), rows)
    if args.screenshot:
        print(f"screenshot: {args.screenshot}")


if __name__ == "__main__":
    main()
