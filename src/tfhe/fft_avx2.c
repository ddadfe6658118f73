/* AVX2+FMA negacyclic FFT: the structure of fft_avx512.c with four complex points per pair of
 * registers (split layout), radix-4 passes, the last two stages inside each register, the exact
 * int64→double conversion and the twist fused into the first pass, untwist, rounding mod 2^64 and
 * accumulation into the last inverse pass. Compiled with -mavx2 -mfma (CMakeLists.txt); only
 * called after CPUID says so. Plans with fewer than 32 points use the portable code. */
#include <immintrin.h>
#include <stddef.h>

#include "fft_kernels.h"

typedef struct {
    __m256d r, i;
} c4;

#define TFHE_LANES 4

static inline c4 ld(const double *re, const double *im, size_t o) { return (c4){_mm256_load_pd(re + o), _mm256_load_pd(im + o)}; }
static inline void st(double *re, double *im, size_t o, c4 v)
{
    _mm256_store_pd(re + o, v.r);
    _mm256_store_pd(im + o, v.i);
}
static inline c4 add(c4 a, c4 b) { return (c4){_mm256_add_pd(a.r, b.r), _mm256_add_pd(a.i, b.i)}; }
static inline c4 sub(c4 a, c4 b) { return (c4){_mm256_sub_pd(a.r, b.r), _mm256_sub_pd(a.i, b.i)}; }
static inline c4 mul(c4 a, c4 w)
{
    return (c4){_mm256_fmsub_pd(a.r, w.r, _mm256_mul_pd(a.i, w.i)), _mm256_fmadd_pd(a.r, w.i, _mm256_mul_pd(a.i, w.r))};
}
static inline c4 mulc(c4 a, c4 w)
{
    return (c4){_mm256_fmadd_pd(a.r, w.r, _mm256_mul_pd(a.i, w.i)), _mm256_fmsub_pd(a.i, w.r, _mm256_mul_pd(a.r, w.i))};
}
static inline c4 tw(const veil_fft_plan *p, size_t o) { return ld(p->tw_re, p->tw_im, o); }

/* Exact int64 → double for any value: x = h·2^32 + l with l the low 32 bits and h the signed high
 * half; both convert exactly through the 2^52 magic number (h via the bias 2^31), and one FMA
 * rounds h·2^32 + l once. */
static inline __m256d i64_to_f64(__m256i x)
{
    const __m256i magic_i = _mm256_set1_epi64x(0x4330000000000000ll);
    const __m256d magic = _mm256_set1_pd(0x1p52);
    __m256i lo = _mm256_blend_epi32(magic_i, x, 0x55); /* low 32 bits into the magic mantissa */
    __m256i hi = _mm256_srli_epi64(_mm256_xor_si256(x, _mm256_set1_epi64x((long long)0x8000000000000000ull)), 32);
    __m256d lod = _mm256_sub_pd(_mm256_castsi256_pd(lo), magic);
    __m256d hid = _mm256_sub_pd(_mm256_sub_pd(_mm256_castsi256_pd(_mm256_or_si256(hi, magic_i)), magic),
                                _mm256_set1_pd(0x1p31));
    return _mm256_fmadd_pd(hid, _mm256_set1_pd(0x1p32), lod);
}

static inline c4 load_twist(const veil_fft_plan *p, const int64_t *in, size_t j)
{
    __m256d x = i64_to_f64(_mm256_loadu_si256((const __m256i *)(in + j)));
    __m256d y = i64_to_f64(_mm256_loadu_si256((const __m256i *)(in + j + p->half)));
    return mul((c4){x, y}, ld(p->twist_re, p->twist_im, j));
}

static inline void dif4(c4 *x0, c4 *x1, c4 *x2, c4 *x3, c4 w1, c4 w1q, c4 w2)
{
    c4 a0 = add(*x0, *x2), a2 = mul(sub(*x0, *x2), w1), a1 = add(*x1, *x3), a3 = mul(sub(*x1, *x3), w1q);
    *x0 = add(a0, a1);
    *x1 = mul(sub(a0, a1), w2);
    *x2 = add(a2, a3);
    *x3 = mul(sub(a2, a3), w2);
}

