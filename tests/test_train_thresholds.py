"""Per-class thresholds chosen on validation data (``audiotagger.train.thresholds``)."""

from __future__ import annotations

import numpy as np

from audiotagger.train.thresholds import f1_thresholds, precision_recall


def test_each_class_gets_its_f1_optimal_threshold():
    rng = np.random.default_rng(0)
    n = 400
    y = np.zeros((n, 3), bool)
    y[:100, 0] = y[:40, 1] = y[:3, 2] = True          # class 2: too few positives for its own threshold
    probs = rng.uniform(0, 0.195, (n, 3)).astype(np.float32)
    probs[:100, 0] = rng.uniform(0.6, 0.9, 100)        # class 0 separates anywhere in (0.2, 0.6]
    probs[:40, 1] = rng.uniform(0.25, 0.35, 40)        # class 1 separates in [0.2, 0.25]
    probs[:3, 2] = 0.5
    probs[3:50, 2] = 0.4             # its own optimum would be 0.41; it gets the global one
    t, g = f1_thresholds(probs, y)
    assert t.dtype == np.float32 and t.shape == (3,)
    assert t[0] == t[1] == np.float32(0.2)              # ties go to the lowest perfect grid point
    assert t[2] == g == np.float32(0.2)
    perfect = precision_recall(probs[:, :2], y[:, :2], t[:2])
    assert perfect["precision"] == perfect["recall"] == perfect["f1"] == 1.0
    assert perfect["tags_per_clip"] == y[:, :2].sum() / n
    low = precision_recall(probs, y, 0.1)                 # one low threshold shows noise too
    assert low["recall"] == 1.0 and low["precision"] < 0.9 and low["macro_f1"] < 1.0


def test_precision_recall_counts():
    y = np.array([[1, 0], [0, 1], [1, 1]], bool)
    probs = np.array([[0.9, 0.6], [0.2, 0.1], [0.4, 0.8]], np.float32)
    r = precision_recall(probs, y, np.array([0.5, 0.5]))
    # shown: (0,0) tp, (0,1) fp, (2,1) tp; missed: (1,1), (2,0)
    assert r["precision"] == 2 / 3 and r["recall"] == 2 / 4 and abs(r["f1"] - 4 / 7) < 1e-12
    assert abs(r["macro_f1"] - np.mean([2 / 3, 2 / 4])) < 1e-12 and r["tags_per_clip"] == 1.0
