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

/* The tile rows (outputs) of a tile of nv vectors. */
static inline int CD_CAT(cd_ig_mr_, CD_SUF)(int nv)
{
    int mr = CD_IG_ACC / (nv < 1 ? 1 : nv);
    return mr > 8 ? 8 : mr < 1 ? 1 : mr;
}

/* The micro-kernel: for i < MR outputs and NV vectors of channels,
 *     acc[i] = sum over t < nt, k < K of a[t*MR + i][k] * bt[t][k*NV*VL : (k+1)*NV*VL]
 * (a: the small-side pixel each output reads through tap t, or a row of zeros; bt: the
 * packed filter panel of tap t, one row of NV*VL channels per small-side channel k).
 * Every output lane is one chain of fused multiply-adds in the fixed order (t, k):
 * the result does not depend on the tile, the task split or the thread count.
 * y[i] receives the first nc <= NV*VL channels. */
static inline __attribute__((always_inline)) void
CD_CAT(cd_igmk_, CD_SUF)(const int MR, const int NV, cd_isz nt, const CD_T* const* a,
                         const CD_T* const* bt, cd_isz K, CD_T* const* y, cd_isz nc)
{
    CD_VEC acc[8][4];
    const cd_isz nr = (cd_isz)NV * CD_VL;
    for (int i = 0; i < MR; i++)
        for (int v = 0; v < NV; v++)
            acc[i][v] = (CD_VEC){0};
    for (cd_isz t = 0; t < nt; t++) {
        const CD_T* ap[8];
        const CD_T* bp = bt[t];
        for (int i = 0; i < MR; i++)
            ap[i] = a[t * MR + i];
        for (cd_isz k = 0; k < K; k++) {
            CD_VEC b[4];
            for (int v = 0; v < NV; v++)
                b[v] = CD_CAT(cd_load_, CD_SUF)(bp + k * nr + v * CD_VL);
            for (int i = 0; i < MR; i++) {
                const CD_T s = ap[i][k];
                for (int v = 0; v < NV; v++)
                    acc[i][v] += s * b[v];
            }
        }
    }
    if (nc == nr) {
        for (int i = 0; i < MR; i++)
            for (int v = 0; v < NV; v++)
                __builtin_memcpy(y[i] + v * CD_VL, &acc[i][v], sizeof(CD_VEC));
    } else {
        for (int i = 0; i < MR; i++)
            for (cd_isz c = 0; c < nc; c++)
                y[i][c] = acc[i][c / CD_VL][c % CD_VL];
    }
}

static void
CD_CAT(cd_igmk_any_, CD_SUF)(int MR, int NV, cd_isz nt, const CD_T* const* a,
                             const CD_T* const* bt, cd_isz K, CD_T* const* y, cd_isz nc)
{
#define CD_IGK(m, v) case (m) * 8 + (v): \
    CD_CAT(cd_igmk_, CD_SUF)(m, v, nt, a, bt, K, y, nc); return;
#define CD_IGK4(m) CD_IGK(m, 1) CD_IGK(m, 2) CD_IGK(m, 3) CD_IGK(m, 4)
    switch (MR * 8 + NV) {
        CD_IGK4(1) CD_IGK4(2) CD_IGK4(3) CD_IGK4(4)
        CD_IGK4(5) CD_IGK4(6) CD_IGK4(7) CD_IGK4(8)
        default: {
            /* more rows than any variant (never planned: MR <= 8): a row at a time, so
             * no output is ever left unwritten (NV <= 4 by CD_IG_NV) */
            const CD_T* ai[CD_MAX_TAPS];
            for (int i = 0; i < MR; i++) {
                for (cd_isz t = 0; t < nt; t++)
                    ai[t] = a[t * MR + i];
                switch (NV) {
                    case 1: CD_CAT(cd_igmk_, CD_SUF)(1, 1, nt, ai, bt, K, y + i, nc); break;
                    case 2: CD_CAT(cd_igmk_, CD_SUF)(1, 2, nt, ai, bt, K, y + i, nc); break;
                    case 3: CD_CAT(cd_igmk_, CD_SUF)(1, 3, nt, ai, bt, K, y + i, nc); break;
                    default: CD_CAT(cd_igmk_, CD_SUF)(1, 4, nt, ai, bt, K, y + i, nc); break;
                }
            }
        }
            return;
    }
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
    const cd_isz Cb = g->cb, Cs = g->cs, T = g->k[0] * g->k[1] * g->k[2];
    const cd_isz Cbig = g->groups * Cb, Csmall = g->groups * Cs;
    const cd_isz blk = (cd_isz)CD_IG_NV * CD_VL;
    const cd_isz cbp = (Cb + CD_VL - 1) / CD_VL * CD_VL;
    const cd_isz rem = cbp - c0;
    const cd_isz nr = rem < blk ? rem : blk;
    const int NV = (int)(nr / CD_VL);
    const int MR = CD_CAT(cd_ig_mr_, CD_SUF)(NV);
    const cd_isz nc = Cb - c0 < nr ? Cb - c0 : nr;
    cd_isz p[3], n[3], o[CD_MAX_TAPS][3];
    const CD_T* bt[CD_MAX_TAPS];
    const CD_T* a[CD_MAX_TAPS * 8];
    CD_T* y[8];
    cd_isz q[8][4];
    cd_isz nt = 0;
    p[2] = phase % g->s[2];
    p[1] = (phase / g->s[2]) % g->s[1];
    p[0] = phase / (g->s[2] * g->s[1]);
    for (int ax = 0; ax < 3; ax++)
        n[ax] = p[ax] < g->big[ax] ? (g->big[ax] - p[ax] + g->s[ax] - 1) / g->s[ax] : 0;
    /* the taps that reach this phase and the small-side offset each adds */
    for (cd_isz kd = 0; kd < g->k[0]; kd++)
        for (cd_isz kh = 0; kh < g->k[1]; kh++)
            for (cd_isz kw = 0; kw < g->k[2]; kw++) {
                cd_isz kk[3] = {kd, kh, kw}, ok = 1;
                for (int ax = 0; ax < 3 && ok; ax++) {
                    cd_isz r = p[ax] + g->pad[ax] - kk[ax] * g->d[ax];
                    ok = r % g->s[ax] == 0;
                    o[nt][ax] = r / g->s[ax];     /* exact: r is a multiple */
                }
                if (!ok)
                    continue;
                bt[nt] = Wp + (grp * T * cbp + c0 * T + ((kd * g->k[1] + kh) * g->k[2] + kw) * nr) * Cs;
                nt++;
            }
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
        CD_CAT(cd_igmk_any_, CD_SUF)(mr, NV, nt, a, bt, Cs, y, nc);
    }
}

