"""Slow, obviously-correct NumPy oracles: the reference for tests, asv and debugging.

They take the public ops' arguments (arguments are normalised by ``cdeconv._geometry``,
the one place TF's conventions are written) and compute in float64 with plain strided
slices, one kernel tap at a time, never sharing code with the compiled kernels:

    transposed:  out[b, z*, :] += x[b, y, :] @ W[tap]^T   with z = y*stride - pad + tap*dil
    forward:     out[b, y, :]  += xpad[b, y*stride + tap*dil, :] @ W[tap]

Also the source articles' own algorithm (``conv2d_transpose_zero_insertion``: insert
zeros, then a stride-1 convolution with the kernel rotated by 180 degrees), a second,
differently-derived oracle for the transposed convolution (PERF.md: a test reference
only, it wastes most of its multiplications).
"""
import itertools

import numpy as np

from ._geometry import (as_float_array, check_same_dtype, forward_geometry, sizes_arg,
                        transposed_geometry)

__all__ = ["conv2d_transpose", "conv2d_backprop_input", "conv2d_backprop_filter",
           "conv2d", "conv_transpose_nd", "conv_nd", "conv_backprop_filter_nd",
           "conv2d_transpose_zero_insertion"]


def _to_last(a, cf):
    return np.moveaxis(a, 1, -1) if cf else a


def _from_last(a, cf):
    return np.moveaxis(a, -1, 1) if cf else a


def _transpose_core(x, w, geom):
    """Channels-last float64 transposed convolution per an (already valid) geometry."""
    n, G, cb, cs = geom.n, geom.groups, geom.cb, geom.cs
    batch = x.shape[0]
    pads = [p[0] for p in geom.pads]
    # a canvas that holds every tap's contribution, then crop [pad, pad + big)
    full = [max((x.shape[1 + i] - 1) * geom.s[i] + (geom.k[i] - 1) * geom.d[i] + 1,
                pads[i] + geom.big[i]) for i in range(n)]
    canvas = np.zeros((batch, *full, G * cb))
    if x.size == 0:   # nothing to scatter: zeros (or an empty array)
        taps = []
    else:
        taps = itertools.product(*[range(k) for k in geom.k])
    for tap in taps:
        wt = w[tap]                                   # (cb, G * cs)
        for g in range(G):
            contrib = x[..., g * cs:(g + 1) * cs] @ wt[:, g * cs:(g + 1) * cs].T
            idx = tuple(slice(tap[i] * geom.d[i],
                              tap[i] * geom.d[i] + (x.shape[1 + i] - 1) * geom.s[i] + 1,
                              geom.s[i]) for i in range(n))
            canvas[(slice(None),) + idx + (slice(g * cb, (g + 1) * cb),)] += contrib
    crop = tuple(slice(pads[i], pads[i] + geom.big[i]) for i in range(n))
    return canvas[(slice(None),) + crop]


def _forward_core(x, w, geom):
    """Channels-last float64 forward convolution per an (already valid) geometry."""
    n, G, cb, cs = geom.n, geom.groups, geom.cb, geom.cs
    batch = x.shape[0]
    xp = np.pad(x, [(0, 0)] + [tuple(p) for p in geom.pads] + [(0, 0)])
    out = np.zeros((batch, *geom.small, G * cs))
    if min(geom.small, default=1) == 0 or batch == 0:
        return out
    for tap in itertools.product(*[range(k) for k in geom.k]):
        wt = w[tap]                                   # (cb, G * cs)
        idx = tuple(slice(tap[i] * geom.d[i],
                          tap[i] * geom.d[i] + (geom.small[i] - 1) * geom.s[i] + 1,
                          geom.s[i]) for i in range(n))
        patch = xp[(slice(None),) + idx]
        for g in range(G):
            out[..., g * cs:(g + 1) * cs] += (patch[..., g * cb:(g + 1) * cb]
                                              @ wt[:, g * cs:(g + 1) * cs])
    return out


def _backprop_filter_core(x, dy, geom):
    """Channels-last float64 filter gradient: dW[tap] = sum x[.., z(tap), cb] dy[.., cs]."""
    n, G, cb, cs = geom.n, geom.groups, geom.cb, geom.cs
    xp = np.pad(x, [(0, 0)] + [tuple(p) for p in geom.pads] + [(0, 0)])
    dw = np.zeros(tuple(geom.k) + (cb, G * cs))
    if dy.size == 0 or x.size == 0:
        return dw
    rows_dy = dy.reshape(-1, G * cs)
    for tap in itertools.product(*[range(k) for k in geom.k]):
        idx = tuple(slice(tap[i] * geom.d[i],
                          tap[i] * geom.d[i] + (geom.small[i] - 1) * geom.s[i] + 1,
                          geom.s[i]) for i in range(n))
        patch = xp[(slice(None),) + idx].reshape(-1, G * cb)
        for g in range(G):
            dw[tap][:, g * cs:(g + 1) * cs] = (patch[:, g * cb:(g + 1) * cb].T
                                               @ rows_dy[:, g * cs:(g + 1) * cs])
    return dw


