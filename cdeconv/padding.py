"""Translate transposed-convolution padding between TensorFlow, PyTorch and ONNX.

Every convention describes, per spatial axis, the same two numbers: how many pixels are
cropped at the *beginning* of the full result, and the output size. The full (uncropped)
result of a transposed convolution has ``full = (in - 1) * stride + (k - 1) * dilation + 1``
pixels; the output is ``full[before : before + out]``, where positions past ``full`` (an
``output_padding``) are zeros.

==========  ======================================================================
TensorFlow  ``padding='SAME'``: out = in * stride (or any size mapping back to ``in``),
            total = max(full - out, 0), before = total // 2: the odd pixel is cropped at
            the *end*. ``'VALID'``: before = 0. Explicit ``[[b, a]]``: before = b,
            out = ``output_shape`` (full - b - a, up to stride - 1 more).
PyTorch     ``padding=p`` (symmetric), ``output_padding=op``: before = p,
            out = full - 2p + op, with 0 <= op < max(stride, dilation). It cannot crop
            less at the beginning than at the end, so TF's SAME with an odd total
            (e.g. k=3, s=2) has no exact PyTorch equivalent: run padding=0 and crop.
ONNX        ``pads=[b..., e...]``, ``output_padding=op``: before = b,
            out = full - b - e + op. ``auto_pad='SAME_UPPER'`` (out = in * stride, odd
            pixel cropped at the end, as TF) or ``'SAME_LOWER'`` (odd pixel at the
            beginning); ``output_shape`` given: total = full + op - out split the same way.
==========  ======================================================================

>>> from cdeconv.padding import from_tf
>>> c = from_tf(input_size=3, kernel_size=3, strides=2, padding="SAME")
>>> c.before, c.output_size
([0], [6])
>>> c.onnx()
{'pads': [0, 1], 'output_padding': [0]}
>>> c.torch() is None, c.torch_note()[:28]
(True, 'axis 0: PyTorch crops the sa')
"""
import numbers

from . import _geometry

__all__ = ["Padding", "from_tf", "from_torch", "from_onnx"]


def _axes(value, n, name):
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return [int(value)] * n
    vals = [_geometry._as_int(v, name) for v in value]
    if len(vals) == 1:
        vals *= n
    if len(vals) != n:
        raise ValueError(f"{name} must be an int or {n} ints, got {vals}")
    return vals


class Padding:
    """One transposed convolution's padding, convention-free: per axis the input size,
    kernel, stride, dilation, the pixels cropped at the beginning (``before``) and the
    ``output_size``. Build it with ``from_tf`` / ``from_torch`` / ``from_onnx``; read it
    back with ``tf()`` / ``torch()`` / ``onnx()``."""

    def __init__(self, input_size, kernel_size, strides, dilations, before, output_size):
        self.input_size, self.kernel_size = list(input_size), list(kernel_size)
        self.strides, self.dilations = list(strides), list(dilations)
        self.before, self.output_size = list(before), list(output_size)
        for i in range(len(self.input_size)):
            if self.before[i] < 0 or self.output_size[i] < 0:
                raise ValueError(f"axis {i}: the output window (crop {self.before[i]}, "
                                 f"size {self.output_size[i]}) must be non-negative")

    def _full(self, i):
        return ((self.input_size[i] - 1) * self.strides[i]
                + (self.kernel_size[i] - 1) * self.dilations[i] + 1)

    @property
    def after(self):
        """Pixels cropped at the end (negative: zeros appended, an output_padding)."""
        return [self._full(i) - self.before[i] - self.output_size[i]
                for i in range(len(self.input_size))]

    def __repr__(self):
        return (f"Padding(input_size={self.input_size}, kernel_size={self.kernel_size}, "
                f"strides={self.strides}, dilations={self.dilations}, "
                f"before={self.before}, output_size={self.output_size})")

    def __eq__(self, other):
        return isinstance(other, Padding) and vars(self) == vars(other)

    def tf(self):
        """Arguments for ``tf.nn.conv*_transpose`` / ``cdeconv.conv*_transpose``:
        ``{'padding': 'SAME' | 'VALID' | [[b, a], ...] (spatial pairs), 'output_shape':
        [spatial sizes]}``, using 'SAME'/'VALID' when they are exactly equivalent."""
        n = len(self.input_size)
        pairs = [[self.before[i], max(self.after[i], 0)] for i in range(n)]
        for i in range(n):
            extra = max(-self.after[i], 0)
            if extra >= self.strides[i]:
                raise ValueError(f"axis {i}: {extra} zero pixels appended at the end is "
                                 f"not expressible in TensorFlow (at most stride - 1 = "
                                 f"{self.strides[i] - 1})")
        args = (self.input_size, self.kernel_size, self.strides, self.dilations)
        for mode in ("SAME", "VALID"):
            try:
                if from_tf(*args[:3], padding=mode, output_size=self.output_size,
                           dilations=self.dilations) == self:
                    return {"padding": mode, "output_shape": list(self.output_size)}
            except ValueError:
                pass
        return {"padding": pairs, "output_shape": list(self.output_size)}

    def onnx(self):
        """ONNX ConvTranspose attributes: ``{'pads': [begins..., ends...],
        'output_padding': [...]}`` (auto_pad NOTSET). Always expressible."""
        n = len(self.input_size)
        return {"pads": list(self.before) + [max(a, 0) for a in self.after],
                "output_padding": [max(-self.after[i], 0) for i in range(n)]}

    def torch(self):
        """``{'padding': [...], 'output_padding': [...]}`` for PyTorch's
        ``ConvTransposeNd``, or None when PyTorch cannot express it (see
        ``torch_note()``)."""
        n = len(self.input_size)
        op = [self.before[i] - self.after[i] for i in range(n)]
        for i in range(n):
            if not 0 <= op[i] < max(self.strides[i], self.dilations[i]):
                return None
        return {"padding": list(self.before), "output_padding": op}

    def torch_note(self):
        """Why ``torch()`` is None, and the exact recipe that works instead."""
        notes = []
        for i in range(len(self.input_size)):
            op = self.before[i] - self.after[i]
            if op < 0:
                notes.append(f"axis {i}: PyTorch crops the same number of pixels at both "
                             f"ends, here {self.before[i]} at the beginning and "
                             f"{self.after[i]} at the end")
            elif op >= max(self.strides[i], self.dilations[i]):
                notes.append(f"axis {i}: needs output_padding {op}, PyTorch allows < "
                             f"max(stride, dilation) = "
                             f"{max(self.strides[i], self.dilations[i])}")
        if not notes:
            return ""
        crop = ", ".join(f"{b}:{b + o}" for b, o in zip(self.before, self.output_size))
        return "; ".join(notes) + (f". Exact recipe: run with padding=0 (output_padding="
                                   f"0) and crop the spatial axes [{crop}].")


