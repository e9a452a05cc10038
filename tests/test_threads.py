"""Threads: the count is honoured, results are bitwise identical for every count, and
concurrent calls from Python threads are safe (the kernels drop the GIL)."""
import os
import subprocess
import sys
import threading

import numpy as np
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

import cdeconv
from cdeconv import _conv, _driver, _openmp_helpers, _threads

needs_openmp = pytest.mark.skipif(not _openmp_helpers.openmp_enabled(),
                                  reason="built without OpenMP")


@pytest.fixture(autouse=True)
def _reset_threads():
    yield
    cdeconv.set_num_threads(None)


# Shapes big enough to cut the GEMM into several tiles (>= 2 MFLOP) and the work into
# several chunks, on every path (NHWC / NCHW, transposed / forward, direct 1x1).
HEAVY = [
    dict(x=(3, 9, 10, 48), w=(5, 5, 32, 48), s=2, p="SAME", fmt="NHWC"),
    dict(x=(2, 48, 9, 10), w=(4, 4, 32, 48), s=2, p="SAME", fmt="NCHW"),
    dict(x=(2, 16, 16, 64), w=(1, 1, 64, 64), s=1, p="VALID", fmt="NHWC"),
    dict(x=(2, 64, 16, 16), w=(1, 1, 64, 64), s=1, p="VALID", fmt="NCHW"),
    dict(x=(2, 12, 12, 40), w=(3, 3, 20, 40), s=1, p="SAME", fmt="NHWC", groups=2),
    dict(x=(4, 20, 20, 1), w=(3, 3, 32, 1), s=2, p="SAME", fmt="NHWC"),   # direct kernel
]


def _run_all(rng_seed=7, chunk=None):
    rng = np.random.default_rng(rng_seed)
    outs = []
    old = _driver.CHUNK_BYTES
    if chunk is not None:
        _driver.CHUNK_BYTES = chunk
    try:
        for c in HEAVY:
            x = rng.normal(size=c["x"]).astype(np.float32)
            w = rng.normal(size=c["w"]).astype(np.float32)
            g = c.get("groups", 1)
            outs.append(cdeconv.conv2d_transpose(x, w, None, c["s"], c["p"], c["fmt"],
                                                 groups=g))
            wf = rng.normal(size=c["w"][:2] + (outs[-1].shape[-1 if c["fmt"] == "NHWC"
                                                               else 1] // g, 24))
            outs.append(cdeconv.conv2d(outs[-1], wf.astype(np.float32), c["s"], c["p"],
                                       c["fmt"]))
    finally:
        _driver.CHUNK_BYTES = old
    return outs


@needs_openmp
@pytest.mark.parametrize("chunk", [None, 4096])
def test_bitwise_identical_for_any_thread_count(chunk):
    cdeconv.set_num_threads(1)
    one = _run_all(chunk=chunk)
    for n in (2, 3, 4):
        cdeconv.set_num_threads(n)
        for a, b in zip(one, _run_all(chunk=chunk)):
            np.testing.assert_array_equal(a, b)


@needs_openmp
def test_threadpoolctl_openmp_limit_caps_cdeconv():
    assert cdeconv.get_num_threads() == min(_threads._CORES,
                                            _openmp_helpers.omp_max_threads())
    with threadpool_limits(1, user_api="openmp"):
        assert cdeconv.get_num_threads() == 1
        limited = _run_all()
    for a, b in zip(limited, _run_all()):
        np.testing.assert_array_equal(a, b)


def test_set_num_threads_validates():
    cdeconv.set_num_threads(1)
    assert cdeconv.get_num_threads() == 1
    cdeconv.set_num_threads(np.int64(1))
    for bad, exc in [(0, ValueError), (-1, ValueError), (1.5, TypeError),
                     ("2", TypeError), (True, TypeError)]:
        with pytest.raises(exc, match="n"):
            cdeconv.set_num_threads(bad)


@pytest.mark.parametrize("value,expect", [("1", "1"), ("bogus", "ValueError"),
                                          ("0", "ValueError")])
def test_environment_variable(value, expect):
    code = ("import cdeconv\n"
            "try:\n    print(cdeconv.get_num_threads())\n"
            "except ValueError as e:\n    print('ValueError', 'CDECONV_NUM_THREADS' in str(e))")
    env = dict(os.environ, CDECONV_NUM_THREADS=value)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    if expect == "ValueError":
        assert out.stdout.split() == ["ValueError", "True"]
    else:
        assert out.stdout.strip() == expect


def test_blas_is_single_threaded_inside_and_restored_after():
    def scipy_blas_threads():
        # the BLAS that scipy.linalg.cython_blas uses lives in scipy's own folder
        return [i["num_threads"] for i in threadpool_info()
                if i["user_api"] == "blas"
                and "scipy" in os.path.basename(os.path.dirname(i.get("filepath") or ""))]

    before = scipy_blas_threads()
    assert before, "scipy's BLAS not found by threadpoolctl"
    with _threads.blas_single_thread:
        assert all(n == 1 for n in scipy_blas_threads())
        with _threads.blas_single_thread:        # re-entrant
            assert all(n == 1 for n in scipy_blas_threads())
        assert all(n == 1 for n in scipy_blas_threads())
    assert scipy_blas_threads() == before


def test_concurrent_calls_from_python_threads():
    """8 Python threads, each running every heavy case with its own thread setting
    changes in between; every result must equal the serial one bitwise."""
    serial = _run_all()
    errors = []

    def worker(i):
        try:
            for _ in range(2):
                for a, b in zip(serial, _run_all()):
                    if not np.array_equal(a, b):
                        errors.append(f"thread {i}: mismatch")
                cdeconv.set_num_threads(1 + i % 2)   # changed while others compute
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(f"thread {i}: {exc!r}")

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not any(t.is_alive() for t in threads), "a worker hung"
    assert errors == []


@pytest.mark.parametrize("ta", [False, True])
@pytest.mark.parametrize("tb", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("mnk", [(1, 1, 1), (5, 3, 7), (300, 40, 90), (17, 400, 33),
                                 (1, 700, 40), (900, 1, 30), (1, 3000, 300)])
def test_row_major_gemm_wrapper(ta, tb, dtype, mnk, rng):
    m, n, k = mnk
    A = rng.normal(size=(k, m) if ta else (m, k)).astype(dtype)
    B = rng.normal(size=(n, k) if tb else (k, n)).astype(dtype)
    C = np.full((m, n), np.nan, dtype)
    with _threads.blas_single_thread:
        _conv._gemm_memview(A, B, C, ta, tb, 2)
    want = (A.T if ta else A).astype(np.float64) @ (B.T if tb else B)
    np.testing.assert_allclose(C, want, rtol=0, atol=8 * k * np.finfo(dtype).eps * 10)
