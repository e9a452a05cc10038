"""The TensorFlow-style ops: ``tf.nn.conv2d_transpose`` and friends on NumPy arrays.

Each op validates and normalises its arguments in ``cdeconv._geometry`` (errors name
the argument and say what would be valid), then runs one kernel of the N-d core through
``cdeconv._driver``. 1-D, 2-D and 3-D ops share everything but their rank. Arrays:
float32 or float64 (the result has the input's dtype); channels-last (NWC / NHWC / NDHWC)
and channels-first (NCW / NCHW / NCDHW) layouts, both native.
"""
from . import _driver
from ._geometry import (as_float_array, check_out, check_same_dtype, forward_geometry,
                        sizes_arg, transposed_geometry)

__all__ = ["conv1d_transpose", "conv2d_transpose", "conv3d_transpose",
           "conv2d_backprop_input", "conv2d_backprop_filter", "conv1d", "conv2d", "conv3d"]

_LAYOUTS = {1: ("NWC", "NCW"), 2: ("NHWC", "NCHW"), 3: ("NDHWC", "NCDHW")}


# ------------------------------------------------------------------ the N-d kernels

def _transpose_nd(n, x, w, output_shape, strides, padding, data_format, dilations,
                  groups=1, output_padding=None, out=None, names=("input", "filters"),
                  shape_name="output_shape"):
    x = as_float_array(x, names[0])
    w = as_float_array(w, names[1])
    dtype = check_same_dtype(**{names[0]: x, names[1]: w})
    geom = transposed_geometry(n, x, w, output_shape, strides, padding, data_format,
                               dilations, groups, output_padding, shape_name=shape_name,
                               x_name=names[0])
    y = check_out(out, geom.shape("big"), dtype, {names[0]: x, names[1]: w})
    return _driver.run(geom, x, w, y, "transpose")


def _forward_nd(n, x, w, strides, padding, data_format, dilations, groups=None,
                out=None, strides_name="strides"):
    x = as_float_array(x, "input")
    w = as_float_array(w, "filters")
    dtype = check_same_dtype(input=x, filters=w)
    geom = forward_geometry(n, x, w, strides, padding, data_format, dilations, groups,
                            strides_name=strides_name)
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
