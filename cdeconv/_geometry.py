"""Argument normalisation and convolution geometry: written once, used by every op.

Everything a user passes (arrays, strides, dilations, padding, data_format,
output_shape, ...) is checked here, before any kernel runs; the kernels in ``src/``
trust what they get. Every error names the argument, what was given and what would be
valid.

Geometry vocabulary (as in src/_conv.pyx): a convolution relates a *big* side (the
forward convolution's input = the transposed convolution's output) and a *small* side
(the forward output = the transposed input), per spatial axis:

    small = trunc((big + pad_before + pad_after - eff_k + stride) / stride),
    eff_k = (k - 1) * dilation + 1

which is TensorFlow's ``GetWindowedOutputSizeVerbose`` (C integer division; a negative
result is an error). SAME has ``small = ceil(big / stride)`` and TF's split of the total
padding ``max((small - 1) * stride + eff_k - big, 0)``: ``before = total // 2``, the odd
one at the end. A transposed convolution accepts exactly the big sizes whose forward
convolution gives back its input size (``valid_output_sizes``).
"""
import math
import numbers
import operator
import os

import numpy as np

from . import _memory

__all__ = ["valid_output_sizes", "forward_size"]

_INT32_MAX = 2**31 - 1          # BLAS (LP64) int: sizes and leading dimensions
_MAX_BYTES = 2**60              # no array we would allocate can be larger than this


def _memory_limit():
    """Bytes of physical memory (the most any single array may sanely take)."""
    try:
        return min(_MAX_BYTES, os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):   # not POSIX
        return _MAX_BYTES


def check_bytes(nbytes, what):
    """MemoryError naming ``what`` when ``nbytes`` exceeds the machine's memory."""
    limit = _memory_limit()
    if nbytes > limit:
        raise MemoryError(f"{what} would need {nbytes} bytes ({nbytes / 2**30:.1f} GiB), "
                          f"more than this machine's {limit / 2**30:.1f} GiB of memory")
_SPATIAL_NAMES = {1: ("width",), 2: ("height", "width"), 3: ("depth", "height", "width")}
_FORMATS = {1: ("NWC", "NCW"), 2: ("NHWC", "NCHW"), 3: ("NDHWC", "NCDHW")}


# ----------------------------------------------------------------------------- arrays

def as_float_array(a, name):
    """Return ``a`` as a C-contiguous, native-byte-order float32/float64 ndarray.

    Non-contiguous, Fortran-ordered, read-only and byte-swapped arrays are accepted
    (copied only when needed). Integer, bool, complex, object and float16 arrays are
    rejected with TypeError: convolution dtypes are never guessed.
    """
    if not isinstance(a, np.ndarray):
        if a is None:
            raise TypeError(f"{name} must be an array of float32 or float64, got None")
        try:
            a = np.asarray(a)
        except Exception as exc:  # ragged lists etc.
            raise TypeError(f"{name} could not be converted to an array: {exc}") from None
    dt = a.dtype
    if dt.kind != "f" or dt.itemsize not in (4, 8):
        raise TypeError(f"{name} must have dtype float32 or float64, got {dt} "
                        f"(convert explicitly, e.g. {name}.astype(np.float32))")
    if a.flags.c_contiguous and a.flags.aligned and dt.isnative:
        return a
    # a copy is needed: refuse before copying what cannot fit (e.g. a broadcast view)
    check_bytes(a.size * dt.itemsize, f"copying {name} of shape {list(a.shape)}")
    # np.array(copy=True) also realigns a C-contiguous but misaligned view, which
    # ascontiguousarray would hand back unchanged (misaligned loads are undefined
    # behaviour in C: UBSan flags them, strict-alignment CPUs trap)
    return np.array(a, dtype=dt.newbyteorder("="), order="C", copy=True)


def check_same_dtype(**arrays):
    """TypeError unless all the named arrays share one dtype."""
    items = list(arrays.items())
    (n0, a0), rest = items[0], items[1:]
    for n1, a1 in rest:
        if a1.dtype != a0.dtype:
            raise TypeError(f"{n0} and {n1} must have the same dtype, got {a0.dtype} "
                            f"and {a1.dtype} (cast one with .astype())")
    return a0.dtype


