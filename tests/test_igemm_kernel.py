"""The implicit-GEMM kernel and its pixel-lanes and phase-rows twins (src/_igemm_impl.h;
algos 3, 4 and 5 in cdeconv._driver: one micro-kernel, output channels, input pixels or
a flat run of one phase's outputs in the vector lanes), and further down the planar
kernels (src/_fplanar_impl.h: forward, filter gradient and transposed), against the
float64 NumPy reference, in every instruction-set build this CPU can run (baseline,
AVX2, AVX-512). The shapes hit the channel-block tails (output channels around
multiples of the 4-, 8- and 16-lane vectors and of the 1-4 vector panels), every tile
height (a phase's outputs in runs of 1-8, across rows and images), phases no tap
reaches, groups, dilation, stride 3, every padding form, 1-D and 3-D. The kernel is
forced, so shapes outside the dispatch rule are covered too; the rule itself is tested
on the suite's layers."""
import threading

import numpy as np
import pytest

import cdeconv
from cdeconv import _conv, _driver, _geometry, _reference

from conftest import (assert_nonfinite_like_reference, dyadic, run_kernel,
                      transpose_algo as _algo)


ALGOS = {"direct": 1, "igemm": 3, "lanes": 4, "rows": 5, "scatter": 7}


@pytest.fixture(params=sorted(ALGOS))
def algo(request):
    return ALGOS[request.param]


def _run(n, x, w, s, padding, d=None, groups=1, algo=3):
    return run_kernel(algo, n, x, w, s, padding, d, groups)


# (input channels, output channels per group, kernel, stride, dilation, padding, groups)
CASES = [
    (1, 1, (3, 3), 2, 1, "SAME", 1),
    (3, 3, (3, 3), 2, 1, "SAME", 1),
    (7, 17, (4, 4), 2, 1, "SAME", 1),       # 16 + 1 channels
    (8, 33, (5, 5), 2, 1, "VALID", 1),
    (16, 64, (4, 4), 2, 1, "SAME", 1),      # one full 4-vector panel (AVX-512)
    (17, 65, (3, 3), 1, 1, "SAME", 1),      # a full panel and a 1-channel panel
    (33, 70, (5, 5), 3, 2, "VALID", 1),     # stride 3, dilation 2
    (40, 20, (3, 2), (2, 1), (1, 2), [[0, 0], [1, 2], [0, 1], [0, 0]], 1),
    (24, 12, (2, 2), 2, 1, "SAME", 2),      # groups
    (20, 5, (3, 3), 2, 1, "SAME", 4),
    (9, 130, (1, 1), 2, 1, "VALID", 1),     # 1x1 stride 2: three phases get no tap
    (5, 24, (2, 2), 2, 2, "VALID", 1),      # dilation 2 = stride: odd phases get none
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"cin{c[0]}-cout{c[1]}-k{c[2]}-g{c[6]}")
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_igemm_kernel_matches_the_reference(case, dtype, isa, algo, rng):
    cin, cout_g, k, s, d, padding, groups = case
    # pixel counts 4-429: 1-27 pixel vectors, chunk tails for the lanes kernel
    for batch, hw in [(2, (5, 7)), (1, (1, 9)), (1, (6, 1)), (3, (13, 11)), (1, (4, 4))]:
        x = dyadic(rng, (batch,) + hw + (cin,), dtype)
        w = dyadic(rng, k + (cout_g, cin), dtype)      # TF layout: all input channels
        got = _run(2, x, w, s, padding, d, groups, algo)
        want = _reference.conv2d_transpose(x, w, None, s, padding, "NHWC", d,
                                           groups=groups)
        # dyadic data: every partial sum is exact, so the kernel's order does not matter
        np.testing.assert_array_equal(got, want, err_msg=f"{isa}, batch {batch}, {hw}")


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_igemm_kernel_random_data_close_to_float64(dtype, isa, algo):
    rng = np.random.default_rng(12)
    x = rng.standard_normal((2, 9, 7, 300)).astype(dtype)
    w = rng.standard_normal((5, 5, 70, 300)).astype(dtype)
    got = _run(2, x, w, 2, "SAME", algo=algo)
    want = _reference.conv2d_transpose(x.astype(np.float64), w.astype(np.float64), None,
                                       2, "SAME", "NHWC")
    tol = 1e-4 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol * np.abs(want).max())


def test_igemm_kernel_1d_and_3d(isa, algo, rng):
    x = dyadic(rng, (2, 11, 19))
    w = dyadic(rng, (5, 21, 19))
    np.testing.assert_array_equal(_run(1, x, w, 2, "SAME", algo=algo),
                                  _reference.conv_transpose_nd(1, x, w, None, 2, "SAME",
                                                               "NWC"))
    x = dyadic(rng, (2, 3, 4, 5, 18))
    w = dyadic(rng, (2, 3, 3, 20, 18))
    if algo == 7:
        # scatter rows reads no small plane across depth: depth taps are refused, a
        # depth-1 kernel runs
        with pytest.raises(ValueError, match="scatter-rows"):
            _run(3, x, w, [1, 2, 2], "SAME", algo=algo)
        w = w[:1]
    np.testing.assert_array_equal(_run(3, x, w, [1, 2, 2], "SAME", algo=algo),
                                  _reference.conv_transpose_nd(3, x, w, None, [1, 2, 2],
                                                               "SAME", "NDHWC"))


def test_igemm_kernel_propagates_nan_and_inf(isa, algo):
    x = np.ones((1, 3, 3, 20), np.float32)
    w = np.ones((3, 3, 20, 20), np.float32)
    x[0, 1, 1, 19] = np.nan
    w[0, 0, 17, 0] = np.inf               # a channel in the second vector
    got = _run(2, x, w, 2, "SAME", algo=algo)
    assert_nonfinite_like_reference(got, x, w)


def test_igemm_kernel_empty_inputs_give_zeros(algo):
    x = np.ones((2, 0, 3, 20), np.float32)
    w = np.ones((3, 3, 32, 20), np.float32)
    geom = _geometry.transposed_geometry(2, x, w, [2, 7], 2, "VALID", "NHWC", None)
    y = np.full(geom.shape("big"), np.nan, np.float32)
    _driver.run(geom, x, w, y, "transpose", algo=algo)
    assert (y == 0).all()


@pytest.mark.parametrize("algo", [1, 2, 3, 4, 5, 7],
                         ids=["direct", "dot", "igemm", "lanes", "rows", "scatter"])
def test_c_kernels_refuse_channels_first_and_huge_kernels(algo):
    x = np.ones((1, 20, 3, 3), np.float32)
    w = np.ones((3, 3, 32, 20), np.float32)
    geom = _geometry.transposed_geometry(2, x, w, None, 2, "SAME", "NCHW", None)
    with pytest.raises(ValueError, match="channels-last"):
        _driver.run(geom, x, w, np.empty(geom.shape("big"), np.float32), "transpose",
                    algo=algo)
    k = int(np.sqrt(_conv.DOT_MAX_TAPS)) + 1
    x = np.ones((1, 2, 2, 16), np.float32)
    w = np.ones((k, k, 16, 16), np.float32)
    geom = _geometry.transposed_geometry(2, x, w, None, 1, "SAME", "NHWC", None)
    assert _driver.choose_transpose_algo(geom) == 0
    with pytest.raises(ValueError, match="taps"):
        _driver.run(geom, x, w, np.empty(geom.shape("big"), np.float32), "transpose",
                    algo=algo)


@pytest.mark.parametrize("shape, cout, algo", [((3, 16, 16, 64), 48, 3),
                                               ((1, 6, 7, 64), 48, 4),
                                               ((5, 37, 29, 64), 3, 5),
                                               ((5, 37, 29, 3), 72, 1),
                                               ((3, 37, 29, 64), 1, 7)],
                         ids=["igemm", "lanes", "rows", "direct", "scatter"])
