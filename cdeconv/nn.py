"""The TensorFlow-style ops: ``tf.nn.conv2d_transpose`` and friends on NumPy arrays.

Each op validates and normalises its arguments in ``cdeconv._geometry`` (errors name
the argument and say what would be valid), then runs one kernel of the N-d core through
``cdeconv._driver``. 1-D, 2-D and 3-D ops share everything but their rank. Arrays:
float32 or float64 (the result has the input's dtype); channels-last (NWC / NHWC / NDHWC)
and channels-first (NCW / NCHW / NCDHW) layouts, both native.
"""
import numpy as np

from . import _driver, _pooling
from ._geometry import (_as_int, as_float_array, check_out, check_rank, check_same_dtype,
                        forward_geometry, forward_size, memoised, same_pads,
                        sizes_arg, spatial_ints, transposed_geometry)
from ._threads import get_num_threads

__all__ = ["conv1d_transpose", "conv2d_transpose", "conv3d_transpose",
           "conv2d_backprop_input", "conv2d_backprop_filter", "conv1d", "conv2d", "conv3d",
           "max_pool_with_argmax", "max_unpool"]

_LAYOUTS = {1: ("NWC", "NCW"), 2: ("NHWC", "NCHW"), 3: ("NDHWC", "NCDHW")}


# ------------------------------------------------------------------ the N-d kernels

def _transpose_nd(n, x, w, output_shape, strides, padding, data_format, dilations,
                  groups=1, output_padding=None, out=None, names=("input", "filters"),
                  shape_name="output_shape"):
    x = as_float_array(x, names[0])
    w = as_float_array(w, names[1])
    dtype = check_same_dtype(**{names[0]: x, names[1]: w})
    geom = memoised(transposed_geometry, n, x, w, output_shape, strides, padding,
                    data_format, dilations, groups, output_padding,
                    shape_name=shape_name, x_name=names[0], w_name=names[1])
    y = check_out(out, geom.shape("big"), dtype, {names[0]: x, names[1]: w})
    return _driver.run(geom, x, w, y, "transpose")


def _forward_nd(n, x, w, strides, padding, data_format, dilations, groups=None,
                out=None, strides_name="strides"):
    x = as_float_array(x, "input")
    w = as_float_array(w, "filters")
    dtype = check_same_dtype(input=x, filters=w)
    geom = memoised(forward_geometry, n, x, w, strides, padding, data_format, dilations,
                    groups, strides_name=strides_name)
    y = check_out(out, geom.shape("small"), dtype, {"input": x, "filters": w})
    return _driver.run(geom, x, w, y, "forward")


def _backprop_filter_nd(n, x, filter_sizes, dy, strides, padding, data_format,
                        dilations, out=None):
    x = as_float_array(x, "input")
    dy = as_float_array(dy, "out_backprop")
    dtype = check_same_dtype(input=x, out_backprop=dy)
    wshape = sizes_arg(filter_sizes, n + 2, "filter_sizes",
                       "(kernel..., in_channels // groups, out_channels)")
    geom = forward_geometry(n, x, wshape, strides, padding, data_format, dilations,
                            w_name="filter_sizes")
    expected = geom.shape("small")
    if dy.shape != expected:
        raise ValueError(f"out_backprop must have shape {list(expected)} (the output of "
                         f"the forward convolution of input {list(x.shape)} with a filter "
                         f"of shape {list(wshape.shape)}), got {list(dy.shape)}")
    dw = check_out(out, wshape.shape, dtype, {"input": x, "out_backprop": dy})
    return _driver.run(geom, x, dy, dw, "backprop_filter")


# ------------------------------------------------------------ transposed convolutions

