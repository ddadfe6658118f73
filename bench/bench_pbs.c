/* PBS benchmark: per named parameter set, one line of exactly these keys
 *   params N fft_us ifft_us pbs_ms ks_ms kspbs_ms keygen_s bsk_bytes bsk_fourier_bytes bsk_seeded_bytes
 *   ksk_bytes ksk_seeded_bytes pbs_per_s group pbs_batch_per_s_1t pbs_batch_per_s threads kernels
 * fft_us / ifft_us: one forward transform of size N (twist fused) / one inverse with its fused
 * rounding and accumulation; pbs_ms, ks_ms, kspbs_ms: one call. All medians of --runs (≥ 20)
 * single-thread runs. pbs_per_s: independent single PBS (veil_pbs, one per task) on --threads
 * threads (all cores by default). pbs_batch_per_s_1t / pbs_batch_per_s: KS-PBS throughput of one
 * veil_ks_pbs_batch of 8·threads ciphertexts (grouped passes over the key, `group` per pass) on 1
 * thread / on --threads threads, the median of 3 batches. kernels: the variant that served each
 * primitive. Key sizes are the payload sizes of the serialized keys (veil_params_key_sizes; the
 * container adds a few hundred bytes). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_pbs.h"
#include "bench_util.h"
#include "tfhe/kernels.h"
#include "veil/tfhe.h"

typedef struct {
    const veil_eval_keys *ek;
    const veil_lut *lut;
    const uint64_t *in; /* small ciphertexts, stride n+1 */
    uint64_t *out;      /* big, stride kN+1 */
    size_t in_stride, out_stride;
    veil_pbs_scratch **scr;
} par_ctx;

static void par_pbs(void *vc, size_t i, unsigned t)
{
    par_ctx *c = vc;
    veil_pbs(c->ek, c->lut, c->in + i * c->in_stride, c->out + i * c->out_stride, c->scr[t]);
}

