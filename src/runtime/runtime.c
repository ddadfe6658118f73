/* The three interpreters of a compiled program: clear, simulate, execute. */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "runtime_impl.h"

veil_status veil_circuit_clear(const veil_circuit *c, const int64_t *const *inputs, int64_t *const *outputs)
{
    if (!c || (!inputs && c->prog->ninputs)) return VEIL_ERR_INVALID_ARG;
    const veil_program *p;
    veil_program *tmp;
    veil_status st = veil_circuit_program(c, inputs, &p, &tmp);
    if (st == VEIL_OK) st = veil_program_run_clear(p, inputs, outputs);
    veil_program_free(tmp);
    return st;
}

unsigned veil_rt_delta_shift(const veil_program *p) { return 63 - p->precision; }

uint64_t veil_rt_decode_m(const veil_program *p, uint64_t phase)
{
    unsigned sh = veil_rt_delta_shift(p);
    return (phase + (1ull << (sh - 1))) >> sh; /* rounding; the top p+1 bits */
}

/* Torus values of a lookup's table (2^bits entries, at the encoding's scale). */
static void lut_values(const veil_program *p, const veil_instr *I, uint64_t *vals)
{
    size_t n = (size_t)1 << I->bits;
    for (size_t i = 0; i < n; i++) vals[i] = (uint64_t)I->table[i] << veil_rt_delta_shift(p);
}

/* A lookup reads `bits` bits of its input scaled by 2^(precision − bits − shift): the value's top
 * bits become the top of the torus, so the bootstrapping only needs the lookup's own precision. */
static unsigned lut_up(const veil_program *p, const veil_instr *I) { return p->precision - I->bits - I->shift; }

/* ---- simulate ------------------------------------------------------------------------------- */
static uint64_t gauss(veil_rng *rng, double sd) { return (uint64_t)(int64_t)llround(veil_rng_normal(rng) * sd); }

