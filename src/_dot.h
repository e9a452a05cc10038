/* The "dot" transposed-convolution kernel: output-stationary, channels-last.
 *
 * Every output element is one sum of dot products of two contiguous vectors:
 *
 *     Y[b, z, grp*Cb + c] = sum over taps t landing on z of
 *                           dot(X[b, y(z, t), grp*Cs : grp*Cs + Cs], W[t, c, grp*Cs : ...])
 *
 * (X channels-last, W in TF's transposed layout (taps, Cb, G*Cs): both operands are
 * contiguous over the small-side channels). No column buffer, no col2im, no zero pass:
 * each output element is written exactly once, its taps summed in one fixed order
 * (kd, kh, kw), so the result does not depend on how rows are split across threads.
 *
 * Where it pays (measured, see cdeconv/_driver.py): few output channels (the GEMM +
 * col2im path is col2im-bound there) and few input pixels with a large filter (batch 1:
 * BLAS packs the whole filter for a GEMM of a handful of rows; here it streams once).
 *
 * Register blocking: P output pixels of one row and phase (the same taps, sources one
 * small pixel apart) x C output channels, accumulated as vectors over the small-side
 * channels, one horizontal sum per output at the end. Built for three instruction sets
 * (AVX-512, AVX2+FMA, baseline) and chosen at run time: wheels run on any x86-64.
 *
 * The caller (src/_conv.pyx) guarantees validated geometry, taps <= CD_MAX_TAPS and
 * channels-last arrays.
 */
#ifndef CDECONV_DOT_H
#define CDECONV_DOT_H

#include <stddef.h>

typedef ptrdiff_t cd_isz;

#define CD_MAX_TAPS 1024

typedef struct {
    cd_isz groups, cb, cs;   /* groups; big/small-side channels per group */
    cd_isz small[3], big[3]; /* spatial sizes (D, H, W) */
    cd_isz k[3], s[3], d[3], pad[3];
} cd_geom;

/* The columns of a big row, planned once per call (they are the same for every row):
 * blocks of P columns bw, bw + s, ..., bw + (P-1)*s of one phase that take the same
 * nk width taps; the taps' kw and the small column iw they read for the block's first
 * column (the p-th column reads iw + p) are at kw[off..off+nk), iw[off..off+nk). */
typedef struct {
    cd_isz bw, P, nk, off;
} cd_colblk;

/* The most entries the plan of g can need: blocks (<= BW) and kw/iw (<= BW * kw). */
cd_isz cd_dot_plan_blocks(const cd_geom* g);
cd_isz cd_dot_plan_taps(const cd_geom* g);
/* Fill the plan for channel blocks of c_first channels (the register blocking limits P);
 * returns the number of blocks. */
cd_isz cd_dot_plan(const cd_geom* g, cd_isz c_first, cd_colblk* blk, cd_isz* kw,
                   cd_isz* iw);

/* Write Y's big row R = (b*BD + bd)*BH + bh, channels [c0, c1) of group grp, every
 * column, following the plan (made with c_first >= min(4, c1 - c0)). Safe to call
 * concurrently for distinct (R, grp, channel range). */
void cd_dot_row_f(const cd_geom* g, const float* X, const float* W, float* Y,
                  cd_isz R, cd_isz grp, cd_isz c0, cd_isz c1,
                  const cd_colblk* blk, cd_isz nblk, const cd_isz* kw, const cd_isz* iw);
void cd_dot_row_d(const cd_geom* g, const double* X, const double* W, double* Y,
                  cd_isz R, cd_isz grp, cd_isz c0, cd_isz c1,
                  const cd_colblk* blk, cd_isz nblk, const cd_isz* kw, const cd_isz* iw);

/* C(m, n) := A(m, k) @ B(n, k)^T for row-major A, B sharing the leading dimension ld:
 * the column GEMM of a transposed conv with few input pixels (no packing of B). */
void cd_abt_f(cd_isz m, cd_isz n, cd_isz k, const float* A, const float* B, cd_isz ld,
              float* C, cd_isz ldc);
