/* One instantiation of the implicit-GEMM transposed kernel ("igemm", see _dot.h),
 * included by _dot.c right after _dot_impl.h for the same (dtype, instruction set), so
 * CD_T, CD_SUF, CD_VL, CD_VEC and cd_load_ are defined. Also expects:
 *   CD_IG_NV    the most vectors of output channels one tile holds (panel width
 *               CD_IG_NV * CD_VL channels)
 *   CD_IG_ACC   accumulator vectors that fit in registers (tile rows MR * NV <= ACC)
 * No header guard: meant to be included several times.
 */

_Static_assert(CD_IG_NV >= 1 && CD_IG_NV <= 4, "the micro-kernel holds 1-4 vectors");

/* The widest channel block (panel) and the vector length of this instantiation: the
 * packed filter's layout, so the packing and the kernel must run the same one. */
static inline cd_isz CD_CAT(cd_igblock_, CD_SUF)(void) { return (cd_isz)CD_IG_NV * CD_VL; }
static inline cd_isz CD_CAT(cd_igvl_, CD_SUF)(void) { return CD_VL; }

/* The offset into the packed filter of the panel of (group grp, channel block c0 of
 * width nr, tap t): the layout of cd_ig_pack (_dot.h), written once for the pack and
 * the kernels that read it. */
static inline cd_isz CD_CAT(cd_igpanel_, CD_SUF)(const cd_geom* g, cd_isz grp, cd_isz c0,
                                                 cd_isz nr, cd_isz t)
{
    const cd_isz T = g->k[0] * g->k[1] * g->k[2];
    const cd_isz cbp = (g->cb + CD_VL - 1) / CD_VL * CD_VL;
    return (grp * T * cbp + c0 * T + t * nr) * g->cs;
}

/* the micro-kernel's software prefetch distance for streamed rows (NV == 1), elements:
 * 1024 and 2048 measured alike, 256 half as good (DCGAN TF g1 b1) */
#ifndef CD_PF_AHEAD
#define CD_PF_AHEAD 1024
#endif

/* The tile rows (outputs) of a tile of nv vectors. */
static inline int CD_CAT(cd_ig_mr_, CD_SUF)(int nv)
{
    int mr = CD_IG_ACC / (nv < 1 ? 1 : nv);
    return mr > 8 ? 8 : mr < 1 ? 1 : mr;
}

/* The micro-kernel: for i < MR outputs and NV vectors of channels,
 *     acc[i] = sum over t < nt, k < K of a[t*MR + i][k] * bt[t][k*NV*VL : (k+1)*NV*VL]
 * (a: the small-side pixel each output reads through tap t, or a row of zeros; bt: the
 * packed filter panel of tap t, one row of NV*VL channels per small-side channel k, rows
 * ldb elements apart).
 * (with astep > 0, a holds MR pointers and tap t of row i is a[i] + t * astep: the
 * forward tap rows, whose taps are a fixed stride apart)
 * Every output lane is one chain of fused multiply-adds in the fixed order (t, k):
 * the result does not depend on the tile, the task split or the thread count.
 * y[i] receives the first nc <= NV*VL channels.
 * next (cd_igmkp_ only; one vector, nt = 1): the first of the MR * K contiguous elements
 * the next tile's rows hold, fetched in address order while this tile runs, MR lines for
 * each line of a row it reads: the filter then streams from memory as one sequential
 * run. Without it each row is fetched CD_PF_AHEAD elements ahead; 8 such rows 4 KiB
 * apart (pixel lanes on DCGAN TF g1 at batch 1: 1024-channel rows) came from memory at
 * about half the rate. Only the fetches differ, never a sum. */
static inline __attribute__((always_inline)) void
CD_CAT(cd_igmkp_, CD_SUF)(const int MR, const int NV, cd_isz nt, const CD_T* const* a,
                          const CD_T* const* bt, cd_isz K, cd_isz ldb, CD_T* const* y,
                          cd_isz nc, cd_isz astep, const CD_T* next)
{
    enum { LINE = 64 / sizeof(CD_T) };
    CD_VEC acc[8][8];
    const cd_isz nr = (cd_isz)NV * CD_VL;
    for (int i = 0; i < MR; i++)
        for (int v = 0; v < NV; v++)
            acc[i][v] = (CD_VEC){0};
    for (cd_isz t = 0; t < nt; t++) {
        const CD_T* ap[8];
        const CD_T* bp = bt[t];
        for (int i = 0; i < MR; i++)
            ap[i] = astep ? a[i] + t * astep : a[t * MR + i];
        for (cd_isz k = 0; k < K; k++) {
            CD_VEC b[8];
            for (int v = 0; v < NV; v++) {
                b[v] = CD_CAT(cd_load_, CD_SUF)(bp + k * ldb + v * CD_VL);
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
                /* fewer rows than vectors (phase rows: 1-3 channels x 5-8 vectors): GCC
                 * would fold each vector load into every row's FMA, MR loads of each
                 * (unaligned) vector per channel; hold it in a register instead */
                if (MR < NV)
                    __asm__("" : "+v"(b[v]));
#endif
            }
            for (int i = 0; i < MR; i++) {
                const CD_T s = ap[i][k];
                for (int v = 0; v < NV; v++)
                    acc[i][v] += s * b[v];
            }
            /* one vector of lanes: every broadcast element is used once per k, so the
             * rows are streamed (pixel lanes on 16 pixels: DCGAN TF g1 at batch 1 streams
             * its 52 MB filter through 8 rows at a time); fetched once per cache line */
            if (NV == 1 && (k & (LINE - 1)) == 0) {
                if (next)
                    for (int l = 0; l < MR; l++)
                        __builtin_prefetch(next + MR * k + l * LINE, 0, 2);
                else
                    for (int i = 0; i < MR; i++)
                        __builtin_prefetch(ap[i] + k + CD_PF_AHEAD);
            }
        }
    }
    if (nc == nr) {
        for (int i = 0; i < MR; i++)
            for (int v = 0; v < NV; v++)
                __builtin_memcpy(y[i] + v * CD_VL, &acc[i][v], sizeof(CD_VEC));
    } else {
        /* a partial panel: its whole vectors, then the last one's lanes */
        const int nfull = (int)(nc / CD_VL);
        for (int i = 0; i < MR; i++) {
            for (int v = 0; v < nfull && v < NV; v++)
                __builtin_memcpy(y[i] + v * CD_VL, &acc[i][v], sizeof(CD_VEC));
#ifdef CD_STN
            /* one masked store (the scalar copy put every accumulator on the stack:
             * FSRCNN's forward, 56 channels in 64 lanes, 1.04x at 1 thread) */
            if (nfull < NV && nc > (cd_isz)nfull * CD_VL)
                CD_STN(y[i] + nfull * CD_VL, acc[i][nfull],
                       (int)(nc - (cd_isz)nfull * CD_VL));
#else
            for (cd_isz c = (cd_isz)nfull * CD_VL; c < nc; c++)
                y[i][c] = acc[i][c / CD_VL][c % CD_VL];
#endif
        }
    }
}

static inline __attribute__((always_inline)) void
CD_CAT(cd_igmk_, CD_SUF)(const int MR, const int NV, cd_isz nt, const CD_T* const* a,
                         const CD_T* const* bt, cd_isz K, cd_isz ldb, CD_T* const* y,
                         cd_isz nc, cd_isz astep)
{
    CD_CAT(cd_igmkp_, CD_SUF)(MR, NV, nt, a, bt, K, ldb, y, nc, astep, NULL);
}

static void
CD_CAT(cd_igmk_any_, CD_SUF)(int MR, int NV, cd_isz nt, const CD_T* const* a,
                             const CD_T* const* bt, cd_isz K, cd_isz ldb, CD_T* const* y,
                             cd_isz nc, cd_isz astep)
{
#define CD_IGK(m, v) case (m) * 16 + (v): \
    CD_CAT(cd_igmk_, CD_SUF)(m, v, nt, a, bt, K, ldb, y, nc, astep); return;
#define CD_IGK4(m) CD_IGK(m, 1) CD_IGK(m, 2) CD_IGK(m, 3) CD_IGK(m, 4)
#define CD_IGK8(m) CD_IGK4(m) CD_IGK(m, 5) CD_IGK(m, 6) CD_IGK(m, 7) CD_IGK(m, 8)
    switch (MR * 16 + NV) {
        CD_IGK8(1) CD_IGK8(2) CD_IGK8(3) CD_IGK4(4) CD_IGK(4, 5) CD_IGK(4, 6)
        CD_IGK4(5) CD_IGK4(6) CD_IGK4(7) CD_IGK4(8)
        default: {
            /* a shape no variant has (never planned: see cd_ig_mr_ and cd_pr_nv_): a row
             * and at most 4 vectors at a time, so no output is ever left unwritten */
            const CD_T* ai[CD_MAX_TAPS];
            const CD_T* bs[CD_MAX_TAPS];
            for (int i = 0; i < MR; i++) {
                for (cd_isz t = 0; t < nt; t++)
                    ai[t] = astep ? a[i] + t * astep : a[t * MR + i];
                for (int v0 = 0; v0 < NV; v0 += 4) {
                    const int nv = NV - v0 < 4 ? NV - v0 : 4;
                    const cd_isz off = (cd_isz)v0 * CD_VL;
                    cd_isz ncv = nc - off < (cd_isz)nv * CD_VL ? nc - off : (cd_isz)nv * CD_VL;
                    CD_T* yi = y[i] + off;
                    if (ncv <= 0)
                        break;
                    for (cd_isz t = 0; t < nt; t++)
                        bs[t] = bt[t] + off;
                    switch (nv) {
                        case 1: CD_CAT(cd_igmk_, CD_SUF)(1, 1, nt, ai, bs, K, ldb, &yi, ncv, 0); break;
                        case 2: CD_CAT(cd_igmk_, CD_SUF)(1, 2, nt, ai, bs, K, ldb, &yi, ncv, 0); break;
                        case 3: CD_CAT(cd_igmk_, CD_SUF)(1, 3, nt, ai, bs, K, ldb, &yi, ncv, 0); break;
                        default: CD_CAT(cd_igmk_, CD_SUF)(1, 4, nt, ai, bs, K, ldb, &yi, ncv, 0); break;
                    }
                }
            }
        }
            return;
    }
#undef CD_IGK8
#undef CD_IGK4
#undef CD_IGK
}

