"""Weight initializers by Keras name, plus two for upsampling that Keras lacks.

An initializer is a callable ``init(shape, dtype='float32', rng=None) -> ndarray``.
``rng`` (a ``numpy.random.Generator``) is used when the initializer has no seed of its
own, so a layer can draw all its weights from one seeded stream. The distributions are
Keras' (same fans, limits and truncation); the random streams are NumPy's, so a seeded
cdeconv layer does not reproduce the numbers of a seeded Keras layer.
"""
import math

import numpy as np

__all__ = ["get_initializer", "bilinear", "icnr", "compute_fans", "INITIALIZERS"]


def compute_fans(shape):
    """``(fan_in, fan_out)`` as Keras computes them.

    Keras treats every kernel alike: the last two axes are (input, output) and the
    leading axes the receptive field. For a ``Conv2DTranspose`` kernel
    ``(kh, kw, filters, in_channels)`` this makes ``fan_in = kh * kw * filters``, which
    is what Keras does too (so a Keras-trained model and a cdeconv one start from the
    same distribution).
    """
    shape = tuple(shape)
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    if len(shape) == 2:
        return shape[0], shape[1]
    receptive = math.prod(shape[:-2])
    return shape[-2] * receptive, shape[-1] * receptive


def _truncated_normal(rng, mean, std, shape):
    """Normal samples re-drawn until all lie within two standard deviations (as
    ``tf.random.truncated_normal``)."""
    v = rng.normal(mean, std, shape)
    bad = np.abs(v - mean) > 2 * std
    while bad.any():
        v[bad] = rng.normal(mean, std, int(bad.sum()))
        bad = np.abs(v - mean) > 2 * std
    return v


def _variance_scaling(shape, rng, scale, mode, distribution):
    fan_in, fan_out = compute_fans(shape)
    n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[mode]
    var = scale / max(1.0, n)
    if distribution == "uniform":
        lim = math.sqrt(3 * var)
        return rng.uniform(-lim, lim, shape)
    if distribution == "untruncated_normal":
        return rng.normal(0, math.sqrt(var), shape)
    # 0.879...: std of a unit normal truncated at +-2, as Keras corrects for
    return _truncated_normal(rng, 0.0, math.sqrt(var) / 0.87962566103423978, shape)


def bilinear(shape, dtype="float32", rng=None):
    """FCN-style fixed bilinear upsampling kernel (Long et al. 2015).

    Parameters
    ----------
    shape : tuple
        ``(kh, kw, out_channels, in_channels)`` of a ``Conv2DTranspose`` kernel; needs
        ``out_channels == in_channels``: channel ``c`` upsamples input channel ``c``
        (cross-channel taps are zero). With ``kernel = 2 * s - s % 2`` and stride ``s``
        this is bilinear interpolation by ``s`` away from the borders.
    dtype : dtype, optional
    rng : ignored
        Deterministic; present for the common initializer signature.

    Returns
    -------
    ndarray
    """
    shape = tuple(shape)
    if len(shape) != 4 or shape[2] != shape[3]:
        raise ValueError("the bilinear initializer needs a (kh, kw, c, c) kernel (equal "
                         f"input and output channels), got shape {shape}")
    kh, kw, c, _ = shape

    def axis(k):
        f = (k + 1) // 2
        center = f - 1 if k % 2 == 1 else f - 0.5
        return 1 - np.abs(np.arange(k) - center) / f

    w = np.zeros(shape, dtype)
    w[:, :, np.arange(c), np.arange(c)] = np.multiply.outer(axis(kh), axis(kw))[..., None]
    return w


