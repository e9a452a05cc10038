"""The forward dispatch rule's measurements: forced forward kernels on the suite's layers
turned round (as tools/forward_bench.py turns them), interleaved, medians in ms.

    python tools/forward_rules.py [--algos 0,3,5,6] [--threads 1,2] [--workload NAME ...]
    python tools/forward_rules.py --filter-gradient [--threads 1,2] [--workload NAME ...]
    python tools/forward_rules.py --planar [--threads 1,2]
    python tools/forward_rules.py --planar-gemm [--threads 1,2]

Kernels (cdeconv/_driver.py): 0 im2col + GEMM (its GEMM on the micro-kernel for >= 16
output channels, see _conv.set_own_gemm), 3 forward implicit GEMM, 5 tap rows, 6 planar
(1-8 output channels). A kernel
that does not take the layer is shown as '-'. With --filter-gradient: the public
conv2d_backprop_filter with its GEMM on BLAS and forced onto the micro-kernel
(_conv.set_own_filter_gemm(0 / 2); the rule is _bpf_own_fits in src/_conv.pyx, its choice
shown). With --planar: the planar rule's shapes (1-8 output channels, PLANAR_SHAPES),
im2col + GEMM and tap rows against planar, and the filter gradient of the same layer
without and with its planar kernel (_conv.set_planar_filter_gradient(0 / 2): 2 takes it
wherever it fits), medians of 5 loops of >= 30 ms. With --planar-gemm: the filter
gradient's planar GEMM (_conv.set_planar_filter_gradient(3)) against the other kernels
(0) on the suite's layers turned round and PLANAR_GEMM_SHAPES, interleaved, medians of 3,
the rule's choice shown (_conv.planar_filter_gradient: 0 neither, 1 sums, 2 GEMM).
Not a test: prints a table.
"""
import argparse
import time

import numpy as np

import cdeconv
from cdeconv import _conv, _driver, _geometry
from cdeconv._bench import _time_once, load_workloads

PLANAR_SHAPES = [  # batch, h, w, cin, cout, k, s (SAME): the planar forward's rule
    (1, 64, 64, 256, 8, 3, 1), (16, 28, 28, 64, 8, 3, 2), (1, 32, 32, 512, 4, 3, 1),
    (1, 16, 16, 64, 2, 3, 1), (1, 448, 448, 3, 3, 3, 2), (16, 448, 448, 3, 3, 3, 2),
    (1, 56, 56, 32, 1, 3, 2), (16, 56, 56, 32, 1, 3, 2), (1, 224, 224, 64, 3, 3, 1),
    (1, 240, 320, 32, 1, 5, 1), (1, 128, 128, 64, 8, 3, 1), (1, 128, 128, 16, 4, 3, 1),
    (4, 64, 64, 128, 3, 5, 2), (1, 480, 640, 1, 1, 9, 2), (1, 256, 256, 32, 3, 4, 2),
    (1, 64, 64, 256, 1, 3, 1),
]

PLANAR_GEMM_SHAPES = [  # batch, h, w, cin, cout, k, s (SAME): the planar GEMM's rule
    (1, 64, 64, 4, 64, 4, 2), (16, 64, 64, 4, 64, 4, 2), (1, 64, 64, 8, 64, 4, 2),
    (16, 64, 64, 8, 64, 4, 2), (1, 64, 64, 16, 64, 4, 2), (16, 64, 64, 16, 64, 4, 2),
    (1, 128, 128, 8, 32, 3, 2), (1, 128, 128, 16, 32, 3, 1), (1, 56, 56, 32, 64, 3, 1),
    (1, 32, 32, 3, 32, 5, 2), (1, 16, 16, 3, 64, 4, 2), (1, 224, 224, 3, 16, 3, 1),
    (1, 64, 64, 1, 256, 3, 1), (4, 28, 28, 1, 64, 5, 2), (1, 112, 112, 6, 48, 3, 2),
]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--algos", default="0,3,5,6")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--batch", default="1,16")
    ap.add_argument("--workload", action="append", help="only these (repeatable)")
    ap.add_argument("--filter-gradient", action="store_true")
    ap.add_argument("--planar", action="store_true")
    ap.add_argument("--planar-gemm", action="store_true")
    args = ap.parse_args()
    algos = [int(a) for a in args.algos.split(",")]
    rng = np.random.default_rng(0)
    if args.planar:
        _planar(args, rng)
        return
    if args.planar_gemm:
        _planar_gemm(args, rng)
        return
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


