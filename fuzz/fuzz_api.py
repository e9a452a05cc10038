"""Coverage-guided fuzz target for cdeconv's argument parsing and dispatch.

Every input (a byte string) decodes deterministically into one call of the public API
(conv1d/2d/3d_transpose, conv2d_backprop_input, conv2d_backprop_filter, conv1d/2d/3d,
max_pool_with_argmax, max_unpool, valid_output_sizes): first a *valid* call built by
construction (small dyadic arrays, every rank, layout, padding form, stride, dilation,
group count, batch 0, empty spatial axes, the direct / 1x1 / chunked kernel paths, NaN
and Inf), then 0-3 *mutations* of its arguments drawn from a catalogue of odd-but-valid
forms (list/tuple/ndarray/np.int, lowercase, N or N+2 entries, Fortran, strided,
reversed, byte-swapped, read-only, misaligned and broadcast views, ``out=``, thread
counts, 1-byte column budgets) and of invalid ones (0, negative, bool, float, str,
None, huge, wrong lengths, ranks and dtypes). The oracle:

* the canonical call is run through ``cdeconv._reference`` (float64, never shares code
  with the kernels): if it raises ValueError/TypeError cdeconv must raise the same type,
  else cdeconv's result must be bitwise equal (dyadic data: every sum is exact);
* an invalid mutation must raise ValueError or TypeError;
* nothing may raise anything else (IndexError, OverflowError, ZeroDivisionError, a
  numpy-internal MemoryError, SystemError ...), and of course nothing may crash.

Run (atheris, libFuzzer options after the script name)::

    python fuzz/fuzz_api.py -max_total_time=600 -rss_limit_mb=4096 fuzz/corpus_work fuzz/corpus

    python fuzz/fuzz_api.py --random 600      # no atheris: the same harness, random bytes
    python fuzz/fuzz_api.py --replay fuzz/corpus   # run every stored input once

The decoder reads bytes past the end as zeros, so short inputs are plain valid calls.
``check_one(data)`` is what tests/test_fuzz_properties.py calls on fuzz/corpus/*.
"""
import os
import sys
import time

import numpy as np

# ---------------------------------------------------------------------------- decoding


class Source:
    """Deterministic choices from a byte string (zeros past its end)."""

    def __init__(self, data):
        self.data = bytes(data)
        self.pos = 0

    def byte(self):
        if self.pos < len(self.data):
            self.pos += 1
            return self.data[self.pos - 1]
        return 0

    def int(self, lo, hi):
        """An int in [lo, hi] (inclusive)."""
        span = hi - lo + 1
        if span <= 1:
            return lo
        nbytes = (span.bit_length() + 7) // 8
        v = 0
        for _ in range(nbytes):
            v = (v << 8) | self.byte()
        return lo + v % span

    def choice(self, seq):
        return seq[self.int(0, len(seq) - 1)]

    def coin(self, percent):
        """True with about ``percent`` % probability (False when the data ran out)."""
        return self.byte() * 100 >= 256 * (100 - percent)


class Bad(Exception):
    """The harness found a bug: an unexpected exception type or a wrong result."""


HUGE = [2**31 - 1, 2**31, 2**32 + 1, 2**40, 2**62, 2**63 - 1, 2**63, 2**64, 2**100]
NEG = [-1, -2, -(2**31), -(2**63), -(2**64)]
LAYOUT = {1: ("NWC", "NCW"), 2: ("NHWC", "NCHW"), 3: ("NDHWC", "NCDHW")}
EQ, BAD, EQ_OR_BAD, ANY = "eq", "bad", "eq-or-bad", "any"


def dyadic(src, shape, dtype, special):
    """Multiples of 1/8 in [-2, 2] (exact sums in any order), from a small seed."""
    rng = np.random.default_rng(src.int(0, 2**16))
    a = (rng.integers(-16, 17, size=shape) / 8).astype(dtype)
    if special and a.size:
        for _ in range(src.int(1, 3)):
            a.flat[src.int(0, a.size - 1)] = src.choice([np.nan, np.inf, -np.inf])
    return a


def _shape(batch, spatial, c, cf):
    return (batch, c) + tuple(spatial) if cf else (batch,) + tuple(spatial) + (c,)


def _full_pads(pairs, cf):
    pairs = [list(p) for p in pairs]
    return [[0, 0], [0, 0]] + pairs if cf else [[0, 0]] + pairs + [[0, 0]]


def _full_ints(vals, cf):
    vals = list(vals)
    return [1, 1] + vals if cf else [1] + vals + [1]


# ------------------------------------------------------------------- array mutations

def misaligned(a):
    """A C-contiguous, native, writeable but *unaligned* copy of a (offset 1 byte).

    With CDECONV_FUZZ_ALIGNED=1 an aligned copy instead: for UBSan runs of a build whose
    kernels still receive unaligned pointers (a known bug, tested on its own), so that
    the run goes on to find other things."""
    if os.environ.get("CDECONV_FUZZ_ALIGNED", "0") not in ("", "0"):
        return a.copy()
    buf = np.zeros(a.nbytes + 1, np.uint8)
    v = buf[1:].view(a.dtype).reshape(a.shape)
    v[...] = a
    assert not v.flags.aligned or a.size == 0
    return v


