/* The dot kernel (_dot.h) built for each instruction set, chosen at run time.
 *
 * _dot_impl.h is instantiated per (dtype, ISA): baseline (whatever the compiler's
 * default target is: SSE2 on x86-64), and on GCC/x86 also AVX2+FMA and AVX-512 through
 * `#pragma GCC target`, so the default build (no -march flags) still runs the widest
 * vectors the CPU has. Results differ between ISAs in the last bits (the vector width
 * changes the order of the partial sums) but never between runs or thread counts.
 */
#include "_dot.h"

#if defined(__GNUC__) && !defined(__clang__) && (defined(__x86_64__) || defined(__i386__))
#define CD_X86_DISPATCH 1
#include <immintrin.h>
#endif

/* The small index whose tap `tap` lands on big index z along `axis`, or -1. */
static inline cd_isz cd_src(const cd_geom* g, int axis, cd_isz z, cd_isz tap)
{
    cd_isz t = z + g->pad[axis] - tap * g->d[axis];
    if (t < 0 || t % g->s[axis] != 0)
        return -1;
    t /= g->s[axis];
    return t < g->small[axis] ? t : -1;
}

/* floor(a / b) for b > 0 (C's division truncates towards zero). */
static inline cd_isz cd_floordiv(cd_isz a, cd_isz b)
{
    return a >= 0 ? a / b : -((-a + b - 1) / b);
}

/* The taps along axis ax that reach phase p of that axis (big index z = s * q + p):
 * kk[i] their kernel index, in order, off[i] the small-side offset each adds (z reads
 * small index q + off[i]). Returns their number. */
static inline cd_isz cd_axis_taps(const cd_geom* g, int ax, cd_isz p, cd_isz* kk,
                                  cd_isz* off)
{
    cd_isz n = 0;
    for (cd_isz k = 0; k < g->k[ax]; k++) {
        const cd_isz r = p + g->pad[ax] - k * g->d[ax];
        if (r % g->s[ax] == 0) {
            kk[n] = k;
            off[n++] = r / g->s[ax];            /* exact: r is a multiple */
        }
    }
    return n;
}

/* The taps that reach phase p (big index z = s * q + p per axis), in (kd, kh, kw)
 * order: tap[t] their filter index (kd * kh_n + kh) * kw_n + kw, off[t] the small-side
 * offset each adds (z reads small index q + off[t] per axis). Returns their number. */
static inline cd_isz cd_phase_taps(const cd_geom* g, const cd_isz p[3], cd_isz* tap,
                                   cd_isz (*off)[3])
{
    cd_isz k0[CD_MAX_TAPS], k1[CD_MAX_TAPS], k2[CD_MAX_TAPS];
    cd_isz o0[CD_MAX_TAPS], o1[CD_MAX_TAPS], o2[CD_MAX_TAPS];
    const cd_isz n0 = cd_axis_taps(g, 0, p[0], k0, o0);
    const cd_isz n1 = cd_axis_taps(g, 1, p[1], k1, o1);
    const cd_isz n2 = cd_axis_taps(g, 2, p[2], k2, o2);
    cd_isz nt = 0;
    for (cd_isz a = 0; a < n0; a++)
        for (cd_isz b = 0; b < n1; b++)
            for (cd_isz c = 0; c < n2; c++) {
                off[nt][0] = o0[a];
                off[nt][1] = o1[b];
                off[nt][2] = o2[c];
                tap[nt++] = (k0[a] * g->k[1] + k1[b]) * g->k[2] + k2[c];
            }
    return nt;
}

/* q := the raster coordinates of index j over (images, n[0], n[1], n[2]):
 * q[0], q[1], q[2] along the axes, q[3] the image. */
static inline void cd_coords(cd_isz j, const cd_isz n[3], cd_isz q[4])
{
    q[2] = j % n[2];
    j /= n[2];
    q[1] = j % n[1];
    j /= n[1];
    q[0] = j % n[0];
    q[3] = j / n[0];
}

/* q := the coordinates of the next index in raster order (no divisions). */
static inline void cd_next(cd_isz q[4], const cd_isz n[3])
{
    if (++q[2] == n[2]) {
        q[2] = 0;
        if (++q[1] == n[1]) {
            q[1] = 0;
            if (++q[0] == n[0]) {
                q[0] = 0;
                q[3]++;
            }
        }
    }
}

