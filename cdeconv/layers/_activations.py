"""Keras activation functions by name, each with its vector-Jacobian product.

An activation is an :class:`ActivationFunction`: ``act(x)`` computes it, and
``act.backward(x, y, dy)`` turns the gradient w.r.t. its output ``y = act(x)`` into the
gradient w.r.t. ``x`` (softmax and log-softmax couple the last axis, so this is a
vector-Jacobian product, not an element-wise derivative).
"""
import math

import numpy as np
from scipy import special

__all__ = ["ActivationFunction", "get_activation", "ACTIVATIONS"]

_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def _sigmoid(x):
    return special.expit(x).astype(x.dtype, copy=False)


def _softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _log_softmax(x):
    s = x - x.max(axis=-1, keepdims=True)
    return s - np.log(np.exp(s).sum(axis=-1, keepdims=True))


def _softplus(x):
    return np.logaddexp(np.zeros((), x.dtype), x)


def _gelu(x):
    return (0.5 * x * (1 + special.erf(x / math.sqrt(2)))).astype(x.dtype, copy=False)


def _gelu_grad(x):
    cdf = 0.5 * (1 + special.erf(x / math.sqrt(2)))
    return cdf + x * np.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)


def _hard_sigmoid(x):
    return np.clip(x / 6 + 0.5, 0, 1).astype(x.dtype, copy=False)


def _mish_grad(x):
    t = np.tanh(_softplus(x))
    return t + x * (1 - t * t) * _sigmoid(x)


# name: (f(x), vjp(x, y, dy)); every vjp is the exact derivative away from kinks
_TABLE = {
    "linear": (lambda x: x, lambda x, y, dy: dy),
    "relu": (lambda x: np.maximum(x, 0), lambda x, y, dy: dy * (x > 0)),
    "relu6": (lambda x: np.clip(x, 0, 6), lambda x, y, dy: dy * ((x > 0) & (x < 6))),
    "leaky_relu": (lambda x: np.where(x >= 0, x, 0.2 * x).astype(x.dtype, copy=False),
                   lambda x, y, dy: dy * np.where(x >= 0, 1, 0.2).astype(dy.dtype)),
    "elu": (lambda x: np.where(x > 0, x, np.expm1(np.minimum(x, 0))),
            lambda x, y, dy: dy * np.where(x > 0, 1, y + 1)),
    "selu": (lambda x: (_SELU_SCALE * np.where(x > 0, x, _SELU_ALPHA * np.expm1(
        np.minimum(x, 0)))).astype(x.dtype, copy=False),
             lambda x, y, dy: dy * np.where(x > 0, _SELU_SCALE, y + _SELU_SCALE
                                            * _SELU_ALPHA).astype(dy.dtype)),
    "sigmoid": (_sigmoid, lambda x, y, dy: dy * y * (1 - y)),
    "hard_sigmoid": (_hard_sigmoid,
                     lambda x, y, dy: dy * (((x > -3) & (x < 3)) / 6).astype(dy.dtype)),
    "tanh": (np.tanh, lambda x, y, dy: dy * (1 - y * y)),
    "softplus": (_softplus, lambda x, y, dy: dy * _sigmoid(x)),
    "softsign": (lambda x: x / (1 + np.abs(x)),
                 lambda x, y, dy: dy / (1 + np.abs(x)) ** 2),
    "silu": (lambda x: x * _sigmoid(x),
             lambda x, y, dy: dy * (_sigmoid(x) * (1 + x * (1 - _sigmoid(x))))),
    "hard_silu": (lambda x: x * _hard_sigmoid(x),
                  lambda x, y, dy: dy * (_hard_sigmoid(x) + x * ((x > -3) & (x < 3)) / 6)),
    "gelu": (_gelu, lambda x, y, dy: (dy * _gelu_grad(x)).astype(dy.dtype, copy=False)),
    "mish": (lambda x: x * np.tanh(_softplus(x)), lambda x, y, dy: dy * _mish_grad(x)),
    "exponential": (np.exp, lambda x, y, dy: dy * y),
    "softmax": (_softmax,
                lambda x, y, dy: y * (dy - (dy * y).sum(axis=-1, keepdims=True))),
    "log_softmax": (_log_softmax,
                    lambda x, y, dy: dy - np.exp(y) * dy.sum(axis=-1, keepdims=True)),
}
_ALIASES = {None: "linear", "swish": "silu", "hard_swish": "hard_silu"}

#: the activation names :func:`get_activation` knows (Keras 3 spelling)
ACTIVATIONS = tuple(sorted(_TABLE))


class ActivationFunction:
    """A named activation: ``f(x)`` and ``backward(x, y, dy)``.

    Parameters
    ----------
    name : str
        Keras name, e.g. ``'relu'``.
    f, vjp : callable
        The function and its vector-Jacobian product ``vjp(x, y, dy) -> dx``.
    """

    def __init__(self, name, f, vjp):
        self.name, self._f, self._vjp = name, f, vjp

    def __call__(self, x):
        """The activation of ``x`` (same shape and dtype)."""
        return np.asarray(self._f(x), dtype=x.dtype)

    def backward(self, x, y, dy):
        """Gradient w.r.t. ``x`` given ``y = self(x)`` and the gradient ``dy`` w.r.t.
        ``y``."""
        return np.asarray(self._vjp(x, y, dy), dtype=dy.dtype)

    def __repr__(self):
        return f"<activation {self.name}>"


def get_activation(activation):
    """The :class:`ActivationFunction` for a Keras activation.

    Parameters
    ----------
    activation : str, dict, ActivationFunction or None
        A Keras 3 name (``'relu'``, ``'tanh'``, ``'softmax'``, ``'swish'``, ...; see
        :data:`ACTIVATIONS`), a serialized Keras function (``{'class_name':
        'function', 'config': 'relu', ...}``) or None (linear).

    Returns
    -------
    ActivationFunction

    Raises
    ------
    ValueError
        For an unknown name (the message lists the known ones).
    TypeError
        For anything else (e.g. a Python function: not serializable, so not accepted).
    """
    if isinstance(activation, ActivationFunction):
        return activation
    if isinstance(activation, dict):
        activation = activation.get("config")
    if activation is not None and not isinstance(activation, str):
        raise TypeError(f"activation must be a Keras activation name or None, got "
                        f"{activation!r}")
    name = _ALIASES.get(activation.lower() if activation else None,
                        activation.lower() if activation else None)
    if name not in _TABLE:
        raise ValueError(f"unknown activation {activation!r}; known: "
                         f"{', '.join(ACTIVATIONS)} (and 'swish', 'hard_swish')")
    return ActivationFunction(name, *_TABLE[name])
