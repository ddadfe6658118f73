/* Spread lookup batches as messages: encoding a share on rank 0, rebuilding and running it on a
 * worker, putting its outputs back. No transport here (mpi.c). */
#include <string.h>

#include "dist_impl.h"

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "batch messages are written in host order: little-endian");

#define BATCH_MAGIC 0x56415756u /* "VWAV" */
#define BATCH_VERSION 1u
#define HEADER_WORDS 9 /* u32 after the magic: version, key_id (2), part, delta, njobs, ntables, nouts, out_words */

void dist_buf_free(dist_buf *b)
{
    veil_free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

static int buf_put(dist_buf *b, const void *src, size_t n)
{
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n) cap *= 2;
        uint8_t *p = veil_realloc(b->p, b->cap, cap);
        if (!p) return 0;
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, src, n);
    b->len += n;
    return 1;
}

static int put32(dist_buf *b, uint32_t v) { return buf_put(b, &v, 4); }

static uint32_t out_words_of(const veil_spread_batch *b)
{
    return veil_params_big_lwe_dim(veil_eval_keys_part_params(b->ek, b->part)) + 1;
}

size_t dist_out_words(const veil_spread_batch *b, size_t j0, size_t j1)
{
    size_t n = 0;
    for (size_t j = j0; j < j1; j++) n += b->jobs[j].nout;
    return n * out_words_of(b);
}

veil_status dist_batch_encode(const veil_spread_batch *b, uint64_t key_id, size_t j0, size_t j1, dist_buf *out)
{
    out->len = 0;
    if (!b || j0 > j1 || j1 > b->njobs || !veil_eval_keys_part_params(b->ek, b->part)) return VEIL_ERR_INVALID_ARG;
    size_t o0 = 0, nouts = 0;
    for (size_t j = 0; j < j0; j++) o0 += b->jobs[j].nout;
    for (size_t j = j0; j < j1; j++) nouts += b->jobs[j].nout;
    /* the tables these jobs read, renumbered in order of first use */
    uint32_t *map = veil_malloc(sizeof(uint32_t) * (b->ntables ? b->ntables : 1));
    uint32_t *used = veil_malloc(sizeof(uint32_t) * (nouts ? nouts : 1));
    veil_status st = map && used ? VEIL_OK : VEIL_ERR_NOMEM;
    uint32_t nt = 0;
    if (st == VEIL_OK) {
        memset(map, 0xff, sizeof(uint32_t) * b->ntables);
        for (size_t k = 0; k < nouts && st == VEIL_OK; k++) {
            uint32_t r = b->instr[o0 + k];
            if (r >= b->ntables || !b->tables[r].table || b->tables[r].bits == 0 || b->tables[r].bits > 16)
                st = VEIL_ERR_INVALID_ARG;
            else if (map[r] == UINT32_MAX) {
                map[r] = nt;
                used[nt++] = r;
            }
        }
    }
    const uint32_t hdr[HEADER_WORDS + 1] = {BATCH_MAGIC,        BATCH_VERSION,       (uint32_t)key_id,   (uint32_t)(key_id >> 32),
                                            b->part,            b->delta_log2,       (uint32_t)(j1 - j0), nt,
                                            (uint32_t)nouts,    out_words_of(b)};
    if (st == VEIL_OK && !buf_put(out, hdr, sizeof hdr)) st = VEIL_ERR_NOMEM;
    for (uint32_t t = 0; t < nt && st == VEIL_OK; t++) {
        const veil_spread_table *T = &b->tables[used[t]];
        if (!put32(out, T->bits) || !buf_put(out, T->table, sizeof(int64_t) << T->bits)) st = VEIL_ERR_NOMEM;
    }
    size_t o = o0;
    for (size_t j = j0; j < j1 && st == VEIL_OK; j++) {
        const veil_pbs_job *J = &b->jobs[j];
        if (!put32(out, J->in_dim) || !put32(out, J->in_shift) || !put32(out, J->factor != NULL) || !put32(out, J->nout))
            st = VEIL_ERR_NOMEM;
        for (uint32_t q = 0; q < J->nout && st == VEIL_OK; q++)
            if (!put32(out, map[b->instr[o++]])) st = VEIL_ERR_NOMEM;
    }
    for (size_t j = j0; j < j1 && st == VEIL_OK; j++)
        if (!buf_put(out, b->jobs[j].in, sizeof(uint64_t) * ((size_t)b->jobs[j].in_dim + 1))) st = VEIL_ERR_NOMEM;
    veil_free(map);
    veil_free(used);
    return st;
}

