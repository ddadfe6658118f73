/* The veil command line: dispatches to one file per subcommand. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli_mpi.h"
#include "commands.h"
#include "veil/core.h"
#include "veil/tfhe.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: veil <command> [args]\n"
               "commands:\n"
               "  compile     compile an ONNX model into client.veil and server.veil (veil compile --help)\n"
               "  info        describe a compiled model (veil info DIR)\n"
               "  predict     run a compiled model on an .npy file: clear, simulate or execute (veil predict --help)\n"
               "  keygen      the client's keys for a compiled model (veil keygen --help)\n"
               "  encrypt     quantize and encrypt one sample (veil encrypt --help)\n"
               "  run         what a server does: the program on ciphertexts, evaluation keys only (veil run --help)\n"
               "  decrypt     decrypt and dequantize a result (veil decrypt --help)\n"
               "  serve       serve compiled models over HTTP (veil serve --help; runs veil-serve)\n"
               "  client      predict through a veil server: keys, encryption, decryption here (veil client --help)\n"
               "  bench pbs   programmable-bootstrapping benchmark (veil bench pbs --help)\n"
               "  bench circuit  compile/keygen/encrypt/run/decrypt/simulate benchmark (veil bench circuit --help)\n"
               "  bench models   per-model compile, keygen, key size, execute latency (veil bench models --help)\n"
               "  version     print the version\n"
               "Under mpirun (or with --mpi), predict --mode execute, run and bench spread their lookups over\n"
               "the MPI ranks: rank 0 runs the command, the others bootstrap their share of every batch.\n");
}

/* `veil serve` runs the server binary beside this one: veil-serve links no secret-key code, which
 * this binary (key generation, encryption, decryption) cannot promise. */
static int exec_serve(char **argv)
{
    char self[PATH_MAX], path[PATH_MAX + 16];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) {
        fprintf(stderr, "veil serve: cannot find this program's directory\n");
        return 1;
    }
    self[n] = 0;
    char *slash = strrchr(self, '/');
    if (slash) *slash = 0;
    snprintf(path, sizeof path, "%s/veil-serve", self);
    argv[1] = path;
    execv(path, argv + 1);
    fprintf(stderr, "veil serve: cannot run %s: %s\n", path, strerror(errno));
    return 1;
}

static int dispatch(int argc, char **argv)
{
    if (strcmp(argv[1], "bench") == 0) return veil_cmd_bench(argc - 2, argv + 2);
    if (strcmp(argv[1], "compile") == 0) return veil_cmd_compile(argc - 2, argv + 2);
    if (strcmp(argv[1], "info") == 0) return veil_cmd_info(argc - 2, argv + 2);
    if (strcmp(argv[1], "client") == 0) return veil_cmd_client(argc - 2, argv + 2);
    if (strcmp(argv[1], "keygen") == 0) return veil_cmd_keygen(argc - 2, argv + 2);
    if (strcmp(argv[1], "encrypt") == 0) return veil_cmd_encrypt(argc - 2, argv + 2);
    if (strcmp(argv[1], "run") == 0) return veil_cmd_run(argc - 2, argv + 2);
    if (strcmp(argv[1], "decrypt") == 0) return veil_cmd_decrypt(argc - 2, argv + 2);
    if (strcmp(argv[1], "predict") == 0) return veil_cmd_predict(argc - 2, argv + 2);
    if (strcmp(argv[1], "version") == 0) {
        printf("veil 0.1.0 (kernels: %s)\n", veil_kernels_describe());
        return 0;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(stdout);
        return 0;
    }
    fprintf(stderr, "veil: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *kmsg;
    if (veil_kernels_check(&kmsg) != VEIL_OK) {
        fprintf(stderr, "veil: %s\n", kmsg);
        return 2;
    }
    /* before MPI starts: veil-serve starts it itself (exec after MPI_Init is not allowed) */
    if (strcmp(argv[1], "serve") == 0) return exec_serve(argv);
    /* under mpirun (or --mpi): ranks > 0 run the lookups rank 0 sends them, whatever the command */
    int rc = 0;
    if (!cli_mpi_begin(&argc, &argv, "veil", &rc)) return rc;
    if (argc < 2) {
        usage(stderr);
        return cli_mpi_end(2);
    }
    return cli_mpi_end(dispatch(argc, argv));
}
