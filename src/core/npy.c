/* NumPy .npy reading and writing (format: numpy/lib/format.py's documented layout: magic
 * "\x93NUMPY", major, minor, header length (u16 in 1.0, u32 in 2.0/3.0), a Python dict literal
 * with 'descr', 'fortran_order', 'shape', padded with spaces to a multiple of 64, then data). */
#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    char *h = malloc(hlen + 1);
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
    free(h);
    return st;
}

veil_status veil_npy_load(const char *path, veil_array *out)
{
    memset(out, 0, sizeof *out);
    uint8_t *buf = NULL;
    size_t len = 0;
    veil_status st = veil_file_read_all(path, NPY_MAX_BYTES, &buf, &len);
    if (st != VEIL_OK) return fail(st, "%s: cannot read (%s)", path, veil_status_str(st));
    st = veil_npy_parse(buf, len, out);
    if (st != VEIL_OK) {
        char why[256];
        snprintf(why, sizeof why, "%s", npy_err);
        fail(st, "%s: %s", path, why);
    }
    veil_free(buf);
    return st;
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
