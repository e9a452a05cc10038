"""The N-d convolution core: im2col / col2im around row-major GEMM, float32 and float64.

Every rank is computed as 3-D (depth, height, width); 1-D and 2-D calls arrive with
leading spatial sizes of 1. Both layouts are native: channels-last (NDHWC) and
channels-first (NCDHW). The kernels assume arguments that cdeconv._geometry has already
validated (sizes consistent, C-contiguous, every size and leading dimension < 2**31);
they know nothing of TensorFlow's argument conventions.

Vocabulary. A convolution relates a *big* side and a *small* side:

    big[b, z]  <-  small[b, y]  where  z = y * stride - pad + tap * dilation   (per axis)

The forward convolution (conv2d) reads the big side and writes the small one; the
transposed convolution (conv2d_transpose, = conv2d_backprop_input) reads the small side
and writes the big one. The same filter array serves both, in TF's layout
(taps..., big_channels / groups, small_channels): TF's forward filter is
[kh, kw, in_c, out_c] and its transposed filter [kh, kw, out_c, in_c], where in the
transposed op out_c is the big side. T = kd*kh*kw taps, G groups, Cb/Cs the channels
per group on the big/small side.

Column buffers ("cols") hold, for each small pixel p, the products for every
(group, tap, big channel) triple, kidx = (g*T + t)*Cb + c:

    channels-last :  cols[p, kidx]  (row per small pixel)
    channels-first:  cols[kidx, p]  (row per (g, t, c))

Work is cut into *chunks* of small-side rows (a row = the pixels along the last axis),
sized so one chunk's column buffer stays under a byte budget: memory is bounded whatever
the batch. The chunk partition depends only on the shapes and the budget, never on the
thread count, and every output element is summed in a fixed order (chunk by chunk, then
tap by tap), so results are bitwise identical for any number of threads.

Threads: everything parallel is OpenMP (prange). The GEMM of a chunk is cut into a fixed
set of tiles run in a prange, each tile one single-threaded BLAS call; the Python driver
holds the BLAS library at one thread during the call (cdeconv._threads), so BLAS and
OpenMP pools never run at once.
"""

from cython cimport floating
from cython.parallel cimport prange, threadid
from libc.stdlib cimport malloc, calloc, free
from libc.string cimport memset, memcpy

from _blas cimport gemm_rm, Trans, NO_TRANS, TRANS

cdef extern from "_dot.h" nogil:
    ctypedef struct cd_geom:
        Py_ssize_t groups, cb, cs
        Py_ssize_t small[3]
        Py_ssize_t big[3]
        Py_ssize_t k[3]
        Py_ssize_t s[3]
        Py_ssize_t d[3]
        Py_ssize_t pad[3]
    ctypedef struct cd_colblk:
        Py_ssize_t bw, P, nk, off
    int CD_MAX_TAPS
    Py_ssize_t cd_dot_plan_blocks(const cd_geom* g)
    Py_ssize_t cd_dot_plan_taps(const cd_geom* g)
    Py_ssize_t cd_dot_plan(const cd_geom* g, Py_ssize_t c_first, cd_colblk* blk,
                           Py_ssize_t* kw, Py_ssize_t* iw)
    void cd_dot_row_f(const cd_geom* g, const float* X, const float* W, float* Y,
                      Py_ssize_t R, Py_ssize_t grp, Py_ssize_t c0, Py_ssize_t c1,
                      const cd_colblk* blk, Py_ssize_t nblk, const Py_ssize_t* kw,
                      const Py_ssize_t* iw)
    void cd_dot_row_d(const cd_geom* g, const double* X, const double* W, double* Y,
                      Py_ssize_t R, Py_ssize_t grp, Py_ssize_t c0, Py_ssize_t c1,
                      const cd_colblk* blk, Py_ssize_t nblk, const Py_ssize_t* kw,
                      const Py_ssize_t* iw)
    void cd_abt_f(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k, const float* A,
                  const float* B, Py_ssize_t ld, float* C, Py_ssize_t ldc)
    void cd_abt_d(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k, const double* A,
                  const double* B, Py_ssize_t ld, double* C, Py_ssize_t ldc)
    const char* cd_dot_isa()
    int cd_dot_cap_isa(int cap)
    Py_ssize_t cd_ig_block_f()
    Py_ssize_t cd_ig_block_d()
    Py_ssize_t cd_ig_vl_f()
    Py_ssize_t cd_ig_vl_d()
    int cd_nonfinite_f(const float* p, Py_ssize_t n)
    int cd_nonfinite_d(const double* p, Py_ssize_t n)
    int cd_ig_pack_f(const cd_geom* g, const float* W, float* Wp, Py_ssize_t grp,
                      Py_ssize_t c0)
    int cd_ig_pack_d(const cd_geom* g, const double* W, double* Wp, Py_ssize_t grp,
                      Py_ssize_t c0)
    void cd_ig_run_f(const cd_geom* g, Py_ssize_t batch, const float* X, const float* Wp,
                     float* Y, const float* zero, Py_ssize_t grp, Py_ssize_t c0,
                     Py_ssize_t phase, Py_ssize_t j0, Py_ssize_t j1)
    void cd_ig_run_d(const cd_geom* g, Py_ssize_t batch, const double* X,
                     const double* Wp, double* Y, const double* zero, Py_ssize_t grp,
                     Py_ssize_t c0, Py_ssize_t phase, Py_ssize_t j0, Py_ssize_t j1)
    void cd_dr_run_f(const cd_geom* g, const float* X, const float* Wp, float* Y,
                     Py_ssize_t grp, Py_ssize_t r0, Py_ssize_t r1)
    void cd_dr_run_d(const cd_geom* g, const double* X, const double* Wp, double* Y,
                     Py_ssize_t grp, Py_ssize_t r0, Py_ssize_t r1)
    void cd_igf_pack_f(const cd_geom* g, const float* W, float* Wp, Py_ssize_t grp,
                       Py_ssize_t c0)
    void cd_igf_pack_d(const cd_geom* g, const double* W, double* Wp, Py_ssize_t grp,
                       Py_ssize_t c0)
    void cd_igf_run_f(const cd_geom* g, const float* X, const float* Wp, float* Y,
                      const float* zero, Py_ssize_t grp, Py_ssize_t c0, Py_ssize_t j0,
                      Py_ssize_t j1)
    void cd_igf_run_d(const cd_geom* g, const double* X, const double* Wp, double* Y,
                      const double* zero, Py_ssize_t grp, Py_ssize_t c0, Py_ssize_t j0,
                      Py_ssize_t j1)
    void cd_pl_pack_f(const cd_geom* g, Py_ssize_t npix, const float* X, float* Xt,
                      Py_ssize_t grp)
    void cd_pl_pack_d(const cd_geom* g, Py_ssize_t npix, const double* X, double* Xt,
                      Py_ssize_t grp)
    void cd_pl_run_f(const cd_geom* g, Py_ssize_t npix, const float* Xt, const float* W,
                     float* Y, Py_ssize_t grp, Py_ssize_t c0, Py_ssize_t c1)
    void cd_pl_run_d(const cd_geom* g, Py_ssize_t npix, const double* Xt,
                     const double* W, double* Y, Py_ssize_t grp, Py_ssize_t c0,
                     Py_ssize_t c1)
    ctypedef struct cd_wino:
        Py_ssize_t batch, cb, cs, H, W, BH, BW, sy, sx, kh, kw, pady, padx
        Py_ssize_t ry, rx, my, mx, ay, ax, qy, qx, nty, ntx, nr, np
        double bty[64]
        double btx[64]
        double aty[64]
        double atx[64]
        double gy[64]
        double gx[64]
    void cd_wi_filter_f(const cd_wino* p, const float* W, float* U, Py_ssize_t j0,
                        Py_ssize_t j1, float* tmp)
    void cd_wi_filter_d(const cd_wino* p, const double* W, double* U, Py_ssize_t j0,
                        Py_ssize_t j1, double* tmp)
    void cd_wi_gemm_f(const cd_wino* p, const float* V, const float* U, float* M,
                      Py_ssize_t nt)
    void cd_wi_gemm_d(const cd_wino* p, const double* V, const double* U, double* M,
                      Py_ssize_t nt)
    int cd_wi_input_f(const cd_wino* p, const float* X, float* V, float* tmp,
                      Py_ssize_t t0, Py_ssize_t nt)
    int cd_wi_input_d(const cd_wino* p, const double* X, double* V, double* tmp,
                      Py_ssize_t t0, Py_ssize_t nt)
    void cd_wi_output_f(const cd_wino* p, const float* M, float* Y, float* tmp,
                        Py_ssize_t t0, Py_ssize_t nt)
    void cd_wi_output_d(const cd_wino* p, const double* M, double* Y, double* tmp,
                        Py_ssize_t t0, Py_ssize_t nt)
    void cd_pr_sizes_f(const cd_geom* g, Py_ssize_t rb, Py_ssize_t* scratch,
                       Py_ssize_t* zero)
    void cd_pr_sizes_d(const cd_geom* g, Py_ssize_t rb, Py_ssize_t* scratch,
                       Py_ssize_t* zero)
    void cd_pr_run_f(const cd_geom* g, const float* X, const float* W, float* Y,
                     float* S, const float* zero, Py_ssize_t rb, Py_ssize_t grp,
                     Py_ssize_t bz, Py_ssize_t zh0, Py_ssize_t zh1)
    void cd_pr_run_d(const cd_geom* g, const double* X, const double* W, double* Y,
                     double* S, const double* zero, Py_ssize_t rb, Py_ssize_t grp,
                     Py_ssize_t bz, Py_ssize_t zh0, Py_ssize_t zh1)
    void cd_sr_sizes_f(const cd_geom* g, Py_ssize_t rb, Py_ssize_t* scratch)
    void cd_sr_sizes_d(const cd_geom* g, Py_ssize_t rb, Py_ssize_t* scratch)
    void cd_sr_run_f(const cd_geom* g, const float* X, const float* W, float* Y,
                     float* S, Py_ssize_t rb, Py_ssize_t grp, Py_ssize_t bz,
                     Py_ssize_t zh0, Py_ssize_t zh1)
    void cd_sr_run_d(const cd_geom* g, const double* X, const double* W, double* Y,
                     double* S, Py_ssize_t rb, Py_ssize_t grp, Py_ssize_t bz,
                     Py_ssize_t zh0, Py_ssize_t zh1)
    void cd_gemm_pack_f(Py_ssize_t K, Py_ssize_t N, const float* B, Py_ssize_t ldb,
                        float* Bp)
    void cd_gemm_pack_d(Py_ssize_t K, Py_ssize_t N, const double* B, Py_ssize_t ldb,
                        double* Bp)
    void cd_gemm_run_f(Py_ssize_t m0, Py_ssize_t m1, Py_ssize_t N, Py_ssize_t K,
                       const float* A, Py_ssize_t lda, const float* Bp, float* C,
                       Py_ssize_t ldc)
    void cd_gemm_run_d(Py_ssize_t m0, Py_ssize_t m1, Py_ssize_t N, Py_ssize_t K,
                       const double* A, Py_ssize_t lda, const double* Bp, double* C,
                       Py_ssize_t ldc)
    void cd_gemm_taps_f(Py_ssize_t m0, Py_ssize_t m1, Py_ssize_t OW, Py_ssize_t OH,
                        Py_ssize_t nlo, Py_ssize_t N, Py_ssize_t nt, Py_ssize_t K, const float* Xp,
                        Py_ssize_t istep, Py_ssize_t ystep, Py_ssize_t tstep,
                        Py_ssize_t xstep, const float* Bp, float* C, Py_ssize_t ldc)
    void cd_gemm_taps_d(Py_ssize_t m0, Py_ssize_t m1, Py_ssize_t OW, Py_ssize_t OH,
                        Py_ssize_t nlo, Py_ssize_t N, Py_ssize_t nt, Py_ssize_t K, const double* Xp,
                        Py_ssize_t istep, Py_ssize_t ystep, Py_ssize_t tstep,
                        Py_ssize_t xstep, const double* Bp, double* C, Py_ssize_t ldc)
    enum: CD_GT_MAX_TAPS
    enum: CD_FPL_MAXCO
    enum: CD_FPL_MAXKW
    Py_ssize_t cd_fpl_scratch_f(const cd_geom* g, Py_ssize_t rows)
    Py_ssize_t cd_fpl_scratch_d(const cd_geom* g, Py_ssize_t rows)
    void cd_fpl_run_f(const cd_geom* g, const float* X, const float* W, float* Y,
                      Py_ssize_t n, Py_ssize_t oy0, Py_ssize_t oy1, float* P)
    void cd_fpl_run_d(const cd_geom* g, const double* X, const double* W, double* Y,
                      Py_ssize_t n, Py_ssize_t oy0, Py_ssize_t oy1, double* P)
    enum: CD_FPLG_MAXROWS
    Py_ssize_t cd_fpl_bgm_scratch_f(const cd_geom* g, Py_ssize_t rows)
    Py_ssize_t cd_fpl_bgm_scratch_d(const cd_geom* g, Py_ssize_t rows)
    void cd_fpl_bgm_f(const cd_geom* g, const float* X, const float* DY, float* part,
                      Py_ssize_t n, Py_ssize_t oy0, Py_ssize_t oy1, Py_ssize_t band,
                      float* P)
    void cd_fpl_bgm_d(const cd_geom* g, const double* X, const double* DY, double* part,
                      Py_ssize_t n, Py_ssize_t oy0, Py_ssize_t oy1, Py_ssize_t band,
                      double* P)
    enum: CD_TPL_MAXS
    Py_ssize_t cd_tpl_scratch_f(const cd_geom* g, Py_ssize_t rows)
    Py_ssize_t cd_tpl_scratch_d(const cd_geom* g, Py_ssize_t rows)
    void cd_tpl_run_f(const cd_geom* g, const float* X, const float* W, float* Y,
                      Py_ssize_t n, Py_ssize_t iy0, Py_ssize_t iy1, float* P)
    void cd_tpl_run_d(const cd_geom* g, const double* X, const double* W, double* Y,
                      Py_ssize_t n, Py_ssize_t iy0, Py_ssize_t iy1, double* P)
    Py_ssize_t cd_fpl_bpf_scratch_f(const cd_geom* g, Py_ssize_t rows)
    Py_ssize_t cd_fpl_bpf_scratch_d(const cd_geom* g, Py_ssize_t rows)
    void cd_fpl_bpf_f(const cd_geom* g, const float* X, const float* DY, float* part,
                      Py_ssize_t n, Py_ssize_t oy0, Py_ssize_t oy1, Py_ssize_t band,
                      float* P)
    void cd_fpl_bpf_d(const cd_geom* g, const double* X, const double* DY, double* part,
                      Py_ssize_t n, Py_ssize_t oy0, Py_ssize_t oy1, Py_ssize_t band,
                      double* P)
    void cd_gemm_bpf_f(Py_ssize_t i0, Py_ssize_t i1, Py_ssize_t n0, Py_ssize_t n1,
                       Py_ssize_t P, const float* A, Py_ssize_t lda, const float* B,
                       Py_ssize_t ldb, float* C, Py_ssize_t ldc, float* S)
    void cd_gemm_bpf_d(Py_ssize_t i0, Py_ssize_t i1, Py_ssize_t n0, Py_ssize_t n1,
                       Py_ssize_t P, const double* A, Py_ssize_t lda, const double* B,
                       Py_ssize_t ldb, double* C, Py_ssize_t ldc, double* S)
    enum: CD_BPF_KC
    void cd_transpose_f(float* P, Py_ssize_t ldp, Py_ssize_t n, Py_ssize_t K,
                        const float* src, Py_ssize_t stride)
    void cd_transpose_d(double* P, Py_ssize_t ldp, Py_ssize_t n, Py_ssize_t K,
                        const double* src, Py_ssize_t stride)

ctypedef Py_ssize_t isize


cdef struct Geom:
    isize batch
    isize groups
    isize cb              # big-side channels per group
    isize cs              # small-side channels per group
    isize taps            # kd * kh * kw
    isize small[3]        # small-side spatial sizes (D, H, W)
    isize big[3]          # big-side spatial sizes
    isize k[3]            # kernel
    isize s[3]            # strides
    isize d[3]            # dilations
    isize pad[3]          # padding before (front, top, left) of the big side
    bint cfirst           # channels-first layout
    bint tiles            # every big pixel gets exactly one tap (kernel == stride)


cdef int _make_geom(Geom* g, tuple shapes, bint cfirst) except -1:
    """Unpack (batch, groups, cb, cs, small, big, k, s, d, pad) into a Geom."""
    cdef isize i
    batch, groups, cb, cs, small, big, k, s, d, pad = shapes
    g.batch = batch
    g.groups = groups
    g.cb = cb
    g.cs = cs
    g.cfirst = cfirst
    for i in range(3):
        g.small[i] = small[i]
        g.big[i] = big[i]
        g.k[i] = k[i]
        g.s[i] = s[i]
        g.d[i] = d[i]
        g.pad[i] = pad[i]
    g.taps = g.k[0] * g.k[1] * g.k[2]
    # kernel == stride, undilated, and the windows reach the end of the big side: the
    # transposed output is a permutation of the column buffer (no sums, no gaps)
    g.tiles = True
    for i in range(3):
        if not (g.k[i] == g.s[i] and (g.d[i] == 1 or g.k[i] == 1)
                and g.pad[i] + g.big[i] <= g.small[i] * g.s[i]):
            g.tiles = False
    return 0


