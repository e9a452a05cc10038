"""Make the TensorFlow golden values the tests compare against (tests need no TF).

Writes, next to this file:
  tf_golden.json + tf_golden.npz        conv2d_transpose / conv2d_backprop_input / conv2d
  tf_valid_sizes.json                    which output widths tf.nn.conv2d_transpose accepts

Inputs are random multiples of 1/8 in [-2, 2] (fixed seeds), so every float32 sum is exact
and the tests can compare exactly. Rerun (TensorFlow in its own virtualenv, never a
dependency of cdeconv):

    python3 -m venv /tmp/tfvenv && /tmp/tfvenv/bin/pip install tensorflow-cpu
    /tmp/tfvenv/bin/python tests/data/make_tf_golden.py
"""
import json
import pathlib

import numpy as np
import tensorflow as tf

HERE = pathlib.Path(__file__).resolve().parent
rng = np.random.default_rng(20261122)


def dyadic(shape, dtype):
    return (rng.integers(-16, 17, size=shape) / 8).astype(dtype)


cases, arrays, refused = [], {}, []


def add(op, dtype, args, tensors, fn):
    cid = f"c{len(cases):03d}"
    try:
        result = fn()
    except Exception as exc:  # TF refused: record, keep nothing
        refused.append({"op": op, "args": args, "error": str(exc).splitlines()[0][:300]})
        return
    names = {}
    for name, value in list(tensors.items()) + [("result", np.asarray(result))]:
        arrays[f"{cid}/{name}"] = value
        names[name] = f"{cid}/{name}"
    cases.append({"id": cid, "op": op, "dtype": np.dtype(dtype).name, "args": args,
                  "arrays": names})


def same_or_valid_sizes(i, k, s, d, padding):
    """TF's two rules for the forward size, inverted by brute force."""
    eff = (k - 1) * d + 1
    out = []
    for o in range(0, i * s + eff + s + 2):
        f = (o + s - 1) // s if padding == "SAME" else int((o - eff + s) / s)
        if f == i:
            out.append(o)
    return out


# --- conv2d_transpose: (in_hw, kernel, strides-as-passed, dilations, padding, cin, cout, batch)
T_CASES = [
    ((3, 3), (3, 3), 2, 1, "SAME", 4, 2, 1),
    ((3, 3), (3, 3), [2, 2], 1, "VALID", 2, 3, 2),
    ((4, 4), (1, 1), 1, 1, "VALID", 3, 2, 1),
    ((4, 5), (1, 1), [1, 2, 2, 1], 1, "SAME", 2, 2, 1),
    ((4, 4), (2, 2), 2, 1, "SAME", 3, 4, 2),
    ((5, 4), (4, 4), 2, 1, "SAME", 2, 3, 1),
    ((3, 4), (5, 5), 2, 1, "SAME", 3, 2, 1),
    ((3, 3), (5, 5), 3, 1, "VALID", 2, 2, 1),
    ((4, 3), (2, 3), [1, 2], 1, "VALID", 2, 2, 1),
    ((3, 4), (3, 1), [2, 1], 1, "SAME", 1, 3, 2),
    ((3, 3), (2, 2), 3, 1, "VALID", 2, 1, 1),
    ((5, 5), (3, 3), 1, 2, "SAME", 2, 2, 1),
    ((4, 4), (3, 3), 1, [1, 2, 1, 1], "VALID", 3, 2, 1),
    ((3, 3), (3, 3), 2, 2, "SAME", 2, 2, 1),
    ((3, 4), (3, 2), [2, 1], [1, 2], "VALID", 2, 3, 1),
    ((2, 2), (3, 3), 2, 1, [[0, 0], [1, 2], [0, 1], [0, 0]], 2, 2, 1),
    ((3, 3), (4, 3), [1, 3, 2, 1], 1, [[0, 0], [2, 0], [1, 1], [0, 0]], 2, 3, 2),
    ((1, 1), (4, 4), 1, 1, "VALID", 5, 3, 2),
    ((6, 5), (3, 3), 1, 1, "SAME", 4, 5, 1),
    ((4, 4), (5, 5), 2, 1, "SAME", 5, 4, 1),
    ((0, 3), (3, 3), 2, 1, "SAME", 2, 2, 1),
]


def tf_padding(p):
    return p


