"""Model registry and cache: names → official URLs and checksums, cache folder, lookup, download.

Every model file audiotagger can fetch is one :class:`ModelInfo` in :data:`REGISTRY`. Files are cached
in one folder (:func:`cache_dir`): ``$AUDIOTAGGER_HOME``, else ``$XDG_CACHE_HOME/audiotagger``, else
``~/.cache/audiotagger``; ``model_dir=`` (``--model-dir``) overrides it per call. :func:`locate` is what
the loaders call: it returns a verified local file, downloading it on first use unless offline
(``offline=True`` / ``--offline`` / ``AUDIOTAGGER_OFFLINE=1``), and otherwise raises a
:class:`~audiotagger.errors.ModelError` whose one line names the file, the URL, the reason and the
two ways out (``audiotagger models import PATH`` or the command's own path flag).

Checksums. A file whose publisher gives a checksum is checked against it (``checksum_source`` says
who published it); where no checksum is published the table says so and the file is checked by size
(where recorded) and by its own structure (:mod:`audiotagger.filecheck`). A full checksum pass is
recorded in a small stamp file beside the model (``.<file>.verified``: size, mtime and digest), so
later loads only re-check size and structure unless the file changed.

``AUDIOTAGGER_MIRROR=URL`` fetches every file from ``URL/<file name>`` instead of its official
address (a local mirror for machines that can't reach the publishers); checksums still apply.
Nothing here imports TensorFlow.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import urllib.parse
import warnings
from dataclasses import dataclass
from pathlib import Path

from . import filecheck
from .download import Expected, cache_not_writable, check_file, download, file_digests, lock_path
from .errors import AudioTaggerWarning, DownloadError, ModelError, ParameterError
from .fileio import atomic_path, atomic_write_text

OFFLINE_ENV = "AUDIOTAGGER_OFFLINE"
"""Set to 1 (or true/yes/on) to never touch the network."""
MIRROR_ENV = "AUDIOTAGGER_MIRROR"
"""Base URL that replaces every official download address (``<base>/<file name>``)."""
PACKAGED_DIR = Path(__file__).resolve().parent / "data" / "models"
"""Where models shipped inside the package live."""


@dataclass(frozen=True)
class ModelInfo:
    """One model file: where it comes from and how to check it.

    Attributes
    ----------
    name : str
        Registry name (``vggish``, ``panns-cnn14``, ...).
    filename : str
        File name in the cache (or in :data:`PACKAGED_DIR` for packaged models).
    url : str
        Official download address ("" for packaged models).
    sha256, md5 : str or None
        Expected digests; None where none is known.
    size : int or None
        Exact size in bytes where recorded.
    flag : str
        The command-line flag that takes a local copy of this file instead.
    kind : {"download", "packaged"}
        Fetched into the cache, or shipped inside the package.
    format : str
        Key of the structure check in :data:`audiotagger.filecheck.CHECKS`.
    checksum_source : str
        Who published the checksum (or "none published").
    description : str
        One line for ``audiotagger models list``.
    """

    name: str
    filename: str
    url: str
    sha256: str | None = None
    md5: str | None = None
    size: int | None = None
    flag: str = ""
    kind: str = "download"
    format: str = ""
    checksum_source: str = "none published"
    description: str = ""

    @property
    def expected(self) -> Expected:
        """What a good copy of this file matches (:class:`audiotagger.download.Expected`)."""
        return Expected(size=self.size, sha256=self.sha256, md5=self.md5,
                        check=filecheck.CHECKS.get(self.format))

    @property
    def checksum(self) -> str:
        """``"sha256"``, ``"md5"`` or ``"none"``: the strongest digest recorded."""
        return "sha256" if self.sha256 else "md5" if self.md5 else "none"


_ZENODO = "https://zenodo.org/records/3987831/files/{}?download=1"
_ZENODO_MD5 = "Zenodo record 3987831 (publisher's md5)"

REGISTRY: dict[str, ModelInfo] = {
    m.name: m
    for m in (
        ModelInfo("vggish", "vggish_model.ckpt", "https://storage.googleapis.com/audioset/vggish_model.ckpt",
                  flag="--checkpoint", format="tf-v1-checkpoint",
                  checksum_source="none published by Google: checked by its V1 table structure",
                  description="VGGish checkpoint (TF1 V1 format, about 277 MB)"),
        ModelInfo("vggish-pca", "vggish_pca_params.npz",
                  "https://storage.googleapis.com/audioset/vggish_pca_params.npz",
                  sha256="4d878af3e306defbfb37095365aa7e5a6cecb86bad13e859e626151c4e6a8b9d",
                  md5="c80cae691033abe7c7ecd11ea39fc834", size=73_020, flag="--pca-params",
                  format="vggish-pca-npz",
                  checksum_source="none published by Google: digests of the official file, checked here "
                                  "(md5 agrees with cosmir/openmic-2018's record)",
                  description="VGGish PCA/whitening parameters of the AudioSet embeddings"),
        ModelInfo("panns-cnn14", "Cnn14_mAP=0.431.pth", _ZENODO.format("Cnn14_mAP%3D0.431.pth"),
                  md5="541141fa2ee191a88f24a3219fff024e", size=327_428_481, flag="--model",
                  format="torch-checkpoint", checksum_source=_ZENODO_MD5,
                  description="PANNs CNN14 AudioSet tagger (mAP 0.431)"),
        ModelInfo("panns-cnn10", "Cnn10_mAP=0.380.pth", _ZENODO.format("Cnn10_mAP%3D0.380.pth"),
                  md5="bfb1f1f9968938fa8ef4012b8471f5f6", size=25_237_595, flag="--model",
                  format="torch-checkpoint", checksum_source=_ZENODO_MD5,
                  description="PANNs CNN10 AudioSet tagger (mAP 0.380)"),
        ModelInfo("panns-cnn6", "Cnn6_mAP=0.343.pth", _ZENODO.format("Cnn6_mAP%3D0.343.pth"),
                  md5="e25e26b84585b14c7754c91e48efc9be", flag="--model",
                  format="torch-checkpoint", checksum_source=_ZENODO_MD5,
                  description="PANNs CNN6 AudioSet tagger (mAP 0.343)"),
        ModelInfo("yamnet", "yamnet.h5", "https://storage.googleapis.com/audioset/yamnet.h5",
                  flag="--checkpoint", format="yamnet-h5",
                  checksum_source="none published by Google: checked by its layers (names and shapes)",
                  description="YAMNet AudioSet tagger, 521 classes (official Keras weights, about 15 MB); "
                              "`models import yamnet.tflite` converts Google's TFLite model to it"),
        ModelInfo("classifier", "default.npz", "", flag="--model", kind="packaged", format="classifier-npz",
                  checksum_source="package data (installed with audiotagger)",
                  description="default multi-level attention classifier over VGGish embeddings"),
    )
}
"""Known model files by name."""

CONVERTERS: dict[str, tuple[str, str]] = {
    ".tflite": ("yamnet", "audiotagger.yamnet.tflite:convert_tflite"),
}
"""File suffix → (registry name, ``module:function(source, dest)``): files that ``models import`` converts
into that model's cache file instead of copying (Google's YAMNet TFLite model → ``yamnet.h5``)."""


# --- settings -------------------------------------------------------------------------------------

def cache_dir(model_dir: str | os.PathLike | None = None) -> Path:
    """Return the model cache folder.

    ``model_dir`` if given, else ``$AUDIOTAGGER_HOME``, else ``$XDG_CACHE_HOME/audiotagger``, else
    ``~/.cache/audiotagger``. The folder is not created here.
    """
    if model_dir:
        return Path(model_dir).expanduser()
    if os.environ.get("AUDIOTAGGER_HOME"):
        return Path(os.environ["AUDIOTAGGER_HOME"]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "audiotagger"


def cache_source(model_dir: str | os.PathLike | None = None) -> str:
    """Say which setting chose :func:`cache_dir` (``--model-dir``, an environment variable, default)."""
    if model_dir:
        return "--model-dir"
    if os.environ.get("AUDIOTAGGER_HOME"):
        return "$AUDIOTAGGER_HOME"
    if os.environ.get("XDG_CACHE_HOME"):
        return "$XDG_CACHE_HOME/audiotagger"
    return "default"


def is_offline(offline: bool | None = None) -> bool:
    """Return ``offline`` if given, else whether ``$AUDIOTAGGER_OFFLINE`` is 1/true/yes/on."""
    if offline is not None:
        return bool(offline)
    return os.environ.get(OFFLINE_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def get_info(name: str) -> ModelInfo:
    """Return the registry entry ``name``; :class:`ParameterError` listing the known names otherwise."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise ParameterError(f"{name}: unknown model (known: {', '.join(REGISTRY)})") from None