class ShapeOnly:
    """Stands for an array whose shape alone is known (filter_sizes, input_sizes)."""

    __slots__ = ("shape", "ndim")

    def __init__(self, shape):
        self.shape = tuple(shape)
        self.ndim = len(self.shape)


def sizes_arg(value, n_dims, name, layout):
    """A full shape given as a list of ints (TF's filter_sizes): n_dims entries >= 0."""
    if isinstance(value, np.ndarray):
        vals = _as_int_list(value, name)
    elif isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        raise TypeError(f"{name} must be a list of {n_dims} ints {layout}, got {value!r}")
    else:
        vals = [_as_int(v, name) for v in value]
    if len(vals) != n_dims:
        raise ValueError(f"{name} must have {n_dims} entries {layout}, got {len(vals)}: "
                         f"{vals}")
    if min(vals) < 0:
        raise ValueError(f"{name} must be >= 0, got {vals}")
    return ShapeOnly(vals)


def check_rank(a, n_dims, name, layout):
    if a.ndim != n_dims:
        raise ValueError(f"{name} must be {n_dims}-D {layout}, got shape {a.shape} "
                         f"({a.ndim}-D)")


def check_out(out, shape, dtype, inputs):
    """Validate a preallocated ``out=`` array (or allocate one when out is None)."""
    if out is None:
        nbytes = math.prod(shape) * np.dtype(dtype).itemsize
        check_bytes(nbytes, f"the output of shape {list(shape)}")
        return _memory.empty(shape, dtype, nbytes)
    if not isinstance(out, np.ndarray):
        raise TypeError(f"out must be a numpy.ndarray, got {type(out).__name__}")
    if out.shape != tuple(shape):
        raise ValueError(f"out must have shape {list(shape)}, got {list(out.shape)}")
    if out.dtype != dtype:
        raise TypeError(f"out must have dtype {np.dtype(dtype)}, got {out.dtype}")
    if not out.flags.c_contiguous or not out.dtype.isnative:
        raise ValueError("out must be C-contiguous in native byte order")
    if not out.flags.writeable:
        raise ValueError("out is read-only")
    for name, a in inputs.items():
        if np.shares_memory(out, a):
            raise ValueError(f"out must not overlap {name}")
    return out


# ------------------------------------------------------------------------ small ints

def _as_int(v, name):
    """An int from an int-like value (Python or NumPy integer; not bool, not float)."""
    if type(v) is int:      # the common case, fast
        return v
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Integral):
        raise TypeError(f"{name} must contain integers, got {v!r} ({type(v).__name__})")
    return operator.index(v)


def _as_int_list(value, name):
    """A list of ints from an int sequence (list, tuple, 1-D integer array)."""
    if isinstance(value, np.ndarray):
        if value.ndim != 1:
            raise ValueError(f"{name} must be 1-D, got an array of shape {value.shape}")
        value = value.tolist() if value.dtype.kind in "iu" else list(value)
    elif isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        raise TypeError(f"{name} must be a sequence of ints, got {value!r}")
    return [_as_int(v, name) for v in value]


def channels_first(data_format, n):
    """True for NCHW-like formats, False for NHWC-like, ValueError otherwise."""
    last, first = _FORMATS[n]
    if isinstance(data_format, str):
        fmt = data_format.upper()
        if fmt == last:
            return False
        if fmt == first:
            return True
    raise ValueError(f"data_format must be {last!r} or {first!r} for a {n}-D "
                     f"convolution, got {data_format!r}")


