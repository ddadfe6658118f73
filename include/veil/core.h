/*
 * veil/core.h — status codes, allocator hooks, CSPRNG, secure zeroing, CPU features.
 *
 * Worked example:
 *
 *     veil_rng *rng = NULL;
 *     uint8_t seed[VEIL_SEED_BYTES] = {0};        // tests only; real keys use veil_rng_new_os
 *     if (veil_rng_new_seeded(&rng, seed) != VEIL_OK) return 1;
 *     uint64_t x = veil_rng_u64(rng);
 *     veil_rng_free(rng);                          // wipes the AES state
 *
 * Every function that can fail returns a veil_status; VEIL_OK is 0. veil_status_str() names it.
 * Status numbers are never reused: append new ones before VEIL_STATUS_COUNT.
 */
#ifndef VEIL_CORE_H
#define VEIL_CORE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define VEIL_NODISCARD __attribute__((warn_unused_result))
#else
#define VEIL_NODISCARD
#endif

typedef enum veil_status {
    VEIL_OK = 0,
    VEIL_ERR_NOMEM = 1,          /* allocation failed */
    VEIL_ERR_INVALID_ARG = 2,    /* a caller passed an argument outside the documented domain */
    VEIL_ERR_IO = 3,             /* read/write/open failed */
    VEIL_ERR_TRUNCATED = 4,      /* file or buffer ends early */
    VEIL_ERR_BAD_MAGIC = 5,      /* not a veil container */
    VEIL_ERR_BAD_VERSION = 6,    /* container format version not supported */
    VEIL_ERR_BAD_KIND = 7,       /* container holds another kind of object */
    VEIL_ERR_BAD_FLAGS = 8,      /* unknown flag bits set */
    VEIL_ERR_CHECKSUM = 9,       /* checksum mismatch: the file is corrupted */
    VEIL_ERR_MALFORMED = 10,     /* a field is out of bounds or inconsistent */
    VEIL_ERR_PARAMS_MISMATCH = 11, /* object made for other parameters (fingerprint differs) */
    VEIL_ERR_RNG = 12,           /* the operating system or OpenSSL failed to give randomness */
    VEIL_ERR_UNSUPPORTED = 13,   /* valid request that this build cannot serve */
    VEIL_ERR_INSECURE = 14,      /* parameters below the 128-bit security curve */
    VEIL_ERR_GRAPH = 15,         /* an op-graph builder call was invalid (shapes, operands) */
    VEIL_ERR_COMPILE = 16,       /* the graph cannot run in FHE (a check failed) */
    VEIL_ERR_NO_PARAMS = 17,     /* no 128-bit parameters meet the precision and error target */
    VEIL_ERR_EVAL = 18,          /* evaluation failed on these inputs (e.g. table index out of range) */
    VEIL_ERR_MODEL_MISMATCH = 19, /* ciphertexts made for another model (model id differs, or none) */
    VEIL_ERR_PASSPHRASE = 20,     /* a sealed secret key: no passphrase given, or a wrong one */
    VEIL_ERR_REMOTE = 21,         /* another process of a distributed run failed or stopped answering */
    VEIL_STATUS_COUNT
} veil_status;

/* Short lowercase name of a status ("checksum mismatch"); never NULL. */
const char *veil_status_str(veil_status s);

/* ---- allocator hooks ---------------------------------------------------------------------- */
/* Every allocation of libveil's own code goes through these, and protobuf-c's and zlib's (they are
 * given them); the other libraries veil calls keep their own allocators: jansson (JSON), libcurl,
 * libmicrohttpd, OpenSSL, and libc's stdio buffers. Alignment is at least 64 bytes.
 * tests/core/test_alloc_fail.c fails each allocation in turn. */
typedef struct veil_allocator {
    void *(*alloc)(size_t size, size_t align, void *ctx); /* NULL on failure */
    void (*free)(void *ptr, void *ctx);                   /* accepts NULL */
    void *ctx;
} veil_allocator;

