"""Markdown tables from a `python -m cdeconv bench --json PATH` file (for the README).

    python tools/bench_markdown.py PATH

One table per thread count: cdeconv's median ms and GFLOP/s, each peer's median ms, the
best peer / cdeconv ratio, then the geometric means (all peers, and each peer alone).
"""
import json
import math
import sys

TITLES = {"torch": "torch NCHW", "torch_cl": "torch channels-last", "tf": "TF",
          "ort": "ONNX Runtime"}


def geomean(xs):
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else float("nan")


def main(path):
    data = json.load(open(path))
    for run in data["runs"]:
        peers = run["peers"]
        print(f"\n**{run['threads']} thread{'s' if run['threads'] > 1 else ''}** "
              f"(scipy sgemm 2048^3 in the same worker: {run['sgemm']['gflops']:.0f} GFLOP/s)\n")
        print("| case | batch | cdeconv ms | GFLOP/s | "
              + " | ".join(f"{TITLES.get(p, p)} ms" for p in peers) + " | best peer / cdeconv |")
        print("|---|---|---|---|" + "---|" * len(peers) + "---|")
        ratios, per_peer = [], {p: [] for p in peers}
        for r in run["results"]:
            med = r["median_s"]
            ours = med["cdeconv"]
            timed = {p: med[p] for p in peers if p in med}
            best = min(timed.values())
            ratios.append(best / ours)
            for p, v in timed.items():
                per_peer[p].append(v / ours)
            cells = [f"{timed[p] * 1e3:.3g}" if p in timed else "n/a" for p in peers]
            print(f"| {r['workload']} | {r['batch']} | {ours * 1e3:.3g} | "
                  f"{r['flops'] / ours / 1e9:.1f} | " + " | ".join(cells)
                  + f" | {best / ours:.2f}x |")
        print(f"\nGeometric mean of best peer / cdeconv over {len(ratios)} cases: "
              f"**{geomean(ratios):.2f}x**; per peer: "
              + ", ".join(f"{TITLES.get(p, p)} {geomean(v):.2f}x" for p, v in per_peer.items()))


if __name__ == "__main__":
    main(sys.argv[1])
