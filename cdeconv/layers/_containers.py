"""Model containers: ``Sequential`` and the functional ``Model`` (skip connections),
Keras-style configs, batch-norm folding and a plain SGD step."""
import numpy as np

from . import _conv, _core, _merge, _pooling
from ._layer import (KerasTensor, Layer, _is_symbolic, deferred_initialization, flatten,
                    map_structure)
from ._core import BatchNormalization, Dense, InputLayer
from ._conv import Conv2D, Conv2DTranspose

__all__ = ["Sequential", "Model", "deserialize_layer", "serialize_layer",
           "fold_batch_norm", "sgd_step", "clone_layer"]


# ------------------------------------------------------------------ (de)serialization

def serialize_layer(layer):
    """A Keras-style ``{'module', 'class_name', 'config', 'build_config'}`` entry."""
    cls = "Functional" if isinstance(layer, Model) else type(layer).__name__
    entry = {"module": "keras.layers" if not isinstance(layer, _Container) else "keras",
             "class_name": cls, "config": layer.get_config()}
    if layer._build_input_shape is not None and not isinstance(layer, _Container):
        entry["build_config"] = {"input_shape": _jsonable_shape(layer._build_input_shape)}
    return entry


def _jsonable_shape(shape):
    if isinstance(shape, (list, tuple)) and shape and isinstance(shape[0], (list, tuple)):
        return [_jsonable_shape(s) for s in shape]
    return [None if v is None else int(v) for v in shape]


def _shape_from_json(shape):
    if isinstance(shape, (list, tuple)) and shape and isinstance(shape[0], (list, tuple)):
        return [_shape_from_json(s) for s in shape]
    return tuple(shape)


def _registry():
    table = {}
    for mod in (_conv, _core, _pooling, _merge):
        for name in mod.__all__:
            obj = getattr(mod, name)
            if isinstance(obj, type) and issubclass(obj, Layer):
                table[name] = obj
    table.update(Sequential=Sequential, Functional=Model, Model=Model)
    return table


def deserialize_layer(entry):
    """A layer (or nested model) from a Keras ``{'class_name', 'config'}`` entry.

    Layers with a ``build_config`` are built from it (weights zero until set).

    Raises
    ------
    ValueError
        For a layer class cdeconv does not have (the message names it, the layer and
        the supported classes).
    """
    if not isinstance(entry, dict) or "class_name" not in entry:
        raise ValueError(f"a layer entry must be a dict with 'class_name', got {entry!r}")
    cls_name = entry["class_name"]
    table = _registry()
    cfg = dict(entry.get("config") or {})
    if cls_name not in table:
        layer_name = cfg.get("name", entry.get("name", "?"))
        raise ValueError(f"unsupported layer class {cls_name!r} (layer {layer_name!r}); "
                         f"cdeconv.layers supports: {', '.join(sorted(table))}")
    try:
        layer = table[cls_name].from_config(cfg)
    except TypeError as exc:
        raise TypeError(f"cannot rebuild {cls_name} {cfg.get('name')!r} from its config: "
                        f"{exc}") from None
    build = (entry.get("build_config") or {}).get("input_shape")
    if build is not None and not layer.built:
        layer._maybe_build(_shape_from_json(build))
    return layer


def clone_layer(layer):
    """A copy of a built layer (or model): same config, copied weights."""
    with deferred_initialization():
        new = deserialize_layer(serialize_layer(layer))
        if isinstance(layer, _Container):
            if isinstance(new, Sequential) and not new.built and layer._input_shape:
                new.build(layer._input_shape)
        elif layer._build_input_shape is not None and not new.built:
            new._maybe_build(layer._build_input_shape)
    new.set_weights(layer.get_weights())
    return new


# ------------------------------------------------------------------ containers

