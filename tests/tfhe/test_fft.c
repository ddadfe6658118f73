/* FFT negacyclic products against the naive O(N²) product, N = 256 … 131072 (… 16384 in quick
 * mode), with the kernels VEIL_KERNELS names (ctest runs it once per variant) or the chosen ones.
 *  - the exact product with a binary polynomial (key generation, GLWE decryption) must equal the
 *    naive product bit for bit;
 *  - the floating product of a 64-bit torus polynomial with digits |d| ≤ 2^15 (the PBS case) must
 *    be within the stated bound: max |error| ≤ 8 · 2^(64-53) · 2^15 · sqrt(N · log2 N) units of
 *    2^-64 (FFT round-off grows like ε·sqrt(log N) per coefficient of norm ~2^63·2^15·sqrt(N)). */
#include <math.h>
#include <stdint.h>

#include "check.h"
#include "tfhe/fft.h"
#include "tfhe/fixture.h"
#include "veil/core.h"

/* coefficient t of a·b mod (X^N+1, 2^64) */
static uint64_t naive_at(const uint64_t *a, const uint64_t *b, uint32_t N, uint32_t t)
{
    uint64_t acc = 0;
    for (uint32_t i = 0; i <= t; i++) acc += a[i] * b[t - i];
    for (uint32_t i = t + 1; i < N; i++) acc -= a[i] * b[N + t - i];
    return acc;
}

/* The coefficients checked: all of them up to N = 2^14; above, the first and last 64 and 1024
 * random ones (the naive product is O(N) per coefficient). */
static uint32_t checked(uint32_t N, veil_rng *rng, uint32_t *idx)
{
    if (N <= (1u << 14)) {
        for (uint32_t i = 0; i < N; i++) idx[i] = i;
        return N;
    }
    uint32_t c = 0;
    for (uint32_t i = 0; i < 64; i++) {
        idx[c++] = i;
        idx[c++] = N - 1 - i;
    }
    while (c < 64 * 2 + 1024) idx[c++] = (uint32_t)(veil_rng_u64(rng) % N);
    return c;
}

int main(void)
{
    fixture_kernels_or_skip();
    veil_rng *rng;
    uint8_t seed[16] = {1, 2, 3};
    CHECK_OK(veil_rng_new_seeded(&rng, seed));
    const uint32_t max_log = check_quick() ? 14 : VEIL_FFT_MAX_LOG2_N;
    for (uint32_t logN = 8; logN <= max_log; logN++) {
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
        uint32_t *idx = veil_malloc(4 * N);
        const uint32_t nc = checked(N, rng, idx);
        veil_fft_forward_u64(p, s, sf);
        veil_poly_mul_binary_exact(p, a, sf, got, tmp);
        int exact_bad = 0;
        for (uint32_t c = 0; c < nc; c++) exact_bad += got[idx[c]] != naive_at(a, s, N, idx[c]);
        CHECK(exact_bad == 0, "N=%u: exact binary product differs on %d coefficients", N, exact_bad);

        uint64_t *du = veil_malloc(8 * N);
        for (uint32_t i = 0; i < N; i++) {
            d[i] = (int64_t)(veil_rng_u64(rng) % 65536) - 32768;
            du[i] = (uint64_t)d[i];
        }
        d[3] = -32768;
        du[3] = (uint64_t)d[3];
        veil_fft_forward_u64(p, a, af);
        veil_fft_forward_i64(p, d, df);
        for (uint32_t i = 0; i < N; i++) tmp[i] = 0;
        veil_fft_mac(tmp, af, df, N / 2);
        for (uint32_t i = 0; i < N; i++) got[i] = 0;
        veil_fft_backward_add_u64(p, tmp, got);
        double maxerr = 0;
        for (uint32_t c = 0; c < nc; c++) {
            double e = fabs((double)(int64_t)(got[idx[c]] - naive_at(a, du, N, idx[c])));
            if (e > maxerr) maxerr = e;
        }
        double bound = 8.0 * 0x1p11 * 0x1p15 * sqrt((double)N * logN);
        CHECK(maxerr <= bound, "N=%u: FFT product error 2^%.1f above bound 2^%.1f", N, log2(maxerr), log2(bound));
        printf("N=%6u: exact binary product ok; float product max error 2^%.1f (bound 2^%.1f) units of 2^-64 over %u coefficients\n", N,
               maxerr > 0 ? log2(maxerr) : -1.0, log2(bound), nc);
        veil_free(idx); veil_free(a); veil_free(s); veil_free(ref); veil_free(got); veil_free(d); veil_free(du);
        veil_free(sf); veil_free(af); veil_free(df); veil_free(tmp);
    }
    veil_rng_free(rng);
    return check_done("test_fft");
}
