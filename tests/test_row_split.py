"""Chunks that are parts of one row (src/_conv.pyx _chunk_cols): when one small row's
columns would take more than 16x the column-buffer budget (a long 1-D signal, a very
wide image), the GEMM + col2im / im2col + GEMM paths split the row into column blocks.

Small problems are forced into that regime with a tiny ``chunk_bytes``; every op, both
layouts, strides, dilations, padding and groups are checked against the float64
reference, and the split results are bitwise identical for 1, 2 and 3 threads.
"""
import numpy as np
import pytest

import cdeconv
from cdeconv import _driver, _geometry, _reference

# (n, small/big spatial, channels in, channels out, kernel, strides, dilations,
#  padding, groups); chunk_bytes is chosen so that one row needs several column blocks
CASES = [
    (1, (301,), 3, 5, (7,), (1,), (1,), "SAME", 1),
    (1, (257,), 4, 2, (5,), (2,), (1,), "VALID", 1),
    (1, (199,), 2, 3, (3,), (3,), (2,), "SAME", 1),
    (1, (220,), 4, 6, (4,), (2,), (1,), [[0, 0], [2, 1], [0, 0]], 2),
    (2, (3, 203), 3, 4, (3, 5), (2, 2), (1, 1), "SAME", 1),
    (2, (4, 150), 2, 2, (2, 3), (1, 3), (1, 2), "VALID", 1),
]
IDS = [f"{c[0]}d-{'x'.join(map(str, c[1]))}-k{'x'.join(map(str, c[4]))}"
       f"-s{'x'.join(map(str, c[5]))}-g{c[8]}" for c in CASES]
FORMATS = {1: ("NWC", "NCW"), 2: ("NHWC", "NCHW")}


def _chunk_for(geom, itemsize=4):
    """A budget a few pixels' columns wide: 16x it holds ~40 columns of one row."""
    pix = geom.groups * int(np.prod(geom.k)) * geom.cb * itemsize
    return max(1, 40 * pix // 16)


def _arrays(case, cf, rng, dtype=np.float32):
    n, sp, cin, cout, k, s, d, pad, groups = case
    fmt = FORMATS[n][cf]
    if cf and not isinstance(pad, str):      # explicit padding in the layout's order
        pad = [pad[0], pad[-1], *pad[1:-1]]
    x = rng.standard_normal((2, cin, *sp) if cf else (2, *sp, cin)).astype(dtype)
    return n, fmt, x, k, s, d, pad, groups, cin, cout


def _threads(fn):
    outs = []
    for t in (1, 2, 3):
        cdeconv.set_num_threads(t)
        outs.append(fn())
    cdeconv.set_num_threads(None)
    for o in outs[1:]:
        np.testing.assert_array_equal(o, outs[0])
    return outs[0]


@pytest.mark.parametrize("cf", [False, True], ids=["last", "first"])
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_transpose_split_rows(case, cf):
    rng = np.random.default_rng(1)
    n, fmt, x, k, s, d, pad, groups, cin, cout = _arrays(case, cf, rng)
    w = rng.standard_normal((*k, cout // groups, cin)).astype(np.float32)
    geom = _geometry.transposed_geometry(n, x, w, None, list(s), pad, fmt, list(d),
                                         groups=groups)
    chunk = _chunk_for(geom)

    def run(c):
        y = np.full(geom.shape("big"), np.nan, np.float32)
        return _driver.run(geom, x, w, y, "transpose", chunk_bytes=c, algo=0)

    got = _threads(lambda: run(chunk))
    ref = _reference.conv_transpose_nd(n, x.astype(np.float64), w.astype(np.float64),
                                       None, list(s), pad, fmt, list(d), groups)
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(got, run(None), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("cf", [False, True], ids=["last", "first"])
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_forward_and_filter_gradient_split_rows(case, cf):
    rng = np.random.default_rng(2)
    n, fmt, x, k, s, d, pad, groups, cin, cout = _arrays(case, cf, rng)
    w = rng.standard_normal((*k, cin // groups, cout)).astype(np.float32)
    geom = _geometry.forward_geometry(n, x, w, list(s), pad, fmt, list(d), groups)
    chunk = _chunk_for(geom)

    def fwd(c):
        y = np.full(geom.shape("small"), np.nan, np.float32)
        return _driver.run(geom, x, w, y, "forward", chunk_bytes=c, algo=0)

    y = _threads(lambda: fwd(chunk))
    ref = _reference.conv_nd(n, x.astype(np.float64), w.astype(np.float64), list(s), pad,
                             fmt, list(d), groups)
    np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(y, fwd(None), rtol=1e-5, atol=1e-5)

    if groups != 1:
        return                          # the filter gradient op takes groups = 1
    dy = rng.standard_normal(y.shape).astype(np.float32)
    wshape = _geometry.sizes_arg(list(w.shape), n + 2, "filter_sizes", "")
    bgeom = _geometry.forward_geometry(n, x, wshape, list(s), pad, fmt, list(d),
                                       w_name="filter_sizes")

    def bpf(c):
        dw = np.full(w.shape, np.nan, np.float32)
        return _driver.run(bgeom, x, dy, dw, "backprop_filter", chunk_bytes=c)

    dw = _threads(lambda: bpf(chunk))
    ref = _reference.conv_backprop_filter_nd(n, x.astype(np.float64), list(w.shape),
                                             dy.astype(np.float64), list(s), pad, fmt,
                                             list(d))
    np.testing.assert_allclose(dw, ref, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(dw, bpf(None), rtol=1e-4, atol=1e-4)


def test_split_rows_in_float64_match_the_reference_closely():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((1, 333, 3))
    w = rng.standard_normal((9, 4, 3))
    geom = _geometry.transposed_geometry(1, x, w, None, [2], "SAME", "NWC", None)
    y = np.empty(geom.shape("big"))
    _driver.run(geom, x, w, y, "transpose", chunk_bytes=_chunk_for(geom, 8), algo=0)
    ref = _reference.conv_transpose_nd(1, x, w, None, [2], "SAME", "NWC")
    np.testing.assert_allclose(y, ref, rtol=1e-12, atol=1e-12)
