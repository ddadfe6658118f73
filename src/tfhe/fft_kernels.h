/* The FFT kernels of each variant (fft_portable.c, fft_avx2.c, fft_avx512.c), gathered into the
 * kernel tables of kernels_<isa>.c. Contracts as in kernels.h. Internal to src/tfhe. */
#ifndef VEIL_TFHE_FFT_KERNELS_H
#define VEIL_TFHE_FFT_KERNELS_H

#include "fft.h"

void veil_fft_fwd_portable(const veil_fft_plan *p, const int64_t *in, double *out);
void veil_fft_fwd_dec_portable(const veil_fft_plan *p, const uint64_t *in, uint32_t beta, uint32_t ell, double *out);
void veil_fft_inv_portable(const veil_fft_plan *p, double *buf);
void veil_fft_bwd_add_portable(const veil_fft_plan *p, double *buf, uint64_t *out);
/* round(x) mod 2^64, exact for every finite x, ties to even: the oracle of the SIMD conversions */
uint64_t veil_f64_to_torus_portable(double x);

void veil_round_add_portable(const double *x, uint64_t *out, uint32_t n);
void veil_round_add_avx2(const double *x, uint64_t *out, uint32_t n);
void veil_round_add_avx512(const double *x, uint64_t *out, uint32_t n);

void veil_fft_fwd_avx2(const veil_fft_plan *p, const int64_t *in, double *out);
void veil_fft_fwd_dec_avx2(const veil_fft_plan *p, const uint64_t *in, uint32_t beta, uint32_t ell, double *out);
void veil_fft_inv_avx2(const veil_fft_plan *p, double *buf);
void veil_fft_bwd_add_avx2(const veil_fft_plan *p, double *buf, uint64_t *out);

void veil_fft_fwd_avx512(const veil_fft_plan *p, const int64_t *in, double *out);
void veil_fft_fwd_dec_avx512(const veil_fft_plan *p, const uint64_t *in, uint32_t beta, uint32_t ell, double *out);
void veil_fft_inv_avx512(const veil_fft_plan *p, double *buf);
void veil_fft_bwd_add_avx512(const veil_fft_plan *p, double *buf, uint64_t *out);

#endif
