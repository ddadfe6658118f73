/* Known answers: fixed seeds give fixed secret-key, evaluation-key and ciphertext digests (T4:
 * TUniform noise, so no floating point is involved and the digests are platform independent).
 * Seeded objects decompress to exactly what direct generation gives. */
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "core/container.h"
#include "tfhe/tfhe_internal.h"
#include "veil/tfhe.h"

static void hex(const uint8_t *d, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++) sprintf(out + 2 * i, "%02x", d[i]);
}

static void digest(const void *data, size_t len, char out[65])
{
    uint8_t h[32];
    veil_sha256(data, len, h);
    hex(h, 32, out);
}

/* Expected digests, recorded from this implementation; any change to key generation, mask
 * expansion, noise sampling or the file format changes them (and must be deliberate). */
static const char *KAT_SECRET_KEY = "c058385774500baebb5b7d8f0c9d94ff2119d4abf86c5576b8e0d4d893db57e7";
static const char *KAT_EVAL_KEYS = "d8a019923f0b14cb7dcc8f0acd48cef33acc190461475aec82047f9e8d051cd0";
static const char *KAT_CIPHERTEXT = "534b31ac45884f3579e0a200ce3502127320e80529331b6b7c86b2ca0b42bc30";

int main(void)
{
    veil_params p;
    CHECK_OK(veil_params_named("T4", &p));
    uint8_t s1[16], s2[16], s3[16];
    for (int i = 0; i < 16; i++) {
        s1[i] = (uint8_t)i;
        s2[i] = (uint8_t)(0x40 + i);
        s3[i] = (uint8_t)(0x80 + i);
    }
    veil_rng *rng;
    CHECK_OK(veil_rng_new_seeded(&rng, s1));
    veil_secret_key *sk;
    CHECK_OK(veil_secret_key_new(&p, rng, &sk));
    uint8_t *buf;
    size_t len;
    char d[65];
    CHECK_OK(veil_secret_key_serialize(sk, &buf, &len));
    digest(buf, len, d);
    printf("secret key  %s\n", d);
    CHECK(strcmp(d, KAT_SECRET_KEY) == 0, "secret key digest %s", d);
    veil_free_secret(buf, len);

    veil_eval_keys *ek;
    CHECK_OK(veil_eval_keys_new_derand(sk, s2, s3, &ek));
    CHECK_OK(veil_eval_keys_serialize(ek, 1, &buf, &len));
    digest(buf, len, d);
    printf("eval keys   %s (compressed, %zu bytes)\n", d, len);
    CHECK(strcmp(d, KAT_EVAL_KEYS) == 0, "eval key digest %s", d);

    /* decompression gives exactly the directly generated keys */
    veil_eval_keys *ek2;
    CHECK_OK(veil_eval_keys_deserialize(buf, len, &p, &ek2));
    veil_key_sizes sz = veil_params_key_sizes(&p);
    CHECK(memcmp(ek->bsk_bodies, ek2->bsk_bodies, sz.bsk_seeded_bytes - VEIL_SEED_BYTES) == 0,
          "decompressed BSK bodies differ from the generated ones");
    CHECK(memcmp(ek->ksk, ek2->ksk, sz.ksk_bytes) == 0, "decompressed KSK differs from the generated one");
    CHECK(memcmp(ek->bsk_f, ek2->bsk_f, sz.bsk_fourier_bytes) == 0, "Fourier BSKs differ");
    veil_free(buf);
    veil_eval_keys_free(ek2);

    /* ciphertexts: a deterministic encryption, and seeded vs direct */
    const uint32_t big = veil_params_big_lwe_dim(&p);
    enum { COUNT = 8 };
    uint64_t pts[COUNT], bodies[COUNT];
    uint64_t *direct = malloc(8 * COUNT * (big + 1)), *expanded = malloc(8 * COUNT * (big + 1));
    for (int i = 0; i < COUNT; i++) pts[i] = veil_encode((uint64_t)i, 4);
    veil_rng *mask, *noise;
    CHECK_OK(veil_rng_new_seeded(&mask, s2));
    CHECK_OK(veil_rng_new_seeded(&noise, s3));
    for (int i = 0; i < COUNT; i++)
        veil_lwe_encrypt_core(sk->glwe, big, pts[i], &p.glwe_noise, mask, noise, direct + (size_t)i * (big + 1));
    digest(direct, 8 * COUNT * (big + 1), d);
    printf("ciphertexts %s\n", d);
    CHECK(strcmp(d, KAT_CIPHERTEXT) == 0, "ciphertext digest %s", d);
    veil_rng_free(noise);
    CHECK_OK(veil_rng_new_seeded(&noise, s3));
    CHECK_OK(veil_lwe_encrypt_seeded(sk, VEIL_KEY_BIG, pts, COUNT, s2, noise, bodies));
    CHECK_OK(veil_lwe_expand_seeded(big, s2, bodies, COUNT, expanded));
    CHECK(memcmp(direct, expanded, 8 * COUNT * (big + 1)) == 0, "seeded ciphertexts expand to the direct ones");
    for (int i = 0; i < COUNT; i++)
        CHECK(veil_decode(veil_lwe_phase(sk, VEIL_KEY_BIG, expanded + (size_t)i * (big + 1)), 4) == (uint64_t)i,
              "seeded ciphertext %d decrypts", i);

    /* AES-128-CTR with key 0, counter 0: first block is AES_0(0) = 66e94bd4ef8a2c3b884cfa59ca342b2e (FIPS-197 based
     * well-known value), the mask-expansion stream of docs/format.md */
    uint8_t zero[16] = {0}, blk[16];
    veil_rng *z;
    CHECK_OK(veil_rng_new_seeded(&z, zero));
    veil_rng_bytes(z, blk, 16);
    hex(blk, 16, d);
    CHECK(strcmp(d, "66e94bd4ef8a2c3b884cfa59ca342b2e") == 0, "AES-CTR stream %s", d);
    veil_rng_free(z);

    free(direct);
    free(expanded);
    veil_rng_free(mask);
    veil_rng_free(noise);
    veil_rng_free(rng);
    veil_eval_keys_free(ek);
    veil_secret_key_free(sk);
    return check_done("test_kat");
}
