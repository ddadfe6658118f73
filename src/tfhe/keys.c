/* Key generation and encryption. Secret bits and noise come from the caller's CSPRNG; masks of
 * evaluation keys come from a seeded AES-CTR stream so the keys compress to seed + bodies. */
#include <math.h>
#include <openssl/evp.h>
#include <string.h>

#include "../core/container.h"
#include "../core/ct.h"
#include "serialize.h"
#include "tfhe_internal.h"

int64_t veil_noise_sample(const veil_noise *z, veil_rng *rng)
{
    if (z->kind == VEIL_NOISE_TUNIFORM) {
        unsigned b = z->bound_log2;
        uint64_t r = veil_rng_u64(rng) & ((b + 2 >= 64) ? ~0ull : ((1ull << (b + 2)) - 1));
        return (int64_t)((r >> 1) + (r & 1)) - (int64_t)(1ull << b);
    }
    double s = veil_rng_normal(rng) * exp2(z->log2_std + 64.0);
    if (s > 0x1p62) s = 0x1p62; /* never reached for secure parameters; keeps llrint defined */
    if (s < -0x1p62) s = -0x1p62;
    return (int64_t)llrint(s);
}

const uint64_t *veil_secret_key_bits(const veil_secret_key *sk, veil_key_choice which, uint32_t *dim)
{
    if (which == VEIL_KEY_SMALL) {
        *dim = sk->p.n;
        return sk->lwe;
    }
    *dim = veil_params_big_lwe_dim(&sk->p);
    return sk->glwe;
}

/* The big key holds k·N bits, or ks_dim when the key-switching key reads a longer prefix of a
 * shared key (veil_secret_key_prefix). */
static uint32_t big_bits(const veil_params *p) { return veil_params_ks_dim(p); }

const veil_params *veil_secret_key_params(const veil_secret_key *sk) { return &sk->p; }

void veil_secret_key_free(veil_secret_key *sk)
{
    if (!sk) return;
    veil_free_secret(sk->lwe, sizeof(uint64_t) * sk->p.n);
    veil_free_secret(sk->glwe, sizeof(uint64_t) * big_bits(&sk->p));
    veil_free_secret(sk->glwe_f, sizeof(double) * veil_params_big_lwe_dim(&sk->p));
    veil_free_secret(sk, sizeof *sk);
}

/* Allocates sk with the bits already filled in `lwe`/`glwe`, and its Fourier cache. */
static veil_status finish_secret_key(veil_secret_key *sk)
{
    if (veil_kernels_check(NULL) != VEIL_OK) return VEIL_ERR_UNSUPPORTED;
    const veil_fft_plan *plan = veil_fft_plan_get(sk->p.log2_N);
    if (!plan) return VEIL_ERR_NOMEM;
    uint32_t N = veil_params_N(&sk->p);
    for (uint32_t c = 0; c < sk->p.k; c++) veil_fft_forward_u64(plan, sk->glwe + (size_t)c * N, sk->glwe_f + (size_t)c * N);
    return VEIL_OK;
}

veil_status veil_secret_key_alloc(const veil_params *p, veil_secret_key **out);
veil_status veil_secret_key_alloc(const veil_params *p, veil_secret_key **out)
{
    *out = NULL;
    veil_status s = veil_params_check(p);
    if (s != VEIL_OK) return s;
    veil_secret_key *sk = veil_calloc(1, sizeof *sk);
    if (!sk) return VEIL_ERR_NOMEM;
    sk->p = *p;
    sk->lwe = veil_calloc(p->n, sizeof(uint64_t));
    sk->glwe = veil_calloc(big_bits(p), sizeof(uint64_t));
    sk->glwe_f = veil_calloc(veil_params_big_lwe_dim(p), sizeof(double));
    if (!sk->lwe || !sk->glwe || !sk->glwe_f) {
        veil_secret_key_free(sk);
        return VEIL_ERR_NOMEM;
    }
    *out = sk;
    return VEIL_OK;
}

veil_status veil_secret_key_finish(veil_secret_key *sk);
veil_status veil_secret_key_finish(veil_secret_key *sk) { return finish_secret_key(sk); }

