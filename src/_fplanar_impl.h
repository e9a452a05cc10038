/* One instantiation of the planar forward kernel (see _dot.h, cd_fpl_*), included by
 * _dot_impl.h once per (dtype, instruction set) with CD_T, CD_SUF, CD_VL, CD_VEC.
 *
 * The forward conv with few output channels (1-8: image heads, RGB outputs), where
 * im2col + GEMM leaves most vector lanes empty. The vector lanes are consecutive output
 * pixels of one row instead: the input rows a band of output rows reads are first
 * turned into planes, one per (row, input channel, column phase ph < s_x), holding
 * input columns j * s_x + ph (zeros outside the image), so that the input one tap
 * reads for VL consecutive outputs is one contiguous vector of a plane. Each output
 * is then a chain of multiply-adds over (ky, kx, input channel) in that order, the
 * filter value broadcast: its bits depend on nothing but the shapes.
 * Channels-last, one group, 2-D (1-D as height 1). No header guard.
 */

/* the planes built with 16 x 16 register transposes where one network does a block
 * (AVX-512); with 8-lane vectors (four 8 x 8 blocks) the element copies were faster
 * (article_rgb224 0.90x at 1 thread, AVX2) */
#undef CD_FPL_TR16
#if defined(CD_TR16) && CD_VL == 16
#define CD_FPL_TR16 1
#endif

#ifndef CD_FPL_SWITCH
/* M(co) with co = CO (1 to CD_FPL_MAXCO = 8) a compile-time constant */
#define CD_FPL_SWITCH(CO, M)                                                             \
    switch (CO) {                                                                        \
        case 1: M(1); break;                                                             \
        case 2: M(2); break;                                                             \
        case 3: M(3); break;                                                             \
        case 4: M(4); break;                                                             \
        case 5: M(5); break;                                                             \
        case 6: M(6); break;                                                             \
        case 7: M(7); break;                                                             \
        default: M(8); break;                                                            \
    }
#endif

/* A plane's length: every index an output block reads (whole vectors past the last
 * output pixel included), zeros past the image. */
static inline cd_isz CD_CAT(cd_fpl_len_, CD_SUF)(const cd_geom* g)
{
    const cd_isz sx = g->s[2];
    const cd_isz q0 = cd_floordiv(-g->pad[2], sx);
    const cd_isz q1 = cd_floordiv((g->k[2] - 1) * g->d[2] - g->pad[2], sx);
    return (g->small[2] + (q1 - q0) + 2 * CD_VL - 1) / CD_VL * CD_VL;
}

/* The scratch of a band of `rows` output rows: its input rows' planes. */
static cd_isz CD_CAT(cd_fplscr_, CD_SUF)(const cd_geom* g, cd_isz rows)
{
    const cd_isz nrows = (rows - 1) * g->s[1] + (g->k[1] - 1) * g->d[1] + 1;
    return nrows * g->cb * g->s[2] * CD_CAT(cd_fpl_len_, CD_SUF)(g);
}

/* The sums of one block of NB * VL lanes, CO output channels: tmp[c][b * VL + l] :=
 * the sum over the ntap taps in order, then the cb input channels, of
 * P[off[t] + ci * cstride + x0 + b * VL + l] * wt[t][ci * CO + c] (the planes' vectors
 * times the filter broadcast): the planar forward's order. The transposed conv sums the
 * same terms channels outside, taps inside (cd_tplsum_); each order measured the faster
 * for its kernel (the transposed, forced, 1 thread: 448x448x3 -> 3 b16 6.3-8.5 against
 * 7.4-11.3 ms; the forward the other way round on 56x56x32 -> 1, 64x64x256 -> 8 and
 * 240x320x32 -> 1, 0.45 / 1.1-1.3 / 2.8-3.2 against 0.50 / 1.6-2.2 / 3.4-4.1 ms, though
 * not on 64x64x128 -> 3). */