/* ---- baseline ---- */
#define CD_T float
#define CD_SUF f_base
#define CD_IG_NV 2
#define CD_IG_ACC 8
#define CD_VL 4
#define CD_MAXACC 8
#include "_dot_impl.h"
#undef CD_T
#undef CD_SUF
#undef CD_VL
#undef CD_MAXACC
#undef CD_IG_NV
#undef CD_IG_ACC

#define CD_T double
#define CD_SUF d_base
#define CD_IG_NV 2
#define CD_IG_ACC 8
#define CD_VL 2
#define CD_MAXACC 8
#include "_dot_impl.h"
#undef CD_T
#undef CD_SUF
#undef CD_VL
#undef CD_MAXACC
#undef CD_IG_NV
#undef CD_IG_ACC

#ifdef CD_X86_DISPATCH
/* ---- AVX2 + FMA (16 vector registers) ---- */
#pragma GCC push_options
#pragma GCC target("avx2,fma")
/* The lanes [0, n) of a vector of 32-bit elements (n <= 8; the mask of maskload/store). */
static inline __attribute__((always_inline)) __m256i cd_m8_avx2(int n)
{
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

static inline __attribute__((always_inline)) __m256i cd_m4d_avx2(int n)
{
    return _mm256_cmpgt_epi64(_mm256_set1_epi64x(n), _mm256_setr_epi64x(0, 1, 2, 3));
}

/* The 8 x 8 transpose of r[0..8) in registers (unpack pairs of rows, then 2x2 blocks,
 * then the 128-bit lanes). */
static inline __attribute__((always_inline)) void cd_tr8net_avx2(__m256* r)
{
    __m256 t[8], u[8];
    for (int i = 0; i < 8; i += 2) {
        t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int i = 0; i < 8; i += 4) {
        u[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
        u[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xEE);
        u[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
        u[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
    }
    for (int i = 0; i < 4; i++) {
        r[i] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x20);
        r[i + 4] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x31);
    }
}

/* dst[k * ds + j] := src[j * ss + k] for j < nj, k < nk (1..16 each): the 16 x 16
 * block of the AVX-512 build as four 8 x 8 blocks in registers, masked loads and stores
 * at the edges (nothing else touched) */
static inline __attribute__((always_inline)) void
cd_tr16m_avx2(float* dst, cd_isz ds, const float* src, cd_isz ss, int nj, int nk)
{
    for (int bj = 0; bj < nj; bj += 8) {
        const int mj = nj - bj < 8 ? nj - bj : 8;
        for (int bk = 0; bk < nk; bk += 8) {
            const int mk = nk - bk < 8 ? nk - bk : 8;
            const float* s = src + bj * ss + bk;
            float* d = dst + bk * ds + bj;
            if (mj < 8 || mk < 8) {
                for (int k = 0; k < mk; k++)
                    for (int j = 0; j < mj; j++)
                        d[k * ds + j] = s[j * ss + k];
                continue;
            }
            __m256 r[8];
            for (int i = 0; i < 8; i++)
                r[i] = _mm256_loadu_ps(s + i * ss);
            cd_tr8net_avx2(r);
            for (int i = 0; i < 8; i++)
                _mm256_storeu_ps(d + i * ds, r[i]);
        }
    }
}

#define CD_T float
#define CD_SUF f_avx2
#define CD_IG_NV 2
#define CD_IG_ACC 12
#define CD_VL 8
#define CD_MAXACC 12
#define CD_TAIL(v, p, n) ((v) = (CD_VEC)_mm256_maskload_ps((p), cd_m8_avx2((int)(n))))
/* p[0 .. n) := the first n lanes of v, 0 < n < 8: one masked store */
#define CD_STN(p, v, n) _mm256_maskstore_ps((p), cd_m8_avx2((int)(n)), (__m256)(v))
#define CD_TR16(dst, ds, src, ss) cd_tr16m_avx2((dst), (ds), (src), (ss), 16, 16)
#define CD_TR16M(dst, ds, src, ss, nj, nk) cd_tr16m_avx2((dst), (ds), (src), (ss), (nj), (nk))
/* y[0 .. n) += s[0 .. n), n <= 16: whole vectors, then one masked add */
#define CD_ADDN(y, s, n) do {                                                        \
        float* y_ = (y);                                                             \
        const float* s_ = (s);                                                       \
        int n_ = (n);                                                                \
        for (; n_ >= 8; n_ -= 8, y_ += 8, s_ += 8)                                   \
            _mm256_storeu_ps(y_, _mm256_add_ps(_mm256_loadu_ps(y_), _mm256_loadu_ps(s_))); \
        if (n_ > 0) {                                                                \
            const __m256i m_ = cd_m8_avx2(n_);                                       \
            _mm256_maskstore_ps(y_, m_, _mm256_add_ps(_mm256_maskload_ps(y_, m_),    \
                                                      _mm256_maskload_ps(s_, m_)));  \
        }                                                                            \
    } while (0)
#include "_dot_impl.h"
#undef CD_ADDN
#undef CD_TR16M
#undef CD_TR16
#undef CD_TAIL
#undef CD_STN
#undef CD_T
#undef CD_SUF
#undef CD_VL
#undef CD_MAXACC
#undef CD_IG_NV
#undef CD_IG_ACC

#define CD_T double
#define CD_SUF d_avx2
#define CD_IG_NV 2
#define CD_IG_ACC 12
#define CD_VL 4
#define CD_MAXACC 12
#define CD_TAIL(v, p, n) ((v) = (CD_VEC)_mm256_maskload_pd((p), cd_m4d_avx2((int)(n))))
#define CD_STN(p, v, n) _mm256_maskstore_pd((p), cd_m4d_avx2((int)(n)), (__m256d)(v))
#include "_dot_impl.h"
#undef CD_TAIL
#undef CD_STN
#undef CD_T
#undef CD_SUF
#undef CD_VL
#undef CD_MAXACC
#undef CD_IG_NV
#undef CD_IG_ACC
#pragma GCC pop_options

/* ---- AVX-512 (32 vector registers, masked tails) ---- */
#pragma GCC push_options
#pragma GCC target("avx512f,avx2,fma")
/* The 16 x 16 transpose of r[0..16) in registers (unpack pairs of rows, then 2x2
 * blocks, then 128-bit lanes twice). */
static inline __attribute__((always_inline)) void cd_tr16net_avx512(__m512* r)
{
    __m512 t[16];
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int i = 0; i < 16; i += 4) {
        r[i] = _mm512_shuffle_ps(t[i], t[i + 2], 0x44);
        r[i + 1] = _mm512_shuffle_ps(t[i], t[i + 2], 0xEE);
        r[i + 2] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0x44);
        r[i + 3] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
    }
    for (int h = 0; h < 16; h += 8)
        for (int i = 0; i < 4; i++) {
            t[h + i] = _mm512_shuffle_f32x4(r[h + i], r[h + i + 4], 0x88);
            t[h + i + 4] = _mm512_shuffle_f32x4(r[h + i], r[h + i + 4], 0xDD);
        }
    for (int i = 0; i < 8; i++) {
        r[i] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0x88);
        r[i + 8] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0xDD);
    }
}