def spatial_ints(value, n, cf, name, default=None):
    """strides / dilations: an int, N spatial ints, or N+2 ints in data_format order
    with 1 at batch and channel. Every value >= 1."""
    if value is None:
        if default is None:
            raise ValueError(f"{name} is required")
        value = default
    if type(value) is int or (isinstance(value, numbers.Integral)
                              and not isinstance(value, (bool, np.bool_))):
        vals = [operator.index(value)] * n
    else:
        vals = _as_int_list(value, name)
        if len(vals) == n + 2:
            outer = (vals[0], vals[1]) if cf else (vals[0], vals[-1])
            if outer != (1, 1):
                raise ValueError(f"{name} {vals} must be 1 at the batch and channel "
                                 f"positions ({'N, C' if cf else 'N, ...C'} order)")
            vals = vals[2:] if cf else vals[1:-1]
        elif len(vals) == 1:
            vals = vals * n
        elif len(vals) != n:
            raise ValueError(f"{name} must be an int or a list of 1, {n} or {n + 2} "
                             f"ints, got {len(vals)} values: {vals}")
    for v in vals:
        if v < 1:
            raise ValueError(f"{name} must be >= 1, got {vals}")
        if v > _INT32_MAX:
            raise ValueError(f"{name} must be < 2**31, got {vals}")
    return tuple(vals)


def padding_spec(padding, n, cf):
    """Return ('SAME' | 'VALID', None) or ('EXPLICIT', ((before, after), ...)).

    Explicit padding is TF's list of N+2 [before, after] pairs in data_format order
    with [0, 0] at batch and channel (N spatial pairs are accepted too).
    """
    if isinstance(padding, str):
        mode = padding.upper()
        if mode in ("SAME", "VALID"):
            return mode, None
        raise ValueError(f"padding must be 'SAME', 'VALID' or a list of [before, after] "
                         f"pairs, got {padding!r}")
    if padding is None:
        raise ValueError("padding is required: 'SAME', 'VALID' or explicit pairs")
    try:
        pairs = [_as_int_list(p, "padding") for p in padding]
    except TypeError:
        raise TypeError(f"padding must be 'SAME', 'VALID' or a list of [before, after] "
                        f"int pairs, got {padding!r}") from None
    if any(len(p) != 2 for p in pairs) or len(pairs) not in (n, n + 2):
        raise ValueError(f"explicit padding must be {n + 2} [before, after] pairs (or "
                         f"{n} spatial pairs), got {padding!r}")
    if len(pairs) == n + 2:
        outer = (pairs[0], pairs[1]) if cf else (pairs[0], pairs[-1])
        if any(p != [0, 0] for p in outer):
            raise ValueError(f"explicit padding {pairs} must be [0, 0] at the batch and "
                             "channel positions")
        pairs = pairs[2:] if cf else pairs[1:-1]
    for p in pairs:
        if p[0] < 0 or p[1] < 0:
            raise ValueError(f"explicit padding must be >= 0, got {pairs}")
        if max(p) > _INT32_MAX:
            raise ValueError(f"explicit padding must be < 2**31, got {pairs}")
    return "EXPLICIT", tuple(tuple(p) for p in pairs)


# --------------------------------------------------------------------- sizes, one axis

def _eff(k, d):
    return (k - 1) * d + 1


def forward_size(big, k, s, d, mode, pads=(0, 0)):
    """Output size of a forward convolution along one axis, as TF computes it.

    Returns None where TF reports "computed output size would be negative".
    """
    if mode == "SAME":
        return (big + s - 1) // s
    num = big + (pads[0] + pads[1] if mode == "EXPLICIT" else 0) - _eff(k, d) + s
    out = abs(num) // s if num >= 0 else -(abs(num) // s)   # C's truncating division
    return out if out >= 0 else None


def same_pads(big, small, k, s, d):
    """TF's SAME split: total = max((small-1)*s + eff_k - big, 0), odd pixel at the end."""
    total = max((small - 1) * s + _eff(k, d) - big, 0)
    return total // 2, total - total // 2


def valid_big_range(small, k, s, d, mode, pads=(0, 0)):
    """(lo, hi): the big sizes whose forward convolution has ``small`` outputs (may be
    empty: lo > hi). Inverts forward_size exactly (C truncating division included)."""
    if mode == "SAME":
        return ((small - 1) * s + 1, small * s) if small > 0 else (0, 0)
    ptot = pads[0] + pads[1] if mode == "EXPLICIT" else 0
    base = _eff(k, d) - ptot - s       # num = big - base, trunc(num / s) == small
    if small > 0:
        lo, hi = small * s + base, small * s + s - 1 + base
    else:
        lo, hi = -(s - 1) + base, (s - 1) + base
    return max(lo, 0), hi


