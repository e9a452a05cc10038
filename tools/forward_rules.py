"""The forward dispatch rule's measurements: forced forward kernels on the suite's layers
turned round (as tools/forward_bench.py turns them), interleaved, medians in ms.

    python tools/forward_rules.py [--algos 0,3,5] [--threads 1,2] [--workload NAME ...]
    python tools/forward_rules.py --filter-gradient [--threads 1,2] [--workload NAME ...]

Kernels (cdeconv/_driver.py): 0 im2col + GEMM (its GEMM on the micro-kernel for >= 16
output channels, see _conv.set_own_gemm), 3 forward implicit GEMM, 5 tap rows. A kernel
that does not take the layer is shown as '-'. With --filter-gradient: the public
conv2d_backprop_filter with its GEMM on BLAS and forced onto the micro-kernel
(_conv.set_own_filter_gemm(0 / 2); the rule is _bpf_own_fits in src/_conv.pyx, its choice
shown).
Not a test: prints a table.
"""
import argparse
import time

import numpy as np

import cdeconv
from cdeconv import _conv, _driver, _geometry
from cdeconv._bench import load_workloads


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--algos", default="0,3,5")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--batch", default="1,16")
    ap.add_argument("--workload", action="append", help="only these (repeatable)")
    ap.add_argument("--filter-gradient", action="store_true")
    args = ap.parse_args()
    algos = [int(a) for a in args.algos.split(",")]
    rng = np.random.default_rng(0)
    for th in (int(t) for t in args.threads.split(",")):
        cdeconv.set_num_threads(th)
        for wl in load_workloads():
            if args.workload and wl["name"] not in args.workload:
                continue
            for b in (int(v) for v in args.batch.split(",")):
                x = rng.standard_normal([b] + wl["output_hwc"]).astype(np.float32)
                w = rng.standard_normal(wl["filters"]).astype(np.float32)
                g = _geometry.forward_geometry(2, x, w, wl["strides"], wl["padding"],
                                               "NHWC", None)
                y = np.empty(g.shape("small"), np.float32)
                if args.filter_gradient:
                    _filter_gradient(th, wl, b, x, g, rng)
                    continue
                times = {}
                for a in algos:
                    try:
                        _driver.run(g, x, w, y, "forward", algo=a)
                        times[a] = []
                    except ValueError:
                        pass
                for _ in range(5 if b >= 16 else 9):
                    for a in times:
                        t = time.perf_counter()
                        _driver.run(g, x, w, y, "forward", algo=a)
                        times[a].append(time.perf_counter() - t)
                cells = [f"{a}: {np.median(times[a]) * 1e3:8.3f}" if a in times
                         else f"{a}: {'-':>8s}" for a in algos]
                print(f"{th}t {wl['name']:15s} b{b:<3d} " + "  ".join(cells)
                      + f"   rule -> {_driver.choose_forward_algo(g)}", flush=True)


def _filter_gradient(th, wl, b, x, g, rng):
    dy = rng.standard_normal(g.shape("small")).astype(np.float32)
    ws = tuple(wl["filters"])
    times = {0: [], 2: []}          # BLAS, the micro-kernel forced
    try:
        for _ in range(5 if b >= 16 else 9):
            for own in times:
                _conv.set_own_filter_gemm(own)
                t = time.perf_counter()
                cdeconv.conv2d_backprop_filter(x, ws, dy, wl["strides"], wl["padding"])
                times[own].append(time.perf_counter() - t)
    finally:
        _conv.set_own_filter_gemm(1)
    blas, own = (np.median(times[o]) * 1e3 for o in (0, 2))
    rule = ("BLAS", "own DW^T", "own DW")[_conv.bpf_own_fits(g.kernel_args())]
    print(f"{th}t {wl['name']:15s} b{b:<3d} BLAS {blas:8.3f}  own {own:8.3f}  "
          f"BLAS/own {blas / own:5.2f}   rule -> {rule}", flush=True)


if __name__ == "__main__":
    main()
