"""Keras-compatible layers and models on cdeconv's ops: run a trained decoder with
numpy + scipy only (h5py for Keras files: ``pip install 'cdeconv[keras]'``).

Layers take Keras 3's constructor arguments, keep their weights in Keras' layout
(``get_weights()`` / ``set_weights()``), round-trip their configs
(``get_config()`` / ``from_config()``), build on their first call and compute with
cdeconv's public ops. ``layer(x)`` is inference; ``layer.forward(x)`` then
``layer.backward(dy)`` gives the input and weight gradients.

>>> import numpy as np
>>> from cdeconv.layers import Conv2DTranspose
>>> layer = Conv2DTranspose(filters=32, kernel_size=3, strides=2, padding="same")
>>> layer(np.zeros((2, 28, 28, 1), np.float32)).shape
(2, 56, 56, 32)

Modules: ``_layer`` (Layer, symbolic tensors), ``_initializers``, ``_activations``,
``_regularizers``, ``_conv`` (Conv2DTranspose, Conv2D, output sizes, checkerboard),
``_core`` (Dense, BatchNormalization, activations layers, Input, ...), ``_pooling``
(pooling, upsampling, padding, cropping), ``_merge`` (skip connections), ``_containers``
(Sequential, Model, folding, SGD), ``_saving`` (.keras, .weights.h5, .npz).
"""
from ._activations import ACTIVATIONS, ActivationFunction, get_activation
from ._layer import KerasTensor, Layer
from ._conv import (Conv2D, Conv2DTranspose, checkerboard, conv_output_length,
                    deconv_output_length)
from ._core import (Activation, BatchNormalization, Dense, Dropout, Flatten, Input,
                    InputLayer, LeakyReLU, ReLU, Reshape)
from ._initializers import INITIALIZERS, bilinear, get_initializer, icnr
from ._merge import Add, Average, Concatenate, Multiply, Subtract
from ._containers import (Model, Sequential, clone_layer, deserialize_layer,
                          fold_batch_norm, serialize_layer, sgd_step)
from ._pooling import (Cropping2D, GlobalAveragePooling2D, MaxPooling2D, UpSampling2D,
                       ZeroPadding2D)
from ._regularizers import Regularizer, get_regularizer
from ._saving import load_model, load_weights, save_model, save_weights

__all__ = [
    # layers
    "Layer", "Conv2DTranspose", "Conv2D", "Dense", "Flatten", "Reshape", "Activation",
    "ReLU", "LeakyReLU", "Dropout", "BatchNormalization", "UpSampling2D",
    "MaxPooling2D", "GlobalAveragePooling2D", "ZeroPadding2D", "Cropping2D",
    "Concatenate", "Add", "Subtract", "Multiply", "Average", "InputLayer", "Input",
    "KerasTensor",
    # models
    "Sequential", "Model", "load_model", "save_model", "load_weights", "save_weights",
    "fold_batch_norm", "sgd_step", "clone_layer", "serialize_layer", "deserialize_layer",
    # initializers, activations, regularizers, geometry
    "get_initializer", "INITIALIZERS", "bilinear", "icnr", "get_activation",
    "ActivationFunction", "ACTIVATIONS", "get_regularizer", "Regularizer",
    "deconv_output_length", "conv_output_length", "checkerboard",
]
