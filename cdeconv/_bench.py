"""``cdeconv bench``: the workload suite, timed against scipy's sgemm and installed peers.

Method (see the project's PERF notes): every implementation runs in the same process,
interleaved round by round (A B C A B C ...), each sample a loop of calls lasting at least
30 ms divided by the number of calls; medians over the rounds. Before timing, each peer's
output is checked against cdeconv's on the same data; a peer that disagrees is reported
as "mismatch" and not timed. scipy's sgemm on 2048^3 at the same thread count is the
"physical limit" anchor (% of sgemm in the table).

Peers (all optional, imported lazily): PyTorch ``conv_transpose2d`` in NCHW and
channels_last (TF SAME puts the odd padding pixel at the end; PyTorch cannot express
that, so the peer computes the full (VALID) result and crops it, TF-style), and ONNX
Runtime with a one-node ConvTranspose model (``pip install onnxruntime onnx``).
TensorFlow is not a peer here: it must be configured before it starts, per thread count.
"""
import argparse
import importlib.resources
import json
import math
import statistics
import sys
import time

import numpy as np

import cdeconv
from cdeconv import _geometry

SAMPLE_SECONDS = 0.03
PAUSE_SECONDS = 0.05


def load_workloads():
    text = importlib.resources.files("cdeconv").joinpath("_workloads.json").read_text()
    return json.loads(text)["workloads"]


def _time_once(fn):
    """Seconds per call: loop the call for at least SAMPLE_SECONDS."""
    n, t0 = 0, time.perf_counter()
    while True:
        fn()
        n += 1
        dt = time.perf_counter() - t0
        if dt >= SAMPLE_SECONDS:
            return dt / n


def _sgemm_gflops(n_threads, rounds):
    from scipy.linalg.blas import sgemm
    from threadpoolctl import threadpool_limits
    a = np.ones((2048, 2048), np.float32, order="F")
    with threadpool_limits(n_threads, user_api="blas"):
        sgemm(1.0, a, a)
        best = min(_time_once(lambda: sgemm(1.0, a, a)) for _ in range(max(rounds, 2)))
    return 2 * 2048**3 / best / 1e9


class Case:
    def __init__(self, wl, batch, rng):
        self.name, self.batch = wl["name"], batch
        h, w, cin = wl["input_hwc"]
        self.filters_shape = tuple(wl["filters"])
        self.x = rng.standard_normal((batch, h, w, cin), dtype=np.float32)
        self.w = rng.standard_normal(self.filters_shape, dtype=np.float32)
        self.out_hw = list(wl["output_hwc"][:2])
        self.strides = list(wl["strides"])
        self.padding = wl["padding"]
        kh, kw, cout, _ = self.filters_shape
        self.flops = 2 * batch * h * w * cin * cout * kh * kw

    def cdeconv_fn(self):
        out = np.empty((self.batch, *self.out_hw, self.filters_shape[2]), np.float32)
        return lambda: cdeconv.conv2d_transpose(self.x, self.w, self.out_hw, self.strides,
                                                self.padding, out=out)


def _torch_fn(case, channels_last):
    import torch
    import torch.nn.functional as F
    kh, kw = case.filters_shape[:2]
    sh, sw = case.strides
    geom = _geometry.transposed_geometry(
        2, case.x, case.w, case.out_hw, case.strides, case.padding, "NHWC", 1)
    (pt, _), (pl, _) = geom.pads
    oh, ow = geom.big
    x = torch.from_numpy(np.ascontiguousarray(case.x.transpose(0, 3, 1, 2)))
    w = torch.from_numpy(np.ascontiguousarray(case.w.transpose(3, 2, 0, 1)))  # in,out,kh,kw
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
        w = w.contiguous(memory_format=torch.channels_last)

    def run():
        with torch.no_grad():
            full = F.conv_transpose2d(x, w, stride=(sh, sw))
            return full[:, :, pt:pt + oh, pl:pl + ow]
    return run, lambda y: y.permute(0, 2, 3, 1).numpy()


