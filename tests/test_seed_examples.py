"""The worked examples of the source articles (shared/SEED_EXAMPLES.md): exact numbers."""
import numpy as np
import pytest

import cdeconv
from cdeconv import _reference

# --- example 1: forward convolution (003_*, section 6) ---
X1 = np.array([[[1, 0, 1, 2, 1], [0, 2, 1, 0, 1], [1, 1, 0, 2, 0], [2, 2, 1, 1, 0],
                [2, 0, 1, 2, 0]],
               [[2, 0, 2, 1, 1], [0, 1, 0, 0, 2], [1, 0, 0, 2, 1], [1, 1, 2, 1, 0],
                [1, 0, 1, 1, 1]]], float)                       # [c, h, w]
K1 = np.array([[[1, 0, 1], [-1, 1, 0], [0, -1, 0]],
               [[-1, 0, 1], [0, 0, 1], [1, 1, 1]]], float)      # [in_c, k, k]
Y1 = np.array([[2, 0, 2, 4, 0], [1, 4, 4, 3, 5], [4, 3, 5, 9, -1], [3, 4, 6, 2, 1],
               [5, 3, 5, 1, -2]], float)

# --- example 2: transposed convolution, stride 2, 3x3 -> 6x6 (003_*, section 7) ---
X2 = np.array([[[1, 0, 1], [0, 2, 1], [1, 1, 0]], [[2, 0, 2], [0, 1, 0], [1, 0, 0]],
               [[1, 1, 1], [2, 2, 0], [1, 1, 1]], [[1, 1, 2], [1, 0, 1], [0, 2, 2]]],
              float)                                            # [c=4, h, w]
DW = np.array([
    [[[1, 0, 1], [-1, 1, 0], [0, -1, 0]], [[-1, 0, 1], [0, 0, 1], [1, 1, 1]],
     [[0, 1, 1], [2, 0, 1], [1, 2, 1]], [[1, 1, 1], [0, 2, 1], [1, 0, 1]]],
    [[[1, 0, 2], [-2, 1, 1], [1, -1, 0]], [[-1, 0, 1], [-1, 2, 1], [1, 1, 1]],
     [[0, 0, 0], [2, 2, 1], [1, -1, 1]], [[2, 1, 1], [0, -1, 1], [1, 1, 1]]]],
    float)                                                      # [out_c, in_c, k, k]
Y2 = np.array([
    [[4, 3, 6, 2, 7, 3], [4, 3, 3, 2, 7, 5], [8, 6, 8, 5, 11, 2], [3, 2, 7, 2, 3, 3],
     [5, 5, 11, 3, 9, 3], [2, 1, 4, 5, 4, 4]],
    [[4, 1, 7, 0, 7, 2], [5, 6, 0, 1, 8, 5], [8, 0, 8, -2, 14, 2], [3, 3, 9, 8, 1, 0],
     [3, 0, 13, 0, 11, 2], [3, 5, 3, 1, 3, 0]]], float)         # [out_c, 6, 6]


def _seed2_tf_filter():
    """The article's dw rotated by 180 degrees, to TF's [kh, kw, out_c, in_c]."""
    return np.rot90(DW, 2, axes=(2, 3)).transpose(2, 3, 0, 1)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("data_format", ["NHWC", "NCHW"])
def test_seed1_forward_conv(dtype, data_format):
    x = X1.transpose(1, 2, 0)[None].astype(dtype)
    w = K1.transpose(1, 2, 0)[..., None].astype(dtype)         # [3, 3, 2, 1]
    if data_format == "NCHW":
        x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
    y = cdeconv.conv2d(x, w, strides=1, padding="SAME", data_format=data_format)
    assert y.dtype == dtype
    got = y[0, 0] if data_format == "NCHW" else y[0, :, :, 0]
    np.testing.assert_array_equal(got, Y1)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("data_format", ["NHWC", "NCHW"])
