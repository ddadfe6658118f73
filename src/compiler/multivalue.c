/* Lookups that share one blind rotation (multi-value bootstrapping, src/tfhe/pbs.c): a pass over
 * the lowered program that marks them, and the program's noise multipliers recomputed with their
 * larger output noise. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "program.h"
#include "veil/tfhe.h"

/* The output noise of a shared lookup is a plain one's times the sum of its table's squared steps
 * (veil_mv_norm2): 1 for a comparison (one step from 1 to 0), 2 for an indicator [x == a]; wider
 * steps grow it as their squares, so only tables this cheap share. */
#define MV_MAX_NORM2 2.0

double veil_instr_out_noise(const veil_instr *I)
{
    return I->kind == VEIL_INSTR_TLU && I->mv ? veil_mv_norm2(I->bits, I->table) : 1.0;
}

typedef struct {
    uint32_t slot, bits, shift, instr;
} mv_key;

static int key_cmp(const void *a, const void *b)
{
    const mv_key *x = a, *y = b;
    if (x->slot != y->slot) return x->slot < y->slot ? -1 : 1;
    if (x->bits != y->bits) return x->bits < y->bits ? -1 : 1;
    if (x->shift != y->shift) return x->shift < y->shift ? -1 : 1;
    return x->instr < y->instr ? -1 : x->instr > y->instr;
}

static int same_input(const mv_key *x, const mv_key *y)
{
    return x->slot == y->slot && x->bits == y->bits && x->shift == y->shift;
}

/* The multipliers of veil_program (tlu_a, tlu_b, out_a, out_b, the worst lookup) from its
 * instructions, as the lowering computes them, each lookup output counting veil_instr_out_noise. */
static veil_status recompute_noise(veil_program *p)
{
    const size_t ns = p->nslots ? p->nslots : 1;
    double *na = veil_calloc(ns, sizeof(double)), *nb = veil_calloc(ns, sizeof(double));
    if (!na || !nb) {
        veil_free(na);
        veil_free(nb);
        return VEIL_ERR_NOMEM;
    }
    for (size_t i = 0; i < p->ninputs; i++)
        if (p->inputs[i].encrypted)
            for (int64_t e = 0; e < p->inputs[i].size; e++) nb[p->inputs[i].base + e] = 1;
    p->tlu_a = p->tlu_b = p->out_a = p->out_b = 0;
    p->worst_tlu_origin = -1;
    p->worst_tlu_exact = 0;
    for (size_t k = 0; k < p->ninstr; k++) {
        const veil_instr *I = &p->instr[k];
        if (I->kind == VEIL_INSTR_LINEAR) {
            for (uint32_t o = 0; o < I->count; o++) {
                double a = 0, b = 0;
                for (uint64_t t = I->term_off[o]; t < I->term_off[o + 1]; t++) {
                    const double w2 = (double)I->term_w[t] * (double)I->term_w[t];
                    a += w2 * na[I->term_slot[t]];
                    b += w2 * nb[I->term_slot[t]];
                }
                na[I->out_base + o] = a;
                nb[I->out_base + o] = b;
            }
            continue;
        }
        const double room = ldexp(1.0, -2 * (int)I->shift), out = veil_instr_out_noise(I);
        for (uint32_t o = 0; o < I->count; o++) {
            const uint32_t s = I->in_slot[o];
            if (na[s] * room > p->tlu_a) {
                p->tlu_a = na[s] * room;
                p->worst_tlu_origin = I->origin;
                p->worst_tlu_exact = I->exact_low;
            }
            if (nb[s] * room > p->tlu_b) p->tlu_b = nb[s] * room;
            na[I->out_base + o] = out;
            nb[I->out_base + o] = 0;
        }
    }
    for (size_t j = 0; j < p->noutputs; j++)
        for (int64_t e = 0; e < p->outputs[j].size; e++) {
            const uint32_t s = p->outputs[j].slots[e];
            if (na[s] > p->out_a) p->out_a = na[s];
            if (nb[s] > p->out_b) p->out_b = nb[s];
        }
    veil_free(na);
    veil_free(nb);
    return VEIL_OK;
}

int veil_mv_first(const veil_instr *I, uint32_t o, uint32_t *seen)
{
    if (!I->mv) return 1;
    const uint32_t key = (I->bits << 8 | I->shift) + 1, s = I->in_slot[o];
    if (seen[s] == key) return 0;
    seen[s] = key;
    return 1;
}

veil_status veil_program_count_rotations(veil_program *p)
{
    uint32_t *seen = veil_calloc(p->nslots ? p->nslots : 1, sizeof(uint32_t));
    if (!seen) return VEIL_ERR_NOMEM;
    p->n_br = 0;
    for (size_t k = 0; k < p->ninstr; k++) {
        const veil_instr *I = &p->instr[k];
        if (I->kind == VEIL_INSTR_TLU)
            for (uint32_t o = 0; o < I->count; o++) p->n_br += (size_t)veil_mv_first(I, o, seen);
    }
    veil_free(seen);
    return VEIL_OK;
}

veil_status veil_program_mark_multi_value(veil_program *p, size_t *marked)
{
    *marked = 0;
    size_t n = 0;
    for (size_t k = 0; k < p->ninstr; k++) {
        veil_instr *I = &p->instr[k];
        I->mv = 0;
        if (I->kind == VEIL_INSTR_TLU && veil_mv_norm2(I->bits, I->table) <= MV_MAX_NORM2) n += I->count;
    }
    p->n_br = p->n_tlu;
    if (n < 2) return VEIL_OK;
    mv_key *keys = veil_malloc(sizeof *keys * n);
    if (!keys) return VEIL_ERR_NOMEM;
    size_t m = 0;
    for (size_t k = 0; k < p->ninstr; k++) {
        const veil_instr *I = &p->instr[k];
        if (I->kind != VEIL_INSTR_TLU || veil_mv_norm2(I->bits, I->table) > MV_MAX_NORM2) continue;
        for (uint32_t o = 0; o < I->count; o++) keys[m++] = (mv_key){I->in_slot[o], I->bits, I->shift, (uint32_t)k};
    }
    qsort(keys, n, sizeof *keys, key_cmp);
    /* an input read by two or more such tables: each of them shares its blind rotation */
    for (size_t i = 0; i < n;) {
        size_t j = i + 1;
        while (j < n && same_input(&keys[i], &keys[j])) j++;
        if (j - i >= 2)
            for (size_t q = i; q < j; q++) p->instr[keys[q].instr].mv = 1;
        i = j;
    }
    veil_free(keys);
    for (size_t k = 0; k < p->ninstr; k++) *marked += p->instr[k].mv ? p->instr[k].count : 0;
    if (!*marked) return VEIL_OK;
    veil_status st = recompute_noise(p);
    return st == VEIL_OK ? veil_program_count_rotations(p) : st;
}
