/* AVX-512 (F, DQ) negacyclic FFT: eight complex points per pair of registers (split layout),
 * radix-4 passes (two radix-2 stages per pass over memory, the same arithmetic as the portable
 * radix-2 butterflies), the last three stages inside each register, int64→double conversion
 * (vcvtqq2pd) and twist fused into the first pass, untwist, rounding mod 2^64 (vcvtpd2qq) and
 * accumulation into the last inverse pass. Compiled with -mavx512f -mavx512dq -mfma
 * (CMakeLists.txt); only called after CPUID says so. Plans with fewer than 64 points use the
 * portable code. */
#include <immintrin.h>
#include <stddef.h>

#include "fft_kernels.h"

typedef struct {
    __m512d r, i;
} c8;

#define TFHE_LANES 8

static inline c8 ld(const double *re, const double *im, size_t o) { return (c8){_mm512_load_pd(re + o), _mm512_load_pd(im + o)}; }
static inline void st(double *re, double *im, size_t o, c8 v)
{
    _mm512_store_pd(re + o, v.r);
    _mm512_store_pd(im + o, v.i);
}
static inline c8 add(c8 a, c8 b) { return (c8){_mm512_add_pd(a.r, b.r), _mm512_add_pd(a.i, b.i)}; }
static inline c8 sub(c8 a, c8 b) { return (c8){_mm512_sub_pd(a.r, b.r), _mm512_sub_pd(a.i, b.i)}; }
static inline c8 mul(c8 a, c8 w) /* a·w */
{
    return (c8){_mm512_fmsub_pd(a.r, w.r, _mm512_mul_pd(a.i, w.i)), _mm512_fmadd_pd(a.r, w.i, _mm512_mul_pd(a.i, w.r))};
}
static inline c8 mulc(c8 a, c8 w) /* a·conj(w) */
{
    return (c8){_mm512_fmadd_pd(a.r, w.r, _mm512_mul_pd(a.i, w.i)), _mm512_fmsub_pd(a.i, w.r, _mm512_mul_pd(a.r, w.i))};
}
static inline c8 tw(const veil_fft_plan *p, size_t o) { return ld(p->tw_re, p->tw_im, o); }

/* (a_j + i·a_{j+M})·ζ^j for eight j, exactly converted */
static inline c8 load_twist(const veil_fft_plan *p, const int64_t *in, size_t j)
{
    __m512d x = _mm512_cvtepi64_pd(_mm512_loadu_si512((const void *)(in + j)));
    __m512d y = _mm512_cvtepi64_pd(_mm512_loadu_si512((const void *)(in + j + p->half)));
    return mul((c8){x, y}, ld(p->twist_re, p->twist_im, j));
}

/* two DIF stages (distances 2q and q) on x0..x3 at offsets 0, q, 2q, 3q of position j */
static inline void dif4(c8 *x0, c8 *x1, c8 *x2, c8 *x3, c8 w1, c8 w1q, c8 w2)
{
    c8 a0 = add(*x0, *x2), a2 = mul(sub(*x0, *x2), w1), a1 = add(*x1, *x3), a3 = mul(sub(*x1, *x3), w1q);
    *x0 = add(a0, a1);
    *x1 = mul(sub(a0, a1), w2);
    *x2 = add(a2, a3);
    *x3 = mul(sub(a2, a3), w2);
}

/* the inverse: two DIT stages (distances q and 2q), each butterfly times 2 */
static inline void dit4(c8 *x0, c8 *x1, c8 *x2, c8 *x3, c8 w1, c8 w1q, c8 w2)
{
    c8 y1 = mulc(*x1, w2), y3 = mulc(*x3, w2);
    c8 a0 = add(*x0, y1), a1 = sub(*x0, y1), a2 = add(*x2, y3), a3 = sub(*x2, y3);
    c8 z2 = mulc(a2, w1), z3 = mulc(a3, w1q);
    *x0 = add(a0, z2);
    *x2 = sub(a0, z2);
    *x1 = add(a1, z3);
    *x3 = sub(a1, z3);
}

