"""``cdeconv bench``: the workload suite, timed against scipy's sgemm and installed peers.

Method (the project's PERF notes): each thread count runs in a fresh worker process
(``python -m cdeconv bench`` with a hidden worker flag) whose environment sizes every
runtime's thread pool before it starts. In a worker, cdeconv and the peers run the same
layer on the same data: first every peer's output is checked against cdeconv's (a peer that
disagrees is reported as "mismatch" and not timed), then after a warm-up the
implementations are timed in interleaved rounds (A B C A B C ...), each sample a loop of
calls lasting at least 30 ms divided by the number of calls, with a short pause before each
sample (a BLAS/OpenMP pool left spinning by the previous implementation would otherwise
steal its cores); the table shows medians over the rounds. scipy's sgemm on 2048^3 in the
same worker at the same thread count is the "physical limit" anchor. Every implementation
allocates its own output, as a user's call would; the JSON also keeps each one's minor
page faults per call (median over the rounds): outputs of several MiB that glibc hands
back as fresh pages on every call cost their zeroing (about 1 ms per 6-8 MiB here), and
whether that happens depends on the process's allocation history, the peers' included.

Peers, all optional and imported lazily in the worker:

* ``torch`` / ``torch_cl``: ``torch.nn.functional.conv_transpose2d`` in NCHW and in
  channels_last memory format. TF's SAME crops the odd pixel at the *end*, which PyTorch's
  symmetric ``padding`` cannot express: then the peer runs with the smaller crop as
  ``padding`` and slices the extra row/column off the end (see ``_torch_mapping``).
* ``tf``: ``tf.nn.conv2d_transpose`` inside a ``tf.function`` (threads set via the
  environment and ``tf.config.threading`` before TF starts).
* ``ort``: ONNX Runtime with a one-node ``ConvTranspose`` model built by ``onnx.helper``,
  ``pads``/``output_padding``/``output_shape`` set explicitly, ``intra_op_num_threads`` set,
  pool spinning off.
"""
import argparse
import importlib.resources
import importlib.util
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

try:
    import resource                     # page-fault counts (Unix only)
except ImportError:
    resource = None

SAMPLE_SECONDS = 0.03          # one sample: loop calls for at least this long
PAUSE_SECONDS = 0.1            # before each sample: let the previous runtime's pool sleep
TOLERANCE = 1e-4               # peer vs cdeconv: max |diff| / max |y|
DEFAULT_ROUNDS = 7
QUICK_ROUNDS = 3
QUICK_WORKLOADS = ("dcgan_tf_g2", "dcgan_pt_g3", "unet_up2", "article_mnist")
SGEMM_N = 2048

PEERS = ("torch", "torch_cl", "tf", "ort")
_PEER_MODULES = {"torch": ("torch",), "torch_cl": ("torch",), "tf": ("tensorflow",),
                 "ort": ("onnxruntime", "onnx")}
_PEER_TITLES = {"torch": "PyTorch conv_transpose2d, NCHW",
                "torch_cl": "PyTorch conv_transpose2d, channels_last",
                "tf": "TensorFlow tf.nn.conv2d_transpose in tf.function",
                "ort": "ONNX Runtime, one-node ConvTranspose model"}


class BenchError(Exception):
    """A bad option: reported as 'cdeconv bench: error: ...', exit code 2."""


# ----------------------------------------------------------------------------- workloads

def load_workloads():
    """The bundled suite (``cdeconv/_workloads.json``): a list of workload dicts."""
    text = importlib.resources.files("cdeconv").joinpath("_workloads.json").read_text()
    return json.loads(text)["workloads"]


