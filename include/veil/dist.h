/* veil/dist.h — one inference spread over several processes and machines with MPI (src/dist/).
 *
 *     mpirun -np 4 veil predict DIR --input x.npy --mode execute     (veil, veil serve: --mpi)
 *
 *     veil_dist *d;  veil_dist_init(&argc, &argv, &d);
 *     if (veil_dist_rank(d) > 0) return veil_dist_worker(d, 0);   // ranks 1..R-1: serve rank 0
 *     veil_dist_install(d);           // rank 0: every veil_circuit_run spreads its lookups
 *     ... compile, keygen, veil_circuit_run / veil_server_run as usual ...
 *     veil_dist_finish(d);            // rank 0: stops the workers, then MPI_Finalize
 *
 * Rank 0 runs the program; each batch of lookups (one stage of one partition, veil_spread_batch)
 * is cut into one share per live rank in proportion to each rank's measured speed (lookups per
 * second, updated after every batch), the other ranks' shares are sent with the tables they read,
 * every rank bootstraps its share on its own thread pool, and the outputs come back in order.
 * Linear instructions stay on rank 0. A worker gets a key set from rank 0 the first time a batch
 * needs it (compressed when the keys still allow it) and keeps the last VEIL_MPI_KEYSETS (4).
 * The answers are those of a single process bit for bit: only where each bootstrapping runs
 * changes. A rank that does not answer within the deadline (VEIL_MPI_TIMEOUT seconds, default
 * 120, plus twenty times its expected share time) fails the batch with VEIL_ERR_REMOTE and is left
 * out from then on; under plain mpirun a rank that dies ends the whole job instead (mpirun
 * --enable-recovery keeps the others running).
 */
#ifndef VEIL_DIST_H
#define VEIL_DIST_H

#include "veil/runtime.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct veil_dist veil_dist;

/* MPI_Init_thread (serialized calls); *out also on ranks > 0. VEIL_ERR_UNSUPPORTED when MPI did
 * not start (see veil_dist_last_error). */
VEIL_NODISCARD veil_status veil_dist_init(int *argc, char ***argv, veil_dist **out);
int veil_dist_rank(const veil_dist *d);
int veil_dist_size(const veil_dist *d);
/* The host name of this rank (MPI_Get_processor_name). */
const char *veil_dist_host(const veil_dist *d);
/* Rank 0: the host name of rank r ("" elsewhere). */
const char *veil_dist_rank_host(const veil_dist *d, int r);
/* Ranks > 0: receive and run batches until rank 0 calls veil_dist_finish; threads 0: all cores
 * (veil_cpu_count). Returns VEIL_OK on a normal stop. */
VEIL_NODISCARD veil_status veil_dist_worker(veil_dist *d, unsigned threads);
/* Rank 0: hand every later lookup batch of this process to the ranks (veil_runtime_set_spread). */
void veil_dist_install(veil_dist *d);
/* Rank 0: tell the workers that ek was read from `path`, which they can read too (a shared
 * directory): each loads it from there now, while rank 0 goes on, instead of getting the bytes
 * from rank 0 with its first batch. A rank that cannot read it gets the bytes then. */
VEIL_NODISCARD veil_status veil_dist_share_keys_file(veil_dist *d, const veil_eval_keys *ek, const char *path);
/* Rank 0: stop the workers; every rank: MPI_Finalize and free d. Accepts NULL. */
void veil_dist_finish(veil_dist *d);

/* What the ranks did since the last reset (rank 0's view). */
#define VEIL_DIST_MAX_RANKS 1024
typedef struct {
    uint64_t batches;         /* lookup batches spread */
    uint64_t lookups;         /* bootstrapping jobs in them */
    uint64_t bytes_sent;      /* by rank 0: batches (tables + input ciphertexts) */
    uint64_t bytes_received;  /* by rank 0: outputs */
    uint64_t key_bytes;       /* evaluation keys sent to workers */
    double wall_s;            /* rank 0's time inside spread batches */
    double wait_s;            /* of which waiting for sends and answers, not computing */
    int ranks;
    uint64_t rank_lookups[VEIL_DIST_MAX_RANKS];
    double rank_compute_s[VEIL_DIST_MAX_RANKS]; /* each rank's bootstrapping time, as it measured it */
    double rank_rate[VEIL_DIST_MAX_RANKS];      /* lookups per second on partition 0's: the next split's weights */
    int rank_dead[VEIL_DIST_MAX_RANKS];
    /* the first VEIL_DIST_LOG batches since the reset, each: its lookups, what rank 0 sent and
     * received for it, its time on rank 0 and the part of it spent waiting, rank 0's own share and
     * the time it took */
    uint32_t nlog;
    struct {
        uint32_t lookups, part;
        uint64_t sent, received;
        double wall_s, wait_s;
        uint32_t rank0_lookups;
        double rank0_s;
    } log[256];
} veil_dist_stats;
#define VEIL_DIST_LOG 256
void veil_dist_get_stats(const veil_dist *d, veil_dist_stats *s);
void veil_dist_reset_stats(veil_dist *d);

/* Rank 0: why the first spread batch that failed did (NULL when none has). */
const char *veil_dist_failure(const veil_dist *d);
/* Why the last call of this thread failed: one line (static storage per thread). */
const char *veil_dist_last_error(void);

#ifdef __cplusplus
}
#endif
#endif