/* The stages of distance 4, 2, 1 inside each register: the partner of lane l is lane l ^ d
 * (t = permuted v), lower lanes get v + t, upper lanes t − v (= lower − upper), then the twiddle
 * (1 on lower lanes, so their products are exact). */
typedef struct {
    __m512d s4, s2, s1;
    c8 w4, w2;
} inreg;

static inline inreg inreg_consts(const veil_fft_plan *p)
{
    inreg k;
    k.s4 = _mm512_set_pd(-1, -1, -1, -1, 1, 1, 1, 1);
    k.s2 = _mm512_set_pd(-1, -1, 1, 1, -1, -1, 1, 1);
    k.s1 = _mm512_set_pd(-1, 1, -1, 1, -1, 1, -1, 1);
    const double *wr = p->tw_re, *wi = p->tw_im;
    k.w4 = (c8){_mm512_set_pd(wr[7], wr[6], wr[5], wr[4], 1, 1, 1, 1), _mm512_set_pd(wi[7], wi[6], wi[5], wi[4], 0, 0, 0, 0)};
    k.w2 = (c8){_mm512_set_pd(wr[3], wr[2], 1, 1, wr[3], wr[2], 1, 1), _mm512_set_pd(wi[3], wi[2], 0, 0, wi[3], wi[2], 0, 0)};
    return k;
}

static inline c8 perm4(c8 v) { return (c8){_mm512_shuffle_f64x2(v.r, v.r, 0x4E), _mm512_shuffle_f64x2(v.i, v.i, 0x4E)}; }
static inline c8 perm2(c8 v) { return (c8){_mm512_permutex_pd(v.r, 0x4E), _mm512_permutex_pd(v.i, 0x4E)}; }
static inline c8 perm1(c8 v) { return (c8){_mm512_permute_pd(v.r, 0x55), _mm512_permute_pd(v.i, 0x55)}; }
static inline c8 fly(c8 v, c8 t, __m512d s) { return (c8){_mm512_fmadd_pd(v.r, s, t.r), _mm512_fmadd_pd(v.i, s, t.i)}; }

static inline c8 dif_inreg(c8 v, const inreg *k)
{
    v = mul(fly(v, perm4(v), k->s4), k->w4);
    v = mul(fly(v, perm2(v), k->s2), k->w2);
    return fly(v, perm1(v), k->s1);
}

static inline c8 dit_inreg(c8 v, const inreg *k)
{
    v = fly(v, perm1(v), k->s1);
    v = mulc(v, k->w2);
    v = fly(v, perm2(v), k->s2);
    v = mulc(v, k->w4);
    return fly(v, perm4(v), k->s4);
}

static void fwd_tail(const veil_fft_plan *p, double *re, double *im);

void veil_fft_fwd_avx512(const veil_fft_plan *p, const int64_t *in, double *out)
{
    const size_t M = p->half;
    if (M < 8 * TFHE_LANES) {
        veil_fft_fwd_portable(p, in, out);
        return;
    }
    double *re = out, *im = out + M;
    const size_t q = M / 4, d = M / 2;
    for (size_t j = 0; j < q; j += TFHE_LANES) {
        c8 x0 = load_twist(p, in, j), x1 = load_twist(p, in, j + q), x2 = load_twist(p, in, j + 2 * q),
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
                c8 x0 = ld(re, im, o), x1 = ld(re, im, o + q), x2 = ld(re, im, o + 2 * q), x3 = ld(re, im, o + 3 * q);
                dif4(&x0, &x1, &x2, &x3, tw(p, d + j), tw(p, d + j + q), tw(p, q + j));
                st(re, im, o, x0);
                st(re, im, o + q, x1);
                st(re, im, o + 2 * q, x2);
                st(re, im, o + 3 * q, x3);
            }
    }
    const inreg k = inreg_consts(p);
    if (d == TFHE_LANES) { /* an odd number of vector stages: one radix-2 pass, fused with the in-register ones */
        const c8 w = tw(p, TFHE_LANES);
        for (size_t b = 0; b < M; b += 2 * TFHE_LANES) {
            c8 u = ld(re, im, b), v = ld(re, im, b + TFHE_LANES);
            st(re, im, b, dif_inreg(add(u, v), &k));
            st(re, im, b + TFHE_LANES, dif_inreg(mul(sub(u, v), w), &k));
        }
    } else {
        for (size_t b = 0; b < M; b += TFHE_LANES) st(re, im, b, dif_inreg(ld(re, im, b), &k));
    }
}

