"""cdeconv.layers: activations, initializers, regularizers and the non-convolution
layers (Dense, BatchNormalization and folding, pooling with switches, upsampling,
padding/cropping, merges), each against an independent formula."""
import math
import warnings

import numpy as np
import pytest
from scipy import stats

import cdeconv
from cdeconv import layers as L

# ------------------------------------------------------------------ activations

CLOSED_FORMS = {
    "linear": lambda x: x,
    "relu": lambda x: np.where(x > 0, x, 0),
    "relu6": lambda x: np.minimum(np.maximum(x, 0), 6),
    "leaky_relu": lambda x: np.where(x > 0, x, 0.2 * x),
    "elu": lambda x: np.where(x > 0, x, np.exp(x) - 1),
    "selu": lambda x: 1.0507009873554805 * np.where(x > 0, x, 1.6732632423543772
                                                    * (np.exp(x) - 1)),
    "sigmoid": lambda x: 1 / (1 + np.exp(-x)),
    "hard_sigmoid": lambda x: np.minimum(np.maximum(x + 3, 0), 6) / 6,
    "tanh": np.tanh,
    "softplus": lambda x: np.log(1 + np.exp(x)),
    "softsign": lambda x: x / (1 + np.abs(x)),
    "silu": lambda x: x / (1 + np.exp(-x)),
    "hard_silu": lambda x: x * np.minimum(np.maximum(x + 3, 0), 6) / 6,
    "gelu": lambda x: x * stats.norm.cdf(x),
    "mish": lambda x: x * np.tanh(np.log(1 + np.exp(x))),
    "exponential": np.exp,
    "softmax": lambda x: np.exp(x) / np.exp(x).sum(-1, keepdims=True),
    "log_softmax": lambda x: x - np.log(np.exp(x).sum(-1, keepdims=True)),
}


def test_every_activation_has_a_closed_form_check():
    assert set(CLOSED_FORMS) == set(L.ACTIVATIONS)


@pytest.mark.parametrize("name", sorted(CLOSED_FORMS))
def test_activation_values_and_vjp(name, rng):
    act = L.get_activation(name)
    x = rng.normal(0, 2, size=(3, 5))
    x[np.abs(x) < 1e-3] += 0.01                         # stay off the kinks
    x[np.abs(np.abs(x) - 3) < 1e-3] += 0.01
    x[np.abs(x - 6) < 1e-3] += 0.01
    y = act(x)
    np.testing.assert_allclose(y, CLOSED_FORMS[name](x), rtol=1e-12, atol=1e-12)
    dy = rng.normal(size=x.shape)
    g = act.backward(x, y, dy)
    h = 1e-6
    num = np.zeros_like(x)
    for idx in np.ndindex(*x.shape):
        e = np.zeros_like(x)
        e[idx] = h
        num[idx] = np.vdot(act(x + e) - act(x - e), dy) / (2 * h)
    np.testing.assert_allclose(g, num, rtol=1e-6, atol=1e-7)
    assert act(x.astype(np.float32)).dtype == np.float32


def test_activation_names_and_errors():
    assert L.get_activation(None).name == "linear"
    assert L.get_activation("swish").name == "silu"
    assert L.get_activation({"class_name": "function", "config": "tanh"}).name == "tanh"
    with pytest.raises(ValueError, match="unknown activation 'swishy'"):
        L.get_activation("swishy")
    with pytest.raises(TypeError, match="activation"):
        L.get_activation(np.tanh)


def test_softmax_is_stable_for_large_logits():
    y = L.get_activation("softmax")(np.array([[1000.0, 0.0, -1000.0]]))
    np.testing.assert_allclose(y, [[1, 0, 0]])


# ------------------------------------------------------------------ initializers

