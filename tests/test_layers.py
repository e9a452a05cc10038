"""cdeconv.layers: Keras-compatible layers on the public ops, their gradients, weights,
configs, the .npz export and real Keras 3 files (made by tests/data/make_keras_golden.py;
the tests need no TensorFlow)."""
import pathlib

import numpy as np
import pytest

import cdeconv
from cdeconv import _reference
from cdeconv import layers as L

KERAS = pathlib.Path(__file__).resolve().parent / "data" / "keras"


def test_seed_examples_shapes():
    """002_*: Conv2DTranspose(32, 3, strides=2, padding='same') on [None,28,28,1]
    -> [None,56,56,32]; filters=3 on 224x224x3 -> 448x448x3."""
    layer = L.Conv2DTranspose(filters=32, kernel_size=3, strides=2, padding="same")
    assert layer(np.zeros((2, 28, 28, 1), np.float32)).shape == (2, 56, 56, 32)
    assert layer.compute_output_shape((None, 28, 28, 1)) == (None, 56, 56, 32)
    layer = L.Conv2DTranspose(filters=3, kernel_size=3, strides=2, padding="same")
    assert layer(np.zeros((1, 224, 224, 3), np.float32)).shape == (1, 448, 448, 3)


@pytest.mark.parametrize("k,s,padding,op,d", [
    (3, 2, "same", None, 1), (3, 2, "valid", None, 1), (4, 2, "same", None, 1),
    (2, 3, "valid", None, 1), (3, 2, "valid", 1, 1), (3, 2, "same", 1, 1),
    (5, 3, "same", 2, 1), (3, 1, "same", None, 2), (3, 1, "valid", None, 2)])
@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_conv2d_transpose_layer_matches_the_op_and_keras_sizes(k, s, padding, op, d,
                                                                data_format, rng):
    layer = L.Conv2DTranspose(5, k, strides=s, padding=padding, output_padding=op,
                              dilation_rate=d, data_format=data_format,
                              activation="relu", bias_initializer="random_normal", seed=1)
    cf = data_format == "channels_first"
    x = rng.normal(size=(2, 3, 4, 5) if cf else (2, 4, 5, 3)).astype(np.float32)
    y = layer(x)
    oh = L.deconv_output_length(4, k, padding, op, s, d)
    ow = L.deconv_output_length(5, k, padding, op, s, d)
    assert y.shape == ((2, 5, oh, ow) if cf else (2, oh, ow, 5))
    assert y.shape == layer.compute_output_shape(x.shape)
    z = _reference.conv2d_transpose(x, layer.kernel, [oh, ow], s, padding.upper(),
                                    "NCHW" if cf else "NHWC", d)
    z = z + layer.bias.reshape((1, 5, 1, 1) if cf else (1, 1, 1, 5))
    np.testing.assert_allclose(y, np.maximum(z, 0), rtol=1e-5, atol=1e-5)


def _fd_check(layer, x, rng, n_probe=5, h=1e-6):
    """Finite differences of sum(forward(x) * r) w.r.t. x and every weight."""
    y = layer.forward(x)
    r = rng.normal(size=y.shape)
    dx, grads = layer.backward(r)
    def loss():
        return float(np.vdot(layer(x), r))
    for _ in range(n_probe):
        idx = tuple(rng.integers(0, s) for s in x.shape)
        old = x[idx]
        x[idx] = old + h
        up = loss()
        x[idx] = old - h
        down = loss()
        x[idx] = old
        assert abs((up - down) / (2 * h) - dx[idx]) < 1e-5 * max(1, abs(dx[idx]))
    for name, g in zip(layer.weight_names, grads):
        w = getattr(layer, name)
        if name.startswith("moving"):
            continue
        for _ in range(n_probe):
            idx = tuple(rng.integers(0, s) for s in w.shape)
            old = w[idx]
            w[idx] = old + h
            up = loss()
            w[idx] = old - h
            down = loss()
            w[idx] = old
            assert abs((up - down) / (2 * h) - g[idx]) < 1e-5 * max(1, abs(g[idx])), name


