"""Make the TensorFlow golden values that cdeconv's tests compare against.

The tests themselves never import TensorFlow: they read the files this script writes.

Made with TensorFlow 2.21.0 (tensorflow-cpu, CPU kernels), NumPy 2.4.6, Python 3.11.

Writes, next to this file:

  tf_golden.json + tf_golden.npz
      Convolution cases computed by TF: conv2d_transpose (tf.nn.conv2d_transpose),
      conv2d_backprop_input (tf.compat.v1.nn.conv2d_backprop_input), conv2d
      (tf.nn.conv2d), conv2d_backprop_filter (tf.compat.v1.nn.conv2d_backprop_filter),
      conv1d_transpose (tf.nn.conv1d_transpose), conv3d_transpose
      (tf.nn.conv3d_transpose).  Each case: {"id", "op", "dtype", "args", "arrays"}.
      "args" are the non-tensor keyword arguments exactly as passed to TF ("dilations":
      null means "not passed", i.e. TF's default); "arrays" maps TF's tensor argument
      names and "result" to keys of the .npz.  Calls TF refused (dilations > 1 in the
      CPU backprop kernels, NCHW, grouped backprop, ...) are not cases; they are listed
      under "refused" with TF's error text.  "extra_cases" holds dilated transposed
      convolutions computed by tf.nn.atrous_conv2d_transpose (stride 1 only), the one
      TF CPU route to a dilated transposed convolution; each says how to call
      conv2d_transpose for the same numbers ("equivalent").
  tf_valid_sizes.json
      Which output widths w tf.nn.conv2d_transpose accepts (and runs) for
      output_shape [1, 1, w, 1], over a grid of input size / kernel / stride /
      dilation / padding; TF's verbatim size-error texts; the "seed example 3" call.
  tf_pool_golden.json + tf_pool_golden.npz
      tf.nn.max_pool_with_argmax cases (ties, NaN, +-inf, include_batch_in_index).

Inputs are random multiples of 1/8 in [-2, 2] (ties cases: integers in {0, 1, 2}),
drawn from fixed per-case seeds, so every float32 product and partial sum is exact and
the tests can compare with assert_array_equal.

Rerun from the repository root, with TensorFlow in its own virtualenv (it is never a
dependency of cdeconv):

    python3 -m venv /work/tfvenv && /work/tfvenv/bin/pip install tensorflow-cpu numpy
    /work/tfvenv/bin/python tests/data/make_tf_golden.py

The output is deterministic for a given TF version.
"""
import json
import os
import pathlib
import zlib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # silence TF's C++ logging

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

HERE = pathlib.Path(__file__).resolve().parent
SEED = 20261122
TF_VERSION = tf.__version__


def rng_for(tag):
    """A generator seeded by a case's tag, so adding cases never changes others."""
    return np.random.default_rng([SEED, zlib.crc32(tag.encode())])


def dyadic(rng, shape, dtype):
    """Multiples of 1/8 in [-2, 2]."""
    return (rng.integers(-16, 17, size=shape) / 8).astype(dtype)


def err_text(exc):
    return f"{type(exc).__name__}: {exc}".strip()


def pair(v, n=2):
    """Spatial values of a TF strides/dilations argument (int, [n], [1, *n, 1]); None->1."""
    if v is None:
        return (1,) * n
    if isinstance(v, int):
        return (v,) * n
    v = list(v)
    if len(v) == 1:
        return (v[0],) * n
    if len(v) == n:
        return tuple(v)
    return tuple(v[1:-1])


def windowed_in(o, k, s, d, pad):
    """TF's forward output size for input size o (GetWindowedOutputSize); None if < 0."""
    eff = (k - 1) * d + 1
    if pad == "SAME":
        return (o + s - 1) // s
    before, after = (0, 0) if pad == "VALID" else pad
    num = o + before + after - eff + s
    return num // s if num >= 0 else None


def sizes_for(i, k, s, d, pad):
    """All output sizes o whose forward size is i (the sizes a transpose may produce)."""
    eff = (k - 1) * d + 1
    return [o for o in range(0, i * s + eff + s + 2) if windowed_in(o, k, s, d, pad) == i]


def spatial_pads(padding, n):
    """Per-spatial-dim padding spec ('SAME'/'VALID' or (before, after)), NHWC order."""
    if isinstance(padding, str):
        return [padding] * n
    return [tuple(p) for p in padding[1:-1]]


