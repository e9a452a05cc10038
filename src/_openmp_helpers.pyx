"""What the build's OpenMP can do, for cdeconv._threads and cdeconv.show_config()."""

from _openmp cimport CDECONV_OPENMP, omp_get_max_threads, omp_get_num_procs


def openmp_enabled():
    """True if the kernels were compiled with OpenMP (else they run serially)."""
    return bool(CDECONV_OPENMP)


def omp_max_threads():
    """omp_get_max_threads() of the calling thread: honours OMP_NUM_THREADS and
    threadpoolctl.threadpool_limits(n, user_api="openmp"). 1 without OpenMP."""
    return omp_get_max_threads()


def omp_num_procs():
    """omp_get_num_procs(): processors available to the process (1 without OpenMP)."""
    return omp_get_num_procs()


cdef extern from *:
    """
    #if defined(__clang__)
        #define CDECONV_COMPILER "clang " __clang_version__
    #elif defined(__GNUC__)
        #define CDECONV_COMPILER "gcc " __VERSION__
    #elif defined(_MSC_VER)
        #define CDECONV_STR2(x) #x
        #define CDECONV_STR(x) CDECONV_STR2(x)
        #define CDECONV_COMPILER "msvc " CDECONV_STR(_MSC_VER)
    #else
        #define CDECONV_COMPILER "unknown"
    #endif
    #ifdef _OPENMP
        #define CDECONV_OPENMP_SPEC _OPENMP
    #else
        #define CDECONV_OPENMP_SPEC 0
    #endif
    static const int CDECONV_SIMD_SSE2 =
    #if defined(__SSE2__) || defined(_M_X64)
        1;
    #else
        0;
    #endif
    static const int CDECONV_SIMD_AVX2 =
    #ifdef __AVX2__
        1;
    #else
        0;
    #endif
    static const int CDECONV_SIMD_AVX512F =
    #ifdef __AVX512F__
        1;
    #else
        0;
    #endif
    static const int CDECONV_SIMD_NEON =
    #if defined(__ARM_NEON) || defined(__aarch64__)
        1;
    #else
        0;
    #endif
    """
    const char* CDECONV_COMPILER
    long CDECONV_OPENMP_SPEC
    int CDECONV_SIMD_SSE2, CDECONV_SIMD_AVX2, CDECONV_SIMD_AVX512F, CDECONV_SIMD_NEON


def build_info():
    """Compiler, OpenMP specification date (yyyymm, 0 = none) and the SIMD instruction
    sets the kernels were compiled for (the default build targets the baseline ISA)."""
    simd = [name for name, on in (("SSE2", CDECONV_SIMD_SSE2), ("AVX2", CDECONV_SIMD_AVX2),
                                  ("AVX512F", CDECONV_SIMD_AVX512F),
                                  ("NEON", CDECONV_SIMD_NEON)) if on]
    return {"compiler": CDECONV_COMPILER.decode(), "openmp_spec": CDECONV_OPENMP_SPEC,
            "simd_compiled": simd}
