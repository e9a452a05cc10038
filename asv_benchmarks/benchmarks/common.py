"""Shared workloads and data for the asv suite. Only append cases, never change one
(numpy's benchmarks/common.py rule): results must stay comparable across commits.

CDECONV_ASV_PROFILE=fast (default) runs a representative subset at batch 1;
CDECONV_ASV_PROFILE=full runs the whole suite at batch 1 and 16.
"""
import json
import os
from importlib import resources

import numpy as np

PROFILE = os.environ.get("CDECONV_ASV_PROFILE", "fast")
FAST = ["dcgan_tf_g2", "dcgan_pt_g3", "unet_up2", "fsrcnn_x2", "article_mnist",
        "s1_3x3_c64_56"]


def workloads():
    data = json.loads(resources.files("cdeconv").joinpath("_workloads.json").read_text())
    return {w["name"]: w for w in data["workloads"]}


def names():
    return FAST if PROFILE == "fast" else list(workloads())


def batches():
    return [1] if PROFILE == "fast" else [1, 16]


def make_case(name, batch, dtype, seed=0):
    """(x, filters, kwargs) for cdeconv.conv2d_transpose, fixed-seed data."""
    wl = workloads()[name]
    rng = np.random.default_rng(seed)
    h, w, cin = wl["input_hwc"]
    x = rng.standard_normal((batch, h, w, cin)).astype(dtype)
    f = rng.standard_normal(tuple(wl["filters"])).astype(dtype)
    kwargs = dict(output_shape=list(wl["output_hwc"][:2]), strides=list(wl["strides"]),
                  padding=wl["padding"])
    return x, f, kwargs


def gflop(name, batch):
    return workloads()[name]["gflop_batch1"] * batch
