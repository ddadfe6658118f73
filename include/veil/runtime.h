/* veil/runtime.h — run a compiled circuit three ways with one meaning.
 *
 *     const int64_t x[1] = {3};  const int64_t *in[1] = {x};
 *     int64_t y[1];              int64_t *out[1] = {y};
 *     veil_circuit_clear(c, in, out);              // exact integers
 *     veil_circuit_simulate(c, in, NULL, out);     // clear values + the noise of the parameters
 *     veil_secret_key *sk;  veil_eval_keys *ek;    // execute: real TFHE
 *     veil_circuit_keygen(c, NULL, &sk, &ek);
 *     veil_circuit_encrypt_run_decrypt(c, sk, ek, in, out);            // y[0] == 8 for w@x+b
 *
 * Inputs and outputs are row-major int64 arrays, one per circuit input (declaration order; clear
 * inputs included) and per output, of veil_circuit_input_size / veil_circuit_output_size elements.
 * All values live modulo 2^(precision+1) with one padding bit, as ciphertexts do: an input outside
 * the inputset's range gives the same (wrong) answer in all three modes.
 */
#ifndef VEIL_RUNTIME_H
#define VEIL_RUNTIME_H

#include "veil/compiler.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Exact clear evaluation of the lowered program. */
VEIL_NODISCARD veil_status veil_circuit_clear(const veil_circuit *c, const int64_t *const *inputs,
                                              int64_t *const *outputs);
/* The program on clear torus values with noise drawn from the variance formulas of the chosen
 * parameters (fresh encryption, key switch, modulus switch, PBS), so lookups fail as often as in
 * FHE. rng: NULL draws a seed from the operating system. */
VEIL_NODISCARD veil_status veil_circuit_simulate(const veil_circuit *c, const int64_t *const *inputs, veil_rng *rng,
                                                 int64_t *const *outputs);

/* ---- execute (real TFHE) --------------------------------------------------------------------- */
typedef struct veil_ciphertexts veil_ciphertexts; /* LWE ciphertexts of a circuit's inputs or outputs */

/* Secret key from the CSPRNG (rng = NULL: the operating system's; a seeded rng only for tests)
 * and, when the circuit has lookups, evaluation keys (else *ek = NULL). Caller frees both. */
VEIL_NODISCARD veil_status veil_circuit_keygen(const veil_circuit *c, veil_rng *rng, veil_secret_key **sk,
                                               veil_eval_keys **ek);
/* Encrypt the encrypted inputs under the big key; clear inputs are copied along, in the clear, for
 * the server. rng NULL: the operating system's. */
VEIL_NODISCARD veil_status veil_circuit_encrypt(const veil_circuit *c, const veil_secret_key *sk,
                                                const int64_t *const *inputs, veil_rng *rng,
                                                veil_ciphertexts **out);
/* Server side: evaluate on ciphertexts; lookups of one instruction run on all cores (threads = 0)
 * or `threads` threads. ek may be NULL for circuits without lookups. */
VEIL_NODISCARD veil_status veil_circuit_run(const veil_circuit *c, const veil_eval_keys *ek,
                                            const veil_ciphertexts *in, unsigned threads,
                                            veil_ciphertexts **out);
VEIL_NODISCARD veil_status veil_circuit_decrypt(const veil_circuit *c, const veil_secret_key *sk,
                                                const veil_ciphertexts *out, int64_t *const *outputs);
VEIL_NODISCARD veil_status veil_circuit_encrypt_run_decrypt(const veil_circuit *c, const veil_secret_key *sk,
                                                            const veil_eval_keys *ek, const int64_t *const *inputs,
                                                            int64_t *const *outputs);
void veil_ciphertexts_free(veil_ciphertexts *v); /* accepts NULL */

/* ---- lookups run by other processes (src/dist/: veil under mpirun) ---------------------------- */
/* One batch of lookups of one partition, as veil_circuit_run is about to run it, with what another
 * process holding a copy of the evaluation keys needs to rebuild it: job j's polynomials come from
 * the tables of instructions instr[o_j .. o_j + jobs[j].nout) (o_j: the sum of nout before j), a
 * plain lookup's table (factor NULL) or each multi-value output's; tables[r] is instruction r's
 * (2^bits integers, at scale 2^delta_log2; bits 0 for linear instructions). */
