/* FFT plans (twiddles computed once per size, in long double, and kept in one allocation) and the
 * entry points that dispatch to the chosen kernels (kernels.h). */
#include "fft.h"

#include <math.h>
#include <pthread.h>
#include <string.h>

#include "kernels.h"
#include "veil/core.h"

static pthread_mutex_t plan_lock = PTHREAD_MUTEX_INITIALIZER;
static veil_fft_plan *plans[VEIL_FFT_MAX_LOG2_N + 1];

veil_fft_plan *veil_fft_plan_new_uncached(uint32_t log2_N)
{
    if (log2_N < VEIL_FFT_MIN_LOG2_N || log2_N > VEIL_FFT_MAX_LOG2_N) return NULL;
    const uint32_t M = 1u << (log2_N - 1);
    /* the struct, then six arrays of M doubles, each starting on a 64-byte boundary */
    const size_t head = (sizeof(veil_fft_plan) + 63) & ~(size_t)63, arr = ((sizeof(double) * M) + 63) & ~(size_t)63;
    uint8_t *mem = veil_malloc(head + 6 * arr);
    if (!mem) return NULL;
    veil_fft_plan *p = (veil_fft_plan *)mem;
    memset(p, 0, sizeof *p);
    p->N = 1u << log2_N;
    p->half = M;
    p->log2_half = log2_N - 1;
    double **tabs[6] = {&p->tw_re, &p->tw_im, &p->twist_re, &p->twist_im, &p->untwist_re, &p->untwist_im};
    for (int t = 0; t < 6; t++) *tabs[t] = (double *)(mem + head + (size_t)t * arr);
    const long double pi = 3.141592653589793238462643383279502884L;
    p->tw_re[0] = 1;
    p->tw_im[0] = 0;
    /* each twiddle from its own angle (no recurrence), so every table entry is correctly rounded */
    for (uint32_t d = 1; d < M; d <<= 1)
        for (uint32_t j = 0; j < d; j++) {
            long double ang = -pi * (long double)j / (long double)d;
            p->tw_re[d + j] = (double)cosl(ang);
            p->tw_im[d + j] = (double)sinl(ang);
        }
    for (uint32_t j = 0; j < M; j++) {
        long double ang = pi * (long double)j / (long double)p->N;
        p->twist_re[j] = (double)cosl(ang);
        p->twist_im[j] = (double)sinl(ang);
        p->untwist_re[j] = (double)(cosl(ang) / M);
        p->untwist_im[j] = (double)(-sinl(ang) / M);
    }
    return p;
}

const veil_fft_plan *veil_fft_plan_get(uint32_t log2_N)
{
    if (log2_N < VEIL_FFT_MIN_LOG2_N || log2_N > VEIL_FFT_MAX_LOG2_N || !veil_kernels_get()) return NULL;
    pthread_mutex_lock(&plan_lock);
    veil_fft_plan *p = plans[log2_N];
    if (!p) plans[log2_N] = p = veil_fft_plan_new_uncached(log2_N);
    pthread_mutex_unlock(&plan_lock);
    return p;
}

void veil_fft_forward_i64(const veil_fft_plan *p, const int64_t *in, double *out)
{
    veil_kernels_get()->fft_fwd(p, in, out);
}

void veil_fft_forward_u64(const veil_fft_plan *p, const uint64_t *in, double *out)
{
    veil_kernels_get()->fft_fwd(p, (const int64_t *)in, out);
}

void veil_fft_backward_add_u64(const veil_fft_plan *p, double *buf, uint64_t *out)
{
    veil_kernels_get()->fft_bwd_add(p, buf, out);
}

void veil_fft_backward_f64(const veil_fft_plan *p, double *buf, double *out)
{
    const uint32_t M = p->half;
    veil_kernels_get()->fft_inv(p, buf);
    const double *re = buf, *im = buf + M;
    for (uint32_t j = 0; j < M; j++) {
        double ur = p->untwist_re[j], ui = p->untwist_im[j];
        out[j] = re[j] * ur - im[j] * ui;
        out[j + M] = re[j] * ui + im[j] * ur;
    }
}

void veil_fft_mac(double *acc, const double *a, const double *b, uint32_t half)
{
    veil_kernels_get()->fft_mac(acc, a, b, half);
}

void veil_poly_mul_binary_exact(const veil_fft_plan *p, const uint64_t *a, const double *s_f, uint64_t *out,
                                double *tmp)
{
    const uint32_t N = p->N, M = p->half;
    const veil_kernels *k = veil_kernels_get();
    double *buf = tmp, *res = tmp + N;
    int64_t *limbs = (int64_t *)(void *)res; /* consumed by the forward transform before res is written */
    memset(out, 0, sizeof(uint64_t) * N);
    for (int limb = 0; limb < 4; limb++) {
        int shift = 16 * limb;
        for (uint32_t j = 0; j < N; j++) limbs[j] = (int64_t)((a[j] >> shift) & 0xffff);
        k->fft_fwd(p, limbs, buf);
        for (uint32_t j = 0; j < M; j++) {
            double ar = buf[j], ai = buf[M + j], br = s_f[j], bi = s_f[M + j];
            buf[j] = ar * br - ai * bi;
            buf[M + j] = ar * bi + ai * br;
        }
        veil_fft_backward_f64(p, buf, res);
        /* |res| ≤ N·2^16 ≤ 2^33: llrint is exact once the FFT error is below 1/2 */
        for (uint32_t j = 0; j < N; j++) out[j] += (uint64_t)llrint(res[j]) << shift;
    }
}
