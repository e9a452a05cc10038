"""cdeconv.layers models: Sequential and functional Model (skip connections), configs,
predict in batches, the numpy-only .npz export, .weights.h5, and real Keras 3 files
(tests/data/keras/unet_skip.keras, activations.keras: made by
make_keras_golden_layers.py with Keras 3.15 on TensorFlow; matched to 1e-5)."""
import json
import pathlib
import zipfile

import numpy as np
import pytest

import cdeconv
from cdeconv import layers as L

KERAS = pathlib.Path(__file__).resolve().parent / "data" / "keras"
DEMO = pathlib.Path(cdeconv.__file__).resolve().parent / "data" / "demo_cnn.npz"


def small_unet(seed=0):
    inp = L.Input((8, 8, 3), name="img")
    e1 = L.Conv2D(4, 3, padding="same", activation="relu", seed=seed)(inp)
    p1 = L.MaxPooling2D()(e1)
    b = L.Conv2D(8, 3, padding="same", seed=seed + 1)(p1)
    b = L.BatchNormalization()(b)
    u1 = L.Conv2DTranspose(4, 3, strides=2, padding="same", output_padding=1,
                           seed=seed + 2)(b)
    s1 = L.Concatenate()([u1, e1])
    out = L.Conv2D(1, 1, activation="sigmoid", seed=seed + 3)(s1)
    return L.Model(inp, out, name="small_unet")


def test_functional_model_computes_its_graph(rng):
    model = small_unet()
    x = rng.normal(size=(3, 8, 8, 3)).astype(np.float32)
    y = model.predict(x)
    by_name = {layer.name: layer for layer in model.layers}
    # the same graph by hand, layer by layer
    convs = [v for v in model.layers if isinstance(v, L.Conv2D)]
    e1 = convs[0](x)
    b = [v for v in model.layers if isinstance(v, L.BatchNormalization)][0](
        convs[1](L.MaxPooling2D()(e1)))
    u1 = [v for v in model.layers if isinstance(v, L.Conv2DTranspose)][0](b)
    expect = convs[2](np.concatenate([u1, e1], -1))
    np.testing.assert_array_equal(y, expect)
    assert model.compute_output_shape((None, 8, 8, 3)) == (None, 8, 8, 1)
    assert list(by_name)[0] == "img" and isinstance(by_name["img"], L.InputLayer)
    np.testing.assert_allclose(model.predict(x, batch_size=2), y, rtol=1e-6, atol=1e-7)
    assert model.count_params() == sum(w.size for w in model.get_weights())
    assert "small_unet" in model.summary(print_fn=None)
    with pytest.raises(ValueError, match=r"input 'img' must have shape"):
        model.predict(np.zeros((1, 8, 9, 3), np.float32))
    with pytest.raises(ValueError, match="batch_size"):
        model.predict(x, batch_size=0)


def test_multi_input_output_and_nested_models(rng):
    a, b = L.Input((4,), name="a"), L.Input((4,), name="b")
    inner = L.Sequential([L.Dense(5, seed=1, activation="tanh"), L.Dense(3, seed=2)],
                         name="inner")
    h = inner(L.Add()([a, b]))
    out1, out2 = L.Dense(2, seed=3)(h), L.Subtract()([a, b])
    model = L.Model([a, b], [out1, out2])
    xa, xb = rng.normal(size=(5, 4)), rng.normal(size=(5, 4))
    y1, y2 = model.predict([xa, xb], batch_size=2)
    np.testing.assert_allclose(y2, xa - xb, rtol=1e-6)
    head = next(v for v in model.layers if isinstance(v, L.Dense))
    np.testing.assert_allclose(y1, head(inner(xa + xb)), rtol=1e-6)
    y1d, _ = model({"a": xa, "b": xb})
    np.testing.assert_allclose(y1d, y1, rtol=1e-6, atol=1e-7)
    with pytest.raises(ValueError, match="takes 2 inputs"):
        model(xa)
    # config round trip keeps the graph, including the nested Sequential
    clone = L.Model.from_config(json.loads(json.dumps(model.get_config())))
    clone.set_weights(model.get_weights())
    for got, want in zip(clone.predict([xa, xb]), (y1, y2)):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)


