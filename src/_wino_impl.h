/* One instantiation of the Winograd phase kernel's transforms (see _dot.h, cd_wi_*),
 * included by _dot_impl.h once per (dtype, instruction set) with CD_T and CD_SUF.
 *
 * Channels-last only, one group, 2-D (depth is folded into the batch by the caller).
 * A transposed convolution with stride s and kernel k is s_y * s_x stride-1
 * correlations of the input, one per output phase, with r = ceil(k / s) taps per axis
 * (a phase with fewer taps gets zero taps, so every phase reads the same input window).
 * Each is computed with Winograd's minimal filtering F(m, r) (Lavin & Gray 2016):
 * per tile of m x m phase outputs, V = B^T d B (the input transform, shared by all
 * phases), M = V (.) U summed over the input channels (a GEMM per transform position
 * on the igemm micro-kernel, with all phases' filters side by side: U = G g G^T, packed
 * into the kernel's panels), Y = A^T M A (the output transform). The transforms'
 * channel loops are plain loops the compiler vectorises.
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

/* U's columns [col, col + VL) (output channels co0 .. co0 + VL of one phase) for 4 x 4
 * tiles and RY x RX taps: the taps' rows transposed into wt (RY * RX * cs vectors of
 * output channels), then per input channel the taps and both stages in registers and
 * each U row one vector store into its panel (the scalar loops below store a column
 * element by element, nr apart). */
static inline __attribute__((always_inline)) void
CD_CAT(cd_wifilt4v_, CD_SUF)(const int RY, const int RX, const cd_wino* p, const CD_T* W,
                             CD_T* U, cd_isz col, CD_T* restrict wt)
{
    const cd_isz cb = p->cb, cs = p->cs, nr = p->nr, ustride = p->np * cs;
    const cd_isz co0 = col % cb, py = (col / cb) / p->sx, px = (col / cb) % p->sx;
    CD_T gy[4 * 3], gx[4 * 3];
    for (int e = 0; e < 4 * RY; e++)
        gy[e] = (CD_T)p->gy[e];
    for (int e = 0; e < 4 * RX; e++)
        gx[e] = (CD_T)p->gx[e];
    for (int jy = 0; jy < RY; jy++)
        for (int jx = 0; jx < RX; jx++) {
            const cd_isz ty = py + (RY - 1 - jy) * p->sy, tx = px + (RX - 1 - jx) * p->sx;
            CD_T* w = wt + (jy * RX + jx) * cs * CD_VL;
            if (ty >= p->kh || tx >= p->kw) {
                for (cd_isz e = 0; e < cs * CD_VL; e++)
                    w[e] = 0;
                continue;
            }
            for (int v = 0; v < CD_VL; v++) {
                const CD_T* restrict src = W + ((ty * p->kw + tx) * cb + co0 + v) * cs;
                for (cd_isz k = 0; k < cs; k++)
                    w[k * CD_VL + v] = src[k];
            }
        }
    CD_T* dst = U + (col / nr) * cs * nr + col % nr;
    for (cd_isz k = 0; k < cs; k++) {
        CD_VEC g[3][3], t[4][3];
        for (int jy = 0; jy < RY; jy++)
            for (int jx = 0; jx < RX; jx++)
                g[jy][jx] = CD_CAT(cd_load_, CD_SUF)(wt + ((jy * RX + jx) * cs + k) * CD_VL);
        for (int a = 0; a < 4; a++)
            for (int jx = 0; jx < RX; jx++) {
                CD_VEC acc = gy[a * RY] * g[0][jx];
                for (int jy = 1; jy < RY; jy++)
                    acc += gy[a * RY + jy] * g[jy][jx];
                t[a][jx] = acc;
            }
        for (int a = 0; a < 4; a++)
            for (int b = 0; b < 4; b++) {
                CD_VEC u = gx[b * RX] * t[a][0];
                for (int jx = 1; jx < RX; jx++)
                    u += gx[b * RX + jx] * t[a][jx];
                __builtin_memcpy(dst + (a * 4 + b) * ustride + k * nr, &u, sizeof u);
            }
    }
}

