/* Evaluation keys without the secret key: layout, decompression from seed + bodies, the Fourier
 * conversion, freeing. Everything here links into the server (no secret-key code). */
#include <string.h>

#include "../core/container.h"
#include "tfhe_internal.h"

void veil_derive_seed(const uint8_t seed[VEIL_SEED_BYTES], const char *label, uint8_t out[VEIL_SEED_BYTES])
{
    uint8_t buf[VEIL_SEED_BYTES + 32];
    size_t ll = strlen(label);
    if (ll > 32) ll = 32;
    memcpy(buf, seed, VEIL_SEED_BYTES);
    memcpy(buf + VEIL_SEED_BYTES, label, ll);
    uint8_t h[32];
    veil_sha256(buf, VEIL_SEED_BYTES + ll, h);
    memcpy(out, h, VEIL_SEED_BYTES);
    veil_memzero(h, sizeof h);
    veil_memzero(buf, sizeof buf);
}

veil_status veil_lwe_expand_seeded(uint32_t dim, const uint8_t seed[VEIL_SEED_BYTES], const uint64_t *bodies,
                                   size_t count, uint64_t *cts)
{
    if (!seed || (!bodies && count) || (!cts && count)) return VEIL_ERR_INVALID_ARG;
    veil_rng *mask = NULL;
    veil_status s = veil_rng_new_seeded(&mask, seed);
    if (s != VEIL_OK) return s;
    for (size_t i = 0; i < count; i++) {
        uint64_t *ct = cts + i * ((size_t)dim + 1);
        veil_rng_u64s(mask, ct, dim);
        ct[dim] = bodies[i];
    }
    veil_rng_free(mask);
    return VEIL_OK;
}

/* ---- evaluation keys ----------------------------------------------------------------------------- */

void veil_eval_keys_free(veil_eval_keys *ek)
{
    while (ek) {
        veil_eval_keys *next = ek->next;
        veil_free(ek->bsk_bodies);
        veil_free(ek->bsk_f);
        veil_free(ek->ksk);
        veil_free(ek);
        ek = next;
    }
}

const veil_params *veil_eval_keys_params(const veil_eval_keys *ek)
{
    return ek->is_head && ek->next ? &ek->shared : &ek->p;
}

size_t veil_eval_keys_count(const veil_eval_keys *ek)
{
    size_t n = 0;
    for (; ek; ek = ek->next) n++;
    return n;
}

const veil_eval_keys *veil_eval_keys_part(const veil_eval_keys *ek, size_t j)
{
    for (; ek && j; j--) ek = ek->next;
    return ek;
}

const veil_params *veil_eval_keys_part_params(const veil_eval_keys *ek, size_t j)
{
    const veil_eval_keys *e = veil_eval_keys_part(ek, j);
    return e ? &e->p : NULL;
}

veil_status veil_eval_keys_append(veil_eval_keys *ek, veil_eval_keys *next)
{
    if (!ek || !next || veil_eval_keys_count(ek) + veil_eval_keys_count(next) > VEIL_MAX_PARTS) {
        veil_eval_keys_free(next);
        return VEIL_ERR_INVALID_ARG;
    }
    veil_params ps[VEIL_MAX_PARTS];
    size_t n = 0;
    veil_eval_keys *last = ek;
    for (veil_eval_keys *e = ek; e; e = e->next) ps[n++] = e->p, last = e;
    for (veil_eval_keys *e = next; e; e = e->next) ps[n++] = e->p;
    veil_status s = veil_params_shared(ps, n, &ek->shared);
    if (s != VEIL_OK) {
        veil_eval_keys_free(next);
        return s;
    }
    last->next = next;
    ek->is_head = 1;
    next->is_head = 0;
    return VEIL_OK;
}

uint64_t veil_eval_keys_id(const veil_eval_keys *ek) { return ek ? ek->id : 0; }

void veil_eval_keys_compact(veil_eval_keys *ek)
{
    for (; ek; ek = ek->next) {
        veil_free(ek->bsk_bodies);
        ek->bsk_bodies = NULL;
    }
}

veil_status veil_eval_keys_from_fourier(const veil_params *p, double *bsk_f, uint64_t *ksk, veil_eval_keys **out)
{
    *out = NULL;
    veil_status st = veil_kernels_check(NULL) == VEIL_OK ? VEIL_OK : VEIL_ERR_UNSUPPORTED;
    veil_eval_keys *ek = st == VEIL_OK ? veil_calloc(1, sizeof *ek) : NULL;
    if (!ek) {
        veil_free(bsk_f);
        veil_free(ksk);
        return st == VEIL_OK ? VEIL_ERR_NOMEM : st;
    }
    static uint64_t next_id;
    ek->p = *p;
    ek->bsk_f = bsk_f;
    ek->ksk = ksk;
    ek->id = __atomic_add_fetch(&next_id, 1, __ATOMIC_RELAXED);
    *out = ek;
    return VEIL_OK;
}

