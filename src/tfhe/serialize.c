/* Serialization of TFHE objects in the container format (docs/format.md). Every object carries
 * its parameters and their fingerprint; readers bound every size by the section length before
 * allocating and never abort. */
#include <math.h>
#include <string.h>

#include "../core/container.h"
#include "serialize.h"
#include "tfhe_internal.h"

#define TAG_SEED VEIL_TAG('S', 'E', 'E', 'D')
#define TAG_BSK VEIL_TAG('B', 'S', 'K', ' ')
#define TAG_BSKF VEIL_TAG('B', 'S', 'K', 'F')
#define TAG_KSK VEIL_TAG('K', 'S', 'K', ' ')
#define TAG_LWE VEIL_TAG('L', 'W', 'E', 'S')
#define TAG_PART VEIL_TAG('P', 'A', 'R', 'T')
#define TAG_CLRV VEIL_TAG('C', 'L', 'R', 'V')

static int needs_v2(const veil_params *p)
{
    return (p->ks_in_dim && p->ks_in_dim != veil_params_big_lwe_dim(p)) || p->sets_fingerprint;
}

void veil_params_put(veil_buf *b, const veil_params *p)
{
    char name[16] = {0};
    memcpy(name, p->name, strnlen(p->name, sizeof name));
    veil_buf_put(b, name, sizeof name);
    veil_buf_put_u32(b, p->n);
    veil_buf_put_u32(b, p->k);
    veil_buf_put_u32(b, p->log2_N);
    const veil_noise *zs[2] = {&p->lwe_noise, &p->glwe_noise};
    for (int i = 0; i < 2; i++) {
        veil_buf_put_u32(b, (uint32_t)zs[i]->kind);
        veil_buf_put_f64(b, zs[i]->log2_std);
        veil_buf_put_u32(b, zs[i]->bound_log2);
    }
    veil_buf_put_u32(b, p->pbs_base_log);
    veil_buf_put_u32(b, p->pbs_levels);
    veil_buf_put_u32(b, p->ks_base_log);
    veil_buf_put_u32(b, p->ks_levels);
    /* format version 2: a partition's key-switching source dimension (u32), a shared key's list
     * fingerprint (u64), each present only when nonzero */
    if (p->ks_in_dim && p->ks_in_dim != veil_params_big_lwe_dim(p)) veil_buf_put_u32(b, p->ks_in_dim);
    if (p->sets_fingerprint) veil_buf_put_u64(b, p->sets_fingerprint);
    veil_buf_put_u64(b, veil_params_fingerprint(p));
}

veil_status veil_params_get(const uint8_t *d, size_t len, veil_params *p)
{
    veil_cursor cur = {d, len, 0};
    memset(p, 0, sizeof *p);
    veil_cursor_bytes(&cur, p->name, sizeof p->name);
    p->name[sizeof p->name - 1] = 0;
    p->n = veil_cursor_u32(&cur);
    p->k = veil_cursor_u32(&cur);
    p->log2_N = veil_cursor_u32(&cur);
    veil_noise *zs[2] = {&p->lwe_noise, &p->glwe_noise};
    for (int i = 0; i < 2; i++) {
        uint32_t kind = veil_cursor_u32(&cur);
        zs[i]->kind = kind < VEIL_NOISE_KIND_COUNT ? (veil_noise_kind)kind : VEIL_NOISE_KIND_COUNT;
        zs[i]->log2_std = veil_cursor_f64(&cur);
        zs[i]->bound_log2 = veil_cursor_u32(&cur);
    }
    p->pbs_base_log = veil_cursor_u32(&cur);
    p->pbs_levels = veil_cursor_u32(&cur);
    p->ks_base_log = veil_cursor_u32(&cur);
    p->ks_levels = veil_cursor_u32(&cur);
    int extra = 0; /* version-2 fields are present only when nonzero */
    if (cur.left == 12 || cur.left == 20) p->ks_in_dim = veil_cursor_u32(&cur), extra |= !p->ks_in_dim;
    if (cur.left == 16) p->sets_fingerprint = veil_cursor_u64(&cur), extra |= !p->sets_fingerprint;
    uint64_t fp = veil_cursor_u64(&cur);
    if (cur.bad || cur.left || extra) return VEIL_ERR_MALFORMED;
    if (veil_params_check(p) != VEIL_OK) return VEIL_ERR_MALFORMED;
    if ((p->ks_in_dim && p->ks_in_dim == veil_params_big_lwe_dim(p)) || fp != veil_params_fingerprint(p))
        return VEIL_ERR_MALFORMED;
    return VEIL_OK;
}