static inline void dit4(c4 *x0, c4 *x1, c4 *x2, c4 *x3, c4 w1, c4 w1q, c4 w2)
{
    c4 y1 = mulc(*x1, w2), y3 = mulc(*x3, w2);
    c4 a0 = add(*x0, y1), a1 = sub(*x0, y1), a2 = add(*x2, y3), a3 = sub(*x2, y3);
    c4 z2 = mulc(a2, w1), z3 = mulc(a3, w1q);
    *x0 = add(a0, z2);
    *x2 = sub(a0, z2);
    *x1 = add(a1, z3);
    *x3 = sub(a1, z3);
}

/* stages of distance 2 and 1 inside each register (as in fft_avx512.c) */
typedef struct {
    __m256d s2, s1;
    c4 w2;
} inreg;

static inline inreg inreg_consts(const veil_fft_plan *p)
{
    inreg k;
    k.s2 = _mm256_set_pd(-1, -1, 1, 1);
    k.s1 = _mm256_set_pd(-1, 1, -1, 1);
    k.w2 = (c4){_mm256_set_pd(p->tw_re[3], p->tw_re[2], 1, 1), _mm256_set_pd(p->tw_im[3], p->tw_im[2], 0, 0)};
    return k;
}

static inline c4 perm2(c4 v) { return (c4){_mm256_permute4x64_pd(v.r, 0x4E), _mm256_permute4x64_pd(v.i, 0x4E)}; }
static inline c4 perm1(c4 v) { return (c4){_mm256_permute_pd(v.r, 0x5), _mm256_permute_pd(v.i, 0x5)}; }
static inline c4 fly(c4 v, c4 t, __m256d s) { return (c4){_mm256_fmadd_pd(v.r, s, t.r), _mm256_fmadd_pd(v.i, s, t.i)}; }

static inline c4 dif_inreg(c4 v, const inreg *k)
{
    v = mul(fly(v, perm2(v), k->s2), k->w2);
    return fly(v, perm1(v), k->s1);
}

static inline c4 dit_inreg(c4 v, const inreg *k)
{
    v = fly(v, perm1(v), k->s1);
    v = mulc(v, k->w2);
    return fly(v, perm2(v), k->s2);
}

static void fwd_tail(const veil_fft_plan *p, double *re, double *im);

void veil_fft_fwd_avx2(const veil_fft_plan *p, const int64_t *in, double *out)
{
    const size_t M = p->half;
    if (M < 8 * TFHE_LANES) {
        veil_fft_fwd_portable(p, in, out);
        return;
    }
    double *re = out, *im = out + M;
    const size_t q = M / 4, d = M / 2;
    for (size_t j = 0; j < q; j += TFHE_LANES) {
        c4 x0 = load_twist(p, in, j), x1 = load_twist(p, in, j + q), x2 = load_twist(p, in, j + 2 * q),
           x3 = load_twist(p, in, j + 3 * q);
        dif4(&x0, &x1, &x2, &x3, tw(p, d + j), tw(p, d + j + q), tw(p, q + j));
        st(re, im, j, x0);
        st(re, im, j + q, x1);
        st(re, im, j + 2 * q, x2);
        st(re, im, j + 3 * q, x3);
    }
    fwd_tail(p, re, im);
}

/* The forward passes after the first one (distances M/8 … 1), in place. */
static void fwd_tail(const veil_fft_plan *p, double *re, double *im)
{
    const size_t M = p->half;
    size_t q, d;
    for (d = M / 8; d >= 2 * TFHE_LANES; d /= 4) {
        q = d / 2;
        for (size_t b = 0; b < M; b += 2 * d)
            for (size_t j = 0; j < q; j += TFHE_LANES) {
                size_t o = b + j;
                c4 x0 = ld(re, im, o), x1 = ld(re, im, o + q), x2 = ld(re, im, o + 2 * q), x3 = ld(re, im, o + 3 * q);
                dif4(&x0, &x1, &x2, &x3, tw(p, d + j), tw(p, d + j + q), tw(p, q + j));
                st(re, im, o, x0);
                st(re, im, o + q, x1);
                st(re, im, o + 2 * q, x2);
                st(re, im, o + 3 * q, x3);
            }
    }
    const inreg k = inreg_consts(p);
    if (d == TFHE_LANES) {
        const c4 w = tw(p, TFHE_LANES);
        for (size_t b = 0; b < M; b += 2 * TFHE_LANES) {
            c4 u = ld(re, im, b), v = ld(re, im, b + TFHE_LANES);
            st(re, im, b, dif_inreg(add(u, v), &k));
            st(re, im, b + TFHE_LANES, dif_inreg(mul(sub(u, v), w), &k));
        }
    } else {
        for (size_t b = 0; b < M; b += TFHE_LANES) st(re, im, b, dif_inreg(ld(re, im, b), &k));
    }
}

