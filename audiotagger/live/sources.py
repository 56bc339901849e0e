"""What ``audiotagger listen`` reads: a capture device, a network URL or stdin, as ffmpeg input options.

A :class:`Source` is only the ffmpeg command-line input part (``-f pulse -i default``, ``-i URL``,
``-f s16le -ar 16000 -ac 1 -i pipe:0``); decoding goes through :func:`audiotagger.audio.decode_input`,
the same pipe ``tag`` uses for files.
"""

from __future__ import annotations

import functools
import re
import subprocess
import sys
from dataclasses import dataclass, field

from ..errors import AudioError, ParameterError

URL_SCHEMES = ("http", "https", "rtsp", "rtsps", "rtmp", "rtmps", "udp", "rtp", "srt", "tcp", "hls")
"""URL schemes taken as network streams (HLS is an ``http(s)://…m3u8`` URL, or ``hls+http://``)."""

DEVICE_FORMATS = {"linux": ("pulse", "alsa", "oss"), "darwin": ("avfoundation",), "win32": ("dshow",)}
"""ffmpeg capture formats per platform, in order of preference."""

DEFAULT_DEVICES = {"pulse": "default", "alsa": "default", "oss": "/dev/dsp", "avfoundation": ":default"}
"""The default microphone's name for each capture format (dshow has none: the first device is used)."""

RAW_FORMATS = frozenset({"s16le", "s16be", "s32le", "f32le", "f64le", "u8", "s8", "mulaw", "alaw", "s24le"})
"""``--format`` values that are headerless PCM: they need a rate and a channel count."""

DEFAULT_RAW_RATE = 16000
"""``--rate`` of a raw ``--format`` when not given (the rate of VGGish)."""


@dataclass(frozen=True)
class Source:
    """One live input.

    Attributes
    ----------
    name : str
        How messages name it (the URL, ``-`` for stdin, ``pulse:default`` for a device).
    kind : {"device", "url", "stdin"}
        What it is (URLs reconnect by default).
    input_args : list of str
        ffmpeg input options ending with ``-i …``.
    """

    name: str
    kind: str
    input_args: list[str] = field(default_factory=list)

    @property
    def uses_stdin(self) -> bool:
        """Ffmpeg reads this source from our standard input."""
        return self.kind == "stdin"


def platform_key(platform: str | None = None) -> str:
    """``linux``, ``darwin`` or ``win32`` for a ``sys.platform`` value (other Unixes count as linux)."""
    platform = sys.platform if platform is None else platform
    if platform.startswith("win") or platform == "cygwin":
        return "win32"
    return "darwin" if platform == "darwin" else "linux"


@functools.lru_cache(maxsize=1)
def ffmpeg_input_devices() -> frozenset[str]:
    """Capture formats the bundled ffmpeg was built with (``ffmpeg -devices``, demuxing side)."""
    from ..audio import ffmpeg_exe

    try:
        out = subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", "-devices"], capture_output=True,
                             text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        return frozenset()
    names = set()
    for line in out.splitlines():
        m = re.match(r"\s*D[E ]?\s+(\S+)", line)
        if m:
            names.update(m.group(1).split(","))
    return frozenset(names)


def device_format(platform: str | None = None, available: frozenset[str] | None = None) -> str:
    """The capture format to use on ``platform``: the first of :data:`DEVICE_FORMATS` ffmpeg has.

    Raises
    ------
    AudioError
        The bundled ffmpeg has none of them.
    """
    key = platform_key(platform)
    available = ffmpeg_input_devices() if available is None else available
    for fmt in DEVICE_FORMATS[key]:
        if fmt in available:
            return fmt
    raise AudioError(f"microphone: this ffmpeg has no audio capture support for {key} "
                     f"(needs one of {', '.join(DEVICE_FORMATS[key])}); give a URL or - for stdin")


def device_source(device: str | None = None, *, platform: str | None = None,
                  available: frozenset[str] | None = None) -> Source:
    """The ffmpeg input of a microphone: ``-f pulse -i default``, ``-f avfoundation -i :0``, ``-f dshow …``.

    Parameters
    ----------
    device : str, optional
        ``--device``: a device name from ``--list-devices`` (default: the system's default microphone;
        on Windows the first DirectShow audio device). ``FORMAT:NAME`` picks the capture format too
        (``alsa:hw:1``).
    platform : str, optional
        A ``sys.platform`` value (default: this machine's).
    available : frozenset of str, optional
        Capture formats of the ffmpeg in use (default: asked from it).

    Returns
    -------
    Source
    """
    key = platform_key(platform)
    fmt = None
    known = {f for formats in DEVICE_FORMATS.values() for f in formats}
    if device and ":" in device and device.split(":", 1)[0] in known:
        fmt, device = device.split(":", 1)
    fmt = fmt or device_format(key, available)
    if fmt == "dshow":
        name = device or _first_dshow_device()
        target = name if name.startswith("audio=") else f"audio={name}"
    elif fmt == "avfoundation":
        name = device or DEFAULT_DEVICES[fmt]
        target = name if name.startswith(":") else f":{name}"      # audio only: no video device
    else:
        name = device or DEFAULT_DEVICES[fmt]
        target = name
    return Source(f"{fmt}:{name}", "device", ["-f", fmt, "-i", target])


