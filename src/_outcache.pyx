"""The output cache (src/_outcache.h): freed large outputs kept for the next call.

``empty(shape, dtype)`` is ``np.empty`` with cdeconv's NumPy memory handler (NEP 49)
installed for that one allocation: the array owns its data like any other, and when
it is freed its block is kept (up to the limit) for the next output of about its size.
"""
import numpy as np

cdef extern from "_outcache.h":
    ctypedef struct oc_stats:
        size_t limit, min_bytes, freed_bytes
        int freed_blocks, used_blocks
        unsigned long long hits, misses
    int oc_import_numpy() except -1
    object oc_handler_capsule()
    object oc_swap_handler(object handler)
    void oc_set_limit(size_t limit) nogil
    oc_stats oc_get_stats() nogil
    size_t oc_min_bytes

oc_import_numpy()
cdef object _HANDLER = oc_handler_capsule()

#: Outputs of fewer bytes than this are plain np.empty (glibc's heap reuses them).
MIN_BYTES = oc_min_bytes


def empty(shape, dtype):
    """np.empty(shape, dtype), its memory from the output cache."""
    old = oc_swap_handler(_HANDLER)
    try:
        return np.empty(shape, dtype)
    finally:
        oc_swap_handler(old)


def set_limit(size_t nbytes):
    """Keep at most ``nbytes`` of freed outputs (0: none); frees the excess now."""
    oc_set_limit(nbytes)


def stats():
    cdef oc_stats s = oc_get_stats()
    return {"limit_bytes": s.limit, "min_bytes": s.min_bytes,
            "cached_bytes": s.freed_bytes, "cached_blocks": s.freed_blocks,
            "blocks_in_use": s.used_blocks, "hits": s.hits, "misses": s.misses}
