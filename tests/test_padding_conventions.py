"""Padding translation between TensorFlow, PyTorch and ONNX (cdeconv.padding).

Each convention's meaning is written down once here, independently of the module, as
"crop the full result": full = (in-1)*s + (k-1)*d + 1 pixels, zero-extended, then
[before : before + out]. The translations must agree with it, and cdeconv run with the
translated TF arguments must produce exactly that crop."""
import doctest
import itertools

import numpy as np
import pytest

import cdeconv
from cdeconv import _reference, padding as pad

from conftest import dyadic


def _crop_oracle(x, w, s, d, before, out):
    """1-D transposed conv, NWC: the zero-extended full result cropped [before, +out]."""
    k = w.shape[0]
    full = (x.shape[1] - 1) * s + (k - 1) * d + 1
    canvas = np.zeros((x.shape[0], max(full, before + out), w.shape[1]))
    canvas[:, :full] = _reference.conv_transpose_nd(1, x, w, [full], s, "VALID",
                                                    dilations=d)
    return canvas[:, before:before + out]


CONFIGS = list(itertools.product([1, 2, 3, 5], [1, 2, 3, 4, 5], [1, 2, 3], [1, 2]))


@pytest.mark.parametrize("in_,k,s,d", CONFIGS)
def test_tf_same_valid_and_explicit(in_, k, s, d, rng):
    x = dyadic(rng, (1, in_, 2))
    w = dyadic(rng, (k, 3, 2))
    full = (in_ - 1) * s + (k - 1) * d + 1
    for mode in ("SAME", "VALID", [(1, 0)], [(0, 2)]):
        for out in cdeconv.valid_output_sizes(in_, k, s, mode, d):
            p = pad.from_tf(in_, k, s, mode, out, d)
            y = cdeconv.conv1d_transpose(x, w, [out], s, mode if isinstance(mode, str)
                                         else [[0, 0], list(mode[0]), [0, 0]],
                                         dilations=d)
            if p.before[0] + out <= full + s - 1:
                np.testing.assert_array_equal(
                    y, _crop_oracle(x, w, s, d, p.before[0], out))
            # TF -> ONNX -> back, and TF -> its own args -> back
            onnx = p.onnx()
            assert pad.from_onnx(in_, k, s, onnx["pads"], onnx["output_padding"],
                                 dilations=d) == p
            t = p.tf()
            assert pad.from_tf(in_, k, s, t["padding"], t["output_shape"], d) == p
            tor = p.torch()
            if tor is not None:
                assert pad.from_torch(in_, k, s, tor["padding"], tor["output_padding"],
                                      d) == p
            else:
                assert "crop" in p.torch_note()


@pytest.mark.parametrize("in_,k,s,d", CONFIGS)
def test_torch_to_tf_is_exact(in_, k, s, d, rng):
    x = dyadic(rng, (2, in_, 2))
    w = dyadic(rng, (k, 2, 2))
    for p_t in range(0, k):
        for op in range(0, max(s, d)):
            size = (in_ - 1) * s - 2 * p_t + d * (k - 1) + op + 1
            if size < 0:
                with pytest.raises(ValueError, match="non-negative"):
                    pad.from_torch(in_, k, s, p_t, op, d)
            if size <= 0:
                continue
            p = pad.from_torch(in_, k, s, p_t, op, d)
            try:
                t = p.tf()
            except ValueError:     # > stride-1 zeros appended: not TF-expressible
                assert op >= s
                continue
            padding = t["padding"] if isinstance(t["padding"], str) else \
                [[0, 0]] + t["padding"] + [[0, 0]]
            y = cdeconv.conv1d_transpose(x, w, t["output_shape"], s, padding, dilations=d)
            np.testing.assert_array_equal(y, _crop_oracle(x, w, s, d, p_t,
                                                          p.output_size[0]))


def test_onnx_auto_pad():
    # SAME_UPPER = TF's SAME: the odd pixel cropped at the end
    assert pad.from_onnx(3, 3, 2, auto_pad="SAME_UPPER") == pad.from_tf(3, 3, 2, "SAME")
    lower = pad.from_onnx(3, 3, 2, auto_pad="SAME_LOWER")
    assert lower.before == [1] and lower.output_size == [6] and lower.after == [0]
    assert pad.from_onnx(3, 3, 2, auto_pad="VALID").output_size == [7]
    # output_shape with NOTSET: split as SAME_UPPER (ONNX spec, ORT since PR #8769)
    assert pad.from_onnx(4, 4, 2, output_shape=[8]).before == [1]
    with pytest.raises(ValueError, match="auto_pad"):
        pad.from_onnx(3, 3, 2, auto_pad="FULL")


def test_known_cross_framework_mismatch_is_explained():
    """TF Conv2DTranspose(k=9, s=4, 'same') != PyTorch (k=9, s=4, padding=4,
    output_padding=3): the 2-pixel shift users report (ECOSYSTEM 2d)."""
    tf_same = pad.from_tf(10, 9, 4, "SAME")
    torch_guess = pad.from_torch(10, 9, 4, 4, 3)
    assert tf_same.output_size == torch_guess.output_size == [40]
    assert tf_same.before == [2] and torch_guess.before == [4]
    assert tf_same.torch() is None and "crop the spatial axes [2:42]" in \
        tf_same.torch_note()


def test_multi_axis_and_errors():
    p = pad.from_tf([3, 4], [3, 2], [2, 2], "SAME")
    assert p.output_size == [6, 8] and p.onnx()["pads"] == [0, 0, 1, 0]
    assert p.torch() is None
    with pytest.raises(ValueError, match="valid"):
        pad.from_tf(3, 3, 2, "SAME", output_size=9)
    with pytest.raises(ValueError, match="output_padding"):
        pad.from_torch(3, 3, 2, 1, 2)
    with pytest.raises(ValueError, match="pads"):
        pad.from_onnx([3, 3], 3, 2, pads=[1, 1])


def test_module_doctests():
    failures, tried = doctest.testmod(pad, verbose=False)
    assert tried > 0 and failures == 0
