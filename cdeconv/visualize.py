"""Zeiler & Fergus DeconvNet visualisation and occlusion sensitivity, on cdeconv.layers.

``DeconvNet(model)`` records the max-pooling switches on the way up, then projects a
chosen feature map back to pixel space layer by layer with the paper's three steps:
unpool (each value back at its switch, zeros elsewhere), rectify (ReLU), and filter
(the transposed convolution with the same filters; biases are not used, as in the
paper). ``top_k`` finds the strongest activations of a feature map over a set of images
and projects each one alone, beside the input patch it sees (its receptive field).
``occlusion`` slides a grey square over an image and maps the drop in a class score or a
feature's activation, batched through the model.

Supported models: ``Sequential`` stacks whose visualised part is made of ``Conv2D``
(any activation in {linear, relu}), ``ReLU`` / ``Activation('relu')`` and
``MaxPooling2D``, channels-last; layers after the chosen one may be anything.
PNG files are written by a small built-in encoder (no Pillow needed).
"""
import os
import struct
import zlib

import numpy as np

from . import nn as ops
from .layers import _layers as L

__all__ = ["DeconvNet", "occlusion", "write_png", "image_grid", "to_uint8"]


def _is_relu(layer):
    return (isinstance(layer, L.ReLU) and layer.max_value is None
            and layer.negative_slope == 0 and layer.threshold == 0) or (
        isinstance(layer, L.Activation) and layer.activation_name == "relu")


