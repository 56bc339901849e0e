"""Output writers: one small class per format, each with an ``extension`` (whisper's ``utils.py`` layout).

Every writer renders a :class:`~audiotagger.tag.select.Selection` (a result plus display options) and
writes atomically. Text formats are pure functions of the selection, so ``--from-probs`` reproduces them
byte for byte. ``png``, ``mp4`` and ``html`` import matplotlib / ffmpeg / moviepy / the report package only
when used.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ParameterError
from ..fileio import atomic_save_npz, atomic_write_text
from ..params import DEFAULT_OUTPUT_FORMATS, OUTPUT_FORMATS
from .select import Selection

FORMATS = OUTPUT_FORMATS
"""Every ``-f`` choice, in the order ``all`` writes them (:data:`audiotagger.params.OUTPUT_FORMATS`)."""

DEFAULT_FORMATS = DEFAULT_OUTPUT_FORMATS
"""Written when ``-f`` is not given (:data:`audiotagger.params.DEFAULT_OUTPUT_FORMATS`)."""


def format_timestamp(seconds: float, decimal_marker: str = ",") -> str:
    """Format seconds as ``HH:MM:SS,mmm`` (hours at least two digits, no 24 h wrap).

    Parameters
    ----------
    seconds : float
        Non-negative time.
    decimal_marker : str
        ``","`` for SRT, ``"."`` for WebVTT.
    """
    ms = int(round(max(seconds, 0.0) * 1000.0))
    hours, ms = divmod(ms, 3_600_000)
    minutes, ms = divmod(ms, 60_000)
    secs, ms = divmod(ms, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{decimal_marker}{ms:03d}"


def _score(x: float) -> str:
    return f"{x:.4f}"


def topk_text(times: np.ndarray, scores: np.ndarray, names: Sequence[str], top_k: int) -> str:
    """PaddleAudio ``parse_result.py`` text (SPEC §8.2): one block per step.

    Each block is the step's time on its own line, then ``top_k`` lines ``"<label>: <score>"`` (best
    first, the float32 score as ``str`` prints it: its shortest exact form), then a blank line. Unlike
    PaddleAudio the time is in seconds, not a fraction of the length.

    Parameters
    ----------
    times : numpy.ndarray, shape (n,)
        Step start times in seconds.
    scores : numpy.ndarray, shape (n, C)
        Scores (already smoothed if wanted).
    names : sequence of str
        Display names of the C classes.
    top_k : int
        Lines per block.

    Returns
    -------
    str
    """
    scores = np.asarray(scores, dtype=np.float32)
    k = min(int(top_k), scores.shape[1]) if scores.ndim == 2 else 0
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    out = io.StringIO()
    for t, row, idx in zip(times, scores, order, strict=True):
        out.write(f"{float(round(float(t), 6))}\n")
        for c in idx:
            out.write(f"{names[c]}: {str(row[c])}\n")
        out.write("\n")
    return out.getvalue()


class ResultWriter:
    """Base class: ``write(selection, path)`` renders one output file atomically."""

    extension: str = ""

    def write(self, sel: Selection, path: str | os.PathLike, *, overwrite: bool = True,
              **context: Any) -> Path:
        """Write ``sel`` to ``path`` and return ``path``.

        Parameters
        ----------
        sel : Selection
            The result and display options.
        path : path-like
            Destination (its folder is created).
        overwrite : bool
            Replace an existing file (otherwise ``FileExistsError``).
        **context
            Format-specific extras: ``source`` (the media file, for png, mp4 and html), ``burn`` and
            ``progress`` (mp4), ``embed_media`` and ``outputs`` (html: embed the audio; the other outputs to
            link).
        """
        raise NotImplementedError


class TextWriter(ResultWriter):
    """A writer whose output is a pure function of the selection."""

    def render(self, sel: Selection) -> str:
        """Return the file's text."""
        raise NotImplementedError

    def write(self, sel: Selection, path: str | os.PathLike, *, overwrite: bool = True,
              **context: Any) -> Path:
        """Write :meth:`render`'s text (UTF-8) atomically."""
        return atomic_write_text(path, self.render(sel), overwrite=overwrite)


