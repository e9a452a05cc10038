"""Keras-compatible layers and models on cdeconv's ops: run a trained decoder with
numpy + scipy only (h5py for Keras files: ``pip install 'cdeconv[keras]'``).

>>> import numpy as np
>>> from cdeconv.layers import Conv2DTranspose
>>> layer = Conv2DTranspose(filters=32, kernel_size=3, strides=2, padding="same")
>>> layer(np.zeros((2, 28, 28, 1), np.float32)).shape
(2, 56, 56, 32)
"""
from ._base import Layer, Regularizer, get_activation, get_initializer, get_regularizer
from ._layers import (Activation, Add, BatchNormalization, Concatenate, Conv2D,
                      Conv2DTranspose, Dense, Flatten, InputLayer, LeakyReLU,
                      MaxPooling2D, ReLU, Reshape, UpSampling2D, deconv_output_length)
from ._models import Sequential, load_model

__all__ = ["Layer", "Conv2DTranspose", "Conv2D", "Dense", "Flatten", "Reshape",
           "Activation", "ReLU", "LeakyReLU", "BatchNormalization", "UpSampling2D",
           "MaxPooling2D", "Concatenate", "Add", "InputLayer", "Sequential", "load_model",
           "get_initializer", "get_activation", "get_regularizer", "Regularizer",
           "deconv_output_length", "checkerboard"]


def checkerboard(kernel_size, strides, dilation=1, warn=False):
    """How unevenly a transposed convolution covers its output (Odena et al. 2016):
    the number of kernel taps reaching each output position of one stride period, per
    axis. Even coverage (all counts equal) means no checkerboard pattern from overlap;
    ``kernel_size % strides != 0`` (undilated) gives uneven counts. With ``warn=True``
    a UserWarning is issued for uneven coverage."""
    import warnings

    import numpy as np
    ks = [kernel_size] * 2 if isinstance(kernel_size, int) else list(kernel_size)
    ss = [strides] * len(ks) if isinstance(strides, int) else list(strides)
    ds = [dilation] * len(ks) if isinstance(dilation, int) else list(dilation)
    counts = []
    for k, s, d in zip(ks, ss, ds):
        c = np.zeros(s, int)
        for t in range(k):
            c[(t * d) % s] += 1
        counts.append(c)
    grid = counts[0]
    for c in counts[1:]:
        grid = np.multiply.outer(grid, c)
    if warn and grid.min() != grid.max():
        warnings.warn(f"kernel {ks} with strides {ss} covers the output unevenly "
                      f"(taps per position {grid.min()}..{grid.max()}): expect "
                      "checkerboard artifacts; use a kernel divisible by the stride or "
                      "the 'icnr' initializer", stacklevel=2)
    return grid