/* The filter transform of U's columns [j0, j1) (col = ph * cb + cout, ph = py * s_x + px;
 * columns past N = s_y * s_x * cb are zeros): (G_y g G_x^T)[pos], where g[jy][jx] =
 * W[tap_y][tap_x][cout] (a row of cs input channels) with tap = p + (r - 1 - j) * s
 * (zero past the kernel), stored as the micro-kernel's panels (see cd_wigemm_):
 * U[pos][col / nr][cin][col % nr]. tmp holds max(ay * rx + 1, 9 * VL) * cs elements. */
static void
CD_CAT(cd_wifilt_, CD_SUF)(const cd_wino* p, const CD_T* W, CD_T* U, cd_isz j0,
                          cd_isz j1, CD_T* tmp)
{
    const cd_isz cb = p->cb, cs = p->cs, N = p->sy * p->sx * cb, nr = p->nr;
    const cd_isz P = p->ay * p->ax;
    CD_T* restrict row = tmp + p->ay * p->rx * cs;
    const CD_T* src[CD_WI_MAXA];
    const int vec = p->ay == 4 && p->ax == 4 && p->ry >= 2 && p->ry <= 3 && p->rx >= 2
                    && p->rx <= 3;
    for (cd_isz col = j0; col < j1; col++) {
        CD_T* panel = U + (col / nr) * cs * nr + col % nr;
        if (vec && col < N && col % cb + CD_VL <= cb && col + CD_VL <= j1
                && col % nr + CD_VL <= nr) {
            switch (p->ry * 4 + p->rx) {
                case 2 * 4 + 2: CD_CAT(cd_wifilt4v_, CD_SUF)(2, 2, p, W, U, col, tmp); break;
                case 2 * 4 + 3: CD_CAT(cd_wifilt4v_, CD_SUF)(2, 3, p, W, U, col, tmp); break;
                case 3 * 4 + 2: CD_CAT(cd_wifilt4v_, CD_SUF)(3, 2, p, W, U, col, tmp); break;
                default: CD_CAT(cd_wifilt4v_, CD_SUF)(3, 3, p, W, U, col, tmp); break;
            }
            col += CD_VL - 1;
            continue;
        }
        if (col >= N) {
            for (cd_isz pos = 0; pos < P; pos++)
                for (cd_isz k = 0; k < cs; k++)
                    panel[pos * p->np * cs + k * nr] = 0;
            continue;
        }
        const cd_isz co = col % cb, py = (col / cb) / p->sx, px = (col / cb) % p->sx;
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
        /* U[a][b] = sum_jx G_x[b][jx] tmp[a][jx], into the panels' column */
        for (cd_isz a = 0; a < p->ay; a++) {
            for (cd_isz jx = 0; jx < p->rx; jx++)
                src[jx] = tmp + (a * p->rx + jx) * cs;
            for (cd_isz b = 0; b < p->ax; b++) {
                CD_CAT(cd_wicomb_, CD_SUF)(row, cs, (int)p->rx, p->gx + b * p->rx, 1, src);
                CD_T* dst = panel + (a * p->ax + b) * p->np * cs;
                for (cd_isz k = 0; k < cs; k++)
                    dst[k * nr] = row[k];
            }
        }
    }
}

/* M[pos][t][0 .. np) := sum_cin V[pos][t][cin] * U[pos][n][cin] for the nt tiles of a
 * block, on the igemm micro-kernel (MR tiles x nr columns in registers, the panels of U
 * packed once per call by cd_wifilt_; np = N rounded up to nr, the columns past N
 * zeros). Every element is one chain of fused multiply-adds along cin: the blocking
 * cannot change a bit. */
