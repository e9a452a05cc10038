# OpenMP shim: the same .pyx compiles with and without OpenMP.
#
# With -fopenmp, _OPENMP is defined and the real omp.h functions are used; without it
# the no-op stand-ins below make every kernel run on one thread (Cython's prange then
# compiles to a plain loop). After scikit-learn's sklearn/utils/_openmp_helpers.pxd.

cdef extern from *:
    """
    #ifdef _OPENMP
        #include <omp.h>
        #define CDECONV_OPENMP 1
    #else
        #define CDECONV_OPENMP 0
        static inline int omp_get_max_threads(void) { return 1; }
        static inline int omp_get_thread_num(void) { return 0; }
        static inline int omp_get_num_procs(void) { return 1; }
    #endif
    """
    bint CDECONV_OPENMP
    int omp_get_max_threads() noexcept nogil
    int omp_get_thread_num() noexcept nogil
    int omp_get_num_procs() noexcept nogil
