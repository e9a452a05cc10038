"""Core layers: Dense, Flatten, Reshape, activations, Dropout, BatchNormalization and
the functional model's Input."""
import math

import numpy as np

from ._activations import get_activation
from ._layer import KerasTensor, Layer, Node, init_config, init_spec, reg_config
from ._regularizers import get_regularizer

__all__ = ["Dense", "Flatten", "Reshape", "Activation", "ReLU", "LeakyReLU", "Dropout",
           "BatchNormalization", "InputLayer", "Input"]


class Dense(Layer):
    """Keras' ``Dense`` on the last axis: ``activation(x @ kernel + bias)``.

    Parameters
    ----------
    units : int
    activation, use_bias, kernel_initializer, bias_initializer, kernel_regularizer,
    bias_regularizer, activity_regularizer, kernel_constraint, bias_constraint, seed
        As :class:`~cdeconv.layers.Conv2DTranspose`.

    Notes
    -----
    Weights: kernel ``(in_features, units)``, bias ``(units,)`` (Keras' layout).
    """
    weight_names = ("kernel", "bias")

    def __init__(self, units, activation=None, use_bias=True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 kernel_constraint=None, bias_constraint=None, seed=None, **kwargs):
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        if isinstance(units, bool) or not isinstance(units, (int, np.integer)) or units < 1:
            raise ValueError(f"units must be a positive int, got {units!r}")
        self.units = int(units)
        self.activation = get_activation(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = init_spec(kernel_initializer)
        self.bias_initializer = init_spec(bias_initializer)
        self.kernel_regularizer = get_regularizer(kernel_regularizer)
        self.bias_regularizer = get_regularizer(bias_regularizer)
        self.kernel_constraint, self.bias_constraint = kernel_constraint, bias_constraint
        self.seed = seed
        if not self.use_bias:
            self.weight_names = ("kernel",)

    @property
    def activation_name(self):
        return self.activation.name

    def build(self, input_shape):
        n = tuple(input_shape)[-1] if len(input_shape) else None
        if n is None:
            raise ValueError(f"{self.name}: the last axis of the input must be known, got "
                             f"shape {tuple(input_shape)}")
        rng = np.random.default_rng(self.seed)
        self.kernel = self._init_weight(self.kernel_initializer, (n, self.units), rng)
        if self.use_bias:
            self.bias = self._init_weight(self.bias_initializer, (self.units,), rng)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.units,)

    def _z(self, x):
        if x.ndim < 2 or x.shape[-1] != self.kernel.shape[0]:
            raise ValueError(f"{self.name} expects inputs with {self.kernel.shape[0]} "
                             f"features on the last axis, got shape {x.shape}")
        z = x @ self.kernel
        return z + self.bias if self.use_bias else z

    def call(self, x):
        return self.activation(self._z(x))

    def _forward(self, x):
        z = self._z(x)
        y = self.activation(z)
        return y, (x, z, y)

    def _backward(self, cache, dy):
        x, z, y = cache
        dz = self.activation.backward(z, y, dy)
        x2, dz2 = x.reshape(-1, x.shape[-1]), dz.reshape(-1, self.units)
        grads = [(x2.T @ dz2).astype(self.dtype)]
        if self.use_bias:
            grads.append(dz2.sum(0).astype(self.dtype))
        return dz @ self.kernel.T, grads

    def get_config(self):
        cfg = super().get_config()
        cfg.update(units=self.units, activation=self.activation.name,
                   use_bias=self.use_bias,
                   kernel_initializer=init_config(self.kernel_initializer),
                   bias_initializer=init_config(self.bias_initializer),
                   kernel_regularizer=reg_config(self.kernel_regularizer),
                   bias_regularizer=reg_config(self.bias_regularizer))
        if self.seed is not None:
            cfg["seed"] = self.seed
        return cfg


def _data_format(value):
    from ._layer import normalize_data_format
    return normalize_data_format(value)


