"""Max pooling with argmax ("switches") and unpooling, channels-last (NHWC).

The kernels assume arguments validated by cdeconv.nn (shapes consistent, C-contiguous).
Index convention (TensorFlow's max_pool_with_argmax): the flattened position
``((b * H + y) * W + x) * C + c`` of the maximum in the input, without the ``b`` term
unless ``include_batch_in_index``. Ties go to the first maximum in window order (rows,
then columns), as TensorFlow's CPU kernel. NaN follows TensorFlow too: a NaN that is
the first element of its window is the result; a NaN met later is skipped (no value
compares larger than it, and it compares larger than none).
"""

from cython cimport floating
from cython.parallel cimport prange
from libc.stdint cimport int64_t

ctypedef Py_ssize_t isize


cdef void _pool_row(const floating* X, floating* Y, int64_t* A, isize b, isize oy,
                    isize H, isize W, isize C, isize OH, isize OW, isize kh, isize kw,
                    isize sh, isize sw, isize pt, isize pl, bint with_batch) noexcept nogil:
    """Pool output row (b, oy): Y/A[b, oy, :, :] (only this row is written)."""
    cdef isize ox, c, y, x, y0, x0, y1, x1, idx
    cdef isize base = b * H * W * C
    cdef floating v, best
    cdef int64_t arg
    cdef bint first
    y0 = oy * sh - pt
    y1 = min(y0 + kh, H)
    y0 = max(y0, 0)
    for ox in range(OW):
        x0 = ox * sw - pl
        x1 = min(x0 + kw, W)
        x0 = max(x0, 0)
        for c in range(C):
            first = True
            best = 0
            arg = 0
            for y in range(y0, y1):
                for x in range(x0, x1):
                    idx = (y * W + x) * C + c
                    v = X[base + idx]
                    # TensorFlow's rule: the first element, then any strictly larger
                    # one (ties keep the first; a NaN is kept only if it comes first)
                    if first or best < v:
                        best = v
                        arg = idx
                        first = False
            Y[((b * OH + oy) * OW + ox) * C + c] = best
            A[((b * OH + oy) * OW + ox) * C + c] = arg + (base if with_batch else 0)


def max_pool_with_argmax(const floating[:, :, :, ::1] x, floating[:, :, :, ::1] y,
                         int64_t[:, :, :, ::1] argmax, tuple window, tuple strides,
                         tuple pads_before, bint include_batch_in_index, int n_threads):
    """y, argmax (OUT, (N, OH, OW, C)) := max pooling of x (IN, (N, H, W, C)).

    Every window holds at least one input pixel (checked by the caller), so every
    output element is written. Parallel over output rows: race-free.
    """
    cdef isize N = x.shape[0], H = x.shape[1], W = x.shape[2], C = x.shape[3]
    cdef isize OH = y.shape[1], OW = y.shape[2]
    cdef isize kh = window[0], kw = window[1], sh = strides[0], sw = strides[1]
    cdef isize pt = pads_before[0], pl = pads_before[1]
    cdef isize r, n_rows = N * OH
    if y.size == 0:
        return
    with nogil:
        for r in prange(n_rows, schedule='static', num_threads=max(1, min(
                <isize>n_threads, n_rows))):
            _pool_row(&x[0, 0, 0, 0], &y[0, 0, 0, 0], &argmax[0, 0, 0, 0], r // OH,
                      r % OH, H, W, C, OH, OW, kh, kw, sh, sw, pt, pl,
                      include_batch_in_index)


def max_unpool(const floating[:, ::1] pooled, const int64_t[:, ::1] argmax,
               floating[:, ::1] out, bint include_batch_in_index, int n_threads):
    """out (OUT, (N, H*W*C), zeroed here) += pooled at argmax, image by image.

    pooled, argmax : (N, OH*OW*C). Values whose switches coincide add up (as
    tf.scatter_nd). Returns -1 if every index lies in its own image, else the
    flat position of the first offending entry (nothing is then guaranteed written).
    Parallel over images; each image's entries are added in order: deterministic.
    """
    cdef isize N = out.shape[0], P = out.shape[1], Q = pooled.shape[1]
    cdef isize b, i, j, bad = -1
    cdef int64_t idx, lo
    with nogil:
        # validate first, so a bad switch never writes out of bounds
        for b in range(N):
            lo = b * P if include_batch_in_index else 0
            for i in range(Q):
                idx = argmax[b, i] - lo
                if idx < 0 or idx >= P:
                    bad = b * Q + i
                    break
            if bad >= 0:
                break
    if bad >= 0:
        return bad
    with nogil:
        for b in prange(N, schedule='static', num_threads=max(1, min(<isize>n_threads,
                                                                      N))):
            for j in range(P):
                out[b, j] = 0
            for i in range(Q):
                out[b, argmax[b, i] - (b * P if include_batch_in_index else 0)] += \
                    pooled[b, i]
    return -1
