"""Shared workloads, data and thread setting for the asv suite.

Only append cases, never change one (numpy's benchmarks/common.py rule): results must stay
comparable across commits. The workloads are the package's bundled suite
(``cdeconv/_workloads.json``, the same as ``python -m cdeconv bench``).

CDECONV_ASV_PROFILE=fast (default): a handful of representative workloads at batch 1.
CDECONV_ASV_PROFILE=full: the whole suite at batch 1 and 16.
"""
import json
import os
from importlib import resources

import numpy as np

PROFILE = os.environ.get("CDECONV_ASV_PROFILE", "fast").strip().lower() or "fast"
if PROFILE not in ("fast", "full"):
    raise ValueError(f"CDECONV_ASV_PROFILE must be 'fast' or 'full', got {PROFILE!r}")

# fat 5x5 s2, 4x4 s2, kernel == stride, 1 output channel, 1 input channel, stride 1
FAST = ["dcgan_tf_g2", "dcgan_pt_g3", "unet_up2", "fsrcnn_x2", "article_mnist",
        "s1_3x3_c64_56"]
DTYPES = ["float32", "float64"]
THREADS = [1, 2]


def workloads():
    data = json.loads(resources.files("cdeconv").joinpath("_workloads.json").read_text())
    return {w["name"]: w for w in data["workloads"]}


def names():
    return FAST if PROFILE == "fast" else list(workloads())


def batches():
    return [1] if PROFILE == "fast" else [1, 16]


def make_case(name, batch, dtype, seed=0):
    """(x, filters, kwargs) for cdeconv.conv2d_transpose: fixed-seed data, NHWC, filters
    [kh, kw, out_c, in_c]."""
    wl = workloads()[name]
    rng = np.random.default_rng(seed)
    h, w, cin = wl["input_hwc"]
    x = rng.standard_normal((batch, h, w, cin)).astype(dtype)
    f = rng.standard_normal(tuple(wl["filters"])).astype(dtype)
    kwargs = dict(output_shape=list(wl["output_hwc"][:2]), strides=list(wl["strides"]),
                  padding=wl["padding"])
    return x, f, kwargs


def gflop(name, batch):
    """Nominal GFLOP of one call: 2*N*H*W*Cin*Cout*kh*kw (input spatial size)."""
    wl = workloads()[name]
    h, w, cin = wl["input_hwc"]
    kh, kw, cout, _ = wl["filters"]
    return 2 * batch * h * w * cin * cout * kh * kw / 1e9


class Threads:
    """Run cdeconv on ``n`` threads: its own setting plus the OpenMP limit (which caps
    it, and which OMP_NUM_THREADS in the environment would otherwise set)."""

    def __init__(self, n):
        import cdeconv
        from threadpoolctl import threadpool_limits
        self._limits = threadpool_limits(limits=n, user_api="openmp")
        cdeconv.set_num_threads(n)

    def restore(self):
        import cdeconv
        cdeconv.set_num_threads(None)
        self._limits.restore_original_limits()
