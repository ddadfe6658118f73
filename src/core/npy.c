/* NumPy .npy reading and writing (format: numpy/lib/format.py's documented layout: magic
 * "\x93NUMPY", major, minor, header length (u16 in 1.0, u32 in 2.0/3.0), a Python dict literal
 * with 'descr', 'fortran_order', 'shape', padded with spaces to a multiple of 64, then data). */
#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "container.h"
#include "veil/npy.h"

#define NPY_MAX_BYTES ((size_t)1 << 34)

static _Thread_local char npy_err[256];

static veil_status fail(veil_status st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(npy_err, sizeof npy_err, fmt, ap);
    va_end(ap);
    return st;
}

const char *veil_npy_last_error(void) { return npy_err; }

veil_status veil_array_new(veil_array *a, int ndim, const int64_t *shape)
{
    memset(a, 0, sizeof *a);
    if (ndim < 0 || ndim > VEIL_MAX_DIMS) return VEIL_ERR_INVALID_ARG;
    int64_t size = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0 || (shape[i] > 0 && size > INT64_MAX / 8 / shape[i])) return VEIL_ERR_INVALID_ARG;
        size *= shape[i];
        a->shape[i] = shape[i];
    }
    a->ndim = ndim;
    a->size = size;
    a->data = veil_calloc((size_t)size + 1, sizeof(double));
    if (!a->data) {
        memset(a, 0, sizeof *a);
        return VEIL_ERR_NOMEM;
    }
    return VEIL_OK;
}

void veil_array_free(veil_array *a)
{
    if (!a) return;
    veil_free(a->data);
    memset(a, 0, sizeof *a);
}

/* Finds 'key' in the header dict and returns a pointer just after its ':' (NULL if absent). */
static const char *dict_value(const char *h, const char *key)
{
    char pat[32];
    snprintf(pat, sizeof pat, "'%s'", key);
    const char *p = strstr(h, pat);
    if (!p) return NULL;
    p += strlen(pat);
    while (*p == ' ') p++;
    if (*p != ':') return NULL;
    p++;
    while (*p == ' ') p++;
    return p;
}

typedef struct {
    char kind; /* f, i, u, b */
    int size;
    int swap;
} npy_descr;

static int host_little(void)
{
    const uint16_t one = 1;
    return *(const uint8_t *)&one == 1;
}

static double read_elem(const uint8_t *p, const npy_descr *d)
{
    uint8_t b[8];
    for (int i = 0; i < d->size; i++) b[i] = d->swap ? p[d->size - 1 - i] : p[i];
    switch (d->kind) {
    case 'f':
        if (d->size == 4) { float f; memcpy(&f, b, 4); return f; }
        if (d->size == 8) { double f; memcpy(&f, b, 8); return f; }
        { /* IEEE half */
            uint16_t h; memcpy(&h, b, 2);
            int e = (h >> 10) & 31, m = h & 1023;
            double v = e == 0 ? ldexp(m, -24) : e == 31 ? (m ? NAN : INFINITY) : ldexp(m + 1024, e - 25);
            return (h & 0x8000) ? -v : v;
        }
    case 'i':
        switch (d->size) {
        case 1: { int8_t v; memcpy(&v, b, 1); return v; }
        case 2: { int16_t v; memcpy(&v, b, 2); return v; }
        case 4: { int32_t v; memcpy(&v, b, 4); return v; }
        default: { int64_t v; memcpy(&v, b, 8); return (double)v; }
        }
    case 'u':
        switch (d->size) {
        case 1: return b[0];
        case 2: { uint16_t v; memcpy(&v, b, 2); return v; }
        case 4: { uint32_t v; memcpy(&v, b, 4); return v; }
        default: { uint64_t v; memcpy(&v, b, 8); return (double)v; }
        }
    default: return b[0] != 0;
    }
}

