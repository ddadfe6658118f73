/* Parameter optimizer: exhaustive search over (k, N, n, PBS and key-switch decompositions) under
 * the noise formulas of src/tfhe/noise.c and the security curve of DESIGN.md §3, minimizing
 * veil_params_cost. Both noise terms that depend on a decomposition are linear in the LWE
 * dimension n or in σ²(n), so the best base for each level count is found once per (k, N) and
 * once per n; n is scanned upward until even the cheapest decompositions cost more than the best
 * set found. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "partition.h"
#include "veil/compiler.h"

enum { N_MIN = 256, N_MAX = 2048, K_MAX = 6, LOGN_MIN = 8, LOGN_MAX = 16, PBS_L_MAX = 8, KS_L_MAX = 16, LOG_Q = 63 };

static double fft_flops(double N) { return 2.5 * N * log2(N); } /* N/2-point complex FFT */

double veil_cost_pbs(double n, double k, double N, double l)
{
    return n * ((k + 1) * (l + 1) * fft_flops(N) + (k + 1) * (k + 1) * l * (N / 2) * 8 + (k + 1) * N * (l + 2));
}

double veil_cost_ks(double n, double kN, double l) { return kN * l * (n + 1) * 2; }

/* one evaluation: n_tlu KS-PBS and n_terms linear terms */
static double cost(double n_tlu, double n_terms, double n, uint32_t k, uint32_t logN, double l_pbs, double l_ks)
{
    double N = (double)(1u << logN), kN = k * N;
    return n_tlu * (veil_cost_pbs(n, k, N, l_pbs) + veil_cost_ks(n, kN, l_ks)) + n_terms * (kN + 1) * 2;
}

double veil_params_cost(const veil_params *p, size_t n_tlu, size_t n_terms)
{
    return cost((double)n_tlu, (double)n_terms, p->n, p->k, p->log2_N, p->pbs_levels, p->ks_levels);
}

/* Largest noise standard deviation (torus) with P(|e| >= Δ/2) <= p_error for `bits`-bit messages. */
double veil_sigma_max(unsigned bits, double p_error)
{
    double lo = 0, hi = 40; /* erfc(y) = p_error */
    for (int i = 0; i < 200; i++) {
        double mid = 0.5 * (lo + hi);
        if (erfc(mid) > p_error) lo = mid;
        else hi = mid;
    }
    return exp2(-(double)bits - 2.0) / (sqrt(2.0) * hi);
}

veil_noise veil_curve_noise(uint32_t d) { return (veil_noise){VEIL_NOISE_GAUSSIAN, veil_security_min_log2_std(d), 0}; }

int veil_params_feasible(const veil_params *p, const veil_opt_problem *pr)
{
    /* a lookup's table needs N > 2^precision; a circuit without lookups does not */
    if (veil_params_check(p) != VEIL_OK || (pr->n_tlu && pr->precision + 1 > p->log2_N)) return 0;
    double s = veil_sigma_max(pr->precision, pr->p_error), vmax = s * s;
    double vp = veil_var_pbs(p), vf = veil_var_fresh_big(p);
    double vt = pr->tlu_a * vp + pr->tlu_b * vf + veil_var_keyswitch(p) + veil_var_modswitch(p);
    double vo = pr->out_a * vp + pr->out_b * vf;
    return (pr->n_tlu == 0 || vt <= vmax) && vo <= vmax;
}

