/* Precision partitions: a circuit with a 2-bit and a 5-bit lookup chained through a linear layer
 * gets one parameter set per width, sharing one key.
 *   - it costs less than the single-precision circuit, which is today's one set;
 *   - clear, simulate and execute agree value for value at the default p_error;
 *   - at p_error 0.05 the measured error rates match the rates predicted from each partition's
 *     noise formulas: simulate within 4.5 binomial standard deviations, execute (real noise, which
 *     the formulas bound from above) between half the prediction and the prediction, within 4.5;
 *   - the circuit and its keys (expanded and compressed) round-trip through their files, and
 *     keys, ciphertexts and files of the single-precision circuit are refused by it. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "compiler/partition.h"
#include "core/container.h"
#include "veil/runtime.h"

enum { BMAX = 256 };
static int B = BMAX; /* batch: the input's size (quick mode, the sanitizer build: 32) */

static int64_t f2(int64_t x, void *c) { (void)c; return (3 * x + 1) & 3; }
static int64_t f5(int64_t x, void *c) { (void)c; return (x * 13 + 5) & 31; }

static double perr(double var, unsigned bits) { return erfc(exp2(-(double)bits - 2.0) / sqrt(2.0 * var)); }

static veil_graph *build(void)
{
    veil_graph *g;
    if (veil_graph_new(&g) != VEIL_OK) return NULL;
    int x = veil_graph_input(g, "x", VEIL_ENCRYPTED, 1, (int64_t[]){B});
    int y1 = veil_graph_apply(g, x, f2, NULL, "f2");                    /* reads 2 bits */
    int s = veil_graph_add(g, veil_graph_multiply(g, y1, veil_graph_scalar(g, 8)), x); /* 5 bits */
    int y2 = veil_graph_apply(g, s, f5, NULL, "f5");                    /* reads 5 bits */
    if (veil_graph_output(g, y2) != VEIL_OK || veil_graph_output(g, y1) != VEIL_OK) return NULL;
    return g;
}

static veil_circuit *compile(veil_graph *g, double p_error, int single)
{
    int64_t lo[BMAX], hi[BMAX];
    for (int i = 0; i < B; i++) lo[i] = 0, hi[i] = 3;
    const int64_t *set[2] = {lo, hi};
    veil_compile_config cfg;
    veil_compile_config_default(&cfg);
    cfg.p_error = p_error;
    cfg.single_precision = single;
    veil_circuit *c = NULL;
    if (veil_compile(g, set, 2, &cfg, &c) != VEIL_OK) fprintf(stderr, "%s\n", veil_compiler_last_error());
    return c;
}

static void describe(const char *what, const veil_circuit *c)
{
    veil_circuit_stats s;
    veil_circuit_get_stats(c, &s);
    printf("%s: %zu partition(s), cost %.4g (single precision %.4g), %zu cross-partition key switches\n", what,
           s.partitions, s.cost, s.single_cost, s.cross_ks_count);
    for (size_t j = 0; j < s.partitions; j++) {
        veil_partition_stats q;
        if (veil_circuit_get_partition(c, j, &q) != VEIL_OK) continue;
        printf("  %s: %zu lookups of %u bits, n=%u k=%u N=2^%u pbs 2^%u x %u ks 2^%u x %u from %u, p_error %.3g\n",
               q.params.name, q.pbs_count, q.lookup_bits, q.params.n, q.params.k, q.params.log2_N,
               q.params.pbs_base_log, q.params.pbs_levels, q.params.ks_base_log, q.params.ks_levels,
               veil_params_ks_dim(&q.params), q.p_error);
    }
}

/* inputs: uniform 2-bit values */
static void sample(veil_rng *rng, int64_t *x)
{
    for (int i = 0; i < B; i++) x[i] = (int64_t)(veil_rng_u64(rng) % 4);
}

static void reference(const int64_t *x, int64_t *r2, int64_t *r1)
{
    for (int i = 0; i < B; i++) {
        r1[i] = f2(x[i], NULL);
        r2[i] = f5(8 * r1[i] + x[i], NULL);
    }
}