def parse_custom(spec):
    """``H,W,CIN,COUT,K,S[,PADDING]`` -> a workload dict (PADDING: SAME (default), VALID,
    or an int p for PyTorch-style symmetric padding, i.e. TF's explicit [[p, p], [p, p]])."""
    from . import padding as _padding
    parts = [p.strip() for p in spec.split(",")]
    if len(parts) not in (6, 7):
        raise BenchError(f"--custom wants H,W,CIN,COUT,K,S[,PADDING], got {spec!r}")
    try:
        h, w, cin, cout, k, s = (int(p) for p in parts[:6])
    except ValueError:
        raise BenchError(f"--custom {spec!r}: H, W, CIN, COUT, K and S must be integers") \
            from None
    if min(h, w, cin, cout, k, s) < 1:
        raise BenchError(f"--custom {spec!r}: H, W, CIN, COUT, K and S must be >= 1")
    pad = parts[6].upper() if len(parts) == 7 else "SAME"
    if pad in ("SAME", "VALID"):
        spec_pad, tag = pad, pad.lower()
    else:
        try:
            p = int(pad)
        except ValueError:
            raise BenchError(f"--custom {spec!r}: PADDING must be SAME, VALID or an "
                             f"integer, got {parts[6]!r}") from None
        if p < 0:
            raise BenchError(f"--custom {spec!r}: padding must be >= 0")
        spec_pad, tag = [[0, 0], [p, p], [p, p], [0, 0]], f"p{p}"
    try:
        geo = _padding.from_tf([h, w], [k, k], [s, s], spec_pad)
    except ValueError as e:
        raise BenchError(f"--custom {spec!r}: {e}") from None
    if min(geo.output_size) < 1:
        raise BenchError(f"--custom {spec!r}: empty output {geo.output_size}")
    return {"name": f"c{h}x{w}x{cin}-{cout}k{k}s{s}{tag}",
            "source": f"--custom {spec}",
            "input_hwc": [h, w, cin], "filters": [k, k, cout, cin], "strides": [s, s],
            "padding": spec_pad, "output_hwc": [*geo.output_size, cout],
            "gflop_batch1": round(2 * h * w * cin * cout * k * k / 1e9, 5)}


class Case:
    """One workload at one batch size: fixed-seed float32 NHWC data and its geometry."""

    def __init__(self, wl, batch, seed=0):
        from . import padding as _padding
        rng = np.random.default_rng(seed)
        self.name, self.batch = wl["name"], batch
        h, w, cin = wl["input_hwc"]
        kh, kw, cout, _ = self.filters_shape = tuple(wl["filters"])
        self.x = rng.standard_normal((batch, h, w, cin), dtype=np.float32)
        self.w = rng.standard_normal(self.filters_shape, dtype=np.float32)
        self.out_hw = list(wl["output_hwc"][:2])
        self.strides = list(wl["strides"])
        self.padding = wl["padding"]
        self.geo = _padding.from_tf([h, w], [kh, kw], self.strides, self.padding,
                                    self.out_hw)
        self.flops = 2 * batch * h * w * cin * cout * kh * kw

    def kwargs(self):
        return dict(output_shape=self.out_hw, strides=self.strides, padding=self.padding)


# ---------------------------------------------------------------------- implementations
# Each builder returns (fn, to_nhwc): fn() runs one call and returns the runtime's result;
# to_nhwc(result) is that result as an NHWC ndarray (used only for the check).

def _cdeconv_fn(case, n_threads):
    import cdeconv
    kw = case.kwargs()
    return (lambda: cdeconv.conv2d_transpose(case.x, case.w, **kw)), np.asarray


def _torch_mapping(geo):
    """PyTorch arguments reproducing TF's geometry: (padding, output_padding, slices).

    PyTorch's ``padding=q, output_padding=op`` crops q pixels at the start of the full
    result and q - op at the end (0 <= op < max(stride, dilation)). Per axis, with TF's
    crops ``before``/``after`` (after < 0: zeros appended): exact when 0 <= before - after
    < max(stride, dilation); when after > before (TF SAME, odd total) crop ``before`` and
    slice the extra pixels off the end; when before - after is too large, crop ``after``
    and slice the rest off the start. None if none of these applies."""
    pads, ops, slices = [], [], []
    for i in range(len(geo.input_size)):
        b, a, out = geo.before[i], geo.after[i], geo.output_size[i]
        lim = max(geo.strides[i], geo.dilations[i])
        if 0 <= b - a < lim:
            pads.append(b), ops.append(b - a), slices.append(slice(None))
        elif a > b:
            pads.append(b), ops.append(0), slices.append(slice(0, out))
        elif a >= 0:
            pads.append(a), ops.append(0), slices.append(slice(b - a, b - a + out))
        else:
            return None
    return pads, ops, slices


def _torch_fn(case, n_threads, channels_last):
    import torch
    import torch.nn.functional as F
    mapping = _torch_mapping(case.geo)
    if mapping is None:
        raise NotImplementedError("geometry not expressible in PyTorch")
    pads, ops, (sy, sx) = mapping
    x = torch.from_numpy(case.x).permute(0, 3, 1, 2)        # NHWC memory: channels_last
    w = torch.from_numpy(case.w).permute(3, 2, 0, 1)        # (in, out, kh, kw)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    x, w = x.contiguous(memory_format=fmt), w.contiguous(memory_format=fmt)
    stride = tuple(case.strides)
    crop = not (sy == slice(None) and sx == slice(None))

    def fn():
        y = F.conv_transpose2d(x, w, stride=stride, padding=pads, output_padding=ops)
        return y[:, :, sy, sx] if crop else y
    return fn, lambda y: y.permute(0, 2, 3, 1).numpy()