veil_status veil_secret_key_new(const veil_params *p, veil_rng *rng, veil_secret_key **out)
{
    if (!p || !rng || !out) return VEIL_ERR_INVALID_ARG;
    veil_secret_key *sk = NULL;
    veil_status s = veil_secret_key_alloc(p, &sk);
    if (s != VEIL_OK) return s;
    uint32_t big = big_bits(p);
    uint8_t bytes[512];
    /* one uniform bit per word, taken from the stream without branching on it */
    for (uint32_t done = 0; done < p->n + big;) {
        uint32_t take = p->n + big - done;
        if (take > sizeof bytes * 8) take = sizeof bytes * 8;
        veil_rng_bytes(rng, bytes, (take + 7) / 8);
        for (uint32_t t = 0; t < take; t++) {
            uint64_t bit = (bytes[t / 8] >> (t % 8)) & 1;
            uint32_t idx = done + t;
            if (idx < p->n) sk->lwe[idx] = bit;
            else sk->glwe[idx - p->n] = bit;
        }
        done += take;
    }
    veil_memzero(bytes, sizeof bytes);
    s = finish_secret_key(sk);
    if (s != VEIL_OK) {
        veil_secret_key_free(sk);
        return s;
    }
    *out = sk;
    return VEIL_OK;
}

void veil_lwe_encrypt_core(const uint64_t *key, uint32_t dim, uint64_t pt, const veil_noise *z, veil_rng *mask_rng,
                           veil_rng *noise_rng, uint64_t *ct)
{
    veil_rng_u64s(mask_rng, ct, dim);
    uint64_t b = pt + (uint64_t)veil_noise_sample(z, noise_rng);
    for (uint32_t i = 0; i < dim; i++) b += ct[i] * key[i]; /* key bit as a 0/1 multiplier: no branch */
    ct[dim] = b;
    VEIL_CT_PUBLIC(&ct[dim], sizeof ct[dim]); /* a ciphertext is public */
}

veil_status veil_lwe_encrypt(const veil_secret_key *sk, veil_key_choice which, uint64_t pt, veil_rng *rng,
                             uint64_t *ct)
{
    if (!sk || !rng || !ct || (unsigned)which >= VEIL_KEY_CHOICE_COUNT) return VEIL_ERR_INVALID_ARG;
    uint32_t dim;
    const uint64_t *key = veil_secret_key_bits(sk, which, &dim);
    const veil_noise *z = which == VEIL_KEY_SMALL ? &sk->p.lwe_noise : &sk->p.glwe_noise;
    veil_lwe_encrypt_core(key, dim, pt, z, rng, rng, ct);
    return VEIL_OK;
}

uint64_t veil_lwe_phase(const veil_secret_key *sk, veil_key_choice which, const uint64_t *ct)
{
    uint32_t dim;
    const uint64_t *key = veil_secret_key_bits(sk, which, &dim);
    uint64_t b = ct[dim];
    for (uint32_t i = 0; i < dim; i++) b -= ct[i] * key[i];
    return b;
}

veil_status veil_lwe_encrypt_seeded(const veil_secret_key *sk, veil_key_choice which, const uint64_t *pts,
                                    size_t count, const uint8_t seed[VEIL_SEED_BYTES], veil_rng *noise_rng,
                                    uint64_t *bodies)
{
    if (!sk || !pts || !seed || !noise_rng || !bodies || (unsigned)which >= VEIL_KEY_CHOICE_COUNT)
        return VEIL_ERR_INVALID_ARG;
    uint32_t dim;
    const uint64_t *key = veil_secret_key_bits(sk, which, &dim);
    const veil_noise *z = which == VEIL_KEY_SMALL ? &sk->p.lwe_noise : &sk->p.glwe_noise;
    veil_rng *mask = NULL;
    veil_status s = veil_rng_new_seeded(&mask, seed);
    if (s != VEIL_OK) return s;
    uint64_t *ct = veil_malloc(sizeof(uint64_t) * ((size_t)dim + 1));
    if (!ct) {
        veil_rng_free(mask);
        return VEIL_ERR_NOMEM;
    }
    for (size_t i = 0; i < count; i++) {
        veil_lwe_encrypt_core(key, dim, pts[i], z, mask, noise_rng, ct);
        bodies[i] = ct[dim];
    }
    veil_free(ct);
    veil_rng_free(mask);
    return VEIL_OK;
}

