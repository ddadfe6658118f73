/* Internal layouts of the TFHE objects. Internal to libveil (and its tests). */
#ifndef VEIL_TFHE_INTERNAL_H
#define VEIL_TFHE_INTERNAL_H

#include "fft.h"
#include "veil/tfhe.h"

struct veil_secret_key {
    veil_params p;
    uint64_t *lwe;   /* n words, each 0 or 1 */
    uint64_t *glwe;  /* k·N words, each 0 or 1: polynomial c is glwe[c·N .. (c+1)·N) */
    double *glwe_f;  /* k Fourier polynomials (N doubles each), for exact products */
};

/* Bootstrapping key: for each of the n small-key bits, a GGSW = (k+1)·ℓ GLWE rows of (k+1)
 * polynomials. Row r = c·ℓ + j encrypts s_i·2^(64-β(j+1)) added to component c. In memory only its
 * Fourier form is kept (the standard-domain key lives only while it is converted):
 *   bsk_f      [n][(k+1)ℓ][(k+1)][N] doubles: Fourier polynomials (fft.h's split layout)
 *   bsk_bodies [n][(k+1)ℓ][N] uint64: the standard-domain bodies, kept only by seeded keys that may
 *              still be written compressed (seed + bodies); NULL after veil_eval_keys_compact
 * Key-switching key: ksk[ks_dim][ℓ_ks][n+1] (ks_dim = veil_params_ks_dim, k·N by default), row (i, j) encrypts s'_i·2^(64-β(j+1)) under the small key. */
struct veil_eval_keys {
    veil_params p;
    double *bsk_f;
    uint64_t *bsk_bodies;
    uint64_t *ksk;
    int has_seed;
    uint8_t mask_seed[VEIL_SEED_BYTES];
    struct veil_eval_keys *next; /* the next parameter set's keys (veil_eval_keys_append) */
    veil_params shared;          /* the first of several (is_head): veil_params_shared of all */
    int is_head;
    uint64_t id; /* veil_eval_keys_id: process-unique, never reused */
};

struct veil_lut {
    veil_params p;
    uint64_t *poly; /* N words: the body of the trivial accumulator */
};

struct veil_mv_factor {
    uint32_t n;     /* nonzero coefficients */
    uint32_t *exp;  /* their exponents, ascending, in [0, N) */
    int64_t *coef;  /* their (integer) values */
    uint64_t body_add; /* κ·Δ, added to each output's body (the table's centring) */
};

struct veil_pbs_scratch {
    veil_params p;
    const veil_fft_plan *plan;
    uint64_t *acc;     /* (k+1)·N */
    uint64_t *diff;    /* (k+1)·N */
    double *dec_f;     /* (k+1)ℓ · N doubles */
    double *out_f;     /* (k+1) · N doubles */
    uint64_t *small;   /* n+1 */
};

/* Sub-seeds of an evaluation-key mask seed: BSK and KSK masks come from independent AES-CTR
 * streams keyed by SHA-256(seed ‖ "veil-bsk") and SHA-256(seed ‖ "veil-ksk") (first 16 bytes). */
void veil_derive_seed(const uint8_t seed[VEIL_SEED_BYTES], const char *label, uint8_t out[VEIL_SEED_BYTES]);

/* One noise sample (integer, units of 2^-64). */
int64_t veil_noise_sample(const veil_noise *z, veil_rng *rng);

/* LWE encryption core: mask words from mask_rng, noise from noise_rng. */
void veil_lwe_encrypt_core(const uint64_t *key, uint32_t dim, uint64_t pt, const veil_noise *z, veil_rng *mask_rng,
                           veil_rng *noise_rng, uint64_t *ct);
/* GLWE encryption core: masks from mask_rng, noise from noise_rng; tmp: 3N doubles/words scratch. */
void veil_glwe_encrypt_core(const veil_secret_key *sk, const uint64_t *pt, veil_rng *mask_rng, veil_rng *noise_rng,
                            uint64_t *ct, double *tmp, uint64_t *prod);
/* GGSW core: rows as in veil_ggsw_encrypt. */
void veil_ggsw_encrypt_core(const veil_secret_key *sk, int64_t m, veil_rng *mask_rng, veil_rng *noise_rng,
                            uint64_t *ct, double *tmp, uint64_t *prod);
const uint64_t *veil_secret_key_bits(const veil_secret_key *sk, veil_key_choice which, uint32_t *dim);

/* Build evaluation keys from the standard-domain arrays (takes ownership of bsk and ksk; bsk is
 * converted to the Fourier domain and freed; its bodies are kept when keep_bodies). */
veil_status veil_eval_keys_from_parts(const veil_params *p, uint64_t *bsk, uint64_t *ksk, int keep_bodies,
                                      veil_eval_keys **out);
/* Build evaluation keys from a Fourier-domain BSK (takes ownership of bsk_f and ksk). */
veil_status veil_eval_keys_from_fourier(const veil_params *p, double *bsk_f, uint64_t *ksk, veil_eval_keys **out);
/* The parts of evaluation keys that depend on the secret key: a GGSW of small-key bit i (its masks
 * drawn from `mask` in row order), and key-switching row (i, j). */
typedef struct {
    void (*ggsw)(void *ctx, uint32_t i, veil_rng *mask, uint64_t *ggsw);
    void (*ksk_row)(void *ctx, uint32_t i, uint32_t j, veil_rng *mask, uint64_t *row);
    void *ctx;
} veil_key_bodies;
/* Evaluation keys whose masks come from `seed` (remembered, so they compress) and bodies from kb. */
veil_status veil_eval_keys_build(const veil_params *p, const uint8_t seed[VEIL_SEED_BYTES], const veil_key_bodies *kb,
                                 veil_eval_keys **out);
/* Regenerate the masks of a compressed key from its seed; bodies are the b-polynomials (BSK,
 * [n][(k+1)ℓ][N]) and b-words (KSK, [kN][ℓ]). */
veil_status veil_eval_keys_expand(const veil_params *p, const uint8_t seed[VEIL_SEED_BYTES],
                                  const uint64_t *bsk_bodies, const uint64_t *ksk_bodies, veil_eval_keys **out);

#endif
