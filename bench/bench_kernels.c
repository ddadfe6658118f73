/* Kernel benchmark (`veil bench kernels`): every variant of every hot primitive this CPU can run,
 * at the shapes the PBS uses, one line per (primitive, shape) with the median microseconds of each
 * variant and the variant the library chose. This is the measurement behind the per-primitive
 * ranking in src/tfhe/kernels.c:
 *   prim=fft_fwd N=2048 portable_us=… avx2_us=… avx512_us=… chosen=avx512
 * Shapes: N = 2^11 (T4) and 2^13 (the models' M6); decomposition with M6's 2 levels of 2^15;
 * the external-product accumulation for k = 1 and 2 levels (4 rows × 2 outputs); key switching at
 * T4's shape (2048 → 918, 4 levels of 2^4), whose key (60 MB) does not fit in cache. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_kernels.h"
#include "bench_util.h"
#include "tfhe/kernels.h"
#include "veil/core.h"
#include "veil/tfhe.h"

typedef struct {
    const char *prim;
    veil_prim which;
    uint32_t logN;
} shape;

static double time_one(const veil_kernels *k, const shape *sh, int runs, uint64_t *u, int64_t *d, double *f1, double *f2,
                       uint64_t *ksk, veil_rng *rng)
{
    const uint32_t N = 1u << sh->logN, M = N / 2;
    const veil_fft_plan *p = veil_fft_plan_get(sh->logN);
    double *t = malloc(sizeof(double) * (size_t)runs);
    if (!t || !p) {
        free(t);
        return -1;
    }
    veil_rng_u64s(rng, u, 8 * (size_t)N);
    for (uint32_t j = 0; j < 8 * N; j++) d[j] = (int64_t)(u[j] % 65536) - 32768;
    k->fft_fwd(p, d, f1);
    for (uint32_t j = 0; j < 8 * N; j++) f2[j] = (double)(int64_t)u[j] * 0x1p-40;
    for (int r = 0; r < runs; r++) {
        double a = bench_now_s();
        /* ten calls per sample for the short primitives, so that the clock's resolution is far below */
        if (strcmp(sh->prim, "fft_fwd") == 0)
            for (int i = 0; i < 10; i++) k->fft_fwd(p, d, f1);
        else if (strcmp(sh->prim, "fft_bwd_add") == 0)
            for (int i = 0; i < 10; i++) {
                memcpy(f2, f1, 8 * (size_t)N); /* the inverse destroys its input: restore it (timed too, and small) */
                k->fft_bwd_add(p, f2, u);
            }
        else if (strcmp(sh->prim, "decompose") == 0)
            for (int i = 0; i < 10; i++) k->decompose(u, N, 15, 2, d);
        else if (strcmp(sh->prim, "ext_mac") == 0)
            for (int i = 0; i < 10; i++) k->ext_mac(f1 + 4 * (size_t)N, f2, f2 + 4 * (size_t)N, 4, 2, M);
        else if (strcmp(sh->prim, "rotate_sub") == 0)
            for (int i = 0; i < 10; i++) k->rotate_sub(u, u + 2 * N, N, (uint32_t)(i * 37 + 5));
        else /* keyswitch, once per sample */
            k->keyswitch(ksk, u, 0, u + 4 * N, 2048, 918, 4, 4);
        t[r] = bench_now_s() - a;
    }
    double m = bench_median(t, runs) * 1e6 / (strcmp(sh->prim, "keyswitch") == 0 ? 1 : 10);
    free(t);
    return m;
}

int veil_bench_kernels(int argc, char **argv)
{
    int runs = 51;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--runs") == 0 && i + 1 < argc) runs = atoi(argv[++i]);
        else {
            int help = strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0;
            if (!help) fprintf(stderr, "veil bench kernels: unknown argument '%s'\n", argv[i]);
            printf("usage: veil bench kernels [--runs R]   (R >= 5, default 51)\n");
            return help ? 0 : 2;
        }
    }
    if (runs < 5 || runs > 10000) {
        fprintf(stderr, "veil bench kernels: --runs must be in [5, 10000]\n");
        return 2;
    }
    const shape shapes[] = {
        {"fft_fwd", VEIL_PRIM_FFT, 11},     {"fft_fwd", VEIL_PRIM_FFT, 13},      {"fft_bwd_add", VEIL_PRIM_FFT, 11},
        {"fft_bwd_add", VEIL_PRIM_FFT, 13}, {"decompose", VEIL_PRIM_DECOMPOSE, 13}, {"ext_mac", VEIL_PRIM_MAC, 11},
        {"ext_mac", VEIL_PRIM_MAC, 13},     {"rotate_sub", VEIL_PRIM_ROTATE, 11}, {"rotate_sub", VEIL_PRIM_ROTATE, 13},
        {"keyswitch", VEIL_PRIM_KEYSWITCH, 11},
    };
    const uint32_t NMAX = 1u << 13;
    uint64_t *u = veil_malloc(8 * 8 * (size_t)NMAX);
    int64_t *d = veil_malloc(8 * 8 * (size_t)NMAX);
    double *f1 = veil_malloc(8 * 8 * (size_t)NMAX), *f2 = veil_malloc(8 * 8 * (size_t)NMAX);
    const size_t ksk_words = (size_t)2048 * 4 * 919;
    uint64_t *ksk = veil_malloc(8 * ksk_words);
    veil_rng *rng = NULL;
    uint8_t seed[VEIL_SEED_BYTES] = {7};
    if (!u || !d || !f1 || !f2 || !ksk || veil_rng_new_seeded(&rng, seed) != VEIL_OK) {
        fprintf(stderr, "veil bench kernels: out of memory\n");
        return 1;
    }
    veil_rng_u64s(rng, ksk, ksk_words);
    const veil_kernels *chosen = veil_kernels_get();
    fprintf(stderr, "# chosen: %s\n", veil_kernels_describe());
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        printf("prim=%s N=%u", shapes[s].prim, 1u << shapes[s].logN);
        for (const veil_kernels *const *kp = veil_kernels_all(); *kp; kp++)
            printf(" %s_us=%.3f", (*kp)->name, time_one(*kp, &shapes[s], runs, u, d, f1, f2, ksk, rng));
        printf(" chosen=%s\n", chosen->variant[shapes[s].which]);
        fflush(stdout);
    }
    veil_rng_free(rng);
    veil_free(u);
    veil_free(d);
    veil_free(f1);
    veil_free(f2);
    veil_free(ksk);
    return 0;
}