class WriteSRT(TextWriter):
    """SubRip subtitles: 1-based index, ``HH:MM:SS,mmm --> HH:MM:SS,mmm``, tags, blank line."""

    extension = "srt"

    def render(self, sel: Selection) -> str:
        """Return the SRT text."""
        out = io.StringIO()
        for i, cue in enumerate(sel.cues(), start=1):
            out.write(f"{i}\n{format_timestamp(cue.start)} --> {format_timestamp(cue.end)}\n"
                      f"{sel.text(cue.classes)}\n\n")
        return out.getvalue()


class WriteVTT(TextWriter):
    """WebVTT subtitles (``WEBVTT`` header, ``.`` before milliseconds)."""

    extension = "vtt"

    def render(self, sel: Selection) -> str:
        """Return the WebVTT text."""
        out = io.StringIO()
        out.write("WEBVTT\n\n")
        for cue in sel.cues():
            out.write(f"{format_timestamp(cue.start, '.')} --> {format_timestamp(cue.end, '.')}\n"
                      f"{sel.text(cue.classes)}\n\n")
        return out.getvalue()


class WriteTSV(TextWriter):
    """Events as tab-separated ``start end label mid score``; times in integer milliseconds (locale-proof)."""

    extension = "tsv"

    def render(self, sel: Selection) -> str:
        """Return the TSV text (one row per event, header first)."""
        names, mids = sel.result.names, sel.result.mids
        lines = ["start\tend\tlabel\tmid\tscore"]
        lines += [f"{int(round(e.start * 1000))}\t{int(round(e.end * 1000))}\t{names[e.cls]}\t{mids[e.cls]}\t"
                  f"{_score(e.score)}" for e in sel.events()]
        return "\n".join(lines) + "\n"


class WriteCSV(TextWriter):
    """Events as CSV ``start,end,label,mid,score`` (seconds with 3 decimals; names quoted as needed)."""

    extension = "csv"

    def render(self, sel: Selection) -> str:
        """Return the CSV text."""
        names, mids = sel.result.names, sel.result.mids
        out = io.StringIO()
        w = csv.writer(out, lineterminator="\n")
        w.writerow(["start", "end", "label", "mid", "score"])
        for e in sel.events():
            w.writerow([f"{e.start:.3f}", f"{e.end:.3f}", names[e.cls], mids[e.cls], _score(e.score)])
        return out.getvalue()


class WriteJSON(TextWriter):
    """Everything in one JSON document: settings, whole-file summary and the cues with their scores."""

    extension = "json"

    def render(self, sel: Selection) -> str:
        """Return the JSON text."""
        res = sel.result
        doc = {
            "source": res.source,
            "duration": round(res.duration, 3),
            "hop": res.hop,
            "window": res.window,
            "steps": res.num_steps,
            "settings": json.loads(json.dumps(res.meta, sort_keys=True)),
            "display": sel.options.to_dict(),
            "summary": [{"label": res.names[c], "mid": res.mids[c], "score": round(s, 4),
                         "shown_percent": round(p, 1)} for c, s, p in sel.summary()],
            "segments": [{"start": round(cue.start, 3), "end": round(cue.end, 3),
                          "text": sel.text(cue.classes),
                          "tags": [{"label": res.names[c], "mid": res.mids[c], "score": round(s, 4)}
                                   for c, s in zip(cue.classes, cue.scores, strict=True)]}
                         for cue in sel.cues()],
        }
        return json.dumps(doc, indent=2, ensure_ascii=False, sort_keys=False) + "\n"


class WriteTXT(TextWriter):
    """PaddleAudio-style top-k blocks (SPEC §8.2), on the (smoothed) scores; see :func:`topk_text`."""

    extension = "txt"

    def render(self, sel: Selection) -> str:
        """Return the top-k text."""
        return topk_text(sel.result.times, sel.probs, sel.result.names, sel.options.top_k)


