/*
 * veil/tfhe.h — the TFHE scheme over the 64-bit torus: parameters, keys, LWE encryption,
 * key switching, programmable bootstrapping (PBS), compressed (seeded) keys and ciphertexts,
 * serialization, noise formulas and the 128-bit security curve.
 *
 * Worked example (a 4-bit lookup table, KS→PBS atomic pattern):
 *
 *     veil_params p;           veil_params_named("C4", &p);
 *     veil_rng *rng;           veil_rng_new_os(&rng);
 *     veil_secret_key *sk;     veil_secret_key_new(&p, rng, &sk);
 *     veil_eval_keys *ek;      veil_eval_keys_new(sk, rng, &ek);
 *     uint64_t table[16];      for (int i = 0; i < 16; i++) table[i] = (i * i) % 16;
 *     veil_lut *lut;           veil_lut_new(&p, 4, table, 4, &lut);
 *     size_t big = veil_params_big_lwe_dim(&p) + 1;          // ciphertexts under the k·N key
 *     uint64_t *ct = malloc(8 * big), *res = malloc(8 * big);
 *     veil_lwe_encrypt(sk, VEIL_KEY_BIG, veil_encode(3, 4), rng, ct);
 *     veil_pbs_scratch *scr;   veil_pbs_scratch_new(&p, &scr);
 *     veil_ks_pbs(ek, lut, ct, res, scr);
 *     uint64_t m = veil_decode(veil_lwe_phase(sk, VEIL_KEY_BIG, res), 4);   // 9
 *
 * Torus elements are uint64_t (modulus 2^64). A p-bit message m is encoded as m·Δ with
 * Δ = 2^(64-p-1): one padding bit above the message. Signed messages use two's complement within
 * p bits. An LWE ciphertext of dimension d is d+1 words: mask a[0..d), then body b, with phase
 * b - Σ a_i s_i. Ownership: functions named *_new return objects the caller frees with the
 * matching *_free; pointers passed in are borrowed.
 */
#ifndef VEIL_TFHE_H
#define VEIL_TFHE_H

#include <stddef.h>
#include <stdint.h>

#include "veil/core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- parameters ----------------------------------------------------------------------------- */
typedef enum veil_noise_kind {
    VEIL_NOISE_GAUSSIAN = 0, /* rounded Gaussian, standard deviation 2^log2_std on the torus */
    VEIL_NOISE_TUNIFORM = 1, /* tfhe-rs TUniform(bound_log2): integers in [-2^b, 2^b] (units of 2^-64),
                                endpoints with probability 2^-(b+2), the others 2^-(b+1) */
    VEIL_NOISE_KIND_COUNT
} veil_noise_kind;

typedef struct veil_noise {
    veil_noise_kind kind;
    double log2_std;     /* GAUSSIAN: log2 of σ on the torus (e.g. -20.3) */
    uint32_t bound_log2; /* TUNIFORM: b */
} veil_noise;

typedef struct veil_params {
    char name[16];         /* "C4", "T4", ... or "" */
    uint32_t n;            /* LWE dimension of the small key */
    uint32_t k;            /* GLWE dimension */
    uint32_t log2_N;       /* polynomial size N = 2^log2_N, 256 ... 65536 */
    veil_noise lwe_noise;  /* noise of encryptions under the small key (key-switching key) */
    veil_noise glwe_noise; /* noise of encryptions under the GLWE / big LWE key (bootstrapping key) */
    uint32_t pbs_base_log, pbs_levels;
    uint32_t ks_base_log, ks_levels;
    /* Source dimension of the key-switching key; 0 means k·N (the set's own big key). Larger in
     * a circuit of several parameter sets (precision partitions), whose keys are prefixes of one
     * shared pair of keys: a partition then also key-switches values made under the longer big
     * keys of other partitions (DESIGN note in src/compiler/optimize.c). */
    uint32_t ks_in_dim;
    /* 0 for an ordinary set. For the shared key of several sets (veil_params_shared): the
     * fingerprint of their list, so the shared key's fingerprint names every set. */
    uint64_t sets_fingerprint;
} veil_params;

/* Named sets: "C1".."C8" (Concrete 128-bit reference sets, σ from the security curve), "T4"
 * (tfhe-rs PARAM_MESSAGE_2_CARRY_2_KS_PBS_TUNIFORM_2M128), "GATE" (original TFHE gate set; it is
 * NOT 128-bit secure under veil's curve and exists for speed comparisons only). */