def test_igemm_results_do_not_depend_on_threads_or_concurrency(shape, cout, algo):
    """Each output is summed by one task in one order: bitwise the same at 1, 2 and 3
    threads (the lanes kernel's channel blocks and the phase-rows tasks' rows change with
    them) and from 4 Python threads at once (random data: any order change shows)."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal(shape).astype(np.float32)
    w = rng.standard_normal((4, 4, cout, shape[-1])).astype(np.float32)
    geom = _geometry.transposed_geometry(2, x, w, None, 2, "SAME", "NHWC", None)
    assert _driver.choose_transpose_algo(geom) == algo
    before = cdeconv.get_num_threads()
    outs = []
    try:
        for n in (1, 2, 3):
            cdeconv.set_num_threads(n)
            outs.append(cdeconv.conv2d_transpose(x, w, None, 2, "SAME"))
    finally:
        cdeconv.set_num_threads(before)
    got = [None] * 4

    def work(i):
        got[i] = cdeconv.conv2d_transpose(x, w, None, 2, "SAME")

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for y in outs[1:] + got:
        np.testing.assert_array_equal(y, outs[0])


# (batch, h, w, input channels, output channels, kernel, stride, dilation, padding, groups)
ROWS_CASES = [
    (2, 32, 32, 128, 3, 5, 2, 1, "SAME", 1),      # DCGAN TF head, 2-row flat tiles
    (1, 9, 70, 3, 3, 3, 2, 1, "SAME", 1),         # RGB: channel tails of the transposes
    (2, 11, 13, 96, 3, 7, 2, 1, [[0, 0], [1, 1], [1, 1], [0, 0]], 1),   # ZFNet-like
    (1, 12, 17, 7, 1, 9, 2, 1, "SAME", 1),        # FSRCNN-like: one output channel
    (2, 28, 28, 1, 32, 3, 2, 1, "SAME", 1),       # MNIST: 16-channel output transposes
    (1, 9, 37, 2, 35, 3, 2, 1, "SAME", 1),        # 2 x 16 + 3 channels, 17-wide tails
    (1, 6, 19, 18, 15, 4, 3, 2, "VALID", 1),      # stride 3, dilation 2, 15 channels
    (1, 7, 21, 8, 6, 3, 2, 1, "SAME", 2),         # groups
    (1, 5, 5, 4, 3, 2, 4, 1, "SAME", 1),          # stride 4 > kernel: phases with no tap
]


DIRECT_CASES = [
    (2, 28, 28, 1, 32, 3, 2, 1, "SAME", 1),       # MNIST
    (1, 9, 37, 2, 35, 3, 2, 1, "SAME", 1),        # 2 x 16 + 3 channels
    (1, 13, 11, 16, 130, 4, 2, 1, "SAME", 1),     # 2 blocks + a 2-channel tail
    (2, 10, 9, 24, 40, 2, 2, 1, "VALID", 1),      # one tap per phase (U-Net)
    (1, 6, 19, 5, 33, 4, 3, 2, "VALID", 1),       # stride 3, dilation 2
    (1, 7, 21, 4, 32, 3, 2, 1, "SAME", 2),        # groups
    (1, 5, 5, 3, 40, 2, 4, 1, "SAME", 1),         # stride 4 > kernel: phases with no tap
    (1, 3, 2, 2, 64, 7, 2, 1, "SAME", 1),         # rows shorter than the 4-output tiles
]


@pytest.mark.parametrize("algo, case", [(5, c) for c in ROWS_CASES]
                         + [(1, c) for c in DIRECT_CASES],
                         ids=lambda c: (c if isinstance(c, int) else
                                        f"{c[1]}x{c[2]}x{c[3]}-{c[4]}-k{c[5]}"))
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_phase_rows_and_direct_give_igemms_bits(algo, case, dtype, isa):
    """Phase rows and direct rows sum each output in igemm's order (taps, then
    channels) on the same micro-kernel: bitwise igemm's result on random data, in every
    instruction set, and within rounding of the float64 reference (direct rows skips
    the taps past the edge where igemm adds a zero row's 0 * w: the same values). The
    phase-rows shapes cover its in-register 16 x 16 transposes and their tails; the
    direct ones its interior tiles, edges and channel blocks."""
    b, h, wd, cin, cout, k, s, d, padding, groups = case
    rng = np.random.default_rng(7)
    x = rng.standard_normal((b, h, wd, cin)).astype(dtype)
    w = rng.standard_normal((k, k, cout, cin)).astype(dtype)
    got = _run(2, x, w, s, padding, d, groups, algo=algo)
    np.testing.assert_array_equal(got, _run(2, x, w, s, padding, d, groups, algo=3))
    want = _reference.conv2d_transpose(x.astype(np.float64), w.astype(np.float64), None,
                                       s, padding, "NHWC", d, groups=groups)
    tol = 1e-4 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol * np.abs(want).max())


def test_phase_rows_nan_in_one_input_row_reaches_only_its_outputs(isa):
    """A NaN in one input pixel spreads to exactly the outputs its taps reach (the
    transposed rows, their zero columns and the dropped lanes stay separate)."""
    x = np.ones((2, 10, 23, 20), np.float32)
    x[1, 9, 22, 19] = np.nan                   # the last pixel of the last image
    x[0, 0, 0, 0] = np.inf
    w = np.ones((3, 3, 3, 20), np.float32)
    got = _run(2, x, w, 2, "SAME", algo=5)
    assert_nonfinite_like_reference(got, x, w)


def test_dispatch_rule_routes_the_measured_layers_to_igemm():
    assert _algo((16, 8, 8, 512), (5, 5, 256, 512)) == 3       # DCGAN TF g2 b16
    assert _algo((1, 16, 16, 256), (5, 5, 128, 256)) == 3      # DCGAN TF g3 b1
    assert _algo((16, 4, 4, 512), (4, 4, 256, 512)) == 4       # DCGAN PyTorch g1 b16: lanes
    assert _algo((8, 1, 1, 100), (4, 4, 512, 100), 1, "VALID") == 4   # g0 b8: lanes
    assert _algo((4, 1, 1, 100), (4, 4, 512, 100), 1, "VALID") == 4   # ... b4, < 128 deep
    assert _algo((2, 1, 1, 64), (4, 4, 128, 64), 1, "VALID") == 4     # ... b2
    assert _algo((1, 1, 1, 100), (4, 4, 512, 100), 1, "VALID") == 0   # ... b1: GEMM
    assert _algo((4, 1, 1, 128), (4, 4, 256, 128), 1, "VALID") == 0   # 128 deep: GEMM
    assert _algo((8, 1, 1, 128), (4, 4, 256, 128), 1, "VALID") == 4   # ... from 8
    assert _algo((1, 2, 4, 64), (4, 4, 8, 64)) == 0            # 8 pixels, not 1x1
    assert _algo((1, 16, 16, 256), (4, 4, 128, 256)) == 3      # 256 pixels, depth 1024
    assert _algo((1, 16, 16, 512), (2, 2, 256, 512)) == 1      # U-Net up1: direct
    assert _algo((1, 16, 16, 64), (3, 3, 64, 64), 1) == 3      # stride-1 3x3, 64 tiles
    assert _algo((1, 32, 32, 32), (3, 3, 64, 32)) == 3         # 32 -> 64 channels
    assert _algo((1, 32, 32, 8), (4, 4, 64, 8)) == 1           # 8 -> 64: direct rows
    # where the other kernels measured faster
    assert _algo((1, 8, 8, 512), (5, 5, 256, 512)) == 4        # 64 pixels: lanes
    assert _algo((16, 4, 4, 1024), (5, 5, 512, 1024)) == 4     # deep phases, 256 pixels
    assert _algo((16, 8, 8, 1024), (5, 5, 512, 1024)) == 0     # deep, 1024 pixels
    assert _algo((1, 8, 8, 128), (5, 5, 3, 128)) == 0          # 3 outputs, 64 pixels
    assert _algo((1, 2, 4, 64), (4, 4, 8, 64)) == 0            # 8 outputs, 8 pixels
    # phase rows: few output channels from 256 pixels, or few input channels
    assert _algo((16, 32, 32, 64), (4, 4, 3, 64)) == 5         # DCGAN PyTorch head b16
    assert _algo((1, 224, 224, 3), (3, 3, 3, 3)) == 5          # RGB -> RGB: rows
    assert _algo((1, 8, 8, 3), (3, 3, 3, 3)) == 8              # ... 64 pixels: planar
    assert _algo((1, 224, 224, 13), (3, 3, 3, 13)) == 5        # 13 inputs: rows
    assert _algo((1, 110, 110, 96), (7, 7, 3, 96)) == 5        # ZFNet deconv1
    assert _algo((1, 64, 64, 64), (4, 4, 15, 64)) == 5         # 15 output channels
    assert _algo((1, 64, 64, 64), (4, 4, 16, 64)) == 6         # 16: Winograd
    assert _algo((1, 64, 64, 64), (5, 5, 16, 64)) == 3         # ... 5x5, 64 columns: igemm
    assert _algo((1, 64, 64, 64), (5, 5, 32, 64)) == 6         # 128 columns, 1089 tiles
    assert _algo((1, 32, 32, 128), (5, 5, 32, 128)) == 3       # ... 289 tiles: igemm
    assert _algo((1, 32, 32, 128), (5, 5, 64, 128)) == 6       # 256 columns, 289 tiles
    assert _algo((16, 16, 16, 256), (5, 5, 128, 256)) == 6     # DCGAN TF g3 b16
    assert _algo((2, 16, 16, 256), (5, 5, 128, 256)) == 3      # ... b2, 162 tiles
    assert _algo((4, 32, 32, 64), (3, 3, 64, 64), 2) == 3      # 3x3 s2 saves too little
    assert _algo((1, 64, 64, 16), (3, 3, 4, 16)) == 5          # 16 input channels
    assert _algo((1, 64, 64, 24), (3, 3, 16, 24)) == 5         # 24 -> 16 from 1024 pixels
    assert _algo((16, 28, 28, 12), (4, 4, 31, 12)) == 5        # ... 12 -> 31
    assert _algo((1, 16, 16, 24), (3, 3, 16, 24)) == 3         # ... 256 pixels: igemm
    assert _algo((1, 64, 64, 32), (3, 3, 16, 32)) == 3         # ... 32 input channels
    assert _algo((1, 16, 16, 64), (4, 4, 3, 64)) == 5          # 256 pixels
    assert _algo((1, 15, 16, 64), (4, 4, 3, 64)) == 0          # 240 pixels
    assert _algo((1, 64, 64, 4), (9, 9, 1, 4), 3) == 5         # 1 output, 4 inputs
    assert _algo((1, 32, 32, 32), (3, 3, 2, 32)) == 5          # 2 outputs, 32 inputs
    assert _algo((1, 15, 16, 32), (3, 3, 2, 32)) == 0          # ... 240 pixels
    # scatter rows: 1-3 output channels from deep enough inputs and 256 pixels
    assert _algo((1, 240, 320, 56), (9, 9, 1, 56)) == 7        # FSRCNN: one output
    assert _algo((4, 32, 32, 8), (3, 3, 1, 8)) == 7            # one output, 8 inputs
    assert _algo((4, 32, 32, 7), (3, 3, 1, 7)) == 5            # ... 7 inputs: rows
    assert _algo((1, 64, 64, 64), (4, 4, 2, 64)) == 7          # two outputs, 64 inputs
    assert _algo((1, 64, 64, 63), (4, 4, 2, 63)) == 5          # ... 63 inputs: rows
    assert _algo((1, 32, 32, 128), (5, 5, 3, 128)) == 7        # DCGAN TF head b1
    assert _algo((16, 32, 32, 128), (5, 5, 3, 128)) == 7       # DCGAN TF head b16
    assert _algo((1, 32, 32, 127), (5, 5, 3, 127)) == 5        # ... 127 inputs: rows
    assert _algo((1, 16, 16, 128), (5, 5, 3, 128)) == 7        # 256 pixels
    assert _algo((1, 15, 16, 128), (5, 5, 3, 128)) == 0        # 240 pixels
    assert _algo((1, 32, 32, 256), (4, 4, 4, 256)) == 5        # 4 outputs: rows
    assert _algo((1, 256, 64, 64), (3, 3, 3, 256), 1, fmt="NCHW") == 0
    assert _algo((1, 2, 2, 1024), (5, 5, 512, 1024)) == 2      # dot: 4 pixels
    assert _algo((1, 4, 4, 1024), (5, 5, 512, 1024)) == 4      # lanes: batch-1 head
    assert _algo((1, 28, 28, 1), (3, 3, 32, 1)) == 1           # 1 input channel: direct
    assert _algo((1, 28, 28, 1), (3, 3, 8, 1)) == 5            # ... into 8: rows
    assert _algo((1, 64, 16, 16), (4, 4, 64, 64), fmt="NCHW") == 0
    # a 4x4 1024 -> 1024 filter (64 MiB packed) stays on the bounded-memory path
    assert _algo((16, 16, 16, 1024), (4, 4, 1024, 1024)) == 0


def test_public_ops_take_igemm_and_match_the_reference(rng):
    x = dyadic(rng, (2, 16, 16, 24), np.float32)
    w = dyadic(rng, (3, 3, 32, 24), np.float32)
    assert _algo(x.shape, w.shape, 1) == 3
    want = _reference.conv2d_transpose(x, w, None, 1, "SAME")
    np.testing.assert_array_equal(cdeconv.conv2d_transpose(x, w, None, 1, "SAME"), want)
    out = np.full(want.shape, np.nan, np.float32)
    assert cdeconv.conv2d_transpose(x, w, None, 1, "SAME", out=out) is out
    np.testing.assert_array_equal(out, want)
    np.testing.assert_array_equal(
        cdeconv.conv2d_backprop_input(want.shape, w, x, 1, "SAME"), want)


# ---------------------------------------------------------------- forward conv (algo 3)

def _run_forward(n, x, w, s, padding, d=None, groups=1, algo=3):
    """The forward conv of channels-last x through kernel ``algo`` (forced), into a
    NaN-filled output."""
    fmt = {1: "NWC", 2: "NHWC", 3: "NDHWC"}[n]
    geom = _geometry.forward_geometry(n, x, w, s, padding, fmt, d, groups)
    y = np.full(geom.shape("small"), np.nan, x.dtype)
    _driver.run(geom, x, w, y, "forward", algo=algo)
    return y


def _same_at_each_thread_count(fn, counts=(1, 2, 3)):
    """fn() at each thread count: asserts the results are bitwise equal, returns the
    first."""
    before = cdeconv.get_num_threads()
    try:
        outs = []
        for n in counts:
            cdeconv.set_num_threads(n)
            outs.append(fn())
    finally:
        cdeconv.set_num_threads(before)
    for y in outs[1:]:
        np.testing.assert_array_equal(y, outs[0])
    return outs[0]


# (input channels, output channels, kernel, stride, dilation, padding, groups)
FORWARD_CASES = [
    (1, 16, (3, 3), 1, 1, "SAME", 1),
    (3, 20, (3, 3), 2, 1, "SAME", 1),
    (7, 17, (4, 4), 2, 1, "VALID", 1),
    (16, 64, (5, 5), 3, 2, "VALID", 1),     # stride 3, dilation 2, one full panel
    (17, 65, (3, 3), 1, 1, "SAME", 1),
    (24, 24, (2, 2), 2, 1, "SAME", 2),
    (20, 40, (3, 3), 2, 1, "SAME", 4),
    (9, 130, (1, 1), 2, 1, "VALID", 1),
    (40, 20, (3, 2), (2, 1), (1, 2), [[0, 0], [1, 2], [0, 1], [0, 0]], 1),
]


@pytest.mark.parametrize("case", FORWARD_CASES,
                         ids=lambda c: f"cin{c[0]}-cout{c[1]}-k{c[2]}-g{c[6]}")
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_igemm_forward_matches_the_reference(case, dtype, isa, rng):
    cin, cout, k, s, d, padding, groups = case
    for batch, hw in [(2, (9, 11)), (1, (5, 9)), (3, (13, 12))]:
        x = dyadic(rng, (batch,) + hw + (cin,), dtype)
        w = dyadic(rng, k + (cin // groups, cout), dtype)
        want = _reference.conv2d(x, w, s, padding, "NHWC", d, groups=groups)
        np.testing.assert_array_equal(_run_forward(2, x, w, s, padding, d, groups), want,
                                      err_msg=f"{isa}, batch {batch}, {hw}")


def test_igemm_forward_1d_3d_nan_and_threads(rng):
    x = dyadic(rng, (2, 30, 19))
    w = dyadic(rng, (5, 19, 21))
    np.testing.assert_array_equal(_run_forward(1, x, w, 2, "SAME"),
                                  _reference.conv_nd(1, x, w, 2, "SAME", "NWC"))
    x = dyadic(rng, (1, 5, 6, 7, 18))
    w = dyadic(rng, (2, 3, 3, 18, 20))
    np.testing.assert_array_equal(_run_forward(3, x, w, [1, 2, 2], "SAME"),
                                  _reference.conv_nd(3, x, w, [1, 2, 2], "SAME", "NDHWC"))
    x = np.ones((1, 6, 6, 20), np.float32)
    w = np.ones((3, 3, 20, 20), np.float32)
    x[0, 2, 2, 3] = np.nan
    w[1, 1, 0, 17] = np.inf
    got = _run_forward(2, x, w, 1, "SAME")
    want = _reference.conv2d(x.astype(np.float64), w.astype(np.float64), 1, "SAME")
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_array_equal(np.isinf(got), np.isinf(want))
    # random data through the public op at 1, 2 and 3 threads: bitwise the same
    r = np.random.default_rng(4)
    x = r.standard_normal((2, 20, 20, 48)).astype(np.float32)
    w = r.standard_normal((3, 3, 48, 40)).astype(np.float32)
    geom = _geometry.forward_geometry(2, x, w, 1, "SAME", "NHWC", None)
    assert _driver.choose_forward_algo(geom) == 3
    got = _same_at_each_thread_count(lambda: cdeconv.conv2d(x, w, 1, "SAME"))
    want = _reference.conv2d(x.astype(np.float64), w.astype(np.float64), 1, "SAME")
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())


# (input channels, output channels, kernel, stride, padding, dilation): the forward's own
# GEMM on the column buffer (algo 0, src/_igemm_impl.h cd_grun_) and without it (tap rows,
# algo 5, cd_gtap_): partial panels, every tile-row remainder, images that wrap in a tile
OWN_GEMM_CASES = [
    (1, 56, (9, 9), 2, "SAME", 1),       # FSRCNN turned round
    (3, 128, (5, 5), 2, "SAME", 1),      # DCGAN head turned round
    (3, 96, (7, 7), 2, "VALID", 1),
    (2, 16, (3, 3), 1, "SAME", (2, 1)),  # one vector, dilated rows
    (1, 17, (2, 2), 2, "VALID", 1),      # 16 + 1 channels
    (3, 200, (3, 3), 1, "SAME", 1),      # 3 panels + 8
    (5, 3, (4, 3), (1, 3), [[0, 0], [2, 1], [0, 3], [0, 0]], 1),   # 3 channels, padding
]


@pytest.mark.parametrize("algo", [0, 5], ids=["own-gemm", "tap-rows"])
@pytest.mark.parametrize("case", OWN_GEMM_CASES, ids=lambda c: f"cin{c[0]}-cout{c[1]}")
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_forward_own_gemm_and_tap_rows_match_the_reference(algo, case, dtype, isa, rng):
    cin, cout, k, s, padding, d = case
    before = _conv.set_own_gemm(16)
    try:
        for batch, hw in [(2, (19, 23)), (1, (40, 9)), (3, (k[0] + 1, k[1] + 2))]:
            x = dyadic(rng, (batch,) + hw + (cin,), dtype)
            w = dyadic(rng, k + (cin, cout), dtype)
            want = _reference.conv2d(x, w, s, padding, "NHWC", d)
            got = _run_forward(2, x, w, s, padding, d, algo=algo)
            np.testing.assert_array_equal(got, want, err_msg=f"{isa}, batch {batch}, {hw}")
    finally:
        _conv.set_own_gemm(before)


def test_tap_rows_bands_threads_and_nonfinite():
    r = np.random.default_rng(5)
    # 9 images a band (and a partial last band); then row bands of one big image
    for shape, s in [((11, 21, 17, 2), 1), ((1, 700, 420, 1), 2)]:
        x = r.standard_normal(shape).astype(np.float32)
        w = r.standard_normal((5, 5, shape[3], 24)).astype(np.float32)
        geom = _geometry.forward_geometry(2, x, w, s, "SAME", "NHWC", None)
        assert _driver.choose_forward_algo(geom) == _driver.FWD_TAPS
        want = _reference.conv2d(x.astype(np.float64), w.astype(np.float64), s, "SAME")
        before_threads = cdeconv.get_num_threads()
        before = _conv.set_own_gemm(16)
        try:
            outs = []
            for n in (1, 2, 3):
                cdeconv.set_num_threads(n)
                outs.append(cdeconv.conv2d(x, w, s, "SAME"))
            own = _run_forward(2, x, w, s, "SAME", algo=0)       # the column buffer, own GEMM
            assert _conv.set_own_gemm(0) == 16              # returns the previous bound
            blas = _run_forward(2, x, w, s, "SAME", algo=0)
        finally:
            cdeconv.set_num_threads(before_threads)
            _conv.set_own_gemm(before)
        for y in outs[1:] + [own]:
            np.testing.assert_array_equal(y, outs[0])
        tol = 1e-4 * np.abs(want).max()
        np.testing.assert_allclose(outs[0], want, rtol=1e-4, atol=tol)
        np.testing.assert_allclose(blas, want, rtol=1e-4, atol=tol)
    x = np.ones((2, 9, 8, 3), np.float32)
    w = np.ones((3, 3, 3, 20), np.float32)
    x[0, 4, 4, 1] = np.nan
    w[0, 0, 2, 7] = np.inf                    # meets the zero padding: NaN, as im2col
    ref = _reference.conv2d(x.astype(np.float64), w.astype(np.float64), 1, "SAME")
    for algo in (0, 5):
        got = _run_forward(2, x, w, 1, "SAME", algo=algo)
        np.testing.assert_array_equal(np.isnan(got), np.isnan(ref))
        np.testing.assert_array_equal(np.isinf(got), np.isinf(ref))
    with pytest.raises(ValueError, match="min_channels"):
        _conv.set_own_gemm(-1)
    geom = _geometry.forward_geometry(2, x, w, 1, "SAME", "NHWC", (1, 2))
    with pytest.raises(ValueError, match="tap-rows"):       # width dilation
        _driver.run(geom, x, w, np.empty(geom.shape("small"), np.float32), "forward",
                    algo=5)


# (input channels, output channels, kernel, stride, padding, input HW): the filter
# gradient's own GEMM (src/_igemm_impl.h cd_gbpf_), both ways round (DW^T for the first
# three and the fifth and sixth, DW for the others): a tail panel, a partial row block,
# more than one block of CD_BPF_KC pixels per chunk
BPF_CASES = [
    (5, 7, (3, 3), 1, "SAME", (40, 44)),
    (3, 96, (7, 7), 2, "VALID", (48, 52)),       # ZFNet-like
    (1, 56, (9, 9), 2, "SAME", (48, 52)),        # FSRCNN-like
    (8, 70, (3, 3), 2, "SAME", (48, 52)),        # 72 filter rows = 64 + 8; 64 + 6 rows
    (64, 64, (3, 3), 1, "SAME", (20, 26)),
    (3, 3, (3, 3), 2, "SAME", (48, 52)),         # the RGB article layer: 3 rows
    (3, 128, (5, 5), 2, "SAME", (48, 52)),       # DW += cols^T @ DY: 75 rows, 2 panels
    (2, 40, (3, 3), 1, "VALID", (30, 20)),       # 18 rows, a partial panel
]


@pytest.mark.parametrize("case", BPF_CASES, ids=lambda c: f"cin{c[0]}-cout{c[1]}-k{c[2]}")
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_filter_gradient_own_gemm_matches_the_reference(case, dtype, isa, chunking, rng):
    cin, cout, k, s, padding, hw = case
    x = dyadic(rng, (3,) + hw + (cin,), dtype)
    w_shape = k + (cin, cout)
    geom = _geometry.forward_geometry(2, x, np.empty(w_shape, dtype), s, padding, "NHWC",
                                      None)
    assert _conv.bpf_own_fits(geom.kernel_args()) in (1, 2)
    dy = dyadic(rng, geom.shape("small"), dtype)
    want = _reference.conv2d_backprop_filter(x, w_shape, dy, s, padding, "NHWC")
    # the planar kernels off: their rules take these layers first (tested further down)
    before = _conv.set_planar_filter_gradient(0)
    try:
        got = cdeconv.conv2d_backprop_filter(x, w_shape, dy, s, padding)
    finally:
        _conv.set_planar_filter_gradient(before)
    np.testing.assert_array_equal(got, want, err_msg=isa)


def test_filter_gradient_own_gemm_threads_blas_and_rule():
    r = np.random.default_rng(7)
    x = r.standard_normal((4, 30, 34, 16)).astype(np.float32)
    dy = r.standard_normal((4, 15, 17, 40)).astype(np.float32)
    w_shape = (5, 5, 16, 40)
    want = _reference.conv2d_backprop_filter(x.astype(np.float64), w_shape,
                                             dy.astype(np.float64), 2, "SAME", "NHWC")
    before_threads = cdeconv.get_num_threads()
    try:
        outs = []
        for n in (1, 2, 3):
            cdeconv.set_num_threads(n)
            outs.append(cdeconv.conv2d_backprop_filter(x, w_shape, dy, 2, "SAME"))
        assert _conv.set_own_filter_gemm(0) == 1
        blas = cdeconv.conv2d_backprop_filter(x, w_shape, dy, 2, "SAME")
        # forced (mode 2) on a layer the rule leaves to BLAS: 64 output pixels, 1 channel,
        # both orientations
        _conv.set_own_filter_gemm(2)
        xs = dyadic(r, (1, 16, 16, 8))
        for ws in [(3, 3, 8, 1), (1, 1, 8, 30)]:
            dys = dyadic(r, (1, 8, 8, ws[3]))
            np.testing.assert_array_equal(
                cdeconv.conv2d_backprop_filter(xs, ws, dys, 2, "SAME"),
                _reference.conv2d_backprop_filter(xs, ws, dys, 2, "SAME", "NHWC"))
        with pytest.raises(ValueError, match="mode"):
            _conv.set_own_filter_gemm(3)
    finally:
        _conv.set_own_filter_gemm(1)
        cdeconv.set_num_threads(before_threads)
    for y in outs[1:]:
        np.testing.assert_array_equal(y, outs[0])
    tol = 1e-4 * np.abs(want).max()
    np.testing.assert_allclose(outs[0], want, rtol=1e-4, atol=tol)
    np.testing.assert_allclose(blas, want, rtol=1e-4, atol=tol)

    def fits(x_shape, w_shape, s=2, fmt="NHWC", groups=1):
        geom = _geometry.forward_geometry(2, np.empty(x_shape, np.float32),
                                          np.empty(w_shape, np.float32), s, "SAME", fmt,
                                          None, groups)
        return _conv.bpf_own_fits(geom.kernel_args(), fmt == "NCHW")
    assert fits((1, 8, 8, 64), (3, 3, 64, 64), 1) == 2         # 64 output pixels
    assert fits((1, 7, 7, 64), (3, 3, 64, 64), 1) == 0         # 49
    # DY^T + 2 DW^T (1024 x 64 + 2 x 576 x 64) < cols^T (1024 x 576): DW^T
    assert fits((1, 32, 32, 64), (3, 3, 64, 64), 1) == 1
    # 256 x 256 + 2 x 3200 x 256 > 256 x 3200: DW (TF DCGAN g3 b1 turned round)
    assert fits((1, 32, 32, 128), (5, 5, 128, 256)) == 2
    assert fits((16, 64, 64, 3), (5, 5, 3, 128)) == 2          # 128 channels > 75 rows
    assert fits((1, 64, 64, 32), (3, 3, 32, 3)) == 1           # 3 output channels
    assert fits((1, 64, 64, 32), (3, 3, 32, 2)) == 0           # 2
    assert fits((1, 64, 64, 1), (3, 3, 1, 16)) == 0            # 9 filter rows < 16
    assert fits((1, 64, 64, 2), (3, 3, 2, 24)) == 2            # 18
    assert fits((1, 64, 64, 32), (3, 3, 16, 32), groups=2) == 0
    assert fits((1, 64, 64, 64), (3, 3, 64, 64), 1, "NCHW") == 0


@pytest.mark.parametrize("algo, x_shape, w_shape", [
    ("rows", (11, 8, 8, 8), (4, 4, 3, 8)),          # 11 planes x 2 bands: many tiny tasks
    ("scatter", (11, 8, 8, 64), (5, 5, 1, 64)),
])
def test_band_tasks_are_thread_private(algo, x_shape, w_shape):
    """Many short tasks on more threads than cores, repeated: a task's (group, plane,
    band) once went through out-pointers to variables the prange left shared, and a
    thread could run another task's band (1-2 % of calls at 8 threads, under load in
    CI). Bitwise against one thread."""
    r = np.random.default_rng(9)
    x = r.standard_normal(x_shape).astype(np.float32)
    w = r.standard_normal(w_shape).astype(np.float32)
    before = cdeconv.get_num_threads()
    try:
        cdeconv.set_num_threads(1)
        want = run_kernel(ALGOS[algo], 2, x, w, 2, "SAME")
        cdeconv.set_num_threads(8)
        for i in range(2000):
            got = run_kernel(ALGOS[algo], 2, x, w, 2, "SAME")
            assert np.array_equal(got, want), f"call {i}"
    finally:
        cdeconv.set_num_threads(before)


def test_forward_dispatch_rule():
    def algo(x, w, s=2, padding="SAME", fmt="NHWC"):
        geom = _geometry.forward_geometry(2, np.empty(x, np.float32),
                                          np.empty(w, np.float32), s, padding, fmt, None)
        return _driver.choose_forward_algo(geom)
    assert algo((16, 16, 16, 256), (5, 5, 256, 512)) == 3     # DCGAN g2: 3.3M filter
    assert algo((1, 32, 32, 128), (5, 5, 128, 256)) == 3      # g3 b1: 256 pixels
    assert algo((16, 32, 32, 128), (5, 5, 128, 256)) == 5     # g3 b16: 4096 pixels
    assert algo((1, 56, 56, 64), (3, 3, 64, 64), 1) == 3      # stride-1 3x3 b1: 3136
    assert algo((1, 64, 64, 64), (3, 3, 64, 64), 1) == 5      # 4096 pixels
    assert algo((1, 8, 8, 256), (4, 4, 256, 512)) == 3        # 16 output pixels
    assert algo((1, 64, 64, 3), (5, 5, 3, 128)) == 5          # 3 input channels
    assert algo((1, 480, 640, 1), (9, 9, 1, 56)) == 5         # FSRCNN: 1 input channel
    assert algo((1, 448, 448, 3), (3, 3, 3, 3)) == 6          # 3 output channels: planar
    assert algo((1, 56, 56, 32), (3, 3, 32, 1)) == 6          # 1 output channel
    assert algo((1, 56, 56, 32), (3, 3, 32, 8)) == 6          # 8 output channels
    assert algo((1, 56, 56, 32), (3, 3, 32, 9)) == 5          # 9: tap rows
    assert algo((1, 32, 56, 56), (3, 3, 32, 2), fmt="NCHW") == 0
    assert algo((1, 1, 2**25, 2), (1, 4, 2, 1), 1) == 0      # a row too wide for planes
    assert algo((1, 4, 4, 512), (4, 4, 512, 100), 1, "VALID") == 0   # one output pixel
    assert algo((16, 8, 8, 512), (5, 5, 512, 1024)) == 0      # 13M-element filter
    assert algo((1, 64, 16, 16), (3, 3, 64, 64), 1, fmt="NCHW") == 0
    x = np.ones((1, 64, 8, 8), np.float32)
    geom = _geometry.forward_geometry(2, x, np.ones((3, 3, 64, 64), np.float32), 1,
                                      "SAME", "NCHW", None)
    with pytest.raises(ValueError, match="channels-last"):
        _driver.run(geom, x, np.ones((3, 3, 64, 64), np.float32),
                    np.empty(geom.shape("small"), np.float32), "forward", algo=3)


# ---------------------------------------------------------------- planar forward (algo 6)

# (input channels, output channels, kernel, stride, dilation, padding): 1-8 output
# channels, column phases (strides 1-4), dilation, explicit and uneven padding, kernels
# wider than the image, channel counts around 16 (the transposed plane copy)
PLANAR_CASES = [
    (3, 3, (3, 3), 2, 1, "SAME"),            # article_rgb224 turned round
    (32, 1, (3, 3), 2, 1, "SAME"),           # article_mnist turned round
    (1, 1, (9, 9), 2, 1, "SAME"),
    (5, 8, (4, 5), (1, 3), 1, "VALID"),
    (2, 5, (3, 3), 1, (2, 2), [[0, 0], [2, 1], [0, 3], [0, 0]]),
    (16, 2, (7, 7), 3, 1, "SAME"),
    (33, 7, (1, 9), (1, 4), (1, 2), "SAME"),
    (17, 4, (2, 2), 2, 1, "VALID"),
    (48, 6, (3, 1), (2, 1), (3, 1), [[0, 0], [0, 2], [5, 0], [0, 0]]),
]


@pytest.mark.parametrize("case", PLANAR_CASES, ids=lambda c: f"cin{c[0]}-cout{c[1]}-k{c[2]}")
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_planar_forward_matches_the_reference(case, dtype, isa, rng):
    cin, cout, k, s, d, padding = case
    for batch, hw in [(2, (19, 23)), (1, (40, 9)), (3, (5, 70)), (1, (1, 1))]:
        x = dyadic(rng, (batch,) + hw + (cin,), dtype)
        w = dyadic(rng, k + (cin, cout), dtype)
        try:
            want = _reference.conv2d(x, w, s, padding, "NHWC", d)
        except ValueError:
            continue                            # VALID with a kernel past the image
        got = _run_forward(2, x, w, s, padding, d, algo=6)
        np.testing.assert_array_equal(got, want, err_msg=f"{isa}, batch {batch}, {hw}")


def test_planar_forward_1d_threads_nonfinite_and_bounds(rng):
    x = dyadic(rng, (3, 301, 12))
    w = dyadic(rng, (5, 12, 3))
    np.testing.assert_array_equal(_run_forward(1, x, w, 2, "SAME", algo=6),
                                  _reference.conv_nd(1, x, w, 2, "SAME", "NWC"))
    # many tasks (FPL_MIN_TASKS, row bands) at 1, 2 and 3 threads: bitwise the same
    r = np.random.default_rng(6)
    x = r.standard_normal((3, 150, 130, 40)).astype(np.float32)
    w = r.standard_normal((5, 5, 40, 3)).astype(np.float32)
    geom = _geometry.forward_geometry(2, x, w, 2, "SAME", "NHWC", None)
    assert _driver.choose_forward_algo(geom) == _driver.FWD_PLANAR
    got = _same_at_each_thread_count(lambda: cdeconv.conv2d(x, w, 2, "SAME"))
    want = _reference.conv2d(x.astype(np.float64), w.astype(np.float64), 2, "SAME")
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())
    # NaN and Inf reach exactly the outputs whose windows read them, as the reference
    x = np.ones((1, 12, 12, 20), np.float32)
    w = np.ones((3, 3, 20, 3), np.float32)
    x[0, 2, 2, 3] = np.nan
    x[0, 9, 5, 0] = np.inf
    w[1, 1, 0, 2] = -np.inf
    got = _run_forward(2, x, w, 1, "SAME", algo=6)
    want = _reference.conv2d(x.astype(np.float64), w.astype(np.float64), 1, "SAME")
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_array_equal(np.isinf(got), np.isinf(want))
    # an Inf in a corner tap meets the padding rows and columns of the border outputs:
    # 0 * Inf = NaN there, as in TF and the reference (the call takes im2col + GEMM)
    x = np.ones((2, 9, 8, 3), np.float32)
    for tap in [(0, 0), (2, 1), (1, 2)]:
        w = np.ones((3, 3, 3, 2), np.float32)
        w[tap + (1, 0)] = np.inf
        for s in (1, 2):
            got = _run_forward(2, x, w, s, "SAME", algo=6)
            want = _reference.conv2d(x.astype(np.float64), w.astype(np.float64), s, "SAME")
            np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
            np.testing.assert_array_equal(got[~np.isnan(want)], want[~np.isnan(want)])
    # outside the kernel's reach: a clear error when forced
    x = np.ones((1, 6, 6, 4), np.float32)
    with pytest.raises(ValueError, match="planar"):
        _run_forward(2, x, np.ones((3, 3, 4, 9), np.float32), 1, "SAME", algo=6)
    with pytest.raises(ValueError, match="planar"):
        _run_forward(2, x, np.ones((3, 3, 2, 4), np.float32), 1, "SAME", groups=2,
                     algo=6)


def _filter_gradient_and_reference(x, fs, dy, s, padding):
    """cdeconv's filter gradient (the dispatcher's kernel) and the float64 reference's."""
    return (cdeconv.conv2d_backprop_filter(x, fs, dy, s, padding),
            _reference.conv_backprop_filter_nd(2, x.astype(np.float64), fs,
                                               dy.astype(np.float64), s, padding, "NHWC"))


