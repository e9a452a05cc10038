"""cdeconv: fast, validated transposed convolution for the CPU with TensorFlow's API.

>>> import numpy as np, cdeconv
>>> x = np.ones((1, 4, 4, 1), np.float32)          # NHWC
>>> w = np.ones((3, 3, 2, 1), np.float32)          # (kh, kw, out_c, in_c), as TF
>>> cdeconv.conv2d_transpose(x, w, [1, 8, 8, 2], strides=2, padding="SAME").shape
(1, 8, 8, 2)
"""
from . import layers, padding
from ._config import show_config
from ._geometry import valid_output_sizes
from ._memory import output_cache_info, set_output_cache
from ._threads import get_num_threads, set_num_threads
from .layers import load_model
from .nn import (conv1d, conv1d_transpose, conv2d, conv2d_backprop_filter,
                 conv2d_backprop_input, conv2d_transpose, conv3d, conv3d_transpose,
                 max_pool_with_argmax, max_unpool)

__version__ = "0.1.0"

__all__ = ["conv1d_transpose", "conv2d_transpose", "conv3d_transpose",
           "conv2d_backprop_input", "conv2d_backprop_filter", "conv1d", "conv2d", "conv3d",
           "max_pool_with_argmax", "max_unpool", "valid_output_sizes", "padding", "layers",
           "load_model",
           "set_num_threads", "get_num_threads", "set_output_cache", "output_cache_info",
           "show_config", "__version__"]
