/* Serialization round trips, and every reader refusing truncated, bit-flipped, wrong-kind,
 * wrong-version, unknown-flag and wrong-parameter input with an error (never a crash): one test
 * per object kind. */
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "core/container.h"
#include "veil/tfhe.h"

typedef enum { OBJ_SK, OBJ_EK, OBJ_LWE, OBJ_COUNT } obj;
static const char *const obj_name[] = {"secret key", "eval keys", "ciphertexts"};
static veil_params P, OTHER;

/* Read buf as kind `o`; free what was read. */
static veil_status read_as(obj o, const uint8_t *buf, size_t len, const veil_params *expect)
{
    veil_status s;
    if (o == OBJ_SK) {
        veil_secret_key *sk = NULL;
        s = veil_secret_key_deserialize(buf, len, expect, &sk);
        veil_secret_key_free(sk);
    } else if (o == OBJ_EK) {
        veil_eval_keys *ek = NULL;
        s = veil_eval_keys_deserialize(buf, len, expect, &ek);
        veil_eval_keys_free(ek);
    } else {
        uint32_t dim;
        uint64_t *cts = NULL;
        size_t count;
        s = veil_lwe_list_deserialize(buf, len, expect, &dim, &cts, &count);
        veil_free(cts);
    }
    return s;
}

/* Re-sign a modified file so that only the intended field is wrong. */
static void resign(uint8_t *buf, size_t len) { veil_sha256(buf, len - 32, buf + len - 32); }

static void attack(obj o, const char *label, const uint8_t *orig, size_t len, veil_rng *rng, int flips)
{
    uint8_t *buf = veil_malloc(len);
    veil_status s;
    CHECK(read_as(o, orig, len, &P) == VEIL_OK, "%s: pristine file reads", label);
    /* truncations */
    size_t cuts[] = {0, 1, 7, 8, 12, 19, 20, 21, 40, 100, len / 2, len - 33, len - 32, len - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        if (cuts[i] >= len) continue;
        s = read_as(o, orig, cuts[i], &P);
        CHECK(s != VEIL_OK, "%s truncated to %zu bytes accepted", label, cuts[i]);
    }
    s = read_as(o, orig, len - 1, &P);
    CHECK(s == VEIL_ERR_TRUNCATED || s == VEIL_ERR_CHECKSUM, "%s: cut by one byte -> %s", label, veil_status_str(s));
    /* bit flips: header fields, section table, payload, trailer */
    size_t spots[] = {0, 5, 8, 10, 12, 16, 20, 24, 28, len / 3, len / 2, len - 40, len - 32, len - 1};
    for (int f = 0; f < flips; f++) {
        size_t at = f < (int)(sizeof spots / sizeof spots[0]) ? spots[f] : (size_t)(veil_rng_u64(rng) % len);
        if (at >= len) continue;
        memcpy(buf, orig, len);
        buf[at] ^= (uint8_t)(1u << (veil_rng_u64(rng) % 8));
        s = read_as(o, buf, len, &P);
        CHECK(s != VEIL_OK, "%s with a flipped bit at byte %zu accepted", label, at);
    }
    memcpy(buf, orig, len);
    buf[len - 33] ^= 0x10; /* last payload byte */
    CHECK(read_as(o, buf, len, &P) == VEIL_ERR_CHECKSUM, "%s: payload flip -> checksum error", label);
    /* version, flags (re-signed so the checksum holds) */
    memcpy(buf, orig, len);
    buf[8] = 2;
    resign(buf, len);
    CHECK(read_as(o, buf, len, &P) == VEIL_ERR_BAD_VERSION, "%s: newer version refused", label);
    memcpy(buf, orig, len);
    buf[15] |= 0x80;
    resign(buf, len);
    CHECK(read_as(o, buf, len, &P) == VEIL_ERR_BAD_FLAGS, "%s: unknown flag refused", label);
    /* wrong kind: every other reader refuses it */
    for (int other = 0; other < OBJ_COUNT; other++) {
        if (other == (int)o) continue;
        s = read_as((obj)other, orig, len, &P);
        CHECK(s == VEIL_ERR_BAD_KIND, "%s read as %s -> %s", label, obj_name[other], veil_status_str(s));
    }
    /* other parameters */
    s = read_as(o, orig, len, &OTHER);
    CHECK(s == VEIL_ERR_PARAMS_MISMATCH, "%s for other parameters -> %s", label, veil_status_str(s));
    /* garbage */
    for (size_t i = 0; i < len && i < 4096; i++) buf[i] = (uint8_t)veil_rng_u64(rng);
    CHECK(read_as(o, buf, len < 4096 ? len : 4096, &P) == VEIL_ERR_BAD_MAGIC, "%s: random bytes refused", label);
    printf("%s: truncated, bit-flipped, wrong-kind, wrong-version, unknown-flag, foreign-parameter files refused\n",
           label);
    veil_free(buf);
}

static void test_secret_key(veil_secret_key *sk, veil_rng *rng)
{
    uint8_t *buf;
    size_t len;
    CHECK_OK(veil_secret_key_serialize(sk, &buf, &len));
    veil_secret_key *back;
    CHECK_OK(veil_secret_key_deserialize(buf, len, NULL, &back));
    uint8_t *buf2;
    size_t len2;
    CHECK_OK(veil_secret_key_serialize(back, &buf2, &len2));
    CHECK(len == len2 && memcmp(buf, buf2, len) == 0, "secret key round trip");
    /* files: written atomically with the requested mode */
    char path[] = "/tmp/veil_test_sk_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0, "mkstemp");
    close(fd);
    CHECK_OK(veil_file_write_atomic(path, buf, len, 0600));
    struct stat st;
    CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600, "secret key file mode is 0600");
    uint8_t *rd;
    size_t rl;
    CHECK_OK(veil_file_read_all(path, 1u << 30, &rd, &rl));
    CHECK(rl == len && memcmp(rd, buf, len) == 0, "file round trip");
    veil_free_secret(rd, rl);
    CHECK(veil_file_read_all(path, 10, &rd, &rl) != VEIL_OK, "size limit enforced");
    CHECK(veil_file_write_atomic("/nonexistent-dir/x", buf, len, 0600) == VEIL_ERR_IO, "unwritable path -> io error");
    unlink(path);
    attack(OBJ_SK, "secret key", buf, len, rng, 40);
    veil_free_secret(buf, len);
    veil_free_secret(buf2, len2);
    veil_secret_key_free(back);
}

