"""Loading and saving models without TensorFlow.

* Keras 3 ``.keras`` files: a zip holding ``config.json`` (the architecture, read into
  cdeconv layers) and ``model.weights.h5`` (read with h5py, the optional extra
  ``cdeconv[keras]``).
* Keras ``.weights.h5`` files: weights only, matched as Keras 3 matches them: by
  position and class (``layers/conv2d_transpose_1/vars/0`` is the kernel of the
  second Conv2DTranspose), recursively for nested models.
* Legacy (Keras 2 style) HDF5 ``.h5`` model and weights files: ``model_config`` and
  ``model_weights/<layer name>/...``, matched by layer name.
* cdeconv's own ``.npz``: the same Keras-style JSON config (stored as bytes) and the
  weight arrays under the same paths, loadable with ``allow_pickle=False`` and nothing
  but NumPy.
"""
import io
import json
import os
import zipfile

import numpy as np

from ._layer import deferred_initialization, to_snake_case
from ._containers import Model, Sequential, _Container, deserialize_layer, serialize_layer

__all__ = ["load_model", "save_model", "load_weights", "save_weights"]

NPZ_FORMAT = "cdeconv-npz-2"


def _weight_paths(container, prefix="layers"):
    """``(path, layer)`` for every non-container layer, with Keras 3's weight-file
    paths (class-based names, numbered per class within each container)."""
    used = {}
    for layer in container.layers:
        cls = "Functional" if isinstance(layer, Model) else type(layer).__name__
        base = to_snake_case(cls)
        n = used.get(base, 0)
        used[base] = n + 1
        path = f"{prefix}/{base}" if n == 0 else f"{prefix}/{base}_{n}"
        if isinstance(layer, _Container):
            yield from _weight_paths(layer, path + "/layers")
        else:
            yield path, layer


def _require_h5py():
    try:
        import h5py
    except ImportError:
        raise ImportError("reading or writing Keras .h5 weights needs h5py: pip install "
                          "'cdeconv[keras]'") from None
    return h5py


def _check_container(model, what):
    if not isinstance(model, _Container):
        raise TypeError(f"{what} takes a Sequential or Model, got {type(model).__name__} "
                        "(wrap a single layer in Sequential([...]))")


def _assign(model, read, source):
    """Set every weighted layer's weights from ``read(path) -> list or None``."""
    for path, layer in _weight_paths(model):
        if not layer.weight_names:
            continue
        arrays = read(path, layer)
        if arrays is None:
            raise ValueError(f"{source} has no weights for layer {layer.name!r} "
                             f"({type(layer).__name__}) at {path}/vars")
        if not layer.built:
            raise ValueError(f"{layer.name} is not built: call the model once (or give "
                             "it an input shape) before loading weights")
        if len(arrays) != len(layer.weight_names):
            raise ValueError(f"{source}: {path} holds {len(arrays)} arrays, layer "
                             f"{layer.name!r} takes {len(layer.weight_names)} "
                             f"({', '.join(layer.weight_names)})")
        layer.set_weights(arrays)


def _h5_array(dataset):
    """A dataset as an array; Keras stores bfloat16 as uint16 with a dtype attribute."""
    a = np.asarray(dataset)
    if dataset.attrs.get("dtype") in ("bfloat16", b"bfloat16"):
        a = (a.astype(np.uint32) << 16).view(np.float32)
    return a


def _assign_h5(model, f, source):
    if "layer_names" in f.attrs or ("model_weights" in f and "layers" not in f):
        _assign_legacy_h5(model, f["model_weights"] if "model_weights" in f else f,
                          source)
        return

    def read(path, layer):
        if path not in f or "vars" not in f[path]:
            # .keras files of Keras 2.13-2.15 address layers by name
            path = f"_layer_checkpoint_dependencies/{layer.name}"
            if path not in f or "vars" not in f[path]:
                return None
        group = f[path]["vars"]
        return [_h5_array(group[str(j)]) for j in range(len(group))]
    try:
        _assign(model, read, source)
    except ValueError as exc:
        top = sorted(f["layers"]) if "layers" in f else sorted(f)
        raise ValueError(f"{exc} (the file's top-level layers: {top})") from None


def _str(v):
    return v.decode() if isinstance(v, bytes) else str(v)


def _assign_legacy_h5(model, group, source):
    """Keras 2 / legacy HDF5 weights: ``<layer name>/<weight name>`` datasets listed
    in each layer group's ``weight_names`` attribute, matched by layer name."""
    for layer in model.layers:
        if isinstance(layer, _Container):
            raise ValueError(f"{source}: nested model {layer.name!r} in a legacy HDF5 "
                             "file is not supported; save the model as .keras")
        if not layer.weight_names:
            continue
        if layer.name not in group:
            raise ValueError(f"{source} has no weights for layer {layer.name!r} (legacy "
                             f"HDF5 files match by name; found {sorted(group)})")
        g = group[layer.name]
        names = [_str(n) for n in g.attrs.get("weight_names", [])]
        if len(names) != len(layer.weight_names):
            raise ValueError(f"{source}: {layer.name!r} holds {len(names)} arrays "
                             f"({names}), the layer takes {len(layer.weight_names)}")
        if not layer.built:
            raise ValueError(f"{layer.name} is not built: call the model once (or give "
                             "it an input shape) before loading weights")
        layer.set_weights([_h5_array(g[n]) for n in names])