# ----------------------------------------------------------------------------------------
# Convolution cases
# ----------------------------------------------------------------------------------------
cases, arrays, refused, extra_cases = [], {}, [], []


def add(op, dtype, args, tensors, fn, bucket=None):
    """Run fn(); on success store a case, on refusal record TF's error."""
    bucket = cases if bucket is None else bucket
    try:
        result = np.asarray(fn())
    except Exception as exc:  # TF refused this call: keep nothing but the reason
        refused.append({"op": op, "dtype": np.dtype(dtype).name, "args": args,
                        "shapes": {k: list(v.shape) for k, v in tensors.items()},
                        "error": err_text(exc)})
        print(f"TF refused {op} {np.dtype(dtype).name} {args}: "
              f"{str(exc).splitlines()[0][:160]}")
        return None
    assert result.dtype == np.dtype(dtype), (op, result.dtype)
    cid = f"{'c' if bucket is cases else 'x'}{len(bucket):03d}"
    names = {}
    for name, value in list(tensors.items()) + [("result", result)]:
        arrays[f"{cid}/{name}"] = np.asarray(value)
        names[name] = f"{cid}/{name}"
    case = {"id": cid, "op": op, "dtype": np.dtype(dtype).name, "args": args,
            "arrays": names}
    bucket.append(case)
    return case


def output_choices(in_hw, k_hw, s_hw, d_hw, pads):
    """Every valid size of each spatial dim, paired up so each size appears once."""
    per_dim = [sizes_for(i, k, s, d, p) for i, k, s, d, p in zip(in_hw, k_hw, s_hw, d_hw, pads)]
    n = max(len(c) for c in per_dim)
    return sorted({tuple(c[j % len(c)] if c else 0 for c in per_dim) for j in range(n)})


# conv2d_transpose: (name, in_hw, kernel_hw, strides as passed, dilations as passed,
#                    padding, in_ch, out_ch, batch)
T_CASES = [
    ("s2 k3 SAME", (3, 3), (3, 3), 2, None, "SAME", 4, 2, 1),
    ("s2 k3 VALID", (3, 3), (3, 3), [2, 2], None, "VALID", 2, 3, 2),
    ("k1 s1", (4, 4), (1, 1), 1, None, "VALID", 3, 2, 1),
    ("k1 s2", (4, 5), (1, 1), [1, 2, 2, 1], None, "SAME", 2, 2, 1),
    ("k2 s2 SAME", (4, 4), (2, 2), 2, None, "SAME", 3, 4, 2),
    ("k2 s2 VALID", (4, 3), (2, 2), [2, 2], 1, "VALID", 1, 1, 1),
    ("k2 s1 SAME odd pad", (3, 2), (2, 2), [1, 1], None, "SAME", 2, 2, 1),
    ("k4 s2 SAME", (5, 4), (4, 4), 2, None, "SAME", 2, 3, 1),
    ("k5 s2 SAME", (3, 4), (5, 5), 2, None, "SAME", 3, 2, 1),
    ("k5 s3 VALID", (3, 3), (5, 5), 3, None, "VALID", 2, 2, 1),
    ("k4 s3 SAME", (2, 3), (4, 4), 3, None, "SAME", 1, 2, 1),
    ("k2x3 s(1,2)", (4, 3), (2, 3), [1, 2], None, "VALID", 2, 2, 1),
    ("k3x1 s(2,1)", (3, 4), (3, 1), [2, 1], None, "SAME", 1, 3, 2),
    ("k2 s3 VALID", (3, 3), (2, 2), 3, None, "VALID", 2, 1, 1),
    ("k3x2 s(3,2)", (2, 3), (3, 2), [1, 3, 2, 1], None, "SAME", 2, 2, 1),
    ("k4x2 s(2,1)", (5, 5), (4, 2), [1, 2, 1, 1], [1, 1, 1, 1], "SAME", 2, 1, 1),
    ("explicit s2", (2, 2), (3, 3), 2, None, [[0, 0], [1, 2], [0, 1], [0, 0]], 2, 2, 1),
    ("explicit s(3,2)", (3, 3), (4, 3), [1, 3, 2, 1], None,
     [[0, 0], [2, 0], [1, 1], [0, 0]], 2, 3, 2),
    ("explicit s1", (3, 4), (3, 3), 1, None, [[0, 0], [0, 1], [2, 1], [0, 0]], 3, 2, 1),
    ("1x1 input k4", (1, 1), (4, 4), 1, None, "VALID", 5, 3, 2),
    ("k3 s1 SAME", (6, 5), (3, 3), 1, None, "SAME", 4, 5, 1),
    ("k5 s2 SAME c5", (4, 4), (5, 5), 2, None, "SAME", 5, 4, 1),
    ("batch 0", (3, 3), (3, 3), 2, None, "SAME", 2, 2, 0),
    ("zero height", (0, 3), (3, 3), 2, None, "SAME", 2, 2, 1),
    # dilations: the CPU kernel refuses these (recorded under "refused")
    ("d2 s1", (5, 5), (3, 3), 1, 2, "SAME", 2, 2, 1),
    ("d(2,1) s1", (4, 4), (3, 3), 1, [1, 2, 1, 1], "VALID", 3, 2, 1),
    ("d2 s2", (3, 3), (3, 3), 2, 2, "SAME", 2, 2, 1),
    ("d(1,2) s(2,1)", (3, 4), (3, 2), [2, 1], [1, 2], "VALID", 2, 3, 1),
    ("d(2,1) k1", (3, 3), (1, 1), 1, [2, 1], "SAME", 1, 1, 1),
]

