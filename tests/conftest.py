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
