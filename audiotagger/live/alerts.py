"""Alerts of ``audiotagger listen``: a class crossing its threshold fires once, then holds off.

A rule fires on the step where its class's (smoothed) score rises to its threshold or above after being
below it, and not again for ``hold_off`` seconds after that, so one bark is one alert even when the score
flickers around the threshold. ``--exec`` commands run through the shell, in the background, with the
alert in their environment (``AUDIOTAGGER_CLASS``, ``AUDIOTAGGER_MID``, ``AUDIOTAGGER_SCORE``,
``AUDIOTAGGER_TIME``, ``AUDIOTAGGER_WALL``).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import ParameterError

DEFAULT_HOLD_OFF = 10.0
"""Seconds after an alert during which the same rule stays quiet."""


AUTO = "auto"
"""A rule's threshold ``auto``: the class's own threshold stored in the model (``--threshold auto``)."""


@dataclass(frozen=True)
class AlertRule:
    """Alert when class ``key`` (a name, mid or index of the backend's labels) reaches ``threshold``.

    ``threshold`` is a probability, or ``"auto"`` for the class's own threshold stored in the model.
    ``command`` (a shell line) is run when given.
    """

    key: str
    threshold: float | str
    command: str | None = None


@dataclass(frozen=True)
class Alert:
    """One fired alert; ``threshold`` is the value the score reached (the class's own one for ``auto``)."""

    rule: AlertRule
    label: str
    mid: str
    score: float
    time: float
    wall: float
    threshold: float = float("nan")


def parse_rule(spec: str, default_threshold: float | str, command: str | None = None) -> AlertRule:
    """Parse ``CLASS[=THRESHOLD]`` (a display name, mid or index) into an :class:`AlertRule`.

    ``THRESHOLD`` (and ``default_threshold``, the ``--threshold`` of the run) may be ``auto``: the class's
    own threshold stored in the model. The class is looked up in the backend's labels when the run
    starts (:meth:`Alerter.bind`).

    Raises
    ------
    ParameterError
        A threshold that is not a number in [0, 1] or ``auto``.
    """
    name, threshold = spec, default_threshold
    if "=" in spec:
        name, _, value = spec.rpartition("=")
        threshold = value.strip().lower() if value.strip().lower() == AUTO else value
    if threshold == AUTO:
        return AlertRule(name.strip(), AUTO, command)
    try:
        threshold = float(threshold)
    except ValueError:
        raise ParameterError(f"--alert/--on: {spec!r}: threshold {threshold!r} is not a number (or auto)"
                             ) from None
    if not 0.0 <= threshold <= 1.0:
        raise ParameterError(f"--alert/--on: {spec!r}: threshold must be between 0 and 1")
    return AlertRule(name.strip(), float(threshold), command)


class Alerter:
    """Apply rules to consecutive steps (rising edge + hold-off per rule).

    Parameters
    ----------
    rules : sequence of AlertRule
    hold_off : float
        Seconds (of stream time) a rule stays quiet after it fired.
    """

    def __init__(self, rules: Sequence[AlertRule], hold_off: float = DEFAULT_HOLD_OFF):
        if hold_off < 0:
            raise ParameterError(f"--hold-off: must be >= 0, got {hold_off}")
        self.rules, self.hold_off = list(rules), float(hold_off)
        self._above = [False] * len(self.rules)
        self._last = [-np.inf] * len(self.rules)
        self._cls: list[int] = []
        self._limits: list[float] = []

    def bind(self, mids: Sequence[str], names: Sequence[str], thresholds: np.ndarray | None = None,
             source: str = "the model") -> None:
        """Look the rules' classes up in the backend's labels (and ``auto`` rules' thresholds).

        Parameters
        ----------
        mids, names : sequence of str
            The backend's classes.
        thresholds : numpy.ndarray, shape (C,), optional
            The model's per-class thresholds (for rules with threshold ``auto``).
        source : str
            The model, named in the error of an ``auto`` rule without thresholds.

        Raises
        ------
        ParameterError
            A class the backend does not have; an ``auto`` rule and no ``thresholds``.
        """
        from ..labels import LabelSet

        labels = LabelSet(tuple(mids), tuple(names))
        try:
            cls = [labels.index(rule.key) for rule in self.rules]
        except ParameterError as exc:
            raise ParameterError(f"--alert/--on: {exc}") from None
        if thresholds is None and any(rule.threshold == AUTO for rule in self.rules):
            from ..tag.select import no_thresholds_message

            raise ParameterError(f"--alert/--on: {no_thresholds_message(source)}")
        self._limits = [float(thresholds[c]) if rule.threshold == AUTO else float(rule.threshold)
                        for rule, c in zip(self.rules, cls, strict=True)]
        self._cls = cls

    def check(self, scores: np.ndarray, time: float, wall: float, mids: Sequence[str],
              names: Sequence[str]) -> list[Alert]:
        """Alerts fired by one step's scores (C,) at stream ``time`` / epoch ``wall``."""
        if len(self._cls) != len(self.rules):
            self.bind(mids, names)
        fired = []
        for k, rule in enumerate(self.rules):
            cls, limit = self._cls[k], self._limits[k]
            score = float(scores[cls])
            above = score >= limit        # an auto limit is a float32 value: the same as comparing float32s
            if above and not self._above[k] and time - self._last[k] >= self.hold_off:
                self._last[k] = time
                fired.append(Alert(rule, names[cls], mids[cls], score, time, wall, limit))
            self._above[k] = above
        return fired

    def reset(self) -> None:
        """Forget the previous step (after a gap, a class already above its threshold fires again)."""
        self._above = [False] * len(self.rules)


def run_command(alert: Alert) -> subprocess.Popen:
    """Start ``alert.rule.command`` in the shell, in the background, with the alert in its environment."""
    env = {**os.environ, "AUDIOTAGGER_CLASS": alert.label, "AUDIOTAGGER_MID": alert.mid,
           "AUDIOTAGGER_SCORE": f"{alert.score:.4f}", "AUDIOTAGGER_TIME": f"{alert.time:.3f}",
           "AUDIOTAGGER_WALL": f"{alert.wall:.3f}"}
    return subprocess.Popen(alert.rule.command, shell=True, env=env, stdin=subprocess.DEVNULL)