def _tf_fn(case, n_threads):
    import tensorflow as tf
    kh, kw, cout, _ = case.filters_shape
    pad = case.padding
    if not isinstance(pad, str) and len(pad) == 2:          # spatial pairs -> NHWC pairs
        pad = [[0, 0], *pad, [0, 0]]
    out_shape = [case.batch, *case.out_hw, cout]
    strides = [1, *case.strides, 1]

    @tf.function(autograph=False)       # one traced graph; no Python control flow
    def f(x, w):
        return tf.nn.conv2d_transpose(x, w, out_shape, strides, pad)
    x, w = tf.constant(case.x), tf.constant(case.w)
    return (lambda: f(x, w)), (lambda y: y.numpy())


def _ort_fn(case, n_threads):
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper
    kh, kw, cout, cin = case.filters_shape
    h, w = case.x.shape[1:3]
    p = case.geo.onnx()     # explicit pads [begins, ends] + output_padding: TF's crops
    weight = numpy_helper.from_array(
        np.ascontiguousarray(case.w.transpose(3, 2, 0, 1)), "W")   # (in, out, kh, kw)
    node = helper.make_node("ConvTranspose", ["X", "W"], ["Y"], strides=case.strides,
                            pads=p["pads"], output_padding=p["output_padding"],
                            kernel_shape=[kh, kw])
    out_shape = [case.batch, cout, *case.out_hw]
    graph = helper.make_graph(
        [node], "deconv",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [case.batch, cin, h, w])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, out_shape)], [weight])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = n_threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    # ORT's pool busy-waits after each run by default, stealing the cores from the next
    # implementation of an interleaved round: off, as the fair setting
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    sess = ort.InferenceSession(model.SerializeToString(), opts,
                                providers=["CPUExecutionProvider"])
    x = np.ascontiguousarray(case.x.transpose(0, 3, 1, 2))
    return (lambda: sess.run(None, {"X": x})[0]), (lambda y: y.transpose(0, 2, 3, 1))


_BUILDERS = {"cdeconv": _cdeconv_fn,
             "torch": lambda c, n: _torch_fn(c, n, False),
             "torch_cl": lambda c, n: _torch_fn(c, n, True),
             "tf": _tf_fn, "ort": _ort_fn}


def installed_peers(names=PEERS):
    """The peers among ``names`` whose modules can be found (nothing is imported)."""
    return [p for p in names
            if all(importlib.util.find_spec(m) is not None for m in _PEER_MODULES[p])]


# -------------------------------------------------------------------------------- timing

def _minor_faults():
    """This process's minor page faults so far (None where ``resource`` is missing)."""
    if resource is None:
        return None
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def _time_sample(fn):
    """(seconds per call, minor page faults per call or None): loop the call for at
    least SAMPLE_SECONDS, divide. The faults show an output that is paged in afresh on
    every call (the allocator handing back memory the kernel must zero) rather than
    reused: it depends on the process's allocation history, including the peers'."""
    f0, n, t0 = _minor_faults(), 0, time.perf_counter()
    while True:
        fn()
        n += 1
        dt = time.perf_counter() - t0
        if dt >= SAMPLE_SECONDS:
            f1 = _minor_faults()
            return dt / n, (None if f0 is None else (f1 - f0) / n)


def _time_once(fn):
    """Seconds per call: loop the call for at least SAMPLE_SECONDS, divide."""
    return _time_sample(fn)[0]


def _sgemm_times(n_threads, samples):
    """Seconds per scipy sgemm on SGEMM_N^3, BLAS held at n_threads (threadpoolctl)."""
    from scipy.linalg.blas import sgemm
    from threadpoolctl import threadpool_limits
    rng = np.random.default_rng(1)
    a = np.asfortranarray(rng.standard_normal((SGEMM_N, SGEMM_N), dtype=np.float32))
    b = np.asfortranarray(rng.standard_normal((SGEMM_N, SGEMM_N), dtype=np.float32))
    out = []
    with threadpool_limits(limits=n_threads, user_api="blas"):
        sgemm(1.0, a, b)                                    # warm-up
        for _ in range(samples):
            time.sleep(PAUSE_SECONDS)
            out.append(_time_once(lambda: sgemm(1.0, a, b)))
    time.sleep(PAUSE_SECONDS)                               # the pool spins on for a while
    return out