for dtype in (np.float32, np.float64):
    for (ih, iw), (kh, kw), strides, dil, padding, cin, cout, batch in T_CASES:
        sh, sw = ((strides, strides) if isinstance(strides, int) else
                  (strides[0], strides[1]) if len(strides) == 2 else strides[1:3])
        dh, dw = ((dil, dil) if isinstance(dil, int) else
                  (dil[0], dil[1]) if len(dil) == 2 else dil[1:3])
        x = dyadic((batch, ih, iw, cin), dtype)
        w = dyadic((kh, kw, cout, cin), dtype)
        if isinstance(padding, str):
            hs = same_or_valid_sizes(ih, kh, sh, dh, padding)
            ws = same_or_valid_sizes(iw, kw, sw, dw, padding)
            choices = {(hs[-1], ws[-1]), (hs[0], ws[0])}
        else:
            (pt, pb), (pl, pr) = padding[1], padding[2]
            choices = {((ih - 1) * sh + (kh - 1) * dh + 1 - pt - pb,
                        (iw - 1) * sw + (kw - 1) * dw + 1 - pl - pr)}
        for oh, ow in sorted(choices):
            shape = [batch, oh, ow, cout]
            args = {"output_shape": shape, "strides": strides, "padding": padding,
                    "data_format": "NHWC", "dilations": dil}
            add("conv2d_transpose", dtype, args, {"input": x, "filters": w},
                lambda: tf.nn.conv2d_transpose(x, w, shape, strides, padding, "NHWC",
                                               dil).numpy())
            if dil == 1 and isinstance(padding, str) and len(cases) % 3 == 0:
                args = {"input_sizes": shape, "strides": [1, sh, sw, 1],
                        "padding": padding, "data_format": "NHWC"}
                add("conv2d_backprop_input", dtype, args,
                    {"filter": w, "out_backprop": x},
                    lambda: tf.compat.v1.nn.conv2d_backprop_input(
                        shape, w, x, [1, sh, sw, 1], padding).numpy())

# --- conv2d (forward), incl. a grouped filter
F_CASES = [((7, 7), (3, 3), 1, 1, "SAME", 2, 3), ((8, 7), (3, 3), 2, 1, "SAME", 3, 2),
           ((9, 9), (5, 5), 2, 1, "VALID", 2, 2), ((6, 7), (2, 3), [1, 2], 1, "SAME", 2, 4),
           ((7, 6), (3, 3), 1, 2, "VALID", 3, 2),
           ((6, 6), (3, 3), 1, 1, [[0, 0], [1, 2], [2, 0], [0, 0]], 2, 3),
           ((5, 5), (3, 3), 1, 1, "SAME", 4, 4)]
