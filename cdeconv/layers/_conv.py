"""Convolution layers: ``Conv2DTranspose`` and ``Conv2D`` (Keras 3 constructors and
weight layouts) on ``cdeconv.conv2d_transpose`` / ``conv2d`` and their gradients, plus
Keras' output-size rule and the checkerboard diagnostic."""
import warnings

import numpy as np

from .. import nn as ops
from ._activations import get_activation
from ._layer import (Layer, init_config, init_spec, normalize_data_format,
                    normalize_padding, normalize_tuple, reg_config)
from ._regularizers import get_regularizer

__all__ = ["Conv2DTranspose", "Conv2D", "deconv_output_length", "conv_output_length",
           "checkerboard"]


def deconv_output_length(input_length, kernel_size, padding, output_padding=None,
                         stride=1, dilation=1):
    """Output length of a transposed convolution, exactly as Keras computes it.

    Keras' ``deconv_output_length`` (``keras.src.utils.conv_utils``; Keras 3's
    ``compute_conv_transpose_output_shape`` gives the same numbers)::

        k = (kernel_size - 1) * dilation + 1
        output_padding None:  'valid' -> input * stride + max(k - stride, 0)
                              'same'  -> input * stride
        otherwise:            (input - 1) * stride + k - 2 * pad + output_padding,
                              pad = k // 2 for 'same', 0 for 'valid'

    Parameters
    ----------
    input_length : int or None
        None gives None (unknown size).
    kernel_size, stride, dilation : int
    padding : {'valid', 'same'}
    output_padding : int or None

    Returns
    -------
    int or None

    Examples
    --------
    >>> deconv_output_length(28, 3, "same", None, 2)
    56
    >>> deconv_output_length(4, 3, "valid", 1, 2)
    10
    """
    if input_length is None:
        return None
    padding = normalize_padding(padding)
    k = (kernel_size - 1) * dilation + 1
    if output_padding is None:
        if padding == "valid":
            return input_length * stride + max(k - stride, 0)
        return input_length * stride
    pad = k // 2 if padding == "same" else 0
    return (input_length - 1) * stride + k - 2 * pad + output_padding


