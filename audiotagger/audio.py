"""Decode any media file to mono float32 audio at a chosen rate, streamed in bounded chunks.

Decoding uses the static ``ffmpeg`` binary shipped inside the ``imageio-ffmpeg`` wheel (no system
ffmpeg or ffprobe is assumed). ffmpeg writes the first audio stream, at its native rate and channel
count, as 32-bit float WAV to a pipe; this module reads it in chunks, averages the channels (the
arithmetic mean, as VGGish's ``waveform_to_examples`` does) and resamples the mono signal with
libsoxr's "very high quality" recipe through :class:`soxr.ResampleStream`, so memory does not grow
with the duration of the file.

Why soxr VHQ: it is a linear-phase band-limited resampler with 28-bit precision and a pass band that
reaches about 7.3 kHz at a 16 kHz output (VGGish's top mel band ends at 7.5 kHz, -0.3 dB there), it
streams with exact continuity across chunks, and it is about a hundred times faster than resampy's
``kaiser_best`` that Google's reference uses (whose filter changed between resampy releases, so the
reference is not reproducible at other rates anyway, SPEC §2.2). At the target rate no resampling
happens, which keeps parity with the reference at 16 kHz input. One resampler serves every format.

Why not moviepy: its ``to_soundarray`` returned a constant signal on ordinary mp4 files, always
returns stereo float64 and is slower than a pipe (DESIGN.md).
"""

from __future__ import annotations

import functools
import os
import queue
import re
import struct
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np

from .errors import AudioError, ParameterError, StreamStalled

DEFAULT_SAMPLE_RATE = 16000
"""Rate of VGGish's front end; the default of :func:`load_audio` and :func:`stream_audio`."""
CHUNK_SECONDS = 10.0
"""Seconds of native audio read from ffmpeg at a time (bounds the memory of a decode)."""
LIVE_READ_AHEAD = 1000
"""Blocks a live decode reads ahead of its consumer (each one ffmpeg packet, about 20-60 ms)."""
RESAMPLER_QUALITY = "VHQ"
"""libsoxr quality recipe used for every rate conversion."""
RESAMPLERS = ("soxr", "resampy")
"""``--resampler`` choices: libsoxr VHQ, streamed (default), or resampy ``kaiser_best`` on the whole
signal, as Google's VGGish code resamples (optional dependency; memory grows with the duration)."""

_WAVE_FORMAT_IEEE_FLOAT = 3
_WAVE_FORMAT_EXTENSIBLE = 0xFFFE


@functools.lru_cache(maxsize=1)
def ffmpeg_exe() -> str:
    """Return the path of the static ffmpeg binary bundled with ``imageio-ffmpeg``.

    ``IMAGEIO_FFMPEG_EXE`` overrides it (imageio-ffmpeg's own convention).

    Raises
    ------
    AudioError
        No usable ffmpeg binary.
    """
    try:
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except Exception as exc:  # imageio-ffmpeg raises RuntimeError when its binary is missing
        raise AudioError(f"ffmpeg: no usable binary from imageio-ffmpeg ({exc})") from None


