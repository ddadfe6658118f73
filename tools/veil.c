/* The veil command line: dispatches to one file per subcommand. */
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "veil/core.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: veil <command> [args]\n"
               "commands:\n"
               "  compile     compile an ONNX model into client.veil and server.veil (veil compile --help)\n"
               "  info        describe a compiled model (veil info DIR)\n"
               "  predict     run a compiled model on an .npy file: clear, simulate or execute (veil predict --help)\n"
               "  bench pbs   programmable-bootstrapping benchmark (veil bench pbs --help)\n"
               "  bench circuit  compile/keygen/encrypt/run/decrypt/simulate benchmark (veil bench circuit --help)\n"
               "  bench models   per-model compile, keygen, key size, execute latency (veil bench models --help)\n"
               "  version     print the version\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "bench") == 0) return veil_cmd_bench(argc - 2, argv + 2);
    if (strcmp(argv[1], "compile") == 0) return veil_cmd_compile(argc - 2, argv + 2);
    if (strcmp(argv[1], "info") == 0) return veil_cmd_info(argc - 2, argv + 2);
    if (strcmp(argv[1], "predict") == 0) return veil_cmd_predict(argc - 2, argv + 2);
    if (strcmp(argv[1], "version") == 0) {
        printf("veil 0.1.0 (kernels: %s)\n", veil_cpu_kernel_name());
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
