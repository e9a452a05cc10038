"""The convolution family on the one N-d core: 1-D and 3-D ops, the filter gradient.

Against the float64 reference (exact on dyadic data), the adjoint identities and finite
differences, for every rank, layout and group count."""
import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import cdeconv
from cdeconv import _reference, nn

from conftest import DTYPES, dyadic

LAYOUT = {1: ("NWC", "NCW"), 2: ("NHWC", "NCHW"), 3: ("NDHWC", "NCDHW")}
TRANSPOSE = {1: cdeconv.conv1d_transpose, 2: cdeconv.conv2d_transpose,
             3: cdeconv.conv3d_transpose}
FORWARD = {1: cdeconv.conv1d, 2: cdeconv.conv2d, 3: cdeconv.conv3d}


def _shape(batch, spatial, c, cf):
    return (batch, c) + tuple(spatial) if cf else (batch,) + tuple(spatial) + (c,)


def _pad(pairs, cf):
    return [[0, 0], [0, 0]] + pairs if cf else [[0, 0]] + pairs + [[0, 0]]


@st.composite
def nd_cases(draw):
    n = draw(st.integers(1, 3))
    cf = draw(st.booleans())
    k = tuple(draw(st.integers(1, 4 if n < 3 else 3)) for _ in range(n))
    s = tuple(draw(st.integers(1, 3)) for _ in range(n))
    d = tuple(draw(st.sampled_from([1, 1, 2])) for _ in range(n))
    mode = draw(st.sampled_from(["SAME", "VALID", "EXPLICIT"]))
    pairs = [[draw(st.integers(0, 3)), draw(st.integers(0, 3))] for _ in range(n)]
    groups = draw(st.sampled_from([1, 1, 2]))
    cin = groups * draw(st.integers(1, 2))
    cout_g = draw(st.integers(1, 3))
    batch = draw(st.integers(0, 2))
    spatial = tuple(draw(st.integers(1, 6 if n < 3 else 4)) for _ in range(n))
    sizes = cdeconv.valid_output_sizes(list(spatial), k, s,
                                       pairs if mode == "EXPLICIT" else mode, d)
    assume(all(len(r) for r in sizes))
    out = [draw(st.sampled_from(list(r))) for r in sizes]
    padding = _pad(pairs, cf) if mode == "EXPLICIT" else mode
    return dict(n=n, cf=cf, k=k, s=s, d=d, padding=padding, groups=groups, cin=cin,
                cout_g=cout_g, batch=batch, spatial=spatial, out=out,
                dtype=draw(st.sampled_from(DTYPES)),
                chunk=draw(st.sampled_from([1, 300, 1 << 23])))


