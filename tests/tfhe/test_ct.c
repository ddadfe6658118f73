/* Constant-time secrets, under valgrind's memcheck (ctest tfhe_test_ct runs it with
 * --error-exitcode): the secret key is marked undefined memory, so memcheck reports every branch,
 * memory index or system call that depends on it. Covered, on a real 128-bit parameter set:
 *   - reading a secret key from its bytes (its bits marked undefined in the file's image): bit
 *     extraction and the key's Fourier transform;
 *   - evaluation keys (bootstrapping key: GGSW encryptions of the small key's bits and their
 *     Fourier transform; key-switching key: LWE encryptions of the big key's bits), both the
 *     compressed (seeded) and the expanded form, and a partition's key prefix;
 *   - LWE (both keys, single and seeded batches), GLWE and GGSW encryption;
 *   - decryption: LWE and GLWE phases (secret: the noise is in them) and a circuit's decryption
 *     and decoding (the decoded output is the client's result and is public from there);
 *   - a circuit's encryption through the client path (seeded list and its serialization).
 * What the library itself declares public once computed from the key (a ciphertext's body, a
 * decoded output) is marked so by src/core/ct.h. Without valgrind the test still runs (the checks
 * then cannot see anything): it says so and fails, unless VEIL_CT_NO_VALGRIND=1 asks otherwise. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <valgrind/memcheck.h>

#include "check.h"
#include "tfhe/tfhe_internal.h"
#include "veil/compiler.h"
#include "veil/runtime.h"
#include "veil/tfhe.h"

static void secret(const void *p, size_t n) { VALGRIND_MAKE_MEM_UNDEFINED(p, n); }
static void public_(const void *p, size_t n) { VALGRIND_MAKE_MEM_DEFINED(p, n); }

static void mark_key(const veil_secret_key *sk)
{
    uint32_t big = veil_params_ks_dim(&sk->p), N = veil_params_N(&sk->p);
    secret(sk->lwe, sizeof(uint64_t) * sk->p.n);
    secret(sk->glwe, sizeof(uint64_t) * big);
    secret(sk->glwe_f, sizeof(double) * (size_t)sk->p.k * N);
}

int main(void)
{
    if (!RUNNING_ON_VALGRIND) {
        const char *ok = getenv("VEIL_CT_NO_VALGRIND");
        printf("test_ct: not under valgrind: memcheck sees nothing here%s\n", ok ? " (allowed by VEIL_CT_NO_VALGRIND)" : "");
        if (!ok || strcmp(ok, "1") != 0) {
            fprintf(stderr, "test_ct must run under valgrind (ctest does: valgrind --error-exitcode=3)\n");
            return 1;
        }
    }
    uint8_t seed[VEIL_SEED_BYTES] = {0x51};
    printf("seed 51000000000000000000000000000000 (fixed)\n");
    veil_rng *rng = NULL;
    CHECK_OK(veil_rng_new_seeded(&rng, seed));

    /* the tiny circuit of test_alloc_fail: one 4-bit lookup, real parameters */
    veil_graph *g = NULL;
    CHECK_OK(veil_graph_new(&g));
    int in = veil_graph_input(g, "x", VEIL_ENCRYPTED, 1, (int64_t[]){1});
    int64_t table[16];
    for (int i = 0; i < 16; i++) table[i] = i * i % 11;
    CHECK_OK(veil_graph_output(g, veil_graph_table(g, in, 16, table)));
    int64_t samples[16];
    const int64_t *inputset[16];
    for (int i = 0; i < 16; i++) samples[i] = i, inputset[i] = &samples[i];
    veil_compile_config cfg;
    veil_compile_config_default(&cfg);
    veil_circuit *c = NULL;
    CHECK_OK(veil_compile(g, inputset, 16, &cfg, &c));
    veil_graph_free(g);
    const veil_params *P = veil_circuit_params(c);
    printf("parameters %s: n %u, k %u, N %u\n", P->name, P->n, P->k, veil_params_N(P));

    /* 1. a secret key read from its bytes, the key bits undefined in the image */
    veil_secret_key *sk0 = NULL;
    CHECK_OK(veil_secret_key_new(P, rng, &sk0));
    uint8_t *skb = NULL;
    size_t skl = 0;
    CHECK_OK(veil_secret_key_serialize(sk0, &skb, &skl));
    veil_secret_key_free(sk0);
    size_t bits = (P->n + 7) / 8 + (veil_params_ks_dim(P) + 7) / 8; /* the SKEY section ends with them */
    secret(skb + skl - 32 - bits, bits);
    veil_secret_key *sk = NULL;
    CHECK_OK(veil_secret_key_deserialize(skb, skl, P, &sk));
    veil_free_secret(skb, skl);
    mark_key(sk); /* whatever the reader wrote: all of it secret */
    printf("secret key read: done\n");

    /* 2. evaluation keys, seeded and expanded; a key prefix */
    veil_eval_keys *ek = NULL;
    CHECK_OK(veil_eval_keys_new(sk, rng, &ek));
    uint8_t *ekb = NULL;
    size_t ekl = 0;
    CHECK_OK(veil_eval_keys_serialize(ek, 1, &ekb, &ekl));
    veil_free(ekb);
    printf("evaluation keys: done (%zu bytes compressed)\n", ekl);
    veil_secret_key *pre = NULL;
    CHECK_OK(veil_secret_key_prefix(sk, P, &pre));
    veil_secret_key_free(pre);

    /* 3. encryption */
    uint32_t big = veil_params_big_lwe_dim(P), N = veil_params_N(P);
    uint64_t *ct = veil_malloc(sizeof(uint64_t) * ((size_t)big + 1)), *cs = veil_malloc(sizeof(uint64_t) * (P->n + 1));
    uint64_t *gl = veil_malloc(sizeof(uint64_t) * (size_t)(P->k + 1) * N), *ph = veil_malloc(sizeof(uint64_t) * N);
    uint64_t *gg = veil_malloc(sizeof(uint64_t) * (size_t)(P->k + 1) * P->pbs_levels * (P->k + 1) * N);
    uint64_t pts[8], bodies[8];
    for (int i = 0; i < 8; i++) pts[i] = (uint64_t)i << 59;
    CHECK_OK(veil_lwe_encrypt(sk, VEIL_KEY_BIG, 3ull << 59, rng, ct));
    CHECK_OK(veil_lwe_encrypt(sk, VEIL_KEY_SMALL, 3ull << 59, rng, cs));
    CHECK_OK(veil_lwe_encrypt_seeded(sk, VEIL_KEY_BIG, pts, 8, seed, rng, bodies));
    memset(ph, 0, sizeof(uint64_t) * N);
    ph[0] = 5ull << 59;
    CHECK_OK(veil_glwe_encrypt(sk, ph, rng, gl));
    CHECK_OK(veil_ggsw_encrypt(sk, 1, rng, gg));
    printf("encryption: done\n");

    /* 4. decryption: phases are secret (noise); decode them without branching, then compare */
    uint64_t p1 = veil_lwe_phase(sk, VEIL_KEY_BIG, ct), p2 = veil_lwe_phase(sk, VEIL_KEY_SMALL, cs);
    CHECK_OK(veil_glwe_phase(sk, gl, ph));
    uint64_t m1 = (p1 + (1ull << 58)) >> 59, m2 = (p2 + (1ull << 58)) >> 59, m3 = (ph[0] + (1ull << 58)) >> 59;
    public_(&m1, sizeof m1), public_(&m2, sizeof m2), public_(&m3, sizeof m3);
    CHECK(m1 == 3 && m2 == 3 && m3 == 5, "decrypted %llu %llu %llu (3 3 5)", (unsigned long long)m1,
          (unsigned long long)m2, (unsigned long long)m3);

    /* 5. a circuit: the client's seeded encryption, a server run (public), decryption and decoding */
    int64_t x[1] = {7}, y[1] = {-1};
    const int64_t *xs[1] = {x};
    int64_t *ys[1] = {y};
    uint8_t *req = NULL;
    size_t rl = 0;
    CHECK_OK(veil_circuit_encrypt_serialize(c, sk, xs, rng, &req, &rl));
    veil_ciphertexts *cin = NULL, *cout = NULL;
    CHECK_OK(veil_ciphertexts_deserialize(c, 0, req, rl, &cin));
    CHECK_OK(veil_circuit_run(c, ek, cin, 1, &cout));
    CHECK_OK(veil_circuit_decrypt(c, sk, cout, ys));
    CHECK(y[0] == 7 * 7 % 11, "the circuit decrypts %lld (want %d)", (long long)y[0], 7 * 7 % 11);
    printf("circuit encrypt, run, decrypt: done\n");

    veil_free(req);
    veil_ciphertexts_free(cin), veil_ciphertexts_free(cout);
    veil_free(ct), veil_free(cs), veil_free(gl), veil_free(ph), veil_free(gg);
    veil_eval_keys_free(ek);
    veil_secret_key_free(sk);
    veil_circuit_free(c);
    veil_rng_free(rng);
    printf("memcheck errors so far: %u (each a branch, index or system call on secret data)\n",
           (unsigned)VALGRIND_COUNT_ERRORS);
    CHECK(VALGRIND_COUNT_ERRORS == 0, "memcheck reported %u errors", (unsigned)VALGRIND_COUNT_ERRORS);
    return check_done("test_ct");
}