static inline __attribute__((always_inline)) void
CD_CAT(cd_fplsum_, CD_SUF)(const int CO, const int NB, const CD_T* P, const cd_isz* off,
                           const CD_T* const* wt, cd_isz ntap, cd_isz cb, cd_isz cstride,
                           cd_isz x0, CD_T (*tmp)[2 * CD_VL])
{
    /* NP interleaved partial sums (input channel ci into part ci % NP, the remainder
     * into part 0), so that at least 8 chains of multiply-adds are in flight, added
     * ((0 + 1) + (2 + 3)) at the end: a fixed order, shapes only */
    const int NP = CO * NB >= 8 ? 1 : CO * NB >= 4 ? 2 : 4;
    CD_VEC acc[4][2][8];
    for (int u = 0; u < NP; u++)
        for (int b = 0; b < NB; b++)
            for (int c = 0; c < CO; c++)
                acc[u][b][c] = (CD_VEC){0};
    for (cd_isz t = 0; t < ntap; t++) {
        const CD_T* pl = P + off[t] + x0;
        const CD_T* w = wt[t];
        cd_isz ci = 0;
        for (; ci + NP <= cb; ci += NP)
            for (int u = 0; u < NP; u++) {
                CD_VEC v[2];
                for (int b = 0; b < NB; b++)
                    v[b] = CD_CAT(cd_load_, CD_SUF)(pl + (ci + u) * cstride + b * CD_VL);
                for (int c = 0; c < CO; c++) {
                    const CD_T wv = w[(ci + u) * CO + c];
                    for (int b = 0; b < NB; b++)
                        acc[u][b][c] += v[b] * wv;
                }
            }
        for (; ci < cb; ci++) {
            CD_VEC v[2];
            for (int b = 0; b < NB; b++)
                v[b] = CD_CAT(cd_load_, CD_SUF)(pl + ci * cstride + b * CD_VL);
            for (int c = 0; c < CO; c++) {
                const CD_T wv = w[ci * CO + c];
                for (int b = 0; b < NB; b++)
                    acc[0][b][c] += v[b] * wv;
            }
        }
    }
    for (int c = 0; c < CO; c++)
        for (int b = 0; b < NB; b++) {
            CD_VEC sum = acc[0][b][c];
            if (NP == 2)
                sum += acc[1][b][c];
            else if (NP == 4)
                sum = (sum + acc[1][b][c]) + (acc[2][b][c] + acc[3][b][c]);
            __builtin_memcpy(&tmp[c][b * CD_VL], &sum, sizeof(CD_VEC));
        }
}

/* The output block of NB * VL pixels from ox0 of an output row, CO output channels,
 * over the row's ntap taps (off, wt: cd_fplsum_), stored for the first nv pixels. */
static inline __attribute__((always_inline)) void
CD_CAT(cd_fplblk_, CD_SUF)(const int CO, const int NB, const CD_T* P, const cd_isz* off,
                           const CD_T* const* wt, cd_isz ntap, cd_isz cb, cd_isz cstride,
                           CD_T* y, cd_isz ox0, cd_isz nv)
{
    CD_T tmp[8][2 * CD_VL];
    CD_CAT(cd_fplsum_, CD_SUF)(CO, NB, P, off, wt, ntap, cb, cstride, ox0, tmp);
    for (cd_isz l = 0; l < nv; l++)
        for (int c = 0; c < CO; c++)
            y[l * CO + c] = tmp[c][l];
}

/* The column taps: the output pixel ox of tap kx reads index ox + q[kx] - qmin of
 * plane ph[kx] (floor division: kx * dx - pad = q * sx + ph, 0 <= ph < sx). */
static inline void
CD_CAT(cd_fplcols_, CD_SUF)(const cd_geom* g, cd_isz* q, cd_isz* ph, cd_isz* qmin)
{
    const cd_isz sx = g->s[2];
    for (cd_isz kx = 0; kx < g->k[2]; kx++) {
        const cd_isz off = kx * g->d[2] - g->pad[2];
        q[kx] = cd_floordiv(off, sx);
        ph[kx] = off - q[kx] * sx;
        if (kx == 0 || q[kx] < *qmin)
            *qmin = q[kx];
    }
}

/* The planes of rows iy0 .. iy0 + nrows of image n of X (H x Wd x cb, channels-last;
 * rows outside the image skipped, never read): P[(r, ci, p)][j] = X[n, iy0 + r,
 * (j + qmin) * sx + p, ci] where that column is inside the image. The indices outside
 * it are the same for every row and band: P is zeroed once, before a thread's first
 * band, and they stay zero. */