static void test_eval_keys(veil_secret_key *sk, veil_rng *rng)
{
    veil_eval_keys *ek;
    CHECK_OK(veil_eval_keys_new(sk, rng, &ek));
    for (int compressed = 1; compressed >= 0; compressed--) {
        uint8_t *buf;
        size_t len;
        CHECK_OK(veil_eval_keys_serialize(ek, compressed, &buf, &len));
        veil_eval_keys *back;
        CHECK_OK(veil_eval_keys_deserialize(buf, len, &P, &back));
        uint8_t *buf2;
        size_t len2;
        CHECK_OK(veil_eval_keys_serialize(back, 0, &buf2, &len2));
        uint8_t *ref;
        size_t rlen;
        CHECK_OK(veil_eval_keys_serialize(ek, 0, &ref, &rlen));
        CHECK(rlen == len2 && memcmp(ref, buf2, rlen) == 0, "eval keys round trip (compressed=%d)", compressed);
        /* the keys still bootstrap */
        veil_pbs_scratch *scr;
        CHECK_OK(veil_pbs_scratch_new(&P, &scr));
        uint64_t table[2] = {1, 0};
        veil_lut *lut;
        CHECK_OK(veil_lut_new(&P, 1, table, 1, &lut));
        uint32_t big = veil_params_big_lwe_dim(&P);
        uint64_t *ct = malloc(8 * (big + 1));
        CHECK_OK(veil_lwe_encrypt(sk, VEIL_KEY_BIG, veil_encode(0, 1), rng, ct));
        veil_ks_pbs(back, lut, ct, ct, scr);
        CHECK(veil_decode(veil_lwe_phase(sk, VEIL_KEY_BIG, ct), 1) == 1, "deserialized keys bootstrap");
        free(ct);
        veil_lut_free(lut);
        veil_pbs_scratch_free(scr);
        attack(OBJ_EK, compressed ? "eval keys (compressed)" : "eval keys (expanded)", buf, len, rng, 16);
        veil_free(buf);
        veil_free(buf2);
        veil_free(ref);
        veil_eval_keys_free(back);
    }
    veil_eval_keys_free(ek);
}

static void test_ciphertexts(veil_secret_key *sk, veil_rng *rng)
{
    enum { COUNT = 5 };
    for (int which = 0; which < 2; which++) {
        uint32_t dim = which ? veil_params_big_lwe_dim(&P) : P.n;
        uint64_t *cts = malloc(8 * COUNT * (dim + 1)), pts[COUNT], bodies[COUNT];
        for (int i = 0; i < COUNT; i++) {
            pts[i] = veil_encode((uint64_t)i, 3);
            CHECK_OK(veil_lwe_encrypt(sk, (veil_key_choice)which, pts[i], rng, cts + (size_t)i * (dim + 1)));
        }
        uint8_t *buf;
        size_t len;
        CHECK_OK(veil_lwe_list_serialize(&P, dim, cts, COUNT, &buf, &len));
        uint32_t d2;
        uint64_t *back;
        size_t c2;
        CHECK_OK(veil_lwe_list_deserialize(buf, len, &P, &d2, &back, &c2));
        CHECK(d2 == dim && c2 == COUNT && memcmp(back, cts, 8 * COUNT * (dim + 1)) == 0, "ciphertext list round trip");
        attack(OBJ_LWE, which ? "ciphertexts (big key)" : "ciphertexts (small key)", buf, len, rng, 40);
        veil_free(back);
        veil_free(buf);
        /* seeded */
        uint8_t seed[16];
        veil_rng_seed(rng, seed);
        CHECK_OK(veil_lwe_encrypt_seeded(sk, (veil_key_choice)which, pts, COUNT, seed, rng, bodies));
        CHECK_OK(veil_lwe_list_serialize_seeded(&P, dim, seed, bodies, COUNT, &buf, &len));
        CHECK(len < 400, "seeded list is small (%zu bytes)", len);
        CHECK_OK(veil_lwe_list_deserialize(buf, len, &P, &d2, &back, &c2));
        for (int i = 0; i < COUNT; i++)
            CHECK(veil_decode(veil_lwe_phase(sk, (veil_key_choice)which, back + (size_t)i * (dim + 1)), 3) == (uint64_t)i,
                  "seeded ciphertext %d", i);
        attack(OBJ_LWE, "ciphertexts (seeded)", buf, len, rng, 40);
        veil_free(back);
        veil_free(buf);
        free(cts);
    }
}

int main(void)
{
    CHECK_OK(veil_params_named("C1", &P));
    CHECK_OK(veil_params_named("C2", &OTHER));
    veil_rng *rng;
    CHECK_OK(veil_rng_new_os(&rng));
    veil_secret_key *sk;
    CHECK_OK(veil_secret_key_new(&P, rng, &sk));
    test_secret_key(sk, rng);
    test_ciphertexts(sk, rng);
    test_eval_keys(sk, rng);
    veil_secret_key_free(sk);
    veil_rng_free(rng);
    return check_done("test_serialize");
}