static void agreement(veil_circuit *c, veil_rng *rng)
{
    int64_t x[BMAX], r1[BMAX], r2[BMAX], o1[BMAX], o2[BMAX];
    const int64_t *in[1] = {x};
    int64_t *out[2] = {o2, o1};
    veil_secret_key *sk;
    veil_eval_keys *ek;
    CHECK_OK(veil_circuit_keygen(c, rng, &sk, &ek));
    CHECK(veil_eval_keys_count(ek) == veil_circuit_partition_count(c), "one key part per partition");
    const int runs = check_quick() ? 1 : 3;
    for (int r = 0; r < runs; r++) {
        sample(rng, x);
        reference(x, r2, r1);
        CHECK_OK(veil_circuit_clear(c, in, out));
        CHECK(!memcmp(o1, r1, sizeof(int64_t) * (size_t)B) && !memcmp(o2, r2, sizeof(int64_t) * (size_t)B), "clear equals the graph");
        CHECK_OK(veil_circuit_simulate(c, in, rng, out));
        CHECK(!memcmp(o1, r1, sizeof(int64_t) * (size_t)B) && !memcmp(o2, r2, sizeof(int64_t) * (size_t)B), "simulate equals the graph");
        CHECK_OK(veil_circuit_encrypt_run_decrypt(c, sk, ek, in, out));
        CHECK(!memcmp(o1, r1, sizeof(int64_t) * (size_t)B) && !memcmp(o2, r2, sizeof(int64_t) * (size_t)B), "execute equals the graph");
    }
    veil_eval_keys_free(ek);
    veil_secret_key_free(sk);
}

/* the rates of wrong y1 and of wrong y2 over `batches` batches */
static void rates(veil_circuit *c, veil_secret_key *sk, veil_eval_keys *ek, veil_rng *rng, int batches, double *e1,
                  double *e2)
{
    int64_t x[BMAX], r1[BMAX], r2[BMAX], o1[BMAX], o2[BMAX];
    const int64_t *in[1] = {x};
    int64_t *out[2] = {o2, o1};
    long w1 = 0, w2 = 0;
    for (int t = 0; t < batches; t++) {
        sample(rng, x);
        reference(x, r2, r1);
        veil_status st = sk ? veil_circuit_encrypt_run_decrypt(c, sk, ek, in, out) : veil_circuit_simulate(c, in, rng, out);
        CHECK_OK(st);
        for (int i = 0; i < B; i++) w1 += o1[i] != r1[i], w2 += o2[i] != r2[i];
    }
    *e1 = (double)w1 / ((double)batches * B);
    *e2 = (double)w2 / ((double)batches * B);
}

/* simulate draws from the formulas: within k binomial standard deviations of the prediction.
 * execute has the real noise, which the formulas bound from above (the noise of one set of keys,
 * shared by all values of a run, is one draw): at most the prediction and at least half of it,
 * within k standard deviations. Quick mode's short execute run is checked with a wider k. */
static void check_rate(const char *what, double got, double want, double n, double k, int real)
{
    double sd = sqrt(want * (1 - want) / n);
    printf("  %-22s measured %.4f predicted %.4f (sd %.4f)\n", what, got, want, sd);
    if (!real)
        CHECK(fabs(got - want) <= k * sd + 1e-9, "%s: error rate %.4f, predicted %.4f +- %.1f x %.4f", what, got, want,
              k, sd);
    else
        CHECK(got <= want + k * sd + 1e-9 && got >= want / 2 - k * sd, "%s: error rate %.4f, predicted at most %.4f "
              "and at least half of it (+- %.1f x %.4f)", what, got, want, k, sd);
}

