"""cdeconv on Dask arrays: the ops and models over batches larger than one machine.

Dask is the engine (``pip install 'cdeconv[dask]'``); cdeconv stays a per-block kernel.
Every op here takes a ``dask.array.Array`` chunked along the batch axis and returns a
lazy Dask array of the right shape, dtype and chunks. Arguments are validated eagerly,
on the full shape, with the same checks and messages as the NumPy ops: a bad call
fails at call time, not inside a worker at compute time. Inputs chunked along any other
axis are rechunked to whole images (with a warning) rather than computed wrongly.

Threads: a worker that runs ``k`` tasks at once on ``c`` cores gives each call
``max(1, c // k)`` cdeconv threads (``cdeconv.set_num_threads`` per worker process), so
Dask's threads and cdeconv's OpenMP threads do not oversubscribe the cores; outside a
``distributed`` worker the usual default applies.

Example: a decoder over an out-of-core stack on a local cluster::

    import dask.array as da, numpy as np
    from dask.distributed import Client, LocalCluster
    import cdeconv, cdeconv.dask as cdd

    z = np.load("latents.npy", mmap_mode="r")            # (N, 4, 4, 1024), N huge
    x = da.from_array(z, chunks=(256, 4, 4, 1024))
    with Client(LocalCluster(n_workers=2, threads_per_worker=1)) as client:
        y = cdd.conv2d_transpose(x, w, None, strides=2)   # lazy, validated now
        da.to_npy_stack("out/", y)                        # computed block by block
"""
import warnings

import numpy as np

from . import nn
from ._geometry import ShapeOnly, forward_geometry, transposed_geometry

__all__ = ["conv1d_transpose", "conv2d_transpose", "conv3d_transpose",
           "conv2d_backprop_input", "conv1d", "conv2d", "conv3d", "predict"]

_FORMATS = {1: ("NWC", "NCW"), 2: ("NHWC", "NCHW"), 3: ("NDHWC", "NCDHW")}


def _da():
    try:
        import dask.array as da
    except ImportError:  # pragma: no cover - exercised only without dask
        raise ImportError("cdeconv.dask needs dask: pip install 'cdeconv[dask]'") from None
    return da


