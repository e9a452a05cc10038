"""Shared test helpers: data factories, tolerances, and chunking control.

Exactness. ``dyadic`` arrays hold multiples of 1/8 in [-2, 2]: every product is a
multiple of 1/64 of magnitude <= 4, so any sum of fewer than 2**16 of them is exact in
float32 (24-bit mantissa) and float64, *whatever the summation order*. Comparisons on
such data are therefore exact (assert_array_equal), which catches off-by-one index bugs
that a tolerance would hide. Random-normal data is compared with ``tol``.
"""
import numpy as np
import pytest

from cdeconv import _driver

DTYPES = [np.float32, np.float64]


def dyadic(rng, shape, dtype=np.float64):
    return (rng.integers(-16, 17, size=shape) / 8).astype(dtype)


def tol(dtype, n_terms):
    """Absolute tolerance for unit-scale random-normal data, n_terms products per output.

    Rounding errors of a length-K dot product of O(1) terms grow like sqrt(K) * eps
    on average (K * eps worst case); allow 8 * sqrt(K) * eps * sqrt(K) = 8 K eps, i.e.
    the worst-case bound with a factor 8 of headroom for the output magnitude ~sqrt(K).
    """
    eps = np.finfo(dtype).eps
    return 8 * max(n_terms, 1) * eps


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


@pytest.fixture(params=["default-chunks", "one-row-chunks"])
def chunking(request, monkeypatch):
    """Run a test with the normal column-buffer budget and with 1-byte chunks (one small
    row per chunk), so chunk boundaries are exercised on every shape."""
    if request.param == "one-row-chunks":
        monkeypatch.setattr(_driver, "CHUNK_BYTES", 1)
    return request.param


#: the instruction-set builds of the C kernels (src/_dot.c)
ISAS = ["baseline", "avx2", "avx512"]


@pytest.fixture(params=ISAS)
def isa(request):
    """Run the test with the C kernels (dot, igemm) capped at one instruction set."""
    from cdeconv import _conv
    got = _conv.cap_dot_isa(request.param)
    if got != request.param:
        _conv.cap_dot_isa("avx512")
        pytest.skip(f"this CPU has no {request.param}")
    yield got
    _conv.cap_dot_isa("avx512")


def run_kernel(algo, n, x, w, s, padding, d=None, groups=1):
    """The transposed conv of channels-last x through kernel ``algo`` of
    cdeconv._driver, forced (whatever the dispatcher would pick), into a NaN-filled
    output so an element the kernel never writes shows."""
    from cdeconv import _geometry
    fmt = {1: "NWC", 2: "NHWC", 3: "NDHWC"}[n]
    geom = _geometry.transposed_geometry(n, x, w, None, s, padding, fmt, d, groups)
    y = np.full(geom.shape("big"), np.nan, x.dtype)
    _driver.run(geom, x, w, y, "transpose", algo=algo)
    return y


def transpose_algo(x_shape, w_shape, s=2, padding="SAME", fmt="NHWC", groups=1):
    """The kernel cdeconv._driver picks for a 2-D transposed conv of these shapes."""
    from cdeconv import _geometry
    geom = _geometry.transposed_geometry(2, np.empty(x_shape, np.float32),
                                         np.empty(w_shape, np.float32), None, s, padding,
                                         fmt, None, groups)
    return _driver.choose_transpose_algo(geom)


def assert_nonfinite_like_reference(got, x, w):
    """got (a 2-D stride-2 SAME transposed conv of x with w, NaN/Inf inside) has its NaN
    and Inf exactly where the float64 reference has them, and is equal elsewhere (the
    caller's data keeps the finite sums exact)."""
    from cdeconv import _reference
    want = _reference.conv2d_transpose(x.astype(np.float64), w.astype(np.float64), None,
                                       2, "SAME")
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_array_equal(np.isinf(got), np.isinf(want))
    assert np.isnan(got).any() and np.isinf(got).any()
    finite = np.isfinite(want)
    np.testing.assert_array_equal(got[finite], want[finite])