def array_forms(src, a, partner_dtype, name):
    """(value, class) for an array argument: odd-but-valid views or invalid arrays."""
    forms = [
        (lambda: np.asfortranarray(a), EQ),
        (lambda: np.repeat(a, 2, axis=-1)[..., ::2], EQ),                 # strided
        (lambda: np.flip(np.flip(a, 0).copy(), 0), EQ),                  # reversed
        (lambda: np.moveaxis(np.ascontiguousarray(np.moveaxis(a, -1, 0)), 0, -1), EQ),
        (lambda: a.astype(a.dtype.newbyteorder(">")), EQ),
        (lambda: _readonly(a), EQ),
        (lambda: misaligned(a), EQ),
        (lambda: memoryview(np.ascontiguousarray(a)), EQ),
        (lambda: a.tolist(), EQ if a.dtype == np.float64 == partner_dtype and a.size
         else ANY),
        (lambda: a.astype(np.float32 if a.dtype == np.float64 else np.float64), ANY),
        (lambda: a.astype(np.int32), BAD),
        (lambda: a.astype(np.int64), BAD),
        (lambda: a.astype(np.float16), BAD),
        (lambda: a.astype(np.complex64), BAD),
        (lambda: a.astype(bool), BAD),
        (lambda: a.astype(object), BAD),
        (lambda: a.astype(np.longdouble), BAD),
        (lambda: None, BAD),
        (lambda: "not an array", BAD),
        (lambda: a[..., None], BAD),                                     # rank + 1
        (lambda: a.sum(axis=-1), BAD),                                   # rank - 1
        (lambda: a.reshape(-1)[0] if a.size else np.float32(1), BAD),    # 0-d
        (lambda: np.broadcast_to(a.reshape(-1)[:1], a.shape) if a.size else a, ANY),
    ]
    fn, cls = src.choice(forms)
    return fn(), cls


def _readonly(a):
    b = a.copy()
    b.setflags(write=False)
    return b


def out_forms(src, shape, dtype, x):
    """(out value, class) for the ``out=`` argument."""
    def fresh():
        return np.full(shape, np.nan, dtype)

    def alias():
        flat = x.reshape(-1) if isinstance(x, np.ndarray) and x.dtype == dtype else None
        size = int(np.prod(shape))
        if flat is None or flat.size < size or not flat.flags.c_contiguous or size == 0:
            return fresh(), EQ
        return flat[:size].reshape(shape), EQ_OR_BAD
    other = np.float32 if np.dtype(dtype) == np.float64 else np.float64
    forms = [
        (lambda: (fresh(), EQ)),
        (lambda: (misaligned(fresh()), EQ)),
        alias,
        (lambda: (np.full(tuple(shape) + (1,), np.nan, dtype), BAD)),
        (lambda: (np.full((shape[0] + 1,) + tuple(shape[1:]), np.nan, dtype), BAD)),
        (lambda: (np.full(shape, np.nan, other), BAD)),
        (lambda: (np.full(shape, np.nan, dtype).astype(np.dtype(dtype).newbyteorder(">")),
                  BAD)),
        (lambda: (_readonly(fresh()), BAD)),
        (lambda: _by_flags(np.asfortranarray(fresh()))),
        (lambda: _by_flags(np.full(tuple(shape[:-1]) + (2 * shape[-1],), np.nan,
                                   dtype)[..., ::2])),
        (lambda: (fresh().tolist(), BAD)),
        (lambda: (np.full(shape, 0, np.int64), BAD)),
    ]
    return src.choice(forms)()


def _by_flags(a):
    """An ``out`` view: valid exactly when numpy calls it C-contiguous."""
    return a, EQ if a.flags.c_contiguous else BAD


# ------------------------------------------------------------------ scalar mutations

def ints_forms(src, vals, n, cf, name, allow_none_default=False):
    """(value, class) for strides / dilations: ``vals`` are the canonical N ints."""
    same = len(set(vals)) == 1
    forms = [
        (list(vals), EQ), (tuple(vals), EQ), (np.array(vals, np.int64), EQ),
        (np.array(vals, np.uint8), EQ), ([np.int32(v) for v in vals], EQ),
        (_full_ints(vals, cf), EQ),
        (vals[0] if same else list(vals), EQ),
        ([vals[0]] if same else list(vals), EQ),
        (np.int64(vals[0]) if same else list(vals), EQ),
        (0, BAD), (-1, BAD), (src.choice(NEG), BAD), (True, BAD), (False, BAD),
        (2.0, BAD), ([float(v) for v in vals], BAD), ("2", BAD), (b"\x01", BAD),
        (2 + 0j, BAD), ([[v] for v in vals], BAD), (np.ones((n, 1), np.int64), BAD),
        (np.array(vals, np.float64), BAD), ([1] * (n + 1), BAD if n + 1 != 1 else EQ),
        ([2] + list(vals) + [1] if not cf else [1, 2] + list(vals), BAD),
        ([], BAD), ([src.choice(HUGE)] * n, ANY), ([1] * (n - 1) + [src.choice(HUGE)], ANY),
        (src.choice(HUGE), ANY), ([None] * n, BAD), (np.array(2), BAD),
    ]
    if allow_none_default:
        forms.append((None, EQ if all(v == 1 for v in vals) else ANY))
    else:
        forms.append((None, BAD))
    return src.choice(forms)


