/* FFT negacyclic products against the naive O(N²) product, N = 256 … 16384.
 *  - the exact product with a binary polynomial (key generation, GLWE decryption) must equal the
 *    naive product bit for bit;
 *  - the floating product of a 64-bit torus polynomial with digits |d| ≤ 2^15 (the PBS case) must
 *    be within the stated bound: max |error| ≤ 8 · 2^(64-53) · 2^15 · sqrt(N · log2 N) units of
 *    2^-64 (FFT round-off grows like ε·sqrt(log N) per coefficient of norm ~2^63·2^15·sqrt(N)). */
#include <math.h>
#include <stdint.h>

#include "check.h"
#include "tfhe/fft.h"
#include "veil/core.h"

static void naive(const uint64_t *a, const uint64_t *b, uint64_t *out, uint32_t N)
{
    for (uint32_t i = 0; i < N; i++) out[i] = 0;
    for (uint32_t i = 0; i < N; i++)
        for (uint32_t j = 0; j < N; j++) {
            uint64_t prod = a[i] * b[j];
            if (i + j < N) out[i + j] += prod;
            else out[i + j - N] -= prod;
        }
}

int main(void)
{
    veil_rng *rng;
    uint8_t seed[16] = {1, 2, 3};
    CHECK_OK(veil_rng_new_seeded(&rng, seed));
    for (uint32_t logN = 8; logN <= 14; logN++) {
        const uint32_t N = 1u << logN;
        const veil_fft_plan *p = veil_fft_plan_get(logN);
        CHECK(p != NULL, "plan %u", N);
        uint64_t *a = veil_malloc(8 * N), *s = veil_malloc(8 * N), *ref = veil_malloc(8 * N), *got = veil_malloc(8 * N);
        int64_t *d = veil_malloc(8 * N);
        double *sf = veil_malloc(8 * N), *af = veil_malloc(8 * N), *df = veil_malloc(8 * N), *tmp = veil_malloc(16 * N);
        veil_rng_u64s(rng, a, N);
        for (uint32_t i = 0; i < N; i++) s[i] = veil_rng_u64(rng) & 1;
        /* extreme coefficients too */
        a[0] = 0x8000000000000000ull;
        a[1] = 0x7fffffffffffffffull;
        a[2] = ~0ull;
        naive(a, s, ref, N);
        veil_fft_forward_u64(p, s, sf);
        veil_poly_mul_binary_exact(p, a, sf, got, tmp);
        int exact_bad = 0;
        for (uint32_t i = 0; i < N; i++) exact_bad += got[i] != ref[i];
        CHECK(exact_bad == 0, "N=%u: exact binary product differs on %d coefficients", N, exact_bad);

        uint64_t *du = veil_malloc(8 * N);
        for (uint32_t i = 0; i < N; i++) {
            d[i] = (int64_t)(veil_rng_u64(rng) % 65536) - 32768;
            du[i] = (uint64_t)d[i];
        }
        d[3] = -32768;
        du[3] = (uint64_t)d[3];
        naive(a, du, ref, N);
        veil_fft_forward_u64(p, a, af);
        veil_fft_forward_i64(p, d, df);
        for (uint32_t i = 0; i < N; i++) tmp[i] = 0;
        veil_fft_mac(tmp, af, df, N / 2);
        for (uint32_t i = 0; i < N; i++) got[i] = 0;
        veil_fft_backward_add_u64(p, tmp, got);
        double maxerr = 0;
        for (uint32_t i = 0; i < N; i++) {
            double e = fabs((double)(int64_t)(got[i] - ref[i]));
            if (e > maxerr) maxerr = e;
        }
        double bound = 8.0 * 0x1p11 * 0x1p15 * sqrt((double)N * logN);
        CHECK(maxerr <= bound, "N=%u: FFT product error 2^%.1f above bound 2^%.1f", N, log2(maxerr), log2(bound));
        printf("N=%5u: exact binary product ok; float product max error 2^%.1f (bound 2^%.1f) units of 2^-64\n", N,
               maxerr > 0 ? log2(maxerr) : -1.0, log2(bound));
        veil_free(a); veil_free(s); veil_free(ref); veil_free(got); veil_free(d); veil_free(du);
        veil_free(sf); veil_free(af); veil_free(df); veil_free(tmp);
    }
    veil_rng_free(rng);
    return check_done("test_fft");
}
