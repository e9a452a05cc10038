"""Thread counts, resolved once per call, and the BLAS guard.

Strategy (see src/_conv.pyx): every parallel loop is OpenMP, and the BLAS calls run
single-threaded *inside* those loops. So during a call the BLAS library that
``scipy.linalg.cython_blas`` uses is held at one thread (its own pool would otherwise
oversubscribe the cores: OpenBLAS#3187, scikit-learn#17334) and restored afterwards.

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


def _parse_count(value, name):
    if isinstance(value, bool) or not isinstance(value, int):
        try:
            import numpy as np
            if isinstance(value, np.integer) and not isinstance(value, np.bool_):
                value = int(value)
            else:
                raise TypeError
        except TypeError:
            raise TypeError(f"{name} must be a positive int, got {value!r} "
                            f"({type(value).__name__})") from None
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")
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


_ENV = _env_count()
_CORES = _usable_cores()


def set_num_threads(n):
    """Set the number of threads cdeconv's kernels use (process-wide).

    ``None`` goes back to the default (``CDECONV_NUM_THREADS``, else the usable cores).
    The count is still capped by ``omp_get_max_threads()`` at call time, so
    ``OMP_NUM_THREADS`` and ``threadpoolctl`` limits keep working.
    """
    global _requested
    _requested = None if n is None else _parse_count(n, "n")


def get_num_threads():
    """The number of threads the next call will use (1 if built without OpenMP)."""
    if not _openmp_helpers.openmp_enabled():
        return 1
    n = _requested if _requested is not None else (_ENV if _ENV is not None else _CORES)
    return max(1, min(n, _openmp_helpers.omp_max_threads()))


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
        try:
            from threadpoolctl import ThreadpoolController
            import scipy.linalg.cython_blas  # noqa: F401  (make sure it is loaded)
        except ImportError:
            return []
        blas = [lib for lib in ThreadpoolController().lib_controllers
                if lib.user_api == "blas"]
        mine = [lib for lib in blas if "scipy" in os.path.basename(
            os.path.dirname(lib.filepath or ""))]
        return mine or blas

    def __enter__(self):
        with self._lock:
            if self._depth == 0:
                if self._libs is None:
                    self._libs = self._find_libs()
                self._saved = []
                for lib in self._libs:
                    n = lib.get_num_threads()
                    if n is not None and n != 1:
                        lib.set_num_threads(1)
                        self._saved.append((lib, n))
            self._depth += 1
        return self

    def __exit__(self, *exc):
        with self._lock:
            self._depth -= 1
            if self._depth == 0:
                for lib, n in self._saved:
                    lib.set_num_threads(n)
                self._saved = []
        return False


blas_single_thread = _BlasGuard()