def _planar(args, rng):
    for th in (int(t) for t in args.threads.split(",")):
        cdeconv.set_num_threads(th)
        for b, h, w_, cin, cout, k, s in PLANAR_SHAPES:
            x = rng.random((b, h, w_, cin), np.float32)
            w = rng.random((k, k, cin, cout), np.float32)
            g = _geometry.forward_geometry(2, x, w, s, "SAME", "NHWC", None)
            y = np.empty(g.shape("small"), np.float32)
            ms = {}
            for a in (0, 5, 6):
                fn = (lambda a=a: _driver.run(g, x, w, y, "forward", algo=a))
                fn()
                ms[a] = float(np.median([_time_once(fn) for _ in range(5)])) * 1e3
            # the filter gradient of the same layer: its other kernels, then planar
            dy = rng.random(g.shape("small"), np.float32)
            bpf = {}
            for mode in (0, 2):
                before = _conv.set_planar_filter_gradient(mode)
                try:
                    fn = (lambda: cdeconv.conv2d_backprop_filter(x, w.shape, dy, s, "SAME"))
                    fn()
                    bpf[mode] = float(np.median([_time_once(fn) for _ in range(5)])) * 1e3
                finally:
                    _conv.set_planar_filter_gradient(before)
            print(f"{th}t  {b}x{h}x{w_}x{cin} -> {cout} k{k} s{s}: "
                  + "  ".join(f"{a}: {t:8.3f}" for a, t in ms.items())
                  + f"  best other / planar {min(ms[0], ms[5]) / ms[6]:.2f}x"
                  + f"   rule -> {_driver.choose_forward_algo(g)};  filter gradient "
                  + f"other {bpf[0]:8.3f} planar {bpf[2]:8.3f}: {bpf[0] / bpf[2]:.2f}x",
                  flush=True)


def _planar_gemm(args, rng):
    layers = [(wl["name"], b, [b] + wl["output_hwc"], wl["filters"], wl["strides"],
               wl["padding"]) for wl in load_workloads()
              for b in (int(v) for v in args.batch.split(","))]
    layers += [(f"{h}x{w_}x{cin}->{cout}", b, [b, h, w_, cin], [k, k, cin, cout], s, "SAME")
               for b, h, w_, cin, cout, k, s in PLANAR_GEMM_SHAPES]
    for th in (int(t) for t in args.threads.split(",")):
        cdeconv.set_num_threads(th)
        for name, b, xs, fs, s, pad in layers:
            x = rng.standard_normal(xs).astype(np.float32)
            g = _geometry.forward_geometry(2, x, np.empty(fs, np.float32), s, pad, "NHWC",
                                           None)
            dy = rng.standard_normal(g.shape("small")).astype(np.float32)
            fn = (lambda: cdeconv.conv2d_backprop_filter(x, tuple(fs), dy, s, pad))
            ms = {0: [], 3: []}
            for _ in range(3):
                for mode in ms:
                    before = _conv.set_planar_filter_gradient(mode)
                    try:
                        fn()
                        ms[mode].append(_time_once(fn))
                    finally:
                        _conv.set_planar_filter_gradient(before)
            t0, t3 = (float(np.median(ms[m])) * 1e3 for m in (0, 3))
            print(f"{th}t  {name:16s} b{b:<2d} cb {g.cb:4d} cs {g.cs:4d}: other {t0:8.3f}"
                  f" planar GEMM {t3:8.3f} ms: {t0 / t3:5.2f}x   rule -> "
                  f"{_conv.planar_filter_gradient(g.kernel_args())}", flush=True)


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
