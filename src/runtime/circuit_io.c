/* Compiled circuits in the container format (docs/format.md, "Circuits"): the runtime owns the
 * program format. Readers bound every count by what is left of its section before allocating and
 * check every slot, so a hostile file gives an error, never an out-of-bounds access. */
#include <string.h>

#include "../compiler/circuit.h"
#include "../tfhe/serialize.h"
#include "circuit_io.h"
#include "veil/runtime.h"

#define TAG_CIRC VEIL_TAG('C', 'I', 'R', 'C')
#define TAG_SLOT VEIL_TAG('S', 'L', 'O', 'T')
#define TAG_INST VEIL_TAG('I', 'N', 'S', 'T')
#define TAG_LIST VEIL_TAG('L', 'I', 'S', 'T')
#define TAG_PRTS VEIL_TAG('P', 'R', 'T', 'S') /* version 2: the parameter sets of the partitions */
#define TAG_TPRT VEIL_TAG('T', 'P', 'R', 'T') /* version 2: each lookup instruction's partition */
#define TAG_TMVL VEIL_TAG('T', 'M', 'V', 'L') /* optional: each lookup's multi-value flag (0 or 1);
                                                * a reader without it runs them as plain lookups,
                                                * whose noise is lower */

#define MAX_TLU_BITS 24u /* what the lowering accepts at most */
#define MAX_PRECISION 62u

static void put_i64(veil_buf *b, int64_t v) { veil_buf_put_u64(b, (uint64_t)v); }
static int64_t cur_i64(veil_cursor *c) { return (int64_t)veil_cursor_u64(c); }

/* A shape whose element count is `size` (checked). */
static int get_shape(veil_cursor *c, int64_t size, int *ndim, int64_t *shape)
{
    return veil_cursor_shape(c, VEIL_MAX_DIMS, ndim, shape) == size;
}

static void put_stats(veil_buf *b, const veil_circuit_stats *s)
{
    veil_buf_put_u32(b, s->precision);
    veil_buf_put_u64(b, s->pbs_count);
    veil_buf_put_u64(b, s->ks_count);
    veil_buf_put_u64(b, s->linear_terms);
    veil_buf_put_f64(b, s->max_norm2);
    veil_buf_put_u64(b, s->bsk_bytes);
    veil_buf_put_u64(b, s->ksk_bytes);
    veil_buf_put_u64(b, s->input_bytes);
    veil_buf_put_u64(b, s->output_bytes);
    veil_buf_put_f64(b, s->cost);
    veil_buf_put_f64(b, s->p_error);
    veil_buf_put_f64(b, s->global_p_error);
}

static void get_stats(veil_cursor *c, veil_circuit_stats *s)
{
    s->precision = veil_cursor_u32(c);
    s->pbs_count = veil_cursor_u64(c);
    s->ks_count = veil_cursor_u64(c);
    s->linear_terms = veil_cursor_u64(c);
    s->max_norm2 = veil_cursor_f64(c);
    s->bsk_bytes = veil_cursor_u64(c);
    s->ksk_bytes = veil_cursor_u64(c);
    s->input_bytes = veil_cursor_u64(c);
    s->output_bytes = veil_cursor_u64(c);
    s->cost = veil_cursor_f64(c);
    s->p_error = veil_cursor_f64(c);
    s->global_p_error = veil_cursor_f64(c);
}

