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

/* ---- multi-value bootstrapping (Carpov, Izabachène, Mollimard, "New techniques for
 * multi-value input homomorphic evaluation and applications", CT-RSA 2019, §3): in the ring
 * Z[X]/(X^N+1), (1 + X + … + X^(N-1))·(1 − X) = 2, so a test polynomial Δ·g equals
 * v0·F with v0 = Δ/2·Σ X^j and F = (1 − X)·g. The blind rotation commutes with multiplying by F,
 * so one blind rotation of v0 serves every table on the same input: each output is the rotated
 * accumulator times its own F, exactly the lookup's answer, with the rotation's noise times ‖F‖².
 * F of a table g: its steps, g[m] − g[m−1] at the box boundaries, and the negacyclic wrap
 * −g(0) − g(last). The wrap step is made zero by centring: the table is h = g − κ with
 * κ = (g(0) + g(last))/2, and κ·Δ is added to each output's body, so a comparison (one step from
 * 1 to 0) has ‖F‖² = 1: no more noise than a plain lookup. */
static uint32_t mv_steps(unsigned p_in, const int64_t *table, uint32_t N, uint32_t *exp, int64_t *coef)
{
    const uint32_t n = 1u << p_in, box = N >> p_in;
    uint32_t c = 0;
    for (uint32_t m = 1; m < n; m++) {
        const int64_t d = (int64_t)((uint64_t)table[m] - (uint64_t)table[m - 1]);
        if (d == 0) continue;
        if (exp) exp[c] = m * box - box / 2, coef[c] = d;
        c++;
    }
    return c;
}

double veil_mv_norm2(unsigned p_in, const int64_t *table)
{
    if (!table || p_in < 1 || p_in > 24) return 0;
    const uint32_t n = 1u << p_in;
    double s = 0;
    for (uint32_t m = 1; m < n; m++) {
        const double d = (double)table[m] - (double)table[m - 1];
        s += d * d;
    }
    return s;
}

veil_status veil_mv_factor_new(const veil_params *p, unsigned p_in, const int64_t *table, unsigned delta_log2,
                              veil_mv_factor **out)
{
    if (!p || !table || !out) return VEIL_ERR_INVALID_ARG;
    *out = NULL;
    if (veil_params_check(p) != VEIL_OK || p_in < 1 || p_in + 1 > p->log2_N || delta_log2 < 1 || delta_log2 > 63)
        return VEIL_ERR_INVALID_ARG;
    const uint32_t N = veil_params_N(p), c = mv_steps(p_in, table, N, NULL, NULL);
    veil_mv_factor *f = veil_calloc(1, sizeof *f);
    if (!f || !(f->exp = veil_malloc(sizeof(uint32_t) * (c ? c : 1))) || !(f->coef = veil_malloc(sizeof(int64_t) * (c ? c : 1)))) {
        veil_mv_factor_free(f);
        return VEIL_ERR_NOMEM;
    }
    f->n = mv_steps(p_in, table, N, f->exp, f->coef);
    /* κ·Δ = (g(0) + g(last))·Δ/2 */
    f->body_add = ((uint64_t)table[0] + (uint64_t)table[(1u << p_in) - 1]) << (delta_log2 - 1);
    *out = f;
    return VEIL_OK;
}

void veil_mv_factor_free(veil_mv_factor *f)
{
    if (!f) return;
    veil_free(f->exp);
    veil_free(f->coef);
    veil_free(f);
}

veil_status veil_lut_new_mv_base(const veil_params *p, unsigned delta_log2, veil_lut **out)
{
    if (!p || !out) return VEIL_ERR_INVALID_ARG;
    *out = NULL;
    if (veil_params_check(p) != VEIL_OK || delta_log2 < 1 || delta_log2 > 63) return VEIL_ERR_INVALID_ARG;
    const uint32_t N = veil_params_N(p);
    veil_lut *l = veil_calloc(1, sizeof *l);
    if (!l || !(l->poly = veil_malloc(sizeof(uint64_t) * N))) {
        veil_free(l);
        return VEIL_ERR_NOMEM;
    }
    l->p = *p;
    for (uint32_t t = 0; t < N; t++) l->poly[t] = 1ull << (delta_log2 - 1);
    *out = l;
    return VEIL_OK;
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

enum { MAX_GROUP = 16, MAX_THREADS = 256 };

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

/* Blind rotation (TFHE Alg. 3) of B ciphertexts at once, each from its own test polynomial
 * polys[b] (N words). The loop over the bootstrapping key is outside the loop over the batch: each
 * GGSW is read from memory once and applied to the B accumulators while it sits in cache.
 * accs: B·(k+1)·N words. */
static void blind_rotate_group(const veil_eval_keys *ek, const uint64_t *const *polys, const uint64_t *const *small,
                               unsigned B, veil_pbs_scratch *s, uint64_t *accs)
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
        rotate(polys[b], acc + (size_t)k * N, N, (2 * N - body) & (2 * N - 1));
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
}