VEIL_NODISCARD veil_status veil_params_named(const char *name, veil_params *out);
/* NULL-terminated list of the names above. */
const char *const *veil_params_names(void);
/* VEIL_OK when the fields are structurally usable (sizes, decompositions fit 64 bits). */
VEIL_NODISCARD veil_status veil_params_check(const veil_params *p);
/* 1 when both noises are at least the 128-bit curve for their dimension (n and k·N). */
int veil_params_is_secure(const veil_params *p);
/* The parameters of the key that several sets share (a circuit's precision partitions, each
 * keyed by a prefix of it, veil_secret_key_prefix): n the largest n; k, N and the decompositions
 * of the set with the largest k·N (the first of equals); noises at the 128-bit curve for n and
 * k·N; sets_fingerprint naming the list (for count > 1). Fresh ciphertexts and the client's secret
 * key have these parameters. count == 1 gives parts[0] itself. */
VEIL_NODISCARD veil_status veil_params_shared(const veil_params *parts, size_t count, veil_params *out);
/* 1 when a and b are the same set: every field but the name (readers of files compare with this,
 * not only with fingerprints, before trusting a set's dimensions). */
int veil_params_same(const veil_params *a, const veil_params *b);
/* 64-bit fingerprint (SHA-256 of the canonical encoding, name excluded). */
uint64_t veil_params_fingerprint(const veil_params *p);
static inline uint32_t veil_params_N(const veil_params *p) { return 1u << p->log2_N; }
static inline uint32_t veil_params_big_lwe_dim(const veil_params *p) { return p->k << p->log2_N; }
/* Dimension of the ciphertexts the key-switching key accepts: ks_in_dim (never below k·N), or k·N
 * when 0. */
static inline uint32_t veil_params_ks_dim(const veil_params *p)
{
    return p->ks_in_dim ? p->ks_in_dim : veil_params_big_lwe_dim(p);
}

/* ---- encoding --------------------------------------------------------------------------------- */
/* m mod 2^p, times Δ = 2^(64-p-1). p in 1..62. */
uint64_t veil_encode(uint64_t m, unsigned p);
uint64_t veil_encode_signed(int64_t m, unsigned p);
/* Nearest multiple of Δ, reduced mod 2^p (the padding bit is dropped). */
uint64_t veil_decode(uint64_t phase, unsigned p);
int64_t veil_decode_signed(uint64_t phase, unsigned p);

/* ---- keys -------------------------------------------------------------------------------------- */
typedef struct veil_secret_key veil_secret_key;   /* small LWE key (n bits) + GLWE key (k·N bits) */
typedef struct veil_eval_keys veil_eval_keys;     /* bootstrapping key (Fourier) + key-switching key */
typedef enum veil_key_choice { VEIL_KEY_SMALL = 0, VEIL_KEY_BIG = 1, VEIL_KEY_CHOICE_COUNT } veil_key_choice;

/* Binary keys drawn from rng (give veil_rng_new_os for real keys). */
VEIL_NODISCARD veil_status veil_secret_key_new(const veil_params *p, veil_rng *rng, veil_secret_key **out);
void veil_secret_key_free(veil_secret_key *sk); /* wipes; accepts NULL */
const veil_params *veil_secret_key_params(const veil_secret_key *sk);

/* The key of one parameter set of a circuit with several (precision partitions): the first n bits
 * of sk's small key and the first max(k·N, ks_dim) bits of its big key, which p's GLWE key reads
 * as k polynomials of N coefficients. sk's dimensions must be at least p's
 * (VEIL_ERR_INVALID_ARG otherwise). The result is an ordinary secret key of parameters p. */
VEIL_NODISCARD veil_status veil_secret_key_prefix(const veil_secret_key *sk, const veil_params *p,
                                                  veil_secret_key **out);

/* Evaluation keys: masks from a seed drawn from rng, noise from rng. */
VEIL_NODISCARD veil_status veil_eval_keys_new(const veil_secret_key *sk, veil_rng *rng, veil_eval_keys **out);
/* Deterministic core: masks expanded from mask_seed (AES-128-CTR), noise from noise_seed. */
VEIL_NODISCARD veil_status veil_eval_keys_new_derand(const veil_secret_key *sk,
                                                     const uint8_t mask_seed[VEIL_SEED_BYTES],
                                                     const uint8_t noise_seed[VEIL_SEED_BYTES],
                                                     veil_eval_keys **out);
