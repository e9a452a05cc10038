"""Stress, leaks, fork-safety and determinism on every dispatch path (issue 7).

* determinism: identical bits for 1, 2 and 3 threads and across repeated calls, on each
  path the dispatcher can take (channels-last / channels-first GEMM, the direct 1x1
  stride-1 GEMM, kernel == stride "tiles", the direct transposed kernel, grouped,
  dilated, explicit padding; transposed / backprop_input / forward / filter gradient;
  1-, 2- and 3-D), each with the default column budget and with ``CHUNK_BYTES = 1``;
* concurrency: 8 Python threads run every path at once while the process-wide thread
  count changes under them; every result is compared bitwise with a serial run;
* fork-safety: an op in a ``multiprocessing`` 'fork' child after the OpenMP runtime has
  started in the parent (with a timeout: a hang fails, it never blocks the suite), and
  in a 'forkserver' child;
* leaks: RSS stays flat over 10**4 calls of each op (10**5 with CDECONV_SLOW_TESTS=1);
* memory: the column buffer stays bounded for long rows (1-D signals).

``python tests/test_stress.py --exercise`` runs every path once (no pytest): the script
used under valgrind (docs/reliability.md).
"""
import gc
import multiprocessing
import os
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest

import cdeconv
from cdeconv import _driver, _geometry, _openmp_helpers

SLOW = os.environ.get("CDECONV_SLOW_TESTS", "0") not in ("", "0")
needs_openmp = pytest.mark.skipif(
    not _openmp_helpers.openmp_enabled() or _openmp_helpers.omp_max_threads() < 2,
    reason="needs an OpenMP build and >= 2 OpenMP threads")
slow = pytest.mark.skipif(not SLOW, reason="slow: set CDECONV_SLOW_TESTS=1")
#: under AddressSanitizer (tools/sanitize.sh preloads libasan) freed memory sits in a
#: quarantine and large blocks are mapped lazily: RSS says nothing about leaks there
not_asan = pytest.mark.skipif("libasan" in os.environ.get("LD_PRELOAD", ""),
                              reason="RSS is meaningless under ASan")


# ------------------------------------------------------------------ every path

def _normal(rng, shape, dtype=np.float32):
    return rng.normal(size=shape).astype(dtype)