veil_status veil_npy_parse(const uint8_t *data, size_t len, veil_array *out)
{
    memset(out, 0, sizeof *out);
    if (len < 10 || memcmp(data, "\x93NUMPY", 6) != 0) return fail(VEIL_ERR_BAD_MAGIC, "not a .npy file (bad magic)");
    unsigned major = data[6];
    size_t hlen, off;
    if (major == 1) {
        hlen = (size_t)data[8] | (size_t)data[9] << 8;
        off = 10;
    } else if (major == 2 || major == 3) {
        if (len < 12) return fail(VEIL_ERR_TRUNCATED, ".npy header truncated");
        hlen = (size_t)data[8] | (size_t)data[9] << 8 | (size_t)data[10] << 16 | (size_t)data[11] << 24;
        off = 12;
    } else {
        return fail(VEIL_ERR_BAD_VERSION, ".npy format version %u is not supported", major);
    }
    if (hlen > 1 << 20 || off + hlen > len) return fail(VEIL_ERR_TRUNCATED, ".npy header truncated");
    char *h = veil_malloc(hlen + 1);
    if (!h) return VEIL_ERR_NOMEM;
    memcpy(h, data + off, hlen);
    h[hlen] = 0;
    veil_status st = VEIL_OK;
    npy_descr d = {0};
    int fortran = 0, ndim = 0;
    int64_t shape[VEIL_MAX_DIMS];
    const char *v = dict_value(h, "descr");
    if (!v || *v != '\'' || strlen(v) < 5) {
        st = fail(VEIL_ERR_MALFORMED, ".npy header has no 'descr'");
        goto done;
    }
    char order = v[1];
    d.kind = v[2];
    d.size = atoi(v + 3);
    if (v[3] < '0' || v[3] > '9' || (order != '<' && order != '>' && order != '|' && order != '=')) {
        st = fail(VEIL_ERR_UNSUPPORTED, ".npy dtype %.8s is not supported", v);
        goto done;
    }
    int ok = (d.kind == 'f' && (d.size == 2 || d.size == 4 || d.size == 8)) ||
             ((d.kind == 'i' || d.kind == 'u') && (d.size == 1 || d.size == 2 || d.size == 4 || d.size == 8)) ||
             (d.kind == 'b' && d.size == 1);
    if (!ok) {
        st = fail(VEIL_ERR_UNSUPPORTED, ".npy dtype %.8s is not supported (float, int, uint or bool)", v);
        goto done;
    }
    d.swap = d.size > 1 && ((order == '<' && !host_little()) || (order == '>' && host_little()));
    v = dict_value(h, "fortran_order");
    if (!v || (strncmp(v, "True", 4) != 0 && strncmp(v, "False", 5) != 0)) {
        st = fail(VEIL_ERR_MALFORMED, ".npy header has no 'fortran_order'");
        goto done;
    }
    fortran = v[0] == 'T';
    v = dict_value(h, "shape");
    if (!v || *v != '(') {
        st = fail(VEIL_ERR_MALFORMED, ".npy header has no 'shape'");
        goto done;
    }
    v++;
    for (;;) {
        while (*v == ' ' || *v == ',') v++;
        if (*v == ')') break;
        if (!isdigit((unsigned char)*v) || ndim == VEIL_MAX_DIMS) {
            st = fail(VEIL_ERR_MALFORMED, ".npy shape is malformed or has more than %d axes", VEIL_MAX_DIMS);
            goto done;
        }
        char *end;
        long long x = strtoll(v, &end, 10);
        if (x < 0 || x > ((int64_t)1 << 40)) {
            st = fail(VEIL_ERR_MALFORMED, ".npy shape entry out of range");
            goto done;
        }
        shape[ndim++] = x;
        v = end;
    }
    size_t total = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] && total > NPY_MAX_BYTES / (size_t)shape[i]) {
            st = fail(VEIL_ERR_MALFORMED, ".npy array too large");
            goto done;
        }
        total *= (size_t)shape[i];
    }
    off += hlen;
    if (total > (len - off) / (size_t)d.size) {
        st = fail(VEIL_ERR_TRUNCATED, ".npy data truncated: %zu elements of %d bytes declared, %zu bytes present", total,
                  d.size, len - off);
        goto done;
    }
    if ((st = veil_array_new(out, ndim, shape)) != VEIL_OK) goto done;
    size_t strides[VEIL_MAX_DIMS] = {0}, stride = 1;
    for (int a = ndim - 1; a >= 0; a--) strides[a] = stride, stride *= (size_t)shape[a];
    for (size_t i = 0; i < total; i++) {
        size_t dst = i;
        if (fortran && ndim > 1) { /* file index i is column-major: map it to row-major */
            size_t r = i;
            dst = 0;
            for (int a = 0; a < ndim; a++) {
                dst += (r % (size_t)shape[a]) * strides[a];
                r /= (size_t)shape[a];
            }
        }
        out->data[dst] = read_elem(data + off + i * (size_t)d.size, &d);
    }
