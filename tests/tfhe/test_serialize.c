/* Serialization round trips, and every reader refusing truncated, bit-flipped, wrong-kind,
 * wrong-version, unknown-flag and wrong-parameter input with an error (never a crash): one test
 * per object kind. */
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "core/container.h"
#include "tfhe/serialize.h"
#include "tfhe/tfhe_internal.h"
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
    buf[8] = VEIL_FORMAT_VERSION + 1;
    resign(buf, len);
    CHECK(read_as(o, buf, len, &P) == VEIL_ERR_BAD_VERSION, "%s: newer version refused", label);
    memcpy(buf, orig, len);
    buf[8] = 0;
    resign(buf, len);
    CHECK(read_as(o, buf, len, &P) == VEIL_ERR_BAD_VERSION, "%s: version 0 refused", label);
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

/* Files written before veil kept only the Fourier-domain key carry the standard-domain BSK
 * (section `BSK `) in their expanded form. Build one from a compressed file by docs/format.md's
 * mask expansion, and check that it still reads, to the same keys. Then compaction: a compacted
 * key writes only the expanded form. */
static void test_legacy_and_compact(veil_secret_key *sk, veil_rng *rng)
{
    veil_eval_keys *ek;
    CHECK_OK(veil_eval_keys_new(sk, rng, &ek));
    uint8_t *cbuf, *ebuf, *lbuf, *e2;
    size_t clen, elen, llen, e2len;
    CHECK_OK(veil_eval_keys_serialize(ek, 1, &cbuf, &clen));
    CHECK_OK(veil_eval_keys_serialize(ek, 0, &ebuf, &elen));
    veil_container c;
    CHECK_OK(veil_container_parse(cbuf, clen, VEIL_KIND_EVAL_KEYS, 1, &c));
    const uint8_t *seed, *bb, *kb;
    size_t sl, bl, kl;
    CHECK_OK(veil_container_section(&c, VEIL_TAG('S', 'E', 'E', 'D'), &seed, &sl));
    CHECK_OK(veil_container_section(&c, VEIL_TAG('B', 'S', 'K', ' '), &bb, &bl));
    CHECK_OK(veil_container_section(&c, VEIL_TAG('K', 'S', 'K', ' '), &kb, &kl));
    const size_t N = veil_params_N(&P), k = P.k, n = P.n, rows = (k + 1) * P.pbs_levels, big = k * N;
    const size_t lk = P.ks_levels;
    veil_key_sizes sz = veil_params_key_sizes(&P);
    uint64_t *bsk = malloc(sz.bsk_bytes), *ksk = malloc(sz.ksk_bytes);
    uint8_t sub[VEIL_SEED_BYTES];
    veil_rng *mb, *mk;
    veil_derive_seed(seed, "veil-bsk", sub);
    CHECK_OK(veil_rng_new_seeded(&mb, sub));
    veil_derive_seed(seed, "veil-ksk", sub);
    CHECK_OK(veil_rng_new_seeded(&mk, sub));
    veil_cursor cb = {bb, bl, 0}, ck = {kb, kl, 0};
    for (size_t g = 0; g < n * rows; g++) {
        veil_rng_u64s(mb, bsk + g * (k + 1) * N, k * N);
        veil_cursor_u64s(&cb, bsk + g * (k + 1) * N + k * N, N);
    }
    for (size_t r = 0; r < big * lk; r++) {
        veil_rng_u64s(mk, ksk + r * (n + 1), n);
        ksk[r * (n + 1) + n] = veil_cursor_u64(&ck);
    }
    CHECK(!cb.bad && !ck.bad && cb.left == 0 && ck.left == 0, "compressed sections have the documented sizes");
    veil_writer w;
    veil_writer_begin(&w, VEIL_KIND_EVAL_KEYS, 0);
    veil_params_write_section(&w, &P);
    veil_writer_section(&w, VEIL_TAG('B', 'S', 'K', ' '));
    veil_buf_put_u64s(&w.b, bsk, sz.bsk_bytes / 8);
    veil_writer_section(&w, VEIL_TAG('K', 'S', 'K', ' '));
    veil_buf_put_u64s(&w.b, ksk, sz.ksk_bytes / 8);
    CHECK_OK(veil_writer_finish(&w, &lbuf, &llen));
    veil_eval_keys *legacy;
    CHECK_OK(veil_eval_keys_deserialize(lbuf, llen, &P, &legacy));
    CHECK_OK(veil_eval_keys_serialize(legacy, 0, &e2, &e2len));
    CHECK(e2len == elen && memcmp(e2, ebuf, elen) == 0, "a legacy expanded file reads to the same keys");
    /* compaction: expanded still writes (the same bytes), compressed is refused */
    veil_eval_keys_compact(ek);
    uint8_t *x;
    size_t xl;
    CHECK(veil_eval_keys_serialize(ek, 1, &x, &xl) == VEIL_ERR_UNSUPPORTED, "a compacted key has no compressed form");
    veil_free(e2);
    CHECK_OK(veil_eval_keys_serialize(ek, 0, &e2, &e2len));
    CHECK(e2len == elen && memcmp(e2, ebuf, elen) == 0, "a compacted key writes the same expanded form");
    /* non-finite Fourier values in an expanded file are refused */
    veil_container ce;
    CHECK_OK(veil_container_parse(ebuf, elen, VEIL_KIND_EVAL_KEYS, 0, &ce));
    const uint8_t *bf;
    size_t bfl;
    CHECK_OK(veil_container_section(&ce, VEIL_TAG('B', 'S', 'K', 'F'), &bf, &bfl));
    CHECK(bfl == sz.bsk_fourier_bytes, "BSKF holds the Fourier key (%zu bytes)", bfl);
    uint8_t *bad = malloc(elen);
    memcpy(bad, ebuf, elen);
    const uint64_t nan_bits = 0x7ff8000000000000ull;
    memcpy(bad + (bf - ebuf) + 8 * 17, &nan_bits, 8);
    resign(bad, elen);
    CHECK(read_as(OBJ_EK, bad, elen, &P) == VEIL_ERR_MALFORMED, "a NaN in the Fourier key is refused");
    free(bad);
    veil_rng_free(mb);
    veil_rng_free(mk);
    free(bsk);
    free(ksk);
    veil_free(cbuf);
    veil_free(ebuf);
    veil_free(lbuf);
    veil_free(e2);
    veil_eval_keys_free(legacy);
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
    test_legacy_and_compact(sk, rng);
    veil_secret_key_free(sk);
    veil_rng_free(rng);
    return check_done("test_serialize");
}