def _paths():
    """{name: fn(rng) -> ndarray}: one call per dispatch path, big enough (>= 256
    kFLOP, >= 2 MFLOP GEMMs) that several threads and GEMM tiles really run."""
    P = {}
    T2, F2 = cdeconv.conv2d_transpose, cdeconv.conv2d

    def t(name, xs, ws, s, p, fmt="NHWC", d=None, groups=1, dtype=np.float32,
          shape=None):
        P[f"transpose2d-{name}"] = lambda r: T2(_normal(r, xs, dtype), _normal(r, ws, dtype),
                                                 shape, s, p, fmt, d, groups=groups)

    def f(name, xs, ws, s, p, fmt="NHWC", d=None, dtype=np.float32):
        P[f"conv2d-{name}"] = lambda r: F2(_normal(r, xs, dtype), _normal(r, ws, dtype), s,
                                            p, fmt, d)

    def bf(name, xs, wshape, s, p, fmt="NHWC", d=None):
        def run(r):
            x = _normal(r, xs)
            dy_shape = F2(x, np.zeros(wshape, np.float32), s, p, fmt, d).shape
            return cdeconv.conv2d_backprop_filter(x, wshape, _normal(r, dy_shape), s, p,
                                                  fmt, d)
        P[f"backprop_filter-{name}"] = run

    t("nhwc-gemm", (2, 8, 13, 24), (3, 3, 12, 24), 2, "SAME")            # 208 pixels
    t("nhwc-igemm", (2, 12, 13, 24), (3, 3, 40, 24), 2, "SAME")          # 2.5 vectors
    t("nhwc-igemm-float64", (2, 12, 13, 24), (4, 4, 20, 24), 2, "SAME", dtype=np.float64)
    t("nchw-gemm", (2, 24, 12, 13), (3, 3, 32, 24), 2, "SAME", "NCHW")
    t("nhwc-1x1", (2, 16, 16, 48), (1, 1, 40, 48), 1, "VALID")
    t("nchw-1x1", (2, 48, 16, 16), (1, 1, 40, 48), 1, "VALID", "NCHW")
    t("nhwc-tiles", (2, 8, 12, 24), (2, 2, 12, 24), 2, "VALID")
    t("nhwc-igemm-tiles", (2, 12, 12, 24), (3, 3, 32, 24), 2, "VALID")
    t("nhwc-direct-one-tap", (2, 12, 12, 24), (2, 2, 32, 24), 2, "VALID")  # 288 pixels
    t("nchw-tiles", (2, 24, 12, 12), (2, 2, 32, 24), 2, "VALID", "NCHW")
    t("nhwc-rows-1in", (3, 24, 24, 1), (3, 3, 8, 1), 2, "SAME")
    t("nhwc-direct-16out", (3, 24, 24, 1), (3, 3, 16, 1), 2, "SAME")   # register path
    t("nhwc-rows-2in", (2, 20, 20, 2), (4, 4, 12, 2), 2, "SAME")
    t("nhwc-rows-head", (3, 40, 40, 40), (5, 5, 3, 40), 2, "SAME")      # 4800 pixels
    t("nhwc-rows-float64", (3, 40, 40, 13), (3, 3, 3, 13), 2, "SAME", dtype=np.float64)
    t("nhwc-planar", (1, 12, 20, 3), (3, 3, 3, 3), 2, "SAME")        # < 256 pixels
    t("nhwc-planar-float64", (2, 10, 12, 2), (4, 4, 6, 2), 2, "SAME", dtype=np.float64)
    t("nhwc-direct", (1, 3, 300, 1), (3, 3, 256, 1), 2, "SAME")
    t("nhwc-direct-1in", (3, 24, 24, 1), (3, 3, 32, 1), 2, "SAME")
    t("nhwc-direct-one-tap", (1, 32, 32, 24), (2, 2, 40, 24), 2, "VALID")
    t("nhwc-dot-few-pixels", (1, 2, 4, 160), (4, 4, 24, 160), 2, "SAME")
    t("nhwc-lanes", (1, 4, 4, 160), (4, 4, 24, 160), 2, "SAME")
    t("nhwc-lanes-chunks", (2, 8, 9, 40), (3, 3, 20, 40), 2, "SAME")     # 144 pixels
    t("nhwc-lanes-float64", (1, 4, 5, 64), (3, 3, 10, 64), 2, "SAME", dtype=np.float64)
    t("nhwc-one-out", (1, 12, 20, 40), (5, 5, 1, 40), 2, "SAME")         # unrolled col2im
    t("nhwc-scatter", (2, 24, 20, 40), (5, 5, 1, 40), 2, "SAME")
    t("nhwc-scatter-float64", (2, 20, 21, 130), (3, 3, 3, 130), 2, "SAME", dtype=np.float64)
    t("nhwc-unpacked-gemm", (2, 4, 4, 160), (9, 9, 3, 160), 2, "SAME")   # 32-row GEMMs
    t("nhwc-dot-float64", (1, 2, 4, 136), (3, 3, 12, 136), 2, "SAME", dtype=np.float64)
    t("nhwc-grouped", (2, 12, 12, 40), (3, 3, 20, 40), 1, "SAME", groups=2)
    t("nchw-depthwise", (2, 16, 12, 12), (3, 3, 4, 16), 2, "SAME", "NCHW", groups=16)
    t("nhwc-dilated", (2, 12, 12, 16), (3, 3, 24, 16), 1, "SAME", d=2)
    t("nchw-explicit", (2, 16, 11, 12), (4, 3, 24, 16), 2,
      [[0, 0], [0, 0], [1, 2], [0, 1]], "NCHW")
    t("nhwc-float64", (2, 12, 12, 16), (3, 3, 24, 16), 2, "SAME", dtype=np.float64)
    P["backprop_input-nhwc"] = lambda r: cdeconv.conv2d_backprop_input(
        [2, 25, 26, 24], _normal(r, (3, 3, 24, 32)), _normal(r, (2, 13, 13, 32)), 2, "SAME")
    P["backprop_input-nchw"] = lambda r: cdeconv.conv2d_backprop_input(
        [2, 24, 25, 26], _normal(r, (3, 3, 24, 32)), _normal(r, (2, 32, 13, 13)),
        [1, 1, 2, 2], "SAME", "NCHW")
    f("nhwc-gemm", (2, 24, 25, 24), (3, 3, 24, 32), 2, "SAME")
    f("nchw-gemm", (2, 24, 24, 25), (3, 3, 24, 32), 2, "SAME", "NCHW")
    f("nhwc-1x1", (2, 16, 16, 48), (1, 1, 48, 40), 1, "VALID")
    f("nchw-1x1", (2, 48, 16, 16), (1, 1, 48, 40), 1, "VALID", "NCHW")
    f("nhwc-grouped", (2, 12, 12, 40), (3, 3, 10, 40), 1, "SAME")
    f("nchw-depthwise", (2, 16, 20, 20), (3, 3, 1, 32), 1, "SAME", "NCHW")
    f("nhwc-dilated", (2, 20, 20, 16), (3, 3, 16, 24), 1, "VALID", d=2)
    f("nhwc-float64", (2, 16, 16, 16), (3, 3, 16, 24), 1, "SAME", dtype=np.float64)
    bf("nhwc", (2, 20, 21, 16), (3, 3, 16, 24), 2, "SAME")
    bf("nchw", (2, 16, 20, 21), (3, 3, 16, 24), 2, "SAME", "NCHW")
    bf("nhwc-1x1", (2, 16, 16, 48), (1, 1, 48, 40), 1, "VALID")
    bf("nchw-1x1", (2, 48, 16, 16), (1, 1, 48, 40), 1, "VALID", "NCHW")
    bf("nhwc-grouped", (2, 12, 12, 40), (3, 3, 10, 40), 1, "SAME")
    bf("nchw-dilated", (2, 16, 20, 20), (3, 3, 16, 24), 1, "SAME", "NCHW", 2)
    P["transpose1d-nwc"] = lambda r: cdeconv.conv1d_transpose(
        _normal(r, (2, 200, 16)), _normal(r, (5, 24, 16)), None, 3)
    P["transpose1d-ncw"] = lambda r: cdeconv.conv1d_transpose(
        _normal(r, (2, 16, 200)), _normal(r, (5, 24, 16)), None, 3, "VALID", "NCW")
    P["transpose3d-ndhwc"] = lambda r: cdeconv.conv3d_transpose(
        _normal(r, (1, 6, 7, 8, 16)), _normal(r, (3, 3, 3, 16, 16)), None, 2)
    P["transpose3d-ncdhw"] = lambda r: cdeconv.conv3d_transpose(
        _normal(r, (1, 16, 6, 7, 8)), _normal(r, (2, 3, 2, 16, 16)), None, [1, 2, 1],
        "SAME", "NCDHW")
    P["conv1d-nwc"] = lambda r: cdeconv.conv1d(_normal(r, (2, 300, 16)),
                                               _normal(r, (5, 16, 24)), 2, "SAME")
    P["conv1d-ncw"] = lambda r: cdeconv.conv1d(_normal(r, (2, 16, 300)),
                                               _normal(r, (5, 16, 24)), 1, "VALID", "NCW")
    P["conv3d-ndhwc"] = lambda r: cdeconv.conv3d(_normal(r, (1, 8, 9, 10, 16)),
                                                 _normal(r, (3, 3, 3, 16, 16)), 1, "SAME")
    P["conv3d-ncdhw"] = lambda r: cdeconv.conv3d(_normal(r, (1, 16, 8, 9, 10)),
                                                 _normal(r, (3, 2, 3, 16, 16)), 2, "SAME",
                                                 "NCDHW")
    return P


