#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../core/container.h"
#include "veil/tfhe.h"

/* DESIGN.md §3: lattice-estimator fit used by Concrete for 128-bit security with binary keys. */
double veil_security_min_log2_std(uint32_t dimension)
{
    double l = -0.025696778711484593 * (double)dimension + 2.675931372549016;
    return l < -62.0 ? -62.0 : l;
}

static veil_noise curve_noise(uint32_t d)
{
    return (veil_noise){VEIL_NOISE_GAUSSIAN, veil_security_min_log2_std(d), 0};
}

typedef struct {
    const char *name;
    uint32_t k, log2_N, n, pbs_l, pbs_b, ks_l, ks_b;
} concrete_row;

/* Concrete's 128-bit reference table (p_error 6.3e-5, ||w|| = 1), one row per precision 1..8. */
static const concrete_row concrete_sets[] = {
    {"C1", 5, 8, 592, 1, 15, 3, 3},   {"C2", 5, 8, 700, 1, 15, 3, 4},   {"C3", 3, 9, 722, 1, 18, 3, 4},
    {"C4", 2, 10, 801, 1, 23, 3, 4},  {"C5", 1, 11, 783, 1, 23, 5, 3},  {"C6", 1, 12, 880, 1, 22, 4, 4},
    {"C7", 1, 13, 915, 1, 22, 6, 3},  {"C8", 1, 14, 1006, 2, 15, 5, 4},
};

static const char *const names[] = {"C1", "C2", "C3", "C4", "C5", "C6", "C7", "C8", "T4", "M6", "GATE", NULL};

const char *const *veil_params_names(void) { return names; }

veil_status veil_params_named(const char *name, veil_params *out)
{
    if (!name || !out) return VEIL_ERR_INVALID_ARG;
    veil_params p = {0};
    int found = 0;
    for (size_t i = 0; i < sizeof concrete_sets / sizeof concrete_sets[0]; i++) {
        const concrete_row *r = &concrete_sets[i];
        if (strcmp(name, r->name) != 0) continue;
        p.n = r->n;
        p.k = r->k;
        p.log2_N = r->log2_N;
        p.pbs_levels = r->pbs_l;
        p.pbs_base_log = r->pbs_b;
        p.ks_levels = r->ks_l;
        p.ks_base_log = r->ks_b;
        p.lwe_noise = curve_noise(p.n);
        p.glwe_noise = curve_noise(p.k << p.log2_N);
        found = 1;
    }
    if (strcmp(name, "T4") == 0) {
        /* tfhe-rs PARAM_MESSAGE_2_CARRY_2_KS_PBS_TUNIFORM_2M128 */
        p = (veil_params){.n = 918, .k = 1, .log2_N = 11,
                          .lwe_noise = {VEIL_NOISE_TUNIFORM, 0, 45}, .glwe_noise = {VEIL_NOISE_TUNIFORM, 0, 17},
                          .pbs_base_log = 23, .pbs_levels = 1, .ks_base_log = 4, .ks_levels = 4};
        found = 1;
    } else if (strcmp(name, "M6") == 0) {
        /* the shape the optimizer gives today's models (the 6-bit digits lookups): N = 2^13, k = 1,
         * PBS 2 levels of 2^15, n = 870, KS 9 levels of 2^2; noise on the security curve */
        p = (veil_params){.n = 870, .k = 1, .log2_N = 13, .pbs_base_log = 15, .pbs_levels = 2, .ks_base_log = 2,
                          .ks_levels = 9};
        p.lwe_noise = curve_noise(p.n);
        p.glwe_noise = curve_noise(p.k << p.log2_N);
        found = 1;
    } else if (strcmp(name, "GATE") == 0) {
        /* original TFHE library gate bootstrapping set: below veil's 128-bit curve */
        p = (veil_params){.n = 630, .k = 1, .log2_N = 10,
                          .lwe_noise = {VEIL_NOISE_GAUSSIAN, -15, 0}, .glwe_noise = {VEIL_NOISE_GAUSSIAN, -25, 0},
                          .pbs_base_log = 7, .pbs_levels = 3, .ks_base_log = 2, .ks_levels = 8};
        found = 1;
    }
    if (!found) return VEIL_ERR_INVALID_ARG;
    snprintf(p.name, sizeof p.name, "%s", name);
    *out = p;
    return VEIL_OK;
}

