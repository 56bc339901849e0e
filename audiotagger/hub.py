"""Model registry and cache: names → official URLs, local cache folder, lookup.

(First cut: resolution of explicit paths and cached files. Downloads, verification and the
``models`` command are added by the model-management work.)
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .errors import ModelError


@dataclass(frozen=True)
class ModelInfo:
    """One downloadable model file."""

    name: str
    filename: str
    url: str
    sha256: str | None = None
    size: int | None = None
    flag: str = ""
    """The command-line flag that takes a local copy of this file."""


REGISTRY: dict[str, ModelInfo] = {
    m.name: m
    for m in (
        ModelInfo("vggish", "vggish_model.ckpt",
                  "https://storage.googleapis.com/audioset/vggish_model.ckpt", flag="--checkpoint"),
        ModelInfo("vggish-pca", "vggish_pca_params.npz",
                  "https://storage.googleapis.com/audioset/vggish_pca_params.npz",
                  sha256="4d878af3e306defbfb37095365aa7e5a6cecb86bad13e859e626151c4e6a8b9d",
                  flag="--pca-params"),
    )
}


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


def locate(name: str, path: str | os.PathLike | None = None, *,
           model_dir: str | os.PathLike | None = None, offline: bool | None = None) -> Path:
    """Return a local file for model ``name``.

    Parameters
    ----------
    name : str
        Registry name (``vggish``, ``vggish-pca``, ...).
    path : path-like, optional
        An explicit file given by the user (``--checkpoint``); used as is if it exists.
    model_dir : path-like, optional
        Cache folder override (``--model-dir``).
    offline : bool, optional
        Never touch the network.

    Raises
    ------
    ModelError
        The file is missing; the message names the file, the official URL and the ways out.
    """
    info = REGISTRY[name]
    if path is not None:
        p = Path(path).expanduser()
        if not p.is_file():
            raise ModelError(f"{p}: {name} file not found")
        return p
    cached = cache_dir(model_dir) / info.filename
    if cached.is_file():
        return cached
    raise ModelError(
        f"{cached}: {name} model not found; download it from {info.url} and pass it with "
        f"{info.flag} or place it at that path")
