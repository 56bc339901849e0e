"""Atomic file output: a reader sees the old file or the new one, never half of one."""

from __future__ import annotations

import contextlib
import os
import tempfile
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
        suffix as ``path`` (libraries that infer a format from the suffix keep working).
        It is removed if the block raises.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".part{''.join(path.suffixes)}",
                               dir=path.parent)
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