static void
CD_CAT(cd_fplplanes_, CD_SUF)(cd_isz cb, cd_isz sx, cd_isz H, cd_isz Wd, const CD_T* X,
                              cd_isz n, cd_isz iy0, cd_isz nrows, cd_isz qmin, cd_isz L,
                              CD_T* P)
{
    for (cd_isz r = 0; r < nrows; r++) {
        const cd_isz iy = iy0 + r;
        if (iy < 0 || iy >= H)
            continue;                       /* never read */
        const CD_T* xr = X + (n * H + iy) * Wd * cb;
        CD_T* pr = P + r * cb * sx * L;
        const cd_isz xstep = sx * cb;
        /* plane indices [j0, j1(p)) are inside the image: (j + qmin) * sx + p in [0, W) */
        const cd_isz j0 = -qmin > 0 ? (-qmin < L ? -qmin : L) : 0;
        cd_isz ja = 0, jt = 0;  /* [ja, jt): done for every (p, ci) by the block copy */
#ifdef CD_FPL_TR16
        if (xstep <= 16) {
            /* few channels and phases (sx * cb <= 16): 16 columns' sx * cb values at a
             * time turned round in registers, row p * cb + ci of the block being plane
             * (ci, p); while every phase of the block is inside the image and its 16
             * values a column inside the row */
            CD_T tr[16 * 16];
            /* the blocks end by e: j1 of the last phase, L, and the 16 values a column
             * reads inside the row; the last block may overlap the one before */
            cd_isz e = Wd / sx - qmin;
            if (e > L)
                e = L;
            if (e > (Wd * cb - 16) / xstep - qmin + 1)
                e = (Wd * cb - 16) / xstep - qmin + 1;
            ja = jt = j0;
            while (jt < e && e - j0 >= 16 && Wd * cb >= 16) {
                const cd_isz jb = jt + 16 <= e ? jt : e - 16;
                CD_TR16(tr, 16, xr + (jb + qmin) * xstep, xstep);
                for (cd_isz p = 0; p < sx; p++)
                    for (cd_isz ci = 0; ci < cb; ci++)
                        __builtin_memcpy(pr + (ci * sx + p) * L + jb, tr + (p * cb + ci) * 16,
                                         16 * sizeof(CD_T));
                jt = jb + 16;
            }
        }
#endif
        for (cd_isz p = 0; p < sx; p++) {
            cd_isz j1 = (Wd - p + sx - 1) / sx - qmin;
            j1 = j1 < j0 ? j0 : j1 > L ? L : j1;
            const CD_T* xs = xr + p * cb + qmin * xstep;    /* column qmin * sx + p */
            cd_isz ci = 0;
#ifdef CD_FPL_TR16
            /* 16 channels x 16 columns at a time, turned round in registers */
            for (; ci + 16 <= cb; ci += 16) {
                CD_T* pl = pr + (ci * sx + p) * L;
                cd_isz j = j0;
                for (; j + 16 <= j1; j += 16)
                    CD_TR16(pl + j, sx * L, xs + j * xstep + ci, xstep);
                if (j < j1 && j1 - j0 >= 16) {       /* the last block overlaps */
                    CD_TR16(pl + j1 - 16, sx * L, xs + (j1 - 16) * xstep + ci, xstep);
                    j = j1;
                }
                for (; j < j1; j++)
                    for (cd_isz c = 0; c < 16; c++)
                        pl[c * sx * L + j] = xs[j * xstep + ci + c];
            }
#endif
            for (; ci < cb; ci++) {
                /* one plane: the channel's column read with stride, written in a run,
                 * around the block copy's range */
                CD_T* pl = pr + (ci * sx + p) * L;
                const cd_isz lo = ja < j1 ? ja : j1, hi = jt > j0 ? jt : j0;
                for (cd_isz j = j0; j < lo; j++)
                    pl[j] = xs[j * xstep + ci];
                for (cd_isz j = hi > lo ? hi : lo; j < j1; j++)
                    pl[j] = xs[j * xstep + ci];
            }
        }
    }
}

/* The column taps (cd_fplcols_: q, ph, *qmin) and, in P, the planes of the input rows
 * that output rows [oy0, oy1) of image n read (cd_fplplanes_); returns the planes'
 * length L. The forward and both filter gradients start their bands with it. */
static cd_isz
CD_CAT(cd_fplband_, CD_SUF)(const cd_geom* g, const CD_T* X, cd_isz n, cd_isz oy0,
                            cd_isz oy1, cd_isz* q, cd_isz* ph, cd_isz* qmin, CD_T* P)
{
    const cd_isz sy = g->s[1];
    const cd_isz nrows = (oy1 - oy0 - 1) * sy + (g->k[1] - 1) * g->d[1] + 1;
    *qmin = 0;
    CD_CAT(cd_fplcols_, CD_SUF)(g, q, ph, qmin);
    const cd_isz L = CD_CAT(cd_fpl_len_, CD_SUF)(g);
    CD_CAT(cd_fplplanes_, CD_SUF)(g->cb, g->s[2], g->big[1], g->big[2], X, n,
                                  oy0 * sy - g->pad[1], nrows, *qmin, L, P);
    return L;
}

/* Output rows [oy0, oy1) of image n: the planes of the input rows they read built in
 * P (cd_fpl_scratch elements, zeroed once before a thread's first task), then every
 * block of output pixels. */
