/* Noise formulas, all variances on the torus (integer variance / 2^128). Derivations follow the
 * TFHE analysis (Chillotti, Gama, Georgieva, Izabachène, J. Cryptology 2020, §3–4) for binary
 * keys (E[s] = 1/2, E[s²] = 1/2) and balanced digits of mean 0 (kernels.h, veil_digits) with E[d²] = (B²+2)/12;
 * the FFT term is Concrete's empirical model (concrete-optimizer, FFT_SCALING_WEIGHT). */
#include <math.h>

#include "veil/tfhe.h"

double veil_var_fresh_small(const veil_params *p) { return veil_noise_variance(&p->lwe_noise); }
double veil_var_fresh_big(const veil_params *p) { return veil_noise_variance(&p->glwe_noise); }
double veil_var_linear(double var_in, double norm2) { return norm2 * norm2 * var_in; }

/* Σ_i Σ_j d_ij · KSK_ij adds kN·ℓ·E[d²]·σ_ksk²; rounding a'_i to β·ℓ bits leaves an error
 * uniform on a grid of 2^-βℓ (variance 2^-2βℓ/12) multiplied by s'_i. */
double veil_var_keyswitch(const veil_params *p) { return veil_var_keyswitch_dim(p, veil_params_ks_dim(p)); }

double veil_var_keyswitch_dim(const veil_params *p, uint32_t in_dim)
{
    double big = (double)in_dim, l = p->ks_levels;
    double B = exp2(p->ks_base_log);
    double key = big * l * (B * B + 2) / 12.0 * veil_noise_variance(&p->lwe_noise);
    double rounding = big * 0.5 * exp2(-2.0 * p->ks_base_log * p->ks_levels) / 12.0;
    return key + rounding;
}

/* Rounding each of the n+1 words to a multiple of 1/(2N): variance 1/(48N²), masks weighted by
 * E[s²] = 1/2. */
double veil_var_modswitch(const veil_params *p)
{
    double N = veil_params_N(p);
    return (p->n * 0.5 + 1.0) / (48.0 * N * N);
}

double veil_var_pbs_fft(const veil_params *p)
{
    const double fft_scaling_weight = -2.57722494; /* concrete-optimizer */
    double N = veil_params_N(p), B = exp2(p->pbs_base_log);
    double lost_bits = 64 - 53;
    double modular = exp2(fft_scaling_weight) * exp2(2 * lost_bits) * p->pbs_levels * B * B * N * N * (p->k + 1);
    return p->n * modular * 0x1p-128;
}

/* Blind rotation = n CMUX. Each adds (k+1)ℓN·E[d²]·σ_bsk² from the key, and — when the key bit
 * is 1 (probability 1/2) — the decomposition rounding error ε (variance 2^-2βℓ/12 per word)
 * through the body and the k·N mask words weighted by s: (1 + kN/2)·2^-2βℓ/24. */
double veil_var_pbs(const veil_params *p)
{
    double N = veil_params_N(p), k = p->k, l = p->pbs_levels;
    double B = exp2(p->pbs_base_log);
    double key = (k + 1) * l * N * (B * B + 2) / 12.0 * veil_noise_variance(&p->glwe_noise);
    double rounding = (1.0 + k * N / 2.0) * exp2(-2.0 * p->pbs_base_log * p->pbs_levels) / 24.0;
    return p->n * (key + rounding) + veil_var_pbs_fft(p);
}

double veil_tlu_p_error(const veil_params *p, unsigned bits, double norm2)
{
    double var = veil_var_linear(veil_var_pbs(p), norm2) + veil_var_keyswitch(p) + veil_var_modswitch(p);
    /* decoding fails when |error| ≥ Δ/2 = 2^-(bits+2) */
    double half_delta = exp2(-(double)bits - 2.0);
    return erfc(half_delta / sqrt(2.0 * var));
}
