"""The output cache: freed large outputs kept for the next call (src/_outcache.h).

An output of more than 32 MiB is mmapped afresh by every ``np.empty`` (glibc's largest
mmap threshold) and unmapped when freed, so a loop over a layer pays the kernel for
zeroing its whole output on every call (~9 ms of a ~55 ms U-Net up3 layer at batch 16),
and smaller outputs do so or not depending on the process's allocation history. ONNX
Runtime's arena avoids this; so does ``out=``. cdeconv allocates every output of at
least 4 MiB through a NumPy memory handler (NEP 49) that keeps the blocks of freed
outputs, up to a limit, and hands one to the next output of about its size.

The arrays are ordinary: they own their data, and a block returns to the cache only
when the last array or view using it is gone. The cache only holds memory that was
already freed, so it never adds to a call's peak beyond the output itself; between
calls the process keeps up to the limit (default 256 MiB; ``CDECONV_OUTPUT_CACHE_MB``
or :func:`set_output_cache`; 0 turns it off).
"""
import os
import warnings

import numpy as np

from . import _conv, _outcache
from ._threads import _parse_count

__all__ = ["set_output_cache", "output_cache_info"]

_ENV_VAR = "CDECONV_OUTPUT_CACHE_MB"
DEFAULT_LIMIT_BYTES = 256 << 20

#: Outputs of at least this many bytes come from the cache.
MIN_BYTES = _outcache.MIN_BYTES

#: The kernels' freed workspace blocks (the filter gradient's partial gradients and
#: column buffers) kept between calls: the output cache's limit, at most this.
WORKSPACE_MAX_BYTES = 64 << 20


def _parse_limit(value, name):
    return min(_parse_count(value, name, 0, "an int number of bytes >= 0"), 1 << 62)


def set_output_cache(max_bytes):
    """Keep at most ``max_bytes`` of freed outputs for reuse (0: keep none).

    ``None`` goes back to the default (``CDECONV_OUTPUT_CACHE_MB``, else 256 MiB).
    Lowering the limit frees the excess now; ``set_output_cache(0)`` empties the cache.
    """
    limit = _default_limit() if max_bytes is None else _parse_limit(max_bytes, "max_bytes")
    _outcache.set_limit(limit)
    _conv.set_workspace_limit(min(limit, WORKSPACE_MAX_BYTES))


def output_cache_info():
    """The cache's state: limit_bytes, cached_bytes / cached_blocks (freed, kept),
    blocks_in_use (held by live arrays), hits / misses (allocations served from the
    cache / afresh), min_bytes (smaller outputs bypass it)."""
    return _outcache.stats()


def _default_limit():
    raw = os.environ.get(_ENV_VAR, "").strip()
    if not raw:
        return DEFAULT_LIMIT_BYTES
    try:
        mib = float(raw)
    except ValueError:
        mib = -1.0
    if not mib >= 0:
        raise ValueError(f"environment variable {_ENV_VAR} must be a number of MiB >= 0, "
                         f"got {raw!r}")
    return _parse_limit(int(mib * (1 << 20)), _ENV_VAR)


def empty(shape, dtype, nbytes):
    """np.empty(shape, dtype) for a new output of ``nbytes`` bytes."""
    if nbytes >= MIN_BYTES:
        return _outcache.empty(shape, dtype)
    return np.empty(shape, dtype=dtype)


try:
    set_output_cache(None)
except ValueError as exc:       # a bad environment must not break ``import cdeconv``
    warnings.warn(f"{exc}; using the default of {DEFAULT_LIMIT_BYTES >> 20} MiB",
                  RuntimeWarning, stacklevel=2)
    set_output_cache(DEFAULT_LIMIT_BYTES)