static void
CD_CAT(cd_fplrun_, CD_SUF)(const cd_geom* g, const CD_T* X, const CD_T* W, CD_T* Y,
                           cd_isz n, cd_isz oy0, cd_isz oy1, CD_T* P)
{
    const cd_isz CO = g->cs, cb = g->cb, sx = g->s[2], sy = g->s[1];
    const cd_isz kh = g->k[1], kw = g->k[2], dy = g->d[1], H = g->big[1];
    const cd_isz OH = g->small[1], OW = g->small[2];
    const cd_isz iy0 = oy0 * sy - g->pad[1];
    cd_isz q[CD_FPL_MAXKW], ph[CD_FPL_MAXKW], qmin;
    const cd_isz L = CD_CAT(cd_fplband_, CD_SUF)(g, X, n, oy0, oy1, q, ph, &qmin, P);
    cd_isz off[CD_MAX_TAPS];
    const CD_T* wt[CD_MAX_TAPS];
    for (cd_isz oy = oy0; oy < oy1; oy++) {
        const cd_isz r0 = (oy - oy0) * sy;
        /* the row's taps: (ky, kx) in order, padding rows skipped (they add nothing) */
        cd_isz nt = 0;
        for (cd_isz ky = 0; ky < kh; ky++) {
            const cd_isz r = r0 + ky * dy;
            if (iy0 + r < 0 || iy0 + r >= H)
                continue;
            for (cd_isz kx = 0; kx < kw; kx++) {
                off[nt] = (r * cb * sx + ph[kx]) * L + q[kx] - qmin;
                wt[nt++] = W + (ky * kw + kx) * cb * CO;
            }
        }
        CD_T* yr = Y + ((n * OH + oy) * OW) * CO;
        cd_isz ox = 0;
#define CD_FPL(co, nb, nv)                                                               \
        CD_CAT(cd_fplblk_, CD_SUF)(co, nb, P, off, wt, nt, cb, sx * L, yr + ox * co, ox, nv)
#define CD_FPL_CO(co)                                                                    \
        for (; ox + 2 * CD_VL <= OW && (co) <= 4; ox += 2 * CD_VL)                        \
            CD_FPL(co, 2, 2 * CD_VL);                                                    \
        for (; ox < OW; ox += CD_VL)                                                     \
            CD_FPL(co, 1, OW - ox < CD_VL ? OW - ox : CD_VL);
        CD_FPL_SWITCH(CO, CD_FPL_CO)
#undef CD_FPL_CO
#undef CD_FPL
    }
}

/* ---- the filter gradient on the same planes (few output channels: the GEMM's result
 * is kh * kw * cb x CO, its depth the output pixels) */

/* The scratch of a band of `rows` output rows: the planes, then DY's rows
 * de-interleaved (rows x CO x W rounded up to VL). */
static cd_isz CD_CAT(cd_fplbscr_, CD_SUF)(const cd_geom* g, cd_isz rows)
{
    const cd_isz owp = (g->small[2] + CD_VL - 1) / CD_VL * CD_VL;
    return CD_CAT(cd_fplscr_, CD_SUF)(g, rows) + rows * g->cs * owp;
}

/* part[(tap * cb + ci) * CO + co] for one (tap row ky, tap column kx, input channel ci):
 * the band's sum of plane values times DY's, NP partial vectors (block b of a row into
 * b % NP, the row's last blocks past a multiple of NP into 0) added ((0 + 1) + (2 + 3)),
 * then the lanes in order. */
static inline __attribute__((always_inline)) void
CD_CAT(cd_fplbsum_, CD_SUF)(const int CO, const cd_geom* g, const CD_T* P, const CD_T* D,
                            cd_isz L, cd_isz owp, cd_isz plane, cd_isz ky, cd_isz rows,
                            cd_isz iy0, CD_T* out)
{
    const int NP = CO >= 4 ? 1 : CO >= 2 ? 2 : 4;
    const cd_isz cb = g->cb, sx = g->s[2], sy = g->s[1], dy = g->d[1], H = g->big[1];
    const cd_isz OW = g->small[2], nb = owp / CD_VL, tail = OW - (nb - 1) * CD_VL;
    CD_VEC acc[4][8];
    for (int u = 0; u < NP; u++)
        for (int c = 0; c < CO; c++)
            acc[u][c] = (CD_VEC){0};
    for (cd_isz o = 0; o < rows; o++) {
        const cd_isz r = o * sy + ky * dy;
        if (iy0 + r < 0 || iy0 + r >= H)
            continue;               /* a padding row: X is 0 there (DY is finite) */
        const CD_T* pl = P + r * cb * sx * L + plane;
        const CD_T* dr = D + o * CO * owp;
        cd_isz b = 0;
        for (; b + NP < nb; b += NP)
            for (int u = 0; u < NP; u++) {
                const CD_VEC v = CD_CAT(cd_load_, CD_SUF)(pl + (b + u) * CD_VL);
                for (int c = 0; c < CO; c++)
                    acc[u][c] += v * CD_CAT(cd_load_, CD_SUF)(dr + c * owp + (b + u) * CD_VL);
            }
        for (; b < nb; b++) {
            /* the last block: only the valid lanes of the plane (a column no output reads
             * may hold Inf or NaN; DY is zero past OW) */
            const CD_VEC v = b < nb - 1 ? CD_CAT(cd_load_, CD_SUF)(pl + b * CD_VL)
                                        : CD_CAT(cd_tail_, CD_SUF)(pl + b * CD_VL, tail);
            for (int c = 0; c < CO; c++)
                acc[0][c] += v * CD_CAT(cd_load_, CD_SUF)(dr + c * owp + b * CD_VL);
        }
    }
    for (int c = 0; c < CO; c++) {
        CD_VEC sum = acc[0][c];
        if (NP == 2)
            sum += acc[1][c];
        else if (NP == 4)
            sum = (sum + acc[1][c]) + (acc[2][c] + acc[3][c]);
        CD_T t = sum[0];
        for (int l = 1; l < CD_VL; l++)
            t += sum[l];
        out[c] = t;
    }
}