/* The outputs [j0, j1) of phase `phase` (see cd_ig_run in _dot.h), channel block
 * starting at c0, group grp. */
static void
CD_CAT(cd_igrun_, CD_SUF)(const cd_geom* g, cd_isz batch, const CD_T* X, const CD_T* Wp,
                          CD_T* Y, const CD_T* zero, cd_isz grp, cd_isz c0, cd_isz phase,
                          cd_isz j0, cd_isz j1)
{
    const cd_isz SD = g->small[0], SH = g->small[1], SW = g->small[2];
    const cd_isz BD = g->big[0], BH = g->big[1], BW = g->big[2];
    const cd_isz Cb = g->cb, Cs = g->cs;
    const cd_isz Cbig = g->groups * Cb, Csmall = g->groups * Cs;
    const cd_isz blk = (cd_isz)CD_IG_NV * CD_VL;
    const cd_isz cbp = (Cb + CD_VL - 1) / CD_VL * CD_VL;
    const cd_isz rem = cbp - c0;
    const cd_isz nr = rem < blk ? rem : blk;
    const int NV = (int)(nr / CD_VL);
    const int MR = CD_CAT(cd_ig_mr_, CD_SUF)(NV);
    const cd_isz nc = Cb - c0 < nr ? Cb - c0 : nr;
    cd_isz p[3], n[3], o[CD_MAX_TAPS][3], tap[CD_MAX_TAPS];
    const CD_T* bt[CD_MAX_TAPS];
    const CD_T* a[CD_MAX_TAPS * 8];
    CD_T* y[8];
    cd_isz q[8][4];
    p[2] = phase % g->s[2];
    p[1] = (phase / g->s[2]) % g->s[1];
    p[0] = phase / (g->s[2] * g->s[1]);
    for (int ax = 0; ax < 3; ax++)
        n[ax] = p[ax] < g->big[ax] ? (g->big[ax] - p[ax] + g->s[ax] - 1) / g->s[ax] : 0;
    /* the taps that reach this phase, the small-side offset each adds, their panels */
    const cd_isz nt = cd_phase_taps(g, p, tap, o);
    for (cd_isz t = 0; t < nt; t++)
        bt[t] = Wp + CD_CAT(cd_igpanel_, CD_SUF)(g, grp, c0, nr, tap[t]);
    cd_isz cur[4];
    cd_coords(j0, n, cur);
    for (cd_isz j = j0; j < j1; j += MR) {
        const int mr = (int)(j1 - j < MR ? j1 - j : MR);
        for (int i = 0; i < mr; i++) {
            __builtin_memcpy(q[i], cur, sizeof cur);     /* output j + i */
            cd_next(cur, n);
            y[i] = Y + (((q[i][3] * BD + p[0] + g->s[0] * q[i][0]) * BH
                         + p[1] + g->s[1] * q[i][1]) * BW + p[2] + g->s[2] * q[i][2]) * Cbig
                   + grp * Cb + c0;
        }
        if (nt == 0) {
            /* no tap reaches this phase: a sum of nothing */
            for (int i = 0; i < mr; i++)
                for (cd_isz c = 0; c < nc; c++)
                    y[i][c] = 0;
            continue;
        }
        for (cd_isz t = 0; t < nt; t++)
            for (int i = 0; i < mr; i++) {
                cd_isz sd = q[i][0] + o[t][0], sh = q[i][1] + o[t][1], sw = q[i][2] + o[t][2];
                a[t * mr + i] = (sd >= 0 && sd < SD && sh >= 0 && sh < SH && sw >= 0 && sw < SW)
                    ? X + (((q[i][3] * SD + sd) * SH + sh) * SW + sw) * Csmall + grp * Cs
                    : zero;
            }
        CD_CAT(cd_igmk_any_, CD_SUF)(mr, NV, nt, a, bt, Cs, nr, y, nc, 0);
    }
}

/* ---- direct rows: the igemm micro-kernel on one big row at a time, for few input
 * channels (MNIST-like layers: 1-2 channels into 8-64). A row's taps and the small rows
 * they read are found once per phase; the outputs where every tap is inside the small
 * side go MR at a time with no bounds checks, the rest one at a time with only their
 * taps inside (so a tap past the edge is never read: no zero row, and an Inf/NaN filter
 * entry there is dropped, as TF does). Each output is written once; its sum is igemm's
 * FMA chain (taps in cd_phase_taps order, then channels) without the taps past the
 * edge. */

/* Output q of one (row, phase) alone, with only its taps inside the small side (see
 * cd_drblk_). */
static inline __attribute__((always_inline)) void
CD_CAT(cd_drone_, CD_SUF)(const int NV, cd_isz nt, const CD_T* const* xr, const cd_isz* ow,
                          const CD_T* const* bt, cd_isz Cs, cd_isz Csmall, cd_isz nr,
                          cd_isz nc, cd_isz SW, cd_isz q, CD_T* y0, cd_isz ystep)
{
    const CD_T* a[CD_MAX_TAPS];
    const CD_T* bs[CD_MAX_TAPS];
    CD_T* y[1];
    cd_isz m = 0;
    for (cd_isz t = 0; t < nt; t++) {
        const cd_isz sw = q + ow[t];
        if (sw >= 0 && sw < SW) {
            a[m] = xr[t] + sw * Csmall;
            bs[m++] = bt[t];
        }
    }
    y[0] = y0 + q * ystep;
    if (m == 0)
        for (cd_isz c = 0; c < nc; c++)
            y[0][c] = 0;
    else
        CD_CAT(cd_igmk_, CD_SUF)(1, NV, m, a, bs, Cs, nr, y, nc, 0);
}

/* The outputs q < n2 of one (row, phase) for one channel block of NV vectors: tap t
 * reads small row xr[t] at pixel q + ow[t] (inside for lo <= q < hi), panel bt[t];
 * output q is y0 + q * ystep. */
static inline __attribute__((always_inline)) void
CD_CAT(cd_drblk_, CD_SUF)(const int NV, cd_isz nt, const CD_T* const* xr, const cd_isz* ow,
                          const CD_T* const* bt, cd_isz Cs, cd_isz Csmall, cd_isz nr,
                          cd_isz nc, cd_isz SW, cd_isz n2, cd_isz lo, cd_isz hi, CD_T* y0,
                          cd_isz ystep)
{
    enum { MR = 4 };
    const CD_T* a[CD_MAX_TAPS * MR];
    CD_T* y[MR];
    cd_isz q = 0;
    if (CD_IG_ACC >= 24 && nt * Cs * NV <= 16 && nc == nr && lo < hi) {
        /* few input channels and taps (MNIST-like layers: 1-4 channels into 16-64): the
         * taps' filter rows held in registers and the outputs with every tap inside
         * MR_S at a time, with no pointer lists; each output's chain is the
         * micro-kernel's (taps in order, then channels, from 0). With 32 vector
         * registers only (AVX-512): 16 filter rows and 8 accumulators; with 16 (AVX2)
         * the accumulators spilled (28x28x1 -> 64 b16 0.83x) */
        const int MR_S = NV <= 2 ? 4 : 2;
        CD_VEC wv[16];
        for (cd_isz t = 0; t < nt; t++)
            for (cd_isz k = 0; k < Cs; k++)
                for (int v = 0; v < NV; v++)
                    wv[(t * Cs + k) * NV + v] = CD_CAT(cd_load_, CD_SUF)(bt[t] + k * nr
                                                                         + v * CD_VL);
        for (; q < lo; q++)
            CD_CAT(cd_drone_, CD_SUF)(NV, nt, xr, ow, bt, Cs, Csmall, nr, nc, SW, q, y0,
                                      ystep);
        for (; q + MR_S <= hi; q += MR_S) {
            CD_VEC acc[4][4];
            for (int i = 0; i < MR_S; i++)
                for (int v = 0; v < NV; v++)
                    acc[i][v] = (CD_VEC){0};
            for (cd_isz t = 0; t < nt; t++) {
                const CD_T* xp = xr[t] + (q + ow[t]) * Csmall;
                for (cd_isz k = 0; k < Cs; k++)
                    for (int i = 0; i < MR_S; i++) {
                        const CD_T s = xp[i * Csmall + k];
                        for (int v = 0; v < NV; v++)
                            acc[i][v] += s * wv[(t * Cs + k) * NV + v];
                    }
            }
            for (int i = 0; i < MR_S; i++)
                for (int v = 0; v < NV; v++)
                    __builtin_memcpy(y0 + (q + i) * ystep + v * CD_VL, &acc[i][v],
                                     sizeof(CD_VEC));
        }
    }
    for (; q < n2;) {
        if (q >= lo && q + MR <= hi) {
            for (cd_isz t = 0; t < nt; t++)
                for (int i = 0; i < MR; i++)
                    a[t * MR + i] = xr[t] + (q + i + ow[t]) * Csmall;
            for (int i = 0; i < MR; i++)
                y[i] = y0 + (q + i) * ystep;
            CD_CAT(cd_igmk_, CD_SUF)(MR, NV, nt, a, bt, Cs, nr, y, nc, 0);
            q += MR;
            continue;
        }
        CD_CAT(cd_drone_, CD_SUF)(NV, nt, xr, ow, bt, Cs, Csmall, nr, nc, SW, q, y0, ystep);
        q++;
    }
}

