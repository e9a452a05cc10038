/* One instantiation of the dot kernel (see _dot.h), included by _dot.c once per
 * (dtype, instruction set). Expects these macros:
 *   CD_T        float or double
 *   CD_SUF      name suffix (e.g. f_avx512)
 *   CD_VL       vector lanes (CD_T elements per vector)
 *   CD_MAXACC   accumulator vectors that fit in registers (P * C <= CD_MAXACC)
 *   CD_TAIL(v, p, n)  optional: v := the first n < CD_VL elements at p, zeros after
 *               (masked load); without it, an element loop does the same.
 * No header guard: meant to be included several times.
 */
#define CD_CAT_(a, b) a##b
#define CD_CAT(a, b) CD_CAT_(a, b)
#define CD_VEC CD_CAT(cd_vec_, CD_SUF)

typedef CD_T CD_VEC __attribute__((vector_size(CD_VL * sizeof(CD_T))));

static inline __attribute__((always_inline)) CD_VEC
CD_CAT(cd_load_, CD_SUF)(const CD_T* p)
{
    CD_VEC v;
    __builtin_memcpy(&v, p, sizeof v);     /* an unaligned vector load */
    return v;
}

static inline __attribute__((always_inline)) CD_VEC
CD_CAT(cd_tail_, CD_SUF)(const CD_T* p, cd_isz n)
{
    CD_VEC v = {0};
#ifdef CD_TAIL
    CD_TAIL(v, p, n);
#else
    for (cd_isz i = 0; i < n; i++)
        v[i] = p[i];
#endif
    return v;
}

/* y[p*ystep + c] := sum_t dot(X + xoff[t] + p*ld, W + woff[t] + c*ld) over K elements,
 * for p < P, c < C (compile-time constants after inlining: the accumulators live in
 * registers). The K tail is one masked/zero-padded vector step. */
static inline __attribute__((always_inline)) void
CD_CAT(cd_mk_, CD_SUF)(const int P, const int C, cd_isz nt, const cd_isz* xoff,
                       const cd_isz* woff, const CD_T* X, const CD_T* W, cd_isz ld,
                       cd_isz K, CD_T* y, cd_isz ystep)
{
    CD_VEC acc[8][4];
    CD_VEC xv[8];
    CD_VEC wv;
    const cd_isz kv = K - K % CD_VL;
    for (int p = 0; p < P; p++)
        for (int c = 0; c < C; c++)
            acc[p][c] = (CD_VEC){0};
    for (cd_isz t = 0; t < nt; t++) {
        const CD_T* xp = X + xoff[t];
        const CD_T* wp = W + woff[t];
        for (cd_isz k = 0; k < kv; k += CD_VL) {
            for (int p = 0; p < P; p++)
                xv[p] = CD_CAT(cd_load_, CD_SUF)(xp + p * ld + k);
            for (int c = 0; c < C; c++) {
                wv = CD_CAT(cd_load_, CD_SUF)(wp + c * ld + k);
                for (int p = 0; p < P; p++)
                    acc[p][c] += xv[p] * wv;
            }
        }
        if (kv < K) {
            for (int p = 0; p < P; p++)
                xv[p] = CD_CAT(cd_tail_, CD_SUF)(xp + p * ld + kv, K - kv);
            for (int c = 0; c < C; c++) {
                wv = CD_CAT(cd_tail_, CD_SUF)(wp + c * ld + kv, K - kv);
                for (int p = 0; p < P; p++)
                    acc[p][c] += xv[p] * wv;
            }
        }
    }
    for (int p = 0; p < P; p++)
        for (int c = 0; c < C; c++) {
            CD_T s = 0;
            for (int i = 0; i < CD_VL; i++)
                s += acc[p][c][i];
            y[p * ystep + c] = s;
        }
}

/* The most columns P a block of c channels may have: P * c accumulators must fit in
 * the registers (CD_MAXACC), and the switch below has variants up to P = 8. */
static inline int CD_CAT(cd_pmax_, CD_SUF)(int c)
{
    int p = CD_MAXACC / (c < 1 ? 1 : c > 4 ? 4 : c);
    return p > 8 ? 8 : p;
}

static void
CD_CAT(cd_mk_any_, CD_SUF)(int P, int C, cd_isz nt, const cd_isz* xoff,
                           const cd_isz* woff, const CD_T* X, const CD_T* W, cd_isz ld,
                           cd_isz K, CD_T* y, cd_isz ystep)
{
#define CD_MK(p, c) case (p) * 8 + (c): \
    CD_CAT(cd_mk_, CD_SUF)(p, c, nt, xoff, woff, X, W, ld, K, y, ystep); return;
#define CD_MK4(p) CD_MK(p, 1) CD_MK(p, 2) CD_MK(p, 3) CD_MK(p, 4)
    switch (P * 8 + C) {
        CD_MK4(1) CD_MK4(2) CD_MK4(3) CD_MK4(4)
        CD_MK(5, 1) CD_MK(5, 2) CD_MK(5, 3)
        CD_MK(6, 1) CD_MK(6, 2) CD_MK(7, 1) CD_MK(7, 2) CD_MK(8, 1) CD_MK(8, 2)
        default:
            /* a block the switch has no variant for (the plan never makes one:
             * cd_pmax_ bounds it): the generic body column by column, so no output is
             * ever left unwritten */
            for (int p = 0; p < P; p++)
                for (int c = 0; c < C; c += 4)
                    CD_CAT(cd_mk_, CD_SUF)(1, C - c < 4 ? C - c : 4, nt, xoff, woff,
                                           X + p * ld, W + c * ld, ld, K,
                                           y + p * ystep + c, ystep);
            return;
    }
#undef CD_MK4
#undef CD_MK
}

