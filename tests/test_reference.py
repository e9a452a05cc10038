"""cdeconv against the slow NumPy reference: a readable grid, then hypothesis.

Dyadic data (see conftest) makes every comparison exact. Each case runs with the default
column-buffer budget and with one-row chunks (the ``chunking`` fixture)."""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cdeconv
from cdeconv import _reference

from conftest import DTYPES, dyadic, tol

# (kernel, strides, dilations, padding): even and non-square kernels, stride smaller /
# equal / larger than the kernel, dilation, every padding form.
GEOMETRIES = [
    ((1, 1), (1, 1), (1, 1), "VALID"),
    ((1, 1), (2, 2), (1, 1), "SAME"),
    ((2, 2), (2, 2), (1, 1), "SAME"),
    ((3, 3), (1, 1), (1, 1), "SAME"),
    ((3, 3), (2, 2), (1, 1), "SAME"),
    ((3, 3), (2, 2), (1, 1), "VALID"),
    ((4, 4), (2, 2), (1, 1), "SAME"),
    ((5, 5), (2, 2), (1, 1), "SAME"),
    ((2, 3), (1, 2), (1, 1), "VALID"),
    ((3, 1), (3, 1), (1, 1), "SAME"),
    ((2, 2), (3, 3), (1, 1), "VALID"),        # stride > kernel: gaps
    ((3, 3), (1, 1), (2, 2), "SAME"),
    ((3, 2), (2, 1), (2, 3), "VALID"),        # strides and dilations > 1 together
    ((3, 3), (2, 2), (1, 1), [[1, 2], [0, 1]]),
    ((4, 3), (3, 2), (1, 2), [[3, 0], [2, 2]]),
]


def _ids(g):
    k, s, d, p = g
    return f"k{k[0]}x{k[1]}-s{s[0]}x{s[1]}-d{d[0]}x{d[1]}-{p if isinstance(p, str) else 'explicit'}"


def _tf_padding(p, data_format):
    if isinstance(p, str):
        return p
    return [[0, 0], [0, 0]] + p if data_format == "NCHW" else [[0, 0]] + p + [[0, 0]]


@pytest.mark.parametrize("geometry", GEOMETRIES, ids=[_ids(g) for g in GEOMETRIES])
@pytest.mark.parametrize("data_format", ["NHWC", "NCHW"])
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_transpose_grid(geometry, data_format, dtype, chunking, rng):
    k, s, d, p = geometry
    padding = _tf_padding(p, data_format)
    for batch, (ih, iw) in [(1, (5, 7)), (3, (4, 3)), (0, (3, 3)), (2, (1, 1))]:
        cin, cout = 3, 2
        shape = (batch, cin, ih, iw) if data_format == "NCHW" else (batch, ih, iw, cin)
        x = dyadic(rng, shape, dtype)
        w = dyadic(rng, k + (cout, cin), dtype)
        sizes = cdeconv.valid_output_sizes([ih, iw], k, s, p, d)
        for oh, ow in [(sizes[0][0], sizes[1][-1]), (sizes[0][-1], sizes[1][0])]:
            args = dict(output_shape=[oh, ow], strides=s, padding=padding,
                        data_format=data_format, dilations=d)
            got = cdeconv.conv2d_transpose(x, w, **args)
            want = _reference.conv2d_transpose(x, w, **args)
            assert got.dtype == dtype and got.shape == want.shape
            np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("geometry", GEOMETRIES, ids=[_ids(g) for g in GEOMETRIES])
@pytest.mark.parametrize("data_format", ["NHWC", "NCHW"])
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_forward_grid(geometry, data_format, dtype, chunking, rng):
    k, s, d, p = geometry
    padding = _tf_padding(p, data_format)
    for batch, (ih, iw) in [(1, (9, 7)), (2, (6, 11)), (0, (5, 5))]:
        cin, cout = 3, 4
        shape = (batch, cin, ih, iw) if data_format == "NCHW" else (batch, ih, iw, cin)
        x = dyadic(rng, shape, dtype)
        w = dyadic(rng, k + (cin, cout), dtype)
        args = dict(strides=s, padding=padding, data_format=data_format, dilations=d)
        got = cdeconv.conv2d(x, w, **args)
        np.testing.assert_array_equal(got, _reference.conv2d(x, w, **args))


