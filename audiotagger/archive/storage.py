"""Local paths and fsspec URLs (``s3://``, ``gs://``, ``file://``) for inputs and outputs.

``file://`` URLs become local paths. Object stores are reached through :mod:`fsspec` (``s3fs``, ``gcsfs``),
configured the usual way (``AWS_*`` environment variables, ``AWS_ENDPOINT_URL`` for an S3-compatible
server). Outputs to an object store are written locally first and uploaded with one PUT each, which an
object store makes visible all at once, so readers never see half a file.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from ..errors import AudioError, ParameterError
from .params import URL_SCHEMES


def scheme(spec: str) -> str:
    """The URL scheme of ``spec`` (``""`` for a plain path)."""
    head, sep, _ = str(spec).partition("://")
    return head.lower() if sep and head.isidentifier() else ""


def is_remote(spec: str) -> bool:
    """True for a URL that is not ``file://``."""
    return scheme(spec) not in ("", "file")


def local_path(spec: str, cwd: str | None = None) -> str:
    """A plain path or ``file://`` URL as an absolute local path (``cwd`` for relative paths)."""
    text = str(spec)
    if scheme(text) == "file":
        text = text[len("file://"):]
    text = os.path.expanduser(text)
    return os.path.normpath(os.path.join(cwd or os.getcwd(), text))


def normalize(spec: str, cwd: str | None = None) -> str:
    """The key of an input in the manifest: an absolute local path, or the URL itself."""
    return spec if is_remote(spec) else local_path(spec, cwd)


def check_scheme(spec: str) -> None:
    """Raise ParameterError for a URL scheme fsspec is not meant to handle here."""
    s = scheme(spec)
    if s and s != "file" and s not in URL_SCHEMES:
        raise ParameterError(f"{spec}: unsupported URL scheme {s}:// (use a path, file://, "
                             f"{', '.join(x + '://' for x in URL_SCHEMES[:3])} ...)")


def filesystem(url: str):
    """``(fsspec filesystem, path inside it)`` of a remote URL."""
    import fsspec

    try:
        fs, path = fsspec.core.url_to_fs(url)
    except (ImportError, ValueError) as exc:
        raise ParameterError(f"{url}: {exc}") from None
    return fs, path


def remote_error(url: str, exc: BaseException) -> str:
    """One line describing why an object-store operation failed."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if isinstance(exc, FileNotFoundError):
        return f"{url}: not found"
    if isinstance(exc, PermissionError):
        return f"{url}: permission denied ({text})"
    return f"{url}: object store not reachable or refused the request ({type(exc).__name__}: {text})"


class OutputLocation:
    """``-o``: a local folder or an object-store prefix; outputs are named ``<rel>/<stem>.<ext>`` in it."""

    def __init__(self, spec: str, cwd: str | None = None):
        self.spec = str(spec)
        self.remote = is_remote(self.spec)
        self.root = self.spec.rstrip("/") if self.remote else local_path(self.spec, cwd)

    def target(self, rel: str, name: str) -> str:
        """Final path or URL of the output ``name`` in the sub-folder ``rel``."""
        if self.remote:
            return "/".join(p for p in (self.root, str(PurePosixPath(rel or ".")).strip("./"), name) if p)
        return str(Path(self.root) / (rel or "") / name)

    def exists(self, target: str) -> bool:
        """True if the output exists."""
        if not self.remote:
            return os.path.exists(target)
        fs, path = filesystem(target)
        return bool(fs.exists(path))

    def check(self) -> None:
        """Prove the location is usable before any work (missing bucket, unreachable store, unwritable).

        Raises
        ------
        ParameterError
            Naming ``-o`` and the problem.
        """
        if not self.remote:
            from ..fileio import ensure_writable_dir

            try:
                ensure_writable_dir(self.root)
            except OSError as exc:
                raise ParameterError(f"-o {self.spec}: not a writable folder "
                                     f"({exc.strerror or exc})") from None
            return
        fs, path = filesystem(self.root)
        bucket = path.split("/", 1)[0]
        try:
            if not fs.exists(bucket):
                raise ParameterError(f"-o {self.spec}: bucket {bucket!r} does not exist")
        except ParameterError:
            raise
        except Exception as exc:  # noqa: BLE001  (botocore/aiohttp errors: one line, usage error)
            raise ParameterError(f"-o {remote_error(self.spec, exc)}") from None

    @contextlib.contextmanager
    def staged(self, targets: dict[str, str]) -> Iterator[dict[str, Path]]:
        """Yield local paths to write; on success, remote targets are uploaded (one PUT each).

        Local targets are yielded as they are (the writers are atomic), after removing the temporary files
        that a killed writer (say a worker that Ray replaced) left beside them; remote ones as files in a
        temporary folder, uploaded when the block ends without error and removed in any case.
        """
        if not self.remote:
            from ..fileio import sweep_stale_parts

            paths = {k: Path(v) for k, v in targets.items()}
            for folder in {p.parent for p in paths.values()}:
                sweep_stale_parts(folder)
            yield paths
            return
        tmp = Path(tempfile.mkdtemp(prefix="audiotagger-out-"))
        try:
            local = {k: tmp / f"{i}-{PurePosixPath(v).name}" for i, (k, v) in enumerate(targets.items())}
            yield local
            for key, path in local.items():
                if path.exists():
                    fs, remote = filesystem(targets[key])
                    fs.put_file(str(path), remote)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def write_bytes(self, target: str, data: bytes) -> None:
        """Write ``data`` to ``target`` atomically (local: temp + rename; remote: one PUT)."""
        if not self.remote:
            from ..fileio import atomic_write_bytes

            atomic_write_bytes(target, data)
            return
        fs, path = filesystem(target)
        fs.pipe_file(path, data)

    def read_bytes(self, target: str) -> bytes | None:
        """The content of ``target``, or None when it does not exist."""
        if not self.remote:
            return Path(target).read_bytes() if os.path.exists(target) else None
        fs, path = filesystem(target)
        try:
            return fs.cat_file(path)
        except FileNotFoundError:
            return None


@contextlib.contextmanager
def fetched(spec: str, cwd: str | None = None) -> Iterator[str]:
    """Yield a local path of the input ``spec``: itself when local, else a downloaded temporary copy.

    Raises
    ------
    AudioError
        The object is missing or cannot be read (one line naming the URL).
    """
    if not is_remote(spec):
        yield local_path(spec, cwd)
        return
    tmp = Path(tempfile.mkdtemp(prefix="audiotagger-in-"))
    try:
        name = PurePosixPath(spec.split("?", 1)[0]).name or "input"
        local = tmp / name
        try:
            fs, path = filesystem(spec)
            fs.get_file(path, str(local))
        except Exception as exc:  # noqa: BLE001  (any transport error fails this input only)
            raise AudioError(remote_error(spec, exc)) from None
        yield str(local)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
