"""The ``png`` output: log-mel spectrogram of the input above a heatmap of its top classes over time.

The layout of PANNs' sound-event-detection figure (spectrogram panel, then class probabilities with the
class names as y labels). Drawn with matplotlib's object API on an Agg canvas (no pyplot state, no
display needed), written atomically.
"""

from __future__ import annotations

import io
import math
import os
import warnings
from pathlib import Path

import numpy as np

from ..errors import AudioTaggerError, AudioTaggerWarning
from ..fileio import atomic_write_bytes
from .select import Selection, hidden_classes

PLOT_CLASSES = 10
"""Rows of the heatmap: the classes with the highest probability anywhere in the file."""

MAX_COLUMNS = 4000
"""Spectrogram frames are averaged in blocks so that no more than this many columns are drawn."""

_FRAME_RATE = 100.0  # VGGish log-mel frames per second (10 ms hop)


def spectrogram(source: str | os.PathLike, duration: float) -> tuple[np.ndarray, float]:
    """Stream a media file and return a column-pooled VGGish log-mel spectrogram.

    Parameters
    ----------
    source : path-like
        Any file :func:`audiotagger.audio.stream_audio` decodes.
    duration : float
        Expected length in seconds (chooses the pooling factor).

    Returns
    -------
    spec : numpy.ndarray, float32, shape (64, columns)
        Natural-log mel energies, low bands first.
    seconds_per_column : float
    """
    from ..audio import stream_audio
    from ..vggish.features import log_mel_frames

    factor = max(1, math.ceil(duration * _FRAME_RATE / MAX_COLUMNS))
    pooled, carry = [], np.zeros(0, dtype=np.float32)
    rest = np.zeros((0, 64), dtype=np.float32)
    for chunk in stream_audio(source, 16000):
        x = np.concatenate([carry, chunk])
        usable = (len(x) - 400) // 160 + 1 if len(x) >= 400 else 0
        frames = log_mel_frames(x[:(usable - 1) * 160 + 400]) if usable else rest[:0]
        carry = x[usable * 160:]
        frames = np.concatenate([rest, frames])
        whole = len(frames) // factor * factor
        if whole:
            pooled.append(frames[:whole].reshape(-1, factor, frames.shape[1]).mean(axis=1))
        rest = frames[whole:]
    if len(rest):
        pooled.append(rest.mean(axis=0, keepdims=True))
    spec = np.concatenate(pooled) if pooled else np.zeros((0, 64), dtype=np.float32)
    return spec.T.astype(np.float32), factor / _FRAME_RATE


def plot_selection(sel: Selection, path: str | os.PathLike, *, audio: str | os.PathLike | None = None,
                   overwrite: bool = True, classes: int = PLOT_CLASSES) -> Path:
    """Draw the figure of one result and write it as PNG.

    Parameters
    ----------
    sel : Selection
        Result (smoothed probabilities and hidden classes are taken from its options).
    path : path-like
        Destination ``.png``.
    audio : path-like, optional
        Media file for the spectrogram; default ``sel.result.source``. When it cannot be decoded (e.g.
        ``--from-probs`` after the media moved) only the heatmap is drawn.
    overwrite : bool
        Replace an existing file.
    classes : int
        Heatmap rows.

    Returns
    -------
    pathlib.Path
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    res = sel.result
    src = audio if audio is not None else res.source
    spec = None
    looked = [str(p) for p in dict.fromkeys([src, res.meta.get("path"), res.source]) if p]
    try:
        if src is not None and Path(src).is_file():
            spec, step = spectrogram(src, res.duration)
        else:
            warnings.warn(f"{res.source}: png drawn without the spectrogram: the media file was not found "
                          f"(looked at {' and '.join(looked)})", AudioTaggerWarning, stacklevel=2)
    except AudioTaggerError as exc:
        warnings.warn(f"{res.source}: png drawn without the spectrogram: {exc}", AudioTaggerWarning,
                      stacklevel=2)
        spec = None
    end = float(res.ends[-1]) if res.num_steps else max(res.duration, 1.0)

    visible = sel.probs.copy()
    visible[:, hidden_classes(sel.options, res.mids, res.names)] = -1.0
    peak = visible.max(axis=0) if res.num_steps else np.zeros(visible.shape[1])
    top = np.argsort(-peak, kind="stable")[:classes]

    rows = 2 if spec is not None and spec.size else 1
    fig = Figure(figsize=(12, 2.2 + 0.28 * len(top) + (2.6 if rows == 2 else 0)), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, 1, sharex=True, squeeze=False)[:, 0]
    if rows == 2:
        ax = axes[0]
        ax.imshow(spec, origin="lower", aspect="auto", cmap="magma", interpolation="nearest",
                  extent=(0.0, spec.shape[1] * step, 0, spec.shape[0]))
        ax.set_ylabel("mel band")
        ax.set_title(f"{Path(res.source).name}: log-mel spectrogram")
    ax = axes[-1]
    image = ax.imshow(sel.probs[:, top].T, origin="upper", aspect="auto", cmap="viridis", vmin=0.0, vmax=1.0,
                      interpolation="nearest", extent=(float(res.times[0]) if res.num_steps else 0.0, end,
                                                       len(top) - 0.5, -0.5))
    ax.set_yticks(range(len(top)), [res.names[c] for c in top], fontsize=8)
    ax.set_xlabel("time (s)")
    ax.set_title(f"top {len(top)} classes ({res.meta.get('model', '?')}, left {res.meta.get('left', '-')}, "
                 f"right {res.meta.get('right', '-')})")
    ax.set_xlim(0.0, end)
    fig.colorbar(image, ax=ax, label="probability", pad=0.01)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, metadata={"Software": None})
    return atomic_write_bytes(path, buf.getvalue(), overwrite=overwrite)
