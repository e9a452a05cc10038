"""Backward passes of cdeconv.layers: every layer's input and weight gradients against
central finite differences (float64, every element), graphs with skip connections and
shared layers, regularizers, and SGD steps that train."""
import numpy as np
import pytest

from cdeconv import layers as L

F64 = {"dtype": "float64"}


def numeric_grad(f, v, h=1e-6):
    g = np.zeros_like(v)
    for idx in np.ndindex(*v.shape):
        old = v[idx]
        v[idx] = old + h
        up = f()
        v[idx] = old - h
        down = f()
        v[idx] = old
        g[idx] = (up - down) / (2 * h)
    return g


def check_layer(layer, x, rng, rtol=1e-6, atol=1e-8):
    """d/d(x, weights) of sum(layer(x) * r) from backward() == finite differences."""
    y = layer.forward(x)
    r = rng.normal(size=y.shape)
    dx, grads = layer.backward(r)

    def loss():
        return float(np.vdot(layer(x), r))
    xs, dxs = (x, dx) if isinstance(x, list) else ([x], [dx])
    assert len(dxs) == len(xs)
    for xi, dxi in zip(xs, dxs):
        assert dxi.shape == xi.shape
        np.testing.assert_allclose(dxi, numeric_grad(loss, xi), rtol=rtol, atol=atol)
    assert len(grads) == len(layer.weight_names)
    for name, g in zip(layer.weight_names, grads):
        w = getattr(layer, name)
        assert g.shape == w.shape, name
        if name.startswith("moving_"):
            assert not g.any()                    # statistics are not trained
            continue
        np.testing.assert_allclose(g, numeric_grad(loss, w), rtol=rtol, atol=atol,
                                   err_msg=name)


def away_from_kinks(x, points=(0.0,), gap=1e-3):
    for p in points:
        x[np.abs(x - p) < gap] += 3 * gap
    return x


LAYERS = [
    ("convT same s2", lambda: L.Conv2DTranspose(3, 3, strides=2, padding="same",
                                                activation="tanh", **F64), (2, 3, 4, 2)),
    ("convT same op1", lambda: L.Conv2DTranspose(2, 4, strides=2, padding="same",
                                                 output_padding=1, **F64), (1, 3, 3, 2)),
    ("convT valid op cf", lambda: L.Conv2DTranspose(
        2, 3, strides=(2, 3), padding="valid", output_padding=(1, 2),
        data_format="channels_first", **F64), (2, 2, 3, 2)),
    ("convT dilated", lambda: L.Conv2DTranspose(2, 3, dilation_rate=2, padding="same",
                                                use_bias=False, **F64), (1, 4, 4, 2)),
    ("convT dilated strided", lambda: L.Conv2DTranspose(
        2, 2, strides=2, dilation_rate=2, padding="valid", **F64), (1, 3, 2, 1)),
    ("conv2d", lambda: L.Conv2D(3, 3, strides=2, padding="same", activation="sigmoid",
                                **F64), (2, 5, 4, 2)),
    ("conv2d groups cf", lambda: L.Conv2D(4, (3, 2), padding="valid", groups=2,
                                          data_format="channels_first", **F64),
     (1, 4, 4, 4)),
    ("conv2d dilated", lambda: L.Conv2D(2, 3, dilation_rate=2, padding="same", **F64),
     (1, 5, 5, 2)),
    ("dense", lambda: L.Dense(4, activation="gelu", **F64), (3, 5)),
    ("dense 3d nobias", lambda: L.Dense(3, use_bias=False, activation="softmax", **F64),
     (2, 3, 4)),
    ("batchnorm", lambda: L.BatchNormalization(**F64), (2, 3, 3, 4)),
    ("batchnorm cf nocenter", lambda: L.BatchNormalization(axis=1, center=False, **F64),
     (2, 4, 3, 3)),
    ("flatten cf", lambda: L.Flatten(data_format="channels_first", **F64), (2, 3, 2, 2)),
    ("reshape", lambda: L.Reshape((-1, 2), **F64), (2, 3, 4)),
    ("activation softmax", lambda: L.Activation("softmax", **F64), (3, 5)),
    ("activation selu", lambda: L.Activation("selu", **F64), (3, 5)),
    ("relu full", lambda: L.ReLU(max_value=1.0, negative_slope=0.3, threshold=0.2, **F64),
     (3, 6)),
    ("leaky relu", lambda: L.LeakyReLU(0.2, **F64), (3, 5)),
    ("dropout", lambda: L.Dropout(0.5, **F64), (3, 5)),
    ("maxpool valid", lambda: L.MaxPooling2D(2, **F64), (2, 4, 6, 3)),
    ("maxpool same overlapping cf", lambda: L.MaxPooling2D(
        3, strides=2, padding="same", data_format="channels_first", **F64), (1, 2, 5, 5)),
    ("global avg pool", lambda: L.GlobalAveragePooling2D(**F64), (2, 3, 4, 2)),
    ("upsampling nearest", lambda: L.UpSampling2D((2, 3), **F64), (2, 3, 2, 2)),
    ("upsampling bilinear cf", lambda: L.UpSampling2D(
        3, interpolation="bilinear", data_format="channels_first", **F64), (1, 2, 3, 4)),
    ("zero padding", lambda: L.ZeroPadding2D(((1, 0), (2, 1)), **F64), (1, 3, 3, 2)),
    ("cropping cf", lambda: L.Cropping2D(((1, 0), (0, 2)), data_format="channels_first",
                                         **F64), (1, 2, 4, 5)),
]