class _Progress:
    """One status line on stderr: rewritten in place on a terminal, else one line per
    case."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stderr
        try:
            self.tty = self.stream.isatty()
        except (AttributeError, ValueError):
            self.tty = False
        self.width = 0

    def show(self, text, major=True):
        if self.tty:
            text = text[:99]
            self.stream.write("\r" + text.ljust(self.width))
            self.width = len(text)
            self.stream.flush()
        elif major:
            print(text, file=self.stream, flush=True)

    def clear(self):
        if self.tty and self.width:
            self.stream.write("\r" + " " * self.width + "\r")
            self.stream.flush()
            self.width = 0


def _rel_err(got, ref):
    scale = float(np.abs(ref).max()) if ref.size else 0.0
    diff = float(np.abs(got.astype(np.float64) - ref).max()) if ref.size else 0.0
    return diff / scale if scale > 0 else diff


def _oracle_image0(case):
    """float64 reference (cdeconv._reference) for image 0 of the batch."""
    from . import _reference
    return _reference.conv2d_transpose(case.x[:1].astype(np.float64),
                                       case.w.astype(np.float64), **case.kwargs())


def _init_runtimes(peers, n_threads):
    """Import and configure each runtime for n_threads before any of them computes;
    returns (usable peers, {peer: reason} for the others, versions)."""
    import scipy

    import cdeconv
    cdeconv.set_num_threads(n_threads)
    versions = {"cdeconv": cdeconv.__version__, "numpy": np.__version__,
                "scipy": scipy.__version__}
    ok, bad = [], {}
    for p in peers:
        try:
            if p in ("torch", "torch_cl"):
                import torch
                if "torch" not in versions:
                    torch.set_num_threads(n_threads)
                    try:
                        torch.set_num_interop_threads(1)
                    except RuntimeError:
                        pass
                    torch.set_grad_enabled(False)
                    versions["torch"] = torch.__version__
            elif p == "tf":
                import tensorflow as tf
                tf.config.threading.set_intra_op_parallelism_threads(n_threads)
                tf.config.threading.set_inter_op_parallelism_threads(1)
                tf.get_logger().setLevel("ERROR")   # one tf.function per case: no retrace notes
                versions["tensorflow"] = tf.__version__
            elif p == "ort":
                import onnx
                import onnxruntime
                versions["onnxruntime"] = onnxruntime.__version__
                versions["onnx"] = onnx.__version__
            ok.append(p)
        except Exception as e:  # broken install, threads already fixed, ...
            bad[p] = f"{type(e).__name__}: {e}"
    return ok, bad, versions


def run_worker(workloads, batches, n_threads, rounds, peers, quick=False):
    """Time every case at one thread count in this process; returns a JSON-able dict."""
    prog = _Progress()
    tag = f"[{n_threads} thread{'s' if n_threads > 1 else ''}]"
    prog.show(f"{tag} starting: importing {', '.join(peers) or 'no peers'}")
    peers, broken, versions = _init_runtimes(peers, n_threads)
    for p, why in broken.items():
        prog.clear()
        print(f"cdeconv bench: peer {p} unusable, skipped: {why}", file=sys.stderr)
    n_sg = 3 if quick else 5
    prog.show(f"{tag} scipy sgemm {SGEMM_N}^3 ...", major=False)
    sgemm_start = _sgemm_times(n_threads, n_sg)
    results, ok = [], True
    total = len(workloads) * len(batches)
    i = 0
    for wl in workloads:
        for batch in batches:
            i += 1
            head = f"{tag} {i}/{total} {wl['name']} batch {batch}"
            prog.show(f"{head}: check")
            case = Case(wl, batch)
            rec = {"workload": wl["name"], "batch": batch, "threads": n_threads,
                   "flops": case.flops, "status": {}, "rel_err_vs_cdeconv": {},
                   "notes": {}}
            fns = {}
            fn, _ = _cdeconv_fn(case, n_threads)
            ref = np.asarray(fn())
            # cdeconv itself against the float64 oracle (image 0; images are independent)
            rec["cdeconv_rel_err_vs_oracle_image0"] = err0 = _rel_err(
                ref[:1], _oracle_image0(case))
            if not err0 < TOLERANCE:
                ok = False
                prog.clear()
                print(f"cdeconv bench: WRONG RESULT: cdeconv differs from the float64 "
                      f"oracle on {wl['name']} batch {batch} ({n_threads} threads): "
                      f"max|diff|/max|y| = {err0:.3g}", file=sys.stderr)
            fns["cdeconv"] = fn
            for p in peers:
                try:
                    pfn, to_nhwc = _BUILDERS[p](case, n_threads)
                    got = np.asarray(to_nhwc(pfn()))
                except NotImplementedError as e:
                    rec["status"][p], rec["notes"][p] = "n/a", str(e)
                    continue
                except Exception as e:
                    rec["status"][p], rec["notes"][p] = "error", f"{type(e).__name__}: {e}"
                    prog.clear()
                    print(f"cdeconv bench: peer {p} failed on {wl['name']} batch {batch}: "
                          f"{type(e).__name__}: {e}", file=sys.stderr)
                    continue
                err = _rel_err(got, ref) if got.shape == ref.shape else math.inf
                rec["rel_err_vs_cdeconv"][p] = err
                if err < TOLERANCE:
                    rec["status"][p] = "ok"
                    fns[p] = pfn
                    continue
                rec["status"][p] = "mismatch"
                oracle = _oracle_image0(case)
                perr = _rel_err(got[:1], oracle) if got.shape == ref.shape else math.inf
                rec["notes"][p] = (f"shape {got.shape} vs {ref.shape}; vs float64 oracle "
                                   f"(image 0): cdeconv {err0:.3g}, {p} {perr:.3g}")
                prog.clear()
                print(f"cdeconv bench: MISMATCH {p} vs cdeconv on {wl['name']} batch "
                      f"{batch} ({n_threads} threads): max|diff|/max|y| = {err:.3g}; "
                      f"{rec['notes'][p]}", file=sys.stderr)
            del ref
            for name, f in fns.items():                       # warm-up
                prog.show(f"{head}: warm-up {name}", major=False)
                time.sleep(PAUSE_SECONDS)
                _time_once(f)
            times = {name: [] for name in fns}
            faults = {name: [] for name in fns}
            for r in range(rounds):
                prog.show(f"{head}: round {r + 1}/{rounds}", major=False)
                for name, f in fns.items():
                    time.sleep(PAUSE_SECONDS)
                    t, pf = _time_sample(f)
                    times[name].append(t)
                    faults[name].append(pf)
            rec["times_s"] = times
            rec["median_s"] = {n: statistics.median(t) for n, t in times.items()}
            rec["page_faults_per_call"] = {
                n: (statistics.median(v) if None not in v else None)
                for n, v in faults.items()}
            results.append(rec)
            del fns, case
    prog.show(f"{tag} scipy sgemm {SGEMM_N}^3 (again) ...", major=False)
    sgemm_end = _sgemm_times(n_threads, n_sg)
    prog.clear()
    sg = sgemm_start + sgemm_end
    return {"threads": n_threads, "peers": peers, "unusable_peers": broken,
            "versions": versions, "ok": ok,
            "sgemm": {"n": SGEMM_N, "times_s_start": sgemm_start, "times_s_end": sgemm_end,
                      "median_s": statistics.median(sg),
                      "gflops": 2 * SGEMM_N ** 3 / statistics.median(sg) / 1e9},
            "results": results}


# -------------------------------------------------------------------------------- report

def _fmt_ms(seconds):
    ms = seconds * 1e3
    for lim, fmt in ((1000, ".0f"), (100, ".1f"), (10, ".2f"), (1, ".3f")):
        if ms >= lim:
            return format(ms, fmt)
    return format(ms, ".4f")


def _geomean(values):
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else None


def format_table(run):
    """The report for one worker's result (one thread count); < 100 columns wide."""
    peers = run["peers"]
    rows = run["results"]
    sg = run["sgemm"]["gflops"]
    n = run["threads"]
    cw = max([14] + [len(r["workload"]) for r in rows])
    lines = [f"== {n} thread{'s' if n > 1 else ''} == scipy sgemm {SGEMM_N}^3: {sg:.0f} "
             f"GFLOP/s (the 100% of %sgemm); times: median ms per call"]
    head = f"{'case':<{cw}}{'batch':>6}{'cdeconv':>9}{'GFLOP/s':>9}{'%sgemm':>7}"
    head += "".join(f"{p:>10}" for p in peers)
    if peers:
        head += f"{'best/ours':>11}"
    lines += [head, "-" * len(head)]
    ratios = []
    per_peer = {p: [] for p in peers}
    for r in rows:
        t = r["median_s"]["cdeconv"]
        gf = r["flops"] / t / 1e9
        line = (f"{r['workload']:<{cw}}{r['batch']:>6}{_fmt_ms(t):>9}{gf:>9.1f}"
                f"{100 * gf / sg:>6.0f}%")
        timed = {p: r["median_s"][p] for p in peers if p in r["median_s"]}
        best = min(timed, key=timed.get) if timed else None
        for p in peers:
            if p in timed:
                per_peer[p].append(timed[p] / t)
                line += f"{_fmt_ms(timed[p]) + ('*' if p == best else ' '):>10}"
            else:
                line += f"{r['status'].get(p, 'n/a'):>9} "
        if best is not None:
            ratios.append(timed[best] / t)
            line += f"{timed[best] / t:>10.2f}x"
        elif peers:
            line += f"{'-':>11}"
        lines.append(line)
    gm = _geomean(ratios)
    if gm is not None:
        lines.append(f"geometric mean of best-peer time / cdeconv time over {len(ratios)} "
                     f"cases: {gm:.2f}x ({'cdeconv faster' if gm > 1 else 'peers faster'})")
        each = [f"{p} {_geomean(v):.2f}x" for p, v in per_peer.items() if v]
        if each:
            lines.append("  per peer (peer time / cdeconv time): " + ", ".join(each))
    else:
        lines.append("no peer timed: no best-peer ratio")
    return "\n".join(lines)


