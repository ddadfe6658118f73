/* AVX2+FMA kernels. Compiled with -mavx2 -mfma (CMakeLists.txt); only called after CPUID says
 * so. The FFT is in fft_avx2.c; the generic bodies (kernels_impl.inc) serve rotation and key
 * switching; decomposition and the Fourier multiply-accumulate are written with intrinsics. */
#include <immintrin.h>
#include <stddef.h>
#include <string.h>

#include "fft_kernels.h"
#include "kernels.h"

#define SUFFIX avx2
#define KNAME "avx2"
#define KERNELS_CUSTOM_TABLE
#include "kernels_impl.inc"

/* acc += a ⊙ b, four complex points per register pair (split layout) */
static void fft_mac_avx2i(double *restrict acc, const double *restrict a, const double *restrict b, uint32_t half)
{
    uint32_t j = 0;
    for (; j + 4 <= half; j += 4) {
        __m256d ar = _mm256_load_pd(a + j), ai = _mm256_load_pd(a + half + j);
        __m256d br = _mm256_load_pd(b + j), bi = _mm256_load_pd(b + half + j);
        __m256d cr = _mm256_load_pd(acc + j), ci = _mm256_load_pd(acc + half + j);
        _mm256_store_pd(acc + j, _mm256_fnmadd_pd(ai, bi, _mm256_fmadd_pd(ar, br, cr)));
        _mm256_store_pd(acc + half + j, _mm256_fmadd_pd(ai, br, _mm256_fmadd_pd(ar, bi, ci)));
    }
    for (; j < half; j++) { /* tail; never taken for N ≥ 8 */
        double ar = a[j], ai = a[half + j], br = b[j], bi = b[half + j];
        acc[j] += ar * br - ai * bi;
        acc[half + j] += ar * bi + ai * br;
    }
}

/* The sum over rows kept in registers: every output and every key word is touched once. */
static void ext_mac_avx2i(double *restrict out, const double *restrict dec, const double *restrict key, uint32_t rows,
                          uint32_t k1, uint32_t half)
{
    const size_t stride = 2 * (size_t)half;
    for (uint32_t o = 0; o < k1; o++) {
        double *acc = out + o * stride;
        for (size_t t = 0; t < half; t += 4) {
            __m256d sr = _mm256_setzero_pd(), si = _mm256_setzero_pd();
            for (uint32_t r = 0; r < rows; r++) {
                const double *d = dec + r * stride + t, *kk = key + ((size_t)r * k1 + o) * stride + t;
                __m256d dr = _mm256_load_pd(d), di = _mm256_load_pd(d + half);
                __m256d kr = _mm256_load_pd(kk), ki = _mm256_load_pd(kk + half);
                sr = _mm256_fnmadd_pd(di, ki, _mm256_fmadd_pd(dr, kr, sr));
                si = _mm256_fmadd_pd(di, kr, _mm256_fmadd_pd(dr, ki, si));
            }
            _mm256_store_pd(acc + t, sr);
            _mm256_store_pd(acc + half + t, si);
        }
    }
}

static void decompose_avx2i(const uint64_t *restrict in, uint32_t N, uint32_t beta, uint32_t ell, int64_t *restrict out)
{
    const uint32_t shift = 64 - beta * ell;
    const int ts = veil_tie_shift(beta, ell);
    const __m128i sh1 = _mm_cvtsi32_si128((int)shift - 1), sb = _mm_cvtsi32_si128((int)beta);
    const __m128i tsh = _mm_cvtsi32_si128(ts >= 0 ? ts : 0);
    const __m256i one = _mm256_set1_epi64x(1), mask = _mm256_set1_epi64x((long long)((1ull << beta) - 1));
    const __m256i half1 = _mm256_set1_epi64x((long long)((1ull << (beta - 1)) - 1));
    const __m256i tmask = _mm256_set1_epi64x(ts >= 0 ? -1 : 0);
    uint32_t t = 0;
    for (; t + 4 <= N; t += 4) {
        __m256i x = _mm256_loadu_si256((const __m256i *)(in + t));
        __m256i st = _mm256_srli_epi64(_mm256_add_epi64(_mm256_srl_epi64(x, sh1), one), 1);
        __m256i ties = _mm256_and_si256(_mm256_srl_epi64(x, tsh), tmask); /* kernels.h: veil_digits */
        for (uint32_t j = ell; j-- > 0;) {
            __m256i d = _mm256_and_si256(st, mask);
            st = _mm256_srl_epi64(st, sb);
            __m256i tb = _mm256_and_si256(_mm256_srl_epi64(ties, _mm_cvtsi32_si128((int)j)), one);
            __m256i carry = _mm256_srl_epi64(_mm256_add_epi64(_mm256_add_epi64(d, half1), tb), sb);
            st = _mm256_add_epi64(st, carry);
            __m256i dig = _mm256_sub_epi64(d, _mm256_sll_epi64(carry, sb));
            _mm256_storeu_si256((__m256i *)(out + (size_t)j * N + t), dig);
        }
    }
    for (; t < N; t++) { /* tail; never taken for N ≥ 4 */
        int64_t dig[64];
        veil_digits(in[t], beta, ell, dig);
        for (uint32_t j = 0; j < ell; j++) out[(size_t)j * N + t] = dig[j];
    }
}

const veil_kernels veil_kernels_avx2 = {
    .name = KNAME,
    .variant = {KNAME, KNAME, KNAME, KNAME, KNAME},
    .fft_fwd = veil_fft_fwd_avx2,
    .fft_bwd_add = veil_fft_bwd_add_avx2,
    .fft_inv = veil_fft_inv_avx2,
    .fft_fwd_dec = veil_fft_fwd_dec_avx2,
    .round_add = veil_round_add_avx2,
    .decompose = decompose_avx2i,
    .fft_mac = fft_mac_avx2i,
    .ext_mac = ext_mac_avx2i, /* half is a multiple of 4 for N ≥ 8 */
    .rotate_sub = rotate_sub_avx2,
    .keyswitch = keyswitch_avx2,
    .keyswitch_batch = keyswitch_batch_avx2,
};