def check_mirror(mirror: str) -> str:
    """Return ``$AUDIOTAGGER_MIRROR`` if it is an ``http://``, ``https://`` or ``file://`` URL.

    Raises
    ------
    ParameterError
        Anything else (a bare host, a typo in the scheme, a space), naming the variable and the value.
    """
    try:
        parts = urllib.parse.urlsplit(mirror)
        ok = (parts.scheme in ("http", "https") and bool(parts.hostname)) or (
            parts.scheme == "file" and bool(parts.path))
        if parts.port is not None and not 0 < parts.port < 65536:
            ok = False
    except ValueError:       # a bad port or IPv6 literal
        ok = False
    if not ok or any(c.isspace() for c in mirror):
        raise ParameterError(f"{MIRROR_ENV}: not an http://, https:// or file:// URL: {mirror!r}")
    return mirror


def url_for(info: ModelInfo) -> str:
    """Return the address to fetch ``info`` from: ``$AUDIOTAGGER_MIRROR/<file>`` or the official URL."""
    mirror = os.environ.get(MIRROR_ENV, "").strip()
    if mirror:
        return f"{check_mirror(mirror).rstrip('/')}/{urllib.parse.quote(info.filename)}"
    return info.url


def cached_path(name: str, model_dir: str | os.PathLike | None = None) -> Path:
    """Return where model ``name`` lives (in the cache, or in the package), whether or not it exists."""
    info = get_info(name)
    if info.kind == "packaged":
        return PACKAGED_DIR / info.filename
    return cache_dir(model_dir) / info.filename


