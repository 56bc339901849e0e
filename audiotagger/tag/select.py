"""Which tags each time step shows, and how steps become cues and events.

Two selection rules (SPEC §6.3):

* default: every class with probability >= ``threshold``, at most ``top_k`` of them, best first; hidden
  classes (Speech and Music unless ``show_music_speech``, and every ``exclude``) are removed *before* the
  cap, so a step shows up to ``top_k`` visible tags;
* ``compat``: the original AudioTagger rule — sort all classes, count those >= threshold, show
  ``3 if j < 3 else min(5, j)`` with ``j = max(count - 1, 0)`` (so at least 3 even below the threshold),
  only "Silence" if it is among them, then drop the hidden classes (``top_k`` is not used).

``threshold="auto"`` (``--threshold auto``) compares every class with its own threshold, stored in the model
file and carried by the result (:attr:`TagResult.thresholds`): the default rule shows the classes at or
above their own threshold, at most ``top_k`` of them, best (highest probability) first; ``compat`` counts
the classes at or above their own threshold and shows that many as the original rule does.

``smooth`` (optional) replaces the probabilities by a causal moving average over the current and previous
``smooth - 1`` steps before selection (PaddleAudio's posterior smoothing, SPEC §8.2); the saved matrix
stays raw. Consecutive steps that show the same set of tags merge into one cue unless ``per_second``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from ..errors import ParameterError
from ..labels import LabelSet, load_labels
from ..params import DEFAULT_THRESHOLD, DEFAULT_TOP_K, MUSIC_MID, SILENCE_MID, SPEECH_MID
from .result import TagResult

AUTO = "auto"
"""``--threshold auto``: each class's own threshold (stored in the model, carried by the result)."""

COMPAT_MIN, COMPAT_MAX = 3, 5
"""Fewest and most tags per second of the original rule."""

PER_SECOND_START_OFFSET = 0.001
"""The original SRT starts cue ``i`` 1 ms after second ``i`` (so cues never touch)."""

EMPTY_CUE = "-"
"""Cue text of a step without tags in ``per_second`` mode (SRT cues cannot be empty)."""

SEPARATOR = " | "
"""Between tags in a cue (display names may contain commas); ``--compat`` uses the original ``--``."""
COMPAT_SEPARATOR = "--"


def compat_count(above):
    """How many classes the original rule shows, given how many are at or above the threshold.

    ``giveThres`` (SPEC §6.3) shows ``3 if j < 3 else min(5, j)`` with ``j = count - 1`` (its
    off-by-one kept): ``clip(count - 1, 3, 5)``. Works on an int or an int array.
    """
    return np.clip(np.asarray(above) - 1, COMPAT_MIN, COMPAT_MAX)