def conv_backprop_filter_nd(n, input, filter_sizes, out_backprop, strides, padding,
                            data_format=None, dilations=None):
    """Reference N-d filter gradient with the public arguments."""
    data_format = data_format or {1: "NWC", 2: "NHWC", 3: "NDHWC"}[n]
    x = as_float_array(input, "input")
    dy = as_float_array(out_backprop, "out_backprop")
    dtype = check_same_dtype(input=x, out_backprop=dy)
    wshape = sizes_arg(filter_sizes, n + 2, "filter_sizes", "")
    geom = forward_geometry(n, x, wshape, strides, padding, data_format, dilations,
                            w_name="filter_sizes")
    assert dy.shape == geom.shape("small"), (dy.shape, geom.shape("small"))
    dw = _backprop_filter_core(_to_last(x, geom.cf).astype(np.float64),
                               _to_last(dy, geom.cf).astype(np.float64), geom)
    return dw.astype(dtype)


def conv_transpose_nd(n, input, filters, output_shape=None, strides=1, padding="SAME",
                      data_format=None, dilations=None, groups=1, output_padding=None):
    """Reference N-d transposed convolution (N = 1, 2, 3) with the public arguments."""
    data_format = data_format or {1: "NWC", 2: "NHWC", 3: "NDHWC"}[n]
    x = as_float_array(input, "input")
    w = as_float_array(filters, "filters")
    dtype = check_same_dtype(input=x, filters=w)
    geom = transposed_geometry(n, x, w, output_shape, strides, padding, data_format,
                               dilations, groups, output_padding)
    y = _transpose_core(_to_last(x, geom.cf).astype(np.float64), w.astype(np.float64),
                        geom)
    return np.ascontiguousarray(_from_last(y, geom.cf)).astype(dtype)


def conv_nd(n, input, filters, strides, padding, data_format=None, dilations=None,
            groups=None):
    """Reference N-d forward convolution with the public arguments."""
    data_format = data_format or {1: "NWC", 2: "NHWC", 3: "NDHWC"}[n]
    x = as_float_array(input, "input")
    w = as_float_array(filters, "filters")
    dtype = check_same_dtype(input=x, filters=w)
    geom = forward_geometry(n, x, w, strides, padding, data_format, dilations, groups)
    y = _forward_core(_to_last(x, geom.cf).astype(np.float64), w.astype(np.float64), geom)
    return np.ascontiguousarray(_from_last(y, geom.cf)).astype(dtype)


def conv2d_transpose(input, filters, output_shape=None, strides=1, padding="SAME",
                     data_format="NHWC", dilations=None, groups=1, output_padding=None):
    return conv_transpose_nd(2, input, filters, output_shape, strides, padding,
                             data_format, dilations, groups, output_padding)


def conv2d_backprop_input(input_sizes, filter, out_backprop, strides, padding,
                          data_format="NHWC", dilations=None):
    return conv_transpose_nd(2, out_backprop, filter, input_sizes, strides, padding,
                             data_format, dilations)


def conv2d_backprop_filter(input, filter_sizes, out_backprop, strides, padding,
                           data_format="NHWC", dilations=None):
    return conv_backprop_filter_nd(2, input, filter_sizes, out_backprop, strides,
                                   padding, data_format, dilations)


def conv2d(input, filters, strides, padding, data_format="NHWC", dilations=None,
           groups=None):
    return conv_nd(2, input, filters, strides, padding, data_format, dilations, groups)


def conv2d_transpose_zero_insertion(input, filters, output_shape, strides, padding):
    """The source articles' algorithm, NHWC, dilation 1, groups 1 (003_*, section 7).

    Insert ``stride - 1`` zeros between input pixels, pad by ``k - 1 - pad_before``
    (before) and enough after, then run a stride-1 *correlation* with the kernel
    rotated by 180 degrees and its channel axes swapped; crop to ``output_shape``.
    """
    x = as_float_array(input, "input")
    dtype = x.dtype
    x = x.astype(np.float64)
    w = as_float_array(filters, "filters").astype(np.float64)
    geom = transposed_geometry(2, x, w, output_shape, strides, padding, "NHWC", 1)
    (sh, sw), (kh, kw) = geom.s, geom.k
    b, ih, iw, _ = x.shape
    up = np.zeros((b, (ih - 1) * sh + 1, (iw - 1) * sw + 1, x.shape[-1]))
    up[:, ::sh, ::sw, :] = x                                   # fill_zeros
    pt, pl = geom.pads[0][0], geom.pads[1][0]
    oh, ow = geom.big
    pb = max(oh + pt - up.shape[1], 0)
    pr = max(ow + pl - up.shape[2], 0)
    up = np.pad(up, [(0, 0), (kh - 1 - min(pt, kh - 1), pb), (kw - 1 - min(pl, kw - 1), pr),
                     (0, 0)])
    # crop the extra top/left rows if pad_before >= k (rare; keeps the oracle general)
    up = up[:, max(pt - (kh - 1), 0):, max(pl - (kw - 1), 0):, :]
    rot = w[::-1, ::-1].transpose(0, 1, 3, 2)                  # (kh, kw, in_c, out_c)
    out = np.zeros((b, oh, ow, w.shape[2]))
    for i in range(kh):
        for j in range(kw):
            out += up[:, i:i + oh, j:j + ow, :] @ rot[i, j]
    return out.astype(dtype)