void veil_params_write_section(veil_writer *w, const veil_params *p)
{
    if (needs_v2(p)) veil_writer_version(w, 2);
    veil_writer_section(w, TAG_PARAMS);
    veil_params_put(&w->b, p);
}

veil_status veil_params_read_section(const veil_container *c, const veil_params *expect, veil_params *p)
{
    const uint8_t *d;
    size_t len;
    veil_status s = veil_container_section(c, TAG_PARAMS, &d, &len);
    if (s != VEIL_OK) return s;
    if ((s = veil_params_get(d, len, p)) != VEIL_OK) return s;
    if (c->version < 2 && needs_v2(p)) return VEIL_ERR_MALFORMED;
    if (expect && veil_params_fingerprint(p) != veil_params_fingerprint(expect)) return VEIL_ERR_PARAMS_MISMATCH;
    return VEIL_OK;
}

veil_status veil_open_object(const uint8_t *buf, size_t len, veil_kind kind, uint32_t flags,
                               const veil_params *expect, veil_container *c, veil_params *p)
{
    veil_status s = veil_container_parse(buf, len, kind, flags, c);
    return s == VEIL_OK ? veil_params_read_section(c, expect, p) : s;
}

/* ---- evaluation keys --------------------------------------------------------------------------- */

/* One parameter set's keys (ek->next is not followed). */
static veil_status serialize_one(const veil_eval_keys *ek, int compressed, uint8_t **out, size_t *len)
{
    if (compressed && (!ek->has_seed || !ek->bsk_bodies)) return VEIL_ERR_UNSUPPORTED;
    const veil_params *p = &ek->p;
    veil_key_sizes sz = veil_params_key_sizes(p);
    const size_t N = veil_params_N(p), k = p->k, n = p->n, rows = (k + 1) * p->pbs_levels;
    const size_t big = veil_params_ks_dim(p), lk = p->ks_levels;
    veil_writer w;
    veil_writer_begin(&w, VEIL_KIND_EVAL_KEYS, compressed ? VEIL_FLAG_SEEDED : 0);
    veil_params_write_section(&w, p);
    if (compressed) {
        veil_writer_section(&w, TAG_SEED);
        veil_buf_put(&w.b, ek->mask_seed, VEIL_SEED_BYTES);
        veil_writer_section(&w, TAG_BSK);
        veil_buf_put_u64s(&w.b, ek->bsk_bodies, n * rows * N);
        veil_writer_section(&w, TAG_KSK);
        for (size_t r = 0; r < big * lk; r++) veil_buf_put_u64(&w.b, ek->ksk[r * (n + 1) + n]);
    } else {
        /* the Fourier-domain key as it is held in memory (IEEE-754 bit patterns) */
        veil_writer_section(&w, TAG_BSKF);
        veil_buf_put_u64s(&w.b, (const uint64_t *)(const void *)ek->bsk_f, sz.bsk_fourier_bytes / 8);
        veil_writer_section(&w, TAG_KSK);
        veil_buf_put_u64s(&w.b, ek->ksk, sz.ksk_bytes / 8);
    }
    return veil_writer_finish(&w, out, len);
}

/* Several parameter sets (format version 2): their shared parameters, then one PART section per
 * set, each a whole single-set object. */
veil_status veil_eval_keys_serialize(const veil_eval_keys *ek, int compressed, uint8_t **out, size_t *len)
{
    if (!ek || !out || !len) return VEIL_ERR_INVALID_ARG;
    *out = NULL;
    if (!ek->next) return serialize_one(ek, compressed, out, len);
    veil_writer w;
    veil_writer_begin(&w, VEIL_KIND_EVAL_KEYS, compressed ? VEIL_FLAG_SEEDED : 0);
    veil_writer_version(&w, 2);
    veil_params_write_section(&w, veil_eval_keys_params(ek));
    for (const veil_eval_keys *e = ek; e; e = e->next) {
        uint8_t *b = NULL;
        size_t bl = 0;
        veil_status s = serialize_one(e, compressed, &b, &bl);
        if (s != VEIL_OK) {
            veil_buf_free(&w.b);
            return s;
        }
        veil_writer_section(&w, TAG_PART);
        veil_buf_put(&w.b, b, bl);
        veil_free(b);
    }
    return veil_writer_finish(&w, out, len);
}

