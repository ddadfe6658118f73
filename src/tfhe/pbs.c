/* Key switching and programmable bootstrapping (Chillotti, Gama, Georgieva, Izabachène, "TFHE:
 * Fast Fully Homomorphic Encryption over the Torus", J. Cryptology 2020, Alg. 1–3 and §4 (PBS
 * with a test polynomial); the half-box rotated redundant test polynomial follows Chillotti,
 * Joye, Paillier, "Programmable bootstrapping enables efficient homomorphic inference of deep
 * neural networks", CSCML 2021, §3). */
#include <string.h>

#include "kernels.h"
#include "tfhe_internal.h"

veil_status veil_lut_new_torus(const veil_params *p, unsigned p_in, const uint64_t *values, veil_lut **out)
{
    if (!p || !values || !out) return VEIL_ERR_INVALID_ARG;
    *out = NULL;
    if (veil_params_check(p) != VEIL_OK || p_in < 1 || p_in + 1 > p->log2_N) return VEIL_ERR_INVALID_ARG;
    const uint32_t N = veil_params_N(p), box = N >> p_in;
    veil_lut *l = veil_calloc(1, sizeof *l);
    if (!l || !(l->poly = veil_malloc(sizeof(uint64_t) * N))) {
        veil_free(l);
        return VEIL_ERR_NOMEM;
    }
    l->p = *p;
    /* Message m sits at rotation m·box ± box/2. Coefficient t answers rotations near t: the box of
     * m = round(t / box); the last half box belongs to m = 0 seen through the negacyclic wrap, so
     * it holds -f(0). */
    for (uint32_t t = 0; t < N; t++) {
        uint32_t m = (t + box / 2) / box;
        l->poly[t] = (m < (1u << p_in)) ? values[m] : (uint64_t)0 - values[0];
    }
    *out = l;
    return VEIL_OK;
}

veil_status veil_lut_new(const veil_params *p, unsigned p_in, const uint64_t *table, unsigned p_out, veil_lut **out)
{
    if (!p || !table || !out || p_in < 1 || p_in > 24 || p_out < 1 || p_out > 62) return VEIL_ERR_INVALID_ARG;
    size_t n = (size_t)1 << p_in;
    uint64_t *vals = veil_malloc(sizeof(uint64_t) * n);
    if (!vals) return VEIL_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) vals[i] = veil_encode(table[i], p_out);
    veil_status s = veil_lut_new_torus(p, p_in, vals, out);
    veil_free(vals);
    return s;
}

void veil_lut_free(veil_lut *l)
{
    if (!l) return;
    veil_free(l->poly);
    veil_free(l);
}

void veil_pbs_scratch_free(veil_pbs_scratch *s)
{
    if (!s) return;
    veil_free(s->acc);
    veil_free(s->diff);
    veil_free(s->digits);
    veil_free(s->dec_f);
    veil_free(s->out_f);
    veil_free(s->small);
    veil_free(s);
}

veil_status veil_pbs_scratch_new(const veil_params *p, veil_pbs_scratch **out)
{
    if (!p || !out) return VEIL_ERR_INVALID_ARG;
    *out = NULL;
    if (veil_params_check(p) != VEIL_OK) return VEIL_ERR_INVALID_ARG;
    veil_pbs_scratch *s = veil_calloc(1, sizeof *s);
    if (!s) return VEIL_ERR_NOMEM;
    size_t N = veil_params_N(p), k1 = p->k + 1, rows = k1 * p->pbs_levels;
    s->p = *p;
    s->plan = veil_fft_plan_get(p->log2_N);
    s->acc = veil_malloc(8 * k1 * N);
    s->diff = veil_malloc(8 * k1 * N);
    s->digits = veil_malloc(8 * N * p->pbs_levels);
    s->dec_f = veil_malloc(8 * rows * N);
    s->out_f = veil_malloc(8 * k1 * N);
    s->small = veil_malloc(8 * ((size_t)p->n + 1));
    if (!s->plan || !s->acc || !s->diff || !s->digits || !s->dec_f || !s->out_f || !s->small) {
        veil_pbs_scratch_free(s);
        return VEIL_ERR_NOMEM;
    }
    *out = s;
    return VEIL_OK;
}

