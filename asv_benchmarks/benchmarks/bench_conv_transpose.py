"""Transposed and forward convolution on the workload suite.

Compare against main:  asv continuous -f 1.1 -b ConvTranspose2D main HEAD
"""
import numpy as np
from threadpoolctl import threadpool_limits

import cdeconv
from cdeconv import _reference

from .common import batches, gflop, make_case, names


class ConvTranspose2D:
    param_names = ["workload", "batch", "dtype", "threads"]
    params = [names(), batches(), ["float32", "float64"], [1, 2]]
    timeout = 300

    def setup(self, workload, batch, dtype, threads):
        self.x, self.w, self.kw = make_case(workload, batch, dtype)
        self.out = cdeconv.conv2d_transpose(self.x, self.w, **self.kw)
        cdeconv.set_num_threads(threads)

    def teardown(self, *params):
        cdeconv.set_num_threads(None)

    def time_conv2d_transpose(self, *params):
        cdeconv.conv2d_transpose(self.x, self.w, **self.kw, out=self.out)

    def peakmem_conv2d_transpose(self, *params):
        cdeconv.conv2d_transpose(self.x, self.w, **self.kw)

    def track_gflops(self, workload, batch, dtype, threads):
        import timeit
        n, t = timeit.Timer(self.time_conv2d_transpose).autorange()
        return gflop(workload, batch) / (t / n)
    track_gflops.unit = "GFLOP/s"



class Accuracy:
    """Largest difference from the float64 reference relative to the largest output
    (batch 1): catches silent accuracy regressions."""
    param_names = ["workload", "dtype"]
    params = [names(), ["float32", "float64"]]
    timeout = 300

    def setup(self, workload, dtype):
        self.x, self.w, self.kw = make_case(workload, 1, dtype)

    def track_max_rel_error(self, workload, dtype):
        got = cdeconv.conv2d_transpose(self.x, self.w, **self.kw)
        want = _reference.conv2d_transpose(self.x, self.w, **self.kw)
        return float(np.abs(got - want).max() / np.abs(want).max())
    track_max_rel_error.unit = "relative error"


class Conv2DForward:
    """The forward convolution of each layer (the big side back to the small side)."""
    param_names = ["workload", "batch", "threads"]
    params = [names(), batches(), [1, 2]]
    timeout = 300

    def setup(self, workload, batch, threads):
        x, w, kw = make_case(workload, batch, "float32")
        self.y = cdeconv.conv2d_transpose(x, w, **kw)
        self.w, self.s, self.p = w, kw["strides"], kw["padding"]
        if isinstance(self.p, list):
            raise NotImplementedError  # explicit padding: forward shape differs
        cdeconv.set_num_threads(threads)

    def teardown(self, *params):
        cdeconv.set_num_threads(None)

    def time_conv2d(self, *params):
        cdeconv.conv2d(self.y, self.w, self.s, self.p)


class PerCallOverhead:
    """Validation + dispatch + allocation on a tiny problem (batch-1 edge inference)."""

    def setup(self):
        self.x = np.ones((1, 2, 2, 1), np.float32)
        self.w = np.ones((1, 1, 1, 1), np.float32)
        self.out = np.empty((1, 2, 2, 1), np.float32)

    def time_tiny_call(self):
        cdeconv.conv2d_transpose(self.x, self.w, [2, 2], 1, "VALID", out=self.out)


class BLASGuard:
    """threadpoolctl-visible cost of holding scipy's BLAS at one thread."""

    def time_guard(self):
        from cdeconv._threads import blas_single_thread
        with blas_single_thread:
            pass

    def time_threadpool_limits_reference(self):
        with threadpool_limits(1, user_api="blas"):
            pass