@pytest.mark.parametrize("name,check", [
    ("glorot_uniform", lambda w, fi, fo: np.abs(w).max() <= math.sqrt(6 / (fi + fo))
     and w.std() == pytest.approx(math.sqrt(2 / (fi + fo)), rel=0.1)),
    ("glorot_normal", lambda w, fi, fo: w.std() == pytest.approx(
        math.sqrt(2 / (fi + fo)), rel=0.1)
     and np.abs(w).max() <= 2 * math.sqrt(2 / (fi + fo)) / 0.8796256610342398 + 1e-7),
    ("he_uniform", lambda w, fi, fo: np.abs(w).max() <= math.sqrt(6 / fi)
     and w.std() == pytest.approx(math.sqrt(2 / fi), rel=0.1)),
    ("he_normal", lambda w, fi, fo: w.std() == pytest.approx(math.sqrt(2 / fi), rel=0.1)),
    ("lecun_normal", lambda w, fi, fo: w.std() == pytest.approx(math.sqrt(1 / fi),
                                                                rel=0.1)),
    ("random_normal", lambda w, fi, fo: w.std() == pytest.approx(0.05, rel=0.1)
     and abs(w.mean()) < 0.01),
    ("random_uniform", lambda w, fi, fo: np.abs(w).max() <= 0.05
     and w.std() == pytest.approx(0.05 / math.sqrt(3), rel=0.1)),
    ("truncated_normal", lambda w, fi, fo: np.abs(w).max() <= 0.1
     and w.std() == pytest.approx(0.05 * 0.8796, rel=0.1)),
    ("zeros", lambda w, fi, fo: not w.any()),
    ("ones", lambda w, fi, fo: np.all(w == 1)),
])
def test_initializer_distributions(name, check):
    shape = (4, 4, 16, 8)            # Keras' fans: in = 4*4*16, out = 4*4*8
    fi, fo = 4 * 4 * 16, 4 * 4 * 8
    assert L._initializers.compute_fans(shape) == (fi, fo)
    init = L.get_initializer(name, seed=7)
    w = init(shape)
    assert w.shape == shape and w.dtype == np.float32
    assert check(w.astype(np.float64), fi, fo)
    np.testing.assert_array_equal(init(shape), w)                       # seeded
    camel = "".join(p.capitalize() for p in name.split("_"))            # Keras class
    np.testing.assert_array_equal(L.get_initializer({"class_name": camel, "config": {
        "seed": 7}})(shape), w)


def test_initializer_configs_and_rng():
    c = L.get_initializer({"class_name": "Constant", "config": {"value": 2.5}})
    assert np.all(c((2, 3), "float64") == 2.5)
    vs = L.get_initializer({"class_name": "VarianceScaling", "config": {
        "scale": 3.0, "mode": "fan_out", "distribution": "uniform", "seed": 1}})
    w = vs((200, 100))
    assert np.abs(w).max() <= math.sqrt(9 / 100) and w.std() == pytest.approx(
        math.sqrt(3 / 100), rel=0.05)
    rn = L.get_initializer("random_normal")
    a = rn((50,), rng=np.random.default_rng(3))
    np.testing.assert_array_equal(a, rn((50,), rng=np.random.default_rng(3)))
    assert not np.array_equal(a, rn((50,), rng=np.random.default_rng(4)))
    arr = L.get_initializer(np.arange(6.0))
    assert arr((2, 3)).tolist() == [[0, 1, 2], [3, 4, 5]]
    with pytest.raises(ValueError, match="cannot fill"):
        arr((4,))
    with pytest.raises(ValueError, match="unknown initializer 'Orthogonalish'"):
        L.get_initializer("Orthogonalish")
    with pytest.raises(TypeError, match="initializer"):
        L.get_initializer(3.5)
    # a layer's seed makes its weights reproducible, different seeds differ
    k = [L.Dense(4, seed=s).__call__(np.ones((1, 3))) is not None and
         L.Dense(4, seed=s) for s in (1, 1, 2)]
    for layer in k:
        layer.build((None, 3))
    np.testing.assert_array_equal(k[0].kernel, k[1].kernel)
    assert not np.array_equal(k[0].kernel, k[2].kernel)