def conv2d_transpose(input, filters, output_shape=None, strides=1, padding="SAME",
                     data_format="NHWC", dilations=None, *, groups=1,
                     output_padding=None, out=None, name=None):
    """Transposed 2-D convolution (the gradient of ``conv2d`` w.r.t. its input).

    Parameters
    ----------
    input : ndarray of shape (batch, height, width, in_channels) (NHWC) or
        (batch, in_channels, height, width) (NCHW); float32 or float64.
    filters : ndarray of shape (kh, kw, out_channels // groups, in_channels)
        TensorFlow's layout: the forward ``conv2d`` filter of the convolution being
        transposed.
    output_shape : sequence of 4 ints in ``data_format`` order (batch may be -1 or None:
        taken from ``input``), or 2 spatial ints, or None to infer it
        (SAME: ``in * stride``; VALID: ``(in - 1) * stride + (k - 1) * dilation + 1``).
        Every size whose forward convolution gives back the input size is accepted
        (see ``cdeconv.valid_output_sizes``); others raise ValueError listing the valid
        ones.
    strides, dilations : int, or 2 ints, or 4 ints in ``data_format`` order with 1 at
        batch and channel. Default dilation 1.
    padding : 'SAME', 'VALID', or explicit ``[[0, 0], [top, bottom], [left, right],
        [0, 0]]`` (in ``data_format`` order). SAME puts the odd pixel at the end, as TF.
    data_format : 'NHWC' (default) or 'NCHW'.
    groups : int, keyword-only (beyond TF: PyTorch/ONNX grouped transposed conv; input
        channels split into ``groups`` blocks, each giving out_channels // groups).
    output_padding : int or 2 ints, keyword-only (ONNX/PyTorch): added to the inferred
        output size instead of giving ``output_shape``; must be smaller than the stride
        or the dilation, and the result must map back to the input size.
    out : ndarray, optional: preallocated C-contiguous result of the right shape/dtype.
    name : ignored (accepted so TensorFlow code ports unchanged).

    Returns
    -------
    ndarray of shape ``output_shape`` and the input's dtype.

    See Also
    --------
    tf.nn.conv2d_transpose, conv2d_backprop_input (the same computation), conv2d.

    Notes
    -----
    NaN and Inf propagate as in TensorFlow (plain sums of products). NCHW runs natively
    on the CPU (TensorFlow's CPU kernels refuse it), and so does dilation > 1.
    """
    return _transpose_nd(2, input, filters, output_shape, strides, padding, data_format,
                         dilations, groups, output_padding, out)


def conv1d_transpose(input, filters, output_shape, strides, padding="SAME",
                     data_format="NWC", dilations=None, *, groups=1, output_padding=None,
                     out=None, name=None):
    """Transposed 1-D convolution (``tf.nn.conv1d_transpose``).

    input : (batch, width, in_channels) (NWC) or (batch, in_channels, width) (NCW);
    filters : (kw, out_channels // groups, in_channels); output_shape: 3 ints in
    ``data_format`` order (batch may be -1/None), 1 spatial int, or None (inferred).
    Other arguments as in ``conv2d_transpose``.
    """
    return _transpose_nd(1, input, filters, output_shape, strides, padding, data_format,
                         dilations, groups, output_padding, out)


def conv3d_transpose(input, filters, output_shape, strides, padding="SAME",
                     data_format="NDHWC", dilations=None, *, groups=1,
                     output_padding=None, out=None, name=None):
    """Transposed 3-D convolution (``tf.nn.conv3d_transpose``).

    input : (batch, depth, height, width, in_channels) (NDHWC) or NCDHW;
    filters : (kd, kh, kw, out_channels // groups, in_channels); output_shape: 5 ints in
    ``data_format`` order, 3 spatial ints, or None. Other arguments as in
    ``conv2d_transpose``.
    """
    return _transpose_nd(3, input, filters, output_shape, strides, padding, data_format,
                         dilations, groups, output_padding, out)


def conv2d_backprop_input(input_sizes, filter, out_backprop, strides, padding,
                          data_format="NHWC", dilations=None, *, out=None, name=None,
                          use_cudnn_on_gpu=None):
    """Gradient of ``conv2d`` w.r.t. its input (``tf.compat.v1.nn.conv2d_backprop_input``).

    Parameters
    ----------
    input_sizes : 4 ints (the shape of conv2d's input, in ``data_format`` order; batch
        may be -1/None) or 2 spatial ints.
    filter : ndarray (kh, kw, in_channels, out_channels): conv2d's filter.
    out_backprop : ndarray: the gradient w.r.t. conv2d's output.
    strides, padding, data_format, dilations : as in ``conv2d``.
    out : optional preallocated result. ``name`` / ``use_cudnn_on_gpu``: ignored.

    Returns
    -------
    ndarray of shape ``input_sizes``: the same numbers as
    ``conv2d_transpose(out_backprop, filter, input_sizes, strides, padding, ...)``.
    """
    return _transpose_nd(2, out_backprop, filter, input_sizes, strides, padding,
                         data_format, dilations, out=out,
                         names=("out_backprop", "filter"), shape_name="input_sizes")


