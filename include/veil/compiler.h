/* veil/compiler.h — compile an op-graph into a circuit: bounds, checks, lowering, parameters.
 *
 *     veil_compile_config cfg;  veil_compile_config_default(&cfg);   // p_error 2^-40
 *     int64_t samples[4][1] = {{0}, {1}, {2}, {3}};
 *     const int64_t *inputset[4] = {samples[0], samples[1], samples[2], samples[3]};
 *     veil_circuit *c;
 *     if (veil_compile(g, inputset, 4, &cfg, &c) != VEIL_OK) {
 *         fprintf(stderr, "%s\n", veil_compiler_last_error());   // the graph with ^^^ under the culprit
 *         return 1;
 *     }
 *     fputs(veil_circuit_format(c), stdout);                 // %0 = 2  # ClearScalar<uint2> ...
 *     printf("Max bit_width = %u\n", veil_circuit_max_bit_width(c));
 *
 * Pipeline: (1) evaluate the graph on every inputset sample in the clear, record [min, max] per
 * node and give it the smallest uintN/intN; (2) check FHE compatibility; (3) lower every operation
 * to LINEAR and TLU instructions (element-wise chains on one input fused into one table); (4) pick
 * 128-bit parameters that bound every table lookup's error probability by p_error while minimizing
 * the cost model below: one set for the widest lookup, then one set per lookup width (precision
 * partitions) chosen jointly, never costlier; partitions whose sets coincide are merged, and
 * single_precision keeps the one set. The sets share one secret key (each keys a prefix of it),
 * so values of different partitions combine freely and a lookup key-switches its input from the
 * key it lies under. All values are encoded with the circuit's precision (the widest value that
 * reaches a table lookup, an input or an output).
 */
#ifndef VEIL_COMPILER_H
#define VEIL_COMPILER_H

#include "veil/graph.h"
#include "veil/tfhe.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    double p_error;        /* error probability of each table lookup (default 2^-40) */
    double global_p_error; /* > 0: bound for the whole circuit instead; split over its lookups */
    unsigned max_tlu_bits; /* widest table-lookup input accepted (default 16) */
    const veil_params *params; /* non-NULL: use these parameters (borrowed; must meet the bound) */
    int single_precision;      /* 1: one parameter set for the whole circuit (no partitions) */
} veil_compile_config;

void veil_compile_config_default(veil_compile_config *cfg);

typedef struct veil_circuit veil_circuit;

/* inputset[s * ninputs + i] points to sample s of input i (row-major, the input's size), for
 * nsamples >= 1 samples. The graph is annotated with its bounds (hence not const). fn/ctx of
 * apply nodes are used during this call only — except when clear inputs reach encrypted
 * operations: the circuit then keeps a copy of the graph, lowers it again with each evaluation's
 * clear values, and fn/ctx must outlive the circuit. On failure *out = NULL and
 * veil_compiler_last_error() explains (VEIL_ERR_COMPILE, VEIL_ERR_NO_PARAMS, VEIL_ERR_EVAL ...). */
VEIL_NODISCARD veil_status veil_compile(veil_graph *g, const int64_t *const *inputset, size_t nsamples,
                                        const veil_compile_config *cfg, veil_circuit **out);
/* Message of this thread's last failed veil_compile ("" if none); borrowed until the next call. */
const char *veil_compiler_last_error(void);

void veil_circuit_free(veil_circuit *c); /* accepts NULL */
/* The Concrete-style listing with types and ranges, ending with "return %k\n"; borrowed. */
const char *veil_circuit_format(const veil_circuit *c);
/* Widest encrypted value of the graph, as Concrete's maximum_integer_bit_width(). */
unsigned veil_circuit_max_bit_width(const veil_circuit *c);
const veil_params *veil_circuit_params(const veil_circuit *c); /* borrowed */