PATHS = _paths()


def _run_path(name, chunk=None, seed=0):
    old = _driver.CHUNK_BYTES
    if chunk is not None:
        _driver.CHUNK_BYTES = chunk
    try:
        return PATHS[name](np.random.default_rng(seed))
    finally:
        _driver.CHUNK_BYTES = old


@pytest.fixture(autouse=True)
def _reset():
    yield
    cdeconv.set_num_threads(None)


def test_paths_cover_every_dispatch_choice():
    """The shapes above really take the paths their names say."""
    def geom(x, w, s, p, fmt="NHWC", groups=1):
        return _geometry.transposed_geometry(2, np.empty(x), np.empty(w), None, s, p, fmt,
                                             None, groups)
    assert _driver.choose_transpose_algo(geom((3, 24, 24, 1), (3, 3, 8, 1), 2, "SAME")) == 5
    assert _driver.choose_transpose_algo(geom((3, 24, 24, 1), (3, 3, 16, 1), 2, "SAME")) == 1
    assert _driver.choose_transpose_algo(geom((2, 20, 20, 2), (4, 4, 12, 2), 2, "SAME")) == 5
    assert _driver.choose_transpose_algo(geom((2, 10, 12, 2), (4, 4, 6, 2), 2, "SAME")) == 8
    assert _driver.choose_transpose_algo(geom((3, 40, 40, 40), (5, 5, 3, 40), 2,
                                              "SAME")) == 5
    assert _driver.choose_transpose_algo(geom((3, 40, 40, 13), (3, 3, 3, 13), 2,
                                              "SAME")) == 5
    assert _driver.choose_transpose_algo(geom((1, 12, 20, 3), (3, 3, 3, 3), 2, "SAME")) == 8
    assert _driver.choose_transpose_algo(geom((1, 3, 300, 1), (3, 3, 256, 1), 2,
                                              "SAME")) == 1
    assert _driver.choose_transpose_algo(geom((3, 24, 24, 1), (3, 3, 32, 1), 2, "SAME")) == 1
    assert _driver.choose_transpose_algo(geom((1, 32, 32, 24), (2, 2, 40, 24), 2,
                                              "VALID")) == 1
    assert _driver.choose_transpose_algo(geom((1, 2, 4, 160), (4, 4, 24, 160), 2,
                                              "SAME")) == 2
    assert _driver.choose_transpose_algo(geom((1, 4, 4, 160), (4, 4, 24, 160), 2,
                                              "SAME")) == 4
    assert _driver.choose_transpose_algo(geom((2, 8, 9, 40), (3, 3, 20, 40), 2,
                                              "SAME")) == 4
    assert _driver.choose_transpose_algo(geom((1, 4, 5, 64), (3, 3, 10, 64), 2,
                                              "SAME")) == 4
    assert _driver.choose_transpose_algo(geom((1, 12, 20, 40), (5, 5, 1, 40), 2,
                                              "SAME")) == 0
    assert _driver.choose_transpose_algo(geom((2, 24, 20, 40), (5, 5, 1, 40), 2,
                                              "SAME")) == 7
    assert _driver.choose_transpose_algo(geom((2, 20, 21, 130), (3, 3, 3, 130), 2,
                                              "SAME")) == 7
    assert _driver.choose_transpose_algo(geom((1, 2, 4, 136), (3, 3, 12, 136), 2,
                                              "SAME")) == 2
    assert _driver.choose_transpose_algo(geom((2, 8, 13, 24), (3, 3, 12, 24), 2,
                                              "SAME")) == 0
    assert _driver.choose_transpose_algo(geom((2, 12, 13, 24), (3, 3, 40, 24), 2,
                                              "SAME")) == 3
    assert _driver.choose_transpose_algo(geom((2, 12, 13, 24), (4, 4, 20, 24), 2,
                                              "SAME")) == 3
    assert _driver.choose_transpose_algo(geom((2, 8, 12, 24), (2, 2, 12, 24), 2,
                                              "VALID")) == 0
    assert _driver.choose_transpose_algo(geom((2, 12, 12, 24), (3, 3, 32, 24), 2,
                                              "VALID")) == 3
    assert _driver.choose_transpose_algo(geom((2, 12, 12, 24), (2, 2, 32, 24), 2,
                                              "VALID")) == 1
    assert _driver.choose_transpose_algo(geom((2, 24, 12, 13), (3, 3, 32, 24), 2, "SAME",
                                              "NCHW")) == 0
    g = geom((2, 8, 12, 24), (2, 2, 12, 24), 2, "VALID")           # tiles
    assert g.k == g.s and all(p == (0, 0) for p in g.pads)
    g = geom((2, 16, 16, 48), (1, 1, 40, 48), 1, "VALID")          # direct 1x1 GEMM
    assert g.k == (1, 1) and g.s == (1, 1) and g.big == g.small


