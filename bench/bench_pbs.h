#ifndef VEIL_BENCH_PBS_H
#define VEIL_BENCH_PBS_H
/* `veil bench pbs`: one key=value line per named parameter set (see bench_pbs.c). */
int veil_bench_pbs(int argc, char **argv);
#endif
