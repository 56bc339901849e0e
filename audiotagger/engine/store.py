"""The ONNX graph cache: built once per weight content, checked on every load.

Layout under the model cache (:func:`audiotagger.hub.cache_dir`)::

    onnx/<kind>-<digest>-v<BUILD_VERSION>/   manifest.json, <part>.onnx ..., weights.bin
    onnx/index/<kind>-<identity>.json        {"digest": ...}: source identity → content digest

``digest`` is the SHA-256 of the source weights' *content* (computed once, while converting), so two
copies of one checkpoint share one graph and a changed file gets a new one. ``identity`` is the cheap
key of a source file (absolute path, size, modification time) that finds the digest without reading
277 MB at every start. A cached folder is used only if its manifest names this build version and
digest, every ``<part>.onnx`` has the SHA-256 the manifest records (the graphs are a few kB: weights
live in ``weights.bin``), and every data file (``weights.bin``, ``<part>.onnx.data``) has the recorded
size; otherwise it is rebuilt. A folder
is written under a temporary name and renamed into place, under a file lock.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path

from ..errors import AudioTaggerWarning

BUILD_VERSION = 1
"""Bumped whenever a graph builder changes its output (old folders are then ignored)."""
SUBDIR = "onnx"
WEIGHTS = "weights.bin"
MANIFEST = "manifest.json"


def file_identity(*paths: str | os.PathLike, extra: str = "") -> str:
    """Cheap identity of source files: SHA-256 of their absolute paths, sizes and mtimes (20 hex digits)."""
    h = hashlib.sha256(f"{BUILD_VERSION}\0{extra}".encode())
    for p in paths:
        p = Path(p).expanduser().resolve()
        st = p.stat()
        h.update(f"{p}\0{st.st_size}\0{st.st_mtime_ns}\0".encode())
    return h.hexdigest()[:20]


def content_digest(*paths: str | os.PathLike, extra: str = "", block: int = 1 << 22) -> str:
    """SHA-256 of the files' bytes (and ``extra``), 24 hex digits."""
    h = hashlib.sha256(extra.encode())
    for p in paths:
        with open(p, "rb") as f:
            while chunk := f.read(block):
                h.update(chunk)
    return h.hexdigest()[:24]


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def check_folder(folder: Path, digest: str, parts: tuple[str, ...]) -> str | None:
    """Return None if ``folder`` holds a complete, unaltered build for ``digest``, else the problem."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        return "no readable manifest"
    if manifest.get("version") != BUILD_VERSION or manifest.get("digest") != digest:
        return "built for another version or content"
    for part in parts:
        path = folder / f"{part}.onnx"
        if not path.is_file() or _sha(path) != manifest.get("graphs", {}).get(part):
            return f"{path.name} is missing or altered"
    for name, size in manifest.get("data", {}).items():
        path = folder / name
        if not path.is_file() or path.stat().st_size != size:
            return f"{name} is missing or of the wrong size"
    return None


def cached_graphs(kind: str, identity: str, parts: tuple[str, ...], digest: Callable[[], str],
                  build: Callable[[Path], dict | None], model_dir: str | os.PathLike | None = None
                  ) -> tuple[Path, dict]:
    """Return the folder of checked graphs ``<part>.onnx`` for a model, building them when needed.

    Parameters
    ----------
    kind : str
        Model kind and options that change the graph (``vggish``, ``classifier``, ``panns-cnn14``,
        with ``-int8`` for quantised graphs).
    identity : str
        Cheap identity of the source (:func:`file_identity`).
    parts : tuple of str
        Graph names the folder must hold.
    digest : callable
        Returns the content digest of the source (called only when the identity is new).
    build : callable
        ``build(folder)`` writes ``<part>.onnx`` files (and ``weights.bin``) into an empty folder and
        returns a JSON-serialisable dict of facts about the model (kept in the manifest).
    model_dir : path-like, optional
        Model cache folder.

    Returns
    -------
    folder : pathlib.Path
        The folder. When the cache is not writable the graphs are built in a temporary folder
        (removed at exit), with a warning.
    meta : dict
        What ``build`` returned.
    """
    from .. import hub

    root = hub.cache_dir(model_dir) / SUBDIR
    index = root / "index" / f"{kind}-{identity}.json"
    known = None
    try:
        known = json.loads(index.read_text()).get("digest")
    except (OSError, ValueError):
        pass
    if known is not None:
        folder = root / f"{kind}-{known}-v{BUILD_VERSION}"
        if check_folder(folder, known, parts) is None:
            return folder, _meta(folder)
    try:
        return _build_locked(root, kind, identity, index, parts, digest, build)
    except OSError as exc:
        warnings.warn(f"{root}: cannot cache ONNX graphs ({exc}); building them for this run only",
                      AudioTaggerWarning, stacklevel=3)
        tmp = Path(tempfile.mkdtemp(prefix="audiotagger-onnx-"))
        import atexit

        atexit.register(shutil.rmtree, tmp, True)
        _build_into(tmp, "", parts, build)
        return tmp, _meta(tmp)


def _build_locked(root: Path, kind: str, identity: str, index: Path, parts, digest, build) -> Path:
    from filelock import FileLock

    from ..fileio import atomic_write_text

    (root / "index").mkdir(parents=True, exist_ok=True)
    with FileLock(str(root / f".{kind}.lock")):
        value = digest()
        folder = root / f"{kind}-{value}-v{BUILD_VERSION}"
        problem = check_folder(folder, value, parts)
        if problem is not None:
            if folder.exists():
                if problem != "no readable manifest":
                    warnings.warn(f"{folder}: cached ONNX graphs rejected ({problem}); rebuilding",
                                  AudioTaggerWarning, stacklevel=4)
                shutil.rmtree(folder, ignore_errors=True)
            tmp = Path(tempfile.mkdtemp(prefix=f".{kind}-", dir=root))
            try:
                _build_into(tmp, value, parts, build)
                os.replace(tmp, folder)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
        atomic_write_text(index, json.dumps({"digest": value, "kind": kind}))
    return folder, _meta(folder)


def _meta(folder: Path) -> dict:
    return json.loads((folder / MANIFEST).read_text()).get("meta") or {}


def _build_into(folder: Path, digest: str, parts, build) -> None:
    meta = build(folder)
    graphs = {f"{part}.onnx" for part in parts}
    manifest = {"version": BUILD_VERSION, "digest": digest,
                "graphs": {part: _sha(folder / f"{part}.onnx") for part in parts},
                "data": {p.name: p.stat().st_size for p in sorted(folder.iterdir())
                         if p.is_file() and p.name not in graphs and p.name != MANIFEST},
                "meta": meta or {}}
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=1))