/* out = X^t · in mod X^N+1, t in [0, 2N) */
static void rotate(const uint64_t *in, uint64_t *out, uint32_t N, uint32_t t)
{
    uint64_t neg = 0;
    if (t >= N) {
        t -= N;
        neg = ~0ull;
    }
    /* out[j] = in[j-t] for j ≥ t, -in[j-t+N] below; `neg` flips every sign once more */
    for (uint32_t j = 0; j < t; j++) out[j] = ((0 - in[j + N - t]) ^ neg) - neg;
    for (uint32_t j = t; j < N; j++) out[j] = (in[j - t] ^ neg) - neg;
}

static inline uint32_t mod_switch(uint64_t a, uint32_t log2_N)
{
    unsigned shift = 63 - log2_N; /* 2^64 → 2N = 2^(log2_N+1) */
    return (uint32_t)((((a >> (shift - 1)) + 1) >> 1) & ((2ull << log2_N) - 1));
}

/* out += GGSW ⊡ in: decompose the k+1 polynomials of `in`, multiply the digit polynomials with the
 * GGSW rows in the Fourier domain, one inverse FFT per output polynomial. */
static void ext_product_add(const veil_params *p, const double *ggsw_f, const uint64_t *in, uint64_t *out,
                            veil_pbs_scratch *s)
{
    const uint32_t N = veil_params_N(p), k1 = p->k + 1, l = p->pbs_levels, rows = k1 * l, h = N / 2;
    const veil_fft_plan *plan = s->plan;
    const veil_kernels *kern = veil_kernels_get();
    for (uint32_t c = 0; c < k1; c++) {
        kern->decompose(in + (size_t)c * N, N, p->pbs_base_log, l, s->digits);
        for (uint32_t j = 0; j < l; j++)
            veil_fft_forward_i64(plan, s->digits + (size_t)j * N, s->dec_f + ((size_t)c * l + j) * N);
    }
    kern->ext_mac(s->out_f, s->dec_f, ggsw_f, rows, k1, h);
    for (uint32_t o = 0; o < k1; o++) veil_fft_backward_add_u64(plan, s->out_f + (size_t)o * N, out + (size_t)o * N);
}

static veil_status ggsw_to_fourier(const veil_params *p, const uint64_t *ggsw, double **out)
{
    const size_t N = veil_params_N(p), polys = (size_t)(p->k + 1) * (p->k + 1) * p->pbs_levels;
    const veil_fft_plan *plan = veil_fft_plan_get(p->log2_N);
    *out = veil_malloc(sizeof(double) * polys * N);
    if (!*out || !plan) {
        veil_free(*out);
        return VEIL_ERR_NOMEM;
    }
    for (size_t i = 0; i < polys; i++) veil_fft_forward_u64(plan, ggsw + i * N, *out + i * N);
    return VEIL_OK;
}

veil_status veil_external_product(const veil_params *p, const uint64_t *ggsw, const uint64_t *glwe, uint64_t *out)
{
    if (!p || !ggsw || !glwe || !out) return VEIL_ERR_INVALID_ARG;
    veil_pbs_scratch *s = NULL;
    double *gf = NULL;
    veil_status st = veil_pbs_scratch_new(p, &s);
    if (st == VEIL_OK) st = ggsw_to_fourier(p, ggsw, &gf);
    if (st == VEIL_OK) {
        memset(out, 0, sizeof(uint64_t) * (p->k + 1) * veil_params_N(p));
        ext_product_add(p, gf, glwe, out, s);
    }
    veil_free(gf);
    veil_pbs_scratch_free(s);
    return st;
}

veil_status veil_cmux(const veil_params *p, const uint64_t *ggsw, const uint64_t *ct0, const uint64_t *ct1,
                      uint64_t *out)
{
    if (!p || !ggsw || !ct0 || !ct1 || !out) return VEIL_ERR_INVALID_ARG;
    const size_t words = (size_t)(p->k + 1) * veil_params_N(p);
    uint64_t *diff = veil_malloc(sizeof(uint64_t) * words);
    if (!diff) return VEIL_ERR_NOMEM;
    for (size_t i = 0; i < words; i++) diff[i] = ct1[i] - ct0[i];
    veil_status st = veil_external_product(p, ggsw, diff, out);
    if (st == VEIL_OK)
        for (size_t i = 0; i < words; i++) out[i] += ct0[i];
    veil_free(diff);
    return st;
}