def test_graph_errors():
    x = L.Input((4,))
    other = L.Input((4,))
    y = L.Add()([x, other])
    with pytest.raises(ValueError, match="disconnected"):
        L.Model(x, y)
    with pytest.raises(TypeError, match="KerasTensors"):
        L.Model(x, np.zeros(3))
    d1, d2 = L.Dense(2, name="same"), L.Dense(2, name="same")
    with pytest.raises(ValueError, match="unique"):
        L.Model(x, d2(d1(x)))
    with pytest.raises(ValueError, match="unsupported layer class 'LSTM' .*'lstm_7'"):
        L.deserialize_layer({"class_name": "LSTM", "config": {"name": "lstm_7"}})


def test_sequential_input_shapes_and_config(rng):
    seq = L.Sequential([L.Input((16,)), L.Dense(32, seed=0), L.Reshape((2, 2, 8)),
                        L.Conv2DTranspose(3, 4, strides=2, padding="same", seed=1)])
    assert seq.built and all(v.built for v in seq.layers)        # built from Input
    assert seq.compute_output_shape((None, 16)) == (None, 4, 4, 3)
    assert L.Sequential([L.Dense(4, input_shape=(3,))]).layers[0].built
    cfg = seq.get_config()
    assert cfg["layers"][0]["class_name"] == "InputLayer"
    clone = L.Sequential.from_config(cfg)
    clone.set_weights(seq.get_weights())
    z = rng.normal(size=(2, 16)).astype(np.float32)
    np.testing.assert_array_equal(clone(z), seq(z))
    with pytest.raises(ValueError, match="takes 4 weight arrays"):
        clone.set_weights(seq.get_weights()[:3])
    with pytest.raises(TypeError, match="cdeconv layer"):
        seq.add("dense")


@pytest.mark.parametrize("make", [
    lambda: small_unet(),
    lambda: L.Sequential([L.Input((8, 8, 3)), L.Conv2D(4, 3, seed=0),
                          L.BatchNormalization(), L.ReLU(max_value=6.0),
                          L.Conv2DTranspose(2, 3, strides=2, seed=1,
                                            kernel_regularizer="l2"),
                          L.UpSampling2D(interpolation="bilinear")])])
def test_npz_export_round_trip_without_pickle(make, tmp_path, rng):
    model = make()
    for layer in model.layers:                        # non-trivial weights everywhere
        if layer.weight_names:
            layer.set_weights([w + rng.normal(0, 0.1, w.shape).astype(w.dtype)
                               for w in layer.get_weights()])
    x = rng.normal(size=(2, 8, 8, 3)).astype(np.float32)
    y = model.predict(x)
    path = tmp_path / "m.npz"
    model.save(path)
    with np.load(path, allow_pickle=False) as data:           # plain arrays only
        meta = json.loads(data["__config__"].tobytes())
        assert meta["format"] == "cdeconv-npz-2"
        assert all(data[k].dtype != object for k in data.files)
    loaded = L.load_model(path)
    assert type(loaded) is type(model)
    assert [v.name for v in loaded.layers] == [v.name for v in model.layers]
    np.testing.assert_array_equal(loaded.predict(x), y)
    assert loaded.get_config() == model.get_config()
    # weights alone
    wpath = tmp_path / "w.npz"
    model.save_weights(wpath)
    fresh = make()
    fresh.load_weights(wpath)
    np.testing.assert_array_equal(fresh.predict(x), y)


def test_weights_h5_round_trip(tmp_path, rng):
    pytest.importorskip("h5py")
    model = small_unet()
    for layer in model.layers:
        if layer.weight_names:
            layer.set_weights([np.abs(rng.normal(size=w.shape)) + 0.1
                               for w in layer.get_weights()])
    x = rng.normal(size=(1, 8, 8, 3)).astype(np.float32)
    path = tmp_path / "m.weights.h5"
    model.save_weights(path)
    import h5py
    with h5py.File(path) as f:                              # Keras 3's layout
        assert sorted(f["layers"]) == ["batch_normalization", "concatenate", "conv2d",
                                       "conv2d_1", "conv2d_2", "conv2d_transpose",
                                       "input_layer", "max_pooling2d"]
        assert f["layers/conv2d_transpose/vars/0"].shape == (3, 3, 4, 8)
    fresh = small_unet(seed=10)
    fresh.load_weights(path)
    np.testing.assert_array_equal(fresh.predict(x), model.predict(x))
    wrong = L.Sequential([L.Input((8, 8, 3)), L.Conv2D(4, 3), L.Dense(2)])
    with pytest.raises(ValueError, match="no weights for layer .*Dense"):
        wrong.load_weights(path)