veil_status veil_circuit_simulate(const veil_circuit *c, const int64_t *const *inputs, veil_rng *rng,
                                  int64_t *const *outputs)
{
    if (!c || (!inputs && c->prog->ninputs) || (!outputs && c->prog->noutputs)) return VEIL_ERR_INVALID_ARG;
    const veil_program *p;
    veil_program *tmp = NULL;
    const veil_params *P = &c->params;
    veil_rng *own = NULL;
    uint64_t *v = NULL, *vals = NULL, *mv_x = NULL;
    uint8_t *mv_up = NULL;
    uint32_t *dims = NULL;
    veil_status st = veil_circuit_program(c, inputs, &p, &tmp);
    if (st != VEIL_OK) return st;
    if (!rng && (st = veil_rng_new_os(&own)) != VEIL_OK) goto done;
    if (!rng) rng = own;
    const double two64 = 0x1p64;
    const double sd_fresh = sqrt(veil_var_fresh_big(P)) * two64;
    v = veil_calloc(p->nslots ? p->nslots : 1, sizeof(uint64_t));
    mv_x = veil_calloc(p->nslots ? p->nslots : 1, sizeof(uint64_t));
    mv_up = veil_calloc(p->nslots ? p->nslots : 1, 1);
    vals = veil_malloc(sizeof(uint64_t) << p->tlu_precision);
    if (!v || !vals || !mv_x || !mv_up) {
        st = VEIL_ERR_NOMEM;
        goto done;
    }
    if ((st = veil_circuit_slot_dims(c, p, &dims)) != VEIL_OK) goto done;
    for (size_t i = 0; i < p->ninputs; i++) {
        const veil_prog_input *in = &p->inputs[i];
        if (!in->encrypted) continue;
        if (!inputs[i]) {
            st = VEIL_ERR_INVALID_ARG;
            goto done;
        }
        for (int64_t e = 0; e < in->size; e++)
            v[in->base + e] = ((uint64_t)inputs[i][e] << veil_rt_delta_shift(p)) + gauss(rng, sd_fresh);
    }
    for (size_t k = 0; k < p->ninstr; k++) {
        const veil_instr *I = &p->instr[k];
        if (I->kind == VEIL_INSTR_LINEAR) {
            for (uint32_t o = 0; o < I->count; o++) {
                uint64_t r = (uint64_t)I->cst[o] << veil_rt_delta_shift(p);
                for (uint64_t t = I->term_off[o]; t < I->term_off[o + 1]; t++)
                    r += (uint64_t)I->term_w[t] * v[I->term_slot[t]];
                v[I->out_base + o] = r;
            }
            continue;
        }
        /* the lookup's partition: its key switch from the key its input lies under, the mask
         * part of its modulus switch (the body's rounding happens below), its PBS */
        const veil_params *Q = &c->parts[I->part];
        const uint32_t N = veil_params_N(Q);
        const double sd_pbs = sqrt(veil_var_pbs(Q)) * two64;
        const double ms = veil_var_modswitch(Q) - 1.0 / (48.0 * N * N);
        lut_values(p, I, vals);
        const uint32_t box = N >> I->bits;
        const unsigned up = lut_up(p, I);
        const double sd_out = sd_pbs * sqrt(veil_instr_out_noise(I));
        for (uint32_t o = 0; o < I->count; o++) {
            const uint32_t in = I->in_slot[o];
            const double sd_ksms = sqrt(veil_var_keyswitch_dim(Q, dims[in]) + ms) * two64;
            /* multi-value lookups of one input share its key switch and modulus switch */
            uint64_t x;
            if (I->mv && mv_up[in] == up + 1) x = mv_x[in];
            else x = (v[in] << up) + gauss(rng, sd_ksms);
            if (I->mv) mv_x[in] = x, mv_up[in] = (uint8_t)(up + 1);
            /* modulus switch to 2N, then the coefficient the blind rotation brings to position 0 of
             * the half-box-rotated test polynomial (src/tfhe/pbs.c) */
            uint32_t b = (uint32_t)(((x >> (62 - Q->log2_N)) + 1) >> 1) & (2 * N - 1);
            uint32_t t = b < N ? b : b - N, m = (t + box / 2) / box;
            uint64_t coef = m < (1u << I->bits) ? vals[m] : 0 - vals[0];
            v[I->out_base + o] = (b < N ? coef : 0 - coef) + gauss(rng, sd_out);
        }
    }
    for (size_t j = 0; j < p->noutputs; j++) {
        const veil_prog_output *o = &p->outputs[j];
        for (int64_t e = 0; e < o->size; e++) outputs[j][e] = veil_program_decode(p, o, veil_rt_decode_m(p, v[o->slots[e]]));
    }
done:
    veil_free(dims);
    veil_free(v);
    veil_free(mv_x);
    veil_free(mv_up);
    veil_free(vals);
    veil_rng_free(own);
    veil_program_free(tmp);
    return st;
}

/* ---- execute -------------------------------------------------------------------------------- */

void veil_ciphertexts_free(veil_ciphertexts *v)
{
    if (!v) return;
    veil_free(v->data);
    veil_free(v->clear);
    veil_free(v);
}

size_t veil_ciphertexts_count(const veil_ciphertexts *v) { return v ? v->count : 0; }
uint32_t veil_ciphertexts_lwe_size(const veil_ciphertexts *v) { return v ? v->lwe_size : 0; }

veil_ciphertexts *veil_rt_cts_new(const veil_params *P, size_t count)
{
    veil_ciphertexts *v = veil_calloc(1, sizeof *v);
    if (!v) return NULL;
    v->fingerprint = veil_params_fingerprint(P);
    v->lwe_size = veil_params_big_lwe_dim(P) + 1;
    v->count = count;
    if (!(v->data = veil_calloc(count ? count : 1, sizeof(uint64_t) * v->lwe_size))) {
        veil_free(v);
        return NULL;
    }
    return v;
}

size_t veil_rt_enc_input_count(const veil_program *p)
{
    size_t n = 0;
    for (size_t i = 0; i < p->ninputs; i++)
        if (p->inputs[i].encrypted) n += (size_t)p->inputs[i].size;
    return n;
}

size_t veil_rt_output_count(const veil_program *p)
{
    size_t n = 0;
    for (size_t j = 0; j < p->noutputs; j++) n += (size_t)p->outputs[j].size;
    return n;
}

int veil_rt_same_params(const veil_params *a, const veil_params *b) { return a && b && veil_params_same(a, b); }

