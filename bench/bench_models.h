#ifndef VEIL_BENCH_MODELS_H
#define VEIL_BENCH_MODELS_H
/* `veil bench models`: one key=value line per bundled model (see bench_models.c). */
int veil_bench_models(int argc, char **argv);
#endif