/* The filter gradient of output rows [oy0, oy1) of image n (oy1 - oy0 <= band): part
 * (kh * kw * cb * CO, overwritten) := the band's sums. P: cd_fplbscr_(g, band) elements,
 * zeroed once before a thread's first band (DY's rows sit after the planes of `band`
 * rows, whatever this band's rows, so the zeros of both stay in place). DY must be
 * finite (the padding rows are skipped). */
static void
CD_CAT(cd_fplbpf_, CD_SUF)(const cd_geom* g, const CD_T* X, const CD_T* DY, CD_T* part,
                           cd_isz n, cd_isz oy0, cd_isz oy1, cd_isz band, CD_T* P)
{
    const cd_isz cb = g->cb, CO = g->cs, sx = g->s[2], sy = g->s[1];
    const cd_isz kh = g->k[1], kw = g->k[2];
    const cd_isz OH = g->small[1], OW = g->small[2], rows = oy1 - oy0;
    const cd_isz owp = (OW + CD_VL - 1) / CD_VL * CD_VL;
    const cd_isz iy0 = oy0 * sy - g->pad[1];
    cd_isz q[CD_FPL_MAXKW], ph[CD_FPL_MAXKW], qmin;
    const cd_isz L = CD_CAT(cd_fplband_, CD_SUF)(g, X, n, oy0, oy1, q, ph, &qmin, P);
    /* DY's rows, one run of W per channel (zeros past W, never overwritten) */
    CD_T* D = P + CD_CAT(cd_fplscr_, CD_SUF)(g, band);
    for (cd_isz o = 0; o < rows; o++) {
        const CD_T* src = DY + ((n * OH + oy0 + o) * OW) * CO;
        CD_T* dst = D + o * CO * owp;
        for (cd_isz ox = 0; ox < OW; ox++)
            for (cd_isz c = 0; c < CO; c++)
                dst[c * owp + ox] = src[ox * CO + c];
    }
    for (cd_isz ky = 0; ky < kh; ky++)
        for (cd_isz kx = 0; kx < kw; kx++)
            for (cd_isz ci = 0; ci < cb; ci++) {
                const cd_isz plane = (ci * sx + ph[kx]) * L + q[kx] - qmin;
                CD_T* out = part + ((ky * kw + kx) * cb + ci) * CO;
#define CD_FPLB(co) CD_CAT(cd_fplbsum_, CD_SUF)(co, g, P, D, L, owp, plane, ky, rows, \
                                                iy0, out)
                CD_FPL_SWITCH(CO, CD_FPLB)
#undef CD_FPLB
            }
}

/* cd_fplsum_ with the small channels outside the taps (each plane's cache lines
 * reused by every tap before the next channel), the taps' multiply-adds into NP
 * partial sums by tap (tap t into t % NP, the last taps past a multiple of NP into 0). */
