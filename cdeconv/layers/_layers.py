"""Keras-compatible layers on cdeconv's public ops (weights in Keras' own layout)."""
import math

import numpy as np

from .. import nn as ops
from ._base import Layer, get_activation, get_initializer, get_regularizer

__all__ = ["Conv2DTranspose", "Conv2D", "Dense", "Flatten", "Reshape", "Activation",
           "ReLU", "LeakyReLU", "BatchNormalization", "UpSampling2D", "MaxPooling2D",
           "Concatenate", "Add", "InputLayer", "deconv_output_length"]


def _pair(v, name):
    if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
        return (int(v), int(v))
    v = tuple(int(a) for a in v)
    if len(v) != 2:
        raise ValueError(f"{name} must be an int or 2 ints, got {v}")
    return v


def _data_format(df):
    df = "channels_last" if df is None else str(df).lower()
    if df not in ("channels_last", "channels_first"):
        raise ValueError(f"data_format must be 'channels_last' or 'channels_first', got "
                         f"{df!r}")
    return df


def _padding(p):
    p = str(p).lower()
    if p not in ("valid", "same"):
        raise ValueError(f"padding must be 'valid' or 'same', got {p!r}")
    return p


def deconv_output_length(length, kernel, padding, output_padding, stride, dilation):
    """Keras' ``deconv_output_length``: the output size of Conv2DTranspose."""
    if length is None:
        return None
    k = kernel + (kernel - 1) * (dilation - 1)
    if output_padding is None:
        if padding == "valid":
            return length * stride + max(k - stride, 0)
        return length * stride
    pad = k // 2 if padding == "same" else 0
    return (length - 1) * stride + k - 2 * pad + output_padding