/* Decomposition fused into the forward transform, as in fft_avx512.c. */
typedef struct {
    __m256i sh1, sb, mask, half, one;
} dec_k;

static inline __m256i dec_start(__m256i x, const dec_k *k)
{
    return _mm256_srli_epi64(_mm256_add_epi64(_mm256_srlv_epi64(x, k->sh1), k->one), 1);
}

static inline __m256i dec_step(__m256i *st, const dec_k *k)
{
    __m256i d = _mm256_and_si256(*st, k->mask);
    *st = _mm256_srlv_epi64(*st, k->sb);
    __m256i carry = _mm256_srlv_epi64(_mm256_add_epi64(d, k->half), k->sb);
    *st = _mm256_add_epi64(*st, carry);
    return _mm256_sub_epi64(d, _mm256_sllv_epi64(carry, k->sb));
}

void veil_fft_fwd_dec_avx2(const veil_fft_plan *p, const uint64_t *in, uint32_t beta, uint32_t ell, double *out)
{
    const size_t M = p->half, N = p->N;
    if (M < 8 * TFHE_LANES) {
        veil_fft_fwd_dec_portable(p, in, beta, ell, out);
        return;
    }
    const dec_k k = {_mm256_set1_epi64x(64 - beta * ell - 1), _mm256_set1_epi64x(beta),
                     _mm256_set1_epi64x((long long)((1ull << beta) - 1)),
                     _mm256_set1_epi64x((long long)(1ull << (beta - 1))), _mm256_set1_epi64x(1)};
    const size_t q = M / 4, d = M / 2;
    for (size_t j = 0; j < q; j += TFHE_LANES) {
        const size_t pos[4] = {j, j + q, j + 2 * q, j + 3 * q};
        __m256i sr[4], si[4];
        for (int t = 0; t < 4; t++) {
            sr[t] = dec_start(_mm256_loadu_si256((const __m256i *)(in + pos[t])), &k);
            si[t] = dec_start(_mm256_loadu_si256((const __m256i *)(in + pos[t] + M)), &k);
        }
        const c4 w1 = tw(p, d + j), w1q = tw(p, d + j + q), w2 = tw(p, q + j);
        for (uint32_t lv = ell; lv-- > 0;) {
            c4 x[4];
            for (int t = 0; t < 4; t++) {
                __m256d xr = i64_to_f64(dec_step(&sr[t], &k)), xi = i64_to_f64(dec_step(&si[t], &k));
                x[t] = mul((c4){xr, xi}, ld(p->twist_re, p->twist_im, pos[t]));
            }
            dif4(&x[0], &x[1], &x[2], &x[3], w1, w1q, w2);
            double *re = out + lv * N, *im = re + M;
            for (int t = 0; t < 4; t++) st(re, im, pos[t], x[t]);
        }
    }
    for (uint32_t lv = 0; lv < ell; lv++) fwd_tail(p, out + lv * N, out + lv * N + M);
}

static void inv_head(const veil_fft_plan *p, double *re, double *im)
{
    const size_t M = p->half;
    const inreg k = inreg_consts(p);
    const int odd = (p->log2_half - 2) & 1; /* vector stages 4 … M/2 */
    size_t q;
    if (odd) {
        const c4 w = tw(p, TFHE_LANES);
        for (size_t b = 0; b < M; b += 2 * TFHE_LANES) {
            c4 u = dit_inreg(ld(re, im, b), &k), v = mulc(dit_inreg(ld(re, im, b + TFHE_LANES), &k), w);
            st(re, im, b, add(u, v));
            st(re, im, b + TFHE_LANES, sub(u, v));
        }
        q = 2 * TFHE_LANES;
    } else {
        for (size_t b = 0; b < M; b += TFHE_LANES) st(re, im, b, dit_inreg(ld(re, im, b), &k));
        q = TFHE_LANES;
    }
    for (; 4 * q < M; q *= 4) {
        const size_t d = 2 * q;
        for (size_t b = 0; b < M; b += 2 * d)
            for (size_t j = 0; j < q; j += TFHE_LANES) {
                size_t o = b + j;
                c4 x0 = ld(re, im, o), x1 = ld(re, im, o + q), x2 = ld(re, im, o + 2 * q), x3 = ld(re, im, o + 3 * q);
                dit4(&x0, &x1, &x2, &x3, tw(p, d + j), tw(p, d + j + q), tw(p, q + j));
                st(re, im, o, x0);
                st(re, im, o + q, x1);
                st(re, im, o + 2 * q, x2);
                st(re, im, o + 3 * q, x3);
            }
    }
}