static inline __attribute__((always_inline)) void
CD_CAT(cd_tplsum_, CD_SUF)(const int CO, const int NB, const CD_T* P, const cd_isz* off,
                           const CD_T* const* wt, cd_isz ntap, cd_isz cb, cd_isz cstride,
                           cd_isz x0, CD_T (*tmp)[2 * CD_VL])
{
    const int NP = CO * NB >= 8 ? 1 : CO * NB >= 4 ? 2 : 4;
    CD_VEC acc[4][2][8];
    for (int u = 0; u < NP; u++)
        for (int b = 0; b < NB; b++)
            for (int c = 0; c < CO; c++)
                acc[u][b][c] = (CD_VEC){0};
    const cd_isz nfull = ntap / NP * NP;
    for (cd_isz ci = 0; ci < cb; ci++) {
        const CD_T* pc = P + ci * cstride + x0;
        cd_isz t = 0;
        for (; t < nfull; t += NP)
            for (int u = 0; u < NP; u++) {
                CD_VEC v[2];
                for (int b = 0; b < NB; b++)
                    v[b] = CD_CAT(cd_load_, CD_SUF)(pc + off[t + u] + b * CD_VL);
                const CD_T* w = wt[t + u] + ci * CO;
                for (int c = 0; c < CO; c++)
                    for (int b = 0; b < NB; b++)
                        acc[u][b][c] += v[b] * w[c];
            }
        for (; t < ntap; t++) {
            CD_VEC v[2];
            for (int b = 0; b < NB; b++)
                v[b] = CD_CAT(cd_load_, CD_SUF)(pc + off[t] + b * CD_VL);
            const CD_T* w = wt[t] + ci * CO;
            for (int c = 0; c < CO; c++)
                for (int b = 0; b < NB; b++)
                    acc[0][b][c] += v[b] * w[c];
        }
    }
    for (int c = 0; c < CO; c++)
        for (int b = 0; b < NB; b++) {
            CD_VEC sum = acc[0][b][c];
            if (NP == 2)
                sum += acc[1][b][c];
            else if (NP == 4)
                sum = (sum + acc[1][b][c]) + (acc[2][b][c] + acc[3][b][c]);
            __builtin_memcpy(&tmp[c][b * CD_VL], &sum, sizeof(CD_VEC));
        }
}

/* ---- the transposed conv on planes of the small side (few big-side channels: the
 * generator and decoder heads into RGB). Big column i = sx * t + px (phase px) sums
 * the taps kx with px + pad - kx * dx = e * sx, reading small column t + e: for VL
 * consecutive t of one phase that is one contiguous vector of a small row's plane
 * (no column phases: the planes have stride 1). Big row iy likewise sums the taps ky
 * with iy + pad - ky * dy = oy * sy over the small rows oy inside the image. */

/* The column taps of every phase: tap kx of phase px (in kx order) at kx[px * kw + j],
 * its small column's offset e at e[px * kw + j], j < nk[px]; *emin, *emax over all. */
static inline void
CD_CAT(cd_tplcols_, CD_SUF)(const cd_geom* g, cd_isz* kxs, cd_isz* e, cd_isz* nk,
                            cd_isz* emin, cd_isz* emax)
{
    const cd_isz sx = g->s[2], kw = g->k[2];
    *emin = 0;
    *emax = 0;
    int first = 1;
    for (cd_isz px = 0; px < sx; px++) {
        nk[px] = 0;
        for (cd_isz kx = 0; kx < kw; kx++) {
            const cd_isz num = px + g->pad[2] - kx * g->d[2];
            const cd_isz q = cd_floordiv(num, sx);
            if (q * sx != num)
                continue;
            kxs[px * kw + nk[px]] = kx;
            e[px * kw + nk[px]++] = q;
            if (first || q < *emin)
                *emin = q;
            if (first || q > *emax)
                *emax = q;
            first = 0;
        }
    }
}

/* A plane's length: the blocks of VL phase columns t every read, shifted by up to
 * emax - emin (cd_tplcols_; zeros past the small row). */
static inline cd_isz CD_CAT(cd_tpl_len_, CD_SUF)(const cd_geom* g, cd_isz emin, cd_isz emax)
{
    const cd_isz T = (g->big[2] + g->s[2] - 1) / g->s[2];
    const cd_isz Tv = (T + CD_VL - 1) / CD_VL * CD_VL;
    return (Tv + emax - emin + CD_VL - 1) / CD_VL * CD_VL;
}

/* The small rows a band of `rows` big rows reads, at most (whatever its first row). */
static inline cd_isz CD_CAT(cd_tpl_nrows_, CD_SUF)(const cd_geom* g, cd_isz rows)
{
    return (rows - 1 + (g->k[1] - 1) * g->d[1]) / g->s[1] + 2;
}

/* The scratch of a band of `rows` big rows: its small rows' planes. */
static cd_isz CD_CAT(cd_tplscr_, CD_SUF)(const cd_geom* g, cd_isz rows)
{
    cd_isz kxs[CD_TPL_MAXS * CD_FPL_MAXKW], e[CD_TPL_MAXS * CD_FPL_MAXKW];
    cd_isz nk[CD_TPL_MAXS], emin, emax;
    CD_CAT(cd_tplcols_, CD_SUF)(g, kxs, e, nk, &emin, &emax);
    return CD_CAT(cd_tpl_nrows_, CD_SUF)(g, rows) * g->cs
           * CD_CAT(cd_tpl_len_, CD_SUF)(g, emin, emax);
}

