"""Sequential models, the dependency-free .npz export, and Keras 3 file loading."""
import json
import os
import zipfile

import numpy as np

from . import _layers
from ._base import Layer

__all__ = ["Sequential", "load_model"]

_CLASSES = {name: getattr(_layers, name) for name in _layers.__all__
            if isinstance(getattr(_layers, name), type)}


def layer_from_config(entry):
    """A layer from a Keras-style ``{'class_name': ..., 'config': {...}}`` entry."""
    cls_name = entry.get("class_name")
    if cls_name not in _CLASSES:
        raise ValueError(f"unsupported layer class {cls_name!r}; supported: "
                         f"{sorted(_CLASSES)}")
    cfg = dict(entry.get("config") or {})
    for key in ("kernel_initializer", "bias_initializer"):
        if isinstance(cfg.get(key), dict) and cfg[key].get("module", "").startswith(
                "keras"):
            cfg[key] = {"class_name": cfg[key]["class_name"],
                        "config": cfg[key].get("config", {})}
    return _CLASSES[cls_name].from_config(cfg)


class Sequential(Layer):
    """A stack of layers: ``predict``, ``__call__``, ``forward``/``backward`` through
    the stack, Keras-style config, weights and the ``.npz`` export."""

    def __init__(self, layers=None, name=None, **kwargs):
        super().__init__(name=name, **kwargs)
        self.layers = []
        for layer in layers or []:
            self.add(layer)

    def add(self, layer):
        if not isinstance(layer, Layer):
            raise TypeError(f"Sequential.add takes a cdeconv layer, got "
                            f"{type(layer).__name__}")
        self.layers.append(layer)

    def call(self, x):
        for layer in self.layers:
            x = layer(x)
        return x

    def __call__(self, x):
        return self.call(np.asarray(x))

    def predict(self, x, batch_size=None):
        """Outputs for ``x``, in batches of ``batch_size`` (all at once if None)."""
        x = np.asarray(x)
        if batch_size is None:
            return self(x)
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        parts = [self(x[i:i + batch_size]) for i in range(0, len(x), int(batch_size))]
        return np.concatenate(parts) if parts else self(x)

    def forward(self, x):
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def backward(self, dy):
        """Back through the stack: (d loss/d input, [per-layer weight gradients])."""
        grads = []
        for layer in reversed(self.layers):
            dy, g = layer.backward(dy)
            grads.append(g)
        return dy, grads[::-1]

    def build(self, input_shape):
        x = np.zeros((1,) + tuple(input_shape[1:]), self.dtype)
        self(x)
        self.built = True

    def get_weights(self):
        return [w for layer in self.layers for w in layer.get_weights()]

    def set_weights(self, weights):
        weights = list(weights)
        for layer in self.layers:
            n = len(layer.weight_names)
            layer.set_weights(weights[:n])
            weights = weights[n:]
        if weights:
            raise ValueError(f"{len(weights)} weight arrays left over")

    def get_config(self):
        return {"name": self.name, "layers": [
            {"class_name": type(layer).__name__, "config": layer.get_config()}
            for layer in self.layers]}

    @classmethod
    def from_config(cls, config):
        model = cls(name=config.get("name"))
        for entry in config.get("layers", []):
            model.add(layer_from_config(entry))
        return model

    def _build_from(self, batch_shape):
        if batch_shape and all(v is not None for v in batch_shape[1:]):
            self.build(tuple(batch_shape))

    # --- the dependency-free export: one .npz, no pickle
    def save(self, path):
        """Write config + weights to a plain ``.npz`` (JSON config as bytes; loads with
        ``allow_pickle=False``). Needs the model built (called once)."""
        arrays = {"__config__": np.frombuffer(json.dumps(
            {"format": "cdeconv-npz-1", "model": self.get_config(),
             "input_shape": getattr(self, "_input_shape", None)}).encode(), np.uint8)}
        for i, layer in enumerate(self.layers):
            for j, w in enumerate(layer.get_weights()):
                arrays[f"{i:03d}/{j}"] = w
        np.savez(path, **arrays)

    def load_weights(self, path):
        """Weights from a Keras ``.weights.h5`` file (needs h5py), matched by layer
        order and class, as Keras 3 stores them."""
        with _h5(path) as f:
            _assign_h5(self, f)