typedef struct {
    unsigned precision;      /* message bits of the encoding (>= every encrypted value's width) */
    unsigned lookup_bits;    /* widest table lookup read, in bits: it sizes the bootstrapping */
    size_t pbs_count;        /* programmable bootstrappings per evaluation */
    size_t ks_count;         /* key switchings per evaluation */
    size_t linear_terms;     /* ciphertext multiply-adds per evaluation */
    double max_norm2;        /* largest 2-norm of the weights on bootstrapped values feeding a lookup */
    uint64_t bsk_bytes, ksk_bytes;          /* evaluation keys (standard domain, expanded) */
    uint64_t input_bytes, output_bytes;     /* ciphertexts of one evaluation */
    double cost;             /* cost model of one evaluation (veil_params_cost) */
    double p_error;          /* error probability of the worst table lookup with these parameters */
    double global_p_error;   /* probability that any lookup of one evaluation errs */
    size_t partitions;       /* parameter sets (1: single precision) */
    size_t cross_ks_count;   /* key switchings from a key other than the lookup's partition's own */
    double single_cost;      /* cost model of the single-precision choice (== cost when partitions == 1) */
    uint64_t bsk_seeded_bytes, ksk_seeded_bytes; /* the evaluation keys compressed (seed + bodies) */
} veil_circuit_stats;
void veil_circuit_get_stats(const veil_circuit *c, veil_circuit_stats *s);

/* One precision partition: its parameters (ks_in_dim: the widest key its lookups read), lookups
 * and keys. */
typedef struct {
    veil_params params;
    unsigned lookup_bits;  /* widest lookup of the partition */
    size_t pbs_count;      /* per evaluation */
    size_t cross_ks_count; /* of those, key-switched from another partition's key */
    uint64_t bsk_bytes, ksk_bytes;               /* expanded (standard domain) */
    uint64_t bsk_seeded_bytes, ksk_seeded_bytes; /* compressed */
    double p_error;        /* its worst lookup */
} veil_partition_stats;
size_t veil_circuit_partition_count(const veil_circuit *c);
/* VEIL_ERR_INVALID_ARG when j is out of range. */
VEIL_NODISCARD veil_status veil_circuit_get_partition(const veil_circuit *c, size_t j, veil_partition_stats *s);

size_t veil_circuit_input_count(const veil_circuit *c);
size_t veil_circuit_output_count(const veil_circuit *c);
int64_t veil_circuit_input_size(const veil_circuit *c, size_t i);  /* elements; -1 when out of range */
int64_t veil_circuit_output_size(const veil_circuit *c, size_t j);
int veil_circuit_input_encrypted(const veil_circuit *c, size_t i);
const char *veil_circuit_input_name(const veil_circuit *c, size_t i); /* NULL when out of range */
/* One sample's inputs (outputs != 0: its outputs) in one flat buffer, each one's elements after the
 * previous one's: sets ptrs[i] = flat + the offset of input i (when ptrs is not NULL) and returns
 * the total element count; -1, and nothing set, when the circuit has more than max of them. */
int64_t veil_circuit_io_split(const veil_circuit *c, int outputs, int64_t *flat, int64_t **ptrs, size_t max);

/* ---- parameter optimizer ---------------------------------------------------------------------- */
/* The noise a lookup input or an output carries is a·σ²_pbs + b·σ²_fresh (a, b: sums of squared
 * weights over bootstrapped and fresh ciphertexts); lookups add a key switch and a modulus switch. */
typedef struct {
    unsigned precision;
    double tlu_a, tlu_b; /* worst lookup input */
    double out_a, out_b; /* worst output */
    size_t n_tlu;        /* lookups per evaluation (cost weight) */
    size_t n_terms;      /* linear multiply-adds per evaluation (cost weight) */
    double p_error;      /* per lookup and per output value */
} veil_opt_problem;

/* Cost model, in floating-point-operation equivalents of one evaluation: each KS-PBS costs
 * n·[(k+1)(ℓ+1) FFTs of N/2 points + (k+1)²ℓ·N/2 complex multiply-adds + decomposition] plus
 * k·N·ℓ_ks·(n+1) multiply-adds for the key switch; each linear term k·N+1 multiply-adds. */
double veil_params_cost(const veil_params *p, size_t n_tlu, size_t n_terms);
/* 1 when p meets every constraint of pr (noise bounds and p+1 <= log2 N), 0 otherwise. */
int veil_params_feasible(const veil_params *p, const veil_opt_problem *pr);
/* The cheapest secure (DESIGN.md curve) parameters meeting pr; VEIL_ERR_NO_PARAMS when none. */
VEIL_NODISCARD veil_status veil_params_optimize(const veil_opt_problem *pr, veil_params *out);

#ifdef __cplusplus
}
#endif
#endif
