"""Pooling, upsampling, padding and cropping layers (Keras 3 semantics)."""
import numpy as np

from .. import nn as ops
from ._layer import Layer, normalize_data_format, normalize_padding, normalize_tuple
from ._conv import conv_output_length

__all__ = ["MaxPooling2D", "GlobalAveragePooling2D", "UpSampling2D", "ZeroPadding2D",
           "Cropping2D"]


class _Spatial(Layer):
    """A layer on 4-D images with a ``data_format``."""

    def __init__(self, data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.data_format = normalize_data_format(data_format)

    @property
    def _hw_axes(self):
        return (2, 3) if self.data_format == "channels_first" else (1, 2)

    def _check4(self, shape):
        if len(shape) != 4:
            raise ValueError(f"{self.name} expects 4-D inputs ({self.data_format}), got "
                             f"shape {tuple(shape)}")

    def _with_hw(self, shape, hw):
        shape = list(shape)
        a, b = self._hw_axes
        shape[a], shape[b] = hw
        return tuple(shape)

    def _nhwc(self, x):
        return np.ascontiguousarray(np.moveaxis(x, 1, -1)) if \
            self.data_format == "channels_first" else x

    def _from_nhwc(self, x):
        return np.ascontiguousarray(np.moveaxis(x, -1, 1)) if \
            self.data_format == "channels_first" else x

    def get_config(self):
        return {**super().get_config(), "data_format": self.data_format}


class MaxPooling2D(_Spatial):
    """Keras' ``MaxPooling2D`` on ``cdeconv.max_pool_with_argmax``.

    Keeps the switches (argmax) of its last call in ``self.switches``, in
    ``tf.nn.max_pool_with_argmax``'s default convention: per image, the flattened
    position ``(y * width + x) * channels + c`` of each maximum in the (channels_last)
    input; :attr:`global_switches` adds the batch term ``b * height * width *
    channels`` (``include_batch_in_index=True``). Ties go to the first maximum in the
    window, as TensorFlow's CPU kernel. ``backward`` routes each gradient to its switch
    (``cdeconv.max_unpool``; overlapping windows add up).
    """

    def __init__(self, pool_size=(2, 2), strides=None, padding="valid", data_format=None,
                 **kwargs):
        super().__init__(data_format=data_format, **kwargs)
        self.pool_size = normalize_tuple(pool_size, 2, "pool_size")
        self.strides = self.pool_size if strides is None else normalize_tuple(
            strides, 2, "strides")
        self.padding = normalize_padding(padding)
        self.switches = None
        self._switch_shape = None

    def compute_output_shape(self, input_shape):
        self._check4(input_shape)
        hw = [input_shape[a] for a in self._hw_axes]
        out = [conv_output_length(hw[i], self.pool_size[i], self.padding,
                                  self.strides[i]) for i in range(2)]
        if any(v is not None and v < 1 for v in out):
            raise ValueError(f"{self.name}: input of spatial size {tuple(hw)} is smaller "
                             f"than the pool {self.pool_size} with padding 'valid'")
        return self._with_hw(input_shape, out)

    def _pool(self, x):
        self._check4(x.shape)
        xl = self._nhwc(x)
        y, switches = ops.max_pool_with_argmax(xl, self.pool_size, self.strides,
                                               self.padding.upper())
        self.switches, self._switch_shape = switches, xl.shape
        return self._from_nhwc(y), switches, xl.shape

    def call(self, x):
        return self._pool(x)[0]

    def _forward(self, x):
        y, switches, shape = self._pool(x)
        return y, (switches, shape)

    def _backward(self, cache, dy):
        switches, shape = cache
        dx = ops.max_unpool(self._nhwc(dy), switches, shape)
        return self._from_nhwc(dx), []

    @property
    def global_switches(self):
        """The last call's switches with the batch term (TF's
        ``include_batch_in_index=True``: ``((b * H + y) * W + x) * C + c``)."""
        if self.switches is None:
            return None
        h, w, c = self._switch_shape[1:]
        b = np.arange(self.switches.shape[0], dtype=np.int64).reshape(-1, 1, 1, 1)
        return self.switches + b * (h * w * c)

    def get_config(self):
        return {**super().get_config(), "pool_size": list(self.pool_size),
                "strides": list(self.strides), "padding": self.padding}


class GlobalAveragePooling2D(_Spatial):
    """Keras' ``GlobalAveragePooling2D``: the mean over height and width."""

    def __init__(self, data_format=None, keepdims=False, **kwargs):
        super().__init__(data_format=data_format, **kwargs)
        self.keepdims = bool(keepdims)

    def call(self, x):
        self._check4(x.shape)
        return x.mean(axis=self._hw_axes, keepdims=self.keepdims)

    def _backward(self, cache, dy):
        x, _ = cache
        a, b = self._hw_axes
        if not self.keepdims:
            dy = np.expand_dims(dy, (a, b))
        return np.broadcast_to(dy / (x.shape[a] * x.shape[b]), x.shape).astype(
            self.dtype), []

    def compute_output_shape(self, input_shape):
        self._check4(input_shape)
        if self.keepdims:
            return self._with_hw(input_shape, (1, 1))
        c = 1 if self.data_format == "channels_first" else 3
        return (input_shape[0], input_shape[c])

    def get_config(self):
        return {**super().get_config(), "keepdims": self.keepdims}


def _bilinear_matrix(n_in, scale, dtype):
    """(n_in * scale, n_in) interpolation matrix of ``tf.image.resize(...,
    'bilinear')`` (half-pixel centres, no antialiasing), which Keras' UpSampling2D
    uses."""
    n_out = n_in * scale
    src = (np.arange(n_out) + 0.5) / scale - 0.5
    lo_f = np.floor(src)
    lower = np.maximum(lo_f, 0).astype(int)
    upper = np.minimum(np.ceil(src), n_in - 1).astype(int)
    lerp = src - lo_f
    m = np.zeros((n_out, n_in))
    np.add.at(m, (np.arange(n_out), lower), 1 - lerp)
    np.add.at(m, (np.arange(n_out), upper), lerp)
    return m.astype(dtype)


class UpSampling2D(_Spatial):
    """Keras' ``UpSampling2D``: repeat rows and columns by integer factors
    (``'nearest'``) or resize by them with ``'bilinear'`` interpolation (as
    ``tf.image.resize``: half-pixel centres, edge values clamped)."""

    def __init__(self, size=(2, 2), data_format=None, interpolation="nearest", **kwargs):
        super().__init__(data_format=data_format, **kwargs)
        self.size = normalize_tuple(size, 2, "size")
        self.interpolation = str(interpolation).lower()
        if self.interpolation not in ("nearest", "bilinear"):
            raise ValueError(f"interpolation must be 'nearest' or 'bilinear', got "
                             f"{interpolation!r}")

    def compute_output_shape(self, input_shape):
        self._check4(input_shape)
        hw = [input_shape[a] for a in self._hw_axes]
        return self._with_hw(input_shape, [None if v is None else v * s
                                           for v, s in zip(hw, self.size)])

    def _matrices(self, x):
        a, b = self._hw_axes
        return (_bilinear_matrix(x.shape[a], self.size[0], x.dtype),
                _bilinear_matrix(x.shape[b], self.size[1], x.dtype))

    def call(self, x):
        self._check4(x.shape)
        a, b = self._hw_axes
        if self.interpolation == "nearest":
            return np.repeat(np.repeat(x, self.size[0], axis=a), self.size[1], axis=b)
        mh, mw = self._matrices(x)
        y = np.moveaxis(np.tensordot(mh, x, axes=(1, a)), 0, a)
        return np.moveaxis(np.tensordot(mw, y, axes=(1, b)), 0, b)

    def _backward(self, cache, dy):
        x, _ = cache
        a, b = self._hw_axes
        if self.interpolation == "nearest":
            s = list(dy.shape)
            s[a:a + 1] = [x.shape[a], self.size[0]]
            d = dy.reshape(s).sum(axis=a + 1)
            s = list(d.shape)
            s[b:b + 1] = [x.shape[b], self.size[1]]
            return d.reshape(s).sum(axis=b + 1), []
        mh, mw = self._matrices(x)
        d = np.moveaxis(np.tensordot(mw.T, dy, axes=(1, b)), 0, b)
        return np.moveaxis(np.tensordot(mh.T, d, axes=(1, a)), 0, a), []

    def get_config(self):
        return {**super().get_config(), "size": list(self.size),
                "interpolation": self.interpolation}


def _pairs(value, name):
    """Keras' padding/cropping argument -> ((top, bottom), (left, right))."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        value = ((value, value), (value, value))
    value = list(value)
    if len(value) != 2:
        raise ValueError(f"{name} must be an int, 2 ints or 2 pairs of ints, got {value}")
    out = []
    for v in value:
        pair = (v, v) if isinstance(v, (int, np.integer)) else tuple(v)
        if len(pair) != 2 or any(int(p) < 0 for p in pair):
            raise ValueError(f"{name} must be non-negative ints or pairs, got {value}")
        out.append(tuple(int(p) for p in pair))
    return tuple(out)


class ZeroPadding2D(_Spatial):
    """Keras' ``ZeroPadding2D(padding=((top, bottom), (left, right)))``."""

    def __init__(self, padding=(1, 1), data_format=None, **kwargs):
        super().__init__(data_format=data_format, **kwargs)
        self.padding = _pairs(padding, "padding")

    def _widths(self, ndim):
        w = [(0, 0)] * ndim
        a, b = self._hw_axes
        w[a], w[b] = self.padding
        return w

    def call(self, x):
        self._check4(x.shape)
        return np.pad(x, self._widths(x.ndim))

    def _backward(self, cache, dy):
        x, _ = cache
        sl = [slice(lo, dy.shape[i] - hi) for i, (lo, hi) in enumerate(
            self._widths(dy.ndim))]
        return dy[tuple(sl)], []

    def compute_output_shape(self, input_shape):
        self._check4(input_shape)
        hw = [input_shape[a] for a in self._hw_axes]
        return self._with_hw(input_shape, [None if v is None else v + sum(p)
                                           for v, p in zip(hw, self.padding)])

    def get_config(self):
        return {**super().get_config(), "padding": [list(p) for p in self.padding]}


class Cropping2D(_Spatial):
    """Keras' ``Cropping2D(cropping=((top, bottom), (left, right)))`` (U-Net skip
    connections crop the encoder's maps to the decoder's size)."""

    def __init__(self, cropping=((0, 0), (0, 0)), data_format=None, **kwargs):
        super().__init__(data_format=data_format, **kwargs)
        self.cropping = _pairs(cropping, "cropping")

    def _slices(self, shape):
        sl = [slice(None)] * len(shape)
        for ax, (lo, hi) in zip(self._hw_axes, self.cropping):
            if lo + hi >= shape[ax]:
                raise ValueError(f"{self.name}: cropping {self.cropping} removes all of "
                                 f"an input of shape {tuple(shape)}")
            sl[ax] = slice(lo, shape[ax] - hi)
        return tuple(sl)

    def call(self, x):
        self._check4(x.shape)
        return x[self._slices(x.shape)]

    def _backward(self, cache, dy):
        x, _ = cache
        dx = np.zeros_like(x)
        dx[self._slices(x.shape)] = dy
        return dx, []

    def compute_output_shape(self, input_shape):
        self._check4(input_shape)
        hw = [input_shape[a] for a in self._hw_axes]
        if all(v is not None for v in hw):
            self._slices(input_shape)
        return self._with_hw(input_shape, [None if v is None else v - sum(c)
                                           for v, c in zip(hw, self.cropping)])

    def get_config(self):
        return {**super().get_config(), "cropping": [list(c) for c in self.cropping]}
