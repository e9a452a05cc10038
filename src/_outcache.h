/* Output cache: a NumPy memory handler (NEP 49) that keeps freed large outputs for reuse.
 *
 * Why: an output of more than 32 MiB (glibc's largest mmap threshold) is mmapped afresh
 * by every np.empty and unmapped when freed, so each call pays the kernel for zeroing
 * every page it then writes: ~9 ms of a ~55 ms U-Net up3 layer at batch 16 (64 MiB),
 * where ONNX Runtime's arena pays none. Smaller outputs are paged in afresh or not,
 * depending on the process's allocation history.
 *
 * How: cdeconv allocates its outputs (and only them: _outcache.pyx sets this handler
 * around its own np.empty) through oc_malloc. Requests of >= oc_min_bytes take the
 * best-fitting freed block (at most 1/4 + 2 MiB larger), else a fresh 2 MiB-aligned
 * block advised for huge pages, as NumPy's default does; the data start OC_OFFSET
 * bytes into the block, where glibc puts a large malloc (an mmapped chunk's header)
 * and so where NumPy's own outputs start: the direct-rows kernel writing 32-channel
 * outputs runs 1.3x slower into 64-byte aligned rows (U-Net up4 batch 16 at one
 * thread: 80-87 ms at offsets 0 and 64, 60-66 ms at 16-48 and 80), and every
 * dispatch rule was measured with NumPy's placement. When NumPy frees such an
 * array (the last view gone), oc_free keeps the block, evicting the least recently
 * freed ones beyond oc_limit bytes of freed blocks, or frees it. Arrays look like any
 * NumPy array (they own their data); a realloc (ndarray.resize) leaves the cache.
 * Every entry point takes a spinlock (it is held for a table scan, never across a
 * call back into Python); with the GIL it is never contended.
 */
#ifndef CD_OUTCACHE_H
#define CD_OUTCACHE_H

#define NPY_NO_DEPRECATED_API NPY_1_25_API_VERSION
#define NPY_TARGET_VERSION NPY_1_25_API_VERSION
#define PY_ARRAY_UNIQUE_SYMBOL cdeconv_outcache_ARRAY_API
#include <Python.h>
#include <numpy/arrayobject.h>
#include <stdlib.h>
#include <string.h>
#if defined(__linux__)
#include <sys/mman.h>
#endif
#if defined(_MSC_VER)
#include <intrin.h>
#endif

#define OC_MAX_BLOCKS 64                  /* pooled blocks tracked (in use + freed) */
#define OC_ALIGN ((size_t)2 << 20)        /* a huge page */
#define OC_OFFSET ((size_t)16)            /* the data's offset into its block */

typedef struct {
    void *ptr;                            /* the data: block + OC_OFFSET */
    size_t cap;                           /* bytes of data the block holds */
    size_t size;                          /* bytes asked for (while in use) */
    int freed;                            /* 1: in the cache; 0: held by an array */
    unsigned long long stamp;             /* when it was freed (eviction order) */
} oc_block;

static oc_block oc_tab[OC_MAX_BLOCKS];
static int oc_n = 0;
static size_t oc_limit = (size_t)256 << 20;
static size_t oc_min_bytes = (size_t)4 << 20;
static size_t oc_freed_bytes = 0;
static unsigned long long oc_clock = 0, oc_hits = 0, oc_misses = 0;
static volatile long oc_lock_word = 0;

static void oc_lock(void) {
#if defined(_MSC_VER)
    while (_InterlockedExchange(&oc_lock_word, 1)) { }
#else
    while (__atomic_exchange_n(&oc_lock_word, 1, __ATOMIC_ACQUIRE)) { }
#endif
}

static void oc_unlock(void) {
#if defined(_MSC_VER)
    _InterlockedExchange(&oc_lock_word, 0);
#else
    __atomic_store_n(&oc_lock_word, 0, __ATOMIC_RELEASE);
#endif
}

static void oc_drop(int i) {              /* remove entry i (lock held) */
    oc_tab[i] = oc_tab[--oc_n];
}

static int oc_find(void *ptr) {           /* the entry of ptr, or -1 (lock held) */
    for (int i = 0; i < oc_n; ++i)
        if (oc_tab[i].ptr == ptr) return i;
    return -1;
}

/* Evict freed blocks, least recently freed first, until freed bytes + room <= limit.
 * The evicted pointers go to out[] (at most OC_MAX_BLOCKS), freed after unlocking. */
static int oc_evict(size_t room, void **out) {
    int n_out = 0;
    while (oc_freed_bytes + room > oc_limit) {
        int old = -1;
        for (int i = 0; i < oc_n; ++i)
            if (oc_tab[i].freed && (old < 0 || oc_tab[i].stamp < oc_tab[old].stamp)) old = i;
        if (old < 0) break;
        oc_freed_bytes -= oc_tab[old].cap;
        out[n_out++] = oc_tab[old].ptr;
        oc_drop(old);
    }
    return n_out;
}

static void oc_release(void *data) { free((char *)data - OC_OFFSET); }

static void oc_free_all(void **ptrs, int n) {
    for (int i = 0; i < n; ++i) oc_release(ptrs[i]);
}

/* A fresh block for cap bytes of data; returns the data pointer (NULL: no memory). */
static void *oc_fresh(size_t cap) {
    void *p = NULL;
#if defined(_WIN32)
    p = malloc(cap + OC_OFFSET);
#else
    if (posix_memalign(&p, OC_ALIGN, cap + OC_OFFSET) != 0) p = NULL;
#endif
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    if (p) madvise(p, cap + OC_OFFSET, MADV_HUGEPAGE);
#endif
    return p ? (char *)p + OC_OFFSET : NULL;
}

