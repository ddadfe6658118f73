/* Encrypt/decrypt round trips for every message of 1..8 bits (unsigned and signed) under the small
 * and the big key of C_p; GLWE round trips; GGSW through the external product and the CMUX. */
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "veil/tfhe.h"

int main(void)
{
    veil_rng *rng;
    CHECK_OK(veil_rng_new_os(&rng));
    for (unsigned bits = 1; bits <= 8; bits++) {
        char name[4] = {'C', (char)('0' + bits), 0};
        veil_params p;
        CHECK_OK(veil_params_named(name, &p));
        CHECK(veil_params_is_secure(&p), "%s must meet the 128-bit curve", name);
        veil_secret_key *sk;
        CHECK_OK(veil_secret_key_new(&p, rng, &sk));
        uint32_t big = veil_params_big_lwe_dim(&p);
        uint64_t *ct = malloc(8 * (big + 1));
        int bad = 0;
        for (int which = 0; which < 2; which++)
            for (uint64_t m = 0; m < (1u << bits); m++) {
                CHECK_OK(veil_lwe_encrypt(sk, (veil_key_choice)which, veil_encode(m, bits), rng, ct));
                bad += veil_decode(veil_lwe_phase(sk, (veil_key_choice)which, ct), bits) != m;
                int64_t sm = (int64_t)m - (1 << (bits - 1));
                CHECK_OK(veil_lwe_encrypt(sk, (veil_key_choice)which, veil_encode_signed(sm, bits), rng, ct));
                bad += veil_decode_signed(veil_lwe_phase(sk, (veil_key_choice)which, ct), bits) != sm;
            }
        CHECK(bad == 0, "%s: %d of %u round trips wrong", name, bad, 4u << bits);

        /* GLWE: a random p-bit message polynomial */
        uint32_t N = veil_params_N(&p);
        uint64_t *pt = malloc(8 * N), *phase = malloc(8 * N), *g = malloc(8 * (p.k + 1) * N);
        uint64_t *msg = malloc(8 * N);
        for (uint32_t t = 0; t < N; t++) {
            msg[t] = veil_rng_u64(rng) % (1u << bits);
            pt[t] = veil_encode(msg[t], bits);
        }
        CHECK_OK(veil_glwe_encrypt(sk, pt, rng, g));
        CHECK_OK(veil_glwe_phase(sk, g, phase));
        int gbad = 0;
        for (uint32_t t = 0; t < N; t++) gbad += veil_decode(phase[t], bits) != msg[t];
        CHECK(gbad == 0, "%s: GLWE round trip wrong on %d coefficients", name, gbad);

        /* GGSW(b) ⊡ GLWE(m) decrypts to b·m; CMUX selects */
        size_t gw = (size_t)(p.k + 1) * (p.k + 1) * p.pbs_levels * N;
        uint64_t *ggsw = malloc(8 * gw), *g1 = malloc(8 * (p.k + 1) * N), *out = malloc(8 * (p.k + 1) * N);
        uint64_t *pt1 = malloc(8 * N);
        for (uint32_t t = 0; t < N; t++) pt1[t] = veil_encode((msg[t] + 1) % (1u << bits), bits);
        CHECK_OK(veil_glwe_encrypt(sk, pt1, rng, g1));
        for (int b = 0; b <= 1; b++) {
            CHECK_OK(veil_ggsw_encrypt(sk, b, rng, ggsw));
            CHECK_OK(veil_external_product(&p, ggsw, g, out));
            CHECK_OK(veil_glwe_phase(sk, out, phase));
            int ebad = 0, cbad = 0;
            for (uint32_t t = 0; t < N; t++) ebad += veil_decode(phase[t], bits) != (b ? msg[t] : 0);
            CHECK(ebad == 0, "%s: external product with GGSW(%d) wrong on %d coefficients", name, b, ebad);
            CHECK_OK(veil_cmux(&p, ggsw, g, g1, out));
            CHECK_OK(veil_glwe_phase(sk, out, phase));
            for (uint32_t t = 0; t < N; t++) cbad += veil_decode(phase[t], bits) != (b ? (msg[t] + 1) % (1u << bits) : msg[t]);
            CHECK(cbad == 0, "%s: CMUX(%d) wrong on %d coefficients", name, b, cbad);
        }
        printf("%s: LWE (both keys, signed and unsigned), GLWE, external product and CMUX round trips ok\n", name);
        free(ct); free(pt); free(phase); free(g); free(msg); free(ggsw); free(g1); free(out); free(pt1);
        veil_secret_key_free(sk);
    }
    /* encoding edge cases */
    CHECK(veil_encode(5, 3) == 5ull << 60, "encode(5,3)");
    CHECK(veil_decode(veil_encode(7, 3) + (1ull << 58) , 3) == 7, "decode rounds within half a step");
    CHECK(veil_decode_signed(veil_encode_signed(-4, 3), 3) == -4, "signed minimum");
    veil_params g;
    CHECK_OK(veil_params_named("GATE", &g));
    CHECK(!veil_params_is_secure(&g), "GATE is below the curve and must say so");
    CHECK_OK(veil_params_named("T4", &g));
    CHECK(veil_params_is_secure(&g), "T4 meets the curve");
    veil_rng_free(rng);
    return check_done("test_encrypt");
}