done:
    veil_free(h);
    return st;
}

/* A whole file through one of the parsers; the reason names the file. */
static veil_status load_file(const char *path, veil_status (*parse)(const uint8_t *, size_t, void *), void *out)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    veil_status st = veil_file_read_all(path, NPY_MAX_BYTES, &buf, &len);
    if (st != VEIL_OK) return fail(st, "%s: cannot read (%s)", path, veil_status_str(st));
    st = parse(buf, len, out);
    if (st != VEIL_OK) {
        char why[256];
        snprintf(why, sizeof why, "%s", npy_err);
        fail(st, "%s: %s", path, why);
    }
    veil_free(buf);
    return st;
}

static veil_status parse_npy(const uint8_t *d, size_t len, void *out) { return veil_npy_parse(d, len, out); }

veil_status veil_npy_load(const char *path, veil_array *out)
{
    memset(out, 0, sizeof *out);
    return load_file(path, parse_npy, out);
}

veil_status veil_npy_encode(const veil_array *a, veil_npy_dtype dtype, uint8_t **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    if (!a || a->ndim < 0 || a->ndim > VEIL_MAX_DIMS || (unsigned)dtype >= VEIL_NPY_DTYPE_COUNT)
        return VEIL_ERR_INVALID_ARG;
    static const char *const descr[] = {"<f4", "<f8", "<i8"};
    static const int esize[] = {4, 8, 8};
    _Static_assert(sizeof descr / sizeof *descr == VEIL_NPY_DTYPE_COUNT, "one descr per dtype");
    char h[512], shp[256] = "";
    size_t k = 0;
    for (int i = 0; i < a->ndim; i++)
        k += (size_t)snprintf(shp + k, sizeof shp - k, "%lld%s", (long long)a->shape[i],
                              (a->ndim == 1 || i + 1 < a->ndim) ? "," : "");
    int n = snprintf(h, sizeof h, "{'descr': '%s', 'fortran_order': False, 'shape': (%s), }", descr[dtype], shp);
    size_t hl = (size_t)n + 1, pad = (64 - (10 + hl) % 64) % 64;
    hl += pad;
    size_t total = 10 + hl + (size_t)a->size * (size_t)esize[dtype];
    uint8_t *b = veil_malloc(total);
    if (!b) return VEIL_ERR_NOMEM;
    memcpy(b, "\x93NUMPY\x01\x00", 8);
    b[8] = (uint8_t)(hl & 0xff);
    b[9] = (uint8_t)(hl >> 8);
    memcpy(b + 10, h, (size_t)n);
    memset(b + 10 + n, ' ', pad);
    b[10 + hl - 1] = '\n';
    uint8_t *p = b + 10 + hl;
    for (int64_t i = 0; i < a->size; i++) {
        uint64_t bits = 0;
        if (dtype == VEIL_NPY_F32) {
            float f = (float)a->data[i];
            uint32_t u;
            memcpy(&u, &f, 4);
            bits = u;
        } else if (dtype == VEIL_NPY_F64) {
            memcpy(&bits, &a->data[i], 8);
        } else {
            int64_t v = (int64_t)llround(a->data[i]);
            memcpy(&bits, &v, 8);
        }
        for (int j = 0; j < esize[dtype]; j++) *p++ = (uint8_t)(bits >> (8 * j));
    }
    *out = b;
    *len = total;
    return VEIL_OK;
}