def _worker_threads():
    """cdeconv threads for a task on a distributed worker (cores // concurrent tasks)."""
    try:
        from distributed import get_worker
        worker = get_worker()
    except (ImportError, ValueError):
        return None
    import os
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count() or 1
    return max(1, cores // max(1, worker.state.nthreads))


def _in_worker(fn, *args, **kwargs):
    """Run a block on a worker with a non-oversubscribing thread count."""
    from . import _threads
    n = _worker_threads()
    if n is None:
        return fn(*args, **kwargs)
    old = _threads._requested
    _threads.set_num_threads(n)
    try:
        return fn(*args, **kwargs)
    finally:
        _threads._requested = old


def _as_batched(x, name):
    """``x`` as a Dask array with whole images per chunk (rechunking with a warning)."""
    da = _da()
    if not isinstance(x, da.Array):
        raise TypeError(f"{name} must be a dask.array.Array, got {type(x).__name__} "
                        "(use the cdeconv functions for NumPy arrays)")
    if x.dtype not in (np.float32, np.float64):
        raise TypeError(f"{name} must have dtype float32 or float64, got {x.dtype}")
    if any(np.isnan(c) for cs in x.chunks for c in cs):
        raise ValueError(f"{name} has unknown chunk sizes; call {name}.compute_chunk_sizes()"
                         " first")
    if any(len(cs) > 1 for cs in x.chunks[1:]):
        warnings.warn(f"{name} is chunked along a non-batch axis {x.chunks}; rechunking "
                      "to whole images (a convolution needs every pixel of an image)",
                      stacklevel=3)
        x = x.rechunk({i: -1 for i in range(1, x.ndim)})
    return x


def _probe(x):
    """A zero-size NumPy stand-in with x's shape and dtype for eager validation."""
    return ShapeOnly(x.shape)


def _map(x, fn, out_tail, dtype):
    """Apply fn per batch block; each block maps to a block of shape (b, *out_tail)."""
    da = _da()
    return x.map_blocks(lambda blk: _in_worker(fn, blk), dtype=dtype,
                        chunks=(x.chunks[0],) + tuple((s,) for s in out_tail))


def _transpose(n, x, filters, output_shape, strides, padding, data_format, dilations,
               groups, output_padding, fn):
    x = _as_batched(x, "input")
    w = np.asarray(filters)
    data_format = data_format or _FORMATS[n][0]
    geom = transposed_geometry(n, _probe(x), ShapeOnly(w.shape), output_shape, strides,
                               padding, data_format, dilations, groups, output_padding)
    if w.dtype != x.dtype:
        raise TypeError(f"input and filters must have the same dtype, got {x.dtype} and "
                        f"{w.dtype}")
    big = geom.shape("big")
    spatial = list(geom.big)

    def block(b):
        return fn(b, w, spatial, strides, padding, data_format, dilations,
                  groups=groups)
    return _map(x, block, big[1:], x.dtype)


def conv2d_transpose(input, filters, output_shape=None, strides=1, padding="SAME",
                     data_format="NHWC", dilations=None, *, groups=1, output_padding=None):
    """``cdeconv.conv2d_transpose`` on a Dask array chunked along the batch axis.
    ``output_shape``'s batch entry, if given, must be the full batch (or -1 / None)."""
    return _transpose(2, input, filters, output_shape, strides, padding, data_format,
                      dilations, groups, output_padding, nn.conv2d_transpose)


def conv1d_transpose(input, filters, output_shape=None, strides=1, padding="SAME",
                     data_format="NWC", dilations=None, *, groups=1, output_padding=None):
    """``cdeconv.conv1d_transpose`` on a Dask array chunked along the batch axis."""
    return _transpose(1, input, filters, output_shape, strides, padding, data_format,
                      dilations, groups, output_padding, nn.conv1d_transpose)


def conv3d_transpose(input, filters, output_shape=None, strides=1, padding="SAME",
                     data_format="NDHWC", dilations=None, *, groups=1,
                     output_padding=None):
    """``cdeconv.conv3d_transpose`` on a Dask array chunked along the batch axis."""
    return _transpose(3, input, filters, output_shape, strides, padding, data_format,
                      dilations, groups, output_padding, nn.conv3d_transpose)


def conv2d_backprop_input(input_sizes, filter, out_backprop, strides, padding,
                          data_format="NHWC", dilations=None):
    """``cdeconv.conv2d_backprop_input`` with a Dask ``out_backprop``."""
    return _transpose(2, out_backprop, filter, input_sizes, strides, padding, data_format,
                      dilations, 1, None,
                      lambda b, w, sp, s, p, f, d, groups: nn.conv2d_backprop_input(
                          sp, w, b, s, p, f, d))


def _forward(n, x, filters, strides, padding, data_format, dilations, groups):
    x = _as_batched(x, "input")
    w = np.asarray(filters)
    data_format = data_format or _FORMATS[n][0]
    geom = forward_geometry(n, _probe(x), ShapeOnly(w.shape), strides, padding,
                            data_format, dilations, groups)
    if w.dtype != x.dtype:
        raise TypeError(f"input and filters must have the same dtype, got {x.dtype} and "
                        f"{w.dtype}")
    fn = {1: nn.conv1d, 2: nn.conv2d, 3: nn.conv3d}[n]
    return _map(x, lambda b: fn(b, w, strides, padding, data_format, dilations,
                                groups=groups), geom.shape("small")[1:], x.dtype)


def conv1d(input, filters, stride, padding, data_format="NWC", dilations=None, *,
           groups=None):
    """``cdeconv.conv1d`` on a Dask array chunked along the batch axis."""
    return _forward(1, input, filters, stride, padding, data_format, dilations, groups)


def conv2d(input, filters, strides, padding, data_format="NHWC", dilations=None, *,
           groups=None):
    """``cdeconv.conv2d`` on a Dask array chunked along the batch axis."""
    return _forward(2, input, filters, strides, padding, data_format, dilations, groups)


def conv3d(input, filters, strides, padding, data_format="NDHWC", dilations=None, *,
           groups=None):
    """``cdeconv.conv3d`` on a Dask array chunked along the batch axis."""
    return _forward(3, input, filters, strides, padding, data_format, dilations, groups)


def predict(model, x, output_shape=None, dtype=None):
    """``model.predict`` (or ``model(x)``) block by block over a batch-chunked Dask array.

    The model is placed in the graph once (``dask.delayed``), so a distributed
    scheduler ships its weights to each worker once, not once per block.

    Parameters
    ----------
    model : an object with ``predict(x)`` (cdeconv.layers models) or a callable,
        mapping a NumPy batch (b, ...) to a NumPy batch (b, ...).
    x : dask.array.Array chunked along axis 0.
    output_shape : per-image output shape; None: found by running the model on one
        image eagerly (which also validates the call at call time).
    dtype : output dtype (default: the probe's, else x's).
    """
    import dask
    x = _as_batched(x, "x")
    fn = getattr(model, "predict", None) or model
    if not callable(fn):
        raise TypeError("model must have a predict(x) method or be callable")
    if output_shape is None:
        probe = np.asarray(fn(np.asarray(x[:1].compute())))
        output_shape, dtype = probe.shape[1:], dtype or probe.dtype
    dtype = np.dtype(dtype or x.dtype)
    model_node = dask.delayed(model, pure=True)

    def block(b, m):
        f = getattr(m, "predict", None) or m
        return np.asarray(_in_worker(f, b), dtype=dtype)
    out_ndim = 1 + len(output_shape)
    extra = {}
    if out_ndim > x.ndim:
        extra["new_axis"] = list(range(x.ndim, out_ndim))
    elif out_ndim < x.ndim:
        extra["drop_axis"] = list(range(out_ndim, x.ndim))
    return x.map_blocks(block, model_node, dtype=dtype,
                        chunks=(x.chunks[0],) + tuple((s,) for s in output_shape), **extra)