static veil_status read_words(const veil_container *c, uint32_t tag, uint64_t words, uint64_t **out)
{
    const uint8_t *d;
    size_t dl;
    *out = NULL;
    veil_status s = veil_container_section(c, tag, &d, &dl);
    if (s != VEIL_OK) return s;
    if (words > SIZE_MAX / 8 || dl != words * 8) return VEIL_ERR_MALFORMED; /* bounds the allocation */
    uint64_t *v = veil_malloc((size_t)words * 8);
    if (!v) return VEIL_ERR_NOMEM;
    veil_cursor cur = {d, dl, 0};
    veil_cursor_u64s(&cur, v, (size_t)words);
    *out = v;
    return VEIL_OK;
}

static veil_status deserialize_one(const veil_container *cp, const veil_params *pp, veil_eval_keys **out)
{
    const veil_container c = *cp;
    const veil_params p = *pp;
    uint64_t *bsk = NULL, *ksk = NULL;
    veil_status s;
    const uint64_t N = veil_params_N(&p), k = p.k, n = p.n, rows = (k + 1) * p.pbs_levels;
    const uint64_t big = veil_params_ks_dim(&p), lk = p.ks_levels;
    veil_key_sizes sz = veil_params_key_sizes(&p);
    if (c.flags & VEIL_FLAG_SEEDED) {
        const uint8_t *seed;
        size_t sl;
        if ((s = veil_container_section(&c, TAG_SEED, &seed, &sl)) != VEIL_OK) return s;
        if (sl != VEIL_SEED_BYTES) return VEIL_ERR_MALFORMED;
        if ((s = read_words(&c, TAG_BSK, n * rows * N, &bsk)) == VEIL_OK &&
            (s = read_words(&c, TAG_KSK, big * lk, &ksk)) == VEIL_OK)
            s = veil_eval_keys_expand(&p, seed, bsk, ksk, out);
        veil_free(bsk);
        veil_free(ksk);
        return s;
    }
    /* expanded: the Fourier-domain key (BSKF), or, in files written before it, the standard-domain
     * key (BSK), converted here */
    const uint8_t *d;
    size_t dl;
    int fourier = veil_container_section(&c, TAG_BSKF, &d, &dl) == VEIL_OK;
    if ((s = read_words(&c, fourier ? TAG_BSKF : TAG_BSK, (fourier ? sz.bsk_fourier_bytes : sz.bsk_bytes) / 8, &bsk)) !=
        VEIL_OK)
        return s;
    if ((s = read_words(&c, TAG_KSK, sz.ksk_bytes / 8, &ksk)) != VEIL_OK) {
        veil_free(bsk);
        return s;
    }
    if (!fourier) return veil_eval_keys_from_parts(&p, bsk, ksk, 0, out);
    double *bf = (double *)(void *)bsk;
    for (size_t i = 0; i < sz.bsk_fourier_bytes / 8; i++)
        if (!isfinite(bf[i])) {
            veil_free(bsk);
            veil_free(ksk);
            return VEIL_ERR_MALFORMED;
        }
    return veil_eval_keys_from_fourier(&p, bf, ksk, out);
}

/* ---- ciphertext lists -------------------------------------------------------------------------- */