void veil_eval_keys_free(veil_eval_keys *ek); /* frees the appended parts too */
/* A number that names this key set in this process (1, 2, ...; never reused, 0 for NULL): what
 * other processes that hold a copy cache it by (src/dist/). */
uint64_t veil_eval_keys_id(const veil_eval_keys *ek);
/* The parameters of a single set's keys; for several sets, their veil_params_shared. */
const veil_params *veil_eval_keys_params(const veil_eval_keys *ek);
/* Evaluation keys of several parameter sets travel as one object: part 0, then the parts
 * appended to it in order. append takes ownership of `next` (and of its own parts), also on
 * failure; VEIL_ERR_INVALID_ARG when more than VEIL_MAX_PARTS parts would result. */
#define VEIL_MAX_PARTS 16
VEIL_NODISCARD veil_status veil_eval_keys_append(veil_eval_keys *ek, veil_eval_keys *next);
size_t veil_eval_keys_count(const veil_eval_keys *ek);                          /* 0 for NULL */
/* Part j (NULL when out of range): the keys of its one set, for the PBS functions below. */
const veil_eval_keys *veil_eval_keys_part(const veil_eval_keys *ek, size_t j);
const veil_params *veil_eval_keys_part_params(const veil_eval_keys *ek, size_t j); /* its own set; NULL */

/* Sizes in bytes of the key material (without container overhead). */
typedef struct veil_key_sizes {
    uint64_t bsk_bytes, bsk_fourier_bytes, bsk_seeded_bytes, ksk_bytes, ksk_seeded_bytes;
} veil_key_sizes;
veil_key_sizes veil_params_key_sizes(const veil_params *p);

/* ---- LWE --------------------------------------------------------------------------------------- */
/* Encrypt a torus plaintext under the small (n) or big (k·N) key; ct has dim+1 words. */
VEIL_NODISCARD veil_status veil_lwe_encrypt(const veil_secret_key *sk, veil_key_choice which, uint64_t pt,
                                            veil_rng *rng, uint64_t *ct);
uint64_t veil_lwe_phase(const veil_secret_key *sk, veil_key_choice which, const uint64_t *ct);
/* Seeded (compressed) list: masks of ciphertext i are words [i·dim, (i+1)·dim) of the stream of
 * `seed`; only bodies are kept. Encrypt `count` plaintexts; bodies has count words. */
VEIL_NODISCARD veil_status veil_lwe_encrypt_seeded(const veil_secret_key *sk, veil_key_choice which,
                                                   const uint64_t *pts, size_t count,
                                                   const uint8_t seed[VEIL_SEED_BYTES], veil_rng *noise_rng,
                                                   uint64_t *bodies);
/* Decompress: cts has count·(dim+1) words. */
VEIL_NODISCARD veil_status veil_lwe_expand_seeded(uint32_t dim, const uint8_t seed[VEIL_SEED_BYTES],
                                                  const uint64_t *bodies, size_t count, uint64_t *cts);

/* ---- GLWE and GGSW ------------------------------------------------------------------------------- */
/* GLWE ciphertext: k mask polynomials then the body, (k+1)·N words; phase = B - Σ A_c·S_c. */
VEIL_NODISCARD veil_status veil_glwe_encrypt(const veil_secret_key *sk, const uint64_t *pt_poly, veil_rng *rng,
                                             uint64_t *ct);
/* Phase polynomial (N words) of a GLWE ciphertext; exact. */
VEIL_NODISCARD veil_status veil_glwe_phase(const veil_secret_key *sk, const uint64_t *ct, uint64_t *phase);
/* GGSW(m) for an integer m: (k+1)·ℓ GLWE rows (PBS decomposition of the parameters); row c·ℓ+j has
 * phase m·2^(64-β(j+1))·(-S_c for c < k, 1 for c = k) + noise. (k+1)²·ℓ·N words. */
VEIL_NODISCARD veil_status veil_ggsw_encrypt(const veil_secret_key *sk, int64_t m, veil_rng *rng, uint64_t *ct);
/* External product GGSW ⊡ GLWE (ggsw in the standard domain): out ≈ m·glwe. */
VEIL_NODISCARD veil_status veil_external_product(const veil_params *p, const uint64_t *ggsw, const uint64_t *glwe,
                                                 uint64_t *out);
