"""show_config(): what a bug report needs (build, OpenMP, BLAS, threads, CPU)."""
import json
import platform
import sys

from . import _conv, _driver, _openmp_helpers

_OMP_SPECS = {200505: "2.5", 200805: "3.0", 201107: "3.1", 201307: "4.0",
              201511: "4.5", 201811: "5.0", 202011: "5.1", 202111: "5.2"}


def _cpu_simd():
    """SIMD flags of this CPU (Linux /proc/cpuinfo; empty elsewhere)."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return [f for f in ("sse2", "avx", "avx2", "fma", "avx512f",
                                        "avx512bw", "avx512vl") if f in flags]
    except OSError:
        pass
    return []


def _threadpools():
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return []
    keep = ("user_api", "internal_api", "prefix", "version", "num_threads",
            "threading_layer", "architecture", "filepath")
    return [{k: info.get(k) for k in keep if k in info} for info in threadpool_info()]


def show_config(mode="stdout"):
    """Print (mode='stdout') or return (mode='dicts') cdeconv's build and runtime setup:
    version, compiler, OpenMP (on/off, spec, runtime library), BLAS library and its
    threading, SIMD (compiled for / CPU has), and the thread count cdeconv will use."""
    import numpy
    import scipy

    from . import __version__
    from ._threads import get_num_threads

    build = _openmp_helpers.build_info()
    spec = build["openmp_spec"]
    pools = _threadpools()
    info = {
        "cdeconv": __version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "numpy": numpy.__version__,
        "scipy": scipy.__version__,
        "compiler": build["compiler"],
        "openmp": {
            "enabled": _openmp_helpers.openmp_enabled(),
            "spec": _OMP_SPECS.get(spec, str(spec)) if spec else None,
            "runtime": [p for p in pools if p.get("user_api") == "openmp"],
        },
        "blas": [p for p in pools if p.get("user_api") == "blas"],
        "simd": {"compiled_for": build["simd_compiled"], "cpu": _cpu_simd(),
                 # the C kernels (dot, implicit GEMM, pixel lanes) share one ISA switch
                 "dot_kernel": _conv.dot_isa(), "igemm_kernel": _conv.dot_isa()},
        "gemm_tiles": _driver._gemm_tiles(),
        "threads": {"cdeconv": get_num_threads(),
                    "omp_max_threads": _openmp_helpers.omp_max_threads(),
                    "omp_num_procs": _openmp_helpers.omp_num_procs()},
    }
    if mode == "dicts":
        return info
    if mode != "stdout":
        raise ValueError(f"mode must be 'stdout' or 'dicts', got {mode!r}")
    print(json.dumps(info, indent=2))