veil_status veil_eval_keys_from_parts(const veil_params *p, uint64_t *bsk, uint64_t *ksk, int keep_bodies,
                                      veil_eval_keys **out)
{
    *out = NULL;
    const veil_fft_plan *plan = veil_fft_plan_get(p->log2_N);
    veil_key_sizes sz = veil_params_key_sizes(p);
    const size_t N = veil_params_N(p), k1 = p->k + 1, polys = sz.bsk_bytes / 8 / N, ggsw_rows = polys / k1;
    double *bsk_f = plan ? veil_malloc(sz.bsk_fourier_bytes) : NULL;
    uint64_t *bodies = keep_bodies && bsk_f ? veil_malloc(8 * ggsw_rows * N) : NULL;
    veil_status st = !plan && veil_kernels_check(NULL) != VEIL_OK ? VEIL_ERR_UNSUPPORTED : VEIL_ERR_NOMEM;
    if (!bsk_f || (keep_bodies && !bodies)) {
        veil_free(bsk);
        veil_free(bsk_f);
        veil_free(ksk);
        return st;
    }
    for (size_t i = 0; i < polys; i++) veil_fft_forward_u64(plan, bsk + i * N, bsk_f + i * N);
    if (keep_bodies) /* row g's body is its last polynomial */
        for (size_t g = 0; g < ggsw_rows; g++) memcpy(bodies + g * N, bsk + (g * k1 + k1 - 1) * N, 8 * N);
    veil_free(bsk);
    if ((st = veil_eval_keys_from_fourier(p, bsk_f, ksk, out)) == VEIL_OK) (*out)->bsk_bodies = bodies;
    else veil_free(bodies);
    return st;
}

/* Shared by generation (src/tfhe/keys.c) and decompression: masks from the seed's streams, in
 * the order generation draws them; bodies from the callbacks. */
veil_status veil_eval_keys_build(const veil_params *p, const uint8_t seed[VEIL_SEED_BYTES], const veil_key_bodies *kb,
                                 veil_eval_keys **out)
{
    *out = NULL;
    veil_status s = VEIL_OK;
    const uint32_t N = veil_params_N(p), k = p->k, n = p->n, lk = p->ks_levels;
    const uint32_t big = veil_params_ks_dim(p), rows = (k + 1) * p->pbs_levels;
    veil_key_sizes sz = veil_params_key_sizes(p);
    uint64_t *bsk = veil_malloc(sz.bsk_bytes), *ksk = veil_malloc(sz.ksk_bytes);
    veil_rng *bsk_rng = NULL, *ksk_rng = NULL;
    uint8_t sub[VEIL_SEED_BYTES];
    if (!bsk || !ksk) {
        s = VEIL_ERR_NOMEM;
        goto cleanup;
    }
    veil_derive_seed(seed, "veil-bsk", sub);
    if ((s = veil_rng_new_seeded(&bsk_rng, sub)) != VEIL_OK) goto cleanup;
    veil_derive_seed(seed, "veil-ksk", sub);
    if ((s = veil_rng_new_seeded(&ksk_rng, sub)) != VEIL_OK) goto cleanup;
    /* BSK: GGSW(s_i) for each small-key bit; KSK: row (i, j) = LWE_small(s'_i · 2^(64-β(j+1))) */
    for (uint32_t i = 0; i < n; i++) kb->ggsw(kb->ctx, i, bsk_rng, bsk + (size_t)i * rows * (k + 1) * N);
    for (uint32_t i = 0; i < big; i++)
        for (uint32_t j = 0; j < lk; j++) kb->ksk_row(kb->ctx, i, j, ksk_rng, ksk + ((size_t)i * lk + j) * (n + 1));
    s = veil_eval_keys_from_parts(p, bsk, ksk, 1, out);
    bsk = NULL;
    ksk = NULL;
    if (s == VEIL_OK) {
        (*out)->has_seed = 1;
        memcpy((*out)->mask_seed, seed, VEIL_SEED_BYTES);
    }
cleanup:
    veil_memzero(sub, sizeof sub);
    veil_rng_free(bsk_rng);
    veil_rng_free(ksk_rng);
    veil_free(bsk);
    veil_free(ksk);
    return s;
}

/* ---- decompression: the bodies as received ---------------------------------------------------- */
typedef struct {
    const veil_params *p;
    const uint64_t *bsk_bodies, *ksk_bodies;
} given_bodies;

static void given_ggsw(void *vctx, uint32_t i, veil_rng *mask, uint64_t *ggsw)
{
    const given_bodies *g = vctx;
    const size_t N = veil_params_N(g->p), k = g->p->k, rows = (k + 1) * g->p->pbs_levels;
    for (size_t r = 0; r < rows; r++) {
        uint64_t *row = ggsw + r * (k + 1) * N;
        veil_rng_u64s(mask, row, k * N);
        memcpy(row + k * N, g->bsk_bodies + ((size_t)i * rows + r) * N, sizeof(uint64_t) * N);
    }
}

static void given_ksk_row(void *vctx, uint32_t i, uint32_t j, veil_rng *mask, uint64_t *row)
{
    const given_bodies *g = vctx;
    veil_rng_u64s(mask, row, g->p->n);
    row[g->p->n] = g->ksk_bodies[(size_t)i * g->p->ks_levels + j];
}

veil_status veil_eval_keys_expand(const veil_params *p, const uint8_t seed[VEIL_SEED_BYTES],
                                  const uint64_t *bsk_bodies, const uint64_t *ksk_bodies, veil_eval_keys **out)
{
    given_bodies g = {p, bsk_bodies, ksk_bodies};
    veil_key_bodies kb = {given_ggsw, given_ksk_row, &g};
    return veil_eval_keys_build(p, seed, &kb, out);
}