for dtype in (np.float32, np.float64):
    for name, in_hw, k_hw, strides, dil, padding, cin, cout, batch in T_CASES:
        rng = rng_for(f"t/{name}/{np.dtype(dtype).name}")
        x = dyadic(rng, (batch, *in_hw, cin), dtype)
        w = dyadic(rng, (*k_hw, cout, cin), dtype)
        for oh, ow in output_choices(in_hw, k_hw, pair(strides), pair(dil),
                                     spatial_pads(padding, 2)):
            shape = [batch, oh, ow, cout]
            args = {"output_shape": shape, "strides": strides, "padding": padding,
                    "data_format": "NHWC", "dilations": dil}
            add("conv2d_transpose", dtype, args, {"input": x, "filters": w},
                lambda: tf.nn.conv2d_transpose(x, w, shape, strides, padding, "NHWC",
                                               dil))

# NCHW: try a few; TF's CPU kernels refuse them (then only "refused" records them and
# the tests transpose NHWC cases instead).
for dtype in (np.float32, np.float64):
    for name, in_hw, k_hw, strides, padding, cin, cout in [
            ("nchw s2", (3, 3), (3, 3), 2, "SAME", 2, 3),
            ("nchw s1 explicit", (3, 4), (2, 2), 1, [[0, 0], [0, 0], [1, 0], [0, 1]], 2, 2)]:
        rng = rng_for(f"tn/{name}/{np.dtype(dtype).name}")
        x = dyadic(rng, (1, cin, *in_hw), dtype)
        w = dyadic(rng, (*k_hw, cout, cin), dtype)
        pads = spatial_pads([padding[0], padding[2], padding[3], padding[1]]
                            if not isinstance(padding, str) else padding, 2)
        oh, ow = output_choices(in_hw, k_hw, pair(strides), (1, 1), pads)[-1]
        shape = [1, cout, oh, ow]
        add("conv2d_transpose", dtype,
            {"output_shape": shape, "strides": strides, "padding": padding,
             "data_format": "NCHW", "dilations": None}, {"input": x, "filters": w},
            lambda: tf.nn.conv2d_transpose(x, w, shape, strides, padding, "NCHW"))