# ------------------------------------------------------------------ determinism

@needs_openmp
@pytest.mark.parametrize("chunk", [None, 1], ids=["default-chunks", "one-row-chunks"])
@pytest.mark.parametrize("name", sorted(PATHS))
def test_identical_bits_for_1_2_3_threads(name, chunk):
    cdeconv.set_num_threads(1)
    ref = _run_path(name, chunk)
    assert np.isfinite(ref).all() and ref.size
    np.testing.assert_array_equal(_run_path(name, chunk), ref)      # repeated call
    for n in (2, 3):
        cdeconv.set_num_threads(n)
        got = _run_path(name, chunk)
        assert got.dtype == ref.dtype
        np.testing.assert_array_equal(got, ref, err_msg=f"{name}, {n} threads")


@needs_openmp
@pytest.mark.parametrize("cf", [False, True])
@pytest.mark.parametrize("algo", [0, 1, 2, 5])
def test_forced_transpose_kernels_are_deterministic(algo, cf):
    """Every transposed kernel (GEMM + col2im, direct, dot, phase rows) forced through
    _driver.run."""
    if algo in (1, 2, 5) and cf:
        pytest.skip("the direct, dot and phase-rows kernels are channels-last only")
    rng = np.random.default_rng(3)
    x = _normal(rng, (2, 2, 17, 19) if cf else (2, 17, 19, 2))
    w = _normal(rng, (3, 3, 40, 2))
    geom = _geometry.transposed_geometry(2, x, w, None, 2, "SAME",
                                         "NCHW" if cf else "NHWC", None)
    outs = []
    for chunk in (None, 1):
        for n in (1, 2, 3):
            cdeconv.set_num_threads(n)
            y = np.full(geom.shape("big"), np.nan, np.float32)
            _driver.run(geom, x, w, y, "transpose", chunk_bytes=chunk, algo=algo)
            outs.append(y)
        for y in outs[-2:]:
            np.testing.assert_array_equal(y, outs[-3])
    ref = cdeconv.conv2d_transpose(x.astype(np.float64), w.astype(np.float64), None, 2,
                                   "SAME", "NCHW" if cf else "NHWC")
    np.testing.assert_allclose(outs[0], ref, rtol=1e-4, atol=1e-4)