/* Install hooks (NULL restores the default: aligned_alloc/free). Not thread-safe: call at start-up. */
void veil_set_allocator(const veil_allocator *a);
void *veil_malloc(size_t size);          /* 64-byte aligned; NULL on failure or size 0 overflow */
void *veil_calloc(size_t n, size_t size); /* zeroed; NULL on overflow */
void veil_free(void *p);                 /* accepts NULL */
/* A block of new_size bytes holding the first min(old_size, new_size) bytes of p (which had
 * old_size), p freed; NULL on failure, p then untouched. p may be NULL (old_size 0). */
void *veil_realloc(void *p, size_t old_size, size_t new_size);

/* Overwrite n bytes with zeros in a way the compiler may not elide. */
void veil_memzero(void *p, size_t n);
/* veil_memzero then veil_free. */
void veil_free_secret(void *p, size_t n);

/* ---- CSPRNG --------------------------------------------------------------------------------- */
#define VEIL_SEED_BYTES 16
typedef struct veil_rng veil_rng;

/* AES-128-CTR keyed with 16 bytes from getrandom(2). Use for every secret. */
VEIL_NODISCARD veil_status veil_rng_new_os(veil_rng **out);
/* Deterministic AES-128-CTR stream keyed by `seed` (IV 0). Tests, and mask expansion of
 * compressed objects: the same seed always gives the same bytes on every platform. */
VEIL_NODISCARD veil_status veil_rng_new_seeded(veil_rng **out, const uint8_t seed[VEIL_SEED_BYTES]);
void veil_rng_free(veil_rng *rng); /* wipes the key; accepts NULL */
/* Fill buf with the next n bytes of the stream. */
void veil_rng_bytes(veil_rng *rng, void *buf, size_t n);
uint64_t veil_rng_u64(veil_rng *rng);
/* n little-endian 64-bit words of the stream (the mask-expansion order of docs/format.md). */
void veil_rng_u64s(veil_rng *rng, uint64_t *out, size_t n);
/* A fresh 16-byte seed from this generator. */
void veil_rng_seed(veil_rng *rng, uint8_t seed[VEIL_SEED_BYTES]);
/* Standard normal sample (Box–Muller on 53-bit uniforms). */
double veil_rng_normal(veil_rng *rng);

/* ---- CPU features ------------------------------------------------------------------------- */
enum {
    VEIL_CPU_AVX2 = 1u << 0,
    VEIL_CPU_FMA = 1u << 1,
    VEIL_CPU_AVX512F = 1u << 2,
    VEIL_CPU_AVX512DQ = 1u << 3,
    VEIL_CPU_AVX512VL = 1u << 4,
};
/* Bit set of VEIL_CPU_* detected once by CPUID (and OS support of the vector state). Which kernel
 * variants use them is veil_kernels_describe() (veil/tfhe.h). */
unsigned veil_cpu_features(void);

/* ---- parallel for --------------------------------------------------------------------------- */
/* Run fn(ctx, i, thread) for i in [0, n) on `threads` threads (0: all cores): the caller and up to
 * threads - 1 workers of the library's one persistent pool (started on first use, sized to the
 * cores, shared by concurrent callers). thread is in [0, returned count) and lets callers index
 * per-thread scratch; the returned count is min(threads, 256, n), at least 1. */
unsigned veil_parallel_for(size_t n, unsigned threads, void (*fn)(void *ctx, size_t i, unsigned thread),
                           void *ctx);
/* The threads "all cores" means: VEIL_THREADS when set (1..1024; other values are ignored), else
 * the CPUs this process may run on (its affinity), read once per process. */
unsigned veil_cpu_count(void);

/* Whole files. read_all refuses files larger than max_bytes (*out: veil_free). write_atomic writes
 * a temporary file beside `path` with `mode`, fsyncs and renames it, so `path` is never half
 * written. */
VEIL_NODISCARD veil_status veil_file_read_all(const char *path, size_t max_bytes, uint8_t **out, size_t *len);
VEIL_NODISCARD veil_status veil_file_write_atomic(const char *path, const uint8_t *data, size_t len,
                                                  unsigned mode);

#ifdef __cplusplus
}
#endif
#endif