def _h5(path):
    try:
        import h5py
    except ImportError:
        raise ImportError("reading .h5 weights needs h5py: pip install 'cdeconv[keras]'"
                          ) from None
    return h5py.File(path, "r")


def _snake(name):
    out = "".join("_" + c.lower() if c.isupper() else c for c in name).lstrip("_")
    return out.replace("conv2_d", "conv2d").replace("up_sampling2_d", "up_sampling2d") \
        .replace("max_pooling2_d", "max_pooling2d")


def _assign_h5(model, f):
    """Keras 3 H5IOStore: ``layers/<snake_class>[_i]/vars/<j>`` in layer order."""
    root = f["layers"] if "layers" in f else f
    seen = {}
    for layer in model.layers:
        if not layer.weight_names:
            continue
        base = _snake(type(layer).__name__)
        k = seen.get(base, 0)
        seen[base] = k + 1
        key = base if k == 0 else f"{base}_{k}"
        if key not in root or "vars" not in root[key]:
            raise ValueError(f"no weights for {layer.name} at layers/{key} in the file; "
                             f"found {sorted(root)}")
        vars_ = root[key]["vars"]
        layer.set_weights([np.asarray(vars_[str(j)]) for j in range(len(vars_))])


def load_model(path):
    """Load a model without TensorFlow: a Keras 3 ``.keras`` file (architecture from
    its ``config.json``, weights from ``model.weights.h5``; needs h5py) or the
    ``.npz`` written by ``Sequential.save``. Sequential models only."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no model file at {path!r}")
    if zipfile.is_zipfile(path) and path.endswith(".keras"):
        return _load_keras(path)
    try:
        data = np.load(path, allow_pickle=False)
    except Exception as exc:
        raise ValueError(f"{path!r} is neither a .keras file nor a cdeconv .npz export: "
                         f"{exc}") from None
    with data:
        if "__config__" not in data:
            raise ValueError(f"{path!r} is not a cdeconv .npz export (no __config__)")
        meta = json.loads(data["__config__"].tobytes().decode())
        model = Sequential.from_config(meta["model"])
        if meta.get("input_shape"):
            model._input_shape = meta["input_shape"]
        for i, layer in enumerate(model.layers):
            ws = [data[f"{i:03d}/{j}"] for j in range(len(layer.weight_names))]
            if ws:
                layer.build(_shape_for(layer, ws))
                layer.set_weights(ws)
    return model


def _shape_for(layer, ws):
    """An input shape that builds ``layer`` with weights ``ws``."""
    if isinstance(layer, _layers.Dense):
        return (None, ws[0].shape[0])
    if isinstance(layer, _layers.Conv2DTranspose):
        c = ws[0].shape[-1]
    elif isinstance(layer, _layers.Conv2D):
        c = ws[0].shape[-2] * layer.groups
    else:
        c = ws[0].shape[0]
        return (None, 1, 1, c) if layer.axis in (-1, 3) else (None, c, 1, 1)
    return (None, c, 1, 1) if layer.data_format == "channels_first" else (None, 1, 1, c)


def _load_keras(path):
    with zipfile.ZipFile(path) as z:
        cfg = json.loads(z.read("config.json"))
        if cfg.get("class_name") != "Sequential":
            raise ValueError(f"only Sequential models are supported, {path!r} holds a "
                             f"{cfg.get('class_name')}")
        layers_cfg = cfg["config"]["layers"]
        batch_shape = None
        entries = []
        for entry in layers_cfg:
            if entry["class_name"] == "InputLayer":
                batch_shape = entry["config"].get("batch_shape") or \
                    entry["config"].get("batch_input_shape")
                continue
            entries.append(entry)
        model = Sequential.from_config({"name": cfg["config"].get("name"),
                                        "layers": entries})
        if batch_shape is None:
            bs = (cfg.get("build_config") or {}).get("input_shape")
            batch_shape = bs
        model._input_shape = batch_shape
        model._build_from(batch_shape)
        import io
        weights = io.BytesIO(z.read("model.weights.h5"))
    with _h5(weights) as f:
        _assign_h5(model, f)
    return model
