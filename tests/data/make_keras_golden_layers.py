"""Golden data from real Keras 3 for cdeconv.layers (run by hand; tests need no TF).

Writes into tests/data/keras/:

* ``convT_grid.json`` + ``convT_grid.npz``: Keras ``Conv2DTranspose`` over a grid of
  kernel sizes 1-5, strides 1-3, 'valid'/'same', every output_padding (None, 0 ..
  stride-1) on a 3x4 input: Keras' ``compute_output_shape``, and either its output (to
  compare values) or the error TensorFlow raised.
* ``unet_skip.keras`` (+ ``unet_skip.weights.h5``, and ``unet_skip_legacy.h5`` in the
  legacy HDF5 model format): a functional U-Net with skip
  connections: Conv2D, BatchNormalization (non-trivial statistics), MaxPooling2D,
  LeakyReLU, Conv2DTranspose ('same' with output_padding and 'valid'), Concatenate,
  Add, UpSampling2D (nearest and bilinear), ZeroPadding2D, Cropping2D, Dropout, ReLU
  with max_value/threshold, two outputs (sigmoid mask and a softmax head).
* ``nested.keras``: a functional model holding a Sequential block and a functional
  head as layers, and a Conv2D shared by two calls.
* ``activations.keras``: Dense and Activation layers through Keras' activations
  (selu, gelu, silu, softsign, hard_sigmoid, mish, relu6, elu, softplus, log_softmax,
  softmax, ...).
* ``io_layers.npz``: inputs and Keras' outputs of the two models.

And checks that Keras loads a ``.weights.h5`` written by cdeconv's ``save_weights``
(printed; cdeconv must be importable here). Run with Keras 3 on TensorFlow:

    /work/tfvenv/bin/python tests/data/make_keras_golden_layers.py
"""
import json
import pathlib

import numpy as np
import keras
from keras import layers

OUT = pathlib.Path(__file__).resolve().parent / "keras"
OUT.mkdir(exist_ok=True)
keras.utils.set_random_seed(11)
rng = np.random.default_rng(2024)


def convT_grid():
    cases, arrays = [], {}
    x = rng.normal(size=(2, 3, 4, 2)).astype("float32")
    arrays["x"] = x
    for k in (1, 2, 3, 4, 5):
        for s in (1, 2, 3):
            for padding in ("valid", "same"):
                for op in [None] + list(range(s)):
                    case = {"kernel": k, "strides": s, "padding": padding,
                            "output_padding": op, "id": len(cases)}
                    layer = layers.Conv2DTranspose(3, k, strides=s, padding=padding,
                                                   output_padding=op,
                                                   bias_initializer="random_normal")
                    case["shape"] = list(layer.compute_output_shape((2, 3, 4, 2)))
                    try:
                        y = np.asarray(layer(x))
                        arrays[f"{case['id']}_kernel"] = np.asarray(layer.kernel)
                        arrays[f"{case['id']}_bias"] = np.asarray(layer.bias)
                        arrays[f"{case['id']}_y"] = y
                        case["ok"] = True
                    except Exception as exc:           # what TF refuses
                        case["ok"] = False
                        case["error"] = f"{type(exc).__name__}: {str(exc)[:200]}"
                    cases.append(case)
    # dilation (stride 1: Keras refuses strides > 1 with dilation > 1)
    for k, d, padding in ((3, 2, "same"), (3, 2, "valid"), (2, 3, "same")):
        case = {"kernel": k, "strides": 1, "padding": padding, "output_padding": None,
                "dilation": d, "id": len(cases)}
        layer = layers.Conv2DTranspose(3, k, padding=padding, dilation_rate=d)
        case["shape"] = list(layer.compute_output_shape((2, 3, 4, 2)))
        try:
            y = np.asarray(layer(x))
            arrays[f"{case['id']}_kernel"] = np.asarray(layer.kernel)
            arrays[f"{case['id']}_bias"] = np.asarray(layer.bias)
            arrays[f"{case['id']}_y"] = y
            case["ok"] = True
        except Exception as exc:
            case["ok"] = False
            case["error"] = f"{type(exc).__name__}: {str(exc)[:200]}"
        cases.append(case)
    (OUT / "convT_grid.json").write_text(json.dumps(
        {"keras": keras.__version__, "input_shape": [2, 3, 4, 2], "filters": 3,
         "cases": cases}, indent=1))
    np.savez_compressed(OUT / "convT_grid.npz", **arrays)
    print("grid:", len(cases), "cases,", sum(c["ok"] for c in cases), "computed")


def set_bn(bn):
    c = bn.gamma.shape[0]
    bn.set_weights([rng.uniform(0.5, 1.5, c), rng.normal(0, 0.1, c),
                    rng.normal(0, 0.3, c), rng.uniform(0.5, 2.0, c)])