def stream_audio(path: str | os.PathLike, sr: int = DEFAULT_SAMPLE_RATE, *,
                 chunk_seconds: float = CHUNK_SECONDS,
                 pre_resample: Callable[[np.ndarray, int, bool], np.ndarray] | None = None,
                 resampler: str = "soxr", strict: bool = False,
                 info: dict | None = None) -> Iterator[np.ndarray]:
    """Decode a media file chunk by chunk to mono float32 at ``sr``.

    Parameters
    ----------
    path : path-like
        Any file ffmpeg reads (wav of any sample format, flac, ogg/opus, mp3, m4a/aac, mp4, mkv, webm,
        mov, ...). Its first audio stream is used.
    sr : int
        Output sample rate in Hz.
    chunk_seconds : float
        Native seconds decoded per step; memory stays bounded by a few chunks.
    pre_resample : callable, optional
        A stage run on the mono signal at the file's native rate, before resampling:
        ``pre_resample(chunk, native_rate, last) -> samples``, called on every chunk in order and
        with ``last=True`` on the final (possibly empty) one (e.g.
        :class:`audiotagger.vggish.features.SecondSplicer`).
    resampler : {"soxr", "resampy"}
        ``soxr`` resamples chunk by chunk (libsoxr VHQ stream); ``resampy`` holds the whole mono signal
        at the native rate and resamples it once at the end (Google's VGGish code; memory grows
        with the duration, about 176 kB per second at 44.1 kHz).
    strict : bool
        Refuse damaged media. By default, a stream with decoding errors (a cut file, garbage in the
        middle) or that decodes to clearly less than the container's stated duration keeps what
        decodes, with a :class:`~audiotagger.errors.AudioTaggerWarning` giving the decoded length
        against the stated one; with ``strict`` it raises :class:`AudioError` instead.
    info : dict, optional
        Filled, before the first chunk is yielded, with ``rate`` and ``channels`` of the stream and
        ``duration``: the container's stated duration in seconds (None when it states none), for
        progress bars with a total.

    Yields
    ------
    np.ndarray [shape=(m,), dtype=float32]
        Consecutive pieces of the signal (lengths vary; concatenated they are the whole signal).

    Raises
    ------
    AudioError
        Missing path, a directory, an empty file, not a media file, no audio stream, a truncated or
        corrupt stream, no samples, or non-finite samples. The message is one line naming the file.
        The error may come after some chunks were yielded (a corrupt packet late in the file), so
        callers write their outputs only once the stream is exhausted.
    """
    path = Path(path)
    sr = _check_rate(sr)
    resampler = check_resampler(resampler)
    _check_file(path)
    yield from decode_input(["-i", str(path)], str(path), sr, chunk_seconds=chunk_seconds,
                            pre_resample=pre_resample, strict=strict, info=info, resampler=resampler)


def decode_input(input_args: Sequence[str], name: str, sr: int = DEFAULT_SAMPLE_RATE, *,
                 chunk_seconds: float = CHUNK_SECONDS,
                 pre_resample: Callable[[np.ndarray, int, bool], np.ndarray] | None = None,
                 stdin=None, live: bool = False, open_timeout: float | None = None,
                 stall_timeout: float | None = None, stop: threading.Event | None = None,
                 clock: ChunkClock | None = None, strict: bool = False, info: dict | None = None,
                 resampler: str = "soxr") -> Iterator[np.ndarray]:
    """Decode whatever ffmpeg opens with ``input_args`` (a file, a URL, a capture device, stdin).

    The one ffmpeg pipe of the package: :func:`stream_audio` (files) and the live driver
    (:mod:`audiotagger.live`) both read through it, so a file and a stream of it decode alike.

    Parameters
    ----------
    input_args : sequence of str
        ffmpeg input options ending with ``-i URL`` (e.g. ``["-f", "pulse", "-i", "default"]``).
    name : str
        Name of the input in error messages.
    sr : int
        Output sample rate in Hz.
    chunk_seconds : float
        Native seconds read per step (small for live sources: it bounds the latency).
    pre_resample : callable, optional
        See :func:`stream_audio`.
    stdin : file or None
        What ffmpeg reads as ``pipe:0`` (None: nothing, and ``-nostdin``).
    live : bool
        A live source: ffmpeg flushes every packet to the pipe at once.
    open_timeout : float, optional
        Seconds for the input to deliver its first audio; then :class:`AudioError` ("no answer").
    stall_timeout : float, optional
        Seconds without new audio after which the input counts as stalled (:class:`StreamStalled`).
    stop : threading.Event, optional
        When set, decoding ends as if the input had ended (ffmpeg is stopped, no error is raised).
    clock : ChunkClock, optional
        Its ``time`` is set, before each chunk is yielded, to when that chunk's last byte came from ffmpeg.
    strict, info, resampler
        See :func:`stream_audio`.

    Yields
    ------
    np.ndarray [shape=(m,), dtype=float32]
        Consecutive mono pieces of the signal at ``sr``.

    Raises
    ------
    AudioError
        As :func:`stream_audio`, naming ``name``; :class:`StreamStalled` after ``stall_timeout``.
    """
    sr = _check_rate(sr)
    resampler = check_resampler(resampler)
    with tempfile.TemporaryFile() as errfile:
        cmd = [ffmpeg_exe(), *(["-nostdin"] if stdin is None else []), "-hide_banner", "-nostats",
               "-loglevel", "level+info", *input_args,
               "-map", "0:a:0", "-vn", "-sn", "-dn", "-map_metadata", "-1", "-fflags", "+bitexact",
               "-c:a", "pcm_f32le", *(["-flush_packets", "1"] if live else []), "-f", "wav", "pipe:1"]
        try:
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL if stdin is None else stdin,
                                    stdout=subprocess.PIPE, stderr=errfile)
        except OSError as exc:
            raise AudioError(f"{name}: cannot run ffmpeg ({exc})") from None
        watch = _Watch(proc, stop, open_timeout, stall_timeout)
        watch.clock, watch.live = clock, live
        try:
            yield from _read_wav_stream(name, proc, errfile, sr, chunk_seconds, pre_resample, strict, info,
                                        watch, resampler)
        finally:
            watch.cancel()
            if proc.poll() is None:
                proc.kill()
            proc.stdout.close()
            proc.wait()