def test_loading_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        L.load_model(tmp_path / "missing.keras")
    np.savez(tmp_path / "other.npz", a=np.ones(3))
    with pytest.raises(ValueError, match="not a cdeconv .npz export"):
        L.load_model(tmp_path / "other.npz")
    (tmp_path / "junk.bin").write_bytes(b"not a model")
    with pytest.raises(ValueError, match="neither"):
        L.load_model(tmp_path / "junk.bin")
    with zipfile.ZipFile(tmp_path / "sub.keras", "w") as z:
        z.writestr("config.json", json.dumps({"class_name": "MyModel", "config": {}}))
    with pytest.raises(ValueError, match="only Sequential and functional models"):
        L.load_model(tmp_path / "sub.keras")
    with zipfile.ZipFile(tmp_path / "lstm.keras", "w") as z:
        z.writestr("config.json", json.dumps({"class_name": "Sequential", "config": {
            "layers": [{"class_name": "LSTM", "config": {"name": "lstm", "units": 4}}]}}))
    with pytest.raises(ValueError, match="unsupported layer class 'LSTM'"):
        L.load_model(tmp_path / "lstm.keras")
    with pytest.raises(TypeError, match="Sequential or Model"):
        L.save_model(L.Dense(2), tmp_path / "x.npz")


def test_keras_file_with_unknown_initializer_still_loads(tmp_path):
    """Initializers only matter before training: a file naming one cdeconv lacks
    (Orthogonal) loads, its weights come from the file."""
    pytest.importorskip("h5py")
    src = KERAS / "dcgan_like.keras"
    with zipfile.ZipFile(src) as z:
        cfg = json.loads(z.read("config.json"))
        weights = z.read("model.weights.h5")
    dense = next(e for e in cfg["config"]["layers"] if e["class_name"] == "Dense")
    dense["config"]["kernel_initializer"] = {"module": "keras.initializers",
                                             "class_name": "Orthogonal",
                                             "config": {"gain": 1.0, "seed": None}}
    with zipfile.ZipFile(tmp_path / "m.keras", "w") as z:
        z.writestr("config.json", json.dumps(cfg))
        z.writestr("model.weights.h5", weights)
    io = np.load(KERAS / "io.npz")
    np.testing.assert_allclose(L.load_model(tmp_path / "m.keras").predict(io["z"]),
                               io["gen_out"], rtol=1e-5, atol=1e-5)