/* Slots of varying dimension (veil_circuit_slot_dims): slot s is dims[s] + 1 words at off[s], its
 * body last. A shorter ciphertext is one under a prefix of a longer key (zero mask words above). */
typedef struct {
    const veil_instr *I;
    uint64_t *slots;
    const uint32_t *dims;
    const size_t *off;
    uint64_t delta_shift;
} linear_job;

static void linear_one(void *ctx, size_t o, unsigned thread)
{
    (void)thread;
    const linear_job *j = ctx;
    const veil_instr *I = j->I;
    const size_t s = (size_t)I->out_base + o;
    const uint32_t d = j->dims[s];
    uint64_t *dst = j->slots + j->off[s];
    memset(dst, 0, 8 * ((size_t)d + 1));
    for (uint64_t t = I->term_off[o]; t < I->term_off[o + 1]; t++) {
        const uint32_t ts = I->term_slot[t], dt = j->dims[ts];
        const uint64_t *src = j->slots + j->off[ts];
        uint64_t w = (uint64_t)I->term_w[t];
        for (size_t q = 0; q < dt; q++) dst[q] += w * src[q];
        dst[d] += w * src[dt];
    }
    dst[d] += (uint64_t)I->cst[o] << j->delta_shift;
}

/* ---- execute --------------------------------------------------------------------------------- */
/* The test polynomial of every plain lookup instruction of a program (NULL for linear ones), the
 * factor of every multi-value one, and each partition's multi-value base polynomial. */
typedef struct {
    size_t n;
    veil_lut **luts;
    veil_mv_factor **factors;
    veil_lut *base[VEIL_MAX_PARTS];
} lut_set;

static void lut_set_free(void *v)
{
    lut_set *ls = v;
    if (!ls) return;
    for (size_t i = 0; i < ls->n; i++) {
        veil_lut_free(ls->luts[i]);
        veil_mv_factor_free(ls->factors[i]);
    }
    for (size_t j = 0; j < VEIL_MAX_PARTS; j++) veil_lut_free(ls->base[j]);
    veil_free(ls->luts);
    veil_free(ls->factors);
    veil_free(ls);
}

static veil_status lut_set_new(const veil_circuit *c, const veil_program *p, lut_set **out)
{
    *out = NULL;
    lut_set *ls = veil_calloc(1, sizeof *ls);
    uint64_t *vals = veil_malloc(sizeof(uint64_t) << p->tlu_precision);
    veil_status st = ls && vals ? VEIL_OK : VEIL_ERR_NOMEM;
    const size_t ni = p->ninstr ? p->ninstr : 1;
    if (st == VEIL_OK && (!(ls->luts = veil_calloc(ni, sizeof(veil_lut *))) ||
                          !(ls->factors = veil_calloc(ni, sizeof(veil_mv_factor *)))))
        st = VEIL_ERR_NOMEM;
    if (st == VEIL_OK) ls->n = p->ninstr;
    for (size_t q = 0; q < p->ninstr && st == VEIL_OK; q++) {
        const veil_instr *I = &p->instr[q];
        if (I->kind != VEIL_INSTR_TLU) continue;
        const veil_params *Q = &c->parts[I->part];
        if (I->mv) {
            st = veil_mv_factor_new(Q, I->bits, I->table, veil_rt_delta_shift(p), &ls->factors[q]);
            if (st == VEIL_OK && !ls->base[I->part])
                st = veil_lut_new_mv_base(Q, veil_rt_delta_shift(p), &ls->base[I->part]);
            continue;
        }
        lut_values(p, I, vals);
        st = veil_lut_new_torus(Q, I->bits, vals, &ls->luts[q]);
    }
    veil_free(vals);
    if (st != VEIL_OK) lut_set_free(ls);
    else *out = ls;
    return st;
}

/* The circuit's own program keeps its tables across runs (and across the server's concurrent
 * runs): built once under a lock, published with release order, read without the lock. The cache
 * is logically const: it only memoizes what prog determines. */
static pthread_mutex_t lut_cache_lock = PTHREAD_MUTEX_INITIALIZER;