veil_status veil_circuit_write_sections(veil_writer *w, const veil_circuit *c, int with_program)
{
    if (!w || !c) return VEIL_ERR_INVALID_ARG;
    if (c->graph) return VEIL_ERR_UNSUPPORTED;
    const veil_program *p = c->prog;
    if (with_program && p->interface_only) return VEIL_ERR_UNSUPPORTED;
    veil_params_write_section(w, &c->params);

    veil_writer_section(w, TAG_CIRC);
    veil_buf *b = &w->b;
    veil_buf_put_u32(b, p->precision);
    veil_buf_put_u32(b, p->tlu_precision);
    veil_buf_put_u32(b, c->max_bit_width);
    veil_buf_put_u64(b, p->n_tlu);
    veil_buf_put_u64(b, p->n_terms);
    veil_buf_put_f64(b, p->noise_scale);
    veil_buf_put_f64(b, p->tlu_a);
    veil_buf_put_f64(b, p->tlu_b);
    veil_buf_put_f64(b, p->out_a);
    veil_buf_put_f64(b, p->out_b);
    put_stats(b, &c->stats);
    veil_buf_put_u32(b, p->nslots);
    veil_buf_put_u32(b, (uint32_t)p->ninputs);
    for (size_t i = 0; i < p->ninputs; i++) {
        const veil_prog_input *in = &p->inputs[i];
        size_t nl = strnlen(in->name, sizeof in->name - 1);
        veil_buf_put_u32(b, (uint32_t)nl);
        veil_buf_put(b, in->name, nl);
        veil_buf_put_u32(b, (uint32_t)in->encrypted);
        put_i64(b, in->size);
        veil_buf_put_shape(b, in->ndim, in->shape);
        veil_buf_put_u32(b, in->base);
    }
    veil_buf_put_u32(b, (uint32_t)p->noutputs);
    for (size_t j = 0; j < p->noutputs; j++) {
        const veil_prog_output *o = &p->outputs[j];
        put_i64(b, o->size);
        veil_buf_put_shape(b, o->ndim, o->shape);
        veil_buf_put_u32(b, (uint32_t)o->is_signed);
    }
    if (c->nparts > 1) {
        veil_writer_section(w, TAG_PRTS);
        veil_buf_put_u32(b, (uint32_t)c->nparts);
        veil_buf_put_f64(b, c->stats.single_cost);
        for (size_t j = 0; j < c->nparts; j++) {
            veil_buf pb = {0};
            veil_params_put(&pb, &c->parts[j]);
            veil_buf_put_u32(b, (uint32_t)pb.len);
            veil_buf_put(b, pb.data, pb.len);
            if (pb.failed) b->failed = 1;
            veil_buf_free(&pb);
            const veil_partition_stats *q = &c->pstats[j];
            veil_buf_put_u32(b, q->lookup_bits);
            veil_buf_put_u64(b, q->pbs_count);
            veil_buf_put_u64(b, q->cross_ks_count);
            veil_buf_put_f64(b, q->p_error);
        }
    }
    if (!with_program) return VEIL_OK;
    if (c->nparts > 1) {
        veil_writer_section(w, TAG_TPRT);
        for (size_t i = 0; i < p->ninstr; i++)
            if (p->instr[i].kind == VEIL_INSTR_TLU) veil_buf_put_u32(b, p->instr[i].part);
    }
    int any_mv = 0;
    for (size_t i = 0; i < p->ninstr; i++) any_mv |= p->instr[i].kind == VEIL_INSTR_TLU && p->instr[i].mv;
    if (any_mv) {
        veil_writer_section(w, TAG_TMVL);
        for (size_t i = 0; i < p->ninstr; i++)
            if (p->instr[i].kind == VEIL_INSTR_TLU) {
                const uint8_t f = (uint8_t)p->instr[i].mv;
                veil_buf_put(b, &f, 1);
            }
    }

    veil_writer_section(w, TAG_SLOT);
    for (size_t j = 0; j < p->noutputs; j++)
        for (int64_t e = 0; e < p->outputs[j].size; e++) veil_buf_put_u32(b, p->outputs[j].slots[e]);

    veil_writer_section(w, TAG_INST);
    veil_buf_put_u64(b, p->ninstr);
    for (size_t i = 0; i < p->ninstr; i++) {
        const veil_instr *I = &p->instr[i];
        veil_buf_put_u32(b, (uint32_t)I->kind);
        veil_buf_put_u32(b, (uint32_t)I->origin);
        veil_buf_put_u32(b, (uint32_t)I->input_node);
        veil_buf_put_u32(b, I->out_base);
        veil_buf_put_u32(b, I->count);
        if (I->kind == VEIL_INSTR_LINEAR) {
            veil_buf_put_u64s(b, I->term_off, (size_t)I->count + 1);
            for (uint64_t t = 0; t < I->term_off[I->count]; t++) {
                veil_buf_put_u32(b, I->term_slot[t]);
                put_i64(b, I->term_w[t]);
            }
            for (uint32_t e = 0; e < I->count; e++) put_i64(b, I->cst[e]);
        } else {
            veil_buf_put_u32(b, I->bits);
            veil_buf_put_u32(b, I->shift);
            for (uint32_t e = 0; e < I->count; e++) veil_buf_put_u32(b, I->in_slot[e]);
            for (int64_t t = 0; t < ((int64_t)1 << I->bits); t++) put_i64(b, I->table[t]);
        }
    }

    veil_writer_section(w, TAG_LIST);
    if (c->listing) veil_buf_put(b, c->listing, strlen(c->listing));
    return VEIL_OK;
}