void cd_abt_d(cd_isz m, cd_isz n, cd_isz k, const double* A, const double* B, cd_isz ld,
              double* C, cd_isz ldc);

/* The implicit-GEMM ("igemm") transposed kernel: output-stationary like the dot kernel,
 * but the output channels are the vector lanes, so a big-side pixel's channels are
 * accumulated as outer products (broadcast input channel x filter vector) and the
 * filter is read from a packed copy:
 *
 *     Y[b, z, grp*Cb + c] = sum over taps t landing on z, k < Cs of
 *                           X[b, y(z, t), grp*Cs + k] * Wp[grp][c / B][t][k][c % B]
 *
 * The big side is split into its phases (z mod s per axis: the outputs of one phase
 * take the same taps, their sources one small pixel apart); a phase's outputs, in
 * raster order over (batch, D, H, W), are computed in tiles of up to 8 outputs x a
 * channel block of B = cd_ig_block() channels, every tile's sum in registers, taps then
 * channels in one fixed order: no column buffer, no col2im, no zero pass, and each
 * output is written once, by one tile whatever the thread count.
 *
 * Packed filter: for group grp, block start c0 (a multiple of B), panel width
 * nr = min(B, Cbp - c0) with Cbp = Cb rounded up to cd_ig_vl() (zeros past Cb),
 *     Wp[(grp*T*Cbp + c0*T + t*nr) * Cs + k*nr + c] = W[t, c0 + c, grp*Cs + k];
 * cd_ig_pack fills one (grp, c0) block and returns whether it holds Inf or NaN (the
 * caller then takes another kernel: a tap past the edge reads a zero row here, and
 * 0 * Inf = NaN where TF drops the tap). Pack and run with the same instruction set. */
cd_isz cd_ig_block_f(void);
cd_isz cd_ig_block_d(void);
cd_isz cd_ig_vl_f(void);
cd_isz cd_ig_vl_d(void);
int cd_ig_pack_f(const cd_geom* g, const float* W, float* Wp, cd_isz grp, cd_isz c0);
int cd_ig_pack_d(const cd_geom* g, const double* W, double* Wp, cd_isz grp, cd_isz c0);
/* Direct rows (the transposed kernel for few input channels): write Y's big rows
 * [r0, r1) (r = (image * BD + bd) * BH + bh), the channels of group grp, from the
 * filter packed by cd_ig_pack (every block of the group). Each output is igemm's sum
 * without the taps that fall past the edge (those are never read). Safe to call
 * concurrently for disjoint (grp, rows). */
void cd_dr_run_f(const cd_geom* g, const float* X, const float* Wp, float* Y,
                 cd_isz grp, cd_isz r0, cd_isz r1);
void cd_dr_run_d(const cd_geom* g, const double* X, const double* Wp, double* Y,
                 cd_isz grp, cd_isz r0, cd_isz r1);
/* Whether any of p[0 .. n) is Inf or NaN. */
int cd_nonfinite_f(const float* p, cd_isz n);
int cd_nonfinite_d(const double* p, cd_isz n);
/* Write the outputs j0 <= j < j1 of phase `phase` (its index over (s0, s1, s2), row
 * major; j in raster order over (batch, its D, H, W outputs)), channels [c0, c0 + nr)
 * of group grp. zero: Cs zeros (the source of taps that fall outside the small side).
 * Safe to call concurrently for distinct (phase, j range, grp, c0). */
void cd_ig_run_f(const cd_geom* g, cd_isz batch, const float* X, const float* Wp,
                 float* Y, const float* zero, cd_isz grp, cd_isz c0, cd_isz phase,
                 cd_isz j0, cd_isz j1);
void cd_ig_run_d(const cd_geom* g, cd_isz batch, const double* X, const double* Wp,
                 double* Y, const double* zero, cd_isz grp, cd_isz c0, cd_isz phase,
                 cd_isz j0, cd_isz j1);

/* Pixel lanes: the igemm micro-kernel with the input pixels in the vector lanes (for
 * few of them: batch-1 heads), the filter rows broadcast in place (each filter element
 * loaded once). cd_pl_pack fills group grp's transposed input Xt; its size is
 * groups * Cs * (npix rounded up to cd_ig_vl(), then to chunks of cd_ig_block()).
 * cd_pl_run writes Y's channels [c0, c1) of group grp (zeroed, then every tap added in
 * order); safe concurrently for disjoint (grp, channel range). */
