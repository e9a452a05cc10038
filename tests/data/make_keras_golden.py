"""Make small real Keras 3 model files and their outputs, for loading tests (tests need
no TensorFlow/Keras).

Writes tests/data/keras/: dcgan_like.keras (Dense -> Reshape -> BatchNormalization ->
LeakyReLU -> Conv2DTranspose x2, 'same', tanh), decoder.keras (Conv2D, MaxPooling2D,
UpSampling2D, Conv2DTranspose 'valid' with output_padding, ReLU, channels_last),
their .weights.h5, and io.npz with inputs and Keras' outputs. Rerun:
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

z = rng.normal(size=(5, 16)).astype("float32")
img = rng.normal(size=(3, 9, 9, 3)).astype("float32")
gen.save(OUT / "dcgan_like.keras")
dec.save(OUT / "decoder.keras")
gen.save_weights(OUT / "dcgan_like.weights.h5")
np.savez(OUT / "io.npz", z=z, gen_out=gen.predict(z, verbose=0), img=img,
         dec_out=dec.predict(img, verbose=0))
print("keras", keras.__version__, [p.name for p in sorted(OUT.iterdir())])
