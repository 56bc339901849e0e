"""Helpers of the report tests: synthetic results, and headless Chromium (Debian's ``chromium`` package)
driven by Playwright through ``executable_path`` (no browser download), with every request recorded and
anything but ``file:``/``data:``/``blob:`` blocked."""

from __future__ import annotations

import json
import os
import shutil
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from audiotagger.labels import load_labels

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "chrome")
LOCAL_SCHEMES = ("file:", "data:", "blob:", "about:")


def find_chromium() -> str | None:
    """The Chromium binary: ``$AUDIOTAGGER_CHROMIUM`` or the first of :data:`CHROMIUM_NAMES` on PATH."""
    env = os.environ.get("AUDIOTAGGER_CHROMIUM")
    if env:
        return env if Path(env).is_file() else None
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


@pytest.fixture(scope="session")
def browser():
    """A headless Chromium for the session; skips (with the reason) without Playwright or Chromium."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed "
                                   "(pip install playwright; the browser itself comes from apt: chromium)")
    exe = find_chromium()
    if exe is None:
        pytest.skip("no Chromium installed (apt-get install chromium, or set AUDIOTAGGER_CHROMIUM)")
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=exe, headless=True,
                               args=["--no-sandbox", "--autoplay-policy=no-user-gesture-required",
                                     "--allow-file-access-from-files"])
        try:
            yield b
        finally:
            b.close()


class PageLog:
    """What a page did: console messages of type error/warning, uncaught errors, every request URL."""

    def __init__(self) -> None:
        self.console: list[tuple[str, str]] = []
        self.errors: list[str] = []
        self.requests: list[str] = []
        self.blocked: list[str] = []

    def problems(self) -> list[str]:
        """Console errors, uncaught exceptions and network requests, as lines (empty when clean)."""
        return ([f"console {t}: {m}" for t, m in self.console if t in ("error", "warning")]
                + [f"page error: {e}" for e in self.errors]
                + [f"network request: {u}" for u in self.requests if not u.startswith(LOCAL_SCHEMES)]
                + [f"blocked: {u}" for u in self.blocked])


@contextmanager
def open_page(browser, path: Path, *, ready: str = "window.audiotaggerReport?.ready", viewport=(1280, 1600)):
    """Open ``path`` from disk in a fresh context; yield ``(page, log)`` once ``ready`` is true."""
    context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]})
    log = PageLog()

    def route(r):
        if r.request.url.startswith(LOCAL_SCHEMES):
            r.continue_()
        else:
            log.blocked.append(r.request.url)
            r.abort()

    context.route("**/*", route)
    page = context.new_page()
    page.on("console", lambda msg: log.console.append((msg.type, msg.text)))
    page.on("pageerror", lambda exc: log.errors.append(str(exc)))
    page.on("request", lambda req: log.requests.append(req.url))
    try:
        page.goto(Path(path).resolve().as_uri())
        wait_until(page, ready, timeout=20)
        yield page, log
    finally:
        context.close()


def wait_until(page, expression: str, timeout: float = 10.0) -> None:
    """Poll ``expression`` in the page until it is truthy (``wait_for_function`` would need ``eval``, which
    the page's Content-Security-Policy forbids)."""
    deadline = time.monotonic() + timeout
    while not page.evaluate(f"!!({expression})"):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {expression}")
        page.wait_for_timeout(50)


def episodes_result(seconds: int, *, seed: int = 0, classes: dict | None = None, active: int = 100,
                    source: str = "synthetic.wav"):
    """A realistic-looking synthetic :class:`TagResult`, one step per second.

    Every class has a noisy background around its own level (log-uniform from 1e-5 to 0.03, so about 74
    classes per step reach 0.01, as the packaged classifier gives on AudioSet's released features: 70);
    ``active`` random classes plus Speech and Music have episodes of 3 to 120 s at 0.15 to 0.95;
    ``classes`` adds named episodes ``(start, end, level)``.
    """
    from audiotagger.tag import TagResult

    rng = np.random.default_rng(seed)
    labels = load_labels()
    n = int(seconds)
    level = 10 ** rng.uniform(-5, -1.5, size=(1, len(labels)))
    probs = np.clip(level * np.exp(rng.normal(0, 0.8, size=(n, len(labels)))), 0, 1).astype(np.float32)
    picked = list(rng.choice(len(labels), size=active, replace=False)) + [0, 137]
    for c in picked:
        t = 0
        while t < n:
            t += int(rng.exponential(n / 12 + 10))
            length = int(rng.integers(3, 121))
            level = rng.uniform(0.15, 0.95)
            seg = slice(t, min(t + length, n))
            probs[seg, c] = np.clip(level + rng.normal(0, 0.08, size=probs[seg, c].shape), 0, 1)
            t += length
    for name, spans in (classes or {}).items():
        c = labels.index(name)
        for a, b, level in spans:
            seg = slice(int(a), int(b))
            probs[seg, c] = np.clip(level + rng.normal(0, 0.02, size=probs[seg, c].shape), 0, 1)
    meta = {"model": "synthetic", "backend": "vggish", "left": 3, "right": 1, "version": "test"}
    return TagResult(source=source, times=np.arange(n, dtype=np.float64), probs=probs, hop=1.0, window=5.0,
                     duration=float(n), meta=meta)


def tsv_events(path: Path) -> list[tuple[int, int, str, float]]:
    """Rows of a ``-f tsv`` file as ``(start_ms, end_ms, label, score)``, sorted."""
    rows = []
    for line in Path(path).read_text(encoding="utf-8").splitlines()[1:]:
        start, end, label, _mid, score = line.split("\t")
        rows.append((int(start), int(end), label, float(score)))
    return sorted(rows)


def page_events(page) -> list[tuple[int, int, str, float]]:
    """The page's current events, rounded as the TSV writer rounds them, sorted."""
    events = json.loads(page.evaluate("JSON.stringify(audiotaggerReport.events())"))   # one string: fast
    return sorted((int(round(e["start"] * 1000)), int(round(e["end"] * 1000)), e["label"], e["score"])
                  for e in events)


def assert_same_events(shown, written, tol: float = 2e-4) -> None:
    """The page's events equal the TSV's: same spans and classes, scores within ``tol``."""
    assert [e[:3] for e in shown] == [e[:3] for e in written]
    worst = max((abs(a[3] - b[3]) for a, b in zip(shown, written, strict=True)), default=0.0)
    assert worst <= tol, worst
