"""The folder index (``<out>/index.html``): every page of a run with its duration, top classes and links.

It is built from the summary block each page carries (:func:`.page.read_index_entry`), so it lists every
page under the folder, including those of earlier (resumed) runs. Sortable by any column, with a class
filter ("every file where Dog is shown").
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import quote

from ...fileio import atomic_write_text
from .page import asset, escape, fill, read_index_entry, script_json
from .params import INDEX_NAME


def collect_entries(folder: str | os.PathLike,
                    pages: Iterable[str | os.PathLike] | None = None) -> list[dict]:
    """Read the summary block of every page under ``folder`` (or of ``pages``), sorted by path.

    Each entry gets ``href`` (the page, relative to ``folder``) and ``dir`` (its sub-folder) added, and
    its output links made relative to ``folder``.
    """
    folder = Path(folder)
    found = sorted(Path(p) for p in pages) if pages is not None else sorted(
        p for p in folder.rglob("*.html") if p.name != INDEX_NAME or p.parent != folder)
    entries = []
    for page in found:
        entry = read_index_entry(page)
        if entry is None:
            continue
        rel = page.resolve().relative_to(folder.resolve()) if page.resolve().is_relative_to(
            folder.resolve()) else Path(os.path.relpath(page.resolve(), folder.resolve()))
        prefix = rel.parent.as_posix()
        base = "" if prefix == "." else prefix + "/"
        entry["href"] = quote(rel.as_posix())
        entry["dir"] = "" if prefix == "." else prefix
        entry["outputs"] = [{"format": o["format"], "href": base + o["href"]}
                            for o in entry.get("outputs", [])]
        entries.append(entry)
    return entries


def render_index(entries: list[dict], title: str) -> str:
    """Return the index page's HTML for ``entries`` (see :func:`collect_entries`)."""
    return fill(asset("index.html"), {"TITLE": escape(title), "CSS": asset("index.css"),
                                      "DATA": script_json(entries), "JS": asset("index.js")})


def write_index(folder: str | os.PathLike, pages: Iterable[str | os.PathLike] | None = None, *,
                overwrite: bool = True) -> Path:
    """Write ``folder/index.html`` listing every report page under ``folder`` (or just ``pages``).

    Parameters
    ----------
    folder : path-like
        The output folder of a run.
    pages : iterable of path-like, optional
        The pages to list (default: every page found under ``folder``).
    overwrite : bool
        Replace an existing index.

    Returns
    -------
    pathlib.Path
    """
    folder = Path(folder)
    entries = collect_entries(folder, pages)
    count = f"{len(entries)} file{'s' if len(entries) != 1 else ''}"
    title = f"{folder.resolve().name or folder.resolve()} · {count}"
    return atomic_write_text(folder / INDEX_NAME, render_index(entries, title), overwrite=overwrite)
