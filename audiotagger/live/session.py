"""The live driver: a source decoded through the shared ffmpeg pipe, pushed into a backend stream.

:class:`Listener` opens the source (:mod:`.sources`), pushes its audio in small chunks into the stream of
the backend ``--model`` names (``backend.stream(...)``, :mod:`audiotagger.stream`) and yields a
:class:`LiveResult` for every step as soon as the backend emits it. When the source stalls or drops, it
says so through ``on_status``, reconnects with backoff (URLs, by default), starts a new backend stream
and records the :class:`Gap`; step times count seconds since listening began, so they stay wall-clock
true across gaps. A source that never delivers audio raises :class:`~audiotagger.errors.AudioError`.
"""

from __future__ import annotations

import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import AudioError, ParameterError, StreamStalled
from ..params import DEFAULT_LEFT, DEFAULT_RIGHT
from ..stream import Row
from .alerts import DEFAULT_HOLD_OFF, Alert, Alerter, AlertRule

CHUNK_SECONDS = 0.1
"""Native seconds read from ffmpeg at a time: the decoding part of the latency."""
OPEN_TIMEOUT = 20.0
"""Seconds a source has to deliver its first audio before it counts as not answering."""
STALL_TIMEOUT = 5.0
"""Seconds without audio after which a running source counts as stalled (and is reopened)."""
BACKOFF_START, BACKOFF_MAX = 1.0, 30.0
"""First and longest wait before a reconnection attempt (doubling in between)."""


@dataclass(frozen=True)
class Gap:
    """Seconds ``start``–``end`` (stream time) without audio, and why."""

    start: float
    end: float
    reason: str


@dataclass(frozen=True)
class Tag:
    """One shown class of a step."""

    index: int
    label: str
    mid: str
    score: float


@dataclass
class LiveResult:
    """One step of a live run.

    Attributes
    ----------
    index : int
        Step number since listening began.
    time, end : float
        Start and end of the step in seconds since listening began (wall-clock true across gaps).
    wall : float
        Epoch seconds (UTC) of ``time``.
    probs : numpy.ndarray, float32, shape (C,)
        Raw class probabilities (what the ``.npz`` stores).
    tags : list of Tag
        The classes the display options select (after ``smooth``), best first.
    alerts : list of Alert
        Alert rules this step fired.
    gap : Gap or None
        The gap just before this step, if the source dropped and came back.
    arrived : float
        ``time.monotonic()`` when the audio that completed this step came from ffmpeg (the latency of a
        step is measured from here).
    """

    index: int
    time: float
    end: float
    wall: float
    probs: np.ndarray
    tags: list[Tag] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    gap: Gap | None = None
    arrived: float = 0.0


class RowSelector:
    """The display options applied one step at a time (causal smoothing, then :func:`select_classes`)."""

    def __init__(self, options, mids=None, names=None, thresholds=None):
        self.options, self.mids, self.names, self.thresholds = options, mids, names, thresholds
        self._recent: deque[np.ndarray] = deque(maxlen=max(1, options.smooth))

    def reset(self) -> None:
        """Start the smoothing afresh (after a gap)."""
        self._recent.clear()

    def __call__(self, probs: np.ndarray) -> tuple[np.ndarray, list[int]]:
        """Smoothed scores (C,) and the selected class indices, best first."""
        from ..tag.select import select_classes

        if self.options.smooth > 1:
            self._recent.append(np.asarray(probs, dtype=np.float64))
            probs = (sum(self._recent) / len(self._recent)).astype(np.float32)
        chosen = select_classes(probs[None, :], self.options, self.mids, self.names, self.thresholds)[0]
        return probs, [int(c) for c in chosen if c >= 0]