/* Y's big rows [r0, r1) (r = (image * BD + bd) * BH + bh), the channels of group grp,
 * from the packed filter Wp (cd_igpack_). */
static void
CD_CAT(cd_drrun_, CD_SUF)(const cd_geom* g, const CD_T* X, const CD_T* Wp, CD_T* Y,
                          cd_isz grp, cd_isz r0, cd_isz r1)
{
    const cd_isz SD = g->small[0], SH = g->small[1], SW = g->small[2];
    const cd_isz BD = g->big[0], BH = g->big[1], BW = g->big[2];
    const cd_isz Cb = g->cb, Cs = g->cs;
    const cd_isz Cbig = g->groups * Cb, Csmall = g->groups * Cs;
    const cd_isz blk = (cd_isz)CD_IG_NV * CD_VL;
    const cd_isz cbp = (Cb + CD_VL - 1) / CD_VL * CD_VL;
    const cd_isz s2 = g->s[2];
    /* the taps per axis (their product in (kd, kh, kw) order is cd_phase_taps's list) */
    cd_isz k0[CD_MAX_TAPS], k1[CD_MAX_TAPS], k2[CD_MAX_TAPS];
    cd_isz o0[CD_MAX_TAPS], o1[CD_MAX_TAPS], o2[CD_MAX_TAPS];
    cd_isz ow[CD_MAX_TAPS], tk[CD_MAX_TAPS];
    const CD_T* xr[CD_MAX_TAPS];
    const CD_T* bt[CD_MAX_TAPS];
    for (cd_isz r = r0; r < r1; r++) {
        const cd_isz b = r / (BD * BH), bd = (r / BH) % BD, bh = r % BH;
        CD_T* yrow = Y + r * BW * Cbig + grp * Cb;
        const cd_isz q0 = bd / g->s[0], q1 = bh / g->s[1];
        const cd_isz n0 = cd_axis_taps(g, 0, bd % g->s[0], k0, o0);
        const cd_isz n1 = cd_axis_taps(g, 1, bh % g->s[1], k1, o1);
        for (cd_isz p2 = 0; p2 < s2 && p2 < BW; p2++) {
            const cd_isz n2 = (BW - p2 + s2 - 1) / s2;
            const cd_isz m2 = cd_axis_taps(g, 2, p2, k2, o2);
            cd_isz nt = 0, lo = 0, hi = n2;
            /* the taps whose small row is inside; the outputs all of them reach */
            for (cd_isz i0 = 0; i0 < n0; i0++) {
                const cd_isz sd = q0 + o0[i0];
                if (sd < 0 || sd >= SD)
                    continue;
                for (cd_isz i1 = 0; i1 < n1; i1++) {
                    const cd_isz sh = q1 + o1[i1];
                    if (sh < 0 || sh >= SH)
                        continue;
                    const CD_T* row = X + ((b * SD + sd) * SH + sh) * SW * Csmall + grp * Cs;
                    for (cd_isz i2 = 0; i2 < m2; i2++) {
                        xr[nt] = row;
                        ow[nt] = o2[i2];
                        tk[nt++] = (k0[i0] * g->k[1] + k1[i1]) * g->k[2] + k2[i2];
                        if (-o2[i2] > lo)
                            lo = -o2[i2];
                        if (SW - o2[i2] < hi)
                            hi = SW - o2[i2];
                    }
                }
            }
            for (cd_isz c0 = 0; c0 < cbp; c0 += blk) {
                const cd_isz nr = cbp - c0 < blk ? cbp - c0 : blk;
                const cd_isz nc = Cb - c0 < nr ? Cb - c0 : nr;
                for (cd_isz t = 0; t < nt; t++)
                    bt[t] = Wp + CD_CAT(cd_igpanel_, CD_SUF)(g, grp, c0, nr, tk[t]);
                CD_T* y0 = yrow + p2 * Cbig + c0;
#define CD_DRB(v) CD_CAT(cd_drblk_, CD_SUF)(v, nt, xr, ow, bt, Cs, Csmall, nr, nc, SW, \
                                            n2, lo, hi, y0, s2 * Cbig)
                switch (nr / CD_VL) {
                    case 1: CD_DRB(1); break;
                    case 2: CD_DRB(2); break;
                    case 3: CD_DRB(3); break;
                    default: CD_DRB(4); break;
                }
#undef CD_DRB
            }
        }
    }
}

/* P[k * ldp + p] := src[p * stride + k] for p < n, k < K: 16 x 16 blocks transposed in
 * registers where the ISA has CD_TR16M, masked at the edges (the scalar loop was 16 % of
 * a batch-1 U-Net layer's time packing its 1 MiB filter, and 12 % of ZFNet b1's filter
 * gradient). */
static void
CD_CAT(cd_tpose_, CD_SUF)(CD_T* P, cd_isz ldp, cd_isz n, cd_isz K, const CD_T* src,
                          cd_isz stride)
{
#ifdef CD_TR16M
    for (cd_isz p0 = 0; p0 < n; p0 += 16) {
        const int nj = (int)(n - p0 < 16 ? n - p0 : 16);
        for (cd_isz k = 0; k < K; k += 16) {
            const int nk = (int)(K - k < 16 ? K - k : 16);
            if (nj == 16 && nk == 16)
                CD_TR16(P + k * ldp + p0, ldp, src + p0 * stride + k, stride);
            else
                CD_TR16M(P + k * ldp + p0, ldp, src + p0 * stride + k, stride, nj, nk);
        }
    }
#else
    for (cd_isz p = 0; p < n; p++)
        for (cd_isz k = 0; k < K; k++)
            P[k * ldp + p] = src[p * stride + k];
#endif
}

#ifdef CD_TR16M
/* One big row of one group from its phases: yr[(s2 * q + r) * Cb + c] := src[(r * Cb + c)
 * * ld + q] for big columns s2 * q + r < BW (s2 * Cb <= 16, BW >= s2). The output
 * columns s2 * q .. s2 * q + s2 - 1 (all channels) are consecutive in Y, so the s2 x Cb
 * rows are one block, transposed in registers 16 columns at a time (masked at the edges). */
static void
CD_CAT(cd_phout_, CD_SUF)(CD_T* yr, const CD_T* src, cd_isz ld, cd_isz BW, cd_isz s2,
                          cd_isz Cb)
{
    const cd_isz nw = BW / s2, R = s2 * Cb;
    for (cd_isz q = 0; q < nw; q += 16)
        CD_TR16M(yr + q * R, R, src + q, ld, (int)R, (int)(nw - q < 16 ? nw - q : 16));
    /* the last big column's phases when s2 does not divide BW */
    for (cd_isz e = 0; e < BW % s2 * Cb; e++)
        yr[nw * R + e] = src[e * ld + nw];
}
#endif

/* P[k * w + p] := src[p * stride + k] for p < nvalid, 0 for nvalid <= p < w, k < K:
 * rows laid out as the columns of a panel of width w (zeros past the valid ones). */
static void
CD_CAT(cd_panel_, CD_SUF)(CD_T* P, cd_isz w, cd_isz nvalid, cd_isz K, const CD_T* src,
                          cd_isz stride)
{
    const cd_isz pv = nvalid < w ? nvalid : w;
    CD_CAT(cd_tpose_, CD_SUF)(P, w, pv, K, src, stride);
    for (cd_isz k = 0; k < K; k++)
        for (cd_isz p = pv; p < w; p++)
            P[k * w + p] = 0;
}

/* Whether any of p[0 .. n) is Inf or NaN (x - x is 0 exactly for finite x). */
static int CD_CAT(cd_nonfinite_, CD_SUF)(const CD_T* p, cd_isz n)
{
    int bad = 0;
    for (cd_isz i = 0; i < n; i++)
        bad |= p[i] - p[i] != 0;
    return bad;
}

/* Wp (this group and channel block) := the filter panels: for tap t, small-side channel
 * k, the block's nr channels c (zeros past Cb): Wp[t][k][c] = W[t, c0 + c, grp*Cs + k].
 * Returns whether the block holds Inf or NaN (checked on the panels just written, still
 * in cache). */
