/* Every graph operation: the graph's own clear evaluation, the program run clear, simulated and
 * encrypted agree on inputs drawn from the inputset (p_error 2^-40, so no lookup may fail). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "veil/runtime.h"

enum { SAMPLES = 40, RUNS = 10, MAX_IO = 8 };

static uint64_t lcg = 0x9E3779B97F4A7C15ull;
static int64_t draw(int64_t lo, int64_t hi)
{
    lcg = lcg * 6364136223846793005ull + 1442695040888963407ull;
    return lo + (int64_t)((lcg >> 33) % (uint64_t)(hi - lo + 1));
}

static veil_rng *seeded(uint8_t tag)
{
    uint8_t seed[VEIL_SEED_BYTES] = {tag, 7, 7};
    veil_rng *r = NULL;
    if (veil_rng_new_seeded(&r, seed) != VEIL_OK) exit(1);
    return r;
}

static int64_t node_size(const veil_graph *g, int id)
{
    int64_t shape[VEIL_MAX_DIMS], s = 1;
    int nd = veil_graph_shape(g, id, shape);
    for (int d = 0; d < nd; d++) s *= shape[d];
    return s;
}

static int same(const char *name, const char *what, int64_t *const *ref, int64_t *const *got, size_t nout,
                const int64_t *osz)
{
    for (size_t j = 0; j < nout; j++)
        for (int64_t e = 0; e < osz[j]; e++)
            if (ref[j][e] != got[j][e]) {
                CHECK(0, "%s: %s output %zu[%lld] = %lld, graph says %lld", name, what, j, (long long)e,
                      (long long)got[j][e], (long long)ref[j][e]);
                return 0;
            }
    return 1;
}

static unsigned lookup_bits_max; /* when set, the widest lookup the next case may read */

/* Compiles g on SAMPLES samples (all-low and all-high first, then uniform in [lo[i], hi[i]]) and
 * compares the evaluations on RUNS of them, `exec_runs` encrypted. Frees g. */
static void run_case(const char *name, veil_graph *g, const int64_t *lo, const int64_t *hi, int exec_runs)
{
    if (veil_graph_status(g) != VEIL_OK) {
        CHECK(0, "%s: graph error: %s", name, veil_graph_last_error(g));
        veil_graph_free(g);
        return;
    }
    size_t nin = veil_graph_input_count(g), nout = veil_graph_output_count(g);
    if (nin > MAX_IO || nout > MAX_IO) exit(2);
    int64_t isz[MAX_IO], osz[MAX_IO];
    for (size_t i = 0; i < nin; i++) isz[i] = node_size(g, veil_graph_input_node(g, i));
    for (size_t j = 0; j < nout; j++) osz[j] = node_size(g, veil_graph_output_node(g, j));
    const int64_t **set = calloc(SAMPLES * nin + 1, sizeof *set);
    int64_t *ref[MAX_IO], *got[MAX_IO];
    for (size_t s = 0; s < SAMPLES; s++)
        for (size_t i = 0; i < nin; i++) {
            int64_t *v = malloc(sizeof(int64_t) * (size_t)isz[i]);
            for (int64_t e = 0; e < isz[i]; e++) v[e] = s == 0 ? lo[i] : s == 1 ? hi[i] : draw(lo[i], hi[i]);
            set[s * nin + i] = v;
        }
    for (size_t j = 0; j < nout; j++) {
        ref[j] = malloc(sizeof(int64_t) * (size_t)osz[j]);
        got[j] = malloc(sizeof(int64_t) * (size_t)osz[j]);
    }
    veil_compile_config cfg;
    veil_compile_config_default(&cfg);
    veil_circuit *c = NULL;
    veil_status st = veil_compile(g, set, SAMPLES, &cfg, &c);
    CHECK(st == VEIL_OK, "%s: compile: %s\n%s", name, veil_status_str(st), veil_compiler_last_error());
    if (st == VEIL_OK) {
        veil_circuit_stats cs;
        veil_circuit_get_stats(c, &cs);
        const veil_params *p = veil_circuit_params(c);
        printf("%-22s precision %2u  lookups %2u bits  pbs %4zu  params n=%u k=%u N=2^%u  max bit_width %u  sets %zu\n",
               name, cs.precision, cs.lookup_bits, cs.pbs_count, p->n, p->k, p->log2_N, veil_circuit_max_bit_width(c),
               cs.partitions);
        /* precision partitions never cost more than the one set (which they start from) */
        CHECK(cs.cost <= cs.single_cost && (cs.partitions > 1 || cs.cost == cs.single_cost),
              "%s: partitioned cost %.4g, single precision %.4g", name, cs.cost, cs.single_cost);
        {
            veil_compile_config one = cfg;
            one.single_precision = 1;
            veil_circuit *c1 = NULL;
            CHECK_OK(veil_compile(g, set, SAMPLES, &one, &c1));
            veil_circuit_stats s1;
            veil_circuit_get_stats(c1, &s1);
            CHECK(s1.partitions == 1 && s1.cost == cs.single_cost, "%s: --single-precision is the starting point",
                  name);
            veil_circuit_free(c1);
        }
        if (lookup_bits_max)
            CHECK(cs.lookup_bits <= lookup_bits_max, "%s: lookups read %u bits, expected at most %u", name,
                  cs.lookup_bits, lookup_bits_max);
        veil_rng *rng = seeded(1);
        int ok = 1;
        for (int r = 0; r < RUNS && ok; r++) {
            const int64_t *const *in = set + (size_t)(r * 7 % SAMPLES) * nin;
            CHECK_OK(veil_graph_eval(g, in, ref));
            CHECK_OK(veil_circuit_clear(c, in, got));
            ok = same(name, "clear", ref, got, nout, osz);
            CHECK_OK(veil_circuit_simulate(c, in, rng, got));
            ok = ok && same(name, "simulate", ref, got, nout, osz);
        }
        if (exec_runs && !check_quick()) {
            veil_secret_key *sk;
            veil_eval_keys *ek;
            CHECK_OK(veil_circuit_keygen(c, rng, &sk, &ek));
            for (int r = 0; r < exec_runs && ok; r++) {
                const int64_t *const *in = set + (size_t)((r * 11 + 1) % SAMPLES) * nin;
                CHECK_OK(veil_graph_eval(g, in, ref));
                CHECK_OK(veil_circuit_encrypt_run_decrypt(c, sk, ek, in, got));
                ok = same(name, "execute", ref, got, nout, osz);
            }
            veil_eval_keys_free(ek);
            veil_secret_key_free(sk);
        }
        veil_rng_free(rng);
    }
    veil_circuit_free(c);
    for (size_t k = 0; k < SAMPLES * nin; k++) free((void *)set[k]);
    free(set);
    for (size_t j = 0; j < nout; j++) free(ref[j]), free(got[j]);
    veil_graph_free(g);
}