void veil_glwe_encrypt_core(const veil_secret_key *sk, const uint64_t *pt, veil_rng *mask_rng, veil_rng *noise_rng,
                            uint64_t *ct, double *tmp, uint64_t *prod)
{
    const veil_params *p = &sk->p;
    const uint32_t N = veil_params_N(p), k = p->k;
    const veil_fft_plan *plan = veil_fft_plan_get(p->log2_N); /* exists: made with the key */
    uint64_t *body = ct + (size_t)k * N;
    veil_rng_u64s(mask_rng, ct, (size_t)k * N);
    for (uint32_t t = 0; t < N; t++) body[t] = pt[t] + (uint64_t)veil_noise_sample(&p->glwe_noise, noise_rng);
    for (uint32_t c = 0; c < k; c++) {
        veil_poly_mul_binary_exact(plan, ct + (size_t)c * N, sk->glwe_f + (size_t)c * N, prod, tmp);
        for (uint32_t t = 0; t < N; t++) body[t] += prod[t];
    }
    VEIL_CT_PUBLIC(body, sizeof(uint64_t) * N); /* a ciphertext is public */
}

/* Adding g to the mask c would change the phase by -g·S_c; encrypting the plaintext -g·S_c
 * instead gives the same phase and keeps the masks a pure seed stream (so keys compress). */
void veil_ggsw_encrypt_core(const veil_secret_key *sk, int64_t m, veil_rng *mask_rng, veil_rng *noise_rng,
                            uint64_t *ct, double *tmp, uint64_t *prod)
{
    const veil_params *p = &sk->p;
    const uint32_t N = veil_params_N(p), k = p->k, l = p->pbs_levels;
    uint64_t *pt = prod + N;
    for (uint32_t c = 0; c <= k; c++) {
        for (uint32_t j = 0; j < l; j++) {
            uint64_t g = (uint64_t)m << (64 - p->pbs_base_log * (j + 1));
            if (c == k) {
                memset(pt, 0, sizeof(uint64_t) * N);
                pt[0] = g;
            } else {
                for (uint32_t t = 0; t < N; t++) pt[t] = (uint64_t)0 - g * sk->glwe[(size_t)c * N + t];
            }
            veil_glwe_encrypt_core(sk, pt, mask_rng, noise_rng, ct + ((size_t)c * l + j) * (k + 1) * N, tmp, prod);
        }
    }
    veil_memzero(pt, sizeof(uint64_t) * N);
}

static veil_status with_scratch(const veil_secret_key *sk, double **tmp, uint64_t **prod)
{
    uint32_t N = veil_params_N(&sk->p);
    *tmp = veil_malloc(sizeof(double) * 2 * N);
    *prod = veil_malloc(sizeof(uint64_t) * 2 * N);
    if (*tmp && *prod) return VEIL_OK;
    veil_free(*tmp);
    veil_free(*prod);
    return VEIL_ERR_NOMEM;
}

veil_status veil_glwe_encrypt(const veil_secret_key *sk, const uint64_t *pt_poly, veil_rng *rng, uint64_t *ct)
{
    if (!sk || !pt_poly || !rng || !ct) return VEIL_ERR_INVALID_ARG;
    double *tmp;
    uint64_t *prod;
    veil_status s = with_scratch(sk, &tmp, &prod);
    if (s != VEIL_OK) return s;
    veil_glwe_encrypt_core(sk, pt_poly, rng, rng, ct, tmp, prod);
    veil_free(tmp);
    veil_free(prod);
    return VEIL_OK;
}