def valid_output_sizes(input_size, kernel_size, strides=1, padding="SAME", dilations=1):
    """Every output size a transposed convolution of ``input_size`` can have.

    Parameters
    ----------
    input_size : int or sequence of int
        Spatial size(s) of the transposed convolution's input.
    kernel_size, strides, dilations : int or sequence of int (one per axis)
    padding : 'SAME', 'VALID' or a list of (before, after) pairs, one per axis.

    Returns
    -------
    list of range (one per axis), or a single range for an int ``input_size``:
    the output sizes ``o`` whose forward convolution gives back ``input_size``
    (with stride 2 and SAME, an input of 3 allows 5 or 6).
    """
    scalar = isinstance(input_size, numbers.Integral)
    sizes = [_as_int(input_size, "input_size")] if scalar else _as_int_list(
        input_size, "input_size")
    n = len(sizes)
    k = spatial_ints(kernel_size, n, False, "kernel_size")
    s = spatial_ints(strides, n, False, "strides")
    d = spatial_ints(dilations, n, False, "dilations")
    mode, pads = padding_spec(padding, n, False)
    out = []
    for i in range(n):
        if sizes[i] < 0:
            raise ValueError(f"input_size must be >= 0, got {sizes}")
        lo, hi = valid_big_range(sizes[i], k[i], s[i], d[i], mode,
                                 pads[i] if pads else (0, 0))
        out.append(range(lo, hi + 1))
    return out[0] if scalar else out


def _fmt_sizes(sizes):
    return "x".join(str(v) for v in sizes)


def _fmt_ranges(ranges):
    """'7x7, 7x8, 8x7 or 8x8' for few combinations, else per-axis ranges."""
    if any(len(r) == 0 for r in ranges):
        return "none"
    count = 1
    for r in ranges:
        count *= len(r)
    if count <= 8:
        combos = [[]]
        for r in ranges:
            combos = [c + [v] for c in combos for v in r]
        texts = [_fmt_sizes(c) for c in combos]
        return texts[0] if len(texts) == 1 else ", ".join(texts[:-1]) + " or " + texts[-1]
    return " x ".join(f"{r.start}..{r.stop - 1}" for r in ranges)


# ---------------------------------------------------------------------- the geometry

class Geometry:
    """A validated convolution: sizes, padding and layout, ready for a kernel.

    Attributes: ``n`` (spatial rank), ``batch``, ``groups``, ``cb``/``cs`` (big/small
    channels per group), ``big``/``small``/``k``/``s``/``d`` (spatial tuples), ``pads``
    (tuple of (before, after)), ``cf`` (channels first).
    """

    __slots__ = ("n", "batch", "groups", "cb", "cs", "big", "small", "k", "s", "d",
                 "pads", "cf", "_kargs", "algo")

    def __init__(self, n, batch, groups, cb, cs, big, small, k, s, d, pads, cf):
        self.n, self.batch, self.groups, self.cb, self.cs = n, batch, groups, cb, cs
        self.big, self.small, self.k, self.s, self.d = big, small, k, s, d
        self.pads, self.cf = pads, cf
        self._kargs = None
        self.algo = None        # the driver's kernel choice, memoised by cdeconv._driver
        self._check_limits()

    def shape(self, side):
        """Array shape of the 'big' or 'small' side in this layout."""
        sp = self.big if side == "big" else self.small
        c = self.groups * (self.cb if side == "big" else self.cs)
        return (self.batch, c) + sp if self.cf else (self.batch,) + sp + (c,)

    def kernel_args(self):
        """The tuple src/_conv.pyx expects, every spatial tuple padded to 3-D."""
        if self._kargs is None:
            lead = (1,) * (3 - self.n)
            self._kargs = (self.batch, self.groups, self.cb, self.cs,
                           lead + self.small, lead + self.big, lead + self.k,
                           lead + self.s, lead + self.d,
                           (0,) * (3 - self.n) + tuple(p[0] for p in self.pads))
        return self._kargs

    def _check_limits(self):
        """BLAS takes C ints: every GEMM size and leading dimension must be < 2**31."""
        taps = math.prod(self.k)
        limits = {
            "kernel taps x output channels": self.groups * taps * self.cb,
            "channels": self.groups * max(self.cb, self.cs),
        }
        if self.batch:      # an empty batch runs no GEMM: image sizes do not matter
            limits["input pixels per image"] = math.prod(self.big)
            limits["output pixels per image"] = math.prod(self.small)
        for what, v in limits.items():
            if v > _INT32_MAX:
                raise ValueError(f"{what} = {v} exceeds the BLAS limit of 2**31 - 1 "
                                 f"(shapes {self.shape('big')} / {self.shape('small')})")