/* dst[k * ds + j] := src[j * ss + k] for j, k < 16: a 16x16 block transposed in
 * registers. */
static inline void cd_tr16_avx512(float* dst, cd_isz ds, const float* src, cd_isz ss)
{
    __m512 r[16];
    for (int i = 0; i < 16; i++)
        r[i] = _mm512_loadu_ps(src + i * ss);
    cd_tr16net_avx512(r);
    for (int i = 0; i < 16; i++)
        _mm512_storeu_ps(dst + i * ds, r[i]);
}

/* The same for j < nj, k < nk (1..16 each): masked loads and stores touch nothing
 * else (no scalar tails). */
static inline void cd_tr16m_avx512(float* dst, cd_isz ds, const float* src, cd_isz ss,
                                   int nj, int nk)
{
    const __mmask16 mk = (__mmask16)((1u << nk) - 1u), mj = (__mmask16)((1u << nj) - 1u);
    __m512 r[16];
    for (int i = 0; i < 16; i++)
        r[i] = i < nj ? _mm512_maskz_loadu_ps(mk, src + i * ss) : _mm512_setzero_ps();
    cd_tr16net_avx512(r);
    for (int i = 0; i < nk; i++)
        _mm512_mask_storeu_ps(dst + i * ds, mj, r[i]);
}

