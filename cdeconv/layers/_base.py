"""The Layer base class, initializers, activations and regularizers (Keras names).

A layer builds its weights on its first call (from the input shape), computes with the
public ops only, and keeps nothing for a backward pass unless asked: ``forward(x)``
caches what ``backward(dy)`` needs, ``layer(x)`` / ``call(x)`` does not.
"""
import math

import numpy as np

__all__ = ["Layer", "get_initializer", "get_activation", "get_regularizer"]


# ------------------------------------------------------------------ initializers

def _fans(shape, transposed=False):
    """(fan_in, fan_out) as Keras computes them for a kernel of this shape."""
    if len(shape) == 2:
        return shape[0], shape[1]
    receptive = math.prod(shape[:-2])
    a, b = shape[-2] * receptive, shape[-1] * receptive
    return (b, a) if transposed else (a, b)


def bilinear(shape, dtype=np.float32, rng=None):
    """FCN-style fixed bilinear upsampling kernel (kh, kw, out_c, in_c): each output
    channel c upsamples input channel c (zero elsewhere); needs out_c == in_c."""
    kh, kw, cout, cin = shape
    if cout != cin:
        raise ValueError(f"the bilinear initializer needs out_channels == in_channels, "
                         f"got kernel shape {shape}")

    def axis(k):
        f = (k + 1) // 2
        center = f - 1 if k % 2 == 1 else f - 0.5
        return 1 - np.abs(np.arange(k) - center) / f
    w = np.zeros(shape, dtype)
    w[:, :, np.arange(cout), np.arange(cin)] = (axis(kh)[:, None] * axis(kw)[None, :]
                                                )[..., None]
    return w


