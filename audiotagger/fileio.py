"""Atomic file output: a reader sees the old file or the new one, never half of one."""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np


def ensure_writable_dir(folder: str | os.PathLike) -> Path:
    """Create ``folder`` (and parents) and prove a file can be written in it.

    The probe is a uniquely named temporary file, so concurrent callers (threads or processes)
    never race on it. Raises ``OSError`` as the file system reports it; callers turn that into
    their own one-line error naming the folder.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryFile(dir=folder, prefix=".write-test-"):
        pass
    return folder


PART_MARK = ".part"
"""Marks our temporary files: ``.<name>.<pid>-<8 random>.part<suffix>`` beside the destination."""
_RANDOM_LEN = 8
"""Length of the random part :func:`tempfile.mkstemp` puts between prefix and suffix."""
_PART_RE = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)-[a-z0-9_]{8}\.part(?:\.[^/]*)?$")
_LEGACY_PART_RE = re.compile(r"^\.(?P<name>.+)\.[a-z0-9_]{8}\.part(?:\.[^/]*)?$")
LEGACY_PART_AGE = 3600.0
"""Seconds after which a temporary file of the older naming (no process id) counts as abandoned."""


def name_max(folder: str | os.PathLike) -> int:
    """Longest file name (bytes) the file system of ``folder`` allows (255 where it cannot be asked)."""
    try:
        return int(os.pathconf(folder, "PC_NAME_MAX"))
    except (OSError, ValueError, AttributeError):
        return 255


def _part_affixes(path: Path) -> tuple[str, str]:
    """Prefix and suffix of ``path``'s temporary name, together within ``NAME_MAX``.

    The suffix keeps the destination's suffixes (libraries that infer a format from it keep working);
    when the whole name would be too long, only the last suffix is kept and the name is shortened.
    """
    limit = name_max(path.parent if path.parent.exists() else ".")
    pid = f".{os.getpid()}-"
    suffix = f"{PART_MARK}{''.join(path.suffixes)}"
    if len(suffix.encode()) > 32:
        suffix = f"{PART_MARK}{path.suffix}"
    room = limit - len(f".{pid}".encode()) - _RANDOM_LEN - len(suffix.encode())
    name = path.name.encode()
    if len(name) > room:
        name = name[:max(room, 1)]
        while name:
            try:
                name.decode()
                break
            except UnicodeDecodeError:   # do not cut a multi-byte character in half
                name = name[:-1]
    return f".{name.decode()}{pid}", suffix


def sweep_stale_parts(folder: str | os.PathLike) -> list[Path]:
    """Remove temporary files of :func:`atomic_path` that a killed process left in ``folder``.

    A temporary name carries its writer's process id; the file is removed only when that process no
    longer exists (so a concurrent writer's file is never touched). Files of the older naming without
    a process id are removed when untouched for :data:`LEGACY_PART_AGE` seconds. Partial downloads
    (``.<file>.part``, resumed by the next download) never match.

    Returns
    -------
    list of pathlib.Path
        The files removed.
    """
    removed: list[Path] = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    now = time.time()
    for entry in entries:
        if not entry.name.startswith(".") or PART_MARK not in entry.name:
            continue
        match = _PART_RE.match(entry.name)
        try:
            if match:
                if _pid_alive(int(match["pid"])):
                    continue
            elif not _LEGACY_PART_RE.match(entry.name) or now - entry.stat().st_mtime < LEGACY_PART_AGE:
                continue
            if not entry.is_file(follow_symlinks=False):
                continue
            os.unlink(entry.path)
            removed.append(Path(entry.path))
        except OSError:
            continue
    return removed


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, overwrite: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` that is renamed onto ``path`` on success.

    Parameters
    ----------
    path : path-like
        Final destination. Its folder is created if needed.
    overwrite : bool
        If False and ``path`` exists when the write completes, raise ``FileExistsError`` and
        leave the existing file untouched.

    Yields
    ------
    pathlib.Path
        A path in the same folder (same file system, so the rename is atomic) with the same
        suffix as ``path`` (libraries that infer a format from the suffix keep working), named
        ``.<name>.<pid>-<random>.part<suffix>`` within the file system's ``NAME_MAX`` (a legal
        255-byte destination name works). It is removed if the block raises; one left by a killed
        process is removed by :func:`sweep_stale_parts`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    prefix, suffix = _part_affixes(path)
    fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    # mkstemp makes the file private (0600); give the output the mode a plain open() would.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp_path, 0o666 & ~umask)
    try:
        yield tmp_path
        if not overwrite and path.exists():
            raise FileExistsError(f"{path}: exists and overwriting is not enabled")
        os.replace(tmp_path, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", *, encoding: str | None = "utf-8",
                newline: str | None = None, overwrite: bool = True) -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path`` for writing and rename it onto ``path`` on success.

    Parameters
    ----------
    path : path-like
        Final destination.
    mode : {"w", "wb"}
        Text or binary mode.
    encoding, newline : str or None
        As for :func:`open` (text mode only).
    overwrite : bool
        See :func:`atomic_path`.

    Yields
    ------
    file object
        Flushed and fsync'ed before the rename.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open supports 'w' and 'wb', not {mode!r}")
    with atomic_path(path, overwrite=overwrite) as tmp:
        kwargs = {} if "b" in mode else {"encoding": encoding, "newline": newline}
        with open(tmp, mode, **kwargs) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())


def atomic_write_bytes(path: str | os.PathLike, data: bytes, *, overwrite: bool = True) -> Path:
    """Write ``data`` to ``path`` atomically and return the path."""
    with atomic_open(path, "wb", overwrite=overwrite) as fh:
        fh.write(data)
    return Path(path)


def atomic_write_text(path: str | os.PathLike, text: str, *, overwrite: bool = True) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically and return the path."""
    with atomic_open(path, "w", overwrite=overwrite) as fh:
        fh.write(text)
    return Path(path)


def atomic_save_npz(path: str | os.PathLike, *, compressed: bool = False, overwrite: bool = True,
                    **arrays: Any) -> Path:
    """Save named arrays to an ``.npz`` file atomically (never pickled object arrays).

    Parameters
    ----------
    path : path-like
        Destination; ``.npz`` is *not* appended (give the full name).
    compressed : bool
        Use ``np.savez_compressed``.
    overwrite : bool
        See :func:`atomic_path`.
    **arrays
        Arrays (or values convertible to non-object arrays) to store.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    converted = {k: np.asarray(v) for k, v in arrays.items()}
    for key, value in converted.items():
        if value.dtype == object:
            raise TypeError(f"{path}: array {key!r} has dtype object and would need pickle")
    with atomic_open(path, "wb", overwrite=overwrite) as fh:   # straight to disk: no in-memory copy
        (np.savez_compressed if compressed else np.savez)(fh, **converted)
    return Path(path)


class AtomicGroup:
    """Several outputs that appear together or not at all (the outputs of one input).

    :meth:`stage` gives, for each destination, a temporary path beside it to write to; on success
    :meth:`commit` renames them all onto their destinations, and on failure (or without a commit)
    :meth:`discard` removes them, so an input that fails halfway (a full disk, a bad frame, Ctrl-C)
    leaves none of its outputs and every previous file as it was. Use it as a context manager.
    """

    def __init__(self) -> None:
        self._staged: list[tuple[Path, Path]] = []

    def stage(self, path: str | os.PathLike) -> Path:
        """Return an unused temporary name beside ``path`` (within ``NAME_MAX``) to write it to.

        Nothing is created: a destination whose writer writes nothing (skips) is not committed.
        """
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        prefix, suffix = _part_affixes(path)
        fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=path.parent)
        os.close(fd)
        os.unlink(tmp)   # the name carries our pid and a random part: nobody else takes it
        self._staged.append((Path(tmp), path))
        return Path(tmp)

    def commit(self) -> list[Path]:
        """Rename every staged file onto its destination; return the destinations."""
        umask = os.umask(0)
        os.umask(umask)
        done = []
        for tmp, path in self._staged:
            if tmp.exists():
                os.chmod(tmp, 0o666 & ~umask)
                os.replace(tmp, path)
                done.append(path)
        self._staged.clear()
        return done

    def discard(self) -> None:
        """Remove every staged file."""
        for tmp, _ in self._staged:
            with contextlib.suppress(OSError):
                tmp.unlink()
        self._staged.clear()

    def __enter__(self) -> AtomicGroup:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.commit()
        self.discard()
