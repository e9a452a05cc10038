"""Drivers: from a validated Geometry to a kernel call (threads, BLAS guard, workspace).

Strategy, chosen per call (src/_conv.pyx has the details):
- GEMMs are cut into a fixed set of tiles run in an OpenMP loop, each tile one
  single-threaded BLAS call; BLAS is held at one thread meanwhile (no oversubscription).
- The column buffer is bounded by ``CHUNK_BYTES`` whatever the batch; the chunking
  depends only on shapes, so results are bitwise identical for every thread count.
- 1x1 kernels with stride 1 and no padding skip im2col/col2im: the GEMM is the result.
"""
from . import _conv
from ._threads import blas_single_thread, get_num_threads

#: Upper bound on the column buffer of one call, in bytes (one chunk of small rows;
#: at least one row even if a single row is larger).
CHUNK_BYTES = 8 << 20


_KERNELS = {"transpose": _conv.conv_transpose, "forward": _conv.conv_forward,
            "backprop_filter": _conv.conv_backprop_filter}


def run(geom, a, b, out, kind, chunk_bytes=None):
    """Run one kernel per ``geom``; out is overwritten entirely.

    kind 'transpose':       out (big side)   := conv_transpose(a = small side, b = filter)
    kind 'forward':         out (small side) := conv(a = big side, b = filter)
    kind 'backprop_filter': out (filter)     := d<conv(a, w), b = small side>/dw

    a, b, out are C-contiguous, native float arrays of one dtype (validated upstream).
    """
    if out.size == 0:
        return out
    kernel = _KERNELS[kind]
    n_threads = get_num_threads()
    with blas_single_thread:
        kernel(a.reshape(-1), b.reshape(-1), out.reshape(-1), geom.kernel_args(),
               geom.cf, n_threads, CHUNK_BYTES if chunk_bytes is None else chunk_bytes)
    return out
