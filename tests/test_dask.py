"""cdeconv.dask: lazy ops over batch-chunked Dask arrays, bitwise equal to the NumPy
ops on the same blocks (and close to one call on the whole batch: the kernel choice
may depend on the batch size, e.g. phase rows from 256 input pixels); validation at call time; spatial chunks rechunked with a warning; a two-process
LocalCluster on loopback (started and stopped here, bounded in time)."""
import numpy as np
import pytest

da = pytest.importorskip("dask.array")
import cdeconv  # noqa: E402
import cdeconv.dask as cdd  # noqa: E402


@pytest.fixture
def data(rng):
    x = rng.normal(size=(10, 5, 6, 3)).astype(np.float32)
    w = rng.normal(size=(3, 3, 4, 3)).astype(np.float32)
    return x, w


def _by_blocks(fn, x, sizes):
    """fn on each batch block of x (sizes along axis 0), concatenated: what a
    batch-chunked Dask op must compute, bit for bit."""
    ends = np.cumsum(sizes)
    return np.concatenate([fn(x[e - n:e]) for n, e in zip(sizes, ends)])


def _same_as_numpy(got, fn, x, sizes):
    """got equals fn per block bitwise, and fn on the whole batch to rounding (the
    whole batch may take another kernel)."""
    np.testing.assert_array_equal(got, _by_blocks(fn, x, sizes))
    np.testing.assert_allclose(got, fn(x), rtol=1e-5, atol=1e-5)


def test_transpose_lazy_and_bitwise_equal(data):
    x, w = data
    dx = da.from_array(x, chunks=(3, 5, 6, 3))                # 3 + 3 + 3 + 1
    y = cdd.conv2d_transpose(dx, w, None, strides=2)
    assert isinstance(y, da.Array) and y.shape == (10, 10, 12, 4)
    assert y.chunks[0] == (3, 3, 3, 1) and y.dtype == np.float32
    _same_as_numpy(y.compute(scheduler="sync"),
                   lambda b: cdeconv.conv2d_transpose(b, w, None, 2), x, (3, 3, 3, 1))


def test_every_op(data, rng):
    x, w = data
    dx = da.from_array(x, chunks=4)
    dx = dx.rechunk({0: 4, 1: -1, 2: -1, 3: -1})
    wf = rng.normal(size=(3, 3, 3, 2)).astype(np.float32)
    np.testing.assert_array_equal(cdd.conv2d(dx, wf, 2, "SAME").compute(),
                                  cdeconv.conv2d(x, wf, 2, "SAME"))
    _same_as_numpy(
        cdd.conv2d_backprop_input([-1, 10, 12, 4], w, dx, 2, "SAME").compute(),
        lambda b: cdeconv.conv2d_backprop_input([len(b), 10, 12, 4], w, b, 2, "SAME"),
        x, (4, 4, 2))
    x1 = rng.normal(size=(6, 9, 2))
    w1 = rng.normal(size=(4, 3, 2))
    np.testing.assert_array_equal(
        cdd.conv1d_transpose(da.from_array(x1, chunks=(4, 9, 2)), w1, None, 3).compute(),
        cdeconv.conv1d_transpose(x1, w1, None, 3))
    np.testing.assert_array_equal(
        cdd.conv1d(da.from_array(x1, chunks=(2, 9, 2)), w1.transpose(0, 2, 1), 1,
                   "VALID").compute(),
        cdeconv.conv1d(x1, w1.transpose(0, 2, 1), 1, "VALID"))
    x3 = rng.normal(size=(3, 2, 3, 3, 2))
    w3 = rng.normal(size=(2, 2, 2, 3, 2))
    np.testing.assert_array_equal(
        cdd.conv3d_transpose(da.from_array(x3, chunks=(2, 2, 3, 3, 2)), w3, None,
                             2).compute(),
        cdeconv.conv3d_transpose(x3, w3, None, 2))
    # batch chunks of 1 image vs the whole batch: the GEMM has 18 vs 54 rows, and
    # OpenBLAS 0.3.30's dgemm (scipy 1.17) rounds such tiny GEMMs differently by M (its
    # small-matrix kernels), so here the last bit may differ; the ops above stay bitwise
    np.testing.assert_allclose(
        cdd.conv3d(da.from_array(x3, chunks=(1, 2, 3, 3, 2)),
                   w3.transpose(0, 1, 2, 4, 3), 1, "SAME").compute(),
        cdeconv.conv3d(x3, w3.transpose(0, 1, 2, 4, 3), 1, "SAME"), rtol=1e-14, atol=1e-14)


def test_errors_surface_at_call_time(data):
    x, w = data
    dx = da.from_array(x, chunks=(3, 5, 6, 3))
    with pytest.raises(ValueError, match="valid output sizes"):
        cdd.conv2d_transpose(dx, w, [10, 11, 12, 4], strides=2)
    with pytest.raises(ValueError, match="input channels"):
        cdd.conv2d_transpose(dx, w[..., :2], None, strides=2)
    with pytest.raises(TypeError, match="same dtype"):
        cdd.conv2d_transpose(dx, w.astype(np.float64), None, strides=2)
    with pytest.raises(TypeError, match="dask.array.Array"):
        cdd.conv2d_transpose(x, w, None, strides=2)
    with pytest.raises(TypeError, match="float32 or float64"):
        cdd.conv2d_transpose(dx.astype(np.int32), w, None, strides=2)
    with pytest.raises(ValueError, match="strides"):
        cdd.conv2d(dx, w.transpose(0, 1, 3, 2), 0, "SAME")