def _common(input_size, kernel_size, strides, dilations):
    scalar = isinstance(input_size, numbers.Integral)
    ins = [int(input_size)] if scalar else [_geometry._as_int(v, "input_size")
                                            for v in input_size]
    n = len(ins)
    return (ins, _axes(kernel_size, n, "kernel_size"), _axes(strides, n, "strides"),
            _axes(dilations, n, "dilations"))


def from_tf(input_size, kernel_size, strides=1, padding="SAME", output_size=None,
            dilations=1):
    """From TensorFlow's ``padding`` ('SAME', 'VALID', or spatial [before, after] pairs)
    and ``output_shape`` (spatial sizes; None: TF/Keras' default) to a ``Padding``.
    Raises ValueError, listing the valid sizes, if the output size does not map back."""
    ins, k, s, d = _common(input_size, kernel_size, strides, dilations)
    n = len(ins)
    mode, pads = _geometry.padding_spec(padding, n, False)
    if output_size is None:
        out = [ins[i] * s[i] if mode == "SAME" else
               max((ins[i] - 1) * s[i] + (k[i] - 1) * d[i] + 1
                   - (sum(pads[i]) if pads else 0), 0) for i in range(n)]
    else:
        out = _axes(output_size, n, "output_size")
    before = []
    for i in range(n):
        p = (_geometry.same_pads(out[i], ins[i], k[i], s[i], d[i]) if mode == "SAME"
             else pads[i] if pads else (0, 0))
        if _geometry.forward_size(out[i], k[i], s[i], d[i], mode, p) != ins[i]:
            r = _geometry.valid_big_range(ins[i], k[i], s[i], d[i], mode, p)
            raise ValueError(f"axis {i}: output size {out[i]} does not map back to input "
                             f"size {ins[i]} with padding {padding!r}; valid: "
                             f"{list(range(r[0], r[1] + 1))}")
        before.append(p[0])
    return Padding(ins, k, s, d, before, out)


def from_torch(input_size, kernel_size, strides=1, padding=0, output_padding=0,
               dilations=1):
    """From PyTorch's ``ConvTransposeNd(padding=p, output_padding=op)``."""
    ins, k, s, d = _common(input_size, kernel_size, strides, dilations)
    n = len(ins)
    p = _axes(padding, n, "padding")
    op = _axes(output_padding, n, "output_padding")
    for i in range(n):
        if p[i] < 0 or not 0 <= op[i] < max(s[i], d[i]):
            raise ValueError(f"axis {i}: PyTorch needs padding >= 0 and 0 <= "
                             f"output_padding < max(stride, dilation); got padding "
                             f"{p[i]}, output_padding {op[i]}")
    out = [(ins[i] - 1) * s[i] - 2 * p[i] + d[i] * (k[i] - 1) + op[i] + 1 for i in range(n)]
    return Padding(ins, k, s, d, p, out)


def from_onnx(input_size, kernel_size, strides=1, pads=None, output_padding=None,
              auto_pad="NOTSET", output_shape=None, dilations=1):
    """From ONNX ``ConvTranspose`` attributes (``pads`` = [begins..., ends...])."""
    ins, k, s, d = _common(input_size, kernel_size, strides, dilations)
    n = len(ins)
    op = _axes(output_padding if output_padding is not None else 0, n, "output_padding")
    full = [(ins[i] - 1) * s[i] + (k[i] - 1) * d[i] + 1 for i in range(n)]
    auto = str(auto_pad).upper()
    if auto not in ("NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"):
        raise ValueError(f"auto_pad must be NOTSET, SAME_UPPER, SAME_LOWER or VALID, got "
                         f"{auto_pad!r}")
    if output_shape is not None or auto in ("SAME_UPPER", "SAME_LOWER"):
        out = (_axes(output_shape, n, "output_shape") if output_shape is not None
               else [ins[i] * s[i] for i in range(n)])
        before = []
        for i in range(n):
            total = full[i] + op[i] - out[i]
            half = total // 2
            # SAME_UPPER (and NOTSET with output_shape): the extra pixel at the end
            before.append(total - half if auto == "SAME_LOWER" else half)
        return Padding(ins, k, s, d, before, out)
    if auto == "VALID":
        return Padding(ins, k, s, d, [0] * n, [full[i] + op[i] for i in range(n)])
    p = list(pads) if pads is not None else [0] * (2 * n)
    if len(p) != 2 * n:
        raise ValueError(f"pads must have {2 * n} entries [begins..., ends...], got {p}")
    return Padding(ins, k, s, d, p[:n], [full[i] - p[i] - p[n + i] + op[i]
                                          for i in range(n)])
