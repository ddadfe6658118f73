#ifndef VEIL_BENCH_KERNELS_H
#define VEIL_BENCH_KERNELS_H
/* `veil bench kernels`: every variant of every primitive, median microseconds (bench_kernels.c). */
int veil_bench_kernels(int argc, char **argv);
#endif