static int
CD_CAT(cd_igpack_, CD_SUF)(const cd_geom* g, const CD_T* W, CD_T* Wp, cd_isz grp, cd_isz c0)
{
    const cd_isz Cb = g->cb, Cs = g->cs, T = g->k[0] * g->k[1] * g->k[2];
    const cd_isz Csmall = g->groups * Cs;
    const cd_isz blk = (cd_isz)CD_IG_NV * CD_VL;
    const cd_isz cbp = (Cb + CD_VL - 1) / CD_VL * CD_VL;
    const cd_isz nr = cbp - c0 < blk ? cbp - c0 : blk;
    int bad = 0;
    for (cd_isz t = 0; t < T; t++) {
        CD_T* panel = Wp + CD_CAT(cd_igpanel_, CD_SUF)(g, grp, c0, nr, t);
        CD_CAT(cd_panel_, CD_SUF)(panel, nr, Cb - c0, Cs,
                                  W + (t * Cb + c0) * Csmall + grp * Cs, Csmall);
        bad |= CD_CAT(cd_nonfinite_, CD_SUF)(panel, nr * Cs);
    }
    return bad;
}

/* ---- pixel lanes: the same micro-kernel with the roles turned round, for few input
 * pixels (batch-1 generator heads): the vector lanes are the input pixels (Xt, packed
 * by cd_plpack_ below), the broadcast rows are the filter rows W[t, c, grp*Cs:...] read
 * in place, so every filter element is loaded once; each (tap, MR channels) tile is
 * then added into the big side. */

/* Xt (group grp) := the small side transposed, in chunks of up to CD_IG_NV vectors of
 * pixels: Xt[(grp * ceil(npix / pb) + j) * Cs * pb + k * w + p] = X[j*pb + p, grp*Cs + k]
 * for the chunk's width w = min(pb, npv - j*pb) (npv = npix rounded up to CD_VL, zeros
 * past npix), pb = CD_IG_NV * CD_VL. */
static void
CD_CAT(cd_plpack_, CD_SUF)(const cd_geom* g, cd_isz npix, const CD_T* X, CD_T* Xt,
                           cd_isz grp)
{
    const cd_isz Cs = g->cs, Csmall = g->groups * Cs;
    const cd_isz pb = (cd_isz)CD_IG_NV * CD_VL;
    const cd_isz npv = (npix + CD_VL - 1) / CD_VL * CD_VL;
    const cd_isz nch = (npv + pb - 1) / pb;
    for (cd_isz j = 0; j < nch; j++) {
        const cd_isz w = npv - j * pb < pb ? npv - j * pb : pb;
        CD_CAT(cd_panel_, CD_SUF)(Xt + (grp * nch + j) * Cs * pb, w, npix - j * pb, Cs,
                                  X + j * pb * Csmall + grp * Cs, Csmall);
    }
}

/* Y[:, grp*Cb + c0 : grp*Cb + c1] := the transposed conv of the npix small pixels
 * (packed in Xt) for those channels: zeroed, then for each tap t (in order), each pixel
 * chunk, each tile of MR channels, col = W[t, c, :] . Xt (the tile's sums in registers)
 * added into the big pixel tap t of each small pixel lands on, pixels in order. Safe to
 * call concurrently for disjoint (grp, [c0, c1)). */
static void
CD_CAT(cd_plrun_, CD_SUF)(const cd_geom* g, cd_isz npix, const CD_T* Xt, const CD_T* W,
                          CD_T* Y, cd_isz grp, cd_isz c0, cd_isz c1)
{
    const cd_isz SD = g->small[0], SH = g->small[1], SW = g->small[2];
    const cd_isz BD = g->big[0], BH = g->big[1], BW = g->big[2];
    const cd_isz Cb = g->cb, Cs = g->cs, Cbig = g->groups * Cb, Csmall = g->groups * Cs;
    const cd_isz pb = (cd_isz)CD_IG_NV * CD_VL;
    const cd_isz npv = (npix + CD_VL - 1) / CD_VL * CD_VL;
    const cd_isz nch = (npv + pb - 1) / pb;
    const cd_isz nbig = npix / (SD * SH * SW) * BD * BH * BW;
    const cd_isz T = g->k[0] * g->k[1] * g->k[2];
    CD_T* Yg = Y + grp * Cb;
#ifdef CD_TR16
    /* 16 rows so a 16 x 16 block turns round in registers (rows past a group: read by
     * the turn, never added) */
    CD_T col[16][4 * CD_VL] = {{0}};
    CD_T tr[16 * 16];
#else
    CD_T col[8][4 * CD_VL];
#endif
    /* col's rows: those of one group of tiles (below) */
    enum { NROWS = sizeof(col) / sizeof(col[0]) };
    CD_T* rows[NROWS];
    for (int i = 0; i < NROWS; i++)
        rows[i] = col[i];
    const CD_T* a[8];
    cd_isz dst[4 * CD_VL];
    for (cd_isz q = 0; q < nbig; q++)
        for (cd_isz c = c0; c < c1; c++)
            Yg[q * Cbig + c] = 0;
    for (cd_isz kd = 0; kd < g->k[0]; kd++)
    for (cd_isz kh = 0; kh < g->k[1]; kh++)
    for (cd_isz kw = 0; kw < g->k[2]; kw++) {
        const cd_isz t = (kd * g->k[1] + kh) * g->k[2] + kw;
        for (cd_isz j = 0; j < nch; j++) {
            const cd_isz w = npv - j * pb < pb ? npv - j * pb : pb;
            const int NV = (int)(w / CD_VL);
            const int MR = CD_CAT(cd_ig_mr_, CD_SUF)(NV);
            const CD_T* bt = Xt + (grp * nch + j) * Cs * pb;
            cd_isz nd = 0;
            /* the big pixel each of the chunk's small pixels reaches through tap t */
            const cd_isz kk[3] = {kd, kh, kw};
            /* the chunk's first pixel decoded once (image, d, h, w), then counted on */
            cd_isz sz[4], r = j * pb;
            sz[3] = r % SW;
            r /= SW;
            sz[2] = r % SH;
            r /= SH;
            sz[1] = r % SD;
            sz[0] = r / SD;
            for (cd_isz p = 0; p < w; p++) {
                cd_isz z[3], ok = j * pb + p < npix;
                for (int ax = 0; ax < 3 && ok; ax++) {
                    z[ax] = sz[ax + 1] * g->s[ax] - g->pad[ax] + kk[ax] * g->d[ax];
                    ok = z[ax] >= 0 && z[ax] < g->big[ax];
                }
                dst[p] = ok ? (((sz[0] * BD + z[0]) * BH + z[1]) * BW + z[2]) * Cbig : -1;
                nd += ok;
                if (++sz[3] == SW) {
                    sz[3] = 0;
                    if (++sz[2] == SH) {
                        sz[2] = 0;
                        if (++sz[1] == SD) {
                            sz[1] = 0;
                            sz[0]++;
                        }
                    }
                }
            }
            if (nd == 0)
                continue;
            /* the tiles of a group of up to NROWS channels (whole tiles) fill col's rows,
             * then are added together: with 16 rows, 12-16 of the 16 each 16 x 16 turn
             * moves are used, not MR = 6-8 (a tile's sums and their order unchanged) */
            const int G = NROWS / MR * MR;
            for (cd_isz cg = c0; cg < c1; cg += G) {
                const int ng = (int)(c1 - cg < G ? c1 - cg : G);
                for (int c = 0; c < ng; c += MR) {
                    const int mr = ng - c < MR ? ng - c : MR;
                    for (int i = 0; i < mr; i++)
                        a[i] = W + (t * Cb + cg + c + i) * Csmall + grp * Cs;
                    if (mr == 8 && NV == 1) {
                        /* the next tile's rows: this range's next ones, else the
                         * first of the next tap's (contiguous when there is one group;
                         * a full tile here means c1 - c0 >= 8) */
                        const CD_T* next = NULL;
                        if (Csmall == Cs) {
                            if (cg + c + 8 < c1)
                                next = a[0] + 8 * Cs;
                            else if (t + 1 < T)
                                next = W + ((t + 1) * Cb + c0) * Cs;
                        }
                        /* (one vector: w = CD_VL, a constant the loop's addressing
                         * folds in) */
                        CD_CAT(cd_igmkp_, CD_SUF)(8, 1, 1, a, &bt, Cs, CD_VL, rows + c,
                                                  CD_VL, 0, next);
                    } else
                        CD_CAT(cd_igmk_any_, CD_SUF)(mr, NV, 1, a, &bt, Cs, w, rows + c, w, 0);
                }
                cd_isz p = 0;
#ifdef CD_TR16
                /* 16 pixels at a time: the group turned round in registers, then each
                 * pixel's ng channels one masked vector add (the scalar adds were most
                 * of this loop's time on batch-1 generator heads) */
                for (; p + 16 <= w; p += 16) {
                    CD_TR16(tr, 16, &col[0][p], 4 * CD_VL);
                    for (int e = 0; e < 16; e++)
                        if (dst[p + e] >= 0)
                            CD_ADDN(Yg + dst[p + e] + cg, tr + e * 16, ng);
                }
#endif
                for (; p < w; p++) {
                    if (dst[p] < 0)
                        continue;
                    CD_T* y = Yg + dst[p] + cg;
                    for (int i = 0; i < ng; i++)
                        y[i] += col[i][p];
                }
            }
        }
    }
}

/* ---- the forward convolution on the same micro-kernel: the outputs are the small side
 * (raster order over batch, D, H, W), each a sum over every tap of the big-side pixel
 * it reads (or a row of zeros past the edge) times the packed filter panel:
 *     Y[b, q, grp*Cs + c] = sum_t sum_k X[b, q*s - pad + t*d, grp*Cb + k] * W[t, k, grp*Cs + c]
 */