@pytest.mark.parametrize("groups", [2, 3, 6])
@pytest.mark.parametrize("data_format", ["NHWC", "NCHW"])
def test_groups(groups, data_format, chunking, rng):
    """Grouped and depthwise (groups == channels) convolutions, both directions."""
    cin, cout_g = 6, 2
    shape = (2, cin, 5, 6) if data_format == "NCHW" else (2, 5, 6, cin)
    x = dyadic(rng, shape)
    w = dyadic(rng, (3, 3, cout_g, cin))
    args = dict(strides=2, padding="SAME", data_format=data_format)
    got = cdeconv.conv2d_transpose(x, w, groups=groups, **args)
    np.testing.assert_array_equal(
        got, _reference.conv2d_transpose(x, w, groups=groups, **args))
    wf = dyadic(rng, (3, 3, cin // groups, 2 * groups))     # TF's grouped conv2d
    np.testing.assert_array_equal(cdeconv.conv2d(x, wf, **args),
                                  _reference.conv2d(x, wf, **args))


def test_chunk_spanning_images_whose_first_rows_reach_nothing(monkeypatch, rng):
    """Regression (found by hypothesis): a chunk that starts on the last small row of
    one image, whose window reaches no output row, and goes on into the next image."""
    from cdeconv import _driver
    monkeypatch.setattr(_driver, "CHUNK_BYTES", 200)      # two small rows per chunk
    x = dyadic(rng, (2, 3, 2, 1))
    w = dyadic(rng, (2, 3, 1, 1))
    args = dict(output_shape=[2, 4], strides=1,
                padding=[[0, 0], [0, 2], [0, 0], [0, 0]])
    np.testing.assert_array_equal(cdeconv.conv2d_transpose(x, w, **args),
                                  _reference.conv2d_transpose(x, w, **args))


@pytest.mark.parametrize("algo", [0, 1, 2], ids=["gemm-col2im", "direct", "dot"])
def test_every_transposed_kernel_on_every_shape(algo, rng):
    """Force each transposed kernel (whatever the dispatcher would pick) on shapes that
    cover groups, padding forms, dilation, odd sizes, batch 0 and empty inputs."""
    from cdeconv import _driver, _geometry
    cases = 0
    for k, s, d, p in GEOMETRIES:
        for groups, cin, cout_g in [(1, 1, 32), (1, 2, 5), (2, 4, 3), (1, 3, 1)]:
            for batch, (ih, iw) in [(2, (4, 5)), (0, (3, 3)), (1, (0, 3))]:
                x = dyadic(rng, (batch, ih, iw, cin))
                w = dyadic(rng, k + (cout_g, cin))
                padding = _tf_padding(p, "NHWC")
                sizes = cdeconv.valid_output_sizes([ih, iw], k, s, p, d)
                if any(len(r) == 0 for r in sizes):
                    continue
                out = [sizes[0][-1], sizes[1][0]]
                geom = _geometry.transposed_geometry(2, x, w, out, s, padding, "NHWC", d,
                                                     groups)
                y = np.full(geom.shape("big"), np.nan)
                _driver.run(geom, x, w, y, "transpose", algo=algo)
                np.testing.assert_array_equal(
                    y, _reference.conv2d_transpose(x, w, out, s, padding, "NHWC", d,
                                                   groups=groups))
                cases += 1
    assert cases > 100


def test_dispatch_rule_picks_phase_rows_or_direct_for_few_input_channels():
    from cdeconv import _driver, _geometry
    mnist = _geometry.transposed_geometry(2, np.ones((1, 28, 28, 1)),
                                          np.ones((3, 3, 32, 1)), None, 2, "SAME",
                                          "NHWC", None)
    assert _driver.choose_transpose_algo(mnist) == 1
    wide = _geometry.transposed_geometry(2, np.ones((1, 3, 300, 1)),
                                         np.ones((3, 3, 256, 1)), None, 2, "SAME",
                                         "NHWC", None)
    assert _driver.choose_transpose_algo(wide) == 1
    for x, w, fmt in [((1, 8, 8, 64), (3, 3, 32, 64), "NHWC"),
                      ((1, 1, 28, 28), (3, 3, 32, 1), "NCHW"),
                      ((1, 8, 8, 1), (3, 3, 8, 1), "NHWC")]:
        g = _geometry.transposed_geometry(2, np.ones(x), np.ones(w), None, 2, "SAME",
                                          fmt, None)
        assert _driver.choose_transpose_algo(g) != 1


def test_reference_agrees_with_the_articles_algorithm(rng):
    """The two oracles are derived differently (scatter per tap vs zero insertion and
    a 180-degree-rotated correlation); they must agree."""
    for k, s, p in [((3, 3), 2, "SAME"), ((4, 4), 2, "SAME"), ((5, 3), 3, "VALID"),
                    ((2, 2), 2, "VALID"), ((3, 3), 1, [[0, 0], [1, 2], [2, 0], [0, 0]])]:
        x = dyadic(rng, (2, 4, 5, 3))
        w = dyadic(rng, k + (2, 3))
        for o in (None,):
            a = _reference.conv2d_transpose(x, w, o, s, p)
            b = _reference.conv2d_transpose_zero_insertion(x, w, a.shape, s, p)
            np.testing.assert_array_equal(a, b)


def test_random_normal_tolerance(rng):
    """Realistic data (not exactly representable): float32 within a K*eps bound."""
    x = rng.normal(size=(2, 9, 9, 64)).astype(np.float32)
    w = rng.normal(size=(5, 5, 32, 64)).astype(np.float32) / 8
    got = cdeconv.conv2d_transpose(x, w, strides=2)
    want = _reference.conv2d_transpose(x.astype(np.float64), w.astype(np.float64),
                                       None, 2)
    scale = np.abs(want).max()
    np.testing.assert_allclose(got, want, rtol=0,
                               atol=tol(np.float32, 64 * 25) * scale)


@st.composite
def transposed_cases(draw):
    data_format = draw(st.sampled_from(["NHWC", "NCHW"]))
    k = tuple(draw(st.integers(1, 5)) for _ in range(2))
    s = tuple(draw(st.integers(1, 4)) for _ in range(2))
    d = tuple(draw(st.sampled_from([1, 1, 2, 3])) for _ in range(2))
    mode = draw(st.sampled_from(["SAME", "VALID", "EXPLICIT"]))
    pads = [[draw(st.integers(0, 4)), draw(st.integers(0, 4))] for _ in range(2)]
    groups = draw(st.sampled_from([1, 1, 2, 3]))
    cin = groups * draw(st.integers(1, 3))
    cout_g = draw(st.integers(1, 3))
    batch = draw(st.integers(0, 3))
    ih, iw = draw(st.integers(0, 7)), draw(st.integers(1, 7))
    padding = _tf_padding(pads, data_format) if mode == "EXPLICIT" else mode
    sizes = cdeconv.valid_output_sizes([ih, iw], k, s, pads if mode == "EXPLICIT"
                                       else mode, d)
    if any(len(r) == 0 for r in sizes):
        out = None
    else:
        out = [draw(st.sampled_from(list(r))) for r in sizes]
    dtype = draw(st.sampled_from(DTYPES))
    chunk = draw(st.sampled_from([1, 200, 1 << 23]))
    return data_format, k, s, d, padding, groups, cin, cout_g, batch, (ih, iw), out, \
        dtype, chunk


@settings(max_examples=250, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(transposed_cases(), st.integers(0, 2**32 - 1))
def test_hypothesis_transpose_and_forward(monkeypatch, case, seed):
    from cdeconv import _driver
    (data_format, k, s, d, padding, groups, cin, cout_g, batch, (ih, iw), out, dtype,
     chunk) = case
    rng = np.random.default_rng(seed)
    monkeypatch.setattr(_driver, "CHUNK_BYTES", chunk)
    shape = (batch, cin, ih, iw) if data_format == "NCHW" else (batch, ih, iw, cin)
    x = dyadic(rng, shape, dtype)
    w = dyadic(rng, k + (cout_g, cin), dtype)
    args = dict(strides=s, padding=padding, data_format=data_format, dilations=d)
    if out is None:
        with pytest.raises(ValueError):
            cdeconv.conv2d_transpose(x, w, [1, 1], groups=groups, **args)
        return
    y = cdeconv.conv2d_transpose(x, w, out, groups=groups, **args)
    np.testing.assert_array_equal(
        y, _reference.conv2d_transpose(x, w, out, groups=groups, **args))
    # the forward convolution of the transposed output's shape maps back to x's shape
    if y.size and groups == 1:
        wf = dyadic(rng, k + (cout_g, cin), dtype)
        f = cdeconv.conv2d(y, wf, **args)
        assert f.shape == x.shape
        np.testing.assert_array_equal(f, _reference.conv2d(y, wf, **args))
