/* veil/npy.h — NumPy .npy arrays in and out (format versions 1.0, 2.0 and 3.0, as numpy.save
 * writes them).
 *
 *     veil_array a;
 *     if (veil_npy_load("x.npy", &a) == VEIL_OK) { ... a.data[i] ...; veil_array_free(&a); }
 *
 * Every element is read into a double whatever the file's dtype (float16/32/64, int8..int64,
 * uint8..uint64, bool; either byte order; C or Fortran order). Integers beyond 2^53 lose
 * precision. Malformed files are refused with a status and a one-line reason
 * (veil_npy_last_error), never a crash.
 */
#ifndef VEIL_NPY_H
#define VEIL_NPY_H

#include <stddef.h>
#include <stdint.h>

#include "veil/core.h"
#include "veil/graph.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int ndim;                       /* 0 for a scalar */
    int64_t shape[VEIL_MAX_DIMS];
    int64_t size;                   /* product of the shape */
    double *data;                   /* row-major; owned, free with veil_array_free */
} veil_array;

typedef enum { VEIL_NPY_F32, VEIL_NPY_F64, VEIL_NPY_I64, VEIL_NPY_DTYPE_COUNT } veil_npy_dtype;

/* Parse a .npy image (borrowed). On failure *out is zeroed. */
VEIL_NODISCARD veil_status veil_npy_parse(const uint8_t *data, size_t len, veil_array *out);
VEIL_NODISCARD veil_status veil_npy_load(const char *path, veil_array *out);
/* Serialize as `dtype` (I64 rounds to nearest). Caller frees *out with veil_free. */
VEIL_NODISCARD veil_status veil_npy_encode(const veil_array *a, veil_npy_dtype dtype, uint8_t **out, size_t *len);
/* Written atomically (temporary file + rename): never half written. */
VEIL_NODISCARD veil_status veil_npy_save(const char *path, const veil_array *a, veil_npy_dtype dtype);
/* Allocate a zeroed array of the given shape. */
VEIL_NODISCARD veil_status veil_array_new(veil_array *a, int ndim, const int64_t *shape);
void veil_array_free(veil_array *a); /* accepts a zeroed array */
/* .npz archives (numpy.savez, numpy.savez_compressed): named arrays, names without ".npy", in
 * the archive's order. Stored and deflated members are read, CRC-32 checked; ZIP64 is read. */
typedef struct {
    size_t count;
    char **names;
    veil_array *arrays;
} veil_npz;
VEIL_NODISCARD veil_status veil_npz_parse(const uint8_t *data, size_t len, veil_npz *out);
VEIL_NODISCARD veil_status veil_npz_load(const char *path, veil_npz *out);
const veil_array *veil_npz_get(const veil_npz *z, const char *name); /* NULL when absent */
void veil_npz_free(veil_npz *z);                                     /* accepts a zeroed one */
/* Write n arrays as NAME.npy members, stored (as numpy.savez does), atomically. */
VEIL_NODISCARD veil_status veil_npz_save(const char *path, size_t n, const char *const *names,
                                         const veil_array *const *arrays, veil_npy_dtype dtype);
/* The reason of the calling thread's last failed npy or npz call. */
const char *veil_npy_last_error(void);

#ifdef __cplusplus
}
#endif
#endif