static int bench_one(const char *name, int runs, unsigned threads)
{
    veil_params p;
    if (veil_params_named(name, &p) != VEIL_OK) {
        fprintf(stderr, "veil bench pbs: unknown parameter set '%s'\n", name);
        return 1;
    }
    if (!veil_params_is_secure(&p))
        fprintf(stderr, "# %s is below veil's 128-bit security curve: listed for comparison only\n", name);
    int rc = 1;
    veil_rng *rng = NULL;
    veil_secret_key *sk = NULL;
    veil_eval_keys *ek = NULL;
    veil_pbs_scratch *scr = NULL;
    veil_lut *lut = NULL;
    veil_pbs_scratch *pscr[256] = {0};
    const uint32_t big = veil_params_big_lwe_dim(&p), n = p.n;
    const unsigned bits = 4 <= p.log2_N - 1 ? 4 : p.log2_N - 1;
    uint64_t *ct = malloc(8 * (big + 1)), *res = malloc(8 * (big + 1)), *small = malloc(8 * (n + 1));
    uint64_t *pin = NULL, *pout = NULL;
    double *t = malloc(sizeof(double) * (size_t)runs);
    if (!ct || !res || !small || !t) goto done;
    if (veil_rng_new_os(&rng) != VEIL_OK || veil_secret_key_new(&p, rng, &sk) != VEIL_OK) goto done;
    double t0 = bench_now_s();
    if (veil_eval_keys_new(sk, rng, &ek) != VEIL_OK) goto done;
    double keygen_s = bench_now_s() - t0;
    veil_key_sizes sz = veil_params_key_sizes(&p);
    if (veil_pbs_scratch_new(&p, &scr) != VEIL_OK) goto done;
    uint64_t table[16];
    for (unsigned m = 0; m < (1u << bits); m++) table[m] = (m * m + 1) % (1u << bits);
    if (veil_lut_new(&p, bits, table, bits, &lut) != VEIL_OK) goto done;
    if (veil_lwe_encrypt(sk, VEIL_KEY_BIG, veil_encode(3, bits), rng, ct) != VEIL_OK) goto done;
    veil_keyswitch(ek, ct, small);
    veil_pbs(ek, lut, small, res, scr); /* warm-up */
    for (int r = 0; r < runs; r++) {
        double a = bench_now_s();
        veil_pbs(ek, lut, small, res, scr);
        t[r] = bench_now_s() - a;
    }
    double pbs_ms = 1e3 * bench_median(t, runs);
    for (int r = 0; r < runs; r++) {
        double a = bench_now_s();
        veil_keyswitch(ek, ct, small);
        t[r] = bench_now_s() - a;
    }
    double ks_ms = 1e3 * bench_median(t, runs);
    for (int r = 0; r < runs; r++) {
        double a = bench_now_s();
        veil_ks_pbs(ek, lut, ct, res, scr);
        t[r] = bench_now_s() - a;
    }
    double kspbs_ms = 1e3 * bench_median(t, runs);
    /* one transform each way, at size N */
    double fft_us = 0, ifft_us = 0;
    {
        const veil_fft_plan *plan = veil_fft_plan_get(p.log2_N);
        const veil_kernels *kern = veil_kernels_get();
        const uint32_t N = 1u << p.log2_N;
        int64_t *dig = malloc(8 * (size_t)N);
        double *f = veil_malloc(8 * (size_t)N), *g = veil_malloc(8 * (size_t)N);
        uint64_t *acc = malloc(8 * (size_t)N);
        if (!dig || !f || !g || !acc || !plan) goto done;
        for (uint32_t j = 0; j < N; j++) {
            dig[j] = (int64_t)(j * 2654435761u % 65536) - 32768;
            acc[j] = 0;
        }
        kern->fft_fwd(plan, dig, f);
        for (int r = 0; r < runs; r++) {
            double a0 = bench_now_s();
            for (int i = 0; i < 20; i++) kern->fft_fwd(plan, dig, g);
            t[r] = (bench_now_s() - a0) / 20;
        }
        fft_us = 1e6 * bench_median(t, runs);
        for (int r = 0; r < runs; r++) {
            double c0 = 0;
            for (int i = 0; i < 20; i++) {
                memcpy(g, f, 8 * (size_t)N); /* the inverse destroys its input: not timed */
                double a0 = bench_now_s();
                kern->fft_bwd_add(plan, g, acc);
                c0 += bench_now_s() - a0;
            }
            t[r] = c0 / 20;
        }
        ifft_us = 1e6 * bench_median(t, runs);
        free(dig);
        free(acc);
        veil_free(f);
        veil_free(g);
    }
    if (veil_decode(veil_lwe_phase(sk, VEIL_KEY_BIG, res), bits) != table[3]) {
        fprintf(stderr, "veil bench pbs: %s: wrong PBS result\n", name);
        goto done;
    }
    /* throughput: independent PBS spread over the threads */
    if (threads == 0) threads = veil_cpu_count();
    if (threads > 256) threads = 256;
    size_t count = 4 * (size_t)threads;
    pin = malloc(8 * count * (n + 1));
    pout = malloc(8 * count * (big + 1));
    if (!pin || !pout) goto done;
    for (size_t i = 0; i < count; i++) memcpy(pin + i * (n + 1), small, 8 * (n + 1));
    for (unsigned th = 0; th < threads; th++)
        if (veil_pbs_scratch_new(&p, &pscr[th]) != VEIL_OK) goto done;
    par_ctx pc = {ek, lut, pin, pout, n + 1, big + 1, pscr};
    double a = bench_now_s();
    veil_parallel_for(count, threads, par_pbs, &pc);
    double pbs_per_s = (double)count / (bench_now_s() - a);
    /* batches of KS-PBS (the grouped path the runtime uses) on 1 thread and on all */
    const size_t bcount = 8 * (size_t)threads;
    uint64_t *bin = malloc(8 * bcount * (big + 1)), *bout = malloc(8 * bcount * (big + 1));
    if (!bin || !bout) goto done;
    for (size_t i = 0; i < bcount; i++) memcpy(bin + i * (big + 1), ct, 8 * (big + 1));
    double rate[2];
    for (int w = 0; w < 2; w++) {
        unsigned th = w ? threads : 1;
        double rt[3];
        for (int r = 0; r < 3; r++) {
            double a0 = bench_now_s();
            if (veil_ks_pbs_batch(ek, lut, bin, bout, bcount, th) != VEIL_OK) {
                free(bin);
                free(bout);
                goto done;
            }
            rt[r] = bench_now_s() - a0;
        }
        rate[w] = (double)bcount / bench_median(rt, 3);
    }
    int batch_ok = veil_decode(veil_lwe_phase(sk, VEIL_KEY_BIG, bout + (bcount - 1) * (big + 1)), bits) == table[3];
    free(bin);
    free(bout);
    if (!batch_ok) {
        fprintf(stderr, "veil bench pbs: %s: wrong batched PBS result\n", name);
        goto done;
    }
    char kern_names[128];
    size_t kl = 0;
    const veil_kernels *kt = veil_kernels_get();
    for (int pr = 0; pr < VEIL_PRIM_COUNT; pr++)
        kl += (size_t)snprintf(kern_names + kl, sizeof kern_names - kl, "%s%s:%s", pr ? "," : "",
                               veil_prim_name((veil_prim)pr), kt->variant[pr]);
    printf("params=%s N=%u fft_us=%.2f ifft_us=%.2f pbs_ms=%.3f ks_ms=%.3f kspbs_ms=%.3f keygen_s=%.3f bsk_bytes=%llu "
           "bsk_fourier_bytes=%llu bsk_seeded_bytes=%llu ksk_bytes=%llu ksk_seeded_bytes=%llu pbs_per_s=%.1f group=%u "
           "pbs_batch_per_s_1t=%.1f pbs_batch_per_s=%.1f threads=%u kernels=%s\n",
           name, 1u << p.log2_N, fft_us, ifft_us, pbs_ms, ks_ms, kspbs_ms, keygen_s, (unsigned long long)sz.bsk_bytes,
           (unsigned long long)sz.bsk_fourier_bytes, (unsigned long long)sz.bsk_seeded_bytes,
           (unsigned long long)sz.ksk_bytes, (unsigned long long)sz.ksk_seeded_bytes, pbs_per_s,
           veil_pbs_group_size(&p, bcount, threads), rate[0], rate[1], threads, kern_names);
    fflush(stdout);
    rc = 0;
done:
    for (unsigned th = 0; th < 256; th++) veil_pbs_scratch_free(pscr[th]);
    free(pin);
    free(pout);
    free(t);
    free(ct);
    free(res);
    free(small);
    veil_lut_free(lut);
    veil_pbs_scratch_free(scr);
    veil_eval_keys_free(ek);
    veil_secret_key_free(sk);
    veil_rng_free(rng);
    if (rc) fprintf(stderr, "veil bench pbs: %s failed\n", name);
    return rc;
}