static int noise_ok(const veil_noise *z)
{
    if (z->kind == VEIL_NOISE_GAUSSIAN) return isfinite(z->log2_std) && z->log2_std <= -1 && z->log2_std >= -64;
    if (z->kind == VEIL_NOISE_TUNIFORM) return z->bound_log2 <= 60;
    return 0;
}

veil_status veil_params_check(const veil_params *p)
{
    if (!p) return VEIL_ERR_INVALID_ARG;
    if (p->n < 1 || p->n > (1u << 16)) return VEIL_ERR_INVALID_ARG;
    if (p->k < 1 || p->k > 16) return VEIL_ERR_INVALID_ARG;
    if (p->log2_N < 8 || p->log2_N > 16) return VEIL_ERR_INVALID_ARG;
    if (!noise_ok(&p->lwe_noise) || !noise_ok(&p->glwe_noise)) return VEIL_ERR_INVALID_ARG;
    if (p->pbs_base_log < 1 || p->pbs_levels < 1 || p->pbs_base_log * p->pbs_levels > 63) return VEIL_ERR_INVALID_ARG;
    if (p->ks_base_log < 1 || p->ks_levels < 1 || p->ks_base_log * p->ks_levels > 63) return VEIL_ERR_INVALID_ARG;
    if (p->ks_in_dim && (p->ks_in_dim < veil_params_big_lwe_dim(p) || p->ks_in_dim > (1u << 17)))
        return VEIL_ERR_INVALID_ARG;
    return VEIL_OK;
}

double veil_noise_variance(const veil_noise *z)
{
    if (z->kind == VEIL_NOISE_TUNIFORM) {
        /* Var = (2^(2b+1) + 1) / 6 in units of 2^-64 */
        double b = (double)z->bound_log2;
        return (exp2(2 * b + 1) + 1) / 6.0 * 0x1p-128;
    }
    return exp2(2 * z->log2_std);
}

int veil_params_is_secure(const veil_params *p)
{
    double l1 = 0.5 * log2(veil_noise_variance(&p->lwe_noise));
    double l2 = 0.5 * log2(veil_noise_variance(&p->glwe_noise));
    return l1 >= veil_security_min_log2_std(p->n) && l2 >= veil_security_min_log2_std(veil_params_big_lwe_dim(p));
}

uint64_t veil_params_fingerprint(const veil_params *p)
{
    veil_buf b = {0};
    uint8_t buf[128];
    b.data = buf;
    b.cap = sizeof buf; /* never reallocated: the encoding below is at most 84 bytes */
    veil_buf_put_u32(&b, p->n);
    veil_buf_put_u32(&b, p->k);
    veil_buf_put_u32(&b, p->log2_N);
    const veil_noise *zs[2] = {&p->lwe_noise, &p->glwe_noise};
    for (int i = 0; i < 2; i++) {
        veil_buf_put_u32(&b, (uint32_t)zs[i]->kind);
        veil_buf_put_f64(&b, zs[i]->kind == VEIL_NOISE_GAUSSIAN ? zs[i]->log2_std : 0.0);
        veil_buf_put_u32(&b, zs[i]->kind == VEIL_NOISE_TUNIFORM ? zs[i]->bound_log2 : 0);
    }
    veil_buf_put_u32(&b, p->pbs_base_log);
    veil_buf_put_u32(&b, p->pbs_levels);
    veil_buf_put_u32(&b, p->ks_base_log);
    veil_buf_put_u32(&b, p->ks_levels);
    if (p->ks_in_dim && p->ks_in_dim != veil_params_big_lwe_dim(p)) veil_buf_put_u32(&b, p->ks_in_dim);
    if (p->sets_fingerprint) veil_buf_put_u64(&b, p->sets_fingerprint);
    uint8_t h[32];
    veil_sha256(b.data, b.len, h);
    uint64_t f = 0;
    for (int i = 0; i < 8; i++) f |= (uint64_t)h[i] << (8 * i);
    return f;
}

static int same_noise(const veil_noise *a, const veil_noise *b)
{
    if (a->kind != b->kind) return 0;
    return a->kind == VEIL_NOISE_GAUSSIAN ? a->log2_std == b->log2_std : a->bound_log2 == b->bound_log2;
}