# ------------------------------------------------------------------ concurrency

STRESS_PATHS = sorted(PATHS)
ROUNDS = 25 if SLOW else 4


@needs_openmp
def test_eight_python_threads_every_op_bitwise_equal_to_serial():
    """8 threads x 4 rounds (25 if CDECONV_SLOW_TESTS) x every path (~1200 calls), each thread setting its own
    process-wide thread count (1..3) before each call, one more thread toggling the count
    nonstop, and one running NumPy BLAS meanwhile: every result equals the serial one."""
    cdeconv.set_num_threads(1)
    serial = {name: _run_path(name, seed=i) for i, name in enumerate(STRESS_PATHS)}
    errors, calls = [], [0]
    lock = threading.Lock()
    stop = threading.Event()

    def worker(k):
        rng = np.random.default_rng(k)
        try:
            for _ in range(ROUNDS):
                for i in rng.permutation(len(STRESS_PATHS)):
                    name = STRESS_PATHS[i]
                    cdeconv.set_num_threads(int(rng.integers(1, 4)))
                    got = _run_path(name, seed=int(i))
                    if not np.array_equal(got, serial[name]):
                        errors.append(f"thread {k}: {name} differs")
                    with lock:
                        calls[0] += 1
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(f"thread {k}: {exc!r}")

    def toggler():
        i = 0
        while not stop.is_set():
            cdeconv.set_num_threads(1 + i % 3)
            i += 1
            time.sleep(0.0005)

    def blas_user():
        a = np.random.default_rng(0).normal(size=(300, 300))
        while not stop.is_set():
            a = np.tanh(a @ a.T / 300)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
    extra = [threading.Thread(target=toggler), threading.Thread(target=blas_user)]
    for t in extra + threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    stop.set()
    for t in extra:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads + extra), "a thread hung"
    assert errors == []
    assert calls[0] == 8 * ROUNDS * len(STRESS_PATHS)
    print(f"stress: 8 threads x {ROUNDS} rounds x {len(STRESS_PATHS)} paths = "
          f"{calls[0]} calls, all bitwise equal to the serial run")


# ------------------------------------------------------------------ fork-safety

def _fork_child(conn, threads):
    try:
        cdeconv.set_num_threads(threads)
        conn.send(("ok", _run_path("transpose2d-nhwc-gemm")))
    except BaseException as exc:  # pragma: no cover - reported to the parent
        conn.send(("error", repr(exc)))


def _run_in_child(method, threads, timeout=60):
    """Run an op in a child of the given start method; ('ok', result) / ('hang', None)."""
    ctx = multiprocessing.get_context(method)
    parent, child = ctx.Pipe()
    p = ctx.Process(target=_fork_child, args=(child, threads))
    p.start()
    try:
        if parent.poll(timeout):
            return parent.recv()
        return ("hang", None)
    finally:
        p.join(5)
        if p.is_alive():
            p.kill()
            p.join(5)


