"""The page's player source: a relative link to the media, or (``--embed-media``) a compressed audio track."""

from __future__ import annotations

import base64
import os
import subprocess
import tempfile
from pathlib import Path
from urllib.parse import quote

from ...errors import AudioError
from .params import EMBED_CODEC, VIDEO_EXTENSIONS


def media_link(media: str | os.PathLike, page: str | os.PathLike) -> str:
    """URL of ``media`` relative to the folder of ``page`` (so the folder can move with its media).

    Falls back to an absolute ``file:`` URL when no relative path exists (another drive on Windows).
    """
    media, folder = Path(media).resolve(), Path(page).resolve().parent
    try:
        rel = os.path.relpath(media, folder)
    except ValueError:
        return media.as_uri()
    return quote(Path(rel).as_posix())


def media_kind(media: str | os.PathLike) -> str:
    """``"video"`` for video containers (by extension), else ``"audio"``."""
    return "video" if Path(media).suffix.lower() in VIDEO_EXTENSIONS else "audio"


def embedded_audio(media: str | os.PathLike) -> tuple[str, str]:
    """Encode the audio of ``media`` as a small mono track for embedding in the page.

    Returns
    -------
    mime : str
        MIME type of the track.
    data : str
        The track, base64-encoded.

    Raises
    ------
    AudioError
        If ffmpeg cannot read the file or it has no audio stream.
    """
    from ...audio import ffmpeg_exe

    codec, bitrate, container, mime = EMBED_CODEC
    with tempfile.TemporaryDirectory(prefix="audiotagger-embed-") as tmp:
        track = Path(tmp) / f"track.{container}"    # a seekable file, so the muxer writes duration and cues
        cmd = [ffmpeg_exe(), "-nostdin", "-hide_banner", "-loglevel", "error", "-i", str(media), "-vn", "-sn",
               "-dn", "-ac", "1", "-c:a", codec, "-b:a", bitrate, "-vbr", "constrained", "-f", container,
               str(track)]
        proc = subprocess.run(cmd, capture_output=True, check=False)
        if proc.returncode != 0 or not track.is_file() or not track.stat().st_size:
            lines = proc.stderr.decode("utf-8", "replace").strip().splitlines()
            raise AudioError(f"{media}: cannot embed its audio ({lines[-1] if lines else 'ffmpeg failed'})")
        return mime, base64.b64encode(track.read_bytes()).decode("ascii")
