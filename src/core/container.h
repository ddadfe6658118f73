/* Binary container format (DESIGN.md §3, docs/format.md): every artifact veil writes.
 *   header : magic[8] "VEIL\x89\r\n\x1a", u16 version, u16 kind, u32 flags, u32 section_count
 *   section: u32 tag, u64 length, length bytes
 *   trailer: 32 bytes SHA-256 of everything before it
 * Integers are little-endian and written field by field. Internal to libveil. */
#ifndef VEIL_CORE_CONTAINER_H
#define VEIL_CORE_CONTAINER_H

#include <stdint.h>
#include <stddef.h>

#include "veil/core.h"

/* Version 2 adds several parameter sets per object (precision partitions: circuits, bundles and
 * evaluation keys) and a key-switching source dimension in parameters; writers write 1 whenever
 * an object needs nothing of version 2, so single-set files read everywhere as before. */
#define VEIL_FORMAT_VERSION 2
#define VEIL_FORMAT_VERSION_MIN 1
#define VEIL_CONTAINER_HEADER_BYTES 20
#define VEIL_CONTAINER_TRAILER_BYTES 32
#define VEIL_CONTAINER_MAX_SECTIONS 64

/* Object kinds. Numbers are never reused. */
typedef enum veil_kind {
    VEIL_KIND_NONE = 0,
    VEIL_KIND_PARAMS = 1,
    VEIL_KIND_SECRET_KEY = 2,
    VEIL_KIND_EVAL_KEYS = 3,       /* bootstrapping + key-switching key; flag SEEDED when compressed */
    VEIL_KIND_LWE_CIPHERTEXTS = 4, /* a list of LWE ciphertexts; flag SEEDED when compressed */
    VEIL_KIND_CIRCUIT = 5,         /* a compiled circuit: parameters, interface, program, listing */
    VEIL_KIND_CLIENT_BUNDLE = 6,   /* a model's client side: parameters, interface, quantizers */
    VEIL_KIND_SERVER_BUNDLE = 7,   /* a model's server side: parameters, interface, program */
    VEIL_KIND_COUNT
} veil_kind;

/* Flags (bit set). Readers reject bits outside what the kind allows. */
#define VEIL_FLAG_SEEDED 1u
#define VEIL_FLAG_SEALED 2u /* secret keys: the key bits sealed under a passphrase (KDFP, SEAL) */

/* Growable byte buffer; on allocation failure it latches `failed` and ignores further writes. */
typedef struct veil_buf {
    uint8_t *data;
    size_t len, cap;
    int failed;
} veil_buf;

void veil_buf_free(veil_buf *b);
void veil_buf_put(veil_buf *b, const void *p, size_t n);
void veil_buf_put_u16(veil_buf *b, uint16_t v);
void veil_buf_put_u32(veil_buf *b, uint32_t v);
void veil_buf_put_u64(veil_buf *b, uint64_t v);
void veil_buf_put_u64s(veil_buf *b, const uint64_t *v, size_t n);
void veil_buf_put_f64(veil_buf *b, double v);
/* Reserve n bytes and return a pointer to them (NULL after a failure). */
uint8_t *veil_buf_reserve(veil_buf *b, size_t n);

/* Writer: header, then sections, then finish() appends the checksum. */
typedef struct veil_writer {
    veil_buf b;
    size_t count_pos, len_pos;
    uint32_t sections;
    int in_section;
} veil_writer;

void veil_writer_begin(veil_writer *w, veil_kind kind, uint32_t flags);
void veil_writer_section(veil_writer *w, uint32_t tag); /* ends any open section, opens a new one */
void veil_writer_version(veil_writer *w, unsigned version); /* the header's version (default 1) */
/* Ends the last section and appends the checksum. On success out and len own the bytes
 * (caller frees with veil_free); on failure nothing is returned. */
VEIL_NODISCARD veil_status veil_writer_finish(veil_writer *w, uint8_t **out, size_t *len);

/* Reader. Borrowed view of a caller-owned buffer. */
typedef struct veil_container {
    unsigned version;
    veil_kind kind;
    uint32_t flags;
    uint32_t nsections;
    uint32_t tags[VEIL_CONTAINER_MAX_SECTIONS];
    const uint8_t *sec[VEIL_CONTAINER_MAX_SECTIONS];
    uint64_t sec_len[VEIL_CONTAINER_MAX_SECTIONS];
} veil_container;

/* Checks magic, version, kind, flags (only `allowed_flags` may be set), the section table and the
 * checksum; never aborts. */
VEIL_NODISCARD veil_status veil_container_parse(const uint8_t *data, size_t len, veil_kind expected_kind,
                                                uint32_t allowed_flags, veil_container *c);
/* The header alone (first 12 bytes suffice): BAD_MAGIC, TRUNCATED, or VEIL_OK with the format
 * version and kind as written (not yet checked). For messages and early checks of uploads. */
VEIL_NODISCARD veil_status veil_container_peek(const uint8_t *data, size_t len, unsigned *version, unsigned *kind);
/* The first section with `tag`; VEIL_ERR_MALFORMED when absent. */
VEIL_NODISCARD veil_status veil_container_section(const veil_container *c, uint32_t tag, const uint8_t **p,
                                                  size_t *len);

/* Bounds-checked cursor over a section. Reads past the end latch `bad` and return 0. */
typedef struct veil_cursor {
    const uint8_t *p;
    size_t left;
    int bad;
} veil_cursor;

uint16_t veil_cursor_u16(veil_cursor *c);
uint32_t veil_cursor_u32(veil_cursor *c);
uint64_t veil_cursor_u64(veil_cursor *c);
double veil_cursor_f64(veil_cursor *c);
/* Copy n words (n bounded by what is left before any write). Returns 0 and latches bad if short. */
int veil_cursor_u64s(veil_cursor *c, uint64_t *out, size_t n);
int veil_cursor_bytes(veil_cursor *c, void *out, size_t n);

/* A shape: ndim (u32, at most max_dims) then ndim u64 dimensions. The reader accepts dimensions
 * in [1, 2^32] with a product of at most 2^40 and returns that product (-1 when malformed). */
void veil_buf_put_shape(veil_buf *b, int ndim, const int64_t *shape);
int64_t veil_cursor_shape(veil_cursor *c, int max_dims, int *ndim, int64_t *shape);

/* Whole-file helpers: veil_file_read_all and veil_file_write_atomic, public in veil/core.h. */

/* SHA-256 (OpenSSL) */
void veil_sha256(const void *data, size_t len, uint8_t out[32]);

#endif