class DeconvNet:
    """Project feature maps of a convolutional ``Sequential`` model back to pixels."""

    def __init__(self, model):
        self.model = model
        self.layers = list(model.layers)
        for layer in self.layers:
            if getattr(layer, "data_format", "channels_last") != "channels_last":
                raise ValueError(f"{layer.name}: only channels_last models are supported")

    def _check_visualisable(self, upto):
        for layer in self.layers[:upto + 1]:
            ok = (isinstance(layer, L.Conv2D) and layer.activation_name in ("linear",
                                                                            "relu")
                  and layer.groups == 1) or _is_relu(layer) \
                or isinstance(layer, (L.MaxPooling2D, L.InputLayer))
            if not ok:
                raise ValueError(f"cannot project through {type(layer).__name__} "
                                 f"{layer.name!r}: the DeconvNet part must be Conv2D "
                                 "(linear/relu), ReLU and MaxPooling2D layers")

    def layer_index(self, layer):
        """Index of a layer given by index or name."""
        if isinstance(layer, (int, np.integer)):
            if not -len(self.layers) <= layer < len(self.layers):
                raise ValueError(f"layer index {layer} out of range (model has "
                                 f"{len(self.layers)} layers)")
            return int(layer) % len(self.layers)
        for i, lay in enumerate(self.layers):
            if lay.name == layer:
                return i
        raise ValueError(f"no layer named {layer!r}; layers: "
                         f"{[lay.name for lay in self.layers]}")

    def forward(self, images, upto):
        """Run the model up to layer ``upto`` (inclusive), recording each layer's input
        shape and every pooling layer's switches. Returns the activations there."""
        self._check_visualisable(upto)
        x = np.asarray(images, dtype=self.layers[0].dtype if self.layers else np.float32)
        self._shapes, self._switches = [], {}
        for i, layer in enumerate(self.layers[:upto + 1]):
            self._shapes.append(x.shape)
            x = layer(x)
            if isinstance(layer, L.MaxPooling2D):
                self._switches[i] = layer.switches
        return x

    def project(self, signal, upto):
        """Project ``signal`` (the shape of layer ``upto``'s output, from the last
        ``forward``) down to pixel space: unpool, rectify, transposed-convolve."""
        x = np.asarray(signal)
        for i in range(upto, -1, -1):
            layer = self.layers[i]
            if isinstance(layer, L.MaxPooling2D):
                x = ops.max_unpool(x, self._switches[i], self._shapes[i])
            elif _is_relu(layer):
                x = np.maximum(x, 0)
            elif isinstance(layer, L.Conv2D):
                if layer.activation_name == "relu":
                    x = np.maximum(x, 0)
                x = ops.conv2d_transpose(x, layer.kernel, self._shapes[i], layer.strides,
                                         layer.padding.upper(), "NHWC",
                                         layer.dilation_rate)
        return x

    def receptive_field(self, upto, y, x):
        """(top, bottom, left, right), half-open, of the input pixels that position
        (y, x) of layer ``upto``'s output sees (clipped to the image)."""
        lo_y = hi_y = y
        lo_x = hi_x = x
        for i in range(upto, -1, -1):
            layer = self.layers[i]
            h, w = self._shapes[i][1:3]
            if isinstance(layer, (L.Conv2D, L.MaxPooling2D)):
                k = layer.kernel_size if isinstance(layer, L.Conv2D) else layer.pool_size
                d = layer.dilation_rate if isinstance(layer, L.Conv2D) else (1, 1)
                s = layer.strides
                pads = []
                for a, size in enumerate((h, w)):
                    out = self._out_size(layer, size, a)
                    eff = (k[a] - 1) * d[a] + 1
                    total = max((out - 1) * s[a] + eff - size, 0) \
                        if layer.padding == "same" else 0
                    pads.append(total // 2)
                lo_y = lo_y * s[0] - pads[0]
                hi_y = hi_y * s[0] - pads[0] + (k[0] - 1) * d[0]
                lo_x = lo_x * s[1] - pads[1]
                hi_x = hi_x * s[1] - pads[1] + (k[1] - 1) * d[1]
        h, w = self._shapes[0][1:3]
        return max(lo_y, 0), min(hi_y + 1, h), max(lo_x, 0), min(hi_x + 1, w)

    @staticmethod
    def _out_size(layer, size, a):
        s = layer.strides[a]
        if layer.padding == "same":
            return -(-size // s)
        k = layer.kernel_size[a] if isinstance(layer, L.Conv2D) else layer.pool_size[a]
        d = layer.dilation_rate[a] if isinstance(layer, L.Conv2D) else 1
        return (size - (k - 1) * d - 1) // s + 1

    def top_k(self, images, layer, feature_map, k=9):
        """The ``k`` strongest activations of ``feature_map`` at ``layer`` over
        ``images``, each projected alone. Returns a list of dicts with ``image`` (index),
        ``position`` (y, x), ``value``, ``projection`` (pixel space, the image's shape)
        and ``patch`` (the receptive field box: top, bottom, left, right)."""
        upto = self.layer_index(layer)
        images = np.asarray(images)
        if images.ndim != 4:
            raise ValueError(f"images must be 4-D (batch, height, width, channels), got "
                             f"shape {images.shape}")
        acts = self.forward(images, upto)
        if not 0 <= feature_map < acts.shape[-1]:
            raise ValueError(f"feature_map must be in [0, {acts.shape[-1]}) for layer "
                             f"{self.layers[upto].name!r}, got {feature_map}")
        if int(k) < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        fmap = acts[..., feature_map]
        order = np.argsort(-fmap, axis=None, kind="stable")[:int(k)]
        out = []
        for flat in order:
            b, y, x = np.unravel_index(flat, fmap.shape)
            signal = np.zeros_like(acts[b:b + 1])
            signal[0, y, x, feature_map] = acts[b, y, x, feature_map]
            self.forward(images[b:b + 1], upto)           # this image's switches
            proj = self.project(signal, upto)[0]
            out.append({"image": int(b), "position": (int(y), int(x)),
                        "value": float(fmap[b, y, x]), "projection": proj,
                        "patch": self.receptive_field(upto, int(y), int(x))})
        return out


def occlusion(model, image, target, size=4, stride=1, value=None, batch_size=64,
              score=None):
    """Occlusion sensitivity: slide a ``size`` x ``size`` square (``value``, default the
    image mean) over ``image`` (H, W, C) with ``stride`` and record the drop of
    ``score(model_output)[target]`` (default: the model's output at index ``target``,
    e.g. a class score). Returns an (H, W) map: each pixel averages the drops of the
    placements covering it. Placements are evaluated in batches of ``batch_size``."""
    image = np.asarray(image)
    if image.ndim != 3:
        raise ValueError(f"image must be (height, width, channels), got {image.shape}")
    h, w = image.shape[:2]
    if not (1 <= size <= min(h, w)) or stride < 1:
        raise ValueError(f"size must be in [1, {min(h, w)}] and stride >= 1, got size "
                         f"{size}, stride {stride}")
    value = float(image.mean()) if value is None else float(value)
    score = score or (lambda out: out.reshape(len(out), -1)[:, target])
    base = float(score(model.predict(image[None]))[0])
    spots = [(y, x) for y in range(0, h - size + 1, stride)
             for x in range(0, w - size + 1, stride)]
    drops = np.zeros((h, w))
    counts = np.zeros((h, w))
    for i in range(0, len(spots), batch_size):
        chunk = spots[i:i + batch_size]
        batch = np.repeat(image[None], len(chunk), axis=0)
        for j, (y, x) in enumerate(chunk):
            batch[j, y:y + size, x:x + size] = value
        scores = score(model.predict(batch))
        for (y, x), s in zip(chunk, scores):
            drops[y:y + size, x:x + size] += base - float(s)
            counts[y:y + size, x:x + size] += 1
    return np.divide(drops, counts, out=np.zeros_like(drops), where=counts > 0)


# ------------------------------------------------------------------ images and PNG

def to_uint8(a, symmetric=False):
    """Scale an array to 0..255 (min..max, or -m..m around grey with ``symmetric``)."""
    a = np.asarray(a, dtype=np.float64)
    if symmetric:
        m = np.abs(a).max()
        a = 0.5 + (a / (2 * m) if m > 0 else 0 * a)
    else:
        lo, hi = a.min(), a.max()
        a = (a - lo) / (hi - lo) if hi > lo else np.zeros_like(a)
    return np.clip(np.round(a * 255), 0, 255).astype(np.uint8)


def image_grid(tiles, cols, pad=2, scale=1, background=255):
    """Tiles (each (h, w) or (h, w, 3) uint8, same size) in a grid with padding,
    each pixel repeated ``scale`` times (for tiny images)."""
    tiles = [np.repeat(np.repeat(t, scale, 0), scale, 1) for t in tiles]
    tiles = [np.repeat(t[..., None], 3, -1) if t.ndim == 2 else t for t in tiles]
    h, w = tiles[0].shape[:2]
    rows = -(-len(tiles) // cols)
    grid = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad, 3), background,
                   np.uint8)
    for i, t in enumerate(tiles):
        r, c = divmod(i, cols)
        grid[pad + r * (h + pad):pad + r * (h + pad) + h,
             pad + c * (w + pad):pad + c * (w + pad) + w] = t
    return grid


def write_png(path, img):
    """Write an (h, w) or (h, w, 3) uint8 array as a PNG (zlib + struct, no Pillow)."""
    img = np.asarray(img)
    if img.dtype != np.uint8 or img.ndim not in (2, 3) or (img.ndim == 3 and
                                                           img.shape[2] != 3):
        raise ValueError(f"write_png takes (h, w) or (h, w, 3) uint8, got {img.dtype} "
                         f"{img.shape}")
    h, w = img.shape[:2]
    color = 0 if img.ndim == 2 else 2
    raw = b"".join(b"\x00" + img[y].tobytes() for y in range(h))

    def chunk(tag, data):
        return (struct.pack(">I", len(data)) + tag + data
                + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF))
    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, color,
                                                             0, 0, 0))
           + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "wb") as fh:
        fh.write(png)
    return path