def unet():
    inp = keras.Input((16, 16, 3), name="image")
    e1 = layers.Conv2D(8, 3, padding="same", activation="relu", name="enc1")(inp)
    e1 = layers.BatchNormalization(name="bn1")(e1)
    p1 = layers.MaxPooling2D(2, name="pool1")(e1)                          # 8x8
    e2 = layers.Conv2D(16, 3, padding="same", name="enc2")(p1)
    e2 = layers.LeakyReLU(negative_slope=0.1)(e2)
    p2 = layers.MaxPooling2D(2, strides=2, padding="same")(e2)             # 4x4
    b = layers.Conv2D(16, 3, padding="same", activation="elu")(p2)
    b = layers.Dropout(0.3)(b)
    u2 = layers.Conv2DTranspose(16, 3, strides=2, padding="same", output_padding=1,
                                name="up2")(b)                             # 8x8
    c2 = layers.Concatenate(name="skip2")([u2, e2])
    d2 = layers.Conv2D(8, 3, padding="same")(c2)
    d2 = layers.ReLU(max_value=4.0, threshold=0.05)(d2)
    d2b = layers.UpSampling2D(2, interpolation="bilinear")(d2)             # 16x16
    u1 = layers.Conv2DTranspose(8, 2, strides=2, padding="valid", name="up1")(d2)
    a1 = layers.Add()([u1, d2b])
    z = layers.ZeroPadding2D(((1, 2), (0, 1)))(a1)                          # 19x17
    z = layers.Cropping2D(((1, 2), (0, 1)))(z)                              # 16x16
    c1 = layers.Concatenate(name="skip1")([z, e1])
    c1 = layers.UpSampling2D(1)(c1)
    mask = layers.Conv2D(1, 1, activation="sigmoid", name="mask")(c1)
    g = layers.GlobalAveragePooling2D()(b)
    cls = layers.Dense(4, activation="softmax", name="cls")(g)
    model = keras.Model(inp, [mask, cls], name="unet_skip")
    set_bn(model.get_layer("bn1"))
    return model


def activation_model():
    acts = ["selu", "gelu", "silu", "softsign", "hard_sigmoid", "mish", "relu6", "elu",
            "softplus", "sigmoid", "tanh", "exponential", "hard_silu", "leaky_relu",
            "linear", "relu", "log_softmax", "softmax"]
    seq = [keras.Input((6,))]
    for i, a in enumerate(acts):
        if i % 3 == 0:
            seq.append(layers.Dense(6, activation=a))
        else:
            seq.append(layers.Activation(a))
        if a == "exponential":
            seq.append(layers.Dense(6, activation="tanh"))
    seq.append(layers.ReLU(negative_slope=0.2, max_value=0.9, threshold=0.1))
    return keras.Sequential(seq, name="activations"), acts


def nested_model():
    """Sub-models as layers (a Sequential block, a functional block) and a layer
    shared by two calls: the structures of GAN code that composes models."""
    block = keras.Sequential([layers.Conv2DTranspose(4, 3, strides=2, padding="same"),
                              layers.BatchNormalization(), layers.ReLU()], name="block")
    fin = keras.Input((8, 8, 4))
    fout = layers.Conv2D(2, 3, padding="same", activation="tanh")(fin)
    head = keras.Model(fin, fout, name="head")
    z = keras.Input((16,), name="z")
    h = layers.Reshape((4, 4, 1))(layers.Dense(16)(z))
    shared = layers.Conv2D(1, 3, padding="same", name="shared")
    h = layers.Add()([shared(h), shared(layers.LeakyReLU(0.2)(h))])
    out = head(block(h))
    model = keras.Model(z, out, name="nested")
    set_bn(block.layers[1])
    return model


convT_grid()
n = nested_model()
n.save(OUT / "nested.keras")
nz = rng.normal(size=(3, 16)).astype("float32")
nested_out = n.predict(nz, verbose=0)
u = unet()
u.save(OUT / "unet_skip.keras")
u.save_weights(OUT / "unet_skip.weights.h5")
u.save(OUT / "unet_skip_legacy.h5")                  # the legacy HDF5 model format
ux = rng.normal(size=(2, 16, 16, 3)).astype("float32")
mask, cls = u.predict(ux, verbose=0)
a, acts = activation_model()
a.save(OUT / "activations.keras")
ax = rng.normal(0, 1.5, size=(5, 6)).astype("float32")
np.savez_compressed(OUT / "io_layers.npz", nested_in=nz, nested_out=nested_out,
                    unet_in=ux, unet_mask=mask, unet_cls=cls,
                    act_in=ax, act_out=a.predict(ax, verbose=0))
print("activations:", acts)

# Keras reads what cdeconv writes (Keras 3 weights layout)
import sys                                           # noqa: E402

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]))   # this checkout
try:
    import cdeconv
except ImportError:
    print("cdeconv not importable here: skipped the save_weights check")
else:
    import tempfile
    cm = cdeconv.load_model(OUT / "unet_skip.keras")
    for layer in cm.layers:                      # new weights, so a match means loaded
        if layer.weight_names:
            layer.set_weights([w + 0.01 for w in layer.get_weights()])
    with tempfile.TemporaryDirectory() as tmp:
        path = pathlib.Path(tmp) / "x.weights.h5"
        cm.save_weights(path)
        fresh = unet()
        fresh.load_weights(path)
        k_mask, k_cls = fresh.predict(ux, verbose=0)
    c_mask, c_cls = cm.predict(ux)
    print("Keras loads cdeconv's .weights.h5: max |diff|",
          float(np.abs(k_mask - c_mask).max()), float(np.abs(k_cls - c_cls).max()))
print("keras", keras.__version__)
