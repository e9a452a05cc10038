/* One instantiation of the Winograd phase kernel's transforms (see _dot.h, cd_wi_*),
 * included by _dot_impl.h once per (dtype, instruction set) with CD_T and CD_SUF.
 *
 * Channels-last only, one group, 2-D (depth is folded into the batch by the caller).
 * A transposed convolution with stride s and kernel k is s_y * s_x stride-1
 * correlations of the input, one per output phase, with r = ceil(k / s) taps per axis
 * (a phase with fewer taps gets zero taps, so every phase reads the same input window).
 * Each is computed with Winograd's minimal filtering F(m, r) (Lavin & Gray 2016):
 * per tile of m x m phase outputs, V = B^T d B (the input transform, shared by all
 * phases), M = V (.) U summed over the input channels (a GEMM per transform position,
 * with all phases' filters side by side: U = G g G^T, stored transposed), Y = A^T M A (the output
 * transform). The channel loops are plain loops the compiler vectorises.
 * No header guard: meant to be included several times.
 */

/* dst[0 .. n) := sum_i coef[i * cstep] * src_i[0 .. n) over the sources present
 * (src[i] != NULL and coef != 0); zeros if none. */
static inline __attribute__((always_inline)) void
CD_CAT(cd_wicomb_, CD_SUF)(CD_T* restrict dst, cd_isz n, int cnt, const double* coef,
                          cd_isz cstep, const CD_T* const* src)
{
    int first = 1;
    for (int i = 0; i < cnt; i++) {
        const CD_T c = (CD_T)coef[i * cstep];
        const CD_T* restrict s = src[i];
        if (s == NULL || c == 0)
            continue;
        if (first) {
            if (c == 1)
                for (cd_isz e = 0; e < n; e++) dst[e] = s[e];
            else if (c == -1)
                for (cd_isz e = 0; e < n; e++) dst[e] = -s[e];
            else
                for (cd_isz e = 0; e < n; e++) dst[e] = c * s[e];
            first = 0;
        } else if (c == 1) {
            for (cd_isz e = 0; e < n; e++) dst[e] += s[e];
        } else if (c == -1) {
            for (cd_isz e = 0; e < n; e++) dst[e] -= s[e];
        } else {
            for (cd_isz e = 0; e < n; e++) dst[e] += c * s[e];
        }
    }
    if (first)
        for (cd_isz e = 0; e < n; e++) dst[e] = 0;
}

/* U[pos][ph * cb + cout][cin] := (G_y g G_x^T)[pos] for output channels cout in
 * [c0, c1) of every phase ph = py * s_x + px, where g[jy][jx] = W[tap_y][tap_x][cout]
 * (a row of cs input channels) with tap = p + (r - 1 - j) * s (zero past the kernel).
 * Rows of U are B^T rows of the GEMM: every loop runs along the input channels. */
static void
CD_CAT(cd_wifilt_, CD_SUF)(const cd_wino* p, const CD_T* W, CD_T* U, cd_isz c0,
                          cd_isz c1, CD_T* tmp)
{
    const cd_isz cb = p->cb, cs = p->cs, N = p->sy * p->sx * cb;
    const CD_T* src[CD_WI_MAXA];
    for (cd_isz co = c0; co < c1; co++)
        for (cd_isz py = 0; py < p->sy; py++)
            for (cd_isz px = 0; px < p->sx; px++) {
                const cd_isz col = (py * p->sx + px) * cb + co;
                /* tmp[a][jx] = sum_jy G_y[a][jy] g[jy][jx] */
                for (cd_isz jx = 0; jx < p->rx; jx++) {
                    const cd_isz tx = px + (p->rx - 1 - jx) * p->sx;
                    for (cd_isz jy = 0; jy < p->ry; jy++) {
                        const cd_isz ty = py + (p->ry - 1 - jy) * p->sy;
                        src[jy] = (ty < p->kh && tx < p->kw)
                            ? W + ((ty * p->kw + tx) * cb + co) * cs : NULL;
                    }
                    for (cd_isz a = 0; a < p->ay; a++)
                        CD_CAT(cd_wicomb_, CD_SUF)(tmp + (a * p->rx + jx) * cs, cs,
                                                   (int)p->ry, p->gy + a * p->ry, 1, src);
                }
                /* U[a][b] = sum_jx G_x[b][jx] tmp[a][jx] */
                for (cd_isz a = 0; a < p->ay; a++) {
                    for (cd_isz jx = 0; jx < p->rx; jx++)
                        src[jx] = tmp + (a * p->rx + jx) * cs;
                    for (cd_isz b = 0; b < p->ax; b++)
                        CD_CAT(cd_wicomb_, CD_SUF)(U + ((a * p->ax + b) * N + col) * cs, cs,
                                                   (int)p->rx, p->gx + b * p->rx, 1, src);
                }
            }
}

/* The input transform of tiles [t0, t0 + nt): V[pos][t - t0][cin] (rows of cs).
 * tmp: ay * ax * cs elements. Returns whether any V element is Inf or NaN (an Inf or
 * NaN input, or an overflow: the Winograd sums would spread it to outputs whose taps
 * never read it, so the caller takes another kernel). */
