"""cdeconv.layers.Conv2DTranspose / Conv2D: Keras' output sizes, Keras' own outputs
(tests/data/keras/convT_grid.*, made by make_keras_golden_layers.py with Keras 3.15 on
TensorFlow), an independent scatter reference (dilation, channels_first), weights,
configs, argument checking and the checkerboard diagnostic."""
import itertools
import json
import pathlib

import numpy as np
import pytest

from cdeconv import layers as L

KERAS = pathlib.Path(__file__).resolve().parent / "data" / "keras"


def keras3_output_length(n, k, s, padding, op, d):
    """Keras 3's ``_get_output_shape_given_tf_padding`` (backend_utils.py), copied:
    the rule Keras' Conv2DTranspose uses for its output shape."""
    k = (k - 1) * d + 1
    if padding == "valid":
        op = max(k, s) - k if op is None else op
        return (n - 1) * s + k + op
    return n * s if op is None else (n - 1) * s + k % 2 + op


def scatter_reference(x, w, b, strides, dilation, out_hw, padding, act=None):
    """Transposed convolution as its definition, in float64 loops: input pixel (i, j)
    adds ``x[i, j] @ w[a, b].T`` at ``(i * s + a * d, j * s + b * d)``, shifted up/left
    by TF's SAME crop ``(total // 2)`` (0 for VALID); positions outside the output are
    dropped, missing ones stay 0. NHWC, kernel (kh, kw, filters, in)."""
    n, h, wd, c = x.shape
    kh, kw, f, _ = w.shape
    (sh, sw), (dh, dw), (oh, ow) = strides, dilation, out_hw
    if padding == "same":
        pt = max((h - 1) * sh + (kh - 1) * dh + 1 - oh, 0) // 2
        pl = max((wd - 1) * sw + (kw - 1) * dw + 1 - ow, 0) // 2
    else:
        pt = pl = 0
    y = np.zeros((n, oh, ow, f))
    for i, j, a, bb in itertools.product(range(h), range(wd), range(kh), range(kw)):
        oy, ox = i * sh + a * dh - pt, j * sw + bb * dw - pl
        if 0 <= oy < oh and 0 <= ox < ow:
            y[:, oy, ox, :] += x[:, i, j, :].astype(np.float64) @ w[a, bb].T
    y += b
    return act(y) if act else y


def test_deconv_output_length_is_keras_rule():
    for n, k, s, d, padding in itertools.product(range(1, 7), range(1, 6), range(1, 4),
                                                 (1, 2), ("valid", "same")):
        for op in [None] + list(range(s)):
            assert L.deconv_output_length(n, k, padding, op, s, d) == \
                keras3_output_length(n, k, s, padding, op, d), (n, k, s, d, padding, op)
    assert L.deconv_output_length(None, 3, "same", None, 2) is None


def test_article_examples():
    """The articles' two layers: 28x28x1 -> 56x56x32 and 224x224x3 -> 448x448x3."""
    layer = L.Conv2DTranspose(filters=32, kernel_size=3, strides=2, padding="same")
    assert layer.compute_output_shape((None, 28, 28, 1)) == (None, 56, 56, 32)
    assert layer(np.ones((1, 28, 28, 1), np.float32)).shape == (1, 56, 56, 32)
    layer = L.Conv2DTranspose(filters=3, kernel_size=3, strides=2, padding="same")
    assert layer.compute_output_shape((None, 224, 224, 3)) == (None, 448, 448, 3)
    assert [w.shape for w in layer.get_weights()] == []      # not built yet: no weights
    layer.build((None, 224, 224, 3))
    assert [w.shape for w in layer.get_weights()] == [(3, 3, 3, 3), (3,)]


def _grid():
    meta = json.loads((KERAS / "convT_grid.json").read_text())
    return meta, np.load(KERAS / "convT_grid.npz")