def is_url(text: str) -> bool:
    """True for ``scheme://…`` with a network scheme of :data:`URL_SCHEMES`."""
    m = re.match(r"([a-zA-Z][a-zA-Z0-9+.-]*)://", text)
    return bool(m) and m.group(1).lower().split("+")[0] in URL_SCHEMES


def parse_source(source: str | None = None, *, device: str | None = None, format: str | None = None,
                 rate: int | None = None, channels: int | None = None,
                 platform: str | None = None, available: frozenset[str] | None = None) -> Source:
    """Turn ``audiotagger listen [SOURCE]`` and its input options into a :class:`Source`.

    Parameters
    ----------
    source : str, optional
        None: the microphone (``device``); ``-``: stdin; a URL (:func:`is_url`).
    device : str, optional
        ``--device`` (only without ``source``).
    format : str, optional
        ``--format``: ffmpeg's input format (``s16le``, ``mpegts``, ``wav`` …); default: detected.
    rate, channels : int, optional
        ``--rate``/``--channels`` of a raw PCM ``format`` (default 16000 Hz, 1 channel).
    platform, available
        See :func:`device_source`.

    Returns
    -------
    Source

    Raises
    ------
    ParameterError
        A SOURCE that is neither ``-`` nor a URL, ``--device`` with a SOURCE, ``--rate`` without a raw format.
    """
    fmt_args: list[str] = []
    if format:
        fmt_args = ["-f", format]
        if format in RAW_FORMATS:
            fmt_args += ["-ar", str(int(rate or DEFAULT_RAW_RATE)), "-ac", str(int(channels or 1))]
        elif rate or channels:
            raise ParameterError("--rate/--channels: only for raw PCM formats "
                                 f"({', '.join(sorted(RAW_FORMATS))})")
    elif rate or channels:
        raise ParameterError("--rate/--channels: give the raw sample --format too (e.g. --format s16le)")
    if source is None:
        if format:
            raise ParameterError("--format: for a URL or - (stdin), not for a capture device")
        return device_source(device, platform=platform, available=available)
    if device is not None:
        raise ParameterError("--device: only when no SOURCE is given (the microphone)")
    if source == "-":
        return Source("-", "stdin", [*fmt_args, "-i", "pipe:0"])
    if is_url(source):
        return Source(source, "url", [*fmt_args, "-i", source])
    schemes = ", ".join(s + "://" for s in URL_SCHEMES)
    raise ParameterError(f"SOURCE: {source!r} is not a stream URL ({schemes}) "
                         "or - (stdin); tag files with 'audiotagger tag'")


def list_devices(platform: str | None = None, available: frozenset[str] | None = None) -> str:
    """What ``audiotagger listen --list-devices`` prints: the capture devices ffmpeg reports.

    Raises
    ------
    AudioError
        No capture format, or ffmpeg cannot list the devices (e.g. no sound server is running).
    """
    from ..audio import ffmpeg_exe

    fmt = device_format(platform, available)
    if fmt in ("avfoundation", "dshow"):
        cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-f", fmt, "-list_devices", "true", "-i",
               "" if fmt == "avfoundation" else "dummy"]
    else:
        cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-sources", fmt]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise AudioError(f"{fmt}: cannot list devices ({exc})") from None
    text = (done.stdout + done.stderr).strip()
    if fmt not in ("avfoundation", "dshow") and ("Cannot list sources" in text or done.returncode != 0):
        why = text.splitlines()[-1] if text else f"exit status {done.returncode}"
        raise AudioError(f"{fmt}: cannot list capture devices ({why}; is a sound server running?)")
    return f"capture format: {fmt}\n{text}\n"


def _first_dshow_device() -> str:
    text = list_devices("win32", frozenset({"dshow"}))
    names = re.findall(r'"([^"]+)"\s*\(audio\)', text)
    if not names:
        raise AudioError("dshow: no audio capture device found (see --list-devices)")
    return names[0]
