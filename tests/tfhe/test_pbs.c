/* PBS with the identity and random tables on every input value, for every named set up to C8
 * (C7, C8 on a sample), plus key switching alone. */
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "tfhe/fixture.h"
#include "veil/tfhe.h"

static void run_set(const char *name, unsigned bits, unsigned max_inputs, veil_rng *rng)
{
    tfhe_fixture fx;
    fixture_new(&fx, name, rng);
    const veil_params p = fx.p;
    veil_secret_key *sk = fx.sk;
    veil_eval_keys *ek = fx.ek;
    veil_pbs_scratch *scr = fx.scr;
    uint64_t *ct = fx.ct, *res = fx.res, *small = fx.small;
    const unsigned M = 1u << bits;
    uint64_t *ident = malloc(8 * M), *rnd = malloc(8 * M);
    for (unsigned m = 0; m < M; m++) {
        ident[m] = m;
        rnd[m] = veil_rng_u64(rng) % M;
    }
    veil_lut *lid, *lrnd;
    CHECK_OK(veil_lut_new(&p, bits, ident, bits, &lid));
    CHECK_OK(veil_lut_new(&p, bits, rnd, bits, &lrnd));
    unsigned count = M < max_inputs ? M : max_inputs;
    /* C_p are tuned for p_error = 6.3e-5 per lookup, so a run over every input of every set meets a
     * genuine noise failure now and then. A wrong table, encoding or rotation fails every time;
     * noise does not repeat. So: every input must decode right on a fresh encryption if the first
     * one failed, and first-try failures must stay within what p_error allows (≤ 2 of ≤ 256 tries:
     * probability < 1e-5 at p = 6.3e-5). */
    int ks_bad = 0, id_bad = 0, rnd_bad = 0, first_fail = 0;
    for (unsigned t = 0; t < count; t++) {
        unsigned m = (M <= max_inputs) ? t : (unsigned)(veil_rng_u64(rng) % M);
        int ok = 0;
        for (int attempt = 0; attempt < 2 && !ok; attempt++) {
            CHECK_OK(veil_lwe_encrypt(sk, VEIL_KEY_BIG, veil_encode(m, bits), rng, ct));
            veil_keyswitch(ek, ct, small);
            int ks_ok = veil_decode(veil_lwe_phase(sk, VEIL_KEY_SMALL, small), bits) == m;
            veil_pbs(ek, lid, small, res, scr);
            int id_ok = veil_decode(veil_lwe_phase(sk, VEIL_KEY_BIG, res), bits) == m;
            veil_ks_pbs(ek, lrnd, ct, res, scr);
            int rnd_ok = veil_decode(veil_lwe_phase(sk, VEIL_KEY_BIG, res), bits) == rnd[m];
            ok = ks_ok && id_ok && rnd_ok;
            if (!ok && attempt == 0) {
                first_fail++;
                fprintf(stderr, "%s: input %u failed once (ks %d, identity %d, table %d); retrying\n", name, m, ks_ok,
                        id_ok, rnd_ok);
            }
            if (!ok && attempt == 1) {
                ks_bad += !ks_ok;
                id_bad += !id_ok;
                rnd_bad += !rnd_ok;
            }
        }
    }
    CHECK(ks_bad == 0, "%s: %d/%u key switches decoded wrongly twice", name, ks_bad, count);
    CHECK(id_bad == 0, "%s: %d/%u identity PBS decoded wrongly twice", name, id_bad, count);
    CHECK(rnd_bad == 0, "%s: %d/%u random-table KS-PBS decoded wrongly twice", name, rnd_bad, count);
    CHECK(first_fail <= 2, "%s: %d first-try failures in %u inputs: far above p_error %.2g", name, first_fail, count,
          veil_tlu_p_error(&p, bits, 1.0));
    printf("%s (%u-bit): %u inputs, KS/PBS/KS-PBS all decoded\n", name, bits, count);

    /* batches: grouped passes over the key on 2 threads, inputs by pointer (scaled by 2^2 as the
     * key switch reads them) and contiguous; every output must decode, a second try allowed */
    {
        const size_t big1 = veil_params_big_lwe_dim(&p) + 1, B = 37;
        uint64_t *cin = malloc(8 * big1 * B), *cout = malloc(8 * big1 * B);
        const uint64_t *ptr[37];
        unsigned ms[37];
        int batch_bad = 0;
        for (int mode = 0; mode < 2; mode++) {
            for (int attempt = 0; attempt < 2; attempt++) {
                for (size_t i = 0; i < B; i++) {
                    ms[i] = (unsigned)(veil_rng_u64(rng) % M);
                    uint64_t pt = mode ? veil_encode(ms[i], bits + 2) : veil_encode(ms[i], bits);
                    CHECK_OK(veil_lwe_encrypt(sk, VEIL_KEY_BIG, pt, rng, cin + (B - 1 - i) * big1));
                    ptr[i] = cin + (B - 1 - i) * big1; /* reversed: the pointers, not the layout, give the order */
                }
                CHECK_OK(veil_ks_pbs_batch_ex(ek, lrnd, ptr, NULL, mode ? 2 : 0, cout, B, 2));
                int bad = 0;
                for (size_t i = 0; i < B; i++)
                    bad += veil_decode(veil_lwe_phase(sk, VEIL_KEY_BIG, cout + i * big1), bits) != rnd[ms[i]];
                if (bad <= 2) break; /* noise alone: at most a rare one */
                if (attempt == 1) batch_bad += bad;
            }
        }
        CHECK(batch_bad == 0, "%s: batched KS-PBS decoded wrongly (%d)", name, batch_bad);
        /* contiguous batch in place (inputs and outputs alias element by element) */
        for (size_t i = 0; i < B; i++) {
            ms[i] = (unsigned)(veil_rng_u64(rng) % M);
            CHECK_OK(veil_lwe_encrypt(sk, VEIL_KEY_BIG, veil_encode(ms[i], bits), rng, cin + i * big1));
        }
        CHECK_OK(veil_ks_pbs_batch(ek, lrnd, cin, cin, B, 0));
        int bad = 0;
        for (size_t i = 0; i < B; i++) bad += veil_decode(veil_lwe_phase(sk, VEIL_KEY_BIG, cin + i * big1), bits) != rnd[ms[i]];
        CHECK(bad <= 2, "%s: in-place batch decoded wrongly on %d of 37", name, bad);
        printf("%s: batches of 37 (group %u) decoded\n", name, veil_pbs_group_size(&p, B, 2));
        free(cin);
        free(cout);
    }
    /* mixed jobs: multi-value bootstrappings (one blind rotation, four tables: x <= t, x > t, a
     * random table of small values, a constant) beside plain lookups of the random table; every
     * output must decode to its table's value, a second try allowed for noise */
    {
        enum { NJ = 9, NT = 4 };
        const size_t big1 = veil_params_big_lwe_dim(&p) + 1;
        uint64_t *cin = malloc(8 * big1 * NJ), *cout = malloc(8 * big1 * NJ * NT);
        int64_t tabs[NT][256];
        const unsigned th = (unsigned)(veil_rng_u64(rng) % (M - 1)); /* a step inside the range */
        for (unsigned m = 0; m < M; m++) {
            tabs[0][m] = m <= th;
            tabs[1][m] = m > th;
            tabs[2][m] = (int64_t)(veil_rng_u64(rng) % (M < 3 ? M : 3)); /* within the message space */
            tabs[3][m] = 1;
        }
        veil_lut *base;
        veil_mv_factor *fac[NT];
        CHECK_OK(veil_lut_new_mv_base(&p, 63 - bits, &base));
        for (int t = 0; t < NT; t++) CHECK_OK(veil_mv_factor_new(&p, bits, tabs[t], 63 - bits, &fac[t]));
        CHECK(veil_mv_norm2(bits, tabs[0]) == 1 && veil_mv_norm2(bits, tabs[1]) == 1 && veil_mv_norm2(bits, tabs[3]) == 0,
              "%s: a one-step 0/1 table has norm2 1, a constant 0 (%g, %g, %g)", name, veil_mv_norm2(bits, tabs[0]),
              veil_mv_norm2(bits, tabs[1]), veil_mv_norm2(bits, tabs[3]));
        int mv_bad = 0;
        for (int attempt = 0; attempt < 2; attempt++) {
            veil_pbs_job jobs[NJ];
            uint64_t *outs[NJ][NT];
            unsigned ms[NJ];
            for (unsigned j = 0; j < NJ; j++) {
                ms[j] = (unsigned)(veil_rng_u64(rng) % M);
                CHECK_OK(veil_lwe_encrypt(sk, VEIL_KEY_BIG, veil_encode(ms[j], bits), rng, cin + j * big1));
                for (int t = 0; t < NT; t++) outs[j][t] = cout + ((size_t)j * NT + (size_t)t) * big1;
                const int mv = j % 3 != 1;
                jobs[j] = (veil_pbs_job){.in = cin + j * big1, .in_dim = (uint32_t)(big1 - 1), .lut = mv ? base : lrnd,
                                         .nout = mv ? NT : 1, .out = outs[j],
                                         .factor = mv ? (const veil_mv_factor *const *)fac : NULL};
            }
            CHECK_OK(veil_ks_pbs_jobs(ek, jobs, NJ, 2));
            int bad = 0;
            for (unsigned j = 0; j < NJ; j++) {
                if (j % 3 == 1) {
                    bad += veil_decode(veil_lwe_phase(sk, VEIL_KEY_BIG, outs[j][0]), bits) != rnd[ms[j]];
                    continue;
                }
                for (int t = 0; t < NT; t++)
                    bad += veil_decode(veil_lwe_phase(sk, VEIL_KEY_BIG, outs[j][t]), bits) != (uint64_t)tabs[t][ms[j]];
            }
            if (bad == 0) break;
            fprintf(stderr, "%s: %d multi-value outputs decoded wrongly on try %d\n", name, bad, attempt + 1);
            if (attempt == 1) mv_bad = bad;
        }
        CHECK(mv_bad == 0, "%s: multi-value jobs decoded wrongly twice (%d)", name, mv_bad);
        /* a malformed job is refused, not run */
        veil_pbs_job badjob = {.in = cin, .in_dim = (uint32_t)(big1 - 1), .lut = base, .nout = 2, .out = NULL};
        CHECK(veil_ks_pbs_jobs(ek, &badjob, 1, 1) == VEIL_ERR_INVALID_ARG, "%s: a job without outputs is refused", name);
        printf("%s: multi-value jobs (%d tables per blind rotation) decoded\n", name, NT);
        for (int t = 0; t < NT; t++) veil_mv_factor_free(fac[t]);
        veil_lut_free(base);
        free(cin);
        free(cout);
    }
    veil_lut_free(lid);
    veil_lut_free(lrnd);
    free(ident);
    free(rnd);
    fixture_free(&fx);
}

/* Arguments: the sets to run (default: all). ctest runs C7 and C8 as tests of their own so that
 * they overlap with the rest on two cores. */
int main(int argc, char **argv)
{
    fixture_kernels_or_skip();
    veil_rng *rng;
    fixture_seeded_rng(&rng);
    struct { const char *name; unsigned bits, max; } sets[] = {
        {"C1", 1, 256}, {"C2", 2, 256}, {"C3", 3, 256}, {"C4", 4, 256}, {"C5", 5, 256},
        {"C6", 6, 256}, {"C7", 7, 256}, {"C8", 8, 16},  {"T4", 4, 256}, {"M6", 6, 32},  {"GATE", 2, 256},
    };
    for (size_t i = 0; i < sizeof sets / sizeof sets[0]; i++) {
        int wanted = argc <= 1;
        for (int a = 1; a < argc; a++) wanted |= strcmp(argv[a], sets[i].name) == 0;
        if (!wanted) continue;
        unsigned max = sets[i].max;
        if (check_quick() && max > 16) max = 16; /* sanitizer build: every path, fewer inputs */
        run_set(sets[i].name, sets[i].bits, max, rng);
    }
    veil_rng_free(rng);
    return check_done("test_pbs");
}