static veil_status circuit_luts(const veil_circuit *c, const lut_set **out)
{
    veil_circuit *mc = (veil_circuit *)c;
    lut_set *ls = __atomic_load_n((lut_set **)&mc->rt_cache, __ATOMIC_ACQUIRE);
    veil_status st = VEIL_OK;
    if (!ls) {
        pthread_mutex_lock(&lut_cache_lock);
        ls = mc->rt_cache;
        if (!ls && (st = lut_set_new(c, c->prog, &ls)) == VEIL_OK) {
            mc->rt_cache_free = lut_set_free;
            __atomic_store_n((lut_set **)&mc->rt_cache, ls, __ATOMIC_RELEASE);
        }
        pthread_mutex_unlock(&lut_cache_lock);
    }
    *out = ls;
    return st;
}

/* ---- execute: lookups in stages -------------------------------------------------------------
 * Each instruction's stage is the number of lookups on the longest path from the inputs to it: a
 * linear instruction runs in the stage of its latest input, a lookup one stage later. All the
 * lookups of one stage (every channel of a layer, every comparison of a tree ensemble, the
 * hundreds of one-output instructions a per-channel rounding makes) run as one batch per
 * partition over the thread pool, whatever their order in the program; multi-value ones of one
 * input share one key switch and one blind rotation. */
typedef struct {
    const veil_circuit *c;
    const veil_program *p;
    const veil_eval_keys *ek;
    const lut_set *luts;
    uint64_t *slots;
    const uint32_t *dims;
    const size_t *off;
    unsigned threads;
    const veil_spread_table *tables; /* when lookups are spread: every instruction's table */
} wave;

static veil_spread_fn spread_fn;
static void *spread_ctx;

void veil_runtime_set_spread(veil_spread_fn fn, void *ctx)
{
    spread_fn = fn;
    spread_ctx = ctx;
}

int veil_runtime_spread_active(void) { return spread_fn != NULL; }

/* stage[k] of every instruction; *nstages = the last stage + 1 */
static veil_status instr_stages(const veil_program *p, uint32_t **stage_out, uint32_t *nstages)
{
    uint32_t *sl = veil_calloc(p->nslots ? p->nslots : 1, sizeof(uint32_t));
    uint32_t *stage = veil_malloc(sizeof(uint32_t) * (p->ninstr ? p->ninstr : 1));
    if (!sl || !stage) {
        veil_free(sl);
        veil_free(stage);
        return VEIL_ERR_NOMEM;
    }
    uint32_t top = 0;
    for (size_t k = 0; k < p->ninstr; k++) {
        const veil_instr *I = &p->instr[k];
        uint32_t lv = 0;
        if (I->kind == VEIL_INSTR_LINEAR) {
            for (uint64_t t = 0; t < I->term_off[I->count]; t++)
                if (sl[I->term_slot[t]] > lv) lv = sl[I->term_slot[t]];
        } else {
            for (uint32_t o = 0; o < I->count; o++)
                if (sl[I->in_slot[o]] > lv) lv = sl[I->in_slot[o]];
            lv++;
        }
        stage[k] = lv;
        for (uint32_t o = 0; o < I->count; o++) sl[I->out_base + o] = lv;
        if (lv > top) top = lv;
    }
    veil_free(sl);
    *stage_out = stage;
    *nstages = top + 1;
    return VEIL_OK;
}

typedef struct {
    uint32_t slot, up, instr, o;
} wave_item;

static int item_cmp(const void *a, const void *b)
{
    const wave_item *x = a, *y = b;
    if (x->slot != y->slot) return x->slot < y->slot ? -1 : 1;
    if (x->up != y->up) return x->up < y->up ? -1 : 1;
    if (x->instr != y->instr) return x->instr < y->instr ? -1 : 1;
    return x->o < y->o ? -1 : x->o > y->o;
}