def test_bilinear_kernel_upsamples_bilinearly():
    for s in (2, 3):
        k = 2 * s - s % 2
        w = L.bilinear((k, k, 2, 2))
        assert np.all(w[:, :, 0, 1] == 0) and np.all(w[:, :, 1, 0] == 0)
        np.testing.assert_allclose(w[:, :, 0, 0], w[:, :, 1, 1])
        # a linear ramp stays a linear ramp (interior), with slope 1/s per pixel
        x = np.tile(np.arange(8.0)[None, :, None, None], (1, 1, 8, 2))
        layer = L.Conv2DTranspose(2, k, strides=s, padding="same",
                                  kernel_initializer="bilinear", use_bias=False,
                                  dtype="float64")
        y = layer(x)[0, 2 * s:-2 * s, 2 * s:-2 * s, 0]
        np.testing.assert_allclose(np.diff(y, axis=0), 1 / s, atol=1e-12)
        np.testing.assert_allclose(np.diff(y, axis=1), 0, atol=1e-12)
    np.testing.assert_allclose(L.bilinear((4, 4, 1, 1))[:, :, 0, 0], np.outer(
        [.25, .75, .75, .25], [.25, .75, .75, .25]))
    with pytest.raises(ValueError, match="bilinear"):
        L.bilinear((4, 4, 3, 2))