# ------------------------------------------------------------------------ command line

_DESCRIPTION = """\
Time cdeconv.conv2d_transpose on the bundled workload suite (layers of DCGAN generators,
a U-Net decoder, FSRCNN, ZFNet's DeconvNet, the articles' examples; cdeconv/_workloads.json)
at batch 1 and 16 and at 1 and 2 threads, float32, NHWC, TF conventions (filters
[kh, kw, out_c, in_c]), next to scipy's sgemm and every installed peer: PyTorch
conv_transpose2d in NCHW (torch) and channels_last (torch_cl), TensorFlow
tf.nn.conv2d_transpose in a tf.function (tf), ONNX Runtime with a ConvTranspose model (ort).
"""

_EPILOG = """\
how it measures:
  - each thread count runs in a fresh worker process, every runtime's threads set before
    it starts (cdeconv.set_num_threads, torch.set_num_threads, TF's threading config, ORT
    intra_op_num_threads, OMP/MKL/OPENBLAS_NUM_THREADS);
  - each peer's output is first checked against cdeconv's on the same data
    (max|diff| / max|y| < 1e-4); one that disagrees shows "mismatch" and is not timed
    (stderr then says which case, and both errors against the float64 oracle);
    cdeconv itself is checked against the float64 oracle (image 0);
  - warm-up, then --rounds interleaved rounds (cdeconv, peer1, peer2, ..., cdeconv, ...):
    a sample loops one call for >= 30 ms and divides, after a 0.1 s pause (so a thread
    pool left spinning by the previous runtime does not steal the cores); medians;
  - every implementation allocates its own output, as a plain call does;
  - scipy's sgemm on 2048^3 in the same worker at the same thread count (BLAS threads
    set with threadpoolctl), timed before and after the cases, is the "physical limit".

reading the table (one per thread count):
  cdeconv     cdeconv's median time per call, ms
  GFLOP/s     2*N*H*W*Cin*Cout*kh*kw (H, W: the input's) / cdeconv's time; nominal:
              layers with 1-3 output channels are memory-bound and stay far below sgemm
  %sgemm      that rate as a share of sgemm's rate in the same worker
  torch ...   each peer's median ms per call; * marks the fastest peer of the row;
              mismatch / error / n/a: not timed (see above; n/a = not expressible)
  best/ours   fastest peer's time / cdeconv's time: > 1 means cdeconv is faster
  last lines  geometric mean of best/ours over the cases, then of each peer alone
  Absolute times on a shared machine drift by 20-30%: compare the ratios, which come
  from the same rounds; rerun before believing a difference below ~10%.

examples:
  python -m cdeconv bench --quick
  python -m cdeconv bench --peers torch,torch_cl --json /tmp/bench.json
  python -m cdeconv bench --workload fsrcnn_x2 --batch 16 --threads 2 --rounds 11
  python -m cdeconv bench --custom 64,64,128,64,4,2 --custom 32,32,64,3,3,1,VALID
"""


