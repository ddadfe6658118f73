/* Rank 0 runs the command; ranks > 0 run the lookups it sends them (veil/dist.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_mpi.h"
#include "veil/core.h"
#ifdef VEIL_HAVE_MPI
#include "veil/dist.h"
static veil_dist *dist;
#endif
static const char *prog_name = "veil";

static int env_ranks(void)
{
    const char *v = getenv("OMPI_COMM_WORLD_SIZE");
    if (!v) v = getenv("PMI_SIZE");
    return v ? atoi(v) : 0;
}

int cli_mpi_begin(int *argc, char ***argv, const char *prog, int *rc)
{
    prog_name = prog;
    int want = env_ranks() > 1;
    for (int i = 1; i < *argc; i++)
        if (!strcmp((*argv)[i], "--mpi")) {
            want = 1;
            memmove(&(*argv)[i], &(*argv)[i + 1], sizeof(char *) * (size_t)(*argc - i)); /* argv[argc] NULL too */
            (*argc)--;
            i--;
        }
    if (!want) return 1;
#ifndef VEIL_HAVE_MPI
    fprintf(stderr, "%s: this build has no MPI (scripts/install-deps installs libopenmpi-dev; then rebuild)\n", prog);
    *rc = 2;
    return 0;
#else
    if (veil_dist_init(argc, argv, &dist) != VEIL_OK) {
        fprintf(stderr, "%s: %s\n", prog, veil_dist_last_error());
        *rc = 2;
        return 0;
    }
    if (veil_dist_rank(dist) > 0) {
        veil_status st = veil_dist_worker(dist, 0);
        if (st != VEIL_OK) fprintf(stderr, "%s: %s\n", prog, veil_dist_last_error());
        veil_dist_finish(dist);
        dist = NULL;
        *rc = st == VEIL_OK ? 0 : 1;
        return 0;
    }
    fprintf(stderr, "%s: MPI: %d ranks; lookups spread over all of them; hosts:", prog, veil_dist_size(dist));
    for (int r = 0; r < veil_dist_size(dist) && r < 64; r++) fprintf(stderr, " %d@%s", r, veil_dist_rank_host(dist, r));
    fprintf(stderr, "%s\n", veil_dist_size(dist) > 64 ? " ..." : "");
    veil_dist_install(dist);
    return 1;
#endif
}

#ifdef VEIL_HAVE_MPI
veil_dist *cli_mpi_dist(void) { return dist; }
#endif

int cli_mpi_active(void)
{
#ifdef VEIL_HAVE_MPI
    return dist != NULL;
#else
    return 0;
#endif
}

void cli_mpi_share_keys_file(const struct veil_eval_keys *ek, const char *path)
{
#ifdef VEIL_HAVE_MPI
    if (dist && ek && veil_dist_share_keys_file(dist, ek, path) != VEIL_OK)
        fprintf(stderr, "%s: MPI: %s\n", prog_name, veil_dist_last_error());
#else
    (void)ek, (void)path;
#endif
}

int cli_mpi_end(int rc)
{
#ifdef VEIL_HAVE_MPI
    if (!dist) return rc;
    veil_dist_stats s;
    veil_dist_get_stats(dist, &s);
    fprintf(stderr, "%s: MPI: ranks=%d batches=%llu lookups=%llu bytes_sent=%llu bytes_received=%llu key_bytes=%llu "
                    "spread_s=%.3f wait_s=%.3f\n",
            prog_name, s.ranks, (unsigned long long)s.batches, (unsigned long long)s.lookups,
            (unsigned long long)s.bytes_sent, (unsigned long long)s.bytes_received, (unsigned long long)s.key_bytes,
            s.wall_s, s.wait_s);
    for (int r = 0; r < s.ranks; r++)
        fprintf(stderr, "%s: MPI: rank %d: lookups=%llu compute_s=%.3f rate=%.1f/s%s\n", prog_name, r,
                (unsigned long long)s.rank_lookups[r], s.rank_compute_s[r], s.rank_rate[r],
                s.rank_dead[r] ? " (left out: did not answer)" : "");
    const char *why = veil_dist_failure(dist);
    if (why && rc == 0) rc = 1; /* printed when it happened */
    veil_dist_finish(dist);
    dist = NULL;
#endif
    return rc;
}