static void
CD_CAT(cd_row_, CD_SUF)(const cd_geom* g, const CD_T* X, const CD_T* W, CD_T* Y,
                        cd_isz R, cd_isz grp, cd_isz c0, cd_isz c1,
                        const cd_colblk* blk, cd_isz nblk, const cd_isz* kws,
                        const cd_isz* iws)
{
    const cd_isz BD = g->big[0], BH = g->big[1], BW = g->big[2];
    const cd_isz SD = g->small[0], SH = g->small[1], SW = g->small[2];
    const cd_isz Cb = g->cb, Cs = g->cs;
    const cd_isz Cbig = g->groups * Cb, Csmall = g->groups * Cs;
    const cd_isz k1 = g->k[1], k2 = g->k[2], s2 = g->s[2];
    const cd_isz b = R / (BD * BH), bd = (R / BH) % BD, bh = R % BH;
    const CD_T* Xg = X + grp * Cs;
    const CD_T* Wg = W + grp * Cs;
    CD_T* yrow = Y + R * BW * Cbig + grp * Cb;
    cd_isz rx[CD_MAX_TAPS], rt[CD_MAX_TAPS], xoff[CD_MAX_TAPS], woff[CD_MAX_TAPS];
    cd_isz nr = 0;
    /* the (kd, kh) taps that reach this big row: their small rows and tap bases */
    for (cd_isz kd = 0; kd < g->k[0]; kd++) {
        cd_isz zd = cd_src(g, 0, bd, kd);
        if (zd < 0)
            continue;
        for (cd_isz kh = 0; kh < k1; kh++) {
            cd_isz zh = cd_src(g, 1, bh, kh);
            if (zh < 0)
                continue;
            rx[nr] = ((b * SD + zd) * SH + zh) * SW * Csmall;
            rt[nr] = (kd * k1 + kh) * k2;
            nr++;
        }
    }
    for (cd_isz i = 0; i < nblk; i++) {
        const cd_colblk* B = blk + i;
        const cd_isz* kw = kws + B->off;
        const cd_isz* iw = iws + B->off;
        cd_isz nt = 0;
        if (nr == 0 || B->nk == 0) {
            /* no tap reaches these columns: a sum of nothing */
            for (cd_isz p = 0; p < B->P; p++)
                for (cd_isz c = c0; c < c1; c++)
                    yrow[(B->bw + p * s2) * Cbig + c] = 0;
            continue;
        }
        for (cd_isz r = 0; r < nr; r++)
            for (cd_isz j = 0; j < B->nk; j++) {
                xoff[nt] = rx[r] + iw[j] * Csmall;
                woff[nt] = (rt[r] + kw[j]) * Cb * Csmall;
                nt++;
            }
        for (cd_isz c = c0; c < c1; c += 4) {
            int C = (int)(c1 - c < 4 ? c1 - c : 4);
            CD_CAT(cd_mk_any_, CD_SUF)((int)B->P, C, nt, xoff, woff, Xg,
                                       Wg + c * Csmall, Csmall, Cs,
                                       yrow + B->bw * Cbig + c, s2 * Cbig);
        }
    }
}

/* C(m, n) := A(m, k) @ B(n, k)^T, A and B row-major with the same leading dimension ld
 * (the transposed conv's column GEMM: A = input pixels, B = filter rows). No packing:
 * blocks of 4 B rows stay in L1 while every row of A passes them. */
static void
CD_CAT(cd_abt_, CD_SUF)(cd_isz m, cd_isz n, cd_isz k, const CD_T* A, const CD_T* B,
                        cd_isz ld, CD_T* C, cd_isz ldc)
{
    const cd_isz zero = 0;
    const int pmax = CD_CAT(cd_pmax_, CD_SUF)(4);
    for (cd_isz j = 0; j < n; j += 4) {
        int cn = (int)(n - j < 4 ? n - j : 4);
        for (cd_isz i = 0; i < m; i += pmax) {
            int pm = (int)(m - i < pmax ? m - i : pmax);
            CD_CAT(cd_mk_any_, CD_SUF)(pm, cn, 1, &zero, &zero, A + i * ld, B + j * ld,
                                       ld, k, C + i * ldc + j, ldc);
        }
    }
}

/* the implicit-GEMM kernel of the same (dtype, instruction set) */
#include "_igemm_impl.h"

/* the Winograd phase transforms of the same (dtype, instruction set) */
#include "_wino_impl.h"

/* the planar forward of the same (dtype, instruction set) */
#include "_fplanar_impl.h"

#undef CD_VEC
