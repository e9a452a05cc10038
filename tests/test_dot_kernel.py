"""The dot kernel (src/_dot.h; algo 2 in cdeconv._driver) against the float64 NumPy
reference, in every instruction-set build this CPU can run (baseline, AVX2, AVX-512),
on shapes chosen to hit the vector-lane tails (input channels around multiples of 4, 8
and 16), every register block (1-8 columns x 1-4 output channels), groups, dilation,
every padding form, 1-D and 3-D, and the dispatch rule that routes real layers to it
(the kernel is forced here, so shapes outside the rule are covered too)."""
import numpy as np
import pytest

import cdeconv
from cdeconv import _conv, _driver, _geometry, _reference

from conftest import (ISAS, assert_nonfinite_like_reference, dyadic, run_kernel,
                      transpose_algo as _algo)


def _run_dot(n, x, w, s, padding, d=None, groups=1):
    return run_kernel(2, n, x, w, s, padding, d, groups)


# (input channels, output channels per group, kernel, stride, dilation, padding, groups)
CASES = [
    (1, 1, (3, 3), 2, 1, "SAME", 1),
    (3, 3, (3, 3), 2, 1, "SAME", 1),
    (7, 2, (4, 4), 2, 1, "SAME", 1),
    (8, 4, (5, 5), 2, 1, "VALID", 1),
    (15, 5, (4, 4), 2, 1, "SAME", 1),       # 4 + 1 channel blocks
    (16, 1, (9, 9), 2, 1, "SAME", 1),       # 8-column blocks, FSRCNN-like
    (17, 3, (3, 3), 1, 1, "SAME", 1),
    (33, 9, (5, 5), 3, 2, "VALID", 1),      # stride 3, dilation 2
    (56, 1, (9, 9), 2, 1, "SAME", 1),
    (40, 6, (3, 2), (2, 1), (1, 2), [[0, 0], [1, 2], [0, 1], [0, 0]], 1),
    (24, 4, (2, 2), 2, 1, "SAME", 2),       # groups
    (20, 2, (3, 3), 2, 1, "SAME", 4),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"cin{c[0]}-cout{c[1]}-k{c[2]}-g{c[6]}")
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_dot_kernel_matches_the_reference(case, dtype, isa, rng):
    cin, cout_g, k, s, d, padding, groups = case
    for batch, hw in [(2, (5, 7)), (1, (1, 9)), (1, (6, 1))]:
        x = dyadic(rng, (batch,) + hw + (cin,), dtype)
        w = dyadic(rng, k + (cout_g, cin), dtype)      # TF layout: all input channels
        got = _run_dot(2, x, w, s, padding, d, groups)
        want = _reference.conv2d_transpose(x, w, None, s, padding, "NHWC", d,
                                           groups=groups)
        # dyadic data: every partial sum is exact, so the kernel's order does not matter
        np.testing.assert_array_equal(got, want, err_msg=f"{isa}, batch {batch}, {hw}")


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_dot_kernel_random_data_close_to_float64(dtype, isa):
    rng = np.random.default_rng(11)
    x = rng.standard_normal((1, 4, 6, 300)).astype(dtype)
    w = rng.standard_normal((5, 5, 7, 300)).astype(dtype)
    got = _run_dot(2, x, w, 2, "SAME")
    want = _reference.conv2d_transpose(x.astype(np.float64), w.astype(np.float64), None,
                                       2, "SAME", "NHWC")
    tol = 1e-4 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol * np.abs(want).max())


def test_dot_kernel_1d_and_3d(isa, rng):
    x = dyadic(rng, (2, 11, 19))
    w = dyadic(rng, (5, 3, 19))
    np.testing.assert_array_equal(_run_dot(1, x, w, 2, "SAME"),
                                  cdeconv.conv1d_transpose(x, w, None, 2, "SAME"))
    x = dyadic(rng, (1, 3, 4, 5, 18))
    w = dyadic(rng, (2, 3, 3, 5, 18))
    np.testing.assert_array_equal(_run_dot(3, x, w, [1, 2, 2], "SAME"),
                                  _reference.conv_transpose_nd(3, x, w, None, [1, 2, 2], "SAME",
                                                            "NDHWC"))


def test_dot_kernel_propagates_nan_and_inf(isa):
    x = np.ones((1, 3, 3, 20), np.float32)
    w = np.ones((3, 3, 2, 20), np.float32)
    x[0, 1, 1, 19] = np.nan            # in the masked tail of a 16-lane vector
    w[0, 0, 1, 0] = np.inf
    got = _run_dot(2, x, w, 2, "SAME")
    assert_nonfinite_like_reference(got, x, w)


def test_dot_kernel_empty_inputs_give_zeros():
    x = np.ones((2, 0, 3, 20), np.float32)
    w = np.ones((3, 3, 1, 20), np.float32)
    # VALID: an empty input row maps to output heights 0..2 (windows that hang off)
    geom = _geometry.transposed_geometry(2, x, w, [2, 7], 2, "VALID", "NHWC", None)
    assert geom.shape("big") == (2, 2, 7, 1)
    y = np.full(geom.shape("big"), np.nan, np.float32)
    _driver.run(geom, x, w, y, "transpose", algo=2)
    assert (y == 0).all()