/* The lookup instructions list[0..nl) of partition `part`: their jobs, then one call over the pool. */
static veil_status run_wave_part(const wave *w, const uint32_t *list, size_t nl, unsigned part)
{
    const veil_program *p = w->p;
    size_t n = 0;
    for (size_t i = 0; i < nl; i++)
        if (p->instr[list[i]].part == part) n += p->instr[list[i]].count;
    if (n == 0) return VEIL_OK;
    wave_item *it = veil_malloc(sizeof *it * n);
    veil_pbs_job *jobs = veil_malloc(sizeof *jobs * n);
    uint64_t **outs = veil_malloc(sizeof(uint64_t *) * n);
    const veil_mv_factor **facs = veil_malloc(sizeof(veil_mv_factor *) * n);
    uint32_t *instr = w->tables ? veil_malloc(sizeof(uint32_t) * n) : NULL;
    veil_status st = it && jobs && outs && facs && (instr || !w->tables) ? VEIL_OK : VEIL_ERR_NOMEM;
    size_t nj = 0;
    if (st == VEIL_OK) {
        size_t m = 0, nmv = 0;
        for (size_t li = 0; li < nl; li++) { /* plain lookups first, in order; multi-value ones sorted by input */
            const uint32_t r = list[li];
            const veil_instr *I = &p->instr[r];
            if (I->part != part) continue;
            for (uint32_t o = 0; o < I->count; o++) it[I->mv ? n - 1 - nmv++ : m++] =
                (wave_item){I->in_slot[o], lut_up(p, I), (uint32_t)r, o};
        }
        qsort(it + m, nmv, sizeof *it, item_cmp);
        for (size_t i = 0; i < n;) {
            const veil_instr *I = &p->instr[it[i].instr];
            size_t j = i + 1;
            if (I->mv)
                while (j < n && it[j].slot == it[i].slot && it[j].up == it[i].up) j++;
            for (size_t t = i; t < j; t++) {
                const veil_instr *T = &p->instr[it[t].instr];
                outs[t] = w->slots + w->off[T->out_base + it[t].o];
                facs[t] = w->luts->factors[it[t].instr];
                if (instr) instr[t] = it[t].instr;
            }
            jobs[nj++] = (veil_pbs_job){.in = w->slots + w->off[it[i].slot], .in_dim = w->dims[it[i].slot],
                                        .in_shift = it[i].up, .lut = I->mv ? w->luts->base[part] : w->luts->luts[it[i].instr],
                                        .nout = (uint32_t)(j - i), .out = outs + i, .factor = I->mv ? facs + i : NULL};
            i = j;
        }
        if (w->tables) {
            const veil_spread_batch b = {w->ek, part, veil_rt_delta_shift(p), jobs, nj, instr, w->tables, p->ninstr,
                                         w->threads};
            st = spread_fn(spread_ctx, &b);
        } else
            st = veil_ks_pbs_jobs(veil_eval_keys_part(w->ek, part), jobs, nj, w->threads);
    }
    veil_free(instr);
    veil_free(it);
    veil_free(jobs);
    veil_free(outs);
    veil_free(facs);
    return st;
}

static veil_status run_wave(const wave *w, const uint32_t *list, size_t nl)
{
    veil_status st = VEIL_OK;
    for (unsigned part = 0; part < w->c->nparts && st == VEIL_OK; part++) st = run_wave_part(w, list, nl, part);
    return st;
}

/* The keys cover the circuit's sets: one part per partition, each of its parameters. */
static veil_status keys_match(const veil_circuit *c, const veil_eval_keys *ek)
{
    if (!veil_rt_same_params(veil_eval_keys_params(ek), &c->params)) return VEIL_ERR_PARAMS_MISMATCH;
    if (veil_eval_keys_count(ek) != c->nparts) return VEIL_ERR_PARAMS_MISMATCH;
    for (size_t j = 0; j < c->nparts; j++)
        if (!veil_rt_same_params(veil_eval_keys_part_params(ek, j), &c->parts[j]))
            return VEIL_ERR_PARAMS_MISMATCH;
    return VEIL_OK;
}

