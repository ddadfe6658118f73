/* CSPRNG: AES-128-CTR (OpenSSL EVP) over a zero plaintext, keyed either from getrandom(2) or from
 * a caller's seed. Output is buffered; the byte stream of a seeded generator is the keystream of
 * AES-128-CTR with key = seed and a zero 128-bit initial counter, so compressed objects expand to
 * the same masks everywhere (docs/format.md). */
#include <math.h>
#include <string.h>
#include <sys/random.h>
#include <errno.h>

#include <openssl/evp.h>

#include "veil/core.h"

#define RNG_BUF 4096

struct veil_rng {
    EVP_CIPHER_CTX *ctx;
    size_t pos; /* next unread byte of buf */
    uint8_t buf[RNG_BUF];
    uint8_t zeros[RNG_BUF];
    int have_spare;
    double spare;
};

static void refill(veil_rng *r)
{
    int outl = 0;
    /* EVP_EncryptUpdate of CTR mode cannot fail on a valid context and length. */
    EVP_EncryptUpdate(r->ctx, r->buf, &outl, r->zeros, RNG_BUF);
    r->pos = 0;
}

static veil_status rng_new_key(veil_rng **out, const uint8_t key[16])
{
    *out = NULL;
    veil_rng *r = veil_calloc(1, sizeof *r);
    if (!r) return VEIL_ERR_NOMEM;
    uint8_t iv[16] = {0};
    r->ctx = EVP_CIPHER_CTX_new();
    if (!r->ctx || EVP_EncryptInit_ex(r->ctx, EVP_aes_128_ctr(), NULL, key, iv) != 1) {
        veil_rng_free(r);
        return VEIL_ERR_RNG;
    }
    refill(r);
    *out = r;
    return VEIL_OK;
}

veil_status veil_rng_new_seeded(veil_rng **out, const uint8_t seed[VEIL_SEED_BYTES])
{
    if (!out || !seed) return VEIL_ERR_INVALID_ARG;
    return rng_new_key(out, seed);
}

veil_status veil_rng_new_os(veil_rng **out)
{
    if (!out) return VEIL_ERR_INVALID_ARG;
    *out = NULL;
    uint8_t key[16];
    size_t got = 0;
    while (got < sizeof key) {
        ssize_t r = getrandom(key + got, sizeof key - got, 0);
        if (r < 0) {
            if (errno == EINTR) continue;
            veil_memzero(key, sizeof key);
            return VEIL_ERR_RNG;
        }
        got += (size_t)r;
    }
    veil_status s = rng_new_key(out, key);
    veil_memzero(key, sizeof key);
    return s;
}

void veil_rng_free(veil_rng *r)
{
    if (!r) return;
    if (r->ctx) EVP_CIPHER_CTX_free(r->ctx); /* OpenSSL cleanses the key schedule */
    veil_free_secret(r, sizeof *r);
}

void veil_rng_bytes(veil_rng *r, void *buf, size_t n)
{
    uint8_t *o = buf;
    while (n) {
        if (r->pos == RNG_BUF) refill(r);
        size_t take = RNG_BUF - r->pos;
        if (take > n) take = n;
        memcpy(o, r->buf + r->pos, take);
        veil_memzero(r->buf + r->pos, take);
        r->pos += take;
        o += take;
        n -= take;
    }
}

void veil_rng_u64s(veil_rng *r, uint64_t *out, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (RNG_BUF - r->pos < 8) refill(r);
        const uint8_t *b = r->buf + r->pos;
        out[i] = (uint64_t)b[0] | (uint64_t)b[1] << 8 | (uint64_t)b[2] << 16 | (uint64_t)b[3] << 24 |
                 (uint64_t)b[4] << 32 | (uint64_t)b[5] << 40 | (uint64_t)b[6] << 48 | (uint64_t)b[7] << 56;
        r->pos += 8;
    }
}

uint64_t veil_rng_u64(veil_rng *r)
{
    uint64_t x;
    veil_rng_u64s(r, &x, 1);
    return x;
}

void veil_rng_seed(veil_rng *r, uint8_t seed[VEIL_SEED_BYTES])
{
    veil_rng_bytes(r, seed, VEIL_SEED_BYTES);
}

double veil_rng_normal(veil_rng *r)
{
    if (r->have_spare) {
        r->have_spare = 0;
        return r->spare;
    }
    /* u1 in (0,1], u2 in [0,1): 53-bit uniforms */
    double u1 = ((double)(veil_rng_u64(r) >> 11) + 1.0) * 0x1p-53;
    double u2 = (double)(veil_rng_u64(r) >> 11) * 0x1p-53;
    double rad = sqrt(-2.0 * log(u1));
    double th = 2.0 * M_PI * u2;
    r->spare = rad * sin(th);
    r->have_spare = 1;
    return rad * cos(th);
}