# the filter gradient on the same planes: (input channels, output channels, kernel,
# stride, dilation, padding, images and size); the last band shorter than the others
PLANAR_BPF_CASES = [
    (3, 3, (3, 3), 2, 1, "SAME", (2, 19, 23)),
    (32, 1, (3, 3), 2, 1, "SAME", (3, 40, 9)),
    (5, 8, (4, 5), (1, 3), 1, "VALID", (1, 19, 70)),
    (2, 5, (3, 3), 1, (2, 2), [[0, 0], [2, 1], [0, 3], [0, 0]], (2, 13, 17)),
    (17, 3, (3, 3), 1, 1, "SAME", (2, 60, 61)),        # bands of 16, 16, 16 and 12 rows
    (48, 6, (3, 1), (2, 1), (3, 1), [[0, 0], [0, 2], [5, 0], [0, 0]], (1, 30, 20)),
    (1, 1, (9, 9), 2, 1, "SAME", (1, 50, 40)),
]


def test_planar_filter_gradient_rule_threads_and_nonfinite(rng):
    assert _conv.set_planar_filter_gradient(1) == 1          # the default is the rule
    with pytest.raises(ValueError, match="mode"):
        _conv.set_planar_filter_gradient(4)
    r = np.random.default_rng(7)
    x = r.standard_normal((3, 150, 130, 40)).astype(np.float32)
    dy = r.standard_normal((3, 75, 65, 3)).astype(np.float32)
    want = _reference.conv_backprop_filter_nd(2, x.astype(np.float64), (5, 5, 40, 3),
                                              dy.astype(np.float64), 2, "SAME", "NHWC")
    got = _same_at_each_thread_count(
        lambda: cdeconv.conv2d_backprop_filter(x, (5, 5, 40, 3), dy, 2, "SAME"))
    _conv.set_planar_filter_gradient(0)
    try:
        other = cdeconv.conv2d_backprop_filter(x, (5, 5, 40, 3), dy, 2, "SAME")
    finally:
        _conv.set_planar_filter_gradient(1)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())
    assert not np.array_equal(got, other)            # the planar kernel did run: its order
    # Inf in DY at a border output meets the padding: 0 * Inf = NaN there, as in the
    # reference (the call takes im2col + GEMM); NaN in an input column that no output
    # reads (VALID, 2 columns left over) reaches no gradient
    x = np.ones((1, 9, 10, 2), np.float32)
    dy = np.ones((1, 9, 10, 3), np.float32)
    dy[0, 0, 4, 1] = np.inf
    got, want = _filter_gradient_and_reference(x, (3, 3, 2, 3), dy, 1, "SAME")
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    assert np.isnan(want).any() and np.isinf(want).any()
    np.testing.assert_array_equal(np.isinf(got), np.isinf(want))
    x = np.ones((1, 7, 12, 2), np.float32)
    x[0, 3, 11, 1] = np.nan
    dy = np.ones((1, 3, 5, 3), np.float32)
    got, want = _filter_gradient_and_reference(x, (3, 3, 2, 3), dy, 2, "VALID")
    assert not np.isnan(want).any()
    np.testing.assert_array_equal(got, want)


