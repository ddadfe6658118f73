/* Precision partitions (DESIGN note in partition.c): the noise analysis of a lowered program by
 * lookup class, and the joint choice of one parameter set per class. Internal to the compiler. */
#ifndef VEIL_COMPILER_PARTITION_H
#define VEIL_COMPILER_PARTITION_H

#include "program.h"
#include "veil/tfhe.h"

#define VEIL_PART_FRESH 31u /* bit of a support mask: a fresh (input) ciphertext */

/* One noise constraint: the input of a lookup (or an output) carries Σ_i a[i]·σ²_pbs(class i) +
 * b·σ²_fresh, already relative to the bits it reads (a lookup's shift is folded in), and is a
 * linear combination of values made under the keys in `mask` (bit i: class i; VEIL_PART_FRESH). */
typedef struct {
    double a[VEIL_MAX_PARTS];
    double b;
    uint32_t mask;
} veil_noise_req;

typedef struct {
    unsigned bits;        /* the lookups of this class read `bits` bits */
    size_t n_tlu;         /* per evaluation */
    size_t n_br;          /* blind rotations per evaluation: n_tlu less those multi-value lookups share */
    size_t nreq;
    veil_noise_req *req;  /* pruned: no constraint dominated by another is kept */
    int worst_origin;     /* graph node of the lookup with the largest input noise */
    int worst_exact;      /* that lookup extracts the low bits of an exact rounding */
} veil_part_class;

typedef struct {
    unsigned precision; /* the encoding's message bits */
    size_t m;
    veil_part_class cls[VEIL_MAX_PARTS];
    size_t nout;
    veil_noise_req *out; /* the outputs' constraints, pruned */
    size_t n_terms;
    double p_error;      /* per lookup and per output value */
} veil_part_problem;

/* Classes by the lookups' bits, the noise of every slot, the constraints. VEIL_ERR_UNSUPPORTED
 * when the program reads more than VEIL_MAX_PARTS distinct widths. */
VEIL_NODISCARD veil_status veil_part_analyze(const veil_program *p, double p_error, veil_part_problem *out);
void veil_part_problem_free(veil_part_problem *pr);
/* Class index of a lookup of `bits` bits. */
size_t veil_part_class_of(const veil_part_problem *pr, unsigned bits);

/* Cost model of the whole circuit under one set per class (veil_params_cost summed, with each
 * class's key switch from the widest key its lookups read). */
double veil_part_cost(const veil_part_problem *pr, const veil_params *sets);
/* 1 when every constraint holds. */
int veil_part_feasible(const veil_part_problem *pr, const veil_params *sets);
/* Starting from `start` for every class (which must be feasible: the single-precision choice),
 * improves one class's set at a time, all others fixed, until no class can be made cheaper:
 * sets[m] out, never costlier than the start. */
VEIL_NODISCARD veil_status veil_part_optimize(const veil_part_problem *pr, const veil_params *start, veil_params *sets);
/* Widest key a class's lookups read, under these sets (its key-switching source dimension). */
uint32_t veil_part_ks_dim(const veil_part_problem *pr, const veil_params *sets, size_t j);
/* Error probability of the worst lookup of class j under these sets. */
double veil_part_p_error(const veil_part_problem *pr, const veil_params *sets, size_t j);

/* Shared with optimize.c: the cost model's parts, the noise bound, the security curve. */
double veil_cost_pbs(double n, double k, double N, double l);
double veil_cost_ks(double n, double kN, double l);
double veil_sigma_max(unsigned bits, double p_error); /* largest σ with P(|e| ≥ Δ/2) ≤ p_error */
veil_noise veil_curve_noise(uint32_t d);              /* the 128-bit curve's noise for dimension d */

#endif
