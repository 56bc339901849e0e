import numpy as np
import pytest

from audiotagger.errors import ParameterError
from audiotagger.labels import load_labels
from audiotagger.params import MUSIC_MID, SILENCE_MID, SPEECH_MID
from audiotagger.tag.result import TagResult
from audiotagger.tag.select import DisplayOptions, Selection, select_classes, smooth_probs

L = load_labels()
SPEECH, MUSIC, SILENCE = L.index(SPEECH_MID), L.index(MUSIC_MID), L.index(SILENCE_MID)
DOG, BARK, CAT, CAR = L.index("Dog"), L.index("Bark"), L.index("Cat"), L.index("Car")


def row(**scores):
    p = np.zeros((1, 527), np.float32)
    for cls, value in scores.items():
        p[0, int(cls[1:])] = value
    return p


def probs_with(pairs, n=1):
    p = np.zeros((n, 527), np.float32)
    for cls, value in pairs:
        p[:, cls] = value
    return p


def shown(p, **opts):
    return [c for c in select_classes(p, DisplayOptions(**opts))[0] if c >= 0]


def test_default_rule_threshold_topk_and_order():
    p = probs_with([(DOG, 0.9), (BARK, 0.5), (CAT, 0.2), (CAR, 0.05)])
    assert shown(p, threshold=0.1) == [DOG, BARK, CAT]
    assert shown(p, threshold=0.1, top_k=2) == [DOG, BARK]
    assert shown(p, threshold=0.5) == [DOG, BARK]        # >= threshold
    assert shown(p, threshold=0.95) == []
    assert shown(p, threshold=0.0, top_k=4) == [DOG, BARK, CAT, CAR]


def test_speech_music_hidden_before_the_cap_unless_shown():
    p = probs_with([(SPEECH, 0.99), (MUSIC, 0.98), (DOG, 0.5), (BARK, 0.4)])
    assert shown(p, threshold=0.1, top_k=2) == [DOG, BARK]
    assert shown(p, threshold=0.1, top_k=2, show_music_speech=True) == [SPEECH, MUSIC]
    assert shown(p, threshold=0.1, exclude=("Dog",)) == [BARK]
    assert shown(p, threshold=0.1, exclude=(L.mids[BARK], "0"), show_music_speech=True) == [MUSIC, DOG]


@pytest.mark.parametrize("count,expected", [(0, 3), (1, 3), (2, 3), (3, 3), (4, 3), (5, 4), (6, 5), (7, 5),
                                            (20, 5)])
def test_compat_count_rule(count, expected):
    # classes 200.. with decreasing probabilities; `count` of them >= threshold 0.5
    p = np.zeros((1, 527), np.float32)
    p[0, 200:230] = np.linspace(0.99, 0.01, 30)
    values = np.sort(p[0])[::-1]
    threshold = float(values[count - 1] - 1e-4) if count else 0.995
    assert (p >= threshold).sum() == count
    assert shown(p, threshold=threshold, compat=True) == list(range(200, 200 + expected))


def test_compat_silence_override_and_hidden_after_selection():
    p = probs_with([(DOG, 0.9), (SILENCE, 0.5), (BARK, 0.4)])
    assert shown(p, threshold=0.1, compat=True) == [SILENCE]
    p = probs_with([(SPEECH, 0.9), (MUSIC, 0.8), (DOG, 0.4)])
    # the original picks 3 classes, then drops Speech and Music: only Dog remains (no refill)
    assert shown(p, threshold=0.5, compat=True) == [DOG]
    assert shown(p, threshold=0.5, compat=True, show_music_speech=True)[:3] == [SPEECH, MUSIC, DOG]


def test_options_validation():
    with pytest.raises(ParameterError, match="--threshold"):
        DisplayOptions(threshold=1.5)
    with pytest.raises(ParameterError, match="--threshold"):
        DisplayOptions(threshold=-0.1)
    with pytest.raises(ParameterError, match="--top-k"):
        DisplayOptions(top_k=0)
    with pytest.raises(ParameterError, match="--exclude"):
        DisplayOptions(exclude=("Not a class",)).check()
    with pytest.raises(ParameterError, match="--smooth"):
        DisplayOptions(smooth=-1)
    opts = DisplayOptions(threshold=0.2, exclude=("Dog",), smooth=3, per_second=True)
    assert DisplayOptions.from_dict(opts.to_dict()) == opts


