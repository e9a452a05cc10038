"""The Layer base class and the symbolic tensors of functional models.

A layer builds its weights on its first call (from the input shape), like Keras, and
computes with cdeconv's public ops only. ``layer(x)`` is the inference path and keeps
nothing; ``layer.forward(x)`` also keeps what ``layer.backward(dy)`` needs, and
``backward`` returns ``(dx, [gradient of each weight in weight_names order])``.

Calling a layer on a :class:`KerasTensor` (from :func:`~cdeconv.layers.Input`) records
a node of a functional graph instead of computing (see :class:`~cdeconv.layers.Model`).
"""
import contextlib
import functools
import re
import threading

import numpy as np

from ._initializers import get_initializer
from ._regularizers import get_regularizer

__all__ = ["Layer", "KerasTensor", "to_snake_case", "deferred_initialization"]

# Keras 3 bookkeeping arguments that carry no meaning for inference when unset
_IGNORED_KWARGS = {"dtype_policy", "batch_size", "autocast", "input_dim"}
_UNSUPPORTED_KWARGS = ("quantization_config", "lora_rank", "lora_alpha")

_state = threading.local()


@contextlib.contextmanager
def deferred_initialization():
    """Inside this context, layers built by this thread get zero weights instead of
    running their initializers, and unknown initializer names are accepted (used while
    loading: the file's weights overwrite them, and an initializer cdeconv does not
    know must not stop a model from loading)."""
    old = getattr(_state, "defer", False)
    _state.defer = True
    try:
        yield
    finally:
        _state.defer = old


def _deferring():
    return getattr(_state, "defer", False)