def test_spatial_chunks_are_rechunked_with_a_warning(data):
    x, w = data
    dx = da.from_array(x, chunks=(5, 2, 3, 3))
    with pytest.warns(UserWarning, match="rechunking"):
        y = cdd.conv2d_transpose(dx, w, None, strides=2)
    _same_as_numpy(y.compute(), lambda b: cdeconv.conv2d_transpose(b, w, None, 2), x,
                   (5, 5))


def test_empty_batch(data):
    _, w = data
    y = cdd.conv2d_transpose(da.zeros((0, 5, 6, 3), dtype=np.float32, chunks=(1, -1, -1, -1)), w,
                             None, strides=2)
    assert y.shape == (0, 10, 12, 4) and y.compute().shape == (0, 10, 12, 4)


class _Decoder:
    """A stand-in model with predict(): two transposed convolutions and a ReLU."""

    def __init__(self, rng):
        self.w1 = rng.normal(size=(4, 4, 8, 16)).astype(np.float32)
        self.w2 = rng.normal(size=(4, 4, 3, 8)).astype(np.float32)

    def predict(self, z):
        h = np.maximum(cdeconv.conv2d_transpose(z, self.w1, None, 2), 0)
        return cdeconv.conv2d_transpose(h, self.w2, None, 2)


def test_predict_blocks(rng):
    model = _Decoder(rng)
    z = rng.normal(size=(7, 4, 4, 16)).astype(np.float32)
    y = cdd.predict(model, da.from_array(z, chunks=(3, 4, 4, 16)))
    assert y.shape == (7, 16, 16, 3) and y.chunks[0] == (3, 3, 1)
    _same_as_numpy(y.compute(), model.predict, z, (3, 3, 1))
    with pytest.raises(TypeError, match="predict"):
        cdd.predict(42, da.from_array(z, chunks=(3, 4, 4, 16)))


class _SlowDecoder:
    def __init__(self, model):
        self.model = model

    def predict(self, z):
        import time
        time.sleep(0.3)
        return self.model.predict(z)


def test_predict_changes_rank(rng):
    """A generator maps (b, latent) to (b, h, w, c): new axes per block."""
    from cdeconv.layers import Conv2DTranspose, Dense, Reshape, Sequential
    gen = Sequential([Dense(2 * 2 * 4, seed=0), Reshape((2, 2, 4)),
                      Conv2DTranspose(3, 2, strides=2, padding="same", seed=1)])
    z = rng.normal(size=(9, 5)).astype(np.float32)
    want = gen.predict(z)
    y = cdd.predict(gen, da.from_array(z, chunks=(4, 5)))
    assert y.shape == (9, 4, 4, 3) and y.chunks[0] == (4, 4, 1)
    np.testing.assert_array_equal(y.compute(), np.concatenate(
        [gen.predict(z[:4]), gen.predict(z[4:8]), gen.predict(z[8:])]))
    np.testing.assert_allclose(y.compute(), want, rtol=1e-5, atol=1e-6)


def test_local_cluster_two_processes(rng):
    distributed = pytest.importorskip("distributed")
    model = _Decoder(rng)
    z = rng.normal(size=(11, 4, 4, 16)).astype(np.float32)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None,
                                  worker_dashboard_address=None) as cluster, \
            distributed.Client(cluster, timeout=60) as client:
        dz = da.from_array(z, chunks=(3, 4, 4, 16))
        _same_as_numpy(cdd.predict(model, dz).compute(), model.predict, z, (3, 3, 3, 2))
        y = cdd.conv2d_transpose(dz, model.w1, None, 2)
        _same_as_numpy(y.compute(), lambda b: cdeconv.conv2d_transpose(b, model.w1, None, 2),
                       z, (3, 3, 3, 2))
        # each worker ran cdeconv with cores // threads_per_worker threads
        workers = list(client.scheduler_info()["workers"])
        threads = [client.submit(cdd._worker_threads, workers=[addr], pure=False,
                                 allow_other_workers=False).result(timeout=60)
                   for addr in workers]
        assert len(threads) == 2 and all(isinstance(n, int) and n >= 1 for n in threads)
        # a worker dies while blocks are pending (each block takes >= 0.3 s): Dask
        # recomputes its blocks elsewhere and the result is still exact
        fut = client.compute(cdd.predict(_SlowDecoder(model), dz, output_shape=(16, 16, 3),
                                         dtype=np.float32))
        import time
        time.sleep(0.2)
        victim = next(iter(client.scheduler_info()["workers"]))
        try:
            client.run(lambda: __import__("os")._exit(1), workers=[victim])
        except Exception:   # the worker dies before it can answer: expected
            pass
        np.testing.assert_array_equal(fut.result(timeout=120),
                                      _by_blocks(model.predict, z, (3, 3, 3, 2)))