@settings(max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(nd_cases(), st.integers(0, 2**32 - 1))
def test_hypothesis_all_ranks(monkeypatch, case, seed):
    from cdeconv import _driver
    monkeypatch.setattr(_driver, "CHUNK_BYTES", case["chunk"])
    rng = np.random.default_rng(seed)
    n, cf, dtype = case["n"], case["cf"], case["dtype"]
    fmt = LAYOUT[n][cf]
    x = dyadic(rng, _shape(case["batch"], case["spatial"], case["cin"], cf), dtype)
    w = dyadic(rng, case["k"] + (case["cout_g"], case["cin"]), dtype)
    args = dict(strides=case["s"], padding=case["padding"], data_format=fmt,
                dilations=case["d"])
    y = TRANSPOSE[n](x, w, case["out"], groups=case["groups"], **args)
    np.testing.assert_array_equal(
        y, _reference.conv_transpose_nd(n, x, w, case["out"], groups=case["groups"],
                                        **args))
    if y.size == 0:
        return
    # forward of the big side (TF's grouped filter: in_c // groups, out_c)
    G = case["groups"]
    cbig = G * case["cout_g"]
    wf = dyadic(rng, case["k"] + (case["cout_g"], 2 * G), dtype)
    fwd_args = dict(args)
    strides = fwd_args.pop("strides")
    f = FORWARD[n](y, wf, strides, **fwd_args) if n != 1 else \
        cdeconv.conv1d(y, wf, strides, **fwd_args)
    np.testing.assert_array_equal(
        f, _reference.conv_nd(n, y, wf, strides=strides, **fwd_args))
    # the filter gradient of that forward convolution
    dy = dyadic(rng, f.shape, dtype)
    dw = nn._backprop_filter_nd(n, y, wf.shape, dy, strides, fwd_args["padding"], fmt,
                                case["d"])
    np.testing.assert_array_equal(
        dw, _reference.conv_backprop_filter_nd(n, y, wf.shape, dy, strides,
                                               fwd_args["padding"], fmt, case["d"]))
    assert cbig % G == 0


@pytest.mark.parametrize("n", [1, 2, 3])
@pytest.mark.parametrize("cf", [False, True], ids=["last", "first"])
@pytest.mark.parametrize("groups", [1, 2])
def test_adjoint_identities_all_ranks(n, cf, groups, rng):
    """<conv(x, w), y> == <x, conv_transpose(y, w)> == <w, backprop_filter(x, y)>."""
    fmt = LAYOUT[n][cf]
    spatial = {1: (11,), 2: (7, 8), 3: (5, 4, 6)}[n]
    k = {1: (4,), 2: (3, 2), 3: (3, 2, 3)}[n]
    s = {1: (3,), 2: (2, 1), 3: (2, 1, 2)}[n]
    x = rng.normal(size=_shape(2, spatial, 4, cf))
    w = rng.normal(size=k + (4 // groups, 6))
    f = FORWARD[n](x, w, s, "SAME", fmt)
    y = rng.normal(size=f.shape)
    tx = TRANSPOSE[n](y, w, x.shape, s, "SAME", fmt, groups=groups)
    dw = nn._backprop_filter_nd(n, x, w.shape, y, s, "SAME", fmt, None)
    scale = np.abs(f).sum() * np.abs(y).max() + 1
    assert abs(np.vdot(f, y) - np.vdot(x, tx)) <= 1e-10 * scale
    assert abs(np.vdot(f, y) - np.vdot(w, dw)) <= 1e-10 * scale


@pytest.mark.parametrize("depth_pad", [[1, 0], [1, 1], [0, 1], [2, 0]])
@pytest.mark.parametrize("channels", [(4, 3), (1, 2), (9, 24)], ids=["4-3", "1-2", "9-24"])
def test_one_plane_conv3d_with_depth_padding(depth_pad, channels, rng):
    """A conv3d of one depth plane, 1-deep kernel and depth stride 2 with one plane of
    padding before it reads only the padding: its forward and transposed results and
    filter gradient are zeros. The 2-D kernels (tap rows, planar forward / transposed /
    filter gradient) that take one-plane 3-D layers as 2-D ones once gave the 2-D
    result there (tests/test_fuzz_properties.py found it); with the padding after the
    plane only, the 2-D result is the right one and they may take it."""
    cin, cout = channels
    pads = [[0, 0], depth_pad, [1, 1], [0, 2], [0, 0]]
    x = dyadic(rng, (2, 1, 6, 7, cin), np.float64)
    w = dyadic(rng, (1, 3, 3, cin, cout), np.float64)
    f = cdeconv.conv3d(x, w, [2, 1, 1], pads)
    np.testing.assert_array_equal(f, _reference.conv_nd(3, x, w, [2, 1, 1], pads, "NDHWC"))
    y = dyadic(rng, f.shape, np.float64)
    for dt in (np.float32, np.float64):
        xt, wt, yt = x.astype(dt), w.astype(dt), y.astype(dt)
        # TF's transposed filter layout [kernel..., out, in] is the forward's [.., in, out]
        tx = cdeconv.conv3d_transpose(yt, wt, xt.shape, [2, 1, 1], pads)
        np.testing.assert_array_equal(
            tx, _reference.conv_transpose_nd(3, yt, wt, xt.shape, [2, 1, 1], pads, "NDHWC"))
        dw = nn._backprop_filter_nd(3, xt, w.shape, yt, [2, 1, 1], pads, "NDHWC", None)
        np.testing.assert_array_equal(
            dw, _reference.conv_backprop_filter_nd(3, xt, w.shape, yt, [2, 1, 1], pads,
                                                   "NDHWC"))
    if depth_pad in ([1, 0], [1, 1]):      # every output plane reads padding
        assert not f.any() and not tx.any() and not dw.any()


@pytest.mark.parametrize("data_format", ["NHWC", "NCHW"])
@pytest.mark.parametrize("padding", ["SAME", "VALID", [[1, 0], [2, 1]]])
def test_backprop_filter_is_the_finite_difference_gradient(data_format, padding, rng):
    cf = data_format == "NCHW"
    pad = _pad(padding, cf) if not isinstance(padding, str) else padding
    x = rng.normal(size=_shape(2, (6, 5), 3, cf))
    w = rng.normal(size=(3, 2, 3, 2))
    y = rng.normal(size=cdeconv.conv2d(x, w, 2, pad, data_format).shape)
    grad = cdeconv.conv2d_backprop_filter(x, w.shape, y, [1, 2, 2, 1] if not cf else
                                          [1, 1, 2, 2], pad, data_format)
    h = 1e-6
    for idx in [(0, 0, 0, 0), (2, 1, 2, 1), (1, 0, 1, 0), (2, 0, 0, 1)]:
        e = np.zeros_like(w)
        e[idx] = h
        fd = (np.vdot(cdeconv.conv2d(x, w + e, 2, pad, data_format), y)
              - np.vdot(cdeconv.conv2d(x, w - e, 2, pad, data_format), y)) / (2 * h)
        assert abs(fd - grad[idx]) < 1e-6 * max(1.0, abs(fd))


@pytest.mark.parametrize("data_format", ["NHWC", "NCHW"])
def test_backprop_filter_grid(data_format, chunking, rng):
    cf = data_format == "NCHW"
    for k, s, d, p in [((3, 3), 1, 1, "SAME"), ((5, 5), 2, 1, "SAME"),
                       ((2, 3), (1, 2), 1, "VALID"), ((3, 3), 1, 2, "SAME"),
                       ((1, 1), 1, 1, "VALID"), ((4, 4), 2, 1, _pad([[1, 2], [0, 1]], cf))]:
        for groups in (1, 3):
            x = dyadic(rng, _shape(2, (7, 6), 6, cf))
            fshape = k + (6 // groups, 3 * groups)
            dy_shape = cdeconv.conv2d(x, np.zeros(fshape), s, p, data_format, d).shape
            dy = dyadic(rng, dy_shape)
            got = cdeconv.conv2d_backprop_filter(x, fshape, dy, s, p, data_format, d)
            np.testing.assert_array_equal(
                got, _reference.conv2d_backprop_filter(x, fshape, dy, s, p, data_format,
                                                       d))


def test_backprop_filter_empty_gives_zeros_not_garbage():
    x = np.ones((0, 5, 5, 3))
    dy = np.ones((0, 5, 5, 4))
    out = np.full((3, 3, 3, 4), np.nan)
    got = cdeconv.conv2d_backprop_filter(x, [3, 3, 3, 4], dy, 1, "SAME", out=out)
    assert got is out and np.all(got == 0)
    got = cdeconv.conv2d_backprop_filter(np.ones((2, 0, 5, 3)), [3, 3, 3, 4],
                                         np.ones((2, 0, 5, 4)), 1, "SAME")
    assert got.shape == (3, 3, 3, 4) and np.all(got == 0)


@pytest.mark.parametrize("kwargs,exc,words", [
    (dict(filter_sizes=[3, 3, 3]), ValueError, ["filter_sizes", "4 entries"]),
    (dict(filter_sizes=[3, 3, 3, 4.0]), TypeError, ["filter_sizes"]),
    (dict(filter_sizes=[3, 3, 3, -4]), ValueError, ["filter_sizes", ">= 0"]),
    (dict(filter_sizes=[3, 3, 2, 4]), ValueError, ["divide"]),
    (dict(filter_sizes=[0, 3, 3, 4]), ValueError, ["kernel"]),
    (dict(filter_sizes="3,3,3,4"), TypeError, ["filter_sizes"]),
    (dict(out_backprop=np.ones((1, 4, 4, 4))), ValueError, ["out_backprop", "[1, 5, 5, 4]"]),
    (dict(out_backprop=np.ones((1, 5, 5, 4), np.float32)), TypeError, ["same dtype"]),
    (dict(strides=[1, 1, 1, 2]), ValueError, ["strides"]),
])
def test_backprop_filter_rejects(kwargs, exc, words):
    args = dict(input=np.ones((1, 5, 5, 3)), filter_sizes=[3, 3, 3, 4],
                out_backprop=np.ones((1, 5, 5, 4)), strides=1, padding="SAME")
    args.update(kwargs)
    with pytest.raises(exc) as err:
        cdeconv.conv2d_backprop_filter(**args)
    for word in words:
        assert word in str(err.value), str(err.value)


@pytest.mark.parametrize("n,bad_shape,words", [
    (1, (1, 4, 4, 2), ["input", "3-D"]),
    (3, (1, 4, 4, 2), ["input", "5-D"]),
])
def test_rank_errors(n, bad_shape, words):
    w = np.ones((2,) * n + (2, 2))
    with pytest.raises(ValueError) as err:
        TRANSPOSE[n](np.ones(bad_shape), w, None, 1)
    for word in words:
        assert word in str(err.value)


def test_conv1d_uses_tf_argument_name_stride(rng):
    x = rng.normal(size=(2, 9, 3))
    w = rng.normal(size=(3, 3, 4))
    np.testing.assert_allclose(cdeconv.conv1d(x, w, stride=2, padding="SAME"),
                               _reference.conv_nd(1, x, w, 2, "SAME"), atol=1e-12)
    with pytest.raises(ValueError, match="stride"):
        cdeconv.conv1d(x, w, stride=0, padding="SAME")


@pytest.mark.parametrize("n", [1, 2, 3])
def test_output_padding(n, rng):
    """ONNX/PyTorch output_padding: added to the inferred (VALID) size."""
    spatial = (3,) * n
    x = rng.normal(size=(1,) + spatial + (2,))
    w = rng.normal(size=(3,) * n + (2, 2))
    op = TRANSPOSE[n](x, w, None, 2, "VALID", output_padding=1)
    assert op.shape[1:-1] == (8,) * n
    np.testing.assert_allclose(op, TRANSPOSE[n](x, w, [8] * n, 2, "VALID"), atol=0)
    with pytest.raises(ValueError, match="output_padding"):
        TRANSPOSE[n](x, w, None, 2, "VALID", output_padding=2)
