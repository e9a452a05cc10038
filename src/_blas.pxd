# Row-major GEMM over scipy.linalg.cython_blas: the only file that cimports it.
#
# SciPy exposes the Fortran BLAS (column-major, scalars by pointer, no const). A
# row-major C = op(A) @ op(B) is the column-major C.T = op(B).T @ op(A).T, so B and its
# flag go first and m/n swap. After scikit-learn's sklearn/utils/_cython_blas.pyx.

from cython cimport floating
from scipy.linalg.cython_blas cimport sgemm, dgemm, sgemv, dgemv

cdef enum Trans:
    NO_TRANS = 78   # ord('N')
    TRANS = 84      # ord('T')


cdef inline void _gemv_cm(Trans t, int m, int n, floating alpha, const floating* A,
                          int lda, const floating* x, int incx, floating beta,
                          floating* y, int incy) noexcept nogil:
    """Column-major y := alpha * op(A) @ x + beta * y, A (m, n) with leading dim lda."""
    cdef char t_ = t
    if floating is float:
        sgemv(&t_, &m, &n, &alpha, <float*>A, &lda, <float*>x, &incx, &beta, y, &incy)
    else:
        dgemv(&t_, &m, &n, &alpha, <double*>A, &lda, <double*>x, &incx, &beta, y, &incy)


cdef inline void gemm_rm(Trans ta, Trans tb, int m, int n, int k, floating alpha,
                         const floating* A, int lda, const floating* B, int ldb,
                         floating beta, floating* C, int ldc) noexcept nogil:
    """Row-major C(m, n) := alpha * op(A)(m, k) @ op(B)(k, n) + beta * C.

    lda/ldb/ldc are row-major leading dimensions (the stored row lengths). The caller
    guarantees every size and leading dimension fits in a C int (checked in Python).
    """
    cdef char ta_ = ta, tb_ = tb
    if m <= 0 or n <= 0:
        return
    if m == 1 and k > 0:
        # a single output row: y(n) := op(B)^T a (GEMV: no packing of the large B)
        _gemv_cm(TRANS if tb == TRANS else NO_TRANS, k if tb == TRANS else n,
                 n if tb == TRANS else k, alpha, B, ldb, A, 1 if ta == NO_TRANS else lda,
                 beta, C, 1)
        return
    if n == 1 and k > 0:
        # a single output column: y(m) := op(A) b
        _gemv_cm(NO_TRANS if ta == TRANS else TRANS, m if ta == TRANS else k,
                 k if ta == TRANS else m, alpha, A, lda, B, ldb if tb == NO_TRANS else 1,
                 beta, C, ldc)
        return
    # const casts: cython_blas signatures are not const-qualified (scipy#14262)
    if floating is float:
        sgemm(&tb_, &ta_, &n, &m, &k, &alpha, <float*>B, &ldb, <float*>A, &lda,
              &beta, C, &ldc)
    else:
        dgemm(&tb_, &ta_, &n, &m, &k, &alpha, <double*>B, &ldb, <double*>A, &lda,
              &beta, C, &ldc)
