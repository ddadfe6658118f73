/* End-to-end demo of the TFHE core (until the compiler exists): keygen on C4, encrypt a few 4-bit
 * values, apply a lookup table with the KS→PBS atomic pattern, decrypt, print inputs, outputs and
 * timings. Run by `make demo`. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "veil/tfhe.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

#define TRY(expr)                                                                                          \
    do {                                                                                                   \
        veil_status st_ = (expr);                                                                          \
        if (st_ != VEIL_OK) {                                                                              \
            fprintf(stderr, "demo: %s: %s\n", #expr, veil_status_str(st_));                               \
            return 1;                                                                                      \
        }                                                                                                  \
    } while (0)

int main(void)
{
    const unsigned bits = 4;
    veil_params p;
    TRY(veil_params_named("C4", &p));
    printf("veil TFHE demo — parameters C4: n=%u k=%u N=%u, PBS %u×2^%u, KS %u×2^%u, 128-bit secure: %s\n", p.n, p.k,
           veil_params_N(&p), p.pbs_levels, p.pbs_base_log, p.ks_levels, p.ks_base_log,
           veil_params_is_secure(&p) ? "yes" : "NO");
    printf("estimated failure probability of one 4-bit lookup: %.2g\n", veil_tlu_p_error(&p, bits, 1.0));

    veil_rng *rng;
    veil_secret_key *sk;
    veil_eval_keys *ek;
    TRY(veil_rng_new_os(&rng));
    double t0 = now_s();
    TRY(veil_secret_key_new(&p, rng, &sk));
    TRY(veil_eval_keys_new(sk, rng, &ek));
    double t_keygen = now_s() - t0;
    veil_key_sizes sz = veil_params_key_sizes(&p);
    printf("keygen: %.2f s (bootstrapping key %.1f MB, %.1f MB compressed; key-switching key %.1f MB, %.3f MB compressed)\n",
           t_keygen, sz.bsk_bytes / 1e6, sz.bsk_seeded_bytes / 1e6, sz.ksk_bytes / 1e6, sz.ksk_seeded_bytes / 1e6);

    /* f(x) = (3x² + 1) mod 16 */
    uint64_t table[16];
    for (unsigned x = 0; x < 16; x++) table[x] = (3 * x * x + 1) % 16;
    veil_lut *lut;
    veil_pbs_scratch *scr;
    TRY(veil_lut_new(&p, bits, table, bits, &lut));
    TRY(veil_pbs_scratch_new(&p, &scr));

    const unsigned inputs[] = {0, 3, 7, 11, 15};
    const uint32_t big = veil_params_big_lwe_dim(&p);
    uint64_t *ct = malloc(8 * (big + 1));
    if (!ct) return 1;
    int wrong = 0;
    printf("%6s %10s %10s %12s %12s %10s\n", "input", "f(input)", "decrypted", "encrypt_ms", "ks_pbs_ms", "decrypt_ms");
    for (size_t i = 0; i < sizeof inputs / sizeof inputs[0]; i++) {
        double a = now_s();
        TRY(veil_lwe_encrypt(sk, VEIL_KEY_BIG, veil_encode(inputs[i], bits), rng, ct));
        double b = now_s();
        veil_ks_pbs(ek, lut, ct, ct, scr);
        double c = now_s();
        uint64_t out = veil_decode(veil_lwe_phase(sk, VEIL_KEY_BIG, ct), bits);
        double d = now_s();
        wrong += out != table[inputs[i]];
        printf("%6u %10llu %10llu %12.3f %12.3f %10.3f\n", inputs[i], (unsigned long long)table[inputs[i]],
               (unsigned long long)out, 1e3 * (b - a), 1e3 * (c - b), 1e3 * (d - c));
    }
    printf("%s\n", wrong ? "MISMATCH: some lookups decrypted wrongly" : "all lookups decrypted correctly");
    free(ct);
    veil_pbs_scratch_free(scr);
    veil_lut_free(lut);
    veil_eval_keys_free(ek);
    veil_secret_key_free(sk);
    veil_rng_free(rng);
    return wrong ? 1 : 0;
}