void cd_pl_pack_f(const cd_geom* g, cd_isz npix, const float* X, float* Xt, cd_isz grp);
void cd_pl_pack_d(const cd_geom* g, cd_isz npix, const double* X, double* Xt, cd_isz grp);
void cd_pl_run_f(const cd_geom* g, cd_isz npix, const float* Xt, const float* W, float* Y,
                 cd_isz grp, cd_isz c0, cd_isz c1);
void cd_pl_run_d(const cd_geom* g, cd_isz npix, const double* Xt, const double* W,
                 double* Y, cd_isz grp, cd_isz c0, cd_isz c1);

/* The forward convolution on the igemm micro-kernel (channels-last): the small side's
 * pixels in raster order, tiles of up to 8 of them x a block of output channels, every
 * tap of each (zeros past the edge) summed in registers. cd_igf_pack fills block
 * (grp, c0) of the packed filter (groups * T * Cs rounded up to cd_ig_vl() * Cb
 * elements in all); cd_igf_run writes small pixels [j0, j1), channels
 * [c0, c0 + cd_ig_block()) of group grp; zero holds Cb zeros. */
void cd_igf_pack_f(const cd_geom* g, const float* W, float* Wp, cd_isz grp, cd_isz c0);
void cd_igf_pack_d(const cd_geom* g, const double* W, double* Wp, cd_isz grp, cd_isz c0);
void cd_igf_run_f(const cd_geom* g, const float* X, const float* Wp, float* Y,
                  const float* zero, cd_isz grp, cd_isz c0, cd_isz j0, cd_isz j1);
void cd_igf_run_d(const cd_geom* g, const double* X, const double* Wp, double* Y,
                  const double* zero, cd_isz grp, cd_isz c0, cd_isz j0, cd_isz j1);

/* Phase rows: the igemm micro-kernel for few big-side channels (1-15 per group): the
 * vector lanes are the outputs of one big row and one phase along W, the filter rows
 * broadcast in place, the small rows a task reads transposed into channel-major planes
 * (zero columns around them). Same bits as cd_ig_run on the same instruction set.
 * cd_pr_sizes gives the elements of one task's scratch, for tasks of <= rb big rows,
 * and of the zero plane (all zeros, shared). cd_pr_run writes Y's big rows
 * (bz, zh0 <= zh < zh1 <= zh0 + rb), bz = image * BD + zd, channels of group grp; S is
 * a scratch of cd_pr_sizes(rb) elements, zeroed before its first task (the planes'
 * zero columns are never written, so they stay zero for all its tasks of the same rb);
 * safe concurrently for distinct (grp, rows) with distinct scratch. */
void cd_pr_sizes_f(const cd_geom* g, cd_isz rb, cd_isz* scratch, cd_isz* zero);
void cd_pr_sizes_d(const cd_geom* g, cd_isz rb, cd_isz* scratch, cd_isz* zero);
void cd_pr_run_f(const cd_geom* g, const float* X, const float* W, float* Y, float* S,
                 const float* zero, cd_isz rb, cd_isz grp, cd_isz bz, cd_isz zh0,
                 cd_isz zh1);
void cd_pr_run_d(const cd_geom* g, const double* X, const double* W, double* Y,
                 double* S, const double* zero, cd_isz rb, cd_isz grp, cd_isz bz,
                 cd_isz zh0, cd_isz zh1);

/* Scatter rows: the pixel-lanes micro-kernel for 1-2 big-side channels over many
 * pixels (channels-last, k[0] = s[0] = 1, no depth padding): a task packs the small
 * pixels its big rows read, computes each (tap, channel) filter row needed times a run
 * of them, adds the result rows into a phase buffer (one tap's outputs of consecutive
 * small columns are consecutive there) and interleaves the phases into Y. cd_sr_sizes
 * gives the elements of one task's scratch for tasks of <= rb big rows; cd_sr_run
 * writes Y's big rows (bz, zh0 <= zh < zh1 <= zh0 + rb), bz = image * BD + zd, channels
 * of group grp. Every output is a fixed-order sum: safe concurrently for distinct
 * (grp, rows) with distinct scratch, and the same bits for any split. */