/* ---- reading a batch: every length bounded before it is used --------------------------------- */
typedef struct {
    const uint8_t *p;
    size_t len, at;
} reader;

static int get32(reader *r, uint32_t *v)
{
    if (r->len - r->at < 4) return 0;
    memcpy(v, r->p + r->at, 4);
    r->at += 4;
    return 1;
}

static const uint8_t *take(reader *r, size_t n)
{
    if (r->len - r->at < n) return NULL;
    const uint8_t *p = r->p + r->at;
    r->at += n;
    return p;
}

veil_status dist_batch_key_id(const uint8_t *msg, size_t len, uint64_t *key_id)
{
    uint32_t h[4];
    if (!msg || len < sizeof h) return VEIL_ERR_MALFORMED;
    memcpy(h, msg, sizeof h);
    if (h[0] != BATCH_MAGIC || h[1] != BATCH_VERSION) return VEIL_ERR_MALFORMED;
    *key_id = (uint64_t)h[3] << 32 | h[2];
    return VEIL_OK;
}

typedef struct {
    const int64_t *table; /* unaligned in the message: copied */
    unsigned bits;
    veil_lut *plain;
    veil_mv_factor *factor;
} rtable;

veil_status dist_batch_run(const uint8_t *msg, size_t len, const veil_eval_keys *ek, unsigned threads,
                           uint64_t **outputs, size_t *nwords)
{
    *outputs = NULL;
    *nwords = 0;
    reader r = {msg, len, 0};
    uint32_t h[HEADER_WORDS + 1];
    for (int i = 0; i <= HEADER_WORDS; i++)
        if (!get32(&r, &h[i])) return VEIL_ERR_MALFORMED;
    if (h[0] != BATCH_MAGIC || h[1] != BATCH_VERSION) return VEIL_ERR_MALFORMED;
    const uint32_t part = h[4], delta = h[5], njobs = h[6], nt = h[7], nouts = h[8], ow = h[9];
    const veil_eval_keys *pk = veil_eval_keys_part(ek, part);
    const veil_params *P = veil_eval_keys_part_params(ek, part);
    if (!pk || !P) return VEIL_ERR_PARAMS_MISMATCH;
    if (ow != veil_params_big_lwe_dim(P) + 1 || delta > 62 || nt > nouts || nouts < njobs) return VEIL_ERR_MALFORMED;
    rtable *tabs = veil_calloc(nt ? nt : 1, sizeof *tabs);
    veil_pbs_job *jobs = veil_calloc(njobs ? njobs : 1, sizeof *jobs);
    uint64_t **outp = veil_malloc(sizeof(uint64_t *) * (nouts ? nouts : 1));
    const veil_mv_factor **facs = veil_calloc(nouts ? nouts : 1, sizeof *facs);
    uint32_t *tix = veil_malloc(sizeof(uint32_t) * (nouts ? nouts : 1));
    uint64_t *vals = veil_malloc(sizeof(uint64_t) << 16);
    int64_t *tcopy = veil_malloc(sizeof(int64_t) << 16);
    uint64_t *out = NULL, *ins = NULL;
    veil_lut *base = NULL;
    veil_status st = tabs && jobs && outp && facs && tix && vals && tcopy ? VEIL_OK : VEIL_ERR_NOMEM;
    for (uint32_t t = 0; t < nt && st == VEIL_OK; t++) {
        uint32_t bits;
        if (!get32(&r, &bits) || bits == 0 || bits > 16 || !(tabs[t].table = (const int64_t *)take(&r, sizeof(int64_t) << bits)))
            st = VEIL_ERR_MALFORMED;
        else
            tabs[t].bits = bits;
    }
    size_t o = 0, in_words = 0;
    for (uint32_t j = 0; j < njobs && st == VEIL_OK; j++) {
        uint32_t d, sh, mv, no;
        if (!get32(&r, &d) || !get32(&r, &sh) || !get32(&r, &mv) || !get32(&r, &no) || d == 0 ||
            d > veil_params_ks_dim(P) || sh > 63 || mv > 1 || no == 0 || (!mv && no != 1) || no > nouts - o) {
            st = VEIL_ERR_MALFORMED;
            break;
        }
        jobs[j] = (veil_pbs_job){.in_dim = d, .in_shift = sh, .nout = no, .out = outp + o, .factor = mv ? facs + o : NULL};
        for (uint32_t q = 0; q < no && st == VEIL_OK; q++, o++)
            if (!get32(&r, &tix[o]) || tix[o] >= nt) st = VEIL_ERR_MALFORMED;
        in_words += (size_t)d + 1;
    }
    if (st == VEIL_OK && o != nouts) st = VEIL_ERR_MALFORMED;
    const uint8_t *inb = st == VEIL_OK ? take(&r, sizeof(uint64_t) * in_words) : NULL;
    if (st == VEIL_OK && (!inb || r.at != r.len)) st = VEIL_ERR_MALFORMED;
    if (st == VEIL_OK && (!(out = veil_malloc(sizeof(uint64_t) * (size_t)nouts * ow + 1)) ||
                          !(ins = veil_malloc(sizeof(uint64_t) * (in_words ? in_words : 1)))))
        st = VEIL_ERR_NOMEM;
    if (st == VEIL_OK) memcpy(ins, inb, sizeof(uint64_t) * in_words); /* aligned */
    /* the polynomials: a plain lookup's test polynomial or a multi-value factor per table, as used;
     * the partition's multi-value base once */
    o = 0;
    size_t at = 0;
    for (uint32_t j = 0; j < njobs && st == VEIL_OK; j++) {
        veil_pbs_job *J = &jobs[j];
        J->in = ins + at;
        at += (size_t)J->in_dim + 1;
        for (uint32_t q = 0; q < J->nout && st == VEIL_OK; q++, o++) {
            outp[o] = out + o * ow;
            rtable *T = &tabs[tix[o]];
            const size_t n = (size_t)1 << T->bits;
            memcpy(tcopy, T->table, sizeof(int64_t) * n);
            if (!J->factor) {
                if (!T->plain) {
                    for (size_t i = 0; i < n; i++) vals[i] = (uint64_t)tcopy[i] << delta;
                    st = veil_lut_new_torus(P, T->bits, vals, &T->plain);
                }
                J->lut = T->plain;
            } else {
                if (!T->factor) st = veil_mv_factor_new(P, T->bits, tcopy, delta, &T->factor);
                if (st == VEIL_OK && !base) st = veil_lut_new_mv_base(P, delta, &base);
                facs[o] = T->factor;
                J->lut = base;
            }
        }
    }
    if (st == VEIL_OK) st = veil_ks_pbs_jobs(pk, jobs, njobs, threads);
    for (uint32_t t = 0; tabs && t < nt; t++) {
        veil_lut_free(tabs[t].plain);
        veil_mv_factor_free(tabs[t].factor);
    }
    veil_lut_free(base);
    veil_free(tabs);
    veil_free(jobs);
    veil_free(outp);
    veil_free(facs);
    veil_free(tix);
    veil_free(vals);
    veil_free(tcopy);
    veil_free(ins);
    if (st != VEIL_OK) {
        veil_free(out);
        return st;
    }
    *outputs = out;
    *nwords = (size_t)nouts * ow;
    return VEIL_OK;
}