class Listener:
    """Tag a live source step by step; iterate over it for :class:`LiveResult` objects.

    Parameters
    ----------
    source : str, optional
        A URL, ``-`` (stdin) or None (the microphone); see :func:`.sources.parse_source`.
    device, format, rate, channels
        Input options (``--device``, ``--format``, ``--rate``, ``--channels``).
    model, checkpoint, pca_params, model_dir, offline, batch_size, engine, precision
        Model selection as for ``tag`` (:func:`audiotagger.tag.tagger.load_backend`); ``engine``
        (onnx by default, or tf) and ``precision`` (fp32, int8) as ``--engine`` and ``--precision``.
    left, right : int
        VGGish: context seconds (a second is emitted once its right context has arrived).
    sample_duration, hop_duration : float, optional
        PANNs: window length and hop in seconds.
    threshold, top_k, show_music_speech, exclude, compat, smooth
        Display options as for ``tag`` (they choose :attr:`LiveResult.tags`).
    until : float, optional
        Stop after this many seconds (of stream time, which is wall time for a live source).
    reconnect : bool, optional
        Reopen the source after a stall or drop (default: True for URLs, False otherwise).
    open_timeout, stall_timeout : float
        Seconds to the first audio; seconds without audio that count as a stall.
    alerts : sequence of AlertRule
        Rules checked on every step (:mod:`.alerts`); ``hold_off`` seconds between two alerts of a rule.
    stop : threading.Event, optional
        Set it (from a signal handler or another thread) to end the run cleanly.
    on_status : callable, optional
        Called with one line for every stall, drop and reconnection (default: printed to stderr).
    tagger : backend, optional
        An already loaded backend (``load_backend(...)``).
    """

    def __init__(self, source: str | None = None, *, device: str | None = None, format: str | None = None,
                 rate: int | None = None, channels: int | None = None, model: Any = None,
                 checkpoint: Any = None, pca_params: Any = None, model_dir: Any = None,
                 offline: bool | None = None, batch_size: int | None = None, engine: str | None = None,
                 precision: str | None = None, left: int = DEFAULT_LEFT,
                 right: int = DEFAULT_RIGHT, sample_duration: float | None = None,
                 hop_duration: float | None = None, threshold: float | None = None, top_k: int | None = None,
                 show_music_speech: bool | None = None, exclude: Sequence[str] | None = None,
                 compat: bool | None = None, smooth: int | None = None, until: float | None = None,
                 reconnect: bool | None = None, open_timeout: float = OPEN_TIMEOUT,
                 stall_timeout: float = STALL_TIMEOUT, alerts: Sequence[AlertRule] = (),
                 hold_off: float = DEFAULT_HOLD_OFF, stop: threading.Event | None = None,
                 on_status: Callable[[str], None] | None = None, tagger: Any = None):
        from ..tag.tagger import (
            backend_display,
            backend_name,
            check_auto,
            check_backend_options,
            model_thresholds,
            model_title,
            resolve_display,
        )
        from ..tag.windows import check_context
        from .sources import parse_source

        self.source = parse_source(source, device=device, format=format, rate=rate, channels=channels)
        check_context(left, right)
        backend = tagger.backend if tagger is not None else backend_name(model)
        check_backend_options(backend, sample_duration=sample_duration, hop_duration=hop_duration)
        display = {"threshold": threshold, "top_k": top_k, "show_music_speech": show_music_speech,
                   "exclude": None if exclude is None else tuple(exclude), "compat": compat, "smooth": smooth}
        self.options = resolve_display(backend_display(display, backend))
        if until is not None and not until > 0:
            raise ParameterError(f"--until: must be > 0 seconds, got {until!r}")
        for flag, value in (("--open-timeout", open_timeout), ("--stall-timeout", stall_timeout)):
            if not value > 0:
                raise ParameterError(f"{flag}: must be > 0 seconds, got {value!r}")
        self.until, self.open_timeout, self.stall_timeout = until, float(open_timeout), float(stall_timeout)
        self.reconnect = self.source.kind == "url" if reconnect is None else bool(reconnect)
        self.alerter = Alerter(alerts, hold_off)
        # --threshold auto (and CLASS=auto alerts): the model's own thresholds, read before loading it
        self._title = model_title(model) if tagger is None else str(tagger.model_name)
        thresholds = None
        if self.options.auto or any(rule.threshold == "auto" for rule in alerts):
            thresholds = model_thresholds(model) if tagger is None else getattr(tagger, "thresholds", None)
            if self.options.auto:
                check_auto(self.options, thresholds, self._title)
        if backend != "yamnet":          # AudioSet's labels: check the alert classes before loading anything
            from ..labels import load_labels

            labels = load_labels()
            fits = thresholds is not None and len(thresholds) == len(labels.mids)
            self.alerter.bind(labels.mids, labels.names, thresholds if fits else None, self._title)
        self.stop = stop or threading.Event()
        self.on_status = on_status or _print_status
        self._stream_options = {"left": left, "right": right, "sample_duration": sample_duration,
                                "hop_duration": hop_duration}
        self._load = {"model": model, "checkpoint": checkpoint, "pca_params": pca_params,
                      "model_dir": model_dir, "offline": offline, "batch_size": batch_size,
                      "engine": engine, "precision": precision}
        self.tagger = tagger
        self._warm = False
        self.rows: list[Row] = []
        self.gaps: list[Gap] = []
        self.trailing_gap: Gap | None = None   # the source was away when the run ended
        self.started: float | None = None      # epoch seconds of stream time 0
        self.duration = 0.0                    # stream seconds covered (audio and gaps)
        self._stream = None

    def load(self):
        """Load the backend (once) and run it once on silence, so the first second is not late; returns it."""
        if self.tagger is None:
            from ..tag.tagger import load_tagger

            self.tagger = load_tagger(**self._load)
        if not self._warm:
            stream = self.tagger.stream(**self._stream_options)   # the first calls trace the networks
            opts = self._stream_options
            seconds = 2.0 + opts["right"] + (opts["sample_duration"] or 2.0)
            stream.push(np.zeros(int(seconds * stream.sample_rate), np.float32))
            stream.close()
            self._warm = True
        return self.tagger

    def new_stream(self):
        """A fresh backend stream with this run's options (also checks them before any audio)."""
        return self.load().stream(**self._stream_options)

    # --- the run ------------------------------------------------------------------------------------

    def __iter__(self) -> Iterator[LiveResult]:
        from ..audio import ChunkClock, decode_input

        self.load()
        stream = self._stream = self.new_stream()
        self._mids, self._names = stream.labels.mids, stream.labels.names
        thresholds = getattr(self.tagger, "thresholds", None)
        self.alerter.bind(self._mids, self._names, thresholds, self._title)   # usage errors, before audio
        if self.options.auto:
            from ..tag.tagger import check_auto

            check_auto(self.options, thresholds, self._title)
        selector = RowSelector(self.options, self._mids, self._names, thresholds)
        t0 = None                   # monotonic time of stream time 0
        timer = None
        connected = away = False    # away: the source dropped and has not delivered audio since
        failures = 0
        reason = dropped = ""       # why the last attempt ended; why the audio went away
        gap: Gap | None = None
        stdin = sys.stdin.buffer if self.source.uses_stdin else None
        clock = ChunkClock()
        try:
            while True:
                offset = None
                try:
                    for chunk in decode_input(self.source.input_args, self.source.name, stream.sample_rate,
                                              chunk_seconds=CHUNK_SECONDS, stdin=stdin, live=True,
                                              open_timeout=self.open_timeout,
                                              stall_timeout=self.stall_timeout,
                                              stop=self.stop, clock=clock):
                        now = time.monotonic()
                        if offset is None:
                            lead = len(chunk) / stream.sample_rate
                            if t0 is None:
                                t0, self.started, offset = now - lead, time.time() - lead, 0.0
                                if self.until is not None:   # a stalled source still ends on time
                                    timer = threading.Timer(self.until + self.stall_timeout, self.stop.set)
                                    timer.daemon = True
                                    timer.start()
                            else:
                                offset = max(self.duration, now - lead - t0)
                                gap = Gap(self.duration, offset, dropped)
                                self.gaps.append(gap)
                                self.on_status(f"{self.source.name}: audio again after "
                                               f"{offset - gap.start:.1f} s without (gap {gap.start:.1f}–"
                                               f"{offset:.1f} s)")
                                selector.reset()
                                self.alerter.reset()
                            connected, away, failures = True, False, 0
                        if self.until is not None:
                            room = int(round((self.until - offset - stream.duration) * stream.sample_rate))
                            if room <= len(chunk):
                                chunk = chunk[:max(room, 0)]
                                self.stop.set()
                        rows = stream.push(chunk)
                        self.duration = offset + stream.duration
                        for result in self._results(rows, offset, stream.hop, selector, clock.time, gap):
                            gap = None
                            yield result
                        if self.stop.is_set():
                            break
                    reason = "stream ended"
                except AudioError as exc:
                    if not connected:
                        raise self._open_error(exc) from None
                    reason = str(exc).removeprefix(f"{self.source.name}: ")
                    if not isinstance(exc, StreamStalled):
                        reason = f"{'dropped' if offset is not None else 'reconnection failed'}: {reason}"
                    if not self.reconnect:
                        self.on_status(f"{self.source.name}: {reason}; not reconnecting, the run ends")
                if offset is not None:
                    dropped = reason
                    rows = stream.close()     # the last steps, ended as tag ends a file
                    self.duration = offset + stream.duration
                    for result in self._results(rows, offset, stream.hop, selector, time.monotonic(), gap):
                        gap = None
                        yield result
                    stream = self._stream = self.new_stream()
                if self.stop.is_set() or not self.reconnect:
                    break
                away = True
                delay = min(BACKOFF_MAX, BACKOFF_START * 2 ** failures)
                self.on_status(f"{self.source.name}: {reason}; reconnecting in {delay:g} s")
                failures += 1
                if self.stop.wait(delay):
                    break
        finally:
            if timer is not None:
                timer.cancel()
        if away and t0 is not None:       # stopped while the source was away: the gap reaches the end
            end = max(self.duration, time.monotonic() - t0)
            if self.until is not None:
                end = min(end, max(self.until, self.duration))
            if end > self.duration:
                self.trailing_gap = Gap(self.duration, end, dropped)
                self.gaps.append(self.trailing_gap)
                self.duration = end

    def _results(self, rows: Sequence[Row], offset: float, hop: float, selector: RowSelector, arrived: float,
                 gap: Gap | None) -> Iterator[LiveResult]:
        for row in rows:
            t = offset + row.time
            shifted = Row(len(self.rows), t, row.probs)
            self.rows.append(shifted)
            wall = (self.started or 0.0) + t
            scores, chosen = selector(row.probs)
            tags = [Tag(c, self._names[c], self._mids[c], float(scores[c])) for c in chosen]
            alerts = self.alerter.check(scores, t, wall, self._mids, self._names)
            yield LiveResult(shifted.index, t, t + hop, wall, row.probs, tags, alerts, gap, arrived)
            gap = None

    def _open_error(self, exc: AudioError) -> AudioError:
        if self.source.kind == "device":
            why = str(exc).split(": ", 1)[-1]
            return AudioError(f"{self.source.name}: cannot open the audio input device ({why}); "
                              "see audiotagger listen --list-devices")
        return exc

    def result(self, source_name: str | None = None):
        """Every step so far as the :class:`~audiotagger.tag.result.TagResult` ``tag`` would give.

        Gaps are stored as the extra array ``gaps`` (k, 2) of (start, end) seconds, and the wall-clock
        time of second 0 as the setting ``started`` (ISO 8601, UTC).
        """
        stream = self._stream or self.new_stream()
        result = stream.result(self.rows, source_name or self.source.name, self.duration)
        if self.started is not None:
            result.meta["started"] = iso_time(self.started)
        result.meta["live"] = True
        if self.gaps:
            result.extras["gaps"] = np.array([(g.start, g.end) for g in self.gaps], dtype=np.float64)
        return result


def listen(source: str | None = None, **options: Any) -> Iterator[LiveResult]:
    """Tag a live source; a generator of one :class:`LiveResult` per step (second, or PANNs window).

    Parameters
    ----------
    source : str, optional
        A stream URL (http(s), rtsp, rtmp, udp, srt, HLS), ``-`` for stdin, or None for the microphone.
    **options
        The keywords of :class:`Listener` (every ``audiotagger listen`` flag), e.g. ``model``, ``left``,
        ``right``, ``threshold``, ``until``, ``reconnect``.

    Yields
    ------
    LiveResult
        As soon as each step's context has arrived.

    Raises
    ------
    AudioError
        The source never delivered audio (no such device, no answer, no audio stream, not media).
    """
    yield from Listener(source, **options)


def iso_time(epoch: float) -> str:
    """Epoch seconds as ISO 8601 UTC with milliseconds (``2026-12-01T13:05:22.120Z``)."""
    whole = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch))
    return f"{whole}.{int(round((epoch % 1) * 1000)) % 1000:03d}Z"


def _print_status(line: str) -> None:
    print(f"audiotagger: {line}", file=sys.stderr, flush=True)
