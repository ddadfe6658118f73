#include "container.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "ct.h"

static const uint8_t MAGIC[8] = {'V', 'E', 'I', 'L', 0x89, '\r', '\n', 0x1a};

/* Flags each kind may carry. */
static const uint32_t kind_flags[] = {
    [VEIL_KIND_NONE] = 0,
    [VEIL_KIND_PARAMS] = 0,
    [VEIL_KIND_SECRET_KEY] = VEIL_FLAG_SEALED,
    [VEIL_KIND_EVAL_KEYS] = VEIL_FLAG_SEEDED,
    [VEIL_KIND_LWE_CIPHERTEXTS] = VEIL_FLAG_SEEDED,
    [VEIL_KIND_CIRCUIT] = 0,
    [VEIL_KIND_CLIENT_BUNDLE] = 0,
    [VEIL_KIND_SERVER_BUNDLE] = 0,
};
_Static_assert(sizeof kind_flags / sizeof kind_flags[0] == VEIL_KIND_COUNT, "kind_flags covers every kind");

void veil_sha256(const void *data, size_t len, uint8_t out[32])
{
    unsigned int outl = 32;
    EVP_Digest(data, len, out, &outl, EVP_sha256(), NULL);
}

void veil_buf_free(veil_buf *b)
{
    veil_free_secret(b->data, b->len);
    *b = (veil_buf){0};
}

uint8_t *veil_buf_reserve(veil_buf *b, size_t n)
{
    if (b->failed) return NULL;
    if (n > SIZE_MAX - b->len) {
        b->failed = 1;
        return NULL;
    }
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n) {
            if (cap > SIZE_MAX / 2) {
                b->failed = 1;
                return NULL;
            }
            cap *= 2;
        }
        uint8_t *d = veil_malloc(cap);
        if (!d) {
            b->failed = 1;
            return NULL;
        }
        if (b->len) memcpy(d, b->data, b->len);
        veil_free_secret(b->data, b->len); /* buffers may hold key bits: leave no stale copy */
        b->data = d;
        b->cap = cap;
    }
    uint8_t *p = b->data + b->len;
    b->len += n;
    return p;
}

void veil_buf_put(veil_buf *b, const void *p, size_t n)
{
    uint8_t *d = veil_buf_reserve(b, n);
    if (d && n) memcpy(d, p, n);
}

static void put_le(uint8_t *d, uint64_t v, int bytes)
{
    for (int i = 0; i < bytes; i++) d[i] = (uint8_t)(v >> (8 * i));
}

void veil_buf_put_u16(veil_buf *b, uint16_t v)
{
    uint8_t *d = veil_buf_reserve(b, 2);
    if (d) put_le(d, v, 2);
}
void veil_buf_put_u32(veil_buf *b, uint32_t v)
{
    uint8_t *d = veil_buf_reserve(b, 4);
    if (d) put_le(d, v, 4);
}
void veil_buf_put_u64(veil_buf *b, uint64_t v)
{
    uint8_t *d = veil_buf_reserve(b, 8);
    if (d) put_le(d, v, 8);
}
void veil_buf_put_u64s(veil_buf *b, const uint64_t *v, size_t n)
{
    if (n > SIZE_MAX / 8) {
        b->failed = 1;
        return;
    }
    uint8_t *d = veil_buf_reserve(b, n * 8);
    if (!d) return;
    for (size_t i = 0; i < n; i++) put_le(d + 8 * i, v[i], 8);
}
void veil_buf_put_f64(veil_buf *b, double v)
{
    uint64_t u;
    memcpy(&u, &v, 8);
    veil_buf_put_u64(b, u);
}

void veil_writer_begin(veil_writer *w, veil_kind kind, uint32_t flags)
{
    *w = (veil_writer){0};
    veil_buf_put(&w->b, MAGIC, 8);
    veil_buf_put_u16(&w->b, VEIL_FORMAT_VERSION_MIN);
    veil_buf_put_u16(&w->b, (uint16_t)kind);
    veil_buf_put_u32(&w->b, flags);
    w->count_pos = w->b.len;
    veil_buf_put_u32(&w->b, 0);
}

void veil_writer_version(veil_writer *w, unsigned version)
{
    if (w->b.failed || w->b.len < 10) return;
    w->b.data[8] = (uint8_t)version;
    w->b.data[9] = (uint8_t)(version >> 8);
}

static void end_section(veil_writer *w)
{
    if (!w->in_section || w->b.failed) return;
    uint64_t n = w->b.len - w->len_pos - 8;
    put_le(w->b.data + w->len_pos, n, 8);
    w->in_section = 0;
}

void veil_writer_section(veil_writer *w, uint32_t tag)
{
    end_section(w);
    veil_buf_put_u32(&w->b, tag);
    w->len_pos = w->b.len;
    veil_buf_put_u64(&w->b, 0);
    w->in_section = 1;
    w->sections++;
}

