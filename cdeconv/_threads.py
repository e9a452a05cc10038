"""Thread counts, resolved once per call, and the BLAS guard.

Strategy (see src/_conv.pyx): every parallel loop is OpenMP, and the BLAS calls run
single-threaded *inside* those loops. So during a call that uses BLAS, the library that
``scipy.linalg.cython_blas`` uses is held at one thread (its own pool would otherwise
oversubscribe the cores: OpenBLAS#3187, scikit-learn#17334) and restored afterwards
(cdeconv._driver skips the guard for the kernels that never call BLAS).

Thread count for a call: ``set_num_threads(n)`` if called, else ``CDECONV_NUM_THREADS``,
else the usable cores; always capped by ``omp_get_max_threads()``, so ``OMP_NUM_THREADS``
and ``threadpoolctl.threadpool_limits(n, user_api="openmp")`` take effect too.
"""
import os
import threading

from . import _openmp_helpers

__all__ = ["set_num_threads", "get_num_threads"]

_ENV_VAR = "CDECONV_NUM_THREADS"
_requested = None   # set_num_threads(); None = environment / default


def _parse_count(value, name, minimum=1, what="a positive int"):
    """value as an int >= minimum (a Python or NumPy integer, not a bool): TypeError
    naming ``name`` and ``what`` it must be, or ValueError below the minimum."""
    if isinstance(value, bool) or not isinstance(value, int):
        try:
            import numpy as np
            if isinstance(value, np.integer) and not isinstance(value, np.bool_):
                value = int(value)
            else:
                raise TypeError
        except TypeError:
            raise TypeError(f"{name} must be {what}, got {value!r} "
                            f"({type(value).__name__})") from None
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


def _env_count():
    raw = os.environ.get(_ENV_VAR, "").strip()
    if not raw:
        return None
    try:
        return _parse_count(int(raw), _ENV_VAR)
    except (TypeError, ValueError):
        raise ValueError(f"environment variable {_ENV_VAR} must be a positive integer, "
                         f"got {raw!r}") from None


def _usable_cores():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


_CORES = _usable_cores()
_in_forked_child = False


def _after_fork_in_child():
    """GNU libgomp cannot run a multi-threaded region in a child forked after the
    parent's OpenMP pool started (the child hangs): such children run cdeconv on one
    thread. Use the 'spawn' or 'forkserver' start method for parallel workers."""
    global _in_forked_child
    _in_forked_child = True


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
_env_cache = {}
# CPython's os.environ keeps its entries in a dict of encoded keys (_data), updated by
# os.environ[...] = ...: one lookup there instead of os.environ.get's encode + decode
# (0.8 us of a ~15 us call). Elsewhere: os.environ.get.
try:
    _ENV_DATA, _ENV_KEY = os.environ._data, os.environ.encodekey(_ENV_VAR)
except (AttributeError, TypeError):
    _ENV_DATA = None


def _env_default():
    """CDECONV_NUM_THREADS, parsed once per distinct value (a bad value raises on use)."""
    raw = (_ENV_DATA.get(_ENV_KEY) if _ENV_DATA is not None
           else os.environ.get(_ENV_VAR))
    try:
        return _env_cache[raw]
    except KeyError:
        _env_cache[raw] = _env_count()
        return _env_cache[raw]


def set_num_threads(n):
    """Set the number of threads cdeconv's kernels use (process-wide).

    ``None`` goes back to the default (``CDECONV_NUM_THREADS``, else the usable cores).
    The count is still capped by ``omp_get_max_threads()`` at call time, so
    ``OMP_NUM_THREADS`` and ``threadpoolctl`` limits keep working.
    """
    global _requested
    _requested = None if n is None else _parse_count(n, "n")


_OPENMP = _openmp_helpers.openmp_enabled()


def get_num_threads():
    """The number of threads the next call will use (1 if built without OpenMP)."""
    n = _requested
    if n is None:
        n = _env_default()          # validated even in a serial build
        if n is None:
            n = _CORES
    if not _OPENMP or _in_forked_child:
        return 1
    return max(1, min(n, _openmp_helpers.omp_max_threads()))


def _num_threads_api(lib):
    """Process-wide get/set of a BLAS library's thread count.

    For OpenBLAS the global ``openblas_{get,set}_num_threads`` symbols are called
    directly (with the scipy_ / 64_ decorations of the scipy-openblas builds):
    threadpoolctl's setter did not take effect for calls made later from other Python
    threads here (OpenBLAS 0.3.30), which let BLAS thread inside our parallel loops and
    broke bitwise reproducibility. Other libraries go through threadpoolctl.
    """
    dll = getattr(lib, "dynlib", None)
    if lib.internal_api == "openblas" and dll is not None:
        for prefix in ("scipy_", ""):
            for suffix in ("", "64_"):
                get = getattr(dll, f"{prefix}openblas_get_num_threads{suffix}", None)
                set_ = getattr(dll, f"{prefix}openblas_set_num_threads{suffix}", None)
                if get is not None and set_ is not None:
                    return get, set_
    return lib.get_num_threads, lib.set_num_threads


class _BlasGuard:
    """Holds scipy's BLAS at one thread while any cdeconv kernel runs.

    Reference-counted under a lock, so concurrent calls from several Python threads
    neither restore the count too early nor race on it. The threadpoolctl controller is
    looked up once (it scans the loaded libraries) and reused.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._depth = 0
        self._saved = []
        self._libs = None

    def _find_libs(self):
        """(get, set) callables for the BLAS library scipy.linalg.cython_blas uses."""
        try:
            from threadpoolctl import ThreadpoolController
            import scipy.linalg.cython_blas  # noqa: F401  (make sure it is loaded)
        except ImportError:
            return []
        blas = [lib for lib in ThreadpoolController().lib_controllers
                if lib.user_api == "blas"]
        mine = [lib for lib in blas if "scipy" in os.path.basename(
            os.path.dirname(lib.filepath or ""))]
        return [_num_threads_api(lib) for lib in (mine or blas)]

    def __enter__(self):
        with self._lock:
            if self._depth == 0:
                if self._libs is None:
                    self._libs = self._find_libs()
                self._saved = []
                for get, set_ in self._libs:
                    n = get()
                    if n is not None and n != 1:
                        set_(1)
                        self._saved.append((set_, n))
            self._depth += 1
        return self

    def __exit__(self, *exc):
        with self._lock:
            self._depth -= 1
            if self._depth == 0:
                for set_, n in self._saved:
                    set_(n)
                self._saved = []
        return False


blas_single_thread = _BlasGuard()
