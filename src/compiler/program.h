/* The lowered program: a list of crypto-level instructions over numbered ciphertext slots
 * (DESIGN.md §1, §3). The compiler writes it; the runtime's three interpreters read it.
 *   LINEAR: out[base+i] = Σ_t w_t · slot[s_t] + c_i          (exact integers / torus values)
 *   TLU:    out[base+i] = table[slot[in_i]]                   (key switch + PBS, `bits`-bit index)
 * Every slot is written once, before it is read. */
#ifndef VEIL_COMPILER_PROGRAM_H
#define VEIL_COMPILER_PROGRAM_H

#include <stdint.h>

#include "veil/graph.h"

typedef enum { VEIL_INSTR_LINEAR, VEIL_INSTR_TLU, VEIL_INSTR_KIND_COUNT } veil_instr_kind;

typedef struct {
    veil_instr_kind kind;
    int origin;     /* graph node the instruction comes from */
    int input_node; /* TLU: graph node whose value is looked up, -1 for an internal value */
    uint32_t out_base, count;
    /* LINEAR */
    uint64_t *term_off; /* count + 1 */
    uint32_t *term_slot;
    int64_t *term_w;
    int64_t *cst; /* count */
    /* TLU */
    uint32_t *in_slot; /* count */
    unsigned bits;     /* table index width: the bootstrapping reads `bits` bits (plus padding) */
    unsigned shift;    /* low bits dropped first: index = round(x / 2^shift), x in [0, 2^(bits+shift)) */
    int64_t *table;    /* 2^bits entries */
    unsigned part;     /* the circuit's parameter set (precision partition) it runs with */
    int exact_low;     /* it extracts the low bits of an exact rounding */
    int mv;            /* it shares the blind rotation of its input with the other multi-value
                        * lookups of that input (src/compiler/multivalue.c); its output noise is
                        * veil_instr_out_noise times a plain lookup's */
} veil_instr;

typedef struct {
    char name[65];
    int encrypted;
    int64_t size;
    int ndim;
    int64_t shape[VEIL_MAX_DIMS];
    uint32_t base; /* encrypted inputs: slots [base, base + size) */
} veil_prog_input;

typedef struct {
    int64_t size;
    int ndim;
    int64_t shape[VEIL_MAX_DIMS];
    int is_signed;
    uint32_t *slots; /* size */
} veil_prog_output;

typedef struct {
    uint32_t nslots;
    size_t ninputs, noutputs, ninstr;
    veil_prog_input *inputs;
    veil_prog_output *outputs;
    veil_instr *instr;
    unsigned precision;     /* message bits of the encoding: every encrypted value fits */
    unsigned tlu_precision; /* widest lookup read (bits), which sizes the bootstrapping */
    double noise_scale;     /* 4^(precision − tlu_precision): the noise multipliers below are
                             * relative to the encoding; times this they are relative to a
                             * tlu_precision-bit lookup (veil_opt_problem) */
    size_t n_tlu, n_terms;
    size_t n_br; /* blind rotations: n_tlu less what multi-value lookups share (veil_mv_first) */
    double tlu_a, tlu_b, out_a, out_b; /* worst noise multipliers (veil_opt_problem) */
    int worst_tlu_origin;              /* node of the lookup with the largest tlu_a */
    int worst_tlu_exact;               /* that lookup extracts the low bits of an exact rounding */
    int interface_only;                /* loaded from a client bundle: inputs, outputs and encoding
                                        * only, no instructions and no output slots */
} veil_program;

void veil_program_free(veil_program *p); /* accepts NULL */

/* A lookup output's noise in units of a plain bootstrapping's: 1, or veil_mv_norm2 of its table
 * when it is multi-value. */
double veil_instr_out_noise(const veil_instr *I);
/* Marks the lookups whose input is read by two or more tables cheap enough to share one blind
 * rotation (one-step 0/1 tables: comparisons), and recomputes the noise multipliers with their
 * output noise. *marked: the lookups marked. */
VEIL_NODISCARD veil_status veil_program_mark_multi_value(veil_program *p, size_t *marked);
/* 1 when output o of I needs a blind rotation of its own: a plain lookup, or the first multi-value
 * read of its input at its scaling (seen: one word per slot, zeroed, updated). */
int veil_mv_first(const veil_instr *I, uint32_t o, uint32_t *seen);
/* The blind rotations of one evaluation (sets p->n_br). */
VEIL_NODISCARD veil_status veil_program_count_rotations(veil_program *p);

/* Exact clear interpretation with the circuit's modular meaning: values live modulo 2^(p+1)
 * (p = precision, one padding bit). A lookup scales its input by 2^(p − bits − shift), reads the
 * top bits+1 bits rounded to nearest (ties up), and an index with the padding bit set reads the
 * negated table (the negacyclic wrap of the PBS). Outputs are decoded as in FHE. */
VEIL_NODISCARD veil_status veil_program_run_clear(const veil_program *p, const int64_t *const *inputs,
                                                  int64_t *const *outputs);
/* Decoding of an output value from p+1 bits: unsigned, or sign-extended. */
int64_t veil_program_decode(const veil_program *p, const veil_prog_output *o, uint64_t m);

#endif