static veil_graph *G(void)
{
    veil_graph *g;
    if (veil_graph_new(&g) != VEIL_OK) exit(1);
    return g;
}

#define SH(...) ((int64_t[]){__VA_ARGS__})
#define OUT(g, x) CHECK(veil_graph_output((g), (x)) == VEIL_OK, "output: %s", veil_graph_last_error(g))
#define ENC(g, name, nd, ...) veil_graph_input((g), (name), VEIL_ENCRYPTED, (nd), SH(__VA_ARGS__))

static int64_t poly7(int64_t x, void *ctx)
{
    (void)ctx;
    return (x * x + 3) % 7;
}

int main(int argc, char **argv)
{
    const char *only = argc > 1 ? argv[1] : NULL;
#define CASE(name) if (!only || strcmp(only, name) == 0)
    veil_graph *g;
    int x, y, w;

    CASE("add") {
        g = G();
        x = ENC(g, "x", 2, 2, 3), y = ENC(g, "y", 1, 3);
        OUT(g, veil_graph_add(g, x, y));
        run_case("add", g, SH(0, 0), SH(7, 7), 2);
    }
    CASE("add_sub_clear") {
        g = G();
        x = ENC(g, "x", 2, 2, 3);
        w = veil_graph_constant(g, 1, SH(3), SH(1, -2, 5));
        OUT(g, veil_graph_add(g, x, w));
        OUT(g, veil_graph_sub(g, veil_graph_scalar(g, 10), x));
        run_case("add_sub_clear", g, SH(-4), SH(3), 2);
    }
    CASE("sub_negate") {
        g = G();
        x = ENC(g, "x", 1, 4), y = ENC(g, "y", 1, 4);
        OUT(g, veil_graph_sub(g, x, y));
        OUT(g, veil_graph_negate(g, x));
        run_case("sub_negate", g, SH(0, 0), SH(7, 7), 2);
    }
    CASE("multiply_clear") {
        g = G();
        x = ENC(g, "x", 2, 2, 3);
        OUT(g, veil_graph_multiply(g, x, veil_graph_constant(g, 2, SH(2, 3), SH(1, -1, 2, 0, 3, -2))));
        OUT(g, veil_graph_multiply(g, veil_graph_scalar(g, 3), x));
        run_case("multiply_clear", g, SH(-3), SH(3), 2);
    }
    CASE("multiply_enc") {
        g = G();
        x = ENC(g, "x", 1, 3), y = ENC(g, "y", 1, 3);
        OUT(g, veil_graph_multiply(g, x, y));
        run_case("multiply_enc", g, SH(0, -4), SH(5, 3), 1);
    }
    CASE("matmul_clear") {
        g = G();
        x = ENC(g, "x", 1, 3);
        y = ENC(g, "y", 2, 2, 3);
        OUT(g, veil_graph_matmul(g, veil_graph_constant(g, 2, SH(2, 3), SH(1, 2, -1, 0, 1, 3)), x));
        OUT(g, veil_graph_matmul(g, y, veil_graph_constant(g, 2, SH(3, 2), SH(2, 0, -1, 1, 1, 1))));
        OUT(g, veil_graph_dot(g, x, veil_graph_constant(g, 1, SH(3), SH(3, -2, 1))));
        run_case("matmul_clear", g, SH(0, -2), SH(3, 2), 2);
    }
    CASE("matmul_enc") {
        g = G();
        x = ENC(g, "x", 2, 2, 2), y = ENC(g, "y", 2, 2, 2);
        OUT(g, veil_graph_matmul(g, x, y));
        run_case("matmul_enc", g, SH(0, 0), SH(3, 3), 1);
    }
    CASE("sum") {
        g = G();
        x = ENC(g, "x", 3, 2, 3, 2);
        OUT(g, veil_graph_sum(g, x, 2, (int[]){0, -1}, 0));
        OUT(g, veil_graph_sum(g, x, 1, (int[]){1}, 1));
        OUT(g, veil_graph_sum(g, x, 0, NULL, 0));
        run_case("sum", g, SH(0), SH(3), 2);
    }
    CASE("shape_ops") {
        g = G();
        x = ENC(g, "x", 2, 2, 3);
        int r = veil_graph_reshape(g, x, 2, SH(3, -1));
        OUT(g, veil_graph_transpose(g, r, NULL));
        OUT(g, veil_graph_transpose(g, veil_graph_reshape(g, x, 3, SH(1, 2, 3)), (int[]){2, 0, 1}));
        OUT(g, veil_graph_flatten(g, x));
        run_case("shape_ops", g, SH(0), SH(7), 2);
    }
    CASE("concatenate") {
        g = G();
        x = ENC(g, "x", 2, 2, 2), y = ENC(g, "y", 2, 1, 2);
        OUT(g, veil_graph_concatenate(g, 3, (int[]){x, y, veil_graph_constant(g, 2, SH(1, 2), SH(5, 6))}, 0));
        OUT(g, veil_graph_concatenate(g, 2, (int[]){x, x}, -1));
        run_case("concatenate", g, SH(0, 0), SH(3, 3), 2);
    }
    CASE("slice") {
        g = G();
        x = ENC(g, "x", 2, 4, 5);
        OUT(g, veil_graph_slice(g, x, 2, (veil_slice[]){{1, 4, 2, 0}, VEIL_SLICE_AT(-1)}));
        OUT(g, veil_graph_slice(g, x, 2, (veil_slice[]){VEIL_SLICE_ALL, {VEIL_SLICE_END, VEIL_SLICE_END, -2, 0}}));
        OUT(g, veil_graph_slice(g, x, 1, (veil_slice[]){VEIL_SLICE_AT(2)}));
        run_case("slice", g, SH(0), SH(7), 2);
    }
    CASE("conv2d") {
        g = G();
        x = ENC(g, "x", 4, 1, 2, 5, 5);
        int64_t wv[4 * 1 * 3 * 3];
        for (int i = 0; i < 36; i++) wv[i] = (i * 7 % 3) - 1;
        w = veil_graph_constant(g, 4, SH(4, 1, 3, 3), wv);
        int b = veil_graph_constant(g, 1, SH(4), SH(1, 0, -1, 2));
        veil_conv2d_opts o = {{2, 2}, {1, 1, 1, 1}, {1, 1}, 2};
        OUT(g, veil_graph_conv2d(g, x, w, b, &o));
        veil_conv2d_opts d = {{1, 1}, {0, 0, 0, 0}, {2, 2}, 1};
        OUT(g, veil_graph_conv2d(g, x, veil_graph_constant(g, 4, SH(1, 2, 2, 2), SH(1, -1, 0, 1, 1, 0, -1, 1)), -1, &d));
        run_case("conv2d", g, SH(0), SH(3), 1);
    }
    CASE("avg_pool") {
        g = G();
        x = ENC(g, "x", 4, 1, 1, 4, 4);
        veil_pool2d_opts o = {{2, 2}, {2, 2}, {0, 0, 0, 0}, {1, 1}};
        OUT(g, veil_graph_avg_pool2d(g, x, &o));
        run_case("avg_pool", g, SH(-4), SH(3), 1);
    }
    CASE("max_pool") {
        g = G();
        x = ENC(g, "x", 4, 1, 1, 3, 3);
        veil_pool2d_opts o = {{2, 2}, {1, 1}, {1, 0, 0, 1}, {1, 1}};
        OUT(g, veil_graph_max_pool2d(g, x, &o));
        run_case("max_pool", g, SH(-4), SH(3), 1);
    }
    CASE("table") {
        g = G();
        x = ENC(g, "x", 1, 3), y = ENC(g, "y", 1, 3);
        OUT(g, veil_graph_table(g, x, 8, SH(3, 1, 4, 1, 5, 9, 2, 6)));
        OUT(g, veil_graph_table(g, y, 8, SH(0, 1, 2, 3, -4, -3, -2, -1))); /* y signed: Python indexing */
        run_case("table", g, SH(0, -4), SH(7, 3), 2);
    }
    CASE("apply_relu_abs_clip") {
        g = G();
        x = ENC(g, "x", 1, 4);
        OUT(g, veil_graph_apply(g, x, poly7, NULL, "poly7"));
        OUT(g, veil_graph_relu(g, x));
        OUT(g, veil_graph_abs(g, x));
        OUT(g, veil_graph_clip(g, x, -1, 2));
        run_case("apply_relu_abs_clip", g, SH(-5), SH(6), 2);
    }
    CASE("fused_chain") {
        g = G();
        x = ENC(g, "x", 1, 4);
        int t = veil_graph_sub(g, veil_graph_multiply(g, veil_graph_abs(g, x), veil_graph_scalar(g, 2)), veil_graph_scalar(g, 3));
        OUT(g, veil_graph_relu(g, veil_graph_add(g, veil_graph_scalar(g, 1), t)));
        run_case("fused_chain", g, SH(-4), SH(3), 2);
    }
    CASE("comparisons") {
        g = G();
        x = ENC(g, "x", 1, 3), y = ENC(g, "y", 1, 3);
        OUT(g, veil_graph_less(g, x, y));
        OUT(g, veil_graph_less_equal(g, x, y));
        OUT(g, veil_graph_greater(g, x, veil_graph_scalar(g, 1)));
        OUT(g, veil_graph_greater_equal(g, x, y));
        OUT(g, veil_graph_equal(g, x, y));
        OUT(g, veil_graph_not_equal(g, veil_graph_constant(g, 1, SH(3), SH(0, 1, 2)), y));
        run_case("comparisons", g, SH(0, 0), SH(3, 3), 1);
    }
    CASE("min_max") {
        g = G();
        x = ENC(g, "x", 1, 4), y = ENC(g, "y", 1, 4);
        OUT(g, veil_graph_minimum(g, x, y));
        OUT(g, veil_graph_maximum(g, x, veil_graph_scalar(g, 0)));
        run_case("min_max", g, SH(-3, 0), SH(3, 5), 1);
    }
    CASE("bit_patterns") {
        g = G();
        x = ENC(g, "x", 1, 4);
        OUT(g, veil_graph_round_bit_pattern(g, x, 2));
        OUT(g, veil_graph_truncate_bit_pattern(g, x, 2));
        run_case("bit_patterns", g, SH(0), SH(27), 2);
    }
    CASE("round_exact_wide") {
        /* exact rounding of a 10-bit signed value to its top 4 bits: the low 6 bits are extracted
         * by narrow lookups, so no lookup reads more than the 5 bits of the kept value and its overflow (a fused table would read 11) */
        g = G();
        x = ENC(g, "x", 1, 3);
        int v = veil_graph_add(g, veil_graph_multiply(g, x, veil_graph_scalar(g, 3)), veil_graph_scalar(g, 5));
        OUT(g, veil_graph_round_bit_pattern(g, v, 6));
        int r = veil_graph_round_bit_pattern(g, v, 6);
        OUT(g, veil_graph_relu(g, veil_graph_sub(g, r, veil_graph_scalar(g, 64))));
        OUT(g, veil_graph_truncate_bit_pattern(g, v, 5));
        lookup_bits_max = 5;
        run_case("round_exact_wide", g, SH(-170), SH(165), 3);
        lookup_bits_max = 0;
    }
    CASE("shift_then_round") {
        /* a constant added before a rounding (the shifted grid of a rounded model output) goes to
         * the linear side, so the rounding still leads the lookup: 6 kept bits and their overflow
         * are read, not the 12 of x - 37 */
        g = G();
        x = ENC(g, "x", 1, 3);
        int r = veil_graph_round_bit_pattern(g, veil_graph_sub(g, x, veil_graph_scalar(g, 37)), 6);
        OUT(g, veil_graph_relu(g, veil_graph_sub(g, r, veil_graph_scalar(g, 64))));
        lookup_bits_max = 7;
        run_case("shift_then_round", g, SH(-2000), SH(2000), 2);
        lookup_bits_max = 0;
    }
    CASE("max_pool_of_lookup") {
        /* a max pool of a non-decreasing lookup commutes with it: the comparisons read the
         * rounded indices (5 bits, their differences 6), not the table's values (11 bits) */
        g = G();
        x = ENC(g, "x", 4, 1, 1, 4, 4);
        veil_pool2d_opts o = {{2, 2}, {1, 1}, {1, 0, 0, 1}, {1, 1}};
        int r = veil_graph_round_bit_pattern(g, x, 6);
        OUT(g, veil_graph_max_pool2d(g, veil_graph_clip(g, r, 100, 900), &o));
        y = ENC(g, "y", 4, 1, 1, 3, 3);
        veil_pool2d_opts o3 = {{3, 3}, {1, 1}, {0, 0, 0, 0}, {1, 1}};
        OUT(g, veil_graph_max_pool2d(g, veil_graph_relu(g, veil_graph_truncate_bit_pattern(g, y, 5)), &o3));
        lookup_bits_max = 6;
        run_case("max_pool_of_lookup", g, SH(0, -300), SH(1019, 400), 2);
        lookup_bits_max = 0;
    }
    CASE("max_pool_not_monotone") {
        /* abs is not monotone, and a lookup read elsewhere too keeps its table: neither is rewritten */
        g = G();
        x = ENC(g, "x", 4, 1, 1, 3, 3);
        veil_pool2d_opts o = {{2, 2}, {1, 1}, {0, 0, 0, 0}, {1, 1}};
        OUT(g, veil_graph_max_pool2d(g, veil_graph_abs(g, x), &o));
        int c = veil_graph_clip(g, x, -2, 5);
        OUT(g, veil_graph_max_pool2d(g, c, &o));
        OUT(g, c);
        run_case("max_pool_not_monotone", g, SH(-6), SH(7), 1);
    }
    CASE("clear_inputs") {
        g = G();
        x = ENC(g, "x", 1, 3);
        y = veil_graph_input(g, "y", VEIL_CLEAR, 1, SH(3));
        w = veil_graph_input(g, "w", VEIL_CLEAR, 2, SH(3, 2));
        int k = veil_graph_input(g, "k", VEIL_CLEAR, 0, NULL);
        OUT(g, veil_graph_add(g, x, y));
        OUT(g, veil_graph_multiply(g, x, y));
        OUT(g, veil_graph_matmul(g, x, veil_graph_add(g, w, veil_graph_scalar(g, 1))));
        OUT(g, veil_graph_less(g, x, y));
        OUT(g, veil_graph_relu(g, veil_graph_sub(g, veil_graph_multiply(g, x, k), veil_graph_scalar(g, 4))));
        run_case("clear_inputs", g, SH(0, -2, -1, 1), SH(3, 2, 1, 3), 2);
    }
    CASE("two_layer") {
        g = G();
        x = ENC(g, "x", 1, 4);
        int h = veil_graph_relu(g, veil_graph_matmul(g, veil_graph_constant(g, 2, SH(3, 4), SH(1, -1, 0, 1, 0, 1, 1, -1, -1, 0, 1, 1)), x));
        OUT(g, veil_graph_add(g, veil_graph_matmul(g, veil_graph_constant(g, 2, SH(2, 3), SH(1, 1, -1, 0, 2, 1)), h),
                              veil_graph_scalar(g, 1)));
        run_case("two_layer", g, SH(0), SH(3), 2);
    }
    return check_done("test_ops");
}
