/* veil-serve (run as `veil serve`): the command line of the HTTP inference server
 * (src/deploy/httpd.c). It links libveil_server only, so no secret-key code is in this binary. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_mpi.h"
#include "veil/server.h"
#include "veil/tfhe.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: veil serve DIR [DIR ...] [options]\n"
            "  Serves the compiled models in DIR (client.veil + server.veil, from veil compile), each named after\n"
            "  its directory. Clients upload evaluation keys once and post encrypted inputs.\n"
            "  --host ADDR           listen address (default 127.0.0.1)\n"
            "  --port N              port (default 8080; 0 picks a free one)\n"
            "  --port-file PATH      write the port there once listening\n"
            "  --data DIR            where uploaded keys are kept across restarts (default ./veil-data)\n"
            "  --quota BYTES         total bytes of stored keys (default 16e9)\n"
            "  --key-expiry SECONDS  delete keys idle this long (default 604800: a week)\n"
            "  --cache N             key sets kept expanded in memory (default 4)\n"
            "  --workers N           heavy requests (uploads, predictions) at once (default 2)\n"
            "  --queue N             more wait for a worker, in arrival order (default 4); beyond, 503\n"
            "  --threads N           threads per evaluation (default: cores / workers)\n"
            "  --max-body BYTES      limit for prediction bodies (default 64e6)\n"
            "  --timeout SECONDS     idle connection timeout (default 120)\n"
            "  --max-connections N   open connections at once (default 256)\n"
            "  --per-client N        of which from one client address (default 32)\n"
            "  --header-timeout S    a request's headers must arrive within S seconds (default 10)\n"
            "  --body-timeout S      and its body within S seconds after them (default 300)\n"
            "  --grace S             on SIGTERM/SIGINT, requests in progress get S seconds to finish (default 30)\n"
            "  --allow-simulate      enable POST /v1/models/NAME/simulate (it sees clear data)\n"
            "  --shared-store        --data is shared with other servers (several veil serve behind one\n"
            "                        address): keys uploaded, used or deleted through any count for all\n"
            "  --tls-cert PEM --tls-key PEM   serve HTTPS\n"
            "  --mpi                 spread each prediction's lookups over the MPI ranks (implied under mpirun)\n");
}

static int num(const char *opt, const char *s, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || v < lo || v > hi) {
        fprintf(stderr, "veil serve: %s must be a number in %g..%g (got '%s')\n", opt, lo, hi, s);
        return 0;
    }
    *out = v;
    return 1;
}

static int serve_main(int argc, char **argv)
{
    veil_serve_config cfg;
    veil_serve_config_default(&cfg);
    const char *dirs[VEIL_SERVE_MAX_MODELS];
    int ndirs = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        double v;
        int has = i + 1 < argc;
#define VAL(dst, lo, hi)                                                                  \
    do {                                                                                  \
        if (!has || !num(a, argv[++i], lo, hi, &v)) return has ? 2 : (usage(stderr), 2); \
        dst = v;                                                                          \
    } while (0)
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(a, "--host") == 0 && has) cfg.host = argv[++i];
        else if (strcmp(a, "--data") == 0 && has) cfg.data = argv[++i];
        else if (strcmp(a, "--port-file") == 0 && has) cfg.port_file = argv[++i];
        else if (strcmp(a, "--tls-cert") == 0 && has) cfg.tls_cert = argv[++i];
        else if (strcmp(a, "--tls-key") == 0 && has) cfg.tls_key = argv[++i];
        else if (strcmp(a, "--allow-simulate") == 0) cfg.allow_simulate = 1;
        else if (strcmp(a, "--port") == 0) VAL(cfg.port, 0, 65535);
        else if (strcmp(a, "--workers") == 0) VAL(cfg.workers, 1, 256);
        else if (strcmp(a, "--queue") == 0) VAL(cfg.queue, 0, 4096);
        else if (strcmp(a, "--threads") == 0) VAL(cfg.threads, 0, 1024);
        else if (strcmp(a, "--cache") == 0) VAL(cfg.cache, 0, 1024);
        else if (strcmp(a, "--timeout") == 0) VAL(cfg.timeout_s, 1, 86400);
        else if (strcmp(a, "--max-body") == 0) VAL(cfg.max_body, 1024, 1e12);
        else if (strcmp(a, "--quota") == 0) VAL(cfg.quota, 0, 1e15);
        else if (strcmp(a, "--key-expiry") == 0) VAL(cfg.expiry_s, 1, 1e9);
        else if (strcmp(a, "--max-connections") == 0) VAL(cfg.max_connections, 1, 65536);
        else if (strcmp(a, "--per-client") == 0) VAL(cfg.per_client, 1, 65536);
        else if (strcmp(a, "--header-timeout") == 0) VAL(cfg.header_timeout_s, 0.1, 86400);
        else if (strcmp(a, "--body-timeout") == 0) VAL(cfg.body_timeout_s, 0.1, 86400);
        else if (strcmp(a, "--grace") == 0) VAL(cfg.grace_s, 0, 86400);
        else if (strcmp(a, "--shared-store") == 0) cfg.shared_store = 1;
        else if (a[0] == '-') {
            fprintf(stderr, "veil serve: unknown option '%s' (or it lacks its value)\n", a);
            usage(stderr);
            return 2;
        } else if (ndirs < VEIL_SERVE_MAX_MODELS) dirs[ndirs++] = a;
#undef VAL
    }
    if (!ndirs) {
        usage(stderr);
        return 2;
    }
    if (!cfg.tls_cert != !cfg.tls_key) {
        fprintf(stderr, "veil serve: --tls-cert and --tls-key go together\n");
        return 2;
    }
    return veil_serve(&cfg, dirs, ndirs);
}

int main(int argc, char **argv)
{
    const char *kmsg;
    if (veil_kernels_check(&kmsg) != VEIL_OK) {
        fprintf(stderr, "veil serve: %s\n", kmsg);
        return 2;
    }
    /* under mpirun (or --mpi): rank 0 serves, the other ranks run its lookups */
    int rc = 0;
    if (!cli_mpi_begin(&argc, &argv, "veil serve", &rc)) return rc;
    return cli_mpi_end(serve_main(argc, argv));
}
