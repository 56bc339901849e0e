"""The ``html`` output: one self-contained interactive page per tagged file.

The page holds its script, styles and data inline (no network request) and re-selects tags in the browser
with the rules of :mod:`audiotagger.tag.select` (``report.js`` ports them), from the compact probabilities
of :mod:`.encode`. It also carries a small summary block that :mod:`.index` reads to build a folder index.
"""

from __future__ import annotations

import base64
import json
import os
import warnings
from dataclasses import replace
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import AudioTaggerWarning
from ...fileio import atomic_write_text
from ...params import DEFAULT_THRESHOLD, SILENCE_MID
from ..select import PER_SECOND_START_OFFSET, Selection, hidden_classes
from .encode import pack_blob, pack_probs
from .media import embedded_audio, media_kind, media_link
from .params import HEATMAP_ROWS, MAX_TOP_K, PAGE_FORMAT, QUANT_LEVELS, THRESHOLD_STEP

INDEX_BLOCK_ID = "at-index"
"""``id`` of the page's summary block (JSON) read by the folder index."""


@cache
def asset(name: str) -> str:
    """Text of a packaged asset (``report.js``, ``report.css``, ``page.html``, ...)."""
    return resources.files(__package__).joinpath("assets", name).read_text(encoding="utf-8")


def script_json(obj: Any) -> str:
    """JSON that is safe inside ``<script type="application/json">`` (no ``</``, no ``<!--``)."""
    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c").replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def escape(text: str) -> str:
    """HTML-escape text for element content and attributes."""
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;"))


def fill(template: str, values: dict[str, str]) -> str:
    """Replace each ``@@KEY@@`` of ``template`` (one pass, so values are never re-scanned)."""
    parts = template.split("@@")
    return "".join(values[p] if i % 2 else p for i, p in enumerate(parts))


def shown_seconds(sel: Selection) -> dict[int, float]:
    """Seconds each class is shown under the selection's options (the summed length of its steps).

    Returns
    -------
    dict of int to float
        Class index to seconds, for every class shown at least once.
    """
    res, chosen = sel.result, sel.chosen
    if not res.num_steps:
        return {}
    mask = np.zeros((res.num_steps, res.probs.shape[1]), dtype=bool)
    rows, cols = np.nonzero(chosen >= 0)
    mask[rows, chosen[rows, cols]] = True
    lengths = res.ends - res.times
    if sel.options.per_second:
        lengths = lengths - PER_SECOND_START_OFFSET
    seconds = lengths @ mask
    return {int(c): float(seconds[c]) for c in np.flatnonzero(mask.any(axis=0))}


def index_entry(sel: Selection, page: Path, outputs: dict[str, Path]) -> dict[str, Any]:
    """The page's summary for the folder index: duration, top classes, shown classes, sibling outputs."""
    res = sel.result
    shown = shown_seconds(sel)
    return {
        "format": PAGE_FORMAT,
        "name": Path(res.source).name,
        "page": page.name,
        "duration": round(res.duration, 3),
        "steps": res.num_steps,
        "model": str(res.meta.get("model", "")),
        "top": [[res.names[c], round(s, 4)] for c, s, _ in sel.summary()],
        "shown": {res.names[c]: round(sec, 3) for c, sec in sorted(shown.items(), key=lambda kv: -kv[1])},
        "outputs": [{"format": f, "href": p.name} for f, p in outputs.items()],
    }


def sibling_outputs(page: Path, planned: dict[str, Path] | None) -> dict[str, Path]:
    """The other outputs of the same input: those planned in this run, and those already beside the page."""
    from ..writers import FORMATS, get_writer

    found: dict[str, Path] = {}
    stem = page.name[: -len(".html")] if page.name.endswith(".html") else page.stem
    for fmt in FORMATS:
        if fmt == "html":
            continue
        path = page.with_name(f"{stem}.{get_writer(fmt).extension}")
        if (planned and fmt in planned and Path(planned[fmt]).resolve() == path.resolve()) or path.exists():
            found[fmt] = path
    return found


