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


def run(geom, x, w, out, *, transpose, chunk_bytes=None):
    """out := conv_transpose(x, w) if transpose else conv(x, w), per ``geom``.

    x, w, out are C-contiguous, native float arrays of one dtype (validated upstream);
    out is overwritten entirely.
    """
    if out.size == 0:
        return out
    kernel = _conv.conv_transpose if transpose else _conv.conv_forward
    n_threads = get_num_threads()
    with blas_single_thread:
        kernel(x.reshape(-1), w.reshape(-1), out.reshape(-1), geom.kernel_args(),
               geom.cf, n_threads, CHUNK_BYTES if chunk_bytes is None else chunk_bytes)
    return out