/* Wp (group grp, block c0) := Wp[t][k][c] = W[t, k, grp*Cs + c0 + c] (zeros past Cs),
 * panel width nr = min(block, Csp - c0), Csp = Cs rounded up to CD_VL; the block of
 * (grp, c0) starts at (grp*T*Csp + c0*T) * Cb. */
static void
CD_CAT(cd_igfpack_, CD_SUF)(const cd_geom* g, const CD_T* W, CD_T* Wp, cd_isz grp,
                            cd_isz c0)
{
    const cd_isz Cb = g->cb, Cs = g->cs, T = g->k[0] * g->k[1] * g->k[2];
    const cd_isz Csmall = g->groups * Cs;
    const cd_isz blk = (cd_isz)CD_IG_NV * CD_VL;
    const cd_isz csp = (Cs + CD_VL - 1) / CD_VL * CD_VL;
    const cd_isz nr = csp - c0 < blk ? csp - c0 : blk;
    const cd_isz nc = Cs - c0 < nr ? Cs - c0 : nr;
    CD_T* base = Wp + (grp * T * csp + c0 * T) * Cb;
    for (cd_isz t = 0; t < T; t++)
        for (cd_isz k = 0; k < Cb; k++) {
            const CD_T* w = W + (t * Cb + k) * Csmall + grp * Cs + c0;
            CD_T* P = base + (t * Cb + k) * nr;
            for (cd_isz c = 0; c < nr; c++)
                P[c] = c < nc ? w[c] : 0;
        }
}

/* The small-side outputs [j0, j1), channel block c0 of group grp. zero: Cb zeros. */
static void
CD_CAT(cd_igfrun_, CD_SUF)(const cd_geom* g, const CD_T* X, const CD_T* Wp, CD_T* Y,
                           const CD_T* zero, cd_isz grp, cd_isz c0, cd_isz j0, cd_isz j1)
{
    const cd_isz SD = g->small[0], SH = g->small[1], SW = g->small[2];
    const cd_isz BD = g->big[0], BH = g->big[1], BW = g->big[2];
    const cd_isz Cb = g->cb, Cs = g->cs, T = g->k[0] * g->k[1] * g->k[2];
    const cd_isz Cbig = g->groups * Cb, Csmall = g->groups * Cs;
    const cd_isz blk = (cd_isz)CD_IG_NV * CD_VL;
    const cd_isz csp = (Cs + CD_VL - 1) / CD_VL * CD_VL;
    const cd_isz nr = csp - c0 < blk ? csp - c0 : blk;
    const int NV = (int)(nr / CD_VL);
    const int MR = CD_CAT(cd_ig_mr_, CD_SUF)(NV);
    const cd_isz nc = Cs - c0 < nr ? Cs - c0 : nr;
    const CD_T* bt[CD_MAX_TAPS];
    const CD_T* a[CD_MAX_TAPS * 8];
    CD_T* y[8];
    cd_isz q[8][4];
    for (cd_isz t = 0; t < T; t++)
        bt[t] = Wp + (grp * T * csp + c0 * T + t * nr) * Cb;
    const cd_isz n[3] = {SD, SH, SW};
    cd_isz cur[4];
    cd_coords(j0, n, cur);
    for (cd_isz j = j0; j < j1; j += MR) {
        const int mr = (int)(j1 - j < MR ? j1 - j : MR);
        for (int i = 0; i < mr; i++) {
            __builtin_memcpy(q[i], cur, sizeof cur);     /* output j + i */
            cd_next(cur, n);
            y[i] = Y + (j + i) * Csmall + grp * Cs + c0;
        }
        for (cd_isz kd = 0, t = 0; kd < g->k[0]; kd++)
        for (cd_isz kh = 0; kh < g->k[1]; kh++)
        for (cd_isz kw = 0; kw < g->k[2]; kw++, t++)
            for (int i = 0; i < mr; i++) {
                cd_isz zd = q[i][0] * g->s[0] - g->pad[0] + kd * g->d[0];
                cd_isz zh = q[i][1] * g->s[1] - g->pad[1] + kh * g->d[1];
                cd_isz zw = q[i][2] * g->s[2] - g->pad[2] + kw * g->d[2];
                a[t * mr + i] = (zd >= 0 && zd < BD && zh >= 0 && zh < BH && zw >= 0 && zw < BW)
                    ? X + (((q[i][3] * BD + zd) * BH + zh) * BW + zw) * Cbig + grp * Cb
                    : zero;
            }
        CD_CAT(cd_igmk_any_, CD_SUF)(mr, NV, T, a, bt, Cb, nr, y, nc, 0);
    }
}

/* ---- phase rows: the same micro-kernel for few big-side channels (heads with 1-15
 * output channels, where igemm's channel lanes would be mostly empty). A task
 * transposes the small rows it reads into channel-major planes, per small depth sd:
 *     plane[k][sh - sh_lo][L + sw] = X[b, sd, sh, sw, grp*Cs + k]
 * (PW columns per row, zeros around the data, and zero rows past the edges). A phase
 * (pd, ph, pw)'s outputs in the task are then one flat run of lanes f = row * PW + qw
 * (lanes with qw >= the phase's width are computed and dropped), and each of its taps
 * reads the plane at one constant offset from f: the vector lanes are those flat
 * outputs, the broadcast rows the filter rows W[t, c, grp*Cs : ...] read in place.
 * Each output is the one chain of fused multiply-adds over (taps in order, channels)
 * that igemm computes: the same bits as igemm on the same instruction set. The phases
 * of a row of phases go to a buffer, then are interleaved into Y's big rows. */

/* The plane columns: L zero columns (the most a tap reaches left of the data), then
 * the small row, PW columns in all (room for the widest phase's last tap). */
static void
CD_CAT(cd_prcols_, CD_SUF)(const cd_geom* g, cd_isz* L, cd_isz* PW)
{
    const cd_isz s = g->s[2];
    const cd_isz ow_min = cd_floordiv(g->pad[2] - (g->k[2] - 1) * g->d[2], s);
    const cd_isz ow_max = cd_floordiv(s - 1 + g->pad[2], s);
    const cd_isz nw = (g->big[2] + s - 1) / s;
    const cd_isz l = ow_min < 0 ? -ow_min : 0;
    *L = l;
    *PW = l + (nw + ow_max > g->small[2] ? nw + ow_max : g->small[2]);
}

/* The vectors of a tile of mr channels: as many as the registers hold beside the mr
 * accumulator rows, the vector rows and a broadcast (8 at most). */
static inline int CD_CAT(cd_pr_nv_, CD_SUF)(int mr)
{
    int nv = CD_IG_ACC / mr, nr = (CD_IG_ACC + 2) / (mr + 1);
    nv = nv < nr ? nv : nr;
    return nv > 8 ? 8 : nv < 1 ? 1 : nv;
}

/* Sizes for tasks of at most rb big rows: the most small rows (sh) a task reads per
 * depth, and the elements of a task's scratch (the phase buffer, then the planes of
 * every small depth a task can read, then slack that the dropped lanes may read) and
 * of the zero planes. */
static void
CD_CAT(cd_prdims_, CD_SUF)(const cd_geom* g, cd_isz rb, cd_isz* nsh, cd_isz* buf,
                           cd_isz* scratch, cd_isz* zero)
{
    cd_isz L, PW;
    CD_CAT(cd_prcols_, CD_SUF)(g, &L, &PW);
    const cd_isz nsd = ((g->k[0] - 1) * g->d[0] + g->s[0] - 1) / g->s[0] + 1;
    const cd_isz nq = (rb + g->s[1] - 1) / g->s[1];
    *nsh = (rb - 1 + (g->k[1] - 1) * g->d[1]) / g->s[1] + 2;
    *buf = nq * PW + 8 * CD_VL;                 /* lanes per (phase, channel) */
    /* every small depth a task reads exists unless the depth axis is strided, padded
     * or has taps (3-D): no zero planes otherwise */
    *zero = g->k[0] == 1 && g->s[0] == 1 && g->pad[0] == 0 ? 0
        : g->cs * *nsh * PW + PW + 8 * CD_VL;
    *scratch = g->s[2] * g->cb * *buf + nsd * g->cs * *nsh * PW + PW + 8 * CD_VL;
}

static void
CD_CAT(cd_prsizes_, CD_SUF)(const cd_geom* g, cd_isz rb, cd_isz* scratch, cd_isz* zero)
{
    cd_isz nsh, buf;
    CD_CAT(cd_prdims_, CD_SUF)(g, rb, &nsh, &buf, scratch, zero);
}

/* Y's big rows (bz, zh) for zh0 <= zh < zh1 <= zh0 + rb (bz = image * BD + zd),
 * channels of group grp. S: a task's scratch (cd_prsizes_ for rb), zeroed before its
 * first task; zero: the zero planes. Safe to call concurrently for distinct (grp, rows)
 * with distinct scratch. */
