"""Throughput (images/s) of a DCGAN-style generator over a large batch: one process
(cdeconv's own threads) vs a 2-process dask.distributed LocalCluster on loopback,
measured in the same run.  python tools/dask_throughput.py [n_images] [chunk]"""
import sys
import time

import numpy as np

import cdeconv
import cdeconv.dask as cdd


class Generator:
    """PyTorch-DCGAN-style generator (ngf=64): 1x1x100 -> 64x64x3, ReLU between
    layers, tanh at the end; random weights (throughput only)."""

    def __init__(self, seed=0):
        rng = np.random.default_rng(seed)
        shapes = [(4, 4, 512, 100), (4, 4, 256, 512), (4, 4, 128, 256), (4, 4, 64, 128),
                  (4, 4, 3, 64)]
        self.ws = [(rng.standard_normal(s) * 0.02).astype(np.float32) for s in shapes]

    def predict(self, z):
        h = cdeconv.conv2d_transpose(z, self.ws[0], None, 1, "VALID")
        for w in self.ws[1:]:
            h = cdeconv.conv2d_transpose(np.maximum(h, 0), w, None, 2, "SAME")
        return np.tanh(h)


def main(n=2048, chunk=128):
    import dask.array as da
    from dask.distributed import Client, LocalCluster
    g = Generator()
    z = np.random.default_rng(1).standard_normal((n, 1, 1, 100)).astype(np.float32)
    g.predict(z[:chunk])                                    # warm up
    t0 = time.perf_counter()
    ref = np.concatenate([g.predict(z[i:i + chunk]) for i in range(0, n, chunk)])
    t_one = time.perf_counter() - t0
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      host="127.0.0.1", dashboard_address=None) as cluster, \
            Client(cluster):
        dz = da.from_array(z, chunks=(chunk, 1, 1, 100))
        cdd.predict(g, dz[:2 * chunk]).compute()             # warm up the workers
        t0 = time.perf_counter()
        out = cdd.predict(g, dz).compute()
        t_two = time.perf_counter() - t0
    assert np.array_equal(out, ref), "cluster result differs from the in-process one"
    print(f"{n} images, chunks of {chunk}: one process ({cdeconv.get_num_threads()} "
          f"threads) {n / t_one:.0f} images/s; 2-process LocalCluster (1 thread each) "
          f"{n / t_two:.0f} images/s; results bitwise equal")


if __name__ == "__main__":
    main(*[int(a) for a in sys.argv[1:]])