@pytest.mark.parametrize("make,shape", [v[1:] for v in LAYERS],
                         ids=[v[0] for v in LAYERS])
def test_layer_gradients(make, shape, rng):
    layer = make()
    x = away_from_kinks(rng.normal(size=shape), (0.0, 0.2, 1.0))
    if isinstance(layer, L.BatchNormalization):
        layer(x)
        c = layer.channels
        layer.set_weights([w for n, w in zip(("gamma", "beta", "moving_mean",
                                               "moving_variance"),
                                              [rng.uniform(0.5, 2, c), rng.normal(size=c),
                                               rng.normal(size=c), rng.uniform(0.5, 2, c)])
                           if n in layer.weight_names])
    elif layer.weight_names:
        layer(x)
        layer.set_weights([rng.normal(size=w.shape) for w in layer.get_weights()])
    check_layer(layer, x, rng)


@pytest.mark.parametrize("make,shapes", [
    (lambda: L.Concatenate(axis=-1, **F64), [(2, 3, 3, 2), (2, 3, 3, 4)]),
    (lambda: L.Concatenate(axis=1, **F64), [(2, 1, 3), (2, 2, 3), (2, 3, 3)]),
    (lambda: L.Add(**F64), [(2, 3, 4)] * 3),
    (lambda: L.Subtract(**F64), [(2, 3, 4)] * 2),
    (lambda: L.Multiply(**F64), [(2, 3, 4)] * 3),
    (lambda: L.Average(**F64), [(2, 3, 4)] * 2)])
def test_merge_gradients(make, shapes, rng):
    check_layer(make(), [rng.normal(size=s) for s in shapes], rng)


def test_activity_regularizer_gradient(rng):
    layer = L.Dense(3, activity_regularizer={"class_name": "L2", "config": {"l2": 0.7}},
                    seed=0, **F64)
    x = rng.normal(size=(4, 2))
    y = layer.forward(x)
    assert layer.losses == [pytest.approx(0.7 * (y ** 2).sum() / 4)]   # / batch size
    r = rng.normal(size=y.shape)
    dx, (dk, db) = layer.backward(r)

    def total():
        out = layer(x)
        return float(np.vdot(out, r) + 0.7 * (out ** 2).sum() / 4)
    np.testing.assert_allclose(dx, numeric_grad(total, x), rtol=1e-6)
    np.testing.assert_allclose(dk, numeric_grad(total, layer.kernel), rtol=1e-6)


def unet_like(rng):
    """A functional graph with fan-out, a skip Concatenate, an Add, a shared layer and
    two outputs."""
    inp = L.Input((6, 6, 2), dtype="float64")
    e = L.Conv2D(3, 3, padding="same", activation="tanh", seed=1, **F64)(inp)
    p = L.MaxPooling2D(2, **F64)(e)
    shared = L.Conv2D(3, 3, padding="same", seed=2, name="shared", **F64)
    b = shared(p)
    b2 = shared(L.LeakyReLU(0.1, **F64)(b))                 # the same weights twice
    u = L.Conv2DTranspose(3, 2, strides=2, seed=3, **F64)(b2)
    s = L.Concatenate(**F64)([u, e])
    a = L.Add(**F64)([L.Conv2D(2, 1, seed=4, **F64)(s), inp])
    head = L.Dense(2, seed=5, **F64)(L.GlobalAveragePooling2D(**F64)(b))
    model = L.Model(inp, [a, head])
    for layer in model.layers:
        if layer.weight_names:
            layer.set_weights([rng.normal(0, 0.5, w.shape) for w in layer.get_weights()])
    return model


def test_functional_model_backward(rng):
    model = unet_like(rng)
    x = rng.normal(size=(2, 6, 6, 2))
    ya, yh = model.forward(x)
    ra, rh = rng.normal(size=ya.shape), rng.normal(size=yh.shape)
    dx, grads = model.backward([ra, rh])

    def loss():
        a, h = model(x)
        return float(np.vdot(a, ra) + np.vdot(h, rh))
    np.testing.assert_allclose(dx, numeric_grad(loss, x), rtol=1e-6, atol=1e-8)
    assert len(grads) == len(model.layers)
    for layer, gs in zip(model.layers, grads):
        for name, g in zip(layer.weight_names, gs):
            w = getattr(layer, name)
            for _ in range(4):                         # a few elements of each weight
                idx = tuple(int(rng.integers(0, n)) for n in w.shape)
                old = w[idx]
                w[idx] = old + 1e-6
                up = loss()
                w[idx] = old - 1e-6
                down = loss()
                w[idx] = old
                assert g[idx] == pytest.approx((up - down) / 2e-6, rel=1e-6, abs=1e-8), \
                    (layer.name, name, idx)
    shared = next(v for v in model.layers if v.name == "shared")
    assert len(shared._inbound_nodes) == 2
    with pytest.raises(ValueError, match="2 outputs"):
        model.backward(ra)


