/* Circuit benchmark (`veil bench circuit`): compile, keygen, encrypt, run, decrypt and simulate
 * for three circuits, one key=value line each:
 *   tlu4        one encrypted 4-bit input (inputset covers 0..15), one 4-bit lookup (x*x) % 13
 *   dot64_tlu4  64 binary features (at most 15 active), all weights 1, then the same 4-bit lookup
 *   mlp2        16 binary inputs -> 8 ReLU (weights in {-1,0,1}) -> 4 ReLU, an integer network
 * Keys: circuit precision pbs params compile_ms keygen_s encrypt_ms run_ms decrypt_ms simulate_ms
 *       sim_speedup bsk_bytes ksk_bytes in_bytes out_bytes p_error
 * Times are medians of --runs runs (keygen: one run); sim_speedup = run_ms / simulate_ms, measured
 * in the same process. run uses --threads threads (all cores by default). --p-error P sets the
 * per-lookup error probability of the compile config (default 2^-40, as veil_compile_config_default);
 * params= is n/k/N/pbs<base_log>.<levels>/ks<base_log>.<levels>. bench/compare/concrete.sh runs
 * tlu4 and dot64_tlu4 against concrete-python. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_circuit.h"
#include "bench_util.h"
#include "veil/runtime.h"

enum { INPUTSET = 100, MAX_IN = 64 };

static uint64_t lcg = 12345;
static uint64_t rnd(void)
{
    lcg = lcg * 6364136223846793005ull + 1442695040888963407ull;
    return lcg >> 33;
}

/* at most 15 of 64 features active */
static void sparse_binary(int64_t *x)
{
    memset(x, 0, sizeof(int64_t) * 64);
    int k = (int)(rnd() % 16);
    for (int i = 0; i < k; i++) x[rnd() % 64] = 1;
}

/* 0, 1, ..., 15, 0, 1, ... */
static void nibble(int64_t *x)
{
    static int64_t next = 0;
    x[0] = next;
    next = (next + 1) % 16;
}

static void binary16(int64_t *x)
{
    for (int i = 0; i < 16; i++) x[i] = (int64_t)(rnd() & 1);
}

static int64_t sigmoidish(int64_t v, void *ctx)
{
    (void)ctx;
    return v * v % 13; /* any 4-bit table */
}

static veil_graph *build(const char *name, int64_t *in_size, void (**gen)(int64_t *))
{
    veil_graph *g;
    if (veil_graph_new(&g) != VEIL_OK) return NULL;
    if (strcmp(name, "tlu4") == 0) {
        int x = veil_graph_input(g, "x", VEIL_ENCRYPTED, 1, (int64_t[]){1});
        (void)!veil_graph_output(g, veil_graph_apply(g, x, sigmoidish, NULL, "f"));
        *in_size = 1;
        *gen = nibble;
    } else if (strcmp(name, "dot64_tlu4") == 0) {
        int64_t ones[64];
        for (int i = 0; i < 64; i++) ones[i] = 1;
        int x = veil_graph_input(g, "x", VEIL_ENCRYPTED, 1, (int64_t[]){64});
        int d = veil_graph_dot(g, x, veil_graph_constant(g, 1, (int64_t[]){64}, ones));
        (void)!veil_graph_output(g, veil_graph_apply(g, d, sigmoidish, NULL, "f"));
        *in_size = 64;
        *gen = sparse_binary;
    } else {
        int64_t w1[8 * 16], w2[4 * 8];
        for (int i = 0; i < 8 * 16; i++) w1[i] = (int64_t)(rnd() % 3) - 1;
        for (int i = 0; i < 4 * 8; i++) w2[i] = (int64_t)(rnd() % 3) - 1;
        int x = veil_graph_input(g, "x", VEIL_ENCRYPTED, 1, (int64_t[]){16});
        int h = veil_graph_relu(g, veil_graph_matmul(g, veil_graph_constant(g, 2, (int64_t[]){8, 16}, w1), x));
        int o = veil_graph_relu(g, veil_graph_matmul(g, veil_graph_constant(g, 2, (int64_t[]){4, 8}, w2), h));
        (void)!veil_graph_output(g, o);
        *in_size = 16;
        *gen = binary16;
    }
    if (veil_graph_status(g) != VEIL_OK) {
        fprintf(stderr, "veil bench circuit: %s: %s\n", name, veil_graph_last_error(g));
        veil_graph_free(g);
        return NULL;
    }
    return g;
}