void veil_pbs(const veil_eval_keys *ek, const veil_lut *lut, const uint64_t *ct, uint64_t *res, veil_pbs_scratch *s)
{
    const veil_params *p = &ek->p;
    const uint32_t N = veil_params_N(p), k = p->k, n = p->n, l = p->pbs_levels;
    const uint32_t k1 = k + 1, rows = k1 * l;
    const veil_kernels *kern = veil_kernels_get();
    uint64_t *acc = s->acc, *diff = s->diff;

    memset(acc, 0, 8 * (size_t)k * N);
    uint32_t b = mod_switch(ct[n], p->log2_N);
    rotate(lut->poly, acc + (size_t)k * N, N, (2 * N - b) & (2 * N - 1));

    const size_t key_stride = (size_t)rows * k1 * N; /* doubles per GGSW in the Fourier domain */
    for (uint32_t i = 0; i < n; i++) {
        uint32_t a = mod_switch(ct[i], p->log2_N);
        if (a == 0) continue; /* X^0·ACC - ACC = 0: the CMUX leaves ACC unchanged */
        /* CMUX(BSK_i, ACC, X^a·ACC) = ACC + BSK_i ⊡ (X^a·ACC - ACC) */
        for (uint32_t c = 0; c < k1; c++) kern->rotate_sub(acc + (size_t)c * N, diff + (size_t)c * N, N, a);
        ext_product_add(p, ek->bsk_f + i * key_stride, diff, acc, s);
    }
    /* sample extraction of coefficient 0 */
    for (uint32_t c = 0; c < k; c++) {
        const uint64_t *m = acc + (size_t)c * N;
        uint64_t *o = res + (size_t)c * N;
        o[0] = m[0];
        for (uint32_t j = 1; j < N; j++) o[j] = 0 - m[N - j];
    }
    res[(size_t)k * N] = acc[(size_t)k * N];
}

void veil_keyswitch(const veil_eval_keys *ek, const uint64_t *in, uint64_t *out)
{
    const veil_params *p = &ek->p;
    const uint32_t big = veil_params_big_lwe_dim(p), n = p->n;
    veil_kernels_get()->keyswitch(ek->ksk, in, out, big, n, p->ks_base_log, p->ks_levels);
}

void veil_ks_pbs(const veil_eval_keys *ek, const veil_lut *lut, const uint64_t *in, uint64_t *out, veil_pbs_scratch *s)
{
    veil_keyswitch(ek, in, s->small);
    veil_pbs(ek, lut, s->small, out, s);
}

typedef struct {
    const veil_eval_keys *ek;
    const veil_lut *lut;
    const uint64_t *in;
    uint64_t *out;
    size_t stride;
    veil_pbs_scratch **scratch;
} batch_ctx;

static void batch_one(void *vctx, size_t i, unsigned thread)
{
    batch_ctx *c = vctx;
    veil_ks_pbs(c->ek, c->lut, c->in + i * c->stride, c->out + i * c->stride, c->scratch[thread]);
}

veil_status veil_ks_pbs_batch(const veil_eval_keys *ek, const veil_lut *lut, const uint64_t *in, uint64_t *out,
                              size_t count, unsigned threads)
{
    if (!ek || !lut || (!in && count) || (!out && count)) return VEIL_ERR_INVALID_ARG;
    if (threads == 0) threads = veil_cpu_count();
    if (threads > 256) threads = 256;
    veil_pbs_scratch *scr[256] = {0};
    veil_status s = VEIL_OK;
    for (unsigned t = 0; t < threads && s == VEIL_OK; t++) s = veil_pbs_scratch_new(&ek->p, &scr[t]);
    if (s == VEIL_OK) {
        batch_ctx ctx = {ek, lut, in, out, (size_t)veil_params_big_lwe_dim(&ek->p) + 1, scr};
        veil_parallel_for(count, threads, batch_one, &ctx);
    }
    for (unsigned t = 0; t < threads; t++) veil_pbs_scratch_free(scr[t]);
    return s;
}