def _add_arguments(parser):
    parser.add_argument("--workload", action="append", metavar="NAME",
                        help="run only this workload (repeatable; default: all, see "
                             "cdeconv/_workloads.json)")
    parser.add_argument("--batch", action="append", type=int, metavar="N",
                        help="batch size (repeatable; default: 1 and 16)")
    parser.add_argument("--threads", action="append", type=int, metavar="N",
                        help="thread count (repeatable; default: 1 and 2); one worker "
                             "process per thread count")
    parser.add_argument("--rounds", type=int, metavar="K", default=None,
                        help=f"interleaved rounds, medians over them (default "
                             f"{DEFAULT_ROUNDS}; {QUICK_ROUNDS} with --quick)")
    parser.add_argument("--peers", metavar="LIST", default=None,
                        help=f"comma-separated subset of {','.join(PEERS)}, or none "
                             f"(default: every installed one)")
    parser.add_argument("--json", metavar="PATH",
                        help="write every raw per-round time, the medians, the checks and "
                             "the versions to PATH")
    parser.add_argument("--plot", metavar="PNG",
                        help="also draw best-peer time / cdeconv time per case, one panel "
                             "per thread count, to PNG (needs matplotlib)")
    parser.add_argument("--quick", action="store_true",
                        help=f"smoke run: {len(QUICK_WORKLOADS)} workloads, batch 1, "
                             f"{QUICK_ROUNDS} rounds (explicit options win)")
    parser.add_argument("--custom", action="append", metavar="H,W,CIN,COUT,K,S[,PADDING]",
                        help="add a custom NHWC case: input HxWxCIN, KxK kernel, COUT "
                             "outputs, stride S, PADDING SAME (default), VALID or an int p "
                             "(TF explicit [[p, p], [p, p]]); repeatable; without "
                             "--workload only the custom cases run")
    parser.add_argument("--worker-output", metavar="PATH", help=argparse.SUPPRESS)
    return parser


