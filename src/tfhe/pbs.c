/* Key switching and programmable bootstrapping (Chillotti, Gama, Georgieva, Izabachène, "TFHE:
 * Fast Fully Homomorphic Encryption over the Torus", J. Cryptology 2020, Alg. 1–3 and §4 (PBS
 * with a test polynomial); the half-box rotated redundant test polynomial follows Chillotti,
 * Joye, Paillier, "Programmable bootstrapping enables efficient homomorphic inference of deep
 * neural networks", CSCML 2021, §3). */
#include <string.h>
#include <unistd.h>

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
    if (veil_kernels_check(NULL) != VEIL_OK) return VEIL_ERR_UNSUPPORTED;
    veil_pbs_scratch *s = veil_calloc(1, sizeof *s);
    if (!s) return VEIL_ERR_NOMEM;
    size_t N = veil_params_N(p), k1 = p->k + 1, rows = k1 * p->pbs_levels;
    s->p = *p;
    s->plan = veil_fft_plan_get(p->log2_N);
    s->acc = veil_malloc(8 * k1 * N);
    s->diff = veil_malloc(8 * k1 * N);
    s->dec_f = veil_malloc(8 * rows * N);
    s->out_f = veil_malloc(8 * k1 * N);
    s->small = veil_malloc(8 * ((size_t)p->n + 1));
    if (!s->plan || !s->acc || !s->diff || !s->dec_f || !s->out_f || !s->small) {
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
    for (uint32_t c = 0; c < k1; c++)
        kern->fft_fwd_dec(plan, in + (size_t)c * N, p->pbs_base_log, l, s->dec_f + (size_t)c * l * N);
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

/* Blind rotation (TFHE Alg. 3) of B ciphertexts at once, then sample extraction. The loop over the
 * bootstrapping key is outside the loop over the batch: each GGSW is read from memory once and
 * applied to the B accumulators while it sits in cache. accs: B·(k+1)·N words. */
static void pbs_group(const veil_eval_keys *ek, const veil_lut *lut, const uint64_t *const *small,
                      uint64_t *const *res, unsigned B, veil_pbs_scratch *s, uint64_t *accs)
{
    const veil_params *p = &ek->p;
    const uint32_t N = veil_params_N(p), k = p->k, n = p->n, l = p->pbs_levels;
    const uint32_t k1 = k + 1, rows = k1 * l;
    const size_t acc_words = (size_t)k1 * N;
    const veil_kernels *kern = veil_kernels_get();
    uint64_t *diff = s->diff;

    for (unsigned b = 0; b < B; b++) {
        uint64_t *acc = accs + b * acc_words;
        memset(acc, 0, 8 * (size_t)k * N);
        uint32_t body = mod_switch(small[b][n], p->log2_N);
        rotate(lut->poly, acc + (size_t)k * N, N, (2 * N - body) & (2 * N - 1));
    }
    const size_t key_stride = (size_t)rows * k1 * N; /* doubles per GGSW in the Fourier domain */
    for (uint32_t i = 0; i < n; i++) {
        const double *ggsw = ek->bsk_f + i * key_stride;
        for (unsigned b = 0; b < B; b++) {
            uint32_t a = mod_switch(small[b][i], p->log2_N);
            if (a == 0) continue; /* X^0·ACC - ACC = 0: the CMUX leaves ACC unchanged */
            uint64_t *acc = accs + b * acc_words;
            /* CMUX(BSK_i, ACC, X^a·ACC) = ACC + BSK_i ⊡ (X^a·ACC - ACC) */
            for (uint32_t c = 0; c < k1; c++) kern->rotate_sub(acc + (size_t)c * N, diff + (size_t)c * N, N, a);
            ext_product_add(p, ggsw, diff, acc, s);
        }
    }
    /* sample extraction of coefficient 0 */
    for (unsigned b = 0; b < B; b++) {
        const uint64_t *acc = accs + b * acc_words;
        for (uint32_t c = 0; c < k; c++) {
            const uint64_t *m = acc + (size_t)c * N;
            uint64_t *o = res[b] + (size_t)c * N;
            o[0] = m[0];
            for (uint32_t j = 1; j < N; j++) o[j] = 0 - m[N - j];
        }
        res[b][(size_t)k * N] = acc[(size_t)k * N];
    }
}

void veil_pbs(const veil_eval_keys *ek, const veil_lut *lut, const uint64_t *ct, uint64_t *res, veil_pbs_scratch *s)
{
    pbs_group(ek, lut, &ct, &res, 1, s, s->acc);
}

void veil_keyswitch(const veil_eval_keys *ek, const uint64_t *in, uint64_t *out)
{
    const veil_params *p = &ek->p;
    veil_kernels_get()->keyswitch(ek->ksk, in, 0, out, veil_params_big_lwe_dim(p), p->n, p->ks_base_log, p->ks_levels);
}

void veil_ks_pbs(const veil_eval_keys *ek, const veil_lut *lut, const uint64_t *in, uint64_t *out, veil_pbs_scratch *s)
{
    veil_keyswitch(ek, in, s->small);
    veil_pbs(ek, lut, s->small, out, s);
}

/* ---- batches: groups of B ciphertexts, one group per task of the thread pool ------------------- */
enum { MAX_GROUP = 16, MAX_THREADS = 256 };

typedef struct {
    veil_pbs_scratch *scr;
    uint64_t *accs;  /* MAX_GROUP accumulators */
    uint64_t *small; /* MAX_GROUP small ciphertexts */
} thread_scratch;

typedef struct {
    const veil_eval_keys *ek;
    const veil_lut *lut;
    const uint64_t *const *in; /* count pointers, or NULL: in_base + i·stride */
    const uint64_t *in_base;
    unsigned in_shift;
    uint64_t *out;
    size_t stride, count; /* stride: k·N + 1 (outputs, and inputs through in_base) */
    uint32_t in_dim;      /* dimension of the inputs */
    unsigned group;
    thread_scratch *ts;
} batch_ctx;

static void batch_group(void *vctx, size_t g, unsigned thread)
{
    const batch_ctx *c = vctx;
    thread_scratch *ts = &c->ts[thread];
    const size_t first = g * c->group, n1 = (size_t)c->ek->p.n + 1;
    const unsigned B = (unsigned)(c->count - first < c->group ? c->count - first : c->group);
    const uint64_t *src[MAX_GROUP];
    uint64_t *small[MAX_GROUP], *res[MAX_GROUP];
    for (unsigned b = 0; b < B; b++) {
        const size_t i = first + b;
        src[b] = c->in ? c->in[i] : c->in_base + i * c->stride;
        small[b] = ts->small + b * n1;
        res[b] = c->out + i * c->stride;
    }
    /* the whole group through the key-switching key at once, then through the bootstrapping key */
    const veil_params *p = &c->ek->p;
    veil_kernels_get()->keyswitch_batch(c->ek->ksk, src, c->in_shift, small, B, c->in_dim, p->n, p->ks_base_log,
                                        p->ks_levels);
    pbs_group(c->ek, c->lut, (const uint64_t *const *)small, res, B, ts->scr, ts->accs);
}

/* The group size: as many accumulators as fit in the L2 cache beside one GGSW of the key and the
 * external product's scratch (so each key block read from memory serves the whole group), at most
 * MAX_GROUP, and no larger than each thread's share of the batch. Measured on M6 (N = 2^13, 2 MB L2,
 * batch of 16 on 2 threads): 18.6 KS-PBS/s with groups of 1, 24.3 of 2, 28.0 of 4, 30.3 of 8. */
unsigned veil_pbs_group_size(const veil_params *p, size_t count, unsigned threads)
{
    const size_t N = veil_params_N(p), k1 = p->k + 1, rows = k1 * p->pbs_levels;
    const size_t acc = 8 * k1 * N, key = 8 * rows * k1 * N, scratch = 8 * (2 * k1 + rows) * N;
    long l2 = sysconf(_SC_LEVEL2_CACHE_SIZE);
    size_t budget = l2 > 0 ? (size_t)l2 : 1024 * 1024;
    size_t g = budget > key + scratch + acc ? (budget - key - scratch) / acc : 1;
    if (g > MAX_GROUP) g = MAX_GROUP;
    if (threads == 0) threads = 1;
    size_t share = (count + threads - 1) / threads;
    if (g > share) g = share;
    return g ? (unsigned)g : 1;
}

static veil_status batch(const veil_eval_keys *ek, const veil_lut *lut, const uint64_t *const *in,
                         const uint64_t *in_base, uint32_t in_dim, unsigned in_shift, uint64_t *out, size_t count,
                         unsigned threads)
{
    if (!ek || !lut || (!in && !in_base && count) || (!out && count) || in_shift > 63) return VEIL_ERR_INVALID_ARG;
    if (in_dim == 0 || in_dim > veil_params_ks_dim(&ek->p)) return VEIL_ERR_INVALID_ARG;
    if (count == 0) return VEIL_OK;
    if (threads == 0) threads = veil_cpu_count();
    if (threads > MAX_THREADS) threads = MAX_THREADS;
    const unsigned group = veil_pbs_group_size(&ek->p, count, threads);
    const size_t groups = (count + group - 1) / group;
    if (threads > groups) threads = (unsigned)groups;
    const veil_params *p = &ek->p;
    const size_t acc_words = (size_t)(p->k + 1) * veil_params_N(p), n1 = (size_t)p->n + 1;
    thread_scratch *ts = veil_calloc(threads, sizeof *ts);
    if (!ts) return VEIL_ERR_NOMEM;
    veil_status s = VEIL_OK;
    for (unsigned t = 0; t < threads && s == VEIL_OK; t++) {
        s = veil_pbs_scratch_new(p, &ts[t].scr);
        ts[t].accs = veil_malloc(8 * acc_words * group);
        ts[t].small = veil_malloc(8 * n1 * group);
        if (s == VEIL_OK && (!ts[t].accs || !ts[t].small)) s = VEIL_ERR_NOMEM;
    }
    if (s == VEIL_OK) {
        batch_ctx ctx = {ek,    lut, in, in_base, in_shift, out, (size_t)veil_params_big_lwe_dim(p) + 1,
                         count, in_dim, group, ts};
        veil_parallel_for(groups, threads, batch_group, &ctx);
    }
    for (unsigned t = 0; t < threads; t++) {
        veil_pbs_scratch_free(ts[t].scr);
        veil_free(ts[t].accs);
        veil_free(ts[t].small);
    }
    veil_free(ts);
    return s;
}

veil_status veil_ks_pbs_batch_ex(const veil_eval_keys *ek, const veil_lut *lut, const uint64_t *const *in,
                                 const uint64_t *in_base, unsigned in_shift, uint64_t *out, size_t count,
                                 unsigned threads)
{
    if (!ek) return VEIL_ERR_INVALID_ARG;
    return batch(ek, lut, in, in_base, veil_params_big_lwe_dim(&ek->p), in_shift, out, count, threads);
}

veil_status veil_ks_pbs_batch_dim(const veil_eval_keys *ek, const veil_lut *lut, const uint64_t *const *in,
                                  uint32_t in_dim, unsigned in_shift, uint64_t *out, size_t count, unsigned threads)
{
    if (!in && count) return VEIL_ERR_INVALID_ARG;
    return batch(ek, lut, in, NULL, in_dim, in_shift, out, count, threads);
}

veil_status veil_ks_pbs_batch(const veil_eval_keys *ek, const veil_lut *lut, const uint64_t *in, uint64_t *out,
                              size_t count, unsigned threads)
{
    if (!in && count) return VEIL_ERR_INVALID_ARG;
    return veil_ks_pbs_batch_ex(ek, lut, NULL, in, 0, out, count, threads);
}
