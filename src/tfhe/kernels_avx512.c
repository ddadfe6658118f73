/* AVX-512 (F, DQ, VL) kernels. Compiled with -mavx512f -mavx512dq -mavx512vl -mavx2 -mfma
 * (CMakeLists.txt); only called after CPUID says so. The FFT is in fft_avx512.c; decomposition and
 * rotation and the Fourier multiply-accumulate are written with intrinsics, eight lanes per
 * register; key switching uses the generic body (kernels_impl.inc) compiled for AVX-512. */
#include <immintrin.h>
#include <stddef.h>
#include <string.h>

#include "fft_kernels.h"
#include "kernels.h"

#define SUFFIX avx512
#define KNAME "avx512"
#define KERNELS_CUSTOM_TABLE
#include "kernels_impl.inc"

static void fft_mac_avx512i(double *restrict acc, const double *restrict a, const double *restrict b, uint32_t half)
{
    if (half % 8) { /* N < 16 only */
        fft_mac_avx512(acc, a, b, half);
        return;
    }
    for (uint32_t j = 0; j < half; j += 8) {
        __m512d ar = _mm512_load_pd(a + j), ai = _mm512_load_pd(a + half + j);
        __m512d br = _mm512_load_pd(b + j), bi = _mm512_load_pd(b + half + j);
        __m512d cr = _mm512_load_pd(acc + j), ci = _mm512_load_pd(acc + half + j);
        _mm512_store_pd(acc + j, _mm512_fnmadd_pd(ai, bi, _mm512_fmadd_pd(ar, br, cr)));
        _mm512_store_pd(acc + half + j, _mm512_fmadd_pd(ai, br, _mm512_fmadd_pd(ar, bi, ci)));
    }
}

static void ext_mac_avx512i(double *restrict out, const double *restrict dec, const double *restrict key,
                            uint32_t rows, uint32_t k1, uint32_t half)
{
    if (half % 8) { /* N < 16 only */
        ext_mac_avx512(out, dec, key, rows, k1, half);
        return;
    }
    const size_t stride = 2 * (size_t)half;
    for (uint32_t o = 0; o < k1; o++) {
        double *acc = out + o * stride;
        for (size_t t = 0; t < half; t += 8) {
            __m512d sr = _mm512_setzero_pd(), si = _mm512_setzero_pd();
            for (uint32_t r = 0; r < rows; r++) {
                const double *d = dec + r * stride + t, *kk = key + ((size_t)r * k1 + o) * stride + t;
                __m512d dr = _mm512_load_pd(d), di = _mm512_load_pd(d + half);
                __m512d kr = _mm512_load_pd(kk), ki = _mm512_load_pd(kk + half);
                sr = _mm512_fnmadd_pd(di, ki, _mm512_fmadd_pd(dr, kr, sr));
                si = _mm512_fmadd_pd(di, kr, _mm512_fmadd_pd(dr, ki, si));
            }
            _mm512_store_pd(acc + t, sr);
            _mm512_store_pd(acc + half + t, si);
        }
    }
}

static void decompose_avx512i(const uint64_t *restrict in, uint32_t N, uint32_t beta, uint32_t ell,
                              int64_t *restrict out)
{
    if (N % 8) { /* N < 8 only */
        decompose_avx512(in, N, beta, ell, out);
        return;
    }
    const uint32_t shift = 64 - beta * ell;
    const int ts = veil_tie_shift(beta, ell);
    const __m512i one = _mm512_set1_epi64(1), mask = _mm512_set1_epi64((long long)((1ull << beta) - 1));
    const __m512i half1 = _mm512_set1_epi64((long long)((1ull << (beta - 1)) - 1));
    const __m512i sh1 = _mm512_set1_epi64(shift - 1), sb = _mm512_set1_epi64(beta);
    const __m512i tsh = _mm512_set1_epi64(ts >= 0 ? ts : 0), tmask = _mm512_set1_epi64(ts >= 0 ? -1 : 0);
    for (uint32_t t = 0; t < N; t += 8) {
        __m512i x = _mm512_loadu_si512((const void *)(in + t));
        __m512i st = _mm512_srli_epi64(_mm512_add_epi64(_mm512_srlv_epi64(x, sh1), one), 1);
        __m512i ties = _mm512_and_si512(_mm512_srlv_epi64(x, tsh), tmask); /* kernels.h: veil_digits */
        for (uint32_t j = ell; j-- > 0;) {
            __m512i d = _mm512_and_si512(st, mask);
            st = _mm512_srlv_epi64(st, sb);
            __m512i tb = _mm512_and_si512(_mm512_srlv_epi64(ties, _mm512_set1_epi64(j)), one);
            __m512i carry = _mm512_srlv_epi64(_mm512_add_epi64(_mm512_add_epi64(d, half1), tb), sb);
            st = _mm512_add_epi64(st, carry);
            __m512i dig = _mm512_sub_epi64(d, _mm512_sllv_epi64(carry, sb));
            _mm512_storeu_si512((void *)(out + (size_t)j * N + t), dig);
        }
    }
}

/* out = X^t·in − in mod X^N+1 (kernels.h), eight words at a time: coefficient j takes in[j − t]
 * (sign flipped below t, and once more when t ≥ N); the vectors straddling the wrap point and the
 * tail are done word by word. */
static void rotate_sub_avx512i(const uint64_t *in, uint64_t *out, uint32_t N, uint32_t t)
{
    uint64_t neg = 0;
    if (t >= N) {
        t -= N;
        neg = ~0ull;
    }
    const __m512i vneg = _mm512_set1_epi64((long long)neg), zero = _mm512_setzero_si512();
    uint32_t j = 0;
    for (; j + 8 <= t; j += 8) { /* below t: −in[j + N − t] */
        __m512i src = _mm512_sub_epi64(zero, _mm512_loadu_si512((const void *)(in + j + N - t)));
        src = _mm512_sub_epi64(_mm512_xor_si512(src, vneg), vneg);
        _mm512_storeu_si512((void *)(out + j), _mm512_sub_epi64(src, _mm512_loadu_si512((const void *)(in + j))));
    }
    for (; j < t; j++) out[j] = (((0 - in[j + N - t]) ^ neg) - neg) - in[j];
    for (; j + 8 <= N; j += 8) {
        __m512i src = _mm512_loadu_si512((const void *)(in + j - t));
        src = _mm512_sub_epi64(_mm512_xor_si512(src, vneg), vneg);
        _mm512_storeu_si512((void *)(out + j), _mm512_sub_epi64(src, _mm512_loadu_si512((const void *)(in + j))));
    }
    for (; j < N; j++) out[j] = ((in[j - t] ^ neg) - neg) - in[j];
}

const veil_kernels veil_kernels_avx512 = {
    .name = KNAME,
    .variant = {KNAME, KNAME, KNAME, KNAME, KNAME},
    .fft_fwd = veil_fft_fwd_avx512,
    .fft_bwd_add = veil_fft_bwd_add_avx512,
    .fft_inv = veil_fft_inv_avx512,
    .fft_fwd_dec = veil_fft_fwd_dec_avx512,
    .round_add = veil_round_add_avx512,
    .decompose = decompose_avx512i,
    .fft_mac = fft_mac_avx512i,
    .ext_mac = ext_mac_avx512i,
    .rotate_sub = rotate_sub_avx512i,
    .keyswitch = keyswitch_avx512,
    .keyswitch_batch = keyswitch_batch_avx512,
};