veil_status veil_glwe_phase(const veil_secret_key *sk, const uint64_t *ct, uint64_t *phase)
{
    if (!sk || !ct || !phase) return VEIL_ERR_INVALID_ARG;
    const uint32_t N = veil_params_N(&sk->p), k = sk->p.k;
    const veil_fft_plan *plan = veil_fft_plan_get(sk->p.log2_N);
    double *tmp;
    uint64_t *prod;
    veil_status s = with_scratch(sk, &tmp, &prod);
    if (s != VEIL_OK) return s;
    memcpy(phase, ct + (size_t)k * N, sizeof(uint64_t) * N);
    for (uint32_t c = 0; c < k; c++) {
        veil_poly_mul_binary_exact(plan, ct + (size_t)c * N, sk->glwe_f + (size_t)c * N, prod, tmp);
        for (uint32_t t = 0; t < N; t++) phase[t] -= prod[t];
    }
    veil_free(tmp);
    veil_free(prod);
    return VEIL_OK;
}

veil_status veil_ggsw_encrypt(const veil_secret_key *sk, int64_t m, veil_rng *rng, uint64_t *ct)
{
    if (!sk || !rng || !ct) return VEIL_ERR_INVALID_ARG;
    double *tmp;
    uint64_t *prod;
    veil_status s = with_scratch(sk, &tmp, &prod);
    if (s != VEIL_OK) return s;
    veil_ggsw_encrypt_core(sk, m, rng, rng, ct, tmp, prod);
    veil_free(tmp);
    veil_free(prod);
    return VEIL_OK;
}


veil_status veil_secret_key_prefix(const veil_secret_key *sk, const veil_params *p, veil_secret_key **out)
{
    if (!sk || !p || !out) return VEIL_ERR_INVALID_ARG;
    *out = NULL;
    if (p->n > sk->p.n || big_bits(p) > big_bits(&sk->p)) return VEIL_ERR_INVALID_ARG;
    veil_secret_key *v = NULL;
    veil_status s = veil_secret_key_alloc(p, &v);
    if (s != VEIL_OK) return s;
    memcpy(v->lwe, sk->lwe, sizeof(uint64_t) * p->n);
    memcpy(v->glwe, sk->glwe, sizeof(uint64_t) * big_bits(p));
    if ((s = finish_secret_key(v)) != VEIL_OK) {
        veil_secret_key_free(v);
        return s;
    }
    *out = v;
    return VEIL_OK;
}

/* ---- evaluation keys: the bodies computed from the secret key -------------------------------- */
typedef struct {
    const veil_secret_key *sk;
    veil_rng *noise;
    double *tmp;
    uint64_t *prod;
} secret_bodies;

static void secret_ggsw(void *vctx, uint32_t i, veil_rng *mask, uint64_t *ggsw)
{
    secret_bodies *g = vctx;
    veil_ggsw_encrypt_core(g->sk, (int64_t)g->sk->lwe[i], mask, g->noise, ggsw, g->tmp, g->prod);
}

static void secret_ksk_row(void *vctx, uint32_t i, uint32_t j, veil_rng *mask, uint64_t *row)
{
    secret_bodies *g = vctx;
    const veil_params *p = &g->sk->p;
    uint64_t pt = g->sk->glwe[i] << (64 - p->ks_base_log * (j + 1));
    veil_lwe_encrypt_core(g->sk->lwe, p->n, pt, &p->lwe_noise, mask, g->noise, row);
}

static veil_status build_keys(const veil_secret_key *sk, const uint8_t seed[VEIL_SEED_BYTES], veil_rng *noise,
                              veil_eval_keys **out)
{
    const uint32_t N = veil_params_N(&sk->p);
    secret_bodies g = {sk, noise, veil_malloc(sizeof(double) * 2 * N), veil_malloc(sizeof(uint64_t) * 2 * N)};
    veil_key_bodies kb = {secret_ggsw, secret_ksk_row, &g};
    veil_status s = g.tmp && g.prod && veil_fft_plan_get(sk->p.log2_N) ? veil_eval_keys_build(&sk->p, seed, &kb, out)
                                                                       : VEIL_ERR_NOMEM;
    veil_free(g.tmp);
    veil_free(g.prod);
    return s;
}

veil_status veil_eval_keys_new_derand(const veil_secret_key *sk, const uint8_t mask_seed[VEIL_SEED_BYTES],
                                      const uint8_t noise_seed[VEIL_SEED_BYTES], veil_eval_keys **out)
{
    if (!sk || !mask_seed || !noise_seed || !out) return VEIL_ERR_INVALID_ARG;
    veil_rng *noise = NULL;
    veil_status s = veil_rng_new_seeded(&noise, noise_seed);
    if (s != VEIL_OK) return s;
    s = build_keys(sk, mask_seed, noise, out);
    veil_rng_free(noise);
    return s;
}