def conv_output_length(input_length, kernel_size, padding, stride=1, dilation=1):
    """Output length of a (forward) convolution as Keras/TF compute it: ``'same'``
    -> ``ceil(input / stride)``, ``'valid'`` -> ``ceil((input - k + 1) / stride)``."""
    if input_length is None:
        return None
    k = (kernel_size - 1) * dilation + 1
    if normalize_padding(padding) == "same":
        return -(-input_length // stride)
    return -(-(input_length - k + 1) // stride)


def checkerboard(kernel_size, strides, dilation_rate=1, warn=False):
    """How unevenly a transposed convolution covers its output (Odena et al. 2016).

    Counts, for each position of one stride period of the output, how many kernel taps
    reach it (per axis, then the outer product over the axes). All counts equal means
    every output pixel is a sum of equally many terms; unequal counts (an undilated
    kernel not divisible by the stride, e.g. 3 with stride 2) make the checkerboard
    artifacts of transposed-convolution upsampling.

    Parameters
    ----------
    kernel_size, strides, dilation_rate : int or tuple of int
        Per spatial axis (ints apply to every axis; the rank is the longest tuple's,
        2 if all are ints).
    warn : bool, optional
        Issue a ``UserWarning`` when the coverage is uneven.

    Returns
    -------
    ndarray of int, shape ``strides``
        Taps per output phase.

    Examples
    --------
    >>> checkerboard(3, 2).tolist()
    [[4, 2], [2, 1]]
    >>> bool((checkerboard(4, 2) == 4).all())
    True
    """
    args = [kernel_size, strides, dilation_rate]
    rank = max([len(a) for a in args if not isinstance(a, (int, np.integer))] or [2])
    ks = normalize_tuple(kernel_size, rank, "kernel_size")
    ss = normalize_tuple(strides, rank, "strides")
    ds = normalize_tuple(dilation_rate, rank, "dilation_rate")
    grid = np.ones((), int)
    for k, s, d in zip(ks, ss, ds):
        counts = np.bincount([(t * d) % s for t in range(k)], minlength=s)
        grid = np.multiply.outer(grid, counts)
    if warn and grid.min() != grid.max():
        warnings.warn(f"kernel {ks} with strides {ss} and dilation {ds} covers the output "
                      f"unevenly ({grid.min()} to {grid.max()} taps per pixel): expect "
                      "checkerboard artifacts; use a kernel size divisible by the stride, "
                      "the 'icnr' initializer, or UpSampling2D + Conv2D", stacklevel=2)
    return grid


class _Conv(Layer):
    """Shared parts of Conv2D and Conv2DTranspose."""
    weight_names = ("kernel", "bias")

    def __init__(self, filters, kernel_size, strides=(1, 1), padding="valid",
                 data_format=None, dilation_rate=(1, 1), activation=None, use_bias=True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 kernel_constraint=None, bias_constraint=None, trainable=True, name=None,
                 seed=None, **kwargs):
        super().__init__(trainable=trainable, name=name,
                         activity_regularizer=activity_regularizer, **kwargs)
        if isinstance(filters, bool) or not isinstance(filters, (int, np.integer)) \
                or filters < 1:
            raise ValueError(f"filters must be a positive int, got {filters!r}")
        self.filters = int(filters)
        self.kernel_size = normalize_tuple(kernel_size, 2, "kernel_size")
        self.strides = normalize_tuple(strides, 2, "strides")
        self.padding = normalize_padding(padding)
        self.data_format = normalize_data_format(data_format)
        self.dilation_rate = normalize_tuple(dilation_rate, 2, "dilation_rate")
        self.activation = get_activation(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = init_spec(kernel_initializer)
        self.bias_initializer = init_spec(bias_initializer)
        self.kernel_regularizer = get_regularizer(kernel_regularizer)
        self.bias_regularizer = get_regularizer(bias_regularizer)
        # constraints only act in Keras' optimizer step: recorded, not applied
        self.kernel_constraint, self.bias_constraint = kernel_constraint, bias_constraint
        self.seed = seed
        if not self.use_bias:
            self.weight_names = ("kernel",)

    @property
    def activation_name(self):
        """The activation's Keras name (``'linear'`` for none)."""
        return self.activation.name

    @property
    def _fmt(self):
        return "NCHW" if self.data_format == "channels_first" else "NHWC"

    @property
    def _channel_axis(self):
        return 1 if self.data_format == "channels_first" else -1

    def _spatial(self, shape):
        return tuple(shape[2:4]) if self.data_format == "channels_first" else \
            tuple(shape[1:3])

    def _input_channels(self, input_shape):
        input_shape = tuple(input_shape)
        if len(input_shape) != 4:
            raise ValueError(f"{self.name} expects 4-D inputs ({self.data_format}), got "
                             f"shape {input_shape}")
        c = input_shape[self._channel_axis]
        if c is None:
            raise ValueError(f"{self.name}: the channel axis of the input must be known, "
                             f"got shape {input_shape}")
        return int(c)

    def _make_weights(self, kernel_shape):
        rng = np.random.default_rng(self.seed)
        self.kernel = self._init_weight(self.kernel_initializer, kernel_shape, rng)
        if self.use_bias:
            self.bias = self._init_weight(self.bias_initializer, (self.filters,), rng)

    def _check_input(self, shape):
        c = self._input_channels(shape)
        if c != self.in_channels:
            raise ValueError(f"{self.name} was built for {self.in_channels} input "
                             f"channels, got input of shape {tuple(shape)}")

    def _add_bias(self, z):
        if not self.use_bias:
            return z
        shape = (1, self.filters, 1, 1) if self.data_format == "channels_first" else \
            (1, 1, 1, self.filters)
        return z + self.bias.reshape(shape)

    def call(self, x):
        return self.activation(self._add_bias(self._linear(x)))

    def _forward(self, x):
        z = self._add_bias(self._linear(x))
        y = self.activation(z)
        return y, (x, z, y)

    def _backward_pre(self, cache, dy):
        x, z, y = cache
        return x, self.activation.backward(z, y, dy)

    def _bias_grad(self, dz):
        axes = (0, 2, 3) if self.data_format == "channels_first" else (0, 1, 2)
        return dz.sum(axis=axes).astype(self.dtype)

    def get_config(self):
        cfg = super().get_config()
        cfg.update(filters=self.filters, kernel_size=list(self.kernel_size),
                   strides=list(self.strides), padding=self.padding,
                   data_format=self.data_format, dilation_rate=list(self.dilation_rate),
                   activation=self.activation.name, use_bias=self.use_bias,
                   kernel_initializer=init_config(self.kernel_initializer),
                   bias_initializer=init_config(self.bias_initializer),
                   kernel_regularizer=reg_config(self.kernel_regularizer),
                   bias_regularizer=reg_config(self.bias_regularizer))
        if self.seed is not None:
            cfg["seed"] = self.seed
        return cfg


class Conv2DTranspose(_Conv):
    """Keras' ``Conv2DTranspose`` ("deconvolution") on ``cdeconv.conv2d_transpose``.

    Parameters
    ----------
    filters : int
        Output channels.
    kernel_size, strides, dilation_rate : int or 2 ints
    padding : {'valid', 'same'}, optional
    output_padding : int, 2 ints or None, optional
        Extra rows/columns at the bottom/right of the output; each must be smaller than
        its stride (Keras' rule). The output size is :func:`deconv_output_length`.
    data_format : {'channels_last', 'channels_first'}, optional
    activation : str, optional
        A Keras activation name (see :data:`cdeconv.layers.ACTIVATIONS`).
    use_bias : bool, optional
    kernel_initializer, bias_initializer : str, dict, callable or array, optional
        Keras names or configs, ``'bilinear'``, ``'icnr'``, a callable
        ``f(shape, dtype, rng)`` or an array.
    kernel_regularizer, bias_regularizer, activity_regularizer : optional
        ``'l1'``, ``'l2'``, ``'l1_l2'``, a Keras config or a
        :class:`~cdeconv.layers.Regularizer`.
    kernel_constraint, bias_constraint : optional
        Recorded in the config but not applied (they act in Keras' optimizer).
    trainable : bool, optional
    name : str, optional
    seed : int, optional
        Seed for the initializers (cdeconv's addition; Keras seeds each initializer).
    dtype : str, optional
        ``'float32'`` (default) or ``'float64'``.

    Notes
    -----
    The kernel has Keras' and TensorFlow's layout ``(kh, kw, filters, in_channels)``;
    the output is ``tf.nn.conv2d_transpose(x, kernel, output_shape, strides, padding)``
    with ``output_shape`` from Keras' rule, which is how Keras on TensorFlow computes
    it (TF's SAME crop: the odd pixel at the end). Unlike Keras, strides > 1 together
    with dilation > 1 are accepted. ``output_padding=0`` with ``'same'`` and an even
    (dilated) kernel is refused: its output maps back to one input row fewer, and
    TensorFlow refuses it too.

    Examples
    --------
    >>> import numpy as np
    >>> layer = Conv2DTranspose(32, 3, strides=2, padding="same")
    >>> layer(np.zeros((1, 28, 28, 1), np.float32)).shape
    (1, 56, 56, 32)
    >>> [w.shape for w in layer.get_weights()]
    [(3, 3, 32, 1), (32,)]
    """

    def __init__(self, filters, kernel_size, strides=(1, 1), padding="valid",
                 output_padding=None, data_format=None, dilation_rate=(1, 1), **kwargs):
        super().__init__(filters, kernel_size, strides, padding, data_format,
                         dilation_rate, **kwargs)
        if output_padding is None:
            self.output_padding = None
        else:
            self.output_padding = normalize_tuple(output_padding, 2, "output_padding",
                                                  allow_zero=True)
            for i, (op, s) in enumerate(zip(self.output_padding, self.strides)):
                if op >= s:
                    raise ValueError(f"output_padding must be smaller than strides in "
                                     f"every dimension, got output_padding "
                                     f"{self.output_padding} with strides {self.strides}")
                k = (self.kernel_size[i] - 1) * self.dilation_rate[i] + 1
                if self.padding == "same" and k % 2 == 0 and op == 0:
                    raise ValueError(
                        f"output_padding {self.output_padding} with padding 'same' and "
                        f"the even (dilated) kernel size {k} gives an output of "
                        "(input - 1) * stride rows, which maps back to one input row "
                        "fewer (TensorFlow rejects it too); use output_padding >= 1 or "
                        "None")

    def build(self, input_shape):
        self.in_channels = self._input_channels(input_shape)
        self._make_weights(self.kernel_size + (self.filters, self.in_channels))

    def _output_hw(self, hw):
        op = self.output_padding or (None, None)
        return tuple(deconv_output_length(hw[i], self.kernel_size[i], self.padding, op[i],
                                          self.strides[i], self.dilation_rate[i])
                     for i in range(2))

    def compute_output_shape(self, input_shape):
        self._input_channels(input_shape)
        oh, ow = self._output_hw(self._spatial(input_shape))
        if self.data_format == "channels_first":
            return (input_shape[0], self.filters, oh, ow)
        return (input_shape[0], oh, ow, self.filters)

    def _linear(self, x):
        self._check_input(x.shape)
        return ops.conv2d_transpose(x, self.kernel, list(self._output_hw(
            self._spatial(x.shape))), self.strides, self.padding.upper(), self._fmt,
            self.dilation_rate)

    def _backward(self, cache, dy):
        x, dz = self._backward_pre(cache, dy)
        pad = self.padding.upper()
        # y = conv2d_transpose(x, W) is conv2d_backprop_input: its input gradient is
        # the forward convolution, its filter gradient conv2d_backprop_filter with
        # the roles of input and output exchanged
        dx = ops.conv2d(dz, self.kernel, self.strides, pad, self._fmt, self.dilation_rate)
        dw = ops.conv2d_backprop_filter(dz, self.kernel.shape, x, self.strides, pad,
                                        self._fmt, self.dilation_rate)
        return dx, [dw] + ([self._bias_grad(dz)] if self.use_bias else [])

    def checkerboard(self, warn=False):
        """:func:`checkerboard` of this layer's kernel, strides and dilation."""
        return checkerboard(self.kernel_size, self.strides, self.dilation_rate, warn)

    def get_config(self):
        cfg = super().get_config()
        cfg["output_padding"] = None if self.output_padding is None else \
            list(self.output_padding)
        return cfg


class Conv2D(_Conv):
    """Keras' ``Conv2D`` on ``cdeconv.conv2d``.

    Same arguments as :class:`Conv2DTranspose` (without ``output_padding``) plus
    ``groups``. Kernel layout ``(kh, kw, in_channels // groups, filters)``; output
    sizes :func:`conv_output_length`.
    """

    def __init__(self, filters, kernel_size, strides=(1, 1), padding="valid",
                 data_format=None, dilation_rate=(1, 1), groups=1, **kwargs):
        super().__init__(filters, kernel_size, strides, padding, data_format,
                         dilation_rate, **kwargs)
        if isinstance(groups, bool) or not isinstance(groups, (int, np.integer)) \
                or groups < 1:
            raise ValueError(f"groups must be a positive int, got {groups!r}")
        self.groups = int(groups)
        if self.filters % self.groups:
            raise ValueError(f"groups={self.groups} must divide filters={self.filters}")

    def build(self, input_shape):
        self.in_channels = self._input_channels(input_shape)
        if self.in_channels % self.groups:
            raise ValueError(f"groups={self.groups} must divide the input channels "
                             f"({self.in_channels})")
        self._make_weights(self.kernel_size + (self.in_channels // self.groups,
                                               self.filters))

    def compute_output_shape(self, input_shape):
        self._input_channels(input_shape)
        hw = self._spatial(input_shape)
        out = [conv_output_length(hw[i], self.kernel_size[i], self.padding,
                                  self.strides[i], self.dilation_rate[i]) for i in range(2)]
        if any(v is not None and v < 1 for v in out):
            raise ValueError(f"{self.name}: input of spatial size {hw} is smaller than the "
                             f"(dilated) kernel with padding 'valid'")
        if self.data_format == "channels_first":
            return (input_shape[0], self.filters, *out)
        return (input_shape[0], *out, self.filters)

    def _linear(self, x):
        self._check_input(x.shape)
        return ops.conv2d(x, self.kernel, self.strides, self.padding.upper(), self._fmt,
                          self.dilation_rate, groups=self.groups)

    def _backward(self, cache, dy):
        x, dz = self._backward_pre(cache, dy)
        pad = self.padding.upper()
        dx = ops.conv2d_transpose(dz, self.kernel, list(x.shape), self.strides, pad,
                                  self._fmt, self.dilation_rate, groups=self.groups)
        dw = ops.conv2d_backprop_filter(x, self.kernel.shape, dz, self.strides, pad,
                                        self._fmt, self.dilation_rate)
        return dx, [dw] + ([self._bias_grad(dz)] if self.use_bias else [])

    def get_config(self):
        cfg = super().get_config()
        cfg["groups"] = self.groups
        return cfg

