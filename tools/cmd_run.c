/* veil run DIR [--eval-keys FILE] --input CT -o OUT: what a server does, from files: the program of
 * DIR/server.veil on input ciphertexts with the evaluation keys only. No secret key is read. */
#include <stdio.h>
#include <string.h>

#include "bench_util.h"
#include "cli.h"
#include "cli_mpi.h"
#include "commands.h"
#include "veil/server.h"

int veil_cmd_run(int argc, char **argv)
{
    const char *dir = NULL, *keys = NULL, *input = NULL, *out = NULL, *v;
    long threads = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            printf("usage: veil run DIR [--eval-keys FILE] --input CT -o OUT [--threads N]\n"
                   "  runs DIR/server.veil on the ciphertexts CT (veil encrypt) with the evaluation keys FILE\n"
                   "  (eval.keys from veil keygen; a model without lookups needs none); OUT is for veil decrypt\n");
            return 0;
        }
        if (!strcmp(a, "--eval-keys")) {
            if (!(keys = cli_value("run", argc, argv, &i))) return 2;
        } else if (!strcmp(a, "--input")) {
            if (!(input = cli_value("run", argc, argv, &i))) return 2;
        } else if (!strcmp(a, "-o")) {
            if (!(out = cli_value("run", argc, argv, &i))) return 2;
        } else if (!strcmp(a, "--threads")) {
            if (!(v = cli_value("run", argc, argv, &i)) || !cli_int("run", a, v, 0, 1024, &threads)) return 2;
        } else if (!dir && a[0] != '-') {
            dir = a;
        } else {
            fprintf(stderr, "veil run: unknown argument '%s'\n", a);
            return 2;
        }
    }
    if (!dir || !input || !out) {
        fprintf(stderr, "usage: veil run DIR [--eval-keys FILE] --input CT -o OUT [--threads N]\n");
        return 2;
    }
    char path[4200];
    snprintf(path, sizeof path, "%s/server.veil", dir);
    veil_server_model *m = NULL;
    veil_eval_keys *ek = NULL;
    uint8_t *kb = NULL, *in = NULL, *res = NULL;
    size_t kl = 0, il = 0, rl = 0;
    int rc = 1;
    if (veil_server_model_load(path, &m) != VEIL_OK) {
        fprintf(stderr, "veil run: %s\n", veil_server_last_error());
        goto done;
    }
    veil_circuit_stats cs;
    veil_circuit_get_stats(veil_server_model_circuit(m), &cs);
    if (!keys && cs.pbs_count) {
        fprintf(stderr, "veil run: %s has %zu lookups per inference: it needs --eval-keys\n", dir, cs.pbs_count);
        goto done;
    }
    if ((keys && veil_file_read_all(keys, (size_t)1 << 36, &kb, &kl) != VEIL_OK) ||
        veil_file_read_all(input, (size_t)1 << 30, &in, &il) != VEIL_OK) {
        fprintf(stderr, "veil run: cannot read %s%s%s\n", keys ? keys : "", keys ? " or " : "", input);
        goto done;
    }
    veil_status st = keys ? veil_server_keys_load(m, kb, kl, &ek) : VEIL_OK;
    veil_free(kb);
    kb = NULL;
    if (st != VEIL_OK) {
        fprintf(stderr, "veil run: %s: %s\n", keys, veil_server_last_error());
        goto done;
    }
    cli_mpi_share_keys_file(ek, keys); /* under mpirun: the other ranks read the same file */
    double t0 = bench_now_s();
    if (veil_server_run(m, ek, in, il, (unsigned)threads, &res, &rl) != VEIL_OK) {
        fprintf(stderr, "veil run: %s: %s\n", input, veil_server_last_error());
        goto done;
    }
    double dt = bench_now_s() - t0;
    if (veil_file_write_atomic(out, res, rl, 0644) != VEIL_OK) {
        fprintf(stderr, "veil run: %s: cannot write\n", out);
        goto done;
    }
    printf("ran %s in %.3f s: %s (%zu bytes)\n", dir, dt, out, rl);
    rc = 0;
done:
    veil_free(kb), veil_free(in), veil_free(res);
    veil_eval_keys_free(ek);
    veil_server_model_free(m);
    return rc;
}