def test_keras_functional_unet_with_skip_connections():
    """A Keras functional U-Net (skip Concatenates, Add, BN, bilinear UpSampling2D,
    ZeroPadding2D/Cropping2D, Dropout, two outputs) loads with cdeconv alone and gives
    Keras' outputs to 1e-5; so does the separate .weights.h5 into a rebuilt model."""
    pytest.importorskip("h5py")
    io = np.load(KERAS / "io_layers.npz")
    model = cdeconv.load_model(KERAS / "unet_skip.keras")
    assert isinstance(model, L.Model)
    mask, cls = model.predict(io["unet_in"])
    np.testing.assert_allclose(mask, io["unet_mask"], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(cls, io["unet_cls"], rtol=1e-5, atol=1e-5)
    with zipfile.ZipFile(KERAS / "unet_skip.keras") as z:
        keras_order = [e["name"] for e in json.loads(z.read("config.json"))["config"][
            "layers"]]
    assert [v.name for v in model.layers] == keras_order
    fresh = L.Model.from_config(model.get_config())
    assert not np.array_equal(fresh.predict(io["unet_in"])[0], mask)
    fresh.load_weights(KERAS / "unet_skip.weights.h5")
    np.testing.assert_allclose(fresh.predict(io["unet_in"])[0], io["unet_mask"],
                               rtol=1e-5, atol=1e-5)
    folded = L.fold_batch_norm(model)
    np.testing.assert_allclose(folded.predict(io["unet_in"])[0], io["unet_mask"],
                               rtol=1e-5, atol=1e-5)


def test_keras_activations_model():
    pytest.importorskip("h5py")
    io = np.load(KERAS / "io_layers.npz")
    model = cdeconv.load_model(KERAS / "activations.keras")
    names = {getattr(v, "activation_name", None) for v in model.layers}
    assert {"gelu", "selu", "mish", "hard_silu", "log_softmax"} <= names
    np.testing.assert_allclose(model.predict(io["act_in"]), io["act_out"], rtol=1e-5,
                               atol=1e-6)


def test_first_export_format_still_loads():
    """The bundled demo CNN was written by the first .npz format."""
    with np.load(DEMO, allow_pickle=False) as data:
        assert json.loads(data["__config__"].tobytes())["format"] == "cdeconv-npz-1"
    model = cdeconv.load_model(DEMO)
    assert isinstance(model, L.Sequential) and isinstance(model.layers[0], L.Conv2D)
    digits = np.load(DEMO.parent / "demo_digits.npz")
    acc = (model.predict(digits["images"]).argmax(1) == digits["labels"]).mean()
    assert acc > 0.9


def test_h5py_is_optional(monkeypatch, tmp_path, rng):
    """Without h5py: .keras files give an ImportError naming the extra; the .npz
    export needs nothing."""
    import sys
    monkeypatch.setitem(sys.modules, "h5py", None)
    with pytest.raises(ImportError, match=r"cdeconv\[keras\]"):
        L.load_model(KERAS / "dcgan_like.keras")
    model = small_unet()
    model.save(tmp_path / "m.npz")
    x = rng.normal(size=(1, 8, 8, 3)).astype(np.float32)
    np.testing.assert_array_equal(L.load_model(tmp_path / "m.npz").predict(x),
                                  model.predict(x))


def test_legacy_hdf5_model_file():
    """Keras' legacy HDF5 model format (model_config + model_weights/<layer name>),
    written by Keras 3.15's model.save('x.h5')."""
    pytest.importorskip("h5py")
    io = np.load(KERAS / "io_layers.npz")
    model = cdeconv.load_model(KERAS / "unet_skip_legacy.h5")
    mask, cls = model.predict(io["unet_in"])
    np.testing.assert_allclose(mask, io["unet_mask"], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(cls, io["unet_cls"], rtol=1e-5, atol=1e-5)
    fresh = L.Model.from_config(model.get_config())
    fresh.load_weights(KERAS / "unet_skip_legacy.h5")                 # by layer name
    np.testing.assert_allclose(fresh.predict(io["unet_in"])[1], io["unet_cls"],
                               rtol=1e-5, atol=1e-5)


def test_keras2_style_config(rng):
    """tf.keras 2 configs: batch_input_shape, plain dtype strings and list-style
    inbound nodes ([[name, node, tensor, kwargs], ...])."""
    init = {"class_name": "GlorotUniform", "config": {"seed": None}}
    cfg = {"class_name": "Functional", "config": {"name": "m", "layers": [
        {"class_name": "InputLayer", "name": "input_1", "inbound_nodes": [],
         "config": {"batch_input_shape": [None, 4, 4, 2], "dtype": "float32",
                    "sparse": False, "ragged": False, "name": "input_1"}},
        {"class_name": "Conv2DTranspose", "name": "up", "inbound_nodes": [
            [["input_1", 0, 0, {}]]],
         "config": {"name": "up", "trainable": True, "dtype": "float32", "filters": 3,
                    "kernel_size": [2, 2], "strides": [2, 2], "padding": "valid",
                    "data_format": "channels_last", "dilation_rate": [1, 1],
                    "activation": "relu", "use_bias": True, "kernel_initializer": init,
                    "bias_initializer": {"class_name": "Zeros", "config": {}},
                    "kernel_regularizer": None, "bias_regularizer": None,
                    "activity_regularizer": None, "kernel_constraint": None,
                    "bias_constraint": None, "output_padding": None}},
        {"class_name": "UpSampling2D", "name": "us", "inbound_nodes": [
            [["input_1", 0, 0, {}]]],
         "config": {"name": "us", "trainable": True, "dtype": "float32", "size": [2, 2],
                    "data_format": "channels_last", "interpolation": "nearest"}},
        {"class_name": "Concatenate", "name": "cat", "inbound_nodes": [
            [["up", 0, 0, {}], ["us", 0, 0, {}]]],
         "config": {"name": "cat", "trainable": True, "dtype": "float32", "axis": -1}}],
        "input_layers": [["input_1", 0, 0]], "output_layers": [["cat", 0, 0]]}}
    model = L.deserialize_layer(cfg)
    x = rng.normal(size=(2, 4, 4, 2)).astype(np.float32)
    up = next(v for v in model.layers if v.name == "up")
    np.testing.assert_array_equal(model.predict(x), np.concatenate(
        [up(x), x.repeat(2, 1).repeat(2, 2)], -1))
    seq = L.deserialize_layer({"class_name": "Sequential", "config": {"name": "s",
                                                                       "layers": [
        {"class_name": "Dense", "config": {"name": "d", "units": 3,
                                           "batch_input_shape": [None, 5]}}]}})
    assert seq.built and seq.compute_output_shape((None, 5)) == (None, 3)


def test_h5_variants_bfloat16_and_keras2_checkpoint_paths(tmp_path):
    """Keras stores bfloat16 weights as uint16 with a dtype attribute; Keras 2.13-2.15
    .keras files address layers as _layer_checkpoint_dependencies/<name>."""
    h5py = pytest.importorskip("h5py")
    model = L.Sequential([L.Input((3,)), L.Dense(2, name="dd")])
    kernel = np.array([[1.0, -2.5], [0.15625, 3.0], [-0.5, 1e-3]], np.float32)
    bits = (kernel.view(np.uint32) >> 16).astype(np.uint16)          # truncate to bf16
    path = tmp_path / "w.weights.h5"
    with h5py.File(path, "w") as f:
        g = f.create_group("_layer_checkpoint_dependencies/dd/vars")
        g.create_dataset("0", data=bits).attrs["dtype"] = "bfloat16"
        g.create_dataset("1", data=np.array([0.5, -1], np.float32))
    model.load_weights(path)
    expect = (bits.astype(np.uint32) << 16).view(np.float32)
    np.testing.assert_array_equal(model.layers[0].kernel, expect)
    np.testing.assert_allclose(expect, kernel, rtol=1e-2)                # bf16 precision
    np.testing.assert_array_equal(model.layers[0].bias, [0.5, -1])


def test_keras_nested_models_and_shared_layer(tmp_path):
    """Sub-models as layers (a Sequential block, a functional head; Keras counts a
    nested functional model's own graph as its node 0) and a layer called twice."""
    pytest.importorskip("h5py")
    io = np.load(KERAS / "io_layers.npz")
    model = cdeconv.load_model(KERAS / "nested.keras")
    kinds = {type(v).__name__ for v in model.layers}
    assert {"Sequential", "Model"} <= kinds
    np.testing.assert_allclose(model.predict(io["nested_in"]), io["nested_out"],
                               rtol=1e-5, atol=1e-5)
    cfg = model.get_config()
    head = next(e for e in cfg["layers"] if e["class_name"] == "Functional")
    refs = json.dumps(cfg["output_layers"])
    assert head["name"] in refs and '1, 0]' in refs                # Keras' node count
    model.save(tmp_path / "n.npz")
    np.testing.assert_array_equal(L.load_model(tmp_path / "n.npz").predict(
        io["nested_in"]), model.predict(io["nested_in"]))
    model.save_weights(tmp_path / "n.weights.h5")
    fresh = L.Model.from_config(cfg)
    fresh.load_weights(tmp_path / "n.weights.h5")
    np.testing.assert_array_equal(fresh.predict(io["nested_in"]),
                                  model.predict(io["nested_in"]))
