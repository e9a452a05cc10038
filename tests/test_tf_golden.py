"""Golden values computed by real TensorFlow (tests/data/make_tf_golden.py made them).

The inputs are multiples of 1/8, so TF's float32 results are exact and are compared
exactly; float64 too."""
import json
import pathlib

import numpy as np
import pytest

import cdeconv

DATA = pathlib.Path(__file__).resolve().parent / "data"
IMPLEMENTED = {"conv2d_transpose", "conv2d_backprop_input", "conv2d",
               "conv2d_backprop_filter", "conv1d_transpose", "conv3d_transpose"}


def _load(name):
    meta = json.loads((DATA / f"{name}.json").read_text())
    arrays = np.load(DATA / f"{name}.npz")
    return meta, arrays


META, ARRAYS = _load("tf_golden")
CASES = [c for c in META["cases"] if c["op"] in IMPLEMENTED]


def _call(case):
    a = {k: ARRAYS[v] for k, v in case["arrays"].items()}
    args = dict(case["args"])
    op = case["op"]
    if op == "conv2d_transpose":
        return cdeconv.conv2d_transpose(a["input"], a["filters"], **args), a["result"]
    if op == "conv2d_backprop_input":
        return cdeconv.conv2d_backprop_input(args.pop("input_sizes"), a["filter"],
                                             a["out_backprop"], **args), a["result"]
    if op == "conv2d":
        return cdeconv.conv2d(a["input"], a["filters"], **args), a["result"]
    if op == "conv2d_backprop_filter":
        return cdeconv.conv2d_backprop_filter(a["input"], args.pop("filter_sizes"),
                                              a["out_backprop"], **args), a["result"]
    if op in ("conv1d_transpose", "conv3d_transpose"):
        fn = getattr(cdeconv, op)
        return fn(a["input"], a["filters"], args.pop("output_shape"),
                  args.pop("strides"), **args), a["result"]
    raise AssertionError(op)


def test_enough_golden_cases():
    ops = [c["op"] for c in CASES]
    assert ops.count("conv2d_transpose") >= 20
    assert ops.count("conv2d_backprop_input") >= 5 and ops.count("conv2d") >= 5
    for op in ("conv2d_backprop_filter", "conv1d_transpose", "conv3d_transpose"):
        assert ops.count(op) >= 5, op


@pytest.mark.parametrize("case", CASES, ids=[f"{c['id']}-{c['op']}" for c in CASES])
def test_matches_tensorflow(case):
    got, want = _call(case)
    assert got.dtype == want.dtype == np.dtype(case["dtype"])
    assert got.shape == want.shape
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("case", [c for c in CASES if c["op"] == "conv2d_transpose"
                                  and c["args"].get("data_format", "NHWC") == "NHWC"][:8],
                         ids=lambda c: c["id"])
def test_matches_tensorflow_in_nchw(case):
    """TF's CPU kernels refuse NCHW; ours compute it natively: same numbers."""
    a = {k: ARRAYS[v] for k, v in case["arrays"].items()}
    args = dict(case["args"])
    shape = args.pop("output_shape")
    to_nchw = (0, 3, 1, 2)
    strides, dil = args.pop("strides"), args.pop("dilations", None)
    if isinstance(strides, list) and len(strides) == 4:
        strides = strides[1:3]
    if isinstance(dil, list) and len(dil) == 4:
        dil = dil[1:3]
    pad = args.pop("padding")
    if not isinstance(pad, str):
        pad = [pad[i] for i in to_nchw]
    got = cdeconv.conv2d_transpose(np.ascontiguousarray(a["input"].transpose(to_nchw)),
                                   a["filters"], [shape[i] for i in to_nchw], strides,
                                   pad, "NCHW", dil)
    np.testing.assert_array_equal(got, a["result"].transpose(to_nchw))


VALID = json.loads((DATA / "tf_valid_sizes.json").read_text())


def test_valid_output_sizes_match_tensorflow():
    """For every (input, kernel, stride, dilation, padding) TF was asked about, our
    valid_output_sizes and our op accept exactly the output widths TF accepted."""
    entries = [e for e in VALID["entries"] if "tf_refused_all" not in e]
    assert len(entries) > 100
    x = {}
    for e in entries:
        ours = list(cdeconv.valid_output_sizes(e["in"], e["k"], e["s"], e["padding"],
                                               e["d"]))
        assert ours == sorted(e["accepted"]), e
        w = np.ones((1, e["k"], 1, 1), np.float32)
        xin = x.setdefault(e["in"], np.ones((1, 1, e["in"], 1), np.float32))
        for width in range(0, e["in"] * e["s"] + (e["k"] - 1) * e["d"] + e["s"] + 2):
            try:
                cdeconv.conv2d_transpose(xin, w, [1, 1, width, 1], e["s"], e["padding"],
                                         dilations=e["d"])
                accepted = True
            except ValueError:
                accepted = False
            assert accepted == (width in e["accepted"]), (e, width)


EXTRA = META.get("extra_cases", [])


@pytest.mark.parametrize("case", EXTRA, ids=lambda c: c["id"])
def test_dilated_transposed_conv_matches_tensorflow_atrous(case):
    """TF's CPU conv2d_transpose refuses dilation > 1, but tf.nn.atrous_conv2d_transpose
    computes it; the generator records the equivalent conv2d_transpose call."""
    eq = case["equivalent"]
    assert eq["op"] == "conv2d_transpose"
    x = ARRAYS[case["arrays"][eq["input"]]]
    got = cdeconv.conv2d_transpose(x, ARRAYS[case["arrays"]["filters"]], **eq["args"])
    np.testing.assert_array_equal(got, ARRAYS[case["arrays"]["result"]])


def test_dilated_goldens_present():
    assert len(EXTRA) >= 4 and all(c["equivalent"]["args"]["dilations"] > 1 for c in EXTRA)
