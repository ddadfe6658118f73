/* AVX2+FMA kernels. Compiled with -mavx2 -mfma (CMakeLists.txt); only called after CPUID says
 * so. The generic bodies (kernels_impl.inc) serve key switching; the PBS-loop primitives are
 * written with intrinsics because the compiler does not vectorize interleaved complex data nor
 * int64↔double conversions (AVX2 has no instruction for them: the 2^52 "magic number" trick is
 * used, valid for |x| < 2^51). */
#include <immintrin.h>
#include <stddef.h>
#include <string.h>

#include "kernels.h"

#define SUFFIX avx2
#define KNAME "avx2"
#define KERNELS_CUSTOM_TABLE
#include "kernels_impl.inc"

/* (a_re a_im)·(b_re b_im) for two interleaved complex numbers per register */
static inline __m256d cmul(__m256d a, __m256d b)
{
    __m256d are = _mm256_movedup_pd(a), aim = _mm256_permute_pd(a, 0xF), bsw = _mm256_permute_pd(b, 0x5);
    return _mm256_fmaddsub_pd(are, b, _mm256_mul_pd(aim, bsw));
}

static void fft_mac_avx2i(double *restrict acc, const double *restrict a, const double *restrict b, uint32_t half)
{
    uint32_t j = 0;
    for (; j + 4 <= half; j += 4) {
        __m256d p0 = cmul(_mm256_load_pd(a + 2 * j), _mm256_load_pd(b + 2 * j));
        __m256d p1 = cmul(_mm256_load_pd(a + 2 * j + 4), _mm256_load_pd(b + 2 * j + 4));
        _mm256_store_pd(acc + 2 * j, _mm256_add_pd(_mm256_load_pd(acc + 2 * j), p0));
        _mm256_store_pd(acc + 2 * j + 4, _mm256_add_pd(_mm256_load_pd(acc + 2 * j + 4), p1));
    }
    fft_mac_avx2(acc + 2 * j, a + 2 * j, b + 2 * j, half - j);
}

/* Two complex points per register, the sum over rows kept in registers: every output and every
 * key word is touched once. */
static void ext_mac_avx2i(double *restrict out, const double *restrict dec, const double *restrict key, uint32_t rows,
                          uint32_t k1, uint32_t half)
{
    const size_t stride = 2 * (size_t)half;
    for (uint32_t o = 0; o < k1; o++) {
        double *acc = out + o * stride;
        for (size_t t = 0; t < stride; t += 8) {
            __m256d s0 = _mm256_setzero_pd(), s1 = _mm256_setzero_pd();
            for (uint32_t r = 0; r < rows; r++) {
                const double *d = dec + r * stride + t, *kk = key + ((size_t)r * k1 + o) * stride + t;
                s0 = _mm256_add_pd(s0, cmul(_mm256_load_pd(d), _mm256_load_pd(kk)));
                s1 = _mm256_add_pd(s1, cmul(_mm256_load_pd(d + 4), _mm256_load_pd(kk + 4)));
            }
            _mm256_store_pd(acc + t, s0);
            _mm256_store_pd(acc + t + 4, s1);
        }
    }
}

static inline __m256d i64_to_f64(__m256i v) /* exact for |v| < 2^51 */
{
    const __m256i magic_i = _mm256_set1_epi64x(0x4338000000000000ll);
    const __m256d magic_d = _mm256_set1_pd(6755399441055744.0); /* 1.5·2^52 */
    return _mm256_sub_pd(_mm256_castsi256_pd(_mm256_add_epi64(v, magic_i)), magic_d);
}

/* Digits are below 2^(β-1) ≤ 2^31 in magnitude, far inside the magic-number range. */
static void twist_i64_avx2i(const int64_t *restrict in, const double *restrict tw, double *restrict out, uint32_t half)
{
    uint32_t j = 0;
    for (; j + 4 <= half; j += 4) {
        __m256d re = i64_to_f64(_mm256_loadu_si256((const __m256i *)(in + j)));
        __m256d im = i64_to_f64(_mm256_loadu_si256((const __m256i *)(in + j + half)));
        __m256d lo = _mm256_unpacklo_pd(re, im), hi = _mm256_unpackhi_pd(re, im); /* (r0 i0 r2 i2), (r1 i1 r3 i3) */
        __m256d c0 = _mm256_permute2f128_pd(lo, hi, 0x20), c1 = _mm256_permute2f128_pd(lo, hi, 0x31);
        _mm256_store_pd(out + 2 * j, cmul(c0, _mm256_load_pd(tw + 2 * j)));
        _mm256_store_pd(out + 2 * j + 4, cmul(c1, _mm256_load_pd(tw + 2 * j + 4)));
    }
    twist_i64_avx2(in + j, tw + 2 * j, out + 2 * j, half - j); /* tail; never taken for N ≥ 8 */
}