/* Gadget decomposition of eight words (kernels.h: signed digits in [-B/2, B/2), level 0 the most
 * significant), one level at a time from the least significant up: dec_start rounds to the top
 * β·ℓ bits, each dec_step gives the next digit and carries into the state. */
typedef struct {
    __m512i sh1, sb, mask, half, one;
} dec_k;

static inline __m512i dec_start(__m512i x, const dec_k *k)
{
    return _mm512_srli_epi64(_mm512_add_epi64(_mm512_srlv_epi64(x, k->sh1), k->one), 1);
}

static inline __m512i dec_step(__m512i *st, const dec_k *k)
{
    __m512i d = _mm512_and_si512(*st, k->mask);
    *st = _mm512_srlv_epi64(*st, k->sb);
    __m512i carry = _mm512_srlv_epi64(_mm512_add_epi64(d, k->half), k->sb);
    *st = _mm512_add_epi64(*st, carry);
    return _mm512_sub_epi64(d, _mm512_sllv_epi64(carry, k->sb));
}

/* Decomposition fused into the forward transform: the ℓ digit polynomials of `in` go straight from
 * registers into the first radix-4 pass of their own transform (out + level·N), bit for bit the
 * same as veil_fft_fwd_avx512 on the digits. */
void veil_fft_fwd_dec_avx512(const veil_fft_plan *p, const uint64_t *in, uint32_t beta, uint32_t ell, double *out)
{
    const size_t M = p->half, N = p->N;
    if (M < 8 * TFHE_LANES) {
        veil_fft_fwd_dec_portable(p, in, beta, ell, out);
        return;
    }
    const dec_k k = {_mm512_set1_epi64(64 - beta * ell - 1), _mm512_set1_epi64(beta),
                     _mm512_set1_epi64((long long)((1ull << beta) - 1)), _mm512_set1_epi64((long long)(1ull << (beta - 1))),
                     _mm512_set1_epi64(1)};
    const size_t q = M / 4, d = M / 2;
    for (size_t j = 0; j < q; j += TFHE_LANES) {
        const size_t pos[4] = {j, j + q, j + 2 * q, j + 3 * q};
        __m512i sr[4], si[4];
        for (int t = 0; t < 4; t++) {
            sr[t] = dec_start(_mm512_loadu_si512((const void *)(in + pos[t])), &k);
            si[t] = dec_start(_mm512_loadu_si512((const void *)(in + pos[t] + M)), &k);
        }
        const c8 w1 = tw(p, d + j), w1q = tw(p, d + j + q), w2 = tw(p, q + j);
        for (uint32_t lv = ell; lv-- > 0;) {
            c8 x[4];
            for (int t = 0; t < 4; t++) {
                __m512d xr = _mm512_cvtepi64_pd(dec_step(&sr[t], &k)), xi = _mm512_cvtepi64_pd(dec_step(&si[t], &k));
                x[t] = mul((c8){xr, xi}, ld(p->twist_re, p->twist_im, pos[t]));
            }
            dif4(&x[0], &x[1], &x[2], &x[3], w1, w1q, w2);
            double *re = out + lv * N, *im = re + M;
            for (int t = 0; t < 4; t++) st(re, im, pos[t], x[t]);
        }
    }
    for (uint32_t lv = 0; lv < ell; lv++) fwd_tail(p, out + lv * N, out + lv * N + M);
}

/* All inverse passes but the last (distances M/4 and M/2), in place; returns nothing, leaves the
 * data ready for the last pass. */