def load_audio(path: str | os.PathLike, sr: int = DEFAULT_SAMPLE_RATE) -> np.ndarray:
    """Decode a whole media file to mono float32 at ``sr``.

    Parameters
    ----------
    path : path-like
        Any file ffmpeg reads (see :func:`stream_audio`).
    sr : int
        Output sample rate in Hz.

    Returns
    -------
    np.ndarray [shape=(n,), dtype=float32]
        The signal, nominally in [-1, 1] (float files may exceed it; nothing is clipped).

    Raises
    ------
    AudioError
        See :func:`stream_audio`.
    """
    chunks = list(stream_audio(path, sr))
    return np.concatenate(chunks) if len(chunks) != 1 else chunks[0]


MAX_CHANNELS = 16
"""Most channels an in-memory waveform is taken to have when its layout is inferred."""


def to_mono(x: np.ndarray, name: str = "waveform", channels_axis: int | None = None) -> np.ndarray:
    """Average the channels of ``x``, given as ``(samples, channels)`` or ``(channels, samples)``.

    Parameters
    ----------
    x : np.ndarray [shape=(n,), (n, channels) or (channels, n)]
        Audio samples, floating point.
    name : str
        Name used in error messages.
    channels_axis : {None, 0, 1}
        Which axis of a 2-D ``x`` holds the channels: 1 for ``(samples, channels)`` (VGGish's and
        soundfile's layout), 0 for ``(channels, samples)`` (librosa's and torchaudio's). None infers it
        when exactly one axis is at most :data:`MAX_CHANNELS` long and the other is longer, and refuses
        anything else as ambiguous (a stereo pair must never be read as 2-sample audio).

    Returns
    -------
    np.ndarray [shape=(n,), dtype=float32]

    Raises
    ------
    ParameterError
        Not 1-D or 2-D, not floating point, or an ambiguous 2-D layout.
    """
    x = np.asarray(x)
    if x.ndim not in (1, 2):
        raise ParameterError(f"{name}: audio must be 1-D, (samples, channels) or (channels, samples), "
                             f"got shape {x.shape}")
    if not np.issubdtype(x.dtype, np.floating):
        raise ParameterError(f"{name}: audio must be floating point in [-1, 1], got dtype {x.dtype} "
                             "(divide integer PCM by its full scale, e.g. int16 / 32768)")
    if x.ndim == 1:
        return np.ascontiguousarray(x, dtype=np.float32)
    if channels_axis is None:
        rows, cols = x.shape
        if cols <= MAX_CHANNELS < rows:
            channels_axis = 1
        elif rows <= MAX_CHANNELS < cols:
            channels_axis = 0
        else:
            raise ParameterError(f"{name}: cannot tell samples from channels in shape {x.shape}; pass "
                                 "channels_axis=1 for (samples, channels) or 0 for (channels, samples)")
    if channels_axis not in (0, 1):
        raise ParameterError(f"{name}: channels_axis must be 0, 1 or None, got {channels_axis!r}")
    return _average_channels(x if channels_axis == 1 else x.T)


def _average_channels(x: np.ndarray) -> np.ndarray:
    """Mean over axis 1, accumulated in float64 and rounded once to float32.

    ``ndarray.mean(axis=1)`` on an interleaved float32 block was 15x slower than this column sum.
    """
    if x.shape[1] == 1:
        return np.ascontiguousarray(x[:, 0], dtype=np.float32)
    acc = x[:, 0].astype(np.float64)
    for c in range(1, x.shape[1]):
        acc += x[:, c]
    acc /= x.shape[1]
    return acc.astype(np.float32)