def _load_legacy_h5(path):
    h5py = _require_h5py()
    with h5py.File(path, "r") as f:
        raw = f.attrs.get("model_config")
        if raw is None:
            raise ValueError(f"{path!r} holds weights only (no model_config): build the "
                             "architecture with cdeconv.layers and call load_weights")
        model = _model_from_config(json.loads(_str(raw)), repr(path))
        _assign_legacy_h5(model, f["model_weights"] if "model_weights" in f else f,
                          repr(path))
    return model


def _assign_npz(model, data, source):
    keys = set(data.files)

    def read(path, layer):
        out, j = [], 0
        while f"{path}/vars/{j}" in keys:
            out.append(data[f"{path}/vars/{j}"])
            j += 1
        return out if out or f"{path}/vars" in keys else None
    _assign(model, read, source)


# ------------------------------------------------------------------ .keras

def _read_keras_zip(path):
    with zipfile.ZipFile(path) as z:
        names = set(z.namelist())
        if "config.json" not in names:
            raise ValueError(f"{path!r} is a zip file but not a Keras 3 model (no "
                             "config.json)")
        config = json.loads(z.read("config.json"))
        weights = z.read("model.weights.h5") if "model.weights.h5" in names else None
        if weights is None and names & {"model.weights.npz", "model.weights.json"}:
            raise ValueError(f"{path!r} stores its weights in a format other than "
                             "model.weights.h5 (Keras' npz store is pickled); re-save it "
                             "with the default weights format")
    return config, weights


def _model_from_config(config, source):
    if not isinstance(config, dict) or config.get("class_name") not in (
            "Sequential", "Functional", "Model"):
        cls = config.get("class_name") if isinstance(config, dict) else type(config)
        raise ValueError(f"{source}: only Sequential and functional models can be "
                         f"loaded, this file holds a {cls!r} (subclassed models have no "
                         "architecture in their config)")
    with deferred_initialization():
        model = deserialize_layer(config)
    return model


def _load_keras(path):
    config, weights = _read_keras_zip(path)
    model = _model_from_config(config, repr(path))
    if weights is None:
        raise ValueError(f"{path!r} holds no weights (model.weights.h5)")
    h5py = _require_h5py()
    with h5py.File(io.BytesIO(weights), "r") as f:
        _assign_h5(model, f, f"{path!r}")
    return model


# ------------------------------------------------------------------ cdeconv .npz

def save_model(model, path):
    """Write ``model`` to a dependency-free ``.npz``.

    The Keras-style JSON config is stored as a ``uint8`` array under ``__config__`` and
    each weight under its Keras weight-file path (``layers/conv2d_transpose/vars/0``):
    ``np.load(path, allow_pickle=False)`` reads it, and :func:`load_model` rebuilds the
    model with nothing but NumPy and SciPy.

    Parameters
    ----------
    model : Sequential or Model
        Built (called once, or given an input shape).
    path : str or path-like
        ``.npz`` is appended by NumPy if missing.
    """
    _check_container(model, "save_model")
    meta = {"format": NPZ_FORMAT, "model": serialize_layer(model)}
    if isinstance(model, Sequential) and model._input_shape is not None:
        meta["input_shape"] = [None if v is None else int(v) for v in model._input_shape]
    arrays = {"__config__": np.frombuffer(json.dumps(meta).encode(), np.uint8)}
    for wpath, layer in _weight_paths(model):
        if layer.weight_names and not layer.built:
            raise ValueError(f"cannot save {model.name}: layer {layer.name!r} is not built "
                             "(call the model once first)")
        arrays[f"{wpath}/vars"] = np.zeros(0, np.uint8)
        for j, w in enumerate(layer.get_weights()):
            arrays[f"{wpath}/vars/{j}"] = w
    np.savez(path, **arrays)


def _load_npz(path):
    try:
        data = np.load(path, allow_pickle=False)
    except Exception as exc:   # noqa: BLE001 - report what the file is not
        raise ValueError(f"{path!r} is neither a Keras .keras file nor a cdeconv .npz "
                         f"export ({type(exc).__name__}: {exc})") from None
    if not hasattr(data, "files"):
        raise ValueError(f"{path!r} holds a single array, not a cdeconv .npz export")
    with data:
        if "__config__" not in data.files:
            raise ValueError(f"{path!r} is not a cdeconv .npz export (no __config__)")
        meta = json.loads(data["__config__"].tobytes().decode())
        fmt = meta.get("format")
        if fmt == NPZ_FORMAT:
            model = _model_from_config(meta["model"], repr(path))
            _assign_npz(model, data, repr(path))
            return model
        if fmt == "cdeconv-npz-1":
            return _load_npz_v1(meta, data)
        raise ValueError(f"{path!r}: unknown cdeconv export format {fmt!r}")


