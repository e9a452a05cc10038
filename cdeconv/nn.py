"""The TensorFlow-style ops: ``tf.nn.conv2d_transpose`` and friends on NumPy arrays.

Each op validates and normalises its arguments in ``cdeconv._geometry`` (errors name
the argument and say what would be valid), then runs one kernel through
``cdeconv._driver``. Arrays: float32 or float64 (the result has the input's dtype);
layouts NHWC and NCHW, both native.
"""
from . import _driver
from ._geometry import (as_float_array, check_out, check_same_dtype, forward_geometry,
                        transposed_geometry)

__all__ = ["conv2d_transpose", "conv2d_backprop_input", "conv2d"]


def _transpose_op(n, input, filters, output_shape, strides, padding, data_format,
                  dilations, groups, output_padding, out, names, shape_name):
    x = as_float_array(input, names[0])
    w = as_float_array(filters, names[1])
    dtype = check_same_dtype(**{names[0]: x, names[1]: w})
    geom = transposed_geometry(n, x, w, output_shape, strides, padding, data_format,
                               dilations, groups, output_padding, shape_name=shape_name,
                               x_name=names[0])
    y = check_out(out, geom.shape("big"), dtype, {names[0]: x, names[1]: w})
    return _driver.run(geom, x, w, y, transpose=True)


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
    groups : int, keyword-only (beyond TF: PyTorch/ONNX grouped transposed conv).
    output_padding : int or 2 ints, keyword-only (ONNX/PyTorch): added to the inferred
        output size instead of giving ``output_shape``.
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
    on the CPU (TensorFlow's CPU kernels refuse it).
    """
    return _transpose_op(2, input, filters, output_shape, strides, padding, data_format,
                         dilations, groups, output_padding, out, ("input", "filters"),
                         "output_shape")


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
    return _transpose_op(2, out_backprop, filter, input_sizes, strides, padding,
                         data_format, dilations, 1, None, out,
                         ("out_backprop", "filter"), "input_sizes")


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
    x = as_float_array(input, "input")
    w = as_float_array(filters, "filters")
    dtype = check_same_dtype(input=x, filters=w)
    geom = forward_geometry(2, x, w, strides, padding, data_format, dilations, groups)
    y = check_out(out, geom.shape("small"), dtype, {"input": x, "filters": w})
    return _driver.run(geom, x, w, y, transpose=False)
