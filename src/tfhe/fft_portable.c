/* Portable negacyclic FFT (the oracle of the SIMD variants): radix-2 decimation in frequency
 * forward, decimation in time inverse, split layout, no reordering (fft.h). Plain C; the
 * butterflies of one stage are independent, so the compiler may vectorize them. */
#include <math.h>
#include <string.h>

#include "fft_kernels.h"
#include "kernels.h"

/* The radix-2 decimation-in-frequency stages, in place: (u, v) → (u + v, (u − v)·W_{2d}^j) */
static void fwd_stages(const veil_fft_plan *p, double *restrict re, double *restrict im)
{
    const uint32_t M = p->half;
    const double *restrict wr = p->tw_re, *restrict wi = p->tw_im;
    for (uint32_t d = M / 2; d >= 1; d >>= 1)
        for (uint32_t b = 0; b < M; b += 2 * d)
            for (uint32_t j = 0; j < d; j++) {
                uint32_t s = b + j, t = s + d;
                double ur = re[s], ui = im[s], vr = re[t], vi = im[t];
                double dr = ur - vr, di = ui - vi;
                re[s] = ur + vr;
                im[s] = ui + vi;
                re[t] = dr * wr[d + j] - di * wi[d + j];
                im[t] = dr * wi[d + j] + di * wr[d + j];
            }
}

static inline void twist_at(const veil_fft_plan *p, double *re, double *im, uint32_t j, double x, double y)
{
    double tr = p->twist_re[j], ti = p->twist_im[j];
    re[j] = x * tr - y * ti;
    im[j] = x * ti + y * tr;
}

void veil_fft_fwd_portable(const veil_fft_plan *p, const int64_t *restrict in, double *restrict out)
{
    const uint32_t M = p->half;
    for (uint32_t j = 0; j < M; j++) twist_at(p, out, out + M, j, (double)in[j], (double)in[j + M]);
    fwd_stages(p, out, out + M);
}

void veil_fft_fwd_dec_portable(const veil_fft_plan *p, const uint64_t *restrict in, uint32_t beta, uint32_t ell,
                               double *restrict out)
{
    const uint32_t M = p->half, N = p->N;
    for (uint32_t j = 0; j < M; j++) {
        int64_t dr[64], di[64];
        veil_digits(in[j], beta, ell, dr);
        veil_digits(in[j + M], beta, ell, di);
        for (uint32_t lv = 0; lv < ell; lv++)
            twist_at(p, out + (size_t)lv * N, out + (size_t)lv * N + M, j, (double)dr[lv], (double)di[lv]);
    }
    for (uint32_t lv = 0; lv < ell; lv++) fwd_stages(p, out + (size_t)lv * N, out + (size_t)lv * N + M);
}

void veil_fft_inv_portable(const veil_fft_plan *p, double *restrict buf)
{
    const uint32_t M = p->half;
    double *restrict re = buf, *restrict im = buf + M;
    const double *restrict wr = p->tw_re, *restrict wi = p->tw_im;
    /* (x, y) → (x + conj(W)·y, x − conj(W)·y): the forward butterflies undone, times 2 */
    for (uint32_t d = 1; d < M; d <<= 1)
        for (uint32_t b = 0; b < M; b += 2 * d)
            for (uint32_t j = 0; j < d; j++) {
                uint32_t s = b + j, t = s + d;
                double yr = re[t] * wr[d + j] + im[t] * wi[d + j];
                double yi = im[t] * wr[d + j] - re[t] * wi[d + j];
                double xr = re[s], xi = im[s];
                re[s] = xr + yr;
                im[s] = xi + yi;
                re[t] = xr - yr;
                im[t] = xi - yi;
            }
}

uint64_t veil_f64_to_torus_portable(double x)
{
    uint64_t bits;
    memcpy(&bits, &x, 8);
    uint64_t mant = (bits & ((1ull << 52) - 1)) | (1ull << 52);
    int64_t e = (int64_t)((bits >> 52) & 0x7ff) - 1075;
    uint64_t sign = (uint64_t)((int64_t)bits >> 63);
    uint64_t up = e >= 0 && e < 64 ? mant << (e & 63) : 0;
    /* e < 0: round to nearest, ties to even (as the SIMD variants' hardware rounding does);
     * for -e ≥ 64 the value is below 1/2 (mant < 2^53) and rounds to 0 */
    int64_t r = -e;
    uint64_t down = 0;
    if (r >= 1 && r <= 63) {
        uint64_t q = mant >> r, rem = mant & ((1ull << r) - 1), halfway = 1ull << (r - 1);
        down = q + (rem > halfway || (rem == halfway && (q & 1)));
    }
    uint64_t v = e >= 0 ? up : down;
    return (v ^ sign) - sign;
}

void veil_fft_bwd_add_portable(const veil_fft_plan *p, double *restrict buf, uint64_t *restrict out)
{
    const uint32_t M = p->half;
    veil_fft_inv_portable(p, buf);
    const double *re = buf, *im = buf + M;
    for (uint32_t j = 0; j < M; j++) {
        double ur = p->untwist_re[j], ui = p->untwist_im[j];
        out[j] += veil_f64_to_torus_portable(re[j] * ur - im[j] * ui);
        out[j + M] += veil_f64_to_torus_portable(re[j] * ui + im[j] * ur);
    }
}

void veil_round_add_portable(const double *x, uint64_t *out, uint32_t n)
{
    for (uint32_t j = 0; j < n; j++) out[j] += veil_f64_to_torus_portable(x[j]);
}