/* CMUX: out ≈ ct0 + GGSW(b) ⊡ (ct1 - ct0), i.e. ct_b for b in {0, 1}. */
VEIL_NODISCARD veil_status veil_cmux(const veil_params *p, const uint64_t *ggsw, const uint64_t *ct0,
                                     const uint64_t *ct1, uint64_t *out);

/* ---- bootstrapping ---------------------------------------------------------------------------- */
typedef struct veil_lut veil_lut;           /* test polynomial for one table */
typedef struct veil_pbs_scratch veil_pbs_scratch; /* per-thread buffers; reuse across calls */

/* Table over p_in-bit inputs (2^p_in entries, each taken mod 2^p_out) producing p_out-bit outputs. */
VEIL_NODISCARD veil_status veil_lut_new(const veil_params *p, unsigned p_in, const uint64_t *table,
                                        unsigned p_out, veil_lut **out);
/* General form: output torus values given directly (already encoded). */
VEIL_NODISCARD veil_status veil_lut_new_torus(const veil_params *p, unsigned p_in, const uint64_t *values,
                                              veil_lut **out);
void veil_lut_free(veil_lut *lut);

VEIL_NODISCARD veil_status veil_pbs_scratch_new(const veil_params *p, veil_pbs_scratch **out);
void veil_pbs_scratch_free(veil_pbs_scratch *s);

/* Key switch big (k·N) → small (n). */
void veil_keyswitch(const veil_eval_keys *ek, const uint64_t *ct_big, uint64_t *ct_small);
/* PBS: small (n) → big (k·N) with the table. */
void veil_pbs(const veil_eval_keys *ek, const veil_lut *lut, const uint64_t *ct_small, uint64_t *ct_big,
              veil_pbs_scratch *s);
/* The atomic pattern: key switch then PBS. ct_in and ct_out may alias. */
void veil_ks_pbs(const veil_eval_keys *ek, const veil_lut *lut, const uint64_t *ct_in, uint64_t *ct_out,
                 veil_pbs_scratch *s);
/* count independent KS-PBS on `threads` threads (0: all cores). Arrays of count·(k·N+1) words. */
VEIL_NODISCARD veil_status veil_ks_pbs_batch(const veil_eval_keys *ek, const veil_lut *lut, const uint64_t *cts_in,
                                             uint64_t *cts_out, size_t count, unsigned threads);

/* The general batch: input i is in[i] (count pointers; in_base + i·(k·N+1) when in is NULL), read
 * as its value times 2^in_shift (in_shift < 64) by the key switch, so no shifted copy is made;
 * output i at out + i·(k·N+1). The batch is cut into groups that share each pass over the
 * bootstrapping key (veil_pbs_group_size), and the groups are spread over `threads` threads of
 * the pool (0: all cores). Inputs and outputs may alias element by element. */
VEIL_NODISCARD veil_status veil_ks_pbs_batch_ex(const veil_eval_keys *ek, const veil_lut *lut,
                                                const uint64_t *const *in, const uint64_t *in_base,
                                                unsigned in_shift, uint64_t *out, size_t count, unsigned threads);
/* As veil_ks_pbs_batch_ex with inputs of dimension in_dim (in_dim + 1 words each, through in[i]),
 * any dimension up to veil_params_ks_dim: a value made under a prefix of the key-switching key's
 * source key is key-switched by the rows of that prefix. Outputs as above (k·N + 1 words each). */
VEIL_NODISCARD veil_status veil_ks_pbs_batch_dim(const veil_eval_keys *ek, const veil_lut *lut,
                                                 const uint64_t *const *in, uint32_t in_dim, unsigned in_shift,
                                                 uint64_t *out, size_t count, unsigned threads);
/* Multi-value bootstrapping (Carpov, Izabachène, Mollimard, CT-RSA 2019): one blind rotation of
 * the base polynomial (veil_lut_new_mv_base: Δ/2 in every coefficient, Δ = 2^delta_log2 the scale
 * of the tables' integers) serves every table on the same input; each output is the rotated
 * accumulator times the table's factor, the sparse polynomial (1 − X)·g of its steps. The answer
 * is exactly the plain lookup's; its noise is the bootstrapping's times veil_mv_norm2(table). */