void dist_outputs_apply(const veil_spread_batch *b, size_t j0, size_t j1, const uint64_t *outputs)
{
    const size_t ow = out_words_of(b);
    for (size_t j = j0; j < j1; j++)
        for (uint32_t q = 0; q < b->jobs[j].nout; q++, outputs += ow) memcpy(b->jobs[j].out[q], outputs, 8 * ow);
}

void dist_split(size_t n, int ranks, const double *weight, size_t *first)
{
    double total = 0;
    for (int r = 0; r < ranks; r++) total += weight[r] > 0 ? weight[r] : 0;
    first[0] = 0;
    /* cumulative rounding: the shares add up to n exactly; a rank of weight 0 gets none; with no
     * weight at all, everything is rank 0's */
    double acc = 0;
    for (int r = 0; r < ranks; r++) {
        acc += weight[r] > 0 ? weight[r] : 0;
        size_t end = total <= 0 ? n : r == ranks - 1 ? n : (size_t)((double)n * (acc / total) + 0.5);
        if (weight[r] <= 0 && total > 0) end = first[r];
        if (end < first[r]) end = first[r];
        if (end > n) end = n;
        first[r + 1] = end;
    }
    if (total > 0 && first[ranks] != n) { /* the last ranks were left out: the rest to the last live one */
        int last = ranks - 1;
        while (last > 0 && weight[last] <= 0) last--;
        for (int r = last + 1; r <= ranks; r++) first[r] = n;
    }
}