def conv2d_backprop_filter(input, filter_sizes, out_backprop, strides, padding,
                           data_format="NHWC", dilations=None, *, out=None, name=None,
                           use_cudnn_on_gpu=None):
    """Gradient of ``conv2d`` w.r.t. its filter (``tf.compat.v1.nn.conv2d_backprop_filter``).

    Parameters
    ----------
    input : ndarray: conv2d's input (NHWC or NCHW).
    filter_sizes : 4 ints (kh, kw, in_channels // groups, out_channels): the filter's
        shape (a filter whose in_channels divides the input's means a grouped conv).
    out_backprop : ndarray: the gradient w.r.t. conv2d's output; its shape must be the
        forward output's.
    strides, padding, data_format, dilations : as in ``conv2d``.

    Returns
    -------
    ndarray of shape ``filter_sizes``. An empty ``input`` or ``out_backprop`` (batch 0)
    gives zeros, never uninitialised memory.
    """
    return _backprop_filter_nd(2, input, filter_sizes, out_backprop, strides, padding,
                               data_format, dilations, out)


# -------------------------------------------------------------- forward convolutions

def conv2d(input, filters, strides, padding, data_format="NHWC", dilations=None, *,
           groups=None, out=None, name=None):
    """2-D convolution (cross-correlation, as ``tf.nn.conv2d``), by im2col + GEMM.

    Parameters
    ----------
    input : ndarray (batch, height, width, in_channels) (NHWC) or NCHW.
    filters : ndarray (kh, kw, in_channels // groups, out_channels). As in TF, a filter
        whose in_channels divides the input's channels means a grouped convolution.
    strides, dilations : int, 2 ints or 4 ints in ``data_format`` order.
    padding : 'SAME', 'VALID' or explicit pairs (as in ``conv2d_transpose``).
    groups : optional int, keyword-only; must agree with the channel counts.
    out : optional preallocated result. ``name``: ignored.

    Returns
    -------
    ndarray (batch, out_height, out_width, out_channels) (or NCHW), the input's dtype.
    """
    return _forward_nd(2, input, filters, strides, padding, data_format, dilations,
                       groups, out)


def conv1d(input, filters, stride, padding, data_format="NWC", dilations=None, *,
           groups=None, out=None, name=None):
    """1-D convolution (``tf.nn.conv1d``; note TF's argument name ``stride``).

    input : (batch, width, in_channels) (NWC) or NCW; filters : (kw, in_channels //
    groups, out_channels). Other arguments as in ``conv2d``.
    """
    return _forward_nd(1, input, filters, stride, padding, data_format, dilations,
                       groups, out, strides_name="stride")


def conv3d(input, filters, strides, padding, data_format="NDHWC", dilations=None, *,
           groups=None, out=None, name=None):
    """3-D convolution (``tf.nn.conv3d``).

    input : (batch, depth, height, width, in_channels) (NDHWC) or NCDHW;
    filters : (kd, kh, kw, in_channels // groups, out_channels).
    """
    return _forward_nd(3, input, filters, strides, padding, data_format, dilations,
                       groups, out)


# ------------------------------------------------------------ pooling with switches

def _pool_window(value, name):
    """ksize / strides of a 2-D pool: an int, 2 ints, or 4 ints [1, h, w, 1] (NHWC)."""
    return spatial_ints(value, 2, False, name)


def max_pool_with_argmax(input, ksize, strides, padding, include_batch_in_index=False,
                         *, name=None):
    """Max pooling that also returns where each maximum was (``tf.nn.max_pool_with_argmax``).

    Parameters
    ----------
    input : ndarray (batch, height, width, channels), NHWC, float32 or float64.
    ksize, strides : int, 2 ints, or 4 ints ``[1, kh, kw, 1]``.
    padding : 'SAME' or 'VALID' (TF's rules; SAME windows never lie wholly in padding).
    include_batch_in_index : bool. The argmax of an element is its flattened position
        ``((b * height + y) * width + x) * channels + c`` in ``input``, the ``b`` term only
        when this is True (TensorFlow's convention).

    Returns
    -------
    (output, argmax) : the pooled values (input dtype) and int64 switches, both
        (batch, out_height, out_width, channels). Ties go to the first maximum in the
        window (row by row), as in TensorFlow's CPU kernel; so does NaN (a NaN is the
        result only when it comes first in its window).
    """
    x = as_float_array(input, "input")
    check_rank(x, 4, "input", "NHWC (batch, height, width, channels)")
    k = _pool_window(ksize, "ksize")
    s = _pool_window(strides, "strides")
    if not isinstance(padding, str) or padding.upper() not in ("SAME", "VALID"):
        raise ValueError(f"padding must be 'SAME' or 'VALID' for max_pool_with_argmax, "
                         f"got {padding!r}")
    mode = padding.upper()
    if not isinstance(include_batch_in_index, (bool, np.bool_)):
        raise TypeError(f"include_batch_in_index must be a bool, got "
                        f"{include_batch_in_index!r}")
    n, h, w, c = x.shape
    out_hw, pads = [], []
    for i, size in enumerate((h, w)):
        o = forward_size(size, k[i], s[i], 1, mode)
        if o is None:
            raise ValueError(f"input {('height', 'width')[i]} {size} is smaller than the "
                             f"window {k[i]} with VALID padding")
        out_hw.append(o)
        pads.append(same_pads(size, o, k[i], s[i], 1)[0] if mode == "SAME" else 0)
    y = check_out(None, (n, *out_hw, c), x.dtype, {})
    arg = np.empty((n, *out_hw, c), np.int64)
    if y.size:
        _pooling.max_pool_with_argmax(x, y, arg, k, s, tuple(pads),
                                      bool(include_batch_in_index), get_num_threads())
    return y, arg