class _ConvBase(Layer):
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
        self.kernel_size = _pair(kernel_size, "kernel_size")
        self.strides = _pair(strides, "strides")
        self.padding = _padding(padding)
        self.data_format = _data_format(data_format)
        self.dilation_rate = _pair(dilation_rate, "dilation_rate")
        self.activation_name, self._act, self._dact = get_activation(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = kernel_initializer
        self.bias_initializer = bias_initializer
        self.kernel_regularizer = get_regularizer(kernel_regularizer)
        self.bias_regularizer = get_regularizer(bias_regularizer)
        self.seed = seed
        if kernel_constraint is not None or bias_constraint is not None:
            raise ValueError("kernel/bias constraints are not supported")
        if not self.use_bias:
            self.weight_names = ("kernel",)

    @property
    def _fmt(self):
        return "NCHW" if self.data_format == "channels_first" else "NHWC"

    def _channels(self, shape):
        return shape[1] if self.data_format == "channels_first" else shape[-1]

    def _make_weights(self, kernel_shape):
        rng = np.random.default_rng(self.seed)
        self.kernel = get_initializer(self.kernel_initializer, self.seed)(
            kernel_shape, self.dtype, rng)
        if self.use_bias:
            self.bias = get_initializer(self.bias_initializer)((self.filters,), self.dtype,
                                                               rng)

    def _bias_shape(self):
        return (1, self.filters, 1, 1) if self.data_format == "channels_first" else \
            (1, 1, 1, self.filters)

    def _finish(self, z):
        if self.use_bias:
            z = z + self.bias.reshape(self._bias_shape())
        return self._act(z), z

    def _grad_pre(self, dy):
        x, z, y = self._cached()
        return x, dy * self._dact(z, y)

    def _bias_grad(self, dz):
        axes = (0, 2, 3) if self.data_format == "channels_first" else (0, 1, 2)
        return dz.sum(axis=axes).astype(self.dtype)

    def forward(self, x):
        x = self._as_input(x)
        self._maybe_build(x)
        y, z = self._finish(self._linear(x))
        self._cache = (x, z, y)
        return y

    def call(self, x):
        return self._finish(self._linear(x))[0]

    def _check_input(self, x):
        if x.ndim != 4:
            raise ValueError(f"{self.name} expects 4-D input ({self.data_format}), got "
                             f"shape {x.shape}")
        if self._channels(x.shape) != self._in_channels:
            raise ValueError(f"{self.name} was built for {self._in_channels} input "
                             f"channels, got input of shape {x.shape}")

    def get_config(self):
        cfg = super().get_config()
        cfg.update(filters=self.filters, kernel_size=self.kernel_size,
                   strides=self.strides, padding=self.padding,
                   data_format=self.data_format, dilation_rate=self.dilation_rate,
                   activation=self.activation_name, use_bias=self.use_bias,
                   kernel_initializer=_init_config(self.kernel_initializer),
                   bias_initializer=_init_config(self.bias_initializer),
                   kernel_regularizer=_reg_config(self.kernel_regularizer),
                   bias_regularizer=_reg_config(self.bias_regularizer))
        return cfg


def _init_config(init):
    return init if isinstance(init, (str, dict)) else None


def _reg_config(reg):
    return None if reg is None else reg.get_config()


class Conv2DTranspose(_ConvBase):
    """Keras' ``Conv2DTranspose``: kernel ``(kh, kw, filters, in_channels)`` (Keras'
    and TF's layout), output sizes exactly as Keras computes them (including
    ``output_padding``), computed by ``cdeconv.conv2d_transpose``."""

    def __init__(self, filters, kernel_size, strides=(1, 1), padding="valid",
                 output_padding=None, data_format=None, dilation_rate=(1, 1), **kwargs):
        super().__init__(filters, kernel_size, strides, padding, data_format,
                         dilation_rate, **kwargs)
        self.output_padding = None if output_padding is None else _pair(output_padding,
                                                                       "output_padding")
        if self.output_padding is not None:
            for op, s, d in zip(self.output_padding, self.strides, self.dilation_rate):
                if op >= max(s, d):
                    raise ValueError(f"output_padding {self.output_padding} must be "
                                     f"smaller than the strides {self.strides}")

    def build(self, input_shape):
        self._in_channels = self._channels(input_shape)
        self._make_weights(self.kernel_size + (self.filters, self._in_channels))
        self.built = True

    def _out_hw(self, hw):
        ops_ = self.output_padding or (None, None)
        return [deconv_output_length(hw[i], self.kernel_size[i], self.padding, ops_[i],
                                     self.strides[i], self.dilation_rate[i])
                for i in range(2)]

    def compute_output_shape(self, input_shape):
        cf = self.data_format == "channels_first"
        hw = input_shape[2:4] if cf else input_shape[1:3]
        oh, ow = self._out_hw(hw)
        return (input_shape[0], self.filters, oh, ow) if cf else \
            (input_shape[0], oh, ow, self.filters)

    def _linear(self, x):
        self._check_input(x)
        hw = x.shape[2:4] if self.data_format == "channels_first" else x.shape[1:3]
        return ops.conv2d_transpose(x, self.kernel, self._out_hw(hw), self.strides,
                                    self.padding.upper(), self._fmt, self.dilation_rate)

    def backward(self, dy):
        x, dz = self._grad_pre(dy)
        pad = self.padding.upper()
        dx = ops.conv2d(dz, self.kernel, self.strides, pad, self._fmt, self.dilation_rate)
        dw = ops.conv2d_backprop_filter(dz, self.kernel.shape, x, self.strides, pad,
                                        self._fmt, self.dilation_rate)
        grads = [dw] + ([self._bias_grad(dz)] if self.use_bias else [])
        return dx, grads

    def get_config(self):
        cfg = super().get_config()
        cfg["output_padding"] = self.output_padding
        return cfg


class Conv2D(_ConvBase):
    """Keras' ``Conv2D`` (kernel ``(kh, kw, in_channels // groups, filters)``)."""

    def __init__(self, filters, kernel_size, strides=(1, 1), padding="valid",
                 data_format=None, dilation_rate=(1, 1), groups=1, **kwargs):
        super().__init__(filters, kernel_size, strides, padding, data_format,
                         dilation_rate, **kwargs)
        self.groups = int(groups)

    def build(self, input_shape):
        self._in_channels = self._channels(input_shape)
        if self._in_channels % self.groups or self.filters % self.groups:
            raise ValueError(f"groups={self.groups} must divide the input channels "
                             f"({self._in_channels}) and filters ({self.filters})")
        self._make_weights(self.kernel_size + (self._in_channels // self.groups,
                                               self.filters))
        self.built = True

    def compute_output_shape(self, input_shape):
        cf = self.data_format == "channels_first"
        hw = input_shape[2:4] if cf else input_shape[1:3]
        out = []
        for i in range(2):
            eff = (self.kernel_size[i] - 1) * self.dilation_rate[i] + 1
            n = hw[i]
            out.append(None if n is None else
                       -(-n // self.strides[i]) if self.padding == "same"
                       else (n - eff) // self.strides[i] + 1)
        return (input_shape[0], self.filters, *out) if cf else \
            (input_shape[0], *out, self.filters)

    def _linear(self, x):
        self._check_input(x)
        return ops.conv2d(x, self.kernel, self.strides, self.padding.upper(), self._fmt,
                          self.dilation_rate, groups=self.groups)

    def backward(self, dy):
        x, dz = self._grad_pre(dy)
        pad = self.padding.upper()
        dx = ops.conv2d_transpose(dz, self.kernel, x.shape, self.strides, pad, self._fmt,
                                  self.dilation_rate, groups=self.groups)
        dw = ops.conv2d_backprop_filter(x, self.kernel.shape, dz, self.strides, pad,
                                        self._fmt, self.dilation_rate)
        return dx, [dw] + ([self._bias_grad(dz)] if self.use_bias else [])

    def get_config(self):
        cfg = super().get_config()
        cfg["groups"] = self.groups
        return cfg


class Dense(Layer):
    """Keras' ``Dense`` on the last axis: kernel ``(in, units)``, bias ``(units,)``."""
    weight_names = ("kernel", "bias")

    def __init__(self, units, activation=None, use_bias=True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 kernel_constraint=None, bias_constraint=None, seed=None, **kwargs):
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        self.units = int(units)
        self.activation_name, self._act, self._dact = get_activation(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer, self.bias_initializer = kernel_initializer, \
            bias_initializer
        self.kernel_regularizer = get_regularizer(kernel_regularizer)
        self.bias_regularizer = get_regularizer(bias_regularizer)
        self.seed = seed
        if not self.use_bias:
            self.weight_names = ("kernel",)

    def build(self, input_shape):
        rng = np.random.default_rng(self.seed)
        self.kernel = get_initializer(self.kernel_initializer, self.seed)(
            (input_shape[-1], self.units), self.dtype, rng)
        if self.use_bias:
            self.bias = get_initializer(self.bias_initializer)((self.units,), self.dtype,
                                                               rng)
        self.built = True

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.units,)

    def _z(self, x):
        if x.shape[-1] != self.kernel.shape[0]:
            raise ValueError(f"{self.name} expects {self.kernel.shape[0]} input features, "
                             f"got shape {x.shape}")
        z = x @ self.kernel
        return z + self.bias if self.use_bias else z

    def call(self, x):
        return self._act(self._z(x))

    def forward(self, x):
        x = self._as_input(x)
        self._maybe_build(x)
        z = self._z(x)
        y = self._act(z)
        self._cache = (x, z, y)
        return y

    def backward(self, dy):
        x, z, y = self._cached()
        dz = dy * self._dact(z, y)
        x2, dz2 = x.reshape(-1, x.shape[-1]), dz.reshape(-1, self.units)
        grads = [(x2.T @ dz2).astype(self.dtype)]
        if self.use_bias:
            grads.append(dz2.sum(0).astype(self.dtype))
        return dz @ self.kernel.T, grads

    def get_config(self):
        cfg = super().get_config()
        cfg.update(units=self.units, activation=self.activation_name,
                   use_bias=self.use_bias,
                   kernel_initializer=_init_config(self.kernel_initializer),
                   bias_initializer=_init_config(self.bias_initializer),
                   kernel_regularizer=_reg_config(self.kernel_regularizer),
                   bias_regularizer=_reg_config(self.bias_regularizer))
        return cfg


class _Stateless(Layer):
    def forward(self, x):
        x = self._as_input(x)
        self._maybe_build(x)
        y = self.call(x)
        self._cache = (x, y)
        return y


class Flatten(_Stateless):
    def __init__(self, data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.data_format = _data_format(data_format)

    def call(self, x):
        if self.data_format == "channels_first" and x.ndim > 2:
            x = np.moveaxis(x, 1, -1)
        return x.reshape(x.shape[0], -1)

    def backward(self, dy):
        x, _ = self._cached()
        if self.data_format == "channels_first" and x.ndim > 2:
            return np.moveaxis(dy.reshape(np.moveaxis(x, 1, -1).shape), -1, 1), []
        return dy.reshape(x.shape), []

    def compute_output_shape(self, s):
        return (s[0], math.prod(s[1:]))

    def get_config(self):
        return {**super().get_config(), "data_format": self.data_format}


class Reshape(_Stateless):
    def __init__(self, target_shape, **kwargs):
        super().__init__(**kwargs)
        self.target_shape = tuple(int(v) for v in target_shape)

    def call(self, x):
        return x.reshape((x.shape[0],) + self.target_shape)

    def backward(self, dy):
        x, _ = self._cached()
        return dy.reshape(x.shape), []

    def compute_output_shape(self, s):
        return (s[0],) + self.target_shape

    def get_config(self):
        return {**super().get_config(), "target_shape": list(self.target_shape)}


class Activation(_Stateless):
    def __init__(self, activation, **kwargs):
        super().__init__(**kwargs)
        self.activation_name, self._act, self._dact = get_activation(activation)

    def call(self, x):
        return self._act(x)

    def backward(self, dy):
        x, y = self._cached()
        return dy * self._dact(x, y), []

    def get_config(self):
        return {**super().get_config(), "activation": self.activation_name}


class ReLU(_Stateless):
    """Keras' ReLU(max_value=None, negative_slope=0, threshold=0)."""

    def __init__(self, max_value=None, negative_slope=0.0, threshold=0.0, **kwargs):
        super().__init__(**kwargs)
        self.max_value = None if max_value is None else float(max_value)
        self.negative_slope, self.threshold = float(negative_slope), float(threshold)

    def call(self, x):
        y = np.where(x >= self.threshold, x,
                     self.negative_slope * (x - self.threshold)).astype(x.dtype)
        return y if self.max_value is None else np.minimum(y, self.max_value)

    def backward(self, dy):
        x, _ = self._cached()
        g = np.where(x >= self.threshold, 1.0, self.negative_slope)
        if self.max_value is not None:
            g = np.where(x >= self.max_value, 0.0, g)
        return (dy * g).astype(dy.dtype), []

    def get_config(self):
        return {**super().get_config(), "max_value": self.max_value,
                "negative_slope": self.negative_slope, "threshold": self.threshold}


class LeakyReLU(_Stateless):
    """Keras 3's LeakyReLU(negative_slope=0.3) (Keras 2's ``alpha`` is accepted)."""

    def __init__(self, negative_slope=0.3, alpha=None, **kwargs):
        super().__init__(**kwargs)
        self.negative_slope = float(alpha if alpha is not None else negative_slope)

    def call(self, x):
        return np.where(x >= 0, x, self.negative_slope * x).astype(x.dtype)

    def backward(self, dy):
        x, _ = self._cached()
        return (dy * np.where(x >= 0, 1.0, self.negative_slope)).astype(dy.dtype), []

    def get_config(self):
        return {**super().get_config(), "negative_slope": self.negative_slope}


class BatchNormalization(Layer):
    """Inference-mode batch normalisation (moving statistics), Keras' weight order
    ``[gamma, beta, moving_mean, moving_variance]``; ``fold_into`` merges it into the
    preceding convolution or Dense layer."""

    def __init__(self, axis=-1, momentum=0.99, epsilon=1e-3, center=True, scale=True,
                 beta_initializer="zeros", gamma_initializer="ones",
                 moving_mean_initializer="zeros", moving_variance_initializer="ones",
                 beta_regularizer=None, gamma_regularizer=None, beta_constraint=None,
                 gamma_constraint=None, synchronized=False, renorm=False,
                 renorm_clipping=None, renorm_momentum=0.99, **kwargs):
        super().__init__(**kwargs)
        if renorm:
            raise ValueError("BatchNormalization(renorm=True) is not supported")
        self.axis = axis[0] if isinstance(axis, (list, tuple)) else int(axis)
        self.momentum, self.epsilon = float(momentum), float(epsilon)
        self.center, self.scale = bool(center), bool(scale)
        self.inits = dict(beta=beta_initializer, gamma=gamma_initializer,
                          moving_mean=moving_mean_initializer,
                          moving_variance=moving_variance_initializer)
        self.gamma_regularizer = get_regularizer(gamma_regularizer)
        self.beta_regularizer = get_regularizer(beta_regularizer)
        self.weight_names = tuple(n for n, on in (("gamma", scale), ("beta", center),
                                                  ("moving_mean", True),
                                                  ("moving_variance", True)) if on)

    def build(self, input_shape):
        c = input_shape[self.axis]
        for n in ("gamma", "beta", "moving_mean", "moving_variance"):
            setattr(self, n, get_initializer(self.inits[n])((c,), self.dtype))
        self.built = True

    def _shape(self, x):
        s = [1] * x.ndim
        s[self.axis] = -1
        return s

    def _scale_shift(self):
        g = self.gamma if self.scale else np.ones_like(self.moving_mean)
        b = self.beta if self.center else np.zeros_like(self.moving_mean)
        a = g / np.sqrt(self.moving_variance + self.epsilon)
        return a.astype(self.dtype), (b - a * self.moving_mean).astype(self.dtype)

    def call(self, x):
        a, c = self._scale_shift()
        return x * a.reshape(self._shape(x)) + c.reshape(self._shape(x))

    def backward(self, dy):
        x = self._cached()
        inv = 1 / np.sqrt(self.moving_variance + self.epsilon)
        axes = tuple(i for i in range(x.ndim) if i != self.axis % x.ndim)
        xhat = (x - self.moving_mean.reshape(self._shape(x))) * inv.reshape(self._shape(x))
        g = self.gamma if self.scale else 1.0
        dx = dy * (g * inv).reshape(self._shape(x)) if self.scale else \
            dy * inv.reshape(self._shape(x))
        grads = {"gamma": (dy * xhat).sum(axes), "beta": dy.sum(axes)}
        out = [grads[n].astype(self.dtype) for n in self.weight_names if n in grads]
        out += [np.zeros_like(self.moving_mean), np.zeros_like(self.moving_variance)]
        return dx.astype(dy.dtype), out

    def fold_into(self, layer):
        """Fold this (inference) normalisation into the preceding Conv2D,
        Conv2DTranspose or Dense: returns a new layer with the same outputs."""
        a, c = self._scale_shift()
        new = type(layer).from_config({**layer.get_config(), "use_bias": True,
                                       "name": layer.name + "_bn_folded"})
        new.build(_built_input_shape(layer))
        w = layer.kernel.copy()
        if isinstance(layer, Conv2DTranspose):
            w = w * a[None, None, :, None]
        else:
            w = w * a                    # Conv2D (.., filters), Dense (in, units)
        b = layer.bias if layer.use_bias else np.zeros_like(a)
        new.set_weights([w, a * b + c])
        if layer.activation_name != "linear":
            raise ValueError(f"cannot fold: {layer.name} applies {layer.activation_name} "
                             "before the normalisation")
        return new

    def get_config(self):
        return {**super().get_config(), "axis": self.axis, "momentum": self.momentum,
                "epsilon": self.epsilon, "center": self.center, "scale": self.scale}


def _built_input_shape(layer):
    if isinstance(layer, Dense):
        return (None, layer.kernel.shape[0])
    c = layer._in_channels
    return (None, c, 1, 1) if layer.data_format == "channels_first" else (None, 1, 1, c)


class UpSampling2D(_Stateless):
    """Nearest-neighbour upsampling by integer factors (Keras' default)."""

    def __init__(self, size=(2, 2), data_format=None, interpolation="nearest", **kwargs):
        super().__init__(**kwargs)
        self.size = _pair(size, "size")
        self.data_format = _data_format(data_format)
        if interpolation != "nearest":
            raise ValueError("only interpolation='nearest' is supported")

    def _axes(self):
        return (2, 3) if self.data_format == "channels_first" else (1, 2)

    def call(self, x):
        a, b = self._axes()
        return np.repeat(np.repeat(x, self.size[0], axis=a), self.size[1], axis=b)

    def backward(self, dy):
        x, _ = self._cached()
        a, b = self._axes()
        s = list(dy.shape)
        s[a:a + 1] = [x.shape[a], self.size[0]]
        d = dy.reshape(s).sum(axis=a + 1)
        s = list(d.shape)
        s[b:b + 1] = [x.shape[b], self.size[1]]
        return d.reshape(s).sum(axis=b + 1), []

    def get_config(self):
        return {**super().get_config(), "size": self.size, "data_format": self.data_format}


class MaxPooling2D(_Stateless):
    """Keras' MaxPooling2D on ``cdeconv.max_pool_with_argmax``; keeps the switches of
    its last call in ``self.switches`` (for DeconvNet unpooling and the backward)."""

    def __init__(self, pool_size=(2, 2), strides=None, padding="valid", data_format=None,
                 **kwargs):
        super().__init__(**kwargs)
        self.pool_size = _pair(pool_size, "pool_size")
        self.strides = self.pool_size if strides is None else _pair(strides, "strides")
        self.padding = _padding(padding)
        self.data_format = _data_format(data_format)
        self.switches = None

    def call(self, x):
        cf = self.data_format == "channels_first"
        xl = np.ascontiguousarray(np.moveaxis(x, 1, -1)) if cf else x
        y, self.switches = ops.max_pool_with_argmax(xl, self.pool_size, self.strides,
                                                    self.padding.upper())
        return np.ascontiguousarray(np.moveaxis(y, -1, 1)) if cf else y

    def backward(self, dy):
        x, _ = self._cached()
        cf = self.data_format == "channels_first"
        dyl = np.ascontiguousarray(np.moveaxis(dy, 1, -1)) if cf else dy
        shape = np.moveaxis(x, 1, -1).shape if cf else x.shape
        dx = ops.max_unpool(dyl, self.switches, shape)
        return (np.moveaxis(dx, -1, 1) if cf else dx), []

    def get_config(self):
        return {**super().get_config(), "pool_size": self.pool_size,
                "strides": self.strides, "padding": self.padding,
                "data_format": self.data_format}


class Concatenate(_Stateless):
    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        self.axis = int(axis)

    def call(self, xs):
        return np.concatenate(xs, axis=self.axis)

    def backward(self, dy):
        xs, _ = self._cached()
        cuts = np.cumsum([x.shape[self.axis] for x in xs])[:-1]
        return np.split(dy, cuts, axis=self.axis), []

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}


class Add(_Stateless):
    def call(self, xs):
        out = xs[0]
        for x in xs[1:]:
            out = out + x
        return out

    def backward(self, dy):
        xs, _ = self._cached()
        return [dy for _ in xs], []


class InputLayer(_Stateless):
    """Keras' InputLayer (shape bookkeeping only)."""

    def __init__(self, shape=None, batch_shape=None, input_shape=None, sparse=None,
                 ragged=None, **kwargs):
        super().__init__(**kwargs)
        self.batch_shape = batch_shape or ((None,) + tuple(shape or input_shape or ()))

    def call(self, x):
        return x

    def backward(self, dy):
        return dy, []