def _names(n):
    return _SPATIAL_NAMES[n]


# ----------------------------------------------------------------------------- memo

_MEMO = {}
_MEMO_MAX = 256


_ATOMS = frozenset({type(None), str, int, float, bool})


def _freeze(v):
    """A hashable, type-exact copy of an argument (so 2, 2.0, True and [2] stay apart and
    each still gets its own validation), or TypeError for what is not worth hashing
    (arrays, numpy scalars, other objects): those calls are simply not memoised.
    A list or tuple of exact ints (strides, sizes: the common case) is tagged "i" and
    kept as is; any other sequence is frozen element by element."""
    t = type(v)
    if t in _ATOMS:
        return (t, v)
    if t is list or t is tuple:
        for e in v:
            if type(e) is not int:
                return (t, tuple([_freeze(e) for e in v]))
        return (t, "i", tuple(v))
    raise TypeError


def memoised(build, n, x, w, *args, **kwargs):
    """``build(n, x, w, *args, **kwargs)`` (transposed_geometry or forward_geometry),
    memoised on the arrays' shapes and the frozen arguments: a repeated call (a layer
    run image after image) skips re-validation. Only successful results are kept (a bad
    call raises every time); Geometry objects are never mutated after construction
    except for the driver's memoised kernel choice, which depends on the same key."""
    try:
        # kwargs are argument names (strs) for the error messages, kept in call order:
        # a call site passes them in one order (another order is only a memo miss)
        names = tuple(kwargs.items())
        for _, v in names:
            if type(v) is not str:
                raise TypeError
        key = (build, n, x.shape, w.shape, _freeze(args), names)
    except TypeError:
        return build(n, x, w, *args, **kwargs)
    geom = _MEMO.get(key)
    if geom is None:
        geom = build(n, x, w, *args, **kwargs)
        if len(_MEMO) >= _MEMO_MAX:
            _MEMO.clear()
        _MEMO[key] = geom
    return geom


