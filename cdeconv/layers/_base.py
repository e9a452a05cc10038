"""Former home of the Layer base class, initializers, activations and regularizers;
they now live in ``_layer``, ``_initializers``, ``_activations`` and ``_regularizers``
(names re-exported here for old imports)."""
from ._activations import get_activation
from ._initializers import get_initializer
from ._layer import Layer
from ._regularizers import Regularizer, get_regularizer

__all__ = ["Layer", "get_initializer", "get_activation", "get_regularizer", "Regularizer"]