def test_dispatch_rules_route_the_measured_layers():
    # heads with 4-8 input pixels and large filters (16-256 pixels: pixel lanes)
    assert _algo((1, 2, 2, 512), (4, 4, 512, 512)) == 2
    assert _algo((1, 2, 4, 512), (4, 4, 256, 512)) == 2
    assert _algo((2, 2, 2, 512), (4, 4, 256, 512)) == 2
    assert _algo((1, 4, 4, 1024), (5, 5, 512, 1024)) == 4      # DCGAN TF g1: lanes
    # FSRCNN x2 (one output channel): scatter rows
    assert _algo((1, 240, 320, 56), (9, 9, 1, 56)) == 7
    assert _algo((16, 240, 320, 56), (9, 9, 1, 56)) == 7
    # where the GEMM path measured faster
    assert _algo((1, 1, 1, 100), (4, 4, 512, 100), 1, "VALID") == 0    # one 1x1 input
    assert _algo((1, 8, 8, 128), (5, 5, 3, 128)) == 0          # 3 output channels, 64 pixels
    assert _algo((1, 8, 8, 64), (3, 3, 1, 64)) == 0            # 1 output channel, 64 pixels
    assert _algo((1, 2, 2, 64), (4, 4, 256, 64)) == 0          # 64 input channels
    assert _algo((1, 56, 4, 4), (9, 9, 1, 56), fmt="NCHW") == 0
    # direct rows: few input channels into >= 32, and U-Net's 2x2 stride-2 layers from
    # 256 input pixels; phase rows below 32 output channels
    assert _algo((1, 28, 28, 1), (3, 3, 32, 1)) == 1          # MNIST
    assert _algo((1, 3, 300, 1), (3, 3, 256, 1)) == 1
    assert _algo((1, 32, 32, 16), (4, 4, 64, 16)) == 1
    assert _algo((1, 32, 32, 32), (3, 3, 64, 32)) == 3        # deeper: igemm
    assert _algo((1, 32, 32, 32), (4, 4, 64, 32)) == 6        # ... Winograd's 121 tiles
    assert _algo((1, 128, 128, 64), (2, 2, 32, 64)) == 1      # U-Net up4
    assert _algo((1, 32, 32, 256), (2, 2, 128, 256)) == 1     # U-Net up2
    assert _algo((1, 16, 16, 512), (2, 2, 256, 512)) == 1     # U-Net up1 b1: 256 pixels
    assert _algo((1, 8, 16, 512), (2, 2, 256, 512)) == 4      # 128 pixels: lanes
    assert _algo((16, 16, 16, 512), (2, 2, 256, 512)) == 1
    assert _algo((1, 28, 28, 1), (3, 3, 8, 1)) == 5
    # 16-31 output channels from 1-4 inputs where the register path holds a phase's
    # filter rows: direct
    assert _algo((1, 28, 28, 1), (3, 3, 16, 1)) == 1
    assert _algo((4, 28, 28, 3), (3, 3, 16, 3)) == 1
    assert _algo((1, 28, 28, 1), (3, 3, 24, 1)) == 1
    assert _algo((1, 28, 28, 3), (3, 3, 24, 3)) == 5          # 4 taps x 3 x 2 vectors: rows
    assert _algo((1, 32, 32, 2), (3, 3, 16, 2), 1) == 5       # 9 taps x 2: rows
    assert _algo((1, 28, 28, 5), (3, 3, 16, 5)) == 5          # 5 inputs: rows
    assert _algo((1, 28, 28, 1), (3, 3, 15, 1)) == 5          # 15 outputs: rows


def test_isa_is_reported():
    assert _conv.dot_isa() in ISAS
    assert cdeconv.show_config("dicts")["simd"]["dot_kernel"] == _conv.dot_isa()
    with pytest.raises(ValueError, match="name"):
        _conv.cap_dot_isa("sse9")


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_unpacked_column_gemm_matches_blas_shapes(dtype, isa):
    """C = A @ B^T for <= 32 rows and >= 128 deep runs on the dot micro-kernel (not
    BLAS) inside the tiled GEMM: every row/column remainder against float64."""
    from cdeconv._threads import blas_single_thread
    rng = np.random.default_rng(5)
    for m, n, k in [(2, 3, 128), (5, 7, 130), (16, 100, 1024), (32, 37, 200),
                    (31, 4099, 129)]:
        a = rng.standard_normal((m, k)).astype(dtype)
        b = rng.standard_normal((n, k)).astype(dtype)
        c = np.full((m, n), np.nan, dtype)
        with blas_single_thread:
            _conv._gemm_memview(a, b, c, False, True, 2)
        want = a.astype(np.float64) @ b.astype(np.float64).T
        tol = 1e-5 if dtype == np.float32 else 1e-13
        np.testing.assert_allclose(c, want, rtol=tol, atol=tol * np.abs(want).max())


def test_few_pixel_layer_with_three_outputs_takes_the_unpacked_gemm(isa, rng):
    """A 4x4x160 -> 3-channel layer: the GEMM path (rule a needs >= 4 outputs) with
    16-row column GEMMs on the unpacked kernel; exact against the reference."""
    x = dyadic(rng, (1, 4, 4, 160))
    w = dyadic(rng, (5, 5, 3, 160))
    assert _algo(x.shape, w.shape) == 0
    np.testing.assert_array_equal(cdeconv.conv2d_transpose(x, w, None, 2, "SAME"),
                                  _reference.conv2d_transpose(x, w, None, 2, "SAME"))