#define CD_T float
#define CD_SUF f_avx512
#define CD_IG_NV 4
#define CD_IG_ACC 24
#define CD_VL 16
#define CD_MAXACC 16
#define CD_TAIL(v, p, n) ((v) = (CD_VEC)_mm512_maskz_loadu_ps((__mmask16)((1u << (n)) - 1u), (p)))
/* p[0 .. n) := the first n lanes of v, 0 < n < 16: one masked store */
#define CD_STN(p, v, n) _mm512_mask_storeu_ps((p), (__mmask16)((1u << (n)) - 1u), (__m512)(v))
#define CD_TR16(dst, ds, src, ss) cd_tr16_avx512((dst), (ds), (src), (ss))
#define CD_TR16M(dst, ds, src, ss, nj, nk) cd_tr16m_avx512((dst), (ds), (src), (ss), (nj), (nk))
/* y[0 .. n) += s[0 .. n), n <= 16: one masked vector add */
#define CD_ADDN(y, s, n) do {                                                        \
        const __mmask16 m_ = (__mmask16)((1u << (n)) - 1u);                          \
        _mm512_mask_storeu_ps((y), m_, _mm512_add_ps(_mm512_maskz_loadu_ps(m_, (y)),  \
                                                     _mm512_maskz_loadu_ps(m_, (s)))); \
    } while (0)
#include "_dot_impl.h"
#undef CD_ADDN
#undef CD_TR16M
#undef CD_TR16
#undef CD_T
#undef CD_SUF
#undef CD_VL
#undef CD_MAXACC
#undef CD_IG_NV
#undef CD_IG_ACC
#undef CD_TAIL
#undef CD_STN

#define CD_T double
#define CD_SUF d_avx512
#define CD_IG_NV 4
#define CD_IG_ACC 24
#define CD_VL 8
#define CD_MAXACC 16
#define CD_TAIL(v, p, n) ((v) = (CD_VEC)_mm512_maskz_loadu_pd((__mmask8)((1u << (n)) - 1u), (p)))
#define CD_STN(p, v, n) _mm512_mask_storeu_pd((p), (__mmask8)((1u << (n)) - 1u), (__m512d)(v))
#include "_dot_impl.h"
#undef CD_T
#undef CD_SUF
#undef CD_VL
#undef CD_MAXACC
#undef CD_IG_NV
#undef CD_IG_ACC
#undef CD_TAIL
#undef CD_STN
#pragma GCC pop_options
#endif

enum { CD_ISA_BASE = 0, CD_ISA_AVX2 = 1, CD_ISA_AVX512 = 2 };
static int cd_isa(void);

/* The block limit of the instantiation that will run (the same for both dtypes: each
 * ISA's accumulator budget counts vectors, whatever their element type). */
static cd_isz cd_plan_pmax(int c_first)
{
#ifdef CD_X86_DISPATCH
    switch (cd_isa()) {
    case CD_ISA_AVX512: return cd_pmax_f_avx512(c_first);
    case CD_ISA_AVX2: return cd_pmax_f_avx2(c_first);
    default: break;
    }
#endif
    return cd_pmax_f_base(c_first);
}

cd_isz cd_dot_plan_blocks(const cd_geom* g)
{
    return g->big[2];
}

cd_isz cd_dot_plan_taps(const cd_geom* g)
{
    return g->big[2] * g->k[2];
}

cd_isz cd_dot_plan(const cd_geom* g, cd_isz c_first, cd_colblk* blk, cd_isz* kws,
                   cd_isz* iws)
{
    const cd_isz BW = g->big[2], k2 = g->k[2], s2 = g->s[2];
    cd_isz pmax = cd_plan_pmax((int)c_first);
    cd_isz nblk = 0, n = 0;
    for (cd_isz phase = 0; phase < s2 && phase < BW; phase++) {
        cd_isz bw = phase;
        while (bw < BW) {
            cd_isz nk = 0, P = 1;
            for (cd_isz kw = 0; kw < k2; kw++) {
                cd_isz iw = cd_src(g, 2, bw, kw);
                if (iw >= 0) {
                    kws[n + nk] = kw;
                    iws[n + nk] = iw;
                    nk++;
                }
            }
            /* the next columns of this phase join while every tap still lands
             * (their sources are then one small column further each) and no other
             * tap starts to */
            while (P < pmax && bw + P * s2 < BW) {
                cd_isz j = 0, same = 1;
                for (cd_isz kw = 0; kw < k2 && same; kw++) {
                    int here = cd_src(g, 2, bw + P * s2, kw) >= 0;
                    int before = j < nk && kws[n + j] == kw;
                    if (before)
                        j++;
                    same = here == before;
                }
                if (!same)
                    break;
                P++;
            }
            blk[nblk].bw = bw;
            blk[nblk].P = P;
            blk[nblk].nk = nk;
            blk[nblk].off = n;
            nblk++;
            n += nk;
            bw += P * s2;
        }
    }
    return nblk;
}

static int cd_isa_cap = CD_ISA_AVX512;   /* lowered by cd_dot_cap_isa (tests) */