def build_parser(parser=None):
    """Add the bench options to ``parser`` (the ``bench`` subparser) or a new parser."""
    if parser is None:
        parser = argparse.ArgumentParser(prog="cdeconv bench")
    parser.description = _DESCRIPTION
    parser.epilog = _EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    return _add_arguments(parser)


def _resolve(args):
    """Validated (workloads, batches, threads, rounds, peers) from parsed options."""
    all_wl = load_workloads()
    by_name = {w["name"]: w for w in all_wl}
    workloads = []
    if args.workload:
        bad = [n for n in args.workload if n not in by_name]
        if bad:
            raise BenchError(f"unknown workload {', '.join(map(repr, bad))}; valid names: "
                             f"{', '.join(by_name)}")
        workloads = [by_name[n] for n in dict.fromkeys(args.workload)]
    for spec in args.custom or []:
        workloads.append(parse_custom(spec))
    if not args.workload and not args.custom:
        workloads = ([by_name[n] for n in QUICK_WORKLOADS] if args.quick else all_wl)
    batches = list(dict.fromkeys(args.batch or ([1] if args.quick else [1, 16])))
    threads = list(dict.fromkeys(args.threads or [1, 2]))
    rounds = args.rounds if args.rounds is not None else (
        QUICK_ROUNDS if args.quick else DEFAULT_ROUNDS)
    for v, what in ([(b, "--batch") for b in batches] + [(t, "--threads") for t in threads]
                    + [(rounds, "--rounds")]):
        if v < 1:
            raise BenchError(f"{what} must be >= 1, got {v}")
    if args.peers is None:
        peers = installed_peers()
    else:
        req = [p.strip() for p in args.peers.split(",") if p.strip()]
        if req == ["none"]:
            req = []
        bad = [p for p in req if p not in PEERS]
        if bad:
            raise BenchError(f"unknown peer {', '.join(map(repr, bad))}; valid: "
                             f"{', '.join(PEERS)} (comma-separated), or none")
        req = list(dict.fromkeys(req))
        peers = installed_peers(req)
        missing = [p for p in req if p not in peers]
        if missing:
            print(f"cdeconv bench: not installed, skipped: {', '.join(missing)}",
                  file=sys.stderr)
    return workloads, batches, threads, rounds, peers


def _worker_env(n_threads):
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                "CDECONV_NUM_THREADS", "TF_NUM_INTRAOP_THREADS"):
        env[var] = str(n_threads)
    env["TF_NUM_INTEROP_THREADS"] = "1"
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return env


def _worker_argv(args, n_threads, peers, out_path):
    argv = ["bench", "--worker-output", out_path, "--threads", str(n_threads),
            "--peers", ",".join(peers) or "none"]
    if args.rounds is not None:
        argv += ["--rounds", str(args.rounds)]
    for b in args.batch or []:
        argv += ["--batch", str(b)]
    for w in args.workload or []:
        argv += ["--workload", w]
    for c in args.custom or []:
        argv += ["--custom", c]
    if args.quick:
        argv.append("--quick")
    return argv


def _spawn(args, n_threads, peers):
    """Run one thread count in a fresh ``python -m cdeconv bench`` worker."""
    fd, path = tempfile.mkstemp(prefix="cdeconv_bench_", suffix=".json")
    os.close(fd)
    try:
        try:
            stdout = sys.stderr.fileno()        # keep stdout for the tables
        except (AttributeError, OSError, ValueError):
            stdout = None
        cmd = [sys.executable, "-m", "cdeconv", *_worker_argv(args, n_threads, peers, path)]
        proc = subprocess.run(cmd, env=_worker_env(n_threads), stdout=stdout)
        if proc.returncode != 0:
            print(f"cdeconv bench: the {n_threads}-thread worker failed (exit code "
                  f"{proc.returncode})", file=sys.stderr)
            return None
        with open(path) as fh:
            return json.load(fh)
    finally:
        os.unlink(path)