def transposed_geometry(n, x, w, output_shape, strides, padding, data_format, dilations,
                        groups=1, output_padding=None, shape_name="output_shape",
                        x_name="input", w_name="filters"):
    """Validate a transposed convolution of x (small side) with w -> Geometry.

    x : ndarray (batch, *spatial, in_c) or (batch, in_c, *spatial)
    w : ndarray (*kernel, out_c // groups, in_c)   (TF's transposed filter layout)
    output_shape : None (inferred), N spatial ints, or N+2 ints in data_format order
        (batch may be -1 or None).
    """
    cf = channels_first(data_format, n)
    fmt = data_format.upper()
    check_rank(x, n + 2, x_name, fmt)
    check_rank(w, n + 2, w_name, "(" + ", ".join(
        ["k" + a[0] for a in _names(n)] + ["out_channels // groups", "in_channels"]) + ")")
    groups = _groups(groups)
    batch = x.shape[0]
    in_c = x.shape[1] if cf else x.shape[-1]
    small = tuple(x.shape[2:] if cf else x.shape[1:-1])
    k = tuple(w.shape[:n])
    if min(k) == 0:
        raise ValueError(f"filters must have a non-empty kernel, got shape {w.shape}")
    if w.shape[-1] != in_c:
        raise ValueError(f"filters {w.shape} expect {w.shape[-1]} input channels (last "
                         f"axis) but input {x.shape} has {in_c} ({fmt})")
    if in_c == 0 or w.shape[-2] == 0:
        raise ValueError(f"channel counts must be > 0, got input {x.shape} and filters "
                         f"{w.shape}")
    if in_c % groups:
        raise ValueError(f"groups={groups} must divide the input channels ({in_c})")
    out_c = w.shape[-2] * groups
    s = spatial_ints(strides, n, cf, "strides")
    d = spatial_ints(dilations, n, cf, "dilations", default=1)
    mode, explicit = padding_spec(padding, n, cf)
    names = _names(n)

    def default_big(i):
        if mode == "SAME":
            return small[i] * s[i]
        ptot = sum(explicit[i]) if explicit else 0
        return max((small[i] - 1) * s[i] + _eff(k[i], d[i]) - ptot, 0)

    if output_shape is None:
        big = [default_big(i) for i in range(n)]
        if output_padding is not None:
            op = spatial_ints_nonneg(output_padding, n, "output_padding")
            for i in range(n):
                if op[i] >= max(s[i], d[i]):
                    raise ValueError(f"output_padding {list(op)} must be smaller than "
                                     f"the stride or the dilation ({list(s)}, {list(d)})")
            big = [big[i] + op[i] for i in range(n)]
    else:
        if output_padding is not None:
            raise ValueError("give output_shape or output_padding, not both")
        big = _output_spatial(output_shape, n, cf, batch, out_c, fmt, shape_name)
    big = tuple(big)

    pads = []
    bad = False
    for i in range(n):
        if mode == "SAME":
            pads.append(same_pads(big[i], small[i], k[i], s[i], d[i]))
        else:
            pads.append(explicit[i] if explicit else (0, 0))
        if forward_size(big[i], k[i], s[i], d[i], mode, pads[i]) != small[i]:
            bad = True
    if bad:
        ranges = [range(*(lambda lo_hi: (lo_hi[0], lo_hi[1] + 1))(
            valid_big_range(small[i], k[i], s[i], d[i], mode, pads[i] if explicit
                            else (0, 0)))) for i in range(n)]
        maps = []
        for i in range(n):
            f = forward_size(big[i], k[i], s[i], d[i], mode, pads[i])
            maps.append("?" if f is None else str(f))
        pad_txt = padding if isinstance(padding, str) else f"explicit {list(explicit)}"
        what = (f"{shape_name} {_fmt_shape(output_shape, big, batch, out_c, cf)}"
                if output_shape is not None else f"the output size {_fmt_sizes(big)}")
        raise ValueError(
            f"{what} with strides {_fmt_sizes(s)}, kernel {_fmt_sizes(k)}"
            + (f", dilations {_fmt_sizes(d)}" if max(d) > 1 else "")
            + f" and padding {pad_txt} maps to an {x_name} of {'x'.join(maps)} "
            f"({', '.join(names)}), got {_fmt_sizes(small)}; valid "
            f"{'output sizes' if shape_name == 'output_shape' else shape_name} for this "
            f"{x_name} are {_fmt_ranges(ranges)}")
    return Geometry(n, batch, groups, out_c // groups, in_c // groups, big, small, k, s,
                    d, tuple(pads), cf)