# the filter gradient as a GEMM on the planes (many output channels in the vector lanes):
# output channels past a multiple of 16 (DY's rows copied), deep and shallow inputs,
# dilation, strides 1-3, every padding form, bands of 1-64 rows
PLANAR_GEMM_BPF_CASES = [
    (3, 96, (7, 7), 2, 1, [[0, 0], [1, 1], [1, 1], [0, 0]], (1, 60, 57)),   # ZFNet
    (3, 128, (5, 5), 2, 1, "SAME", (2, 32, 32)),                             # DCGAN g4
    (3, 64, (4, 4), 2, 1, "SAME", (2, 20, 22)),
    (5, 40, (4, 5), (1, 3), 1, "VALID", (1, 19, 70)),
    (2, 21, (3, 3), 1, (2, 2), [[0, 0], [2, 1], [0, 3], [0, 0]], (2, 13, 17)),
    (17, 70, (3, 3), 1, 1, "SAME", (2, 60, 61)),
    (48, 6, (3, 1), (2, 1), (3, 1), [[0, 0], [0, 2], [5, 0], [0, 0]], (1, 30, 20)),
    (1, 56, (9, 9), 2, 1, "SAME", (1, 50, 40)),
    (64, 33, (3, 3), 3, 1, "SAME", (1, 14, 300)),
    (1, 17, (1, 1), 1, 1, "VALID", (1, 900, 5)),
    (40, 64, (3, 3), 1, 1, "SAME", (3, 41, 26)),    # parts of 23K elements, 9 bands
]