def padding_forms(src, mode, pairs, n, cf):
    """(value, class) for padding; ``pairs`` the canonical explicit pairs."""
    forms = [("FULL", BAD), ("", BAD), (None, BAD), (3, BAD), (b"SAME", BAD), ([], BAD),
             ([[0, 0]] * (n + 1), BAD), ([[0, 0, 0]] * n, BAD), ([0] * (2 * n), BAD),
             ([[-1, 0]] * n, BAD), ([[src.choice(NEG), 0]] * n, BAD),
             ([[0.0, 1]] * n, BAD), ([["a", "b"]] * n, BAD), ([[True, 0]] * n, BAD),
             ([[1, 1]] * (n + 2), BAD), ([[src.choice(HUGE), 0]] * n, ANY),
             ([[2**31 - 1, 2**31 - 1]] * n, ANY), (np.zeros((n, 2)), BAD)]
    if mode == "EXPLICIT":
        forms += [([list(p) for p in pairs], EQ), (_full_pads(pairs, cf), EQ),
                  (tuple(tuple(p) for p in pairs), EQ),
                  (np.array(pairs, np.int64).reshape(n, 2), EQ),
                  ([np.array(p, np.int32) for p in _full_pads(pairs, cf)], EQ),
                  ([[np.int64(a), np.int64(b)] for a, b in pairs], EQ)]
    else:
        forms += [(mode.lower(), EQ), (mode.capitalize(), EQ), (mode + " ", BAD)]
    return src.choice(forms)


def shape_forms(src, full, spatial, n, cf, batch_at=0):
    """(value, class) for output_shape / input_sizes: ``full`` the canonical N+2 ints."""
    c_at = 1 if cf else n + 1
    def with_(i, v):
        f = list(full)
        f[i] = v
        return f
    forms = [
        (list(full), EQ), (tuple(full), EQ), (list(spatial), EQ), (with_(0, -1), EQ),
        (with_(0, None), EQ), (np.array(full, np.int64), EQ), (np.array(full, np.int32), EQ),
        ([np.int16(v) for v in full], EQ), (np.array(spatial, np.uint32), EQ),
        (with_(0, full[0] + 1), BAD), (with_(0, -2), BAD), (with_(c_at, full[c_at] + 1), BAD),
        (with_(c_at, None), BAD), (with_(c_at, -1), BAD),
        (with_(0, True), BAD), (with_(2 if cf else 1, float(full[2 if cf else 1])), BAD),
        (with_(2 if cf else 1, -1), BAD), (with_(2 if cf else 1, src.choice(NEG)), BAD),
        (with_(2 if cf else 1, src.choice(HUGE)), ANY),
        ([src.choice(HUGE)] * n, ANY), (list(full) + [1], BAD), (list(full)[:-1], BAD
                                                                 if n + 1 != n else EQ),
        ("1,2,3", BAD), (5, BAD), (np.array(5), BAD), (np.array(full, np.float64), BAD),
        (np.array([full]), BAD), ([str(v) for v in full], BAD),
        ([v + 1 for v in spatial], ANY), ([max(v - 1, 0) for v in spatial], ANY),
        ([v * 2 + 1 for v in spatial], ANY),
    ]
    return src.choice(forms)


# --------------------------------------------------------------------- the call itself

class Call:
    """fn(*args, **kwargs) with its expected outcome."""

    def __init__(self, fn, args, kwargs, expect, classes, threads, chunk):
        self.fn, self.args, self.kwargs = fn, args, kwargs
        self.expect = expect          # an ndarray (or tuple), or an exception type
        self.classes = classes        # mutation classes applied
        self.threads, self.chunk = threads, chunk

    def describe(self):
        def short(v):
            if isinstance(v, np.ndarray):
                return (f"ndarray(shape={v.shape}, dtype={v.dtype}, "
                        f"C={v.flags.c_contiguous}, aligned={v.flags.aligned}, "
                        f"writeable={v.flags.writeable}, strides={v.strides})")
            r = repr(v)
            return r if len(r) < 200 else r[:200] + "..."
        args = ", ".join(short(a) for a in self.args)
        kw = ", ".join(f"{k}={short(v)}" for k, v in self.kwargs.items())
        return (f"{getattr(self.fn, '__name__', self.fn)}({args}, {kw}) "
                f"[threads={self.threads}, CHUNK_BYTES={self.chunk}, "
                f"mutations={getattr(self, 'targets', self.classes)}, "
                f"expect={_short_expect(self.expect)}]")


