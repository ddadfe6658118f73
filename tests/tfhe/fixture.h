/* Shared set-up of the TFHE tests: keys, scratch and ciphertext buffers for one named set. */
#ifndef VEIL_TESTS_TFHE_FIXTURE_H
#define VEIL_TESTS_TFHE_FIXTURE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "veil/tfhe.h"

typedef struct {
    veil_params p;
    veil_secret_key *sk;
    veil_eval_keys *ek;
    veil_pbs_scratch *scr;
    uint64_t *ct, *res; /* big-key ciphertexts (k·N + 1 words) */
    uint64_t *small;    /* small-key ciphertext (n + 1 words) */
} tfhe_fixture;

/* Tests that a ctest runs once per kernel variant (VEIL_KERNELS=portable|avx2|avx512): a variant
 * this CPU cannot run is reported as skipped (ctest's SKIP_RETURN_CODE 77), never as passed; an
 * unknown name fails. */
static inline void fixture_kernels_or_skip(void)
{
    const char *msg;
    if (veil_kernels_check(&msg) == VEIL_OK) {
        printf("kernels: %s\n", veil_kernels_describe());
        return;
    }
    const char *v = getenv("VEIL_KERNELS");
    if (v && (strcmp(v, "portable") == 0 || strcmp(v, "avx2") == 0 || strcmp(v, "avx512") == 0)) {
        printf("SKIPPED: %s\n", msg);
        exit(77);
    }
    fprintf(stderr, "%s\n", msg);
    exit(1);
}

/* A randomized test's stream with its seed printed (check_seeded_rng). */
static inline void fixture_seeded_rng(veil_rng **rng) { check_seeded_rng(rng); }

static inline void fixture_new(tfhe_fixture *f, const char *name, veil_rng *rng)
{
    CHECK_OK(veil_params_named(name, &f->p));
    CHECK_OK(veil_secret_key_new(&f->p, rng, &f->sk));
    CHECK_OK(veil_eval_keys_new(f->sk, rng, &f->ek));
    CHECK_OK(veil_pbs_scratch_new(&f->p, &f->scr));
    const size_t big = veil_params_big_lwe_dim(&f->p);
    f->ct = malloc(8 * (big + 1));
    f->res = malloc(8 * (big + 1));
    f->small = malloc(8 * ((size_t)f->p.n + 1));
    if (!f->ct || !f->res || !f->small) exit(1);
}

static inline void fixture_free(tfhe_fixture *f)
{
    free(f->ct);
    free(f->res);
    free(f->small);
    veil_pbs_scratch_free(f->scr);
    veil_eval_keys_free(f->ek);
    veil_secret_key_free(f->sk);
}

#endif