int veil_params_same(const veil_params *a, const veil_params *b)
{
    return a->n == b->n && a->k == b->k && a->log2_N == b->log2_N && same_noise(&a->lwe_noise, &b->lwe_noise) &&
           same_noise(&a->glwe_noise, &b->glwe_noise) && a->pbs_base_log == b->pbs_base_log &&
           a->pbs_levels == b->pbs_levels && a->ks_base_log == b->ks_base_log && a->ks_levels == b->ks_levels &&
           veil_params_ks_dim(a) == veil_params_ks_dim(b) && a->sets_fingerprint == b->sets_fingerprint;
}

veil_status veil_params_shared(const veil_params *parts, size_t count, veil_params *out)
{
    if (!parts || !out || count == 0 || count > VEIL_MAX_PARTS) return VEIL_ERR_INVALID_ARG;
    for (size_t j = 0; j < count; j++)
        if (veil_params_check(&parts[j]) != VEIL_OK) return VEIL_ERR_INVALID_ARG;
    if (count == 1) {
        *out = parts[0];
        return VEIL_OK;
    }
    size_t top = 0;
    uint32_t n = 0;
    for (size_t j = 0; j < count; j++) {
        if (veil_params_big_lwe_dim(&parts[j]) > veil_params_big_lwe_dim(&parts[top])) top = j;
        if (parts[j].n > n) n = parts[j].n;
    }
    veil_params q = parts[top];
    memset(q.name, 0, sizeof q.name);
    snprintf(q.name, sizeof q.name, "shared-%u", (unsigned)count);
    q.n = n;
    q.ks_in_dim = 0;
    q.lwe_noise = (veil_noise){VEIL_NOISE_GAUSSIAN, veil_security_min_log2_std(n), 0};
    q.glwe_noise = (veil_noise){VEIL_NOISE_GAUSSIAN, veil_security_min_log2_std(veil_params_big_lwe_dim(&q)), 0};
    uint8_t buf[8 * VEIL_MAX_PARTS], h[32];
    size_t len = 0;
    for (size_t j = 0; j < count && j < VEIL_MAX_PARTS; j++) {
        uint64_t f = veil_params_fingerprint(&parts[j]);
        for (int b = 0; b < 8; b++) buf[len++] = (uint8_t)(f >> (8 * b));
    }
    veil_sha256(buf, len, h);
    q.sets_fingerprint = 0;
    for (int i = 0; i < 8; i++) q.sets_fingerprint |= (uint64_t)h[i] << (8 * i);
    if (!q.sets_fingerprint) q.sets_fingerprint = 1;
    *out = q;
    return VEIL_OK;
}

veil_key_sizes veil_params_key_sizes(const veil_params *p)
{
    uint64_t N = veil_params_N(p), k = p->k, n = p->n, rows = (k + 1) * p->pbs_levels;
    uint64_t big = veil_params_ks_dim(p);
    veil_key_sizes s;
    s.bsk_bytes = 8 * n * rows * (k + 1) * N;
    s.bsk_fourier_bytes = 16 * n * rows * (k + 1) * (N / 2);
    s.bsk_seeded_bytes = VEIL_SEED_BYTES + 8 * n * rows * N;
    s.ksk_bytes = 8 * big * p->ks_levels * (n + 1);
    s.ksk_seeded_bytes = VEIL_SEED_BYTES + 8 * big * p->ks_levels;
    return s;
}

uint64_t veil_encode(uint64_t m, unsigned p)
{
    uint64_t mask = (p >= 64) ? ~0ull : ((1ull << p) - 1);
    return (m & mask) << (63 - p);
}

uint64_t veil_encode_signed(int64_t m, unsigned p) { return veil_encode((uint64_t)m, p); }

uint64_t veil_decode(uint64_t phase, unsigned p)
{
    unsigned shift = 63 - p;
    uint64_t r = (phase + (1ull << (shift - 1))) >> shift;
    return r & ((1ull << p) - 1);
}

int64_t veil_decode_signed(uint64_t phase, unsigned p)
{
    uint64_t m = veil_decode(phase, p);
    if (m >> (p - 1)) return (int64_t)m - (int64_t)(1ull << p);
    return (int64_t)m;
}
