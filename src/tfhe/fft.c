#include "fft.h"

#include <math.h>
#include <pthread.h>
#include <string.h>

#include "kernels.h"
#include "veil/core.h"

static pthread_mutex_t plan_lock = PTHREAD_MUTEX_INITIALIZER;
static veil_fft_plan *plans[17];

const veil_fft_plan *veil_fft_plan_get(uint32_t log2_N)
{
    if (log2_N < 3 || log2_N > 16) return NULL;
    pthread_mutex_lock(&plan_lock);
    veil_fft_plan *p = plans[log2_N];
    if (!p) {
        p = veil_calloc(1, sizeof *p);
        if (p) {
            p->N = 1u << log2_N;
            p->half = p->N / 2;
            p->twist = veil_malloc(sizeof(double) * p->N);
            p->untwist = veil_malloc(sizeof(double) * p->N);
            if (p->twist && p->untwist) {
                for (uint32_t j = 0; j < p->half; j++) {
                    /* long double keeps the tables correctly rounded for large N */
                    long double ang = (long double)M_PI * (long double)j / (long double)p->N;
                    p->twist[2 * j] = (double)cosl(ang);
                    p->twist[2 * j + 1] = (double)sinl(ang);
                    p->untwist[2 * j] = (double)(cosl(ang) / p->half);
                    p->untwist[2 * j + 1] = (double)(-sinl(ang) / p->half);
                }
            }
            if (!p->twist || !p->untwist || !veil_fft_backend_init(p)) {
                veil_free(p->twist);
                veil_free(p->untwist);
                veil_free(p);
                p = NULL;
            }
        }
        plans[log2_N] = p;
    }
    pthread_mutex_unlock(&plan_lock);
    return p;
}

static inline void twist_store(const veil_fft_plan *p, double *out, uint32_t j, double re, double im)
{
    double tr = p->twist[2 * j], ti = p->twist[2 * j + 1];
    out[2 * j] = re * tr - im * ti;
    out[2 * j + 1] = re * ti + im * tr;
}

void veil_fft_forward_i64(const veil_fft_plan *p, const int64_t *in, double *out)
{
    veil_kernels_get()->twist_i64(in, p->twist, out, p->half);
    p->fwd(p, out);
}

void veil_fft_forward_u64(const veil_fft_plan *p, const uint64_t *in, double *out)
{
    const uint32_t h = p->half;
    for (uint32_t j = 0; j < h; j++) twist_store(p, out, j, (double)(int64_t)in[j], (double)(int64_t)in[j + h]);
    p->fwd(p, out);
}

void veil_fft_backward_add_u64(const veil_fft_plan *p, double *buf, uint64_t *out)
{
    p->inv(p, buf);
    veil_kernels_get()->untwist_add_u64(buf, p->untwist, out, p->half);
}

void veil_fft_backward_f64(const veil_fft_plan *p, double *buf, double *out)
{
    const uint32_t h = p->half;
    p->inv(p, buf);
    for (uint32_t j = 0; j < h; j++) {
        double re = buf[2 * j], im = buf[2 * j + 1];
        double ur = p->untwist[2 * j], ui = p->untwist[2 * j + 1];
        out[j] = re * ur - im * ui;
        out[j + h] = re * ui + im * ur;
    }
}

void veil_fft_mac(double *acc, const double *a, const double *b, uint32_t half)
{
    veil_kernels_get()->fft_mac(acc, a, b, half);
}

void veil_poly_mul_binary_exact(const veil_fft_plan *p, const uint64_t *a, const double *s_f, uint64_t *out,
                                double *tmp)
{
    const uint32_t N = p->N, h = p->half;
    double *buf = tmp, *res = tmp + N;
    memset(out, 0, sizeof(uint64_t) * N);
    for (int limb = 0; limb < 4; limb++) {
        int shift = 16 * limb;
        for (uint32_t j = 0; j < h; j++)
            twist_store(p, buf, j, (double)((a[j] >> shift) & 0xffff), (double)((a[j + h] >> shift) & 0xffff));
        p->fwd(p, buf);
        for (uint32_t j = 0; j < h; j++) {
            double ar = buf[2 * j], ai = buf[2 * j + 1], br = s_f[2 * j], bi = s_f[2 * j + 1];
            buf[2 * j] = ar * br - ai * bi;
            buf[2 * j + 1] = ar * bi + ai * br;
        }
        veil_fft_backward_f64(p, buf, res);
        /* |res| ≤ N·2^16 ≤ 2^32: llrint is exact once the FFT error is below 1/2 */
        for (uint32_t j = 0; j < N; j++) out[j] += (uint64_t)llrint(res[j]) << shift;
    }
}