def icnr(shape, dtype="float32", rng=None, scale=2, base="glorot_uniform"):
    """ICNR initialisation (Aitken et al. 2017) for a transposed convolution.

    The kernel is first drawn at ``1/scale`` of its spatial size from ``base`` and then
    each tap repeated ``scale`` times per axis: ``w[i, j] = w0[i // scale, j //
    scale]``. A transposed convolution of stride ``scale`` with this kernel equals
    nearest-neighbour upsampling of a smaller convolution's output, so it starts free of
    checkerboard artifacts (every output phase sees the same weights).

    Parameters
    ----------
    shape : tuple
        ``(kh, kw, out_channels, in_channels)``; ``kh`` and ``kw`` must be multiples of
        ``scale`` (otherwise the phases cannot all see the same weights).
    dtype : dtype, optional
    rng : numpy.random.Generator, optional
    scale : int, optional
        The stride of the layer the kernel is for (default 2).
    base : str or dict, optional
        Initializer of the small kernel (default ``'glorot_uniform'``).

    Returns
    -------
    ndarray
    """
    shape = tuple(shape)
    scale = int(scale)
    if len(shape) != 4 or scale < 1 or shape[0] % scale or shape[1] % scale:
        raise ValueError(f"the icnr initializer needs a 4-D kernel whose height and width "
                         f"are multiples of scale={scale}, got shape {shape}")
    w0 = get_initializer(base)((shape[0] // scale, shape[1] // scale) + shape[2:], dtype,
                               rng)
    return np.repeat(np.repeat(w0, scale, axis=0), scale, axis=1).astype(dtype)


def _key(name):
    return str(name).lower().replace("_", "")


def _make(name, cfg):
    """``draw(shape, rng) -> float64 array`` for a canonical name and its config."""
    c = cfg.get
    table = {
        "glorotuniform": lambda s, r: _variance_scaling(s, r, 1.0, "fan_avg", "uniform"),
        "glorotnormal": lambda s, r: _variance_scaling(s, r, 1.0, "fan_avg", "normal"),
        "heuniform": lambda s, r: _variance_scaling(s, r, 2.0, "fan_in", "uniform"),
        "henormal": lambda s, r: _variance_scaling(s, r, 2.0, "fan_in", "normal"),
        "lecununiform": lambda s, r: _variance_scaling(s, r, 1.0, "fan_in", "uniform"),
        "lecunnormal": lambda s, r: _variance_scaling(s, r, 1.0, "fan_in", "normal"),
        "variancescaling": lambda s, r: _variance_scaling(
            s, r, float(c("scale", 1.0)), c("mode", "fan_in"),
            {"normal": "truncated_normal"}.get(c("distribution", "truncated_normal"),
                                               c("distribution", "truncated_normal"))),
        "zeros": lambda s, r: np.zeros(s),
        "ones": lambda s, r: np.ones(s),
        "constant": lambda s, r: np.full(s, float(c("value", 0.0))),
        "randomnormal": lambda s, r: r.normal(c("mean", 0.0), c("stddev", 0.05), s),
        "randomuniform": lambda s, r: r.uniform(c("minval", -0.05), c("maxval", 0.05), s),
        "truncatednormal": lambda s, r: _truncated_normal(r, c("mean", 0.0),
                                                          c("stddev", 0.05), s),
        "bilinear": lambda s, r: bilinear(s, np.float64),
        "icnr": lambda s, r: icnr(s, np.float64, r, c("scale", 2),
                                  c("base", "glorot_uniform")),
    }
    return table.get(name)


#: the initializer names :func:`get_initializer` knows (Keras 3 spelling)
INITIALIZERS = ("glorot_uniform", "glorot_normal", "he_uniform", "he_normal",
                "lecun_uniform", "lecun_normal", "variance_scaling", "random_normal",
                "random_uniform", "truncated_normal", "zeros", "ones", "constant",
                "bilinear", "icnr")


def get_initializer(init, seed=None):
    """An initializer ``f(shape, dtype='float32', rng=None) -> ndarray``.

    Parameters
    ----------
    init : str, dict, callable or array_like
        A Keras name (see :data:`INITIALIZERS`; ``'GlorotUniform'`` and
        ``'glorot_uniform'`` alike), a Keras config ``{'class_name': 'RandomNormal',
        'config': {'stddev': 0.02, 'seed': 1}}``, a callable (returned as is), or an
        array (returned, reshaped, whatever the shape asked for has the same size).
    seed : int, optional
        Seed used when the config has none and no ``rng`` is passed at call time.

    Returns
    -------
    callable

    Raises
    ------
    ValueError
        For an unknown name (the message lists the known ones).
    TypeError
        For an argument of another type.
    """
    if callable(init) and not isinstance(init, type):
        return init
    if isinstance(init, (np.ndarray, list)) and not isinstance(init, str):
        value = np.asarray(init)

        def from_array(shape, dtype="float32", rng=None):
            if value.size != math.prod(shape):
                raise ValueError(f"initial value of shape {value.shape} cannot fill a "
                                 f"weight of shape {tuple(shape)}")
            return value.astype(dtype).reshape(shape)
        return from_array
    cfg = {}
    if isinstance(init, dict):
        cfg = dict(init.get("config") or {})
        init = init.get("class_name", "")
    if not isinstance(init, str):
        raise TypeError(f"initializer must be a Keras name, a config dict, a callable or "
                        f"an array, got {init!r}")
    name = _key(init)
    draw = _make(name, cfg)
    if draw is None:
        raise ValueError(f"unknown initializer {init!r}; known: {', '.join(INITIALIZERS)}")
    own_seed = cfg.get("seed") if cfg.get("seed") is not None else seed

    def initializer(shape, dtype="float32", rng=None):
        shape = tuple(int(v) for v in shape)
        if own_seed is not None or rng is None:
            rng = np.random.default_rng(own_seed)
        return np.asarray(draw(shape, rng)).astype(dtype)
    initializer.__name__ = init
    initializer.config = {"class_name": init, "config": cfg}
    return initializer