def max_unpool(pooled, argmax, output_shape, include_batch_in_index=False):
    """Scatter pooled values back to their switches (the DeconvNet "unpooling").

    Parameters
    ----------
    pooled : ndarray (batch, out_height, out_width, channels), float32/float64.
    argmax : integer ndarray of the same shape, from ``max_pool_with_argmax`` (same
        ``include_batch_in_index``).
    output_shape : 4 ints NHWC (batch may be -1 / None) or 2 spatial ints: the shape of
        the pooled input.

    Returns
    -------
    ndarray of ``output_shape``: zeros except at each switch, which holds its pooled
    value; values whose switches coincide (overlapping windows) add up, as
    ``tf.scatter_nd`` does. An index outside its image raises ValueError.
    """
    p = as_float_array(pooled, "pooled")
    check_rank(p, 4, "pooled", "NHWC (batch, height, width, channels)")
    if not isinstance(argmax, np.ndarray):
        argmax = np.asarray(argmax)
    if argmax.dtype.kind not in "iu" or argmax.dtype == np.bool_:
        raise TypeError(f"argmax must be an integer array, got dtype {argmax.dtype}")
    if argmax.shape != p.shape:
        raise ValueError(f"argmax must have the shape of pooled {list(p.shape)}, got "
                         f"{list(argmax.shape)}")
    if not isinstance(include_batch_in_index, (bool, np.bool_)):
        raise TypeError(f"include_batch_in_index must be a bool, got "
                        f"{include_batch_in_index!r}")
    n, c = p.shape[0], p.shape[3]
    vals = list(output_shape) if hasattr(output_shape, "__iter__") and not isinstance(
        output_shape, (str, bytes)) else None
    if vals is None or len(vals) not in (2, 4):
        raise ValueError(f"output_shape must be 4 ints (NHWC) or 2 spatial ints, got "
                         f"{output_shape!r}")
    if len(vals) == 4:
        b0 = vals[0]
        if b0 is not None and _as_int(b0, "output_shape") not in (-1, n):
            raise ValueError(f"output_shape batch {b0} must equal pooled's batch {n}")
        if _as_int(vals[3], "output_shape") != c:
            raise ValueError(f"output_shape has {vals[3]} channels, pooled has {c}")
        vals = vals[1:3]
    h, w = (_as_int(v, "output_shape") for v in vals)
    if h < 0 or w < 0:
        raise ValueError(f"output_shape must be >= 0, got {output_shape!r}")
    out = check_out(None, (n, h, w, c), p.dtype, {})
    if out.size == 0:
        if p.size:     # switches into an empty image are all out of range
            raise ValueError(f"argmax cannot point into an empty output_shape "
                             f"{[n, h, w, c]} (pooled has {p.size} values)")
        return out
    a = np.ascontiguousarray(argmax, dtype=np.int64).reshape(n, -1)
    bad = _pooling.max_unpool(p.reshape(n, -1), a, out.reshape(n, -1),
                              bool(include_batch_in_index), get_num_threads())
    if bad >= 0:
        b, i = divmod(bad, a.shape[1])
        lo = b * h * w * c if include_batch_in_index else 0
        raise ValueError(f"argmax[{b}] holds {a[b, i]} at flat position {i}, outside "
                         f"image {b} of output_shape {[n, h, w, c]} (valid: {lo} .. "
                         f"{lo + h * w * c - 1}; include_batch_in_index="
                         f"{bool(include_batch_in_index)})")
    return out