@pytest.mark.parametrize("mode,case", [(2, c) for c in PLANAR_BPF_CASES]
                         + [(3, c) for c in PLANAR_GEMM_BPF_CASES],
                         ids=lambda c: (({2: "sums", 3: "gemm"}[c]) if isinstance(c, int)
                                        else f"cin{c[0]}-cout{c[1]}-k{c[2]}"))
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_planar_filter_gradient_matches_the_reference(mode, case, dtype, isa, rng):
    """The planar sums (mode 2) and the planar GEMM (mode 3), forced where they fit."""
    cin, cout, k, s, d, padding, (batch, h, w_) = case
    x = dyadic(rng, (batch, h, w_, cin), dtype)
    fs = k + (cin, cout)
    dy = dyadic(rng, _reference.conv2d(x, np.zeros(fs, dtype), s, padding, "NHWC", d).shape,
                dtype)
    want = _reference.conv_backprop_filter_nd(2, x, fs, dy, s, padding, "NHWC", d)
    before = _conv.set_planar_filter_gradient(mode)
    try:
        got = cdeconv.conv2d_backprop_filter(x, fs, dy, s, padding, dilations=d)
    finally:
        _conv.set_planar_filter_gradient(before)
    np.testing.assert_array_equal(got, want, err_msg=isa)