def test_icnr_is_free_of_checkerboard_at_initialisation(rng):
    """With ICNR each stride x stride block of a VALID transposed convolution's output
    is constant: it is nearest-neighbour upsampling of a smaller convolution."""
    for s, k in ((2, 4), (3, 6), (2, 2)):
        layer = L.Conv2DTranspose(3, k, strides=s, padding="valid", use_bias=False,
                                  kernel_initializer={"class_name": "icnr",
                                                      "config": {"scale": s}},
                                  seed=0, dtype="float64")
        y = layer(rng.normal(size=(1, 5, 4, 2)))
        blocks = y[0].reshape(y.shape[1] // s, s, y.shape[2] // s, s, 3)
        first = np.broadcast_to(blocks[:, :1, :, :1], blocks.shape)
        np.testing.assert_allclose(blocks, first, atol=1e-12)
        assert np.ptp(y) > 0.1                                  # not trivially constant
        plain = L.Conv2DTranspose(3, k, strides=s, padding="valid", seed=0,
                                  use_bias=False, dtype="float64")
        yp = plain(rng.normal(size=(1, 5, 4, 2)))[0]
        assert np.abs(yp.reshape(blocks.shape) - yp.reshape(blocks.shape)[:, :1, :, :1]
                      ).max() > 1e-3                            # glorot alone is not
    with pytest.raises(ValueError, match="multiples of scale"):
        L.icnr((3, 3, 2, 2), scale=2)


# ------------------------------------------------------------------ regularizers

def test_regularizers(rng):
    w = rng.normal(size=(3, 4))
    for spec, l1, l2 in [("l1", 0.01, 0), ("l2", 0, 0.01), ("l1_l2", 0.01, 0.01),
                         ({"class_name": "L2", "config": {"l2": 0.3}}, 0, 0.3),
                         ({"class_name": "L1L2", "config": {"l1": 0.1, "l2": 0.2}},
                          0.1, 0.2)]:
        reg = L.get_regularizer(spec)
        assert reg(w) == pytest.approx(l1 * np.abs(w).sum() + l2 * (w * w).sum())
        np.testing.assert_allclose(reg.gradient(w), l1 * np.sign(w) + 2 * l2 * w)
        assert L.get_regularizer(reg.get_config()) == reg
    with pytest.raises(ValueError, match="OrthogonalRegularizer"):
        L.get_regularizer({"class_name": "OrthogonalRegularizer", "config": {}})
    with pytest.raises(ValueError, match=">= 0"):
        L.Regularizer(l1=-1)


# ------------------------------------------------------------------ core layers

def test_dense_flatten_reshape(rng):
    d = L.Dense(3, activation="relu", bias_initializer="ones", seed=0, dtype="float64")
    x = rng.normal(size=(2, 4, 5))
    y = d(x)
    np.testing.assert_allclose(y, np.maximum(np.einsum("abi,ij->abj", x, d.kernel) + 1, 0))
    assert d.compute_output_shape((None, 4, 5)) == (None, 4, 3)
    with pytest.raises(ValueError, match="5 features"):
        d(np.ones((2, 6)))
    with pytest.raises(ValueError, match="units"):
        L.Dense(0)
    f = L.Flatten()
    img = rng.normal(size=(2, 3, 4, 5)).astype(np.float32)
    np.testing.assert_array_equal(f(img), img.reshape(2, -1))
    fcf = L.Flatten(data_format="channels_first")        # Keras: channels moved last
    np.testing.assert_array_equal(fcf(img.transpose(0, 3, 1, 2)), img.reshape(2, -1))
    assert f.compute_output_shape((None, 3, 4, 5)) == (None, 60)
    r = L.Reshape((-1, 4))
    assert r(img).shape == (2, 15, 4) and r.compute_output_shape((None, 3, 4, 5)) == (
        None, 15, 4)
    with pytest.raises(ValueError, match="cannot reshape"):
        L.Reshape((7,))(img)
    with pytest.raises(ValueError, match="at most one -1"):
        L.Reshape((-1, -1))


def test_relu_variants_follow_keras_formula(rng):
    x = np.linspace(-3, 3, 25)
    cases = [(dict(), np.maximum(x, 0)),
             (dict(max_value=1.5), np.clip(x, 0, 1.5)),
             (dict(negative_slope=0.1), np.where(x > 0, x, 0.1 * x)),
             (dict(threshold=1.0), np.where(x > 1, x, 0)),
             (dict(threshold=1.0, negative_slope=0.5, max_value=2.0),
              np.where(x > 1, np.minimum(x, 2), 0.5 * (x - 1)))]
    for kwargs, expect in cases:
        np.testing.assert_allclose(L.ReLU(**kwargs, dtype="float64")(x), expect)
    with pytest.raises(ValueError, match="threshold"):
        L.ReLU(threshold=-1)
    np.testing.assert_allclose(L.LeakyReLU(alpha=0.25, dtype="float64")(x),
                               np.where(x >= 0, x, 0.25 * x))
    assert L.LeakyReLU().negative_slope == 0.3                      # Keras 3 default
    assert np.array_equal(L.Dropout(0.5)(x), x.astype(np.float32))


def test_batch_normalization_inference(rng):
    bn = L.BatchNormalization(epsilon=0.01, dtype="float64")
    x = rng.normal(size=(2, 3, 3, 4))
    bn(x)
    g, b, m, v = rng.uniform(0.5, 2, 4), rng.normal(size=4), rng.normal(size=4), \
        rng.uniform(0.5, 2, 4)
    bn.set_weights([g, b, m, v])
    np.testing.assert_allclose(bn(x), g * (x - m) / np.sqrt(v + 0.01) + b, rtol=1e-12)
    cf = L.BatchNormalization(axis=1, center=False, dtype="float64")
    xc = x.transpose(0, 3, 1, 2)
    cf(xc)
    assert cf.weight_names == ("gamma", "moving_mean", "moving_variance")
    cf.set_weights([g, m, v])
    np.testing.assert_allclose(cf(xc), (g * (x - m) / np.sqrt(v + 1e-3)).transpose(
        0, 3, 1, 2), rtol=1e-12)
    assert bn.trainable_weight_names == ("gamma", "beta")
    with pytest.raises(ValueError, match="built for 4 channels"):
        bn(np.ones((1, 2, 2, 3)))
    with pytest.raises(ValueError, match="renorm"):
        L.BatchNormalization(renorm=True)


@pytest.mark.parametrize("make,shape", [
    (lambda: L.Conv2DTranspose(4, 3, strides=2, padding="same", seed=0), (2, 5, 5, 3)),
    (lambda: L.Conv2DTranspose(4, 3, strides=2, data_format="channels_first",
                               use_bias=False, seed=0), (2, 3, 5, 5)),
    (lambda: L.Conv2D(4, 3, padding="same", seed=0), (2, 5, 5, 3)),
    (lambda: L.Conv2D(4, 3, groups=2, data_format="channels_first", seed=0),
     (2, 4, 5, 5)),
    (lambda: L.Dense(4, seed=0), (6, 3))])
def test_batchnorm_folding(make, shape, rng):
    conv = make()
    cf = getattr(conv, "data_format", "") == "channels_first"
    bn = L.BatchNormalization(axis=1 if cf else -1)
    x = rng.normal(size=shape).astype(np.float32)
    bn(conv(x))
    bn.set_weights([rng.uniform(0.5, 2, 4), rng.normal(size=4), rng.normal(size=4),
                    rng.uniform(0.5, 2, 4)])
    folded = bn.fold_into(conv)
    assert type(folded) is type(conv) and folded.use_bias
    np.testing.assert_allclose(folded(x), bn(conv(x)), rtol=1e-4, atol=1e-4)


def test_batchnorm_folding_refusals(rng):
    x = rng.normal(size=(1, 4, 4, 2)).astype(np.float32)
    relu_conv = L.Conv2D(3, 1, activation="relu")
    bn = L.BatchNormalization()
    bn(relu_conv(x))
    with pytest.raises(ValueError, match="applies relu"):
        bn.fold_into(relu_conv)
    conv = L.Conv2D(3, 1)
    bn1 = L.BatchNormalization(axis=1)                    # normalises the wrong axis
    bn1(conv(x))
    with pytest.raises(ValueError, match="does not normalise"):
        bn1.fold_into(conv)
    with pytest.raises(TypeError, match="fold into"):
        bn.fold_into(L.ReLU())


def test_fold_batch_norm_in_models(rng):
    seq = L.Sequential([L.Input((6, 6, 2)), L.Conv2D(4, 3, padding="same", seed=1),
                        L.BatchNormalization(), L.ReLU(),
                        L.Conv2DTranspose(3, 2, strides=2, seed=2),
                        L.BatchNormalization(), L.Dense(2, seed=3)])
    for layer in seq.layers:
        if isinstance(layer, L.BatchNormalization):
            c = layer.channels
            layer.set_weights([rng.uniform(0.5, 2, c), rng.normal(size=c),
                               rng.normal(size=c), rng.uniform(0.5, 2, c)])
    x = rng.normal(size=(2, 6, 6, 2)).astype(np.float32)
    folded = L.fold_batch_norm(seq)
    assert [type(v).__name__ for v in folded.layers] == ["Conv2D", "ReLU",
                                                          "Conv2DTranspose", "Dense"]
    np.testing.assert_allclose(folded.predict(x), seq.predict(x), rtol=1e-4, atol=1e-4)
    # functional: the skip-connected conv feeds BN and a Concatenate, so it stays
    inp = L.Input((6, 6, 2))
    a = L.Conv2D(3, 3, padding="same", seed=4)(inp)
    b = L.BatchNormalization(name="bn_a")(a)
    c = L.Conv2D(3, 3, padding="same", seed=5)(b)
    d = L.BatchNormalization(name="bn_c")(c)
    out = L.Concatenate()([d, a])
    model = L.Model(inp, out)
    for name in ("bn_a", "bn_c"):
        layer = next(v for v in model.layers if v.name == name)
        layer.set_weights([rng.uniform(0.5, 2, 3), rng.normal(size=3),
                           rng.normal(size=3), rng.uniform(0.5, 2, 3)])
    fm = L.fold_batch_norm(model)
    names = [type(v).__name__ for v in fm.layers]
    assert names.count("BatchNormalization") == 1                  # bn_c folded only
    np.testing.assert_allclose(fm.predict(x), model.predict(x), rtol=1e-4, atol=1e-4)


# ------------------------------------------------------------------ pooling & friends

def test_max_pooling_switches_follow_tf_convention(rng):
    x = rng.normal(size=(2, 5, 6, 3)).astype(np.float32)
    for padding, stride in (("valid", None), ("same", 2), ("valid", 1)):
        pool = L.MaxPooling2D(2, strides=stride, padding=padding)
        y = pool(x)
        assert y.shape == pool.compute_output_shape(x.shape)
        sw = pool.switches
        b = np.arange(2)[:, None, None, None]
        # the value at each switch (flattened (y * W + x) * C + c per image) is the max
        np.testing.assert_array_equal(x.reshape(2, -1)[b, sw], y)
        np.testing.assert_array_equal(x.ravel()[pool.global_switches], y)
        # and it is the window's max, by brute force
        s = stride or 2
        for oy, ox in np.ndindex(*y.shape[1:3]):
            win = x[:, oy * s:oy * s + 2, ox * s:ox * s + 2, :]
            np.testing.assert_array_equal(y[:, oy, ox], win.max(axis=(1, 2)))
    cf = L.MaxPooling2D(2, data_format="channels_first")
    np.testing.assert_array_equal(cf(x.transpose(0, 3, 1, 2)),
                                  L.MaxPooling2D(2)(x).transpose(0, 3, 1, 2))
    with pytest.raises(ValueError, match="smaller than the pool"):
        L.MaxPooling2D(3).compute_output_shape((None, 2, 2, 1))


def test_upsampling_nearest_and_bilinear(rng):
    x = rng.normal(size=(2, 3, 4, 2))
    up = L.UpSampling2D((2, 3), dtype="float64")
    np.testing.assert_array_equal(up(x), x.repeat(2, 1).repeat(3, 2))
    assert up.compute_output_shape((None, 3, 4, 2)) == (None, 6, 12, 2)
    bil = L.UpSampling2D(2, interpolation="bilinear", dtype="float64")
    y = bil(x)

    def tf_resize_1d(v, scale, axis):
        """tf.image.resize bilinear along one axis (half-pixel centres), by formula."""
        n = v.shape[axis]
        out = []
        for o in range(n * scale):
            src = min(max((o + 0.5) / scale - 0.5, 0), n - 1)
            lo = int(np.floor(src))
            hi = min(lo + 1, n - 1)
            t = src - lo
            out.append(np.take(v, lo, axis) * (1 - t) + np.take(v, hi, axis) * t)
        return np.stack(out, axis)
    np.testing.assert_allclose(y, tf_resize_1d(tf_resize_1d(x, 2, 1), 2, 2), rtol=1e-12)
    ycf = L.UpSampling2D(2, interpolation="bilinear", data_format="channels_first",
                         dtype="float64")(x.transpose(0, 3, 1, 2))
    np.testing.assert_allclose(ycf.transpose(0, 2, 3, 1), y, rtol=1e-12)
    with pytest.raises(ValueError, match="interpolation"):
        L.UpSampling2D(interpolation="bicubic")


def test_padding_cropping_global_pooling(rng):
    x = rng.normal(size=(2, 4, 5, 3)).astype(np.float32)
    zp = L.ZeroPadding2D(((1, 2), (0, 3)))
    y = zp(x)
    assert y.shape == zp.compute_output_shape(x.shape) == (2, 7, 8, 3)
    np.testing.assert_array_equal(y[:, 1:5, 0:5], x)
    assert y.sum() == pytest.approx(x.sum(), rel=1e-5)
    cr = L.Cropping2D(((1, 2), (0, 3)))
    np.testing.assert_array_equal(cr(y), x)
    with pytest.raises(ValueError, match="removes all"):
        L.Cropping2D(((2, 2), (0, 0)))(x)
    gap = L.GlobalAveragePooling2D()
    np.testing.assert_allclose(gap(x), x.mean(axis=(1, 2)), rtol=1e-6)
    assert L.GlobalAveragePooling2D(keepdims=True)(x).shape == (2, 1, 1, 3)


def test_merge_layers(rng):
    a, b = rng.normal(size=(2, 3, 3, 2)), rng.normal(size=(2, 3, 3, 4))
    cat = L.Concatenate(dtype="float64")
    np.testing.assert_array_equal(cat([a, b]), np.concatenate([a, b], -1))
    assert cat.compute_output_shape([(None, 3, 3, 2), (None, 3, 3, 4)]) == (None, 3, 3, 6)
    with pytest.raises(ValueError, match="differ off the concatenation axis"):
        cat([a, b[:, :2]])
    c = rng.normal(size=a.shape)
    np.testing.assert_allclose(L.Add(dtype="float64")([a, c, a]), 2 * a + c)
    np.testing.assert_allclose(L.Subtract(dtype="float64")([a, c]), a - c)
    np.testing.assert_allclose(L.Multiply(dtype="float64")([a, c]), a * c)
    np.testing.assert_allclose(L.Average(dtype="float64")([a, c]), (a + c) / 2)
    with pytest.raises(ValueError, match="one shape"):
        L.Add()([a, b])
    with pytest.raises(TypeError, match="list of inputs"):
        L.Add()(a)
    with pytest.raises(ValueError, match="takes 2 inputs"):
        L.Subtract()([a, a, a])


def test_layers_use_only_public_ops():
    """The layers compute with cdeconv's public ops (nn), never the kernels."""
    import inspect
    for mod in (L._conv, L._core, L._pooling, L._merge, L._containers, L._saving,
                L._layer):
        src = inspect.getsource(mod)
        assert "_conv import" not in src.replace("from ._conv import", "") and \
            "_driver" not in src and "_reference" not in src, mod.__name__
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert cdeconv.layers.Conv2DTranspose is L.Conv2DTranspose