def _warm_openmp():
    cdeconv.set_num_threads(2)
    want = _run_path("transpose2d-nhwc-gemm")   # the OpenMP team now exists
    return want


@needs_openmp
def test_fork_child_after_openmp_started():
    """Found here: a 'fork' child of a parent whose libgomp pool had started deadlocked
    in GOMP_parallel as soon as it ran an op with >= 2 threads. Fixed in 0c0c07d (an
    at-fork hook makes such children run on one thread): the child must finish, with
    the same bits (results do not depend on the thread count)."""
    want = _warm_openmp()
    status, got = _run_in_child("fork", 2, timeout=15)
    assert status == "ok", f"child {status}: {got}"
    np.testing.assert_array_equal(got, want)


@needs_openmp
def test_fork_child_with_one_thread_works():
    """A fork child that asks for one thread (the pre-0c0c07d workaround) is fine."""
    want = _warm_openmp()
    status, got = _run_in_child("fork", 1, timeout=60)
    assert status == "ok", f"child {status}: {got}"
    np.testing.assert_array_equal(got, want)      # bitwise: any thread count


@needs_openmp
def test_forkserver_child_works():
    """The 'forkserver' start method (a fresh interpreter, full parallelism)."""
    want = _warm_openmp()
    status, got = _run_in_child("forkserver", 2, timeout=120)
    assert status == "ok", f"child {status}: {got}"
    np.testing.assert_array_equal(got, want)


# ------------------------------------------------------------------ leaks

def _rss():
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _tiny_ops():
    rng = np.random.default_rng(0)
    x2 = rng.normal(size=(1, 4, 4, 2)).astype(np.float32)
    w2t = rng.normal(size=(3, 3, 3, 2)).astype(np.float32)
    w2f = rng.normal(size=(3, 3, 2, 3)).astype(np.float32)
    dy = np.ones((1, 4, 4, 3), np.float32)
    x1 = rng.normal(size=(1, 6, 2))
    x3 = rng.normal(size=(1, 3, 3, 3, 2))
    pool_x = rng.normal(size=(1, 6, 6, 2))
    pooled, arg = cdeconv.max_pool_with_argmax(pool_x, 2, 2, "SAME")
    out = np.empty((1, 8, 8, 3), np.float32)
    bad_w = np.ones((3, 3, 3, 5), np.float32)

    def raises(fn):
        def call():
            try:
                fn()
            except (ValueError, TypeError):
                return
            raise AssertionError("expected an error")
        return call

    return {
        "conv2d_transpose": lambda: cdeconv.conv2d_transpose(x2, w2t, None, 2),
        "conv2d_transpose-out": lambda: cdeconv.conv2d_transpose(x2, w2t, None, 2,
                                                                 out=out),
        "conv2d_transpose-nchw": lambda: cdeconv.conv2d_transpose(
            x2.transpose(0, 3, 1, 2), w2t, None, 2, "SAME", "NCHW"),
        "conv2d_transpose-direct": lambda: cdeconv.conv2d_transpose(
            x2[..., :1], np.ones((2, 2, 32, 1), np.float32), None, 2),
        "conv1d_transpose": lambda: cdeconv.conv1d_transpose(x1, np.ones((3, 2, 2)),
                                                             None, 2),
        "conv3d_transpose": lambda: cdeconv.conv3d_transpose(x3, np.ones((2, 2, 2, 2, 2)),
                                                             None, 2),
        "conv2d_backprop_input": lambda: cdeconv.conv2d_backprop_input(
            [1, 4, 4, 2], w2f, dy, 1, "SAME"),
        "conv2d_backprop_filter": lambda: cdeconv.conv2d_backprop_filter(
            x2, [3, 3, 2, 3], dy, 1, "SAME"),
        "conv2d": lambda: cdeconv.conv2d(x2, w2f, 1, "SAME"),
        "conv2d-1x1": lambda: cdeconv.conv2d(x2, w2f[:1, :1], 1, "VALID"),
        "conv1d": lambda: cdeconv.conv1d(x1, np.ones((3, 2, 2)), 1, "SAME"),
        "conv3d": lambda: cdeconv.conv3d(x3, np.ones((2, 2, 2, 2, 2)), 1, "SAME"),
        "max_pool_with_argmax": lambda: cdeconv.max_pool_with_argmax(pool_x, 2, 2, "SAME"),
        "max_unpool": lambda: cdeconv.max_unpool(pooled, arg, pool_x.shape),
        "error-path": raises(lambda: cdeconv.conv2d_transpose(x2, bad_w, None, 2)),
        "error-output-shape": raises(lambda: cdeconv.conv2d_transpose(
            x2, w2t, [1, 9, 8, 3], 2)),
    }


