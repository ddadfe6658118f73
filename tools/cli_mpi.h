/* The command line under MPI (src/dist/): `mpirun -np R veil ...` or `--mpi`. */
#ifndef VEIL_CLI_MPI_H
#define VEIL_CLI_MPI_H

/* Starts MPI when this process runs under mpirun (OMPI_COMM_WORLD_SIZE / PMI_SIZE above 1) or
 * argv holds --mpi (removed from argv). Returns 1 when the caller goes on with its command (not
 * under MPI, or rank 0, whose lookups now spread over the ranks); 0 when this process was a
 * worker rank and has finished (*rc: its exit status), or MPI could not start (*rc 2). */
int cli_mpi_begin(int *argc, char ***argv, const char *prog, int *rc);
/* Rank 0 after its command: prints what the ranks did (stderr), stops the workers. rc: the
 * command's status, returned, or 1 when a spread batch failed. */
int cli_mpi_end(int rc);
int cli_mpi_active(void);
#ifdef VEIL_HAVE_MPI
/* Rank 0's handle (NULL when not under MPI). */
struct veil_dist *cli_mpi_dist(void);
#endif
/* Rank 0: the workers load these evaluation keys from `path` themselves, now (a no-op when not
 * under MPI). */
struct veil_eval_keys;
void cli_mpi_share_keys_file(const struct veil_eval_keys *ek, const char *path);

#endif