void cd_sr_sizes_f(const cd_geom* g, cd_isz rb, cd_isz* scratch);
void cd_sr_sizes_d(const cd_geom* g, cd_isz rb, cd_isz* scratch);
void cd_sr_run_f(const cd_geom* g, const float* X, const float* W, float* Y, float* S,
                 cd_isz rb, cd_isz grp, cd_isz bz, cd_isz zh0, cd_isz zh1);
void cd_sr_run_d(const cd_geom* g, const double* X, const double* W, double* Y,
                 double* S, cd_isz rb, cd_isz grp, cd_isz bz, cd_isz zh0, cd_isz zh1);

/* A plain GEMM on the igemm micro-kernel: C (rows ldc apart) := A (M x K, rows lda
 * apart) @ B (K x N, rows ldb apart). cd_gemm_pack fills Bp (K * (N rounded up to
 * cd_ig_block()) elements) once; cd_gemm_run writes C's rows [m0, m1), safe
 * concurrently for disjoint row ranges. Each element is one FMA chain along k. */
void cd_gemm_pack_f(cd_isz K, cd_isz N, const float* B, cd_isz ldb, float* Bp);
void cd_gemm_pack_d(cd_isz K, cd_isz N, const double* B, cd_isz ldb, double* Bp);
void cd_gemm_run_f(cd_isz m0, cd_isz m1, cd_isz N, cd_isz K, const float* A, cd_isz lda,
                   const float* Bp, float* C, cd_isz ldc);
void cd_gemm_run_d(cd_isz m0, cd_isz m1, cd_isz N, cd_isz K, const double* A, cd_isz lda,
                   const double* Bp, double* C, cd_isz ldc);
/* The forward conv as that GEMM without a column buffer (cd_gtap_ in _igemm_impl.h):
 * C's rows [m0, m1), columns [nlo, N) (nlo a multiple of cd_ig_block()) = output pixels
 * of a band of whole rows (OW wide, OH rows an image), each the sum over nt <=
 * CD_GT_MAX_TAPS tap rows of K contiguous inputs at
 * Xp + j * istep + oy * ystep + t * tstep + ox * xstep (zero-padded input, image j of
 * the band) times B's rows [t * K, (t + 1) * K) as packed by cd_gemm_pack (nt * K rows). */
#define CD_GT_MAX_TAPS 64
void cd_gemm_taps_f(cd_isz m0, cd_isz m1, cd_isz OW, cd_isz OH, cd_isz nlo, cd_isz N,
                    cd_isz nt, cd_isz K, const float* Xp, cd_isz istep, cd_isz ystep,
                    cd_isz tstep, cd_isz xstep, const float* Bp, float* C, cd_isz ldc);
void cd_gemm_taps_d(cd_isz m0, cd_isz m1, cd_isz OW, cd_isz OH, cd_isz nlo, cd_isz N,
                    cd_isz nt, cd_isz K, const double* Xp, cd_isz istep, cd_isz ystep,
                    cd_isz tstep, cd_isz xstep, const double* Bp, double* C,
                    cd_isz ldc);

/* The filter gradient's GEMM, transposed (cd_gbpf_ in _igemm_impl.h): C (rows ldc apart)
 * += A (rows lda apart) @ B (P rows ldb apart) for C's rows [i0, i1), columns [n0, n1)
 * (n0 a multiple of cd_ig_block()); S: CD_BPF_KC * cd_ig_block() elements of scratch.
 * Safe concurrently for disjoint blocks of C. */
#define CD_BPF_KC 256
void cd_gemm_bpf_f(cd_isz i0, cd_isz i1, cd_isz n0, cd_isz n1, cd_isz P, const float* A,
                   cd_isz lda, const float* B, cd_isz ldb, float* C, cd_isz ldc, float* S);
