/* Measured noise variance against the formulas, within a factor 2, over ≥ 1000 samples each:
 * fresh encryption (small and big key), key switching, PBS. With 1000 samples the sample variance
 * of a Gaussian error is within ±13% of the truth at 3σ, so the factor-2 window tests the formula,
 * not luck. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "tfhe/fixture.h"
#include "veil/tfhe.h"

static double torus_err(uint64_t phase, uint64_t expect) { return (double)(int64_t)(phase - expect) * 0x1p-64; }

static void check_ratio(const char *what, const char *set, double measured, double formula)
{
    double r = measured / formula;
    printf("%-4s %-10s measured 2^%.2f formula 2^%.2f ratio %.3f\n", set, what, log2(measured), log2(formula), r);
    CHECK(r >= 0.5 && r <= 2.0, "%s %s: measured/formula = %.3f outside [0.5, 2]", set, what, r);
}

/* the sample mean of n errors of variance var lies within 5 standard deviations of 0 */
static void check_mean(const char *what, const char *set, double mean, double var, unsigned n)
{
    double sd = sqrt(var / n);
    printf("%-4s %-10s mean %+.3f x its deviation (%.2f of the noise deviation)\n", set, what, mean / sd, mean / sqrt(var));
    CHECK(fabs(mean) <= 5 * sd, "%s %s: mean error %.3g is %.1f deviations from 0", set, what, mean, mean / sd);
}

static void run(const char *name, unsigned samples, unsigned pbs_samples, veil_rng *rng)
{
    tfhe_fixture fx;
    fixture_new(&fx, name, rng);
    const veil_params p = fx.p;
    veil_secret_key *sk = fx.sk;
    veil_eval_keys *ek = fx.ek;
    veil_pbs_scratch *scr = fx.scr;
    uint64_t *ct = fx.ct, *res = fx.res, *small = fx.small;
    const unsigned bits = 2;
    uint64_t ident[4] = {0, 1, 2, 3};
    veil_lut *lut;
    CHECK_OK(veil_lut_new(&p, bits, ident, bits, &lut));
    double s_small = 0, s_big = 0, s_ks = 0, s_pbs = 0, m_ks = 0, m_pbs = 0;
    for (unsigned i = 0; i < samples; i++) {
        uint64_t m = veil_rng_u64(rng) % 4, pt = veil_encode(m, bits);
        CHECK_OK(veil_lwe_encrypt(sk, VEIL_KEY_SMALL, pt, rng, small));
        double e = torus_err(veil_lwe_phase(sk, VEIL_KEY_SMALL, small), pt);
        s_small += e * e;
        CHECK_OK(veil_lwe_encrypt(sk, VEIL_KEY_BIG, pt, rng, ct));
        e = torus_err(veil_lwe_phase(sk, VEIL_KEY_BIG, ct), pt);
        s_big += e * e;
        veil_keyswitch(ek, ct, small);
        e = torus_err(veil_lwe_phase(sk, VEIL_KEY_SMALL, small), pt);
        s_ks += e * e, m_ks += e;
        if (i < pbs_samples) {
            veil_pbs(ek, lut, small, res, scr);
            e = torus_err(veil_lwe_phase(sk, VEIL_KEY_BIG, res), pt);
            s_pbs += e * e, m_pbs += e;
        }
    }
    check_ratio("fresh-n", name, s_small / samples, veil_var_fresh_small(&p));
    check_ratio("fresh-kN", name, s_big / samples, veil_var_fresh_big(&p));
    check_ratio("keyswitch", name, s_ks / samples, veil_var_fresh_big(&p) + veil_var_keyswitch(&p));
    check_ratio("pbs", name, s_pbs / pbs_samples, veil_var_pbs(&p));
    /* one key set's noise is centred: a decomposition whose digits have a mean (e.g. in [-B/2, B/2))
     * gives each key set a fixed offset -E[d]·Σ e_ij, a sizeable part of the deviation at small bases */
    check_mean("keyswitch", name, m_ks / samples, s_ks / samples, samples);
    check_mean("pbs", name, m_pbs / pbs_samples, s_pbs / pbs_samples, pbs_samples);
    printf("%-4s p_error(4-bit TLU, ||w||=1) = %.3g\n", name, veil_tlu_p_error(&p, 4, 1.0));
    veil_lut_free(lut);
    fixture_free(&fx);
}

int main(int argc, char **argv)
{
    veil_rng *rng;
    fixture_seeded_rng(&rng);
    unsigned pbs = check_quick() ? 100 : 1000;
    if (argc > 1) run(argv[1], 2000, pbs, rng);
    else if (check_quick()) {
        run("C2", 1000, pbs, rng); /* sanitizer build: code paths, not statistics power */
    } else {
        run("C2", 2000, pbs, rng);
        run("C4", 2000, pbs, rng);
        run("T4", 2000, pbs, rng);
    }
    /* the formulas are monotone where they must be */
    veil_params p;
    CHECK_OK(veil_params_named("C4", &p));
    CHECK(veil_tlu_p_error(&p, 4, 1.0) < veil_tlu_p_error(&p, 4, 4.0), "p_error grows with the norm");
    CHECK(veil_tlu_p_error(&p, 3, 1.0) < veil_tlu_p_error(&p, 4, 1.0), "p_error grows with the precision");
    veil_rng_free(rng);
    return check_done("test_noise");
}
