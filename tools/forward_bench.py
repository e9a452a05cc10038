"""Forward conv2d and conv2d_backprop_filter on the suite's layers, cdeconv vs PyTorch.

    python tools/forward_bench.py [--threads 1,2] [--rounds 5] [--batch 1,16]

Each transposed layer of cdeconv/_workloads.json is turned around: the forward conv reads
its *output* side (N, OH, OW, out_c) with the same filter array (TF's forward layout
[kh, kw, in=out_c, out=in_c]) and gives its input side; the filter gradient takes both.
PyTorch: torch.nn.functional.conv2d (NCHW and channels_last) and
torch.nn.grad.conv2d_weight, TF's asymmetric SAME padding applied with F.pad. Every torch
result is checked against cdeconv's (max|diff|/max|y| < 1e-4) before timing; rounds are
interleaved (cdeconv, torch, torch_cl, ...), medians reported, each implementation
allocating its output. Not a test: needs torch (the `bench` peers), prints a table.
"""
import argparse
import json
import math

import numpy as np

import cdeconv
from cdeconv import _geometry
from cdeconv._bench import _time_once, load_workloads


def main():
    import torch
    import torch.nn.functional as F

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--batch", default="1,16")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--workload", action="append", help="only these (repeatable)")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    rows = []
    for th in (int(t) for t in args.threads.split(",")):
        cdeconv.set_num_threads(th)
        torch.set_num_threads(th)
        for wl in load_workloads():
            if args.workload and wl["name"] not in args.workload:
                continue
            for b in (int(v) for v in args.batch.split(",")):
                big = rng.standard_normal([b] + wl["output_hwc"]).astype(np.float32)
                w = rng.standard_normal(wl["filters"]).astype(np.float32)
                s, pad = wl["strides"], wl["padding"]
                geom = _geometry.forward_geometry(2, big, w, s, pad, "NHWC", None)
                dy = rng.standard_normal(geom.shape("small")).astype(np.float32)
                (pt, pb), (pl, pr) = geom.pads
                tx = torch.from_numpy(big).permute(0, 3, 1, 2).contiguous()
                tx = F.pad(tx, (pl, pr, pt, pb))
                txc = tx.contiguous(memory_format=torch.channels_last)
                tw = torch.from_numpy(w).permute(3, 2, 0, 1).contiguous()  # (out, in, kh, kw)
                tdy = torch.from_numpy(dy).permute(0, 3, 1, 2).contiguous()
                impls = {
                    "forward": {
                        "cdeconv": lambda: cdeconv.conv2d(big, w, s, pad),
                        "torch": lambda: F.conv2d(tx, tw, stride=s),
                        "torch_cl": lambda: F.conv2d(txc, tw, stride=s),
                    },
                    "backprop_filter": {
                        "cdeconv": lambda: cdeconv.conv2d_backprop_filter(
                            big, w.shape, dy, s, pad),
                        "torch": lambda: torch.nn.grad.conv2d_weight(
                            tx, tw.shape, tdy, stride=s),
                    },
                }
                for op, fns in impls.items():
                    ref = fns["cdeconv"]()
                    for name, fn in fns.items():
                        got = fn()
                        if name != "cdeconv":
                            got = got.permute(0, 2, 3, 1) if op == "forward" else \
                                got.permute(2, 3, 1, 0)
                            got = got.contiguous().numpy()
                            err = np.abs(got - ref).max() / max(np.abs(ref).max(), 1e-30)
                            if not err < 1e-4:
                                raise SystemExit(f"{wl['name']} b{b} {op} {name}: "
                                                 f"mismatch {err:.1e}")
                    times = {k: [] for k in fns}
                    for _ in range(args.rounds):
                        for name, fn in fns.items():
                            times[name].append(_time_once(fn) * 1e3)
                    med = {k: float(np.median(v)) for k, v in times.items()}
                    best = min(v for k, v in med.items() if k != "cdeconv")
                    rows.append((th, op, wl["name"], b, med, best / med["cdeconv"]))
                    print(f"{th}t {op:15s} {wl['name']:15s} b{b:<3d} "
                          + "  ".join(f"{k} {v:8.3f}" for k, v in med.items())
                          + f"  best-torch/cdeconv {best / med['cdeconv']:.2f}x", flush=True)
    for th in sorted({r[0] for r in rows}):
        for op in ("forward", "backprop_filter"):
            rs = [r[5] for r in rows if r[0] == th and r[1] == op]
            print(f"{th} thread(s) {op}: geometric mean torch/cdeconv "
                  f"{math.exp(sum(map(math.log, rs)) / len(rs)):.2f}x, "
                  f"worst {min(rs):.2f}x, cases below 0.8: {sum(r < 0.8 for r in rs)}/{len(rs)}")
    print(json.dumps({"versions": {"cdeconv": cdeconv.__version__,
                                   "torch": torch.__version__}}))


if __name__ == "__main__":
    main()