@pytest.mark.parametrize("make,shape", [
    (lambda: L.Conv2DTranspose(3, 3, strides=2, padding="same", activation="tanh",
                               dtype="float64"), (2, 4, 5, 2)),
    (lambda: L.Conv2DTranspose(2, 4, strides=2, padding="valid", output_padding=1,
                               data_format="channels_first", dtype="float64"),
     (2, 3, 3, 4)),
    (lambda: L.Conv2D(4, 3, strides=2, padding="same", activation="sigmoid",
                      dtype="float64"), (2, 7, 6, 2)),
    (lambda: L.Conv2D(4, 3, padding="valid", groups=2, dtype="float64"), (2, 6, 6, 4)),
    (lambda: L.Dense(5, activation="elu", dtype="float64"), (3, 7)),
    (lambda: L.BatchNormalization(dtype="float64"), (2, 3, 3, 4)),
    (lambda: L.LeakyReLU(0.2, dtype="float64"), (2, 5)),
    (lambda: L.ReLU(max_value=1.0, dtype="float64"), (2, 5)),
    (lambda: L.UpSampling2D((2, 3), dtype="float64"), (2, 3, 2, 2)),
    (lambda: L.MaxPooling2D(2, dtype="float64"), (2, 4, 6, 3)),
    (lambda: L.Flatten(dtype="float64"), (2, 3, 2, 2)),
    (lambda: L.Reshape((6, 2), dtype="float64"), (2, 3, 4)),
])
def test_layer_gradients_by_finite_differences(make, shape, rng):
    layer = make()
    x = rng.normal(size=shape)
    if isinstance(layer, L.BatchNormalization):
        layer(x)
        layer.set_weights([rng.uniform(0.5, 2, 4), rng.normal(size=4),
                           rng.normal(size=4), rng.uniform(0.5, 2, 4)])
    _fd_check(layer, x, rng)


def test_sequential_backward_and_an_sgd_step_reduce_the_loss(rng):
    model = L.Sequential([L.Dense(2 * 2 * 4, dtype="float64", seed=0),
                          L.Reshape((2, 2, 4), dtype="float64"),
                          L.LeakyReLU(0.2, dtype="float64"),
                          L.Conv2DTranspose(1, 4, strides=2, padding="same",
                                            kernel_regularizer="l2", dtype="float64",
                                            seed=1)])
    z = rng.normal(size=(8, 3))
    target = rng.normal(size=(8, 4, 4, 1))
    losses = []
    for _ in range(60):
        y = model.forward(z)
        reg, reg_grads = model.layers[-1].regularization()
        losses.append(float(((y - target) ** 2).mean()) + reg)
        _, grads = model.backward(2 * (y - target) / y.size)
        for layer, g in zip(model.layers, grads):
            for name, gw in zip(layer.weight_names, g):
                gw = gw + layer.regularization()[1].get(name, 0)
                setattr(layer, name, getattr(layer, name) - 0.3 * gw)
    assert losses[-1] < 0.8 * losses[0]
    assert reg_grads and reg > 0


def test_regularizer_penalty_and_gradient(rng):
    reg = L.get_regularizer({"class_name": "L1L2", "config": {"l1": 0.1, "l2": 0.2}})
    w = rng.normal(size=(3, 4))
    assert reg(w) == pytest.approx(0.1 * np.abs(w).sum() + 0.2 * (w * w).sum())
    e = np.zeros_like(w)
    e[1, 2] = 1e-6
    assert (reg(w + e) - reg(w - e)) / 2e-6 == pytest.approx(reg.gradient(w)[1, 2],
                                                              rel=1e-5)