# conv2d_backprop_input: (name, input_hw (its result), kernel, out_backprop hw, strides
#                         [1,sh,sw,1], padding, in_ch, out_ch, batch, dilations)
BI_CASES = [
    ("s2 SAME 5", (5, 5), (3, 3), (3, 3), [1, 2, 2, 1], "SAME", 3, 2, 1, None),
    ("s2 SAME 6", (6, 6), (3, 3), (3, 3), [1, 2, 2, 1], "SAME", 3, 2, 1, None),
    ("s2 VALID", (8, 7), (3, 3), (3, 3), [1, 2, 2, 1], "VALID", 2, 2, 2, None),
    ("s1 SAME k2", (4, 5), (2, 2), (4, 5), [1, 1, 1, 1], "SAME", 2, 3, 1, [1, 1, 1, 1]),
    ("s3 VALID k4", (9, 8), (4, 4), (2, 2), [1, 3, 3, 1], "VALID", 1, 2, 1, None),
    ("s(1,2) k2x3", (4, 6), (2, 3), (4, 3), [1, 1, 2, 1], "SAME", 2, 2, 2, None),
    ("s(2,1) k3x1", (6, 4), (3, 1), (3, 4), [1, 2, 1, 1], "SAME", 3, 1, 1, None),
    ("explicit s2", (4, 4), (3, 3), (3, 2), [1, 2, 2, 1],
     [[0, 0], [1, 2], [0, 1], [0, 0]], 2, 2, 1, None),
    ("k5 s2 SAME", (7, 8), (5, 5), (4, 4), [1, 2, 2, 1], "SAME", 2, 3, 1, None),
    ("batch 0", (5, 5), (3, 3), (3, 3), [1, 2, 2, 1], "SAME", 2, 2, 0, None),
    ("d2 (refused)", (5, 5), (3, 3), (5, 5), [1, 1, 1, 1], "SAME", 2, 2, 1, [1, 2, 2, 1]),
    ("seed example 3 (refused)", (4, 4), (2, 2), (3, 3), [1, 2, 2, 1], "SAME", 1, 1, 1,
     None),
]
for dtype in (np.float32, np.float64):
    for name, in_hw, k_hw, dy_hw, strides, padding, cin, cout, batch, dil in BI_CASES:
        rng = rng_for(f"bi/{name}/{np.dtype(dtype).name}")
        w = dyadic(rng, (*k_hw, cin, cout), dtype)
        dy = dyadic(rng, (batch, *dy_hw, cout), dtype)
        sizes = [batch, *in_hw, cin]
        args = {"input_sizes": sizes, "strides": strides, "padding": padding,
                "data_format": "NHWC", "dilations": dil}
        kw = {} if dil is None else {"dilations": dil}
        add("conv2d_backprop_input", dtype, args, {"filter": w, "out_backprop": dy},
            lambda: tf.compat.v1.nn.conv2d_backprop_input(sizes, w, dy, strides, padding,
                                                          data_format="NHWC", **kw))

