"""Bad input gets a clear ValueError/TypeError naming the argument; odd-but-valid input
(non-contiguous, read-only, byte-swapped, NaN/Inf, empty) gets the right answer."""
import numpy as np
import pytest

import cdeconv
from cdeconv import _reference

X = np.ones((1, 4, 4, 3), np.float32)
W = np.ones((3, 3, 2, 3), np.float32)         # (kh, kw, out_c, in_c)
WF = np.ones((3, 3, 3, 2), np.float32)        # forward (kh, kw, in_c, out_c)


def ct(**kw):
    args = dict(input=X, filters=W, output_shape=[1, 8, 8, 2], strides=2, padding="SAME")
    args.update(kw)
    return cdeconv.conv2d_transpose(**args)


@pytest.mark.parametrize("kwargs,exc,words", [
    # ranks
    (dict(input=np.ones((4, 4, 3), np.float32)), ValueError, ["input", "4-D"]),
    (dict(filters=np.ones((3, 3, 2), np.float32)), ValueError, ["filters", "4-D"]),
    # channels
    (dict(filters=np.ones((3, 3, 2, 5), np.float32)), ValueError, ["input channels"]),
    (dict(output_shape=[1, 8, 8, 3]), ValueError, ["channels"]),
    (dict(input=np.ones((1, 4, 4, 0), np.float32), filters=np.ones((3, 3, 2, 0),
                                                                    np.float32)),
     ValueError, ["channel"]),
    (dict(filters=np.ones((0, 3, 2, 3), np.float32)), ValueError, ["kernel"]),
    # output shapes
    (dict(output_shape=[1, 9, 8, 2]), ValueError, ["valid output sizes", "7x7"]),
    (dict(output_shape=[2, 8, 8, 2]), ValueError, ["batch"]),
    (dict(output_shape=[1, 8, 8]), ValueError, ["output_shape", "4 entries"]),
    (dict(output_shape=[1, -8, 8, 2]), ValueError, ["output_shape", ">= 0"]),
    (dict(output_shape=[1, 8.0, 8, 2]), TypeError, ["output_shape", "integers"]),
    (dict(output_shape=[1, True, 8, 2]), TypeError, ["output_shape"]),
    (dict(output_shape="1,8,8,2"), TypeError, ["output_shape"]),
    (dict(output_shape=[1, 2**40, 8, 2]), ValueError, ["valid output sizes"]),
    (dict(output_padding=1), ValueError, ["output_shape or output_padding"]),
    # strides / dilations
    (dict(strides=0), ValueError, ["strides", ">= 1"]),
    (dict(strides=-2), ValueError, ["strides"]),
    (dict(strides=[2, 2, 2]), ValueError, ["strides", "1, 2 or 4"]),
    (dict(strides=[2, 2, 2, 2]), ValueError, ["strides", "batch and channel"]),
    (dict(strides=[2.0, 2]), TypeError, ["strides"]),
    (dict(strides=True), TypeError, ["strides"]),
    (dict(strides=None), ValueError, ["strides"]),
    (dict(dilations=0), ValueError, ["dilations"]),
    (dict(dilations=[1, 2**31, 1, 1]), ValueError, ["dilations"]),
    # padding / data_format
    (dict(padding="FULL"), ValueError, ["padding"]),
    (dict(padding=[[0, 0], [1, 1], [1, 1]]), ValueError, ["padding"]),
    (dict(padding=[[1, 1], [1, 1], [1, 1], [0, 0]]), ValueError, ["batch and channel"]),
    (dict(padding=[[0, 0], [-1, 1], [1, 1], [0, 0]]), ValueError, ["padding", ">= 0"]),
    (dict(padding=[[0, 0], [1.5, 1], [1, 1], [0, 0]]), TypeError, ["padding"]),
    (dict(data_format="NWHC"), ValueError, ["data_format"]),
    (dict(data_format=None), ValueError, ["data_format"]),
    # dtypes
    (dict(input=np.ones((1, 4, 4, 3), np.int32)), TypeError, ["input", "int32"]),
    (dict(input=np.ones((1, 4, 4, 3), bool)), TypeError, ["input", "bool"]),
    (dict(input=np.ones((1, 4, 4, 3), np.complex64)), TypeError, ["input"]),
    (dict(input=np.ones((1, 4, 4, 3), np.float16)), TypeError, ["float16"]),
    (dict(input=np.ones((1, 4, 4, 3), object)), TypeError, ["input"]),
    (dict(filters=np.ones((3, 3, 2, 3), np.float64)), TypeError, ["same dtype"]),
    (dict(input=None), TypeError, ["input"]),
    (dict(input=[[1, 2], [3]]), TypeError, ["input"]),
    # groups
    (dict(groups=2), ValueError, ["groups"]),
    (dict(groups=0), ValueError, ["groups"]),
])
def test_conv2d_transpose_rejects(kwargs, exc, words):
    with pytest.raises(exc) as err:
        ct(**kwargs)
    for word in words:
        assert word in str(err.value), str(err.value)