/* Big rows [iy0, iy1) of image n: the planes of the small rows they read built in P
 * (cd_tpl_scratch elements, zeroed once before a thread's first task), then per row
 * every block of NB * VL phase columns, all sx phases of it (CO channels each) before
 * the block's big pixels are stored. W: the filter packed (kh, kw, cs, CO). Each
 * output is one chain over (ky, kx, small channel) in that order: shapes only. */
static void
CD_CAT(cd_tplrun_, CD_SUF)(const cd_geom* g, const CD_T* X, const CD_T* W, CD_T* Y,
                           cd_isz n, cd_isz iy0, cd_isz iy1, CD_T* P)
{
    const cd_isz CO = g->cb, CI = g->cs, sx = g->s[2], sy = g->s[1];
    const cd_isz kh = g->k[1], kw = g->k[2], dy = g->d[1];
    const cd_isz SH = g->small[1], BH = g->big[1], BW = g->big[2];
    cd_isz kxs[CD_TPL_MAXS * CD_FPL_MAXKW], e[CD_TPL_MAXS * CD_FPL_MAXKW];
    cd_isz nk[CD_TPL_MAXS], emin, emax;
    CD_CAT(cd_tplcols_, CD_SUF)(g, kxs, e, nk, &emin, &emax);
    const cd_isz L = CD_CAT(cd_tpl_len_, CD_SUF)(g, emin, emax);
    const cd_isz T = (BW + sx - 1) / sx;
    const cd_isz oy_lo = cd_floordiv(iy0 + g->pad[1] - (kh - 1) * dy, sy);
    const cd_isz nr = cd_floordiv(iy1 - 1 + g->pad[1], sy) - oy_lo + 1;
    CD_CAT(cd_fplplanes_, CD_SUF)(CI, 1, SH, g->small[2], X, n, oy_lo, nr, emin, L, P);
    cd_isz off[CD_MAX_TAPS], start[CD_TPL_MAXS + 1];
    const CD_T* wt[CD_MAX_TAPS];
    CD_T tmp[CD_TPL_MAXS * CD_FPL_MAXCO][2 * CD_VL];
    for (cd_isz iy = iy0; iy < iy1; iy++) {
        /* every phase's taps: (ky, kx) in order, small rows outside the image skipped */
        cd_isz nt = 0;
        for (cd_isz px = 0; px < sx; px++) {
            start[px] = nt;
            for (cd_isz ky = 0; ky < kh; ky++) {
                const cd_isz num = iy + g->pad[1] - ky * dy;
                const cd_isz oy = cd_floordiv(num, sy);
                if (oy * sy != num || oy < 0 || oy >= SH)
                    continue;
                for (cd_isz j = 0; j < nk[px]; j++) {
                    off[nt] = (oy - oy_lo) * CI * L + e[px * kw + j] - emin;
                    wt[nt++] = W + (ky * kw + kxs[px * kw + j]) * CI * CO;
                }
            }
        }
        start[sx] = nt;
        CD_T* yr = Y + ((n * BH + iy) * BW) * CO;
        cd_isz t0 = 0;
#define CD_TPL(co, nb)                                                                   \
        {                                                                                \
            for (cd_isz px = 0; px < sx; px++)                                           \
                CD_CAT(cd_tplsum_, CD_SUF)(co, nb, P, off + start[px], wt + start[px],   \
                                           start[px + 1] - start[px], CI, L, t0,         \
                                           tmp + px * (co));                             \
            const cd_isz nv = T - t0 < (nb) * CD_VL ? T - t0 : (nb) * CD_VL;             \
            for (cd_isz l = 0; l < nv; l++) {                                            \
                const cd_isz i0 = sx * (t0 + l);                                         \
                const cd_isz np = BW - i0 < sx ? BW - i0 : sx;                           \
                CD_T* yp = yr + i0 * (co);                                               \
                for (cd_isz px = 0; px < np; px++)                                       \
                    for (int c = 0; c < (co); c++)                                       \
                        yp[px * (co) + c] = tmp[px * (co) + c][l];                       \
            }                                                                            \
        }
#define CD_TPL_CO(co)                                                                    \
        for (; t0 + 2 * CD_VL <= T && (co) <= 4; t0 += 2 * CD_VL)                         \
            CD_TPL(co, 2)                                                                \
        for (; t0 < T; t0 += CD_VL)                                                      \
            CD_TPL(co, 1)
        CD_FPL_SWITCH(CO, CD_TPL_CO)
#undef CD_TPL_CO
#undef CD_TPL
    }
}

