/* The kernel table: every variant of every hot primitive with the CPU features it needs, and the
 * choice, made once per process, of the variant that serves each primitive (libsodium's
 * pick-best-implementation idea, per primitive). */
#include "kernels.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
 * 256-bit halves; its ranking could not be measured here (no such machine), so it follows this
 * one: rerun `veil bench kernels` there before trusting it. */
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
    for (int prim = 0; prim < VEIL_PRIM_COUNT; prim++) {
        int v = forced;
        for (int r = 0; v < 0 && r < V_COUNT; r++)
            if (runs(ranking[prim][r])) v = ranking[prim][r];
        take((veil_prim)prim, variants[v].k);
    }
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