class WriteNPZ(ResultWriter):
    """The probability matrix (DESIGN.md contract) with the settings and display options; never pickled."""

    extension = "npz"

    def write(self, sel: Selection, path: str | os.PathLike, *, overwrite: bool = True,
              **context: Any) -> Path:
        """Save the raw (unsmoothed) matrix and everything needed to re-render it."""
        return atomic_save_npz(path, overwrite=overwrite, **sel.result.npz_arrays(sel.options.to_dict()))


class WritePNG(ResultWriter):
    """Spectrogram of the input above a heatmap of the top classes over time (matplotlib)."""

    extension = "png"

    def write(self, sel: Selection, path: str | os.PathLike, *, overwrite: bool = True,
              **context: Any) -> Path:
        """Plot; the spectrogram comes from ``context["source"]`` (default: the result's source)."""
        from .plot import plot_selection

        return plot_selection(sel, path, audio=context.get("source"), overwrite=overwrite)


class WriteMP4(ResultWriter):
    """A copy of the input video with the tags as a soft subtitle track (``burn=True``: drawn on frames).

    The extension is ``tagged.mp4`` so the copy can never replace the input video.
    """

    extension = "tagged.mp4"

    def write(self, sel: Selection, path: str | os.PathLike, *, overwrite: bool = True,
              **context: Any) -> Path:
        """Mux (or burn) the SRT cues into a copy of ``sel.result.source``."""
        from .video import write_tagged_video

        return write_tagged_video(sel, path, source=context.get("source"), burn=bool(context.get("burn")),
                                  overwrite=overwrite, progress=bool(context.get("progress")))


class WriteHTML(ResultWriter):
    """A self-contained interactive page: player, heatmap, event lanes and live re-selection controls."""

    extension = "html"

    def write(self, sel: Selection, path: str | os.PathLike, *, overwrite: bool = True,
              **context: Any) -> Path:
        """Write the page; ``context``: ``source`` (media), ``embed_media``, ``outputs`` (to link).

        ``final`` is the page's destination when ``path`` is a temporary name (links are relative to it).
        """
        from ..fileio import atomic_write_text
        from .report.page import render_page

        page = Path(context.get("final") or path)
        return atomic_write_text(path, render_page(sel, page, media=context.get("source"),
                                                   embed_media=bool(context.get("embed_media")),
                                                   outputs=context.get("outputs")), overwrite=overwrite)


_WRITERS: dict[str, type[ResultWriter]] = {
    "srt": WriteSRT, "vtt": WriteVTT, "tsv": WriteTSV, "csv": WriteCSV, "json": WriteJSON,
    "npz": WriteNPZ, "txt": WriteTXT, "png": WritePNG, "mp4": WriteMP4, "html": WriteHTML,
}


def get_writer(fmt: str) -> ResultWriter:
    """Return the writer of one format.

    Raises
    ------
    ParameterError
        For an unknown format (naming ``-f`` and the choices).
    """
    try:
        return _WRITERS[fmt.strip().lower()]()
    except KeyError:
        raise ParameterError(f"-f: unknown output format {fmt!r} (choose from {', '.join(FORMATS)} "
                             "or all)") from None


def parse_formats(spec: str | Iterable[str] | None) -> tuple[str, ...]:
    """Turn ``-f`` (``"srt,vtt"``, ``"all"``, a list, or None for the default) into format names.

    Returns
    -------
    tuple of str
        Known formats, each once, in the order given (``all`` → :data:`FORMATS`).

    Raises
    ------
    ParameterError
        For an unknown or empty format list.
    """
    if spec is None:
        return DEFAULT_FORMATS
    items = spec.split(",") if isinstance(spec, str) else [p for s in spec for p in str(s).split(",")]
    out: list[str] = []
    for item in (i.strip().lower() for i in items):
        if not item:
            continue
        names = FORMATS if item == "all" else (item,)
        for name in names:
            get_writer(name)
            if name not in out:
                out.append(name)
    if not out:
        raise ParameterError(f"-f: no output format given in {spec!r}")
    return tuple(out)