def _ort_fn(case, n_threads):
    """ONNX Runtime: a one-node ConvTranspose model (NCHW), pads from cdeconv.padding
    (TF's SAME = ONNX SAME_UPPER: the odd pixel cropped at the end), session threads
    set; built once per case, as ORT users do (weights packed at session creation)."""
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper
    from . import padding
    kh, kw, cout, cin = case.filters_shape
    h, w = case.x.shape[1:3]
    p = padding.from_tf([h, w], [kh, kw], case.strides, case.padding, case.out_hw).onnx()
    weight = numpy_helper.from_array(
        np.ascontiguousarray(case.w.transpose(3, 2, 0, 1)), "W")     # (in, out, kh, kw)
    node = helper.make_node("ConvTranspose", ["X", "W"], ["Y"], strides=case.strides,
                            pads=p["pads"], output_padding=p["output_padding"],
                            kernel_shape=[kh, kw])
    graph = helper.make_graph(
        [node], "deconv",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [case.batch, cin, h, w])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)], [weight])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = n_threads
    opts.inter_op_num_threads = 1
    # ORT's pool busy-waits after each run by default, stealing the cores from the
    # next implementation in an interleaved round: off, as the fair setting
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    sess = ort.InferenceSession(model.SerializeToString(), opts,
                                providers=["CPUExecutionProvider"])
    x = np.ascontiguousarray(case.x.transpose(0, 3, 1, 2))
    return (lambda: sess.run(None, {"X": x})[0]), (lambda y: y.transpose(0, 2, 3, 1))


PEERS = {"torch": lambda c, n: _torch_fn(c, False), "torch_cl": lambda c, n: _torch_fn(c, True),
         "ort": _ort_fn}
_MODULES = {"torch": "torch", "torch_cl": "torch", "ort": "onnxruntime"}


def _available_peers(requested):
    names = []
    for name in requested:
        try:
            __import__(_MODULES[name])
            if name == "ort":
                __import__("onnx")
            names.append(name)
        except ImportError:
            pass
    return names


def _set_threads(n):
    cdeconv.set_num_threads(n)
    try:
        import torch
        torch.set_num_threads(n)
    except ImportError:
        pass


def run_suite(workloads, batches, threads, rounds, peers, progress=True):
    results = []
    total = len(workloads) * len(batches) * len(threads)
    done = 0
    for n_threads in threads:
        _set_threads(n_threads)
        sgemm = _sgemm_gflops(n_threads, rounds)
        for wl in workloads:
            for batch in batches:
                done += 1
                if progress:
                    print(f"\r[{done}/{total}] {n_threads} thread(s) {wl['name']} "
                          f"batch {batch}".ljust(70), end="", file=sys.stderr, flush=True)
                case = Case(wl, batch, np.random.default_rng(0))
                impls = {"cdeconv": case.cdeconv_fn()}
                ref = impls["cdeconv"]().copy()
                status = {}
                for name in peers:
                    fn, to_nhwc = PEERS[name](case, n_threads)
                    got = to_nhwc(fn())
                    err = np.abs(got - ref).max() / max(np.abs(ref).max(), 1e-30)
                    if got.shape != ref.shape or not err < 1e-4:
                        status[name] = "mismatch"
                    else:
                        impls[name] = fn
                times = {name: [] for name in impls}
                for _ in range(rounds):
                    for name, fn in impls.items():
                        time.sleep(PAUSE_SECONDS)    # let other runtimes' pools settle
                        times[name].append(_time_once(fn))
                med = {name: statistics.median(t) for name, t in times.items()}
                results.append({"workload": wl["name"], "batch": batch,
                                "threads": n_threads, "flops": case.flops,
                                "sgemm_gflops": sgemm, "median_s": med, "times_s": times,
                                "status": status})
    if progress:
        print("\r".ljust(72) + "\r", end="", file=sys.stderr)
    return results