def page_data(sel: Selection, page: Path, *, media: str | os.PathLike | None = None,
              embed_media: bool = False, outputs: dict[str, Path] | None = None) -> tuple[dict, str, str]:
    """Everything the page shows, as (header dict, base64 data blob, base64 embedded audio or "").

    Parameters
    ----------
    sel : Selection
        The result and the run's display options (the page opens with them).
    page : pathlib.Path
        Where the page will be written (links are relative to its folder).
    media : path-like, optional
        The input media (default ``sel.result.source``).
    embed_media : bool
        Embed a compressed audio track instead of linking to the media.
    outputs : dict of format to path, optional
        Other outputs of the run for this input (linked from the page).

    Returns
    -------
    header : dict
        JSON-serialisable: names, settings, display options, media, links, and the ``layout`` of the blob.
    data : str
        Base64 of the deflated arrays: ``times`` float64 (n,), ``means`` float64 (C,), ``q`` uint16
        (m * n, class-major), ``tie_rows``/``tie_cols`` int32 (e,), ``tie_values`` float32 (e,), and
        ``thresholds`` float32 (C,) when the result has per-class thresholds (the page then offers
        ``auto``, selected when the run used it).
    audio : str
        Base64 of the embedded audio track, or ``""``.
    """
    res, opts = sel.result, sel.options
    slider = DEFAULT_THRESHOLD if opts.auto else opts.threshold      # where the slider starts
    packed = pack_probs(sel.probs, slider, res.thresholds)
    n, m = res.num_steps, len(packed["classes"])
    means = (sel.probs.mean(axis=0, dtype=np.float64) if n else np.zeros(sel.probs.shape[1]))
    arrays = [
        ("times", res.times.astype(np.float64)),
        ("means", means.astype(np.float64)),
        ("q", packed["q"].T.reshape(-1)),                     # class-major: one class's steps are contiguous
        ("tie_rows", packed["tie_rows"]), ("tie_cols", packed["tie_cols"]),
        ("tie_values", packed["tie_values"]),
    ]
    if res.thresholds is not None:         # the "auto (per-class)" choice: exact float32, C values (2 kB)
        arrays.append(("thresholds", res.thresholds.astype(np.float32)))
    blob, layout = pack_blob(arrays)
    media_path = Path(media if media is not None else res.source)
    media_info: dict[str, Any] = {"name": media_path.name, "kind": media_kind(media_path), "href": None,
                                  "embedded": False, "found": media_path.is_file()}
    audio = ""
    if embed_media and media_path.is_file():
        mime, audio = embedded_audio(media_path)
        media_info.update(kind="audio", embedded=True, mime=mime)
    elif media_path.is_file():
        media_info["href"] = media_link(media_path, page)
    else:
        warnings.warn(f"{media_path}: media not found, so {page.name} has no player (it offers to pick the "
                      "file)", AudioTaggerWarning, stacklevel=2)
    siblings = sibling_outputs(page, outputs)
    settings = {"source": res.source, "hop": res.hop, "window": res.window, "duration": res.duration,
                **{k: v for k, v in res.meta.items() if k != "path"}}
    end = float(res.ends[-1]) if n else max(res.duration, 1.0)
    header = {
        "format": PAGE_FORMAT,
        "name": Path(res.source).name,
        "duration": res.duration, "hop": res.hop, "n": n, "m": m, "end": max(end, res.duration),
        "settings": json.loads(json.dumps(settings, default=str)),
        # hidden classes exactly as select.py resolves them: the --exclude ones, and the Speech/Music pair
        "options": {**opts.to_dict(), "exclude": hidden_classes(replace(opts, show_music_speech=True),
                                                                res.mids, res.names).tolist()},
        "speech_music": hidden_classes(replace(opts, show_music_speech=False, exclude=()), res.mids,
                                       res.names).tolist(),
        "silence": res.mids.index(SILENCE_MID) if SILENCE_MID in res.mids else -2,   # as select_classes
        "names": list(res.names), "mids": list(res.mids),
        "classes": packed["classes"].tolist(),
        "floor": packed["floor"], "step": THRESHOLD_STEP, "levels": QUANT_LEVELS, "slider": slider,
        "auto": res.thresholds is not None,
        "max_top_k": max(MAX_TOP_K, opts.top_k), "heatmap_rows": HEATMAP_ROWS,
        "media": media_info,
        "outputs": [{"format": f, "href": media_link(p, page)} for f, p in siblings.items()],
        "layout": layout,
    }
    return header, base64.b64encode(blob).decode("ascii"), audio


def render_page(sel: Selection, page: str | os.PathLike, *, media: str | os.PathLike | None = None,
                embed_media: bool = False, outputs: dict[str, Path] | None = None) -> str:
    """Return the HTML text of the page (see :func:`page_data` for the parameters)."""
    page = Path(page)
    header, data, audio = page_data(sel, page, media=media, embed_media=embed_media, outputs=outputs)
    entry = index_entry(sel, page, sibling_outputs(page, outputs))
    return fill(asset("page.html"), {
        "TITLE": escape(f"{header['name']} · audiotagger"),
        "CSS": asset("report.css"),
        "INDEX": script_json(entry),
        "META": script_json(header),
        "DATA": data,
        "AUDIO": audio,
        "JS": asset("report.js"),
    })


def write_page(sel: Selection, path: str | os.PathLike, *, media: str | os.PathLike | None = None,
               embed_media: bool = False, outputs: dict[str, Path] | None = None,
               overwrite: bool = True) -> Path:
    """Write the interactive page of one result atomically.

    Parameters
    ----------
    sel : Selection
        The result and the run's display options.
    path : path-like
        Destination ``.html``.
    media : path-like, optional
        The input media (default ``sel.result.source``); linked by a path relative to the page's folder.
    embed_media : bool
        Embed the audio (mono Opus, 24 kbit/s) in the page instead of linking to the media.
    outputs : dict of format to path, optional
        The run's other outputs of this input, linked from the page.
    overwrite : bool
        Replace an existing file.

    Returns
    -------
    pathlib.Path
    """
    return atomic_write_text(path, render_page(sel, path, media=media, embed_media=embed_media,
                                               outputs=outputs), overwrite=overwrite)


def read_index_entry(page: str | os.PathLike) -> dict[str, Any] | None:
    """The summary block of a page written by :func:`write_page`, or None for any other HTML file."""
    try:
        text = Path(page).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    start = text.find(f'<script type="application/json" id="{INDEX_BLOCK_ID}">')
    if start < 0:
        return None
    start = text.index(">", start) + 1
    end = text.find("</script>", start)
    try:
        entry = json.loads(text[start:end])
    except ValueError:
        return None
    return entry if isinstance(entry, dict) and entry.get("format") == PAGE_FORMAT else None