def to_snake_case(name):
    """Keras' ``to_snake_case`` (``'Conv2DTranspose' -> 'conv2d_transpose'``): the
    default layer names and the keys of Keras weight files."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def map_structure(fn, value):
    """Apply ``fn`` to every leaf of nested lists/tuples/dicts."""
    if isinstance(value, (list, tuple)):
        return type(value)(map_structure(fn, v) for v in value)
    if isinstance(value, dict):
        return {k: map_structure(fn, v) for k, v in value.items()}
    return fn(value)


def flatten(value):
    """The leaves of nested lists/tuples/dicts, in order."""
    if isinstance(value, (list, tuple)):
        return [leaf for v in value for leaf in flatten(v)]
    if isinstance(value, dict):
        return [leaf for v in value.values() for leaf in flatten(v)]
    return [value]


class KerasTensor:
    """A symbolic tensor of a functional graph: a shape (batch axis ``None``), a dtype
    and the layer call that produced it.

    Made by :func:`~cdeconv.layers.Input` and by calling layers on KerasTensors; used
    to define a :class:`~cdeconv.layers.Model`.
    """

    def __init__(self, shape, dtype, layer, node_index, tensor_index=0):
        self.shape = tuple(None if v is None else int(v) for v in shape)
        self.dtype = np.dtype(dtype)
        self._keras_history = (layer, node_index, tensor_index)

    @property
    def node(self):
        layer, node_index, _ = self._keras_history
        return layer._inbound_nodes[node_index]

    def __repr__(self):
        layer, node_index, _ = self._keras_history
        return f"<KerasTensor shape={self.shape} from {layer.name!r} (call {node_index})>"


class Node:
    """One call of a layer in a functional graph: its (nested) inputs and output."""

    def __init__(self, layer, args, output=None):
        self.layer, self.args, self.output = layer, args, output

    @property
    def input_tensors(self):
        return [t for t in flatten(self.args) if isinstance(t, KerasTensor)]

    @property
    def is_input(self):
        return self.args is None


def _is_symbolic(x):
    if isinstance(x, (list, tuple, dict)):
        return any(isinstance(t, KerasTensor) for t in flatten(x))
    return isinstance(x, KerasTensor)


class Layer:
    """Base class of cdeconv's Keras-compatible layers.

    Parameters
    ----------
    trainable : bool, optional
        Recorded (and in the config); :func:`~cdeconv.layers.sgd_step` skips the weights
        of non-trainable layers.
    name : str, optional
        Unique default from the class name, as Keras (``conv2d_transpose_1``, ...).
    dtype : str or dict, optional
        Compute and weight dtype (``'float32'`` default; ``'float64'`` for exact
        gradient checks); a Keras 3 DTypePolicy config is accepted.
    activity_regularizer : str, dict or Regularizer, optional
        Penalty on the layer's output, divided by the batch size (as Keras 3); its
        value is in ``layer.losses`` after ``forward`` and ``backward`` adds its
        gradient.
    input_shape : tuple, optional
        Keras' shape hint for the first layer of a Sequential model (no batch axis).

    Notes
    -----
    Subclasses define ``build(input_shape)``, ``call(x)``,
    ``compute_output_shape(input_shape)``, ``weight_names`` and, for training,
    ``_forward(x) -> (y, cache)`` (default: ``call`` and ``(x, y)``) and
    ``_backward(cache, dy) -> (dx, grads)``.
    """

    weight_names = ()
    non_trainable_weight_names = ()
    _counter = {}

    def __init_subclass__(cls, **kwargs):
        """Make every ``build`` mark the layer built and remember its input shape, also
        when called directly (``layer.build((None, 28, 28, 1))``, as in Keras)."""
        super().__init_subclass__(**kwargs)
        if "build" in cls.__dict__:
            original = cls.__dict__["build"]

            @functools.wraps(original)
            def build(self, input_shape, _original=original):
                _original(self, input_shape)
                self.built = True
                if self._build_input_shape is None:
                    self._build_input_shape = input_shape
            cls.build = build

    def __init__(self, trainable=True, name=None, dtype="float32",
                 activity_regularizer=None, input_shape=None, batch_input_shape=None,
                 **kwargs):
        for key in _UNSUPPORTED_KWARGS:
            value = kwargs.pop(key, None)
            if value not in (None, 0, False, {}):
                raise ValueError(f"{type(self).__name__}: {key}={value!r} (quantised or "
                                 "LoRA layers) is not supported")
        unknown = set(kwargs) - _IGNORED_KWARGS
        if unknown:
            raise TypeError(f"{type(self).__name__} got unexpected arguments "
                            f"{sorted(unknown)}")
        if name is None:
            snake = to_snake_case(type(self).__name__)
            n = Layer._counter.get(snake, 0)
            Layer._counter[snake] = n + 1
            name = snake if n == 0 else f"{snake}_{n}"
        if not isinstance(name, str) or not name:
            raise TypeError(f"name must be a non-empty string, got {name!r}")
        self.name = name
        self.trainable = bool(trainable)
        if isinstance(dtype, dict):       # Keras 3 DTypePolicy config
            dtype = (dtype.get("config") or {}).get("name", "float32")
        if dtype is None:
            dtype = "float32"
        if str(dtype).startswith("mixed_"):
            raise ValueError(f"{type(self).__name__}: mixed precision dtype policy "
                             f"{dtype!r} is not supported")
        self.dtype = np.dtype(dtype)
        if self.dtype.kind != "f":
            raise TypeError(f"dtype must be a floating type, got {self.dtype}")
        self.activity_regularizer = get_regularizer(activity_regularizer)
        if batch_input_shape is not None:
            input_shape = tuple(batch_input_shape)[1:]
        self._declared_input_shape = (None if input_shape is None else
                                      (None,) + tuple(input_shape))
        self.built = False
        self._build_input_shape = None
        self._cache = None
        self._inbound_nodes = []
        self.losses = []

    # ------------------------------------------------------------ build and call
    def build(self, input_shape):
        """Create the weights for inputs of ``input_shape`` (batch axis may be None)."""
        self.built = True

    def _maybe_build(self, input_shape):
        if not self.built:
            self.build(input_shape)
            self.built = True
            if self._build_input_shape is None:
                self._build_input_shape = input_shape

    def _init_weight(self, initializer, shape, rng):
        """A new weight array from an initializer spec (zeros while loading)."""
        if _deferring():
            return np.zeros(shape, self.dtype)
        return get_initializer(initializer)(shape, self.dtype, rng)

    def __call__(self, x):
        """The layer's output for ``x`` (inference: nothing is kept), or, for
        KerasTensor inputs, a KerasTensor and a node in the functional graph."""
        if _is_symbolic(x):
            return self._call_symbolic(x)
        x = self._as_input(x)
        self._maybe_build(_shape_of(x))
        return self.call(x)

    def call(self, x):
        """The computation on built weights (override)."""
        raise NotImplementedError

    def forward(self, x):
        """Like ``__call__``, and keeps what :meth:`backward` needs.

        The activity regularizer's penalty, if any, is left in ``self.losses``.
        """
        x = self._as_input(x)
        self._maybe_build(_shape_of(x))
        y, cache = self._forward(x)
        self._cache = (cache, y)
        self.losses = []
        if self.activity_regularizer is not None:
            self.losses.append(self.activity_regularizer(y) / max(1, y.shape[0]))
        return y

    def _forward(self, x):
        y = self.call(x)
        return y, (x, y)

    def backward(self, dy):
        """Gradients from the gradient ``dy`` of the loss w.r.t. the last ``forward``
        output.

        Returns
        -------
        dx : ndarray or list of ndarray
            Gradient w.r.t. the input (a list for layers taking a list).
        grads : list of ndarray
            Gradient of each weight, in ``weight_names`` order (moving statistics get
            zeros).
        """
        if self._cache is None:
            raise RuntimeError(f"{self.name}: call forward(x) before backward(dy)")
        cache, y = self._cache
        dy = np.asarray(dy, dtype=self.dtype)
        if dy.shape != y.shape:
            raise ValueError(f"{self.name}.backward: dy must have the output's shape "
                             f"{y.shape}, got {dy.shape}")
        if self.activity_regularizer is not None:
            dy = dy + self.activity_regularizer.gradient(y) / max(1, y.shape[0])
        return self._backward(cache, dy)

    def _backward(self, cache, dy):
        raise NotImplementedError(f"{type(self).__name__} has no backward pass")

    def _as_input(self, x):
        if isinstance(x, (list, tuple)):
            return [np.asarray(v, dtype=self.dtype) for v in x]
        return np.asarray(x, dtype=self.dtype)

    def compute_output_shape(self, input_shape):
        """The output shape for ``input_shape`` (batch axis may be None)."""
        return tuple(input_shape)

    def _call_symbolic(self, inputs):
        shapes = map_structure(lambda t: t.shape if isinstance(t, KerasTensor) else
                               tuple(np.shape(t)), inputs)
        self._maybe_build(shapes)
        out_shape = self.compute_output_shape(shapes)
        node = Node(self, inputs)
        self._inbound_nodes.append(node)
        node.output = KerasTensor(out_shape, self.dtype, self, len(self._inbound_nodes) - 1)
        return node.output

    # ------------------------------------------------------------ weights
    def get_weights(self):
        """Copies of the weights, in Keras' order and layout (``[]`` before the layer
        is built, as in Keras)."""
        if not self.built:
            return []
        return [getattr(self, n).copy() for n in self.weight_names]

    def set_weights(self, weights):
        """Set the weights from arrays in Keras' order and layout (shapes checked)."""
        weights = list(weights)
        if len(weights) != len(self.weight_names):
            raise ValueError(f"{self.name} takes {len(self.weight_names)} weight arrays "
                             f"({', '.join(self.weight_names) or 'none'}), got "
                             f"{len(weights)}")
        if self.weight_names and not self.built:
            raise ValueError(f"{self.name} is not built yet: call it once (or build it) "
                             "before set_weights")
        new = []
        for n, w in zip(self.weight_names, weights):
            cur = getattr(self, n)
            w = np.asarray(w)
            if w.shape != cur.shape:
                raise ValueError(f"{self.name}.{n} must have shape {cur.shape}, got "
                                 f"{w.shape}")
            new.append(w.astype(self.dtype))
        for n, w in zip(self.weight_names, new):
            setattr(self, n, w)

    @property
    def trainable_weight_names(self):
        """Names of the weights an optimizer updates (none if not ``trainable``)."""
        if not self.trainable:
            return ()
        return tuple(n for n in self.weight_names
                     if n not in self.non_trainable_weight_names)

    def count_params(self):
        """Number of weight values."""
        if not self.built:
            return 0
        return int(sum(getattr(self, n).size for n in self.weight_names))

    def regularization(self):
        """Weight penalties of this layer.

        Returns
        -------
        penalty : float
            Sum of the kernel/bias/... regularizers' penalties.
        grads : dict
            ``{weight name: gradient of its penalty}`` for the regularized weights.
        """
        total, grads = 0.0, {}
        for n in self.weight_names:
            reg = getattr(self, f"{n}_regularizer", None)
            if reg is not None:
                w = getattr(self, n)
                total += reg(w)
                grads[n] = reg.gradient(w)
        return total, grads

    # ------------------------------------------------------------ config
    def get_config(self):
        """Keras-style config (``from_config(get_config())`` makes an equal layer)."""
        cfg = {"name": self.name, "trainable": self.trainable, "dtype": self.dtype.name}
        if self.activity_regularizer is not None:
            cfg["activity_regularizer"] = self.activity_regularizer.get_config()
        return cfg

    @classmethod
    def from_config(cls, config):
        """A new layer from a config (Keras' or ``get_config()``'s)."""
        return cls(**config)

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name!r} built={self.built}>"