veil_status veil_eval_keys_new(const veil_secret_key *sk, veil_rng *rng, veil_eval_keys **out)
{
    if (!sk || !rng || !out) return VEIL_ERR_INVALID_ARG;
    uint8_t seed[VEIL_SEED_BYTES];
    veil_rng_seed(rng, seed);
    veil_status s = build_keys(sk, seed, rng, out);
    veil_memzero(seed, sizeof seed);
    return s;
}


#define TAG_SKEY VEIL_TAG('S', 'K', 'E', 'Y')

/* ---- secret key ------------------------------------------------------------------------------- */

static void put_bits(veil_buf *b, const uint64_t *bits, uint32_t n)
{
    uint8_t *d = veil_buf_reserve(b, (n + 7) / 8);
    if (!d) return;
    memset(d, 0, (n + 7) / 8);
    for (uint32_t i = 0; i < n; i++) d[i / 8] |= (uint8_t)(bits[i] << (i % 8));
}

/* The SKEY body: n (u32), big (u32), then the small key's bits and the big key's bits, packed. */
static void put_skey(veil_buf *b, const veil_secret_key *sk)
{
    uint32_t big = big_bits(&sk->p);
    veil_buf_put_u32(b, sk->p.n);
    veil_buf_put_u32(b, big);
    put_bits(b, sk->lwe, sk->p.n);
    put_bits(b, sk->glwe, big);
}

static veil_status get_skey(const uint8_t *d, size_t dl, const veil_params *p, veil_secret_key **out)
{
    veil_cursor cur = {d, dl, 0};
    uint32_t n = veil_cursor_u32(&cur), big = veil_cursor_u32(&cur);
    if (cur.bad || n != p->n || big != big_bits(p)) return VEIL_ERR_MALFORMED;
    size_t nb = (n + 7) / 8, bb = (big + 7) / 8;
    if (cur.left != nb + bb) return VEIL_ERR_MALFORMED;
    veil_secret_key *sk = NULL;
    veil_status s = veil_secret_key_alloc(p, &sk);
    if (s != VEIL_OK) return s;
    for (uint32_t i = 0; i < n; i++) sk->lwe[i] = (cur.p[i / 8] >> (i % 8)) & 1;
    for (uint32_t i = 0; i < big; i++) sk->glwe[i] = (cur.p[nb + i / 8] >> (i % 8)) & 1;
    if ((s = veil_secret_key_finish(sk)) != VEIL_OK) {
        veil_secret_key_free(sk);
        return s;
    }
    *out = sk;
    return VEIL_OK;
}

veil_status veil_secret_key_serialize(const veil_secret_key *sk, uint8_t **out, size_t *len)
{
    if (!sk || !out || !len) return VEIL_ERR_INVALID_ARG;
    veil_writer w;
    veil_writer_begin(&w, VEIL_KIND_SECRET_KEY, 0);
    veil_params_write_section(&w, &sk->p);
    veil_writer_section(&w, TAG_SKEY);
    put_skey(&w.b, sk);
    /* the writer wipes its intermediate buffers (veil_buf_* free secretly) */
    return veil_writer_finish(&w, out, len);
}

veil_status veil_secret_key_deserialize(const uint8_t *buf, size_t len, const veil_params *expect,
                                        veil_secret_key **out)
{
    return veil_secret_key_deserialize_sealed(buf, len, expect, NULL, 0, out);
}

/* ---- sealed under a passphrase ------------------------------------------------------------------ */
#define TAG_KDFP VEIL_TAG('K', 'D', 'F', 'P')
#define TAG_SEAL VEIL_TAG('S', 'E', 'A', 'L')
enum { KDF_SCRYPT = 1, SALT_BYTES = 16, NONCE_BYTES = 12, TAG_BYTES = 16, AEAD_KEY_BYTES = 32 };
enum { SCRYPT_LOG2_N = 17, SCRYPT_R = 8, SCRYPT_P = 1 };

