"""Resumable, verified, locked HTTP downloads into a cache folder (stdlib ``urllib`` only).

One public function, :func:`download`: it streams a URL into ``.<name>.part`` beside the destination
with a progress bar, resumes that partial file with an HTTP ``Range`` request after an interruption
(``If-Range`` guards against a file that changed on the server), retries transient failures with
exponential backoff, checks the result (size, checksum, the caller's structure check) and only then
renames it onto the destination. An inter-process lock (:mod:`filelock`) beside the destination makes
two processes asking for the same file wait for each other instead of writing the same bytes twice.
Proxies come from the standard ``http_proxy`` / ``https_proxy`` / ``no_proxy`` variables, which
``urllib`` honours.

Nothing here knows about models; :mod:`audiotagger.hub` says what to fetch and how to check it.
"""

from __future__ import annotations

import contextlib
import email.utils
import hashlib
import http.client
import json
import os
import socket
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from . import __version__
from .errors import DownloadError, ModelError
from .fileio import ensure_writable_dir

CHUNK_SIZE = 1 << 16
"""Bytes read from the socket per iteration."""
DEFAULT_RETRIES = 4
"""Attempts after the first one on a transient failure (connection cut, time-out, HTTP 5xx/429)."""
DEFAULT_BACKOFF = 1.0
"""Seconds before the first retry; doubled each time, capped at :data:`MAX_BACKOFF`."""
MAX_BACKOFF = 30.0
"""Longest wait between two attempts (also caps a server's ``Retry-After``)."""
DEFAULT_TIMEOUT = 30.0
"""Seconds a connect or a read may stall before the attempt counts as failed."""
USER_AGENT = f"audiotagger/{__version__} (+python-urllib)"

_TRANSIENT_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
_HASHES = ("sha256", "md5")


@dataclass(frozen=True)
class Expected:
    """What a downloaded file must match; every field is optional.

    Attributes
    ----------
    size : int or None
        Exact size in bytes.
    sha256, md5 : str or None
        Lower-case hex digests.
    check : callable or None
        ``check(path)`` raises :class:`~audiotagger.errors.ModelError` when the file's own structure
        is wrong (a light sniff: a checkpoint footer, zip directory, array names).
    """

    size: int | None = None
    sha256: str | None = None
    md5: str | None = None
    check: Callable[[Path], None] | None = None


class _RunningDigest:
    """Digests of the partial file kept up to date as bytes are appended (saves a re-read)."""

    def __init__(self, expected: Expected):
        self.names = tuple(n for n in _HASHES if getattr(expected, n))
        self.reset()

    def reset(self) -> None:
        self.hashers = {n: hashlib.new(n) for n in self.names}
        self.count = 0

    def update(self, block: bytes) -> None:
        for h in self.hashers.values():
            h.update(block)
        self.count += len(block)

    def catch_up(self, part: Path, start: int) -> None:
        """Make the digests cover the first ``start`` bytes of ``part`` (hashing them if needed)."""
        if self.count == start:
            return
        self.reset()
        with open(part, "rb") as fh:
            while self.count < start and (block := fh.read(min(1 << 20, start - self.count))):
                self.update(block)

    def result(self, part: Path) -> dict[str, str] | None:
        """The digests if they cover exactly the file as it is now, else None."""
        if not part.exists() or part.stat().st_size != self.count:
            return None
        return {n: h.hexdigest() for n, h in self.hashers.items()}


class _Transient(Exception):
    """A failure worth another attempt (the partial file is kept unless ``restart``)."""

    def __init__(self, reason: str, *, restart: bool = False, wait: float | None = None):
        super().__init__(reason)
        self.restart = restart
        self.wait = wait


def file_digests(path: str | os.PathLike, algorithms: tuple[str, ...] = _HASHES) -> dict[str, str]:
    """Return the hex digests of a file, read once in chunks.

    Parameters
    ----------
    path : path-like
        File to hash.
    algorithms : tuple of str
        :mod:`hashlib` names.

    Returns
    -------
    dict
        ``{algorithm: hexdigest}``.
    """
    hashers = {name: hashlib.new(name) for name in algorithms}
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            for h in hashers.values():
                h.update(block)
    return {name: h.hexdigest() for name, h in hashers.items()}