void veil_fft_inv_avx2(const veil_fft_plan *p, double *buf)
{
    const size_t M = p->half;
    if (M < 8 * TFHE_LANES) {
        veil_fft_inv_portable(p, buf);
        return;
    }
    double *re = buf, *im = buf + M;
    inv_head(p, re, im);
    const size_t q = M / 4, d = M / 2;
    for (size_t j = 0; j < q; j += TFHE_LANES) {
        c4 x0 = ld(re, im, j), x1 = ld(re, im, j + q), x2 = ld(re, im, j + 2 * q), x3 = ld(re, im, j + 3 * q);
        dit4(&x0, &x1, &x2, &x3, tw(p, d + j), tw(p, d + j + q), tw(p, q + j));
        st(re, im, j, x0);
        st(re, im, j + q, x1);
        st(re, im, j + 2 * q, x2);
        st(re, im, j + 3 * q, x3);
    }
}

/* round(x) mod 2^64, bit for bit as the portable conversion: x = hi·2^32 + lo with
 * hi = floor(x/2^32) and lo in [0, 2^32) (all exact), then hi mod 2^32 the same way; both halves
 * convert exactly through the 2^52 magic number. */
static inline __m256i torus4(__m256d x)
{
    const __m256d two32 = _mm256_set1_pd(0x1p32), inv32 = _mm256_set1_pd(0x1p-32);
    const __m256d magic = _mm256_set1_pd(0x1p52);
    const __m256i magic_i = _mm256_castpd_si256(magic);
    __m256d hi = _mm256_floor_pd(_mm256_mul_pd(x, inv32));
    __m256d lo = _mm256_fnmadd_pd(hi, two32, x);
    __m256d hh = _mm256_floor_pd(_mm256_mul_pd(hi, inv32));
    __m256d himod = _mm256_fnmadd_pd(hh, two32, hi);
    __m256i lo_i = _mm256_sub_epi64(_mm256_castpd_si256(_mm256_add_pd(lo, magic)), magic_i);
    __m256i hi_i = _mm256_sub_epi64(_mm256_castpd_si256(_mm256_add_pd(himod, magic)), magic_i);
    return _mm256_add_epi64(_mm256_slli_epi64(hi_i, 32), lo_i);
}

static inline void untwist_add(const veil_fft_plan *p, c4 y, size_t j, uint64_t *out)
{
    c4 z = mul(y, ld(p->untwist_re, p->untwist_im, j));
    __m256i *o1 = (__m256i *)(out + j), *o2 = (__m256i *)(out + j + p->half);
    _mm256_storeu_si256(o1, _mm256_add_epi64(_mm256_loadu_si256(o1), torus4(z.r)));
    _mm256_storeu_si256(o2, _mm256_add_epi64(_mm256_loadu_si256(o2), torus4(z.i)));
}

void veil_fft_bwd_add_avx2(const veil_fft_plan *p, double *buf, uint64_t *out)
{
    const size_t M = p->half;
    if (M < 8 * TFHE_LANES) {
        veil_fft_bwd_add_portable(p, buf, out);
        return;
    }
    double *re = buf, *im = buf + M;
    inv_head(p, re, im);
    const size_t q = M / 4, d = M / 2;
    for (size_t j = 0; j < q; j += TFHE_LANES) {
        c4 x0 = ld(re, im, j), x1 = ld(re, im, j + q), x2 = ld(re, im, j + 2 * q), x3 = ld(re, im, j + 3 * q);
        dit4(&x0, &x1, &x2, &x3, tw(p, d + j), tw(p, d + j + q), tw(p, q + j));
        untwist_add(p, x0, j, out);
        untwist_add(p, x1, j + q, out);
        untwist_add(p, x2, j + 2 * q, out);
        untwist_add(p, x3, j + 3 * q, out);
    }
}

void veil_round_add_avx2(const double *x, uint64_t *out, uint32_t n)
{
    for (uint32_t j = 0; j < n; j += 4) {
        __m256i *o = (__m256i *)(out + j);
        _mm256_storeu_si256(o, _mm256_add_epi64(_mm256_loadu_si256(o), torus4(_mm256_loadu_pd(x + j))));
    }
}
