"""Peak memory beyond input and output for each workload (PERF target: <= 64 MiB),
measured in a fresh process per case: ru_maxrss after allocating and touching the
input, filters and a preallocated output, then after one conv2d_transpose(..., out=).

    python tools/peak_memory.py [batch ...]       (default: 1 16)
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
out = np.ones((batch, oh, ow, oc), np.float32)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
cdeconv.conv2d_transpose(x, f, [oh, ow], wl["strides"], wl["padding"], out=out)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print((after - before) / 1024)
"""


def main(batches):
    wls = json.loads(resources.files("cdeconv").joinpath("_workloads.json").read_text())
    worst = 0.0
    for wl in wls["workloads"]:
        row = []
        for b in batches:
            mib = float(subprocess.run([sys.executable, "-c", CHILD, json.dumps(wl),
                                        str(b)], capture_output=True, text=True,
                                       check=True).stdout)
            worst = max(worst, mib)
            row.append(f"batch {b}: {mib:6.1f} MiB")
        print(f"{wl['name']:<18}" + "   ".join(row))
    print(f"worst case: {worst:.1f} MiB extra")


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [1, 16])