static void
CD_CAT(cd_wigemm_, CD_SUF)(const cd_wino* p, const CD_T* V, const CD_T* U, CD_T* M,
                          cd_isz nt)
{
    const cd_isz cs = p->cs, nr = p->nr, np = p->np, P = p->ay * p->ax;
    const int NV = (int)(nr / CD_VL), MR = CD_CAT(cd_ig_mr_, CD_SUF)(NV);
    const CD_T* a[8];
    CD_T* y[8];
    for (cd_isz pos = 0; pos < P; pos++) {
        const CD_T* Vp = V + pos * nt * cs;
        CD_T* Mp = M + pos * nt * np;
        for (cd_isz c0 = 0; c0 < np; c0 += nr) {
            const CD_T* bt = U + (pos * np + c0) * cs;
            for (cd_isz t = 0; t < nt; t += MR) {
                const int mr = (int)(nt - t < MR ? nt - t : MR);
                for (int i = 0; i < mr; i++) {
                    a[i] = Vp + (t + i) * cs;
                    y[i] = Mp + (t + i) * np + c0;
                }
                CD_CAT(cd_igmk_any_, CD_SUF)(mr, NV, 1, a, &bt, cs, nr, y, nr, 0);
            }
        }
    }
}

/* ---- 4 x 4 tiles (every tile of the default rule: F(2, 3) and F(3, 2)): a vector of
 * channels at a time, the 16 inputs or products and both stages of the transform in
 * registers (the generic loops below stream each stage through memory). A zero
 * coefficient adds exactly nothing to a finite sum, so the dense products give the same
 * values as the generic loops' sparse ones. */

/* V[pos][tl][c0 .. c1) of one tile (src: its 16 input pixels, NULL outside). Returns
 * the running Inf/NaN check (x - x summed: 0 for finite x). */
static inline __attribute__((always_inline)) CD_VEC
CD_CAT(cd_wiin4v_, CD_SUF)(const CD_T* bty, const CD_T* btx, const CD_T* const* src,
                           CD_T* V, cd_isz vstride, cd_isz c, CD_VEC chk)
{
    CD_VEC d[4][4], t[4][4];
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++)
            d[i][j] = src[i * 4 + j] ? CD_CAT(cd_load_, CD_SUF)(src[i * 4 + j] + c)
                                     : (CD_VEC){0};
    for (int a = 0; a < 4; a++)
        for (int j = 0; j < 4; j++)
            t[a][j] = bty[a * 4] * d[0][j] + bty[a * 4 + 1] * d[1][j]
                      + bty[a * 4 + 2] * d[2][j] + bty[a * 4 + 3] * d[3][j];
    CD_VEC part[4] = {{0}};         /* four short chains, not one of 16 adds */
    for (int a = 0; a < 4; a++)
        for (int b = 0; b < 4; b++) {
            const CD_VEC v = btx[b * 4] * t[a][0] + btx[b * 4 + 1] * t[a][1]
                             + btx[b * 4 + 2] * t[a][2] + btx[b * 4 + 3] * t[a][3];
            __builtin_memcpy(V + (a * 4 + b) * vstride + c, &v, sizeof v);
            part[b] += v - v;
        }
    return chk + ((part[0] + part[1]) + (part[2] + part[3]));
}

