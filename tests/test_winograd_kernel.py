"""The Winograd phase kernel (src/_wino_impl.h; algo 6 in cdeconv._driver, forced here)
against the float64 NumPy reference, in every
instruction-set build this CPU can run: strides 1-4 and mixed, 2-8 tap kernels (1-3
taps per phase), every padding form, tile tails (sizes that are not a multiple of the
tile), 1-D and depth-1 3-D, every tile size it takes, thread counts, and Inf/NaN (which
it hands to GEMM + col2im, since its sums would spread them); and the dispatch rule's
edges."""
import numpy as np
import pytest

import cdeconv
from cdeconv import _conv, _reference
from cdeconv._driver import WINOGRAD

from conftest import assert_nonfinite_like_reference, run_kernel, transpose_algo

# (input channels, output channels, kernel, stride, padding)
CASES = [
    (16, 8, (4, 4), 2, "SAME"),
    (16, 8, (5, 5), 2, "SAME"),
    (8, 8, (3, 3), 1, "SAME"),
    (8, 4, (3, 3), 2, "VALID"),
    (5, 7, (2, 3), (1, 2), "SAME"),
    (4, 6, (4, 3), (2, 1), [[0, 0], [1, 2], [0, 1], [0, 0]]),
    (3, 5, (3, 3), 3, "SAME"),               # one tap per phase
    (33, 17, (4, 4), 2, "VALID"),
    (6, 4, (5, 5), 3, "SAME"),               # strides 3-4 with 2-3 taps per phase
    (8, 5, (7, 7), 4, "SAME"),
    (6, 4, (8, 8), 3, "VALID"),
]


def _close(got, x, w, s, padding, n=2, f32_tol=2e-6):
    fmt = {1: "NWC", 2: "NHWC", 3: "NDHWC"}[n]
    want = _reference.conv_transpose_nd(n, x.astype(np.float64), w.astype(np.float64),
                                        None, s, padding, fmt)
    tol = f32_tol if x.dtype == np.float32 else 1e-13
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=0, atol=tol * max(np.abs(want).max(), 1))


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"cin{c[0]}-cout{c[1]}-k{c[2]}-s{c[3]}")
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_winograd_matches_the_reference(case, dtype, isa, rng):
    cin, cout, k, s, padding = case
    for batch, hw in [(2, (5, 7)), (1, (1, 9)), (1, (6, 1)), (3, (13, 11)), (1, (4, 4))]:
        x = rng.standard_normal((batch,) + hw + (cin,)).astype(dtype)
        w = rng.standard_normal(k + (cout, cin)).astype(dtype)
        _close(run_kernel(WINOGRAD, 2, x, w, s, padding), x, w, s, padding)


@pytest.mark.parametrize("r,m", [(2, 1), (2, 2), (2, 4), (2, 5), (3, 1), (3, 3), (3, 4),
                                 (4, 2), (4, 3)])
def test_winograd_every_tile_size(r, m, rng):
    before = _conv.winograd_tile(r)
    _conv.set_winograd_tile(r, m)
    try:
        for k, s in [(2 * r, 2), (2 * r - 1, 2), (r, 1)]:
            x = rng.standard_normal((2, 9, 10, 12)).astype(np.float32)
            w = rng.standard_normal((k, k, 6, 12)).astype(np.float32)
            # tiles of 5-6 inputs use the points +-2 and 1/2: larger rounding errors
            _close(run_kernel(WINOGRAD, 2, x, w, s, "SAME"), x, w, s, "SAME",
                   f32_tol=2e-6 if m + r - 1 <= 4 else 3e-5)
    finally:
        _conv.set_winograd_tile(r, before)


def test_winograd_1d_and_depth_one_3d(rng):
    x = rng.standard_normal((2, 11, 19))
    w = rng.standard_normal((5, 21, 19))
    _close(run_kernel(WINOGRAD, 1, x, w, 2, "SAME"), x, w, 2, "SAME", n=1)
    x = rng.standard_normal((2, 3, 4, 5, 18)).astype(np.float32)
    w = rng.standard_normal((1, 3, 3, 20, 18)).astype(np.float32)
    _close(run_kernel(WINOGRAD, 3, x, w, [1, 2, 2], "SAME"), x, w, [1, 2, 2], "SAME", n=3)