def check_file(path: str | os.PathLike, expected: Expected, *, checksum: bool = True,
               digests: dict[str, str] | None = None) -> None:
    """Check ``path`` against ``expected``; raise :class:`ModelError` naming the file and the problem.

    Parameters
    ----------
    path : path-like
        File to check.
    expected : Expected
        Size, digests and structure check.
    checksum : bool
        Compare the digests (computing them is a full read); False checks only size and structure.
    digests : dict, optional
        Digests already computed for the file's current contents (while downloading it), used
        instead of reading it again when they cover every expected algorithm.
    """
    path = Path(path)
    size = path.stat().st_size
    if expected.size is not None and size != expected.size:
        what = "truncated" if size < expected.size else "too long"
        raise ModelError(f"{path}: {what}: {size} bytes, expected {expected.size}")
    if checksum:
        wanted = {name: getattr(expected, name) for name in _HASHES if getattr(expected, name)}
        if wanted:
            got = digests if digests and set(wanted) <= set(digests) else file_digests(path, tuple(wanted))
            for name, value in wanted.items():
                if got[name] != value.lower():
                    raise ModelError(f"{path}: {name} mismatch: got {got[name]}, expected {value}")
    if expected.check is not None:
        expected.check(path)


def download(url: str, dest: str | os.PathLike, expected: Expected = Expected(), *,
             retries: int = DEFAULT_RETRIES, backoff: float = DEFAULT_BACKOFF,
             timeout: float = DEFAULT_TIMEOUT, progress: bool = True, desc: str | None = None,
             lock_timeout: float = -1, reuse: bool = True) -> Path:
    """Download ``url`` to ``dest`` atomically, resuming, retrying and verifying.

    Parameters
    ----------
    url : str
        ``http(s)://`` (or ``file://``) address.
    dest : path-like
        Final file. Its folder is created. If it already exists and passes ``expected`` (checked
        after taking the lock, so a download finished by another process counts) it is returned
        untouched; a file that fails the check is replaced.
    expected : Expected
        What the file must match. A mismatch after a complete transfer deletes the partial file and
        raises; nothing is left in the cache.
    retries : int
        Further attempts after transient failures (connection refused or cut, time-out, HTTP 408,
        429, 5xx) in a row; an attempt that added bytes to the partial file resets the count. Each
        attempt resumes the partial file where the server supports ``Range``.
    backoff : float
        Seconds before the first retry, doubled after each (capped at :data:`MAX_BACKOFF`).
    timeout : float
        Socket time-out in seconds for connecting and for each read.
    progress : bool
        Show a :mod:`tqdm` bar on stderr.
    desc : str, optional
        Progress-bar label (default: the file name).
    lock_timeout : float
        Seconds to wait for another process downloading the same file (-1: as long as it takes).
    reuse : bool
        Return an existing ``dest`` that passes ``expected`` without downloading (False: download
        anyway; ``dest`` is still replaced only by a file that passes).

    Returns
    -------
    pathlib.Path
        ``dest``.

    Raises
    ------
    DownloadError
        HTTP error status, retries exhausted, checksum/size/structure mismatch, or a lock time-out;
        one line naming the URL (or the file) and the reason.
    ModelError
        The destination folder cannot be created or written (the message names the folder).
    """
    import filelock

    dest = Path(dest)
    folder = dest.parent
    ensure_cache_folder(folder)
    lock = filelock.FileLock(lock_path(dest), timeout=lock_timeout)
    try:
        try:
            lock.acquire(timeout=0.05 if lock_timeout < 0 else min(0.05, lock_timeout))
        except filelock.Timeout:
            if progress:
                print(f"audiotagger: waiting for another process downloading {dest}", file=sys.stderr)
            lock.acquire()
    except filelock.Timeout:
        raise DownloadError(f"{dest}: another process is still downloading it "
                            f"(lock {lock.lock_file} held for over {lock_timeout:g} s)") from None
    except OSError as exc:
        raise cache_not_writable(folder, exc) from None
    try:
        if reuse and dest.is_file():
            try:
                check_file(dest, expected)
                return dest
            except ModelError:
                pass  # corrupt or stale: download again below, replace on success
        return _download_locked(url, dest, expected, retries=retries, backoff=backoff,
                                timeout=timeout, progress=progress, desc=desc or dest.name)
    finally:
        lock.release()