static void *oc_malloc(void *ctx, size_t size) {
    (void)ctx;
    if (size < oc_min_bytes || oc_limit == 0) return malloc(size ? size : 1);
    oc_lock();
    int best = -1;
    for (int i = 0; i < oc_n; ++i) {
        oc_block *b = &oc_tab[i];
        if (b->freed && b->cap >= size && b->cap - size <= size / 4 + OC_ALIGN
                && (best < 0 || b->cap < oc_tab[best].cap)) best = i;
    }
    if (best >= 0) {
        oc_tab[best].freed = 0;
        oc_tab[best].size = size;
        oc_freed_bytes -= oc_tab[best].cap;
        ++oc_hits;
        void *p = oc_tab[best].ptr;
        oc_unlock();
        return p;
    }
    ++oc_misses;
    int room = oc_n < OC_MAX_BLOCKS;
    oc_unlock();
    if (!room)                            /* the table is full: a plain, untracked block */
        return malloc(size);
    size_t cap = (size + OC_ALIGN - 1) / OC_ALIGN * OC_ALIGN;
    void *p = oc_fresh(cap);
    if (!p) {                             /* out of memory: give the cache back, retry */
        void *ev[OC_MAX_BLOCKS];
        oc_lock();
        size_t keep = oc_limit;
        oc_limit = 0;
        int n = oc_evict(0, ev);
        oc_limit = keep;
        oc_unlock();
        oc_free_all(ev, n);
        if (n == 0 || !(p = oc_fresh(cap))) return NULL;
    }
    oc_lock();
    int tracked = oc_n < OC_MAX_BLOCKS;
    if (tracked) {
        oc_block b = {p, cap, size, 0, 0};
        oc_tab[oc_n++] = b;
    }
    oc_unlock();
    if (!tracked) {                       /* filled meanwhile by another thread */
        oc_release(p);
        return malloc(size);
    }
    return p;
}

static void *oc_calloc(void *ctx, size_t nelem, size_t elsize) {
    (void)ctx;
    return calloc(nelem ? nelem : 1, elsize ? elsize : 1);
}

static void *oc_realloc(void *ctx, void *ptr, size_t new_size) {
    (void)ctx;
    size_t old = 0;
    int i = -1;
    if (ptr) {
        oc_lock();
        i = oc_find(ptr);
        if (i >= 0) old = oc_tab[i].size;
        oc_unlock();
    }
    if (i < 0)                            /* a plain block */
        return realloc(ptr, new_size ? new_size : 1);
    /* a resized array leaves the cache: its data move to a plain block */
    void *p = malloc(new_size ? new_size : 1);
    if (!p) return NULL;                  /* realloc's contract: the old block stays */
    memcpy(p, ptr, old < new_size ? old : new_size);
    oc_lock();
    i = oc_find(ptr);                     /* others' drops may have moved the entry */
    if (i >= 0) oc_drop(i);
    oc_unlock();
    oc_release(ptr);
    return p;
}

static void oc_free(void *ctx, void *ptr, size_t size) {
    (void)ctx; (void)size;
    if (!ptr) return;
    void *ev[OC_MAX_BLOCKS];
    int n = 0;
    oc_lock();
    int i = oc_find(ptr);
    if (i >= 0 && !oc_tab[i].freed && oc_tab[i].cap <= oc_limit) {
        n = oc_evict(oc_tab[i].cap, ev);
        i = oc_find(ptr);                 /* eviction reorders the table */
        oc_tab[i].freed = 1;
        oc_tab[i].stamp = ++oc_clock;
        oc_freed_bytes += oc_tab[i].cap;
        ptr = NULL;
    } else if (i >= 0) {
        oc_drop(i);
    }
    oc_unlock();
    oc_free_all(ev, n);
    if (ptr) {
        if (i >= 0) oc_release(ptr); else free(ptr);
    }
}

/* Set the limit on freed bytes kept (0: keep none), evicting down to it. */
static void oc_set_limit(size_t limit) {
    void *ev[OC_MAX_BLOCKS];
    oc_lock();
    oc_limit = limit;
    int n = oc_evict(0, ev);
    oc_unlock();
    oc_free_all(ev, n);
}

typedef struct {
    size_t limit, min_bytes, freed_bytes;
    int freed_blocks, used_blocks;
    unsigned long long hits, misses;
} oc_stats;

static oc_stats oc_get_stats(void) {
    oc_stats s;
    oc_lock();
    s.limit = oc_limit;
    s.min_bytes = oc_min_bytes;
    s.freed_bytes = oc_freed_bytes;
    s.freed_blocks = s.used_blocks = 0;
    for (int i = 0; i < oc_n; ++i) {
        if (oc_tab[i].freed) ++s.freed_blocks; else ++s.used_blocks;
    }
    s.hits = oc_hits;
    s.misses = oc_misses;
    oc_unlock();
    return s;
}

static PyDataMem_Handler oc_handler = {
    "cdeconv_output_cache", 1,
    {NULL, oc_malloc, oc_calloc, oc_realloc, oc_free}
};

static int oc_import_numpy(void) {
    import_array1(-1);
    return 0;
}

/* A new reference to the capsule NumPy wants for this handler. */
static PyObject *oc_handler_capsule(void) {
    return PyCapsule_New(&oc_handler, "mem_handler", NULL);
}

/* Install a handler in the current context; returns the previous one (new reference). */
static PyObject *oc_swap_handler(PyObject *handler) {
    return PyDataMem_SetHandler(handler);
}

#endif