def test_planar_gemm_filter_gradient_rule_threads_and_nonfinite():
    def kind(x_shape, fs, s=2, padding="SAME"):
        geom = _geometry.forward_geometry(2, np.empty(x_shape, np.float32),
                                          np.empty(fs, np.float32), s, padding, "NHWC",
                                          None)
        return _conv.planar_filter_gradient(geom.kernel_args())
    # the rule: <= 64 input channels, output rows of >= 8 pixels (>= 24 from 17 input
    # channels); few output channels keep the planar sums; at most 16 MiB of parts
    assert kind((1, 224, 224, 3), (7, 7, 3, 96), 2, [[0, 0], [1, 1], [1, 1], [0, 0]]) == 2
    assert kind((16, 64, 64, 3), (5, 5, 3, 128)) == 2          # DCGAN TF g4 turned round
    assert kind((1, 128, 128, 16), (3, 3, 16, 32), 1) == 2
    assert kind((1, 448, 448, 3), (3, 3, 3, 3)) == 1           # the planar sums
    assert kind((1, 56, 56, 32), (3, 3, 32, 64), 1) == 2       # 32 input channels
    assert kind((1, 56, 56, 64), (3, 3, 64, 64), 1) == 2       # the stride-1 3x3 layer
    assert kind((16, 56, 56, 64), (3, 3, 64, 64), 1) == 2      # ... 9.4 MB of parts
    assert kind((1, 56, 56, 65), (3, 3, 65, 64), 1) == 0       # 65 input channels
    assert kind((1, 32, 32, 64), (4, 4, 64, 128)) == 0         # rows of 16 pixels
    assert kind((1, 48, 48, 64), (4, 4, 64, 128)) == 2         # rows of 24
    assert kind((16, 256, 256, 32), (2, 2, 32, 64)) == 0       # 16.8 MB of parts
    assert kind((1, 16, 16, 3), (4, 4, 3, 64)) == 2            # rows of 8 pixels
    assert kind((1, 14, 14, 3), (4, 4, 3, 64)) == 0            # rows of 7
    # 1-D (height 1), through the driver (no public 1-D filter gradient)
    r = np.random.default_rng(9)
    x = (r.integers(-8, 9, (2, 301, 3)) / 4).astype(np.float32)
    dy = (r.integers(-8, 9, (2, 151, 40)) / 4).astype(np.float32)
    geom = _geometry.forward_geometry(1, x, np.empty((5, 3, 40), np.float32), 2, "SAME",
                                      "NWC", None)
    assert _conv.planar_filter_gradient(geom.kernel_args()) == 2
    got = np.full((5, 3, 40), np.nan, np.float32)
    _driver.run(geom, x, dy, got, "backprop_filter")
    np.testing.assert_array_equal(
        got, _reference.conv_backprop_filter_nd(1, x, (5, 3, 40), dy, 2, "SAME", "NWC"))
    # bitwise the same at 1, 2 and 3 threads (bands fixed by the shapes), close to float64
    r = np.random.default_rng(8)
    x = r.standard_normal((1, 150, 130, 3)).astype(np.float32)
    dy = r.standard_normal((1, 75, 65, 40)).astype(np.float32)
    assert kind(x.shape, (5, 5, 3, 40)) == 2
    want = _reference.conv_backprop_filter_nd(2, x.astype(np.float64), (5, 5, 3, 40),
                                              dy.astype(np.float64), 2, "SAME", "NHWC")
    got = _same_at_each_thread_count(
        lambda: cdeconv.conv2d_backprop_filter(x, (5, 5, 3, 40), dy, 2, "SAME"))
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())
    _conv.set_planar_filter_gradient(0)
    try:
        other = cdeconv.conv2d_backprop_filter(x, (5, 5, 3, 40), dy, 2, "SAME")
    finally:
        _conv.set_planar_filter_gradient(1)
    assert not np.array_equal(got, other)            # the planar GEMM did run: its order
    # Inf in DY at a border output meets the padding rows and columns: 0 * Inf = NaN
    # there, as in the reference (zeros times DY, as im2col + GEMM: no fallback); NaN in
    # an input column that no output reads (VALID, columns left over) reaches nothing
    x = np.ones((1, 40, 41, 2), np.float32)
    dy = np.ones((1, 40, 41, 20), np.float32)
    dy[0, 0, 4, 1] = np.inf
    dy[0, 39, 40, 7] = -np.inf
    dy[0, 20, 0, 19] = np.nan
    assert kind(x.shape, (3, 3, 2, 20), 1) == 2
    got, want = _filter_gradient_and_reference(x, (3, 3, 2, 20), dy, 1, "SAME")
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    assert np.isnan(want).any() and np.isinf(want).any()
    np.testing.assert_array_equal(np.isinf(got), np.isinf(want))
    np.testing.assert_array_equal(got[np.isfinite(want)], want[np.isfinite(want)])
    x = np.ones((1, 40, 42, 2), np.float32)
    x[0, 3, 41, 1] = np.nan
    dy = np.ones((1, 19, 20, 20), np.float32)
    assert kind(x.shape, (3, 3, 2, 20), 2, "VALID") == 2
    got, want = _filter_gradient_and_reference(x, (3, 3, 2, 20), dy, 2, "VALID")
    assert not np.isnan(want).any()
    np.testing.assert_array_equal(got, want)