veil_status veil_circuit_run(const veil_circuit *c, const veil_eval_keys *ek, const veil_ciphertexts *in,
                             unsigned threads, veil_ciphertexts **out)
{
    if (!c || !in || !out) return VEIL_ERR_INVALID_ARG;
    *out = NULL;
    const veil_params *P = &c->params;
    if (in->fingerprint != veil_params_fingerprint(P)) return VEIL_ERR_PARAMS_MISMATCH;
    if (in->count != veil_rt_enc_input_count(c->prog) || in->lwe_size != veil_params_big_lwe_dim(P) + 1)
        return VEIL_ERR_MALFORMED;
    if (c->prog->n_tlu && !ek) return VEIL_ERR_INVALID_ARG;
    veil_status st = ek ? keys_match(c, ek) : VEIL_OK;
    if (st != VEIL_OK) return st;
    /* the clear inputs travel with the ciphertexts */
    const veil_program *p = c->prog;
    veil_program *tmp = NULL;
    const int64_t **clear_in = veil_calloc(p->ninputs ? p->ninputs : 1, sizeof(int64_t *));
    if (!clear_in) return VEIL_ERR_NOMEM;
    size_t kc = 0;
    for (size_t i = 0; i < p->ninputs; i++)
        if (!p->inputs[i].encrypted) {
            if (kc + (size_t)p->inputs[i].size > in->nclear) {
                veil_free(clear_in);
                return VEIL_ERR_MALFORMED;
            }
            clear_in[i] = in->clear + kc;
            kc += (size_t)p->inputs[i].size;
        }
    st = veil_circuit_program(c, clear_in, &p, &tmp);
    veil_free(clear_in);
    if (st != VEIL_OK) return st;
    const size_t lwe = in->lwe_size, ns = p->nslots ? p->nslots : 1;
    uint32_t *dims = NULL;
    size_t *off = veil_malloc(sizeof(size_t) * ns), words = 0;
    uint64_t *slots = NULL;
    uint32_t *stage = NULL, *order = NULL, *scratch = NULL;
    size_t *first = NULL;
    veil_ciphertexts *res = veil_rt_cts_new(P, veil_rt_output_count(p));
    /* the tables: the circuit's cached ones, or this evaluation's own when clear inputs made a
     * program of its own */
    const lut_set *luts = NULL;
    lut_set *own_luts = NULL;
    veil_spread_table *tables = NULL;
    if (!off || !res) {
        st = VEIL_ERR_NOMEM;
        goto done;
    }
    if ((st = veil_circuit_slot_dims(c, p, &dims)) != VEIL_OK) goto done;
    for (size_t s = 0; s < p->nslots; s++) off[s] = words, words += (size_t)dims[s] + 1;
    if (!(slots = veil_malloc(sizeof(uint64_t) * (words ? words : 1)))) {
        st = VEIL_ERR_NOMEM;
        goto done;
    }
    if (p == c->prog) st = circuit_luts(c, &luts);
    else if ((st = lut_set_new(c, p, &own_luts)) == VEIL_OK) luts = own_luts;
    if (st != VEIL_OK) goto done;
    size_t k = 0;
    for (size_t i = 0; i < p->ninputs; i++) { /* inputs: under the whole key, as slot dims say */
        const veil_prog_input *pi = &p->inputs[i];
        if (!pi->encrypted) continue;
        memcpy(slots + off[pi->base], in->data + k * lwe, sizeof(uint64_t) * lwe * (size_t)pi->size);
        k += (size_t)pi->size;
    }
    /* stage by stage: its lookups together (they read only slots of earlier stages), then its
     * linear instructions in program order (they read this stage's lookups) */
    uint32_t nstages = 0;
    if ((st = instr_stages(p, &stage, &nstages)) != VEIL_OK) goto done;
    if (!(order = veil_malloc(sizeof(uint32_t) * (p->ninstr ? p->ninstr : 1))) ||
        !(scratch = veil_malloc(sizeof(uint32_t) * (p->ninstr ? p->ninstr : 1))) ||
        !(first = veil_calloc((size_t)nstages + 1, sizeof(size_t)))) {
        st = VEIL_ERR_NOMEM;
        goto done;
    }
    for (size_t q = 0; q < p->ninstr; q++) first[stage[q] + 1]++;
    for (uint32_t t = 0; t < nstages; t++) first[t + 1] += first[t];
    {
        size_t *at = veil_malloc(sizeof(size_t) * nstages);
        if (!at) {
            st = VEIL_ERR_NOMEM;
            goto done;
        }
        for (uint32_t t = 0; t < nstages; t++) at[t] = first[t];
        for (size_t q = 0; q < p->ninstr; q++) order[at[stage[q]]++] = (uint32_t)q; /* stable: program order */
        veil_free(at);
    }
    if (spread_fn && p->n_tlu) { /* the tables another process rebuilds the polynomials from */
        if (!(tables = veil_calloc(p->ninstr, sizeof *tables))) {
            st = VEIL_ERR_NOMEM;
            goto done;
        }
        for (size_t q = 0; q < p->ninstr; q++)
            if (p->instr[q].kind == VEIL_INSTR_TLU) tables[q] = (veil_spread_table){p->instr[q].table, p->instr[q].bits};
    }
    wave w = {c, p, ek, luts, slots, dims, off, threads, tables};
    for (uint32_t t = 0; t < nstages && st == VEIL_OK; t++) {
        size_t nl = 0, nlin = 0;
        /* this stage's entries of order[]: lookups moved to its front, linear ones after, each
         * kind in program order */
        for (size_t i = first[t]; i < first[t + 1]; i++)
            if (p->instr[order[i]].kind == VEIL_INSTR_TLU) scratch[nl++] = order[i];
            else scratch[(first[t + 1] - first[t]) - 1 - nlin++] = order[i];
        if (nl) st = run_wave(&w, scratch, nl);
        for (size_t i = 0; i < nlin && st == VEIL_OK; i++) {
            const veil_instr *I = &p->instr[scratch[(first[t + 1] - first[t]) - 1 - i]];
            linear_job job = {I, slots, dims, off, veil_rt_delta_shift(p)};
            veil_parallel_for(I->count, I->count >= 16 ? threads : 1, linear_one, &job);
        }
    }
    if (st != VEIL_OK) goto done;
    k = 0;
    memset(res->data, 0, sizeof(uint64_t) * lwe * res->count);
    for (size_t j = 0; j < p->noutputs; j++)
        for (int64_t e = 0; e < p->outputs[j].size; e++, k++) { /* to the whole key's length */
            const uint32_t s = p->outputs[j].slots[e], d = dims[s];
            uint64_t *dst = res->data + k * lwe;
            memcpy(dst, slots + off[s], sizeof(uint64_t) * d);
            dst[lwe - 1] = slots[off[s] + d];
        }
    *out = res;
    res = NULL;
done:
    veil_free(tables);
    veil_program_free(tmp);
    veil_free(slots);
    veil_free(off);
    veil_free(dims);
    veil_free(stage);
    veil_free(order);
    veil_free(scratch);
    veil_free(first);
    lut_set_free(own_luts);
    veil_ciphertexts_free(res);
    return st;
}