typedef struct veil_mv_factor veil_mv_factor;
VEIL_NODISCARD veil_status veil_lut_new_mv_base(const veil_params *p, unsigned delta_log2, veil_lut **out);
VEIL_NODISCARD veil_status veil_mv_factor_new(const veil_params *p, unsigned p_in, const int64_t *table,
                                              unsigned delta_log2, veil_mv_factor **out);
void veil_mv_factor_free(veil_mv_factor *f);
/* ‖(1 − X)·h‖² of a table of 2^p_in integers centred (h = g − (g(0) + g(last))/2, the centre added
 * back exactly): the sum of its squared steps, the multi-value output's noise over a plain one's. */
double veil_mv_norm2(unsigned p_in, const int64_t *table);

/* One job of a mixed batch: a key switch of `in` (dimension in_dim, read times 2^in_shift), a
 * blind rotation of `lut`'s polynomial, then either one output (factor NULL, nout 1: the plain
 * lookup) or nout outputs, output o the accumulator times factor[o] (the base polynomial of a
 * multi-value bootstrapping). Outputs k·N + 1 words. */
typedef struct {
    const uint64_t *in;
    uint32_t in_dim;
    unsigned in_shift;
    const veil_lut *lut;
    uint32_t nout;
    uint64_t *const *out;
    const veil_mv_factor *const *factor;
} veil_pbs_job;
/* count jobs of one parameter set, in groups that share each pass over the bootstrapping key,
 * spread over `threads` threads (0: all cores). */
VEIL_NODISCARD veil_status veil_ks_pbs_jobs(const veil_eval_keys *ek, const veil_pbs_job *jobs, size_t count,
                                            unsigned threads);
/* How many ciphertexts of a batch of `count` on `threads` threads share one pass over the key: as
 * many accumulators as fit in the L2 cache beside one key block and the external product's
 * scratch, at most 16, at most each thread's share. */
unsigned veil_pbs_group_size(const veil_params *p, size_t count, unsigned threads);

/* ---- kernels ------------------------------------------------------------------------------------ */
/* The hot primitives (FFT with its fused twist and rounding, decomposition, Fourier
 * multiply-accumulate, rotation, key switching) each run the fastest variant this CPU can run,
 * chosen once per process; VEIL_KERNELS=portable|avx2|avx512 forces one variant for all. */
/* "fft=avx512 decompose=avx512 mac=avx512 rotate=avx2 keyswitch=avx2": which variant serves each
 * primitive (or, when VEIL_KERNELS is invalid here, the reason). Never NULL; static storage. */
const char *veil_kernels_describe(void);
/* VEIL_OK, or VEIL_ERR_UNSUPPORTED when VEIL_KERNELS names an unknown variant or one this CPU
 * cannot run; then *msg (when msg is not NULL) is the one-line reason. Key generation, key loading
 * and PBS scratch refuse with the same status. */
VEIL_NODISCARD veil_status veil_kernels_check(const char **msg);

/* ---- serialization (docs/format.md) ------------------------------------------------------------ */
/* Writers return a buffer the caller frees with veil_free. Readers borrow the buffer, check the
 * container, and when `expect` is non-NULL refuse objects of other parameters. */
VEIL_NODISCARD veil_status veil_secret_key_serialize(const veil_secret_key *sk, uint8_t **out, size_t *len);
VEIL_NODISCARD veil_status veil_secret_key_deserialize(const uint8_t *buf, size_t len, const veil_params *expect,
                                                       veil_secret_key **out);
/* A secret key sealed under a passphrase (borrowed, any bytes): scrypt (N = 2^17, r = 8, p = 1:
 * 128 MiB, memory-hard; the parameters and a fresh 16-byte salt are stored in the file) derives a
 * 256-bit key, AES-256-GCM seals the key bits with the parameters and KDF fields as associated
 * data. The reader takes both forms: a sealed file needs the passphrase (VEIL_ERR_PASSPHRASE when
 * none or a wrong one is given, or the file was altered); a plain file ignores it. */
VEIL_NODISCARD veil_status veil_secret_key_serialize_sealed(const veil_secret_key *sk, const uint8_t *pass,
                                                            size_t pass_len, uint8_t **out, size_t *len);