static int bench_one(const char *name, int runs, unsigned threads, double p_error)
{
    int rc = 1;
    int64_t in_size = 0;
    void (*gen)(int64_t *) = NULL;
    veil_graph *g = build(name, &in_size, &gen);
    if (!g) return 1;
    int64_t *samples = malloc(sizeof(int64_t) * INPUTSET * MAX_IN);
    const int64_t *set[INPUTSET];
    for (int s = 0; s < INPUTSET; s++) gen(samples + s * MAX_IN), set[s] = samples + s * MAX_IN;
    veil_circuit *c = NULL;
    veil_secret_key *sk = NULL;
    veil_eval_keys *ek = NULL;
    veil_ciphertexts *cin = NULL, *cout = NULL;
    double *t_comp = calloc((size_t)runs, sizeof(double)), *t_enc = calloc((size_t)runs, sizeof(double));
    double *t_run = calloc((size_t)runs, sizeof(double)), *t_dec = calloc((size_t)runs, sizeof(double));
    double *t_sim = calloc((size_t)runs, sizeof(double));
    veil_compile_config cfg;
    veil_compile_config_default(&cfg);
    if (p_error > 0) cfg.p_error = p_error;
    veil_rng *sim_rng = NULL; /* one generator for all simulations, as a caller running many would */
    if (veil_rng_new_os(&sim_rng) != VEIL_OK) goto out;
    for (int r = 0; r < runs; r++) {
        veil_circuit_free(c);
        c = NULL;
        double t0 = bench_now_s();
        if (veil_compile(g, set, INPUTSET, &cfg, &c) != VEIL_OK) {
            fprintf(stderr, "veil bench circuit: %s: %s\n", name, veil_compiler_last_error());
            goto out;
        }
        t_comp[r] = bench_now_s() - t0;
    }
    double t0 = bench_now_s();
    if (veil_circuit_keygen(c, NULL, &sk, &ek) != VEIL_OK) goto out;
    double keygen_s = bench_now_s() - t0;
    int64_t out[8], ref[8], sim[8];
    int64_t *outs[1] = {out}, *refs[1] = {ref}, *sims[1] = {sim};
    for (int r = 0; r < runs; r++) {
        const int64_t *ins[1] = {set[(r * 13) % INPUTSET]};
        veil_ciphertexts_free(cin);
        veil_ciphertexts_free(cout);
        cin = cout = NULL;
        double a = bench_now_s();
        if (veil_circuit_encrypt(c, sk, ins, NULL, &cin) != VEIL_OK) goto out;
        double b = bench_now_s();
        if (veil_circuit_run(c, ek, cin, threads, &cout) != VEIL_OK) goto out;
        double d = bench_now_s();
        if (veil_circuit_decrypt(c, sk, cout, outs) != VEIL_OK) goto out;
        double e = bench_now_s();
        if (veil_circuit_simulate(c, ins, sim_rng, sims) != VEIL_OK) goto out;
        double f = bench_now_s();
        t_enc[r] = b - a, t_run[r] = d - b, t_dec[r] = e - d, t_sim[r] = f - e;
        if (veil_circuit_clear(c, ins, refs) != VEIL_OK) goto out;
        for (int64_t j = 0; j < veil_circuit_output_size(c, 0); j++)
            if (out[j] != ref[j] || sim[j] != ref[j]) {
                fprintf(stderr, "veil bench circuit: %s: wrong result\n", name);
                goto out;
            }
    }
    veil_circuit_stats st;
    veil_circuit_get_stats(c, &st);
    const veil_params *p = veil_circuit_params(c);
    double run_ms = 1e3 * bench_median(t_run, runs), sim_ms = 1e3 * bench_median(t_sim, runs);
    printf("circuit=%s precision=%u pbs=%zu params=n%u/k%u/N%u/pbs%u.%u/ks%u.%u compile_ms=%.2f keygen_s=%.3f "
           "encrypt_ms=%.3f run_ms=%.2f decrypt_ms=%.3f simulate_ms=%.4f sim_speedup=%.0f bsk_bytes=%llu "
           "ksk_bytes=%llu in_bytes=%llu out_bytes=%llu p_error=%.3g\n",
           name, st.precision, st.pbs_count, p->n, p->k, 1u << p->log2_N, p->pbs_base_log, p->pbs_levels,
           p->ks_base_log, p->ks_levels, 1e3 * bench_median(t_comp, runs), keygen_s, 1e3 * bench_median(t_enc, runs),
           run_ms, 1e3 * bench_median(t_dec, runs), sim_ms, run_ms / sim_ms, (unsigned long long)st.bsk_bytes,
           (unsigned long long)st.ksk_bytes, (unsigned long long)st.input_bytes, (unsigned long long)st.output_bytes,
           st.p_error);
    fflush(stdout);
    rc = 0;
out:
    veil_rng_free(sim_rng);
    veil_ciphertexts_free(cin);
    veil_ciphertexts_free(cout);
    veil_eval_keys_free(ek);
    veil_secret_key_free(sk);
    veil_circuit_free(c);
    veil_graph_free(g);
    free(samples);
    free(t_comp), free(t_enc), free(t_run), free(t_dec), free(t_sim);
    return rc;
}

