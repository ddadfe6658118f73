/* veil's own negacyclic FFT over R[X]/(X^N+1) with M = N/2 complex points: fold a_j + i·a_{j+M},
 * twist by ζ^j (ζ = e^{iπ/N}), then a complex FFT of size M, so that a product mod X^N+1 becomes a
 * pointwise product of M complex numbers (the weighted "right-angle" transform of Crandall and
 * Fagin, "Discrete weighted transforms and large-integer arithmetic", Math. Comp. 62, 1994).
 *
 * Fourier-domain layout (every variant, every caller): a polynomial takes N doubles, the M real
 * parts first, then the M imaginary parts ("split" layout), in bit-reversed frequency order. The
 * forward transform is decimation in frequency (natural order in, bit-reversed out) and the inverse
 * decimation in time (bit-reversed in, natural out), so no transform ever reorders its data:
 * pointwise products do not care about the order.
 *
 * The transforms themselves are kernels (kernels.h: fft_fwd, fft_bwd_add, fft_inv) with a portable,
 * an AVX2+FMA and an AVX-512 variant; the int64→double conversion and the twist are fused into the
 * first forward pass, and the untwist, rounding mod 2^64 and accumulation into the last inverse
 * pass. Internal to libveil. */
#ifndef VEIL_TFHE_FFT_H
#define VEIL_TFHE_FFT_H

#include <stdint.h>

#define VEIL_FFT_MIN_LOG2_N 3
#define VEIL_FFT_MAX_LOG2_N 17

typedef struct veil_fft_plan {
    uint32_t N, half, log2_half;
    /* One allocation, 64-byte aligned arrays of `half` doubles each:
     *   tw_re/tw_im   the stage with butterfly distance d (1 ≤ d < M) uses entries [d, 2d):
     *                 W_{2d}^j = e^{-iπ j/d} (entry 0 unused);
     *   twist_*       ζ^j;   untwist_*  ζ^-j / M (the inverse's normalization folded in). */
    double *tw_re, *tw_im, *twist_re, *twist_im, *untwist_re, *untwist_im;
} veil_fft_plan;

/* Cached plan for N = 2^log2_N (VEIL_FFT_MIN_LOG2_N ≤ log2_N ≤ VEIL_FFT_MAX_LOG2_N); created once,
 * thread-safe; NULL on failure (allocation, or VEIL_KERNELS names no usable variant). */
const veil_fft_plan *veil_fft_plan_get(uint32_t log2_N);

/* A plan of one's own (the kernel choice uses one before any kernel may be asked for): the caller
 * frees it with veil_free. NULL on failure. */
veil_fft_plan *veil_fft_plan_new_uncached(uint32_t log2_N);

/* Forward transforms into `out` (N doubles, 64-byte aligned): in holds N signed integers (digits,
 * or torus values read as signed). */
void veil_fft_forward_i64(const veil_fft_plan *p, const int64_t *in, double *out);
void veil_fft_forward_u64(const veil_fft_plan *p, const uint64_t *in, double *out); /* torus as signed */
/* Inverse of buf (destroyed); rounds each coefficient and adds it to out mod 2^64. */
void veil_fft_backward_add_u64(const veil_fft_plan *p, double *buf, uint64_t *out);
/* Inverse of buf (destroyed) into N doubles, unrounded. */
void veil_fft_backward_f64(const veil_fft_plan *p, double *buf, double *out);
/* acc += a ⊙ b over the M complex points of one Fourier polynomial. */
void veil_fft_mac(double *acc, const double *a, const double *b, uint32_t half);

/* Exact negacyclic product out = a · s mod (X^N+1, 2^64) for a binary (0/1) polynomial s given in
 * the Fourier domain (s_f, from veil_fft_forward_u64). Splits a into four 16-bit limbs so that
 * every limb product stays below 2^31 and rounds exactly. tmp: 2N doubles scratch (64-aligned). */
void veil_poly_mul_binary_exact(const veil_fft_plan *p, const uint64_t *a, const double *s_f, uint64_t *out,
                                double *tmp);

#endif
