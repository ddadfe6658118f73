/* Error statistics at a large p_error: two chained 3-bit lookups compiled for p_error = 0.05.
 * The predicted probability that an output is wrong, from the noise formulas and the chosen
 * parameters, is 1 − (1−p1)(1−p2)(1−p_out) (first lookup on fresh noise, second on PBS noise,
 * decryption of the PBS output). simulate draws from those formulas and execute has the real
 * noise: both rates must match the prediction within 4.5 binomial standard deviations, for the
 * chain and for the first lookup alone. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "check.h"
#include "veil/runtime.h"

enum { BATCH = 500 };

static int64_t f1(int64_t x, void *c) { (void)c; return (3 * x + 1) & 7; }
static int64_t f2(int64_t x, void *c) { (void)c; return (5 * x + 2) & 7; }

static double perr(double var, unsigned bits) { return erfc(exp2(-(double)bits - 2.0) / sqrt(2.0 * var)); }

int main(void)
{
    const int quick = check_quick();
    const int sim_batches = quick ? 4 : 40, exec_batches = quick ? 1 : 6;
    veil_graph *g;
    CHECK_OK(veil_graph_new(&g));
    int x = veil_graph_input(g, "x", VEIL_ENCRYPTED, 1, (int64_t[]){BATCH});
    int y1 = veil_graph_apply(g, x, f1, NULL, "f1");
    CHECK_OK(veil_graph_output(g, veil_graph_apply(g, y1, f2, NULL, "f2")));
    CHECK_OK(veil_graph_output(g, y1)); /* an output: f1 is not fused into f2 */
    int64_t lo[BATCH], hi[BATCH], in[BATCH], ref1[BATCH], ref2[BATCH], o1[BATCH], o2[BATCH];
    for (int i = 0; i < BATCH; i++) lo[i] = 0, hi[i] = 7;
    const int64_t *set[2] = {lo, hi};
    veil_compile_config cfg;
    veil_compile_config_default(&cfg);
    cfg.p_error = 0.05;
    veil_circuit *c;
    if (veil_compile(g, set, 2, &cfg, &c) != VEIL_OK) {
        fprintf(stderr, "%s\n", veil_compiler_last_error());
        return 1;
    }
    const veil_params *P = veil_circuit_params(c);
    veil_circuit_stats st;
    veil_circuit_get_stats(c, &st);
    unsigned bits = st.precision;
    double ks_ms = veil_var_keyswitch(P) + veil_var_modswitch(P);
    double p1 = perr(veil_var_fresh_big(P) + ks_ms, bits), p2 = perr(veil_var_pbs(P) + ks_ms, bits);
    double pout = perr(veil_var_pbs(P), bits);
    double pred = 1 - (1 - p1) * (1 - p2) * (1 - pout), pred1 = 1 - (1 - p1) * (1 - pout);
    printf("params n=%u k=%u N=2^%u pbs %u/%u ks %u/%u, precision %u: p1 %.4f p2 %.4f p_out %.4f -> chain %.4f, "
           "first %.4f (stats p_error %.4f)\n",
           P->n, P->k, P->log2_N, P->pbs_base_log, P->pbs_levels, P->ks_base_log, P->ks_levels, bits, p1, p2, pout,
           pred, pred1, st.p_error);
    CHECK(st.p_error <= 0.05 * (1 + 1e-9), "the chosen parameters miss the target: %.4f", st.p_error);
    CHECK(pred > 0.005, "p_error 0.05 should give parameters that err measurably (%.4f)", pred);

    veil_rng *rng;
    uint8_t seed[VEIL_SEED_BYTES] = {42};
    CHECK_OK(veil_rng_new_seeded(&rng, seed));
    int64_t *outs[2] = {o2, o1};
    const int64_t *ins[1] = {in};
    for (int mode = 0; mode < 2; mode++) {
        veil_secret_key *sk = NULL;
        veil_eval_keys *ek = NULL;
        if (mode == 1) CHECK_OK(veil_circuit_keygen(c, rng, &sk, &ek));
        size_t n = 0, bad = 0, bad1 = 0;
        int batches = mode == 0 ? sim_batches : exec_batches;
        for (int b = 0; b < batches; b++) {
            for (int i = 0; i < BATCH; i++) {
                in[i] = (int64_t)(veil_rng_u64(rng) & 7);
                ref1[i] = f1(in[i], NULL);
                ref2[i] = f2(ref1[i], NULL);
            }
            if (mode == 0) CHECK_OK(veil_circuit_simulate(c, ins, rng, outs));
            else CHECK_OK(veil_circuit_encrypt_run_decrypt(c, sk, ek, ins, outs));
            for (int i = 0; i < BATCH; i++) bad += o2[i] != ref2[i], bad1 += o1[i] != ref1[i];
            n += BATCH;
        }
        double rate = (double)bad / (double)n, rate1 = (double)bad1 / (double)n;
        double sd = sqrt(pred * (1 - pred) / (double)n), sd1 = sqrt(pred1 * (1 - pred1) / (double)n);
        printf("%-8s %6zu samples: chain error rate %.4f (predicted %.4f +- %.4f), first lookup %.4f (predicted %.4f)\n",
               mode == 0 ? "simulate" : "execute", n, rate, pred, sd, rate1, pred1);
        const char *mname = mode == 0 ? "simulate" : "execute";
        CHECK(fabs(rate - pred) <= 4.5 * sd, "%s: chain rate %.4f vs %.4f", mname, rate, pred);
        CHECK(fabs(rate1 - pred1) <= 4.5 * sd1, "%s: first lookup rate %.4f vs %.4f", mname, rate1, pred1);
        veil_eval_keys_free(ek);
        veil_secret_key_free(sk);
    }
    veil_rng_free(rng);
    veil_circuit_free(c);
    veil_graph_free(g);
    return check_done("test_perror");
}