class _Container(Layer):
    """What Sequential and Model share: predict, weights, saving, regularization."""

    def predict(self, x, batch_size=None):
        """Outputs for ``x``, computed in batches of ``batch_size`` (all at once if
        None).

        Parameters
        ----------
        x : array_like, or a list of them for a model with several inputs
        batch_size : int, optional

        Returns
        -------
        ndarray (or a list of them for several outputs)
        """
        if batch_size is None:
            return self(x)
        if isinstance(batch_size, bool) or int(batch_size) != batch_size or \
                batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        batch_size = int(batch_size)
        xs = [np.asarray(v) for v in x] if isinstance(x, (list, tuple)) else \
            np.asarray(x)
        n = len(xs[0]) if isinstance(xs, list) else len(xs)
        if n == 0:
            return self(xs)
        parts = []
        for i in range(0, n, batch_size):
            chunk = [v[i:i + batch_size] for v in xs] if isinstance(xs, list) else \
                xs[i:i + batch_size]
            parts.append(self(chunk))
        if isinstance(parts[0], list):
            return [np.concatenate(p) for p in zip(*parts)]
        return np.concatenate(parts)

    def get_weights(self):
        """All weights, layer by layer in ``self.layers`` order (Keras' order)."""
        return [w for layer in self.layers for w in layer.get_weights()]

    def set_weights(self, weights):
        """Set all weights from a list in :meth:`get_weights`' order."""
        weights = list(weights)
        need = sum(len(layer.get_weights()) if isinstance(layer, _Container) else
                   len(layer.weight_names) for layer in self.layers)
        if len(weights) != need:
            raise ValueError(f"{self.name} takes {need} weight arrays, got {len(weights)}")
        for layer in self.layers:
            n = len(layer.get_weights()) if isinstance(layer, _Container) else \
                len(layer.weight_names)
            layer.set_weights(weights[:n])
            weights = weights[n:]

    @property
    def weight_names(self):
        return ()

    def count_params(self):
        return int(sum(layer.count_params() for layer in self.layers))

    def regularization(self):
        """``(penalty, [per-layer {weight name: gradient}])``: the weight penalties of
        all layers (activity penalties of the last ``forward`` are in
        :attr:`losses`)."""
        total, grads = 0.0, []
        for layer in self.layers:
            p, g = layer.regularization()
            total += p
            grads.append(g)
        return total, grads

    @property
    def losses(self):
        """Activity-regularizer penalties of the last ``forward``."""
        return [v for layer in self.layers for v in layer.losses]

    @losses.setter
    def losses(self, value):
        pass

    def save(self, path):
        """Write the model to a dependency-free ``.npz`` (JSON config + arrays, no
        pickle): :func:`~cdeconv.layers.save_model`."""
        from ._saving import save_model
        save_model(self, path)

    def save_weights(self, path):
        """Write the weights: a Keras ``.weights.h5`` (needs h5py; Keras 3 can load it
        into the same architecture) or, for any other suffix, an ``.npz``."""
        from ._saving import save_weights
        save_weights(self, path)

    def load_weights(self, path):
        """Read weights from a Keras ``.weights.h5`` / ``.keras`` file (h5py) or a
        cdeconv ``.npz``, matched as Keras matches them (by layer order and class)."""
        from ._saving import load_weights
        load_weights(self, path)

    def summary(self, print_fn=print):
        """Print (with ``print_fn``) and return a table of the layers, their output
        shapes and parameter counts."""
        rows = [("Layer (type)", "Output shape", "Param #")]
        shape = getattr(self, "_input_shape", None)
        for layer in self._summary_layers():
            out = "?"
            if isinstance(self, Model):
                out = str(getattr(layer, "_summary_shape",
                                  getattr(layer, "batch_shape", "?")))
            elif shape is not None:
                try:
                    shape = layer.compute_output_shape(shape)
                    out = str(tuple(shape))
                except Exception:   # noqa: BLE001 - a summary never fails
                    shape = None
            rows.append((f"{layer.name} ({type(layer).__name__})", out,
                         str(layer.count_params())))
        w = [max(len(r[i]) for r in rows) for i in range(3)]
        lines = [f'Model: "{self.name}"'] + ["  ".join(c.ljust(w[i]) for i, c in
                                                   enumerate(r)) for r in rows]
        lines.append(f"Total params: {self.count_params()}")
        text = "\n".join(lines)
        if print_fn is not None:
            print_fn(text)
        return text

    def _summary_layers(self):
        return self.layers


