"""Re-render PaddleAudio-style top-k text from saved scores (``audiotagger parse``, SPEC §8.2).

Reads either a probability file written by ``audiotagger tag -f npz`` (``probs``, ``times`` in
seconds, ``labels``) or a PaddleAudio ``audio_tag.py`` result (``time`` as fractions of the length,
``scores``), optionally applies PaddleAudio's causal posterior smoothing, and writes the top-k blocks
that ``parse_result.py`` writes: the time on its own line, ``top_k`` lines ``"<label>: <score>"``, a
blank line.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .errors import DataError, ParameterError
from .panns.params import DEFAULT_SMOOTH_SIZE, DEFAULT_TOP_K


def load_scores(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """Read time steps, scores and class names from an ``.npz`` of scores.

    Parameters
    ----------
    path : path-like
        ``audiotagger tag`` probability file, or a PaddleAudio ``audioset_tagging_sr_*.npz``.

    Returns
    -------
    times : np.ndarray [shape=(n,), dtype=float64]
        Seconds (audiotagger files) or fractions of the length (PaddleAudio files, as saved).
    scores : np.ndarray [shape=(n, C), dtype=float32]
        C = 527 AudioSet classes (PaddleAudio files), or the file's own classes (521 for YAMNet).
    names : tuple of str
        Display names of the C classes.

    Raises
    ------
    DataError
        Unreadable file, or arrays missing, of the wrong shape or not finite.
    """
    from .labels import load_labels

    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as npz:
            ours = {"probs", "times", "settings"} <= set(npz.files)
            if not ours and {"time", "scores"} <= set(npz.files):
                times, scores, names = npz["time"], npz["scores"], load_labels().names
            elif not ours:
                raise DataError(f"{path}: no scores found (expected 'time' and 'scores', or an audiotagger "
                                "probability file)")
        if ours:   # read (and checked) once, by the probability-file reader
            from .tag.result import load_result

            result, _ = load_result(path)
            times, scores, names = result.times, result.probs, tuple(result.names)
    except DataError:
        raise
    except (OSError, ValueError, EOFError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"{path}: cannot read scores ({first})") from None
    times = np.asarray(times, dtype=np.float64).reshape(-1)
    scores = np.asarray(scores)
    if scores.ndim != 2 or scores.shape[1] != len(names) or scores.shape[0] != times.shape[0]:
        raise DataError(f"{path}: scores {scores.shape} and {times.shape[0]} time steps do not make an "
                        f"(n, {len(names)}) matrix")
    from .tag.result import check_scores

    check_scores(scores, path, rows=True)
    return times, scores.astype(np.float32), names


def render(path: str | os.PathLike, *, top_k: int = DEFAULT_TOP_K, smooth: bool = False,
           smooth_size: int = DEFAULT_SMOOTH_SIZE) -> str:
    """Return the top-k text of a scores file (see :func:`parse_file`)."""
    from .tag.select import smooth_probs
    from .tag.writers import topk_text

    if isinstance(top_k, bool) or int(top_k) != top_k or top_k < 1:
        raise ParameterError(f"--top-k: must be an integer >= 1, got {top_k!r}")
    if isinstance(smooth_size, bool) or int(smooth_size) != smooth_size or smooth_size < 1:
        raise ParameterError(f"--smooth-size: must be an integer >= 1, got {smooth_size!r}")
    times, scores, names = load_scores(path)
    if smooth:
        scores = smooth_probs(scores, int(smooth_size))
    return topk_text(times, scores, names, int(top_k))


def parse_file(path: str | os.PathLike, output: str | os.PathLike, *, top_k: int = DEFAULT_TOP_K,
               smooth: bool = False, smooth_size: int = DEFAULT_SMOOTH_SIZE, overwrite: bool = False) -> Path:
    """Write PaddleAudio ``parse_result.py`` top-k text for a scores file.

    Parameters
    ----------
    path : path-like
        Scores ``.npz`` (see :func:`load_scores`).
    output : path-like
        The ``.txt`` file to write (atomically).
    top_k : int
        Classes per block, best first.
    smooth : bool
        Apply the causal moving average ``s[i] = mean(s[max(0, i - W + 1) .. i])`` first.
    smooth_size : int
        ``W``.
    overwrite : bool
        Replace an existing ``output`` (otherwise ``FileExistsError``).

    Returns
    -------
    pathlib.Path
        ``output``.
    """
    from .fileio import atomic_write_text

    text = render(path, top_k=top_k, smooth=smooth, smooth_size=smooth_size)
    output = Path(output)
    if not overwrite and output.exists():
        raise FileExistsError(f"{output}: exists (use --overwrite to replace it)")
    return atomic_write_text(output, text, overwrite=overwrite)