veil_status veil_writer_finish(veil_writer *w, uint8_t **out, size_t *len)
{
    end_section(w);
    if (!w->b.failed && w->sections <= VEIL_CONTAINER_MAX_SECTIONS) {
        put_le(w->b.data + w->count_pos, w->sections, 4);
        uint8_t *d = veil_buf_reserve(&w->b, VEIL_CONTAINER_TRAILER_BYTES);
        if (d) veil_sha256(w->b.data, w->b.len - VEIL_CONTAINER_TRAILER_BYTES, d);
    }
    if (w->b.failed || w->sections > VEIL_CONTAINER_MAX_SECTIONS) {
        veil_status s = w->b.failed ? VEIL_ERR_NOMEM : VEIL_ERR_INVALID_ARG;
        veil_buf_free(&w->b);
        return s;
    }
    *out = w->b.data;
    *len = w->b.len;
    w->b = (veil_buf){0};
    return VEIL_OK;
}

static uint64_t get_le(const uint8_t *p, int bytes)
{
    uint64_t v = 0;
    for (int i = 0; i < bytes; i++) v |= (uint64_t)p[i] << (8 * i);
    return v;
}

veil_status veil_container_peek(const uint8_t *data, size_t len, unsigned *version, unsigned *kind)
{
    if (!data || !version || !kind) return VEIL_ERR_INVALID_ARG;
    size_t m = len < 8 ? len : 8;
    if (memcmp(data, MAGIC, m) != 0) return VEIL_ERR_BAD_MAGIC;
    if (len < 12) return VEIL_ERR_TRUNCATED;
    *version = (unsigned)get_le(data + 8, 2);
    *kind = (unsigned)get_le(data + 10, 2);
    return VEIL_OK;
}

veil_status veil_container_parse(const uint8_t *data, size_t len, veil_kind expected_kind, uint32_t allowed_flags,
                                 veil_container *c)
{
    if (!data || !c) return VEIL_ERR_INVALID_ARG;
    memset(c, 0, sizeof *c);
    if (len < 8) return len && memcmp(data, MAGIC, len) != 0 ? VEIL_ERR_BAD_MAGIC : VEIL_ERR_TRUNCATED;
    if (memcmp(data, MAGIC, 8) != 0) return VEIL_ERR_BAD_MAGIC;
    if (len < VEIL_CONTAINER_HEADER_BYTES) return VEIL_ERR_TRUNCATED;
    uint16_t version = (uint16_t)get_le(data + 8, 2);
    if (version < VEIL_FORMAT_VERSION_MIN || version > VEIL_FORMAT_VERSION) return VEIL_ERR_BAD_VERSION;
    if (len < VEIL_CONTAINER_HEADER_BYTES + VEIL_CONTAINER_TRAILER_BYTES) return VEIL_ERR_TRUNCATED;
    /* Checksum before anything else is trusted: a flipped bit anywhere is reported as corruption. */
    uint8_t sum[32];
    size_t body = len - VEIL_CONTAINER_TRAILER_BYTES;
    veil_sha256(data, body, sum);
    /* the digest of a secret key's file is computed from the key: compared in constant time, and
     * only the verdict is public (tests/tfhe/test_ct.c) */
    int sum_ok = CRYPTO_memcmp(sum, data + body, 32) == 0;
    VEIL_CT_PUBLIC(&sum_ok, sizeof sum_ok);
    uint16_t kind = (uint16_t)get_le(data + 10, 2);
    uint32_t flags = (uint32_t)get_le(data + 12, 4);
    uint32_t n = (uint32_t)get_le(data + 16, 4);
    /* Walk the section table first: a truncated file fails here with TRUNCATED, not CHECKSUM. */
    size_t off = VEIL_CONTAINER_HEADER_BYTES;
    int truncated = 0;
    if (n > VEIL_CONTAINER_MAX_SECTIONS) return sum_ok ? VEIL_ERR_MALFORMED : VEIL_ERR_CHECKSUM;
    for (uint32_t i = 0; i < n; i++) {
        if (body - off < 12) {
            truncated = 1;
            break;
        }
        c->tags[i] = (uint32_t)get_le(data + off, 4);
        uint64_t sl = get_le(data + off + 4, 8);
        off += 12;
        if (sl > body - off) {
            truncated = 1;
            break;
        }
        c->sec[i] = data + off;
        c->sec_len[i] = sl;
        off += (size_t)sl;
    }
    if (truncated) return sum_ok ? VEIL_ERR_MALFORMED : VEIL_ERR_TRUNCATED;
    if (!sum_ok) return VEIL_ERR_CHECKSUM;
    if (off != body) return VEIL_ERR_MALFORMED;
    if (kind != expected_kind) return VEIL_ERR_BAD_KIND;
    if (kind >= VEIL_KIND_COUNT || (flags & ~(allowed_flags & kind_flags[kind]))) return VEIL_ERR_BAD_FLAGS;
    c->version = version;
    c->kind = (veil_kind)kind;
    c->flags = flags;
    c->nsections = n;
    return VEIL_OK;
}