for dtype in (np.float32, np.float64):
    for i, ((ih, iw), (kh, kw), strides, dil, padding, cin, cout) in enumerate(F_CASES):
        groups = 2 if i == len(F_CASES) - 1 else 1
        x = dyadic((2, ih, iw, cin), dtype)
        w = dyadic((kh, kw, cin // groups, cout), dtype)
        args = {"strides": strides, "padding": padding, "data_format": "NHWC",
                "dilations": dil}
        add("conv2d", dtype, args, {"input": x, "filters": w},
            lambda: tf.nn.conv2d(x, w, strides, padding, "NHWC", dil).numpy())

# --- conv2d_backprop_filter (incl. a grouped filter), conv1d/conv3d_transpose
B_CASES = [((7, 7), (3, 3), 1, "SAME", 2, 3, 1), ((8, 7), (3, 3), 2, "SAME", 3, 2, 1),
           ((9, 9), (5, 5), 2, "VALID", 2, 2, 1), ((6, 7), (2, 3), [1, 2], "SAME", 2, 4, 1),
           ((6, 6), (3, 3), 1, [[0, 0], [1, 2], [2, 0], [0, 0]], 2, 3, 1),
           ((5, 5), (3, 3), 1, "SAME", 4, 4, 2)]
for dtype in (np.float32, np.float64):
    for (ih, iw), (kh, kw), strides, padding, cin, cout, groups in B_CASES:
        x = dyadic((2, ih, iw, cin), dtype)
        fs = [kh, kw, cin // groups, cout]
        st = strides if isinstance(strides, list) else [strides, strides]
        dy_shape = tf.nn.conv2d(x, np.zeros(fs, dtype), [1, *st, 1], padding).shape
        dy = dyadic(tuple(dy_shape), dtype)
        args = {"filter_sizes": fs, "strides": [1, *st, 1], "padding": padding,
                "data_format": "NHWC"}
        add("conv2d_backprop_filter", dtype, args, {"input": x, "out_backprop": dy},
            lambda: tf.compat.v1.nn.conv2d_backprop_filter(
                x, fs, dy, [1, *st, 1], padding).numpy())

for dtype in (np.float32, np.float64):
    for iw, k, s, padding, cin, cout in [(5, 3, 2, "SAME", 2, 3), (4, 4, 2, "VALID", 3, 2),
                                         (6, 1, 1, "SAME", 2, 2), (3, 5, 3, "SAME", 1, 2)]:
        x = dyadic((2, iw, cin), dtype)
        w = dyadic((k, cout, cin), dtype)
        ow = iw * s if padding == "SAME" else (iw - 1) * s + k
        shape = [2, ow, cout]
        add("conv1d_transpose", dtype,
            {"output_shape": shape, "strides": s, "padding": padding,
             "data_format": "NWC"}, {"input": x, "filters": w},
            lambda: tf.nn.conv1d_transpose(x, w, shape, s, padding).numpy())
    for sp, k, s, padding, cin, cout in [((2, 3, 3), (3, 3, 3), 2, "SAME", 2, 2),
                                         ((3, 2, 2), (2, 2, 2), 2, "VALID", 2, 3),
                                         ((2, 2, 3), (1, 3, 2), [1, 2, 1], "SAME", 3, 2)]:
        x = dyadic((1, *sp, cin), dtype)
        w = dyadic((*k, cout, cin), dtype)
        st = s if isinstance(s, list) else [s, s, s]
        out = [sp[i] * st[i] if padding == "SAME" else (sp[i] - 1) * st[i] + k[i]
               for i in range(3)]
        shape = [1, *out, cout]
        add("conv3d_transpose", dtype,
            {"output_shape": shape, "strides": s, "padding": padding,
             "data_format": "NDHWC"}, {"input": x, "filters": w},
            lambda: tf.nn.conv3d_transpose(x, w, shape, s, padding).numpy())

np.savez_compressed(HERE / "tf_golden.npz", **arrays)
(HERE / "tf_golden.json").write_text(json.dumps(
    {"tensorflow_version": tf.__version__, "cases": cases, "refused": refused}, indent=1))

# --- which output widths conv2d_transpose accepts (1-D along the width)
entries = []
for i in (1, 2, 3, 4, 5, 7):
    for k in (1, 2, 3, 4, 5):
        for s in (1, 2, 3):
            for d in (1, 2):
                for padding in ("SAME", "VALID"):
                    x = np.ones((1, 1, i, 1), np.float32)
                    w = np.ones((1, k, 1, 1), np.float32)
                    accepted, error = [], ""
                    for o in range(0, i * s + (k - 1) * d + s + 2):
                        try:
                            tf.nn.conv2d_transpose(x, w, [1, 1, o, 1], s, padding, "NHWC",
                                                   d).numpy()
                            accepted.append(o)
                        except Exception as exc:
                            error = str(exc).splitlines()[0][:200]
                    entry = {"in": i, "k": k, "s": s, "d": d, "padding": padding,
                             "accepted": accepted}
                    if not accepted:   # TF refused every size: not a size rule
                        entry["tf_refused_all"] = error
                    entries.append(entry)
(HERE / "tf_valid_sizes.json").write_text(json.dumps(
    {"tensorflow_version": tf.__version__, "entries": entries}))
print(f"{len(cases)} cases, {len(refused)} refused by TF, {len(entries)} size entries")
for r in refused[:10]:
    print("refused:", r["op"], r["args"], r["error"][:150])

# --- max_pool_with_argmax (tf_pool_golden.json/.npz); ties and NaN/-inf included
pool_cases, pool_arrays = [], {}
P_CASES = [((1, 4, 4, 1), 2, 2, "VALID", False, "dyadic"),
           ((2, 5, 5, 2), 2, 2, "SAME", False, "dyadic"),
           ((2, 5, 5, 2), 2, 2, "SAME", True, "dyadic"),
           ((1, 6, 7, 3), 3, 2, "SAME", False, "ties"),
           ((2, 6, 7, 3), 3, 2, "VALID", True, "ties"),
           ((1, 5, 5, 2), 3, 1, "SAME", False, "ties"),
           ((2, 4, 6, 1), [1, 2, 3, 1], [1, 2, 1, 1], "VALID", True, "dyadic"),
           ((1, 5, 5, 2), 2, 2, "SAME", False, "nan"),
           ((1, 6, 6, 1), 3, 3, "VALID", False, "nan"),
           ((1, 4, 4, 2), 2, 1, "SAME", True, "inf")]
for dtype in (np.float32, np.float64):
    for shape, ksize, strides, padding, incl, kind in P_CASES:
        if kind == "ties":
            x = rng.integers(0, 3, size=shape).astype(dtype)
        else:
            x = dyadic(shape, dtype)
        if kind == "nan":
            flat = x.reshape(-1)
            flat[rng.choice(flat.size, size=max(2, flat.size // 6), replace=False)] = np.nan
        if kind == "inf":
            flat = x.reshape(-1)
            flat[::3] = -np.inf
            flat[1::7] = np.inf
        try:
            out, arg = tf.nn.max_pool_with_argmax(x, ksize, strides, padding,
                                                  include_batch_in_index=incl)
        except Exception as exc:
            print("pool refused:", shape, ksize, strides, padding, incl, str(exc)[:120])
            continue
        cid = f"p{len(pool_cases):03d}"
        pool_arrays[f"{cid}/input"] = x
        pool_arrays[f"{cid}/output"] = out.numpy()
        pool_arrays[f"{cid}/argmax"] = arg.numpy().astype(np.int64)
        pool_cases.append({"id": cid, "op": "max_pool_with_argmax",
                           "dtype": np.dtype(dtype).name, "kind": kind,
                           "args": {"ksize": ksize, "strides": strides,
                                    "padding": padding, "include_batch_in_index": incl},
                           "arrays": {k: f"{cid}/{k}" for k in ("input", "output",
                                                                 "argmax")}})
np.savez_compressed(HERE / "tf_pool_golden.npz", **pool_arrays)
(HERE / "tf_pool_golden.json").write_text(json.dumps(
    {"tensorflow_version": tf.__version__, "cases": pool_cases}, indent=1))
print(f"{len(pool_cases)} pooling cases")