/* P[k * w + p] := src[p * stride + k] for p < nvalid, 0 for nvalid <= p < w, k < K:
 * rows laid out as the columns of a panel of width w (zeros past the valid ones). */
static void
CD_CAT(cd_panel_, CD_SUF)(CD_T* P, cd_isz w, cd_isz nvalid, cd_isz K, const CD_T* src,
                          cd_isz stride)
{
    for (cd_isz p = 0; p < w; p++) {
        if (p < nvalid) {
            const CD_T* r = src + p * stride;
            for (cd_isz k = 0; k < K; k++)
                P[k * w + p] = r[k];
        } else {
            for (cd_isz k = 0; k < K; k++)
                P[k * w + p] = 0;
        }
    }
}

/* Wp (this group and channel block) := the filter panels: for tap t, small-side channel
 * k, the block's nr channels c (zeros past Cb): Wp[t][k][c] = W[t, c0 + c, grp*Cs + k]. */
static void
CD_CAT(cd_igpack_, CD_SUF)(const cd_geom* g, const CD_T* W, CD_T* Wp, cd_isz grp, cd_isz c0)
{
    const cd_isz Cb = g->cb, Cs = g->cs, T = g->k[0] * g->k[1] * g->k[2];
    const cd_isz Csmall = g->groups * Cs;
    const cd_isz blk = (cd_isz)CD_IG_NV * CD_VL;
    const cd_isz cbp = (Cb + CD_VL - 1) / CD_VL * CD_VL;
    const cd_isz nr = cbp - c0 < blk ? cbp - c0 : blk;
    CD_T* base = Wp + (grp * T * cbp + c0 * T) * Cs;
    for (cd_isz t = 0; t < T; t++)
        CD_CAT(cd_panel_, CD_SUF)(base + t * nr * Cs, nr, Cb - c0, Cs,
                                  W + (t * Cb + c0) * Csmall + grp * Cs, Csmall);
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
    CD_T* Yg = Y + grp * Cb;
    CD_T col[8][4 * CD_VL];
    CD_T* rows[8];
    const CD_T* a[8];
    cd_isz dst[4 * CD_VL];
    for (int i = 0; i < 8; i++)
        rows[i] = col[i];
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
            for (cd_isz p = 0; p < w; p++) {
                cd_isz pix = j * pb + p, r = pix, z[3], ok = pix < npix;
                cd_isz sz[3];
                sz[2] = r % SW;
                r /= SW;
                sz[1] = r % SH;
                r /= SH;
                sz[0] = r % SD;
                r /= SD;                                /* the image */
                const cd_isz kk[3] = {kd, kh, kw};
                for (int ax = 0; ax < 3 && ok; ax++) {
                    z[ax] = sz[ax] * g->s[ax] - g->pad[ax] + kk[ax] * g->d[ax];
                    ok = z[ax] >= 0 && z[ax] < g->big[ax];
                }
                dst[p] = ok ? (((r * BD + z[0]) * BH + z[1]) * BW + z[2]) * Cbig : -1;
                nd += ok;
            }
            if (nd == 0)
                continue;
            for (cd_isz c = c0; c < c1; c += MR) {
                const int mr = (int)(c1 - c < MR ? c1 - c : MR);
                for (int i = 0; i < mr; i++)
                    a[i] = W + (t * Cb + c + i) * Csmall + grp * Cs;
                CD_CAT(cd_igmk_any_, CD_SUF)(mr, NV, 1, a, &bt, Cs, rows, w);
                for (cd_isz p = 0; p < w; p++) {
                    if (dst[p] < 0)
                        continue;
                    CD_T* y = Yg + dst[p] + c;
                    for (int i = 0; i < mr; i++)
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
        CD_CAT(cd_igmk_any_, CD_SUF)(mr, NV, T, a, bt, Cb, y, nc);
    }
}
