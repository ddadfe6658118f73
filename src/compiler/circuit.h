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
};

/* Error probability of one lookup / one output with these parameters and noise multipliers. */
double veil_circuit_tlu_p_error(const veil_params *p, unsigned precision, double a, double b);

#endif