/* ---- reading ---------------------------------------------------------------------------------- */

static veil_status read_interface(veil_cursor *cur, veil_circuit *c, veil_program *p)
{
    p->precision = veil_cursor_u32(cur);
    p->tlu_precision = veil_cursor_u32(cur);
    c->max_bit_width = veil_cursor_u32(cur);
    p->n_tlu = veil_cursor_u64(cur);
    p->n_br = p->n_tlu; /* less what multi-value lookups share (read_tlu_parts) */
    p->n_terms = veil_cursor_u64(cur);
    p->noise_scale = veil_cursor_f64(cur);
    p->tlu_a = veil_cursor_f64(cur);
    p->tlu_b = veil_cursor_f64(cur);
    p->out_a = veil_cursor_f64(cur);
    p->out_b = veil_cursor_f64(cur);
    get_stats(cur, &c->stats);
    c->stats.lookup_bits = p->tlu_precision; /* not stored twice */
    p->nslots = veil_cursor_u32(cur);
    uint32_t ni = veil_cursor_u32(cur);
    /* an input takes at least 4 + 4 + 8 + 4 + 4 bytes, an output 8 + 4 + 4 */
    if (cur->bad || p->precision < 1 || p->precision > MAX_PRECISION || p->tlu_precision > p->precision ||
        ni > cur->left / 24)
        return VEIL_ERR_MALFORMED;
    p->worst_tlu_origin = -1;
    p->ninputs = ni;
    if (!(p->inputs = veil_calloc(ni ? ni : 1, sizeof *p->inputs))) return VEIL_ERR_NOMEM;
    for (uint32_t i = 0; i < ni; i++) {
        veil_prog_input *in = &p->inputs[i];
        uint32_t nl = veil_cursor_u32(cur);
        if (cur->bad || nl >= sizeof in->name || !veil_cursor_bytes(cur, in->name, nl)) return VEIL_ERR_MALFORMED;
        in->name[nl] = 0;
        in->encrypted = (int)veil_cursor_u32(cur);
        in->size = cur_i64(cur);
        if (cur->bad || in->encrypted < 0 || in->encrypted > 1 || in->size < 1 || in->size > p->nslots ||
            !get_shape(cur, in->size, &in->ndim, in->shape))
            return VEIL_ERR_MALFORMED;
        in->base = veil_cursor_u32(cur);
        if (cur->bad || (in->encrypted && (uint64_t)in->base + (uint64_t)in->size > p->nslots))
            return VEIL_ERR_MALFORMED;
    }
    uint32_t no = veil_cursor_u32(cur);
    if (cur->bad || no > cur->left / 16) return VEIL_ERR_MALFORMED;
    p->noutputs = no;
    if (!(p->outputs = veil_calloc(no ? no : 1, sizeof *p->outputs))) return VEIL_ERR_NOMEM;
    for (uint32_t j = 0; j < no; j++) {
        veil_prog_output *o = &p->outputs[j];
        o->size = cur_i64(cur);
        if (cur->bad || o->size < 1 || o->size > ((int64_t)1 << 32) || !get_shape(cur, o->size, &o->ndim, o->shape))
            return VEIL_ERR_MALFORMED;
        uint32_t sg = veil_cursor_u32(cur);
        if (cur->bad || sg > 1) return VEIL_ERR_MALFORMED;
        o->is_signed = (int)sg;
    }
    return cur->bad || cur->left ? VEIL_ERR_MALFORMED : VEIL_OK;
}