static int
CD_CAT(cd_wiin4_, CD_SUF)(const cd_wino* p, const CD_T* X, CD_T* V, cd_isz t0, cd_isz nt)
{
    const cd_isz cs = p->cs, per = p->nty * p->ntx, cv = cs / CD_VL * CD_VL;
    const cd_isz vstride = nt * cs;
    CD_T bty[16], btx[16];
    const CD_T* src[16];
    CD_VEC chk = {0};
    CD_T chks = 0;
    for (int e = 0; e < 16; e++) {
        bty[e] = (CD_T)p->bty[e];
        btx[e] = (CD_T)p->btx[e];
    }
    for (cd_isz t = t0; t < t0 + nt; t++) {
        const cd_isz n = t / per, ty = (t % per) / p->ntx, tx = t % p->ntx;
        const cd_isz i0 = p->qy + ty * p->my - p->ry + 1;
        const cd_isz j0 = p->qx + tx * p->mx - p->rx + 1;
        for (int i = 0; i < 4; i++)
            for (int j = 0; j < 4; j++) {
                const cd_isz y = i0 + i, x = j0 + j;
                src[i * 4 + j] = (x >= 0 && x < p->W && y >= 0 && y < p->H)
                    ? X + ((n * p->H + y) * p->W + x) * cs : NULL;
            }
        CD_T* Vt = V + (t - t0) * cs;
        for (cd_isz c = 0; c < cv; c += CD_VL)
            chk = CD_CAT(cd_wiin4v_, CD_SUF)(bty, btx, src, Vt, vstride, c, chk);
        for (cd_isz c = cv; c < cs; c++) {
            CD_T d[4][4], tt[4][4];
            for (int i = 0; i < 16; i++)
                d[i / 4][i % 4] = src[i] ? src[i][c] : 0;
            for (int a = 0; a < 4; a++)
                for (int j = 0; j < 4; j++)
                    tt[a][j] = bty[a * 4] * d[0][j] + bty[a * 4 + 1] * d[1][j]
                               + bty[a * 4 + 2] * d[2][j] + bty[a * 4 + 3] * d[3][j];
            for (int a = 0; a < 4; a++)
                for (int b = 0; b < 4; b++) {
                    const CD_T v = btx[b * 4] * tt[a][0] + btx[b * 4 + 1] * tt[a][1]
                                   + btx[b * 4 + 2] * tt[a][2] + btx[b * 4 + 3] * tt[a][3];
                    Vt[(a * 4 + b) * vstride + c] = v;
                    chks += v - v;
                }
        }
    }
    for (int l = 0; l < CD_VL; l++)
        chks += chk[l];
    return chks != 0;               /* NaN != 0 too */
}

/* Y's pixels of one tile and phase from M (16 products at m[pos * mstride + c]), channels
 * [c, c + VL); y[i * 3 + j]: the output pixel of (i, j), NULL outside Y. */
static inline __attribute__((always_inline)) void
CD_CAT(cd_wiout4v_, CD_SUF)(const CD_T* aty, const CD_T* atx, int my, int mx,
                            const CD_T* m, cd_isz mstride, CD_T* const* y, cd_isz c)
{
    CD_VEC mv[4][4], t[4][3];
    for (int a = 0; a < 4; a++)
        for (int b = 0; b < 4; b++)
            mv[a][b] = CD_CAT(cd_load_, CD_SUF)(m + (a * 4 + b) * mstride + c);
    for (int a = 0; a < 4; a++)
        for (int j = 0; j < mx; j++)
            t[a][j] = atx[j * 4] * mv[a][0] + atx[j * 4 + 1] * mv[a][1]
                      + atx[j * 4 + 2] * mv[a][2] + atx[j * 4 + 3] * mv[a][3];
    for (int i = 0; i < my; i++)
        for (int j = 0; j < mx; j++)
            if (y[i * 3 + j]) {
                const CD_VEC v = aty[i * 4] * t[0][j] + aty[i * 4 + 1] * t[1][j]
                                 + aty[i * 4 + 2] * t[2][j] + aty[i * 4 + 3] * t[3][j];
                __builtin_memcpy(y[i * 3 + j] + c, &v, sizeof v);
            }
}