static void
CD_CAT(cd_prrun_, CD_SUF)(const cd_geom* g, const CD_T* X, const CD_T* W, CD_T* Y,
                          CD_T* S, const CD_T* zero, cd_isz rb, cd_isz grp, cd_isz bz,
                          cd_isz zh0, cd_isz zh1)
{
    const cd_isz SD = g->small[0], SH = g->small[1], SW = g->small[2];
    const cd_isz BD = g->big[0], BH = g->big[1], BW = g->big[2];
    const cd_isz Cb = g->cb, Cs = g->cs, Cbig = g->groups * Cb, Csmall = g->groups * Cs;
    const cd_isz s1 = g->s[1], s2 = g->s[2];
    const cd_isz b = bz / BD, zd = bz % BD;
    cd_isz L, PW, nsh_max, nbuf, nsc, nz;
    CD_CAT(cd_prcols_, CD_SUF)(g, &L, &PW);
    CD_CAT(cd_prdims_, CD_SUF)(g, rb, &nsh_max, &nbuf, &nsc, &nz);
    const cd_isz sd_lo = cd_floordiv(zd + g->pad[0] - (g->k[0] - 1) * g->d[0], g->s[0]);
    const cd_isz sd_hi = cd_floordiv(zd + g->pad[0], g->s[0]);
    const cd_isz sh_lo = cd_floordiv(zh0 + g->pad[1] - (g->k[1] - 1) * g->d[1], s1);
    const cd_isz sh_hi = cd_floordiv(zh1 - 1 + g->pad[1], s1);
    /* channel stride of a plane: the same for every task of this scratch (rb), so the
     * zero columns of each plane row (L before the data, PW - L - SW after) sit at the
     * same places in every task: zeroed with the scratch, never written */
    const cd_isz kst = nsh_max * PW;
    const int mr_max = CD_IG_ACC / 4;
    CD_T* buf = S;
    CD_T* planes = S + s2 * Cb * nbuf;
    const CD_T* bt[CD_MAX_TAPS];
    const CD_T* bq[CD_MAX_TAPS];
    cd_isz wt[CD_MAX_TAPS], off[CD_MAX_TAPS][3];
    const CD_T* a[CD_MAX_TAPS * 8];
    CD_T* y[8];
    /* the small rows this task reads, transposed (zero rows past the edges) */
    for (cd_isz sd = sd_lo; sd <= sd_hi; sd++) {
        if (sd < 0 || sd >= SD)
            continue;
        CD_T* P = planes + (sd - sd_lo) * Cs * kst;
        for (cd_isz sh = sh_lo; sh <= sh_hi; sh++) {
            CD_T* row = P + (sh - sh_lo) * PW;
            if (sh < 0 || sh >= SH) {
                for (cd_isz k = 0; k < Cs; k++)
                    for (cd_isz c = 0; c < PW; c++)
                        row[k * kst + c] = 0;
                continue;
            }
            const CD_T* xr = X + ((b * SD + sd) * SH + sh) * SW * Csmall + grp * Cs;
            CD_CAT(cd_tpose_, CD_SUF)(row + L, kst, SW, Cs, xr, Csmall);
        }
    }
    {
        /* the lanes a phase drops may read past the last small depth written: zeros */
        const cd_isz top = (sd_hi < SD - 1 ? sd_hi : SD - 1) - sd_lo + 1;
        CD_T* slack = planes + (top > 0 ? top : 0) * Cs * kst;
        for (cd_isz e = 0; e < PW + 8 * CD_VL; e++)
            slack[e] = 0;
    }
    const cd_isz pd = zd % g->s[0], qd = zd / g->s[0];
    for (cd_isz ph = 0; ph < s1; ph++) {
        /* this phase's big rows in the task: zf, zf + s1, ... (nq of them) */
        const cd_isz zf = zh0 + ((ph - zh0 % s1) % s1 + s1) % s1;
        if (zf >= zh1)
            continue;
        const cd_isz nq = (zh1 - 1 - zf) / s1 + 1, qf = zf / s1;
        const cd_isz nl = nq * PW;              /* the run of lanes */
        for (cd_isz pw = 0; pw < s2 && pw < BW; pw++) {
            CD_T* pb = buf + pw * Cb * nbuf;
            /* the taps that reach phase (pd, ph, pw), in order, and where lane 0 reads:
             * the plane of its small depth (zeros past the edge), its row, its column */
            const cd_isz ph3[3] = {pd, ph, pw};
            const cd_isz nt = cd_phase_taps(g, ph3, wt, off);
            for (cd_isz t = 0; t < nt; t++) {
                const cd_isz sd = qd + off[t][0];
                const CD_T* P = sd >= 0 && sd < SD ? planes + (sd - sd_lo) * Cs * kst : zero;
                bt[t] = P + (qf + off[t][1] - sh_lo) * PW + L + off[t][2];
            }
            if (nt == 0) {
                /* no tap reaches this phase: a sum of nothing */
                for (cd_isz c = 0; c < Cb; c++)
                    for (cd_isz f = 0; f < nl; f++)
                        pb[c * nbuf + f] = 0;
                continue;
            }
            for (cd_isz c0 = 0; c0 < Cb; ) {
                const int mr = (int)(Cb - c0 < mr_max ? Cb - c0 : mr_max);
                const int nv = CD_CAT(cd_pr_nv_, CD_SUF)(mr);
                const cd_isz blk = (cd_isz)nv * CD_VL;
                for (cd_isz t = 0; t < nt; t++)
                    for (int i = 0; i < mr; i++)
                        a[t * mr + i] = W + (wt[t] * Cb + c0 + i) * Csmall + grp * Cs;
                for (cd_isz f0 = 0; f0 < nl; f0 += blk) {
                    const cd_isz rest = nl - f0 < blk ? nl - f0 : blk;
                    const int NV = (int)((rest + CD_VL - 1) / CD_VL);
                    for (cd_isz t = 0; t < nt; t++)
                        bq[t] = bt[t] + f0;
                    for (int i = 0; i < mr; i++)
                        y[i] = pb + (c0 + i) * nbuf + f0;
                    CD_CAT(cd_igmk_any_, CD_SUF)(mr, NV, nt, a, bq, Cs, kst, y,
                                                 (cd_isz)NV * CD_VL, 0);
                }
                c0 += mr;
            }
        }
        /* interleave the phases along W (and the channels) into the big rows: the
         * lanes f = q * PW + qw of buffer row (pw, c) go to Y's zw = s2 * qw + pw */
        for (cd_isz q = 0; q < nq; q++) {
            CD_T* yr = Y + (bz * BH + zf + q * s1) * BW * Cbig + grp * Cb;
#ifdef CD_TR16M
            /* blocks of (16 outputs of a phase) x (up to 16 channels) transposed in
             * registers, masked at the edges */
            if (Cbig == Cb && s2 * Cb <= 16 && BW >= s2) {
                /* one group: the s2 x Cb buffer rows (pw * Cb + c) are one block */
                CD_CAT(cd_phout_, CD_SUF)(yr, buf + q * PW, nbuf, BW, s2, Cb);
                continue;
            }
            for (cd_isz pw = 0; pw < s2 && pw < BW; pw++) {
                const cd_isz nw = (BW - pw + s2 - 1) / s2;
                const CD_T* src = buf + pw * Cb * nbuf + q * PW;
                for (cd_isz qw = 0; qw < nw; qw += 16)
                    for (cd_isz c = 0; c < Cb; c += 16)
                        CD_TR16M(yr + (s2 * qw + pw) * Cbig + c, s2 * Cbig,
                                 src + c * nbuf + qw, nbuf,
                                 (int)(Cb - c < 16 ? Cb - c : 16),
                                 (int)(nw - qw < 16 ? nw - qw : 16));
            }
#else
            for (cd_isz pw = 0; pw < s2 && pw < BW; pw++) {
                const cd_isz nw = (BW - pw + s2 - 1) / s2, ys = s2 * Cbig;
                const CD_T* src = buf + pw * Cb * nbuf + q * PW;
                CD_T* yp = yr + pw * Cbig;
                for (cd_isz qw = 0; qw < nw; qw++)
                    for (cd_isz c = 0; c < Cb; c++)
                        yp[qw * ys + c] = src[c * nbuf + qw];
            }
#endif
        }
    }
}

/* ---- scatter rows: the pixel-lanes micro-kernel for 1-2 big-side channels over many
 * pixels (FSRCNN-like heads, where igemm's channel lanes and phase rows' one broadcast
 * row per vector load are mostly empty). A task owns big rows [zh0, zh1) of one image
 * plane. It packs the small pixels those rows read (flat runs of up to CD_IG_NV
 * vectors, cd_panel_), and for each run computes every (tap, channel) filter row the
 * rows need times the run (tiles of MR rows, each lane one FMA chain over the small
 * channels), adding each result row into the task's phase buffer
 *     buf[((zh - zh0) * Cb + c) * s2 + r][q - qlo],  big column zw = s2 * q + r,
 * where one tap's outputs of consecutive small columns are consecutive (one vector
 * add per run). The buffer then goes to Y's rows, the phases interleaved. Lanes past
 * the run and outputs past the big side are never added into Y: an Inf/NaN filter
 * entry reaches exactly the outputs its tap lands on, as in TF. The adds into an
 * output go in a fixed order (small rows, then taps, then runs), whatever the band:
 * neither the tasks nor the thread count can change a bit. Needs k[0] = s[0] = 1, no
 * depth padding (each big depth plane reads its own small plane). */

/* The buffers' geometry for tasks of rb big rows: qlo (the first phase column q a
 * task holds, zw = s2 * q + r), QW (phase columns held), LP (zero lanes left of each
 * tap row: the most a tap column shifts its outputs), RW (lanes per tap row), and
 * the elements of a task's scratch: the tap rows T[((zh - zh0) * Cb + c) * KW + j]
 * (one per big row, channel and tap column; lane LP + x holds the sum over tap rows
 * of small column x's contributions), one packed run, a tile of results, and the
 * phase rows the tap rows are summed into before they go to Y. */