class Sequential(_Container):
    """A linear stack of layers (Keras' ``Sequential``).

    Parameters
    ----------
    layers : list of Layer, optional
        May start with an :class:`~cdeconv.layers.InputLayer` or an
        :func:`~cdeconv.layers.Input` tensor, which fixes (and builds for) the input
        shape, as in Keras.
    name : str, optional

    Notes
    -----
    ``model(x)`` / ``predict(x, batch_size)`` run inference; ``forward(x)`` then
    ``backward(dy)`` return ``(dx, [weight gradients of each layer])``.

    Examples
    --------
    >>> import numpy as np
    >>> from cdeconv.layers import Sequential, Dense, Reshape, Conv2DTranspose
    >>> gen = Sequential([Dense(4 * 4 * 8, seed=0), Reshape((4, 4, 8)),
    ...                   Conv2DTranspose(3, 4, strides=2, padding="same")])
    >>> gen.predict(np.zeros((2, 16), np.float32)).shape
    (2, 8, 8, 3)
    """

    def __init__(self, layers=None, name=None, trainable=True, **kwargs):
        super().__init__(name=name, trainable=trainable, **kwargs)
        self.layers = []
        self._input_shape = None
        for layer in layers or []:
            self.add(layer)

    def add(self, layer):
        """Append a layer (or set the input with an InputLayer / Input tensor)."""
        if isinstance(layer, KerasTensor):
            src = layer._keras_history[0]
            if not isinstance(src, InputLayer):
                raise TypeError("Sequential takes layers; a KerasTensor is accepted only "
                                "straight from Input(...)")
            layer = src
        if isinstance(layer, InputLayer):
            if self.layers:
                raise ValueError(f"{self.name}: an InputLayer must come first")
            self._input_shape = tuple(layer.batch_shape)
            return
        if not isinstance(layer, Layer):
            raise TypeError(f"Sequential.add takes a cdeconv layer, got "
                            f"{type(layer).__name__}")
        if not self.layers and self._input_shape is None and \
                layer._declared_input_shape is not None:
            self._input_shape = layer._declared_input_shape
        self.layers.append(layer)
        if self._input_shape is not None:
            self.build(self._input_shape)

    def build(self, input_shape):
        """Build every layer by propagating ``input_shape`` (batch axis may be None)."""
        shape = tuple(input_shape)
        for layer in self.layers:
            layer._maybe_build(shape)
            shape = layer.compute_output_shape(shape)
        self._input_shape = tuple(input_shape)
        self._build_input_shape = self._input_shape
        self.built = True

    def compute_output_shape(self, input_shape):
        shape = tuple(input_shape)
        for layer in self.layers:
            shape = layer.compute_output_shape(shape)
        return shape

    def __call__(self, x):
        if _is_symbolic(x):
            return self._call_symbolic(x)
        x = np.asarray(x)
        if self._input_shape is None and x.ndim:
            self._input_shape = (None,) + tuple(x.shape[1:])
        return self.call(x)

    def call(self, x):
        for layer in self.layers:
            x = layer(x)
        return x

    def forward(self, x):
        """Run the stack keeping what :meth:`backward` needs."""
        x = np.asarray(x)
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def backward(self, dy):
        """Back through the stack: ``(d loss / d input, [weight gradients of each
        layer])``."""
        grads = []
        for layer in reversed(self.layers):
            dy, g = layer.backward(dy)
            grads.append(g)
        return dy, grads[::-1]

    def get_config(self):
        entries = []
        if self._input_shape is not None:
            entries.append({"module": "keras.layers", "class_name": "InputLayer",
                            "config": {"batch_shape": _jsonable_shape(self._input_shape),
                                       "dtype": "float32", "name": self.name + "_input"}})
        entries += [serialize_layer(layer) for layer in self.layers]
        return {"name": self.name, "trainable": self.trainable, "layers": entries}

    @classmethod
    def from_config(cls, config):
        model = cls(name=config.get("name"), trainable=config.get("trainable", True))
        for entry in config.get("layers", []):
            if entry.get("class_name") == "InputLayer":
                c = entry.get("config") or {}
                shape = c.get("batch_shape") or c.get("batch_input_shape")
                if shape is not None:
                    model._input_shape = tuple(shape)
                continue
            model.layers.append(deserialize_layer(entry))
        if model._input_shape is None and model.layers:
            model._input_shape = model.layers[0]._declared_input_shape   # Keras 2 style
        shape = model._input_shape or config.get("build_input_shape")
        if shape is not None:
            model.build(tuple(shape))
        return model


