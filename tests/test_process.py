"""Process-level behaviour: memory stays flat over many calls, and the ops work in a
child forked after the OpenMP runtime has started (multiprocessing 'fork')."""
import multiprocessing as mp
import os
import sys

import numpy as np
import pytest

import cdeconv


def _rss_bytes():
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_rss_stays_flat_over_many_calls():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1, 4, 4, 3)).astype(np.float32)
    w = rng.normal(size=(3, 3, 2, 3)).astype(np.float32)
    wf = rng.normal(size=(3, 3, 2, 3)).astype(np.float32)
    ops = [lambda: cdeconv.conv2d_transpose(x, w, None, 2),
           lambda: cdeconv.conv2d(cdeconv.conv2d_transpose(x, w, None, 2), wf, 1, "SAME"),
           lambda: cdeconv.conv2d_backprop_filter(x, [3, 3, 3, 3], x, 1, "SAME"),
           lambda: cdeconv.max_unpool(*cdeconv.max_pool_with_argmax(x, 2, 2, "SAME"),
                                      x.shape),
           lambda: cdeconv.conv1d_transpose(x[0], w[0], None, 2),
           lambda: cdeconv.conv2d_transpose(x[..., :1], np.ones((3, 3, 32, 1),
                                                                 np.float32), None, 2)]
    for op in ops:                      # warm up: caches, thread pools, first-touch
        for _ in range(200):
            op()
    before = _rss_bytes()
    for _ in range(2000):
        for op in ops:
            op()
    grown = _rss_bytes() - before
    # 12 000 calls; a leak of even 1 KiB per call would show as > 10 MiB
    assert grown < 4 * 2**20, f"RSS grew by {grown / 2**20:.1f} MiB"


def _child(q):
    x = np.ones((2, 9, 9, 16), np.float32)
    w = np.ones((3, 3, 8, 16), np.float32)
    q.put((cdeconv.get_num_threads(), float(cdeconv.conv2d_transpose(x, w, None, 2).sum())))


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_fork_after_openmp_started():
    x = np.ones((2, 9, 9, 16), np.float32)
    w = np.ones((3, 3, 8, 16), np.float32)
    want = float(cdeconv.conv2d_transpose(x, w, None, 2).sum())   # pools now running
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    p = ctx.Process(target=_child, args=(q,))
    p.start()
    p.join(timeout=60)
    if p.is_alive():
        p.kill()
        pytest.fail("the forked child hung in an OpenMP region")
    assert p.exitcode == 0
    threads, got = q.get(timeout=5)
    assert threads == 1 and got == want      # the child runs serially (libgomp + fork)