def test_winograd_bits_do_not_depend_on_threads(rng):
    # enough tiles for several tasks (a task is 8-512 tiles)
    x = rng.standard_normal((4, 30, 30, 16)).astype(np.float32)
    w = rng.standard_normal((4, 4, 16, 16)).astype(np.float32)
    before = cdeconv.get_num_threads()
    try:
        outs = []
        for n in (1, 2, 3):
            cdeconv.set_num_threads(n)
            outs.append(run_kernel(WINOGRAD, 2, x, w, 2, "SAME"))
    finally:
        cdeconv.set_num_threads(before)
    for o in outs[1:]:
        np.testing.assert_array_equal(o, outs[0])
    _close(outs[0], x, w, 2, "SAME")


def test_winograd_bits_do_not_depend_on_the_block_size(rng):
    # 2 * 11 * 12 tiles of 3 x 3 outputs; 37 input channels and 3 phases' worth of
    # 23 output channels, so neither fills the micro-kernel's rows or panels evenly
    x = rng.standard_normal((2, 31, 34, 37)).astype(np.float32)
    w = rng.standard_normal((4, 4, 23, 37)).astype(np.float32)
    before = _conv.set_winograd_block(1)           # the fewest tiles a task takes (8)
    try:
        outs = [run_kernel(WINOGRAD, 2, x, w, 2, "SAME")]
        for nbytes in (100_000, 1 << 20, 1 << 30):   # ..., the most (512: one task)
            _conv.set_winograd_block(nbytes)
            outs.append(run_kernel(WINOGRAD, 2, x, w, 2, "SAME"))
    finally:
        _conv.set_winograd_block(before)
    for o in outs[1:]:
        np.testing.assert_array_equal(o, outs[0])
    _close(outs[0], x, w, 2, "SAME")
    with pytest.raises(ValueError, match="nbytes"):
        _conv.set_winograd_block(0)


def test_winograd_hands_nan_and_inf_to_gemm_col2im():
    x = np.ones((1, 3, 3, 20), np.float32)
    w = np.ones((3, 3, 20, 20), np.float32)
    x[0, 1, 1, 19] = np.nan
    w[0, 0, 17, 0] = np.inf
    assert_nonfinite_like_reference(run_kernel(WINOGRAD, 2, x, w, 2, "SAME"), x, w)
    # an Inf input alone: only the outputs its taps reach are non-finite
    x = np.ones((1, 6, 6, 4), np.float32)
    x[0, 2, 3, 1] = np.inf
    w = np.ones((4, 4, 3, 4), np.float32)
    got = run_kernel(WINOGRAD, 2, x, w, 2, "SAME")
    want = _reference.conv2d_transpose(x.astype(np.float64), w.astype(np.float64), None,
                                       2, "SAME")
    np.testing.assert_array_equal(np.isinf(got), np.isinf(want))
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    assert np.isfinite(got).any() and np.isinf(got).any()


@pytest.mark.parametrize("why,x_shape,w_shape,s,d", [
    ("dilation", (1, 5, 5, 4), (3, 3, 4, 4), 2, 2),
    ("5 taps per phase", (1, 5, 5, 4), (9, 9, 4, 4), 2, 1),
    ("depth kernel", (1, 2, 5, 5, 4), (2, 3, 3, 4, 4), 1, 1),
])
def test_winograd_refuses_what_it_cannot_take(why, x_shape, w_shape, s, d):
    n = len(x_shape) - 2
    x = np.ones(x_shape, np.float32)
    w = np.ones(w_shape, np.float32)
    with pytest.raises(ValueError, match="Winograd"):
        run_kernel(WINOGRAD, n, x, w, s, "SAME", d)
    with pytest.raises(ValueError, match="Winograd"):
        run_kernel(WINOGRAD, 2, np.ones((1, 5, 5, 4), np.float32),
                   np.ones((3, 3, 2, 4), np.float32), 2, "SAME", groups=2)


