"""Make small real Keras 3 model files and their outputs, for loading tests (tests need
no TensorFlow/Keras).

Writes tests/data/keras/: dcgan_like.keras (Dense -> Reshape -> BatchNormalization ->
LeakyReLU -> Conv2DTranspose x2, 'same', tanh), decoder.keras (Conv2D, MaxPooling2D,
UpSampling2D, Conv2DTranspose 'valid' with output_padding, ReLU, channels_last),
dcgan.keras (the issue's generator: Dense -> BatchNormalization -> LeakyReLU -> Reshape
-> Conv2DTranspose x3 -> tanh), unet_decoder.keras (2x2/s2 up-convolutions and 3x3
convolutions; Sequential, so without skip connections), article_mnist.keras and
article_rgb224.keras (the articles' two Conv2DTranspose examples), their .weights.h5
where noted, and io.npz with inputs and Keras' outputs (the 448x448 output subsampled
every 8th pixel, plus per-channel sums, to keep the fixtures small). Rerun:
    /tmp/tfvenv/bin/python tests/data/make_keras_golden.py     (tensorflow-cpu / keras 3)
"""
import pathlib

import numpy as np
import keras
from keras import layers

OUT = pathlib.Path(__file__).resolve().parent / "keras"
OUT.mkdir(exist_ok=True)
keras.utils.set_random_seed(7)

gen = keras.Sequential([
    keras.Input(shape=(16,)),
    layers.Dense(4 * 4 * 8),
    layers.Reshape((4, 4, 8)),
    layers.BatchNormalization(),
    layers.LeakyReLU(negative_slope=0.2),
    layers.Conv2DTranspose(6, 5, strides=2, padding="same"),
    layers.ReLU(),
    layers.Conv2DTranspose(3, 4, strides=2, padding="same", activation="tanh"),
], name="dcgan_like")
# make the BatchNormalization statistics non-trivial
bn = gen.layers[2]
c = bn.gamma.shape[0]
rng = np.random.default_rng(3)
bn.set_weights([rng.uniform(0.5, 1.5, c), rng.normal(0, 0.1, c), rng.normal(0, 0.3, c),
                rng.uniform(0.5, 2.0, c)])

dec = keras.Sequential([
    keras.Input(shape=(9, 9, 3)),
    layers.Conv2D(8, 3, padding="same", activation="relu"),
    layers.MaxPooling2D(2),
    layers.UpSampling2D(2),
    layers.Conv2DTranspose(4, 3, strides=2, padding="valid", output_padding=1),
    layers.Activation("sigmoid"),
], name="decoder")

dcgan = keras.Sequential([
    keras.Input(shape=(32,)),
    layers.Dense(4 * 4 * 32),
    layers.BatchNormalization(),
    layers.LeakyReLU(negative_slope=0.2),
    layers.Reshape((4, 4, 32)),
    layers.Conv2DTranspose(16, 5, strides=2, padding="same"),
    layers.Conv2DTranspose(8, 5, strides=2, padding="same"),
    layers.Conv2DTranspose(3, 5, strides=2, padding="same", activation="tanh"),
], name="dcgan")
bn = dcgan.layers[1]
c = bn.gamma.shape[0]
bn.set_weights([rng.uniform(0.5, 1.5, c), rng.normal(0, 0.1, c), rng.normal(0, 0.3, c),
                rng.uniform(0.5, 2.0, c)])
unet = keras.Sequential([
    keras.Input(shape=(8, 8, 32)),
    layers.Conv2DTranspose(16, 2, strides=2, padding="same"),
    layers.Conv2D(16, 3, padding="same", activation="relu"),
    layers.Conv2DTranspose(8, 2, strides=2, padding="same"),
    layers.Conv2D(8, 3, padding="same", activation="relu"),
    layers.Conv2D(1, 1, activation="sigmoid"),
], name="unet_decoder")
mnist = keras.Sequential([keras.Input(shape=(28, 28, 1)),
                          layers.Conv2DTranspose(32, 3, strides=2, padding="same")],
                         name="article_mnist")
rgb = keras.Sequential([keras.Input(shape=(224, 224, 3)),
                        layers.Conv2DTranspose(3, 3, strides=2, padding="same")],
                       name="article_rgb224")
for m in (dcgan, unet, mnist, rgb):
    m.save(OUT / f"{m.name}.keras")
dz = rng.normal(size=(4, 32)).astype("float32")
ux = rng.normal(size=(2, 8, 8, 32)).astype("float32")
mx = rng.uniform(0, 1, size=(2, 28, 28, 1)).astype("float32")
rx = (rng.integers(0, 256, size=(1, 224, 224, 3)) / 255).astype("float32")
rgb_out = rgb.predict(rx, verbose=0)
np.savez_compressed(OUT / "io_more.npz", dcgan_in=dz, dcgan_out=dcgan.predict(dz, verbose=0),
                    unet_in=ux, unet_out=unet.predict(ux, verbose=0), mnist_in=mx,
                    mnist_out=mnist.predict(mx, verbose=0), rgb_seed=np.int64(11),
                    rgb_out_sub=rgb_out[:, ::8, ::8, :], rgb_out_sum=rgb_out.sum((1, 2)))
np.save(OUT / "rgb_in.npy", (rx * 255).round().astype(np.uint8))   # rx = this / 255

z = rng.normal(size=(5, 16)).astype("float32")
img = rng.normal(size=(3, 9, 9, 3)).astype("float32")
gen.save(OUT / "dcgan_like.keras")
dec.save(OUT / "decoder.keras")
gen.save_weights(OUT / "dcgan_like.weights.h5")
np.savez(OUT / "io.npz", z=z, gen_out=gen.predict(z, verbose=0), img=img,
         dec_out=dec.predict(img, verbose=0))
print("keras", keras.__version__, [p.name for p in sorted(OUT.iterdir())])
