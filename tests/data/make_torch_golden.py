"""Make PyTorch golden values for what TensorFlow lacks: grouped transposed convolution
and output_padding (tests need no PyTorch).

Writes torch_golden.json + torch_golden.npz next to this file: for each case, PyTorch's
``conv_transpose2d`` / ``conv_transpose1d`` arguments (stride, padding, output_padding,
groups, dilation), the input in NCHW, the weight in PyTorch's layout
(in, out // groups, kh, kw), and the result. Inputs are multiples of 1/8 (exact sums).
Rerun with the pinned CPU build:  pip install torch==2.13.0
    python tests/data/make_torch_golden.py
"""
import json
import pathlib

import numpy as np
import torch
import torch.nn.functional as F

HERE = pathlib.Path(__file__).resolve().parent
rng = np.random.default_rng(20261123)


def dyadic(shape, dtype):
    return (rng.integers(-16, 17, size=shape) / 8).astype(dtype)


CASES = [
    # (rank, spatial, k, stride, padding, output_padding, groups, dilation, cin, cout)
    (2, (4, 5), (3, 3), 2, 1, 1, 1, 1, 4, 2),
    (2, (4, 4), (4, 4), 2, 1, 0, 2, 1, 4, 6),
    (2, (3, 5), (3, 2), (2, 3), (1, 0), (1, 2), 1, 1, 2, 3),
    (2, (5, 5), (3, 3), 1, 1, 0, 4, 1, 4, 4),       # depthwise
    (2, (3, 3), (3, 3), 2, 0, 1, 3, 1, 6, 3),
    (2, (4, 3), (3, 3), 2, 2, 1, 1, 2, 2, 2),       # dilation + output_padding
    (2, (2, 2), (5, 5), 3, 2, 2, 2, 1, 2, 4),
    (2, (3, 4), (2, 2), 2, 0, 1, 1, 1, 3, 2),
    (1, (7,), (4,), 2, 1, 1, 2, 1, 4, 2),
    (1, (5,), (3,), 3, 0, 2, 1, 1, 2, 3),
]
cases, arrays = [], {}
for dtype in (np.float32, np.float64):
    for rank, sp, k, s, p, op, g, d, cin, cout in CASES:
        x = dyadic((2, cin, *sp), dtype)
        w = dyadic((cin, cout // g, *k), dtype)
        fn = F.conv_transpose2d if rank == 2 else F.conv_transpose1d
        y = fn(torch.from_numpy(x), torch.from_numpy(w), stride=s, padding=p,
               output_padding=op, groups=g, dilation=d).numpy()
        cid = f"t{len(cases):03d}"
        arrays.update({f"{cid}/input": x, f"{cid}/weight": w, f"{cid}/result": y})
        cases.append({"id": cid, "rank": rank, "dtype": np.dtype(dtype).name,
                      "args": {"stride": s, "padding": p, "output_padding": op,
                               "groups": g, "dilation": d},
                      "arrays": {"input": f"{cid}/input", "weight": f"{cid}/weight",
                                 "result": f"{cid}/result"}})
np.savez_compressed(HERE / "torch_golden.npz", **arrays)
(HERE / "torch_golden.json").write_text(json.dumps(
    {"torch_version": torch.__version__, "cases": cases}, indent=1))
print(len(cases), "cases, torch", torch.__version__)