static void inv_head(const veil_fft_plan *p, double *re, double *im)
{
    const size_t M = p->half;
    const inreg k = inreg_consts(p);
    /* vector stages 8 … M/2: log2(M) − 3 of them; an odd count starts with one radix-2 pass */
    const int odd = (p->log2_half - 3) & 1;
    size_t q;
    if (odd) {
        const c8 w = tw(p, TFHE_LANES);
        for (size_t b = 0; b < M; b += 2 * TFHE_LANES) {
            c8 u = dit_inreg(ld(re, im, b), &k), v = mulc(dit_inreg(ld(re, im, b + TFHE_LANES), &k), w);
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
                c8 x0 = ld(re, im, o), x1 = ld(re, im, o + q), x2 = ld(re, im, o + 2 * q), x3 = ld(re, im, o + 3 * q);
                dit4(&x0, &x1, &x2, &x3, tw(p, d + j), tw(p, d + j + q), tw(p, q + j));
                st(re, im, o, x0);
                st(re, im, o + q, x1);
                st(re, im, o + 2 * q, x2);
                st(re, im, o + 3 * q, x3);
            }
    }
}

void veil_fft_inv_avx512(const veil_fft_plan *p, double *buf)
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
        c8 x0 = ld(re, im, j), x1 = ld(re, im, j + q), x2 = ld(re, im, j + 2 * q), x3 = ld(re, im, j + 3 * q);
        dit4(&x0, &x1, &x2, &x3, tw(p, d + j), tw(p, d + j + q), tw(p, q + j));
        st(re, im, j, x0);
        st(re, im, j + q, x1);
        st(re, im, j + 2 * q, x2);
        st(re, im, j + 3 * q, x3);
    }
}

/* round(x) mod 2^64 for eight doubles, bit for bit as veil_f64_to_torus_portable: x − 2^64·k with
 * k = round(x/2^64) is exact and lies in [−2^63, 2^63]; vcvtpd2qq rounds it to nearest even, and
 * its overflow answer for 2^63 (0x8000…) is 2^63 mod 2^64. */
static inline __m512i torus8(__m512d x)
{
    __m512d k = _mm512_roundscale_pd(_mm512_mul_pd(x, _mm512_set1_pd(0x1p-64)), _MM_FROUND_TO_NEAREST_INT);
    __m512d r = _mm512_fnmadd_pd(k, _mm512_set1_pd(0x1p64), x);
    return _mm512_cvt_roundpd_epi64(r, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
}

static inline void untwist_add(const veil_fft_plan *p, c8 y, size_t j, uint64_t *out)
{
    c8 z = mul(y, ld(p->untwist_re, p->untwist_im, j));
    __m512i *o1 = (__m512i *)(out + j), *o2 = (__m512i *)(out + j + p->half);
    _mm512_storeu_si512(o1, _mm512_add_epi64(_mm512_loadu_si512(o1), torus8(z.r)));
    _mm512_storeu_si512(o2, _mm512_add_epi64(_mm512_loadu_si512(o2), torus8(z.i)));
}

void veil_fft_bwd_add_avx512(const veil_fft_plan *p, double *buf, uint64_t *out)
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
        c8 x0 = ld(re, im, j), x1 = ld(re, im, j + q), x2 = ld(re, im, j + 2 * q), x3 = ld(re, im, j + 3 * q);
        dit4(&x0, &x1, &x2, &x3, tw(p, d + j), tw(p, d + j + q), tw(p, q + j));
        untwist_add(p, x0, j, out);
        untwist_add(p, x1, j + q, out);
        untwist_add(p, x2, j + 2 * q, out);
        untwist_add(p, x3, j + 3 * q, out);
    }
}

void veil_round_add_avx512(const double *x, uint64_t *out, uint32_t n)
{
    for (uint32_t j = 0; j < n; j += 8) {
        __m512i *o = (__m512i *)(out + j);
        _mm512_storeu_si512(o, _mm512_add_epi64(_mm512_loadu_si512(o), torus8(_mm512_loadu_pd(x + j))));
    }
}
