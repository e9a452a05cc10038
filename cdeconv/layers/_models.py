"""Former home of Sequential and the loaders; they now live in ``_containers`` and
``_saving`` (names re-exported here for old imports)."""
from ._containers import Model, Sequential
from ._containers import deserialize_layer as layer_from_config
from ._saving import load_model

__all__ = ["Sequential", "Model", "load_model", "layer_from_config"]