def _short_expect(e):
    if isinstance(e, type):
        return e.__name__
    if isinstance(e, tuple):
        return "tuple"
    return f"ndarray{getattr(e, 'shape', '')}"


def _reference_outcome(fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except (ValueError, TypeError) as exc:
        return type(exc)


def build_conv(src, op):
    import cdeconv
    from cdeconv import _reference

    n = {"conv1d_transpose": 1, "conv1d": 1, "conv3d_transpose": 3, "conv3d": 3}.get(op, 2)
    transposed = op.endswith("transpose") or op == "conv2d_backprop_input"
    cf = src.coin(40)
    fmt = LAYOUT[n][cf]
    dtype = src.choice([np.float32, np.float64])
    groups = 1 if op.startswith("conv2d_backprop") else src.choice([1, 1, 1, 2, 3])
    cs_g = src.int(1, 3)                     # small-side channels per group
    cb_g = src.choice([1, 2, 3, 4, 32])      # big-side channels per group (32: direct)
    path = src.int(0, 3)
    if path == 1:                            # 1x1, stride 1, no padding: the direct GEMM
        k, s, d = (1,) * n, (1,) * n, (src.choice([1, 2]),) * n
        mode, pairs = src.choice(["VALID", "SAME"]), None
    else:
        kmax = 3 if n == 3 else 4
        k = tuple(src.int(1, kmax) for _ in range(n))
        s = tuple(src.int(1, 3) for _ in range(n))
        d = tuple(src.choice([1, 1, 1, 2, 3]) for _ in range(n))
        mode = src.choice(["SAME", "VALID", "EXPLICIT"])
        pairs = [[src.int(0, 3), src.int(0, 3)] for _ in range(n)] \
            if mode == "EXPLICIT" else None
        if path == 2:                        # kernel == stride: the "tiles" store path
            s = k
            d = (1,) * n
    padding = _full_pads(pairs, cf) if pairs else mode
    batch = src.choice([1, 1, 2, 0, 3])
    smax = 4 if n == 3 else 6
    special = src.coin(10)
    threads = src.choice([None, 1, 2, 3])
    chunk = src.choice([None, None, 1, 300, 4096])
    kwargs = {}
    if transposed:
        small = tuple(src.choice([src.int(1, smax), src.int(0, smax)]) for _ in range(n))
        x = dyadic(src, _shape(batch, small, groups * cs_g, cf), dtype, special)
        w = dyadic(src, k + (cb_g, groups * cs_g), dtype, special)
        ranges = cdeconv.valid_output_sizes(list(small), k, s, pairs if pairs else mode, d)
        big = [src.choice(list(r)) if len(r) else src.int(0, 9) for r in ranges]
        full = _shape(batch, big, groups * cb_g, cf)
        out_shape = list(full) if src.coin(50) else list(big)
        if op == "conv2d_backprop_input":
            fn = cdeconv.conv2d_backprop_input
            ref = lambda: _reference_outcome(_reference.conv2d_backprop_input, out_shape,
                                             w, x, list(s), padding, fmt, list(d))
            args = [out_shape, w, x, list(s), padding]
            kwargs = dict(data_format=fmt, dilations=list(d))
            slots = {"input_sizes": 0, "filter": 1, "out_backprop": 2, "strides": 3,
                     "padding": 4}
        else:
            fn = getattr(cdeconv, op)
            ref = lambda: _reference_outcome(_reference.conv_transpose_nd, n, x, w,
                                             out_shape, list(s), padding, fmt, list(d),
                                             groups)
            args = [x, w, out_shape, list(s), padding]
            kwargs = dict(data_format=fmt, dilations=list(d), groups=groups)
            slots = {"input": 0, "filters": 1, "output_shape": 2, "strides": 3,
                     "padding": 4}
        shape_slot = "input_sizes" if op == "conv2d_backprop_input" else "output_shape"
        xname, wname = ("out_backprop", "filter") if op == "conv2d_backprop_input" \
            else ("input", "filters")
    else:
        big = tuple(src.choice([src.int(1, smax + 2), src.int(0, smax)]) for _ in range(n))
        x = dyadic(src, _shape(batch, big, groups * cb_g if cb_g < 32 else groups,
                               cf), dtype, special)
        cin_g = x.shape[1 if cf else -1] // groups
        cout = groups * cs_g
        full = None
        if op == "conv2d_backprop_filter":
            fsizes = list(k) + [cin_g, cout]
            try:                             # the forward output size of this geometry
                y = _reference.conv2d(x, np.zeros(fsizes, dtype), list(s), padding, fmt,
                                      list(d))
                dy_shape = y.shape
            except (ValueError, TypeError):
                dy_shape = _shape(batch, (1,) * n, cout, cf)
            dy = dyadic(src, dy_shape, dtype, special)
            fn = cdeconv.conv2d_backprop_filter
            ref = lambda: _reference_outcome(_reference.conv2d_backprop_filter, x, fsizes,
                                             dy, list(s), padding, fmt, list(d))
            args = [x, fsizes, dy, list(s), padding]
            kwargs = dict(data_format=fmt, dilations=list(d))
            slots = {"input": 0, "filter_sizes": 1, "out_backprop": 2, "strides": 3,
                     "padding": 4}
            xname, wname, shape_slot = "input", "out_backprop", "filter_sizes"
            w = dy
        else:
            w = dyadic(src, k + (cin_g, cout), dtype, special)
            fn = getattr(cdeconv, op)
            ref = lambda: _reference_outcome(_reference.conv_nd, n, x, w, list(s), padding,
                                             fmt, list(d), groups)
            args = [x, w, list(s), padding]
            kwargs = dict(data_format=fmt, dilations=list(d))
            if src.coin(50):
                kwargs["groups"] = groups
            slots = {"input": 0, "filters": 1, "strides": 2, "padding": 3}
            xname, wname, shape_slot = "input", "filters", None
    expect = ref()

    # ------------------------------------------------------------------ mutations
    classes = {}      # target -> class of its (last) mutation

    def put(slot, value):
        if slot in slots:
            args[slots[slot]] = value
        else:
            kwargs[slot] = value

    targets = ["strides", "dilations", "padding", "data_format", "x", "w", "out",
               "groups", "name", "output_padding", "shape", "extra"]
    for _ in range(src.choice([0, 0, 0, 1, 1, 1, 2, 3])):
        t = src.choice(targets)
        if t == "output_padding" and "shape" in classes:
            continue
        if t == "strides":
            v, c = ints_forms(src, s, n, cf, "strides")
            put("strides", v)
        elif t == "dilations":
            v, c = ints_forms(src, d, n, cf, "dilations", allow_none_default=True)
            put("dilations", v)
        elif t == "padding":
            v, c = padding_forms(src, mode, pairs, n, cf)
            put("padding", v)
        elif t == "data_format":
            other = LAYOUT[n][not cf]
            wrong_rank = LAYOUT[1 + n % 3][cf]
            v, c = src.choice([(fmt.lower(), EQ), (fmt.capitalize(), EQ),
                               (other, ANY), (wrong_rank, BAD), ("X" + fmt[1:], BAD),
                               (None, BAD), (3, BAD), (fmt.encode(), BAD), ("", BAD),
                               (" " + fmt, BAD)])
            put("data_format", v)
        elif t == "x":
            v, c = array_forms(src, x, w.dtype, xname)
            put(xname, v)
        elif t == "w":
            v, c = array_forms(src, w, x.dtype, wname)
            put(wname, v)
        elif t == "out":
            if isinstance(expect, type):
                continue
            v, c = out_forms(src, expect.shape, expect.dtype, x)
            put("out", v)
        elif t == "groups":
            if op.startswith("conv2d_backprop"):
                v, c = groups, BAD        # not an argument: TypeError
            elif transposed:
                v, c = src.choice([(np.int64(groups), EQ), (0, BAD), (-1, BAD),
                                   (True, BAD if groups != 1 else BAD), (1.0, BAD),
                                   (None, BAD), ("1", BAD), (src.choice(HUGE), BAD),
                                   (groups + 1, ANY)])
            else:
                v, c = src.choice([(np.int64(groups), EQ), (None, EQ), (0, BAD), (-1, BAD),
                                   (True, BAD), (1.0, BAD), ("1", BAD),
                                   (src.choice(HUGE), BAD), (groups + 1, BAD)])
            put("groups", v)
        elif t == "name":
            v, c = src.choice([("op", EQ), (None, EQ)])
            put("name", v)
        elif t == "output_padding":
            if not (transposed and op != "conv2d_backprop_input"):
                v, c = 0, BAD
            elif src.coin(50):           # together with output_shape: refused
                v, c = src.choice([0, 1, [0] * n]), BAD
            else:
                args[slots["output_shape"]] = None
                classes["shape"] = ANY
                targets.remove("shape")
                v, c = src.choice([(0, ANY), (1, ANY), ([0] * n, ANY), (-1, BAD),
                                   (0.5, BAD), (True, BAD), ("0", BAD), ([0] * (n + 1), BAD),
                                   (src.choice(HUGE), BAD), ([], BAD)])
            put("output_padding", v)
        elif t == "shape":
            if shape_slot is None:
                continue
            if shape_slot == "filter_sizes":
                fs = list(fsizes)
                v, c = src.choice([
                    (tuple(fs), EQ), (np.array(fs), EQ), ([np.int8(v) for v in fs], EQ),
                    (fs[:-1], BAD), (fs + [1], BAD), ([0] + fs[1:], BAD),
                    (fs[:-1] + [0], BAD), ([-1] + fs[1:], BAD), (fs[:-1] + [fs[-1] + 1], BAD),
                    ([float(v) for v in fs], BAD), (None, BAD), ("3", BAD), (np.array(3), BAD),
                    ([src.choice(HUGE)] + fs[1:], ANY), (fs[:-1] + [src.choice(HUGE)], ANY),
                    (fs[:-2] + [src.choice(HUGE), fs[-1]], ANY), ([True] + fs[1:], BAD)])
            else:
                v, c = shape_forms(src, full, big, n, cf)
            put(shape_slot, v)
        else:   # an unknown keyword
            v, c = 1, BAD
            kwargs[src.choice(["bogus", "stride" if n != 1 else "strides", "filter_sizes"])] = v
        classes[t] = c
    if classes.get("data_format") == ANY:
        # the other layout: strides/padding/shape forms built for the canonical layout
        # may be valid or invalid there; only the exception types are checked
        classes = {t: ANY for t in classes}
    call = Call(fn, args, kwargs, expect, sorted(classes.values()), threads, chunk)
    call.targets = dict(classes)
    call.forward_empty_input = (not transposed and op != "conv2d_backprop_filter"
                                and x.size == 0)
    return call


def build_pool(src, op):
    import cdeconv
    batch = src.choice([1, 2, 0])
    h, w, c = src.int(0, 6), src.int(0, 6), src.int(1, 3)
    dtype = src.choice([np.float32, np.float64])
    x = dyadic(src, (batch, h, w, c), dtype, src.coin(20))
    if src.coin(50):   # ties everywhere
        x = np.round(x)
    k = src.choice([1, 2, 3, [2, 3], [1, 2, 2, 1], 0, -1, 2**31, True, 1.5, [2, 2, 2]])
    s = src.choice([1, 2, 3, [1, 2], [1, 3, 2, 1], 0, -1, 2**63, None, [2, 2, 2, 2]])
    pad = src.choice(["SAME", "VALID", "same", "FULL", None, [[0, 0]] * 4])
    inc = src.choice([False, True, 1, None])
    if op == "max_pool_with_argmax":
        return Call(cdeconv.max_pool_with_argmax, [x, k, s, pad, inc], {}, "pool", [ANY],
                    src.choice([None, 1, 2]), None)
    oh, ow = src.int(0, 4), src.int(0, 4)
    pooled = dyadic(src, (batch, oh, ow, c), dtype, False)
    H, W = src.int(0, 6), src.int(0, 6)
    P = H * W * c
    lo = -2
    hi = P * max(batch, 1) + 2 if inc else P + 2
    arg = np.array([src.int(lo, hi) for _ in range(pooled.size)], np.int64).reshape(
        pooled.shape)
    arg = src.choice([arg, arg.astype(np.int32), arg.astype(np.uint64), arg.astype(float),
                      arg.T.copy() if arg.ndim else arg, arg.tolist()])
    oshape = src.choice([[batch, H, W, c], [H, W], [-1, H, W, c], [batch, H, W, c + 1],
                         [H], [H, -W - 1], [None, H, W, c], [2**40, 2**40]])
    return Call(cdeconv.max_unpool, [pooled, arg, oshape, inc], {}, "unpool", [ANY],
                src.choice([None, 1, 2]), None)


def build_sizes(src):
    import cdeconv
    vals = [src.choice([0, 1, 3, 7, -1, 2**40, True, 1.5, None, "3"]) for _ in range(3)]
    n = src.int(1, 3)
    size = vals[0] if src.coin(50) else [src.choice([0, 2, 5, -3, 2**31])] * n
    pad = src.choice(["SAME", "VALID", [[1, 1]] * n, [[1, 1]] * (n + 1), "x", None])
    return Call(cdeconv.valid_output_sizes, [size, vals[1] if src.coin(30) else 3,
                                             vals[2] if src.coin(30) else 2, pad], {},
                "sizes", [ANY], None, None)


OPS = ["conv2d_transpose", "conv1d_transpose", "conv3d_transpose", "conv2d_backprop_input",
       "conv2d_backprop_filter", "conv2d", "conv1d", "conv3d", "max_pool_with_argmax",
       "max_unpool", "valid_output_sizes"]


def decode(data):
    src = Source(data)
    op = src.choice(OPS)
    if op in ("max_pool_with_argmax", "max_unpool"):
        return build_pool(src, op)
    if op == "valid_output_sizes":
        return build_sizes(src)
    return build_conv(src, op)


# ------------------------------------------------------------------------ the oracle

ALLOWED = (ValueError, TypeError)
#: Known, separately tested issues are counted under their tag instead of stopping the
#: run. Tags: "numpy-memory" (numpy's own MemoryError), "unpool-empty" (max_unpool
#: accepting switches into an empty output), "empty-input-nan" (forward conv of an
#: empty input ignoring a NaN/Inf filter): all three fixed in 95814b7, so none is
#: tolerated by default any more; CDECONV_FUZZ_KNOWN="tag,tag" tolerates some again.
KNOWN_OPEN = {t for t in os.environ.get("CDECONV_FUZZ_KNOWN", "").split(",") if t}
STRICT = os.environ.get("CDECONV_FUZZ_STRICT", "0") not in ("", "0")


class Known(Exception):
    """A known issue: counted (or raised as Bad when STRICT)."""

    def __init__(self, tag, msg):
        super().__init__(msg)
        self.tag = tag


def known(tag, msg):
    if STRICT or tag not in KNOWN_OPEN:
        raise Bad(f"[{tag}] {msg}")
    raise Known(tag, msg)


def _numpy_request(exc):
    """Bytes numpy tried to allocate (its _ArrayMemoryError knows shape and dtype)."""
    try:
        return int(np.prod(exc.shape, dtype=object)) * np.dtype(exc.dtype).itemsize
    except Exception:
        return None


def _physical_memory():
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return 2**62


def _numpy_memory_error(exc):
    """numpy's own allocation failure (``Unable to allocate ...``), not cdeconv's."""
    return type(exc).__module__.startswith("numpy")


def run_call(call):
    """Run one decoded call; raise Bad on any violation. Returns a short outcome tag."""
    import cdeconv
    from cdeconv import _driver
    old_chunk = _driver.CHUNK_BYTES
    if call.chunk is not None:
        _driver.CHUNK_BYTES = call.chunk
    cdeconv.set_num_threads(call.threads)
    try:
        try:
            got = call.fn(*call.args, **call.kwargs)
        except Known:
            raise
        except ALLOWED as exc:
            return _check_error(call, exc)
        except MemoryError as exc:
            # acceptable only for a huge request, refused by cdeconv itself; numpy's own
            # "Unable to allocate" (a size cdeconv let through) is a known, separately
            # tested issue (tests/test_fuzz_properties.py), reported unless STRICT
            if _numpy_memory_error(exc):
                nbytes = _numpy_request(exc)
                if nbytes is not None and nbytes <= _physical_memory():
                    # a valid request that fits in RAM, refused only by the address-
                    # space cap this harness (or the test) runs under
                    return "capped"
                known("numpy-memory", f"numpy's MemoryError: {exc}")
            if "byte" not in str(exc):
                raise Bad(f"MemoryError not raised by cdeconv's size checks: {exc!r}\n"
                          f"  call: {call.describe()}") from exc
            if BAD in call.classes and ANY not in call.classes:
                raise Bad(f"MemoryError instead of ValueError/TypeError: {exc!r}\n"
                          f"  call: {call.describe()}") from exc
            return "memory"
        except Exception as exc:
            raise Bad(f"unexpected {type(exc).__module__}.{type(exc).__name__}: {exc}\n"
                      f"  call: {call.describe()}") from exc
        return _check_result(call, got)
    except Known as k:
        return k.tag
    finally:
        _driver.CHUNK_BYTES = old_chunk
        cdeconv.set_num_threads(None)


def _check_error(call, exc):
    if not str(exc):
        raise Bad(f"{type(exc).__name__} without a message\n  call: {call.describe()}")
    if isinstance(call.expect, str):      # pool / unpool / sizes: any clean refusal
        return "error"
    if BAD in call.classes or EQ_OR_BAD in call.classes or ANY in call.classes:
        return "error"
    if isinstance(call.expect, type):
        if not issubclass(type(exc), call.expect):
            raise Bad(f"raised {type(exc).__name__} ({exc}) where the reference raises "
                      f"{call.expect.__name__}\n  call: {call.describe()}")
        return "error"
    raise Bad(f"raised {type(exc).__name__}: {exc} on a valid call\n"
              f"  call: {call.describe()}")


def _check_result(call, got):
    if isinstance(call.expect, str):
        if call.expect == "pool":
            _check_pool(call, got)
        elif call.expect == "unpool":
            _check_unpool(call, got)
        return "ok"
    if BAD in call.classes:
        raise Bad(f"an invalid argument was accepted (returned {type(got).__name__} "
                  f"{getattr(got, 'shape', '')})\n  call: {call.describe()}")
    if not isinstance(got, np.ndarray):
        raise Bad(f"returned {type(got).__name__}\n  call: {call.describe()}")
    if "out" in call.kwargs and isinstance(call.kwargs["out"], np.ndarray) \
            and got is not call.kwargs["out"]:
        raise Bad(f"out= given but another array returned\n  call: {call.describe()}")
    if ANY in call.classes:
        return "ok"
    if isinstance(call.expect, type):
        raise Bad(f"accepted a call the reference refuses with {call.expect.__name__}\n"
                  f"  call: {call.describe()}")
    if got.shape != call.expect.shape or got.dtype != call.expect.dtype:
        raise Bad(f"shape/dtype {got.shape}/{got.dtype}, reference "
                  f"{call.expect.shape}/{call.expect.dtype}\n  call: {call.describe()}")
    if not np.array_equal(got, call.expect, equal_nan=True):
        if getattr(call, "forward_empty_input", False) and not np.all(
                np.isfinite(call.expect)) and np.all(got == 0):
            known("empty-input-nan", "forward conv of an empty input with explicit "
                  "padding and a non-finite filter gives 0, the reference NaN")
        diff = np.argwhere(~((got == call.expect) | (np.isnan(got) & np.isnan(call.expect))))
        raise Bad(f"result differs from the reference at {len(diff)} positions, first "
                  f"{diff[:3].tolist()}: got {got[tuple(diff[0])]}, reference "
                  f"{call.expect[tuple(diff[0])]}\n  call: {call.describe()}")
    return "ok"


def _check_pool(call, got):
    y, arg = got
    x = np.asarray(call.args[0])
    if y.shape != arg.shape or arg.dtype != np.int64 or y.dtype != x.dtype:
        raise Bad(f"pool outputs {y.shape}/{arg.shape}/{arg.dtype}\n  call: {call.describe()}")
    if y.size:
        inc = bool(call.args[4])
        b = np.arange(y.shape[0]).reshape(-1, 1, 1, 1)
        per = x[0].size
        flat = arg - (0 if inc else 0)
        if inc:
            ok = (flat >= b * per) & (flat < (b + 1) * per)
            vals = x.reshape(-1)[np.clip(flat, 0, x.size - 1)]
        else:
            ok = (flat >= 0) & (flat < per)
            vals = x.reshape(x.shape[0], -1)[b[..., 0, 0, 0][:, None], np.clip(
                flat.reshape(y.shape[0], -1), 0, per - 1)].reshape(y.shape)
        if not ok.all():
            raise Bad(f"argmax outside its image\n  call: {call.describe()}")
        if not np.array_equal(vals, y, equal_nan=True):
            raise Bad(f"pooled values are not input[argmax]\n  call: {call.describe()}")


def _check_unpool(call, got):
    pooled, arg, _, inc = call.args
    arg = np.asarray(arg)
    n, h, w, c = got.shape
    P = h * w * c
    if P == 0 and arg.size and n:
        known("unpool-empty", f"max_unpool accepted switches {arg.reshape(-1)[:4]} for an "
              f"empty output {got.shape} (not validated)")
    if n == 0:
        return
    want = np.zeros((n, P), np.float64)
    a = arg.reshape(n, -1).astype(np.int64)
    if inc:
        a = a - (np.arange(n) * P)[:, None]
    for b in range(n):
        np.add.at(want[b], a[b], pooled.reshape(n, -1)[b].astype(np.float64))
    if not np.array_equal(got.reshape(n, P), want.astype(got.dtype)):
        raise Bad(f"max_unpool differs from np.add.at\n  call: {call.describe()}")


def check_one(data):
    """Decode ``data`` and run it: raises Bad on a violation (the fuzz entry point)."""
    with np.errstate(all="ignore"):
        call = decode(data)
        return run_call(call)


# ---------------------------------------------------------------------------- drivers

def _random_loop(seconds, seed=None, corpus_dir=None):
    rng = np.random.default_rng(seed)
    end = time.monotonic() + seconds
    counts = {}
    n = 0
    while time.monotonic() < end:
        data = rng.integers(0, 256, size=int(rng.integers(0, 200)), dtype=np.uint8).tobytes()
        try:
            tag = check_one(data)
        except Bad:
            if corpus_dir:
                os.makedirs(corpus_dir, exist_ok=True)
                path = os.path.join(corpus_dir, f"crash-random-{n}")
                with open(path, "wb") as fh:
                    fh.write(data)
                print(f"saved {path}", file=sys.stderr)
            raise
        counts[tag] = counts.get(tag, 0) + 1
        n += 1
    print(f"random loop: {n} inputs in {seconds} s: {counts}")


def _replay(paths):
    files = []
    for p in paths:
        if os.path.isdir(p):
            files += [os.path.join(p, f) for f in sorted(os.listdir(p))]
        else:
            files.append(p)
    counts = {}
    for f in files:
        with open(f, "rb") as fh:
            tag = check_one(fh.read())
        counts[tag] = counts.get(tag, 0) + 1
    print(f"replayed {len(files)} inputs: {counts}")


def limit_memory():
    """Cap the address space (CDECONV_FUZZ_MEMORY_GB, default 8): a valid call with a
    large output then fails to allocate instead of swapping the machine to death."""
    try:
        import resource
    except ImportError:
        return
    gb = float(os.environ.get("CDECONV_FUZZ_MEMORY_GB", "8"))
    if gb > 0:
        lim = int(gb * 2**30)
        resource.setrlimit(resource.RLIMIT_AS, (lim, lim))


def main(argv):
    limit_memory()
    if len(argv) > 1 and argv[1] == "--random":
        seconds = float(argv[2]) if len(argv) > 2 else 60
        seed = int(argv[3]) if len(argv) > 3 else None
        _random_loop(seconds, seed, corpus_dir=os.path.join(os.path.dirname(
            os.path.abspath(__file__)), "crashes"))
        return
    if len(argv) > 1 and argv[1] == "--replay":
        _replay(argv[2:] or [os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                          "corpus")])
        return
    import atheris
    with atheris.instrument_imports(include=["cdeconv"]):
        import cdeconv  # noqa: F401
        import cdeconv._reference  # noqa: F401

    def test_one_input(data):
        check_one(data)

    atheris.Setup(argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
