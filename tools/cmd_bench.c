#include <stdio.h>
#include <string.h>

#include "bench_circuit.h"
#include "bench_kernels.h"
#include "bench_models.h"
#include "bench_pbs.h"
#include "commands.h"

int veil_cmd_bench(int argc, char **argv)
{
    if (argc < 1 || strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "-h") == 0) {
        printf("usage: veil bench pbs [--params NAME] [--threads T] [--runs R]\n"
               "       veil bench kernels [--runs R]\n"
               "       veil bench circuit [--circuit NAME] [--runs R] [--threads T]\n"
               "       veil bench models [--model NAME] [--samples S] [--threads T]\n");
        return argc < 1 ? 2 : 0;
    }
    if (strcmp(argv[0], "pbs") == 0) return veil_bench_pbs(argc - 1, argv + 1);
    if (strcmp(argv[0], "kernels") == 0) return veil_bench_kernels(argc - 1, argv + 1);
    if (strcmp(argv[0], "circuit") == 0) return veil_bench_circuit(argc - 1, argv + 1);
    if (strcmp(argv[0], "models") == 0) return veil_bench_models(argc - 1, argv + 1);
    fprintf(stderr, "veil bench: unknown benchmark '%s' (available: pbs, kernels, circuit, models)\n", argv[0]);
    return 2;
}