/* KDFP: algorithm (u32: 1 scrypt), log2 N, r, p (u32 each), salt (16 bytes) */
static veil_status derive(const uint8_t *kdfp, size_t kl, const uint8_t *pass, size_t pass_len,
                          uint8_t key[AEAD_KEY_BYTES])
{
    veil_cursor cur = {kdfp, kl, 0};
    uint32_t alg = veil_cursor_u32(&cur), log2n = veil_cursor_u32(&cur), r = veil_cursor_u32(&cur),
             par = veil_cursor_u32(&cur);
    /* bounded so that a crafted file cannot ask for more than 2 GiB or hours of work */
    if (cur.bad || cur.left != SALT_BYTES || alg != KDF_SCRYPT || log2n < 10 || log2n > 22 || r < 1 || r > 32 ||
        par < 1 || par > 16 || ((uint64_t)128 * r << log2n) > ((uint64_t)1 << 31))
        return VEIL_ERR_MALFORMED;
    uint64_t maxmem = ((uint64_t)128 * r << log2n) + ((uint64_t)128 * r * par) + (1 << 20);
    static const uint8_t empty = 0;
    if (EVP_PBE_scrypt((const char *)(pass_len ? pass : &empty), pass_len, cur.p, SALT_BYTES, (uint64_t)1 << log2n, r,
                       par, maxmem, key, AEAD_KEY_BYTES) != 1)
        return VEIL_ERR_NOMEM;
    return VEIL_OK;
}

/* AES-256-GCM over in (n bytes) into out, with aad; tag written (seal) or checked (open) */
static int gcm(int seal, const uint8_t key[AEAD_KEY_BYTES], const uint8_t nonce[NONCE_BYTES], const uint8_t *aad,
               size_t aad_len, const uint8_t *in, size_t n, uint8_t *out, uint8_t tag[TAG_BYTES])
{
    EVP_CIPHER_CTX *x = EVP_CIPHER_CTX_new();
    int ok = x && EVP_CipherInit_ex(x, EVP_aes_256_gcm(), NULL, NULL, NULL, seal) == 1 &&
             EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_GCM_SET_IVLEN, NONCE_BYTES, NULL) == 1 &&
             EVP_CipherInit_ex(x, NULL, NULL, key, nonce, seal) == 1;
    int l = 0;
    ok = ok && EVP_CipherUpdate(x, NULL, &l, aad, (int)aad_len) == 1 && EVP_CipherUpdate(x, out, &l, in, (int)n) == 1;
    if (ok && !seal) ok = EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_GCM_SET_TAG, TAG_BYTES, tag) == 1;
    ok = ok && EVP_CipherFinal_ex(x, out + l, &l) == 1;
    if (ok && seal) ok = EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_GCM_GET_TAG, TAG_BYTES, tag) == 1;
    EVP_CIPHER_CTX_free(x);
    return ok;
}