/* Sample extraction of coefficient 0 of a GLWE accumulator: k·N + 1 words. */
static void extract0(const uint64_t *acc, uint64_t *o, uint32_t N, uint32_t k)
{
    for (uint32_t c = 0; c < k; c++) {
        const uint64_t *m = acc + (size_t)c * N;
        uint64_t *oc = o + (size_t)c * N;
        oc[0] = m[0];
        for (uint32_t j = 1; j < N; j++) oc[j] = 0 - m[N - j];
    }
    o[(size_t)k * N] = acc[(size_t)k * N];
}

/* Sample extraction of coefficient 0 of acc · F for a sparse integer polynomial F: the extracted
 * mask is linear in each mask polynomial, so it is Σ_t f_t · extract(X^e_t · acc), summed in place. */
static void extract_mul(const uint64_t *acc, const veil_mv_factor *F, uint64_t *o, uint32_t N, uint32_t k)
{
    memset(o, 0, 8 * ((size_t)k * N + 1));
    o[(size_t)k * N] = F->body_add;
    for (uint32_t t = 0; t < F->n; t++) {
        const uint32_t e = F->exp[t];
        const uint64_t f = (uint64_t)F->coef[t];
        /* r = X^e · m: r[i] = m[i − e] for i ≥ e, −m[i − e + N] below. Extracted: o[0] = r[0],
         * o[j] = −r[N − j], so o[j] −= f·m[N − j − e] for j ≤ N − e and += f·m[2N − j − e] above. */
        for (uint32_t c = 0; c <= k; c++) {
            const uint64_t *m = acc + (size_t)c * N;
            uint64_t *oc = o + (size_t)c * N;
            oc[0] += f * (e == 0 ? m[0] : 0 - m[N - e]);
            if (c == k) break; /* the body: coefficient 0 only */
            for (uint32_t j = 1; j <= N - e && j < N; j++) oc[j] -= f * m[N - j - e];
            for (uint32_t j = N - e + 1; j < N; j++) oc[j] += f * m[2 * N - j - e];
        }
    }
}