cdef inline isize _floordiv(isize a, isize b) noexcept nogil:
    """Floor division for b > 0 (C division truncates toward zero)."""
    if a >= 0:
        return a // b
    return -((-a + b - 1) // b)


cdef inline bint _nonfinite(const floating* a, isize n) noexcept nogil:
    """Whether a[:n] holds an Inf or a NaN (cd_nonfinite)."""
    if floating is float:
        return cd_nonfinite_f(<const float*>a, n) != 0
    else:
        return cd_nonfinite_d(<const double*>a, n) != 0


cdef inline int _threads_for(const Geom* g, int n_threads) noexcept nogil:
    """One thread for tiny problems (< ~256 kFLOP), where starting a team costs more
    than it saves. Only the speed depends on it: the work partition never does."""
    cdef double flops = (2.0 * g.batch * g.small[0] * g.small[1] * g.small[2]
                         * g.groups * g.taps * g.cb * g.cs)
    return 1 if flops < 262144.0 else n_threads


cdef inline bint _is_direct(const Geom* g) noexcept nogil:
    """True when big == small pixel for pixel (1x1x1 kernel, stride 1, no padding):
    the GEMM result *is* the output (transposed) or the input *is* the column buffer
    (forward), so im2col / col2im are skipped (aten's skip_transforming)."""
    cdef int i
    for i in range(3):
        if g.k[i] != 1 or g.s[i] != 1 or g.pad[i] != 0 or g.big[i] != g.small[i]:
            return False
    return True


cdef inline isize _source(const Geom* g, int axis, isize z, isize tap) noexcept nogil:
    """The small index whose tap ``tap`` lands on big index ``z`` along ``axis``
    (z = y * s - pad + tap * d), or -1 if none does."""
    cdef isize t = z + g.pad[axis] - tap * g.d[axis]
    if t < 0 or t % g.s[axis] != 0:
        return -1
    t = t // g.s[axis]
    return t if t < g.small[axis] else -1


cdef inline bint _w_range(const Geom* g, isize kw, isize* off, isize* iw0,
                          isize* iw1) noexcept nogil:
    """For width tap kw: big column = iw * s + off; [iw0, iw1) the small columns that
    land inside the big side. False if the range is empty."""
    off[0] = kw * g.d[2] - g.pad[2]
    iw0[0] = 0 if off[0] >= 0 else (-off[0] + g.s[2] - 1) // g.s[2]
    iw1[0] = min(_floordiv(g.big[2] - 1 - off[0], g.s[2]) + 1, g.small[2])
    return iw0[0] < iw1[0]


# ---------------------------------------------------------------------------------
# Tiled GEMM: a fixed partition into tiles, one single-threaded BLAS call per tile.
# ---------------------------------------------------------------------------------

cdef int _MAX_TILES = 2
DEF LANE_DW_BYTES = 4194304     # lane-parallel filter gradients for filters up to 4 MiB
DEF LANE_WORK_BYTES = 16777216  # ... whose lanes' column buffers take <= 16 MiB in all
DEF ABT_MAX_M = 32       # the unpacked A @ B^T kernel for GEMMs of <= this many rows
DEF ABT_MIN_K = 128      # ... and at least this deep (measured: BLAS wins above 32 rows)
DEF OWN_GEMM_ROWS = 96   # the forward's own GEMM: rows of C per task
DEF OWN_GEMM_MAX_B = 1048576  # ... for a filter of <= 1M elements (4 MiB packed float)
DEF BPF_OWN_ROWS = 64    # the filter gradient's own GEMM: rows (output channels) a task
DEF BPF_OWN_MIN_CHANNELS = 3   # ... for >= 3 output channels
DEF BPF_OWN_MIN_PIXELS = 64    # ... and >= 64 output pixels
DEF BPF_OWN_MIN_ROWS = 16      # ... as DW += cols^T @ DY: >= 16 filter rows


# --------------------------------------------------------------------- workspace cache
# The filter gradient's big buffers (parts, lane column buffers) come from a few blocks
# kept between calls: freed to glibc, buffers of 2-10 MiB were trimmed back to the kernel
# and paged in afresh on every call (page faults about 15 % of PyTorch-style DCGAN g2's
# filter gradient at batch 16 in perf). _ws_take / _ws_give run with the GIL held (the
# calls' set-up and clean-up, outside their nogil sections), so the table needs no lock;
# a block taken is owned by one call until given back. Contents are never assumed.

DEF WS_SLOTS = 4
DEF WS_HEADER = 64          # bytes before the data: the block's capacity (64-aligned data)
cdef void* _ws_blocks[WS_SLOTS]
cdef size_t _ws_kept = 0            # bytes of the blocks kept (freed, not in use)
cdef size_t _ws_limit = 64 << 20    # at most this many (set_workspace_limit)


cdef void* _ws_take(size_t nbytes) noexcept:
    """A buffer of >= nbytes: the smallest kept block that holds it (at most twice the
    size plus 2 MiB), else a fresh one; NULL if it cannot be allocated. GIL held."""
    cdef int i, best = -1
    cdef size_t cap
    cdef char* blk
    for i in range(WS_SLOTS):
        if _ws_blocks[i] != NULL:
            cap = (<size_t*>_ws_blocks[i])[0]
            if (nbytes <= cap <= 2 * nbytes + (2 << 20)
                    and (best < 0 or cap < (<size_t*>_ws_blocks[best])[0])):
                best = i
    global _ws_kept
    if best >= 0:
        blk = <char*>_ws_blocks[best]
        _ws_blocks[best] = NULL
        _ws_kept -= (<size_t*>blk)[0]
        return blk + WS_HEADER
    blk = <char*>malloc(nbytes + WS_HEADER)
    if blk == NULL:
        return NULL
    (<size_t*>blk)[0] = nbytes
    return blk + WS_HEADER


cdef void _ws_give(void* ptr) noexcept:
    """Return a _ws_take buffer (NULL: nothing): kept while the kept blocks stay within
    the limit (the least useful, smallest, evicted for a bigger one), else freed."""
    cdef int i, slot = -1
    cdef char* blk
    cdef size_t cap
    global _ws_kept
    if ptr == NULL:
        return
    blk = <char*>ptr - WS_HEADER
    cap = (<size_t*>blk)[0]
    for i in range(WS_SLOTS):
        if _ws_blocks[i] == NULL:
            slot = i
            break
    if slot < 0:                        # all slots kept: drop the smallest if smaller
        slot = 0
        for i in range(1, WS_SLOTS):
            if (<size_t*>_ws_blocks[i])[0] < (<size_t*>_ws_blocks[slot])[0]:
                slot = i
        if (<size_t*>_ws_blocks[slot])[0] >= cap:
            free(blk)
            return
        _ws_kept -= (<size_t*>_ws_blocks[slot])[0]
        free(_ws_blocks[slot])
        _ws_blocks[slot] = NULL
    if _ws_kept + cap > _ws_limit:
        free(blk)
        return
    _ws_blocks[slot] = blk
    _ws_kept += cap


cdef void* _ws_take_zero(size_t nbytes) noexcept:
    """_ws_take, zeroed (the scratch calloc gave before: a kept block holds old data, and
    zeroing warm memory costs less than the fresh pages calloc handed out)."""
    cdef void* p = _ws_take(nbytes)
    if p != NULL:
        memset(p, 0, nbytes)
    return p


def set_workspace_limit(size_t nbytes):
    """Keep at most nbytes of freed workspace blocks between calls (0: none; set with the
    output cache's limit, at most 64 MiB, by cdeconv._memory); frees them all now.
    Returns the bytes that were kept."""
    global _ws_limit, _ws_kept
    cdef int i
    cdef size_t kept = _ws_kept
    _ws_limit = nbytes
    for i in range(WS_SLOTS):
        free(_ws_blocks[i])
        _ws_blocks[i] = NULL
    _ws_kept = 0
    return kept


cdef isize _OWN_GEMM_MIN_N = 16   # the forward's own GEMM for >= this many channels


def set_own_gemm(isize min_channels):
    """The forward im2col + GEMM runs its GEMM on the igemm micro-kernel (_gemm_own) for
    >= min_channels output channels (default 16; 0 = never, BLAS always): a hook for
    the tests and tools/forward_rules.py to check and time both. Returns the previous
    bound."""
    global _OWN_GEMM_MIN_N
    if min_channels < 0:
        raise ValueError(f"min_channels must be >= 0, got {min_channels}")
    before = _OWN_GEMM_MIN_N
    _OWN_GEMM_MIN_N = min_channels
    return before


cdef int _OWN_BPF = 1   # the filter gradient's GEMM: 0 BLAS, 1 by the rule, 2 forced


def set_own_filter_gemm(int mode):
    """The channels-last filter gradient's GEMM: 0 = always BLAS, 1 = on the igemm
    micro-kernel where the rule takes it (_bpf_own_fits; the default), 2 = on the
    micro-kernel for every channels-last one-group layer. A hook for the tests and
    tools/forward_rules.py to check and time both. Returns the previous mode."""
    global _OWN_BPF
    if not 0 <= mode <= 2:
        raise ValueError(f"mode must be 0, 1 or 2, got {mode}")
    before = _OWN_BPF
    _OWN_BPF = mode
    return before


def set_gemm_tiles(int n):
    """The most tiles one GEMM is cut into (1..64). Set once per process by
    cdeconv._driver from the machine's CPU count, never from the thread count: the
    partition (and so every result bit) must not depend on how many threads run."""
    global _MAX_TILES
    if not 1 <= n <= 64:
        raise ValueError(f"GEMM tiles must be in 1..64, got {n}")
    _MAX_TILES = n


cdef void _gemm_tiled(Trans ta, Trans tb, isize m, isize n, isize k,
                      const floating* A, isize lda, isize a_gs,
                      const floating* B, isize ldb, isize b_gs,
                      floating* C, isize ldc, isize c_gs,
                      isize groups, int n_threads, floating beta=0) noexcept nogil:
    """For g < groups: C_g(m, n) := op(A_g) @ op(B_g) + beta * C_g, X_g = X + g * x_gs.

    The tiles (at most _MAX_TILES along the longer of m and n, rows/columns in
    multiples of 16) depend only on the sizes, so each element of C is computed by the
    same BLAS call whatever the thread count: bitwise-reproducible results. Each tile
    re-packs its share of the other operand, so fewer tiles are faster (measured:
    8 -> 2 tiles, 5-15 % at 1 thread, ~3 % at 2): one per core is enough.
    """
    cdef isize flops = 2 * m * n * k
    cdef isize tm = 1, tn = 1, bm, bn, task, n_tasks, g, rest, i_m, i_n, m0, n0, mm, nn
    cdef const floating* a
    cdef const floating* b
    # few rows, deep k, C = A @ B^T with one leading dimension: the unpacked kernel
    # (BLAS would pack all of B for a handful of rows: src/_dot.h)
    cdef bint abt = (ta == NO_TRANS and tb == TRANS and lda == ldb and beta == 0
                     and 1 < m <= ABT_MAX_M and k >= ABT_MIN_K)
    if m <= 0 or n <= 0:
        return
    if flops >= 2000000:
        if m >= n:
            tm = min(_MAX_TILES, (m + 15) // 16)
        else:
            tn = min(_MAX_TILES, (n + 15) // 16)
    bm = (((m + tm - 1) // tm + 15) // 16) * 16 if tm > 1 else m
    bn = (((n + tn - 1) // tn + 15) // 16) * 16 if tn > 1 else n
    tm = (m + bm - 1) // bm
    tn = (n + bn - 1) // bn
    n_tasks = groups * tm * tn
    for task in prange(n_tasks, nogil=True, schedule='static',
                       num_threads=min(n_threads, n_tasks)):
        g = task // (tm * tn)
        rest = task % (tm * tn)
        i_m = rest // tn
        i_n = rest % tn
        m0 = i_m * bm
        n0 = i_n * bn
        mm = min(bm, m - m0)
        nn = min(bn, n - n0)
        # op(A) rows m0.. : A rows (NO_TRANS) or A columns (TRANS)
        a = A + g * a_gs + (m0 * lda if ta == NO_TRANS else m0)
        # op(B) columns n0.. : B columns (NO_TRANS) or B rows (TRANS)
        b = B + g * b_gs + (n0 if tb == NO_TRANS else n0 * ldb)
        if abt:
            if floating is float:
                cd_abt_f(mm, nn, k, a, b, lda, C + g * c_gs + m0 * ldc + n0, ldc)
            else:
                cd_abt_d(mm, nn, k, a, b, lda, C + g * c_gs + m0 * ldc + n0, ldc)
            continue
        gemm_rm(ta, tb, <int>mm, <int>nn, <int>k, <floating>1.0, a, <int>lda,
                b, <int>ldb, beta, C + g * c_gs + m0 * ldc + n0, <int>ldc)


cdef floating* _gemm_pack(isize k, isize n, const floating* B, isize ldb) noexcept nogil:
    """B (k, n), rows ldb apart, packed into the igemm micro-kernel's panels
    (cd_gemm_pack) in a new buffer the caller frees; NULL if it cannot be allocated."""
    cdef isize blk = cd_ig_block_f() if floating is float else cd_ig_block_d()
    cdef floating* Bp = <floating*>malloc(k * ((n + blk - 1) // blk * blk)
                                          * sizeof(floating))
    if Bp != NULL:
        if floating is float:
            cd_gemm_pack_f(k, n, B, ldb, Bp)
        else:
            cd_gemm_pack_d(k, n, B, ldb, Bp)
    return Bp


cdef inline bint _gemm_own_fits(const Geom* g) noexcept nogil:
    """Whether the channels-last forward im2col + GEMM runs its GEMM on the micro-kernel
    (_gemm_own): one group, >= _OWN_GEMM_MIN_N output channels, filter <= OWN_GEMM_MAX_B."""
    return (not g.cfirst and g.groups == 1 and 0 < _OWN_GEMM_MIN_N <= g.cs
            and g.taps * g.cb * g.cs <= OWN_GEMM_MAX_B)


cdef void _gemm_own(isize m, isize n, isize k, const floating* A, isize lda,
                    const floating* Bp, floating* C, isize ldc,
                    int n_threads) noexcept nogil:
    """C (m, n) := A (m, k) @ B (k, n), row-major, on the igemm micro-kernel, B packed by
    _gemm_pack: tasks of OWN_GEMM_ROWS rows of C (fixed by the sizes: each element is
    one FMA chain along k whatever the thread count). For the forward im2col + GEMM,
    where A is the column buffer: OpenBLAS re-packs A per call and runs its AVX2 kernels
    on AVX-512 machines."""
    cdef isize n_tasks = (m + OWN_GEMM_ROWS - 1) // OWN_GEMM_ROWS, task, m0, m1
    for task in prange(n_tasks, nogil=True, schedule='static',
                       num_threads=max(1, min(n_threads, n_tasks))):
        m0 = task * OWN_GEMM_ROWS
        m1 = min(m, m0 + OWN_GEMM_ROWS)
        if floating is float:
            cd_gemm_run_f(m0, m1, n, k, A, lda, Bp, C, ldc)
        else:
            cd_gemm_run_d(m0, m1, n, k, A, lda, Bp, C, ldc)


# ---------------------------------------------------------------------------------
# col2im: columns of small rows [r0, r1) added into the big side (gather by big row).
# ---------------------------------------------------------------------------------

cdef inline void _move_few(floating* dst, isize dst_step, const floating* src,
                           isize src_step, isize n, isize cb, bint add) noexcept nogil:
    """dst[i*dst_step + c] (+)= src[i*src_step + c] for i < n, c < cb (add: +=, else =).

    The channel loop is unrolled for cb <= 4: a runtime-length loop of 1-4 elements costs
    a vector prologue/epilogue per pixel (measured 1.3-2x slower col2im / im2col for 1-3
    channels). ``add`` is a constant at every call site, so the branch folds away."""
    cdef isize i, c
    if cb == 1:
        for i in range(n):
            if add:
                dst[i * dst_step] += src[i * src_step]
            else:
                dst[i * dst_step] = src[i * src_step]
    elif cb == 2:
        for i in range(n):
            if add:
                dst[i * dst_step] += src[i * src_step]
                dst[i * dst_step + 1] += src[i * src_step + 1]
            else:
                dst[i * dst_step] = src[i * src_step]
                dst[i * dst_step + 1] = src[i * src_step + 1]
    elif cb == 3:
        for i in range(n):
            if add:
                dst[i * dst_step] += src[i * src_step]
                dst[i * dst_step + 1] += src[i * src_step + 1]
                dst[i * dst_step + 2] += src[i * src_step + 2]
            else:
                dst[i * dst_step] = src[i * src_step]
                dst[i * dst_step + 1] = src[i * src_step + 1]
                dst[i * dst_step + 2] = src[i * src_step + 2]
    elif cb == 4:
        for i in range(n):
            if add:
                dst[i * dst_step] += src[i * src_step]
                dst[i * dst_step + 1] += src[i * src_step + 1]
                dst[i * dst_step + 2] += src[i * src_step + 2]
                dst[i * dst_step + 3] += src[i * src_step + 3]
            else:
                dst[i * dst_step] = src[i * src_step]
                dst[i * dst_step + 1] = src[i * src_step + 1]
                dst[i * dst_step + 2] = src[i * src_step + 2]
                dst[i * dst_step + 3] = src[i * src_step + 3]
    else:
        for i in range(n):
            for c in range(cb):
                if add:
                    dst[i * dst_step + c] += src[i * src_step + c]
                else:
                    dst[i * dst_step + c] = src[i * src_step + c]


cdef void _col2im_row(const Geom* g, const floating* cols, isize cs_p, isize cs_k,
                      isize r0, isize r1, isize w0, isize w1, isize R,
                      floating* Y) noexcept nogil:
    """Add to big row R = (b*BD + bd)*BH + bh every contribution of small rows [r0, r1),
    columns [w0, w1) (the whole rows, 0 and SW, unless one row is split: _chunk_cols).

    cols : IN  column buffer of the chunk (layout per g.cfirst, strides cs_p, cs_k;
           pixel (r, iw) at (r - r0) * (w1 - w0) + iw - w0)
    Y    : OUT the whole big-side array; only row R (all channels) is written, so
           big rows split freely across threads. Taps are added in (kd, kh, kw) order.
    """
    cdef isize BD = g.big[0], BH = g.big[1], BW = g.big[2]
    cdef isize SD = g.small[0], SH = g.small[1], SW = g.small[2]
    cdef isize Cb = g.cb, T = g.taps, G = g.groups
    cdef isize b = R // (BD * BH)
    cdef isize bd = (R // BH) % BD
    cdef isize bh = R % BH
    cdef isize C_big = G * Cb
    cdef isize BP = BD * BH * BW
    cdef isize grp, kd, kh, kw, zd, zh, r, prow, t, off, iw0, iw1, iw, c
    cdef isize s_step = g.s[2] * C_big     # big-side stride between consecutive iw
    cdef floating* dst
    cdef const floating* src
    cdef floating* ybase
    for grp in range(G):
        for kd in range(g.k[0]):
            zd = _source(g, 0, bd, kd)
            if zd < 0:
                continue
            for kh in range(g.k[1]):
                zh = _source(g, 1, bh, kh)
                if zh < 0:
                    continue
                r = (b * SD + zd) * SH + zh
                if r < r0 or r >= r1:
                    continue
                prow = (r - r0) * (w1 - w0) - w0
                for kw in range(g.k[2]):
                    t = (kd * g.k[1] + kh) * g.k[2] + kw
                    if not _w_range(g, kw, &off, &iw0, &iw1):
                        continue
                    iw0 = max(iw0, w0)
                    iw1 = min(iw1, w1)
                    if iw0 >= iw1:
                        continue
                    if not g.cfirst:
                        # Y[b, bd, bh, bw, grp*Cb + c] += cols[prow + iw, (grp*T + t)*Cb + c]
                        ybase = Y + (b * BP + (bd * BH + bh) * BW) * C_big + grp * Cb
                        dst = ybase + (iw0 * g.s[2] + off) * C_big
                        src = cols + (prow + iw0) * cs_p + (grp * T + t) * Cb
                        if g.tiles:      # the only contribution: store it
                            _move_few(dst, s_step, src, cs_p, iw1 - iw0, Cb, False)
                        else:
                            _move_few(dst, s_step, src, cs_p, iw1 - iw0, Cb, True)
                    else:
                        # Y[b, grp*Cb + c, bd, bh, bw] += cols[(grp*T + t)*Cb + c, prow + iw]
                        for c in range(Cb):
                            dst = (Y + (b * C_big + grp * Cb + c) * BP
                                   + (bd * BH + bh) * BW + off)
                            src = cols + ((grp * T + t) * Cb + c) * cs_k + prow
                            if g.tiles:
                                for iw in range(iw0, iw1):
                                    dst[iw * g.s[2]] = src[iw]
                            else:
                                for iw in range(iw0, iw1):
                                    dst[iw * g.s[2]] += src[iw]


cdef void _col2im_chunk(const Geom* g, const floating* cols, isize cs_p, isize cs_k,
                        isize r0, isize r1, isize w0, isize w1, floating* Y,
                        int n_threads) noexcept nogil:
    """Add the columns of small rows [r0, r1) (columns [w0, w1)) into Y, parallel over the big rows they
    can reach (each big row is written by exactly one thread: race-free, no atomics)."""
    cdef isize SD = g.small[0], SH = g.small[1]
    cdef isize BD = g.big[0], BH = g.big[1]
    cdef isize b0 = r0 // (SD * SH), q0 = r0 % (SD * SH)
    cdef isize b1 = (r1 - 1) // (SD * SH), q1 = (r1 - 1) % (SD * SH)
    cdef isize bd_lo, bd_hi, bh_lo = 0, bh_hi = BH - 1, R_lo, R_hi, R
    bd_lo = max(0, (q0 // SH) * g.s[0] - g.pad[0])
    bd_hi = min(BD - 1, (q1 // SH) * g.s[0] - g.pad[0] + (g.k[0] - 1) * g.d[0])
    if SD == 1:   # rows of one depth slice: the reachable big rows are tight
        bh_lo = max(0, (q0 % SH) * g.s[1] - g.pad[1])
        bh_hi = min(BH - 1, (q1 % SH) * g.s[1] - g.pad[1] + (g.k[1] - 1) * g.d[1])
    # Bounds that fall outside an image roll over to the neighbouring rows of the
    # flattened (b, bd, bh) order (a chunk may span images: the first image's rows may
    # reach no big row while the next image's do).
    if bd_lo > BD - 1:
        bd_lo = BD
        bh_lo = 0
    elif bh_lo > BH - 1:
        bh_lo = BH
    if bd_hi < 0:
        bd_hi = 0
        bh_hi = -1
    elif bh_hi < 0:
        bh_hi = -1
    R_lo = (b0 * BD + bd_lo) * BH + bh_lo
    R_hi = (b1 * BD + bd_hi) * BH + bh_hi
    if R_hi < R_lo:
        return
    for R in prange(R_lo, R_hi + 1, nogil=True, schedule='static',
                    num_threads=min(<isize>n_threads, R_hi + 1 - R_lo)):
        _col2im_row(g, cols, cs_p, cs_k, r0, r1, w0, w1, R, Y)


# ---------------------------------------------------------------------------------
# Direct transposed kernel (channels-last): no column buffer, for few channels.
# ---------------------------------------------------------------------------------

# ---------------------------------------------------------------------------------
# im2col: the columns of small rows [r0, r1) read from the big side.
# ---------------------------------------------------------------------------------

cdef void _im2col_row(const Geom* g, const floating* X, isize r, isize r0, isize w0,
                      isize w1, floating* cols, isize cs_p, isize cs_k) noexcept nogil:
    """Write the columns of small row r (= (b*SD + zd)*SH + zh), small columns
    [w0, w1) (pixel (r, iw) at (r - r0) * (w1 - w0) + iw - w0), zeros where the window
    leaves the big side. Only that row's columns are written: rows split freely."""
    cdef isize BD = g.big[0], BH = g.big[1], BW = g.big[2]
    cdef isize SD = g.small[0], SH = g.small[1], SW = g.small[2]
    cdef isize Cb = g.cb, T = g.taps, G = g.groups
    cdef isize b = r // (SD * SH)
    cdef isize zd = (r // SH) % SD
    cdef isize zh = r % SH
    cdef isize C_big = G * Cb
    cdef isize BP = BD * BH * BW
    cdef isize prow = (r - r0) * (w1 - w0) - w0
    cdef isize grp, kd, kh, kw, bd, bh, t, off, iw, bw, c, iw0, iw1
    cdef bint inside
    cdef floating* dst
    cdef const floating* src
    for grp in range(G):
        for kd in range(g.k[0]):
            bd = zd * g.s[0] - g.pad[0] + kd * g.d[0]
            for kh in range(g.k[1]):
                bh = zh * g.s[1] - g.pad[1] + kh * g.d[1]
                inside = 0 <= bd < BD and 0 <= bh < BH
                for kw in range(g.k[2]):
                    t = (kd * g.k[1] + kh) * g.k[2] + kw
                    off = kw * g.d[2] - g.pad[2]
                    if not g.cfirst:
                        # small columns [iw0, iw1) read inside the big row, zeros elsewhere
                        dst = cols + prow * cs_p + (grp * T + t) * Cb
                        if inside:
                            iw0 = 0 if off >= 0 else min(SW, (-off + g.s[2] - 1) // g.s[2])
                            iw1 = max(iw0, min(SW, _floordiv(BW - 1 - off, g.s[2]) + 1))
                        else:
                            iw0 = iw1 = SW
                        iw0 = min(max(iw0, w0), w1)
                        iw1 = min(max(iw1, iw0), w1)
                        for iw in range(w0, iw0):
                            for c in range(Cb):
                                dst[iw * cs_p + c] = 0
                        if iw1 > iw0:
                            src = X + ((b * BP + (bd * BH + bh) * BW + iw0 * g.s[2] + off)
                                       * C_big + grp * Cb)
                            _move_few(dst + iw0 * cs_p, cs_p, src, g.s[2] * C_big,
                                      iw1 - iw0, Cb, False)
                        for iw in range(iw1, w1):
                            for c in range(Cb):
                                dst[iw * cs_p + c] = 0
                    else:
                        for c in range(Cb):
                            dst = cols + ((grp * T + t) * Cb + c) * cs_k + prow
                            src = X + (b * C_big + grp * Cb + c) * BP + (bd * BH + bh) * BW
                            for iw in range(w0, w1):
                                bw = iw * g.s[2] + off
                                if inside and 0 <= bw < BW:
                                    dst[iw] = src[bw]
                                else:
                                    dst[iw] = 0


# ---------------------------------------------------------------------------------
# Chunking
# ---------------------------------------------------------------------------------

DEF MIN_GEMM_ROWS = 256      # GEMM rows (pixels) a chunk should have at least ...
DEF MAX_BUDGET_FACTOR = 16   # ... as long as that needs <= 16x the byte budget


cdef isize _chunk_rows(const Geom* g, isize itemsize, isize chunk_bytes) noexcept nogil:
    """Small rows per chunk: as many as keep cols under chunk_bytes, but enough for a
    GEMM of >= MIN_GEMM_ROWS pixels (skinny GEMMs run at a fraction of BLAS speed: PERF
    notes, M=16 ~27 vs M=256 ~87 GFLOP/s) while that fits in 16x the budget; at least
    one row. Depends only on shapes and the budget, never on the thread count."""
    cdef isize row_bytes = g.small[2] * g.groups * g.taps * g.cb * itemsize
    cdef isize rows, want
    if row_bytes <= 0:
        return 1
    rows = max(1, chunk_bytes // row_bytes)
    want = (MIN_GEMM_ROWS + g.small[2] - 1) // g.small[2]
    if rows < want:
        rows = max(rows, min(want, (MAX_BUDGET_FACTOR * chunk_bytes) // row_bytes))
    return rows


cdef isize _chunk_cols(const Geom* g, isize itemsize, isize chunk_bytes) noexcept nogil:
    """Small columns per chunk: the whole row (SW), unless one row's columns would take
    more than MAX_BUDGET_FACTOR x the budget (a long 1-D signal, a very wide image):
    then chunks are parts of one row, as many columns as fit the budget (at least
    MIN_GEMM_ROWS while that fits in 16x the budget). Depends only on shapes and the
    budget; below the cap the chunks (and every result bit) are as before."""
    cdef isize pix_bytes = g.groups * g.taps * g.cb * itemsize
    cdef isize SW = g.small[2], cols
    if pix_bytes <= 0 or SW * pix_bytes <= MAX_BUDGET_FACTOR * chunk_bytes or _is_direct(g):
        return SW
    cols = max(1, chunk_bytes // pix_bytes)
    if cols < MIN_GEMM_ROWS:
        cols = max(cols, min(<isize>MIN_GEMM_ROWS, (MAX_BUDGET_FACTOR * chunk_bytes) // pix_bytes))
    return min(cols, SW)


cdef inline isize _chunk_end(const Geom* g, isize r0, isize rows_per_chunk,
                             isize n_rows) noexcept nogil:
    """End of the chunk that starts at small row r0. Channels-first chunks stay inside
    one image (an image's channels are planes: rows of two images are not one matrix)."""
    cdef isize r1 = min(n_rows, r0 + rows_per_chunk)
    cdef isize img_rows = g.small[0] * g.small[1]
    if g.cfirst:
        r1 = min(r1, (r0 // img_rows + 1) * img_rows)
    return r1


# ---------------------------------------------------------------------------------
# Drivers
# ---------------------------------------------------------------------------------

cdef inline isize _chunk_pixels(const Geom* g, isize rows_per_chunk, isize cols_per_chunk,
                                isize n_rows) noexcept nogil:
    """The most small-side pixels of a chunk of rows_per_chunk whole rows, or of
    cols_per_chunk columns of one row when that is less than a row (_chunk_cols)."""
    return (min(rows_per_chunk, n_rows) * g.small[2]
            if cols_per_chunk == g.small[2] else cols_per_chunk)


cdef inline isize _work_elems(const Geom* g, isize rows_per_chunk, isize cols_per_chunk,
                              isize n_rows) noexcept nogil:
    """Elements of the column buffer for those chunks."""
    return (_chunk_pixels(g, rows_per_chunk, cols_per_chunk, n_rows)
            * g.groups * g.taps * g.cb)


cdef inline bint _next_chunk(const Geom* g, isize rows_per_chunk, isize cols_per_chunk,
                             isize n_rows, isize* next_r, isize* next_w, isize* r0,
                             isize* r1, isize* w0, isize* w1) noexcept nogil:
    """The chunk that starts at (next_r, next_w) (small row, column; 0, 0 first): rows
    [r0, r1), columns [w0, w1) -- whole rows (_chunk_end), or parts of one row when
    cols_per_chunk < SW (_chunk_cols) -- and the start of the one after it. False past
    the last row."""
    cdef isize SW = g.small[2]
    if next_r[0] >= n_rows:
        return False
    r0[0] = next_r[0]
    w0[0] = next_w[0]
    if cols_per_chunk < SW:
        r1[0] = r0[0] + 1
        w1[0] = min(SW, w0[0] + cols_per_chunk)
    else:
        r1[0] = _chunk_end(g, r0[0], rows_per_chunk, n_rows)
        w1[0] = SW
    if w1[0] < SW:
        next_w[0] = w1[0]
    else:
        next_r[0] = r1[0]
        next_w[0] = 0
    return True


cdef void _transpose_chunk(const Geom* g, const floating* X, const floating* W,
                          floating* Y, floating* work, isize r0, isize r1, isize w0,
                          isize w1, int n_threads) noexcept nogil:
    """The chunk of small rows [r0, r1), columns [w0, w1): cols = X_chunk @ W^T (tiled
    GEMM), then col2im adds cols into Y (or, direct, the GEMM writes Y itself)."""
    cdef isize SP = g.small[0] * g.small[1] * g.small[2]
    cdef isize BP = g.big[0] * g.big[1] * g.big[2]
    cdef isize C_small = g.groups * g.cs, C_big = g.groups * g.cb
    cdef isize SW = g.small[2], Ncols = g.taps * g.cb
    cdef isize npix = (r1 - r0) * (w1 - w0), q0 = r0 * SW + w0, b, p0
    cdef bint direct = _is_direct(g)
    cdef floating* cols
    if not g.cfirst:
        # cols (npix, G*T*Cb) = X[pixels] (npix, C_small) @ W_g^T, W (T*Cb, C_small)
        cols = Y + q0 * C_big if direct else work
        _gemm_tiled(NO_TRANS, TRANS, npix, Ncols, g.cs,
                    X + q0 * C_small, C_small, g.cs,
                    W, C_small, g.cs,
                    cols, g.groups * Ncols, Ncols, g.groups, n_threads)
        if not direct:
            _col2im_chunk(g, work, g.groups * Ncols, 1, r0, r1, w0, w1, Y, n_threads)
    else:
        b = r0 // (g.small[0] * g.small[1])
        p0 = q0 - b * SP
        # cols (G*T*Cb, npix) = W_g (T*Cb, Cs) @ X_b[g*Cs:(g+1)*Cs, p0:p0+npix]
        if direct:
            _gemm_tiled(NO_TRANS, NO_TRANS, Ncols, npix, g.cs,
                        W, C_small, g.cs,
                        X + b * C_small * SP + p0, SP, g.cs * SP,
                        Y + b * C_big * BP + p0, BP, Ncols * BP,
                        g.groups, n_threads)
        else:
            _gemm_tiled(NO_TRANS, NO_TRANS, Ncols, npix, g.cs,
                        W, C_small, g.cs,
                        X + b * C_small * SP + p0, SP, g.cs * SP,
                        work, npix, Ncols * npix, g.groups, n_threads)
            _col2im_chunk(g, work, 1, npix, r0, r1, w0, w1, Y, n_threads)


cdef void _conv_transpose(const Geom* g, const floating* X, const floating* W,
                          floating* Y, floating* work, isize rows_per_chunk,
                          isize cols_per_chunk, int n_threads) noexcept nogil:
    """Y (big side) := conv_transpose(X (small side), W). Y is fully overwritten.

    Per chunk of small rows (or, for rows longer than the budget, of one row's
    columns: cols_per_chunk < SW): _transpose_chunk, in order.
    """
    cdef isize BP = g.big[0] * g.big[1] * g.big[2]
    cdef isize C_big = g.groups * g.cb
    cdef isize n_rows = g.batch * g.small[0] * g.small[1]
    cdef isize total = g.batch * BP * C_big
    cdef isize nr = 0, nw = 0, r0, r1, w0, w1, blk, n_blk, lo
    if not _is_direct(g) and not g.tiles:
        # zero Y in parallel (first touch by the threads that will write it); with
        # g.tiles every element is stored exactly once by col2im instead
        n_blk = (total + 65535) // 65536
        for blk in prange(n_blk, nogil=True, schedule='static',
                          num_threads=min(<isize>n_threads, n_blk)):
            lo = blk * 65536
            memset(Y + lo, 0, min(<isize>65536, total - lo) * sizeof(floating))
    while _next_chunk(g, rows_per_chunk, cols_per_chunk, n_rows, &nr, &nw, &r0, &r1,
                      &w0, &w1):
        _transpose_chunk(g, X, W, Y, work, r0, r1, w0, w1, n_threads)


cdef const floating* _columns(const Geom* g, const floating* X, isize r0, isize r1,
                              isize w0, isize w1, floating* work, int n_threads,
                              isize* ld, isize* gs) noexcept nogil:
    """The column matrix of small rows [r0, r1), columns [w0, w1): im2col into ``work``
    (parallel over the rows), or X itself for the direct geometry (never split: whole
    rows). Returns it with its leading dimension ``ld`` and group stride ``gs``:
    channels-last (npix, G*K), a row per pixel; channels-first (G*K, npix), a row per
    (group, tap, channel) of image r0's batch."""
    cdef isize SW = g.small[2], K = g.taps * g.cb, npix = (r1 - r0) * (w1 - w0)
    cdef isize BP = g.big[0] * g.big[1] * g.big[2], C_big = g.groups * g.cb
    cdef isize SP = g.small[0] * g.small[1] * SW, b, p0, r
    cdef bint direct = _is_direct(g)
    if not direct:
        for r in prange(r0, r1, nogil=True, schedule='static',
                        num_threads=min(<isize>n_threads, r1 - r0)):
            _im2col_row(g, X, r, r0, w0, w1, work, g.groups * K if not g.cfirst else 1,
                        1 if not g.cfirst else npix)
    if not g.cfirst:
        ld[0] = g.groups * K          # = C_big when direct (one tap)
        gs[0] = K
        return X + r0 * SW * C_big if direct else work
    b = r0 // (g.small[0] * g.small[1])
    p0 = r0 * SW - b * SP
    if direct:
        ld[0] = BP
        gs[0] = K * BP
        return X + b * C_big * BP + p0
    ld[0] = npix
    gs[0] = K * npix
    return work


cdef void _forward_chunk(const Geom* g, const floating* X, const floating* W,
                        const floating* Wp, floating* Y, floating* work, isize r0,
                        isize r1, isize w0, isize w1, int n_threads) noexcept nogil:
    """The chunk of small rows [r0, r1), columns [w0, w1): the columns (im2col), then
    Y_chunk = cols @ W (tiled GEMM, or on the micro-kernel with W packed as Wp when it
    is not NULL: _gemm_own)."""
    cdef isize SP = g.small[0] * g.small[1] * g.small[2]
    cdef isize C_small = g.groups * g.cs
    cdef isize SW = g.small[2], K = g.taps * g.cb
    cdef isize npix = (r1 - r0) * (w1 - w0), q0 = r0 * SW + w0, b, p0, ld, gs
    cdef const floating* cols = _columns(g, X, r0, r1, w0, w1, work, n_threads, &ld, &gs)
    if not g.cfirst:
        # Y[pixels] (npix, C_small) = cols_g (npix, K) @ W_g, W (K, C_small)
        if Wp != NULL:
            _gemm_own(npix, g.cs, K, cols, ld, Wp, Y + q0 * C_small, C_small, n_threads)
            return
        _gemm_tiled(NO_TRANS, NO_TRANS, npix, g.cs, K, cols, ld, gs,
                    W, C_small, g.cs,
                    Y + q0 * C_small, C_small, g.cs, g.groups, n_threads)
    else:
        b = r0 // (g.small[0] * g.small[1])
        p0 = q0 - b * SP
        # Y_b[g*Cs:(g+1)*Cs, p0:p0+npix] = W_g^T (Cs, K) @ cols_g (K, npix)
        _gemm_tiled(TRANS, NO_TRANS, g.cs, npix, K, W, C_small, g.cs,
                    cols, ld, gs,
                    Y + b * C_small * SP + p0, SP, g.cs * SP, g.groups, n_threads)


cdef void _conv_forward(const Geom* g, const floating* X, const floating* W,
                        floating* Y, floating* work, isize rows_per_chunk,
                        isize cols_per_chunk, int n_threads) noexcept nogil:
    """Y (small side) := conv(X (big side), W). Y is fully overwritten, chunk by chunk
    (_forward_chunk; parts of one row when cols_per_chunk < SW). Where _gemm_own_fits,
    W is packed once for every chunk (BLAS if the packed copy cannot be allocated)."""
    cdef isize n_rows = g.batch * g.small[0] * g.small[1]
    cdef isize nr = 0, nw = 0, r0, r1, w0, w1
    cdef floating* Wp = NULL
    if _gemm_own_fits(g):
        Wp = _gemm_pack(g.taps * g.cb, g.cs, W, g.cs)
    while _next_chunk(g, rows_per_chunk, cols_per_chunk, n_rows, &nr, &nw, &r0, &r1,
                      &w0, &w1):
        _forward_chunk(g, X, W, Wp, Y, work, r0, r1, w0, w1, n_threads)
    free(Wp)


cdef inline int _bpf_own_fits(const Geom* g) noexcept nogil:
    """How the filter gradient runs its GEMM: 0 on BLAS; on the micro-kernel (_bpf_own)
    1 as DW^T (Cs, K) += DY^T @ cols or 2 as DW (K, Cs) += cols^T @ DY (K = taps x input
    channels), whichever moves fewer elements besides the GEMM: DY^T plus DW^T zeroed and
    turned round, or cols^T. The rule: channels-last, one group, >= BPF_OWN_MIN_PIXELS
    output pixels, and >= BPF_OWN_MIN_CHANNELS output channels for 1, >= BPF_OWN_MIN_ROWS
    filter rows for 2. Measured with tools/forward_rules.py --filter-gradient on the
    suite, 1 and 2 threads: own / BLAS 1.03-1.98x on every layer from 16 output pixels
    but one, 0.55-0.98x on a 1-pixel layer (and 16 pixels of it at batch 16), 0.83-1.11x
    with 1 output channel."""
    cdef isize K = g.taps * g.cb
    cdef isize P = g.batch * g.small[0] * g.small[1] * g.small[2]
    # the elements each way moves besides the GEMM: DY^T, then DW^T zeroed and turned
    # round; or cols^T
    cdef int orient = 1 if P * g.cs + 2 * K * g.cs <= P * K else 2
    if _OWN_BPF == 0 or g.cfirst or g.groups != 1:
        return 0
    if _OWN_BPF == 2:
        return orient
    if P < BPF_OWN_MIN_PIXELS:
        return 0
    if orient == 1 and g.cs >= BPF_OWN_MIN_CHANNELS:
        return 1
    if orient == 2 and K >= BPF_OWN_MIN_ROWS:
        return 2
    return 0


def bpf_own_fits(tuple shapes, bint channels_first=False):
    """How conv_backprop_filter runs its GEMM (_bpf_own_fits): 0 BLAS, 1 or 2 the
    micro-kernel (DW^T or DW)."""
    cdef Geom g
    _make_geom(&g, shapes, channels_first)
    return _bpf_own_fits(&g)


cdef void _transpose_blocks(floating* dst, isize ldd, isize n, isize K,
                            const floating* src, isize lds, isize blk,
                            int n_threads) noexcept nogil:
    """dst[k * ldd + p] := src[p * lds + k] for p < n, k < K (cd_transpose), blk rows of
    src a task."""
    cdef isize b, p
    for b in prange((n + blk - 1) // blk, schedule='static', num_threads=n_threads):
        p = b * blk
        if floating is float:
            cd_transpose_f(dst + p, ldd, min(blk, n - p), K, src + p * lds, lds)
        else:
            cd_transpose_d(dst + p, ldd, min(blk, n - p), K, src + p * lds, lds)


cdef inline isize _bpf_own_elems(isize npix, isize M, int n_threads,
                                 isize blk) noexcept nogil:
    """Scratch elements of _bpf_own for up to npix pixels: A turned round, then one
    CD_BPF_KC x panel block (blk: cd_ig_block of the dtype) per thread."""
    return M * npix + max(n_threads, 1) * CD_BPF_KC * blk


cdef void _bpf_own(isize npix, isize M, isize N, const floating* A, isize lda,
                   const floating* B, isize ldb, floating* C,
                   int n_threads, floating* scratch) noexcept nogil:
    """C (M, N) += A^T @ B, A (npix, M) and B (npix, N) rows lda / ldb apart, on the
    micro-kernel (cd_gemm_bpf): A transposed once, tasks of (BPF_OWN_ROWS rows, one panel
    of columns), each writing its own block of C; every element's order is fixed by
    npix. scratch: _bpf_own_elems(npix, M, n_threads, blk) elements, or NULL to allocate
    them here; falls back to BLAS (the same product) when they cannot be allocated."""
    cdef isize blk = cd_ig_block_f() if floating is float else cd_ig_block_d()
    cdef isize n_pan = (N + blk - 1) // blk, n_rb = (M + BPF_OWN_ROWS - 1) // BPF_OWN_ROWS
    cdef isize n_tasks = n_pan * n_rb, task, i0, c0
    cdef int nt = max(1, min(n_threads, n_tasks))
    cdef floating* At = scratch
    cdef floating* S = scratch + M * npix if scratch != NULL else NULL
    if scratch == NULL:
        At = <floating*>malloc(M * npix * sizeof(floating))
        S = <floating*>malloc(nt * CD_BPF_KC * blk * sizeof(floating))
    if At == NULL or S == NULL:
        free(At)
        free(S)
        _gemm_tiled(TRANS, NO_TRANS, M, N, npix, A, lda, 0, B, ldb, 0, C, N, 0, 1,
                    n_threads, 1)
        return
    _transpose_blocks(At, npix, npix, M, A, lda, 256, n_threads)
    for task in prange(n_tasks, schedule='static', num_threads=nt):
        i0 = (task % n_rb) * BPF_OWN_ROWS
        c0 = (task // n_rb) * blk
        if floating is float:
            cd_gemm_bpf_f(i0, min(M, i0 + BPF_OWN_ROWS), c0, min(N, c0 + blk), npix,
                          At, npix, B, ldb, C, N, S + threadid() * CD_BPF_KC * blk)
        else:
            cd_gemm_bpf_d(i0, min(M, i0 + BPF_OWN_ROWS), c0, min(N, c0 + blk), npix,
                          At, npix, B, ldb, C, N, S + threadid() * CD_BPF_KC * blk)
    if scratch == NULL:
        free(At)
        free(S)


cdef void _bpf_chunk(const Geom* g, const floating* X, const floating* DY, floating* DW,
                     floating* work, isize r0, isize r1, isize w0, isize w1,
                     int n_threads, int own, floating* own_buf) noexcept nogil:
    """DW += the filter gradient of small rows [r0, r1), columns [w0, w1): the columns, then
    DW_g += cols_g^T @ DY_g (tiled over DW: each element's sum over the chunk's pixels
    runs inside one BLAS call), or on the micro-kernel (``own`` from _bpf_own_fits) DW^T
    (Cs, K) += DY^T @ cols (own 1: DW then holds the transposed gradient) or DW += cols^T
    @ DY (own 2); own_buf: _bpf_own's scratch (or NULL)."""
    cdef isize SP = g.small[0] * g.small[1] * g.small[2]
    cdef isize C_small = g.groups * g.cs
    cdef isize SW = g.small[2], K = g.taps * g.cb
    cdef isize npix = (r1 - r0) * (w1 - w0), q0 = r0 * SW + w0, b, p0, ld, gs
    cdef const floating* cols = _columns(g, X, r0, r1, w0, w1, work, n_threads, &ld, &gs)
    if own == 1:
        _bpf_own(npix, g.cs, K, DY + q0 * C_small, C_small, cols, ld, DW, n_threads,
                 own_buf)
        return
    if own == 2:
        _bpf_own(npix, K, g.cs, cols, ld, DY + q0 * C_small, C_small, DW, n_threads,
                 own_buf)
        return
    if not g.cfirst:
        # DW_g (K, Cs) += cols_g^T (K, npix) @ DY[pixels, g*Cs:(g+1)*Cs] (npix, Cs)
        _gemm_tiled(TRANS, NO_TRANS, K, g.cs, npix, cols, ld, gs,
                    DY + q0 * C_small, C_small, g.cs,
                    DW, C_small, g.cs, g.groups, n_threads, 1)
    else:
        b = r0 // (g.small[0] * g.small[1])
        p0 = q0 - b * SP
        # DW_g (K, Cs) += cols_g (K, npix) @ DY_b[g*Cs:(g+1)*Cs, p0:p0+npix]^T
        _gemm_tiled(NO_TRANS, TRANS, K, g.cs, npix, cols, ld, gs,
                    DY + b * C_small * SP + p0, SP, g.cs * SP,
                    DW, C_small, g.cs, g.groups, n_threads, 1)


cdef inline isize _bpf_scratch_elems(const Geom* g, int own, isize pixels, int n_threads,
                                    bint whole, isize blk) noexcept nogil:
    """Scratch elements of the micro-kernel filter gradient (own: _bpf_own_fits; 0 for
    none) for chunks of up to ``pixels``: with ``whole`` (_conv_backprop_filter) DW^T
    for own 1, then _bpf_own's buffers."""
    cdef isize K = g.taps * g.cb
    if own == 0:
        return 0
    return ((K * g.cs if whole and own == 1 else 0)
            + _bpf_own_elems(pixels, g.cs if own == 1 else K, n_threads, blk))


cdef void _conv_backprop_filter(const Geom* g, const floating* X, const floating* DY,
                                floating* DW, floating* work, isize rows_per_chunk,
                                isize cols_per_chunk, int n_threads,
                                floating* own_buf) noexcept nogil:
    """DW := d<conv(X, W), DY>/dW, the filter gradient (TF's conv2d_backprop_filter).

    X : IN big side; DY : IN small side (the gradient of the forward output);
    DW : OUT (taps, Cb, G*Cs), overwritten; chunk by chunk (_bpf_chunk), in order.
    own_buf: _bpf_scratch_elems(whole) elements kept between calls (_ws_take), or NULL
    to allocate them here (freed to glibc, buffers of 1-2 MiB came back as fresh pages
    on every call: U-Net up2's at batch 1 ran 1.5x slower).
    """
    cdef isize n_rows = g.batch * g.small[0] * g.small[1]
    cdef isize nr = 0, nw = 0, r0, r1, w0, w1, i, K = g.taps * g.cb
    cdef floating* DWt = NULL
    cdef floating* own_scratch = own_buf
    cdef int own = _bpf_own_fits(g)
    if own == 1:
        if own_buf != NULL:
            DWt = own_buf
            own_scratch = own_buf + K * g.cs
            memset(DWt, 0, K * g.cs * sizeof(floating))
        else:
            DWt = <floating*>calloc(K * g.cs, sizeof(floating))
        if DWt == NULL:
            own = 0
    if DWt == NULL:                 # else DW is written whole from DWt at the end
        for i in range(g.taps * g.cb * g.groups * g.cs):
            DW[i] = 0
    while _next_chunk(g, rows_per_chunk, cols_per_chunk, n_rows, &nr, &nw, &r0, &r1,
                      &w0, &w1):
        _bpf_chunk(g, X, DY, DWt if DWt != NULL else DW, work, r0, r1, w0, w1,
                   n_threads, own, own_scratch)
    if DWt != NULL:
        # DW (K, Cs) := DWt (Cs, K) turned round, in register-transposed blocks
        _transpose_blocks(DW, g.cs, g.cs, K, DWt, K, 256, n_threads)
        if own_buf == NULL:
            free(DWt)


cdef void _bpf_lane(const Geom* g, const floating* X, const floating* DY, floating* part,
                    floating* work, const isize* starts, isize n_chunks, isize lane,
                    isize lanes, int own, floating* own_buf) noexcept nogil:
    """Lane ``lane`` of the lane-parallel filter gradient: part := the gradient of chunks
    lane, lane + lanes, ... (single-threaded, one untiled GEMM per chunk; transposed,
    (Cs, K), with own 1: see _bpf_chunk; own_buf: the lane's _bpf_own scratch or
    NULL)."""
    cdef isize i
    for i in range(g.taps * g.cb * g.groups * g.cs):
        part[i] = 0
    i = lane
    while i < n_chunks:
        _bpf_chunk(g, X, DY, part, work, starts[i], starts[i + 1], 0, g.small[2], 1, own,
                   own_buf)
        i += lanes


# ---------------------------------------------------------------------------------
# Forward tap rows: the im2col + GEMM forward without the column buffer
# ---------------------------------------------------------------------------------

DEF FT_BAND_ELEMENTS = 262144   # a padded input band of about 1 MiB (float32)
DEF FT_TASK_COLUMNS = 64        # output channels per task


def forward_taps_fits(tuple shapes):
    """Whether the tap-rows forward (algo 5) takes this geometry: 1-D/2-D (a depth of one
    plane reading its own: no depth padding), one group, no dilation along the width, at
    most CD_GT_MAX_TAPS kernel rows."""
    cdef Geom g
    _make_geom(&g, shapes, False)
    return (g.groups == 1 and g.k[0] == 1 and g.big[0] == 1 and g.small[0] == 1
            and g.pad[0] == 0 and g.d[2] == 1 and g.k[1] <= CD_GT_MAX_TAPS)


cdef void _ft_pad_band(const Geom* g, const floating* X, floating* Xp, isize b0,
                       isize nimg, isize iy0, isize Hb, isize Wp,
                       int n_threads) noexcept nogil:
    """Xp (nimg, Hb, Wp, cb) := input rows iy0.. of images b0.. (columns from -pad),
    zeros outside the image."""
    cdef isize H = g.big[1], W = g.big[2], cb = g.cb, q, iy, j0, j1
    cdef floating* row
    j0 = min(Wp, g.pad[2])                  # the first padded column inside the image
    j1 = max(j0, min(Wp, g.pad[2] + W))     # ... and past its last
    for q in prange(nimg * Hb, nogil=True, schedule='static', num_threads=n_threads):
        row = Xp + q * Wp * cb
        iy = iy0 + q % Hb
        if iy < 0 or iy >= H:
            memset(row, 0, Wp * cb * sizeof(floating))
            continue
        memset(row, 0, j0 * cb * sizeof(floating))
        memcpy(row + j0 * cb, X + (((b0 + q // Hb) * H + iy) * W + j0 - g.pad[2]) * cb,
               (j1 - j0) * cb * sizeof(floating))
        memset(row + j1 * cb, 0, (Wp - j1) * cb * sizeof(floating))


cdef int _run_forward_taps(const Geom* g, const floating* X, const floating* W,
                           floating* Y, int n_threads) except -1:
    """The forward conv (forward_taps_fits) as im2col + GEMM with no column buffer: the
    filter packed once (_gemm_pack, K = kh * kw * cb rows), then band by band a
    zero-padded copy of the input the band reads and tasks of OWN_GEMM_ROWS output pixels
    on cd_gemm_taps (the kernel rows are its taps, each kw * cb contiguous inputs). A band
    is as many whole images as fit in FT_BAND_ELEMENTS, or rows of one image. Same bits
    as _gemm_own on the column buffer, for every split and thread count."""
    cdef isize OH = g.small[1], OW = g.small[2], N = g.cs, cb = g.cb
    cdef isize kh = g.k[1], kw = g.k[2], sy = g.s[1], sx = g.s[2], dy = g.d[1]
    cdef isize Kt = kh * kw * cb, Wp = (OW - 1) * sx + kw
    cdef isize Hi = (OH - 1) * sy + (kh - 1) * dy + 1       # an image's padded rows
    cdef isize blk = cd_ig_block_f() if floating is float else cd_ig_block_d()
    cdef isize rows = OH, nimg = 1, Hb, b, oy0, oy1, npix, n_tasks, task, m0, m1, n0, n1
    cdef isize n_runs, pan, n_pan
    cdef floating* Bp = NULL
    cdef floating* Xp = NULL
    cdef floating* C
    n_threads = _threads_for(g, n_threads)
    # tasks: runs of OWN_GEMM_ROWS output pixels x column blocks of FT_TASK_COLUMNS
    # (whole panels), so batch-1 layers with few pixels still spread over the threads
    pan = max(blk, FT_TASK_COLUMNS // blk * blk)
    n_pan = (N + pan - 1) // pan
    if Hi * Wp * cb <= FT_BAND_ELEMENTS:
        # whole images, enough for about 4 runs per thread (band <= 4 budgets)
        nimg = max(FT_BAND_ELEMENTS // (Hi * Wp * cb),
                   min(4 * FT_BAND_ELEMENTS // (Hi * Wp * cb),
                       (4 * n_threads * OWN_GEMM_ROWS + OH * OW - 1) // (OH * OW)))
        nimg = min(g.batch, nimg)
    else:
        rows = max(<isize>1, (FT_BAND_ELEMENTS // (Wp * cb) - (kh - 1) * dy - 1) // sy + 1)
    try:
        Bp = _gemm_pack(Kt, N, W, N)
        Xp = <floating*>malloc(nimg * ((rows - 1) * sy + (kh - 1) * dy + 1) * Wp * cb
                               * sizeof(floating))
        if Bp == NULL or Xp == NULL:
            raise MemoryError("cdeconv: cannot allocate the tap-rows forward's buffers")
        with nogil:
            b = 0
            while b < g.batch:
                nimg = min(nimg, g.batch - b)
                oy0 = 0
                while oy0 < OH:
                    oy1 = min(OH, oy0 + rows)
                    Hb = (oy1 - oy0 - 1) * sy + (kh - 1) * dy + 1
                    _ft_pad_band(g, X, Xp, b, nimg, oy0 * sy - g.pad[1], Hb, Wp, n_threads)
                    npix = nimg * (oy1 - oy0) * OW
                    C = Y + (b * OH + oy0) * OW * N
                    n_runs = (npix + OWN_GEMM_ROWS - 1) // OWN_GEMM_ROWS
                    n_tasks = n_runs * n_pan
                    for task in prange(n_tasks, schedule='static',
                                       num_threads=max(1, min(n_threads, n_tasks))):
                        m0 = (task // n_pan) * OWN_GEMM_ROWS
                        m1 = min(npix, m0 + OWN_GEMM_ROWS)
                        n0 = (task % n_pan) * pan
                        n1 = min(N, n0 + pan)
                        if floating is float:
                            cd_gemm_taps_f(m0, m1, OW, OH, n0, n1, kh, kw * cb, Xp,
                                           Hb * Wp * cb, sy * Wp * cb, dy * Wp * cb,
                                           sx * cb, Bp, C, N)
                        else:
                            cd_gemm_taps_d(m0, m1, OW, OH, n0, n1, kh, kw * cb, Xp,
                                           Hb * Wp * cb, sy * Wp * cb, dy * Wp * cb,
                                           sx * cb, Bp, C, N)
                    oy0 = oy1
                b += nimg
    finally:
        free(Bp)
        free(Xp)
    return 0


DEF FPL_TASK_PIXELS = 1024       # the planar forward: output pixels per task, about
DEF FPL_MAX_SCRATCH = 65536      # ... while its planes stay within this many elements
DEF FPL_TASKS_PER_THREAD = 4     # ... and this many tasks a thread where rows allow
DEF FPL_MAX_ROW_SCRATCH = 4194304  # the planes of one output row, at most


cdef bint _fpl_fits(const Geom* g, isize max_cs=CD_FPL_MAXCO) noexcept nogil:
    """Whether the planar kernels take g: 1-D/2-D (a depth of one plane reading its own:
    no depth padding, with which a 1-plane conv3d of depth stride >= 2 reads only
    zeros), one group, 1 to max_cs output channels, at most CD_FPL_MAXKW kernel
    columns, and the planes of one output row within FPL_MAX_ROW_SCRATCH elements (a
    row is never split, so a 2**25-wide row from huge padding goes to im2col + GEMM,
    which splits it)."""
    cdef cd_geom cg
    if not (g.groups == 1 and g.k[0] == 1 and g.big[0] == 1 and g.small[0] == 1
            and g.pad[0] == 0 and 1 <= g.cs <= max_cs and g.k[2] <= CD_FPL_MAXKW):
        return False
    _fill_cd_geom(g, &cg)
    return cd_fpl_scratch_f(&cg, 1) <= FPL_MAX_ROW_SCRATCH


def forward_planar_fits(tuple shapes):
    """Whether the planar forward (algo 6) takes this geometry (_fpl_fits)."""
    cdef Geom g
    _make_geom(&g, shapes, False)
    return _fpl_fits(&g)


#: the planar kernels' scratch, for _fpl_band_rows
DEF FPL_FWD = 0     # the forward's planes
DEF FPL_BPF = 1     # the filter gradient's planar sums: planes and DY's rows
DEF FPL_BGM = 2     # the filter gradient's planar GEMM: planes, a zero row, DY padded
DEF FPL_TPL = 3     # the transposed conv's planes of the small side


cdef isize _fpl_scratch(const cd_geom* cg, isize rows, int kind,
                        isize itemsize) noexcept nogil:
    """Elements of one band's scratch of `rows` rows for the planar kernel `kind`."""
    if kind == FPL_BPF:
        return (cd_fpl_bpf_scratch_f(cg, rows) if itemsize == 4
                else cd_fpl_bpf_scratch_d(cg, rows))
    if kind == FPL_BGM:
        return (cd_fpl_bgm_scratch_f(cg, rows) if itemsize == 4
                else cd_fpl_bgm_scratch_d(cg, rows))
    if kind == FPL_TPL:
        return cd_tpl_scratch_f(cg, rows) if itemsize == 4 else cd_tpl_scratch_d(cg, rows)
    return cd_fpl_scratch_f(cg, rows) if itemsize == 4 else cd_fpl_scratch_d(cg, rows)


cdef isize _fpl_band_rows(const cd_geom* cg, isize rows, int kind, isize itemsize,
                          isize limit, isize* scratch) noexcept nogil:
    """rows, halved until a band's scratch (_fpl_scratch of kind) is within limit
    elements or the band is one row; that scratch in *scratch."""
    while True:
        scratch[0] = _fpl_scratch(cg, rows, kind, itemsize)
        if rows == 1 or scratch[0] <= limit:
            return rows
        rows = (rows + 1) // 2


cdef isize _fpl_task_rows(isize n_rows, isize width, isize batch, isize task_pixels,
                          int n_threads) noexcept nogil:
    """The rows of a planar task: about task_pixels pixels of rows `width` wide, fewer
    while several threads have under FPL_TASKS_PER_THREAD tasks each (a band only
    decides which planes its outputs read, never a value: the bits do not depend on it;
    one thread keeps the big bands, each row turned into planes about once)."""
    cdef isize rows = max(<isize>1, min(n_rows, task_pixels // max(width, <isize>1)))
    while (n_threads > 1 and rows > 1
           and batch * ((n_rows + rows - 1) // rows) < FPL_TASKS_PER_THREAD * n_threads):
        rows = (rows + 1) // 2
    return rows


cdef int _run_forward_planar(const Geom* g, const floating* X, const floating* W,
                             floating* Y, int n_threads) except -1:
    """The planar forward (forward_planar_fits; src/_fplanar_impl.h): tasks of about
    FPL_TASK_PIXELS output pixels (whole rows of one image; fewer rows while several
    threads have under FPL_TASKS_PER_THREAD tasks each or the planes exceed
    FPL_MAX_SCRATCH elements), each building the planes of the input rows it
    reads in its thread's scratch and summing its outputs there. An output's sum does
    not depend on its task: the bits are the same for every thread count. Returns 1
    without a usable Y when the filter holds Inf or NaN (the kernel skips the padding
    rows, where 0 * Inf must give NaN as in TF: the caller takes im2col + GEMM), else
    0."""
    cdef isize OH = g.small[1], OW = g.small[2], rows, per_img, n_tasks, task, n, oy0
    cdef isize scratch
    cdef int tid
    cdef cd_geom cg
    cdef floating* S = NULL
    cdef isize w_n = g.taps * g.cb * g.cs
    if _nonfinite(W, w_n):
        return 1
    n_threads = _threads_for(g, n_threads)
    _fill_cd_geom(g, &cg)
    rows = _fpl_task_rows(OH, OW, g.batch, FPL_TASK_PIXELS, n_threads)
    rows = _fpl_band_rows(&cg, rows, FPL_FWD, sizeof(floating), FPL_MAX_SCRATCH, &scratch)
    per_img = (OH + rows - 1) // rows
    n_tasks = g.batch * per_img
    n_threads = max(1, min(<isize>n_threads, n_tasks))
    # zeroed once: the planes' indices outside the image are never written (see
    # cd_fplrun_)
    S = <floating*>_ws_take_zero(n_threads * scratch * sizeof(floating))
    if S == NULL:
        raise MemoryError("cdeconv: cannot allocate the planar forward's planes")
    try:
        with nogil:
            for task in prange(n_tasks, schedule='dynamic', num_threads=n_threads):
                tid = threadid()
                n = task // per_img
                oy0 = (task % per_img) * rows
                if floating is float:
                    cd_fpl_run_f(&cg, X, W, Y, n, oy0, min(OH, oy0 + rows),
                                 S + tid * scratch)
                else:
                    cd_fpl_run_d(&cg, X, W, Y, n, oy0, min(OH, oy0 + rows),
                                 S + tid * scratch)
    finally:
        _ws_give(S)
    return 0


#: the planar transposed conv: big pixels per task, about; its planes' scratch per
#: task, at most this many elements while a band has more than one row
DEF TPL_TASK_PIXELS = 4096
DEF TPL_MAX_SCRATCH = 262144


cdef bint _tpl_fits(const Geom* g) noexcept nogil:
    """Whether the planar transposed conv takes g: channels-last, 1-D/2-D (no depth
    padding: see _fpl_fits), one group, 1 to CD_FPL_MAXCO big-side channels, at most
    CD_FPL_MAXKW kernel columns and CD_TPL_MAXS column strides, at most CD_MAX_TAPS
    taps, and the planes of one big row within FPL_MAX_ROW_SCRATCH elements (rows are
    never split)."""
    cdef cd_geom cg
    if not (not g.cfirst and g.groups == 1 and g.k[0] == 1 and g.big[0] == 1
            and g.small[0] == 1 and g.pad[0] == 0 and 1 <= g.cb <= CD_FPL_MAXCO
            and g.k[2] <= CD_FPL_MAXKW and g.s[2] <= CD_TPL_MAXS
            and g.taps <= CD_MAX_TAPS):
        return False
    _fill_cd_geom(g, &cg)
    return cd_tpl_scratch_f(&cg, 1) <= FPL_MAX_ROW_SCRATCH


def transpose_planar_fits(tuple shapes):
    """Whether the planar transposed conv (algo 8) takes this channels-last geometry
    (_tpl_fits)."""
    cdef Geom g
    _make_geom(&g, shapes, False)
    return _tpl_fits(&g)


cdef int _run_transpose_planar(const Geom* g, const floating* X, const floating* W,
                               floating* Y, int n_threads) except -1:
    """The planar transposed conv (transpose_planar_fits; src/_fplanar_impl.h,
    cd_tplrun_): the filter packed (kh, kw, cs, cb) once, then tasks of about
    TPL_TASK_PIXELS big pixels (whole rows of one image; fewer rows while several
    threads have under FPL_TASKS_PER_THREAD tasks each or the planes exceed
    TPL_MAX_SCRATCH elements), each building the planes of the small rows it reads in
    its thread's scratch and summing its big pixels there, each written once. An
    output's sum does not depend on its task: the bits are the same for every thread
    count. Returns 1 without a usable Y when the filter holds Inf or NaN (the planes'
    zeros past the small rows would meet it, 0 * Inf = NaN, where TF has no term: the
    caller takes GEMM + col2im), else 0."""
    cdef isize BH = g.big[1], BW = g.big[2], rows, per_img, n_tasks, task, n, iy0
    cdef isize scratch, taps = g.taps, cb = g.cb, cs = g.cs, t
    cdef int tid
    cdef cd_geom cg
    cdef floating* S = NULL
    cdef floating* Wp = NULL
    cdef isize w_n = taps * cb * cs
    if _nonfinite(W, w_n):
        return 1
    n_threads = _threads_for(g, n_threads)
    _fill_cd_geom(g, &cg)
    rows = _fpl_task_rows(BH, BW, g.batch, TPL_TASK_PIXELS, n_threads)
    rows = _fpl_band_rows(&cg, rows, FPL_TPL, sizeof(floating), TPL_MAX_SCRATCH, &scratch)
    per_img = (BH + rows - 1) // rows
    n_tasks = g.batch * per_img
    n_threads = max(1, min(<isize>n_threads, n_tasks))
    Wp = <floating*>_ws_take(w_n * sizeof(floating))
    # zeroed once: the planes' indices outside the small rows are never written
    S = <floating*>_ws_take_zero(n_threads * scratch * sizeof(floating))
    try:
        if S == NULL or Wp == NULL:
            raise MemoryError("cdeconv: cannot allocate the planar transposed conv's planes")
        with nogil:
            # (kh, kw, cb, cs) -> (kh, kw, cs, cb): each small channel's cb filter values
            # side by side, broadcast in turn
            for t in range(taps):
                if floating is float:
                    cd_transpose_f(Wp + t * cs * cb, cb, cb, cs, W + t * cb * cs, cs)
                else:
                    cd_transpose_d(Wp + t * cs * cb, cb, cb, cs, W + t * cb * cs, cs)
            for task in prange(n_tasks, schedule='dynamic', num_threads=n_threads):
                tid = threadid()
                n = task // per_img
                iy0 = (task % per_img) * rows
                if floating is float:
                    cd_tpl_run_f(&cg, X, Wp, Y, n, iy0, min(BH, iy0 + rows),
                                 S + tid * scratch)
                else:
                    cd_tpl_run_d(&cg, X, Wp, Y, n, iy0, min(BH, iy0 + rows),
                                 S + tid * scratch)
    finally:
        _ws_give(S)
        _ws_give(Wp)
    return 0


DEF ADD_PARTS_BLOCK = 1024     # _add_parts: elements of dw summed at a time


cdef void _add_parts(floating* parts, isize n_parts, isize kc, isize cs,
                     bint transposed, floating* dw, int n_threads) noexcept nogil:
    """dw[j] := the n_parts partial gradients of kc elements each, added in part order
    (bitwise the same for every thread count). transposed: the parts hold DW^T (cs, K),
    dw[j] is (k, n) = (j // cs, j % cs); they are summed into the first part, which is
    then turned round into dw. (Otherwise the parts are left as they were.)"""
    cdef isize j, t, jb, j0, j1
    cdef isize K = kc // cs
    cdef floating* out = parts if transposed else dw
    cdef const floating* p
    # blocks of ADD_PARTS_BLOCK elements, each part's block added in turn (a stream per
    # part, the block in L1). Element by element, the parts were strided streams: 64
    # parts 24 % of a 16-image 3x3 filter gradient in perf; turned round on the way,
    # DW^T rows 8 KiB apart that fell in one L1 set, 17 % of PyTorch-style g2's at
    # batch 16, stalled on those loads.
    for jb in prange((kc + ADD_PARTS_BLOCK - 1) // ADD_PARTS_BLOCK, schedule='static',
                     num_threads=n_threads):
        j0 = jb * ADD_PARTS_BLOCK
        j1 = min(kc, j0 + ADD_PARTS_BLOCK)
        if not transposed:
            for j in range(j0, j1):
                out[j] = parts[j]
        for t in range(1, n_parts):
            p = parts + t * kc
            for j in range(j0, j1):
                out[j] = out[j] + p[j]
    if transposed:
        # DW^T (cs, K) -> dw (K, cs), 16 rows of DW^T a task
        _transpose_blocks(dw, cs, cs, K, parts, K, 16, n_threads)


#: the planar filter gradient: 0 never, 1 by its rule, 2 the planar sums wherever they
#: fit, 3 the planar GEMM wherever it fits (set_planar_filter_gradient)
cdef int _BPF_PLANAR = 1
DEF FPL_BPF_MAX_PARTS = 16777216  # the bands' partial gradients, at most this many bytes
#: the rule: input channels x output channels at most this for the planar sums.
#: Measured (python tools/forward_rules.py --planar, forced against the other
#: filter-gradient kernels, 1 / 2 threads, 2026-12-03): inside it 1.0-8.2x (448x448x3 ->
#: 3 b1 2.85 / 1.84, b16 2.4 / 1.8; 56x56x32 -> 1 b1 1.32 / 1.09, b16 1.25 / 1.78;
#: 224x224x64 -> 3 1.35 / 1.75; 480x640x1 -> 1 9x9 8.2 / 5.5; 64x64x256 -> 1 0.97 /
#: 1.01), outside it 0.43-0.67x where the GEMM is deep and wide enough for the
#: micro-kernel (64x64x256 -> 8, 32x32x512 -> 4, 16x28x28x64 -> 8, 64x64x128 -> 3 5x5)
#: and even on 128x128x64 -> 8 (1.00 / 1.45): one plane load and CO loads of DY per CO
#: multiply-adds
DEF FPL_BPF_MAX_CHANNELS = 256
#: the planar GEMM's bands: at least this many per call where the rows allow (shapes
#: only, so 2 threads share a batch-1 layer without changing a bit)
DEF FPLG_MIN_BANDS = 8
DEF FPLG_MIN_BAND_PIXELS = 128  # ... while a band keeps at least this many pixels
#: the planar GEMM's rule (_bpf_planar_gemm_pays). Measured (python
#: tools/forward_rules.py --planar-gemm: forced against the other filter-gradient kernels,
#: medians of 3, AVX-512, 1 / 2 threads). 2026-12-03, up to 16 input channels: 1.1-5.0x /
#: 1.1-4.2x (ZFNet turned round b1 1.95 / 2.09, b16 1.53 / 1.70; DCGAN TF g4 b1 1.37 /
#: 1.35, b16 2.18 / 1.73; PyTorch g4 1.63-1.71 / 1.81-1.87; FSRCNN b1 1.80 / 1.65;
#: 128x128x16 -> 32 s1 2.26 / 1.79; 64x64x1 -> 256 4.98 / 4.20), 16 input channels at
#: batch 16 the exception (64x64x16 -> 64 0.94 / 0.89). Later, 17-64 input channels,
#: once _add_parts streamed each part's block in turn (before, its strided loop was 24 %
#: of the stride-1 3x3 layer at batch 16 in perf, and that layer lost, 0.80 / 0.92):
#: stride-1 3x3 c64 b1 1.36-1.46 / 1.20-1.52, b16 1.13-1.38 / 1.12-1.22; 56x56x32 -> 64
#: 1.35-1.38 / 1.41-1.43; U-Net up4 b1 1.33-1.40 / 1.41-1.81; up3 b1 (128 output channels)
#: 0.89-1.18 / 1.05-1.30; and from /tmp runs 4x28x28x64 -> 64 1.28-1.38 / 1.40-1.61,
#: 112x112x32 -> 64 s2 1.21-1.30 / 1.17-1.37, 64x64x48 -> 48 1.53-1.55 / 1.55-1.67;
#: rows of 14-16 pixels lose or tie (PyTorch g3 b1 0.81-0.94 / 0.95-1.01, 14x14x64 -> 64
#: 0.88-1.22 / 0.72-0.81), hence FPLG_DEEP_MIN_ROW; 128-512 input channels 0.07-1.08
#: (PyTorch g2 b1 0.33-0.48: 8-pixel rows, the reduction too short for each tile of DW);
#: one output channel (the planar sums: 0.62-0.76)
DEF FPLG_MAX_IN_CHANNELS = 64
DEF FPLG_MIN_ROW = 8
DEF FPLG_DEEP_IN_CHANNELS = 17
DEF FPLG_DEEP_MIN_ROW = 24


def set_planar_filter_gradient(int mode):
    """Test and tuning hook: the filter gradient takes the planar kernels by their rule
    (1, the default: _bpf_planar_rows), the planar sums wherever they fit (2), the
    planar GEMM wherever it fits (3) or neither (0). Returns the previous mode. Set it
    between calls, never while kernels run."""
    global _BPF_PLANAR
    if mode not in (0, 1, 2, 3):
        raise ValueError(f"mode must be 0, 1, 2 or 3, got {mode}")
    old, _BPF_PLANAR = _BPF_PLANAR, mode
    return old


cdef bint _bpf_planar_gemm_pays(const Geom* g) noexcept nogil:
    """The planar GEMM's rule: <= FPLG_MAX_IN_CHANNELS input channels and output rows
    of >= FPLG_MIN_ROW pixels (each band row one stretch of the micro-kernel's
    reduction), >= FPLG_DEEP_MIN_ROW from FPLG_DEEP_IN_CHANNELS input channels."""
    return (g.cb <= FPLG_MAX_IN_CHANNELS and g.small[2] >= FPLG_MIN_ROW
            and (g.cb < FPLG_DEEP_IN_CHANNELS or g.small[2] >= FPLG_DEEP_MIN_ROW))


cdef isize _bpf_planar_rows(const Geom* g, isize itemsize, bint* gemm) noexcept nogil:
    """The band rows of the planar filter gradient for g, or 0 where it does not take
    g, and in *gemm which kernel: the planar sums (cd_fpl_bpf) for g _fpl_fits with
    input x output channels <= FPL_BPF_MAX_CHANNELS, the planar GEMM (cd_fpl_bgm) for
    g _fpl_fits with any output channels where _bpf_planar_gemm_pays (either wherever it
    fits when forced, neither when off); none where the bands' partial gradients exceed
    FPL_BPF_MAX_PARTS bytes. The bands depend only on the shapes (their partial sums
    are added in band order, so they fix the bits): whole rows of about FPL_TASK_PIXELS
    output pixels (the GEMM: at most CD_FPLG_MAXROWS, and fewer until there are
    FPLG_MIN_BANDS bands while a band keeps FPLG_MIN_BAND_PIXELS), fewer while the
    scratch exceeds FPL_MAX_SCRATCH elements."""
    cdef cd_geom cg
    cdef isize rows, scratch
    # the planes fit for any output channels; the planar sums take up to CD_FPL_MAXCO
    if _BPF_PLANAR == 0 or g.cfirst or not _fpl_fits(g, g.cs):
        return 0
    cdef bint sums = g.cs <= CD_FPL_MAXCO
    if _BPF_PLANAR == 2:
        if not sums:
            return 0
        gemm[0] = False
    elif _BPF_PLANAR == 3:
        gemm[0] = True
    elif sums and g.cb * g.cs <= FPL_BPF_MAX_CHANNELS:
        gemm[0] = False
    elif _bpf_planar_gemm_pays(g):
        gemm[0] = True
    else:
        return 0
    _fill_cd_geom(g, &cg)
    # one thread's bands: they fix the order of the parts' sums, so never the thread count
    rows = _fpl_task_rows(g.small[1], g.small[2], g.batch, FPL_TASK_PIXELS, 1)
    if gemm[0]:
        rows = min(rows, <isize>CD_FPLG_MAXROWS)
        while (rows > 1 and g.batch * ((g.small[1] + rows - 1) // rows) < FPLG_MIN_BANDS
               and (rows + 1) // 2 * g.small[2] >= FPLG_MIN_BAND_PIXELS):
            rows = (rows + 1) // 2
    rows = _fpl_band_rows(&cg, rows, FPL_BGM if gemm[0] else FPL_BPF, itemsize,
                          FPL_MAX_SCRATCH, &scratch)
    # (16 MiB: more parts cost more to add than the GEMM saves, U-Net up4 at batch 16
    # 0.72-0.81x with 16.8 MB of them)
    if (g.batch * ((g.small[1] + rows - 1) // rows) * g.taps * g.cb * g.cs * itemsize
            > FPL_BPF_MAX_PARTS):
        return 0
    return rows


def planar_filter_gradient(tuple shapes, str dtype="float32"):
    """Which planar kernel the filter gradient of this geometry takes (channels-last):
    0 neither, 1 the planar sums, 2 the planar GEMM (_bpf_planar_rows); for tests and
    tools."""
    cdef Geom g
    cdef bint gemm = False
    _make_geom(&g, shapes, False)
    if not _bpf_planar_rows(&g, 4 if dtype == "float32" else 8, &gemm):
        return 0
    return 2 if gemm else 1


cdef int _run_bpf_planar(Geom* g, isize rows, bint gemm, const floating* X,
                         const floating* DY, floating* DW, int n_threads) except -1:
    """The filter gradient on the planar forward's planes (src/_fplanar_impl.h,
    cd_fpl_bpf, or with gemm cd_fpl_bgm): tasks of `rows` output rows of one image
    (_bpf_planar_rows), each summing the band's gradient into its own part, dynamically
    scheduled; then DW[j] := the parts added in band order. Bitwise the same for every
    thread count. Returns 1 without touching DW when the planar sums meet a DY holding
    Inf or NaN (the kernel skips the padding rows, where 0 * Inf must give NaN: the
    caller takes im2col + GEMM), else 0."""
    cdef isize OH = g.small[1], per_img, n_tasks, task, n, oy0, scratch
    cdef isize kc = g.taps * g.cb * g.cs
    cdef isize dy_n = g.batch * g.small[1] * g.small[2] * g.cs
    cdef int tid
    cdef cd_geom cg
    cdef floating* S = NULL
    cdef floating* parts = NULL
    if not gemm and _nonfinite(DY, dy_n):
        return 1
    n_threads = _threads_for(g, n_threads)
    _fill_cd_geom(g, &cg)
    scratch = _fpl_scratch(&cg, rows, FPL_BGM if gemm else FPL_BPF, sizeof(floating))
    per_img = (OH + rows - 1) // rows
    n_tasks = g.batch * per_img
    n_threads = max(1, min(<isize>n_threads, n_tasks))
    S = <floating*>_ws_take_zero(n_threads * scratch * sizeof(floating))
    parts = <floating*>_ws_take(n_tasks * kc * sizeof(floating))
    try:
        if S == NULL or parts == NULL:
            raise MemoryError("cdeconv: cannot allocate the planar filter gradient's planes")
        with nogil:
            for task in prange(n_tasks, schedule='dynamic', num_threads=n_threads):
                tid = threadid()
                n = task // per_img
                oy0 = (task % per_img) * rows
                if gemm:
                    if floating is float:
                        cd_fpl_bgm_f(&cg, X, DY, parts + task * kc, n, oy0,
                                     min(OH, oy0 + rows), rows, S + tid * scratch)
                    else:
                        cd_fpl_bgm_d(&cg, X, DY, parts + task * kc, n, oy0,
                                     min(OH, oy0 + rows), rows, S + tid * scratch)
                elif floating is float:
                    cd_fpl_bpf_f(&cg, X, DY, parts + task * kc, n, oy0,
                                 min(OH, oy0 + rows), rows, S + tid * scratch)
                else:
                    cd_fpl_bpf_d(&cg, X, DY, parts + task * kc, n, oy0,
                                 min(OH, oy0 + rows), rows, S + tid * scratch)
            _add_parts(parts, n_tasks, kc, g.cs, False, DW, n_threads)
    finally:
        _ws_give(S)
        _ws_give(parts)
    return 0


# ---------------------------------------------------------------------------------
# Python entry points (arguments already validated by cdeconv._geometry)
# ---------------------------------------------------------------------------------

def conv_transpose(const floating[::1] x, const floating[::1] w, floating[::1] y,
                   tuple shapes, bint channels_first, int n_threads,
                   Py_ssize_t chunk_bytes, int algo=0):
    """y (big side, flat, overwritten) := transposed convolution of x with w.

    x : IN  flat small-side array (batch, [C], D, H, W, [C])
    w : IN  flat filter (kd, kh, kw, big_c / groups, small_c)
    y : OUT flat big-side array, every element written
    shapes : (batch, groups, cb, cs, small[3], big[3], k[3], s[3], d[3], pad[3])
    algo : 0 GEMM + col2im; 1 direct rows; 2 dot; 3 implicit GEMM; 4 pixel lanes;
           5 phase rows; 6 Winograd phases; 7 scatter rows; 8 planar (1-8 channels-last only,
           run on a non-empty x; chosen by cdeconv._driver)
    """
    cdef Geom g
    cdef int fallback = 0
    _make_geom(&g, shapes, channels_first)
    if algo != 0:
        if channels_first:
            raise ValueError("the direct, dot, igemm, pixel-lanes, phase-rows, Winograd and "
                             "scatter-rows kernels "
                             "are channels-last only")
        if g.taps > CD_MAX_TAPS:
            raise ValueError(f"the direct, dot and igemm kernels take at most "
                             f"{CD_MAX_TAPS} taps")
        if y.shape[0] == 0:
            return
        if x.shape[0] == 0:
            # no input pixels (e.g. a zero-size spatial axis): every output element is a
            # sum of nothing = 0, for every kernel alike
            with nogil:
                memset(&y[0], 0, y.shape[0] * sizeof(floating))
            return
        if algo == 8:
            if not _tpl_fits(&g):
                raise ValueError("the planar transposed conv takes 1-D/2-D layers of one "
                                 "group with 1 to 8 output channels, at most 64 kernel "
                                 "columns and column stride 8")
            fallback = _run_transpose_planar(&g, &x[0], &w[0], &y[0], n_threads)
        elif algo == 7:
            if not scatter_rows_fits(shapes):
                raise ValueError("the scatter-rows kernel takes no depth taps, strides or"
                                 " padding")
            _run_scatter_rows(&g, &x[0], &w[0], &y[0], n_threads)
        elif algo == 6:
            fallback = _run_winograd(&g, &x[0], &w[0], &y[0], n_threads)
        elif algo == 5:
            fallback = _run_phase_rows(&g, &x[0], &w[0], &y[0], n_threads)
        elif algo == 4:
            _run_pixel_lanes(&g, &x[0], &w[0], &y[0], n_threads)
        elif algo == 3:
            fallback = _run_igemm(&g, &x[0], &w[0], &y[0], n_threads)
        elif algo == 2:
            _run_dot(&g, &x[0], &w[0], &y[0], n_threads)
        else:
            _run_direct(&g, &x[0], &w[0], &y[0], n_threads)
        if not fallback:
            return
        # igemm, phase rows, Winograd and planar refused a filter holding Inf or NaN:
        # GEMM + col2im (below) drops the taps that fall past the edge, as TF does (see
        # _run_igemm)
    _run(&g, &x[0] if x.shape[0] else NULL, &w[0], &y[0] if y.shape[0] else NULL,
         y.shape[0], True, n_threads, chunk_bytes)


def conv_forward(const floating[::1] x, const floating[::1] w, floating[::1] y,
                 tuple shapes, bint channels_first, int n_threads,
                 Py_ssize_t chunk_bytes, int algo=0):
    """y (small side, flat, overwritten) := convolution (cross-correlation) of x with w.

    x : IN  flat big-side array;  w : IN  flat filter (kd, kh, kw, big_c/groups, small_c)
    y : OUT flat small-side array, every element written
    algo : 0 im2col + GEMM; 3 implicit GEMM; 5 tap rows (forward_taps_fits); 6 planar
           (forward_planar_fits) (3, 5 and 6 channels-last, non-empty x only; chosen by
           cdeconv._driver)
    """
    cdef Geom g
    _make_geom(&g, shapes, channels_first)
    if algo != 0:
        if algo not in (3, 5, 6) or channels_first:
            raise ValueError("the forward kernels are 0, 3, 5 and 6 (3, 5, 6 "
                             "channels-last)")
        if g.taps > CD_MAX_TAPS:
            raise ValueError(f"the igemm kernel takes at most {CD_MAX_TAPS} taps")
        if algo == 5 and not forward_taps_fits(shapes):
            raise ValueError("the tap-rows forward takes 1-D/2-D, one group, no width "
                             f"dilation, at most {CD_GT_MAX_TAPS} kernel rows")
        if algo == 6 and not forward_planar_fits(shapes):
            raise ValueError("the planar forward takes 1-D/2-D, one group, 1 to "
                             f"{CD_FPL_MAXCO} output channels, at most {CD_FPL_MAXKW} "
                             f"kernel columns, rows of <= {FPL_MAX_ROW_SCRATCH} plane "
                             "elements")
        if y.shape[0] != 0 and x.shape[0] != 0:
            if algo == 6:
                if not _run_forward_planar(&g, &x[0], &w[0], &y[0], n_threads):
                    return
                # an Inf or NaN filter: im2col + GEMM (below) multiplies the padding
            elif algo == 5:
                _run_forward_taps(&g, &x[0], &w[0], &y[0], n_threads)
                return
            else:
                _run_igemm(&g, &x[0], &w[0], &y[0], n_threads, True)
                return
    _run(&g, &x[0] if x.shape[0] else NULL, &w[0], &y[0] if y.shape[0] else NULL,
         y.shape[0], False, n_threads, chunk_bytes)


def conv_backprop_filter(const floating[::1] x, const floating[::1] dy,
                         floating[::1] dw, tuple shapes, bint channels_first,
                         int n_threads, Py_ssize_t chunk_bytes):
    """dw (flat filter, overwritten) := gradient of <conv(x, w), dy> w.r.t. w.

    x : IN flat big side;  dy : IN flat small side;  dw : OUT (kd, kh, kw, cb, G*cs)
    An empty x or dy gives a zero gradient (never uninitialised memory).
    """
    cdef Geom g
    _make_geom(&g, shapes, channels_first)
    n_threads = _threads_for(&g, n_threads)
    cdef isize rows = _chunk_rows(&g, sizeof(floating), chunk_bytes)
    cdef isize wc = _chunk_cols(&g, sizeof(floating), chunk_bytes)
    cdef isize n_rows = g.batch * g.small[0] * g.small[1]
    cdef isize work_n = 0
    cdef floating* work = NULL
    if dw.shape[0] == 0:
        return
    if n_rows == 0 or x.shape[0] == 0 or dy.shape[0] == 0:
        dw[:] = 0
        return
    cdef bint fpl_gemm = False
    cdef isize fpl_rows = _bpf_planar_rows(&g, sizeof(floating), &fpl_gemm)
    if fpl_rows and not _run_bpf_planar(&g, fpl_rows, fpl_gemm, &x[0], &dy[0], &dw[0],
                                        n_threads):
        return
    cdef bint direct = _is_direct(&g)
    if not direct:
        work_n = _work_elems(&g, rows, wc, n_rows)
    cdef int lanes = _MAX_TILES
    cdef isize kc = g.taps * g.cb * g.groups * g.cs, n_chunks = 0, r0 = 0, i, lane
    cdef isize* starts = NULL
    cdef floating* parts = NULL
    cdef floating* lane_work = NULL
    cdef floating* own_buf = NULL
    cdef int own = _bpf_own_fits(&g)
    cdef isize pixels = _chunk_pixels(&g, rows, wc, n_rows), own_n
    cdef isize blk = cd_ig_block_f() if floating is float else cd_ig_block_d()
    if (lanes > 1 and not direct and wc == g.small[2]
            and kc * lanes * <isize>sizeof(floating) <= LANE_DW_BYTES
            and work_n * lanes * <isize>sizeof(floating) <= LANE_WORK_BYTES):
        while r0 < n_rows:
            r0 = _chunk_end(&g, r0, rows, n_rows)
            n_chunks += 1
    if n_chunks < lanes:
        # one column buffer (none for the direct GEMM); the lanes below have their own
        if not direct:
            work = <floating*>_ws_take(work_n * sizeof(floating))
            if work == NULL:
                raise MemoryError(f"cdeconv: cannot allocate a "
                                  f"{work_n * sizeof(floating)}-byte column buffer")
        # the micro-kernel's scratch, kept between calls too (NULL: allocated inside)
        own_n = _bpf_scratch_elems(&g, own, pixels, n_threads, True, blk)
        if own_n:
            own_buf = <floating*>_ws_take(own_n * sizeof(floating))
        try:
            with nogil:
                _conv_backprop_filter(&g, &x[0], &dy[0], &dw[0], work, rows, wc,
                                      n_threads, own_buf)
        finally:
            _ws_give(work)
            _ws_give(own_buf)
        return
    # a deep GEMM (the pixels) with a small result: split the pixels, not the result.
    # Lanes (fixed per machine, never per thread count) each sum their own chunks into a
    # private gradient; the lanes are then added in lane order: bitwise reproducible.
    try:
        starts = <isize*>malloc((n_chunks + 1) * sizeof(isize))
        parts = <floating*>_ws_take(lanes * kc * sizeof(floating))
        lane_work = <floating*>_ws_take(lanes * work_n * sizeof(floating))
        if starts == NULL or parts == NULL or lane_work == NULL:
            raise MemoryError("cdeconv: cannot allocate the filter-gradient lanes")
        own_n = _bpf_scratch_elems(&g, own, pixels, 1, False, blk)
        if own_n:
            own_buf = <floating*>_ws_take(lanes * own_n * sizeof(floating))
        starts[0] = 0
        for i in range(n_chunks):
            starts[i + 1] = _chunk_end(&g, starts[i], rows, n_rows)
        with nogil:
            for lane in prange(lanes, schedule='static', num_threads=min(n_threads, lanes)):
                _bpf_lane(&g, &x[0], &dy[0], parts + lane * kc, lane_work + lane * work_n,
                          starts, n_chunks, lane, lanes, own,
                          own_buf + lane * own_n if own_buf != NULL else NULL)
            _add_parts(parts, lanes, kc, g.cs, own == 1, &dw[0], n_threads)
    finally:
        free(starts)
        _ws_give(parts)
        _ws_give(lane_work)
        _ws_give(own_buf)


cdef void _ig_pack_blocks(const cd_geom* cg, const floating* W, floating* Wp,
                          isize n_cblk, isize blk, isize ng, int n_threads, bint forward,
                          int* bad) noexcept nogil:
    """Pack the filter's ng (group, block) panels for the igemm micro-kernel (the
    transposed layout of cd_ig_pack, or with ``forward`` cd_igf_pack's), in parallel
    over the blocks. Transposed, bad[i] (unless NULL) := whether block i holds Inf or
    NaN."""
    cdef isize task, grp, c0
    cdef int nonfinite
    for task in prange(ng, schedule='static', num_threads=min(<isize>n_threads, ng)):
        grp = task // n_cblk
        c0 = (task % n_cblk) * blk
        if forward:
            if floating is float:
                cd_igf_pack_f(cg, W, Wp, grp, c0)
            else:
                cd_igf_pack_d(cg, W, Wp, grp, c0)
        else:
            if floating is float:
                nonfinite = cd_ig_pack_f(cg, W, Wp, grp, c0)
            else:
                nonfinite = cd_ig_pack_d(cg, W, Wp, grp, c0)
            if bad != NULL:
                bad[task] = nonfinite


DEF DR_TASK_ROWS = 16   # big rows per direct-rows task, at most


cdef int _run_direct(Geom* g, const floating* X, const floating* W, floating* Y,
                     int n_threads) except -1:
    """The direct-rows kernel (src/_dot.h, cd_dr_*): the filter packed as for igemm,
    then every (group, block of big rows) task, dynamically scheduled. Each output is
    written once, by one task, in a fixed order (taps, then channels): the schedule
    cannot change a bit of the result."""
    cdef isize n_rows = g.batch * g.big[0] * g.big[1]
    cdef isize blk, n_cblk, wp_n, rows, n_rb, n_tasks, task, grp, r0
    cdef cd_geom cg
    cdef char* raw = NULL
    cdef floating* Wp
    n_threads = _threads_for(g, n_threads)
    _fill_cd_geom(g, &cg)
    _ig_layout(g, W, False, &blk, &n_cblk, &wp_n)
    # about 4 tasks per thread, at most DR_TASK_ROWS rows each
    rows = max(<isize>1, min(<isize>DR_TASK_ROWS, n_rows // (4 * n_threads)))
    n_rb = (n_rows + rows - 1) // rows
    n_tasks = g.groups * n_rb
    try:
        raw = <char*>_ws_take(wp_n * sizeof(floating) + 64)
        if raw == NULL:
            raise MemoryError(f"cdeconv: cannot allocate the {wp_n * sizeof(floating)}"
                              "-byte packed filter")
        Wp = <floating*>_align64(raw)
        with nogil:
            # igemm's packing (kernel == stride layers with 256-512 input channels have
            # 0.5-2 MiB filters); a tap past the edge is never read here, so an Inf/NaN
            # filter needs no other kernel
            _ig_pack_blocks(&cg, W, Wp, n_cblk, blk, g.groups * n_cblk, n_threads,
                            False, NULL)
            for task in prange(n_tasks, schedule='dynamic',
                               num_threads=min(<isize>n_threads, n_tasks)):
                grp = task // n_rb
                r0 = (task % n_rb) * rows
                if floating is float:
                    cd_dr_run_f(&cg, X, Wp, Y, grp, r0, min(n_rows, r0 + rows))
                else:
                    cd_dr_run_d(&cg, X, Wp, Y, grp, r0, min(n_rows, r0 + rows))
    finally:
        _ws_give(raw)
    return 0


DEF DOT_W_BYTES = 262144    # filter bytes one dot task should keep in L2


#: the most taps (kd * kh * kw) the dot kernel takes (its per-row tap lists)
DOT_MAX_TAPS = CD_MAX_TAPS


_DOT_ISAS = ("baseline", "avx2", "avx512")


def dot_isa():
    """The instruction set of the dot kernel on this CPU (avx512, avx2 or baseline)."""
    return cd_dot_isa().decode()


def cap_dot_isa(str name):
    """Test hook: run the dot kernel with at most instruction set ``name`` (baseline,
    avx2 or avx512 = the default, the best the CPU has); returns the one now used.
    Set it between calls, never while kernels run."""
    if name not in _DOT_ISAS:
        raise ValueError(f"name must be one of {_DOT_ISAS}, got {name!r}")
    return _DOT_ISAS[cd_dot_cap_isa(_DOT_ISAS.index(name))]


cdef void _fill_cd_geom(const Geom* g, cd_geom* cg) noexcept nogil:
    """The C kernels' view of the geometry (src/_dot.h)."""
    cdef int i
    cg.groups = g.groups
    cg.cb = g.cb
    cg.cs = g.cs
    for i in range(3):
        cg.small[i] = g.small[i]
        cg.big[i] = g.big[i]
        cg.k[i] = g.k[i]
        cg.s[i] = g.s[i]
        cg.d[i] = g.d[i]
        cg.pad[i] = g.pad[i]


cdef int _run_dot(Geom* g, const floating* X, const floating* W, floating* Y,
                  int n_threads) except -1:
    """The dot kernel over every (group, channel block, big row) task (src/_dot.h).

    Tasks run channel block by channel block, rows inside: the filter slice of one
    block (taps x block x Cs) stays in cache while a thread sweeps its rows, so a large
    filter is streamed from memory once. The partition depends only on the shapes."""
    cdef isize n_big_rows = g.batch * g.big[0] * g.big[1]
    cdef isize per_c = g.taps * g.cs * sizeof(floating)
    cdef isize cblk, n_cblk, n_tasks, task, grp, cb_i, R, rest, c0, c1, nblk
    cdef cd_geom cg
    cdef cd_colblk* blk = NULL
    cdef isize* kws = NULL
    cdef isize* iws = NULL
    n_threads = _threads_for(g, n_threads)
    _fill_cd_geom(g, &cg)
    cblk = max(<isize>1, DOT_W_BYTES // max(per_c, <isize>1))
    if cblk >= 4:
        cblk -= cblk % 4
    cblk = min(g.cb, max(cblk, <isize>4))
    n_cblk = (g.cb + cblk - 1) // cblk
    n_tasks = g.groups * n_cblk * n_big_rows
    # the column plan (the same for every row), for blocks of min(4, cblk) channels
    blk = <cd_colblk*>malloc(max(<isize>1, cd_dot_plan_blocks(&cg)) * sizeof(cd_colblk))
    kws = <isize*>malloc(max(<isize>1, cd_dot_plan_taps(&cg)) * sizeof(isize))
    iws = <isize*>malloc(max(<isize>1, cd_dot_plan_taps(&cg)) * sizeof(isize))
    try:
        if blk == NULL or kws == NULL or iws == NULL:
            raise MemoryError("cdeconv: cannot allocate the dot kernel's column plan")
        nblk = cd_dot_plan(&cg, min(<isize>4, cblk), blk, kws, iws)
        with nogil:
            for task in prange(n_tasks, schedule='static',
                               num_threads=min(<isize>n_threads, n_tasks)):
                grp = task // (n_cblk * n_big_rows)
                rest = task % (n_cblk * n_big_rows)
                cb_i = rest // n_big_rows
                R = rest % n_big_rows
                c0 = cb_i * cblk
                c1 = min(g.cb, c0 + cblk)
                if floating is float:
                    cd_dot_row_f(&cg, X, W, Y, R, grp, c0, c1, blk, nblk, kws, iws)
                else:
                    cd_dot_row_d(&cg, X, W, Y, R, grp, c0, c1, blk, nblk, kws, iws)
    finally:
        free(blk)
        free(kws)
        free(iws)
    return 0


cdef inline void _ig_widths(const floating* like, isize* block, isize* vl) noexcept nogil:
    """The widest channel panel and the vector length of the igemm instantiation that
    will run for this dtype (the packed layouts depend on them)."""
    if floating is float:
        block[0] = cd_ig_block_f()
        vl[0] = cd_ig_vl_f()
    else:
        block[0] = cd_ig_block_d()
        vl[0] = cd_ig_vl_d()


DEF IG_TASK_OUTPUTS = 96   # outputs per phase per igemm task (a multiple of 6 and 8 rows)
DEF IG_MIN_TASK_OUTPUTS = 24   # ... down to this when that leaves < 8 tasks per thread


cdef inline void _ig_layout(const Geom* g, const floating* like, bint forward,
                            isize* blk, isize* n_cblk, isize* wp_n) noexcept nogil:
    """The packed filter of the igemm micro-kernel (cd_ig_pack, or with ``forward``
    cd_igf_pack): the panel width blk, the panels per group n_cblk (the output channels
    rounded up to the vector length, in blocks of blk) and its elements wp_n."""
    cdef isize vl, cop
    cdef isize c_out = g.cs if forward else g.cb
    cdef isize c_in = g.cb if forward else g.cs
    _ig_widths(like, blk, &vl)
    cop = (c_out + vl - 1) // vl * vl
    n_cblk[0] = (cop + blk[0] - 1) // blk[0]
    wp_n[0] = g.groups * g.taps * cop * c_in


cdef inline char* _align64(char* raw) noexcept nogil:
    """The first 64-byte boundary in raw (allocated 64 bytes longer): no vector load of
    the packed filter splits a cache line."""
    return raw + (64 - <size_t>raw % 64) % 64


cdef inline isize _ig_run_length(isize n_out, isize ng, int n_threads) noexcept nogil:
    """Outputs per igemm task: IG_TASK_OUTPUTS, shortened (in steps of 24 = whole 6- and
    8-row tiles) until ng blocks x the runs give each thread about 8 tasks: a batch-1
    layer has only a few runs of 96 (e.g. 3 for a 16x16 input), which left a thread
    idle. An output's arithmetic does not depend on its tile or task, so the length may
    follow the thread count without changing a bit of the result."""
    cdef isize want = n_out * ng // (8 * max(n_threads, 1))
    want -= want % IG_MIN_TASK_OUTPUTS
    return min(<isize>IG_TASK_OUTPUTS, max(<isize>IG_MIN_TASK_OUTPUTS, want))


cdef int _run_igemm(Geom* g, const floating* X, const floating* W, floating* Y,
                    int n_threads, bint forward=False) except -1:
    """The implicit-GEMM kernels (src/_dot.h): transposed (cd_ig_*) or, with
    ``forward``, the forward conv (cd_igf_*). Pack the filter into output-channel panels
    (parallel over (group, block)), then every (group, block, run) task, dynamically
    scheduled. Transposed, run r is outputs [r * TB, (r + 1) * TB) (TB from
    _ig_run_length) of every phase: they read about the same small-side rows (in cache
    from one phase to the next) and write one stretch of the big side (threads never
    write neighbouring pixels, so no false sharing); forward, it is those small-side
    pixels. Each output is computed by one task in a fixed order (taps, then channels):
    the schedule cannot change a bit of the result. Transposed, returns 1 without
    writing Y when the filter holds Inf or NaN (see cd_ig_pack: the caller takes
    GEMM + col2im), else 0."""
    cdef isize n_small = g.batch * g.small[0] * g.small[1] * g.small[2]
    # the reduction's channels (a zero row of them for taps outside the small side)
    cdef isize c_in = g.cb if forward else g.cs
    cdef isize blk, n_cblk, n_ph, ph, L, j0, a
    cdef isize n_tasks, task, grp, cb_i, rest, r, wp_n, ng, tb, n_max = 0
    cdef isize p[3]
    cdef cd_geom cg
    cdef char* raw = NULL
    cdef floating* Wp
    cdef floating* zero = NULL
    cdef isize* n_out = NULL
    cdef int* bad = NULL
    n_threads = _threads_for(g, n_threads)
    _fill_cd_geom(g, &cg)
    _ig_layout(g, W, forward, &blk, &n_cblk, &wp_n)
    n_ph = 1 if forward else g.s[0] * g.s[1] * g.s[2]
    ng = g.groups * n_cblk
    try:
        raw = <char*>_ws_take(wp_n * sizeof(floating) + 64)
        zero = <floating*>calloc(max(c_in, <isize>1), sizeof(floating))
        n_out = <isize*>malloc(n_ph * sizeof(isize))
        bad = <int*>calloc(ng, sizeof(int))
        if raw == NULL or zero == NULL or n_out == NULL or bad == NULL:
            raise MemoryError(f"cdeconv: cannot allocate the {wp_n * sizeof(floating)}"
                              "-byte packed filter")
        Wp = <floating*>_align64(raw)
        # a phase has ceil((big - p) / s) outputs per axis (forward: the small side)
        for ph in range(n_ph):
            if forward:
                n_out[ph] = n_small
            else:
                p[2] = ph % g.s[2]
                p[1] = (ph // g.s[2]) % g.s[1]
                p[0] = ph // (g.s[2] * g.s[1])
                n_out[ph] = g.batch
                for a in range(3):
                    n_out[ph] *= ((g.big[a] - p[a] + g.s[a] - 1) // g.s[a]
                                  if p[a] < g.big[a] else 0)
            n_max = max(n_max, n_out[ph])
        tb = _ig_run_length(n_max, ng, n_threads)
        L = (n_max + tb - 1) // tb
        n_tasks = ng * L
        with nogil:
            _ig_pack_blocks(&cg, W, Wp, n_cblk, blk, ng, n_threads, forward, bad)
        if not forward:
            for task in range(ng):
                if bad[task]:
                    return 1
        with nogil:
            for task in prange(n_tasks, schedule='dynamic',
                               num_threads=min(<isize>n_threads, n_tasks)):
                grp = task // (n_cblk * L)
                rest = task % (n_cblk * L)
                cb_i = rest // L
                r = rest % L
                j0 = r * tb
                for ph in range(n_ph):
                    if j0 >= n_out[ph]:
                        continue
                    if floating is float:
                        if forward:
                            cd_igf_run_f(&cg, X, Wp, Y, zero, grp, cb_i * blk, j0,
                                         min(n_out[ph], j0 + tb))
                        else:
                            cd_ig_run_f(&cg, g.batch, X, Wp, Y, zero, grp, cb_i * blk, ph,
                                        j0, min(n_out[ph], j0 + tb))
                    else:
                        if forward:
                            cd_igf_run_d(&cg, X, Wp, Y, zero, grp, cb_i * blk, j0,
                                         min(n_out[ph], j0 + tb))
                        else:
                            cd_ig_run_d(&cg, g.batch, X, Wp, Y, zero, grp, cb_i * blk, ph,
                                        j0, min(n_out[ph], j0 + tb))
    finally:
        _ws_give(raw)
        free(zero)
        free(n_out)
        free(bad)
    return 0


cdef int _run_pixel_lanes(Geom* g, const floating* X, const floating* W, floating* Y,
                          int n_threads) except -1:
    """The pixel-lanes kernel (src/_dot.h, cd_pl_*): the input transposed once (pixels
    in the vector lanes), then every (group, block of output channels) task,
    dynamically scheduled. Each task owns its channels of the whole big side and a
    channel's arithmetic does not depend on its block (its tiles' lanes are
    independent), so neither the blocks (8-64 channels, about 4 per thread) nor the
    schedule can change a bit of the result."""
    cdef isize npix = g.batch * g.small[0] * g.small[1] * g.small[2]
    cdef isize pb, vl, npv, nch, n_cb, n_tasks, task, grp, c0, cblk
    cdef cd_geom cg
    cdef floating* Xt = NULL
    n_threads = _threads_for(g, n_threads)
    _fill_cd_geom(g, &cg)
    _ig_widths(W, &pb, &vl)
    npv = (npix + vl - 1) // vl * vl
    nch = (npv + pb - 1) // pb
    cblk = min(<isize>64, max(<isize>8, ((g.cb + 4 * n_threads - 1) // (4 * n_threads) + 7)
                                // 8 * 8))
    n_cb = (g.cb + cblk - 1) // cblk
    n_tasks = g.groups * n_cb
    Xt = <floating*>_ws_take(g.groups * nch * pb * max(g.cs, <isize>1) * sizeof(floating))
    if Xt == NULL:
        raise MemoryError("cdeconv: cannot allocate the transposed input")
    try:
        with nogil:
            for grp in range(g.groups):
                if floating is float:
                    cd_pl_pack_f(&cg, npix, X, Xt, grp)
                else:
                    cd_pl_pack_d(&cg, npix, X, Xt, grp)
            for task in prange(n_tasks, schedule='dynamic',
                               num_threads=min(<isize>n_threads, n_tasks)):
                grp = task // n_cb
                c0 = (task % n_cb) * cblk
                if floating is float:
                    cd_pl_run_f(&cg, npix, Xt, W, Y, grp, c0, min(g.cb, c0 + cblk))
                else:
                    cd_pl_run_d(&cg, npix, Xt, W, Y, grp, c0, min(g.cb, c0 + cblk))
    finally:
        _ws_give(Xt)
    return 0


DEF PR_MAX_SMALL_ROWS = 16
DEF PR_TASKS_PER_THREAD = 4


cdef inline isize _pr_task_rows(Geom* g, int n_threads,
                               isize max_small_rows=PR_MAX_SMALL_ROWS) noexcept nogil:
    """Big rows per phase-rows (or scatter-rows) task: a whole number of phases along H
    (s1 big rows per small row), max_small_rows small rows' worth at most (each task
    packs the rows it reads, those its neighbour reads too included), fewer until there
    are about PR_TASKS_PER_THREAD tasks per thread; one thread has nothing to balance
    and takes the most (DCGAN TF g4 b1, 2 bands instead of 4: 1.06x at 1 thread). A
    row's arithmetic does not depend on its task."""
    cdef isize planes = g.groups * g.batch * g.big[0]
    cdef isize qrows = (g.big[1] + g.s[1] - 1) // g.s[1]
    cdef isize want = (planes * qrows // (PR_TASKS_PER_THREAD * n_threads) if n_threads > 1
                       else qrows)
    return g.s[1] * min(max_small_rows, max(<isize>1, min(want, qrows)))


cdef struct BandTask:
    isize grp, bz, zh0     # group, image * D plane, first big row


cdef inline BandTask _band_task(isize task, isize planes, isize n_hb,
                                isize rb) noexcept nogil:
    """Task ``task`` of the (group, image * D plane, band of rb big rows) tasks of the
    phase-rows and scatter-rows kernels: its group, plane and first big row. Returned,
    not written through pointers: a prange body must assign what it computes per task
    (``bt = _band_task(...)``) for Cython to make it private to the thread; out-pointers
    to the loop's variables left them shared, a race that sent tasks to other tasks'
    rows (wrong outputs at 2+ threads, found by the dask test in CI)."""
    cdef BandTask bt
    bt.grp = task // (planes * n_hb)
    bt.bz = (task % (planes * n_hb)) // n_hb
    bt.zh0 = (task % n_hb) * rb
    return bt


def phase_rows_scratch_bytes(tuple shapes, str dtype="float32"):
    """Bytes of one phase-rows task's scratch for the largest task (the dispatch rule
    bounds it) plus the zero plane."""
    cdef Geom g
    cdef cd_geom cg
    cdef isize sc, zn
    _make_geom(&g, shapes, False)
    _fill_cd_geom(&g, &cg)
    if dtype == "float32":
        cd_pr_sizes_f(&cg, g.s[1] * PR_MAX_SMALL_ROWS, &sc, &zn)
        return (sc + zn) * sizeof(float)
    cd_pr_sizes_d(&cg, g.s[1] * PR_MAX_SMALL_ROWS, &sc, &zn)
    return (sc + zn) * sizeof(double)


cdef int _run_phase_rows(Geom* g, const floating* X, const floating* W, floating* Y,
                         int n_threads) except -1:
    """The phase-rows kernel (src/_dot.h, cd_pr_*): every (group, image * D plane, block
    of big rows) task, dynamically scheduled, each thread with its own scratch (the row
    buffer and the transposed small rows its task reads). Each output is one chain in a
    fixed order (taps, then channels), whatever its task: the schedule cannot change a
    bit of the result. Returns 1 without writing Y when the filter holds Inf or NaN
    (taps past the edge read zeros here, and 0 * Inf = NaN where TF drops the tap: the
    caller takes GEMM + col2im), else 0."""
    cdef isize rb = _pr_task_rows(g, n_threads)
    cdef isize n_hb = (g.big[1] + rb - 1) // rb
    cdef isize planes = g.batch * g.big[0]
    cdef isize n_tasks = g.groups * planes * n_hb
    cdef isize sc, zn, task
    cdef BandTask bt
    cdef int tid
    cdef cd_geom cg
    cdef floating* S = NULL
    cdef floating* zero = NULL
    cdef isize w_n = g.taps * g.groups * g.cb * g.cs
    if _nonfinite(W, w_n):
        return 1
    n_threads = min(<isize>_threads_for(g, n_threads), n_tasks)
    _fill_cd_geom(g, &cg)
    if floating is float:
        cd_pr_sizes_f(&cg, rb, &sc, &zn)
    else:
        cd_pr_sizes_d(&cg, rb, &sc, &zn)
    try:
        # zeroed once: the planes' zero columns are never written (cd_pr_run)
        S = <floating*>_ws_take_zero(n_threads * sc * sizeof(floating))
        zero = <floating*>_ws_take_zero(max(zn, <isize>1) * sizeof(floating))
        if S == NULL or zero == NULL:
            raise MemoryError(f"cdeconv: cannot allocate {n_threads * sc * sizeof(floating)}"
                              " bytes of phase-rows scratch")
        with nogil:
            for task in prange(n_tasks, schedule='dynamic', num_threads=n_threads):
                tid = threadid()
                bt = _band_task(task, planes, n_hb, rb)
                if floating is float:
                    cd_pr_run_f(&cg, X, W, Y, S + tid * sc, zero, rb, bt.grp, bt.bz, bt.zh0,
                                min(g.big[1], bt.zh0 + rb))
                else:
                    cd_pr_run_d(&cg, X, W, Y, S + tid * sc, zero, rb, bt.grp, bt.bz, bt.zh0,
                                min(g.big[1], bt.zh0 + rb))
    finally:
        _ws_give(S)
        _ws_give(zero)
    return 0


# ---------------------------------------------------------------------------------
# Scatter rows (src/_dot.h, cd_sr_*): 1-2 big-side channels over many pixels.
# ---------------------------------------------------------------------------------

cdef isize _SR_MAX_SMALL_ROWS = 16
#: a task's scratch is kept under this by taking fewer big rows per task (down to one
#: phase along H); the dispatch rule bounds the one-phase scratch (scatter_rows_scratch_bytes)
DEF SR_MAX_TASK_SCRATCH = 4 << 20


cdef isize _sr_scratch(const cd_geom* cg, isize rb, isize itemsize) noexcept nogil:
    """Elements of one scatter-rows task's scratch for tasks of rb big rows."""
    cdef isize sc
    if itemsize == sizeof(float):
        cd_sr_sizes_f(cg, rb, &sc)
    else:
        cd_sr_sizes_d(cg, rb, &sc)
    return sc


def scatter_rows_scratch_bytes(tuple shapes, str dtype="float32"):
    """Bytes of one scatter-rows task's scratch for the smallest task the kernel makes
    (one phase of big rows along H): the dispatch rule bounds it."""
    cdef Geom g
    cdef cd_geom cg
    cdef isize item = sizeof(float) if dtype == "float32" else sizeof(double)
    _make_geom(&g, shapes, False)
    _fill_cd_geom(&g, &cg)
    return _sr_scratch(&cg, g.s[1], item) * item


def set_scatter_rows(int n):
    """The most small rows' worth of big rows in one scatter-rows task (1..256): a
    tuning hook for tools/dispatch_rules.py. A row's arithmetic does not depend on its
    task, so this never changes a bit of the result."""
    global _SR_MAX_SMALL_ROWS
    if not 1 <= n <= 256:
        raise ValueError(f"scatter rows per task must be in 1..256, got {n}")
    _SR_MAX_SMALL_ROWS = n


def scatter_rows_fits(tuple shapes):
    """Whether the scatter-rows kernel takes the (channels-last) geometry: a depth axis
    it need not read across (k = s = 1, no padding, as many big as small planes)."""
    cdef Geom g
    _make_geom(&g, shapes, False)
    return (g.k[0] == 1 and g.s[0] == 1 and g.pad[0] == 0 and g.big[0] == g.small[0]
            and g.taps <= CD_MAX_TAPS)


cdef int _run_scatter_rows(Geom* g, const floating* X, const floating* W, floating* Y,
                           int n_threads) except -1:
    """The scatter-rows kernel (src/_dot.h, cd_sr_*): every (group, image * D plane,
    band of big rows) task, dynamically scheduled, each thread with its own scratch
    (the band's phase buffer, one packed run of small pixels, a tile of results). The
    bands are whole phases along H, at most _SR_MAX_SMALL_ROWS small rows' worth, fewer
    until there are about PR_TASKS_PER_THREAD tasks per thread; each output's sum has
    one fixed order whatever its band, so neither can change a bit."""
    cdef isize planes = g.batch * g.big[0]
    cdef isize rb = _pr_task_rows(g, n_threads, _SR_MAX_SMALL_ROWS)
    cdef isize n_hb, n_tasks, sc, task
    cdef BandTask bt
    cdef int tid
    cdef cd_geom cg
    cdef floating* S = NULL
    _fill_cd_geom(g, &cg)
    sc = _sr_scratch(&cg, rb, sizeof(floating))
    while rb > g.s[1] and sc * sizeof(floating) > SR_MAX_TASK_SCRATCH:
        # wide rows: fewer of them per task (a whole phase along H at least)
        rb = max(g.s[1], (rb // 2) // g.s[1] * g.s[1])
        sc = _sr_scratch(&cg, rb, sizeof(floating))
    n_hb = (g.big[1] + rb - 1) // rb
    n_tasks = g.groups * planes * n_hb
    n_threads = min(<isize>_threads_for(g, n_threads), n_tasks)
    S = <floating*>_ws_take(n_threads * sc * sizeof(floating))
    if S == NULL:
        raise MemoryError(f"cdeconv: cannot allocate {n_threads * sc * sizeof(floating)}"
                          " bytes of scatter-rows scratch")
    try:
        with nogil:
            for task in prange(n_tasks, schedule='dynamic', num_threads=n_threads):
                tid = threadid()
                bt = _band_task(task, planes, n_hb, rb)
                if floating is float:
                    cd_sr_run_f(&cg, X, W, Y, S + tid * sc, rb, bt.grp, bt.bz, bt.zh0,
                                min(g.big[1], bt.zh0 + rb))
                else:
                    cd_sr_run_d(&cg, X, W, Y, S + tid * sc, rb, bt.grp, bt.bz, bt.zh0,
                                min(g.big[1], bt.zh0 + rb))
    finally:
        _ws_give(S)
    return 0


# ---------------------------------------------------------------------------------
# Winograd phases (src/_wino_impl.h): the input transform, one GEMM per transform
# position, the output transform, per block of tiles.
# ---------------------------------------------------------------------------------

#: outputs per tile and axis for r taps per phase (index r; 0 = not supported):
#: F(m, r) reads m + r - 1 inputs per axis
cdef isize _WI_M[5]
_WI_M[:] = [0, 1, 3, 2, 0]
#: V + M of one task's tiles, about (set_winograd_block)
cdef isize _WI_BLOCK_BYTES = 524288
DEF WI_MIN_TILES = 8
DEF WI_MAX_TILES = 512
#: the interpolation points of F(m, r) (then infinity): exact in binary, 0, 1, -1 first
cdef double[6] _WI_POINTS
_WI_POINTS[:] = [0.0, 1.0, -1.0, 2.0, -2.0, 0.5]


def set_winograd_tile(int r, int m):
    """Test and tuning hook: the Winograd kernel computes m x m phase outputs per tile
    for phases of r taps per axis (2 <= r <= 4, m + r - 1 <= 6; m = 0: refuse such
    phases). Set it between calls, never while kernels run."""
    if not 2 <= r <= 4 or not 0 <= m or m + r - 1 > 6:
        raise ValueError(f"need 2 <= r <= 4 and 0 <= m with m + r - 1 <= 6, got r={r}, m={m}")
    _WI_M[r] = m


def set_winograd_block(isize nbytes):
    """Test and tuning hook: the Winograd kernel's tasks take about nbytes of
    transformed inputs and products (V and M) each, 8 to 512 tiles. Returns the old
    value. Set it between calls, never while kernels run."""
    global _WI_BLOCK_BYTES
    if nbytes < 1:
        raise ValueError(f"need nbytes >= 1, got {nbytes}")
    old, _WI_BLOCK_BYTES = _WI_BLOCK_BYTES, nbytes
    return old


def winograd_tile(int r):
    """The outputs per tile and axis the Winograd kernel uses for r taps per phase
    (0: such phases are not supported)."""
    return _WI_M[r] if 0 <= r <= 4 else 0


cdef void _wi_matrices(isize m, isize r, double* at, double* g, double* bt) noexcept nogil:
    """F(m, r) for y[i] = sum_j d[i + j] g[j] (i < m, j < r), a = m + r - 1, points
    p_0 .. p_{a-2} and infinity (Lavin & Gray 2016, Cook-Toom): A^T (m x a) with
    A^T[i][k] = p_k^i, G (a x r) with G[k][j] = p_k^j / prod_{l != k} (p_k - p_l),
    B^T (a x a) with row k the coefficients of prod_{l != k} (x - p_l); the infinity
    column / rows pick the last coefficient. a = 1 is the identity."""
    cdef isize a = m + r - 1, k, i, j, l
    cdef double f, pk
    cdef double poly[8]
    if a == 1:
        at[0] = 1.0
        g[0] = 1.0
        bt[0] = 1.0
        return
    for k in range(a):
        # poly := prod over the finite points l != k of (x - p_l) (k = a - 1: all)
        poly[0] = 1.0
        for i in range(1, a):
            poly[i] = 0.0
        f = 1.0
        pk = _WI_POINTS[k] if k < a - 1 else 0.0
        for l in range(a - 1):
            if l == k:
                continue
            for i in range(a - 1, 0, -1):
                poly[i] = poly[i - 1] - _WI_POINTS[l] * poly[i]
            poly[0] = -_WI_POINTS[l] * poly[0]
            f *= pk - _WI_POINTS[l]
        for i in range(a):
            bt[k * a + i] = poly[i]
        for i in range(m):
            at[i * a + k] = (pk ** i if k < a - 1 else (1.0 if i == m - 1 else 0.0))
        for j in range(r):
            g[k * r + j] = (pk ** j / f if k < a - 1 else (1.0 if j == r - 1 else 0.0))


cdef int _wi_plan(const Geom* g, cd_wino* p) except -1:
    """Fill p for g, or raise ValueError if the Winograd kernel cannot take g."""
    cdef isize ry = (g.k[1] + g.s[1] - 1) // g.s[1], rx = (g.k[2] + g.s[2] - 1) // g.s[2]
    if (g.groups != 1 or g.cfirst or g.k[0] != 1 or g.s[0] != 1 or g.pad[0] != 0
            or g.big[0] != g.small[0] or g.d[1] != 1 or g.d[2] != 1
            or not 1 <= ry <= 4 or not 1 <= rx <= 4 or _WI_M[ry] == 0 or _WI_M[rx] == 0):
        raise ValueError("the Winograd kernel takes channels-last 2-D transposed "
                         "convolutions with one group, no dilation and 1-4 taps per phase")
    p.batch = g.batch * g.small[0]
    p.cb = g.cb
    p.cs = g.cs
    p.H = g.small[1]
    p.W = g.small[2]
    p.BH = g.big[1]
    p.BW = g.big[2]
    p.sy = g.s[1]
    p.sx = g.s[2]
    p.kh = g.k[1]
    p.kw = g.k[2]
    p.pady = g.pad[1]
    p.padx = g.pad[2]
    p.ry = ry
    p.rx = rx
    p.my = _WI_M[ry]
    p.mx = _WI_M[rx]
    p.ay = p.my + ry - 1
    p.ax = p.mx + rx - 1
    p.qy = _floordiv(g.pad[1], g.s[1])
    p.qx = _floordiv(g.pad[2], g.s[2])
    p.nty = ((_floordiv(g.pad[1] + g.big[1] - 1, g.s[1]) - p.qy + 1) + p.my - 1) // p.my
    p.ntx = ((_floordiv(g.pad[2] + g.big[2] - 1, g.s[2]) - p.qx + 1) + p.mx - 1) // p.mx
    _wi_matrices(p.my, ry, p.aty, p.gy, p.bty)
    _wi_matrices(p.mx, rx, p.atx, p.gx, p.btx)
    return 0


def winograd_plan(tuple shapes):
    """For channels-last kernel_args: (tiles, inputs per tile, phase outputs per tile)
    of the Winograd kernel's plan (_wi_plan, the one the kernel runs), or None where it
    cannot take them. For the dispatch rule."""
    cdef Geom g
    cdef cd_wino p
    _make_geom(&g, shapes, False)
    try:
        _wi_plan(&g, &p)
    except ValueError:
        return None
    return p.batch * p.nty * p.ntx, p.ay * p.ax, p.my * p.mx


cdef inline isize _wi_block(const cd_wino* p, isize itemsize) noexcept nogil:
    """Tiles per Winograd task: about _WI_BLOCK_BYTES of V and M (shapes only)."""
    cdef isize per = p.ay * p.ax * (p.cs + p.np) * itemsize
    return min(<isize>WI_MAX_TILES, max(<isize>WI_MIN_TILES, _WI_BLOCK_BYTES // per))


cdef int _run_winograd(Geom* g, const floating* X, const floating* W, floating* Y,
                       int n_threads) except -1:
    """The Winograd phase kernel: U := the filter transform, packed into the igemm
    micro-kernel's panels once per call (parallel over panels), then every block of
    tiles, dynamically scheduled: V := input transform, M[pos] := V[pos] @ U[pos]^T
    (cd_wi_gemm: the micro-kernel over the panels), Y := output transform. The blocks
    (equal, a multiple of the threads) only group the tiles, each output pixel is
    written once, by its tile, and its sums are the same in any block: neither the
    blocks nor the schedule can change a bit. Returns 1 without a usable Y when the filter or a
    transformed input holds Inf or NaN (the transforms would spread it to outputs
    whose taps never read it: the caller takes GEMM + col2im), else 0."""
    cdef cd_wino p
    cdef isize P, nt, n_tiles, n_blk, n_pan, v_n, m_n, t_n, per_thread, blk, t0, cnt
    cdef int tid, blk_threads, fail = 0
    cdef floating* U = NULL
    cdef floating* S = NULL
    cdef floating* V
    cdef floating* M
    cdef floating* T
    cdef int* bad = NULL
    cdef isize w_n = g.taps * g.cb * g.cs
    _wi_plan(g, &p)
    if _nonfinite(W, w_n):
        return 1
    p.nr = cd_ig_block_f() if floating is float else cd_ig_block_d()
    n_pan = (p.sy * p.sx * p.cb + p.nr - 1) // p.nr
    p.np = n_pan * p.nr
    n_threads = _threads_for(g, n_threads)
    P = p.ay * p.ax
    n_tiles = p.batch * p.nty * p.ntx
    nt = min(_wi_block(&p, sizeof(floating)), n_tiles)
    n_blk = (n_tiles + nt - 1) // nt
    # a multiple of the threads' count of blocks of equal size (no thread waits for a
    # last block or a longer one: 36 tiles on 2 threads are 18 + 18, not 21 + 15; 784
    # are 14 x 56, not 12 x 64 + 16); a tile's sums do not depend on its block
    blk_threads = min(<isize>n_threads, n_blk)
    n_blk = (n_blk + blk_threads - 1) // blk_threads * blk_threads
    nt = (n_tiles + n_blk - 1) // n_blk
    n_blk = (n_tiles + nt - 1) // nt
    n_threads = min(<isize>n_threads, max(n_blk, n_pan))
    blk_threads = min(<isize>n_threads, n_blk)
    v_n = P * nt * p.cs
    m_n = P * nt * p.np
    # tmp of the input and output transforms; the filter transform's (before them)
    # fits in V, M and tmp or sizes them (its vector path: 9 * VL <= 9 * nr rows)
    t_n = max(P * p.cs, p.ay * p.mx * p.cb)
    per_thread = max(v_n + m_n + t_n, max(p.ay * p.rx + 1, 9 * p.nr) * p.cs) + 16
    try:
        U = <floating*>_ws_take(P * p.cs * p.np * sizeof(floating))
        S = <floating*>_ws_take(n_threads * per_thread * sizeof(floating))
        bad = <int*>calloc(n_threads, sizeof(int))
        if U == NULL or S == NULL or bad == NULL:
            raise MemoryError(f"cdeconv: cannot allocate "
                              f"{(P * p.cs * p.np + n_threads * per_thread) * sizeof(floating)}"
                              " bytes of Winograd buffers")
        with nogil:
            for blk in prange(n_pan, schedule='static', num_threads=n_threads):
                tid = threadid()
                if floating is float:
                    cd_wi_filter_f(&p, W, U, blk * p.nr, (blk + 1) * p.nr,
                                   S + tid * per_thread)
                else:
                    cd_wi_filter_d(&p, W, U, blk * p.nr, (blk + 1) * p.nr,
                                   S + tid * per_thread)
            for blk in prange(n_blk, schedule='dynamic', num_threads=blk_threads):
                tid = threadid()
                V = S + tid * per_thread
                M = V + v_n
                T = M + m_n
                t0 = blk * nt
                cnt = min(nt, n_tiles - t0)
                if floating is float:
                    if cd_wi_input_f(&p, X, V, T, t0, cnt):
                        bad[tid] = 1
                else:
                    if cd_wi_input_d(&p, X, V, T, t0, cnt):
                        bad[tid] = 1
                if bad[tid]:
                    continue
                if floating is float:
                    cd_wi_gemm_f(&p, V, U, M, cnt)
                    cd_wi_output_f(&p, M, Y, T, t0, cnt)
                else:
                    cd_wi_gemm_d(&p, V, U, M, cnt)
                    cd_wi_output_d(&p, M, Y, T, t0, cnt)
        for tid in range(n_threads):
            fail |= bad[tid]
    finally:
        _ws_give(U)
        _ws_give(S)
        free(bad)
    return fail


cdef int _run(Geom* g, const floating* X, const floating* W, floating* Y, isize y_len,
              bint transpose, int n_threads, isize chunk_bytes) except -1:
    """Allocate the chunk's column buffer, release the GIL, run the driver."""
    cdef isize rows = _chunk_rows(g, sizeof(floating), chunk_bytes)
    cdef isize wc = _chunk_cols(g, sizeof(floating), chunk_bytes)
    cdef isize n_rows = g.batch * g.small[0] * g.small[1]
    cdef isize work_n = 0
    cdef floating* work = NULL
    if Y == NULL:
        return 0
    n_threads = _threads_for(g, n_threads)
    if n_rows == 0 or X == NULL:
        # nothing to read (empty input, e.g. a zero-size spatial axis): every output
        # element is a sum of nothing (or of padding) = 0
        with nogil:
            memset(Y, 0, y_len * sizeof(floating))
        return 0
    if not _is_direct(g):
        work_n = _work_elems(g, rows, wc, n_rows)
        work = <floating*>_ws_take(work_n * sizeof(floating))
        if work == NULL:
            raise MemoryError(f"cdeconv: cannot allocate a {work_n * sizeof(floating)}"
                              "-byte column buffer")
    try:
        with nogil:
            if transpose:
                _conv_transpose(g, X, W, Y, work, rows, wc, n_threads)
            else:
                _conv_forward(g, X, W, Y, work, rows, wc, n_threads)
    finally:
        _ws_give(work)
    return 0


def _gemm_memview(const floating[:, ::1] A, const floating[:, ::1] B, floating[:, ::1] C,
                  bint trans_a, bint trans_b, int n_threads):
    """Test shim: C := op(A) @ op(B) through the tiled row-major GEMM (caller holds the
    BLAS guard; shapes are checked here as this is not behind cdeconv._geometry)."""
    cdef isize m = C.shape[0], n = C.shape[1]
    cdef isize k = A.shape[0] if trans_a else A.shape[1]
    if (A.shape[1] if trans_a else A.shape[0]) != m or \
            (B.shape[1] if trans_b else B.shape[0]) != k or \
            (B.shape[0] if trans_b else B.shape[1]) != n:
        raise ValueError("inconsistent GEMM shapes")
    if m == 0 or n == 0 or k == 0:
        C[:, :] = 0
        return
    with nogil:
        _gemm_tiled(TRANS if trans_a else NO_TRANS, TRANS if trans_b else NO_TRANS,
                    m, n, k, &A[0, 0], A.shape[1], 0, &B[0, 0], B.shape[1], 0,
                    &C[0, 0], C.shape[1], 0, 1, n_threads)