# --- verification stamps --------------------------------------------------------------------------

def _stamp_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.verified")


def _stamp_valid(info: ModelInfo, path: Path) -> bool:
    try:
        stamp = json.loads(_stamp_path(path).read_text(encoding="utf-8"))
        st = path.stat()
    except (OSError, ValueError):
        return False
    digests_ok = all(stamp.get(k) == getattr(info, k) for k in ("sha256", "md5") if getattr(info, k))
    return stamp.get("size") == st.st_size and stamp.get("mtime_ns") == st.st_mtime_ns and digests_ok


def _write_stamp(info: ModelInfo, path: Path) -> None:
    st = path.stat()
    record = {"name": info.name, "size": st.st_size, "mtime_ns": st.st_mtime_ns}
    record.update({k: getattr(info, k) for k in ("sha256", "md5") if getattr(info, k)})
    with contextlib.suppress(OSError):  # a read-only cache still works: it is re-hashed at each load
        atomic_write_text(_stamp_path(path), json.dumps(record) + "\n")


def _drop_stamp(path: Path) -> None:
    with contextlib.suppress(OSError):
        _stamp_path(path).unlink()


def verify_file(info: ModelInfo, path: str | os.PathLike, *, full: bool = True, stamp: bool = False) -> Path:
    """Check ``path`` as a copy of ``info``; raise :class:`ModelError` naming it and the problem.

    Parameters
    ----------
    info : ModelInfo
        What the file should be.
    path : path-like
        The file.
    full : bool
        Hash the whole file even if its stamp says it was verified (``models verify``); False checks
        size and structure, and hashes only a file without a valid stamp (the load-time check).

    stamp : bool
        ``path`` is a file of the model cache: record a successful full check in a stamp beside it
        (if the folder allows). Never for files elsewhere (a user's copy, a shared read-only folder),
        which are left exactly as they are.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: {info.name} file not found")
    hashed = full or not (stamp and _stamp_valid(info, path))
    try:
        check_file(path, info.expected, checksum=hashed)
        if hashed and (full or info.kind != "packaged") and info.format in filecheck.FULL_CHECKS:
            filecheck.FULL_CHECKS[info.format](path)   # every checksum of the format, every tensor
    except ModelError:
        if stamp:
            _drop_stamp(path)
        raise
    if hashed and stamp and info.kind != "packaged":
        _write_stamp(info, path)
    return path


# --- status ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ModelStatus:
    """State of one registry entry in a cache.

    Attributes
    ----------
    info : ModelInfo
        The entry.
    path : pathlib.Path
        Where the file is (or would be).
    state : {"verified", "unverified", "corrupt", "missing", "packaged"}
        ``verified``: a full checksum/structure check passed and the file has not changed since;
        ``unverified``: present, not yet fully checked; ``corrupt``: a check failed.
    size : int or None
        Bytes on disk (None when missing).
    problem : str or None
        Why it is corrupt or missing.
    """

    info: ModelInfo
    path: Path
    state: str
    size: int | None = None
    problem: str | None = None


def status(name: str, *, model_dir: str | os.PathLike | None = None, full: bool = False) -> ModelStatus:
    """Return the :class:`ModelStatus` of model ``name``.

    Parameters
    ----------
    name : str
        Registry name.
    model_dir : path-like, optional
        Cache folder override.
    full : bool
        Verify the file completely (hash it, writing or dropping its stamp). False only looks at the
        stamp, the size and (cheaply) the structure.
    """
    info = get_info(name)
    path = cached_path(name, model_dir)
    if not path.is_file():
        return ModelStatus(info, path, "missing", problem="not downloaded" if info.kind != "packaged"
                           else "missing from the installed package")
    size = path.stat().st_size
    try:
        if full:
            verify_file(info, path, full=True, stamp=True)
        else:
            check_file(path, info.expected, checksum=False)
    except ModelError as exc:
        return ModelStatus(info, path, "corrupt", size, str(exc))
    if info.kind == "packaged":
        return ModelStatus(info, path, "packaged", size)
    return ModelStatus(info, path, "verified" if full or _stamp_valid(info, path) else "unverified", size)


def list_models(*, model_dir: str | os.PathLike | None = None) -> list[ModelStatus]:
    """Return the status of every registry entry (no hashing)."""
    return [status(name, model_dir=model_dir) for name in REGISTRY]


def other_files(*, model_dir: str | os.PathLike | None = None) -> tuple[list[Path], list[Path]]:
    """Return what else the cache holds: derived files and partial downloads.

    Returns
    -------
    derived : list of pathlib.Path
        Files that are not registry files (converted weights the loaders cache, in sub-folders).
    partial : list of pathlib.Path
        Interrupted downloads (``.<file>.part``), resumed by the next download of that model.
    """
    root = cache_dir(model_dir)
    if not root.is_dir():
        return [], []
    known = {info.filename for info in REGISTRY.values()}
    files = sorted(p for p in root.rglob("*") if p.is_file())
    partial = [p for p in files if p.parent == root and p.name.startswith(".") and p.name.endswith(".part")]
    derived = [p for p in files if not any(part.startswith(".") for part in p.relative_to(root).parts)
               and not (p.parent == root and p.name in known)]
    return derived, partial


def clean(*, model_dir: str | os.PathLike | None = None, partial: bool = False,
          dry_run: bool = False) -> list[tuple[Path, int]]:
    """Remove what the cache holds besides the model files (``audiotagger models clean``).

    Parameters
    ----------
    model_dir : path-like, optional
        Cache folder override.
    partial : bool
        Also remove interrupted downloads (``.<file>.part``; kept by default so they resume).
    dry_run : bool
        Remove nothing; only report.

    Returns
    -------
    list of (pathlib.Path, int)
        Each file removed (or that would be) and its size: converted weights (rebuilt on the next
        load), temporary files of killed processes, and verification stamps of files no longer there.
        Model files and their valid stamps are never touched.
    """
    from .fileio import sweep_stale_parts

    root = cache_dir(model_dir)
    if not root.is_dir():
        return []
    derived, partials = other_files(model_dir=model_dir)
    doomed = list(derived) + (list(partials) if partial else [])
    doomed += [p for p in root.glob(".*.verified")
               if not (root / p.name.removeprefix(".").removesuffix(".verified")).is_file()]
    out: list[tuple[Path, int]] = []
    for p in doomed:
        try:
            size = p.stat().st_size
            if not dry_run:
                p.unlink()
        except OSError:
            continue
        out.append((p, size))
    if not dry_run:
        for folder in {root, *(p.parent for p, _ in out)}:
            out += [(p, 0) for p in sweep_stale_parts(folder)]
    return out


# --- lookup, download, import ---------------------------------------------------------------------

def _ways_out(info: ModelInfo, with_url: bool = True) -> str:
    flag = f", or pass {info.flag} PATH" if info.flag else ""
    what = url_for(info) if with_url else "it"
    return f"download {what} elsewhere and run `audiotagger models import PATH`{flag}"


def locate(name: str, path: str | os.PathLike | None = None, *,
           model_dir: str | os.PathLike | None = None, offline: bool | None = None,
           progress: bool = True) -> Path:
    """Return a local file for model ``name``, downloading it on first use unless offline.

    Parameters
    ----------
    name : str
        Registry name (``vggish``, ``vggish-pca``, ``panns-cnn14``, ...).
    path : path-like, optional
        An explicit file given by the user (``--checkpoint``); used as is if it exists (it may be a
        model of the user's own, so it is not checksummed here; its loader checks its contents).
    model_dir : path-like, optional
        Cache folder override (``--model-dir``).
    offline : bool, optional
        Never touch the network (default: ``$AUDIOTAGGER_OFFLINE``).
    progress : bool
        Show a progress bar while downloading.

    Returns
    -------
    pathlib.Path
        A file that passed the size and structure checks (and, once, the checksum).

    Raises
    ------
    ModelError
        The file is missing or corrupt and cannot be downloaded (offline, network, HTTP error,
        checksum mismatch); the one-line message names the file, the URL, the reason and the ways
        out. A corrupt cached file is named and, when downloads are allowed, replaced.
    """
    info = get_info(name)
    if path is not None:
        p = Path(path).expanduser()
        if not p.is_file():
            given = f" (given with {info.flag})" if info.flag else ""
            raise ModelError(f"{p}: {name} file not found{given}")
        return p
    cached = cached_path(name, model_dir)
    if info.kind == "packaged":
        if not cached.is_file():
            raise ModelError(f"{cached}: packaged {name} model missing; reinstall audiotagger")
        return verify_file(info, cached, full=False, stamp=True)
    problem = "not in the model cache"
    if cached.is_file():
        try:
            return verify_file(info, cached, full=False, stamp=True)
        except ModelError as exc:
            problem = f"cached copy is corrupt ({str(exc).removeprefix(f'{cached}: ')})"
    if is_offline(offline):
        raise ModelError(f"{cached}: {name} model unavailable: {problem} and offline mode is on "
                         f"(--offline or {OFFLINE_ENV}=1); {_ways_out(info)}")
    if problem.startswith("cached copy"):
        warnings.warn(f"{cached}: {problem}; downloading it again", AudioTaggerWarning, stacklevel=2)
    url = url_for(info)
    try:
        return fetch(name, model_dir=model_dir, progress=progress, offline=False)
    except DownloadError as exc:
        why = str(exc).removeprefix(f"{url}: ")
        raise DownloadError(f"{cached}: {name} model unavailable: downloading {url} failed: {why}; "
                            f"{_ways_out(info, with_url=False)}") from None


def fetch(name: str, *, model_dir: str | os.PathLike | None = None, force: bool = False,
          progress: bool = True, offline: bool | None = None, **download_options) -> Path:
    """Download model ``name`` into the cache (unless a good copy is there) and verify it.

    Parameters
    ----------
    name : str
        Registry name.
    model_dir : path-like, optional
        Cache folder override.
    force : bool
        Download again even if a verified copy is cached (it is replaced only on success).
    progress : bool
        Show a progress bar.
    offline : bool, optional
        Refuse (default: ``$AUDIOTAGGER_OFFLINE``).
    **download_options
        Passed to :func:`audiotagger.download.download` (``retries``, ``backoff``, ``timeout``, ...).

    Returns
    -------
    pathlib.Path
        The verified cached file.

    Raises
    ------
    DownloadError
        Offline, network or HTTP failure, or the file failed its checks (nothing is left in the cache).
    ModelError
        The cache folder is not writable.
    """
    info = get_info(name)
    if info.kind == "packaged":
        return locate(name)
    dest = cached_path(name, model_dir)
    url = url_for(info)
    if is_offline(offline):
        raise DownloadError(f"{url}: not downloaded: offline mode is on (--offline or {OFFLINE_ENV}=1)")
    if not force and dest.is_file() and _stamp_valid(info, dest):
        with contextlib.suppress(ModelError):
            return verify_file(info, dest, full=False, stamp=True)
    if progress:
        print(f"audiotagger: downloading {name} from {url} to {dest}", file=sys.stderr)
    if force:
        _drop_stamp(dest)
    path = download(url, dest, info.expected, progress=progress, desc=info.filename,
                    reuse=not force, **download_options)
    _write_stamp(info, path)
    return path


def identify(path: str | os.PathLike) -> ModelInfo:
    """Tell which registry entry a file is: by file name, else by size and digest.

    Raises
    ------
    ParameterError
        No entry matches (the message asks for ``--name``).
    """
    return _identify(Path(path))[0]


def _identify(path: Path) -> tuple[ModelInfo, dict[str, str] | None]:
    """:func:`identify`, also returning the file's digests when it had to compute them."""
    for info in REGISTRY.values():
        if info.kind != "packaged" and path.name == info.filename:
            return info, None
    size = path.stat().st_size
    candidates = [i for i in REGISTRY.values() if i.kind != "packaged" and (i.size in (None, size))
                  and (i.sha256 or i.md5)]
    if candidates:
        digests = file_digests(path)
        for info in candidates:
            if any(getattr(info, k) and digests[k] == getattr(info, k) for k in ("sha256", "md5")):
                return info, digests
    raise ParameterError(f"{path}: cannot tell which model this is; pass --name "
                         f"({', '.join(n for n, i in REGISTRY.items() if i.kind != 'packaged')})")


def import_file(source: str | os.PathLike, name: str | None = None, *,
                model_dir: str | os.PathLike | None = None) -> Path:
    """Verify a file obtained elsewhere and copy it into the cache (``audiotagger models import``).

    Parameters
    ----------
    source : path-like
        The file.
    name : str, optional
        Registry name; guessed from the file name or its checksum when omitted.
    model_dir : path-like, optional
        Cache folder override.

    Returns
    -------
    pathlib.Path
        The cached copy (written atomically, stamped as verified).

    Raises
    ------
    ModelError
        ``source`` is missing or fails the checks of ``name`` (nothing is copied), or the cache
        folder is not writable.
    ParameterError
        ``name`` unknown or not guessable.
    """
    import filelock

    source = Path(source).expanduser()
    if not source.is_file():
        raise ModelError(f"{source}: file not found")
    if source.suffix.lower() in CONVERTERS:
        return _import_converted(source, name, model_dir=model_dir)
    info, digests = (get_info(name), None) if name else _identify(source)
    if info.kind == "packaged":
        raise ParameterError(f"{info.name}: is shipped with the package, nothing to import")
    try:
        check_file(source, info.expected, digests=digests)   # identify's digests: no second read
        if info.format in filecheck.FULL_CHECKS:
            filecheck.FULL_CHECKS[info.format](source)
    except ModelError as exc:
        why = str(exc).removeprefix(f"{source}: ")
        raise ModelError(f"{source}: not a valid {info.name} file ({info.filename}): {why}") from None
    dest = cached_path(info.name, model_dir)
    folder = dest.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with filelock.FileLock(lock_path(dest)):
            if not (dest.exists() and os.path.samefile(source, dest)):
                with atomic_path(dest) as tmp:   # the temporary file already has the umask's mode
                    shutil.copyfile(source, tmp)
    except OSError as exc:
        raise cache_not_writable(folder, exc) from None
    _write_stamp(info, dest)
    return dest


def _import_converted(source: Path, name: str | None, *, model_dir: str | os.PathLike | None) -> Path:
    """``models import`` of a file in another format: convert it (once) into the model's cache file."""
    import importlib

    import filelock

    target, func = CONVERTERS[source.suffix.lower()]
    if name is not None and name != target:
        raise ParameterError(f"{source}: a {source.suffix} file can only be imported as {target}, not {name}")
    info = get_info(target)
    dest = cached_path(target, model_dir)
    module, attr = func.split(":")
    convert = getattr(importlib.import_module(module), attr)
    folder = dest.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with filelock.FileLock(lock_path(dest)):
            _drop_stamp(dest)
            convert(source, dest)                       # written atomically by the converter
    except OSError as exc:
        raise cache_not_writable(folder, exc) from None
    verify_file(info, dest, full=True, stamp=True)   # the cache file: stamped, as a download is
    return dest