static void error_rates(veil_graph *g, veil_rng *rng)
{
    veil_circuit *c = compile(g, 0.05, 0);
    CHECK(c != NULL, "compiles at p_error 0.05");
    if (!c) return;
    describe("p_error 0.05", c);
    CHECK(veil_circuit_partition_count(c) == 2, "two partitions at p_error 0.05");
    veil_partition_stats qa, qb;
    CHECK_OK(veil_circuit_get_partition(c, 0, &qa));
    CHECK_OK(veil_circuit_get_partition(c, 1, &qb));
    const veil_params *K = veil_circuit_params(c), *P2 = &qa.params, *P5 = &qb.params;
    veil_circuit_stats s;
    veil_circuit_get_stats(c, &s);
    const unsigned p = s.precision; /* 5: y1 reads 2 bits of it at shift 0, y2 all 5 */
    const uint32_t top = veil_params_big_lwe_dim(K), d2 = veil_params_big_lwe_dim(P2);
    /* y1 = f2(x): fresh noise scaled by 2^(p-2), P2's key switch from the whole key, modulus switch */
    double v1 = veil_var_fresh_big(K) * ldexp(1.0, 2 * (int)(p - 2)) + veil_var_keyswitch_dim(P2, top) +
                veil_var_modswitch(P2);
    /* y2 = f5(8·y1 + x): y1's PBS noise times 8², fresh noise, P5's key switch */
    double v2 = 64 * veil_var_pbs(P2) + veil_var_fresh_big(K) + veil_var_keyswitch_dim(P5, top > d2 ? top : d2) +
                veil_var_modswitch(P5);
    double p1 = perr(v1, 2), p2 = perr(v2, p), po1 = perr(veil_var_pbs(P2), p), po2 = perr(veil_var_pbs(P5), p);
    /* a wrong y1 makes y2 wrong too (f5 is a permutation of 8·y1 + x) */
    double pred1 = 1 - (1 - p1) * (1 - po1), pred2 = 1 - (1 - p1) * (1 - p2) * (1 - po2);
    printf("  p1 %.4f p2 %.4f p_out %.4f / %.4f\n", p1, p2, po1, po2);
    CHECK(pred1 > 0.005 || pred2 > 0.005, "p_error 0.05 should err measurably (%.4f, %.4f)", pred1, pred2);
    const int sim = check_quick() ? 8 : 80, exe = check_quick() ? 1 : 8;
    double e1, e2;
    rates(c, NULL, NULL, rng, sim, &e1, &e2);
    printf(" simulate, %d values:\n", sim * B);
    check_rate("y1 (2-bit partition)", e1, pred1, (double)sim * B, 4.5, 0);
    check_rate("y2 (through both)", e2, pred2, (double)sim * B, 4.5, 0);
    /* a fresh set of keys every 2 batches: the rate also varies from one key set to another */
    double s1 = 0, s2 = 0;
    for (int t = 0; t < exe; t += 2) {
        veil_secret_key *sk;
        veil_eval_keys *ek;
        CHECK_OK(veil_circuit_keygen(c, rng, &sk, &ek));
        int nb = exe - t < 2 ? exe - t : 2;
        rates(c, sk, ek, rng, nb, &e1, &e2);
        s1 += e1 * nb, s2 += e2 * nb;
        veil_eval_keys_free(ek);
        veil_secret_key_free(sk);
    }
    e1 = s1 / exe, e2 = s2 / exe;
    printf(" execute, %d values, %d key sets:\n", exe * B, (exe + 1) / 2);
    const double k = check_quick() ? 6.0 : 4.5;
    check_rate("y1 (2-bit partition)", e1, pred1, (double)exe * B, k, 1);
    check_rate("y2 (through both)", e2, pred2, (double)exe * B, k, 1);
    veil_circuit_free(c);
}

static void resign(uint8_t *buf, size_t len) { veil_sha256(buf, len - 32, buf + len - 32); }

