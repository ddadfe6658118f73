/* Hot primitives behind a function-pointer table chosen once from CPUID (libsodium's
 * pick-best-implementation idea). Variants: portable (the oracle), avx2 (+FMA) and avx512; VEIL_KERNELS
 * forces one. The variants share one source (kernels_impl.inc) compiled with different ISA flags. */
#ifndef VEIL_TFHE_KERNELS_H
#define VEIL_TFHE_KERNELS_H

#include <stdint.h>

typedef struct veil_kernels {
    const char *name;
    /* Signed gadget decomposition with rounding of N words into ℓ digit polynomials
     * (out[j·N + t], level j = 0 weighs 2^(64-β)); digits in [-B/2, B/2). */
    void (*decompose)(const uint64_t *in, uint32_t N, uint32_t beta, uint32_t ell, int64_t *out);
    /* Fold, twist: out[j] = (in[j] + i·in[j+half]) · tw[j] (interleaved complex); in is int64 */
    void (*twist_i64)(const int64_t *in, const double *tw, double *out, uint32_t half);
    /* Untwist, round, reduce mod 2^64 and add: out[j] += re(buf[j]·u[j]), out[j+half] += im(...) */
    void (*untwist_add_u64)(const double *buf, const double *u, uint64_t *out, uint32_t half);
    /* out[o] = Σ_r dec[r] ⊙ key[r·k1 + o] for o < k1 (polynomials of `half` complex points, stride
     * 2·half doubles): the Fourier-domain part of an external product, each output written once */
    void (*ext_mac)(double *out, const double *dec, const double *key, uint32_t rows, uint32_t k1, uint32_t half);
    /* out = X^t · in - in mod X^N+1, t in [0, 2N): the CMUX difference of the blind rotation */
    void (*rotate_sub)(const uint64_t *in, uint64_t *out, uint32_t N, uint32_t t);
    /* acc += a ⊙ b over `half` interleaved complex points */
    void (*fft_mac)(double *acc, const double *a, const double *b, uint32_t half);
    /* LWE key switch with ksk[big][ell][n+1]: out (n+1 words) = (0, b) - Σ digits · rows */
    void (*keyswitch)(const uint64_t *ksk, const uint64_t *in, uint64_t *out, uint32_t big, uint32_t n,
                      uint32_t beta, uint32_t ell);
} veil_kernels;

const veil_kernels *veil_kernels_get(void);
/* Every compiled variant usable on this CPU, the portable one first; NULL-terminated. */
const veil_kernels *const *veil_kernels_all(void);

extern const veil_kernels veil_kernels_portable;
extern const veil_kernels veil_kernels_avx2;
extern const veil_kernels veil_kernels_avx512;

#endif
