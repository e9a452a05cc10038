"""Golden values from PyTorch for grouped transposed convolutions and output_padding
(TensorFlow has neither), made by tests/data/make_torch_golden.py. PyTorch's arguments
are translated with cdeconv.padding, so the translation is checked against real
PyTorch too."""
import json
import pathlib

import numpy as np
import pytest

import cdeconv
from cdeconv import padding as pad

DATA = pathlib.Path(__file__).resolve().parent / "data"
META = json.loads((DATA / "torch_golden.json").read_text())
ARR = np.load(DATA / "torch_golden.npz")


@pytest.mark.parametrize("case", META["cases"], ids=lambda c: c["id"])
@pytest.mark.parametrize("layout", ["channels_first", "channels_last"])
def test_matches_pytorch(case, layout):
    x, w, want = (ARR[case["arrays"][k]] for k in ("input", "weight", "result"))
    n, a = case["rank"], case["args"]
    spatial = x.shape[2:]
    p = pad.from_torch(list(spatial), list(w.shape[2:]), a["stride"], a["padding"],
                       a["output_padding"], a["dilation"])
    tf_args = p.tf()
    filters = np.ascontiguousarray(np.moveaxis(w, (0, 1), (-1, -2)))  # (k..., out/g, in)
    op = cdeconv.conv2d_transpose if n == 2 else cdeconv.conv1d_transpose
    padding = tf_args["padding"]
    if not isinstance(padding, str):
        padding = [[0, 0], [0, 0]] + padding if layout == "channels_first" else \
            [[0, 0]] + padding + [[0, 0]]
    if layout == "channels_first":
        fmt = "NCHW" if n == 2 else "NCW"
        got = op(x, filters, tf_args["output_shape"], a["stride"], padding, fmt,
                 a["dilation"], groups=a["groups"])
    else:
        fmt = "NHWC" if n == 2 else "NWC"
        got = op(np.ascontiguousarray(np.moveaxis(x, 1, -1)), filters,
                 tf_args["output_shape"], a["stride"], padding, fmt, a["dilation"],
                 groups=a["groups"])
        got = np.moveaxis(got, -1, 1)
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)


def test_cases_cover_groups_and_output_padding():
    args = [c["args"] for c in META["cases"]]
    assert any(a["groups"] > 1 for a in args)
    assert any(a["output_padding"] not in (0, [0], [0, 0]) for a in args)
    assert any(c["rank"] == 1 for c in META["cases"])


@pytest.mark.parametrize("case", [c for c in META["cases"]
                                  if c["args"]["padding"] in (0, [0], [0, 0])],
                         ids=lambda c: c["id"])
def test_output_padding_keyword_matches_pytorch(case):
    """With padding 0, PyTorch's output_padding is our output_padding= keyword on a
    VALID transposed convolution (ONNX/PyTorch meaning)."""
    x, w, want = (ARR[case["arrays"][k]] for k in ("input", "weight", "result"))
    a = case["args"]
    filters = np.ascontiguousarray(np.moveaxis(w, (0, 1), (-1, -2)))
    op = cdeconv.conv2d_transpose if case["rank"] == 2 else cdeconv.conv1d_transpose
    fmt = "NCHW" if case["rank"] == 2 else "NCW"
    got = op(x, filters, None, a["stride"], "VALID", fmt, a["dilation"],
             groups=a["groups"], output_padding=a["output_padding"])
    np.testing.assert_array_equal(got, want)