/* Slot `s` may be read: it exists and was written. */
static int readable(const uint8_t *written, uint32_t nslots, uint32_t s) { return s < nslots && written[s]; }

/* Marks [base, base+count) written; they must exist and be fresh. */
static int write_slots(uint8_t *written, uint32_t nslots, uint32_t base, uint64_t count)
{
    if ((uint64_t)base + count > nslots) return 0;
    for (uint64_t e = 0; e < count; e++) {
        if (written[base + e]) return 0;
        written[base + e] = 1;
    }
    return 1;
}

static veil_status read_instr(veil_cursor *cur, veil_program *p, veil_instr *I, uint8_t *written)
{
    uint32_t kind = veil_cursor_u32(cur);
    I->origin = (int)veil_cursor_u32(cur);
    I->input_node = (int)veil_cursor_u32(cur);
    I->out_base = veil_cursor_u32(cur);
    I->count = veil_cursor_u32(cur);
    if (cur->bad || kind >= VEIL_INSTR_KIND_COUNT || I->count == 0 || I->count > p->nslots) return VEIL_ERR_MALFORMED;
    I->kind = (veil_instr_kind)kind;
    if (I->kind == VEIL_INSTR_LINEAR) {
        if ((uint64_t)I->count + 1 > cur->left / 8) return VEIL_ERR_MALFORMED;
        if (!(I->term_off = veil_malloc(sizeof(uint64_t) * ((size_t)I->count + 1)))) return VEIL_ERR_NOMEM;
        if (!veil_cursor_u64s(cur, I->term_off, (size_t)I->count + 1) || I->term_off[0] != 0) return VEIL_ERR_MALFORMED;
        for (uint32_t e = 0; e < I->count; e++)
            if (I->term_off[e + 1] < I->term_off[e]) return VEIL_ERR_MALFORMED;
        uint64_t nt = I->term_off[I->count];
        if (nt > cur->left / 12) return VEIL_ERR_MALFORMED;
        I->term_slot = veil_malloc(sizeof(uint32_t) * (nt ? nt : 1));
        I->term_w = veil_malloc(sizeof(int64_t) * (nt ? nt : 1));
        if (I->count > cur->left / 8) return VEIL_ERR_MALFORMED;
        I->cst = veil_malloc(sizeof(int64_t) * I->count);
        if (!I->term_slot || !I->term_w || !I->cst) return VEIL_ERR_NOMEM;
        for (uint64_t t = 0; t < nt; t++) {
            I->term_slot[t] = veil_cursor_u32(cur);
            I->term_w[t] = cur_i64(cur);
            if (cur->bad || !readable(written, p->nslots, I->term_slot[t])) return VEIL_ERR_MALFORMED;
        }
        for (uint32_t e = 0; e < I->count; e++) I->cst[e] = cur_i64(cur);
    } else {
        I->bits = veil_cursor_u32(cur);
        I->shift = veil_cursor_u32(cur);
        if (cur->bad || I->bits < 1 || I->bits > MAX_TLU_BITS || I->bits > p->tlu_precision ||
            I->bits + I->shift > p->precision || I->count > cur->left / 4)
            return VEIL_ERR_MALFORMED;
        if (!(I->in_slot = veil_malloc(sizeof(uint32_t) * I->count))) return VEIL_ERR_NOMEM;
        for (uint32_t e = 0; e < I->count; e++) {
            I->in_slot[e] = veil_cursor_u32(cur);
            if (cur->bad || !readable(written, p->nslots, I->in_slot[e])) return VEIL_ERR_MALFORMED;
        }
        uint64_t nt = (uint64_t)1 << I->bits;
        if (nt > cur->left / 8) return VEIL_ERR_MALFORMED;
        if (!(I->table = veil_malloc(sizeof(int64_t) * nt))) return VEIL_ERR_NOMEM;
        for (uint64_t t = 0; t < nt; t++) I->table[t] = cur_i64(cur);
    }
    if (cur->bad || !write_slots(written, p->nslots, I->out_base, I->count)) return VEIL_ERR_MALFORMED;
    return VEIL_OK;
}