def _leak_check(calls, bound_bytes):
    ops = _tiny_ops()
    report = {}
    for name, fn in ops.items():
        for _ in range(min(2000, calls)):     # warm-up: caches, arenas, pools
            fn()
        # two windows of `calls` calls: a leak grows RSS in both, a one-off step (the
        # allocator raising its mmap threshold or extending an arena after a big
        # allocation elsewhere in the process) in at most one
        growth = []
        for _ in range(2):
            gc.collect()
            before = _rss()
            for _ in range(calls):
                fn()
            gc.collect()
            growth.append(_rss() - before)
        report[name] = min(growth)
    print("RSS growth (bytes) over", calls, "calls:", report)
    bad = {k: v for k, v in report.items() if v > bound_bytes}
    assert not bad, f"RSS grew over {calls} calls: {bad}"


@not_asan
@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs /proc")
def test_rss_flat_over_10k_calls_of_each_op():
    cdeconv.set_num_threads(2)
    _leak_check(10_000, 1 << 20)          # < ~100 bytes per call


@slow
@not_asan
@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs /proc")
def test_rss_flat_over_100k_calls_of_each_op():
    cdeconv.set_num_threads(2)
    _leak_check(100_000, 2 << 20)         # < ~20 bytes per call


# ------------------------------------------------------------------ memory bound

_PEAK = textwrap.dedent("""
    import numpy as np, cdeconv
    from cdeconv import _driver

    def hwm():   # this process's own peak RSS (ru_maxrss would include the parent's
        with open("/proc/self/status") as fh:   # peak at fork/exec time)
            return next(int(l.split()[1]) * 1024 for l in fh if l.startswith("VmHWM"))
    x = np.ones((1, 2**18, 8), np.float32)        # 8 MiB signal
    w = np.ones((25, 8, 8), np.float32)
    cdeconv.set_num_threads(1)
    before = hwm()
    y = {call}
    print(hwm() - before, y.nbytes, _driver.CHUNK_BYTES)
""")


@not_asan
@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs /proc")
@pytest.mark.parametrize("call", ["cdeconv.conv1d(x, w, 1, 'SAME')",
                                  "cdeconv.conv1d_transpose(x, w, None, 1, 'SAME')"])
def test_column_buffer_bounded_for_long_rows(call):
    out = subprocess.run([sys.executable, "-c", _PEAK.format(call=call)],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    growth, out_bytes, chunk_bytes = map(int, out.stdout.split())
    budget = 16 * chunk_bytes            # the most _chunk_rows asks for (README: 32 MiB)
    assert growth <= out_bytes + budget + (16 << 20), \
        f"peak RSS grew {growth >> 20} MiB for a {out_bytes >> 20} MiB output"


# ------------------------------------------------------------------ script mode

def exercise(threads=2, chunks=(None, 1)):
    """Run every path once per column budget (the valgrind / sanitizer script)."""
    cdeconv.set_num_threads(threads)
    for chunk in chunks:
        for name in sorted(PATHS):
            y = _run_path(name, chunk)
            assert y.size and np.isfinite(y).all(), name
    for name, fn in _tiny_ops().items():
        fn()
    # empty-tensor cases: outputs fully written
    out = np.full((2, 2, 9, 2), np.nan)
    cdeconv.conv2d_transpose(np.ones((2, 0, 4, 3)), np.ones((3, 3, 2, 3)), [2, 9], 2,
                             "VALID", out=out)
    assert np.all(out == 0)
    dw = cdeconv.conv2d_backprop_filter(np.ones((0, 5, 5, 3)), [3, 3, 3, 4],
                                        np.ones((0, 5, 5, 4)), 1, "SAME")
    assert np.all(dw == 0)
    print(f"exercised {len(PATHS)} paths x {len(chunks)} budgets and "
          f"{len(_tiny_ops())} tiny ops: OK")


if __name__ == "__main__":
    if "--exercise" in sys.argv:
        exercise()