void cd_gemm_bpf_d(cd_isz i0, cd_isz i1, cd_isz n0, cd_isz n1, cd_isz P, const double* A,
                   cd_isz lda, const double* B, cd_isz ldb, double* C, cd_isz ldc,
                   double* S);
/* P[k * ldp + p] := src[p * stride + k] for p < n, k < K. */
void cd_transpose_f(float* P, cd_isz ldp, cd_isz n, cd_isz K, const float* src,
                    cd_isz stride);
void cd_transpose_d(double* P, cd_isz ldp, cd_isz n, cd_isz K, const double* src,
                    cd_isz stride);

/* The Winograd phase kernel's transforms and per-position GEMMs (channels-last, one
 * group, 2-D; the blocking and threads are the caller's): see _wino_impl.h.
 * Matrices row-major, in double: bt (a x a) = B^T, at (m x a) = A^T, g (a x r) = G,
 * per axis y / x. */
#define CD_WI_MAXA 8
#define CD_WI_MAXR 8
typedef struct {
    cd_isz batch, cb, cs;          /* images (depth folded in); big/small channels */
    cd_isz H, W, BH, BW;           /* small (input) and big (output) sizes */
    cd_isz sy, sx, kh, kw, pady, padx;  /* strides, kernel, padding before */
    cd_isz ry, rx, my, mx, ay, ax;      /* taps per phase, outputs per tile, tile inputs */
    cd_isz qy, qx, nty, ntx;       /* first phase index (pad // s), tiles per image */
    cd_isz nr, np;                 /* U's panel width (cd_ig_block), N = s_y*s_x*cb
                                      rounded up to it */
    double bty[CD_WI_MAXA * CD_WI_MAXA], btx[CD_WI_MAXA * CD_WI_MAXA];
    double aty[CD_WI_MAXA * CD_WI_MAXA], atx[CD_WI_MAXA * CD_WI_MAXA];
    double gy[CD_WI_MAXA * CD_WI_MAXR], gx[CD_WI_MAXA * CD_WI_MAXR];
} cd_wino;
/* U (ay*ax, np / nr, cs, nr): the filter transform of its columns [j0, j1) (whole
 * panels; zeros past sy*sx*cb); tmp holds max(ay*rx + 1, 9*VL)*cs
 * (VL <= nr: the vector length). */
void cd_wi_filter_f(const cd_wino* p, const float* W, float* U, cd_isz j0, cd_isz j1,
                    float* tmp);
void cd_wi_filter_d(const cd_wino* p, const double* W, double* U, cd_isz j0, cd_isz j1,
                    double* tmp);
/* V (ay*ax, nt, cs) for tiles [t0, t0 + nt); tmp holds ay*ax*cs. Returns whether V
 * holds Inf or NaN. */
int cd_wi_input_f(const cd_wino* p, const float* X, float* V, float* tmp, cd_isz t0,
                  cd_isz nt);
int cd_wi_input_d(const cd_wino* p, const double* X, double* V, double* tmp, cd_isz t0,
                  cd_isz nt);
/* M (ay*ax, nt, np) := V[pos] @ U[pos]^T per transform position, for a block of nt
 * tiles. */
void cd_wi_gemm_f(const cd_wino* p, const float* V, const float* U, float* M, cd_isz nt);
void cd_wi_gemm_d(const cd_wino* p, const double* V, const double* U, double* M,
                  cd_isz nt);
/* Y's pixels of tiles [t0, t0 + nt) from M (ay*ax, nt, np); tmp holds ay*mx*cb. */
void cd_wi_output_f(const cd_wino* p, const float* M, float* Y, float* tmp, cd_isz t0,
                    cd_isz nt);
void cd_wi_output_d(const cd_wino* p, const double* M, double* Y, double* tmp,
                    cd_isz t0, cd_isz nt);

/* The planar forward (_fplanar_impl.h): channels-last, one group, 2-D, 1 to
 * CD_FPL_MAXCO output channels (cs), kw <= CD_FPL_MAXKW. cd_fpl_scratch: the elements
 * of scratch a band of `rows` output rows needs (for the instruction set that runs);
 * cd_fpl_run: output rows [oy0, oy1) of image n, P such a scratch. */
