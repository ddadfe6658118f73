/* Clear interpretation of a program, with the modular meaning of the encrypted one. */
#include <string.h>

#include "program.h"

int64_t veil_program_decode(const veil_program *p, const veil_prog_output *o, uint64_t m)
{
    uint64_t M = 2ull << p->precision; /* p message bits + the padding bit */
    m &= M - 1;
    if (o->is_signed && m >= M / 2) return (int64_t)(m - M);
    return (int64_t)m;
}

veil_status veil_program_run_clear(const veil_program *p, const int64_t *const *inputs, int64_t *const *outputs)
{
    if (!p || (!inputs && p->ninputs) || (!outputs && p->noutputs)) return VEIL_ERR_INVALID_ARG;
    const uint64_t M = 2ull << p->precision;
    uint64_t *v = veil_calloc(p->nslots ? p->nslots : 1, sizeof(uint64_t));
    if (!v) return VEIL_ERR_NOMEM;
    for (size_t i = 0; i < p->ninputs; i++) {
        const veil_prog_input *in = &p->inputs[i];
        if (!in->encrypted) continue;
        if (!inputs[i]) {
            veil_free(v);
            return VEIL_ERR_INVALID_ARG;
        }
        for (int64_t e = 0; e < in->size; e++) v[in->base + e] = (uint64_t)inputs[i][e] & (M - 1);
    }
    for (size_t k = 0; k < p->ninstr; k++) {
        const veil_instr *I = &p->instr[k];
        for (uint32_t o = 0; o < I->count; o++) {
            uint64_t r;
            if (I->kind == VEIL_INSTR_LINEAR) {
                r = (uint64_t)I->cst[o];
                for (uint64_t t = I->term_off[o]; t < I->term_off[o + 1]; t++)
                    r += (uint64_t)I->term_w[t] * v[I->term_slot[t]];
            } else {
                /* the phase as the bootstrapping sees it, at bits+1 bits, rounded to nearest */
                unsigned up = p->precision - I->bits - I->shift, drop = p->precision - I->bits;
                uint64_t x = (v[I->in_slot[o]] << up) & (M - 1);
                uint64_t m = drop ? ((x + (1ull << (drop - 1))) >> drop) & ((2ull << I->bits) - 1) : x;
                uint64_t hb = 1ull << I->bits, i = m >= hb ? m - hb : m;
                uint64_t f = (uint64_t)I->table[i];
                r = m >= hb ? 0 - f : f; /* negacyclic wrap when the padding bit is set */
            }
            v[I->out_base + o] = r & (M - 1);
        }
    }
    for (size_t j = 0; j < p->noutputs; j++) {
        const veil_prog_output *o = &p->outputs[j];
        for (int64_t e = 0; e < o->size; e++) outputs[j][e] = veil_program_decode(p, o, v[o->slots[e]]);
    }
    veil_free(v);
    return VEIL_OK;
}