def test_sequential_backward_matches_finite_differences(rng):
    model = L.Sequential([L.Dense(2 * 2 * 3, seed=0, **F64), L.Reshape((2, 2, 3), **F64),
                          L.BatchNormalization(**F64), L.LeakyReLU(0.2, **F64),
                          L.Conv2DTranspose(2, 3, strides=2, padding="same", seed=1,
                                            activation="tanh", **F64)])
    z = rng.normal(size=(3, 4))
    y = model.forward(z)
    r = rng.normal(size=y.shape)
    dz, grads = model.backward(r)
    np.testing.assert_allclose(dz, numeric_grad(lambda: float(np.vdot(model(z), r)), z),
                               rtol=1e-6, atol=1e-8)
    k = model.layers[-1].kernel
    np.testing.assert_allclose(grads[-1][0], numeric_grad(
        lambda: float(np.vdot(model(z), r)), k), rtol=1e-6, atol=1e-8)


def test_sgd_trains_a_decoder_and_respects_trainable(rng):
    """A few plain SGD steps on a tiny generator reduce an MSE + L2 loss; a frozen
    layer and the BatchNormalization statistics do not move."""
    model = L.Sequential([L.Dense(2 * 2 * 4, seed=0, trainable=False, **F64),
                          L.Reshape((2, 2, 4), **F64), L.BatchNormalization(**F64),
                          L.LeakyReLU(0.2, **F64),
                          L.Conv2DTranspose(1, 4, strides=2, padding="same",
                                            kernel_regularizer="l2", seed=1, **F64)])
    z = rng.normal(size=(8, 3))
    target = rng.normal(size=(8, 4, 4, 1))
    frozen = model.layers[0].get_weights()
    stats = model.layers[2].get_weights()[2:]

    def loss():
        return float(((model(z) - target) ** 2).mean()) + model.regularization()[0]
    losses = [loss()]
    for _ in range(40):
        y = model.forward(z)
        _, grads = model.backward(2 * (y - target) / y.size)
        L.sgd_step(model, grads, learning_rate=0.3)
        losses.append(loss())
    assert losses[-1] < 0.8 * losses[0]
    assert all(b <= a + 1e-12 for a, b in zip(losses, losses[1:]))      # monotone here
    for a, b in zip(frozen, model.layers[0].get_weights()):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(stats, model.layers[2].get_weights()[2:]):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="grads has"):
        L.sgd_step(model, grads[:-1])


def test_backward_errors(rng):
    layer = L.Dense(2)
    with pytest.raises(RuntimeError, match="forward"):
        layer.backward(np.zeros((1, 2)))
    layer.forward(np.ones((3, 4)))
    with pytest.raises(ValueError, match=r"output's shape \(3, 2\)"):
        layer.backward(np.zeros((3, 3)))
    model = unet_like(rng)
    with pytest.raises(RuntimeError, match="forward"):
        model.backward([np.zeros((1, 6, 6, 2)), np.zeros((1, 2))])


def test_backward_through_nested_models(rng):
    block = L.Sequential([L.Conv2DTranspose(2, 3, strides=2, padding="same", seed=1,
                                            **F64), L.LeakyReLU(0.2, **F64)])
    fin = L.Input((4, 4, 2), dtype="float64")
    head = L.Model(fin, L.Conv2D(1, 1, activation="tanh", seed=2, **F64)(fin))
    z = L.Input((8,), dtype="float64")
    h = L.Reshape((2, 2, 2), **F64)(L.Dense(8, seed=3, **F64)(z))
    model = L.Model(z, head(block(h)))
    x = rng.normal(size=(2, 8))
    y = model.forward(x)
    r = rng.normal(size=y.shape)
    dx, grads = model.backward(r)

    def loss():
        return float(np.vdot(model(x), r))
    np.testing.assert_allclose(dx, numeric_grad(loss, x), rtol=1e-6, atol=1e-8)
    gblock = grads[[i for i, v in enumerate(model.layers) if v is block][0]]
    np.testing.assert_allclose(gblock[0][0], numeric_grad(loss, block.layers[0].kernel),
                               rtol=1e-6, atol=1e-8)
    before = loss()
    L.sgd_step(model, grads, learning_rate=1e-3)                    # nested lists
    assert loss() < before