veil_status veil_params_optimize(const veil_opt_problem *pr, veil_params *out)
{
    if (!pr || !out || pr->precision < 1 || pr->precision > 24 || !(pr->p_error > 0 && pr->p_error < 1))
        return VEIL_ERR_INVALID_ARG;
    const double vmax = pow(veil_sigma_max(pr->precision, pr->p_error), 2);
    double *lwe_var = veil_malloc(sizeof(double) * (N_MAX + 1));
    if (!lwe_var) return VEIL_ERR_NOMEM;
    for (uint32_t n = N_MIN; n <= N_MAX; n++) {
        veil_noise nz = veil_curve_noise(n);
        lwe_var[n] = veil_noise_variance(&nz);
    }
    double best = INFINITY;
    veil_params bp = {0};
    for (uint32_t logN = LOGN_MIN; logN <= LOGN_MAX; logN++) {
        if (pr->n_tlu && pr->precision + 1 > logN) continue;
        for (uint32_t k = 1; k <= K_MAX; k++) {
            uint32_t kN = k << logN;
            if (kN > (1u << LOGN_MAX)) continue;
            veil_params q = {.k = k, .log2_N = logN, .n = 1, .glwe_noise = veil_curve_noise(kN), .lwe_noise = veil_curve_noise(N_MIN)};
            double vf = veil_var_fresh_big(&q);
            if (pr->out_b * vf > vmax) continue; /* fresh noise alone already fails */
            /* per PBS level count: the base minimizing the per-unit-n PBS variance */
            double gmin[PBS_L_MAX + 1];
            uint32_t gbase[PBS_L_MAX + 1];
            for (uint32_t l = 1; l <= PBS_L_MAX; l++) {
                gmin[l] = INFINITY;
                gbase[l] = 0;
                for (uint32_t b = 1; b * l <= LOG_Q; b++) {
                    q.pbs_levels = l;
                    q.pbs_base_log = b;
                    double g = veil_var_pbs(&q); /* n = 1: the variance is linear in n */
                    if (g < gmin[l]) gmin[l] = g, gbase[l] = b;
                }
            }
            /* key switching: var = σ²_lwe·K1 + K2 per (level, base) */
            double K1[KS_L_MAX + 1][LOG_Q + 1], K2[KS_L_MAX + 1][LOG_Q + 1];
            for (uint32_t l = 1; l <= KS_L_MAX; l++)
                for (uint32_t b = 1; b * l <= LOG_Q; b++) {
                    q.ks_levels = l;
                    q.ks_base_log = b;
                    q.lwe_noise = (veil_noise){VEIL_NOISE_GAUSSIAN, 0, 0};
                    double with = veil_var_keyswitch(&q);
                    q.lwe_noise = (veil_noise){VEIL_NOISE_GAUSSIAN, -1000, 0};
                    K2[l][b] = veil_var_keyswitch(&q);
                    K1[l][b] = with - K2[l][b];
                }
            for (uint32_t n = N_MIN; n <= N_MAX; n++) {
                double lower = cost((double)pr->n_tlu, (double)pr->n_terms, n, k, logN, 1, 1);
                if (lower >= best) break; /* cost grows with n */
                q.n = n;
                double vms = veil_var_modswitch(&q), s2 = lwe_var[n];
                double ksmin[KS_L_MAX + 1];
                uint32_t ksbase[KS_L_MAX + 1];
                for (uint32_t l = 1; l <= KS_L_MAX; l++) {
                    ksmin[l] = INFINITY;
                    ksbase[l] = 0;
                    for (uint32_t b = 1; b * l <= LOG_Q; b++) {
                        double v = s2 * K1[l][b] + K2[l][b];
                        if (v < ksmin[l]) ksmin[l] = v, ksbase[l] = b;
                    }
                }
                for (uint32_t lp = 1; lp <= PBS_L_MAX; lp++) {
                    double vp = n * gmin[lp];
                    if (pr->out_a * vp + pr->out_b * vf > vmax) continue;
                    double base_t = pr->tlu_a * vp + pr->tlu_b * vf + vms;
                    if (pr->n_tlu && base_t > vmax) continue;
                    for (uint32_t lk = 1; lk <= KS_L_MAX; lk++) {
                        if (pr->n_tlu && base_t + ksmin[lk] > vmax) continue;
                        double c = cost((double)pr->n_tlu, (double)pr->n_terms, n, k, logN, lp, lk);
                        /* without lookups every candidate costs the same per term: prefer cheap PBS */
                        if (pr->n_tlu == 0) c += 1e-12 * cost(1, 0, n, k, logN, lp, lk);
                        if (c < best) {
                            best = c;
                            bp = (veil_params){.n = n, .k = k, .log2_N = logN, .lwe_noise = veil_curve_noise(n),
                                               .glwe_noise = veil_curve_noise(kN), .pbs_base_log = gbase[lp],
                                               .pbs_levels = lp, .ks_base_log = ksbase[lk], .ks_levels = lk};
                        }
                        break; /* more key-switch levels only cost more */
                    }
                }
            }
        }
    }
    veil_free(lwe_var);
    if (!isfinite(best)) return VEIL_ERR_NO_PARAMS;
    snprintf(bp.name, sizeof bp.name, "auto-p%u", pr->precision);
    *out = bp;
    return VEIL_OK;
}