def _meta(args, workloads, batches, threads, rounds, peers):
    return {"argv": sys.argv,
            "workloads": workloads, "batches": batches, "threads": threads,
            "rounds": rounds, "peers": peers, "sample_seconds": SAMPLE_SECONDS,
            "pause_seconds": PAUSE_SECONDS, "tolerance": TOLERANCE,
            "dtype": "float32", "data_format": "NHWC",
            "python": sys.version.split()[0], "platform": platform.platform(),
            "machine": platform.machine(), "processor": platform.processor(),
            "cpu_count": os.cpu_count(), "time": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


def run(argv=None):
    """``cdeconv bench``: ``argv`` is the option list (or the parsed namespace of the
    ``bench`` subcommand); returns the exit code (0 ok, 1 a run failed or cdeconv gave a
    wrong result, 2 bad options)."""
    if isinstance(argv, argparse.Namespace):
        args = argv
    else:
        try:
            args = build_parser().parse_args(argv)
        except SystemExit as e:          # --help, or argparse's own usage error
            return e.code if isinstance(e.code, int) else 2
    try:
        workloads, batches, threads, rounds, peers = _resolve(args)
        if getattr(args, "plot", None) and not args.worker_output \
                and importlib.util.find_spec("matplotlib") is None:
            raise BenchError("--plot needs matplotlib (pip install matplotlib, or "
                             "pip install 'cdeconv[bench]')")
    except BenchError as e:
        print(f"cdeconv bench: error: {e}", file=sys.stderr)
        return 2

    if args.worker_output:               # hidden: one thread count, in this process
        res = run_worker(workloads, batches, threads[0], rounds, peers, quick=args.quick)
        with open(args.worker_output, "w") as fh:
            json.dump(res, fh)
        return 0

    print(f"cdeconv bench: {len(workloads)} workloads x batch {batches} x threads "
          f"{threads}, {rounds} rounds; peers: {', '.join(peers) or 'none'}",
          file=sys.stderr, flush=True)
    runs, code = [], 0
    try:
        for n in threads:
            res = _spawn(args, n, peers)
            if res is None:
                code = 1
                continue
            runs.append(res)
            code = code or (0 if res["ok"] else 1)
            print(("\n" if len(runs) > 1 else "") + format_table(res), flush=True)
    except KeyboardInterrupt:
        print("\ncdeconv bench: interrupted", file=sys.stderr)
        code = 130
    if runs:
        v = dict(runs[0]["versions"])
        print("\nversions: " + ", ".join(f"{k} {v[k]}" for k in v), flush=True)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"meta": _meta(args, workloads, batches, threads, rounds, peers),
                       "runs": runs}, fh, indent=1)
        print(f"cdeconv bench: wrote {args.json}", file=sys.stderr)
    if getattr(args, "plot", None) and runs:
        plot_runs(runs, args.plot)
        print(f"cdeconv bench: wrote {args.plot}", file=sys.stderr)
    return code


def plot_runs(runs, path):
    """A PNG of best-peer time / cdeconv time per case (> 1: cdeconv faster), one panel
    per thread count, cases with no timed peer left out; the geometric mean in the title."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = []
    for run in runs:
        rows = []
        for r in run["results"]:
            med = r.get("median_s", {})
            peer_times = [v for k, v in med.items() if k != "cdeconv" and v]
            if "cdeconv" in med and peer_times:
                rows.append((f"{r['workload']} b{r['batch']}",
                             min(peer_times) / med["cdeconv"]))
        panels.append((run["threads"], rows))
    height = max(3.0, 0.22 * max((len(rows) for _, rows in panels), default=1) + 1.2)
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), height),
                             squeeze=False, sharey=True)
    for ax, (threads, rows) in zip(axes[0], panels):
        labels = [name for name, _ in rows]
        ratios = [ratio for _, ratio in rows]
        ys = range(len(rows))
        ax.barh(ys, ratios, color=["tab:green" if v >= 1 else "tab:red" for v in ratios])
        ax.axvline(1.0, color="black", linewidth=0.8)
        ax.set_yticks(list(ys))
        ax.set_yticklabels(labels, fontsize=7)
        ax.set_xscale("log")
        ax.set_xlabel("best peer time / cdeconv time (> 1: cdeconv faster)")
        gm = _geomean(ratios) if ratios else float("nan")
        ax.set_title(f"{threads} thread{'s' if threads > 1 else ''}: geometric mean {gm:.2f}x")
    axes[0][0].invert_yaxis()           # once: the panels share the y axis
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None):
    return run(sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    sys.exit(main())
