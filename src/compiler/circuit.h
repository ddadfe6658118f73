/* The compiled circuit, shared with the runtime. */
#ifndef VEIL_COMPILER_CIRCUIT_H
#define VEIL_COMPILER_CIRCUIT_H

#include "program.h"
#include "veil/compiler.h"

struct veil_circuit {
    veil_program *prog;
    veil_params params;
    char *listing;
    unsigned max_bit_width;
    veil_circuit_stats stats;
    /* Set when clear inputs reach encrypted operations: the program is lowered again with the
     * clear values of each evaluation (veil_circuit_program). */
    veil_graph *graph;
    /* What the runtime derives from prog once and reuses on every run (the lookup-table
     * polynomials): built on the first execution, owned here, freed with rt_cache_free. */
    void *rt_cache;
    void (*rt_cache_free)(void *);
};

/* The program for one evaluation: c->prog, or (when c->graph) a program lowered with the clear
 * inputs among `inputs`, returned in *tmp for the caller to free with veil_program_free. */
VEIL_NODISCARD veil_status veil_circuit_program(const veil_circuit *c, const int64_t *const *inputs,
                                                const veil_program **use, veil_program **tmp);

/* Error probability of one lookup / one output with these parameters and noise multipliers. */
double veil_circuit_tlu_p_error(const veil_params *p, unsigned precision, double a, double b);

#endif