veil_status veil_eval_keys_deserialize(const uint8_t *buf, size_t len, const veil_params *expect,
                                       veil_eval_keys **out)
{
    if (!buf || !out) return VEIL_ERR_INVALID_ARG;
    *out = NULL;
    veil_container c;
    veil_params p;
    veil_status s = veil_open_object(buf, len, VEIL_KIND_EVAL_KEYS, VEIL_FLAG_SEEDED, expect, &c, &p);
    if (s != VEIL_OK) return s;
    const uint8_t *d;
    size_t dl;
    if (veil_container_section(&c, TAG_PART, &d, &dl) != VEIL_OK) return deserialize_one(&c, &p, out);
    /* several parameter sets: every PART is a whole single-set object in the outer one's form
     * (compressed or not); the outer parameters are the sets' shared ones */
    veil_eval_keys *all = NULL;
    size_t parts = 0;
    for (uint32_t i = 0; i < c.nsections && s == VEIL_OK; i++) {
        if (c.tags[i] != TAG_PART) continue;
        veil_container ci;
        veil_params pi;
        veil_eval_keys *e = NULL;
        s = veil_open_object(c.sec[i], (size_t)c.sec_len[i], VEIL_KIND_EVAL_KEYS, VEIL_FLAG_SEEDED, NULL, &ci, &pi);
        if (s == VEIL_OK && ((ci.flags ^ c.flags) & VEIL_FLAG_SEEDED)) s = VEIL_ERR_MALFORMED;
        if (s == VEIL_OK && veil_container_section(&ci, TAG_PART, &d, &dl) == VEIL_OK) s = VEIL_ERR_MALFORMED;
        if (s == VEIL_OK && ++parts > VEIL_MAX_PARTS) s = VEIL_ERR_MALFORMED;
        if (s == VEIL_OK) s = deserialize_one(&ci, &pi, &e);
        if (s == VEIL_OK) {
            if (!all) all = e;
            else s = veil_eval_keys_append(all, e);
        }
    }
    if (s == VEIL_OK && (c.version < 2 || parts < 2 || !veil_params_same(veil_eval_keys_params(all), &p)))
        s = VEIL_ERR_MALFORMED;
    if (s != VEIL_OK) {
        veil_eval_keys_free(all);
        return s == VEIL_ERR_INVALID_ARG ? VEIL_ERR_MALFORMED : s;
    }
    *out = all;
    return VEIL_OK;
}

static int dim_ok(const veil_params *p, uint32_t dim) { return dim == p->n || dim == veil_params_big_lwe_dim(p); }

veil_status veil_lwe_list_write(const veil_params *p, uint32_t dim, const uint8_t *seed, const uint64_t *data,
                                size_t count, const int64_t *clear, size_t nclear, const uint8_t *model_id, uint8_t **out,
                                size_t *len)
{
    if (!p || (!data && count) || (!clear && nclear) || !out || !len || !dim_ok(p, dim)) return VEIL_ERR_INVALID_ARG;
    veil_writer w;
    veil_writer_begin(&w, VEIL_KIND_LWE_CIPHERTEXTS, seed ? VEIL_FLAG_SEEDED : 0);
    veil_params_write_section(&w, p);
    if (seed) {
        veil_writer_section(&w, TAG_SEED);
        veil_buf_put(&w.b, seed, VEIL_SEED_BYTES);
    }
    veil_writer_section(&w, TAG_LWE);
    veil_buf_put_u32(&w.b, dim);
    veil_buf_put_u64(&w.b, count);
    veil_buf_put_u64s(&w.b, data, seed ? count : count * ((size_t)dim + 1));
    if (nclear) {
        veil_writer_section(&w, TAG_CLRV);
        veil_buf_put_u64(&w.b, nclear);
        for (size_t i = 0; i < nclear; i++) veil_buf_put_u64(&w.b, (uint64_t)clear[i]);
    }
    if (model_id) {
        veil_writer_section(&w, TAG_MDID);
        veil_buf_put(&w.b, model_id, VEIL_MODEL_ID_BYTES);
    }
    return veil_writer_finish(&w, out, len);
}

veil_status veil_lwe_list_serialize(const veil_params *p, uint32_t dim, const uint64_t *cts, size_t count,
                                    uint8_t **out, size_t *len)
{
    return veil_lwe_list_write(p, dim, NULL, cts, count, NULL, 0, NULL, out, len);
}

veil_status veil_lwe_list_serialize_seeded_clear(const veil_params *p, uint32_t dim, const uint8_t seed[VEIL_SEED_BYTES],
                                                 const uint64_t *bodies, size_t count, const int64_t *clear,
                                                 size_t nclear, uint8_t **out, size_t *len)
{
    if (!seed) return VEIL_ERR_INVALID_ARG;
    return veil_lwe_list_write(p, dim, seed, bodies, count, clear, nclear, NULL, out, len);
}

veil_status veil_lwe_list_serialize_seeded(const veil_params *p, uint32_t dim, const uint8_t seed[VEIL_SEED_BYTES],
                                           const uint64_t *bodies, size_t count, uint8_t **out, size_t *len)
{
    return veil_lwe_list_serialize_seeded_clear(p, dim, seed, bodies, count, NULL, 0, out, len);
}

