"""The inputs of an archive run: files, folders, globs and URLs given as arguments, and ``--input-list``.

An input list (one path or URL per line; blank lines and ``#`` comments ignored) is never held as one
Python list: the driver streams it once to validate it (a malformed line is a usage error before any
work) and once more at the end to account for inputs that did not finish; the workers' pipeline reads it
with Ray Data. Arguments are expanded on the driver (they are what a shell can hold).
"""

from __future__ import annotations

import glob as _glob
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath

from ..errors import ParameterError
from .params import LIST_CHUNK
from .storage import check_scheme, filesystem, is_remote, local_path, normalize, remote_error, scheme

_CONTROL = {chr(c) for c in range(32)} - {"\t"} | {"\x7f"}


def clean_line(raw: str) -> str | None:
    """One input-list line as an input spec; None for a blank line or a ``#`` comment."""
    text = raw.rstrip("\r\n").strip()
    return None if not text or text.startswith("#") else text


def check_line(text: str, where: str) -> None:
    """Raise ParameterError (naming ``where`` = ``FILE:LINE``) for a line that cannot be an input."""
    bad = next((c for c in text if c in _CONTROL), None)
    if bad is not None:
        raise ParameterError(f"{where}: malformed line (control character {bad!r}): {text[:60]!r}")
    try:
        check_scheme(text)
    except ParameterError as exc:
        raise ParameterError(f"{where}: {exc}") from None
    if "://" in text and not scheme(text):
        raise ParameterError(f"{where}: malformed URL {text[:60]!r}")


@dataclass(frozen=True)
class Item:
    """One input: ``given`` as typed, ``key`` (absolute path or URL) and the output sub-folder ``rel``."""

    given: str
    key: str
    rel: str = ""


def _rel(path: str, root: str) -> str:
    rel = str(PurePosixPath(path).parent.relative_to(root))
    return "" if rel == "." else rel


class InputSource:
    """Everything one run is asked to process.

    Parameters
    ----------
    specs : sequence of str
        Files, folders, glob patterns, URLs (a URL prefix or pattern is listed with fsspec).
    input_list : str, optional
        A local path or URL of a text file with one input per line.
    recursive : bool
        Descend into sub-folders (outputs mirror the tree).
    extensions : frozenset of str
        Suffixes taken from folders.
    cwd : str, optional
        Folder relative paths are resolved against (default: the current one).
    """

    def __init__(self, specs: Sequence[str], input_list: str | None, *, recursive: bool,
                 extensions: frozenset[str], cwd: str | None = None):
        self.specs = list(specs)
        self.input_list = input_list
        self.recursive = recursive
        self.extensions = extensions
        self.cwd = cwd or os.getcwd()
        self.items: list[Item] = []
        self.problems: list[tuple[str, str]] = []
        self.list_count = 0

    # --- checking and expanding ------------------------------------------------------------------------
    def prepare(self) -> int:
        """Expand the arguments and validate the input list; return the number of inputs.

        Raises
        ------
        ParameterError
            A malformed list line (``FILE:LINE: ...``), a missing or unreadable list, an unsupported URL,
            an object store that cannot be reached.
        """
        for spec in self.specs:
            check_scheme(spec)
        self._expand()
        if self.input_list is not None:
            count = 0
            for chunk in self._list_chunks(check=True):
                count += len(chunk)
            self.list_count = count
        return len(self.items) + self.list_count

    def _expand(self) -> None:
        from ..cli.common import expand_inputs

        local = [s for s in self.specs if not is_remote(s)]
        local = [local_path(s, self.cwd) if scheme(s) == "file" else s for s in local]
        found, problems = expand_inputs(local, recursive=self.recursive, extensions=self.extensions)
        by_given = {}
        for f in found:
            given = str(f.path)
            by_given[given] = Item(given, normalize(given, self.cwd), str(f.rel_dir) if str(f.rel_dir) != "."
                                   else "")
        self.items = list(by_given.values())
        self.problems = [tuple(p.split(": ", 1)) if ": " in p else (p, "no input") for p in problems]
        for spec in (s for s in self.specs if is_remote(s)):
            self.items.extend(self._expand_remote(spec))

    def _expand_remote(self, spec: str) -> list[Item]:
        fs, path = filesystem(spec)
        proto = spec.split("://", 1)[0]
        try:
            if _glob.has_magic(path):
                found = sorted(fs.glob(path))
                if not found:
                    self.problems.append((spec, "pattern matched no object"))
                return [Item(f"{proto}://{p}", f"{proto}://{p}") for p in found]
            if fs.isdir(path):
                found = sorted(p for p in fs.find(path, maxdepth=None if self.recursive else 1)
                               if PurePosixPath(p).suffix.lower() in self.extensions)
                if not found:
                    self.problems.append((spec, "no media files under this prefix"
                                          + ("" if self.recursive else " (use --recursive)")))
                root = path.rstrip("/")
                return [Item(f"{proto}://{p}", f"{proto}://{p}", _rel(p, root)) for p in found]
        except Exception as exc:  # noqa: BLE001  (transport errors of any fsspec backend)
            raise ParameterError(remote_error(spec, exc)) from None
        return [Item(spec, spec)]

    def _open_list(self):
        spec = self.input_list
        try:
            if is_remote(spec):
                fs, path = filesystem(spec)
                return fs.open(path, "rb")
            return open(local_path(spec, self.cwd), "rb")  # noqa: SIM115  (closed by the caller)
        except FileNotFoundError:
            raise ParameterError(f"--input-list {spec}: no such file") from None
        except IsADirectoryError:
            raise ParameterError(f"--input-list {spec}: is a folder, not a text file") from None
        except ParameterError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise ParameterError(f"--input-list {remote_error(spec, exc)}") from None

    def _list_chunks(self, check: bool = False) -> Iterator[list[Item]]:
        chunk: list[Item] = []
        with self._open_list() as fh:
            for number, raw in enumerate(fh, 1):
                where = f"--input-list {self.input_list}:{number}"
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError:
                    raise ParameterError(f"{where}: malformed line (not UTF-8)") from None
                line = clean_line(text)
                if line is None:
                    continue
                if check:
                    check_line(line, where)
                chunk.append(Item(line, normalize(line, self.cwd)))
                if len(chunk) >= LIST_CHUNK:
                    yield chunk
                    chunk = []
        if chunk:
            yield chunk

    # --- streaming -------------------------------------------------------------------------------------
    def chunks(self) -> Iterator[list[Item]]:
        """Every input, in chunks of at most :data:`~.params.LIST_CHUNK` (arguments first, then the list)."""
        for start in range(0, len(self.items), LIST_CHUNK):
            yield self.items[start:start + LIST_CHUNK]
        if self.input_list is not None:
            yield from self._list_chunks()

    def list_dataset(self):
        """A Ray dataset of the input list's raw lines (column ``text``), read on the cluster."""
        import ray.data

        spec = self.input_list
        if is_remote(spec):
            from pyarrow.fs import FSSpecHandler, PyFileSystem

            fs, path = filesystem(spec)
            from .driver import worker_env

            return ray.data.read_text(path, filesystem=PyFileSystem(FSSpecHandler(fs)), num_cpus=0,
                                      runtime_env=worker_env())
        return ray.data.read_text(f"local://{local_path(spec, self.cwd)}", num_cpus=0)
