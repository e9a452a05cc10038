"""Keras' weight regularizers (L1, L2, L1L2): penalty and its gradient."""
import numpy as np

__all__ = ["Regularizer", "get_regularizer"]


class Regularizer:
    """Keras' ``L1L2``: the penalty ``l1 * sum(|w|) + l2 * sum(w ** 2)``.

    Parameters
    ----------
    l1, l2 : float, optional
        Non-negative factors (Keras' ``L1``/``L2`` are this class with one of them 0).

    Examples
    --------
    >>> import numpy as np
    >>> reg = Regularizer(l2=0.5)
    >>> reg(np.array([1.0, -2.0])), reg.gradient(np.array([1.0, -2.0])).tolist()
    (2.5, [1.0, -2.0])
    """

    def __init__(self, l1=0.0, l2=0.0):
        l1, l2 = float(l1), float(l2)
        if not (l1 >= 0 and l2 >= 0):
            raise ValueError(f"regularizer factors must be >= 0, got l1={l1}, l2={l2}")
        self.l1, self.l2 = l1, l2

    def __call__(self, w):
        """The penalty of ``w`` (a Python float)."""
        w = np.asarray(w)
        return self.l1 * float(np.abs(w).sum()) + self.l2 * float((w * w).sum())

    def gradient(self, w):
        """d penalty / d w (``sign(w)`` for the L1 part: 0 at 0), in ``w``'s dtype."""
        w = np.asarray(w)
        return (self.l1 * np.sign(w) + 2 * self.l2 * w).astype(w.dtype)

    def get_config(self):
        """Keras' serialization: ``L1``, ``L2`` or ``L1L2`` with its factors."""
        if self.l2 == 0 and self.l1 != 0:
            return {"class_name": "L1", "config": {"l1": self.l1}}
        if self.l1 == 0 and self.l2 != 0:
            return {"class_name": "L2", "config": {"l2": self.l2}}
        return {"class_name": "L1L2", "config": {"l1": self.l1, "l2": self.l2}}

    def __eq__(self, other):
        return isinstance(other, Regularizer) and (self.l1, self.l2) == (other.l1,
                                                                          other.l2)

    def __repr__(self):
        return f"Regularizer(l1={self.l1}, l2={self.l2})"


def get_regularizer(reg):
    """A :class:`Regularizer` (or None) from what Keras accepts.

    Parameters
    ----------
    reg : None, str, dict or Regularizer
        ``'l1'``, ``'l2'``, ``'l1_l2'`` (Keras' default factor 0.01), a Keras config
        ``{'class_name': 'L2', 'config': {'l2': 1e-4}}`` (``L1``, ``L2``, ``L1L2``), or a
        Regularizer.

    Raises
    ------
    ValueError
        For another name or class (e.g. ``OrthogonalRegularizer``).
    TypeError
        For another type.
    """
    if reg is None or isinstance(reg, Regularizer):
        return reg
    if isinstance(reg, str):
        table = {"l1": (0.01, 0.0), "l2": (0.0, 0.01), "l1l2": (0.01, 0.01)}
        key = reg.lower().replace("_", "")
        if key not in table:
            raise ValueError(f"unknown regularizer {reg!r}; known: 'l1', 'l2', 'l1_l2'")
        return Regularizer(*table[key])
    if isinstance(reg, dict):
        cls = str(reg.get("class_name", "")).lower().replace("_", "")
        cfg = reg.get("config") or {}
        if cls not in ("l1", "l2", "l1l2"):
            raise ValueError(f"unsupported regularizer class {reg.get('class_name')!r}; "
                             "supported: L1, L2, L1L2")
        default = 0.01 if cls in ("l1", "l2") else 0.0
        return Regularizer(cfg.get("l1", default if cls == "l1" else 0.0),
                           cfg.get("l2", default if cls == "l2" else 0.0))
    raise TypeError(f"regularizer must be None, a name, a Keras config dict or a "
                    f"Regularizer, got {reg!r}")