@dataclass(frozen=True)
class DisplayOptions:
    """How a result is rendered (every field is a ``tag`` flag).

    Attributes
    ----------
    threshold : float or "auto"
        Minimum probability shown, in [0, 1]; ``"auto"``: each class's own threshold (the result must
        carry per-class thresholds, see :attr:`TagResult.thresholds`).
    top_k : int
        Most tags per step (default rule), >= 1.
    show_music_speech : bool
        Show Speech and Music (hidden by default, as in the original).
    exclude : tuple of str
        Further classes to hide (mids, display names or indices).
    compat : bool
        Use the original selection rule.
    smooth : int
        Causal moving-average length in steps; 0 or 1 = no smoothing.
    per_second : bool
        One cue per step (the original SRT layout) instead of merging identical neighbours.
    """

    threshold: float | str = DEFAULT_THRESHOLD
    top_k: int = DEFAULT_TOP_K
    show_music_speech: bool = False
    exclude: tuple[str, ...] = ()
    compat: bool = False
    smooth: int = 0
    per_second: bool = False

    def __post_init__(self) -> None:
        auto = isinstance(self.threshold, str) and self.threshold.strip().lower() == AUTO
        if not auto:
            try:
                value = float(self.threshold)
            except (TypeError, ValueError):
                raise ParameterError(f"--threshold: must be a number between 0 and 1 or {AUTO}, got "
                                     f"{self.threshold!r}") from None
            if isinstance(self.threshold, bool) or not 0.0 <= value <= 1.0:
                raise ParameterError(f"--threshold: must be between 0 and 1, got {self.threshold!r}")
        if isinstance(self.top_k, bool) or int(self.top_k) != self.top_k or self.top_k < 1:
            raise ParameterError(f"--top-k: must be an integer >= 1, got {self.top_k!r}")
        if isinstance(self.smooth, bool) or int(self.smooth) != self.smooth or self.smooth < 0:
            raise ParameterError(f"--smooth: must be an integer >= 0, got {self.smooth!r}")
        exclude = (self.exclude,) if isinstance(self.exclude, str) else tuple(self.exclude)
        object.__setattr__(self, "exclude", tuple(str(e) for e in exclude))
        object.__setattr__(self, "threshold", AUTO if auto else float(self.threshold))
        object.__setattr__(self, "top_k", int(self.top_k))
        object.__setattr__(self, "smooth", int(self.smooth))
        for name in ("show_music_speech", "compat", "per_second"):
            object.__setattr__(self, name, bool(getattr(self, name)))

    def check(self, labels: LabelSet | None = None) -> DisplayOptions:
        """Validate ``--exclude`` against a label set (default: AudioSet's); returns ``self``.

        Raises
        ------
        ParameterError
            If an ``--exclude`` entry names no class of ``labels``.
        """
        hidden_classes(self, *((labels.mids, labels.names) if labels is not None else ()))
        return self

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (stored in the ``.npz`` settings)."""
        d = asdict(self)
        d["exclude"] = list(self.exclude)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DisplayOptions:
        """Inverse of :meth:`to_dict` (unknown keys are ignored)."""
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        if "exclude" in known:
            known["exclude"] = tuple(known["exclude"])
        return cls(**known)

    @property
    def auto(self) -> bool:
        """True for ``--threshold auto`` (each class's own threshold)."""
        return self.threshold == AUTO

    def limits(self, thresholds: np.ndarray | None, source: str = "--threshold auto"):
        """What probabilities are compared with: the threshold, or the per-class thresholds for auto.

        Parameters
        ----------
        thresholds : numpy.ndarray, shape (C,), optional
            The result's per-class thresholds.
        source : str
            Named in the error (the file or model).

        Returns
        -------
        float or numpy.ndarray, float32, shape (C,)

        Raises
        ------
        ParameterError
            ``auto`` without per-class thresholds.
        """
        if not self.auto:
            return self.threshold
        if thresholds is None:
            raise ParameterError(no_thresholds_message(source))
        return np.asarray(thresholds, dtype=np.float32)

    @property
    def separator(self) -> str:
        """Text between the tags of one cue."""
        return COMPAT_SEPARATOR if self.compat else SEPARATOR


def no_thresholds_message(source) -> str:
    """The one line for ``--threshold auto`` on a model or file that stores no per-class thresholds."""
    return (f"{source}: no per-class thresholds (--threshold auto needs a model that stores them; give a "
            "number)")


def _label_set(mids: Sequence[str] | None, names: Sequence[str] | None) -> LabelSet:
    """The packaged AudioSet labels, or the label set of a result's columns (YAMNet's 521, a user's)."""
    audioset = load_labels()
    if mids is None or tuple(mids) == audioset.mids:
        return audioset
    return LabelSet(tuple(mids), tuple(names) if names is not None else tuple(mids))


def hidden_classes(options: DisplayOptions, mids: Sequence[str] | None = None,
                   names: Sequence[str] | None = None) -> np.ndarray:
    """Class indices never shown: Speech/Music unless ``show_music_speech``, plus ``exclude``.

    Parameters
    ----------
    options : DisplayOptions
    mids, names : sequence of str, optional
        The columns' classes (default: the 527 AudioSet classes). Speech and Music are found by their
        mids, so they are hidden in any label set that has them (YAMNet's included).

    Raises
    ------
    ParameterError
        If an ``--exclude`` entry names no class.
    """
    labels = _label_set(mids, names)
    hidden = set()
    if not options.show_music_speech:
        hidden = {i for i, mid in enumerate(labels.mids) if mid in (SPEECH_MID, MUSIC_MID)}
    for key in options.exclude:
        try:
            hidden.add(labels.index(key))
        except ParameterError as exc:
            raise ParameterError(f"--exclude: {exc}") from None
    return np.array(sorted(hidden), dtype=np.int64)


def smooth_probs(probs: np.ndarray, size: int) -> np.ndarray:
    """Causal moving average over steps (PaddleAudio posterior smoothing, SPEC §8.2).

    Parameters
    ----------
    probs : numpy.ndarray, shape (n, C)
        Probabilities.
    size : int
        Window length ``W``: ``out[i] = mean(probs[max(0, i - W + 1) : i + 1])``; 0 or 1 returns ``probs``.

    Returns
    -------
    numpy.ndarray, float32, shape (n, C)
    """
    probs = np.asarray(probs, dtype=np.float32)
    if size <= 1 or probs.shape[0] == 0:
        return probs
    csum = np.cumsum(probs, axis=0, dtype=np.float64)
    csum = np.concatenate([np.zeros((1, probs.shape[1])), csum])
    i = np.arange(probs.shape[0])
    lo = np.maximum(i + 1 - size, 0)
    return ((csum[i + 1] - csum[lo]) / (i + 1 - lo)[:, None]).astype(np.float32)


def select_classes(probs: np.ndarray, options: DisplayOptions, mids: Sequence[str] | None = None,
                   names: Sequence[str] | None = None, thresholds: np.ndarray | None = None) -> np.ndarray:
    """Tags of every step.

    Parameters
    ----------
    probs : numpy.ndarray, shape (n, C)
        (Smoothed) probabilities.
    options : DisplayOptions
        Threshold, top-k, hidden classes, rule.
    mids, names : sequence of str, optional
        The columns' classes (default: the 527 AudioSet classes).
    thresholds : numpy.ndarray, float32, shape (C,), optional
        Per-class thresholds, used (and needed) when ``options.threshold`` is ``"auto"``.

    Returns
    -------
    numpy.ndarray, int64, shape (n, k)
        Class indices shown at each step, best first, padded with -1.

    Raises
    ------
    ParameterError
        ``auto`` without ``thresholds``.
    """
    probs = np.asarray(probs, dtype=np.float32)
    n, num = probs.shape
    hidden = hidden_classes(options, mids, names)
    limit = options.limits(thresholds)
    if options.compat:
        order = np.argsort(-probs, axis=1, kind="stable")[:, :COMPAT_MAX]
        shown = compat_count((probs >= limit).sum(axis=1))
        keep = np.arange(order.shape[1])[None, :] < shown[:, None]
        chosen = np.where(keep, order, -1)
        mids_list = list(load_labels().mids if mids is None else mids)
        silence = mids_list.index(SILENCE_MID) if SILENCE_MID in mids_list else -2
        has_silence = (chosen == silence).any(axis=1)
        chosen[has_silence] = -1
        chosen[has_silence, 0] = silence
        chosen[np.isin(chosen, hidden)] = -1
    else:
        visible = probs.copy()
        visible[:, hidden] = -np.inf
        if options.auto:               # below its own threshold: out before the cap, like a hidden class
            visible[probs < limit] = -np.inf
        k = min(options.top_k, num)
        order = np.argsort(-visible, axis=1, kind="stable")[:, :k]
        values = np.take_along_axis(visible, order, axis=1)
        chosen = np.where(np.isfinite(values) if options.auto else values >= options.threshold, order, -1)
    # move the -1 gaps to the end, keeping the order of the rest
    pos = np.argsort(chosen < 0, axis=1, kind="stable")
    return np.take_along_axis(chosen, pos, axis=1).astype(np.int64).reshape(n, -1)


@dataclass(frozen=True)
class Cue:
    """One subtitle cue: tags shown from ``start`` to ``end`` seconds.

    ``classes`` are ordered by ``scores`` (mean probability over the cue's steps), best first.
    """

    start: float
    end: float
    classes: tuple[int, ...]
    scores: tuple[float, ...]


@dataclass(frozen=True)
class Event:
    """One table row: class ``cls`` shown without a break from ``start`` to ``end`` (mean ``score``)."""

    start: float
    end: float
    cls: int
    score: float


@dataclass
class Selection:
    """A result rendered with a set of display options: what every writer draws from.

    Attributes
    ----------
    result : TagResult
    options : DisplayOptions
    probs : numpy.ndarray, float32, shape (n, C)
        Probabilities after smoothing.
    chosen : numpy.ndarray, int64, shape (n, k)
        Tags per step (see :func:`select_classes`).
    """

    result: TagResult
    options: DisplayOptions
    probs: np.ndarray = field(init=False)
    chosen: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.options.limits(self.result.thresholds, self.result.source)     # auto needs thresholds
        self.probs = smooth_probs(self.result.probs, self.options.smooth)
        self.chosen = select_classes(self.probs, self.options, self.result.mids, self.result.names,
                                     self.result.thresholds)

    def names(self, classes: Iterable[int]) -> list[str]:
        """Display names of class indices."""
        return [self.result.names[c] for c in classes]

    def text(self, classes: Sequence[int]) -> str:
        """Cue text for a list of classes (the placeholder when empty)."""
        return self.options.separator.join(self.names(classes)) if len(classes) else EMPTY_CUE

    def cues(self) -> list[Cue]:
        """Subtitle cues.

        ``per_second``: one cue per step from ``times[i] + 1 ms`` to ``ends[i]``, empty steps included.
        Otherwise consecutive steps with the same set of tags form one cue from the first start to the last
        end, and steps without tags make no cue.

        Returns
        -------
        list of Cue
        """
        res, chosen = self.result, self.chosen
        starts, ends = res.times, res.ends
        n = res.num_steps
        if n == 0:
            return []
        if self.options.per_second:
            return [Cue(float(starts[i]) + PER_SECOND_START_OFFSET, float(ends[i]),
                        tuple(int(c) for c in chosen[i] if c >= 0),
                        tuple(float(self.probs[i, c]) for c in chosen[i] if c >= 0)) for i in range(n)]
        key = np.sort(chosen, axis=1)
        change = np.ones(n, dtype=bool)
        change[1:] = (key[1:] != key[:-1]).any(axis=1)
        bounds = np.flatnonzero(change).tolist() + [n]
        cues = []
        for a, b in zip(bounds[:-1], bounds[1:], strict=True):
            classes = [int(c) for c in chosen[a] if c >= 0]
            if not classes:
                continue
            mean = self.probs[a:b, classes].mean(axis=0)
            order = np.argsort(-mean, kind="stable")
            cues.append(Cue(float(starts[a]), float(ends[b - 1]), tuple(classes[o] for o in order),
                            tuple(float(mean[o]) for o in order)))
        return cues

    def events(self) -> list[Event]:
        """Table rows: each run of consecutive steps showing a class, ordered by start time then score.

        With ``per_second`` every step is its own row.

        Returns
        -------
        list of Event
        """
        res, chosen = self.result, self.chosen
        n = res.num_steps
        if n == 0:
            return []
        shown = np.zeros((n + 2, self.probs.shape[1]), dtype=bool)
        rows, cols = np.nonzero(chosen >= 0)
        shown[rows + 1, chosen[rows, cols]] = True
        starts, ends = res.times, res.ends
        events = []
        for c in np.flatnonzero(shown.any(axis=0)):
            col = shown[:, c]
            if self.options.per_second:
                runs = [(i, i + 1) for i in np.flatnonzero(col[1:-1])]
            else:
                edges = np.flatnonzero(col[1:] != col[:-1])
                runs = list(zip(edges[0::2], edges[1::2], strict=True))
            for a, b in runs:
                start = float(starts[a]) + (PER_SECOND_START_OFFSET if self.options.per_second else 0.0)
                events.append(Event(start, float(ends[b - 1]), int(c),
                                    float(self.probs[a:b, c].mean())))
        events.sort(key=lambda e: (e.start, -e.score, e.cls))
        return events

    def summary(self) -> list[tuple[int, float, float]]:
        """Whole-file top classes: mean probability over steps, hidden classes removed.

        Default rule: the ``top_k`` best means. ``compat``: the original count rule applied to the means
        (without the Silence override; with ``auto`` it counts the means at or above their class's own
        threshold).

        Returns
        -------
        list of (class index, mean probability, percent of the time steps in which the class is shown)
            The percentage says how much of the file carries the tag (with the same threshold, top-k and
            smoothing as the subtitles), e.g. 40.0 for a dog heard in 40 % of the seconds.
        """
        if self.result.num_steps == 0:
            return []
        mean = self.probs.mean(axis=0, dtype=np.float64)
        visible = mean.copy()
        visible[hidden_classes(self.options, self.result.mids, self.result.names)] = -np.inf
        if self.options.compat:
            shown = int(compat_count((mean >= self.options.limits(self.result.thresholds)).sum()))
            top = [int(c) for c in np.argsort(-mean, kind="stable")[:shown]
                   if np.isfinite(visible[c])]
        else:
            order = np.argsort(-visible, kind="stable")
            top = [int(c) for c in order[:self.options.top_k] if np.isfinite(visible[c])]
        n = self.result.num_steps
        chosen = np.asarray(self.chosen)
        counts = np.zeros(self.probs.shape[1], np.int64)
        valid = chosen[(chosen >= 0) & (chosen < len(counts))] if chosen.size else chosen.reshape(-1)
        np.add.at(counts, valid.astype(np.int64), 1)
        return [(c, float(mean[c]), 100.0 * float(counts[c]) / n) for c in top]

    def summary_text(self) -> str:
        """The summary as the lines printed to stdout."""
        res = self.result
        head = f"{res.source}: {res.duration:.1f} s, {res.num_steps} step{'s' if res.num_steps != 1 else ''}"
        unit = "seconds" if res.hop == 1.0 else "steps"
        rows = self.summary()
        if not rows:
            return head + " (no tags)"
        width = max(len("class"), *(len(res.names[c]) for c, _, _ in rows))
        lines = [head, f"  {'class':<{width}}  {'mean p':>6}  {'shown in':>8}"]
        lines += [f"  {res.names[c]:<{width}}  {score:6.3f}  {share:6.1f} % of the {unit}"
                  for c, score, share in rows]
        return "\n".join(lines)