int cd_dot_cap_isa(int cap)
{
    cd_isa_cap = cap < CD_ISA_BASE ? CD_ISA_BASE : cap > CD_ISA_AVX512 ? CD_ISA_AVX512 : cap;
    return cd_isa();
}

static int cd_isa(void)
{
    if (cd_isa_cap == CD_ISA_BASE)
        return CD_ISA_BASE;
#ifdef CD_X86_DISPATCH
    /* libgcc's CPU model checks the OS saves the registers (XCR0) too */
    if (cd_isa_cap >= CD_ISA_AVX512 && __builtin_cpu_supports("avx512f"))
        return CD_ISA_AVX512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        return CD_ISA_AVX2;
#endif
    return CD_ISA_BASE;
}

const char* cd_dot_isa(void)
{
    static const char* names[] = {"baseline", "avx2", "avx512"};
    return names[cd_isa()];
}

/* cd_dot_row_f / cd_dot_row_d: the row kernel of the best instruction set allowed */
#ifdef CD_X86_DISPATCH
#define CD_ISA_SWITCH(fn, args)                                 \
    switch (cd_isa()) {                                         \
    case CD_ISA_AVX512: fn##_avx512 args; return;               \
    case CD_ISA_AVX2: fn##_avx2 args; return;                   \
    default: break;                                             \
    }