static void
CD_CAT(cd_wiout4_, CD_SUF)(const cd_wino* p, const CD_T* M, CD_T* Y, cd_isz t0, cd_isz nt)
{
    const cd_isz cb = p->cb, np = p->np, per = p->nty * p->ntx, cv = cb / CD_VL * CD_VL;
    const cd_isz mstride = nt * np;
    const int my = (int)p->my, mx = (int)p->mx;
    CD_T aty[12], atx[12];
    CD_T* y[9];
    for (int e = 0; e < 4 * my; e++)
        aty[e] = (CD_T)p->aty[e];
    for (int e = 0; e < 4 * mx; e++)
        atx[e] = (CD_T)p->atx[e];
    for (cd_isz t = t0; t < t0 + nt; t++) {
        const cd_isz n = t / per, ty = (t % per) / p->ntx, tx = t % p->ntx;
        for (cd_isz py = 0; py < p->sy; py++)
            for (cd_isz px = 0; px < p->sx; px++) {
                int any = 0;
                for (int i = 0; i < my; i++) {
                    const cd_isz oy = (p->qy + ty * my + i) * p->sy + py - p->pady;
                    for (int j = 0; j < mx; j++) {
                        const cd_isz ox = (p->qx + tx * mx + j) * p->sx + px - p->padx;
                        const int in = oy >= 0 && oy < p->BH && ox >= 0 && ox < p->BW;
                        y[i * 3 + j] = in ? Y + ((n * p->BH + oy) * p->BW + ox) * cb : NULL;
                        any |= in;
                    }
                }
                if (!any)
                    continue;
                const CD_T* m = M + (t - t0) * np + (py * p->sx + px) * cb;
                if (my == 2 && mx == 2)
                    for (cd_isz c = 0; c < cv; c += CD_VL)
                        CD_CAT(cd_wiout4v_, CD_SUF)(aty, atx, 2, 2, m, mstride, y, c);
                else if (my == 3 && mx == 3)
                    for (cd_isz c = 0; c < cv; c += CD_VL)
                        CD_CAT(cd_wiout4v_, CD_SUF)(aty, atx, 3, 3, m, mstride, y, c);
                else
                    for (cd_isz c = 0; c < cv; c += CD_VL)
                        CD_CAT(cd_wiout4v_, CD_SUF)(aty, atx, my, mx, m, mstride, y, c);
                for (cd_isz c = cv; c < cb; c++) {
                    CD_T tt[4][3];
                    for (int a = 0; a < 4; a++)
                        for (int j = 0; j < mx; j++) {
                            const CD_T* r = m + a * 4 * mstride + c;
                            tt[a][j] = atx[j * 4] * r[0] + atx[j * 4 + 1] * r[mstride]
                                       + atx[j * 4 + 2] * r[2 * mstride]
                                       + atx[j * 4 + 3] * r[3 * mstride];
                        }
                    for (int i = 0; i < my; i++)
                        for (int j = 0; j < mx; j++)
                            if (y[i * 3 + j])
                                y[i * 3 + j][c] = aty[i * 4] * tt[0][j] + aty[i * 4 + 1] * tt[1][j]
                                                  + aty[i * 4 + 2] * tt[2][j]
                                                  + aty[i * 4 + 3] * tt[3][j];
                }
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
    if (ay == 4 && ax == 4)
        return CD_CAT(cd_wiin4_, CD_SUF)(p, X, V, t0, nt);
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
 * (rows of np), every output pixel of the tiles inside Y written once.
 * tmp: ay * mx * cb elements. */
static void
CD_CAT(cd_wiout_, CD_SUF)(const cd_wino* p, const CD_T* M, CD_T* Y, CD_T* tmp,
                         cd_isz t0, cd_isz nt)
{
    const cd_isz cb = p->cb, ay = p->ay, ax = p->ax, my = p->my, mx = p->mx;
    const cd_isz N = p->np, per = p->nty * p->ntx;
    const CD_T* src[CD_WI_MAXA];
    if (ay == 4 && ax == 4 && my <= 3 && mx <= 3) {
        CD_CAT(cd_wiout4_, CD_SUF)(p, M, Y, t0, nt);
        return;
    }
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
