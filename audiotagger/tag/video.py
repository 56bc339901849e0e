"""The ``mp4`` output: a copy of the input video carrying the tags.

* default: the cues as a **soft subtitle track** (``mov_text``) muxed by the ffmpeg binary of
  imageio-ffmpeg with ``-c copy`` — no re-encoding, seconds even for long videos;
* ``burn``: the tags drawn onto the frames with moviepy 2 (``VideoFileClip(...).transform``; text by
  Pillow), encoded with libx264, then the original audio muxed back unchanged by ffmpeg (moviepy's audio
  reader is not used).
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from ..errors import AudioError, AudioTaggerError
from ..fileio import atomic_path
from .select import Selection

SUBTITLE_LANGUAGE = "eng"
SUBTITLE_TITLE = "AudioSet tags"

class NoVideoStreamError(AudioError):
    """The input has no video stream, so there is no video to copy the tags into."""


_VIDEO_STREAM = re.compile(r"Stream #\d+:\d+.*: Video: (?!.*attached pic)")


def _ffmpeg() -> str:
    from ..audio import ffmpeg_exe

    return ffmpeg_exe()


def _run(cmd: list[str], what: str) -> None:
    proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          check=False)
    if proc.returncode != 0:
        lines = [ln for ln in proc.stderr.decode("utf-8", "replace").splitlines() if ln.strip()]
        last = lines[-1].strip() if lines else f"exit {proc.returncode}"
        raise AudioError(f"{what}: ffmpeg failed ({last})")


def has_video(source: str | os.PathLike) -> bool:
    """True if ``source`` has a video stream (cover art in audio files does not count)."""
    proc = subprocess.run([_ffmpeg(), "-nostdin", "-hide_banner", "-i", str(source)],
                          stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          check=False)
    return bool(_VIDEO_STREAM.search(proc.stderr.decode("utf-8", "replace")))


def write_tagged_video(sel: Selection, path: str | os.PathLike, *, source: str | os.PathLike | None = None,
                       burn: bool = False, overwrite: bool = True, progress: bool = False) -> Path:
    """Write a copy of the source video with the cues of ``sel``.

    Parameters
    ----------
    sel : Selection
        Result and display options (the cues are those of the SRT output).
    path : path-like
        Destination (``<stem>.tagged.mp4``).
    source : path-like, optional
        The input video; default ``sel.result.source``.
    burn : bool
        Draw the tags on the frames (re-encodes the video) instead of adding a subtitle track.
    overwrite : bool
        Replace an existing file.
    progress : bool
        ``burn``: a progress bar over the frames.

    Returns
    -------
    pathlib.Path

    Raises
    ------
    NoVideoStreamError
        The source has no video stream (nothing is written).
    AudioError
        The source is missing, or ffmpeg/moviepy fails; nothing is written.
    """
    from .writers import WriteSRT

    src = Path(source if source is not None else sel.result.source)
    if not src.is_file():
        raise AudioError(f"{src}: -f mp4 needs the input video, which is not there")
    if not has_video(src):
        raise NoVideoStreamError(f"{src}: no video stream, so no mp4 output")
    path = Path(path)
    with (tempfile.TemporaryDirectory(prefix="audiotagger-") as tmp,
          atomic_path(path, overwrite=overwrite) as out):
        if burn:
            silent = Path(tmp) / "burned.mp4"
            burn_tags(sel, src, silent, progress=progress)
            _run([_ffmpeg(), "-nostdin", "-hide_banner", "-v", "error", "-y", "-i", str(silent),
                  "-i", str(src), "-map", "0:v:0", "-map", "1:a?", "-c", "copy", "-f", "mp4", str(out)],
                 f"{path}")
        else:
            srt = Path(tmp) / "tags.srt"
            srt.write_text(WriteSRT().render(sel), encoding="utf-8")
            _run([_ffmpeg(), "-nostdin", "-hide_banner", "-v", "error", "-y", "-i", str(src),
                  "-f", "srt", "-i", str(srt), "-map", "0:v", "-map", "0:a?", "-map", "1:0",
                  "-c", "copy", "-c:s", "mov_text",
                  "-metadata:s:s:0", f"language={SUBTITLE_LANGUAGE}",
                  "-metadata:s:s:0", f"title={SUBTITLE_TITLE}",
                  "-disposition:s:0", "default", "-f", "mp4", str(out)], f"{path}")
    return path


def _wrap(text_parts: list[str], sep: str, width: float, measure) -> list[str]:
    lines, line = [], ""
    for part in text_parts:
        candidate = part if not line else f"{line}{sep}{part}"
        if line and measure(candidate) > width:
            lines.append(line)
            line = part
        else:
            line = candidate
    if line:
        lines.append(line)
    return lines


def burn_tags(sel: Selection, source: str | os.PathLike, out: str | os.PathLike, *,
              progress: bool = False) -> None:
    """Render ``source``'s frames with the cue text drawn at the bottom into ``out`` (no audio).

    Parameters
    ----------
    sel : Selection
        Cues to draw.
    source : path-like
        Input video.
    out : path-like
        Output ``.mp4`` (H.264, no audio track).
    progress : bool
        A progress bar over the frames (total and ETA) on stderr; otherwise moviepy says nothing.
    """
    from moviepy import VideoFileClip
    from PIL import Image, ImageDraw, ImageFont

    cues = sel.cues()
    starts = np.array([c.start for c in cues], dtype=np.float64)
    ends = np.array([c.end for c in cues], dtype=np.float64)
    names = [sel.names(c.classes) for c in cues]
    try:
        clip = VideoFileClip(str(source), audio=False)
    except Exception as exc:  # moviepy raises OSError/KeyError/... for unreadable video
        raise AudioError(f"{source}: moviepy cannot read the video ({type(exc).__name__})") from None
    try:
        height = int(clip.h)
        size = max(12, height // 18)
        try:
            font = ImageFont.load_default(size=size)
        except (TypeError, OSError):
            font = ImageFont.load_default()
        margin = max(4, size // 2)

        def draw(get_frame, t):
            frame = get_frame(t)
            k = int(np.searchsorted(starts, t, side="right")) - 1
            if k < 0 or t >= ends[k] or not names[k]:
                return frame
            image = Image.fromarray(frame)
            pen = ImageDraw.Draw(image)
            lines = _wrap(names[k], sel.options.separator, image.width - 2 * margin,
                          lambda s: pen.textlength(s, font=font))
            y = image.height - margin - len(lines) * int(size * 1.25)
            for line in lines:
                w = pen.textlength(line, font=font)
                pen.text(((image.width - w) / 2, y), line, font=font, fill=(255, 255, 255),
                         stroke_width=max(1, size // 10), stroke_fill=(0, 0, 0))
                y += int(size * 1.25)
            return np.asarray(image)

        tagged = clip.transform(draw)
        logger = None
        if progress:
            import proglog

            logger = proglog.TqdmProgressBarLogger(print_messages=False)
        tagged.write_videofile(str(out), codec="libx264", audio=False, preset="veryfast", logger=logger,
                               ffmpeg_params=["-crf", "20", "-pix_fmt", "yuv420p"])
    except AudioTaggerError:
        raise
    except (OSError, ValueError, RuntimeError) as exc:
        raise AudioError(f"{source}: drawing tags on the video failed ({type(exc).__name__}: {exc})"
                         ) from None
    finally:
        clip.close()