typedef struct {
    const int64_t *table;
    unsigned bits;
} veil_spread_table;
typedef struct {
    const veil_eval_keys *ek; /* every partition's keys; this batch runs on veil_eval_keys_part(ek, part) */
    unsigned part;
    unsigned delta_log2;
    const veil_pbs_job *jobs;
    size_t njobs;
    const uint32_t *instr;
    const veil_spread_table *tables;
    size_t ntables;
    unsigned threads; /* this process's threads (0: all cores) */
} veil_spread_batch;
/* fn runs (or has run) every job of the batch, writing each job's outputs as veil_ks_pbs_jobs
 * would: bit for bit the same ciphertexts. */
typedef veil_status (*veil_spread_fn)(void *ctx, const veil_spread_batch *batch);
/* Process-wide: every later veil_circuit_run hands its lookup batches to fn (NULL: runs them
 * here). Set it before any run starts, not while runs are in progress. */
void veil_runtime_set_spread(veil_spread_fn fn, void *ctx);
int veil_runtime_spread_active(void);

/* ---- files ------------------------------------------------------------------------------------ */
/* A compiled circuit in the container format (kind "circuit", docs/format.md): parameters,
 * interface, program and listing, so a server can run it without compiling. *out is allocated
 * (veil_free). VEIL_ERR_UNSUPPORTED for a circuit whose clear inputs reach encrypted operations
 * (it keeps its graph and is lowered again at each evaluation). */
VEIL_NODISCARD veil_status veil_circuit_serialize(const veil_circuit *c, uint8_t **out, size_t *len);
/* Never aborts on malformed input: the container is checked, every count bounded and every slot
 * of the program verified before it is used. */
VEIL_NODISCARD veil_status veil_circuit_deserialize(const uint8_t *buf, size_t len, veil_circuit **out);
/* Ciphertexts on the wire (circuits whose inputs are all encrypted; else VEIL_ERR_UNSUPPORTED).
 * The client encrypts straight to bytes in the compressed form (one seed for all masks, then one
 * body per ciphertext: 8 bytes each instead of 8·(kN+1)); results travel in the full form. Both
 * carry the parameters' fingerprint: the reader refuses other parameters
 * (VEIL_ERR_PARAMS_MISMATCH) and a count other than the circuit's inputs (outputs = 0) or outputs
 * (outputs = 1) (VEIL_ERR_MALFORMED). *out: veil_free. */
VEIL_NODISCARD veil_status veil_circuit_encrypt_serialize(const veil_circuit *c, const veil_secret_key *sk,
                                                          const int64_t *const *inputs, veil_rng *rng, uint8_t **out,
                                                          size_t *len);
/* The same where bit i of clear_mask marks input i as sent in the clear (Concrete's
 * inputs_encryption_status "clear"): its values travel beside the ciphertexts, seen by the server,
 * which runs them as trivial (noiseless) ciphertexts through the same program. */
VEIL_NODISCARD veil_status veil_circuit_encrypt_serialize_mixed(const veil_circuit *c, const veil_secret_key *sk,
                                                                const int64_t *const *inputs, uint32_t clear_mask,
                                                                veil_rng *rng, uint8_t **out, size_t *len);
/* Server side of the above: every input's ciphertexts, the clear ones made trivial. A count other
 * than the mask's, or a clear value past the encoding's message bits: VEIL_ERR_MALFORMED. */
VEIL_NODISCARD veil_status veil_ciphertexts_deserialize_mixed(const veil_circuit *c, uint32_t clear_mask,
                                                              const uint8_t *buf, size_t len, veil_ciphertexts **out);
VEIL_NODISCARD veil_status veil_ciphertexts_serialize(const veil_circuit *c, const veil_ciphertexts *v, uint8_t **out,
                                                      size_t *len);
VEIL_NODISCARD veil_status veil_ciphertexts_deserialize(const veil_circuit *c, int outputs, const uint8_t *buf,
                                                        size_t len, veil_ciphertexts **out);
/* Total LWE ciphertexts held and the dimension + 1 of each. */
size_t veil_ciphertexts_count(const veil_ciphertexts *v);
uint32_t veil_ciphertexts_lwe_size(const veil_ciphertexts *v);

#ifdef __cplusplus
}
#endif
#endif