static void
CD_CAT(cd_srdims_, CD_SUF)(const cd_geom* g, cd_isz rb, cd_isz* qlo, cd_isz* QW,
                           cd_isz* LP, cd_isz* RW, cd_isz* scratch)
{
    const cd_isz s2 = g->s[2], pb = (cd_isz)CD_IG_NV * CD_VL;
    const cd_isz o0 = cd_floordiv(-g->pad[2], s2);
    const cd_isz o1 = cd_floordiv((g->k[2] - 1) * g->d[2] - g->pad[2], s2);
    const cd_isz lo = o0 < 0 ? o0 : 0;
    const cd_isz last = (g->big[2] - 1) / s2;
    const cd_isz hi = g->small[2] - 1 + o1 > last ? g->small[2] - 1 + o1 : last;
    *qlo = lo;
    *QW = (hi - lo + 1 + CD_VL - 1) / CD_VL * CD_VL;
    *LP = (o1 - lo + CD_VL - 1) / CD_VL * CD_VL;
    *RW = *LP + (*QW > g->small[2] ? *QW : (g->small[2] + CD_VL - 1) / CD_VL * CD_VL);
    *scratch = rb * g->cb * g->k[2] * *RW + g->cs * pb + 8 * pb + g->cb * s2 * *QW;
}

static void
CD_CAT(cd_srsizes_, CD_SUF)(const cd_geom* g, cd_isz rb, cd_isz* scratch)
{
    cd_isz qlo, QW, LP, RW;
    CD_CAT(cd_srdims_, CD_SUF)(g, rb, &qlo, &QW, &LP, &RW, scratch);
}

/* Y's big rows (bz, zh) for zh0 <= zh < zh1 <= zh0 + rb (bz = image * BD + zd),
 * channels of group grp; S: a task's scratch (cd_srsizes_ for rb). Safe to call
 * concurrently for distinct (grp, rows) with distinct scratch. Every add goes to the
 * same lanes of a tap row for every contribution (no tap shifts its destination:
 * the shifts are applied when the tap rows are summed into phase rows, reading), so
 * no load waits on a store it only partly overlaps. */
static void
CD_CAT(cd_srrun_, CD_SUF)(const cd_geom* g, const CD_T* X, const CD_T* W, CD_T* Y,
                          CD_T* S, cd_isz rb, cd_isz grp, cd_isz bz, cd_isz zh0,
                          cd_isz zh1)
{
    const cd_isz SH = g->small[1], SW = g->small[2], BH = g->big[1], BW = g->big[2];
    const cd_isz Cb = g->cb, Cs = g->cs, Cbig = g->groups * Cb, Csmall = g->groups * Cs;
    const cd_isz KH = g->k[1], KW = g->k[2], s1 = g->s[1], s2 = g->s[2];
    const cd_isz d1 = g->d[1], p1 = g->pad[1];
    const cd_isz pb = (cd_isz)CD_IG_NV * CD_VL, nrows = zh1 - zh0;
    cd_isz qlo, QW, LP, RW, nsc;
    CD_CAT(cd_srdims_, CD_SUF)(g, rb, &qlo, &QW, &LP, &RW, &nsc);
    CD_T* T = S;
    CD_T* Xt = T + rb * Cb * KW * RW;
    CD_T* col = Xt + Cs * pb;
    CD_T* ph = col + 8 * pb;
    CD_T* yt[8];
    const CD_T* a[8];
    cd_isz jr[CD_MAX_TAPS], jo[CD_MAX_TAPS];
    for (int i = 0; i < 8; i++)
        yt[i] = col + i * pb;
    /* tap column j lands in phase jr[j], its small column x on phase column
     * x + jo[j] + qlo */
    for (cd_isz j = 0; j < KW; j++) {
        const cd_isz z = j * g->d[2] - g->pad[2];
        jo[j] = cd_floordiv(z, s2) - qlo;
        jr[j] = z - cd_floordiv(z, s2) * s2;
    }
    __builtin_memset(T, 0, (size_t)(nrows * Cb * KW * RW) * sizeof(CD_T));
    /* the small rows the band reads */
    cd_isz y_lo = cd_floordiv(zh0 + p1 - (KH - 1) * d1 + s1 - 1, s1);
    cd_isz y_hi = cd_floordiv(zh1 - 1 + p1, s1);
    y_lo = y_lo < 0 ? 0 : y_lo;
    y_hi = y_hi > SH - 1 ? SH - 1 : y_hi;
    const CD_T* Xp = X + bz * SH * SW * Csmall + grp * Cs;
    /* runs on a grid of the image's pixels fixed by the shapes (not by the band): a
     * run holding several small rows adds their contributions in tile order, so the
     * runs must not move with the band for the sums' order to stay fixed */
    const cd_isz f_end = (y_hi + 1) * SW;
    for (cd_isz f0 = y_lo * SW / pb * pb; f0 < f_end; f0 += pb) {
        const cd_isz nv = f_end - f0 < pb ? f_end - f0 : pb;
        const cd_isz w = (nv + CD_VL - 1) / CD_VL * CD_VL;
        const int NV = (int)(w / CD_VL);
        const int MR = CD_CAT(cd_ig_mr_, CD_SUF)(NV);
        const cd_isz ya = f0 / SW, yb = (f0 + nv - 1) / SW;
        /* the tap rows any of the run's small rows needs: i_lo of the last row .. i_hi
         * of the first (both fall as the small row grows) */
        cd_isz i_lo = zh0 + p1 - yb * s1, i_hi = zh1 - 1 + p1 - ya * s1;
        i_lo = i_lo <= 0 ? 0 : (i_lo + d1 - 1) / d1;
        i_hi = i_hi < 0 ? -1 : i_hi / d1;
        i_hi = i_hi > KH - 1 ? KH - 1 : i_hi;
        if (i_lo > i_hi)
            continue;
        CD_CAT(cd_panel_, CD_SUF)(Xt, w, nv, Cs, Xp + f0 * Csmall, Csmall);
        /* the next run's pixels on their way to cache while this one computes */
        if (f0 + pb < f_end) {
            const char* nx = (const char*)(Xp + (f0 + pb) * Csmall);
            const cd_isz nb = ((f_end - f0 - pb < pb ? f_end - f0 - pb : pb) * Csmall
                               - (Csmall - Cs)) * (cd_isz)sizeof(CD_T);
            for (cd_isz o = 0; o < nb; o += 64)
                __builtin_prefetch(nx + o, 0, 2);
        }
        const cd_isz r_end = (i_hi + 1) * KW * Cb;
        for (cd_isz r0 = i_lo * KW * Cb; r0 < r_end; r0 += MR) {
            const int mr = (int)(r_end - r0 < MR ? r_end - r0 : MR);
            for (int i = 0; i < mr; i++)
                a[i] = W + (r0 + i) * Csmall + grp * Cs;
            CD_CAT(cd_igmk_any_, CD_SUF)(mr, NV, 1, a, (const CD_T* const*)&Xt, Cs, w,
                                         yt, w, 0);
            for (int i = 0; i < mr; i++) {
                const cd_isz r = r0 + i, c = r % Cb, tap = r / Cb;
                const cd_isz ti = tap / KW, tj = tap % KW;
                const CD_T* src = col + i * pb;
                /* the run's segments, one per small row */
                for (cd_isz y = ya; y <= yb; y++) {
                    const cd_isz zh = y * s1 - p1 + ti * d1;
                    if (zh < zh0 || zh >= zh1)
                        continue;
                    const cd_isz la = y * SW - f0 > 0 ? y * SW - f0 : 0;
                    const cd_isz lb = (y + 1) * SW - f0 < nv ? (y + 1) * SW - f0 : nv;
                    CD_T* restrict dst = T + (((zh - zh0) * Cb + c) * KW + tj) * RW + LP
                                         + (f0 + la - y * SW);
                    const CD_T* restrict sp = src + la;
                    for (cd_isz p = 0; p < lb - la; p++)
                        dst[p] += sp[p];
                }
            }
        }
    }
    /* per big row: each channel's tap rows summed into phase rows (tap columns in
     * order, each shifted by its offset), ph[(r * Cb + c) * QW + q] for big column
     * zw = s2 * (q + qlo) + r, then the phases interleaved into Y's row */
    for (cd_isz zr = 0; zr < nrows; zr++) {
        CD_T* yr = Y + ((bz * BH + zh0 + zr) * BW) * Cbig + grp * Cb;
        __builtin_memset(ph, 0, (size_t)(Cb * s2 * QW) * sizeof(CD_T));
        for (cd_isz c = 0; c < Cb; c++) {
            const CD_T* tr = T + (zr * Cb + c) * KW * RW + LP;
            for (cd_isz j = 0; j < KW; j++) {
                CD_T* restrict pr = ph + (jr[j] * Cb + c) * QW;
                const CD_T* restrict tj = tr + j * RW - jo[j];
                for (cd_isz q = 0; q < QW; q++)
                    pr[q] += tj[q];
            }
        }
        if (s2 == 2 && Cbig == 1) {
            const CD_T* restrict e0 = ph - qlo;
            const CD_T* restrict e1 = ph + QW - qlo;
            const cd_isz nw2 = BW / 2;
            for (cd_isz q = 0; q < nw2; q++) {
                yr[2 * q] = e0[q];
                yr[2 * q + 1] = e1[q];
            }
            if (BW % 2)
                yr[BW - 1] = e0[nw2];
            continue;
        }
#ifdef CD_TR16M
        if (Cbig == Cb && s2 * Cb <= 16 && BW >= s2) {
            /* one group: the s2 x Cb phase rows are one block */
            CD_CAT(cd_phout_, CD_SUF)(yr, ph - qlo, QW, BW, s2, Cb);
            continue;
        }
#endif
        for (cd_isz r = 0; r < s2 && r < BW; r++)
            for (cd_isz c = 0; c < Cb; c++) {
                const CD_T* restrict e = ph + (r * Cb + c) * QW - qlo;
                CD_T* restrict yc = yr + r * Cbig + c;
                const cd_isz nq = (BW - r + s2 - 1) / s2, ys = s2 * Cbig;
                for (cd_isz q = 0; q < nq; q++)
                    yc[q * ys] = e[q];
            }
    }
}