veil_status veil_lwe_list_model_id(const uint8_t *buf, size_t len, uint8_t id[VEIL_MODEL_ID_BYTES])
{
    if (!buf || !id) return VEIL_ERR_INVALID_ARG;
    veil_container c;
    veil_status s = veil_container_parse(buf, len, VEIL_KIND_LWE_CIPHERTEXTS, VEIL_FLAG_SEEDED, &c);
    if (s != VEIL_OK) return s;
    const uint8_t *d;
    size_t dl;
    if (veil_container_section(&c, TAG_MDID, &d, &dl) != VEIL_OK || dl != VEIL_MODEL_ID_BYTES) return VEIL_ERR_MALFORMED;
    memcpy(id, d, VEIL_MODEL_ID_BYTES);
    return VEIL_OK;
}

veil_status veil_lwe_list_clear_values(const uint8_t *buf, size_t len, int64_t **vals, size_t *n)
{
    if (!buf || !vals || !n) return VEIL_ERR_INVALID_ARG;
    *vals = NULL;
    *n = 0;
    veil_container c;
    veil_status s = veil_container_parse(buf, len, VEIL_KIND_LWE_CIPHERTEXTS, VEIL_FLAG_SEEDED, &c);
    if (s != VEIL_OK) return s;
    const uint8_t *d;
    size_t dl;
    if (veil_container_section(&c, TAG_CLRV, &d, &dl) != VEIL_OK) return VEIL_OK; /* none */
    veil_cursor cur = {d, dl, 0};
    uint64_t count = veil_cursor_u64(&cur);
    if (cur.bad || count == 0 || count > cur.left / 8 || cur.left != count * 8) return VEIL_ERR_MALFORMED;
    int64_t *v = veil_malloc((size_t)count * 8);
    if (!v) return VEIL_ERR_NOMEM;
    for (uint64_t i = 0; i < count; i++) v[i] = (int64_t)veil_cursor_u64(&cur);
    *vals = v;
    *n = (size_t)count;
    return VEIL_OK;
}

veil_status veil_lwe_list_deserialize(const uint8_t *buf, size_t len, const veil_params *expect, uint32_t *dim_out,
                                      uint64_t **cts_out, size_t *count_out)
{
    if (!buf || !dim_out || !cts_out || !count_out) return VEIL_ERR_INVALID_ARG;
    *cts_out = NULL;
    veil_container c;
    veil_params p;
    veil_status s = veil_open_object(buf, len, VEIL_KIND_LWE_CIPHERTEXTS, VEIL_FLAG_SEEDED, expect, &c, &p);
    if (s != VEIL_OK) return s;
    const uint8_t *d;
    size_t dl;
    if ((s = veil_container_section(&c, TAG_LWE, &d, &dl)) != VEIL_OK) return s;
    veil_cursor cur = {d, dl, 0};
    uint32_t dim = veil_cursor_u32(&cur);
    uint64_t count = veil_cursor_u64(&cur);
    if (cur.bad || !dim_ok(&p, dim)) return VEIL_ERR_MALFORMED;
    int seeded = (c.flags & VEIL_FLAG_SEEDED) != 0;
    uint64_t words_in = seeded ? count : count * ((uint64_t)dim + 1);
    if (count > cur.left / 8 || words_in > cur.left / 8 || cur.left != words_in * 8) return VEIL_ERR_MALFORMED;
    /* count ≤ section bytes / 8, so the expanded list is at most (dim+1)× the file: bounded */
    uint64_t total = count * ((uint64_t)dim + 1);
    if (total > SIZE_MAX / 8) return VEIL_ERR_MALFORMED;
    uint64_t *cts = veil_malloc(total ? (size_t)total * 8 : 8);
    if (!cts) return VEIL_ERR_NOMEM;
    if (seeded) {
        const uint8_t *seed;
        size_t sl;
        uint64_t *bodies = veil_malloc(count ? (size_t)count * 8 : 8);
        s = veil_container_section(&c, TAG_SEED, &seed, &sl);
        if (s == VEIL_OK && sl != VEIL_SEED_BYTES) s = VEIL_ERR_MALFORMED;
        if (s == VEIL_OK && !bodies) s = VEIL_ERR_NOMEM;
        if (s == VEIL_OK) {
            veil_cursor_u64s(&cur, bodies, (size_t)count);
            s = veil_lwe_expand_seeded(dim, seed, bodies, (size_t)count, cts);
        }
        veil_free(bodies);
    } else {
        veil_cursor_u64s(&cur, cts, (size_t)total);
    }
    if (s != VEIL_OK) {
        veil_free(cts);
        return s;
    }
    *dim_out = dim;
    *cts_out = cts;
    *count_out = (size_t)count;
    return VEIL_OK;
}