veil_status veil_secret_key_serialize_sealed(const veil_secret_key *sk, const uint8_t *pass, size_t pass_len,
                                             uint8_t **out, size_t *len)
{
    if (!sk || (!pass && pass_len) || !out || !len || pass_len > (1u << 20)) return VEIL_ERR_INVALID_ARG;
    *out = NULL;
    uint8_t kdfp[16 + SALT_BYTES], nonce[NONCE_BYTES], key[AEAD_KEY_BYTES], tag[TAG_BYTES];
    veil_rng *rng = NULL;
    veil_status s = veil_rng_new_os(&rng);
    if (s != VEIL_OK) return s;
    const uint32_t f[4] = {KDF_SCRYPT, SCRYPT_LOG2_N, SCRYPT_R, SCRYPT_P};
    for (int i = 0; i < 4; i++)
        for (int b = 0; b < 4; b++) kdfp[4 * i + b] = (uint8_t)(f[i] >> (8 * b));
    veil_rng_bytes(rng, kdfp + 16, SALT_BYTES);
    veil_rng_bytes(rng, nonce, NONCE_BYTES); /* one key per salt: a random nonce is never reused */
    veil_rng_free(rng);
    veil_buf plain = {0}, prms = {0};
    put_skey(&plain, sk);
    veil_params_put(&prms, &sk->p);
    uint8_t *aad = veil_malloc(prms.len + sizeof kdfp), *sealed = veil_malloc(plain.len + 16);
    if (plain.failed || prms.failed || !aad || !sealed) s = VEIL_ERR_NOMEM;
    if (s == VEIL_OK) {
        memcpy(aad, prms.data, prms.len);
        memcpy(aad + prms.len, kdfp, sizeof kdfp);
        s = derive(kdfp, sizeof kdfp, pass, pass_len, key);
    }
    if (s == VEIL_OK && !gcm(1, key, nonce, aad, prms.len + sizeof kdfp, plain.data, plain.len, sealed, tag))
        s = VEIL_ERR_RNG;
    if (s == VEIL_OK) {
        veil_writer w;
        veil_writer_begin(&w, VEIL_KIND_SECRET_KEY, VEIL_FLAG_SEALED);
        veil_params_write_section(&w, &sk->p);
        veil_writer_section(&w, TAG_KDFP);
        veil_buf_put(&w.b, kdfp, sizeof kdfp);
        veil_writer_section(&w, TAG_SEAL);
        veil_buf_put(&w.b, nonce, NONCE_BYTES);
        veil_buf_put(&w.b, sealed, plain.len);
        veil_buf_put(&w.b, tag, TAG_BYTES);
        s = veil_writer_finish(&w, out, len);
    }
    veil_memzero(key, sizeof key);
    veil_buf_free(&plain); /* wiped */
    veil_buf_free(&prms);
    veil_free(aad);
    veil_free(sealed);
    return s;
}

veil_status veil_secret_key_deserialize_sealed(const uint8_t *buf, size_t len, const veil_params *expect,
                                               const uint8_t *pass, size_t pass_len, veil_secret_key **out)
{
    if (!buf || !out || (!pass && pass_len)) return VEIL_ERR_INVALID_ARG;
    *out = NULL;
    veil_container c;
    veil_params p;
    veil_status s = veil_open_object(buf, len, VEIL_KIND_SECRET_KEY, VEIL_FLAG_SEALED, expect, &c, &p);
    if (s != VEIL_OK) return s;
    const uint8_t *d, *kd, *pr;
    size_t dl, kl, pl;
    if (!(c.flags & VEIL_FLAG_SEALED)) {
        if ((s = veil_container_section(&c, TAG_SKEY, &d, &dl)) != VEIL_OK) return s;
        return get_skey(d, dl, &p, out);
    }
    if (veil_container_section(&c, TAG_KDFP, &kd, &kl) != VEIL_OK || veil_container_section(&c, TAG_SEAL, &d, &dl) != VEIL_OK ||
        veil_container_section(&c, TAG_PARAMS, &pr, &pl) != VEIL_OK || dl < NONCE_BYTES + TAG_BYTES + 8 ||
        kl != 16 + SALT_BYTES)
        return VEIL_ERR_MALFORMED;
    if (!pass) return VEIL_ERR_PASSPHRASE;
    size_t n = dl - NONCE_BYTES - TAG_BYTES;
    uint8_t key[AEAD_KEY_BYTES], tag[TAG_BYTES];
    uint8_t *plain = veil_malloc(n + 16), *aad = veil_malloc(pl + kl);
    s = plain && aad ? VEIL_OK : VEIL_ERR_NOMEM;
    if (s == VEIL_OK) {
        memcpy(aad, pr, pl);
        memcpy(aad + pl, kd, kl);
        memcpy(tag, d + dl - TAG_BYTES, TAG_BYTES);
        s = derive(kd, kl, pass, pass_len, key);
    }
    if (s == VEIL_OK && !gcm(0, key, d, aad, pl + kl, d + NONCE_BYTES, n, plain, tag))
        s = VEIL_ERR_PASSPHRASE; /* a wrong passphrase, or altered bytes: GCM cannot tell them apart */
    if (s == VEIL_OK) s = get_skey(plain, n, &p, out);
    veil_memzero(key, sizeof key);
    veil_free_secret(plain, n + 16);
    veil_free(aad);
    return s;
}