def check_finite(x: np.ndarray, name: str, sr: float | None = None, offset: int = 0) -> None:
    """Raise :class:`AudioError` if ``x`` holds NaN or infinite samples.

    Parameters
    ----------
    x : np.ndarray
        Samples.
    name : str
        File name (or ``"waveform"``) for the message.
    sr : float, optional
        Sample rate of ``x``; with it the message gives the time of the first bad sample.
    offset : int
        Index of ``x[0]`` in the whole signal.
    """
    finite = np.isfinite(x)
    if not finite.all():
        first = offset + int(np.argmin(finite.reshape(len(x), -1).all(axis=1)))
        where = f" (first at {first / sr:.3f} s)" if sr else f" (first at sample {first})"
        raise AudioError(f"{name}: {int((~finite).sum())} non-finite samples (NaN or Inf){where}")


def check_resampler(resampler: str | None) -> str:
    """Validate ``--resampler`` (None: soxr); resampy must be installed.

    Raises
    ------
    ParameterError
        Unknown name, or resampy asked for but not installed.
    """
    name = "soxr" if resampler is None else str(resampler).lower()
    if name not in RESAMPLERS:
        raise ParameterError(f"--resampler: unknown {resampler!r} (choose from {', '.join(RESAMPLERS)})")
    if name == "resampy":
        import importlib.util

        if importlib.util.find_spec("resampy") is None:
            raise ParameterError("--resampler resampy: resampy is not installed "
                                 "(pip install 'audiotagger[resampy]')")
    return name


def resample(x: np.ndarray, sr_in: int, sr_out: int = DEFAULT_SAMPLE_RATE, resampler: str = "soxr"
             ) -> np.ndarray:
    """Resample a mono signal; the identity when the rates are equal.

    Parameters
    ----------
    x : np.ndarray [shape=(n,)]
        Mono float signal.
    sr_in, sr_out : int
        Input and output rates in Hz.
    resampler : {"soxr", "resampy"}
        libsoxr VHQ, or resampy's ``kaiser_best`` computed in float64 (Google's VGGish code).

    Returns
    -------
    np.ndarray [shape=(round(n * sr_out / sr_in),), dtype=float32]
    """
    if check_resampler(resampler) == "resampy" and int(sr_in) != int(sr_out):
        import resampy

        y = resampy.resample(np.asarray(x, dtype=np.float64), int(sr_in), int(sr_out), filter="kaiser_best")
        return y.astype(np.float32)
    x = np.ascontiguousarray(x, dtype=np.float32)
    if int(sr_in) == int(sr_out):
        return x
    import soxr

    return soxr.resample(x, int(sr_in), int(sr_out), quality=RESAMPLER_QUALITY)


# --- internals ------------------------------------------------------------------------------------

def _check_rate(sr) -> int:
    if isinstance(sr, bool) or not float(sr).is_integer() or sr <= 0:
        raise ParameterError(f"sr: sample rate must be a positive integer, got {sr!r}")
    return int(sr)


def _check_file(path: Path) -> None:
    if not path.exists():
        raise AudioError(f"{path}: no such file")
    if path.is_dir():
        raise AudioError(f"{path}: is a directory, not a media file")
    if not os.access(path, os.R_OK):
        raise AudioError(f"{path}: permission denied")
    if path.stat().st_size == 0:
        raise AudioError(f"{path}: empty file (0 bytes)")


