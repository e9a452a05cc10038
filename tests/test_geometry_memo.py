"""The geometry memo (cdeconv._geometry.memoised): repeated calls skip re-validation, but
every bad call still raises, argument spellings that validate differently never share an
entry, and the memo stays bounded."""
import numpy as np
import pytest

import cdeconv
from cdeconv import _geometry
from cdeconv._geometry import memoised, transposed_geometry


def _geom(x, w, *args):
    return memoised(transposed_geometry, 2, x, w, *args)


def test_a_repeated_call_reuses_the_validated_geometry():
    x, w = np.ones((1, 4, 4, 3)), np.ones((3, 3, 2, 3))
    g1 = _geom(x, w, None, 2, "SAME", "NHWC", None)
    g2 = _geom(np.zeros((1, 4, 4, 3)), np.zeros((3, 3, 2, 3)), None, 2, "SAME", "NHWC",
               None)
    assert g1 is g2
    fresh = transposed_geometry(2, x, w, None, 2, "SAME", "NHWC", None)
    assert (g1.big, g1.pads, g1.shape("big")) == (fresh.big, fresh.pads, fresh.shape("big"))
    assert _geom(x, w, None, 1, "SAME", "NHWC", None) is not g1     # other strides


def test_bad_calls_raise_every_time_and_are_not_remembered():
    x, w = np.ones((1, 4, 4, 3), np.float32), np.ones((3, 3, 2, 3), np.float32)
    for _ in range(3):
        with pytest.raises(ValueError, match="output_shape"):
            cdeconv.conv2d_transpose(x, w, [1, 9, 9, 2], 2, "SAME")
    assert cdeconv.conv2d_transpose(x, w, [1, 8, 8, 2], 2, "SAME").shape == (1, 8, 8, 2)


@pytest.mark.parametrize("bad", [2.0, True, [2.0, 2]])
def test_spellings_that_validate_differently_never_share_an_entry(bad):
    x, w = np.ones((1, 4, 4, 3), np.float32), np.ones((3, 3, 2, 3), np.float32)
    cdeconv.conv2d_transpose(x, w, None, 2, "SAME")               # 2 is memoised ...
    with pytest.raises(TypeError, match="strides"):
        cdeconv.conv2d_transpose(x, w, None, bad, "SAME")         # ... these still fail


def test_unhashable_arguments_are_validated_without_the_memo():
    x, w = np.ones((1, 4, 4, 3), np.float32), np.ones((3, 3, 2, 3), np.float32)
    y = cdeconv.conv2d_transpose(x, w, np.array([1, 8, 8, 2]), np.array([2, 2]), "SAME")
    assert y.shape == (1, 8, 8, 2)


def test_the_memo_is_bounded():
    w = np.ones((1, 1, 1, 1), np.float32)
    for i in range(_geometry._MEMO_MAX + 10):
        cdeconv.conv2d_transpose(np.ones((1, 1, i + 1, 1), np.float32), w, None, 1, "SAME")
    assert 0 < len(_geometry._MEMO) <= _geometry._MEMO_MAX