def partial_path(dest: str | os.PathLike) -> Path:
    """Return the partial-download file kept beside ``dest`` between attempts."""
    dest = Path(dest)
    return dest.with_name(f".{dest.name}.part")


def lock_path(dest: str | os.PathLike) -> Path:
    """The lock file that serialises writers of ``dest`` (downloads and imports alike)."""
    dest = Path(dest)
    return dest.with_name(f".{dest.name}.lock")


def cache_not_writable(folder: Path, exc: OSError) -> ModelError:
    """The one-line error for a model cache folder that cannot be written."""
    return ModelError(f"{folder}: model cache folder is not writable ({exc.strerror or exc}); "
                      "set AUDIOTAGGER_HOME or pass --model-dir")


def ensure_cache_folder(folder: Path) -> None:
    """Create ``folder`` and check it is writable (:func:`cache_not_writable` otherwise)."""
    try:
        ensure_writable_dir(folder)
    except OSError as exc:
        raise cache_not_writable(folder, exc) from None


def _download_locked(url: str, dest: Path, expected: Expected, *, retries: int, backoff: float,
                     timeout: float, progress: bool, desc: str) -> Path:
    part = partial_path(dest)
    meta = part.with_name(part.name + ".json")
    attempt = tries = 0
    fresh_retry_used = False
    running = _RunningDigest(expected)
    while True:
        before = part.stat().st_size if part.exists() else 0
        tries += 1
        resumed = before > 0
        try:
            _fetch(url, part, meta, expected, running, timeout=timeout, progress=progress, desc=desc)
        except _Transient as exc:
            if exc.restart:
                _discard(part, meta)
            elif part.exists() and part.stat().st_size > before:
                attempt = 0  # progress was made: a flaky line may take many cuts to get a big file
            if attempt >= retries:
                _discard_if_empty(part, meta)
                plural = "s" if tries > 1 else ""
                raise DownloadError(f"{url}: download failed after {tries} attempt{plural}: {exc}") from None
            wait = exc.wait if exc.wait is not None else backoff * 2 ** attempt
            time.sleep(min(max(wait, 0.0), MAX_BACKOFF))
            attempt += 1
            continue
        except BaseException:
            _discard_if_empty(part, meta)
            raise
        try:
            check_file(part, expected, digests=running.result(part))
        except ModelError as exc:
            _discard(part, meta)
            if resumed and not fresh_retry_used:
                # The kept partial file may have been the bad part: one more try from zero.
                fresh_retry_used = True
                continue
            why = str(exc).removeprefix(f"{part}: ")
            raise DownloadError(f"{url}: downloaded file rejected: {why}") from None
        with open(part, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(part, dest)
        with contextlib.suppress(FileNotFoundError):
            meta.unlink()
        return dest


def _discard(part: Path, meta: Path) -> None:
    for p in (part, meta):
        with contextlib.suppress(FileNotFoundError):
            p.unlink()


def _discard_if_empty(part: Path, meta: Path) -> None:
    if not part.exists() or part.stat().st_size == 0:
        _discard(part, meta)


def _fetch(url: str, part: Path, meta: Path, expected: Expected, running: _RunningDigest, *,
           timeout: float, progress: bool, desc: str) -> None:
    """One attempt: append to ``part`` from where it ends, or restart it; raise _Transient to retry."""
    from tqdm.auto import tqdm

    have = part.stat().st_size if part.exists() else 0
    if expected.size is not None and have > expected.size:
        have = 0
    headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
    if have:
        headers["Range"] = f"bytes={have}-"
        validator = _read_validator(meta)
        if validator:  # the server sends the whole file instead if it changed since
            headers["If-Range"] = validator
    request = urllib.request.Request(url, headers=headers)
    try:
        # A fresh opener reads the proxy variables now (urlopen's global one froze them at first use).
        response = urllib.request.build_opener().open(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        exc.close()
        if exc.code == 416 and have:
            if have == expected.size:
                return  # the partial file was already complete (interrupted before the rename)
            raise _Transient("server refused to resume (HTTP 416)", restart=True) from None
        if exc.code in _TRANSIENT_STATUS:
            raise _Transient(f"HTTP {exc.code} {exc.reason}", wait=_retry_after(exc.headers)) from None
        raise DownloadError(f"{url}: HTTP {exc.code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        reason = exc.reason
        if isinstance(reason, socket.gaierror):
            host = urllib.parse.urlsplit(url).hostname
            raise DownloadError(f"{url}: cannot resolve host {host} ({reason.strerror or reason}); "
                                "no network?") from None
        raise _Transient(f"cannot connect ({getattr(reason, 'strerror', None) or reason})") from None
    except (OSError, http.client.HTTPException) as exc:
        raise _Transient(f"connection failed ({exc})") from None

    with response:
        status = getattr(response, "status", 200) or 200
        length = response.headers.get("Content-Length")
        length = int(length) if length and length.isdigit() else None
        if have and status == 206:
            start, total = _content_range(response.headers.get("Content-Range"))
            if start != have:
                raise _Transient(f"server resumed at byte {start}, not {have}", restart=True)
            mode = "ab"
        else:
            start, total, mode = 0, length, "wb"  # 200: the whole file (no Range support, or changed)
        if total is not None and expected.size is not None and total != expected.size:
            raise _Transient(f"server offers {total} bytes, expected {expected.size}", restart=True)
        _write_validator(meta, response.headers)
        if mode == "wb":
            running.reset()
        else:
            running.catch_up(part, start)
        done = start
        bar = tqdm(total=total, initial=start, unit="B", unit_scale=True, unit_divisor=1024,
                   desc=desc, disable=not progress, file=sys.stderr, leave=False)
        try:
            with open(part, mode) as out:
                while True:
                    try:
                        block = response.read(CHUNK_SIZE)
                    except (OSError, http.client.HTTPException) as exc:
                        raise _Transient(f"connection cut after {done} bytes ({exc})") from None
                    if not block:
                        break
                    out.write(block)
                    running.update(block)
                    done += len(block)
                    bar.update(len(block))
        finally:
            bar.close()
    if total is not None and done < total:
        raise _Transient(f"connection cut after {done} of {total} bytes")


def _content_range(value: str | None) -> tuple[int | None, int | None]:
    """Parse ``bytes START-END/TOTAL`` into (START, TOTAL); None where absent or ``*``."""
    if not value or not value.startswith("bytes "):
        return None, None
    span, _, total = value[6:].partition("/")
    first = span.partition("-")[0]
    return (int(first) if first.isdigit() else None), (int(total) if total.isdigit() else None)


def _retry_after(headers) -> float | None:
    value = headers.get("Retry-After") if headers is not None else None
    if not value:
        return None
    if value.strip().isdigit():
        return float(value)
    with contextlib.suppress(TypeError, ValueError):
        return max(0.0, email.utils.parsedate_to_datetime(value).timestamp() - time.time())
    return None


def _write_validator(meta: Path, headers) -> None:
    """Remember the server's ETag (strong only) or Last-Modified for a later If-Range."""
    etag = headers.get("ETag")
    value = etag if etag and not etag.startswith("W/") else headers.get("Last-Modified")
    if value:
        meta.write_text(json.dumps({"validator": value}), encoding="utf-8")
    else:
        with contextlib.suppress(FileNotFoundError):
            meta.unlink()


def _read_validator(meta: Path) -> str | None:
    try:
        return json.loads(meta.read_text(encoding="utf-8"))["validator"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