def _tensor_list(value, what):
    flat = flatten(value) if isinstance(value, (list, tuple, dict)) else [value]
    for t in flat:
        if not isinstance(t, KerasTensor):
            raise TypeError(f"Model {what} must be KerasTensors (from Input(...) and "
                            f"layer calls), got {type(t).__name__}")
    return flat


class Model(_Container):
    """A functional model: a graph of layer calls from ``Input`` tensors (Keras'
    functional API), for U-Nets and other models with skip connections.

    Parameters
    ----------
    inputs : KerasTensor or list of KerasTensor
    outputs : KerasTensor or list of KerasTensor
    name : str, optional

    Notes
    -----
    ``self.layers`` lists the layers in Keras' order (by depth from the inputs, input
    layers first), which is also the order of :meth:`get_weights` and of Keras' weight
    files. Intermediate results are freed as soon as their last consumer has run.

    Examples
    --------
    >>> import numpy as np
    >>> from cdeconv.layers import (Input, Conv2D, MaxPooling2D, Conv2DTranspose,
    ...                             Concatenate, Model)
    >>> x = Input((16, 16, 3))
    >>> e = Conv2D(8, 3, padding="same", activation="relu")(x)
    >>> d = Conv2DTranspose(8, 2, strides=2)(MaxPooling2D()(e))
    >>> y = Conv2D(1, 1, activation="sigmoid")(Concatenate()([d, e]))
    >>> Model(x, y).predict(np.zeros((2, 16, 16, 3), np.float32)).shape
    (2, 16, 16, 1)
    """

    def __init__(self, inputs, outputs, name=None, trainable=True, **kwargs):
        super().__init__(name=name, trainable=trainable, **kwargs)
        self._nested_inputs, self._nested_outputs = inputs, outputs
        self.inputs = _tensor_list(inputs, "inputs")
        self.outputs = _tensor_list(outputs, "outputs")
        self._nodes, self.layers = self._map_graph()
        self._input_shape = self.inputs[0].shape if len(self.inputs) == 1 else \
            [t.shape for t in self.inputs]
        self._build_input_shape = self._input_shape
        self.built = True
        for node in self._nodes:
            node.layer._summary_shape = node.output.shape

    # --- the graph
    def _map_graph(self):
        """Keras' ``map_graph``: nodes in a topological order and layers by depth."""
        input_ids = {id(t) for t in self.inputs}
        finished, in_progress, order, first_seen = set(), set(), [], {}

        def visit(tensor):
            layer, node_index, _ = tensor._keras_history
            node = layer._inbound_nodes[node_index]
            if id(node) in finished:
                return
            if not node.is_input and id(tensor) in input_ids:
                finished.add(id(node))
                return
            if id(node) in in_progress:
                raise ValueError(f"the graph has a cycle at layer {layer.name!r}")
            first_seen.setdefault(id(layer), (len(first_seen), layer))
            in_progress.add(id(node))
            if not node.is_input:
                for t in node.input_tensors:
                    visit(t)
            finished.add(id(node))
            in_progress.discard(id(node))
            order.append(node)

        for t in self.outputs:
            visit(t)
        node_depth, layer_depth = {}, {}
        order_ids = {id(n) for n in order}
        for node in reversed(order):
            d = max(node_depth.setdefault(id(node), 0), layer_depth.get(id(node.layer), 0))
            layer_depth[id(node.layer)] = d
            node_depth[id(node)] = d
            if not node.is_input:
                for t in node.input_tensors:
                    parent = t.node
                    if id(parent) in order_ids:
                        node_depth[id(parent)] = max(d + 1, node_depth.get(id(parent), 0))
        reachable = set()
        for t in self.inputs:
            if t.node.is_input and id(t.node.layer) not in layer_depth:
                layer_depth[id(t.node.layer)] = 0
                first_seen.setdefault(id(t.node.layer), (len(first_seen), t.node.layer))
        computable = {id(t) for t in self.inputs}
        for node in order:
            if node.is_input:
                if id(node.output) not in computable:
                    raise ValueError(f"graph disconnected: input {node.layer.name!r} is "
                                     "not among the model's inputs")
                continue
            if id(node.output) in computable:
                continue
            for t in node.input_tensors:
                if id(t) not in computable:
                    raise ValueError(f"graph disconnected: cannot reach {t} (input of "
                                     f"{node.layer.name!r}) from the model's inputs")
            computable.add(id(node.output))
            reachable.add(id(node))
        layers = sorted((v for v in first_seen.values()),
                        key=lambda v: (-layer_depth[id(v[1])], v[0]))
        layers = [layer for _, layer in layers]
        names = [layer.name for layer in layers]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"layer names must be unique in a model, repeated: "
                             f"{sorted(dup)}")
        return [n for n in order if id(n) in reachable], layers

    def _input_list(self, x):
        if isinstance(x, dict):
            try:
                x = [x[t._keras_history[0].name] for t in self.inputs]
            except KeyError as exc:
                raise ValueError(f"{self.name}: no value for input {exc}") from None
        elif not isinstance(x, (list, tuple)):
            x = [x]
        if len(x) != len(self.inputs):
            raise ValueError(f"{self.name} takes {len(self.inputs)} inputs, got {len(x)}")
        out = []
        for t, v in zip(self.inputs, x):
            v = np.asarray(v)
            ok = v.ndim == len(t.shape) and all(
                s is None or s == d for s, d in zip(t.shape[1:], v.shape[1:]))
            if not ok:
                raise ValueError(f"{self.name}: input {t._keras_history[0].name!r} must "
                                 f"have shape {t.shape} (None = any), got {v.shape}")
            out.append(v)
        return out

    def _consumers(self):
        count = {}
        for node in self._nodes:
            for t in node.input_tensors:
                count[id(t)] = count.get(id(t), 0) + 1
        for t in self.outputs:
            count[id(t)] = count.get(id(t), 0) + 1
        return count

    def _run(self, x, train):
        values = {id(t): v for t, v in zip(self.inputs, self._input_list(x))}
        left = self._consumers()
        caches = []
        for node in self._nodes:
            args = map_structure(lambda t: values[id(t)] if isinstance(t, KerasTensor)
                                 else t, node.args)
            if train:
                out = node.layer.forward(args)
                caches.append(getattr(node.layer, "_cache", None))
            else:
                out = node.layer(args)
            values[id(node.output)] = out
            if not train:
                for t in node.input_tensors:
                    left[id(t)] -= 1
                    if left[id(t)] == 0:
                        values.pop(id(t), None)
        result = map_structure(lambda t: values[id(t)], self._nested_outputs)
        return result, caches

    def __call__(self, x):
        if _is_symbolic(x):
            return self._call_symbolic(x)
        return self.call(x)

    def call(self, x):
        return self._run(x, train=False)[0]

    def forward(self, x):
        """Run the graph keeping what :meth:`backward` needs (per layer call, so a
        layer used twice gets both of its gradients)."""
        y, self._node_caches = self._run(x, train=True)
        return y

    def backward(self, dy):
        """Back through the graph.

        Parameters
        ----------
        dy : ndarray or list
            Gradient w.r.t. the output (a list matching several outputs).

        Returns
        -------
        dx : ndarray or list
            Gradient w.r.t. the input (a list for several inputs).
        grads : list
            For each layer of ``self.layers``, its weight gradients (summed over its
            calls); zeros for weights that do not reach the output.
        """
        caches = getattr(self, "_node_caches", None)
        if caches is None:
            raise RuntimeError(f"{self.name}: call forward(x) before backward(dy)")
        dys = dy if isinstance(dy, (list, tuple)) else [dy]
        if len(dys) != len(self.outputs):
            raise ValueError(f"{self.name} has {len(self.outputs)} outputs, got "
                             f"{len(dys)} output gradients")
        acc = {}

        def add(t, g):
            acc[id(t)] = g if id(t) not in acc else acc[id(t)] + g
        for t, g in zip(self.outputs, dys):
            add(t, np.asarray(g))
        layer_grads = {}
        for node, cache in zip(reversed(self._nodes), reversed(caches)):
            g = acc.pop(id(node.output), None)
            if g is None:
                continue
            layer = node.layer
            if isinstance(layer, _Container):
                if sum(n.layer is layer for n in self._nodes) > 1:
                    raise NotImplementedError(f"backward through the nested model "
                                              f"{layer.name!r} called more than once")
            else:
                layer._cache = cache
            dx, gw = layer.backward(g)
            prev = layer_grads.get(id(layer))
            layer_grads[id(layer)] = gw if prev is None else _add_nested(prev, gw)
            ins = node.input_tensors
            dxs = dx if isinstance(node.args, (list, tuple)) else [dx]
            for t, d in zip(ins, dxs):
                add(t, d)
        dx = [acc.get(id(t), np.zeros(t.shape[1:])) for t in self.inputs]
        grads = []
        for layer in self.layers:
            g = layer_grads.get(id(layer))
            if g is None:
                g = [np.zeros_like(w) for w in layer.get_weights()] if not isinstance(
                    layer, _Container) else [None] * len(layer.layers)
            grads.append(g)
        return (dx[0] if len(self.inputs) == 1 and not isinstance(
            self._nested_inputs, (list, tuple)) else dx), grads

    def compute_output_shape(self, input_shape):
        shapes = input_shape if len(self.inputs) > 1 else [input_shape]
        known = {id(t): tuple(s) for t, s in zip(self.inputs, shapes)}
        for node in self._nodes:
            args = map_structure(lambda t: known[id(t)] if isinstance(t, KerasTensor)
                                 else t, node.args)
            known[id(node.output)] = tuple(node.layer.compute_output_shape(args))
        out = [known[id(t)] for t in self.outputs]
        return out[0] if not isinstance(self._nested_outputs, (list, tuple)) else out

    def _summary_layers(self):
        return self.layers

    # --- config in Keras' functional format
    def get_config(self):
        local, mine = {}, {id(n) for n in self._nodes}
        for layer in self.layers:
            nodes = [n for n in layer._inbound_nodes if id(n) in mine or
                     (n.is_input and any(n.output is t for t in self.inputs))]
            for k, n in enumerate(nodes):
                local[id(n)] = k

        def ref(t):
            layer, node_index, tensor_index = t._keras_history
            # Keras counts a nested functional model's own graph as its node 0
            shift = 1 if isinstance(layer, Model) else 0
            return [layer.name, local[id(layer._inbound_nodes[node_index])] + shift,
                    tensor_index]

        def encode(v):
            if isinstance(v, KerasTensor):
                return {"class_name": "__keras_tensor__",
                        "config": {"shape": list(v.shape), "dtype": v.dtype.name,
                                   "keras_history": ref(v)}}
            return v
        entries = []
        for layer in self.layers:
            entry = serialize_layer(layer)
            entry["name"] = layer.name
            entry["inbound_nodes"] = [
                {"args": [map_structure(encode, n.args)], "kwargs": {}}
                for n in layer._inbound_nodes if id(n) in mine]
            entries.append(entry)

        def refs(nested):
            return map_structure(lambda t: ref(t), nested) if isinstance(
                nested, (list, tuple)) else ref(nested)
        return {"name": self.name, "trainable": self.trainable, "layers": entries,
                "input_layers": refs(self._nested_inputs),
                "output_layers": refs(self._nested_outputs)}

    @classmethod
    def from_config(cls, config):
        entries = config.get("layers") or []
        created, order = {}, []
        for entry in entries:
            name = entry.get("name") or (entry.get("config") or {}).get("name")
            layer = deserialize_layer(entry)
            created[name] = layer
            order.append((name, layer, list(entry.get("inbound_nodes") or [])))
        tensors = {}
        for name, layer, _ in order:
            if isinstance(layer, InputLayer):
                tensors[(name, 0, 0)] = layer.output

        def lookup(history):
            return tensors.get((history[0], int(history[1]), int(history[2])))

        def decode(v):
            """Replace Keras tensor references by our tensors (None if not ready)."""
            if isinstance(v, dict) and v.get("class_name") == "__keras_tensor__":
                return _Ref(lookup(v["config"]["keras_history"]))
            if isinstance(v, (list, tuple)):
                # Keras 2 style reference: [name, node_index, tensor_index, kwargs]
                if len(v) in (3, 4) and isinstance(v[0], str) and \
                        isinstance(v[1], int) and v[0] in created:
                    return _Ref(lookup(v))
                return [decode(e) for e in v]
            return v
        done = {name: 0 for name, _, _ in order}
        progress = True
        while progress:
            progress = False
            for name, layer, nodes in order:
                while done[name] < len(nodes):
                    node = nodes[done[name]]
                    args = node.get("args", []) if isinstance(node, dict) else [node]
                    decoded = decode(args)
                    if any(isinstance(r, _Ref) and r.t is None for r in flatten(decoded)):
                        break
                    arg = map_structure(lambda r: r.t if isinstance(r, _Ref) else r,
                                        decoded)
                    arg = arg[0] if len(arg) == 1 else arg
                    if isinstance(node, list):        # Keras 2: the list of inputs
                        arg = arg[0] if len(arg) == 1 else arg
                    out = layer(arg)
                    # Keras counts a nested functional model's own graph as node 0
                    shift = 1 if isinstance(layer, Model) else 0
                    tensors[(name, done[name] + shift, 0)] = out
                    done[name] += 1
                    progress = True
        missing = [name for name, _, nodes in order if done[name] < len(nodes)]
        if missing:
            raise ValueError(f"cannot rebuild the graph: the inputs of {missing} are never "
                             "produced")

        def resolve(spec):
            if spec and isinstance(spec[0], str):
                t = lookup(spec)
                if t is None:
                    raise ValueError(f"unknown model input/output {spec}")
                return t
            return [resolve(s) for s in spec]
        ins, outs = resolve(config["input_layers"]), resolve(config["output_layers"])
        # as Keras: a one-element list (Keras 2 always writes lists) is that tensor
        ins = ins[0] if isinstance(ins, list) and len(ins) == 1 else ins
        outs = outs[0] if isinstance(outs, list) and len(outs) == 1 else outs
        return cls(ins, outs, name=config.get("name"),
                   trainable=config.get("trainable", True))