static void formats(veil_circuit *c, veil_circuit *single, veil_rng *rng)
{
    uint8_t *cb;
    size_t cl;
    CHECK_OK(veil_circuit_serialize(c, &cb, &cl));
    CHECK(cl > 10 && cb[8] == 2, "a circuit of several sets is written in format version 2");
    veil_circuit *back = NULL;
    CHECK_OK(veil_circuit_deserialize(cb, cl, &back));
    if (!back) return;
    CHECK(veil_circuit_partition_count(back) == veil_circuit_partition_count(c), "partitions read back");
    for (size_t j = 0; j < veil_circuit_partition_count(c); j++) {
        veil_partition_stats a, b;
        CHECK_OK(veil_circuit_get_partition(c, j, &a));
        CHECK_OK(veil_circuit_get_partition(back, j, &b));
        CHECK(veil_params_fingerprint(&a.params) == veil_params_fingerprint(&b.params) && a.pbs_count == b.pbs_count &&
                  a.bsk_bytes == b.bsk_bytes && a.ksk_bytes == b.ksk_bytes,
              "partition %zu read back", j);
    }
    /* a multi-set file that claims version 1 is refused */
    uint8_t *bad = malloc(cl);
    memcpy(bad, cb, cl);
    bad[8] = 1;
    resign(bad, cl);
    veil_circuit *nope = NULL;
    CHECK(veil_circuit_deserialize(bad, cl, &nope) == VEIL_ERR_MALFORMED && !nope, "version 1 with several sets refused");
    free(bad);

    /* keys made for the original run the circuit read back, in both forms of their file */
    int64_t x[BMAX], r1[BMAX], r2[BMAX], o1[BMAX], o2[BMAX];
    const int64_t *in[1] = {x};
    int64_t *out[2] = {o2, o1};
    veil_secret_key *sk;
    veil_eval_keys *ek;
    CHECK_OK(veil_circuit_keygen(c, rng, &sk, &ek));
    for (int compressed = 0; compressed < 2; compressed++) {
        uint8_t *kb;
        size_t kl;
        CHECK_OK(veil_eval_keys_serialize(ek, compressed, &kb, &kl));
        CHECK(kb[8] == 2, "keys of several sets: format version 2");
        veil_eval_keys *ek2 = NULL;
        CHECK_OK(veil_eval_keys_deserialize(kb, kl, veil_circuit_params(back), &ek2));
        CHECK(veil_eval_keys_count(ek2) == veil_circuit_partition_count(c), "all parts read back");
        sample(rng, x);
        reference(x, r2, r1);
        CHECK_OK(veil_circuit_encrypt_run_decrypt(back, sk, ek2, in, out));
        CHECK(!memcmp(o1, r1, sizeof(int64_t) * (size_t)B) && !memcmp(o2, r2, sizeof(int64_t) * (size_t)B), "keys read back (%s) execute",
              compressed ? "compressed" : "expanded");
        veil_eval_keys_free(ek2);
        /* refusals: another circuit's parameters; a damaged part; a part dropped */
        CHECK(veil_eval_keys_deserialize(kb, kl, veil_circuit_params(single), &ek2) == VEIL_ERR_PARAMS_MISMATCH,
              "keys of several sets refused for the single-precision circuit");
        uint8_t *dam = malloc(kl);
        memcpy(dam, kb, kl);
        dam[kl - 40] ^= 4; /* inside the last part, its own checksum */
        resign(dam, kl);
        CHECK(veil_eval_keys_deserialize(dam, kl, NULL, &ek2) != VEIL_OK, "a damaged part is refused");
        free(dam);
        veil_free(kb);
    }
    /* the single-precision circuit's keys and ciphertexts do not fit the partitioned one */
    veil_secret_key *sk1;
    veil_eval_keys *ek1;
    CHECK_OK(veil_circuit_keygen(single, rng, &sk1, &ek1));
    veil_ciphertexts *ct = NULL, *res = NULL;
    sample(rng, x);
    CHECK_OK(veil_circuit_encrypt(single, sk1, in, rng, &ct));
    CHECK(veil_circuit_run(c, ek1, ct, 1, &res) == VEIL_ERR_PARAMS_MISMATCH && !res,
          "single-precision ciphertexts and keys refused");
    veil_ciphertexts_free(ct);
    CHECK_OK(veil_circuit_encrypt(c, sk, in, rng, &ct));
    CHECK(veil_circuit_run(c, ek1, ct, 1, &res) == VEIL_ERR_PARAMS_MISMATCH && !res, "single-precision keys refused");
    CHECK(veil_circuit_run(single, ek, ct, 1, &res) == VEIL_ERR_PARAMS_MISMATCH && !res,
          "partitioned keys refused by the single-precision circuit");
    uint8_t *sb;
    size_t sl;
    CHECK_OK(veil_secret_key_serialize(sk, &sb, &sl));
    veil_secret_key *sk2 = NULL;
    CHECK(veil_secret_key_deserialize(sb, sl, veil_circuit_params(single), &sk2) == VEIL_ERR_PARAMS_MISMATCH,
          "the shared secret key names its sets");
    CHECK_OK(veil_secret_key_deserialize(sb, sl, veil_circuit_params(c), &sk2));
    veil_secret_key_free(sk2);
    veil_free(sb);
    veil_ciphertexts_free(ct);
    veil_eval_keys_free(ek1);
    veil_secret_key_free(sk1);
    veil_eval_keys_free(ek);
    veil_secret_key_free(sk);
    veil_circuit_free(back);
    veil_free(cb);
}