static int
CD_CAT(cd_wiin_, CD_SUF)(const cd_wino* p, const CD_T* X, CD_T* V, CD_T* tmp,
                        cd_isz t0, cd_isz nt)
{
    const cd_isz cs = p->cs, ay = p->ay, ax = p->ax, per = p->nty * p->ntx;
    const CD_T* src[CD_WI_MAXA];
    int bad = 0;
    for (cd_isz t = t0; t < t0 + nt; t++) {
        const cd_isz n = t / per, ty = (t % per) / p->ntx, tx = t % p->ntx;
        const cd_isz i0 = p->qy + ty * p->my - p->ry + 1;
        const cd_isz j0 = p->qx + tx * p->mx - p->rx + 1;
        /* tmp[a][j] = sum_i BT_y[a][i] d[i][j] */
        for (cd_isz j = 0; j < ax; j++) {
            const cd_isz x = j0 + j;
            for (cd_isz i = 0; i < ay; i++) {
                const cd_isz y = i0 + i;
                src[i] = (x >= 0 && x < p->W && y >= 0 && y < p->H)
                    ? X + ((n * p->H + y) * p->W + x) * cs : NULL;
            }
            for (cd_isz a = 0; a < ay; a++)
                CD_CAT(cd_wicomb_, CD_SUF)(tmp + (a * ax + j) * cs, cs, (int)ay,
                                           p->bty + a * ay, 1, src);
        }
        /* V[a][b] = sum_j BT_x[b][j] tmp[a][j] */
        for (cd_isz a = 0; a < ay; a++) {
            for (cd_isz j = 0; j < ax; j++)
                src[j] = tmp + (a * ax + j) * cs;
            for (cd_isz b = 0; b < ax; b++) {
                CD_T* restrict v = V + ((a * ax + b) * nt + (t - t0)) * cs;
                CD_CAT(cd_wicomb_, CD_SUF)(v, cs, (int)ax, p->btx + b * ax, 1, src);
                bad |= CD_CAT(cd_nonfinite_, CD_SUF)(v, cs);     /* still in cache */
            }
        }
    }
    return bad;
}

/* The output transform of tiles [t0, t0 + nt): from M[pos][t - t0][ph * cb + cout]
 * (rows of N = s_y * s_x * cb), every output pixel of the tiles inside Y written once.
 * tmp: ay * mx * cb elements. */
static void
CD_CAT(cd_wiout_, CD_SUF)(const cd_wino* p, const CD_T* M, CD_T* Y, CD_T* tmp,
                         cd_isz t0, cd_isz nt)
{
    const cd_isz cb = p->cb, ay = p->ay, ax = p->ax, my = p->my, mx = p->mx;
    const cd_isz N = p->sy * p->sx * cb, per = p->nty * p->ntx;
    const CD_T* src[CD_WI_MAXA];
    for (cd_isz t = t0; t < t0 + nt; t++) {
        const cd_isz n = t / per, ty = (t % per) / p->ntx, tx = t % p->ntx;
        for (cd_isz py = 0; py < p->sy; py++)
            for (cd_isz px = 0; px < p->sx; px++) {
                const cd_isz col = (py * p->sx + px) * cb;
                /* the tile's output columns inside Y: ox = (q0x + j) * sx + px - pad */
                cd_isz jlo = mx, jhi = 0;
                for (cd_isz j = 0; j < mx; j++) {
                    const cd_isz ox = (p->qx + tx * mx + j) * p->sx + px - p->padx;
                    if (ox >= 0 && ox < p->BW) {
                        if (j < jlo) jlo = j;
                        jhi = j + 1;
                    }
                }
                if (jlo >= jhi)
                    continue;
                /* tmp[a][j] = sum_b AT_x[j][b] M[a][b] */
                for (cd_isz a = 0; a < ay; a++) {
                    for (cd_isz b = 0; b < ax; b++)
                        src[b] = M + ((a * ax + b) * nt + (t - t0)) * N + col;
                    for (cd_isz j = jlo; j < jhi; j++)
                        CD_CAT(cd_wicomb_, CD_SUF)(tmp + (a * mx + j) * cb, cb, (int)ax,
                                                   p->atx + j * ax, 1, src);
                }
                /* Y[i][j] = sum_a AT_y[i][a] tmp[a][j] */
                for (cd_isz i = 0; i < my; i++) {
                    const cd_isz oy = (p->qy + ty * my + i) * p->sy + py - p->pady;
                    if (oy < 0 || oy >= p->BH)
                        continue;
                    for (cd_isz j = jlo; j < jhi; j++) {
                        const cd_isz ox = (p->qx + tx * mx + j) * p->sx + px - p->padx;
                        for (cd_isz a = 0; a < ay; a++)
                            src[a] = tmp + (a * mx + j) * cb;
                        CD_CAT(cd_wicomb_, CD_SUF)(Y + ((n * p->BH + oy) * p->BW + ox) * cb,
                                                   cb, (int)ay, p->aty + i * ay, 1, src);
                    }
                }
            }
    }
}