# conv2d (forward): (name, in_hw, kernel, strides, dilations, padding, in_ch, out_ch,
#                    batch, groups).  The CPU forward kernel does support dilations.
F_CASES = [
    ("k3 s1 SAME", (7, 7), (3, 3), 1, None, "SAME", 2, 3, 2, 1),
    ("k3 s2 SAME", (8, 7), (3, 3), 2, None, "SAME", 3, 2, 1, 1),
    ("k5 s2 VALID", (9, 9), (5, 5), [2, 2], None, "VALID", 2, 2, 1, 1),
    ("k2x3 s(1,2)", (6, 7), (2, 3), [1, 2], None, "SAME", 2, 4, 2, 1),
    ("k4 s3 SAME", (8, 9), (4, 4), [1, 3, 3, 1], None, "SAME", 1, 2, 1, 1),
    ("d2 VALID", (7, 6), (3, 3), 1, 2, "VALID", 3, 2, 1, 1),
    ("d(2,1) SAME", (7, 6), (3, 3), 1, [1, 2, 1, 1], "SAME", 2, 2, 1, 1),
    ("s2 d2 SAME", (9, 8), (3, 3), 2, 2, "SAME", 2, 3, 1, 1),
    ("s(2,1) d(1,2)", (8, 8), (2, 3), [2, 1], [1, 2], "VALID", 2, 2, 1, 1),
    ("explicit", (6, 6), (3, 3), 1, None, [[0, 0], [1, 2], [2, 0], [0, 0]], 2, 3, 2, 1),
    ("grouped", (5, 5), (3, 3), 1, None, "SAME", 4, 4, 1, 2),
    ("batch 0", (5, 5), (3, 3), 2, None, "SAME", 2, 2, 0, 1),
    ("nchw (refused)", (5, 5), (3, 3), 1, None, "SAME", 2, 2, 1, 1),
]
for dtype in (np.float32, np.float64):
    for name, in_hw, k_hw, strides, dil, padding, cin, cout, batch, groups in F_CASES:
        rng = rng_for(f"f/{name}/{np.dtype(dtype).name}")
        fmt = "NCHW" if "nchw" in name else "NHWC"
        x = dyadic(rng, (batch, cin, *in_hw) if fmt == "NCHW" else (batch, *in_hw, cin),
                   dtype)
        w = dyadic(rng, (*k_hw, cin // groups, cout), dtype)
        args = {"strides": strides, "padding": padding, "data_format": fmt,
                "dilations": dil}
        add("conv2d", dtype, args, {"input": x, "filters": w},
            lambda: tf.nn.conv2d(x, w, strides, padding, fmt, dil))

# conv2d_backprop_filter: (name, in_hw, filter hw, strides [1,sh,sw,1], padding, in_ch,
#                          out_ch, batch, groups)
BF_CASES = [
    ("k3 s1 SAME", (7, 7), (3, 3), [1, 1, 1, 1], "SAME", 2, 3, 2, 1),
    ("k3 s2 SAME", (8, 7), (3, 3), [1, 2, 2, 1], "SAME", 3, 2, 1, 1),
    ("k5 s2 VALID", (9, 9), (5, 5), [1, 2, 2, 1], "VALID", 2, 2, 1, 1),
    ("k2x3 s(1,2)", (6, 7), (2, 3), [1, 1, 2, 1], "SAME", 2, 4, 1, 1),
    ("k3x1 s(2,1)", (7, 5), (3, 1), [1, 2, 1, 1], "VALID", 1, 2, 2, 1),
    ("k4 s3 SAME", (8, 9), (4, 4), [1, 3, 3, 1], "SAME", 2, 1, 1, 1),
    ("explicit", (6, 6), (3, 3), [1, 1, 1, 1], [[0, 0], [1, 2], [2, 0], [0, 0]], 2, 3, 1,
     1),
    ("batch 0", (5, 5), (3, 3), [1, 2, 2, 1], "SAME", 2, 2, 0, 1),
    ("grouped (refused)", (5, 5), (3, 3), [1, 1, 1, 1], "SAME", 4, 4, 1, 2),
]
for dtype in (np.float32, np.float64):
    for name, in_hw, k_hw, strides, padding, cin, cout, batch, groups in BF_CASES:
        rng = rng_for(f"bf/{name}/{np.dtype(dtype).name}")
        x = dyadic(rng, (batch, *in_hw, cin), dtype)
        fs = [*k_hw, cin // groups, cout]
        dy_hw = [windowed_in(i, k, s, 1, p) for i, k, s, p in
                 zip(in_hw, k_hw, strides[1:3], spatial_pads(padding, 2))]
        dy = dyadic(rng, (batch, *dy_hw, cout), dtype)
        args = {"filter_sizes": fs, "strides": strides, "padding": padding,
                "data_format": "NHWC", "dilations": None}
        add("conv2d_backprop_filter", dtype, args, {"input": x, "out_backprop": dy},
            lambda: tf.compat.v1.nn.conv2d_backprop_filter(x, fs, dy, strides, padding))

# conv1d_transpose: (name, in_w, k, strides as passed, padding, in_ch, out_ch, batch)
C1_CASES = [
    ("k3 s2 SAME", 5, 3, 2, "SAME", 2, 3, 2),
    ("k4 s2 VALID", 4, 4, [2], "VALID", 3, 2, 1),
    ("k1 s1 SAME", 6, 1, 1, "SAME", 2, 2, 1),
    ("k5 s3 SAME", 3, 5, [1, 3, 1], "SAME", 1, 2, 2),
    ("k2 s1 VALID", 4, 2, 1, "VALID", 2, 1, 1),
    ("batch 0", 3, 3, 2, "SAME", 2, 2, 0),
    ("d2 (refused)", 4, 3, 1, "SAME", 1, 1, 1),
    ("ncw (refused)", 3, 3, 2, "SAME", 2, 2, 1),
]
for dtype in (np.float32, np.float64):
    for name, iw, k, s, padding, cin, cout, batch in C1_CASES:
        rng = rng_for(f"c1/{name}/{np.dtype(dtype).name}")
        fmt = "NCW" if "ncw" in name else "NWC"
        dil = 2 if "d2" in name else None
        x = dyadic(rng, (batch, cin, iw) if fmt == "NCW" else (batch, iw, cin), dtype)
        w = dyadic(rng, (k, cout, cin), dtype)
        for ow in sorted({sizes_for(iw, k, pair(s, 1)[0], dil or 1, padding)[j]
                          for j in (0, -1)}):
            shape = [batch, cout, ow] if fmt == "NCW" else [batch, ow, cout]
            add("conv1d_transpose", dtype,
                {"output_shape": shape, "strides": s, "padding": padding,
                 "data_format": fmt, "dilations": dil}, {"input": x, "filters": w},
                lambda: tf.nn.conv1d_transpose(x, w, shape, s, padding, fmt, dil))

# conv3d_transpose: (name, in_dhw, kernel, strides as passed, padding, in_ch, out_ch,
#                    batch)
C3_CASES = [
    ("k3 s2 SAME", (2, 3, 3), (3, 3, 3), 2, "SAME", 2, 2, 1),
    ("k2 s2 VALID", (3, 2, 2), (2, 2, 2), 2, "VALID", 2, 3, 1),
    ("k1x3x2 s(1,2,1)", (2, 2, 3), (1, 3, 2), [1, 2, 1], "SAME", 3, 2, 1),
    ("k2x1x3 s(2,1,3)", (2, 3, 2), (2, 1, 3), [1, 2, 1, 3, 1], "VALID", 1, 2, 2),
    ("k3 s1 SAME", (3, 3, 2), (3, 3, 3), 1, "SAME", 2, 1, 1),
    ("batch 0", (2, 2, 2), (2, 2, 2), 2, "SAME", 1, 1, 0),
    ("d2 (refused)", (3, 3, 3), (3, 3, 3), 1, "SAME", 1, 1, 1),
]
for dtype in (np.float32, np.float64):
    for name, sp, k, s, padding, cin, cout, batch in C3_CASES:
        rng = rng_for(f"c3/{name}/{np.dtype(dtype).name}")
        dil = 2 if "d2" in name else None
        x = dyadic(rng, (batch, *sp, cin), dtype)
        w = dyadic(rng, (*k, cout, cin), dtype)
        for out in output_choices(sp, k, pair(s, 3), pair(dil, 3), [padding] * 3):
            shape = [batch, *out, cout]
            add("conv3d_transpose", dtype,
                {"output_shape": shape, "strides": s, "padding": padding,
                 "data_format": "NDHWC", "dilations": dil}, {"input": x, "filters": w},
                lambda: tf.nn.conv3d_transpose(x, w, shape, s, padding, "NDHWC", dil))

# Dilated transposed convolutions, via the only TF CPU route: atrous_conv2d_transpose
# (stride 1).  Kept apart ("extra_cases") because the op is not one of the six above.
for dtype in (np.float32, np.float64):
    for name, in_hw, k_hw, rate, padding, cin, cout in [
            ("rate2 SAME", (4, 5), (3, 3), 2, "SAME", 2, 3),
            ("rate2 VALID", (3, 3), (3, 2), 2, "VALID", 2, 2),
            ("rate3 SAME k2", (5, 4), (2, 2), 3, "SAME", 1, 2),
            ("rate2 SAME k4", (4, 4), (4, 4), 2, "SAME", 3, 1)]:
        rng = rng_for(f"atrous/{name}/{np.dtype(dtype).name}")
        x = dyadic(rng, (1, *in_hw, cin), dtype)
        w = dyadic(rng, (*k_hw, cout, cin), dtype)
        oh, ow = [sizes_for(i, k, 1, rate, padding)[0] for i, k in zip(in_hw, k_hw)]
        shape = [1, oh, ow, cout]
        case = add("atrous_conv2d_transpose", dtype,
                   {"output_shape": shape, "rate": rate, "padding": padding},
                   {"value": x, "filters": w},
                   lambda: tf.nn.atrous_conv2d_transpose(x, w, shape, rate, padding),
                   bucket=extra_cases)
        if case:
            case["equivalent"] = {"op": "conv2d_transpose", "input": "value",
                                  "args": {"output_shape": shape, "strides": 1,
                                           "padding": padding, "data_format": "NHWC",
                                           "dilations": rate}}

np.savez_compressed(HERE / "tf_golden.npz", **arrays)
(HERE / "tf_golden.json").write_text(json.dumps(
    {"tensorflow_version": TF_VERSION, "cases": cases, "refused": refused,
     "extra_cases": extra_cases}, indent=1) + "\n")

# ----------------------------------------------------------------------------------------
# Valid output sizes of tf.nn.conv2d_transpose (1-D along the width)
# ----------------------------------------------------------------------------------------


def forward_width(o, k, s, d, padding):
    """Width tf.nn.conv2d gives for input width o (None if TF refuses)."""
    try:
        y = tf.nn.conv2d(np.ones((1, 1, o, 1), np.float32), np.ones((1, k, 1, 1), np.float32),
                         s, padding, "NHWC", d)
        return int(y.shape[2])
    except Exception:
        return None


entries, skipped, sample_errors = [], [], {}
ones_w = {k: np.ones((1, k, 1, 1), np.float32) for k in (1, 2, 3, 4, 5)}
for i in (1, 2, 3, 4, 5, 7):
    x1 = np.ones((1, 1, i, 1), np.float32)
    for k in (1, 2, 3, 4, 5):
        for s in (1, 2, 3):
            for d in (1, 2):
                for padding in ("SAME", "VALID"):
                    widths = range(0, i * s + (k - 1) * d + s + 2)
                    accepted, errors = [], {}
                    for o in widths:
                        try:
                            tf.nn.conv2d_transpose(x1, ones_w[k], [1, 1, o, 1], s, padding,
                                                   "NHWC", d).numpy()
                            accepted.append(o)
                        except Exception as exc:
                            errors[o] = err_text(exc)
                    # widths whose *forward* tf.nn.conv2d gives width i (CPU forward
                    # supports dilations, so this is defined even where the transpose
                    # is refused)
                    fwd = [o for o in widths if forward_width(o, k, s, d, padding) == i]
                    size_errors = {o: e for o, e in errors.items()
                                   if "Size of out_backprop" in e}
                    entry = {"in": i, "k": k, "s": s, "d": d, "padding": padding}
                    if errors and not size_errors:
                        # refused for a reason other than the size (all widths refused)
                        entry["error"] = sorted(set(errors.values()))[0]
                        entry["forward_conv2d_widths"] = fwd
                        skipped.append(entry)
                        continue
                    entry["accepted"] = accepted
                    if fwd != accepted:
                        entry["forward_conv2d_widths"] = fwd
                        print("note: forward-size rule differs:", entry)
                    entries.append(entry)
                    if (padding not in sample_errors and i == 3 and k == 3 and s == 2
                            and size_errors):
                        o = accepted[-1] + 1      # the first width too large
                        sample_errors[padding] = {
                            "call": (f"tf.nn.conv2d_transpose(ones[1,1,{i},1], "
                                     f"ones[1,{k},1,1], output_shape=[1,1,{o},1], "
                                     f"strides={s}, padding='{padding}')"),
                            "accepted_widths": accepted, "error": size_errors[o]}

# seed example 3: conv2d_backprop_input(input_sizes=[1,4,4,1], filter [2,2,1,1],
# out_backprop [1,3,3,1], strides=[1,2,2,1], padding='SAME')
seed = {"call": ("tf.compat.v1.nn.conv2d_backprop_input(input_sizes=[1, 4, 4, 1], "
                 "filter=ones[2, 2, 1, 1], out_backprop=ones[1, 3, 3, 1], "
                 "strides=[1, 2, 2, 1], padding='SAME')")}
try:
    r = tf.compat.v1.nn.conv2d_backprop_input([1, 4, 4, 1], np.ones((2, 2, 1, 1), np.float32),
                                              np.ones((1, 3, 3, 1), np.float32),
                                              [1, 2, 2, 1], "SAME")
    seed.update(rejected=False, result=np.asarray(r).tolist())
except Exception as exc:
    seed.update(rejected=True, error=err_text(exc))
ok = []
for h in range(0, 10):
    try:
        tf.compat.v1.nn.conv2d_backprop_input([1, h, h, 1], np.ones((2, 2, 1, 1), np.float32),
                                              np.ones((1, 3, 3, 1), np.float32),
                                              [1, 2, 2, 1], "SAME").numpy()
        ok.append(h)
    except Exception:
        pass
seed["accepted_square_input_sizes"] = ok   # input_sizes [1,h,h,1] TF accepts instead

(HERE / "tf_valid_sizes.json").write_text(json.dumps(
    {"tensorflow_version": TF_VERSION,
     "description": ("accepted: output widths w for which tf.nn.conv2d_transpose("
                     "ones[1,1,in,1], ones[1,k,1,1], [1,1,w,1], s, padding, 'NHWC', d) "
                     "runs; candidates w in range(0, in*s + (k-1)*d + s + 2). skipped: "
                     "combos TF refuses for every w for a reason other than the size "
                     "(forward_conv2d_widths: widths w where tf.nn.conv2d on width w "
                     "gives width in)."),
     "entries": entries, "skipped": skipped, "sample_errors": sample_errors,
     "seed_example_3": seed}, indent=None, separators=(",", ":")) + "\n")

# ----------------------------------------------------------------------------------------
# max_pool_with_argmax
# ----------------------------------------------------------------------------------------
pool_cases, pool_arrays, pool_refused = [], {}, []
# (shape NHWC, ksize as passed, strides as passed, padding, include_batch_in_index, kind)
P_CASES = [
    ((1, 4, 4, 1), 2, 2, "VALID", False, "dyadic"),
    ((2, 5, 5, 2), 2, 2, "SAME", False, "dyadic"),
    ((2, 5, 5, 2), 2, 2, "SAME", True, "dyadic"),
    ((2, 4, 6, 1), [1, 2, 3, 1], [1, 2, 1, 1], "VALID", True, "dyadic"),
    ((1, 5, 6, 2), [2, 3], [1, 2], "SAME", False, "dyadic"),
    ((1, 6, 7, 3), 3, 2, "SAME", False, "ties"),
    ((2, 6, 7, 3), 3, 2, "VALID", True, "ties"),
    ((1, 5, 5, 2), 3, 1, "SAME", False, "ties"),
    ((2, 4, 5, 1), [1, 2, 2, 1], [1, 1, 1, 1], "VALID", True, "ties"),
    ((1, 5, 5, 2), 2, 2, "SAME", False, "nan"),
    ((1, 6, 6, 1), 3, 3, "VALID", False, "nan"),
    ((2, 4, 4, 2), 3, 1, "SAME", True, "nan"),
    ((1, 4, 4, 2), 2, 1, "SAME", True, "inf"),
    ((2, 5, 4, 3), 3, 2, "VALID", False, "inf"),
    ((0, 4, 4, 1), 2, 2, "VALID", False, "dyadic"),   # batch 0 (TF refuses)
]
for dtype in (np.float32, np.float64):
    for n, (shape, ksize, strides, padding, incl, kind) in enumerate(P_CASES):
        rng = rng_for(f"pool/{n}/{np.dtype(dtype).name}")
        if kind == "ties":
            x = rng.integers(0, 3, size=shape).astype(dtype)
        else:
            x = dyadic(rng, shape, dtype)
        flat = x.reshape(-1)
        if kind == "nan":
            flat[rng.choice(flat.size, size=max(2, flat.size // 5), replace=False)] = np.nan
            flat[:2 * shape[3]] = np.nan           # a window whose first entries are NaN
        if kind == "inf":
            flat[::3] = -np.inf
            flat[1::7] = np.inf
            x[0, :3, :3, 0] = -np.inf              # an all -inf window
        args = {"ksize": ksize, "strides": strides, "padding": padding,
                "include_batch_in_index": incl}
        try:
            out, arg = tf.nn.max_pool_with_argmax(x, ksize, strides, padding,
                                                  include_batch_in_index=incl)
        except Exception as exc:
            pool_refused.append({"op": "max_pool_with_argmax", "dtype": np.dtype(dtype).name,
                                 "args": args, "shape": list(shape), "error": err_text(exc)})
            print("TF refused max_pool_with_argmax", shape, args, str(exc).splitlines()[0][:160])
            continue
        cid = f"p{len(pool_cases):03d}"
        pool_arrays[f"{cid}/input"] = x
        pool_arrays[f"{cid}/output"] = out.numpy()
        pool_arrays[f"{cid}/argmax"] = arg.numpy().astype(np.int64)
        pool_cases.append({"id": cid, "op": "max_pool_with_argmax",
                           "dtype": np.dtype(dtype).name, "kind": kind, "args": args,
                           "arrays": {k: f"{cid}/{k}" for k in ("input", "output",
                                                                 "argmax")}})
np.savez_compressed(HERE / "tf_pool_golden.npz", **pool_arrays)
(HERE / "tf_pool_golden.json").write_text(json.dumps(
    {"tensorflow_version": TF_VERSION, "cases": pool_cases, "refused": pool_refused},
    indent=1) + "\n")

# ----------------------------------------------------------------------------------------
counts = {}
for c in cases:
    counts[c["op"]] = counts.get(c["op"], 0) + 1
print(f"TensorFlow {TF_VERSION}: {len(cases)} cases {counts}, {len(extra_cases)} extra "
      f"(atrous), {len(refused)} refused; {len(entries)} size entries, "
      f"{len(skipped)} skipped; {len(pool_cases)} pooling cases, "
      f"{len(pool_refused)} refused")
print("seed example 3:", seed)