def test_weights_and_config_round_trip(rng):
    layer = L.Conv2DTranspose(4, 3, strides=2, padding="same", output_padding=1,
                              activation="relu", name="up")
    x = rng.normal(size=(1, 3, 3, 2)).astype(np.float32)
    y = layer(x)
    w = layer.get_weights()
    assert [a.shape for a in w] == [(3, 3, 4, 2), (4,)]    # Keras' layout
    clone = L.Conv2DTranspose.from_config(layer.get_config())
    clone(x)
    clone.set_weights(w)
    np.testing.assert_array_equal(clone(x), y)
    with pytest.raises(ValueError, match="shape"):
        clone.set_weights([w[0][..., :1], w[1]])
    with pytest.raises(ValueError, match="2 weight arrays"):
        clone.set_weights(w[:1])
    with pytest.raises(ValueError, match="not built"):
        L.Dense(3).set_weights([np.ones((2, 3)), np.ones(3)])


def test_batchnorm_folding(rng):
    for conv in (L.Conv2DTranspose(4, 3, strides=2, padding="same", seed=0),
                 L.Conv2D(4, 3, padding="same", seed=0), L.Dense(4, seed=0)):
        bn = L.BatchNormalization()
        x = rng.normal(size=(2, 5, 5, 3) if not isinstance(conv, L.Dense) else (6, 3))
        x = x.astype(np.float32)
        bn(conv(x))
        bn.set_weights([rng.uniform(0.5, 2, 4), rng.normal(size=4), rng.normal(size=4),
                        rng.uniform(0.5, 2, 4)])
        folded = bn.fold_into(conv)
        np.testing.assert_allclose(folded(x), bn(conv(x)), rtol=1e-4, atol=1e-4)


def test_initializers(rng):
    g = L.get_initializer("glorot_uniform", seed=3)
    a, b = g((3, 3, 8, 4)), g((3, 3, 8, 4))
    np.testing.assert_array_equal(a, b)                       # seeded
    lim = np.sqrt(6 / (3 * 3 * 8 + 3 * 3 * 4))
    assert np.abs(a).max() <= lim and a.std() > lim / 3
    assert L.get_initializer("he_normal", seed=1)((100, 100)).std() == pytest.approx(
        np.sqrt(2 / 100), rel=0.15)
    assert np.all(L.get_initializer({"class_name": "Constant",
                                     "config": {"value": 2.5}})((2,)) == 2.5)
    with pytest.raises(ValueError, match="unknown initializer"):
        L.get_initializer("nope")
    # bilinear: FCN's kernel, and it upsamples a constant image to a constant interior
    w = L.get_initializer("bilinear")((4, 4, 2, 2))
    np.testing.assert_allclose(w[:, :, 0, 0], np.outer([.25, .75, .75, .25],
                                                       [.25, .75, .75, .25]))
    assert np.all(w[:, :, 0, 1] == 0)
    y = cdeconv.conv2d_transpose(np.ones((1, 5, 5, 2), np.float32), w, None, 2, "SAME")
    np.testing.assert_allclose(y[0, 2:-2, 2:-2], 1.0, rtol=1e-6)
    # ICNR: no checkerboard at initialisation (all phases equal on a constant input)
    w = L.get_initializer("icnr", seed=0)((4, 4, 3, 2))
    y = cdeconv.conv2d_transpose(np.ones((1, 6, 6, 2), np.float32), w, None, 2, "SAME")
    inner = y[0, 2:-2, 2:-2]
    np.testing.assert_allclose(inner, np.broadcast_to(inner[:1, :1], inner.shape),
                               rtol=1e-5)


def test_checkerboard_diagnostic():
    assert L.checkerboard(3, 2).tolist() == [[4, 2], [2, 1]]
    assert np.all(L.checkerboard(4, 2) == 4)
    with pytest.warns(UserWarning, match="unevenly"):
        L.checkerboard(3, 2, warn=True)