class Flatten(Layer):
    """Keras' ``Flatten``: ``(batch, ...) -> (batch, prod(...))``; with
    ``data_format='channels_first'`` the channels are moved last first (as Keras)."""

    def __init__(self, data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.data_format = _data_format(data_format)

    def call(self, x):
        if self.data_format == "channels_first" and x.ndim > 2:
            x = np.moveaxis(x, 1, -1)
        return x.reshape(x.shape[0], -1)

    def _backward(self, cache, dy):
        x, _ = cache
        if self.data_format == "channels_first" and x.ndim > 2:
            return np.moveaxis(dy.reshape(np.moveaxis(x, 1, -1).shape), -1, 1), []
        return dy.reshape(x.shape), []

    def compute_output_shape(self, input_shape):
        rest = input_shape[1:]
        return (input_shape[0], None if None in rest else math.prod(rest))

    def get_config(self):
        return {**super().get_config(), "data_format": self.data_format}


class Reshape(Layer):
    """Keras' ``Reshape(target_shape)`` (no batch axis; one entry may be -1)."""

    def __init__(self, target_shape, **kwargs):
        super().__init__(**kwargs)
        try:
            self.target_shape = tuple(int(v) for v in target_shape)
        except (TypeError, ValueError):
            raise TypeError(f"target_shape must be a tuple of ints, got "
                            f"{target_shape!r}") from None
        if sum(v == -1 for v in self.target_shape) > 1 or any(
                v < 1 and v != -1 for v in self.target_shape):
            raise ValueError(f"target_shape must have positive sizes and at most one -1, "
                             f"got {self.target_shape}")

    def call(self, x):
        try:
            return x.reshape((x.shape[0],) + self.target_shape)
        except ValueError:
            raise ValueError(f"{self.name}: cannot reshape input of shape {x.shape} to "
                             f"(batch,) + {self.target_shape}") from None

    def _backward(self, cache, dy):
        x, _ = cache
        return dy.reshape(x.shape), []

    def compute_output_shape(self, input_shape):
        if -1 not in self.target_shape:
            return (input_shape[0],) + self.target_shape
        rest = input_shape[1:]
        if None in rest:
            return (input_shape[0],) + tuple(None if v == -1 else v
                                             for v in self.target_shape)
        known = math.prod(v for v in self.target_shape if v != -1)
        return (input_shape[0],) + tuple(math.prod(rest) // known if v == -1 else v
                                         for v in self.target_shape)

    def get_config(self):
        return {**super().get_config(), "target_shape": list(self.target_shape)}


class Activation(Layer):
    """Keras' ``Activation(name)`` (see :data:`cdeconv.layers.ACTIVATIONS`)."""

    def __init__(self, activation, **kwargs):
        super().__init__(**kwargs)
        self.activation = get_activation(activation)

    @property
    def activation_name(self):
        return self.activation.name

    def call(self, x):
        return self.activation(x)

    def _backward(self, cache, dy):
        x, y = cache
        return self.activation.backward(x, y, dy), []

    def get_config(self):
        return {**super().get_config(), "activation": self.activation.name}


class ReLU(Layer):
    """Keras' ``ReLU(max_value=None, negative_slope=0, threshold=0)``, with Keras'
    exact formula: ``x`` where ``x > threshold``, else ``negative_slope * (x -
    threshold)``; with ``max_value`` the positive part is clipped to ``[0,
    max_value]`` first."""

    def __init__(self, max_value=None, negative_slope=0.0, threshold=0.0, **kwargs):
        super().__init__(**kwargs)
        self.max_value = None if max_value is None else float(max_value)
        self.negative_slope, self.threshold = float(negative_slope), float(threshold)
        if self.max_value is not None and self.max_value < 0:
            raise ValueError(f"max_value must be >= 0, got {max_value}")
        if self.negative_slope < 0:
            raise ValueError(f"negative_slope must be >= 0, got {negative_slope}")
        if self.threshold < 0:
            raise ValueError(f"threshold must be >= 0 (as in Keras), got {threshold}")

    def _parts(self, x):
        above = x > self.threshold if self.threshold != 0 else x > 0
        pos = np.where(above, x, 0)
        clipped = None
        if self.max_value is not None:
            clipped = (pos < 0) | (pos > self.max_value)
            pos = np.clip(pos, 0, self.max_value)
        return above, pos, clipped

    def call(self, x):
        above, pos, _ = self._parts(x)
        if self.negative_slope:
            pos = pos + self.negative_slope * np.minimum(x - self.threshold, 0)
        return pos.astype(x.dtype, copy=False)

    def _backward(self, cache, dy):
        x, _ = cache
        above, _, clipped = self._parts(x)
        g = above.astype(dy.dtype)
        if clipped is not None:
            g[clipped] = 0
        if self.negative_slope:
            g = g + self.negative_slope * (x < self.threshold)
        return (dy * g).astype(dy.dtype), []

    def get_config(self):
        return {**super().get_config(), "max_value": self.max_value,
                "negative_slope": self.negative_slope, "threshold": self.threshold}


class LeakyReLU(Layer):
    """Keras 3's ``LeakyReLU(negative_slope=0.3)``; Keras 2's ``alpha`` is accepted."""

    def __init__(self, negative_slope=0.3, alpha=None, **kwargs):
        super().__init__(**kwargs)
        self.negative_slope = float(alpha if alpha is not None else negative_slope)
        if self.negative_slope < 0:
            raise ValueError(f"negative_slope must be >= 0, got {self.negative_slope}")

    def call(self, x):
        return np.where(x >= 0, x, self.negative_slope * x).astype(x.dtype, copy=False)

    def _backward(self, cache, dy):
        x, _ = cache
        return (dy * np.where(x >= 0, 1.0, self.negative_slope)).astype(dy.dtype), []

    def get_config(self):
        return {**super().get_config(), "negative_slope": self.negative_slope}


class Dropout(Layer):
    """Keras' ``Dropout``: the identity at inference, which is all cdeconv runs
    (``forward`` is the inference computation too)."""

    def __init__(self, rate, noise_shape=None, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.rate = float(rate)
        if not 0 <= self.rate <= 1:
            raise ValueError(f"rate must be in [0, 1], got {rate}")
        self.noise_shape, self.seed = noise_shape, seed

    def call(self, x):
        return x

    def _backward(self, cache, dy):
        return dy, []

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "noise_shape": self.noise_shape,
                "seed": self.seed}


class BatchNormalization(Layer):
    """Keras' ``BatchNormalization`` in inference mode (moving statistics).

    ``y = gamma * (x - moving_mean) / sqrt(moving_variance + epsilon) + beta`` along
    ``axis``. Weights in Keras' order ``[gamma, beta, moving_mean, moving_variance]``
    (without gamma/beta when ``scale``/``center`` is False). ``backward``
    differentiates this inference computation (statistics fixed: fine-tuning with
    frozen statistics); the moving statistics get zero gradients.
    :meth:`fold_into` merges the layer into the preceding convolution or Dense layer.
    """
    non_trainable_weight_names = ("moving_mean", "moving_variance")

    def __init__(self, axis=-1, momentum=0.99, epsilon=1e-3, center=True, scale=True,
                 beta_initializer="zeros", gamma_initializer="ones",
                 moving_mean_initializer="zeros", moving_variance_initializer="ones",
                 beta_regularizer=None, gamma_regularizer=None, beta_constraint=None,
                 gamma_constraint=None, synchronized=False, renorm=False,
                 renorm_clipping=None, renorm_momentum=0.99, **kwargs):
        super().__init__(**kwargs)
        if renorm:
            raise ValueError("BatchNormalization(renorm=True) is not supported")
        if isinstance(axis, (list, tuple)):
            if len(axis) != 1:
                raise ValueError(f"axis must be one axis, got {axis}")
            axis = axis[0]
        self.axis = int(axis)
        self.momentum, self.epsilon = float(momentum), float(epsilon)
        if self.epsilon <= 0:
            raise ValueError(f"epsilon must be > 0, got {epsilon}")
        self.center, self.scale = bool(center), bool(scale)
        self.initializers = {n: init_spec(v) for n, v in (
            ("gamma", gamma_initializer), ("beta", beta_initializer),
            ("moving_mean", moving_mean_initializer),
            ("moving_variance", moving_variance_initializer))}
        self.gamma_regularizer = get_regularizer(gamma_regularizer)
        self.beta_regularizer = get_regularizer(beta_regularizer)
        self.weight_names = tuple(n for n, on in (("gamma", self.scale),
                                                  ("beta", self.center),
                                                  ("moving_mean", True),
                                                  ("moving_variance", True)) if on)

    def _channel_axis(self, ndim):
        if not -ndim <= self.axis < ndim:
            raise ValueError(f"{self.name}: axis {self.axis} is out of range for "
                             f"{ndim}-D inputs")
        return self.axis % ndim

    def build(self, input_shape):
        c = tuple(input_shape)[self._channel_axis(len(input_shape))]
        if c is None:
            raise ValueError(f"{self.name}: the normalised axis must have a known size, "
                             f"got shape {tuple(input_shape)}")
        self.channels = int(c)
        for n in self.weight_names:
            setattr(self, n, self._init_weight(self.initializers[n], (c,), None))

    def _shape(self, ndim):
        s = [1] * ndim
        s[self._channel_axis(ndim)] = -1
        return s

    def _scale_shift(self):
        inv = 1 / np.sqrt(self.moving_variance.astype(np.float64) + self.epsilon)
        a = inv * (self.gamma if self.scale else 1.0)
        b = self.beta if self.center else 0.0
        return a.astype(self.dtype), (b - a * self.moving_mean).astype(self.dtype)

    def _check(self, x):
        if x.shape[self._channel_axis(x.ndim)] != self.channels:
            raise ValueError(f"{self.name} was built for {self.channels} channels on axis "
                             f"{self.axis}, got input of shape {x.shape}")

    def call(self, x):
        self._check(x)
        a, c = self._scale_shift()
        return x * a.reshape(self._shape(x.ndim)) + c.reshape(self._shape(x.ndim))

    def _backward(self, cache, dy):
        x, _ = cache
        shape = self._shape(x.ndim)
        axes = tuple(i for i in range(x.ndim) if i != self._channel_axis(x.ndim))
        inv = (1 / np.sqrt(self.moving_variance + self.epsilon)).astype(self.dtype)
        a, _ = self._scale_shift()
        grads = {"gamma": (dy * (x - self.moving_mean.reshape(shape))
                           * inv.reshape(shape)).sum(axes),
                 "beta": dy.sum(axes),
                 "moving_mean": np.zeros_like(self.moving_mean),
                 "moving_variance": np.zeros_like(self.moving_variance)}
        return (dy * a.reshape(shape)).astype(self.dtype), [
            grads[n].astype(self.dtype) for n in self.weight_names]

    def fold_into(self, layer):
        """Fold this normalisation into the layer that feeds it.

        Parameters
        ----------
        layer : Conv2D, Conv2DTranspose or Dense
            Built, with a linear activation, producing this layer's input (its
            channel axis must be this layer's ``axis``).

        Returns
        -------
        Layer
            A new layer of the same class (with a bias) whose output equals
            ``self(layer(x))`` up to rounding; named ``<layer.name>_bn_folded``.
        """
        from ._conv import Conv2D, Conv2DTranspose
        if not isinstance(layer, (Conv2D, Conv2DTranspose, Dense)):
            raise TypeError(f"can only fold into Conv2D, Conv2DTranspose or Dense, got "
                            f"{type(layer).__name__}")
        if not (layer.built and self.built):
            raise ValueError(f"fold_into needs both {layer.name} and {self.name} built")
        if layer.activation.name != "linear":
            raise ValueError(f"cannot fold {self.name} into {layer.name}: it applies "
                             f"{layer.activation.name} before the normalisation")
        if isinstance(layer, Dense):
            ok_axis = self.axis == -1
        else:
            ok_axis = (self.axis in (1, -3)) if layer.data_format == "channels_first" \
                else self.axis in (-1, 3)
        n_out = layer.units if isinstance(layer, Dense) else layer.filters
        if not ok_axis or self.channels != n_out:
            raise ValueError(f"cannot fold {self.name} (axis {self.axis}, {self.channels} "
                             f"channels) into {layer.name}: it does not normalise that "
                             f"layer's {n_out} output channels")
        a, c = self._scale_shift()
        cfg = {**layer.get_config(), "use_bias": True, "name": layer.name + "_bn_folded"}
        new = type(layer).from_config(cfg)
        new._maybe_build(layer._build_input_shape)
        w = layer.kernel * (a[:, None] if isinstance(layer, Conv2DTranspose) else a)
        b = layer.bias if layer.use_bias else np.zeros_like(a)
        new.set_weights([w, a * b + c])
        return new

    def get_config(self):
        cfg = {**super().get_config(), "axis": self.axis, "momentum": self.momentum,
               "epsilon": self.epsilon, "center": self.center, "scale": self.scale}
        for n, spec in self.initializers.items():
            cfg[f"{n}_initializer"] = init_config(spec)
        cfg["gamma_regularizer"] = reg_config(self.gamma_regularizer)
        cfg["beta_regularizer"] = reg_config(self.beta_regularizer)
        return cfg


class InputLayer(Layer):
    """Keras' ``InputLayer``: the entry of a model (its output is the model's input).

    Parameters
    ----------
    shape : tuple, optional
        Without the batch axis.
    batch_size : int, optional
    batch_shape : tuple, optional
        With the batch axis (Keras 3's config key); overrides ``shape``.
    """

    def __init__(self, shape=None, batch_size=None, dtype=None, sparse=None,
                 batch_shape=None, input_shape=None, ragged=None, name=None,
                 optional=False, input_tensor=None, batch_input_shape=None, **kwargs):
        super().__init__(dtype=dtype, name=name, **kwargs)
        if batch_shape is None:
            batch_shape = batch_input_shape          # Keras 2's name
        if sparse or ragged:
            raise ValueError("sparse and ragged inputs are not supported")
        if input_tensor is not None:
            raise ValueError("InputLayer(input_tensor=...) is not supported")
        if batch_shape is None:
            shape = shape if shape is not None else input_shape
            if shape is None:
                raise ValueError("InputLayer needs shape= or batch_shape=")
            if isinstance(shape, (int, np.integer)):
                shape = (shape,)
            batch_shape = (batch_size,) + tuple(shape)
        self.batch_shape = tuple(None if v is None else int(v) for v in batch_shape)
        self.built = True
        self._inbound_nodes.append(Node(self, None))
        self.output = KerasTensor(self.batch_shape, self.dtype, self, 0)
        self._inbound_nodes[0].output = self.output

    def call(self, x):
        return x

    def _backward(self, cache, dy):
        return dy, []

    def get_config(self):
        return {"batch_shape": list(self.batch_shape), "dtype": self.dtype.name,
                "name": self.name}


def Input(shape=None, batch_size=None, dtype="float32", name=None, batch_shape=None):
    """A symbolic input for a functional :class:`~cdeconv.layers.Model` (Keras'
    ``keras.Input``).

    Parameters
    ----------
    shape : tuple
        Without the batch axis, e.g. ``(64, 64, 3)``.
    batch_size : int, optional
    dtype : str, optional
    name : str, optional
    batch_shape : tuple, optional
        With the batch axis, instead of ``shape``.

    Returns
    -------
    KerasTensor
    """
    return InputLayer(shape=shape, batch_size=batch_size, dtype=dtype, name=name,
                      batch_shape=batch_shape).output