def _load_npz_v1(meta, data):
    """The first export format: a Sequential, weights under ``<layer index>/<j>``."""
    from . import _conv, _core
    with deferred_initialization():
        model = Sequential.from_config(meta["model"])
        if meta.get("input_shape") and not model.built:
            model.build(tuple(meta["input_shape"]))
    for i, layer in enumerate(model.layers):
        ws = [data[f"{i:03d}/{j}"] for j in range(len(layer.weight_names))]
        if not ws:
            continue
        if not layer.built:                      # no input shape recorded
            if isinstance(layer, _core.Dense):
                shape = (None, ws[0].shape[0])
            elif isinstance(layer, _core.BatchNormalization):
                shape = (None, 1, 1, ws[0].shape[0]) if layer.axis in (-1, 3) else \
                    (None, ws[0].shape[0], 1, 1)
            else:
                c = ws[0].shape[-1] if isinstance(layer, _conv.Conv2DTranspose) else \
                    ws[0].shape[-2] * layer.groups
                shape = (None, c, 1, 1) if layer.data_format == "channels_first" else \
                    (None, 1, 1, c)
            with deferred_initialization():
                layer._maybe_build(shape)
        layer.set_weights(ws)
    return model


# ------------------------------------------------------------------ public entry points

def load_model(path):
    """Load a model without TensorFlow.

    Parameters
    ----------
    path : str or path-like
        A Keras 3 ``.keras`` file (architecture from its ``config.json``, weights from
        its ``model.weights.h5``; needs h5py: ``pip install 'cdeconv[keras]'``), a
        legacy (Keras 2 style) HDF5 model file ``.h5`` with its ``model_config`` (h5py),
        or an ``.npz`` written by :func:`save_model` / ``model.save``.

    Returns
    -------
    Sequential or Model
        With ``predict(x, batch_size=None)``, ``__call__``, ``forward``/``backward``,
        ``get_weights``, ``save``.

    Raises
    ------
    FileNotFoundError
    ValueError
        For a file of another kind, an unsupported layer class (named in the message)
        or weights that do not fit the architecture.
    ImportError
        For a ``.keras`` file when h5py is not installed.

    Examples
    --------
    >>> import cdeconv
    >>> generator = cdeconv.load_model("generator.keras")        # doctest: +SKIP
    >>> images = generator.predict(z, batch_size=8)              # doctest: +SKIP
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no model file at {path!r}")
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            is_keras = "config.json" in z.namelist()
        if is_keras:
            return _load_keras(path)
    with open(path, "rb") as fh:
        is_hdf5 = fh.read(8) == b"\x89HDF\r\n\x1a\n"
    if is_hdf5:
        return _load_legacy_h5(path)
    return _load_npz(path)


def load_weights(model, path):
    """Set ``model``'s weights from a file, matched by layer position and class as
    Keras 3 does.

    Parameters
    ----------
    model : Sequential or Model
        Built, with the architecture the weights were saved from.
    path : str or path-like
        A Keras 3 ``.weights.h5`` (h5py), a ``.keras`` file (its weights), a legacy
        Keras 2 HDF5 weights or model file (matched by layer name, as Keras 2 did), or
        a cdeconv ``.npz`` (from :func:`save_model` or :func:`save_weights`).
    """
    _check_container(model, "load_weights")
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no weights file at {path!r}")
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            is_keras = "config.json" in z.namelist()
        if is_keras:
            _, weights = _read_keras_zip(path)
            h5py = _require_h5py()
            with h5py.File(io.BytesIO(weights), "r") as f:
                _assign_h5(model, f, repr(path))
            return
        with np.load(path, allow_pickle=False) as data:
            _assign_npz(model, data, repr(path))
        return
    h5py = _require_h5py()
    if not h5py.is_hdf5(path):
        raise ValueError(f"{path!r} is neither an HDF5 weights file nor a .keras/.npz "
                         "file")
    with h5py.File(path, "r") as f:
        _assign_h5(model, f, repr(path))


def save_weights(model, path):
    """Write ``model``'s weights: Keras 3's ``.weights.h5`` layout for ``.h5`` paths
    (needs h5py; Keras' ``model.load_weights`` reads it into the same architecture),
    otherwise an ``.npz`` with the same paths."""
    _check_container(model, "save_weights")
    path = os.fspath(path)
    entries = list(_weight_paths(model))
    for _, layer in entries:
        if layer.weight_names and not layer.built:
            raise ValueError(f"cannot save weights: layer {layer.name!r} is not built")
    if not path.endswith((".h5", ".hdf5")):
        arrays = {}
        for wpath, layer in entries:
            arrays[f"{wpath}/vars"] = np.zeros(0, np.uint8)
            for j, w in enumerate(layer.get_weights()):
                arrays[f"{wpath}/vars/{j}"] = w
        np.savez(path, **arrays)
        return
    h5py = _require_h5py()
    with h5py.File(path, "w") as f:
        f.create_group("vars").attrs["name"] = model.name
        for wpath, layer in entries:
            group = f.require_group(wpath).create_group("vars")
            group.attrs["name"] = layer.name
            for j, w in enumerate(layer.get_weights()):
                group.create_dataset(str(j), data=w)
