/* Every kernel variant this CPU can run against the portable oracle, on random and extreme inputs:
 * bit-exact for the integer kernels (decomposition, rotation, key switching) and the double→torus
 * rounding; within a stated relative tolerance for the floating kernels (FFT, multiply-accumulate),
 * whose FMA contraction and operation order differ. The test fails when a variant this CPU has is
 * missing from the list (so a variant never goes untested on a machine that can run it). */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "tfhe/kernels.h"
#include "veil/core.h"
#include "veil/tfhe.h"

static const uint64_t extremes[] = {0, 1, ~0ull, 1ull << 63, (1ull << 63) - 1, (1ull << 62), 0x5555555555555555ull,
                                    0xaaaaaaaaaaaaaaaaull, (1ull << 40) - 1, 1ull << 41};

static double max_rel(const double *a, const double *b, size_t n)
{
    double scale = 0, d = 0;
    for (size_t i = 0; i < n; i++) scale = fmax(scale, fabs(a[i]));
    for (size_t i = 0; i < n; i++) d = fmax(d, fabs(a[i] - b[i]));
    return scale > 0 ? d / scale : d;
}

int main(void)
{
    uint8_t seed[16] = {9};
    printf("seed 09000000000000000000000000000000 (fixed)\n");
    veil_rng *rng;
    CHECK_OK(veil_rng_new_seeded(&rng, seed));
    const veil_kernels *ref = &veil_kernels_portable;
    enum { NMAX = 1 << 17 };
    uint64_t *in = veil_malloc(8 * NMAX), *o1 = veil_malloc(8 * NMAX), *o2 = veil_malloc(8 * NMAX);
    int64_t *d1 = veil_malloc(8 * (size_t)NMAX * 8), *d2 = veil_malloc(8 * (size_t)NMAX * 8);
    double *a = veil_malloc(8 * NMAX), *b = veil_malloc(8 * NMAX), *acc1 = veil_malloc(8 * NMAX),
           *acc2 = veil_malloc(8 * NMAX);

    /* the variants listed are exactly those the CPU runs */
    unsigned f = veil_cpu_features();
    int has2 = (f & VEIL_CPU_AVX2) && (f & VEIL_CPU_FMA);
    int has512 = has2 && (f & VEIL_CPU_AVX512F) && (f & VEIL_CPU_AVX512DQ) && (f & VEIL_CPU_AVX512VL);
    int listed = 0, listed2 = 0, listed512 = 0;
    for (const veil_kernels *const *kp = veil_kernels_all(); *kp; kp++) {
        listed++;
        listed2 += *kp == &veil_kernels_avx2;
        listed512 += *kp == &veil_kernels_avx512;
    }
    CHECK(veil_kernels_all()[0] == ref, "portable is listed first");
    CHECK(listed2 == has2 && listed512 == has512, "listed variants (avx2 %d, avx512 %d) match the CPU (%d, %d)",
          listed2, listed512, has2, has512);
    printf("CPU runs: portable%s%s\n", has2 ? " avx2" : "", has512 ? " avx512" : "");
    if (!has512) printf("NOTE: this CPU cannot run the avx512 kernels: they were not tested here\n");

    /* the chosen table: every primitive filled, each from a variant this CPU runs */
    const veil_kernels *ch = veil_kernels_get();
    CHECK(ch != NULL, "a kernel table is chosen");
    if (ch) {
        for (int pr = 0; pr < VEIL_PRIM_COUNT; pr++) {
            const char *v = ch->variant[pr];
            int ok = v && (strcmp(v, "portable") == 0 || (strcmp(v, "avx2") == 0 && has2) ||
                           (strcmp(v, "avx512") == 0 && has512));
            CHECK(ok, "primitive %s served by a variant the CPU runs (%s)", veil_prim_name((veil_prim)pr), v ? v : "none");
        }
        printf("chosen: %s\n", veil_kernels_describe());
    }

    /* the reference decomposition itself: the digits sum back to x rounded to its top β·ℓ bits,
     * lie in [-B/2, B/2], and over 2^17 uniform words each level has mean 0 (within 6 standard
     * deviations: digits in [-B/2, B/2) would show -1/2, 100 and more deviations for B ≤ 16) and
     * E[d²] = (B²+2)/12 within 3%, the value the noise formulas use */
    {
        const uint32_t cases[][2] = {{1, 3}, {2, 5}, {2, 8}, {3, 4}, {4, 3}, {4, 4}, {5, 6}, {7, 3}, {15, 2}, {23, 1}, {22, 2}};
        veil_rng_u64s(rng, in, NMAX);
        for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
            const uint32_t be = cases[c][0], el = cases[c][1];
            ref->decompose(in, NMAX, be, el, d1);
            const double B = exp2(be), ed2 = (B * B + 2) / 12;
            int bad_sum = 0, bad_range = 0;
            for (uint32_t t = 0; t < NMAX; t++) {
                uint64_t back = 0, want = (((in[t] >> (63 - be * el)) + 1) >> 1) << (64 - be * el);
                for (uint32_t j = 0; j < el; j++) {
                    int64_t dj = d1[(size_t)j * NMAX + t];
                    back += (uint64_t)dj << (64 - be * (j + 1));
                    bad_range += dj < -(int64_t)(B / 2) || dj > (int64_t)(B / 2);
                }
                bad_sum += back != want;
            }
            CHECK(bad_sum == 0 && bad_range == 0, "decomposition beta=%u ell=%u: %d wrong sums, %d digits out of range", be,
                  el, bad_sum, bad_range);
            for (uint32_t j = 0; j < el; j++) {
                double m = 0, m2 = 0;
                for (uint32_t t = 0; t < NMAX; t++) {
                    double dj = (double)d1[(size_t)j * NMAX + t];
                    m += dj, m2 += dj * dj;
                }
                m /= NMAX, m2 /= NMAX;
                const double sd = sqrt(ed2 / NMAX);
                CHECK(fabs(m) <= 6 * sd, "decomposition beta=%u ell=%u level %u: mean %.4g (sd %.3g)", be, el, j, m, sd);
                CHECK(fabs(m2 / ed2 - 1) <= 0.03, "decomposition beta=%u ell=%u level %u: E[d^2] %.4g, formula %.4g", be, el,
                      j, m2, ed2);
            }
        }
        printf("reference decomposition: exact, digits in [-B/2, B/2], mean 0 and E[d^2] = (B^2+2)/12 per level\n");
    }

    int tested = 0;
    for (const veil_kernels *const *kp = veil_kernels_all(); *kp; kp++) {
        const veil_kernels *k = *kp;
        tested++;
        /* decomposition, for every (β, ℓ) with β·ℓ ≤ 63 that parameters use, ℓ up to 8 */
        const uint32_t N = 2048;
        const uint32_t betas[] = {1, 2, 3, 4, 5, 7, 10, 15, 18, 22, 23, 31};
        const uint32_t ells[] = {1, 2, 3, 4, 5, 6, 8};
        int per_ell[9] = {0};
        for (int round = 0; round < 10; round++) {
            veil_rng_u64s(rng, in, N);
            for (size_t i = 0; i < sizeof extremes / sizeof extremes[0]; i++) in[i] = extremes[i];
            for (size_t bi = 0; bi < sizeof betas / sizeof betas[0]; bi++)
                for (size_t li = 0; li < sizeof ells / sizeof ells[0]; li++) {
                    uint32_t be = betas[bi], el = ells[li];
                    if (be * el > 63) continue;
                    per_ell[el]++;
                    ref->decompose(in, N, be, el, d1);
                    k->decompose(in, N, be, el, d2);
                    CHECK(memcmp(d1, d2, 8 * (size_t)N * el) == 0, "%s decompose beta=%u ell=%u", k->name, be, el);
                }
        }
        /* every ℓ of the list ran, with several β (ℓ = 8 with β ≤ 7) */
        for (size_t li = 0; li < sizeof ells / sizeof ells[0]; li++)
            CHECK(per_ell[ells[li]] >= 10 * 6, "%s: decomposition ell=%u ran %d times", k->name, ells[li], per_ell[ells[li]]);

        /* double → torus rounding: magnitudes 2^-3 … 2^100, both signs, halfway points, ±2^63, ±2^64 */
        for (int round = 0; round < 10; round++) {
            for (uint32_t j = 0; j < N; j++) {
                double m = ldexp((double)(veil_rng_u64(rng) >> 11), (int)(veil_rng_u64(rng) % 104) - 56);
                a[j] = (veil_rng_u64(rng) & 1) ? -m : m;
            }
            const double special[] = {0x1p64, -0x1p64, 0x1p63, -0x1p63, 0.5, -0.5, 0, 1.5, 2.5, -2.5,
                                      0x1p63 + 0x1p11, -0x1p63 - 0x1p11, 0x1.8p64, 0x1p100, -0x1p100, 0x1.fffffffffffffp62};
            memcpy(a, special, sizeof special);
            veil_rng_u64s(rng, o1, N);
            memcpy(o2, o1, 8 * N);
            ref->round_add(a, o1, N);
            k->round_add(a, o2, N);
            int bad = 0;
            for (uint32_t j = 0; j < N; j++) bad += o1[j] != o2[j];
            CHECK(bad == 0, "%s round_add differs on %d words", k->name, bad);
        }
        /* known answers of the oracle: ties to even, reduction mod 2^64 */
        {
            const double x[8] = {2.5, 1.5, -2.5, 0x1p64, 0x1p63, 0x1.8p64, -0.5, 0x1p52 + 1};
            const uint64_t want[8] = {2, 2, (uint64_t)-2, 0, 1ull << 63, 1ull << 63, 0, (1ull << 52) + 1};
            uint64_t got[8] = {0};
            k->round_add(x, got, 8);
            CHECK(memcmp(got, want, sizeof want) == 0, "%s round_add known answers", k->name);
        }

        /* FFT: forward of digits and of full-range torus values, inverse, and the fused backward,
         * for N = 2^8 … 2^17; relative to the largest output, the variants agree to 2^-45 */
        for (uint32_t logN = 8; logN <= 17; logN++) {
            const uint32_t n = 1u << logN, M = n / 2;
            const veil_fft_plan *p = veil_fft_plan_get(logN);
            CHECK(p != NULL, "plan N=%u", n);
            if (!p) continue;
            for (int kind = 0; kind < 2; kind++) {
                for (uint32_t j = 0; j < n; j++)
                    d1[j] = kind ? (int64_t)veil_rng_u64(rng) : (int64_t)(veil_rng_u64(rng) % (1ull << 23)) - (1ll << 22);
                if (kind) memcpy(d1, extremes, sizeof extremes);
                ref->fft_fwd(p, d1, a);
                k->fft_fwd(p, d1, b);
                double e = max_rel(a, b, n);
                CHECK(e < 0x1p-45, "%s forward FFT N=%u kind %d: relative difference 2^%.1f", k->name, n, kind, log2(e));
                memcpy(acc1, a, 8 * n);
                memcpy(acc2, a, 8 * n);
                ref->fft_inv(p, acc1);
                k->fft_inv(p, acc2);
                e = max_rel(acc1, acc2, n);
                CHECK(e < 0x1p-45, "%s inverse FFT N=%u: relative difference 2^%.1f", k->name, n, log2(e));
                /* the inverse undoes the forward: M·(fold·twist) back, untwisted by the caller */
                if (k == ref && kind == 0) {
                    double worst = 0;
                    for (uint32_t j = 0; j < M; j++) {
                        double re = acc1[j], im = acc1[M + j];
                        double x = re * p->untwist_re[j] - im * p->untwist_im[j], y = re * p->untwist_im[j] + im * p->untwist_re[j];
                        worst = fmax(worst, fmax(fabs(x - (double)d1[j]), fabs(y - (double)d1[j + M])));
                    }
                    CHECK(worst < 1e-3, "portable inverse(forward(x)) = x within 1e-3 at N=%u (%g)", n, worst);
                }
                /* fused backward: bit-exact is not expected (inputs to the rounding differ in the
                 * last bits), so compare against the portable result within one unit */
                memcpy(acc1, a, 8 * n);
                memcpy(acc2, a, 8 * n);
                veil_rng_u64s(rng, o1, n);
                memcpy(o2, o1, 8 * n);
                ref->fft_bwd_add(p, acc1, o1);
                k->fft_bwd_add(p, acc2, o2);
                uint64_t worst = 0;
                for (uint32_t j = 0; j < n; j++) {
                    uint64_t dd = o1[j] - o2[j];
                    if ((int64_t)dd < 0) dd = 0 - dd;
                    if (dd > worst) worst = dd;
                }
                /* digits: outputs are exact integers below 2^53, so at most one unit apart;
                 * full-range: the inputs were rounded to 53 bits, so 2^(64-45) units */
                uint64_t tol = kind ? (1ull << 19) : 1;
                CHECK(worst <= tol, "%s backward FFT N=%u kind %d: %llu units apart", k->name, n, kind,
                      (unsigned long long)worst);
            }
        }

        /* decomposition fused into the forward transform: the same doubles as decompose then
         * fft_fwd within a variant, and the portable result within 2^-45 */
        for (uint32_t logN = 8; logN <= 14; logN += 3) {
            const uint32_t n = 1u << logN;
            const veil_fft_plan *p = veil_fft_plan_get(logN);
            const uint32_t cases[][2] = {{23, 1}, {15, 2}, {10, 3}, {7, 5}, {4, 8}};
            for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
                const uint32_t be = cases[c][0], el = cases[c][1];
                veil_rng_u64s(rng, in, n);
                for (size_t i = 0; i < sizeof extremes / sizeof extremes[0]; i++) in[i] = extremes[i];
                k->fft_fwd_dec(p, in, be, el, acc1);
                k->decompose(in, n, be, el, d1);
                for (uint32_t lv = 0; lv < el; lv++) k->fft_fwd(p, d1 + (size_t)lv * n, acc2 + (size_t)lv * n);
                CHECK(memcmp(acc1, acc2, 8 * (size_t)n * el) == 0, "%s fft_fwd_dec = decompose + fft_fwd (N=%u, beta=%u, ell=%u)",
                      k->name, n, be, el);
                ref->fft_fwd_dec(p, in, be, el, acc2);
                double e = max_rel(acc2, acc1, (size_t)n * el);
                CHECK(e < 0x1p-45, "%s fft_fwd_dec vs portable N=%u ell=%u: 2^%.1f", k->name, n, el, log2(e));
            }
        }

        /* complex multiply-accumulate, split layout */
        const uint32_t h = N / 2;
        for (int round = 0; round < 10; round++) {
            for (uint32_t j = 0; j < 4 * N; j++) {
                a[j] = ldexp((double)(int64_t)veil_rng_u64(rng), -20);
                b[j] = ldexp((double)(int64_t)veil_rng_u64(rng), -40);
            }
            for (uint32_t j = 0; j < N; j++) acc1[j] = acc2[j] = ldexp((double)(int64_t)veil_rng_u64(rng), -10);
            ref->fft_mac(acc1, a, b, h);
            k->fft_mac(acc2, a, b, h);
            double e = max_rel(acc1, acc2, N);
            CHECK(e < 1e-14, "%s fft_mac relative error %g", k->name, e);
            /* fused external-product accumulation: 2 rows × 2 outputs, and 3 rows × 3 outputs */
            for (uint32_t rows = 2; rows <= 3; rows++) {
                const uint32_t q = N / 4, k1 = rows;
                ref->ext_mac(acc1, a, b, rows, k1, q / 2);
                k->ext_mac(acc2, a, b, rows, k1, q / 2);
                e = max_rel(acc1, acc2, (size_t)k1 * q);
                CHECK(e < 1e-14, "%s ext_mac rows=%u relative error %g", k->name, rows, e);
            }
        }
        /* negacyclic rotation-difference, every shift class */
        veil_rng_u64s(rng, in, N);
        uint32_t shifts[] = {0, 1, 3, 7, 8, 9, N / 2, N - 1, N, N + 1, N + 8, 2 * N - 1};
        for (size_t i = 0; i < sizeof shifts / sizeof shifts[0]; i++) {
            ref->rotate_sub(in, o1, N, shifts[i]);
            k->rotate_sub(in, o2, N, shifts[i]);
            CHECK(memcmp(o1, o2, 8 * N) == 0, "%s rotate_sub t=%u", k->name, shifts[i]);
        }
        ref->rotate_sub(in, o1, N, N); /* X^N = -1: out = -2·in */
        CHECK(o1[5] == (uint64_t)0 - 2 * in[5], "rotate_sub by N negates");
        /* key switching on a small random key, several (β, ℓ) */
        const uint32_t kb[][2] = {{5, 3}, {4, 4}, {3, 6}, {2, 8}, {1, 15}};
        for (size_t c = 0; c < sizeof kb / sizeof kb[0]; c++) {
            const uint32_t big = 256, n = 64, beta = kb[c][0], ell = kb[c][1];
            uint64_t *ksk = veil_malloc(8 * (size_t)big * ell * (n + 1)), *ct = veil_malloc(8 * (big + 1));
            veil_rng_u64s(rng, ksk, (size_t)big * ell * (n + 1));
            veil_rng_u64s(rng, ct, big + 1);
            ref->keyswitch(ksk, ct, 0, o1, big, n, beta, ell);
            k->keyswitch(ksk, ct, 0, o2, big, n, beta, ell);
            CHECK(memcmp(o1, o2, 8 * (n + 1)) == 0, "%s keyswitch beta=%u ell=%u", k->name, beta, ell);
            /* the shifted read equals switching the shifted copy */
            uint64_t *sh = veil_malloc(8 * (big + 1));
            for (uint32_t i = 0; i <= big; i++) sh[i] = ct[i] << 3;
            ref->keyswitch(ksk, sh, 0, o1, big, n, beta, ell);
            k->keyswitch(ksk, ct, 3, o2, big, n, beta, ell);
            CHECK(memcmp(o1, o2, 8 * (n + 1)) == 0, "%s keyswitch of a shifted input beta=%u ell=%u", k->name, beta, ell);
            veil_free(sh);
            /* a batch of 5 equals 5 single switches (the shifted input among them) */
            uint64_t *bo = veil_malloc(8 * 5 * (n + 1)), *so = veil_malloc(8 * (n + 1));
            uint64_t *bi = veil_malloc(8 * 5 * (big + 1));
            veil_rng_u64s(rng, bi, 5 * (size_t)(big + 1));
            const uint64_t *ins[5];
            uint64_t *outs[5];
            for (int g = 0; g < 5; g++) {
                ins[g] = bi + (size_t)g * (big + 1);
                outs[g] = bo + (size_t)g * (n + 1);
            }
            k->keyswitch_batch(ksk, ins, 2, outs, 5, big, n, beta, ell);
            int bad = 0;
            for (int g = 0; g < 5; g++) {
                ref->keyswitch(ksk, ins[g], 2, so, big, n, beta, ell);
                bad += memcmp(so, outs[g], 8 * (n + 1)) != 0;
            }
            CHECK(bad == 0, "%s keyswitch_batch differs on %d of 5 (beta=%u ell=%u)", k->name, bad, beta, ell);
            veil_free(bo);
            veil_free(so);
            veil_free(bi);
            veil_free(ksk);
            veil_free(ct);
        }
        printf("kernels %s: agree with portable\n", k->name);
    }
    CHECK(tested == listed && tested == 1 + has2 + has512, "every variant the CPU runs was tested (%d)", tested);
    veil_free(in); veil_free(o1); veil_free(o2); veil_free(d1); veil_free(d2);
    veil_free(a); veil_free(b); veil_free(acc1); veil_free(acc2);
    veil_rng_free(rng);
    return check_done("test_kernels");
}