/* ---- a plain GEMM on the micro-kernel (the im2col + GEMM forward conv, where BLAS's
 * packing and, on AVX-512 machines, its AVX2 kernels cost half the speed):
 *     C[i][j] = sum over k < K of A[i * lda + k] * B[k * ldb + j]
 * B packed once into panels of up to CD_IG_NV vectors of columns (cd_gpack_), A read in
 * place. Each element of C is one FMA chain along k: the tiling cannot change a bit. */

/* P[k * nr + c] := B[k * ldb + c] for k < K, c < nv, zeros for nv <= c < nr: rows of a
 * panel nr wide (cd_gpack_'s panels, cd_gbpf_'s blocks of pixels). */
static void
CD_CAT(cd_gpanel_, CD_SUF)(CD_T* P, cd_isz nr, const CD_T* B, cd_isz ldb, cd_isz K,
                           cd_isz nv)
{
    for (cd_isz k = 0; k < K; k++) {
        const CD_T* b = B + k * ldb;
        for (cd_isz c = 0; c < nv; c++)
            P[k * nr + c] = b[c];
        for (cd_isz c = nv; c < nr; c++)
            P[k * nr + c] = 0;
    }
}

/* Bp (K * N rounded up to the panel width) := B's panels: the panel of columns
 * [n0, n0 + nr) at Bp + n0 * K, Bp[n0 * K + k * nr + c] = B[k][n0 + c] (zeros past N). */
static void
CD_CAT(cd_gpack_, CD_SUF)(cd_isz K, cd_isz N, const CD_T* B, cd_isz ldb, CD_T* Bp)
{
    const cd_isz pb = (cd_isz)CD_IG_NV * CD_VL;
    for (cd_isz n0 = 0; n0 < N; n0 += pb) {
        const cd_isz nv = N - n0 < pb ? N - n0 : pb;
        const cd_isz nr = (nv + CD_VL - 1) / CD_VL * CD_VL;
        CD_CAT(cd_gpanel_, CD_SUF)(Bp + n0 * K, nr, B + n0, ldb, K, nv);
    }
}

/* C's rows [m0, m1), every column, from the packed B. */
static void
CD_CAT(cd_grun_, CD_SUF)(cd_isz m0, cd_isz m1, cd_isz N, cd_isz K, const CD_T* A,
                         cd_isz lda, const CD_T* Bp, CD_T* C, cd_isz ldc)
{
    const cd_isz pb = (cd_isz)CD_IG_NV * CD_VL;
    const CD_T* a[8];
    CD_T* y[8];
    for (cd_isz n0 = 0; n0 < N; n0 += pb) {
        const cd_isz nv = N - n0 < pb ? N - n0 : pb;
        const cd_isz nr = (nv + CD_VL - 1) / CD_VL * CD_VL;
        const int NV = (int)(nr / CD_VL);
        const int MR = CD_CAT(cd_ig_mr_, CD_SUF)(NV);
        const CD_T* bt = Bp + n0 * K;
        for (cd_isz m = m0; m < m1; m += MR) {
            const int mr = (int)(m1 - m < MR ? m1 - m : MR);
            for (int i = 0; i < mr; i++) {
                a[i] = A + (m + i) * lda;
                y[i] = C + (m + i) * ldc + n0;
            }
            CD_CAT(cd_igmk_any_, CD_SUF)(mr, NV, 1, a, &bt, K, nr, y, nv, 0);
        }
    }
}

/* The forward conv's "tap rows" GEMM on zero-padded input (no column buffer): output
 * pixel m of a band of whole output rows (r = m / OW: image j = r / OH, row oy = r % OH,
 * ox = m % OW) reads, for tap row t < nt, the K = kw * cb contiguous values at
 * Xp + j * istep + oy * ystep + t * tstep + ox * xstep, against rows [t * K, (t + 1) * K)
 * of B packed by cd_gpack_ (nt * K rows); C's row m (ldc apart) gets columns [nlo, N)
 * (nlo a multiple of the panel width). The order along (t, k) is im2col's (ky, kx, c):
 * the same bits as cd_grun_ on the column buffer. */
static void
CD_CAT(cd_gtap_, CD_SUF)(cd_isz m0, cd_isz m1, cd_isz OW, cd_isz OH, cd_isz nlo, cd_isz N,
                         cd_isz nt, cd_isz K, const CD_T* Xp, cd_isz istep, cd_isz ystep,
                         cd_isz tstep, cd_isz xstep, const CD_T* Bp, CD_T* C, cd_isz ldc)
{
    const cd_isz pb = (cd_isz)CD_IG_NV * CD_VL;
    const CD_T* a[8];
    const CD_T* bt[CD_GT_MAX_TAPS];
    CD_T* y[8];
    for (cd_isz n0 = nlo; n0 < N; n0 += pb) {
        const cd_isz nv = N - n0 < pb ? N - n0 : pb;
        const cd_isz nr = (nv + CD_VL - 1) / CD_VL * CD_VL;
        const int NV = (int)(nr / CD_VL);
        const int MR = CD_CAT(cd_ig_mr_, CD_SUF)(NV);
        for (cd_isz t = 0; t < nt; t++)
            bt[t] = Bp + n0 * nt * K + t * K * nr;
        cd_isz r = m0 / OW, ox = m0 - r * OW, j = r / OH, oy = r - j * OH;
        for (cd_isz m = m0; m < m1; m += MR) {
            const int mr = (int)(m1 - m < MR ? m1 - m : MR);
            for (int i = 0; i < mr; i++) {
                a[i] = Xp + j * istep + oy * ystep + ox * xstep;
                y[i] = C + (m + i) * ldc + n0;
                if (++ox == OW) {
                    ox = 0;
                    if (++oy == OH) {
                        oy = 0;
                        j++;
                    }
                }
            }
            CD_CAT(cd_igmk_any_, CD_SUF)(mr, NV, nt, a, bt, K, nr, y, nv, tstep);
        }
    }
}

/* The filter gradient's GEMM on the micro-kernel, transposed (DW^T += DY^T @ cols):
 *     C[i][n] += sum over p < P of A[i * lda + p] * B[p * ldb + n]
 * for rows [i0, i1) and columns [n0, n1) (n0 a multiple of the panel width). A = DY^T (a
 * row per output channel, the pixels contiguous), B = the column buffer, read a block of
 * CD_BPF_KC pixels x one panel at a time into S (CD_BPF_KC * panel width elements, zeros
 * past n1). Each element's sum: the blocks of pixels in order, each one FMA chain added
 * into C, so the order depends only on P. */
static void
CD_CAT(cd_gbpf_, CD_SUF)(cd_isz i0, cd_isz i1, cd_isz n0, cd_isz n1, cd_isz P,
                         const CD_T* A, cd_isz lda, const CD_T* B, cd_isz ldb, CD_T* C,
                         cd_isz ldc, CD_T* S)
{
    const cd_isz pb = (cd_isz)CD_IG_NV * CD_VL;
    CD_T tmp[8 * CD_IG_NV * CD_VL];
    const CD_T* a[8];
    CD_T* y[8];
    const CD_T* bs = S;
    for (cd_isz c0 = n0; c0 < n1; c0 += pb) {
        const cd_isz nv = n1 - c0 < pb ? n1 - c0 : pb;
        const cd_isz nr = (nv + CD_VL - 1) / CD_VL * CD_VL;
        const int NV = (int)(nr / CD_VL);
        const int MR = CD_CAT(cd_ig_mr_, CD_SUF)(NV);
        for (cd_isz p0 = 0; p0 < P; p0 += CD_BPF_KC) {
            const cd_isz kc = P - p0 < CD_BPF_KC ? P - p0 : CD_BPF_KC;
            CD_CAT(cd_gpanel_, CD_SUF)(S, nr, B + p0 * ldb + c0, ldb, kc, nv);
            for (cd_isz i = i0; i < i1; i += MR) {
                const int mr = (int)(i1 - i < MR ? i1 - i : MR);
                for (int r = 0; r < mr; r++) {
                    a[r] = A + (i + r) * lda + p0;
                    y[r] = tmp + r * nr;
                }
                CD_CAT(cd_igmk_any_, CD_SUF)(mr, NV, 1, a, &bs, kc, nr, y, nr, 0);
                for (int r = 0; r < mr; r++) {
                    CD_T* c = C + (i + r) * ldc + c0;
                    const CD_T* t = tmp + r * nr;
                    for (cd_isz j = 0; j < nv; j++)
                        c[j] += t[j];
                }
            }
        }
    }
}