class _Ref:
    def __init__(self, t):
        self.t = t


def _add_nested(a, b):
    if isinstance(a, list):
        return [_add_nested(x, y) for x, y in zip(a, b)]
    if a is None:
        return b
    if b is None:
        return a
    return a + b


# ------------------------------------------------------------------ utilities

def _foldable(layer, bn):
    if not isinstance(bn, BatchNormalization) or not isinstance(
            layer, (Conv2D, Conv2DTranspose, Dense)):
        return False
    try:
        bn.fold_into(layer)
    except (TypeError, ValueError):
        return False
    return True


def fold_batch_norm(model):
    """A copy of ``model`` with each BatchNormalization folded into the Conv2D,
    Conv2DTranspose or Dense layer before it (where that layer is linear and feeds
    only the normalisation): same outputs up to rounding, one pass less over the
    data.

    Parameters
    ----------
    model : Sequential or Model
        Built.

    Returns
    -------
    Sequential or Model
        New layers (the original model is unchanged).
    """
    if isinstance(model, Sequential):
        out, layers, i = Sequential(name=model.name + "_folded"), model.layers, 0
        if model._input_shape is not None:
            out._input_shape = model._input_shape
        while i < len(layers):
            if i + 1 < len(layers) and _foldable(layers[i], layers[i + 1]):
                out.layers.append(layers[i + 1].fold_into(layers[i]))
                i += 2
            else:
                out.layers.append(clone_layer(layers[i]))
                i += 1
        if out._input_shape is not None:
            out.build(out._input_shape)
        return out
    if not isinstance(model, Model):
        raise TypeError(f"fold_batch_norm takes a Sequential or Model, got "
                        f"{type(model).__name__}")
    consumers = model._consumers()
    calls = {}
    for node in model._nodes:
        calls[id(node.layer)] = calls.get(id(node.layer), 0) + 1
    producer = {id(node.output): node for node in model._nodes}
    folded, skip = {}, set()
    for node in model._nodes:
        ins = node.input_tensors
        if isinstance(node.layer, BatchNormalization) and len(ins) == 1 and \
                id(ins[0]) in producer:
            p = producer[id(ins[0])]
            if consumers[id(ins[0])] == 1 and calls[id(p.layer)] == 1 and \
                    calls[id(node.layer)] == 1 and _foldable(p.layer, node.layer):
                folded[id(p)] = node.layer.fold_into(p.layer)
                skip.add(id(node))
    mapping, clones = {}, {}
    new_inputs = []
    for t in model.inputs:
        src = t._keras_history[0]
        new_t = _core.Input(batch_shape=t.shape, name=src.name, dtype=t.dtype.name)
        mapping[id(t)] = new_t
        new_inputs.append(new_t)
    for node in model._nodes:
        if id(node) in skip:
            mapping[id(node.output)] = mapping[id(node.input_tensors[0])]
            continue
        if id(node) in folded:
            layer = folded[id(node)]
        else:
            layer = clones.get(id(node.layer))
            if layer is None:
                layer = clones[id(node.layer)] = clone_layer(node.layer)
        args = map_structure(lambda t: mapping[id(t)] if isinstance(t, KerasTensor)
                             else t, node.args)
        mapping[id(node.output)] = layer(args)
    outs = map_structure(lambda t: mapping[id(t)], model._nested_outputs)
    ins = new_inputs if isinstance(model._nested_inputs, (list, tuple)) else new_inputs[0]
    return Model(ins, outs, name=model.name + "_folded")