def test_smoothing_is_causal_moving_average(rng):
    p = rng.random((9, 527)).astype(np.float32)
    s = smooth_probs(p, 5)
    for i in range(9):
        np.testing.assert_allclose(s[i], p[max(0, i - 4):i + 1].mean(axis=0), rtol=1e-6)
    assert smooth_probs(p, 1) is not None and np.array_equal(smooth_probs(p, 0), p)


def make_result(p, hop=1.0, duration=None):
    n = p.shape[0]
    return TagResult("x.wav", np.arange(n) * hop, p, hop, 10 * hop, n * hop if duration is None else duration)


def test_cues_merge_identical_neighbours_and_skip_empty():
    p = np.zeros((6, 527), np.float32)
    p[0:3, DOG] = [0.9, 0.8, 0.7]
    p[0:3, BARK] = [0.5, 0.6, 0.9]          # same set, order changes: still one cue
    p[3, DOG] = 0.9
    p[5, CAT] = 0.3
    sel = Selection(make_result(p), DisplayOptions(threshold=0.2))
    cues = sel.cues()
    assert [(c.start, c.end, c.classes) for c in cues] == [
        (0.0, 3.0, (DOG, BARK)), (3.0, 4.0, (DOG,)), (5.0, 6.0, (CAT,))]
    assert cues[0].scores == pytest.approx((0.8, 2.0 / 3.0))
    per = Selection(make_result(p), DisplayOptions(threshold=0.2, per_second=True)).cues()
    assert len(per) == 6 and per[4].classes == () and per[0].start == pytest.approx(0.001)
    assert Selection(make_result(p), DisplayOptions(per_second=True)).text(()) == "-"


def test_events_are_per_class_runs():
    p = np.zeros((5, 527), np.float32)
    p[0:4, DOG] = 0.8
    p[1:3, BARK] = 0.6
    p[4, BARK] = 0.5
    events = Selection(make_result(p), DisplayOptions(threshold=0.2)).events()
    assert [(e.start, e.end, e.cls) for e in events] == [
        (0.0, 4.0, DOG), (1.0, 3.0, BARK), (4.0, 5.0, BARK)]
    per = Selection(make_result(p), DisplayOptions(threshold=0.2, per_second=True)).events()
    assert len(per) == 7


def test_last_step_ends_at_duration_for_short_windows():
    p = probs_with([(DOG, 0.9)], n=3)
    res = make_result(p, hop=0.3, duration=0.8)
    np.testing.assert_allclose(res.ends, [0.3, 0.6, 0.8])


def test_summary_hides_speech_music_and_reports_shares():
    p = np.zeros((4, 527), np.float32)
    p[:, SPEECH] = 0.9
    p[:, DOG] = 0.6
    p[:, BARK] = 0.2
    sel = Selection(make_result(p), DisplayOptions(top_k=2))
    (c1, s1, shown1), (c2, s2, shown2) = sel.summary()
    assert (c1, c2) == (DOG, BARK) and s1 == pytest.approx(0.6)
    # the percentage is the part of the file where the tag is shown (issue 13), not a share of a sum
    assert shown1 == pytest.approx(100.0) and shown2 == pytest.approx(100.0)
    p[2:, BARK] = 0.05                  # under the 0.1 threshold in the last two of four steps
    assert Selection(make_result(p), DisplayOptions(top_k=2)).summary()[1][2] == pytest.approx(50.0)
    text = sel.summary_text()
    assert "Dog" in text and "Speech" not in text
    assert "class" in text.splitlines()[1] and "mean p" in text and "% of the seconds" in text
    sel = Selection(make_result(p), DisplayOptions(top_k=2, show_music_speech=True))
    assert sel.summary()[0][0] == SPEECH