def test_winograd_tile_hook_checks_its_arguments():
    for r, m in [(1, 2), (5, 1), (3, -1), (3, 5)]:
        with pytest.raises(ValueError):
            _conv.set_winograd_tile(r, m)
    assert _conv.winograd_tile(2) >= 1 and _conv.winograd_tile(3) >= 1
    assert _conv.winograd_tile(9) == 0
    before = _conv.winograd_tile(3)
    _conv.set_winograd_tile(3, 0)           # 0: such phases are not taken
    try:
        with pytest.raises(ValueError, match="Winograd"):
            run_kernel(WINOGRAD, 2, np.ones((1, 5, 5, 4), np.float32),
                       np.ones((3, 3, 4, 4), np.float32), 1, "SAME")
    finally:
        _conv.set_winograd_tile(3, before)


@pytest.mark.parametrize("x_shape,w_shape,s,want", [
    ((1, 56, 56, 64), (3, 3, 64, 64), 1, WINOGRAD),    # stride-1 3x3 (784 tiles)
    ((16, 56, 56, 64), (3, 3, 64, 64), 1, WINOGRAD),
    ((16, 16, 16, 128), (4, 4, 64, 128), 2, WINOGRAD),  # DCGAN PyTorch g3 b16
    ((16, 8, 8, 256), (4, 4, 128, 256), 2, WINOGRAD),   # ... g2 b16 (144 tiles)
    ((4, 16, 16, 128), (6, 6, 64, 128), 2, WINOGRAD),   # 6x6 s2: 3 taps per phase
    ((1, 24, 24, 64), (3, 3, 64, 64), 1, WINOGRAD),     # 144 tiles
    # the few-tiles rule (81-127 tiles): a 1.9x saving on the outputs the tiles hold,
    # >= 128 columns (>= 64 from 96 tiles), a transformed filter of <= 2M elements
    ((1, 22, 22, 64), (3, 3, 64, 64), 1, WINOGRAD),     # 121 tiles, 64 columns
    ((1, 18, 18, 64), (3, 3, 64, 64), 1, 3),            # 81 tiles, 64 columns: igemm
    ((1, 26, 26, 64), (4, 4, 32, 64), 2, WINOGRAD),     # 81 tiles, 128 columns
    ((1, 28, 28, 128), (4, 4, 64, 128), 2, WINOGRAD),   # 100 tiles, 87 % of them outputs
    ((1, 24, 24, 256), (4, 4, 128, 256), 2, 3),         # 81 tiles, 79 %: 2.25 -> 1.78x
    ((1, 22, 22, 512), (3, 3, 512, 512), 1, 0),         # a 4M-element transform: GEMM
    ((1, 16, 16, 128), (3, 3, 128, 128), 1, 3),         # 64 tiles
    ((1, 16, 16, 128), (4, 4, 64, 128), 2, 3),          # DCGAN PyTorch g3 b1: 36 tiles
    ((16, 16, 16, 256), (5, 5, 128, 256), 2, WINOGRAD),  # 5x5 s2 saves 1.56x: 1296 tiles
    ((2, 16, 16, 256), (5, 5, 128, 256), 2, 3),         # ... 162 tiles: igemm
    ((1, 48, 48, 64), (7, 7, 32, 64), 4, WINOGRAD),     # 7x7 s4 saves 1.72x: 289 tiles
    ((4, 32, 32, 64), (3, 3, 64, 64), 2, 3),            # 3x3 s2 saves 1.27x only
    ((1, 56, 56, 32), (3, 3, 32, 32), 1, 3),            # 32 output columns
    ((1, 64, 64, 16), (4, 4, 32, 16), 2, 1),            # 16 input channels: direct
    ((1, 64, 64, 24), (4, 4, 32, 24), 2, 3),            # 24 input channels
    ((64, 4, 4, 512), (4, 4, 256, 512), 2, 3),          # a 32 MiB filter transform
])
def test_winograd_dispatch_rule(x_shape, w_shape, s, want):
    assert transpose_algo(x_shape, w_shape, s) == want
    if want == WINOGRAD:          # and NCHW never (the kernel is channels-last)
        nchw = (x_shape[0], x_shape[3]) + x_shape[1:3]
        assert transpose_algo(nchw, w_shape, s, fmt="NCHW") == 0