def test_npz_export_round_trip_without_pickle(tmp_path, rng):
    model = L.Sequential([L.Dense(32, seed=0), L.Reshape((2, 2, 8)),
                          L.BatchNormalization(), L.ReLU(),
                          L.Conv2DTranspose(3, 4, strides=2, padding="same", seed=1,
                                            activation="tanh")])
    z = rng.normal(size=(4, 5)).astype(np.float32)
    y = model.predict(z)
    path = tmp_path / "gen.npz"
    model.save(path)
    with np.load(path, allow_pickle=False) as data:
        assert "__config__" in data
    loaded = L.load_model(path)
    np.testing.assert_array_equal(loaded.predict(z), y)
    np.testing.assert_allclose(loaded.predict(z, batch_size=3), y, rtol=1e-5, atol=1e-6)
    with pytest.raises(FileNotFoundError):
        L.load_model(tmp_path / "missing.npz")
    np.savez(tmp_path / "other.npz", a=np.ones(3))
    with pytest.raises(ValueError, match="not a cdeconv"):
        L.load_model(tmp_path / "other.npz")


@pytest.mark.parametrize("name,x,y", [("dcgan_like", "z", "gen_out"),
                                      ("decoder", "img", "dec_out")])
def test_real_keras_files(name, x, y):
    pytest.importorskip("h5py")
    io = np.load(KERAS / "io.npz")
    model = L.load_model(KERAS / f"{name}.keras")
    np.testing.assert_allclose(model.predict(io[x]), io[y], rtol=1e-5, atol=1e-5)
    if name == "dcgan_like":
        fresh = L.Sequential.from_config(model.get_config())
        fresh.build((None, 16))
        fresh.load_weights(KERAS / "dcgan_like.weights.h5")
        np.testing.assert_allclose(fresh.predict(io[x]), io[y], rtol=1e-5, atol=1e-5)


def test_bad_layer_arguments():
    with pytest.raises(ValueError, match="padding"):
        L.Conv2DTranspose(3, 3, padding="full")
    with pytest.raises(ValueError, match="filters"):
        L.Conv2DTranspose(0, 3)
    with pytest.raises(ValueError, match="output_padding"):
        L.Conv2DTranspose(3, 3, strides=2, output_padding=2)
    with pytest.raises(ValueError, match="data_format"):
        L.Conv2D(3, 3, data_format="NHWC")
    with pytest.raises(TypeError, match="unexpected"):
        L.Dense(3, bogus=1)
    with pytest.raises(ValueError, match="input channels"):
        layer = L.Conv2DTranspose(3, 3)
        layer(np.zeros((1, 4, 4, 2), np.float32))
        layer(np.zeros((1, 4, 4, 5), np.float32))
    with pytest.raises(ValueError, match="unsupported layer class"):
        L.Sequential.from_config({"layers": [{"class_name": "LSTM", "config": {}}]})
    with pytest.raises(RuntimeError, match="forward"):
        L.Dense(2).backward(np.zeros((1, 2)))


@pytest.mark.parametrize("name", ["dcgan", "unet_decoder", "article_mnist"])
def test_more_real_keras_models(name):
    """The issue's DCGAN generator (Dense -> BN -> LeakyReLU -> Reshape -> 3x
    Conv2DTranspose -> tanh), a U-Net-style decoder and the MNIST article example, loaded
    with cdeconv alone: Keras' outputs within 1e-5 (float32 sums in another order)."""
    pytest.importorskip("h5py")
    io = np.load(KERAS / "io_more.npz")
    key = {"dcgan": "dcgan", "unet_decoder": "unet", "article_mnist": "mnist"}[name]
    model = L.load_model(KERAS / f"{name}.keras")
    np.testing.assert_allclose(model.predict(io[f"{key}_in"]), io[f"{key}_out"],
                               rtol=1e-5, atol=1e-5)


def test_article_rgb224_keras_model():
    """filters=3, 3x3, strides 2, 'same' on 224x224x3 -> 448x448x3 (002_*)."""
    pytest.importorskip("h5py")
    io = np.load(KERAS / "io_more.npz")
    x = (np.load(KERAS / "rgb_in.npy") / 255).astype(np.float32)
    y = L.load_model(KERAS / "article_rgb224.keras").predict(x)
    assert y.shape == (1, 448, 448, 3)
    np.testing.assert_allclose(y[:, ::8, ::8, :], io["rgb_out_sub"], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(y.sum((1, 2)), io["rgb_out_sum"], rtol=1e-4)
