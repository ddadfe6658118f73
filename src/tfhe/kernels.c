/* The kernel table: every variant of every hot primitive with the CPU features it needs, and the
 * choice, made once per process, of the variant that serves each primitive (libsodium's
 * pick-best-implementation idea, per primitive): a measured ranking, checked by a short
 * calibration. */
#include "kernels.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "veil/core.h"
#include "veil/tfhe.h"

_Static_assert(VEIL_PRIM_COUNT == 5, "a name and a ranking per primitive");
static const char *const prim_names[VEIL_PRIM_COUNT] = {"fft", "decompose", "mac", "rotate", "keyswitch"};

const char *veil_prim_name(veil_prim p) { return (unsigned)p < VEIL_PRIM_COUNT ? prim_names[p] : "?"; }

enum { V_PORTABLE, V_AVX2, V_AVX512, V_COUNT };

static const struct {
    const veil_kernels *k;
    unsigned needs; /* VEIL_CPU_* bits */
} variants[V_COUNT] = {
    [V_PORTABLE] = {&veil_kernels_portable, 0},
    [V_AVX2] = {&veil_kernels_avx2, VEIL_CPU_AVX2 | VEIL_CPU_FMA},
    [V_AVX512] = {&veil_kernels_avx512,
                  VEIL_CPU_AVX512F | VEIL_CPU_AVX512DQ | VEIL_CPU_AVX512VL | VEIL_CPU_AVX2 | VEIL_CPU_FMA},
};

/* Per primitive, the variants fastest first: the first one the CPU runs is taken. A variant never
 * ranks above one it was measured slower than. Measured with `veil bench kernels` (median µs,
 * portable / avx2 / avx512) on the 2-vCPU Intel Xeon with AVX-512 F/DQ/BW/VL/IFMA that builds veil
 * today:
 *   fft_fwd     N=2^11  8.02 / 1.84 / 1.17     N=2^13  39.0 / 9.20 / 6.77
 *   fft_bwd_add N=2^11  12.2 / 2.69 / 1.50     N=2^13  60.2 / 13.3 / 8.30
 *   decompose   N=2^13  19.7 / 4.72 / 2.46
 *   ext_mac     N=2^11  6.93 / 2.83 / 2.09     N=2^13  29.2 / 10.8 / 8.20
 *   rotate_sub  N=2^11  0.93 / 0.92 / 0.23     N=2^13  4.00 / 3.99 / 1.72
 *   keyswitch   T4      2936 / 2123 / 2043
 * AMD Zen 4 (the CPU the bootstrapping issue was measured on) runs 512-bit operations as two
 * 256-bit halves; its ranking could not be measured here (no such machine). The calibration below
 * keeps such a CPU off a variant that is slower there. */
static const int ranking[VEIL_PRIM_COUNT][V_COUNT] = {
    [VEIL_PRIM_FFT] = {V_AVX512, V_AVX2, V_PORTABLE},
    [VEIL_PRIM_DECOMPOSE] = {V_AVX512, V_AVX2, V_PORTABLE},
    [VEIL_PRIM_MAC] = {V_AVX512, V_AVX2, V_PORTABLE},
    [VEIL_PRIM_ROTATE] = {V_AVX512, V_AVX2, V_PORTABLE},
    [VEIL_PRIM_KEYSWITCH] = {V_AVX512, V_AVX2, V_PORTABLE},
};

static pthread_once_t once = PTHREAD_ONCE_INIT;
static veil_kernels chosen;
static int chosen_ok;
static char error_msg[160];
static char described[160];

static int runs(int v) { return (veil_cpu_features() & variants[v].needs) == variants[v].needs; }

static void take(veil_prim prim, const veil_kernels *k)
{
    chosen.variant[prim] = k->name;
    switch (prim) {
    case VEIL_PRIM_FFT:
        chosen.fft_fwd = k->fft_fwd;
        chosen.fft_bwd_add = k->fft_bwd_add;
        chosen.fft_inv = k->fft_inv;
        chosen.fft_fwd_dec = k->fft_fwd_dec;
        chosen.round_add = k->round_add;
        break;
    case VEIL_PRIM_DECOMPOSE: chosen.decompose = k->decompose; break;
    case VEIL_PRIM_MAC:
        chosen.fft_mac = k->fft_mac;
        chosen.ext_mac = k->ext_mac;
        break;
    case VEIL_PRIM_ROTATE: chosen.rotate_sub = k->rotate_sub; break;
    case VEIL_PRIM_KEYSWITCH:
        chosen.keyswitch = k->keyswitch;
        chosen.keyswitch_batch = k->keyswitch_batch;
        break;
    case VEIL_PRIM_COUNT: break;
    }
}

/* ---- calibration ------------------------------------------------------------------------------- */
/* A short calibration, once per process (about a millisecond), guards the ranking on CPUs it was
 * not measured on (a CPU whose 512-bit units are slower, say): among the SIMD variants the CPU
 * runs, a primitive leaves the ranking's first choice only for a variant that is at least 10%
 * faster on an L1-resident workload of the PBS's shape (N = 2^11), best of 7 interleaved timings.
 * Key switching, bound by memory rather than by the instruction set, keeps the ranking. */
typedef struct {
    const veil_fft_plan *p;
    uint64_t *u, *o;
    int64_t *d;
    double *f, *g, *key;
} calib_buf;