@pytest.mark.parametrize("kwargs,exc,words", [
    (dict(filters=np.ones((3, 3, 2, 2), np.float32)), ValueError, ["divide"]),
    (dict(filters=np.ones((3, 3, 1, 4), np.float32), groups=2), ValueError, ["groups"]),
    (dict(filters=np.ones((3, 3, 1, 4), np.float32)), ValueError, ["divisible"]),
    (dict(input=np.ones((1, 1, 1, 3), np.float32), padding="VALID"), ValueError,
     ["smaller than the dilated kernel"]),
    (dict(strides=[1, 1, 1]), ValueError, ["strides"]),
])
def test_conv2d_rejects(kwargs, exc, words):
    args = dict(input=X, filters=WF, strides=1, padding="SAME")
    args.update(kwargs)
    with pytest.raises(exc) as err:
        cdeconv.conv2d(**args)
    for word in words:
        assert word in str(err.value), str(err.value)


def test_backprop_input_names_its_own_arguments():
    with pytest.raises(ValueError, match="input_sizes"):
        cdeconv.conv2d_backprop_input([1, 9, 9, 3], WF, np.ones((1, 4, 4, 2), np.float32),
                                      [1, 2, 2, 1], "SAME")
    with pytest.raises(TypeError, match="out_backprop"):
        cdeconv.conv2d_backprop_input([1, 8, 8, 3], WF, np.ones((1, 4, 4, 2), np.int64),
                                      [1, 2, 2, 1], "SAME")


def test_huge_consistent_output_is_refused_before_allocation():
    # a 1x1 input with an absurd dilated kernel: consistent, but ~2**63 bytes
    x = np.ones((1, 1, 1, 1), np.float32)
    w = np.ones((2, 2, 1, 1), np.float32)
    with pytest.raises((ValueError, MemoryError)):
        cdeconv.conv2d_transpose(x, w, None, 1, "VALID", dilations=2**30)


def test_output_shape_forms_are_equivalent(rng):
    x = rng.normal(size=(2, 3, 3, 3)).astype(np.float32)
    w = rng.normal(size=(3, 3, 2, 3)).astype(np.float32)
    ref = cdeconv.conv2d_transpose(x, w, [2, 6, 6, 2], 2)
    for shape in ([-1, 6, 6, 2], [None, 6, 6, 2], [6, 6], (6, 6), np.array([2, 6, 6, 2]),
                  None, [np.int64(6), np.int32(6)]):
        np.testing.assert_array_equal(cdeconv.conv2d_transpose(x, w, shape, 2), ref)
    for strides in (2, [2], [2, 2], [1, 2, 2, 1], (1, 2, 2, 1), np.array([2, 2])):
        np.testing.assert_array_equal(cdeconv.conv2d_transpose(x, w, [6, 6], strides),
                                      ref)
    np.testing.assert_array_equal(cdeconv.conv2d_transpose(x, w, None, 2, "same"), ref)