def test_seed2_transposed_conv_stride2(dtype, data_format):
    x = X2.transpose(1, 2, 0)[None].astype(dtype)               # [1, 3, 3, 4]
    f = _seed2_tf_filter().astype(dtype)                        # [3, 3, 2, 4]
    shape = [1, 6, 6, 2]
    if data_format == "NCHW":
        x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
        shape = [1, 2, 6, 6]
    y = cdeconv.conv2d_transpose(x, f, output_shape=shape, strides=2, padding="SAME",
                                 data_format=data_format)
    assert y.dtype == dtype and list(y.shape) == shape
    got = y[0] if data_format == "NCHW" else y[0].transpose(2, 0, 1)
    np.testing.assert_array_equal(got, Y2)


def test_seed2_articles_algorithm_agrees():
    """The article's own method (zero insertion + stride-1 correlation) gives Y2 too."""
    x = X2.transpose(1, 2, 0)[None]
    y = _reference.conv2d_transpose_zero_insertion(x, _seed2_tf_filter(), [1, 6, 6, 2],
                                                   2, "SAME")
    np.testing.assert_array_equal(y[0].transpose(2, 0, 1), Y2)


def test_seed2_as_backprop_input():
    """conv2d_backprop_input is the same computation seen as a gradient."""
    x = X2.transpose(1, 2, 0)[None]
    y = cdeconv.conv2d_backprop_input([1, 6, 6, 2], _seed2_tf_filter(), x,
                                      strides=[1, 2, 2, 1], padding="SAME")
    np.testing.assert_array_equal(y[0].transpose(2, 0, 1), Y2)


def test_seed3_inconsistent_backprop_input_rejected_with_valid_sizes():
    """000_*: input_sizes [1,4,4,1] with SAME stride 2 gives a 2x2 forward output, not
    the 3x3 out_backprop: TF rejects it; so do we, saying which sizes would fit."""
    with pytest.raises(ValueError) as err:
        cdeconv.conv2d_backprop_input([1, 4, 4, 1], np.ones((2, 2, 1, 1)),
                                      np.ones((1, 3, 3, 1)), strides=[1, 2, 2, 1],
                                      padding="SAME")
    msg = str(err.value)
    assert "input_sizes" in msg and "2x2" in msg and "3x3" in msg
    assert "5x5, 5x6, 6x5 or 6x6" in msg
    # ... and each size it lists is accepted
    for h in (5, 6):
        for w in (5, 6):
            out = cdeconv.conv2d_backprop_input([1, h, w, 1], np.ones((2, 2, 1, 1)),
                                                np.ones((1, 3, 3, 1)), [1, 2, 2, 1],
                                                "SAME")
            assert out.shape == (1, h, w, 1)


def test_seed3_shapes_from_the_articles():
    """001_*: [1,4,4,1] * [3,3,2,1], strides 2, SAME -> [1,8,8,2]; 002_*: the Keras
    examples as ops (28x28x1 -> 56x56x32; 224x224x3 -> 448x448x3), shapes inferred."""
    rng = np.random.default_rng(0)
    y = cdeconv.conv2d_transpose(rng.normal(size=(1, 4, 4, 1)),
                                 rng.normal(size=(3, 3, 2, 1)), [1, 8, 8, 2], 2, "SAME")
    assert y.shape == (1, 8, 8, 2)
    x = rng.normal(size=(2, 28, 28, 1)).astype(np.float32)
    y = cdeconv.conv2d_transpose(x, np.ones((3, 3, 32, 1), np.float32), strides=2)
    assert y.shape == (2, 56, 56, 32) and y.dtype == np.float32
    img = rng.normal(size=(1, 224, 224, 3))
    w = rng.normal(size=(3, 3, 3, 3))
    y = cdeconv.conv2d_transpose(img, w, strides=2, padding="SAME")
    assert y.shape == (1, 448, 448, 3)
    np.testing.assert_allclose(y, _reference.conv2d_transpose(img, w, None, 2, "SAME"),
                               rtol=0, atol=1e-12)