# the transposed conv on planes of the small side (algo 8): (small-side channels,
# big-side channels, kernel, stride, dilation, padding); column phases no tap reaches
# (1x1 stride 4), strides 3 and 8, dilation, every padding form
TPLANAR_CASES = [
    (3, 3, (3, 3), 2, 1, "SAME"),                # article_rgb224
    (128, 3, (5, 5), 2, 1, "SAME"),              # DCGAN TF g4
    (96, 3, (7, 7), 2, 1, [[0, 0], [1, 1], [1, 1], [0, 0]]),   # ZFNet
    (56, 1, (9, 9), 2, 1, "SAME"),               # FSRCNN
    (5, 8, (4, 5), (1, 3), 1, "VALID"),
    (2, 5, (3, 3), 1, (2, 2), [[0, 0], [2, 1], [0, 3], [0, 0]]),
    (16, 2, (7, 7), 3, 1, "SAME"),
    (33, 7, (1, 9), (1, 4), (1, 2), "SAME"),
    (17, 4, (2, 2), 2, 1, "VALID"),
    (48, 6, (3, 1), (2, 1), (3, 1), [[0, 0], [0, 2], [5, 0], [0, 0]]),
    (4, 2, (1, 1), 4, 1, "VALID"),
    (4, 2, (2, 2), 3, 2, "SAME"),
    (3, 2, (3, 9), (2, 8), 1, "SAME"),
]


@pytest.mark.parametrize("case", TPLANAR_CASES, ids=lambda c: f"cin{c[0]}-cout{c[1]}-k{c[2]}")
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_planar_transpose_matches_the_reference(case, dtype, isa, rng):
    cin, cout, k, s, d, padding = case
    for batch, hw in [(2, (19, 23)), (1, (40, 9)), (3, (5, 70)), (1, (1, 1))]:
        x = dyadic(rng, (batch,) + hw + (cin,), dtype)
        w = dyadic(rng, k + (cout, cin), dtype)
        try:
            want = _reference.conv2d_transpose(x, w, None, s, padding, "NHWC", d)
        except ValueError:
            continue                            # no big side for this input
        got = _run(2, x, w, s, padding, d, algo=8)
        np.testing.assert_array_equal(got, want, err_msg=f"{isa}, batch {batch}, {hw}")