static void pbs_group(const veil_eval_keys *ek, const veil_lut *lut, const uint64_t *const *small,
                      uint64_t *const *res, unsigned B, veil_pbs_scratch *s, uint64_t *accs)
{
    const uint64_t *polys[MAX_GROUP] = {0};
    for (unsigned b = 0; b < B && b < MAX_GROUP; b++) polys[b] = lut->poly;
    blind_rotate_group(ek, polys, small, B, s, accs);
    const uint32_t N = veil_params_N(&ek->p);
    for (unsigned b = 0; b < B; b++) extract0(accs + (size_t)b * (ek->p.k + 1) * N, res[b], N, ek->p.k);
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

typedef struct {
    veil_pbs_scratch *scr;
    uint64_t *accs;  /* MAX_GROUP accumulators */
    uint64_t *small; /* MAX_GROUP small ciphertexts */
} thread_scratch;

static void ts_free(thread_scratch *ts, unsigned threads)
{
    for (unsigned t = 0; ts && t < threads; t++) {
        veil_pbs_scratch_free(ts[t].scr);
        veil_free(ts[t].accs);
        veil_free(ts[t].small);
    }
    veil_free(ts);
}

/* Each thread's scratch for groups of `group` ciphertexts. */
static veil_status ts_new(const veil_params *p, unsigned threads, unsigned group, thread_scratch **out)
{
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
    if (s != VEIL_OK) ts_free(ts, threads), ts = NULL;
    *out = ts;
    return s;
}

/* What the groups of one batch share: their size and each thread's scratch. */
typedef struct {
    unsigned group;
    thread_scratch *ts;
} pool_share;

typedef struct {
    const veil_eval_keys *ek;
    const veil_lut *lut;
    const uint64_t *const *in; /* count pointers, or NULL: in_base + i·stride */
    const uint64_t *in_base;
    unsigned in_shift;
    uint64_t *out;
    size_t stride, count; /* stride: k·N + 1 (outputs, and inputs through in_base) */
    uint32_t in_dim;      /* dimension of the inputs */
    pool_share sh;
} batch_ctx;

static void batch_group(void *vctx, size_t g, unsigned thread)
{
    const batch_ctx *c = vctx;
    thread_scratch *ts = &c->sh.ts[thread];
    const size_t first = g * c->sh.group, n1 = (size_t)c->ek->p.n + 1;
    const unsigned B = (unsigned)(c->count - first < c->sh.group ? c->count - first : c->sh.group);
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
    /* the same number of groups for every thread: as many rounds as the cap needs, then groups as
     * even as those rounds allow (23 on 2 threads with a cap of 7: groups of 6, two per thread,
     * rather than 7, 7, 7, 2) */
    if (g > 0 && count > 0) {
        size_t rounds = (count + threads * g - 1) / (threads * g);
        g = (count + threads * rounds - 1) / (threads * rounds);
    }
    return g ? (unsigned)g : 1;
}

/* count items in groups over the pool: sh gets the group size and each thread's scratch, then fn
 * runs once per group. */
static veil_status run_in_groups(const veil_params *p, size_t count, unsigned threads, pool_share *sh,
                                 void (*fn)(void *, size_t, unsigned), void *ctx)
{
    if (count == 0) return VEIL_OK;
    if (threads == 0) threads = veil_cpu_count();
    if (threads > MAX_THREADS) threads = MAX_THREADS;
    sh->group = veil_pbs_group_size(p, count, threads);
    const size_t groups = (count + sh->group - 1) / sh->group;
    if (threads > groups) threads = (unsigned)groups;
    veil_status s = ts_new(p, threads, sh->group, &sh->ts);
    if (s == VEIL_OK) veil_parallel_for(groups, threads, fn, ctx);
    ts_free(sh->ts, threads);
    sh->ts = NULL;
    return s;
}

static veil_status batch(const veil_eval_keys *ek, const veil_lut *lut, const uint64_t *const *in,
                         const uint64_t *in_base, uint32_t in_dim, unsigned in_shift, uint64_t *out, size_t count,
                         unsigned threads)
{
    if (!ek || !lut || (!in && !in_base && count) || (!out && count) || in_shift > 63) return VEIL_ERR_INVALID_ARG;
    if (in_dim == 0 || in_dim > veil_params_ks_dim(&ek->p)) return VEIL_ERR_INVALID_ARG;
    batch_ctx ctx = {ek, lut, in, in_base, in_shift, out, (size_t)veil_params_big_lwe_dim(&ek->p) + 1, count, in_dim,
                     {0, NULL}};
    return run_in_groups(&ek->p, count, threads, &ctx.sh, batch_group, &ctx);
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

/* ---- jobs: lookups of different tables, plain or multi-value, in one pass over the pool ------ */
typedef struct {
    const veil_eval_keys *ek;
    const veil_pbs_job *jobs;
    size_t count;
    pool_share sh;
} jobs_ctx;

static void jobs_group(void *vctx, size_t g, unsigned thread)
{
    const jobs_ctx *c = vctx;
    thread_scratch *ts = &c->sh.ts[thread];
    const veil_params *p = &c->ek->p;
    const size_t first = g * c->sh.group, n1 = (size_t)p->n + 1, acc_words = (size_t)(p->k + 1) * veil_params_N(p);
    const unsigned B = (unsigned)(c->count - first < c->sh.group ? c->count - first : c->sh.group);
    const veil_pbs_job *J = c->jobs + first;
    const uint64_t *src[MAX_GROUP] = {0}, *polys[MAX_GROUP] = {0};
    uint64_t *small[MAX_GROUP] = {0};
    for (unsigned b = 0; b < B; b++) {
        src[b] = J[b].in;
        small[b] = ts->small + b * n1;
        polys[b] = J[b].lut->poly;
    }
    /* key switches: runs of inputs of one dimension and scaling go through the key together */
    for (unsigned b = 0; b < B;) {
        unsigned e = b + 1;
        while (e < B && J[e].in_dim == J[b].in_dim && J[e].in_shift == J[b].in_shift) e++;
        veil_kernels_get()->keyswitch_batch(c->ek->ksk, src + b, J[b].in_shift, small + b, e - b, J[b].in_dim, p->n,
                                            p->ks_base_log, p->ks_levels);
        b = e;
    }
    blind_rotate_group(c->ek, polys, (const uint64_t *const *)small, B, ts->scr, ts->accs);
    const uint32_t N = veil_params_N(p);
    for (unsigned b = 0; b < B; b++) {
        const uint64_t *acc = ts->accs + b * acc_words;
        if (!J[b].factor) extract0(acc, J[b].out[0], N, p->k);
        else
            for (uint32_t o = 0; o < J[b].nout; o++) extract_mul(acc, J[b].factor[o], J[b].out[o], N, p->k);
    }
}

veil_status veil_ks_pbs_jobs(const veil_eval_keys *ek, const veil_pbs_job *jobs, size_t count, unsigned threads)
{
    if (!ek || (!jobs && count)) return VEIL_ERR_INVALID_ARG;
    for (size_t i = 0; i < count; i++) {
        const veil_pbs_job *J = &jobs[i];
        if (!J->in || !J->lut || !J->out || J->in_shift > 63 || J->in_dim == 0 || J->in_dim > veil_params_ks_dim(&ek->p))
            return VEIL_ERR_INVALID_ARG;
        if (!J->factor ? J->nout != 1 : J->nout == 0) return VEIL_ERR_INVALID_ARG;
        if (!veil_params_same(&J->lut->p, &ek->p)) return VEIL_ERR_PARAMS_MISMATCH;
    }
    jobs_ctx ctx = {ek, jobs, count, {0, NULL}};
    return run_in_groups(&ek->p, count, threads, &ctx.sh, jobs_group, &ctx);
}