#else
#define CD_ISA_SWITCH(fn, args)
#endif
#define CD_ROW_ENTRY(T, s)                                                          \
void cd_dot_row_##s(const cd_geom* g, const T* X, const T* W, T* Y, cd_isz R,       \
                    cd_isz grp, cd_isz c0, cd_isz c1, const cd_colblk* blk,         \
                    cd_isz nblk, const cd_isz* kw, const cd_isz* iw)                \
{                                                                                   \
    CD_ISA_SWITCH(cd_row_##s, (g, X, W, Y, R, grp, c0, c1, blk, nblk, kw, iw))               \
    cd_row_##s##_base(g, X, W, Y, R, grp, c0, c1, blk, nblk, kw, iw);               \
}
CD_ROW_ENTRY(float, f)
CD_ROW_ENTRY(double, d)

#define CD_ABT_ENTRY(T, s)                                                          \
void cd_abt_##s(cd_isz m, cd_isz n, cd_isz k, const T* A, const T* B, cd_isz ld,    \
                T* C, cd_isz ldc)                                                   \
{                                                                                   \
    CD_ISA_SWITCH(cd_abt_##s, (m, n, k, A, B, ld, C, ldc))                                   \
    cd_abt_##s##_base(m, n, k, A, B, ld, C, ldc);                                   \
}
CD_ABT_ENTRY(float, f)
CD_ABT_ENTRY(double, d)

/* the implicit-GEMM kernel (cd_ig_* in _dot.h) of the instruction set in use; the
 * panel width and vector length come from the instantiation that runs */
#ifdef CD_X86_DISPATCH
#define CD_ISA_RETURN(fn, args)                                 \
    switch (cd_isa()) {                                         \
    case CD_ISA_AVX512: return fn##_avx512 args;                \
    case CD_ISA_AVX2: return fn##_avx2 args;                    \
    default: break;                                             \
    }
#else
#define CD_ISA_RETURN(fn, args)
#endif
#define CD_IG_ENTRY(T, s)                                                           \
cd_isz cd_ig_block_##s(void)                                                        \
{                                                                                   \
    CD_ISA_RETURN(cd_igblock_##s, ())                                               \
    return cd_igblock_##s##_base();                                                 \
}                                                                                   \
cd_isz cd_ig_vl_##s(void)                                                           \
{                                                                                   \
    CD_ISA_RETURN(cd_igvl_##s, ())                                                  \
    return cd_igvl_##s##_base();                                                    \
}                                                                                   \
int cd_ig_pack_##s(const cd_geom* g, const T* W, T* Wp, cd_isz grp, cd_isz c0)      \
{                                                                                   \
    CD_ISA_RETURN(cd_igpack_##s, (g, W, Wp, grp, c0))                               \
    return cd_igpack_##s##_base(g, W, Wp, grp, c0);                                 \
}                                                                                   \
int cd_nonfinite_##s(const T* p, cd_isz n)                                          \
{                                                                                   \
    CD_ISA_RETURN(cd_nonfinite_##s, (p, n))                                         \
    return cd_nonfinite_##s##_base(p, n);                                           \
}                                                                                   \
void cd_ig_run_##s(const cd_geom* g, cd_isz batch, const T* X, const T* Wp, T* Y,   \
                   const T* zero, cd_isz grp, cd_isz c0, cd_isz phase, cd_isz j0,   \
                   cd_isz j1)                                                       \
{                                                                                   \
    CD_ISA_SWITCH(cd_igrun_##s, (g, batch, X, Wp, Y, zero, grp, c0, phase, j0, j1)) \
    cd_igrun_##s##_base(g, batch, X, Wp, Y, zero, grp, c0, phase, j0, j1);          \
}
CD_IG_ENTRY(float, f)
CD_IG_ENTRY(double, d)

#define CD_DR_ENTRY(T, s)                                                           \
void cd_dr_run_##s(const cd_geom* g, const T* X, const T* Wp, T* Y, cd_isz grp,     \
                   cd_isz r0, cd_isz r1)                                            \
{                                                                                   \
    CD_ISA_SWITCH(cd_drrun_##s, (g, X, Wp, Y, grp, r0, r1))                         \
    cd_drrun_##s##_base(g, X, Wp, Y, grp, r0, r1);                                  \
}
CD_DR_ENTRY(float, f)
CD_DR_ENTRY(double, d)

#define CD_PL_ENTRY(T, s)                                                           \
void cd_pl_pack_##s(const cd_geom* g, cd_isz npix, const T* X, T* Xt, cd_isz grp)   \
{                                                                                   \
    CD_ISA_SWITCH(cd_plpack_##s, (g, npix, X, Xt, grp))                             \
    cd_plpack_##s##_base(g, npix, X, Xt, grp);                                      \
}                                                                                   \
void cd_pl_run_##s(const cd_geom* g, cd_isz npix, const T* Xt, const T* W, T* Y,    \
                   cd_isz grp, cd_isz c0, cd_isz c1)                                \
{                                                                                   \
    CD_ISA_SWITCH(cd_plrun_##s, (g, npix, Xt, W, Y, grp, c0, c1))                   \
    cd_plrun_##s##_base(g, npix, Xt, W, Y, grp, c0, c1);                            \
}
CD_PL_ENTRY(float, f)
CD_PL_ENTRY(double, d)

#define CD_IGF_ENTRY(T, s)                                                          \
void cd_igf_pack_##s(const cd_geom* g, const T* W, T* Wp, cd_isz grp, cd_isz c0)    \
{                                                                                   \
    CD_ISA_SWITCH(cd_igfpack_##s, (g, W, Wp, grp, c0))                              \
    cd_igfpack_##s##_base(g, W, Wp, grp, c0);                                       \
}                                                                                   \
void cd_igf_run_##s(const cd_geom* g, const T* X, const T* Wp, T* Y, const T* zero, \
                    cd_isz grp, cd_isz c0, cd_isz j0, cd_isz j1)                    \
{                                                                                   \
    CD_ISA_SWITCH(cd_igfrun_##s, (g, X, Wp, Y, zero, grp, c0, j0, j1))              \
    cd_igfrun_##s##_base(g, X, Wp, Y, zero, grp, c0, j0, j1);                       \
}
CD_IGF_ENTRY(float, f)
CD_IGF_ENTRY(double, d)

#define CD_PR_ENTRY(T, s)                                                           \
void cd_pr_sizes_##s(const cd_geom* g, cd_isz rb, cd_isz* scratch, cd_isz* zero)    \
{                                                                                   \
    CD_ISA_SWITCH(cd_prsizes_##s, (g, rb, scratch, zero))                           \
    cd_prsizes_##s##_base(g, rb, scratch, zero);                                    \
}                                                                                   \
void cd_pr_run_##s(const cd_geom* g, const T* X, const T* W, T* Y, T* S,            \
                   const T* zero, cd_isz rb, cd_isz grp, cd_isz bz, cd_isz zh0,     \
                   cd_isz zh1)                                                      \
{                                                                                   \
    CD_ISA_SWITCH(cd_prrun_##s, (g, X, W, Y, S, zero, rb, grp, bz, zh0, zh1))       \
    cd_prrun_##s##_base(g, X, W, Y, S, zero, rb, grp, bz, zh0, zh1);                \
}
CD_PR_ENTRY(float, f)
CD_PR_ENTRY(double, d)

#define CD_SR_ENTRY(T, s)                                                           \
void cd_sr_sizes_##s(const cd_geom* g, cd_isz rb, cd_isz* scratch)                  \
{                                                                                   \
    CD_ISA_SWITCH(cd_srsizes_##s, (g, rb, scratch))                                 \
    cd_srsizes_##s##_base(g, rb, scratch);                                          \
}                                                                                   \
void cd_sr_run_##s(const cd_geom* g, const T* X, const T* W, T* Y, T* S, cd_isz rb, \
                   cd_isz grp, cd_isz bz, cd_isz zh0, cd_isz zh1)                   \
{                                                                                   \
    CD_ISA_SWITCH(cd_srrun_##s, (g, X, W, Y, S, rb, grp, bz, zh0, zh1))             \
    cd_srrun_##s##_base(g, X, W, Y, S, rb, grp, bz, zh0, zh1);                      \
}
CD_SR_ENTRY(float, f)
CD_SR_ENTRY(double, d)

#define CD_GEMM_ENTRY(T, s)                                                         \
void cd_gemm_pack_##s(cd_isz K, cd_isz N, const T* B, cd_isz ldb, T* Bp)            \
{                                                                                   \
    CD_ISA_SWITCH(cd_gpack_##s, (K, N, B, ldb, Bp))                                 \
    cd_gpack_##s##_base(K, N, B, ldb, Bp);                                          \
}                                                                                   \
void cd_gemm_run_##s(cd_isz m0, cd_isz m1, cd_isz N, cd_isz K, const T* A,          \
                     cd_isz lda, const T* Bp, T* C, cd_isz ldc)                     \
{                                                                                   \
    CD_ISA_SWITCH(cd_grun_##s, (m0, m1, N, K, A, lda, Bp, C, ldc))                  \
    cd_grun_##s##_base(m0, m1, N, K, A, lda, Bp, C, ldc);                           \
}                                                                                   \
void cd_gemm_taps_##s(cd_isz m0, cd_isz m1, cd_isz OW, cd_isz OH, cd_isz nlo,       \
                      cd_isz N, cd_isz nt, cd_isz K, const T* Xp, cd_isz istep,     \
                      cd_isz ystep, cd_isz tstep, cd_isz xstep, const T* Bp, T* C,  \
                      cd_isz ldc)                                                   \
{                                                                                   \
    CD_ISA_SWITCH(cd_gtap_##s, (m0, m1, OW, OH, nlo, N, nt, K, Xp, istep, ystep,    \
                                tstep, xstep, Bp, C, ldc))                          \
    cd_gtap_##s##_base(m0, m1, OW, OH, nlo, N, nt, K, Xp, istep, ystep, tstep,      \
                       xstep, Bp, C, ldc);                                          \
}
#define CD_BPF_ENTRY(T, s)                                                          \
void cd_gemm_bpf_##s(cd_isz i0, cd_isz i1, cd_isz n0, cd_isz n1, cd_isz P,          \
                     const T* A, cd_isz lda, const T* B, cd_isz ldb, T* C,          \
                     cd_isz ldc, T* S)                                              \
{                                                                                   \
    CD_ISA_SWITCH(cd_gbpf_##s, (i0, i1, n0, n1, P, A, lda, B, ldb, C, ldc, S))      \
    cd_gbpf_##s##_base(i0, i1, n0, n1, P, A, lda, B, ldb, C, ldc, S);               \
}                                                                                   \
void cd_transpose_##s(T* P, cd_isz ldp, cd_isz n, cd_isz K, const T* src,            \
                      cd_isz stride)                                                \
{                                                                                   \
    CD_ISA_SWITCH(cd_tpose_##s, (P, ldp, n, K, src, stride))                        \
    cd_tpose_##s##_base(P, ldp, n, K, src, stride);                                 \
}
CD_BPF_ENTRY(float, f)
CD_BPF_ENTRY(double, d)

CD_GEMM_ENTRY(float, f)
CD_GEMM_ENTRY(double, d)

#define CD_FPL_ENTRY(T, s)                                                          \
cd_isz cd_fpl_scratch_##s(const cd_geom* g, cd_isz rows)                            \
{                                                                                   \
    CD_ISA_RETURN(cd_fplscr_##s, (g, rows))                                         \
    return cd_fplscr_##s##_base(g, rows);                                           \
}                                                                                   \
void cd_fpl_run_##s(const cd_geom* g, const T* X, const T* W, T* Y, cd_isz n,       \
                    cd_isz oy0, cd_isz oy1, T* P)                                   \
{                                                                                   \
    CD_ISA_SWITCH(cd_fplrun_##s, (g, X, W, Y, n, oy0, oy1, P))                      \
    cd_fplrun_##s##_base(g, X, W, Y, n, oy0, oy1, P);                               \
}
CD_FPL_ENTRY(float, f)
CD_FPL_ENTRY(double, d)

#define CD_FPLG_ENTRY(T, s)                                                         \
cd_isz cd_fpl_bgm_scratch_##s(const cd_geom* g, cd_isz rows)                        \
{                                                                                   \
    CD_ISA_RETURN(cd_fplgscr_##s, (g, rows))                                        \
    return cd_fplgscr_##s##_base(g, rows);                                          \
}                                                                                   \
void cd_fpl_bgm_##s(const cd_geom* g, const T* X, const T* DY, T* part, cd_isz n,   \
                    cd_isz oy0, cd_isz oy1, cd_isz band, T* P)                      \
{                                                                                   \
    CD_ISA_SWITCH(cd_fplbgm_##s, (g, X, DY, part, n, oy0, oy1, band, P))            \
    cd_fplbgm_##s##_base(g, X, DY, part, n, oy0, oy1, band, P);                     \
}
CD_FPLG_ENTRY(float, f)
CD_FPLG_ENTRY(double, d)

#define CD_TPL_ENTRY(T, s)                                                          \
cd_isz cd_tpl_scratch_##s(const cd_geom* g, cd_isz rows)                            \
{                                                                                   \
    CD_ISA_RETURN(cd_tplscr_##s, (g, rows))                                         \
    return cd_tplscr_##s##_base(g, rows);                                           \
}                                                                                   \
void cd_tpl_run_##s(const cd_geom* g, const T* X, const T* W, T* Y, cd_isz n,       \
                    cd_isz iy0, cd_isz iy1, T* P)                                   \
{                                                                                   \
    CD_ISA_SWITCH(cd_tplrun_##s, (g, X, W, Y, n, iy0, iy1, P))                      \
    cd_tplrun_##s##_base(g, X, W, Y, n, iy0, iy1, P);                               \
}
CD_TPL_ENTRY(float, f)
CD_TPL_ENTRY(double, d)

#define CD_FPLB_ENTRY(T, s)                                                         \
cd_isz cd_fpl_bpf_scratch_##s(const cd_geom* g, cd_isz rows)                        \
{                                                                                   \
    CD_ISA_RETURN(cd_fplbscr_##s, (g, rows))                                        \
    return cd_fplbscr_##s##_base(g, rows);                                          \
}                                                                                   \
void cd_fpl_bpf_##s(const cd_geom* g, const T* X, const T* DY, T* part, cd_isz n,   \
                    cd_isz oy0, cd_isz oy1, cd_isz band, T* P)                      \
{                                                                                   \
    CD_ISA_SWITCH(cd_fplbpf_##s, (g, X, DY, part, n, oy0, oy1, band, P))            \
    cd_fplbpf_##s##_base(g, X, DY, part, n, oy0, oy1, band, P);                     \
}
CD_FPLB_ENTRY(float, f)
CD_FPLB_ENTRY(double, d)

#define CD_WI_ENTRY(T, s)                                                           \
void cd_wi_filter_##s(const cd_wino* p, const T* W, T* U, cd_isz j0, cd_isz j1,     \
                      T* tmp)                                                       \
{                                                                                   \
    CD_ISA_SWITCH(cd_wifilt_##s, (p, W, U, j0, j1, tmp))                            \
    cd_wifilt_##s##_base(p, W, U, j0, j1, tmp);                                     \
}                                                                                   \
void cd_wi_gemm_##s(const cd_wino* p, const T* V, const T* U, T* M, cd_isz nt)      \
{                                                                                   \
    CD_ISA_SWITCH(cd_wigemm_##s, (p, V, U, M, nt))                                  \
    cd_wigemm_##s##_base(p, V, U, M, nt);                                           \
}                                                                                   \
int cd_wi_input_##s(const cd_wino* p, const T* X, T* V, T* tmp, cd_isz t0,          \
                    cd_isz nt)                                                      \
{                                                                                   \
    CD_ISA_RETURN(cd_wiin_##s, (p, X, V, tmp, t0, nt))                              \
    return cd_wiin_##s##_base(p, X, V, tmp, t0, nt);                                \
}                                                                                   \
void cd_wi_output_##s(const cd_wino* p, const T* M, T* Y, T* tmp, cd_isz t0,        \
                      cd_isz nt)                                                    \
{                                                                                   \
    CD_ISA_SWITCH(cd_wiout_##s, (p, M, Y, tmp, t0, nt))                             \
    cd_wiout_##s##_base(p, M, Y, tmp, t0, nt);                                      \
}
CD_WI_ENTRY(float, f)
CD_WI_ENTRY(double, d)