def test_keras_grid_shapes_values_and_refusals():
    """Every (kernel, stride, padding, output_padding) of the grid: Keras' shape, and
    Keras' output within 1e-5 (float32 sums in another order) -- or, where TensorFlow
    refused to run the layer (even kernel, 'same', output_padding 0), cdeconv refuses
    it at construction."""
    meta, data = _grid()
    x = data["x"]
    checked = refused = 0
    for case in meta["cases"]:
        if case.get("dilation"):
            continue
        args = dict(filters=3, kernel_size=case["kernel"], strides=case["strides"],
                    padding=case["padding"], output_padding=case["output_padding"])
        if not case["ok"]:
            with pytest.raises(ValueError, match="output_padding"):
                L.Conv2DTranspose(**args)
            refused += 1
            continue
        layer = L.Conv2DTranspose(**args)
        assert layer.compute_output_shape((2, 3, 4, 2)) == tuple(case["shape"]), case
        layer.build(x.shape)
        i = case["id"]
        layer.set_weights([data[f"{i}_kernel"], data[f"{i}_bias"]])
        y = layer(x)
        assert y.shape == tuple(case["shape"])
        np.testing.assert_allclose(y, data[f"{i}_y"], rtol=1e-5, atol=1e-5,
                                   err_msg=str(case))
        checked += 1
    assert checked == 84 - 0 and refused == 6


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("k,s,d,padding,op", [
    (3, 2, 1, "same", None), (3, 2, 1, "same", 1), (4, 2, 1, "same", 1),
    (3, 2, 1, "valid", None), (3, 2, 1, "valid", 1), (2, 3, 1, "valid", 2),
    (5, 3, 1, "same", 0), (3, 1, 2, "same", None), (3, 1, 2, "valid", None),
    (2, 1, 3, "same", None), (3, 2, 2, "same", None), (3, 2, 2, "valid", 1),
    ((3, 2), (2, 1), (1, 2), "same", None), ((1, 4), (3, 2), 1, "valid", (2, 1))])
def test_against_scatter_reference(k, s, d, padding, op, data_format, rng):
    """Dilation (which TF's CPU kernels refuse), channels_first, rectangular
    arguments and strides with dilation together (which Keras refuses) against the
    definition."""
    layer = L.Conv2DTranspose(4, k, strides=s, padding=padding, output_padding=op,
                              dilation_rate=d, data_format=data_format,
                              activation="tanh", bias_initializer="random_normal",
                              seed=3, dtype="float64")
    x = rng.normal(size=(2, 3, 5, 2))
    cf = data_format == "channels_first"
    y = layer(x.transpose(0, 3, 1, 2) if cf else x)
    kh, kw = layer.kernel_size
    out_hw = layer._output_hw((3, 5))
    ref = scatter_reference(x, layer.kernel, layer.bias, layer.strides,
                            layer.dilation_rate, out_hw, padding, np.tanh)
    np.testing.assert_allclose(y.transpose(0, 2, 3, 1) if cf else y, ref, rtol=1e-12,
                               atol=1e-12)
    expect = tuple(keras3_output_length(n, kk, ss, padding, o, dd) for n, kk, ss, o, dd
                   in zip((3, 5), (kh, kw), layer.strides,
                          layer.output_padding or (None, None), layer.dilation_rate))
    assert out_hw == expect


def test_conv2d_layer_matches_a_direct_sum(rng):
    layer = L.Conv2D(3, (3, 2), strides=(2, 1), padding="same", dilation_rate=1,
                     activation="relu", bias_initializer="random_normal", seed=2,
                     dtype="float64")
    x = rng.normal(size=(2, 5, 4, 2))
    y = layer(x)
    assert y.shape == layer.compute_output_shape(x.shape) == (2, 3, 4, 3)
    # TF SAME: total pad = (out - 1) * s + k - n, the odd pixel after
    ph = max((3 - 1) * 2 + 3 - 5, 0) // 2
    pw = max((4 - 1) * 1 + 2 - 4, 0) // 2
    xp = np.pad(x, ((0, 0), (ph, 3), (pw, 3), (0, 0)))
    ref = np.zeros((2, 3, 4, 3))
    for oy, ox in itertools.product(range(3), range(4)):
        patch = xp[:, oy * 2:oy * 2 + 3, ox:ox + 2, :]
        ref[:, oy, ox] = np.einsum("nabc,abcf->nf", patch, layer.kernel)
    np.testing.assert_allclose(y, np.maximum(ref + layer.bias, 0), rtol=1e-12, atol=1e-12)
    grouped = L.Conv2D(4, 3, groups=2, padding="valid", seed=0)
    assert grouped(np.ones((1, 5, 5, 6), np.float32)).shape == (1, 3, 3, 4)
    assert grouped.kernel.shape == (3, 3, 3, 4)