def sgd_step(model, grads, learning_rate=0.01, regularize=True):
    """One plain gradient-descent step, in place: ``w -= learning_rate * (g +
    d penalty / d w)`` for every trainable weight.

    Parameters
    ----------
    model : Layer, Sequential or Model
    grads : list
        What ``backward`` returned for it (for a container: one list per layer).
    learning_rate : float, optional
    regularize : bool, optional
        Add the weight regularizers' gradients.

    Examples
    --------
    >>> import numpy as np
    >>> from cdeconv.layers import Conv2DTranspose, sgd_step
    >>> layer = Conv2DTranspose(1, 4, strides=2, padding="same", seed=0, dtype="float64")
    >>> x, target = np.ones((1, 3, 3, 1)), np.zeros((1, 6, 6, 1))
    >>> def loss(): return float(((layer(x) - target) ** 2).sum())
    >>> before = loss(); y = layer.forward(x)
    >>> sgd_step(layer, layer.backward(2 * (y - target))[1], learning_rate=0.01)
    >>> loss() < before
    True
    """
    if isinstance(model, _Container):
        if len(grads) != len(model.layers):
            raise ValueError(f"{model.name}: grads has {len(grads)} entries for "
                             f"{len(model.layers)} layers")
        for layer, g in zip(model.layers, grads):
            if g is not None and (not isinstance(layer, _Container) or g):
                sgd_step(layer, g, learning_rate, regularize)
        return
    if len(grads) != len(model.weight_names):
        raise ValueError(f"{model.name}: got {len(grads)} gradients for "
                         f"{len(model.weight_names)} weights")
    reg = model.regularization()[1] if regularize else {}
    for name, g in zip(model.weight_names, grads):
        if name in model.trainable_weight_names:
            w = getattr(model, name)
            step = np.asarray(g) + reg.get(name, 0)
            setattr(model, name, (w - learning_rate * step).astype(w.dtype))