static double seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double time_prim(veil_prim prim, const veil_kernels *k, const calib_buf *b)
{
    const uint32_t N = b->p->N, M = b->p->half;
    double t0 = seconds();
    for (int i = 0; i < 4; i++) switch (prim) {
        case VEIL_PRIM_FFT:
            k->fft_fwd_dec(b->p, b->u, 15, 2, b->f);
            k->fft_bwd_add(b->p, b->f, b->o);
            k->fft_bwd_add(b->p, b->f + N, b->o);
            break;
        case VEIL_PRIM_DECOMPOSE: k->decompose(b->u, N, 15, 2, b->d); break;
        case VEIL_PRIM_MAC: k->ext_mac(b->g, b->f, b->key, 4, 2, M); break;
        case VEIL_PRIM_ROTATE: k->rotate_sub(b->u, b->o, N, 37u + (uint32_t)i); break;
        default: break;
        }
    return seconds() - t0;
}

static void calibrate(int chosen_v[VEIL_PRIM_COUNT])
{
    int cand[V_COUNT], nc = 0;
    for (int v = V_AVX2; v < V_COUNT; v++)
        if (runs(v)) cand[nc++] = v;
    if (nc < 2) return;
    const uint32_t logN = 11, N = 1u << logN;
    /* f: 4 Fourier polynomials (the digits of 2 levels, or the 4 rows of the accumulation), g: 2
     * outputs, key: 4 rows × 2 outputs; d: 2 digit polynomials */
    calib_buf b = {veil_fft_plan_new_uncached(logN), veil_malloc(8 * N), veil_malloc(8 * N), veil_malloc(16 * N),
                   veil_malloc(32 * N), veil_malloc(16 * N), veil_malloc(64 * N)};
    if (b.p && b.u && b.o && b.d && b.f && b.g && b.key) {
        uint64_t x = 0x9e3779b97f4a7c15ull;
        for (uint32_t j = 0; j < N; j++) b.u[j] = b.o[j] = (x = x * 6364136223846793005ull + 1442695040888963407ull);
        for (uint32_t j = 0; j < 8 * N; j++) b.key[j] = (double)(int64_t)(x = x * 6364136223846793005ull + 1) * 0x1p-40;
        for (uint32_t j = 0; j < 4 * N; j++) b.f[j] = 0;
        for (uint32_t j = 0; j < 2 * N; j++) b.g[j] = 0;
        for (int prim = 0; prim < VEIL_PRIM_COUNT; prim++) {
            if (prim == VEIL_PRIM_KEYSWITCH) continue;
            double best[V_COUNT];
            for (int c = 0; c < nc; c++) best[c] = 1e9;
            for (int rep = 0; rep < 7; rep++)
                for (int c = 0; c < nc; c++) {
                    double t = time_prim((veil_prim)prim, variants[cand[c]].k, &b);
                    if (t < best[c]) best[c] = t;
                }
            int first = -1;
            for (int c = 0; c < nc; c++)
                if (cand[c] == chosen_v[prim]) first = c;
            if (first < 0) continue;
            int pick = first;
            for (int c = 0; c < nc; c++)
                if (best[c] < 0.9 * best[first] && best[c] < best[pick]) pick = c;
            chosen_v[prim] = cand[pick];
        }
    }
    veil_free((void *)b.p);
    veil_free(b.u);
    veil_free(b.o);
    veil_free(b.d);
    veil_free(b.f);
    veil_free(b.g);
    veil_free(b.key);
}

static void choose(void)
{
    const char *force = getenv("VEIL_KERNELS");
    int forced = -1;
    if (force && *force) {
        for (int v = 0; v < V_COUNT; v++)
            if (strcmp(force, variants[v].k->name) == 0) forced = v;
        if (forced < 0) {
            snprintf(error_msg, sizeof error_msg, "VEIL_KERNELS='%.40s' names no kernel variant (portable, avx2, avx512)",
                     force);
            return;
        }
        if (!runs(forced)) {
            snprintf(error_msg, sizeof error_msg, "VEIL_KERNELS=%s: this CPU cannot run the %s kernels", force, force);
            return;
        }
    }
    chosen.name = forced >= 0 ? variants[forced].k->name : "auto";
    int pick[VEIL_PRIM_COUNT];
    for (int prim = 0; prim < VEIL_PRIM_COUNT; prim++) {
        pick[prim] = forced;
        for (int r = 0; pick[prim] < 0 && r < V_COUNT; r++)
            if (runs(ranking[prim][r])) pick[prim] = ranking[prim][r];
    }
    if (forced < 0) calibrate(pick);
    for (int prim = 0; prim < VEIL_PRIM_COUNT; prim++) take((veil_prim)prim, variants[pick[prim]].k);
    size_t len = 0;
    for (int prim = 0; prim < VEIL_PRIM_COUNT; prim++)
        len += (size_t)snprintf(described + len, sizeof described - len, "%s%s=%s", prim ? " " : "", prim_names[prim],
                                chosen.variant[prim]);
    chosen_ok = 1;
}

const veil_kernels *veil_kernels_get(void)
{
    pthread_once(&once, choose);
    return chosen_ok ? &chosen : NULL;
}

static const veil_kernels *usable[V_COUNT + 1];

static void fill_usable(void)
{
    int u = 0;
    for (int v = 0; v < V_COUNT; v++)
        if (runs(v)) usable[u++] = variants[v].k;
}

const veil_kernels *const *veil_kernels_all(void)
{
    static pthread_once_t all_once = PTHREAD_ONCE_INIT;
    pthread_once(&all_once, fill_usable);
    return usable;
}

veil_status veil_kernels_check(const char **msg)
{
    if (veil_kernels_get()) {
        if (msg) *msg = NULL;
        return VEIL_OK;
    }
    if (msg) *msg = error_msg;
    return VEIL_ERR_UNSUPPORTED;
}

const char *veil_kernels_describe(void) { return veil_kernels_get() ? described : error_msg; }