veil_status veil_npy_save(const char *path, const veil_array *a, veil_npy_dtype dtype)
{
    uint8_t *b;
    size_t len;
    veil_status st = veil_npy_encode(a, dtype, &b, &len);
    if (st != VEIL_OK) return fail(st, "%s: cannot encode the array", path);
    st = veil_file_write_atomic(path, b, len, 0644);
    veil_free(b);
    if (st != VEIL_OK) return fail(st, "%s: cannot write (%s)", path, veil_status_str(st));
    return VEIL_OK;
}

/* ---- .npz: a ZIP archive of .npy members (numpy.savez stores them, numpy.savez_compressed
 * deflates them). The layout read is PKWARE's APPNOTE: the end-of-central-directory record (and
 * its ZIP64 form), central directory entries (ZIP64 extra field 0x0001 for 32-bit overflows),
 * each member's local header only for where its data starts; CRC-32 checked. ---------------- */

#define NPZ_MAX_MEMBERS 4096

static uint32_t rd16(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8; }
static uint32_t rd32(const uint8_t *p) { return rd16(p) | rd16(p + 2) << 16; }
static uint64_t rd64(const uint8_t *p) { return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32; }

static void *z_alloc(void *opaque, unsigned items, unsigned size)
{
    (void)opaque;
    return veil_calloc(items, size);
}
static void z_free(void *opaque, void *p)
{
    (void)opaque;
    veil_free(p);
}

/* raw DEFLATE data → exactly usize bytes */
static veil_status inflate_member(const uint8_t *src, size_t clen, uint8_t *dst, size_t usize)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    z.zalloc = z_alloc;
    z.zfree = z_free;
    if (inflateInit2(&z, -15) != Z_OK) return VEIL_ERR_NOMEM;
    veil_status st = VEIL_OK;
    size_t in_done = 0, out_done = 0;
    int r = Z_OK;
    while (r == Z_OK) {
        size_t ci = clen - in_done, co = usize - out_done;
        z.next_in = (Bytef *)(uintptr_t)(src + in_done);
        z.avail_in = ci > (1u << 30) ? (1u << 30) : (uInt)ci;
        z.next_out = dst + out_done;
        z.avail_out = co > (1u << 30) ? (1u << 30) : (uInt)co;
        uInt ai = z.avail_in, ao = z.avail_out;
        r = inflate(&z, Z_NO_FLUSH);
        in_done += ai - z.avail_in;
        out_done += ao - z.avail_out;
        if (r == Z_OK && ai == z.avail_in && ao == z.avail_out) r = Z_DATA_ERROR; /* no progress */
    }
    if (r != Z_STREAM_END || out_done != usize) st = r == Z_MEM_ERROR ? VEIL_ERR_NOMEM : VEIL_ERR_MALFORMED;
    inflateEnd(&z);
    return st;
}

void veil_npz_free(veil_npz *z)
{
    if (!z) return;
    for (size_t i = 0; i < z->count; i++) {
        veil_free(z->names[i]);
        veil_array_free(&z->arrays[i]);
    }
    veil_free(z->names);
    veil_free(z->arrays);
    memset(z, 0, sizeof *z);
}

const veil_array *veil_npz_get(const veil_npz *z, const char *name)
{
    for (size_t i = 0; i < z->count; i++)
        if (!strcmp(z->names[i], name)) return &z->arrays[i];
    return NULL;
}

