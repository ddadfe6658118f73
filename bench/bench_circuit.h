#ifndef VEIL_BENCH_CIRCUIT_H
#define VEIL_BENCH_CIRCUIT_H
/* `veil bench circuit`: one key=value line per benchmark circuit (see bench_circuit.c). */
int veil_bench_circuit(int argc, char **argv);
#endif
