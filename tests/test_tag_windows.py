import numpy as np
import pytest

from audiotagger.classifier import tile_to_ten
from audiotagger.errors import ParameterError
from audiotagger.tag.windows import context_windows, window_indices


def reference_window(n, i, left, right, size=10):
    """Per-second reference, written independently: nearest rows (ties to the past), then pad2Ten."""
    rows = list(range(max(0, i - left), min(n, i + right + 1)))
    if len(rows) > size:
        rows = sorted(sorted(rows, key=lambda r: (abs(r - i), r))[:size])
    return tile_to_ten(np.array(rows)[:, None], size)[:, 0]


@pytest.mark.parametrize("n", [1, 2, 5, 10, 11, 23])
@pytest.mark.parametrize("left,right", [(0, 0), (3, 1), (10, 0), (0, 10), (9, 0), (5, 5), (12, 7), (30, 30)])
def test_window_indices_match_reference(n, left, right):
    idx = window_indices(n, left, right)
    assert idx.shape == (n, 10)
    for i in range(n):
        np.testing.assert_array_equal(idx[i], reference_window(n, i, left, right), err_msg=f"second {i}")
        assert i in idx[i]


def test_original_pad2ten_examples():
    # ABC -> ABCABCABCA: second 0 of a 3-second file with left 0 and right 2.
    np.testing.assert_array_equal(window_indices(3, 0, 2)[0], [0, 1, 2, 0, 1, 2, 0, 1, 2, 0])
    # left 10, right 0: the original dropped the current second for i >= 10; we keep it (the 10 nearest).
    np.testing.assert_array_equal(window_indices(20, 10, 0)[15], np.arange(6, 16))
    # centred window: 5 before, 4 after on a tie
    np.testing.assert_array_equal(window_indices(40, 20, 20)[20], np.arange(15, 25))


def test_context_windows_gathers_rows(rng):
    emb = rng.integers(0, 256, size=(7, 128), dtype=np.uint8)
    win = context_windows(emb, 3, 1)
    assert win.shape == (7, 10, 128) and win.dtype == np.uint8
    np.testing.assert_array_equal(win[4], emb[window_indices(7, 3, 1)[4]])
    assert context_windows(emb[:0], 3, 1).shape == (0, 10, 128)


@pytest.mark.parametrize("left,right", [(-1, 0), (0, -2), (1.5, 0), (True, 0)])
def test_bad_context_is_a_parameter_error(left, right):
    with pytest.raises(ParameterError, match="--left|--right"):
        window_indices(5, left, right)
