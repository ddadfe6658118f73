/* Negacyclic FFT over R[X]/(X^N+1) with N/2 complex points (folding a_j + i·a_{j+N/2} and the
 * twist ζ^j, ζ = e^{iπ/N}), so that a product mod X^N+1 becomes a pointwise product of N/2
 * complex numbers. The complex FFT itself is a swappable kernel (fwd/inv pointers); the FFTW
 * backend lives in fft_fftw.c. Internal to libveil. */
#ifndef VEIL_TFHE_FFT_H
#define VEIL_TFHE_FFT_H

#include <stdint.h>

typedef struct veil_fft_plan veil_fft_plan;
struct veil_fft_plan {
    uint32_t N, half;
    double *twist;   /* half complex: ζ^j, interleaved re/im */
    double *untwist; /* half complex: ζ^-j / half */
    void *backend;   /* kernel state */
    /* In-place complex FFT of `half` interleaved points: forward uses e^{-2πi jk/half}, inverse
     * e^{+2πi jk/half}, unnormalized. buf must be 64-byte aligned. */
    void (*fwd)(const veil_fft_plan *p, double *buf);
    void (*inv)(const veil_fft_plan *p, double *buf);
};

/* Cached plan for N = 2^log2_N (8 ≤ log2_N ≤ 16); created once, thread-safe; NULL on failure. */
const veil_fft_plan *veil_fft_plan_get(uint32_t log2_N);

/* Backend constructor (fft_fftw.c). */
int veil_fft_backend_init(veil_fft_plan *p);

/* Forward transforms into `out` (half complex = N doubles). */
void veil_fft_forward_i64(const veil_fft_plan *p, const int64_t *in, double *out);
void veil_fft_forward_u64(const veil_fft_plan *p, const uint64_t *in, double *out); /* torus as signed */
/* Inverse of buf (destroyed); rounds each coefficient and adds it to out mod 2^64. */
void veil_fft_backward_add_u64(const veil_fft_plan *p, double *buf, uint64_t *out);
/* Inverse of buf (destroyed) into N doubles, unrounded. */
void veil_fft_backward_f64(const veil_fft_plan *p, double *buf, double *out);
/* acc += a ⊙ b over `half` complex points. */
void veil_fft_mac(double *acc, const double *a, const double *b, uint32_t half);

/* Exact negacyclic product out = a · s mod (X^N+1, 2^64) for a binary (0/1) polynomial s given in
 * the Fourier domain (s_f, from veil_fft_forward_u64). Splits a into four 16-bit limbs so that
 * every limb product stays below 2^31 and rounds exactly. tmp: 2N doubles scratch (64-aligned). */
void veil_poly_mul_binary_exact(const veil_fft_plan *p, const uint64_t *a, const double *s_f, uint64_t *out,
                                double *tmp);

#endif
