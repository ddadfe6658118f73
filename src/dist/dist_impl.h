/* src/dist internals: the messages of a spread lookup batch, without any transport (wave.c), so
 * that they can be tested without MPI; mpi.c moves them. */
#ifndef VEIL_DIST_IMPL_H
#define VEIL_DIST_IMPL_H

#include <stddef.h>
#include <stdint.h>

#include "veil/runtime.h"
#include "veil/tfhe.h"

/* A growable byte buffer (veil_malloc'd). */
typedef struct {
    uint8_t *p;
    size_t len, cap;
} dist_buf;
void dist_buf_free(dist_buf *b);

/* The words of the outputs of jobs [j0, j1) of b: Σ nout · (k·N + 1) of its partition. */
size_t dist_out_words(const veil_spread_batch *b, size_t j0, size_t j1);

/* A batch message: jobs [j0, j1) of b with the tables they read, for key set key_id.
 *   "VWAV" u32 version=1 | key_id u64 | part u32 | delta_log2 u32 | njobs u32 | ntables u32 | nouts u32 | out_words u32
 *   ntables × (bits u32, 2^bits × i64)
 *   njobs × (in_dim u32, in_shift u32, mv u32, nout u32, nout × table index u32)
 *   njobs × (in_dim + 1) × u64
 * (little-endian, native on every host veil builds for). */
veil_status dist_batch_encode(const veil_spread_batch *b, uint64_t key_id, size_t j0, size_t j1, dist_buf *out);
/* The key set a batch message names (VEIL_ERR_MALFORMED for what is not one). */
veil_status dist_batch_key_id(const uint8_t *msg, size_t len, uint64_t *key_id);
/* Rebuilds the batch of msg on ek (the whole key set its key_id names), runs it on `threads`
 * threads and writes the outputs to *outputs (Σ nout · out_words words, veil_malloc'd; *nwords). */
veil_status dist_batch_run(const uint8_t *msg, size_t len, const veil_eval_keys *ek, unsigned threads,
                           uint64_t **outputs, size_t *nwords);
/* Copies the outputs of jobs [j0, j1) (dist_out_words of them, in job order) to where b's jobs
 * want them. */
void dist_outputs_apply(const veil_spread_batch *b, size_t j0, size_t j1, const uint64_t *outputs);

/* Shares: the jobs of a batch of n cut into `ranks` contiguous ranges [first[r], first[r+1]) in
 * proportion to weight[r] (0 for a rank left out); first has ranks + 1 entries. */
void dist_split(size_t n, int ranks, const double *weight, size_t *first);

#endif