/* A lookup of a constant (a dead neuron: all its weights zero) reads a slot the runtime puts under
 * the whole key: its partition's key-switching key must reach that far. */
static void constant_lookup(void)
{
    veil_prog_input in = {.encrypted = 1, .size = 1, .base = 0};
    uint64_t toff[3] = {0, 1, 1};
    uint32_t ts[1] = {1}, in1[1] = {0}, in2[2] = {2, 3}, os[2] = {4, 5};
    int64_t tw[1] = {1}, cst[2] = {0, 5}, tab[4] = {0};
    veil_instr I[3];
    memset(I, 0, sizeof I);
    I[0] = (veil_instr){.kind = VEIL_INSTR_TLU, .out_base = 1, .count = 1, .in_slot = in1, .bits = 1, .table = tab};
    I[1] = (veil_instr){.kind = VEIL_INSTR_LINEAR, .out_base = 2, .count = 2, .term_off = toff, .term_slot = ts,
                        .term_w = tw, .cst = cst}; /* slot 2 = slot 1, slot 3 = 5 */
    I[2] = (veil_instr){.kind = VEIL_INSTR_TLU, .out_base = 4, .count = 2, .in_slot = in2, .bits = 2, .table = tab};
    veil_prog_output out = {.size = 2, .slots = os};
    veil_program p = {.nslots = 6, .ninputs = 1, .noutputs = 1, .ninstr = 3, .inputs = &in, .outputs = &out,
                      .instr = I, .precision = 3, .tlu_precision = 2, .n_tlu = 3, .n_terms = 1};
    veil_part_problem pr;
    CHECK_OK(veil_part_analyze(&p, 1e-6, &pr));
    veil_params s[2] = {{.n = 600, .k = 1, .log2_N = 11}, {.n = 700, .k = 1, .log2_N = 10}};
    CHECK(pr.m == 2 && veil_part_ks_dim(&pr, s, 1) == 2048, "a constant lookup input counts as under the whole key (%u)",
          veil_part_ks_dim(&pr, s, 1));
    veil_part_problem_free(&pr);
}

int main(void)
{
    if (check_quick()) B = 32;
    constant_lookup();
    veil_graph *g = build();
    CHECK(g != NULL, "graph builds");
    if (!g) return check_done("test_partitions");
    veil_circuit *c = compile(g, 0x1p-40, 0), *single = compile(g, 0x1p-40, 1);
    CHECK(c && single, "compiles both ways");
    if (!c || !single) return check_done("test_partitions");
    describe("partitioned", c);
    describe("single precision", single);
    veil_circuit_stats s, s1;
    veil_circuit_get_stats(c, &s);
    veil_circuit_get_stats(single, &s1);
    CHECK(s.partitions == 2 && s1.partitions == 1, "a 2-bit and a 5-bit partition (%zu)", s.partitions);
    CHECK(s.cost < s1.cost && s.single_cost == s1.cost, "cheaper than the single set (%.4g vs %.4g)", s.cost, s1.cost);
    CHECK(veil_params_fingerprint(veil_circuit_params(single)) != veil_params_fingerprint(veil_circuit_params(c)),
          "the shared key's fingerprint differs from the single set's");
    veil_partition_stats q;
    CHECK_OK(veil_circuit_get_partition(c, 0, &q));
    CHECK(q.lookup_bits == 2 && q.pbs_count == (size_t)B, "the 2-bit partition");
    CHECK_OK(veil_circuit_get_partition(c, 1, &q));
    CHECK(q.lookup_bits == 5 && q.pbs_count == (size_t)B, "the 5-bit partition");
    CHECK(veil_circuit_get_partition(c, 2, &q) == VEIL_ERR_INVALID_ARG, "partition out of range");

    veil_rng *rng;
    check_seeded_rng(&rng);
    agreement(c, rng);
    formats(c, single, rng);
    error_rates(g, rng);
    veil_rng_free(rng);
    veil_circuit_free(c);
    veil_circuit_free(single);
    veil_graph_free(g);
    return check_done("test_partitions");
}