/* ---- ciphertexts on the wire ------------------------------------------------------------------ */
static veil_status wire_ok(const veil_circuit *c)
{
    for (size_t i = 0; i < c->prog->ninputs; i++)
        if (!c->prog->inputs[i].encrypted) return VEIL_ERR_UNSUPPORTED; /* clear inputs do not travel */
    return VEIL_OK;
}

veil_status veil_ciphertexts_serialize(const veil_circuit *c, const veil_ciphertexts *v, uint8_t **out, size_t *len)
{
    if (!c || !v || !out || !len) return VEIL_ERR_INVALID_ARG;
    if (v->fingerprint != veil_params_fingerprint(&c->params)) return VEIL_ERR_PARAMS_MISMATCH;
    veil_status st = wire_ok(c);
    if (st != VEIL_OK) return st;
    return veil_lwe_list_write(&c->params, v->lwe_size - 1, NULL, v->data, v->count, NULL, 0,
                               c->bound ? c->model_id : NULL, out, len);
}

/* A bound circuit reads only lists of its own model (after the container's own checks, so that a
 * corrupted list is reported as such). */
static veil_status model_ok(const veil_circuit *c, const uint8_t *buf, size_t len)
{
    if (!c->bound) return VEIL_OK;
    uint8_t id[VEIL_MODEL_ID_BYTES];
    veil_status st = veil_lwe_list_model_id(buf, len, id);
    if (st == VEIL_ERR_MALFORMED || (st == VEIL_OK && memcmp(id, c->model_id, sizeof id) != 0))
        return VEIL_ERR_MODEL_MISMATCH;
    return st;
}