/* ---- the filter gradient as a GEMM on the planes (many small-side channels, where
 * cd_fplbpf_'s CO loads of DY per CO multiply-adds cost too much): the igemm
 * micro-kernel with DW's rows (ky, kx, ci) broadcast from the planes along a band row's
 * output pixels, DY's channels in the vector lanes. No column buffer and no copy of DY
 * (unless its rows are not whole vectors); each element of a band's part is one chain
 * of multiply-adds over the band's rows and pixels in order. */

/* The scratch of a band of `rows` output rows: the planes, a row of OW zeros (for the
 * padding rows: zeros times DY, as im2col + GEMM), DY's rows padded to whole vectors
 * where cs is not. */
static cd_isz CD_CAT(cd_fplgscr_, CD_SUF)(const cd_geom* g, cd_isz rows)
{
    const cd_isz csp = (g->cs + CD_VL - 1) / CD_VL * CD_VL;
    const cd_isz dyc = g->cs % CD_VL ? rows * g->small[2] * csp : 0;
    return CD_CAT(cd_fplscr_, CD_SUF)(g, rows) + g->small[2] + CD_VL + dyc;
}

/* part (kh * kw * cb * cs, overwritten) := the gradient's sums over output rows
 * [oy0, oy1) of image n (oy1 - oy0 <= band <= CD_FPLG_MAXROWS); P: cd_fplgscr_(g, band)
 * elements, zeroed once before a thread's first band. */
static void
CD_CAT(cd_fplbgm_, CD_SUF)(const cd_geom* g, const CD_T* X, const CD_T* DY, CD_T* part,
                           cd_isz n, cd_isz oy0, cd_isz oy1, cd_isz band, CD_T* P)
{
    const cd_isz cb = g->cb, cs = g->cs, sx = g->s[2], sy = g->s[1];
    const cd_isz kh = g->k[1], kw = g->k[2], dy = g->d[1], H = g->big[1];
    const cd_isz OH = g->small[1], OW = g->small[2], rows = oy1 - oy0;
    const cd_isz iy0 = oy0 * sy - g->pad[1];
    cd_isz q[CD_FPL_MAXKW], ph[CD_FPL_MAXKW], qmin;
    const cd_isz L = CD_CAT(cd_fplband_, CD_SUF)(g, X, n, oy0, oy1, q, ph, &qmin, P);
    CD_T* zrow = P + CD_CAT(cd_fplscr_, CD_SUF)(g, band);
    const CD_T* B = DY + ((n * OH + oy0) * OW) * cs;
    cd_isz ldb = cs;
    if (cs % CD_VL) {
        /* rows of whole vectors, so the last panel's loads stay inside (its lanes past
         * cs stay zero: never written) */
        CD_T* D = zrow + OW + CD_VL;
        ldb = (cs + CD_VL - 1) / CD_VL * CD_VL;
        for (cd_isz p = 0; p < rows * OW; p++)
            __builtin_memcpy(D + p * ldb, B + p * cs, cs * sizeof(CD_T));
        B = D;
    }
    const cd_isz pb = (cd_isz)CD_IG_NV * CD_VL, K = kh * kw * cb;
    const CD_T* a[8 * CD_FPLG_MAXROWS];
    const CD_T* bp[CD_FPLG_MAXROWS];
    CD_T* y[8];
    for (cd_isz c0 = 0; c0 < cs; c0 += pb) {
        const cd_isz nv = cs - c0 < pb ? cs - c0 : pb;
        const int NV = (int)((nv + CD_VL - 1) / CD_VL);
        const int MR = CD_CAT(cd_ig_mr_, CD_SUF)(NV);
        for (cd_isz o = 0; o < rows; o++)
            bp[o] = B + o * OW * ldb + c0;
        for (cd_isz i0 = 0; i0 < K; i0 += MR) {
            const int mr = (int)(K - i0 < MR ? K - i0 : MR);
            for (int i = 0; i < mr; i++) {
                const cd_isz row = i0 + i, tap = row / cb, ci = row - tap * cb;
                const cd_isz ky = tap / kw, kx = tap - ky * kw;
                const cd_isz off = (ci * sx + ph[kx]) * L + q[kx] - qmin;
                for (cd_isz o = 0; o < rows; o++) {
                    const cd_isz r = o * sy + ky * dy;
                    a[o * mr + i] = iy0 + r < 0 || iy0 + r >= H ? zrow
                                                                : P + r * cb * sx * L + off;
                }
                y[i] = part + row * cs + c0;
            }
            CD_CAT(cd_igmk_any_, CD_SUF)(mr, NV, rows, a, bp, OW, ldb, y, nv, 0);
        }
    }
}
