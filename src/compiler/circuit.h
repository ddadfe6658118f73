/* The compiled circuit, shared with the runtime. */
#ifndef VEIL_COMPILER_CIRCUIT_H
#define VEIL_COMPILER_CIRCUIT_H

#include "program.h"
#include "veil/compiler.h"

struct veil_circuit {
    veil_program *prog;
    /* The key's parameters: of the one set, or of the sets' shared key (veil_params_shared), under
     * which inputs are encrypted and outputs decrypted. */
    veil_params params;
    /* The parameter sets (precision partitions); TLU instruction I runs with parts[I.part], whose
     * ks_in_dim is the widest key its lookups read. nparts == 1: parts[0] == params. */
    size_t nparts;
    veil_params parts[VEIL_MAX_PARTS];
    veil_partition_stats pstats[VEIL_MAX_PARTS];
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
    /* The model id this circuit's ciphertext lists carry and require (veil_circuit_bind_model). */
    int bound;
    uint8_t model_id[16];
};

/* The program for one evaluation: c->prog, or (when c->graph) a program lowered with the clear
 * inputs among `inputs`, returned in *tmp for the caller to free with veil_program_free. */
VEIL_NODISCARD veil_status veil_circuit_program(const veil_circuit *c, const int64_t *const *inputs,
                                                const veil_program **use, veil_program **tmp);

/* Partition statistics that the program determines (counts, key sizes; not p_error): into
 * c->pstats and c->stats. */
void veil_circuit_count_partitions(veil_circuit *c);

/* The dimension of every slot's ciphertext: inputs under the key's k·N, a lookup's output under
 * its partition's, a linear combination under the longest of its terms'. *dims: veil_free. */
VEIL_NODISCARD veil_status veil_circuit_slot_dims(const veil_circuit *c, const veil_program *p, uint32_t **dims);

/* Error probability of one lookup / one output with these parameters and noise multipliers. */
double veil_circuit_tlu_p_error(const veil_params *p, unsigned precision, double a, double b);

#endif
