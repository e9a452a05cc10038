"""Transposed and forward convolution on the workload suite (cdeconv/_workloads.json).

From asv_benchmarks/ (see asv.conf.json):
    asv machine --yes
    asv run --python=same --quick --show-stderr     # the installed working copy, one pass
    asv continuous -f 1.1 main HEAD                  # HEAD against main, builds both
    CDECONV_ASV_PROFILE=full asv continuous -f 1.1 -b ConvTranspose2D main HEAD
"""
import itertools
import timeit

import numpy as np
from threadpoolctl import threadpool_limits

import cdeconv
from cdeconv import _reference

from .common import DTYPES, THREADS, Threads, batches, gflop, make_case, names


def _skip_unless_batch1(params, batch_index=1):
    """asv_runner's ``skip_params``: the parameter tuples whose batch is not 1."""
    return [combo for combo in itertools.product(*params) if combo[batch_index] != 1]


class ConvTranspose2D:
    """cdeconv.conv2d_transpose: time, peak memory, GFLOP/s and accuracy."""
    param_names = ["workload", "batch", "dtype", "threads"]
    params = [names(), batches(), DTYPES, THREADS]
    timeout = 600

    def setup(self, workload, batch, dtype, threads):
        self.x, self.w, self.kw = make_case(workload, batch, dtype)
        self._threads = Threads(threads)
        self.out = cdeconv.conv2d_transpose(self.x, self.w, **self.kw)     # + warm-up

    def teardown(self, *params):
        self._threads.restore()

    def time_conv2d_transpose(self, *params):
        cdeconv.conv2d_transpose(self.x, self.w, **self.kw, out=self.out)

    def peakmem_conv2d_transpose(self, *params):
        cdeconv.conv2d_transpose(self.x, self.w, **self.kw)

    def track_gflops(self, workload, batch, dtype, threads):
        timer = timeit.Timer(self.time_conv2d_transpose)
        n, _ = timer.autorange()
        best = min(timer.repeat(repeat=3, number=n)) / n
        return gflop(workload, batch) / best
    track_gflops.unit = "GFLOP/s"

    def track_max_abs_error(self, workload, batch, dtype, threads):
        """Largest |cdeconv - float64 reference| (batch 1 only: the reference is slow);
        catches silent accuracy regressions."""
        if batch != 1:
            raise NotImplementedError("batch 1 only")
        got = cdeconv.conv2d_transpose(self.x, self.w, **self.kw)
        want = _reference.conv2d_transpose(self.x.astype(np.float64),
                                           self.w.astype(np.float64), **self.kw)
        return float(np.abs(got - want).max())
    track_max_abs_error.unit = "abs error"
    track_max_abs_error.skip_params = _skip_unless_batch1(params)

    def track_max_rel_error(self, workload, batch, dtype, threads):
        """The same, relative to the largest |output|."""
        if batch != 1:
            raise NotImplementedError("batch 1 only")
        got = cdeconv.conv2d_transpose(self.x, self.w, **self.kw)
        want = _reference.conv2d_transpose(self.x.astype(np.float64),
                                           self.w.astype(np.float64), **self.kw)
        return float(np.abs(got - want).max() / np.abs(want).max())
    track_max_rel_error.unit = "relative error"
    track_max_rel_error.skip_params = _skip_unless_batch1(params)


class Conv2DForward:
    """cdeconv.conv2d on the same layers: the big side back to the small side (the
    transposed layer's filters are the forward conv's [kh, kw, in_c, out_c])."""
    param_names = ["workload", "batch", "dtype", "threads"]
    params = [names(), batches(), DTYPES, THREADS]
    timeout = 600

    def setup(self, workload, batch, dtype, threads):
        x, w, kw = make_case(workload, batch, dtype)
        self.y = cdeconv.conv2d_transpose(x, w, **kw)
        self.w, self.s, self.p = w, kw["strides"], kw["padding"]
        out = cdeconv.conv2d(self.y, self.w, self.s, self.p)              # + warm-up
        if out.shape != x.shape:
            raise NotImplementedError(f"forward shape {out.shape} != {x.shape}")
        self.out = out
        self._threads = Threads(threads)

    def teardown(self, *params):
        self._threads.restore()

    def time_conv2d(self, *params):
        cdeconv.conv2d(self.y, self.w, self.s, self.p, out=self.out)


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


class Conv2DBackpropFilter:
    """cdeconv.conv2d_backprop_filter on the same layers turned round (as Conv2DForward):
    the gradient of the forward conv's filter from its input and output gradient."""
    param_names = ["workload", "batch", "dtype", "threads"]
    params = [names(), batches(), DTYPES, THREADS]
    timeout = 600

    def setup(self, workload, batch, dtype, threads):
        x, w, kw = make_case(workload, batch, dtype)
        self.y = cdeconv.conv2d_transpose(x, w, **kw)       # the forward conv's input
        self.dy, self.shape = x, w.shape                      # ... and output gradient
        self.s, self.p = kw["strides"], kw["padding"]
        if cdeconv.conv2d(self.y, w, self.s, self.p).shape != x.shape:
            raise NotImplementedError("the forward conv does not give the input's shape")
        self.out = cdeconv.conv2d_backprop_filter(self.y, self.shape, self.dy, self.s,
                                                  self.p)     # + warm-up
        self._threads = Threads(threads)

    def teardown(self, *params):
        self._threads.restore()

    def time_conv2d_backprop_filter(self, *params):
        cdeconv.conv2d_backprop_filter(self.y, self.shape, self.dy, self.s, self.p,
                                       out=self.out)
