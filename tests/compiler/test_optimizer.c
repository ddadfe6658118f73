/* The parameter optimizer against Concrete's reference table: for 1..8 bits, ||w|| = 1 and
 * Concrete's p_error (erfc(4/√2) = 6.334e-5, the "4σ" default the table was computed with), the
 * published set C_p meets veil's constraints and the set veil finds costs no more under veil's
 * cost model. */
#include <math.h>
#include <stdio.h>

#include "check.h"
#include "veil/compiler.h"
#include "veil/graph.h"

int main(void)
{
    const double p_err = erfc(4.0 / sqrt(2.0));
    double last_cost = 0;
    for (unsigned p = 1; p <= 8; p++) {
        char name[4];
        snprintf(name, sizeof name, "C%u", p);
        veil_params ref, got;
        CHECK_OK(veil_params_named(name, &ref));
        veil_opt_problem pr = {.precision = p, .tlu_a = 1, .out_a = 1, .n_tlu = 1, .p_error = p_err};
        CHECK(veil_params_feasible(&ref, &pr), "%s does not meet veil's constraints (p_error %.4g)", name,
              veil_tlu_p_error(&ref, p, 1));
        CHECK_OK(veil_params_optimize(&pr, &got));
        double cr = veil_params_cost(&ref, 1, 0), cg = veil_params_cost(&got, 1, 0);
        CHECK(cg <= cr, "%s: found a set costing %.4g > %.4g", name, cg, cr);
        CHECK(veil_params_feasible(&got, &pr), "%s: the found set is infeasible", name);
        CHECK(veil_params_check(&got) == VEIL_OK && veil_params_is_secure(&got), "%s: found set invalid", name);
        CHECK(veil_tlu_p_error(&got, p, 1) <= p_err, "%s: found set errs with %.4g", name, veil_tlu_p_error(&got, p, 1));
        CHECK(cg > last_cost, "%u bits must cost more than %u bits", p, p - 1);
        last_cost = cg;
        printf("%s  ref n=%4u k=%u N=2^%-2u pbs %2u/%u ks %u/%u cost %.4g p_err %.3g | veil n=%4u k=%u N=2^%-2u "
               "pbs %2u/%u ks %u/%u cost %.4g (%.3fx) p_err %.3g\n",
               name, ref.n, ref.k, ref.log2_N, ref.pbs_base_log, ref.pbs_levels, ref.ks_base_log, ref.ks_levels, cr,
               veil_tlu_p_error(&ref, p, 1), got.n, got.k, got.log2_N, got.pbs_base_log, got.pbs_levels,
               got.ks_base_log, got.ks_levels, cg, cg / cr, veil_tlu_p_error(&got, p, 1));
    }
    /* a larger 2-norm or a smaller p_error costs more (at 4 bits the modulus switch dominates the
     * noise up to norms of about 16, so the norm must be large to matter) */
    veil_opt_problem base = {.precision = 4, .tlu_a = 1, .out_a = 1, .n_tlu = 1, .p_error = p_err};
    veil_opt_problem wide = base, strict = base;
    wide.tlu_a = 65536; /* ||w|| = 256 */
    strict.p_error = 0x1p-40;
    veil_params b, w, s;
    CHECK_OK(veil_params_optimize(&base, &b));
    CHECK_OK(veil_params_optimize(&wide, &w));
    CHECK_OK(veil_params_optimize(&strict, &s));
    CHECK(veil_params_cost(&w, 1, 0) > veil_params_cost(&b, 1, 0), "norm 256 must cost more");
    CHECK(veil_params_cost(&s, 1, 0) > veil_params_cost(&b, 1, 0), "2^-40 must cost more");
    CHECK(veil_params_feasible(&w, &wide) && !veil_params_feasible(&b, &wide), "norm 256 must exclude the norm-1 set");
    /* no set: 16-bit lookups need N >= 2^17 */
    veil_opt_problem huge = {.precision = 16, .tlu_a = 1, .out_a = 1, .n_tlu = 1, .p_error = p_err};
    veil_params h;
    CHECK(veil_params_optimize(&huge, &h) == VEIL_ERR_NO_PARAMS, "16-bit lookups cannot have parameters");

    /* a circuit-wide bound: 24 lookups sharing global_p_error = 0.01 */
    veil_graph *g;
    CHECK_OK(veil_graph_new(&g));
    int x = veil_graph_input(g, "x", VEIL_ENCRYPTED, 1, (int64_t[]){24});
    CHECK_OK(veil_graph_output(g, veil_graph_relu(g, x)));
    int64_t lo[24], hi[24];
    for (int i = 0; i < 24; i++) lo[i] = -8, hi[i] = 7;
    const int64_t *set[2] = {lo, hi};
    veil_compile_config cfg;
    veil_compile_config_default(&cfg);
    cfg.global_p_error = 0.01;
    veil_circuit *c;
    CHECK_OK(veil_compile(g, set, 2, &cfg, &c));
    veil_circuit_stats st;
    veil_circuit_get_stats(c, &st);
    CHECK(st.pbs_count == 24 && st.ks_count == 24, "24 lookups, got %zu", st.pbs_count);
    CHECK(st.global_p_error <= 0.01 && st.p_error <= 0.01 / 24 * 1.001, "global %.4g, per lookup %.4g",
          st.global_p_error, st.p_error);
    CHECK(st.global_p_error > 1e-4, "the bound should be used, not overshot by far (%.3g)", st.global_p_error);
    printf("global_p_error 0.01 over %zu lookups: per lookup %.3g, global %.3g, params n=%u k=%u N=2^%u\n",
           st.pbs_count, st.p_error, st.global_p_error, veil_circuit_params(c)->n, veil_circuit_params(c)->k,
           veil_circuit_params(c)->log2_N);
    veil_circuit_free(c);
    veil_graph_free(g);
    return check_done("test_optimizer");
}
