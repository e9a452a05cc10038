"""Merge layers for skip connections: Concatenate, Add, Subtract, Multiply, Average.
They take a list of inputs; ``backward`` returns a list of input gradients."""
import numpy as np

from ._layer import Layer

__all__ = ["Concatenate", "Add", "Subtract", "Multiply", "Average"]


class _Merge(Layer):
    n_inputs = None          # None: two or more

    def _as_input(self, x):
        if not isinstance(x, (list, tuple)):
            raise TypeError(f"{self.name} takes a list of inputs, got "
                            f"{type(x).__name__}")
        return super()._as_input(x)

    def _check_shapes(self, shapes):
        shapes = [tuple(s) for s in shapes]
        n = len(shapes)
        if (self.n_inputs is None and n < 2) or (self.n_inputs and n != self.n_inputs):
            need = self.n_inputs or "at least 2"
            raise ValueError(f"{self.name} takes {need} inputs, got {n}")
        return shapes

    def build(self, input_shape):
        if not isinstance(input_shape, (list, tuple)) or not input_shape or \
                not isinstance(input_shape[0], (list, tuple)):
            raise TypeError(f"{self.name} takes a list of inputs, got shape "
                            f"{input_shape!r}")
        self.compute_output_shape(input_shape)


class Concatenate(_Merge):
    """Keras' ``Concatenate(axis=-1)``: all other axes must agree."""

    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        self.axis = int(axis)

    def compute_output_shape(self, input_shape):
        shapes = self._check_shapes(input_shape)
        nd = len(shapes[0])
        if any(len(s) != nd for s in shapes) or not -nd <= self.axis < nd:
            raise ValueError(f"{self.name}: cannot concatenate shapes {shapes} on axis "
                             f"{self.axis}")
        ax = self.axis % nd
        out = list(shapes[0])
        for i in range(nd):
            if i == ax:
                sizes = [s[i] for s in shapes]
                out[i] = None if None in sizes else sum(sizes)
                continue
            known = {s[i] for s in shapes if s[i] is not None}
            if len(known) > 1:
                raise ValueError(f"{self.name}: shapes {shapes} differ off the "
                                 f"concatenation axis {self.axis}")
            out[i] = known.pop() if known else None
        return tuple(out)

    def call(self, xs):
        self.compute_output_shape([x.shape for x in xs])
        return np.concatenate(xs, axis=self.axis)

    def _backward(self, cache, dy):
        xs, _ = cache
        cuts = np.cumsum([x.shape[self.axis] for x in xs])[:-1]
        return np.split(dy, cuts, axis=self.axis), []

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}


class _Elementwise(_Merge):
    def compute_output_shape(self, input_shape):
        shapes = self._check_shapes(input_shape)
        out = []
        for dims in zip(*shapes):
            known = {d for d in dims if d is not None}
            if len(known) > 1 or len({len(s) for s in shapes}) > 1:
                raise ValueError(f"{self.name} needs inputs of one shape, got {shapes}")
            out.append(known.pop() if known else None)
        return tuple(out)

    def call(self, xs):
        self.compute_output_shape([x.shape for x in xs])
        return self._combine(xs)


class Add(_Elementwise):
    """Keras' ``Add``: the sum of equally shaped inputs."""

    def _combine(self, xs):
        out = xs[0]
        for x in xs[1:]:
            out = out + x
        return out

    def _backward(self, cache, dy):
        xs, _ = cache
        return [dy.copy() for _ in xs], []


class Subtract(_Elementwise):
    """Keras' ``Subtract``: ``x0 - x1``."""
    n_inputs = 2

    def _combine(self, xs):
        return xs[0] - xs[1]

    def _backward(self, cache, dy):
        return [dy.copy(), -dy], []


class Multiply(_Elementwise):
    """Keras' ``Multiply``: the element-wise product."""

    def _combine(self, xs):
        out = xs[0]
        for x in xs[1:]:
            out = out * x
        return out

    def _backward(self, cache, dy):
        xs, _ = cache
        grads = []
        for i in range(len(xs)):
            g = dy
            for j, x in enumerate(xs):
                if j != i:
                    g = g * x
            grads.append(g)
        return grads, []


class Average(_Elementwise):
    """Keras' ``Average``: the element-wise mean."""

    def _combine(self, xs):
        return (sum(xs[1:], xs[0]) / len(xs)).astype(xs[0].dtype)

    def _backward(self, cache, dy):
        xs, _ = cache
        return [(dy / len(xs)).astype(dy.dtype) for _ in xs], []
