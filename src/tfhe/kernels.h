/* The hot primitives of the PBS and key switching, each in several variants, in one table
 * (kernels.c): portable (plain C, the oracle of the differential tests), avx2 (AVX2+FMA
 * intrinsics) and avx512 (AVX-512 F/DQ/VL intrinsics). The choice is made once per process and per
 * primitive: the first variant of that primitive's ranking (kernels.c; measured with
 * `veil bench kernels`) that the CPU can run, unless a short calibration at the choice finds another
 * SIMD variant at least 10% faster on this CPU. VEIL_KERNELS=portable|avx2|avx512 names one variant
 * for every primitive (no calibration); an unknown name, or one the CPU cannot run, makes
 * veil_kernels_get() return NULL (plans, scratch and keys then refuse to be made; the reason is
 * veil_kernels_check()'s). */
#ifndef VEIL_TFHE_KERNELS_H
#define VEIL_TFHE_KERNELS_H

#include <stdint.h>

#include "fft.h"

/* The primitives, as `veil bench pbs` and `veil bench kernels` name them. The twist, untwist and
 * int64↔double conversions are fused into the FFT's passes, so they are part of VEIL_PRIM_FFT. */
typedef enum {
    VEIL_PRIM_FFT,       /* fft_fwd, fft_fwd_dec, fft_bwd_add, fft_inv, round_add */
    VEIL_PRIM_DECOMPOSE, /* decompose (standalone; the PBS uses the one fused into fft_fwd_dec) */
    VEIL_PRIM_MAC,       /* fft_mac, ext_mac */
    VEIL_PRIM_ROTATE,    /* rotate_sub */
    VEIL_PRIM_KEYSWITCH, /* keyswitch, keyswitch_batch */
    VEIL_PRIM_COUNT
} veil_prim;

typedef struct veil_kernels {
    const char *name;                     /* the variant, or "auto" for the per-primitive choice */
    const char *variant[VEIL_PRIM_COUNT]; /* the variant that serves each primitive */
    /* Fold, twist, forward FFT (fft.h's layout): in holds N signed integers, out N doubles. */
    void (*fft_fwd)(const veil_fft_plan *p, const int64_t *in, double *out);
    /* Gadget decomposition (as `decompose`) fused into the forward transform: the ℓ digit
     * polynomials of in, transformed, into out + level·N; the same doubles as decompose then
     * fft_fwd of each level. */
    void (*fft_fwd_dec)(const veil_fft_plan *p, const uint64_t *in, uint32_t beta, uint32_t ell, double *out);
    /* Inverse FFT of buf (destroyed), untwist, round, reduce mod 2^64 and add into out (N words). */
    void (*fft_bwd_add)(const veil_fft_plan *p, double *buf, uint64_t *out);
    /* Inverse FFT in place, unnormalized, not untwisted (natural order out). */
    void (*fft_inv)(const veil_fft_plan *p, double *buf);
    /* out[j] += round(x[j]) mod 2^64 for j < n (n a multiple of 8): the conversion fft_bwd_add
     * fuses into its last pass, bit for bit the same in every variant (ties to even) */
    void (*round_add)(const double *x, uint64_t *out, uint32_t n);
    /* Signed gadget decomposition with rounding of N words into ℓ digit polynomials
     * (out[j·N + t], level j = 0 weighs 2^(64-β)); digits as veil_digits. */
    void (*decompose)(const uint64_t *in, uint32_t N, uint32_t beta, uint32_t ell, int64_t *out);
    /* out[o] = Σ_r dec[r] ⊙ key[r·k1 + o] for o < k1 (Fourier polynomials of `half` complex points,
     * 2·half doubles each, split layout): the Fourier-domain part of an external product, each
     * output written once */
    void (*ext_mac)(double *out, const double *dec, const double *key, uint32_t rows, uint32_t k1, uint32_t half);
    /* out = X^t · in - in mod X^N+1, t in [0, 2N): the CMUX difference of the blind rotation */
    void (*rotate_sub)(const uint64_t *in, uint64_t *out, uint32_t N, uint32_t t);
    /* acc += a ⊙ b over `half` complex points (split layout) */
    void (*fft_mac)(double *acc, const double *a, const double *b, uint32_t half);
    /* LWE key switch with ksk[big][ell][n+1] of the input times 2^in_shift (in_shift < 64, read
     * where the input lies): out (n+1 words) = (0, b') - Σ digits(a'_i) · rows */
    void (*keyswitch)(const uint64_t *ksk, const uint64_t *in, unsigned in_shift, uint64_t *out, uint32_t big,
                      uint32_t n, uint32_t beta, uint32_t ell);
    /* the same for `count` ciphertexts in[g] → out[g], each key row read once for all of them */
    void (*keyswitch_batch)(const uint64_t *ksk, const uint64_t *const *in, unsigned in_shift, uint64_t *const *out,
                            uint32_t count, uint32_t big, uint32_t n, uint32_t beta, uint32_t ell);
} veil_kernels;

/* The signed gadget decomposition of one word, the scalar reference of every variant: round x to
 * its top β·ℓ bits, then ℓ digits in [-B/2, B/2], dig[0] the most significant (weight 2^(64-β)).
 * A digit of exactly B/2 is kept or carried (becoming -B/2) by a tie bit of the discarded part:
 * level j reads bit veil_tie_shift + j of x (none when β·ℓ + ℓ > 63). Always carrying (digits in
 * [-B/2, B/2), mean -1/2) would give every key-switching and bootstrapping key a fixed bias
 * -E[d]·Σ e_ij — one draw per key set, up to a third of the key's noise deviation; the tie bits,
 * uniform and apart from the kept bits, make each digit's mean 0 and leave E[d²] = (B²+2)/12.
 * Parameters keep β·ℓ ≤ 63. */
static inline int veil_tie_shift(uint32_t beta, uint32_t ell) { return 63 - (int)(beta * ell) - (int)ell; }

static inline void veil_digits(uint64_t x, uint32_t beta, uint32_t ell, int64_t *dig)
{
    const uint64_t mask = (1ull << beta) - 1, half1 = (1ull << (beta - 1)) - 1;
    const int ts = veil_tie_shift(beta, ell);
    const uint64_t ties = ts >= 0 ? x >> ts : 0;
    uint64_t st = ((x >> (64 - beta * ell - 1)) + 1) >> 1;
    for (uint32_t j = ell; j-- > 0;) {
        uint64_t d = st & mask;
        st >>= beta;
        uint64_t carry = (d + half1 + ((ties >> j) & 1)) >> beta; /* d > B/2, or d = B/2 and the tie bit */
        st += carry;
        dig[j] = (int64_t)d - (int64_t)(carry << beta);
    }
}

/* The chosen table (one per process), or NULL when VEIL_KERNELS is invalid here. */
const veil_kernels *veil_kernels_get(void);
/* Every compiled variant this CPU can run, the portable one first; NULL-terminated. */
const veil_kernels *const *veil_kernels_all(void);
const char *veil_prim_name(veil_prim p);

extern const veil_kernels veil_kernels_portable;
extern const veil_kernels veil_kernels_avx2;
extern const veil_kernels veil_kernels_avx512;

#endif
