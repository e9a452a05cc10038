"""Peak memory beyond input and output for each workload (PERF target: <= 64 MiB),
measured in a fresh process per case: ru_maxrss after allocating and touching the
operands and a preallocated output, then after one call with out=.

    python tools/peak_memory.py [--op transpose|forward|backprop_filter] [batch ...]
                                                   (default: transpose, batches 1 16)

transpose: conv2d_transpose of the layer; forward: conv2d over its output side with the
same filter (the layer turned around); backprop_filter: that forward conv's filter
gradient.
"""
import json
import subprocess
import sys
from importlib import resources

CHILD = r"""
import resource, sys, json
import numpy as np
import cdeconv
wl = json.loads(sys.argv[1]); batch = int(sys.argv[2])
h, w, c = wl["input_hwc"]
x = np.ones((batch, h, w, c), np.float32)
f = np.ones(wl["filters"], np.float32)
oh, ow, oc = wl["output_hwc"]
big = np.ones((batch, oh, ow, oc), np.float32)
op, s, p = sys.argv[3], wl["strides"], wl["padding"]
if op == "transpose":
    run = lambda: cdeconv.conv2d_transpose(x, f, [oh, ow], s, p, out=big)
elif op == "forward":
    run = lambda: cdeconv.conv2d(big, f, s, p, out=x)
else:
    dw = np.ones_like(f)
    run = lambda: cdeconv.conv2d_backprop_filter(big, f.shape, x, s, p, out=dw)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
run()
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print((after - before) / 1024)
"""


def main(batches, op="transpose"):
    wls = json.loads(resources.files("cdeconv").joinpath("_workloads.json").read_text())
    worst = 0.0
    for wl in wls["workloads"]:
        row = []
        for b in batches:
            mib = float(subprocess.run([sys.executable, "-c", CHILD, json.dumps(wl),
                                        str(b), op], capture_output=True, text=True,
                                       check=True).stdout)
            worst = max(worst, mib)
            row.append(f"batch {b}: {mib:6.1f} MiB")
        print(f"{wl['name']:<18}" + "   ".join(row))
    print(f"worst case ({op}): {worst:.1f} MiB extra")


if __name__ == "__main__":
    args = sys.argv[1:]
    op = "transpose"
    if args[:1] == ["--op"]:
        op, args = args[1], args[2:]
    main([int(a) for a in args] or [1, 16], op)