veil_status veil_ciphertexts_deserialize_mixed(const veil_circuit *c, uint32_t clear_mask, const uint8_t *buf,
                                               size_t len, veil_ciphertexts **out)
{
    if (!c || !buf || !out) return VEIL_ERR_INVALID_ARG;
    *out = NULL;
    const veil_program *p = c->prog;
    if (clear_mask == 0) return veil_ciphertexts_deserialize(c, 0, buf, len, out);
    if (p->ninputs < 32 && (clear_mask >> p->ninputs)) return VEIL_ERR_INVALID_ARG;
    veil_status st = wire_ok(c);
    if (st != VEIL_OK) return st;
    size_t n = 0, nc = 0;
    for (size_t i = 0; i < p->ninputs; i++)
        if (i < 32 && (clear_mask >> i & 1)) nc += (size_t)p->inputs[i].size;
        else n += (size_t)p->inputs[i].size;
    uint32_t dim;
    uint64_t *cts = NULL;
    int64_t *clear = NULL;
    size_t count = 0, ncount = 0;
    if ((st = veil_lwe_list_deserialize(buf, len, &c->params, &dim, &cts, &count)) != VEIL_OK) return st;
    if ((st = model_ok(c, buf, len)) != VEIL_OK || (st = veil_lwe_list_clear_values(buf, len, &clear, &ncount)) != VEIL_OK) {
        veil_free(cts);
        return st;
    }
    size_t lwe = (size_t)veil_params_big_lwe_dim(&c->params) + 1;
    /* a clear value past the encoding's message bits is refused (an encrypted one cannot be) */
    int64_t top = (int64_t)1 << p->precision;
    for (size_t e = 0; e < ncount && st == VEIL_OK; e++)
        if (clear[e] >= top || clear[e] < -top) st = VEIL_ERR_MALFORMED;
    if (st == VEIL_OK && (dim + 1 != lwe || count != n || ncount != nc)) st = VEIL_ERR_MALFORMED;
    veil_ciphertexts *v = st == VEIL_OK ? veil_calloc(1, sizeof *v) : NULL;
    if (st == VEIL_OK && (!v || !(v->data = veil_calloc((n + nc) ? (n + nc) * lwe : 1, sizeof(uint64_t)))))
        st = VEIL_ERR_NOMEM;
    if (st == VEIL_OK) {
        /* every input in order: the encrypted ones as sent, the clear ones as trivial (noiseless,
         * zero-mask) ciphertexts of their values, so the same program runs on both */
        size_t k = 0, kc = 0, slot = 0;
        for (size_t i = 0; i < p->ninputs; i++)
            for (int64_t e = 0; e < p->inputs[i].size; e++, slot++) {
                uint64_t *dst = v->data + slot * lwe;
                if (i < 32 && (clear_mask >> i & 1))
                    dst[lwe - 1] = (uint64_t)clear[kc++] << veil_rt_delta_shift(p);
                else
                    memcpy(dst, cts + (k++) * lwe, sizeof(uint64_t) * lwe);
            }
        v->fingerprint = veil_params_fingerprint(&c->params);
        v->lwe_size = (uint32_t)lwe;
        v->count = n + nc;
        *out = v;
    } else if (v) {
        veil_free(v->data);
        veil_free(v);
    }
    veil_free(cts);
    veil_free(clear);
    return st;
}

veil_status veil_ciphertexts_deserialize(const veil_circuit *c, int outputs, const uint8_t *buf, size_t len,
                                         veil_ciphertexts **out)
{
    if (!c || !buf || !out) return VEIL_ERR_INVALID_ARG;
    *out = NULL;
    veil_status st = wire_ok(c);
    if (st != VEIL_OK) return st;
    uint32_t dim;
    uint64_t *cts = NULL;
    size_t count;
    if ((st = veil_lwe_list_deserialize(buf, len, &c->params, &dim, &cts, &count)) != VEIL_OK) return st;
    if ((st = model_ok(c, buf, len)) != VEIL_OK) {
        veil_free(cts);
        return st;
    }
    size_t want = outputs ? veil_rt_output_count(c->prog) : veil_rt_enc_input_count(c->prog);
    if (dim != veil_params_big_lwe_dim(&c->params) || count != want) {
        veil_free(cts);
        return VEIL_ERR_MALFORMED;
    }
    veil_ciphertexts *v = veil_calloc(1, sizeof *v);
    if (!v) {
        veil_free(cts);
        return VEIL_ERR_NOMEM;
    }
    v->fingerprint = veil_params_fingerprint(&c->params);
    v->lwe_size = dim + 1;
    v->count = count;
    v->data = cts;
    *out = v;
    return VEIL_OK;
}