veil_status veil_npz_parse(const uint8_t *d, size_t len, veil_npz *out)
{
    memset(out, 0, sizeof *out);
    if (len < 22) return fail(VEIL_ERR_TRUNCATED, "not a .npz archive (%zu bytes)", len);
    size_t eocd = SIZE_MAX;
    for (size_t p = len - 22 + 1, stop = len > 22 + 65535 ? len - 22 - 65535 : 0; p-- > stop;)
        if (rd32(d + p) == 0x06054b50 && p + 22 + rd16(d + p + 20) == len) {
            eocd = p;
            break;
        }
    if (eocd == SIZE_MAX) return fail(VEIL_ERR_BAD_MAGIC, "not a .npz archive (no ZIP end-of-directory record)");
    uint64_t count = rd16(d + eocd + 10), cd_size = rd32(d + eocd + 12), cd_off = rd32(d + eocd + 16);
    if (rd16(d + eocd + 4) != 0 || rd16(d + eocd + 6) != 0 || rd16(d + eocd + 8) != count)
        return fail(VEIL_ERR_UNSUPPORTED, ".npz archive split over several disks");
    if (eocd >= 20 && rd32(d + eocd - 20) == 0x07064b50) { /* ZIP64 */
        uint64_t z64 = rd64(d + eocd - 12);
        if (z64 > eocd - 20 || eocd - 20 - z64 < 56 || rd32(d + z64) != 0x06064b50)
            return fail(VEIL_ERR_MALFORMED, ".npz archive: bad ZIP64 end-of-directory record");
        count = rd64(d + z64 + 32), cd_size = rd64(d + z64 + 40), cd_off = rd64(d + z64 + 48);
    }
    if (count > NPZ_MAX_MEMBERS) return fail(VEIL_ERR_UNSUPPORTED, ".npz archive of %llu members (at most %d)",
                                            (unsigned long long)count, NPZ_MAX_MEMBERS);
    if (cd_off > len || cd_size > len - cd_off) return fail(VEIL_ERR_TRUNCATED, ".npz archive: its directory lies past its end");
    out->names = veil_calloc(count ? count : 1, sizeof(char *));
    out->arrays = veil_calloc(count ? count : 1, sizeof(veil_array));
    if (!out->names || !out->arrays) {
        veil_npz_free(out);
        return fail(VEIL_ERR_NOMEM, "out of memory");
    }
    veil_status st = VEIL_OK;
    size_t p = (size_t)cd_off, end = (size_t)(cd_off + cd_size);
    for (uint64_t i = 0; i < count && st == VEIL_OK; i++) {
        if (end - p < 46 || rd32(d + p) != 0x02014b50) {
            st = fail(VEIL_ERR_MALFORMED, ".npz archive: directory entry %llu is malformed", (unsigned long long)i);
            break;
        }
        uint32_t flags = rd16(d + p + 8), method = rd16(d + p + 10), crc = rd32(d + p + 16);
        uint64_t csize = rd32(d + p + 20), usize = rd32(d + p + 24), loff = rd32(d + p + 42);
        size_t nl = rd16(d + p + 28), el = rd16(d + p + 30), cl = rd16(d + p + 32);
        if (end - p - 46 < nl + el + cl) {
            st = fail(VEIL_ERR_MALFORMED, ".npz archive: directory entry %llu is truncated", (unsigned long long)i);
            break;
        }
        const uint8_t *name = d + p + 46, *ex = name + nl;
        for (size_t e = 0; e + 4 <= el;) { /* the ZIP64 extra field: only the overflowing fields, in order */
            size_t id = rd16(ex + e), sz = rd16(ex + e + 2), q = e + 4;
            if (e + 4 + sz > el) break;
            if (id == 1) {
                if (usize == 0xffffffffu && q + 8 <= e + 4 + sz) usize = rd64(ex + q), q += 8;
                if (csize == 0xffffffffu && q + 8 <= e + 4 + sz) csize = rd64(ex + q), q += 8;
                if (loff == 0xffffffffu && q + 8 <= e + 4 + sz) loff = rd64(ex + q);
            }
            e += 4 + sz;
        }
        char member[256];
        if (nl < 5 || nl >= sizeof member || memcmp(name + nl - 4, ".npy", 4) != 0) {
            st = fail(VEIL_ERR_MALFORMED, ".npz archive: member '%.*s' is not a .npy file", (int)(nl < 200 ? nl : 200),
                      (const char *)name);
            break;
        }
        memcpy(member, name, nl - 4);
        member[nl - 4] = 0;
        if (memchr(member, 0, nl - 4)) {
            st = fail(VEIL_ERR_MALFORMED, ".npz archive: a member name holds a NUL byte");
            break;
        }
        if (flags & 1) {
            st = fail(VEIL_ERR_UNSUPPORTED, ".npz archive: member '%s' is encrypted", member);
            break;
        }
        if (method != 0 && method != 8) {
            st = fail(VEIL_ERR_UNSUPPORTED, ".npz archive: member '%s' is compressed with method %u (stored and "
                                            "deflate only)", member, method);
            break;
        }
        if (loff > len || len - loff < 30 || rd32(d + loff) != 0x04034b50) {
            st = fail(VEIL_ERR_MALFORMED, ".npz archive: member '%s' has no local header", member);
            break;
        }
        uint64_t data = loff + 30 + rd16(d + loff + 26) + rd16(d + loff + 28);
        if (data > len || csize > len - data) {
            st = fail(VEIL_ERR_TRUNCATED, ".npz archive: member '%s' is truncated", member);
            break;
        }
        if (usize > NPY_MAX_BYTES || (method == 0 && usize != csize) || (method == 8 && usize / 1032 > csize + 1)) {
            st = fail(VEIL_ERR_MALFORMED, ".npz archive: member '%s' claims %llu bytes from %llu", member,
                      (unsigned long long)usize, (unsigned long long)csize);
            break;
        }
        for (uint64_t j = 0; j < i; j++)
            if (!strcmp(out->names[j], member)) {
                st = fail(VEIL_ERR_MALFORMED, ".npz archive: member '%s' appears twice", member);
                break;
            }
        if (st != VEIL_OK) break;
        const uint8_t *img = d + data;
        uint8_t *buf = NULL;
        if (method == 8) {
            if (!(buf = veil_malloc(usize ? (size_t)usize : 1))) {
                st = fail(VEIL_ERR_NOMEM, "out of memory");
                break;
            }
            if ((st = inflate_member(d + data, (size_t)csize, buf, (size_t)usize)) != VEIL_OK) {
                veil_free(buf);
                st = fail(st, ".npz archive: member '%s' does not inflate", member);
                break;
            }
            img = buf;
        }
        if ((uint32_t)crc32_z(crc32(0L, Z_NULL, 0), img, (z_size_t)usize) != crc) {
            veil_free(buf);
            st = fail(VEIL_ERR_CHECKSUM, ".npz archive: member '%s' fails its CRC-32 (corrupted)", member);
            break;
        }
        st = veil_npy_parse(img, (size_t)usize, &out->arrays[i]);
        veil_free(buf);
        if (st != VEIL_OK) {
            char why[160];
            snprintf(why, sizeof why, "%.159s", npy_err);
            st = fail(st, ".npz archive: member '%.64s': %s", member, why);
            break;
        }
        size_t ml = strlen(member) + 1;
        if (!(out->names[i] = veil_malloc(ml))) {
            veil_array_free(&out->arrays[i]);
            st = fail(VEIL_ERR_NOMEM, "out of memory");
            break;
        }
        memcpy(out->names[i], member, ml);
        out->count = (size_t)i + 1;
        p += 46 + nl + el + cl;
    }
    if (st != VEIL_OK) veil_npz_free(out);
    return st;
}