veil_status veil_container_section(const veil_container *c, uint32_t tag, const uint8_t **p, size_t *len)
{
    for (uint32_t i = 0; i < c->nsections; i++)
        if (c->tags[i] == tag) {
            *p = c->sec[i];
            *len = (size_t)c->sec_len[i];
            return VEIL_OK;
        }
    return VEIL_ERR_MALFORMED;
}

static const uint8_t *take(veil_cursor *c, size_t n)
{
    if (c->bad || c->left < n) {
        c->bad = 1;
        return NULL;
    }
    const uint8_t *p = c->p;
    c->p += n;
    c->left -= n;
    return p;
}

uint16_t veil_cursor_u16(veil_cursor *c)
{
    const uint8_t *p = take(c, 2);
    return p ? (uint16_t)get_le(p, 2) : 0;
}
uint32_t veil_cursor_u32(veil_cursor *c)
{
    const uint8_t *p = take(c, 4);
    return p ? (uint32_t)get_le(p, 4) : 0;
}
uint64_t veil_cursor_u64(veil_cursor *c)
{
    const uint8_t *p = take(c, 8);
    return p ? get_le(p, 8) : 0;
}
double veil_cursor_f64(veil_cursor *c)
{
    uint64_t u = veil_cursor_u64(c);
    double d;
    memcpy(&d, &u, 8);
    return d;
}
int veil_cursor_u64s(veil_cursor *c, uint64_t *out, size_t n)
{
    if (n > c->left / 8) {
        c->bad = 1;
        return 0;
    }
    const uint8_t *p = take(c, n * 8);
    for (size_t i = 0; i < n; i++) out[i] = get_le(p + 8 * i, 8);
    return 1;
}
int veil_cursor_bytes(veil_cursor *c, void *out, size_t n)
{
    const uint8_t *p = take(c, n);
    if (!p) return 0;
    if (n) memcpy(out, p, n);
    return 1;
}

veil_status veil_file_read_all(const char *path, size_t max_bytes, uint8_t **out, size_t *len)
{
    if (!path || !out || !len) return VEIL_ERR_INVALID_ARG;
    *out = NULL;
    *len = 0;
    veil_status s = VEIL_OK;
    uint8_t *d = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return VEIL_ERR_IO;
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        s = VEIL_ERR_IO;
        goto cleanup;
    }
    if ((uint64_t)st.st_size > max_bytes) {
        s = VEIL_ERR_MALFORMED;
        goto cleanup;
    }
    size_t n = (size_t)st.st_size;
    d = veil_malloc(n ? n : 1);
    if (!d) {
        s = VEIL_ERR_NOMEM;
        goto cleanup;
    }
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, d + got, n - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            s = VEIL_ERR_IO;
            goto cleanup;
        }
        got += (size_t)r;
    }
    *out = d;
    *len = n;
    d = NULL;
cleanup:
    veil_free(d);
    close(fd);
    return s;
}

veil_status veil_file_write_atomic(const char *path, const uint8_t *data, size_t len, unsigned mode)
{
    if (!path || (!data && len)) return VEIL_ERR_INVALID_ARG;
    size_t pl = strlen(path);
    char *tmp = veil_malloc(pl + 32);
    if (!tmp) return VEIL_ERR_NOMEM;
    snprintf(tmp, pl + 32, "%s.tmp.%ld", path, (long)getpid());
    veil_status s = VEIL_OK;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0) {
        veil_free(tmp);
        return VEIL_ERR_IO;
    }
    (void)fchmod(fd, mode); /* umask must not widen nor narrow the requested mode of key files */
    size_t done = 0;
    while (done < len) {
        ssize_t w = write(fd, data + done, len - done);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            s = VEIL_ERR_IO;
            break;
        }
        done += (size_t)w;
    }
    if (s == VEIL_OK && fsync(fd) != 0) s = VEIL_ERR_IO;
    if (close(fd) != 0 && s == VEIL_OK) s = VEIL_ERR_IO;
    if (s == VEIL_OK && rename(tmp, path) != 0) s = VEIL_ERR_IO;
    if (s != VEIL_OK) unlink(tmp);
    veil_free(tmp);
    return s;
}

void veil_buf_put_shape(veil_buf *b, int ndim, const int64_t *shape)
{
    veil_buf_put_u32(b, (uint32_t)ndim);
    for (int d = 0; d < ndim; d++) veil_buf_put_u64(b, (uint64_t)shape[d]);
}

int64_t veil_cursor_shape(veil_cursor *c, int max_dims, int *ndim, int64_t *shape)
{
    uint32_t nd = veil_cursor_u32(c);
    if (c->bad || nd > (uint32_t)max_dims) return -1;
    int64_t n = 1;
    for (uint32_t d = 0; d < nd; d++) {
        shape[d] = (int64_t)veil_cursor_u64(c);
        if (shape[d] < 1 || shape[d] > ((int64_t)1 << 32) || n > ((int64_t)1 << 40) / shape[d]) return -1;
        n *= shape[d];
    }
    for (int d = (int)nd; d < max_dims; d++) shape[d] = 0;
    *ndim = (int)nd;
    return c->bad ? -1 : n;
}