static veil_status read_program(const veil_container *cn, veil_program *p)
{
    const uint8_t *d;
    size_t len;
    veil_status st = veil_container_section(cn, TAG_SLOT, &d, &len);
    if (st != VEIL_OK) return st;
    uint8_t *written = veil_calloc(p->nslots ? p->nslots : 1, 1);
    if (!written) return VEIL_ERR_NOMEM;
    for (size_t i = 0; i < p->ninputs; i++)
        if (p->inputs[i].encrypted && !write_slots(written, p->nslots, p->inputs[i].base, (uint64_t)p->inputs[i].size)) {
            st = VEIL_ERR_MALFORMED;
            goto done;
        }
    /* output slots are checked after the instructions have written theirs */
    veil_cursor slots = {d, len, 0};
    for (size_t j = 0; j < p->noutputs; j++) {
        veil_prog_output *o = &p->outputs[j];
        if ((uint64_t)o->size > slots.left / 4) {
            st = VEIL_ERR_MALFORMED;
            goto done;
        }
        if (!(o->slots = veil_malloc(sizeof(uint32_t) * (size_t)o->size))) {
            st = VEIL_ERR_NOMEM;
            goto done;
        }
        for (int64_t e = 0; e < o->size; e++) o->slots[e] = veil_cursor_u32(&slots);
    }
    if (slots.bad || slots.left) {
        st = VEIL_ERR_MALFORMED;
        goto done;
    }
    if ((st = veil_container_section(cn, TAG_INST, &d, &len)) != VEIL_OK) goto done;
    veil_cursor cur = {d, len, 0};
    uint64_t ni = veil_cursor_u64(&cur);
    if (cur.bad || ni > cur.left / 24) { /* an instruction takes at least 20 bytes plus its body */
        st = VEIL_ERR_MALFORMED;
        goto done;
    }
    if (!(p->instr = veil_calloc(ni ? ni : 1, sizeof *p->instr))) {
        st = VEIL_ERR_NOMEM;
        goto done;
    }
    for (uint64_t i = 0; i < ni; i++) {
        p->ninstr = i + 1; /* so that veil_program_free releases what was read */
        if ((st = read_instr(&cur, p, &p->instr[i], written)) != VEIL_OK) goto done;
    }
    if (cur.left) {
        st = VEIL_ERR_MALFORMED;
        goto done;
    }
    for (size_t j = 0; j < p->noutputs; j++)
        for (int64_t e = 0; e < p->outputs[j].size; e++)
            if (!readable(written, p->nslots, p->outputs[j].slots[e])) {
                st = VEIL_ERR_MALFORMED;
                goto done;
            }
done:
    veil_free(written);
    return st;
}

