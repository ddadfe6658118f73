/* Every kernel variant usable on this CPU against the portable oracle, on random and extreme
 * inputs: bit-exact for the integer kernels and the f64→torus conversion, within 1 ulp-scale
 * tolerance for the complex multiply-accumulate (FMA contraction may differ). */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "tfhe/kernels.h"
#include "veil/core.h"

static const uint64_t extremes[] = {0, 1, ~0ull, 1ull << 63, (1ull << 63) - 1, (1ull << 62), 0x5555555555555555ull,
                                    0xaaaaaaaaaaaaaaaaull, (1ull << 40) - 1, 1ull << 41};

int main(void)
{
    veil_rng *rng;
    uint8_t seed[16] = {9};
    CHECK_OK(veil_rng_new_seeded(&rng, seed));
    const veil_kernels *ref = &veil_kernels_portable;
    const uint32_t N = 2048, h = N / 2;
    uint64_t *in = veil_malloc(8 * N);
    int64_t *d1 = veil_malloc(8 * N * 4), *d2 = veil_malloc(8 * N * 4);
    double *a = veil_malloc(8 * N), *b = veil_malloc(8 * N), *acc1 = veil_malloc(8 * N), *acc2 = veil_malloc(8 * N);
    double *tw = veil_malloc(8 * N);
    uint64_t *o1 = veil_malloc(8 * N), *o2 = veil_malloc(8 * N);
    int variants = 0;
    for (const veil_kernels *const *kp = veil_kernels_all(); *kp; kp++) {
        const veil_kernels *k = *kp;
        variants++;
        for (int round = 0; round < 20; round++) {
            veil_rng_u64s(rng, in, N);
            for (size_t i = 0; i < sizeof extremes / sizeof extremes[0]; i++) in[i] = extremes[i];
            /* decomposition, for the (β, ℓ) of every named set and the extremes of the range */
            uint32_t betas[] = {1, 2, 3, 4, 7, 15, 18, 22, 23, 31};
            uint32_t ells[] = {1, 2, 3, 4, 5, 6, 8};
            for (size_t bi = 0; bi < sizeof betas / sizeof betas[0]; bi++)
                for (size_t li = 0; li < sizeof ells / sizeof ells[0]; li++) {
                    uint32_t be = betas[bi], el = ells[li];
                    if (be * el > 63 || el > 4) continue;
                    ref->decompose(in, N, be, el, d1);
                    k->decompose(in, N, be, el, d2);
                    CHECK(memcmp(d1, d2, 8 * (size_t)N * el) == 0, "%s decompose beta=%u ell=%u", k->name, be, el);
                }
            /* twist of small digits and untwist/round of large values */
            for (uint32_t j = 0; j < N; j++) {
                d1[j] = (int64_t)(veil_rng_u64(rng) % (1ull << 31)) - (1ll << 30);
                double ang = 2 * M_PI * (double)(veil_rng_u64(rng) % 100000) / 100000.0;
                tw[j] = (j % 2) ? sin(ang) : cos(ang);
            }
            ref->twist_i64(d1, tw, a, h);
            k->twist_i64(d1, tw, b, h);
            double maxd = 0;
            /* relative to the input scale 2^31: FMA contraction changes only the last bits */
            for (uint32_t j = 0; j < N; j++) maxd = fmax(maxd, fabs(a[j] - b[j]) / 0x1p31);
            CHECK(maxd < 1e-15, "%s twist relative error %g", k->name, maxd);
            for (uint32_t j = 0; j < N; j++) {
                /* magnitudes from 2^-3 to 2^100, both signs: every path of the conversion */
                double m = ldexp((double)(veil_rng_u64(rng) >> 11), (int)(veil_rng_u64(rng) % 104) - 56);
                a[j] = (veil_rng_u64(rng) & 1) ? -m : m;
            }
            a[0] = 0x1p64; a[1] = -0x1p64; a[2] = 0x1p63; a[3] = -0x1p63; a[4] = 0.5; a[5] = -0.5; a[6] = 0; a[7] = 1.5;
            /* untwist by 1 (identity complex factors scaled) isolates the conversion */
            for (uint32_t j = 0; j < h; j++) {
                tw[2 * j] = 1.0;
                tw[2 * j + 1] = 0.0;
            }
            memcpy(b, a, 8 * N);
            for (uint32_t j = 0; j < N; j++) o1[j] = o2[j] = in[j];
            ref->untwist_add_u64(a, tw, o1, h);
            k->untwist_add_u64(b, tw, o2, h);
            int conv_bad = 0;
            for (uint32_t j = 0; j < N; j++) conv_bad += o1[j] != o2[j];
            CHECK(conv_bad == 0, "%s untwist/round differs on %d words", k->name, conv_bad);
            /* complex multiply-accumulate */
            for (uint32_t j = 0; j < N; j++) {
                a[j] = ldexp((double)(int64_t)veil_rng_u64(rng), -20);
                b[j] = ldexp((double)(int64_t)veil_rng_u64(rng), -40);
                acc1[j] = acc2[j] = ldexp((double)(int64_t)veil_rng_u64(rng), -10);
            }
            ref->fft_mac(acc1, a, b, h);
            k->fft_mac(acc2, a, b, h);
            maxd = 0;
            for (uint32_t j = 0; j < N; j++) maxd = fmax(maxd, fabs(acc1[j] - acc2[j]) / 0x1p66); /* products are ~2^66 */
            CHECK(maxd < 1e-14, "%s fft_mac relative error %g", k->name, maxd);
            /* fused external-product accumulation: 2 rows × 2 outputs of N/4 points each */
            const uint32_t q = N / 4;
            ref->ext_mac(acc1, a, b, 2, 2, q / 2);
            k->ext_mac(acc2, a, b, 2, 2, q / 2);
            maxd = 0;
            for (uint32_t j = 0; j < 2 * q; j++) maxd = fmax(maxd, fabs(acc1[j] - acc2[j]) / 0x1p66); /* products are ~2^66 */
            CHECK(maxd < 1e-14, "%s ext_mac relative error %g", k->name, maxd);
        }
        /* negacyclic rotation-difference, every shift class */
        veil_rng_u64s(rng, in, N);
        uint32_t shifts[] = {0, 1, 3, N / 2, N - 1, N, N + 1, 2 * N - 1};
        for (size_t i = 0; i < sizeof shifts / sizeof shifts[0]; i++) {
            ref->rotate_sub(in, o1, N, shifts[i]);
            k->rotate_sub(in, o2, N, shifts[i]);
            CHECK(memcmp(o1, o2, 8 * N) == 0, "%s rotate_sub t=%u", k->name, shifts[i]);
        }
        ref->rotate_sub(in, o1, N, N); /* X^N = -1: out = -2·in */
        CHECK(o1[5] == (uint64_t)0 - 2 * in[5], "rotate_sub by N negates");
        /* key switching on a small random key */
        const uint32_t big = 256, n = 64, ell = 3, beta = 5;
        uint64_t *ksk = veil_malloc(8 * (size_t)big * ell * (n + 1)), *ct = veil_malloc(8 * (big + 1));
        veil_rng_u64s(rng, ksk, (size_t)big * ell * (n + 1));
        veil_rng_u64s(rng, ct, big + 1);
        ref->keyswitch(ksk, ct, o1, big, n, beta, ell);
        k->keyswitch(ksk, ct, o2, big, n, beta, ell);
        CHECK(memcmp(o1, o2, 8 * (n + 1)) == 0, "%s keyswitch", k->name);
        veil_free(ksk);
        veil_free(ct);
        printf("kernels %s: agree with portable\n", k->name);
    }
    CHECK(variants >= 1, "at least the portable kernels");
    veil_free(in); veil_free(d1); veil_free(d2); veil_free(a); veil_free(b); veil_free(acc1); veil_free(acc2);
    veil_free(tw); veil_free(o1); veil_free(o2);
    veil_rng_free(rng);
    return check_done("test_kernels");
}