/* round(x) mod 2^64: x = hi·2^32 + lo with hi = floor(x/2^32) and lo in [0, 2^32) (all exact),
 * then hi mod 2^32 the same way; both halves convert exactly through the 2^52 magic number. */
static inline __m256i f64_to_torus4(__m256d x)
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

static void untwist_add_u64_avx2i(const double *restrict buf, const double *restrict u, uint64_t *restrict out,
                                  uint32_t half)
{
    uint32_t j = 0;
    for (; j + 4 <= half; j += 4) {
        __m256d p0 = cmul(_mm256_load_pd(buf + 2 * j), _mm256_load_pd(u + 2 * j));         /* r0 i0 r1 i1 */
        __m256d p1 = cmul(_mm256_load_pd(buf + 2 * j + 4), _mm256_load_pd(u + 2 * j + 4)); /* r2 i2 r3 i3 */
        __m256d re = _mm256_permute4x64_pd(_mm256_unpacklo_pd(p0, p1), 0xD8);
        __m256d im = _mm256_permute4x64_pd(_mm256_unpackhi_pd(p0, p1), 0xD8);
        __m256i *o1 = (__m256i *)(out + j), *o2 = (__m256i *)(out + j + half);
        _mm256_storeu_si256(o1, _mm256_add_epi64(_mm256_loadu_si256(o1), f64_to_torus4(re)));
        _mm256_storeu_si256(o2, _mm256_add_epi64(_mm256_loadu_si256(o2), f64_to_torus4(im)));
    }
    untwist_add_u64_avx2(buf + 2 * j, u + 2 * j, out + j, half - j);
}

static void decompose_avx2i(const uint64_t *restrict in, uint32_t N, uint32_t beta, uint32_t ell, int64_t *restrict out)
{
    const uint32_t shift = 64 - beta * ell;
    const __m128i sh1 = _mm_cvtsi32_si128((int)shift - 1), sb = _mm_cvtsi32_si128((int)beta);
    const __m256i one = _mm256_set1_epi64x(1), mask = _mm256_set1_epi64x((long long)((1ull << beta) - 1));
    const __m256i half = _mm256_set1_epi64x((long long)(1ull << (beta - 1)));
    uint32_t t = 0;
    for (; t + 4 <= N; t += 4) {
        __m256i x = _mm256_loadu_si256((const __m256i *)(in + t));
        __m256i st = _mm256_srli_epi64(_mm256_add_epi64(_mm256_srl_epi64(x, sh1), one), 1);
        for (uint32_t j = ell; j-- > 0;) {
            __m256i d = _mm256_and_si256(st, mask);
            st = _mm256_srl_epi64(st, sb);
            __m256i carry = _mm256_srl_epi64(_mm256_add_epi64(d, half), sb);
            st = _mm256_add_epi64(st, carry);
            __m256i dig = _mm256_sub_epi64(d, _mm256_sll_epi64(carry, sb));
            _mm256_storeu_si256((__m256i *)(out + (size_t)j * N + t), dig);
        }
    }
    for (; t < N; t++) { /* tail; never taken for N ≥ 4 */
        uint64_t st = ((in[t] >> (shift - 1)) + 1) >> 1;
        for (uint32_t j = ell; j-- > 0;) {
            uint64_t d = st & ((1ull << beta) - 1);
            st >>= beta;
            uint64_t carry = (d + (1ull << (beta - 1))) >> beta;
            st += carry;
            out[(size_t)j * N + t] = (int64_t)d - (int64_t)(carry << beta);
        }
    }
}

const veil_kernels veil_kernels_avx2 = {
    .name = KNAME,
    .decompose = decompose_avx2i,
    .twist_i64 = twist_i64_avx2i,
    .untwist_add_u64 = untwist_add_u64_avx2i,
    .fft_mac = fft_mac_avx2i,
    .ext_mac = ext_mac_avx2i, /* half is a multiple of 4 for N ≥ 8 */
    .rotate_sub = rotate_sub_avx2,
    .keyswitch = keyswitch_avx2,
};
