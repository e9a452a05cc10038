"""All layer classes in one namespace (kept for ``from cdeconv.layers import _layers``;
the classes live in _conv, _core, _pooling and _merge)."""
from ._conv import Conv2D, Conv2DTranspose, checkerboard, conv_output_length, \
    deconv_output_length
from ._core import (Activation, BatchNormalization, Dense, Dropout, Flatten, Input,
                    InputLayer, LeakyReLU, ReLU, Reshape)
from ._merge import Add, Average, Concatenate, Multiply, Subtract
from ._pooling import (Cropping2D, GlobalAveragePooling2D, MaxPooling2D, UpSampling2D,
                       ZeroPadding2D)

__all__ = ["Conv2DTranspose", "Conv2D", "Dense", "Flatten", "Reshape", "Activation",
           "ReLU", "LeakyReLU", "Dropout", "BatchNormalization", "UpSampling2D",
           "MaxPooling2D", "GlobalAveragePooling2D", "ZeroPadding2D", "Cropping2D",
           "Concatenate", "Add", "Subtract", "Multiply", "Average", "InputLayer", "Input",
           "deconv_output_length", "conv_output_length", "checkerboard"]