def test_weights_config_and_build_rules(rng):
    layer = L.Conv2DTranspose(4, 3, strides=2, padding="same", output_padding=1,
                              activation="relu", kernel_regularizer="l2",
                              activity_regularizer={"class_name": "L1",
                                                    "config": {"l1": 0.5}},
                              kernel_initializer={"class_name": "RandomNormal",
                                                  "config": {"stddev": 0.02, "seed": 5}},
                              trainable=False, name="up")
    assert not layer.built
    x = rng.normal(size=(1, 3, 3, 2)).astype(np.float32)
    y = layer(x)
    assert layer.built and y.shape == (1, 6, 6, 4) and y.dtype == np.float32
    assert abs(layer.kernel.std() - 0.02) < 0.01                # the config's stddev
    cfg = layer.get_config()
    assert cfg["output_padding"] == [1, 1] and cfg["trainable"] is False
    assert cfg["kernel_regularizer"] == {"class_name": "L2", "config": {"l2": 0.01}}
    clone = L.Conv2DTranspose.from_config(cfg)
    assert clone.get_config() == cfg
    clone(x)
    clone.set_weights(layer.get_weights())
    np.testing.assert_array_equal(clone(x), y)
    assert clone.trainable_weight_names == ()
    w = layer.get_weights()
    w[0][...] = 7                                    # get_weights returns copies
    assert not np.any(layer.kernel == 7)
    with pytest.raises(ValueError, match=r"up.kernel must have shape \(3, 3, 4, 2\)"):
        layer.set_weights([np.ones((3, 3, 2, 4)), np.ones(4)])
    with pytest.raises(ValueError, match="built for 2 input channels"):
        layer(np.ones((1, 3, 3, 5), np.float32))
    with pytest.raises(ValueError, match="4-D"):
        layer(np.ones((3, 3, 2), np.float32))
    nobias = L.Conv2DTranspose(2, 2, use_bias=False)
    nobias(x)
    assert nobias.weight_names == ("kernel",) and len(nobias.get_weights()) == 1
    # compute_output_shape with unknown sizes, and channels_first
    assert layer.compute_output_shape((None, None, 7, 2)) == (None, None, 14, 4)
    cf = L.Conv2DTranspose(5, 3, strides=3, data_format="channels_first")
    assert cf.compute_output_shape((2, 1, 4, 4)) == (2, 5, 12, 12)


@pytest.mark.parametrize("kwargs,exc,match", [
    (dict(filters=0, kernel_size=3), ValueError, "filters"),
    (dict(filters=2.5, kernel_size=3), ValueError, "filters"),
    (dict(filters=2, kernel_size=(3, 3, 3)), ValueError, "kernel_size"),
    (dict(filters=2, kernel_size=0), ValueError, "kernel_size"),
    (dict(filters=2, kernel_size=3, strides=(1, 0)), ValueError, "strides"),
    (dict(filters=2, kernel_size=3, padding="full"), ValueError, "padding"),
    (dict(filters=2, kernel_size=3, strides=2, output_padding=2), ValueError,
     "output_padding"),
    (dict(filters=2, kernel_size=3, output_padding=-1), ValueError, "output_padding"),
    (dict(filters=2, kernel_size=4, strides=2, padding="same", output_padding=0),
     ValueError, "output_padding"),
    (dict(filters=2, kernel_size=3, data_format="NHWC"), ValueError, "data_format"),
    (dict(filters=2, kernel_size=3, dilation_rate=0), ValueError, "dilation_rate"),
    (dict(filters=2, kernel_size=3, activation="swishy"), ValueError, "activation"),
    (dict(filters=2, kernel_size=3, kernel_initializer="orthogonalish"), ValueError,
     "initializer"),
    (dict(filters=2, kernel_size=3, kernel_regularizer="l3"), ValueError, "regularizer"),
    (dict(filters=2, kernel_size=3, bogus=1), TypeError, "bogus"),
    (dict(filters=2, kernel_size="3"), TypeError, "kernel_size"),
])
def test_bad_constructor_arguments(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        L.Conv2DTranspose(**kwargs)


def test_conv2d_bad_arguments():
    with pytest.raises(ValueError, match="groups"):
        L.Conv2D(3, 3, groups=2)
    with pytest.raises(ValueError, match="groups"):
        L.Conv2D(4, 3, groups=2)(np.ones((1, 5, 5, 3), np.float32))
    with pytest.raises(ValueError, match="smaller than the"):
        L.Conv2D(4, 5).compute_output_shape((None, 3, 3, 1))


def test_checkerboard():
    assert L.checkerboard(3, 2).tolist() == [[4, 2], [2, 1]]
    assert L.checkerboard(4, 2).tolist() == [[4, 4], [4, 4]]
    assert L.checkerboard(3, 3).tolist() == [[1, 1, 1]] * 3
    assert L.checkerboard((5,), (2,)).tolist() == [3, 2]              # 1-D
    assert L.checkerboard(3, 2, dilation_rate=2).tolist() == [[9, 0], [0, 0]]
    # the counts are what an all-ones transposed convolution actually produces
    layer = L.Conv2DTranspose(1, 3, strides=2, padding="valid", use_bias=False,
                              kernel_initializer="ones")
    y = layer(np.ones((1, 6, 6, 1), np.float32))[0, 2:-2, 2:-2, 0]
    np.testing.assert_array_equal(y[:2, :2], L.checkerboard(3, 2))
    with pytest.warns(UserWarning, match="unevenly"):
        layer.checkerboard(warn=True)
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        L.Conv2DTranspose(1, 4, strides=2).checkerboard(warn=True)    # even: silent