def _read_wav_stream(path: str | Path, proc: subprocess.Popen, errfile, sr: int, chunk_seconds: float,
                     pre_resample=None, strict: bool = False, info: dict | None = None,
                     watch: _Watch | None = None, resampler: str = "soxr") -> Iterator[np.ndarray]:
    """Parse ffmpeg's WAV output from the pipe and yield resampled mono chunks."""
    watch = watch or _Watch(proc)
    out = proc.stdout
    header = out.read(12)
    if len(header) < 12 or header[:4] != b"RIFF" or header[8:12] != b"WAVE":
        proc.wait()
        watch.check(path)
        if watch.stopping:
            return
        raise _ffmpeg_error(path, errfile, proc.returncode)
    channels = rate = None
    while True:
        head = out.read(8)
        if len(head) < 8:
            proc.wait()
            watch.check(path)
            if watch.stopping:
                return
            raise _ffmpeg_error(path, errfile, proc.returncode)
        cid, size = head[:4], struct.unpack("<I", head[4:])[0]
        if cid == b"data":
            break
        body = out.read(size + (size & 1))
        if cid == b"fmt ":
            fmt_tag, channels, rate = struct.unpack("<HHI", body[:8])
            bits = struct.unpack("<H", body[14:16])[0]
            if fmt_tag == _WAVE_FORMAT_EXTENSIBLE:
                fmt_tag = struct.unpack("<H", body[24:26])[0]
            if fmt_tag != _WAVE_FORMAT_IEEE_FLOAT or bits != 32:
                raise AudioError(f"{path}: unexpected sample format from ffmpeg ({fmt_tag}, {bits} bits)")
    if not channels or not rate:
        raise AudioError(f"{path}: ffmpeg wrote no audio format")
    watch.opened()
    if info is not None:
        info.update(rate=rate, channels=channels, duration=stated_duration(errfile))

    native: list[np.ndarray] | None = None     # resampy: the native-rate signal, resampled at the end
    if rate != sr and resampler == "resampy":
        native, resampler = [], None
    elif rate != sr:
        import soxr

        resampler = soxr.ResampleStream(rate, sr, 1, dtype="float32", quality=RESAMPLER_QUALITY)
    else:
        resampler = None
    frame_bytes = 4 * channels
    chunk_bytes = max(1, int(chunk_seconds * rate)) * frame_bytes
    done = 0
    tail = b""       # a live read may end inside a frame: the rest comes with the next read
    for data in _prefetch(out, chunk_bytes, watch=watch, live=watch.live):
        last = not data if watch.live else len(data) < chunk_bytes
        if tail:
            data, tail = tail + data, b""
        whole = len(data) // frame_bytes * frame_bytes
        if watch.live and not last:
            data, tail = data[:whole], data[whole:]
        x = np.frombuffer(data, dtype="<f4", count=whole // 4).reshape(-1, channels)
        mono = _average_channels(x)
        if len(mono):  # a NaN or Inf in any channel stays non-finite in the mean
            check_finite(mono, str(path), rate, done)
        done += len(mono)
        if pre_resample is not None:
            mono = pre_resample(mono, rate, last)
        if resampler is not None:
            mono = resampler.resample_chunk(mono, last=last)
        if native is not None:
            native.append(np.array(mono))
            mono = mono[:0]
        error = None
        if last:
            if watch.stopping:
                proc.kill()
            proc.wait()
            try:
                watch.check(path)
            except AudioError as exc:
                error = exc
            if error is None and not watch.stopping:
                try:
                    if done == 0:
                        if proc.returncode != 0 or _error_lines(errfile):
                            raise _ffmpeg_error(path, errfile, proc.returncode)
                        raise AudioError(f"{path}: no audio samples (zero-length audio stream)")
                    if watch.live and (proc.returncode != 0 or _error_lines(errfile)):
                        raise _ffmpeg_error(path, errfile, proc.returncode)   # a live source dropped
                    _check_damage(path, errfile, proc.returncode, done / rate, strict)
                except AudioError as exc:
                    error = exc
            if native is not None and error is None and done:
                y = resample(np.concatenate(native), rate, sr, "resampy")
                step = max(1, int(chunk_seconds * sr))
                yield from (y[i:i + step] for i in range(0, len(y) - step, step))
                mono = y[(max(0, len(y) - 1) // step) * step:]
        if len(mono):
            if watch.clock is not None:
                watch.clock.time = watch.arrived
            yield mono   # the audio before a failure still counts for a live source
        if last:
            if error is not None:
                raise error
            return


def _prefetch(stream, size: int, depth: int = 2, watch: _Watch | None = None,
              live: bool = False) -> Iterator[bytes]:
    """Read ``size``-byte blocks from ``stream`` in a thread, up to ``depth`` blocks ahead.

    ffmpeg can only decode while its 64 KB pipe is being drained; reading ahead lets it decode the
    next blocks while the caller computes on this one. The last block is shorter than ``size`` (empty
    at end of stream, when the stream fails, or when ``watch`` says stop or stalled).

    ``live``: each block is whatever the pipe holds (up to ``size`` bytes) as soon as it is there, the
    reader keeps reading while the caller computes (up to :data:`LIVE_READ_AHEAD` blocks, so each
    block's arrival time is true), and only an empty block ends the stream.
    """
    blocks: queue.Queue[bytes] = queue.Queue(maxsize=LIVE_READ_AHEAD if live else depth)
    stop = threading.Event()

    def put(block: bytes) -> bool:
        item = (block, time.monotonic())
        while not stop.is_set():
            try:
                blocks.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def worker() -> None:
        while True:
            try:
                block = (stream.read1(size) if live else stream.read(size)) or b""
            except (OSError, ValueError):  # closed because the consumer stopped early
                block = b""
            if not put(block) or not block or (len(block) < size and not live):
                return

    thread = threading.Thread(target=worker, name="audiotagger-decode", daemon=True)
    thread.start()
    try:
        while True:
            if watch is None or watch.idle is None:
                block, arrived = blocks.get()
            else:
                block, arrived = watch.wait(blocks)
            if watch is not None:
                watch.arrived = arrived
            yield block
            if not block or (len(block) < size and not live):
                return
    finally:
        stop.set()


class ChunkClock:
    """When the latest chunk of :func:`decode_input` arrived (``time.monotonic()`` seconds)."""

    time = 0.0


class _Watch:
    """Time limits and the stop request of one decode (all off for files).

    Before the first audio an expired ``open_timeout`` kills ffmpeg (the input never answered);
    afterwards :meth:`wait` takes blocks from the reader and ends the stream when ``stop`` is set or
    no audio came for ``stall_timeout`` seconds.
    """

    POLL = 0.1
    """Seconds between checks of the stop request while waiting for audio."""

    def __init__(self, proc: subprocess.Popen, stop: threading.Event | None = None,
                 open_timeout: float | None = None, stall_timeout: float | None = None):
        self.proc, self.stop, self.stall_timeout = proc, stop, stall_timeout
        self.idle = None if stop is None and stall_timeout is None else self.POLL
        self.expired = self.stalled = self.stopping = False
        self.arrived = 0.0
        self.clock: ChunkClock | None = None
        self.live = False
        self.open_timeout = open_timeout
        self._timer = None
        if open_timeout is not None or stop is not None:
            self._timer = threading.Thread(target=self._guard_open, daemon=True, name="audiotagger-open")
            self._open = threading.Event()
            self._timer.start()

    def _guard_open(self) -> None:
        deadline = None if self.open_timeout is None else time.monotonic() + self.open_timeout
        while not self._open.wait(self.POLL):
            if self.stop is not None and self.stop.is_set():
                self.stopping = True
            elif deadline is not None and time.monotonic() > deadline:
                self.expired = True
            else:
                continue
            if self.proc.poll() is None:
                self.proc.kill()
            return

    def opened(self) -> None:
        """The input delivered its audio format: the open timeout no longer applies."""
        if self._timer is not None:
            self._open.set()

    def cancel(self) -> None:
        """End the open guard."""
        self.opened()

    def wait(self, blocks: queue.Queue) -> tuple[bytes, float]:
        """Next ``(block, time read)`` from the reader; an empty block (the end) on a stop request.

        A stall (no block for ``stall_timeout`` seconds) stops ffmpeg; the blocks still on their way
        (and then the end) come as usual.
        """
        waited = 0.0
        while True:
            if self.stop is not None and self.stop.is_set():
                self.stopping = True
                self._end()
                return b"", time.monotonic()     # stop now: what is still queued is left
            try:
                return blocks.get(timeout=self.POLL)
            except queue.Empty:
                waited += self.POLL
            if self.stall_timeout is not None and waited >= self.stall_timeout and not self.stalled:
                self.stalled = True
                self._end()
                waited = 0.0
            elif self.stalled and waited >= 10.0:   # the reader did not see the end: give up on it
                return b"", time.monotonic()

    def _end(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()

    def check(self, name: str) -> None:
        """Raise the error of an expired limit (none after a stop request)."""
        if self.stopping:
            return
        if self.expired:
            raise AudioError(f"{name}: no audio within {self.open_timeout:g} s (the source does not answer)")
        if self.stalled:
            raise StreamStalled(f"{name}: no audio for {self.stall_timeout:g} s (stalled)")


_ERROR_LEVELS = ("[error]", "[fatal]", "[panic]")
_DURATION = re.compile(r"^\[info\]\s+Duration: (\d+):(\d\d):(\d\d(?:\.\d+)?)")
DAMAGE_TOLERANCE_SECONDS = 1.0
"""Decoded audio may fall short of the container's stated duration by this much (or by
:data:`DAMAGE_TOLERANCE_FRACTION` of it) before it counts as damaged (audio tracks often end a little
before the video)."""
DAMAGE_TOLERANCE_FRACTION = 0.05


def _log_lines(errfile) -> list[str]:
    errfile.flush()
    errfile.seek(0)
    text = errfile.read().decode("utf-8", "replace")
    errfile.seek(0, os.SEEK_END)
    return [line.strip() for line in text.splitlines() if line.strip()]


def _error_lines(errfile) -> list[str]:
    """Ffmpeg's error messages (``-loglevel level+info``), without their level tag."""
    out = []
    for line in _log_lines(errfile):
        for tag in _ERROR_LEVELS:
            if tag in line:
                out.append(line.replace(f"{tag} ", "").replace(tag, ""))
                break
    return out


def stated_duration(errfile) -> float | None:
    """The container's duration from ffmpeg's input dump (``Duration: HH:MM:SS.ss``), if stated."""
    for line in _log_lines(errfile):
        m = _DURATION.match(line)
        if m:
            return int(m[1]) * 3600 + int(m[2]) * 60 + float(m[3])
    return None


def _check_damage(path: Path, errfile, returncode: int | None, decoded: float, strict: bool) -> None:
    """Warn (or with ``strict`` raise) when a decoded stream had errors or fell short of its length."""
    import warnings

    from .errors import AudioTaggerWarning

    errors = _error_lines(errfile)
    stated = stated_duration(errfile)
    short = stated is not None and decoded < stated - max(DAMAGE_TOLERANCE_SECONDS,
                                                           DAMAGE_TOLERANCE_FRACTION * stated)
    if not (errors or returncode or short):
        return
    detail = errors[0].split("] ")[-1] if errors else (f"ffmpeg exit status {returncode}" if returncode
                                                        else "stream ends early")
    of = f" of the {stated:.2f} s the container states" if stated is not None else ""
    if strict:
        raise AudioError(f"{path}: damaged media: decoded {decoded:.2f} s{of} ({detail}); refused "
                         "(--strict)")
    warnings.warn(f"{path}: damaged media: decoded {decoded:.2f} s{of} ({detail}); keeping what decodes "
                  "(--strict refuses damaged files)", AudioTaggerWarning, stacklevel=3)


def _ffmpeg_error(path: str | Path, errfile, returncode: int | None) -> AudioError:
    """Turn ffmpeg's stderr into one line that says what is wrong with ``path``."""
    lines = _error_lines(errfile)
    text = " ".join(lines)
    if "matches no streams" in text or "does not contain any stream" in text:
        why = "no audio stream"
    elif "moov atom not found" in text:
        why = "truncated or corrupt file (moov atom not found)"
    elif "Error opening input" in text and "Invalid data found" in text:
        why = "not a media file ffmpeg can read (invalid data)"
    elif (opening := re.search(r"Error opening input: ([^\n]+?)(?: Error opening input|$)", text)):
        why = f"cannot open the input ({opening.group(1).strip()})"
    elif lines:
        detail = next((ln for ln in lines if "rror" in ln or "nvalid" in ln), lines[0])
        detail = detail.split("] ")[-1]
        why = f"truncated or corrupt audio ({detail})" if returncode == 0 else f"ffmpeg failed: {detail}"
    else:
        why = f"ffmpeg failed (exit status {returncode})"
    return AudioError(f"{path}: {why}")


class SampleCounter:
    """Pass mono chunks through (as float32, flattened), counting their samples in ``total``."""

    def __init__(self, chunks: Iterable[np.ndarray]):
        self._chunks = chunks
        self.total = 0

    def __iter__(self) -> Iterator[np.ndarray]:
        for chunk in self._chunks:
            chunk = np.asarray(chunk, dtype=np.float32).reshape(-1)
            self.total += chunk.size
            yield chunk