int veil_bench_pbs(int argc, char **argv)
{
    const char *only = NULL;
    unsigned threads = 0;
    int runs = 21;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--params") == 0 && i + 1 < argc) only = argv[++i];
        else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc) threads = (unsigned)atoi(argv[++i]);
        else if (strcmp(argv[i], "--runs") == 0 && i + 1 < argc) runs = atoi(argv[++i]);
        else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            printf("usage: veil bench pbs [--params NAME] [--threads T] [--runs R]\n"
                   "  NAME: C1..C8, T4, M6, GATE (default: all; GATE is below the 128-bit curve)\n"
                   "  T: threads for pbs_per_s (default: all cores); R: runs per median (>= 20, default 21)\n");
            return 0;
        } else {
            fprintf(stderr, "veil bench pbs: unknown argument '%s' (try --help)\n", argv[i]);
            return 2;
        }
    }
    if (runs < 20) {
        fprintf(stderr, "veil bench pbs: --runs must be at least 20\n");
        return 2;
    }
    fprintf(stderr, "# kernels=%s\n", veil_kernels_describe());
    if (only) return bench_one(only, runs, threads);
    int rc = 0;
    for (const char *const *nm = veil_params_names(); *nm; nm++) rc |= bench_one(*nm, runs, threads);
    return rc;
}