def test_unusual_arrays_are_accepted(rng):
    base = rng.normal(size=(2, 5, 5, 3))
    w = rng.normal(size=(3, 3, 2, 3))
    want = cdeconv.conv2d_transpose(base, w, strides=2)
    views = {
        "non-contiguous": np.repeat(base, 2, axis=2)[:, :, ::2],
        "fortran": np.asfortranarray(base),
        "byte-swapped": base.astype(base.dtype.newbyteorder(">")),
        "list": base.tolist(),
    }
    ro = base.copy()
    ro.setflags(write=False)
    views["read-only"] = ro
    for name, v in views.items():
        np.testing.assert_array_equal(cdeconv.conv2d_transpose(v, w, strides=2), want,
                                      err_msg=name)
    wro = w.copy()
    wro.setflags(write=False)
    np.testing.assert_array_equal(cdeconv.conv2d_transpose(base, wro, strides=2), want)


def test_out_argument(rng):
    x = rng.normal(size=(1, 4, 4, 3)).astype(np.float32)
    w = rng.normal(size=(3, 3, 2, 3)).astype(np.float32)
    want = cdeconv.conv2d_transpose(x, w, strides=2)
    out = np.full((1, 8, 8, 2), np.nan, np.float32)
    res = cdeconv.conv2d_transpose(x, w, strides=2, out=out)
    assert res is out
    np.testing.assert_array_equal(out, want)
    f = cdeconv.conv2d(want, w.transpose(0, 1, 2, 3), 2, "SAME")
    outf = np.full(f.shape, np.nan, np.float32)
    assert cdeconv.conv2d(want, w, 2, "SAME", out=outf) is outf
    np.testing.assert_array_equal(outf, f)
    with pytest.raises(ValueError, match="shape"):
        cdeconv.conv2d_transpose(x, w, strides=2, out=np.empty((1, 8, 8, 3), np.float32))
    with pytest.raises(TypeError, match="dtype"):
        cdeconv.conv2d_transpose(x, w, strides=2, out=np.empty((1, 8, 8, 2)))
    with pytest.raises(ValueError, match="C-contiguous"):
        cdeconv.conv2d_transpose(x, w, strides=2,
                                 out=np.empty((1, 8, 8, 4), np.float32)[..., ::2])
    ro = np.empty((1, 8, 8, 2), np.float32)
    ro.setflags(write=False)
    with pytest.raises(ValueError, match="read-only"):
        cdeconv.conv2d_transpose(x, w, strides=2, out=ro)
    with pytest.raises(TypeError, match="out"):
        cdeconv.conv2d_transpose(x, w, strides=2, out=[0.0])


def test_out_must_not_alias_the_input(rng):
    x = rng.normal(size=(1, 4, 4, 2))
    w = rng.normal(size=(1, 1, 2, 2))
    with pytest.raises(ValueError, match="overlap"):
        cdeconv.conv2d_transpose(x, w, [4, 4], 1, "VALID", out=x)


def test_empty_batch_and_empty_spatial(rng):
    w = rng.normal(size=(3, 3, 2, 3))
    y = cdeconv.conv2d_transpose(np.ones((0, 4, 4, 3)), w, [-1, 8, 8, 2], 2)
    assert y.shape == (0, 8, 8, 2)
    # an input with no pixels: SAME gives an empty output, never garbage
    y = cdeconv.conv2d_transpose(np.ones((2, 0, 4, 3)), w, None, 2)
    assert y.shape == (2, 0, 8, 2)
    # VALID with a zero-size input where TF's size rule allows a non-empty output:
    # the output is all zeros (sums of nothing), not uninitialised memory
    sizes = cdeconv.valid_output_sizes([0, 4], (3, 3), 2, "VALID")
    oh = sizes[0][-1]
    out = np.full((2, oh, sizes[1][0], 2), np.nan)
    y = cdeconv.conv2d_transpose(np.ones((2, 0, 4, 3)), w, [oh, sizes[1][0]], 2, "VALID",
                                 out=out)
    assert oh > 0 and np.all(y == 0)


def test_nan_and_inf_propagate_like_the_reference(rng):
    x = rng.normal(size=(1, 5, 5, 2))
    x[0, 2, 3, 1] = np.nan
    x[0, 0, 0, 0] = np.inf
    x[0, 4, 1, 0] = -np.inf
    w = rng.normal(size=(3, 3, 2, 2))
    for dtype in (np.float32, np.float64):
        got = cdeconv.conv2d_transpose(x.astype(dtype), w.astype(dtype), strides=2)
        want = _reference.conv2d_transpose(x.astype(dtype), w.astype(dtype), None, 2)
        np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
        np.testing.assert_array_equal(np.isinf(got), np.isinf(want))
        assert np.isnan(got).any() and np.isinf(got).any()
        f = cdeconv.conv2d(x.astype(dtype), w.astype(dtype), 1, "SAME")
        fr = _reference.conv2d(x.astype(dtype), w.astype(dtype), 1, "SAME")
        np.testing.assert_array_equal(np.isnan(f), np.isnan(fr))


