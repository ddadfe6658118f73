/* libFuzzer target: the .npy reader and the .npz reader (ZIP: stored and deflated members,
 * ZIP64, CRC-32). The first byte picks which; an array that loads is re-encoded and read back,
 * which must give the same shape. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "veil/npy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    if (data[0] & 1) {
        veil_npz z;
        if (veil_npz_parse(data + 1, size - 1, &z) == VEIL_OK) {
            (void)veil_npz_get(&z, "x");
            veil_npz_free(&z);
        }
        return 0;
    }
    veil_array a;
    if (veil_npy_parse(data + 1, size - 1, &a) != VEIL_OK) return 0;
    uint8_t *enc = NULL;
    size_t len = 0;
    if (veil_npy_encode(&a, VEIL_NPY_F64, &enc, &len) == VEIL_OK) {
        veil_array b;
        if (veil_npy_parse(enc, len, &b) != VEIL_OK || b.ndim != a.ndim || b.size != a.size) abort();
        veil_array_free(&b);
        veil_free(enc);
    }
    veil_array_free(&a);
    return 0;
}
