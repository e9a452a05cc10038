# Row-major GEMM over scipy.linalg.cython_blas: the only file that cimports it.
#
# SciPy exposes the Fortran BLAS (column-major, scalars by pointer, no const). A
# row-major C = op(A) @ op(B) is the column-major C.T = op(B).T @ op(A).T, so B and its
# flag go first and m/n swap. After scikit-learn's sklearn/utils/_cython_blas.pyx.

from cython cimport floating
from scipy.linalg.cython_blas cimport sgemm, dgemm

cdef enum Trans:
    NO_TRANS = 78   # ord('N')
    TRANS = 84      # ord('T')


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
    # const casts: cython_blas signatures are not const-qualified (scipy#14262)
    if floating is float:
        sgemm(&tb_, &ta_, &n, &m, &k, &alpha, <float*>B, &ldb, <float*>A, &lda,
              &beta, C, &ldc)
    else:
        dgemm(&tb_, &ta_, &n, &m, &k, &alpha, <double*>B, &ldb, <double*>A, &lda,
              &beta, C, &ldc)