def format_table(results, peers):
    lines = []
    for n_threads in sorted({r["threads"] for r in results}):
        rows = [r for r in results if r["threads"] == n_threads]
        sg = rows[0]["sgemm_gflops"]
        lines.append(f"\n{n_threads} thread(s); scipy sgemm 2048^3: {sg:.0f} GFLOP/s")
        head = f"{'case':<20}{'batch':>6}{'ms':>9}{'GFLOP/s':>9}{'%sgemm':>8}"
        for p in peers:
            head += f"{p + ' ms':>12}"
        if peers:
            head += f"{'best/ours':>11}"
        lines.append(head)
        ratios = []
        for r in rows:
            t = r["median_s"]["cdeconv"]
            gf = r["flops"] / t / 1e9
            line = f"{r['workload']:<20}{r['batch']:>6}{t * 1e3:>9.3f}{gf:>9.1f}" \
                   f"{100 * gf / sg:>7.0f}%"
            peer_times = []
            for p in peers:
                if p in r["median_s"]:
                    peer_times.append(r["median_s"][p])
                    line += f"{r['median_s'][p] * 1e3:>12.3f}"
                else:
                    line += f"{r['status'].get(p, 'n/a'):>12}"
            if peer_times:
                ratio = min(peer_times) / t
                ratios.append(ratio)
                line += f"{ratio:>10.2f}x"
            lines.append(line)
        if ratios:
            gm = math.exp(sum(math.log(v) for v in ratios) / len(ratios))
            lines.append(f"geometric mean of best-peer time / cdeconv time: {gm:.2f}x "
                         "(> 1: cdeconv faster)")
    return "\n".join(lines)


def build_parser(parser=None):
    parser = parser or argparse.ArgumentParser(prog="cdeconv bench")
    parser.description = (
        "Time cdeconv.conv2d_transpose on the bundled workload suite (float32, NHWC, TF "
        "conventions) at batch 1 and 16 and 1 and 2 threads, beside scipy's sgemm rate "
        "and any installed peer (PyTorch NCHW and channels_last, ONNX Runtime). Each peer is checked "
        "against cdeconv before timing; rounds are interleaved; the table shows medians. "
        "Columns: ms = cdeconv's median time per call; GFLOP/s = 2*N*H*W*Cin*Cout*kh*kw / "
        "time; %%sgemm = that rate over sgemm's in the same run; best/ours = the fastest "
        "peer's time over cdeconv's (> 1: cdeconv is faster).")
    parser.add_argument("--workload", action="append", metavar="NAME",
                        help="run only this workload (repeatable)")
    parser.add_argument("--batch", action="append", type=int, metavar="N",
                        help="batch size (repeatable; default 1 and 16)")
    parser.add_argument("--threads", action="append", type=int, metavar="N",
                        help="thread count (repeatable; default 1 and 2)")
    parser.add_argument("--rounds", type=int, default=7, help="interleaved rounds (7)")
    parser.add_argument("--peers", default="auto",
                        help="comma-separated peers: torch, torch_cl, ort, or none "
                             "(default: every installed one)")
    parser.add_argument("--json", metavar="PATH", help="write all times to this file")
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run: 4 workloads, batch 1, 3 rounds")
    return parser


def run(args):
    workloads = load_workloads()
    names = [w["name"] for w in workloads]
    if args.workload:
        bad = [n for n in args.workload if n not in names]
        if bad:
            print(f"cdeconv bench: unknown workload {', '.join(bad)}; valid names: "
                  f"{', '.join(names)}", file=sys.stderr)
            return 2
        workloads = [w for w in workloads if w["name"] in args.workload]
    batches = args.batch or ([1] if args.quick else [1, 16])
    threads = args.threads or [1, 2]
    rounds = 3 if args.quick and args.rounds == 7 else args.rounds
    if args.quick and not args.workload:
        workloads = [w for w in workloads if w["name"] in
                     ("dcgan_tf_g2", "dcgan_pt_g3", "unet_up2", "article_mnist")]
    for v, what in [(b, "--batch") for b in batches] + [(t, "--threads") for t in threads] \
            + [(rounds, "--rounds")]:
        if v < 1:
            print(f"cdeconv bench: {what} must be >= 1, got {v}", file=sys.stderr)
            return 2
    if args.peers == "auto":
        peers = _available_peers(list(PEERS))
    elif args.peers == "none":
        peers = []
    else:
        req = [p.strip() for p in args.peers.split(",") if p.strip()]
        bad = [p for p in req if p not in PEERS]
        if bad:
            print(f"cdeconv bench: unknown peer {', '.join(bad)}; valid: "
                  f"{', '.join(PEERS)}, none", file=sys.stderr)
            return 2
        peers = _available_peers(req)
        missing = sorted(set(req) - set(peers))
        if missing:
            print(f"cdeconv bench: not installed, skipped: {', '.join(missing)}",
                  file=sys.stderr)
    results = run_suite(workloads, batches, threads, rounds, peers)
    print(format_table(results, peers))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"cdeconv": cdeconv.__version__, "results": results}, fh, indent=1)
    return 0