def forward_geometry(n, x, w, strides, padding, data_format, dilations, groups=None,
                     w_name="filters", strides_name="strides"):
    """Validate a forward convolution of x (big side) with w -> Geometry.

    w : (*kernel, in_c // groups, out_c), TF's forward filter layout; as in TF, a filter
    whose in_c divides the input channels means a grouped convolution.
    """
    cf = channels_first(data_format, n)
    fmt = data_format.upper()
    check_rank(x, n + 2, "input", fmt)
    check_rank(w, n + 2, w_name, "(" + ", ".join(
        ["k" + a[0] for a in _names(n)] + ["in_channels // groups", "out_channels"]) + ")")
    batch = x.shape[0]
    in_c = x.shape[1] if cf else x.shape[-1]
    big = tuple(x.shape[2:] if cf else x.shape[1:-1])
    k = tuple(w.shape[:n])
    if min(k) == 0:
        raise ValueError(f"{w_name} must have a non-empty kernel, got shape {w.shape}")
    cbg, out_c = w.shape[-2], w.shape[-1]
    if in_c == 0 or cbg == 0 or out_c == 0:
        raise ValueError(f"channel counts must be > 0, got input {x.shape} and {w_name} "
                         f"{w.shape}")
    if in_c % cbg:
        raise ValueError(f"{w_name} {w.shape} take {cbg} input channels per group, which "
                         f"must divide the input's {in_c} channels ({fmt})")
    inferred = in_c // cbg
    if groups is not None and _groups(groups) != inferred:
        raise ValueError(f"groups={groups} disagrees with input channels {in_c} / "
                         f"filter in_channels {cbg} = {inferred}")
    if out_c % inferred:
        raise ValueError(f"output channels {out_c} must be divisible by the group "
                         f"count {inferred} (input channels {in_c} / filter in_channels "
                         f"{cbg})")
    s = spatial_ints(strides, n, cf, strides_name)
    d = spatial_ints(dilations, n, cf, "dilations", default=1)
    mode, explicit = padding_spec(padding, n, cf)
    small, pads = [], []
    for i in range(n):
        p = explicit[i] if explicit else (0, 0)
        o = forward_size(big[i], k[i], s[i], d[i], mode, p)
        if o is None:
            raise ValueError(f"input {_names(n)[i]} {big[i]} is smaller than the "
                             f"dilated kernel ({_eff(k[i], d[i])}) with padding "
                             f"{padding if isinstance(padding, str) else list(p)}: "
                             "the output size would be negative")
        if mode == "SAME":
            p = same_pads(big[i], o, k[i], s[i], d[i])
        small.append(o)
        pads.append(p)
    return Geometry(n, batch, inferred, cbg, out_c // inferred, big, tuple(small), k, s,
                    d, tuple(pads), cf)


def spatial_ints_nonneg(value, n, name):
    if isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_)):
        vals = [operator.index(value)] * n
    else:
        vals = _as_int_list(value, name)
        if len(vals) == 1:
            vals = vals * n
        if len(vals) != n:
            raise ValueError(f"{name} must be an int or {n} ints, got {vals}")
    if min(vals) < 0:
        raise ValueError(f"{name} must be >= 0, got {vals}")
    return tuple(vals)


def _groups(groups):
    g = _as_int(groups, "groups")
    if g < 1:
        raise ValueError(f"groups must be >= 1, got {g}")
    return g


def _fmt_shape(output_shape, big, batch, out_c, cf):
    try:
        vals = list(output_shape)
        return "[" + ",".join("None" if v is None else str(int(v)) for v in vals) + "]"
    except Exception:
        return _fmt_sizes(big)


def _output_spatial(output_shape, n, cf, batch, out_c, fmt, name):
    """Spatial sizes from output_shape: N ints, or N+2 in data_format order whose batch
    may be -1/None and whose channel entry must equal the filter's output channels."""
    if isinstance(output_shape, np.ndarray) and output_shape.ndim != 1:
        raise TypeError(f"{name} must be a 1-D list of ints, got an array of shape "
                        f"{output_shape.shape}")
    if isinstance(output_shape, np.ndarray) and output_shape.dtype.kind in "iu":
        vals = output_shape.tolist()
    else:
        if isinstance(output_shape, (str, bytes)) or not hasattr(output_shape, "__iter__"):
            raise TypeError(f"{name} must be a list of {n + 2} ({fmt}) or {n} spatial "
                            f"ints, got {output_shape!r}")
        vals = list(output_shape)
    if len(vals) == n + 2:
        b, c = (vals[0], vals[1]) if cf else (vals[0], vals[-1])
        spatial = vals[2:] if cf else vals[1:-1]
        if b is not None:
            b = _as_int(b, name)
            if b != -1 and b != batch:
                raise ValueError(f"{name} batch {b} must equal the input's batch {batch} "
                                 "(or be -1 / None to take it from the input)")
        c = _as_int(c, name)
        if c != out_c:
            raise ValueError(f"{name} has {c} channels but filters give {out_c} output "
                             f"channels ({fmt})")
    elif len(vals) == n:
        spatial = vals
    else:
        raise ValueError(f"{name} must have {n + 2} entries ({fmt}) or {n} spatial "
                         f"entries, got {len(vals)}: {vals}")
    spatial = [_as_int(v, name) for v in spatial]
    for v in spatial:
        if v < 0:
            raise ValueError(f"{name} must be >= 0, got {vals}")
    return spatial
