"""The forward dispatch rule's measurements: forced forward kernels on the suite's layers
turned round (as tools/forward_bench.py turns them), interleaved, medians in ms.

    python tools/forward_rules.py [--algos 0,3,5] [--threads 1,2] [--workload NAME ...]

Kernels (cdeconv/_driver.py): 0 im2col + GEMM (its GEMM on the micro-kernel for >= 16
output channels, see _conv.set_own_gemm), 3 forward implicit GEMM, 5 tap rows. A kernel
that does not take the layer is shown as '-'. Not a test: prints a table.
"""
import argparse
import time

import numpy as np

import cdeconv
from cdeconv import _driver, _geometry
from cdeconv._bench import load_workloads


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--algos", default="0,3,5")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--batch", default="1,16")
    ap.add_argument("--workload", action="append", help="only these (repeatable)")
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


if __name__ == "__main__":
    main()