def test_planar_transpose_rule_1d_threads_nonfinite_and_bounds(rng):
    # the rule: few channels in and out where phase rows does not go (under 256
    # pixels); deep inputs and one output channel go elsewhere
    assert _algo((1, 224, 224, 3), (3, 3, 3, 3)) == 5
    assert _algo((16, 64, 64, 4), (3, 3, 2, 4)) == 5
    assert _algo((1, 8, 8, 3), (3, 3, 3, 3)) == _driver.TPLANAR
    assert _algo((3, 5, 10, 4), (3, 3, 2, 4)) == _driver.TPLANAR
    assert _algo((1, 32, 32, 128), (5, 5, 3, 128)) != _driver.TPLANAR
    assert _algo((1, 64, 64, 3), (3, 3, 1, 3)) != _driver.TPLANAR
    assert _algo((1, 64, 64, 3), (3, 3, 16, 3)) != _driver.TPLANAR
    x = dyadic(rng, (3, 301, 5))
    w = dyadic(rng, (5, 3, 5))
    np.testing.assert_array_equal(_run(1, x, w, 2, "SAME", algo=8),
                                  _reference.conv_transpose_nd(1, x, w, None, 2, "SAME",
                                                               "NWC"))
    # many tasks (row bands) at 1, 2 and 3 threads: bitwise the same
    r = np.random.default_rng(7)
    x = r.standard_normal((3, 150, 130, 6)).astype(np.float32)
    w = r.standard_normal((4, 4, 3, 6)).astype(np.float32)
    got = _same_at_each_thread_count(lambda: _run(2, x, w, 2, "SAME", algo=8))
    want = _reference.conv2d_transpose(x.astype(np.float64), w.astype(np.float64), None, 2,
                                       "SAME")
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())
    # NaN and Inf in X reach exactly the outputs they touch
    x = np.ones((1, 12, 12, 5), np.float32)
    x[0, 2, 2, 3] = np.nan
    x[0, 9, 5, 0] = np.inf
    w = np.ones((3, 3, 4, 5), np.float32)
    assert_nonfinite_like_reference(_run(2, x, w, 2, "SAME", algo=8), x, w)
    # an Inf/NaN filter entry at a tap past the edge for some outputs: TF drops the tap
    # there (finite sums), where the planes' zeros would give 0 * Inf = NaN; the call
    # takes GEMM + col2im
    for hw in (3, 6, 20):
        x = np.ones((1, hw, hw, 3), np.float32)
        w = np.ones((3, 3, 8, 3), np.float32)
        w[2, 2, 5, 0] = np.inf
        w[0, 0, 3, 2] = -np.inf
        w[2, 1, 7, 0] = np.nan
        got = _run(2, x, w, 2, "SAME", algo=8)
        want = _reference.conv_transpose_nd(2, x.astype(np.float64), w.astype(np.float64),
                                            None, 2, "SAME", "NHWC")
        np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
        np.testing.assert_array_equal(np.isinf(got), np.isinf(want))
        assert np.isinf(want).any() and not np.isnan(want[..., 5]).any()
        finite = np.isfinite(want)
        np.testing.assert_array_equal(got[finite], want[finite])
    # outside the kernel's reach: a clear error when forced
    x = np.ones((1, 6, 6, 4), np.float32)
    with pytest.raises(ValueError, match="planar"):
        _run(2, x, np.ones((3, 3, 9, 4), np.float32), 2, "SAME", algo=8)
    with pytest.raises(ValueError, match="planar"):
        _run(2, x, np.ones((3, 3, 2, 4), np.float32), 2, "SAME", groups=2, algo=8)
    with pytest.raises(ValueError, match="planar"):
        _run(2, x, np.ones((1, 2, 2, 4), np.float32), (1, 9), "VALID", algo=8)


def test_igemm_isa_is_reported():
    simd = cdeconv.show_config("dicts")["simd"]
    assert simd["igemm_kernel"] == simd["dot_kernel"] == _conv.dot_isa()


@pytest.mark.parametrize("algo,cs,cb", [
    (a, cs, cb) for cs, cb in [(1, 32), (20, 20), (64, 64)]
    for a in ([0, 1, 5, 7] if cs <= 2 else [0, 2, 3, 4, 5, 7])])
@pytest.mark.parametrize("hw", [3, 6, 20])
def test_every_kernel_drops_inf_filter_taps_past_the_edge(isa, algo, cs, cb, hw):
    """An Inf/NaN filter entry at a tap that falls past the edge for some outputs: TF
    (col2im) drops the tap there and gives finite sums, not 0 * Inf = NaN. igemm and
    phase rows, which read a zero row for such taps, see the non-finite filter (in the
    pack, or a check) and run GEMM + col2im instead; scatter rows never adds a tap past
    the edge into Y; forced here, so every path is covered whatever the dispatcher
    picks."""
    x = np.ones((1, hw, hw, cs), np.float32)
    w = np.ones((3, 3, cb, cs), np.float32)
    w[2, 2, 5, 0] = np.inf              # past the edge for the first output row/column
    w[0, 0, 3, cs - 1] = -np.inf        # past the far edge (SAME crops one at the end)
    w[2, 1, cb - 1, 0] = np.nan
    got = run_kernel(algo, 2, x, w, 2, "SAME")
    want = _reference.conv_transpose_nd(2, x.astype(np.float64), w.astype(np.float64),
                                        None, 2, "SAME", "NHWC")
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_array_equal(np.isinf(got), np.isinf(want))
    assert np.isinf(want).any() and not np.isnan(want[..., 5]).any()
    finite = np.isfinite(want)
    np.testing.assert_array_equal(got[finite], want[finite])


@pytest.mark.parametrize("cout,algo", [(8, 5), (16, 1)])
def test_phase_rows_layers_with_an_inf_filter_match_tf_at_the_edges(cout, algo):
    """A tap past the edge contributes nothing in TF (col2im drops it), not 0 * Inf = NaN:
    a phase-rows layer whose filter holds Inf/NaN takes GEMM + col2im (found by the
    property test: one pixel of Inf, a 2-tap filter with Inf in the tap past the edge);
    the direct kernel (16 outputs: its register path) never reads such a tap; the
    dispatcher's own choice, end to end."""
    x = np.full((1, 1, 1), np.inf, np.float32)
    w = np.ones((2, cout, 1), np.float32)
    w[1, 5, 0] = np.inf
    w[0, 5, 0] = -1.75
    geom = _geometry.transposed_geometry(1, x, w, None, 1, "VALID", "NWC", None)
    assert _driver.choose_transpose_algo(geom) == algo
    got = cdeconv.conv1d_transpose(x, w, None, 1, "VALID")
    want = _reference.conv_transpose_nd(1, x.astype(np.float64), w.astype(np.float64),
                                        None, 1, "VALID", "NWC")
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    assert got[0, 0, 5] == -np.inf and got[0, 1, 5] == np.inf


def test_scatter_rows_bits_do_not_depend_on_the_band(rng):
    """Each scatter-rows output is a sum in one fixed order (small rows, taps, runs)
    whatever the band of big rows its task owns: bitwise the same for 1-256 small rows
    per task (random data, so any order change shows), stride 3 and dilation 2 too.
    Rows narrower than a run of pixels (20, 30 columns) put several small rows in one
    run: the runs must not move with the band."""
    _conv.set_scatter_rows(16)
    for cin, cout, k, s, d, hw in [(56, 1, (9, 9), 2, 1, (23, 70)),
                                   (56, 1, (9, 9), 2, 1, (17, 20)),
                                   (40, 2, (3, 5), 3, (2, 1), (23, 30)),
                                   (130, 3, (5, 5), 2, 1, (23, 70))]:
        x = rng.standard_normal((2,) + hw + (cin,)).astype(np.float32)
        w = rng.standard_normal(k + (cout, cin)).astype(np.float32)
        outs = []
        try:
            for rows in (1, 3, 16, 256):
                _conv.set_scatter_rows(rows)
                outs.append(_run(2, x, w, s, "SAME", d, algo=7))
        finally:
            _conv.set_scatter_rows(16)
        for y in outs[1:]:
            np.testing.assert_array_equal(y, outs[0])
        want = _reference.conv2d_transpose(x.astype(np.float64), w.astype(np.float64),
                                           None, s, "SAME", "NHWC", d)
        np.testing.assert_allclose(outs[0], want, rtol=1e-4, atol=1e-4 * abs(want).max())


def test_scatter_rows_hook_and_scratch_bound():
    for bad in (0, 257):
        with pytest.raises(ValueError, match="scatter rows"):
            _conv.set_scatter_rows(bad)
    # a very wide image: the kernel takes fewer big rows per task (its scratch stays
    # bounded) and the answer is unchanged
    rng = np.random.default_rng(5)
    x = rng.standard_normal((1, 6, 3000, 8)).astype(np.float32)
    w = rng.standard_normal((9, 9, 1, 8)).astype(np.float32)
    geom = _geometry.transposed_geometry(2, x, w, None, 2, "SAME", "NHWC", None)
    assert _conv.scatter_rows_scratch_bytes(geom.kernel_args()) < 1 << 20
    got = _run(2, x, w, 2, "SAME", algo=7)
    want = _reference.conv2d_transpose(x.astype(np.float64), w.astype(np.float64), None,
                                       2, "SAME", "NHWC")
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * abs(want).max())