/* PRTS: the sets, whose shared key must be the circuit's key (so fingerprints name them all). */
static veil_status read_parts(const veil_container *cn, veil_circuit *c)
{
    const uint8_t *d;
    size_t len;
    c->nparts = 1;
    c->parts[0] = c->params;
    c->pstats[0] = (veil_partition_stats){.params = c->params, .lookup_bits = c->prog->tlu_precision,
                                          .pbs_count = c->stats.pbs_count, .p_error = c->stats.p_error};
    c->stats.single_cost = c->stats.cost;
    if (veil_container_section(cn, TAG_PRTS, &d, &len) != VEIL_OK)
        return c->params.sets_fingerprint ? VEIL_ERR_MALFORMED : VEIL_OK;
    veil_cursor cur = {d, len, 0};
    uint32_t np = veil_cursor_u32(&cur);
    c->stats.single_cost = veil_cursor_f64(&cur);
    if (cur.bad || np < 2 || np > VEIL_MAX_PARTS) return VEIL_ERR_MALFORMED;
    for (uint32_t j = 0; j < np; j++) {
        uint32_t pl = veil_cursor_u32(&cur);
        if (cur.bad || pl > cur.left) return VEIL_ERR_MALFORMED;
        if (veil_params_get(cur.p, pl, &c->parts[j]) != VEIL_OK) return VEIL_ERR_MALFORMED;
        cur.p += pl;
        cur.left -= pl;
        veil_partition_stats *q = &c->pstats[j];
        q->params = c->parts[j];
        q->lookup_bits = veil_cursor_u32(&cur);
        q->pbs_count = veil_cursor_u64(&cur);
        q->cross_ks_count = veil_cursor_u64(&cur);
        q->p_error = veil_cursor_f64(&cur);
        if (cur.bad || q->lookup_bits > MAX_TLU_BITS || q->lookup_bits + 1 > c->parts[j].log2_N)
            return VEIL_ERR_MALFORMED;
    }
    if (cur.left) return VEIL_ERR_MALFORMED;
    veil_params shared;
    if (cn->version < 2 || veil_params_shared(c->parts, np, &shared) != VEIL_OK || !veil_params_same(&shared, &c->params))
        return VEIL_ERR_MALFORMED;
    for (uint32_t j = 0; j < np; j++) /* every set's keys are prefixes of the shared ones */
        if (c->parts[j].n > c->params.n || veil_params_big_lwe_dim(&c->parts[j]) > veil_params_big_lwe_dim(&c->params) ||
            veil_params_ks_dim(&c->parts[j]) > veil_params_big_lwe_dim(&c->params))
            return VEIL_ERR_MALFORMED;
    c->nparts = np;
    return VEIL_OK;
}

/* TPRT: each lookup's partition; it must read no more bits than its set takes and no longer key
 * than its key-switching key covers. */
static veil_status read_tlu_parts(const veil_container *cn, veil_circuit *c)
{
    veil_program *p = c->prog;
    const uint8_t *d;
    size_t len;
    if (veil_container_section(cn, TAG_TPRT, &d, &len) != VEIL_OK) {
        if (c->nparts > 1) return VEIL_ERR_MALFORMED;
    } else {
        if (c->nparts < 2) return VEIL_ERR_MALFORMED;
        veil_cursor cur = {d, len, 0};
        for (size_t i = 0; i < p->ninstr; i++) {
            veil_instr *I = &p->instr[i];
            if (I->kind != VEIL_INSTR_TLU) continue;
            I->part = veil_cursor_u32(&cur);
            if (cur.bad || I->part >= c->nparts) return VEIL_ERR_MALFORMED;
        }
        if (cur.left) return VEIL_ERR_MALFORMED;
    }
    if (veil_container_section(cn, TAG_TMVL, &d, &len) == VEIL_OK) {
        size_t k = 0;
        for (size_t i = 0; i < p->ninstr; i++) {
            veil_instr *I = &p->instr[i];
            if (I->kind != VEIL_INSTR_TLU) continue;
            if (k == len || d[k] > 1) return VEIL_ERR_MALFORMED;
            I->mv = d[k++];
        }
        if (k != len) return VEIL_ERR_MALFORMED;
        veil_status st = veil_program_count_rotations(p);
        if (st != VEIL_OK) return st;
    }
    uint32_t *dims;
    veil_status st = veil_circuit_slot_dims(c, p, &dims);
    if (st != VEIL_OK) return st;
    for (size_t i = 0; i < p->ninstr && st == VEIL_OK; i++) {
        const veil_instr *I = &p->instr[i];
        if (I->kind != VEIL_INSTR_TLU) continue;
        const veil_params *Q = &c->parts[I->part];
        if (I->bits + 1 > Q->log2_N) st = VEIL_ERR_MALFORMED;
        for (uint32_t o = 0; o < I->count && st == VEIL_OK; o++)
            if (dims[I->in_slot[o]] > veil_params_ks_dim(Q)) st = VEIL_ERR_MALFORMED;
    }
    veil_free(dims);
    return st;
}