def test_valid_output_sizes_helper():
    assert list(cdeconv.valid_output_sizes(3, 3, 2, "SAME")) == [5, 6]
    assert list(cdeconv.valid_output_sizes(3, 3, 2, "VALID")) == [7, 8]
    assert [list(r) for r in cdeconv.valid_output_sizes([4, 4], [2, 2], 2, "SAME")] == \
        [[7, 8], [7, 8]]
    assert list(cdeconv.valid_output_sizes(3, 3, 1, "VALID", dilations=2)) == [7]
    assert list(cdeconv.valid_output_sizes(3, 3, 2, [(1, 1)])) == [5, 6]
    with pytest.raises(ValueError, match="strides"):
        cdeconv.valid_output_sizes(3, 3, 0)


# --- regressions for the bugs the fuzzing/property run found (see docs/reliability) ---

def test_unpool_into_an_empty_output_rejects_the_switches():
    with pytest.raises(ValueError, match="argmax"):
        cdeconv.max_unpool(np.ones((1, 2, 2, 1), np.float32), np.full((1, 2, 2, 1), -5),
                           [1, 0, 3, 1])


@pytest.mark.parametrize("n", [1, 2, 3])
def test_forward_conv_of_an_empty_input_propagates_a_nonfinite_filter(n):
    x = np.ones((1,) + (0,) + (3,) * (n - 1) + (2,))
    w = np.ones((2,) * n + (2, 3))
    w[(0,) * n + (0, 0)] = np.nan
    fn = {1: cdeconv.conv1d, 2: cdeconv.conv2d, 3: cdeconv.conv3d}[n]
    got = fn(x, w, 1, [[1, 1]] * n)
    want = _reference.conv_nd(n, x, w, 1, [[1, 1]] * n)
    assert np.isnan(want).any() and got.shape == want.shape
    np.testing.assert_array_equal(got, want)


def test_outputs_larger_than_memory_are_refused_before_allocating():
    x = np.ones((1, 1, 1, 1), np.float32)
    w = np.ones((1, 1, 1024, 1), np.float32)
    with pytest.raises(MemoryError, match="output of shape .* bytes"):
        cdeconv.conv2d_transpose(x, w, None, [46340, 46340])        # ~8 TiB


def test_huge_views_are_refused_before_copying():
    x = np.broadcast_to(np.float32(0), (2**20, 2**20, 1, 3))         # 12 TiB logical
    with pytest.raises(MemoryError, match="copying input"):
        cdeconv.conv2d(x, np.ones((3, 3, 3, 2), np.float32), 1, "SAME")


def test_zero_d_output_shape_names_the_argument():
    with pytest.raises(TypeError, match="output_shape"):
        cdeconv.conv2d_transpose(np.ones((1, 3, 3, 1)), np.ones((3, 3, 1, 1)),
                                 np.array(6), 2)


def test_backprop_input_rank_errors_name_its_own_arguments():
    w = np.ones((2, 2, 2, 4), np.float32)
    dy = np.ones((1, 3, 3, 4), np.float32)
    with pytest.raises(ValueError, match="out_backprop"):
        cdeconv.conv2d_backprop_input([1, 6, 6, 2], w, dy[None], 2, "SAME")
    with pytest.raises(ValueError, match="filter "):
        cdeconv.conv2d_backprop_input([1, 6, 6, 2], w[None], dy, 2, "SAME")


def test_zero_batch_with_huge_images_is_an_empty_result():
    y = cdeconv.conv2d_transpose(np.ones((0, 1, 1, 1), np.float32),
                                 np.ones((1, 1, 1, 1), np.float32), None, 2**16)
    assert y.shape == (0, 2**16, 2**16, 1)
