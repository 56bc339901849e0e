"""Outputs of ``audiotagger listen`` while it runs: stdout lines and growing SRT/TSV files.

The growing files have the layout of ``audiotagger tag --per-second`` (one SRT cue and one TSV row per
shown tag for every step, starting 1 ms after the step), so a finished live run re-rendered from its
``.npz`` with ``tag --from-probs --per-second`` gives the same text. Every step is appended with one
write and flushed to disk at once; a write that fails (a full disk) is cut back to the last complete
record, so a reader always finds a valid file. A gap in the source is a cue ``[no audio: reason]`` and a
TSV row labelled ``(no audio)``.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from pathlib import Path

from ..tag.select import EMPTY_CUE, PER_SECOND_START_OFFSET, SEPARATOR
from ..tag.writers import format_timestamp
from .session import Gap, LiveResult, iso_time

GAP_LABEL = "(no audio)"
"""TSV label of a gap row."""


def text_line(res: LiveResult, separator: str = SEPARATOR) -> str:
    """The readable stdout line of a step: local wall-clock time, stream time, tags with scores."""
    clock = time.strftime("%H:%M:%S", time.localtime(res.wall))
    tags = separator.join(f"{t.label} {t.score:.2f}" for t in res.tags) or EMPTY_CUE
    return f"{clock}  {format_timestamp(res.time, '.')}  {tags}"


def gap_line(gap: Gap, started: float | None) -> str:
    """The readable stdout line of a gap."""
    clock = time.strftime("%H:%M:%S", time.localtime((started or 0.0) + gap.start))
    return (f"{clock}  {format_timestamp(gap.start, '.')}  [no audio for {gap.end - gap.start:.1f} s: "
            f"{gap.reason}]")


def json_line(res: LiveResult) -> str:
    """The ``--jsonl`` object of a step (one line); ``delay``: seconds since its last audio arrived."""
    doc = {"time": round(res.time, 3), "end": round(res.end, 3), "wall": iso_time(res.wall),
           "tags": [{"label": t.label, "mid": t.mid, "score": round(t.score, 4)} for t in res.tags],
           "delay": round(time.monotonic() - res.arrived, 4)}
    if res.alerts:
        doc["alerts"] = [a.label for a in res.alerts]
    return json.dumps(doc, ensure_ascii=False)


def json_gap_line(gap: Gap, started: float | None) -> str:
    """The ``--jsonl`` object of a gap: ``"gap": true``, no tags."""
    return json.dumps({"time": round(gap.start, 3), "end": round(gap.end, 3),
                       "wall": iso_time((started or 0.0) + gap.start), "gap": True, "reason": gap.reason,
                       "tags": []}, ensure_ascii=False)


class GrowingFile:
    """A text file that only grows by whole records, each written at once and flushed to disk.

    Parameters
    ----------
    path : path-like
        The file (created, or truncated when it exists and ``overwrite``).
    header : str
        Written first.
    overwrite : bool
        Replace an existing file (otherwise ``FileExistsError``).
    """

    def __init__(self, path: str | os.PathLike, header: str = "", *, overwrite: bool = False):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if overwrite else os.O_EXCL)
        self._fd = os.open(self.path, flags, 0o666)
        self.size = 0
        if header:
            self.append(header)

    def append(self, text: str) -> None:
        """Append ``text`` and flush it to disk; on failure cut the file back and raise ``OSError``."""
        data = text.encode("utf-8")
        try:
            done = 0
            while done < len(data):
                done += os.write(self._fd, data[done:])
            os.fsync(self._fd)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, self.size)
            raise OSError(exc.errno, exc.strerror, str(self.path)) from None
        self.size += len(data)

    def close(self) -> None:
        """Close the file (idempotent)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class LiveFiles:
    """The growing ``<stem>.srt`` and ``<stem>.tsv`` of a live run.

    Parameters
    ----------
    out_dir : path-like
        ``-o`` folder.
    stem : str
        File name without extension.
    overwrite : bool
        Replace existing files.
    compat : bool
        The original ``--`` separator between tags.
    """

    def __init__(self, out_dir: str | os.PathLike, stem: str, *, overwrite: bool = False,
                 compat: bool = False):
        from ..tag.select import COMPAT_SEPARATOR

        self.separator = COMPAT_SEPARATOR if compat else SEPARATOR
        self.srt = GrowingFile(Path(out_dir) / f"{stem}.srt", overwrite=overwrite)
        try:
            self.tsv = GrowingFile(Path(out_dir) / f"{stem}.tsv", "start\tend\tlabel\tmid\tscore\n",
                                   overwrite=overwrite)
        except BaseException:
            self.srt.close()
            raise
        self.cues = 0

    def add(self, res: LiveResult) -> None:
        """Append one step (cue and TSV rows), after the gap before it, if any."""
        if res.gap is not None:
            self.add_gap(res.gap)
        start = res.time + PER_SECOND_START_OFFSET
        text = self.separator.join(t.label for t in res.tags) if res.tags else EMPTY_CUE
        self.cues += 1
        self.srt.append(f"{self.cues}\n{format_timestamp(start)} --> {format_timestamp(res.end)}\n{text}\n\n")
        ms = int(round(start * 1000)), int(round(res.end * 1000))
        rows = [(t.score, t.index, f"{ms[0]}\t{ms[1]}\t{t.label}\t{t.mid}\t{t.score:.4f}\n")
                for t in res.tags]
        if rows:
            self.tsv.append("".join(r for _, _, r in sorted(rows, key=lambda r: (-r[0], r[1]))))

    def add_gap(self, gap: Gap) -> None:
        """Mark a gap: an SRT cue and a TSV row without mid and score."""
        self.cues += 1
        self.srt.append(f"{self.cues}\n{format_timestamp(gap.start)} --> {format_timestamp(gap.end)}\n"
                        f"[no audio: {gap.reason}]\n\n")
        self.tsv.append(f"{int(round(gap.start * 1000))}\t{int(round(gap.end * 1000))}\t{GAP_LABEL}\t\t\n")

    def close(self) -> None:
        """Close both files."""
        self.srt.close()
        self.tsv.close()