static veil_status parse_npz(const uint8_t *d, size_t len, void *out) { return veil_npz_parse(d, len, out); }

veil_status veil_npz_load(const char *path, veil_npz *out)
{
    memset(out, 0, sizeof *out);
    return load_file(path, parse_npz, out);
}

static void wr16(uint8_t *p, uint32_t v) { p[0] = (uint8_t)v, p[1] = (uint8_t)(v >> 8); }
static void wr32(uint8_t *p, uint32_t v) { wr16(p, v & 0xffff), wr16(p + 2, v >> 16); }

veil_status veil_npz_save(const char *path, size_t n, const char *const *names, const veil_array *const *arrays,
                          veil_npy_dtype dtype)
{
    if (n == 0 || n > NPZ_MAX_MEMBERS || !names || !arrays) return fail(VEIL_ERR_INVALID_ARG, "%s: no arrays to write", path);
    uint8_t **img = veil_calloc(n, sizeof(uint8_t *));
    size_t *ilen = veil_calloc(n, sizeof(size_t)), total = 22;
    uint32_t *crc = veil_calloc(n, sizeof(uint32_t));
    uint8_t *b = NULL;
    veil_status st = img && ilen && crc ? VEIL_OK : fail(VEIL_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n && st == VEIL_OK; i++) {
        size_t nl = strlen(names[i]);
        if (nl == 0 || nl > 200) {
            st = fail(VEIL_ERR_INVALID_ARG, "%s: array name '%s' is empty or too long", path, names[i]);
            break;
        }
        if ((st = veil_npy_encode(arrays[i], dtype, &img[i], &ilen[i])) != VEIL_OK) {
            fail(st, "%s: cannot encode array '%s'", path, names[i]);
            break;
        }
        if (ilen[i] >= 0xffffffffu) {
            st = fail(VEIL_ERR_UNSUPPORTED, "%s: array '%s' is 4 GiB or more", path, names[i]);
            break;
        }
        crc[i] = (uint32_t)crc32_z(crc32(0L, Z_NULL, 0), img[i], ilen[i]);
        total += 30 + 46 + 2 * (nl + 4) + ilen[i];
    }
    if (st == VEIL_OK && total >= 0xffffffffu) st = fail(VEIL_ERR_UNSUPPORTED, "%s: 4 GiB or more", path);
    if (st == VEIL_OK && !(b = veil_malloc(total))) st = fail(VEIL_ERR_NOMEM, "out of memory");
    if (st == VEIL_OK) {
        size_t p = 0, *off = ilen; /* reuse: offsets are written as we go */
        size_t *loff = veil_calloc(n, sizeof(size_t));
        if (!loff) st = fail(VEIL_ERR_NOMEM, "out of memory");
        for (size_t i = 0; i < n && st == VEIL_OK; i++) { /* local headers and data, stored */
            size_t nl = strlen(names[i]) + 4;
            loff[i] = p;
            memset(b + p, 0, 30);
            wr32(b + p, 0x04034b50), wr16(b + p + 4, 20), wr16(b + p + 10, 0), wr16(b + p + 12, 0x21);
            wr32(b + p + 14, crc[i]), wr32(b + p + 18, (uint32_t)off[i]), wr32(b + p + 22, (uint32_t)off[i]);
            wr16(b + p + 26, (uint32_t)nl);
            memcpy(b + p + 30, names[i], nl - 4);
            memcpy(b + p + 30 + nl - 4, ".npy", 4);
            memcpy(b + p + 30 + nl, img[i], off[i]);
            p += 30 + nl + off[i];
        }
        size_t cd = p;
        for (size_t i = 0; i < n && st == VEIL_OK; i++) { /* the central directory */
            size_t nl = strlen(names[i]) + 4;
            memset(b + p, 0, 46);
            wr32(b + p, 0x02014b50), wr16(b + p + 4, 20), wr16(b + p + 6, 20), wr16(b + p + 14, 0x21);
            wr32(b + p + 16, crc[i]), wr32(b + p + 20, (uint32_t)off[i]), wr32(b + p + 24, (uint32_t)off[i]);
            wr16(b + p + 28, (uint32_t)nl), wr32(b + p + 42, (uint32_t)loff[i]);
            memcpy(b + p + 46, names[i], nl - 4);
            memcpy(b + p + 46 + nl - 4, ".npy", 4);
            p += 46 + nl;
        }
        if (st == VEIL_OK) {
            memset(b + p, 0, 22);
            wr32(b + p, 0x06054b50), wr16(b + p + 8, (uint32_t)n), wr16(b + p + 10, (uint32_t)n);
            wr32(b + p + 12, (uint32_t)(p - cd)), wr32(b + p + 16, (uint32_t)cd);
            p += 22;
            st = veil_file_write_atomic(path, b, p, 0644);
            if (st != VEIL_OK) fail(st, "%s: cannot write (%s)", path, veil_status_str(st));
        }
        veil_free(loff);
    }
    for (size_t i = 0; img && i < n; i++) veil_free(img[i]);
    veil_free(img);
    veil_free(ilen);
    veil_free(crc);
    veil_free(b);
    return st;
}
