"""The output cache (cdeconv/_memory.py, src/_outcache.h): freed large outputs reused.

The cache must never hand out memory an array or view still uses, must stay within its
limit, and must not change a single result.
"""
import gc
import os
import pickle
import subprocess
import sys
import threading

import numpy as np
import pytest

import cdeconv
from cdeconv import _geometry, _memory, _reference

MIN = _memory.MIN_BYTES


@pytest.fixture(autouse=True)
def fresh_cache():
    gc.collect()
    cdeconv.set_output_cache(0)                # empty it
    cdeconv.set_output_cache(None)             # back to the default limit
    yield
    gc.collect()
    cdeconv.set_output_cache(None)


def _layer(batch, h=32, w=32, cin=8, cout=16):
    """A 2x2 stride-2 layer whose output has batch * 4*h*w*cout float32 values."""
    rng = np.random.default_rng(batch * 7 + h)
    x = rng.standard_normal((batch, h, w, cin)).astype(np.float32)
    f = rng.standard_normal((2, 2, cout, cin)).astype(np.float32)
    return x, f, [batch, 2 * h, 2 * w, cout]


def _run(x, f, shape):
    return cdeconv.conv2d_transpose(x, f, shape, 2, "VALID")


def _batch_for(nbytes, h=32, w=32, cout=16):
    return -(-nbytes // (4 * h * w * cout * 4))


def test_a_freed_output_is_reused_by_the_next_call_of_that_size():
    x, f, shape = _layer(_batch_for(MIN))
    y = _run(x, f, shape)
    assert y.nbytes >= MIN and y.flags.owndata and y.base is None
    want = y.copy()
    addr = y.ctypes.data
    info = cdeconv.output_cache_info()
    assert info["blocks_in_use"] == 1 and info["cached_blocks"] == 0
    del y
    info = cdeconv.output_cache_info()
    assert info["cached_blocks"] == 1 and info["cached_bytes"] >= want.nbytes
    y2 = _run(x, f, shape)
    assert y2.ctypes.data == addr                      # the same block, reused
    assert cdeconv.output_cache_info()["hits"] == info["hits"] + 1
    np.testing.assert_array_equal(y2, want)            # and the same bits


def test_a_view_keeps_the_block_out_of_the_cache():
    x, f, shape = _layer(_batch_for(MIN))
    y = _run(x, f, shape)
    view = y[1::2, 3]
    want = view.copy()
    del y                                              # the view still holds the data
    assert cdeconv.output_cache_info()["cached_blocks"] == 0
    others = [_run(x * 2, f, shape) for _ in range(3)]
    for o in others:
        assert not np.shares_memory(o, view)
    np.testing.assert_array_equal(view, want)
    del view
    assert cdeconv.output_cache_info()["cached_blocks"] == 1


def test_small_outputs_bypass_the_cache():
    x, f, shape = _layer(1, 8, 8)
    before = cdeconv.output_cache_info()
    y = _run(x, f, shape)
    assert y.nbytes < MIN
    del y
    after = cdeconv.output_cache_info()
    assert (after["hits"], after["misses"], after["cached_blocks"]) == \
        (before["hits"], before["misses"], 0)


def test_best_fit_and_no_reuse_for_much_smaller_outputs():
    big = _layer(_batch_for(4 * MIN))
    small = _layer(_batch_for(MIN))
    y = _run(*big)
    addr = y.ctypes.data
    del y
    s = _run(*small)                  # a quarter of the size: a fresh block, not the big one
    assert s.ctypes.data != addr
    np.testing.assert_array_equal(s, _run(*small))
    y = _run(*big)
    assert y.ctypes.data == addr


def test_the_limit_bounds_the_freed_bytes_kept():
    x, f, shape = _layer(_batch_for(MIN))
    nbytes = _run(x, f, shape).nbytes
    cdeconv.set_output_cache(nbytes * 3 // 2)        # room for one such block, not two
    ys = [_run(x, f, shape) for _ in range(4)]
    del ys
    info = cdeconv.output_cache_info()
    assert info["cached_blocks"] == 1
    assert info["cached_bytes"] <= info["limit_bytes"]
    cdeconv.set_output_cache(0)                      # lowering the limit frees the rest
    info = cdeconv.output_cache_info()
    assert (info["cached_blocks"], info["cached_bytes"], info["limit_bytes"]) == (0, 0, 0)


def test_turned_off_nothing_is_kept_and_results_are_unchanged():
    x, f, shape = _layer(_batch_for(MIN))
    want = _run(x, f, shape).copy()
    cdeconv.set_output_cache(0)
    for _ in range(3):
        np.testing.assert_array_equal(_run(x, f, shape), want)
    assert cdeconv.output_cache_info()["cached_blocks"] == 0


def test_resize_and_pickle_of_a_cached_output():
    x, f, shape = _layer(_batch_for(MIN))
    y = _run(x, f, shape)
    want = y.copy()
    z = pickle.loads(pickle.dumps(y))
    np.testing.assert_array_equal(z, want)
    y.resize((y.size // 2,), refcheck=False)          # a realloc: it leaves the cache
    np.testing.assert_array_equal(y, want.ravel()[: y.size])
    assert cdeconv.output_cache_info()["blocks_in_use"] == 0
    del y
    assert cdeconv.output_cache_info()["cached_blocks"] == 0


def test_forward_and_filter_gradient_outputs_use_it_too():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((_batch_for(MIN, 32, 32, 16) * 4, 32, 32, 16)).astype(np.float32)
    f = rng.standard_normal((1, 1, 16, 16)).astype(np.float32)
    before = cdeconv.output_cache_info()["misses"]
    y = cdeconv.conv2d(x, f, 1, "SAME")
    assert y.nbytes >= MIN
    assert cdeconv.output_cache_info()["misses"] == before + 1
    np.testing.assert_allclose(y, np.einsum("nhwc,cd->nhwd", x, f[0, 0]), rtol=1e-4,
                               atol=1e-4)


def test_concurrent_calls_never_share_an_output():
    layers = [_layer(_batch_for(MIN) + k) for k in range(3)]
    wants = [_run(*L).copy() for L in layers]
    errors = []

    def work(k):
        try:
            held = []
            for i in range(12):
                y = _run(*layers[(k + i) % 3])
                held.append(((k + i) % 3, y))
                if len(held) > 2:
                    j, old = held.pop(0)
                    if not np.array_equal(old, wants[j]):
                        errors.append(f"thread {k}: output {j} changed while held")
        except Exception as exc:          # pragma: no cover - reported below
            errors.append(repr(exc))

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    info = cdeconv.output_cache_info()
    assert info["cached_bytes"] <= info["limit_bytes"]


def test_matches_the_reference_through_the_cache():
    x, f, shape = _layer(_batch_for(MIN))
    for _ in range(2):                            # the second call reuses a block
        y = _run(x, f, shape)
        ref = _reference.conv2d_transpose(x[:1].astype(np.float64), f.astype(np.float64),
                                          shape[1:3], (2, 2), "VALID")
        np.testing.assert_allclose(y[:1], ref, rtol=1e-5, atol=1e-5)
        del y


@pytest.mark.parametrize("bad", [1.5, "1", True, [2]])
def test_set_output_cache_rejects_non_ints(bad):
    with pytest.raises(TypeError, match="max_bytes"):
        cdeconv.set_output_cache(bad)


def test_set_output_cache_rejects_negative():
    with pytest.raises(ValueError, match="max_bytes"):
        cdeconv.set_output_cache(-1)


def _child(env_value, code="import cdeconv; print(cdeconv.output_cache_info()['limit_bytes'])"):
    env = dict(os.environ, CDECONV_OUTPUT_CACHE_MB=env_value)
    return subprocess.run([sys.executable, "-W", "always", "-c", code], env=env,
                          capture_output=True, text=True, timeout=120)


def test_environment_variable_sets_the_limit():
    out = _child("1.5")
    assert out.returncode == 0, out.stderr
    assert int(out.stdout) == int(1.5 * (1 << 20))


def test_bad_environment_variable_warns_and_keeps_the_default():
    out = _child("lots")
    assert out.returncode == 0, out.stderr
    assert int(out.stdout) == _memory.DEFAULT_LIMIT_BYTES
    assert "CDECONV_OUTPUT_CACHE_MB" in out.stderr


# ------------------------------------------------- the kernels' workspace blocks (_ws_*)

def _filter_gradient_case(rng, batch, cin, cout, hw=16, k=4):
    x = rng.standard_normal((batch, hw, hw, cin)).astype(np.float32)
    dy = rng.standard_normal((batch, hw // 2, hw // 2, cout)).astype(np.float32)
    return x, (k, k, cin, cout), dy


@pytest.mark.parametrize("cin,cout,batch,hw,planar", [(128, 256, 16, 16, 0),
                                                       (64, 64, 2, 64, 2), (3, 64, 2, 16, 2)],
                         ids=["lanes", "planar-gemm", "planar-gemm-few"])
def test_workspace_blocks_kept_between_calls_never_leak_into_results(cin, cout, batch, hw,
                                                                     planar):
    """The filter gradient's parts and column buffers come from blocks kept between
    calls: a call after one that left NaN in every block gives the same bits as a call
    in a fresh process's state (no stale value is ever read), and the blocks are kept
    (set_output_cache(0) frees them; the limit follows the output cache's)."""
    from cdeconv import _conv
    rng = np.random.default_rng(cin + cout)
    x, fs, dy = _filter_gradient_case(rng, batch, cin, cout, hw)
    geom = _geometry.forward_geometry(2, x, np.empty(fs, np.float32), 2, "SAME", "NHWC",
                                      None)
    assert _conv.planar_filter_gradient(geom.kernel_args()) == planar
    _conv.set_workspace_limit(0)                       # no blocks: fresh buffers
    cdeconv.set_output_cache(None)
    clean = cdeconv.conv2d_backprop_filter(x, fs, dy, 2, "SAME")
    nan = cdeconv.conv2d_backprop_filter(np.full_like(x, np.nan), fs, dy, 2, "SAME")
    assert np.isnan(nan).all()
    again = cdeconv.conv2d_backprop_filter(x, fs, dy, 2, "SAME")   # in the NaN blocks
    np.testing.assert_array_equal(again, clean)
    want = _reference.conv_backprop_filter_nd(2, x.astype(np.float64), fs,
                                              dy.astype(np.float64), 2, "SAME", "NHWC")
    np.testing.assert_allclose(clean, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())
    cdeconv.set_output_cache(0)
    assert _conv.set_workspace_limit(0) == 0           # set_output_cache(0) freed them
    cdeconv.set_output_cache(None)
    cdeconv.conv2d_backprop_filter(x, fs, dy, 2, "SAME")
    assert _conv.set_workspace_limit(_memory.WORKSPACE_MAX_BYTES) > 0   # kept