#define CD_FPL_MAXCO 8
#define CD_FPL_MAXKW 64
cd_isz cd_fpl_scratch_f(const cd_geom* g, cd_isz rows);
cd_isz cd_fpl_scratch_d(const cd_geom* g, cd_isz rows);
void cd_fpl_run_f(const cd_geom* g, const float* X, const float* W, float* Y, cd_isz n,
                  cd_isz oy0, cd_isz oy1, float* P);
void cd_fpl_run_d(const cd_geom* g, const double* X, const double* W, double* Y,
                  cd_isz n, cd_isz oy0, cd_isz oy1, double* P);

/* The planar filter gradient: cd_fpl_bpf_scratch as cd_fpl_scratch (planes and DY's
 * rows) for bands of `rows` rows; cd_fpl_bpf: part (kh*kw*cb*cs, overwritten) := the
 * gradient's sums over output rows [oy0, oy1) of image n, at most `band` rows, P such a
 * scratch for `band`. DY must be finite. */
cd_isz cd_fpl_bpf_scratch_f(const cd_geom* g, cd_isz rows);
cd_isz cd_fpl_bpf_scratch_d(const cd_geom* g, cd_isz rows);
void cd_fpl_bpf_f(const cd_geom* g, const float* X, const float* DY, float* part,
                  cd_isz n, cd_isz oy0, cd_isz oy1, cd_isz band, float* P);
void cd_fpl_bpf_d(const cd_geom* g, const double* X, const double* DY, double* part,
                  cd_isz n, cd_isz oy0, cd_isz oy1, cd_isz band, double* P);

/* The filter gradient as a GEMM on the same planes (any cs): cd_fpl_bgm_scratch and
 * cd_fpl_bgm as cd_fpl_bpf_scratch and cd_fpl_bpf, bands of <= CD_FPLG_MAXROWS rows;
 * DY may hold Inf or NaN (the padding is zeros times DY, as im2col + GEMM). */
#define CD_FPLG_MAXROWS 64
cd_isz cd_fpl_bgm_scratch_f(const cd_geom* g, cd_isz rows);
cd_isz cd_fpl_bgm_scratch_d(const cd_geom* g, cd_isz rows);
void cd_fpl_bgm_f(const cd_geom* g, const float* X, const float* DY, float* part,
                  cd_isz n, cd_isz oy0, cd_isz oy1, cd_isz band, float* P);
void cd_fpl_bgm_d(const cd_geom* g, const double* X, const double* DY, double* part,
                  cd_isz n, cd_isz oy0, cd_isz oy1, cd_isz band, double* P);

/* The planar transposed conv (_fplanar_impl.h): channels-last, one group, 2-D, 1 to
 * CD_FPL_MAXCO big-side channels (cb), kw <= CD_FPL_MAXKW, sx <= CD_TPL_MAXS.
 * cd_tpl_scratch: the elements of scratch a band of `rows` big rows needs; cd_tpl_run:
 * big rows [iy0, iy1) of image n from the filter packed (kh, kw, cs, cb), P such a
 * scratch, zeroed before its first band. */
#define CD_TPL_MAXS 8
cd_isz cd_tpl_scratch_f(const cd_geom* g, cd_isz rows);
cd_isz cd_tpl_scratch_d(const cd_geom* g, cd_isz rows);
void cd_tpl_run_f(const cd_geom* g, const float* X, const float* W, float* Y, cd_isz n,
                  cd_isz iy0, cd_isz iy1, float* P);
void cd_tpl_run_d(const cd_geom* g, const double* X, const double* W, double* Y,
                  cd_isz n, cd_isz iy0, cd_isz iy1, double* P);

/* The instruction set the kernels run with: "avx512", "avx2" or "baseline". */
const char* cd_dot_isa(void);
/* Use at most instruction set `cap` (0 baseline, 1 AVX2, 2 AVX-512: the default, i.e.
 * the best the CPU has); returns the one now used. For tests of every build. Not
 * thread-safe against running kernels: set it before calls, not during. */
int cd_dot_cap_isa(int cap);

#endif