def icnr(shape, dtype=np.float32, rng=None, scale=2, base="glorot_uniform"):
    """ICNR (Aitken et al. 2017): a sub-pixel kernel initialised so that it first acts
    like nearest-neighbour upsampling of a ``base``-initialised kernel, free of
    checkerboard artifacts at initialisation. For transposed convolutions of stride
    ``scale``: every phase of the kernel (taps congruent modulo the stride) gets the
    same weights."""
    kh, kw = shape[0], shape[1]
    sub = (max(1, -(-kh // scale)), max(1, -(-kw // scale))) + tuple(shape[2:])
    w0 = get_initializer(base)(sub, dtype, rng)
    w = np.empty(shape, dtype)
    for i in range(kh):
        for j in range(kw):
            w[i, j] = w0[i // scale, j // scale]
    return w


def get_initializer(init, seed=None):
    """An initializer ``f(shape, dtype, rng) -> ndarray`` from a Keras name, a config
    dict ``{'class_name': ..., 'config': {...}}``, a callable or an array."""
    if callable(init):
        return init
    if isinstance(init, np.ndarray):
        return lambda shape, dtype=np.float32, rng=None: np.asarray(init, dtype).reshape(
            shape)
    cfg = {}
    if isinstance(init, dict):
        cfg = dict(init.get("config") or {})
        init = init.get("class_name", "")
    name = str(init).lower().replace("_", "")
    seed = cfg.get("seed", seed)

    def gen(rng):
        return rng if rng is not None else np.random.default_rng(seed)

    def scaled(dist, scale, mode):
        def f(shape, dtype=np.float32, rng=None, transposed=False):
            fan_in, fan_out = _fans(shape, transposed)
            n = {"fan_in": fan_in, "fan_out": fan_out,
                 "fan_avg": (fan_in + fan_out) / 2}[mode]
            var = scale / max(1.0, n)
            r = gen(rng)
            if dist == "uniform":
                lim = math.sqrt(3 * var)
                return r.uniform(-lim, lim, shape).astype(dtype)
            std = math.sqrt(var) / 0.87962566103423978   # truncated normal, as Keras
            v = r.normal(0, std, shape)
            v = np.where(np.abs(v) > 2 * std, r.normal(0, std, shape), v)
            return np.clip(v, -2 * std, 2 * std).astype(dtype)
        return f

    table = {
        "glorotuniform": scaled("uniform", 1.0, "fan_avg"),
        "glorotnormal": scaled("normal", 1.0, "fan_avg"),
        "heuniform": scaled("uniform", 2.0, "fan_in"),
        "henormal": scaled("normal", 2.0, "fan_in"),
        "lecununiform": scaled("uniform", 1.0, "fan_in"),
        "lecunnormal": scaled("normal", 1.0, "fan_in"),
        "zeros": lambda shape, dtype=np.float32, rng=None: np.zeros(shape, dtype),
        "ones": lambda shape, dtype=np.float32, rng=None: np.ones(shape, dtype),
        "constant": lambda shape, dtype=np.float32, rng=None: np.full(
            shape, cfg.get("value", 0.0), dtype),
        "randomnormal": lambda shape, dtype=np.float32, rng=None: gen(rng).normal(
            cfg.get("mean", 0.0), cfg.get("stddev", 0.05), shape).astype(dtype),
        "randomuniform": lambda shape, dtype=np.float32, rng=None: gen(rng).uniform(
            cfg.get("minval", -0.05), cfg.get("maxval", 0.05), shape).astype(dtype),
        "bilinear": bilinear,
        "icnr": lambda shape, dtype=np.float32, rng=None: icnr(
            shape, dtype, gen(rng), cfg.get("scale", 2)),
    }
    if name not in table:
        raise ValueError(f"unknown initializer {init!r}; known: glorot_uniform, "
                         "glorot_normal, he_uniform, he_normal, lecun_uniform, "
                         "lecun_normal, random_normal, random_uniform, zeros, ones, "
                         "constant, bilinear, icnr")
    return table[name]


# ------------------------------------------------------------------ activations

def _sigmoid(x):
    return np.where(x >= 0, 1 / (1 + np.exp(-np.abs(x))),
                    np.exp(-np.abs(x)) / (1 + np.exp(-np.abs(x))))


_ACTIVATIONS = {
    # name: (f(x), df/dx given (x, y))
    "linear": (lambda x: x, lambda x, y: np.ones_like(x)),
    "relu": (lambda x: np.maximum(x, 0), lambda x, y: (x > 0).astype(x.dtype)),
    "sigmoid": (_sigmoid, lambda x, y: y * (1 - y)),
    "tanh": (np.tanh, lambda x, y: 1 - y * y),
    "softplus": (lambda x: np.logaddexp(0, x), lambda x, y: _sigmoid(x)),
    "elu": (lambda x: np.where(x > 0, x, np.expm1(np.minimum(x, 0))),
            lambda x, y: np.where(x > 0, 1, y + 1).astype(x.dtype)),
}


def get_activation(act):
    """(name, f, df) for a Keras activation name (None = linear)."""
    name = "linear" if act is None else str(act).lower()
    if name not in _ACTIVATIONS:
        raise ValueError(f"unknown activation {act!r}; known: {sorted(_ACTIVATIONS)}")
    f, df = _ACTIVATIONS[name]
    return name, f, df


# ------------------------------------------------------------------ regularizers

class Regularizer:
    """Keras' L1L2: penalty ``l1 * sum|w| + l2 * sum w**2`` and its gradient."""

    def __init__(self, l1=0.0, l2=0.0):
        self.l1, self.l2 = float(l1), float(l2)

    def __call__(self, w):
        return self.l1 * float(np.abs(w).sum()) + self.l2 * float((w * w).sum())

    def gradient(self, w):
        return (self.l1 * np.sign(w) + 2 * self.l2 * w).astype(w.dtype)

    def get_config(self):
        return {"class_name": "L1L2", "config": {"l1": self.l1, "l2": self.l2}}


def get_regularizer(reg):
    """A Regularizer from None, 'l1' / 'l2' / 'l1_l2' (Keras defaults 0.01), a Keras
    config dict, or a Regularizer."""
    if reg is None or isinstance(reg, Regularizer):
        return reg
    if isinstance(reg, str):
        return {"l1": Regularizer(l1=0.01), "l2": Regularizer(l2=0.01),
                "l1_l2": Regularizer(0.01, 0.01)}[reg.lower()]
    if isinstance(reg, dict):
        cfg = reg.get("config", {})
        return Regularizer(cfg.get("l1", 0.0), cfg.get("l2", 0.0))
    raise TypeError(f"unsupported regularizer {reg!r}")


# ------------------------------------------------------------------ the base class

class Layer:
    """Base layer: ``__call__`` builds on first use, then computes ``call(x)``.

    Subclasses define ``build(input_shape)``, ``call(x)``,
    ``compute_output_shape(input_shape)``, ``weight_names`` and, for training,
    ``backward(dy)`` (using what ``forward(x)`` cached) returning
    ``(dx, [dW for each weight])``.
    """

    weight_names = ()
    _counter = {}

    def __init__(self, trainable=True, name=None, dtype="float32",
                 activity_regularizer=None, **kwargs):
        kwargs.pop("input_shape", None)
        kwargs.pop("batch_input_shape", None)
        for key in ("quantization_config", "lora_rank", "lora_alpha"):
            value = kwargs.pop(key, None)      # Keras 3 bookkeeping: fine when unused
            if value not in (None, 0, False, {}):
                raise ValueError(f"{type(self).__name__}: {key}={value!r} (quantised or "
                                 "LoRA layers) is not supported")
        unknown = set(kwargs) - {"dtype_policy", "input_dim", "batch_size", "autocast"}
        if unknown:
            raise TypeError(f"{type(self).__name__} got unexpected arguments "
                            f"{sorted(unknown)}")
        cls = type(self).__name__
        snake = "".join("_" + ch.lower() if ch.isupper() else ch for ch in cls).lstrip("_")
        if name is None:
            n = Layer._counter.get(snake, 0)
            Layer._counter[snake] = n + 1
            name = snake if n == 0 else f"{snake}_{n}"
        self.name = name
        self.trainable = bool(trainable)
        if isinstance(dtype, dict):       # Keras 3 DTypePolicy config
            dtype = dtype.get("config", {}).get("name", "float32")
        self.dtype = np.dtype(dtype)
        self.activity_regularizer = get_regularizer(activity_regularizer)
        self.built = False
        self._cache = None

    # --- building and calling
    def build(self, input_shape):
        self.built = True

    def _maybe_build(self, x):
        if not self.built:
            self.build(tuple(x.shape))
            self.built = True

    def __call__(self, x):
        x = self._as_input(x)
        self._maybe_build(x)
        return self.call(x)

    def forward(self, x):
        """Like ``__call__`` but keeps what ``backward`` needs."""
        x = self._as_input(x)
        self._maybe_build(x)
        self._cache = x
        return self.call(x)

    def _as_input(self, x):
        return np.asarray(x, dtype=self.dtype) if not isinstance(x, (list, tuple)) else \
            [np.asarray(v, dtype=self.dtype) for v in x]

    def _cached(self):
        if self._cache is None:
            raise RuntimeError(f"{self.name}: call forward(x) before backward(dy)")
        return self._cache

    def backward(self, dy):
        raise NotImplementedError(f"{type(self).__name__} has no backward pass")

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    # --- weights
    def get_weights(self):
        return [getattr(self, n).copy() for n in self.weight_names]

    def set_weights(self, weights):
        weights = list(weights)
        if len(weights) != len(self.weight_names):
            raise ValueError(f"{self.name} takes {len(self.weight_names)} weight arrays "
                             f"({', '.join(self.weight_names)}), got {len(weights)}")
        if not self.built:
            raise ValueError(f"{self.name} is not built yet: call it once (or build it) "
                             "before set_weights")
        for n, w in zip(self.weight_names, weights):
            cur = getattr(self, n)
            w = np.asarray(w)
            if w.shape != cur.shape:
                raise ValueError(f"{self.name}.{n} must have shape {cur.shape}, got "
                                 f"{w.shape}")
            setattr(self, n, w.astype(self.dtype))

    # --- config
    def get_config(self):
        return {"name": self.name, "trainable": self.trainable,
                "dtype": self.dtype.name}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def regularization(self):
        """(penalty, {weight name: gradient of the penalty}) of this layer's weights."""
        total, grads = 0.0, {}
        for n in self.weight_names:
            reg = getattr(self, f"{n}_regularizer", None)
            if reg is not None:
                w = getattr(self, n)
                total += reg(w)
                grads[n] = reg.gradient(w)
        return total, grads

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name!r} built={self.built}>"