def _shape_of(x):
    if isinstance(x, (list, tuple)):
        return [tuple(v.shape) for v in x]
    return tuple(x.shape)


# ------------------------------------------------------------------ helpers for layers

def normalize_tuple(value, n, name, allow_zero=False):
    """An int or n ints -> a tuple of n positive (or non-negative) ints."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        value = (int(value),) * n
    else:
        if isinstance(value, (str, bytes)):
            raise TypeError(f"{name} must be an int or {n} ints, got {value!r}")
        try:
            value = tuple(value)
        except TypeError:
            raise TypeError(f"{name} must be an int or {n} ints, got {value!r}") from None
        if not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool)
                   for v in value):
            raise TypeError(f"{name} must be an int or {n} ints, got {value!r}")
        if len(value) != n:
            raise ValueError(f"{name} must be an int or {n} ints, got {value!r}")
        value = tuple(int(v) for v in value)
    lo = 0 if allow_zero else 1
    if any(v < lo for v in value):
        raise ValueError(f"{name} must be {'>= 0' if allow_zero else 'positive'}, got "
                         f"{value}")
    return value


def normalize_data_format(value):
    value = "channels_last" if value is None else str(value).lower()
    if value not in ("channels_last", "channels_first"):
        raise ValueError(f"data_format must be 'channels_last' or 'channels_first', got "
                         f"{value!r}")
    return value


def normalize_padding(value):
    p = str(value).lower()
    if p not in ("valid", "same"):
        raise ValueError(f"padding must be 'valid' or 'same', got {value!r}")
    return p


def init_spec(init):
    """Validate an initializer argument now (an unknown name raises at construction,
    except while loading a file) and return what ``get_config`` records."""
    if isinstance(init, (str, dict)):
        if not _deferring():
            get_initializer(init)
        if isinstance(init, dict):
            return {"class_name": init.get("class_name"),
                    "config": dict(init.get("config") or {})}
        return init
    get_initializer(init)
    return init


def init_config(init):
    """An initializer spec as it goes into a config (None if not serializable)."""
    return init if isinstance(init, (str, dict)) else None


def reg_config(reg):
    """A regularizer as it goes into a config."""
    return None if reg is None else reg.get_config()