VEIL_NODISCARD veil_status veil_secret_key_deserialize_sealed(const uint8_t *buf, size_t len, const veil_params *expect,
                                                              const uint8_t *pass, size_t pass_len,
                                                              veil_secret_key **out);
/* Expanded form: the bootstrapping key in the Fourier domain as held in memory (doubles) and the
 * whole key-switching key. Compressed form: mask seed + bodies (needs seeded keys that still hold
 * their bodies: made by veil_eval_keys_new* or read from a compressed file, and not compacted;
 * VEIL_ERR_UNSUPPORTED otherwise). */
VEIL_NODISCARD veil_status veil_eval_keys_serialize(const veil_eval_keys *ek, int compressed, uint8_t **out,
                                                    size_t *len);
/* Accepts both forms (and expanded files with a standard-domain BSK, as written before veil kept
 * only the Fourier one); compressed keys are expanded, then the BSK is converted to the Fourier
 * domain and the standard-domain copy is dropped. */
VEIL_NODISCARD veil_status veil_eval_keys_deserialize(const uint8_t *buf, size_t len, const veil_params *expect,
                                                      veil_eval_keys **out);
/* Drops what only compressed serialization needs (the BSK bodies, 1/(k+1) of the standard-domain
 * key): for evaluation-only holders such as the server. Afterwards only the expanded form can be
 * written. Accepts NULL. */
void veil_eval_keys_compact(veil_eval_keys *ek);
/* A list of `count` LWE ciphertexts of dimension dim (cts: count·(dim+1) words). */
VEIL_NODISCARD veil_status veil_lwe_list_serialize(const veil_params *p, uint32_t dim, const uint64_t *cts,
                                                   size_t count, uint8_t **out, size_t *len);
VEIL_NODISCARD veil_status veil_lwe_list_serialize_seeded(const veil_params *p, uint32_t dim,
                                                          const uint8_t seed[VEIL_SEED_BYTES],
                                                          const uint64_t *bodies, size_t count, uint8_t **out,
                                                          size_t *len);
/* The seeded form with clear values sent along (section CLRV: model inputs declared clear, in the
 * clear for the server); nclear 0 writes the plain seeded form. */
VEIL_NODISCARD veil_status veil_lwe_list_serialize_seeded_clear(const veil_params *p, uint32_t dim,
                                                                const uint8_t seed[VEIL_SEED_BYTES],
                                                                const uint64_t *bodies, size_t count,
                                                                const int64_t *clear, size_t nclear, uint8_t **out,
                                                                size_t *len);
/* The clear values of a seeded list (*n = 0, *vals NULL when it has none; else veil_malloc). */
VEIL_NODISCARD veil_status veil_lwe_list_clear_values(const uint8_t *buf, size_t len, int64_t **vals, size_t *n);
/* Reads either form (seeded lists are expanded). *cts is allocated with veil_malloc. */
VEIL_NODISCARD veil_status veil_lwe_list_deserialize(const uint8_t *buf, size_t len, const veil_params *expect,
                                                     uint32_t *dim, uint64_t **cts, size_t *count);

/* ---- noise and security ----------------------------------------------------------------------- */
/* All variances are on the torus (units of 1, i.e. integer variance / 2^128). */
double veil_security_min_log2_std(uint32_t dimension);  /* the curve of DESIGN.md, floored at -62 */
double veil_noise_variance(const veil_noise *nz);
double veil_var_fresh_small(const veil_params *p);       /* encryption under the small key */
double veil_var_fresh_big(const veil_params *p);         /* encryption under the big key */
double veil_var_linear(double var_in, double norm2);     /* Σ w_i c_i with ||w||_2 = norm2 */
double veil_var_keyswitch(const veil_params *p);         /* added by one key switch (from ks_dim) */
double veil_var_keyswitch_dim(const veil_params *p, uint32_t in_dim); /* from an in_dim input */
double veil_var_modswitch(const veil_params *p);         /* added by rounding to 2N */
double veil_var_pbs_fft(const veil_params *p);           /* FFT error part of the PBS */
double veil_var_pbs(const veil_params *p);               /* output of a PBS, FFT term included */
/* Probability that a KS-PBS on a p-bit message (one padding bit) decodes wrongly when its input
 * is a linear combination of PBS outputs with 2-norm `norm2`. */
double veil_tlu_p_error(const veil_params *p, unsigned bits, double norm2);

#ifdef __cplusplus
}
#endif
#endif