veil_status veil_circuit_read_sections(const veil_container *cn, int with_program, veil_circuit **out)
{
    if (!cn || !out) return VEIL_ERR_INVALID_ARG;
    *out = NULL;
    veil_circuit *c = veil_calloc(1, sizeof *c);
    veil_program *p = veil_calloc(1, sizeof *p);
    if (!c || !p) {
        veil_free(c), veil_free(p);
        return VEIL_ERR_NOMEM;
    }
    c->prog = p;
    p->interface_only = !with_program;
    veil_status st = veil_params_read_section(cn, NULL, &c->params);
    const uint8_t *d;
    size_t len;
    if (st == VEIL_OK) st = veil_container_section(cn, TAG_CIRC, &d, &len);
    if (st == VEIL_OK) {
        veil_cursor cur = {d, len, 0};
        st = read_interface(&cur, c, p);
    }
    if (st == VEIL_OK) st = read_parts(cn, c);
    if (st == VEIL_OK && c->nparts == 1 && p->n_tlu && p->tlu_precision + 1 > c->params.log2_N) st = VEIL_ERR_MALFORMED;
    if (st == VEIL_OK && with_program) st = read_program(cn, p);
    if (st == VEIL_OK && with_program) st = read_tlu_parts(cn, c);
    if (st == VEIL_OK) veil_circuit_count_partitions(c);
    if (st == VEIL_OK && with_program) st = veil_container_section(cn, TAG_LIST, &d, &len);
    if (st == VEIL_OK && with_program) {
        if (!(c->listing = veil_malloc(len + 1))) st = VEIL_ERR_NOMEM;
        else {
            memcpy(c->listing, d, len);
            c->listing[len] = 0;
            if (strlen(c->listing) != len) st = VEIL_ERR_MALFORMED;
        }
    }
    if (st != VEIL_OK) {
        veil_circuit_free(c);
        return st;
    }
    *out = c;
    return VEIL_OK;
}

/* ---- standalone circuits ----------------------------------------------------------------------- */

veil_status veil_circuit_serialize(const veil_circuit *c, uint8_t **out, size_t *len)
{
    if (!c || !out || !len) return VEIL_ERR_INVALID_ARG;
    veil_writer w;
    veil_writer_begin(&w, VEIL_KIND_CIRCUIT, 0);
    veil_status st = veil_circuit_write_sections(&w, c, 1);
    if (st != VEIL_OK) {
        veil_buf_free(&w.b);
        return st;
    }
    return veil_writer_finish(&w, out, len);
}

void veil_circuit_bind_model(veil_circuit *c, const uint8_t id[VEIL_MODEL_ID_BYTES])
{
    memcpy(c->model_id, id, VEIL_MODEL_ID_BYTES);
    c->bound = 1;
}

veil_status veil_circuit_model_id(const veil_circuit *c, uint8_t id[VEIL_MODEL_ID_BYTES])
{
    uint8_t *buf;
    size_t len;
    veil_status st = veil_circuit_serialize(c, &buf, &len);
    if (st != VEIL_OK) return st;
    uint8_t h[32];
    veil_sha256(buf, len, h);
    memcpy(id, h, VEIL_MODEL_ID_BYTES);
    veil_free(buf);
    return VEIL_OK;
}

veil_status veil_circuit_deserialize(const uint8_t *buf, size_t len, veil_circuit **out)
{
    if (!buf || !out) return VEIL_ERR_INVALID_ARG;
    *out = NULL;
    veil_container cn;
    veil_status st = veil_container_parse(buf, len, VEIL_KIND_CIRCUIT, 0, &cn);
    return st == VEIL_OK ? veil_circuit_read_sections(&cn, 1, out) : st;
}

veil_status veil_bundle_read_clear_mask(const veil_container *cn, size_t ninputs, uint32_t *mask)
{
    const uint8_t *d;
    size_t len;
    *mask = 0;
    if (veil_container_section(cn, TAG_CLRI, &d, &len) != VEIL_OK) return VEIL_OK;
    veil_cursor c = {d, len, 0};
    uint32_t v = veil_cursor_u32(&c);
    if (c.bad || c.left || v == 0 || ninputs > 31 || (v >> ninputs) || v == (1u << ninputs) - 1) return VEIL_ERR_MALFORMED;
    *mask = v;
    return VEIL_OK;
}