int veil_bench_circuit(int argc, char **argv)
{
    int runs = 5;
    unsigned threads = 0;
    const char *only = NULL;
    double p_error = 0; /* 0: the config default */
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--runs") == 0 && i + 1 < argc) runs = atoi(argv[++i]);
        else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc) threads = (unsigned)atoi(argv[++i]);
        else if (strcmp(argv[i], "--circuit") == 0 && i + 1 < argc) only = argv[++i];
        else if (strcmp(argv[i], "--p-error") == 0 && i + 1 < argc) {
            char *end;
            p_error = strtod(argv[++i], &end);
            if (*end || !(p_error > 0 && p_error < 1)) {
                fprintf(stderr, "veil bench circuit: --p-error must be a number in (0, 1), e.g. 9.094947e-13\n");
                return 2;
            }
        } else {
            if (strcmp(argv[i], "--help") != 0 && strcmp(argv[i], "-h") != 0)
                fprintf(stderr, "veil bench circuit: unknown argument '%s'\n", argv[i]);
            printf("usage: veil bench circuit [--circuit tlu4|dot64_tlu4|mlp2] [--runs R] [--threads T] "
                   "[--p-error P]\n");
            return strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0 ? 0 : 2;
        }
    }
    if (runs < 1 || runs > 1000) {
        fprintf(stderr, "veil bench circuit: --runs must be in [1, 1000]\n");
        return 2;
    }
    fprintf(stderr, "# kernels=%s threads=%u\n", veil_kernels_describe(), threads ? threads : veil_cpu_count());
    int rc = 0;
    const char *names[] = {"tlu4", "dot64_tlu4", "mlp2"};
    int found = 0;
    for (int i = 0; i < 3; i++)
        if (!only || strcmp(only, names[i]) == 0) found = 1, rc |= bench_one(names[i], runs, threads, p_error);
    if (!found) {
        fprintf(stderr, "veil bench circuit: unknown circuit '%s' (tlu4, dot64_tlu4, mlp2)\n", only);
        return 2;
    }
    return rc;
}
