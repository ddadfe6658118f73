/* Shared by the float kernels (ops*.c): ONNX element types, index helpers, and each family's
 * entry point, all with the handler signature of ml_run_node's table. */
#ifndef VEIL_ML_OPS_IMPL_H
#define VEIL_ML_OPS_IMPL_H

#include <math.h>

#include "ml.h"

#define ONNX_INT8 3
#define ONNX_UINT8 2
#define ONNX_INT16 5
#define ONNX_UINT16 4
#define ONNX_INT32 6
#define ONNX_INT64 7
#define ONNX_FLOAT 1

/* A kernel: node n on its inputs (constants included), outputs allocated here. */
typedef veil_status (*ml_kernel)(const ml_node *n, const ml_tensor *const *ins, ml_tensor *outs, char *err,
                                 size_t errlen);

/* element-wise (ops_elementwise.c): unary and binary operators with NumPy broadcasting,
 * quantizers, casts; the per-axis activations Softmax, LogSoftmax and ArgMax */
veil_status ml_kernel_elementwise(const ml_node *n, const ml_tensor *const *ins, ml_tensor *outs, char *err,
                                  size_t errlen);
veil_status ml_kernel_softmax(const ml_node *n, const ml_tensor *const *ins, ml_tensor *outs, char *err, size_t errlen);
/* linear algebra and windows (ops_linear.c) */
veil_status ml_kernel_gemm(const ml_node *n, const ml_tensor *const *ins, ml_tensor *outs, char *err, size_t errlen);
veil_status ml_kernel_matmul(const ml_node *n, const ml_tensor *const *ins, ml_tensor *outs, char *err, size_t errlen);
veil_status ml_kernel_conv(const ml_node *n, const ml_tensor *const *ins, ml_tensor *outs, char *err, size_t errlen);
veil_status ml_kernel_pool(const ml_node *n, const ml_tensor *const *ins, ml_tensor *outs, char *err, size_t errlen);
/* shapes and data movement (ops_shape.c) */
veil_status ml_kernel_shape_op(const ml_node *n, const ml_tensor *const *ins, ml_tensor *outs, char *err,
                               size_t errlen);
veil_status ml_kernel_concat(const ml_node *n, const ml_tensor *const *ins, ml_tensor *outs, char *err, size_t errlen);
veil_status ml_kernel_pad(const ml_node *n, const ml_tensor *const *ins, ml_tensor *outs, char *err, size_t errlen);
veil_status ml_kernel_constant(const ml_node *n, const ml_tensor *const *ins, ml_tensor *outs, char *err,
                               size_t errlen);
veil_status ml_kernel_gather(const ml_node *n, const ml_tensor *const *ins, ml_tensor *outs, char *err, size_t errlen);
veil_status ml_kernel_shape(const ml_node *n, const ml_tensor *const *ins, ml_tensor *outs, char *err, size_t errlen);
veil_status ml_kernel_identity(const ml_node *n, const ml_tensor *const *ins, ml_tensor *outs, char *err,
                               size_t errlen);
veil_status ml_kernel_dropout(const ml_node *n, const ml_tensor *const *ins, ml_tensor *outs, char *err,
                              size_t errlen);

/* ---- index helpers ---- */
static inline int64_t norm_axis(int64_t a, int ndim) { return a < 0 ? a + ndim : a; }

static inline void strides_of(const ml_tensor *t, int64_t *st)
{
    int64_t s = 1;
    for (int i = t->ndim - 1; i >= 0; i--) st[i] = s, s *= t->shape[i];
}

/* NumPy broadcast of a and b into out's shape. */
static inline veil_status broadcast_shape(const ml_tensor *a, const ml_tensor *b, int *nd, int64_t *shape)
{
    int n = a->ndim > b->ndim ? a->ndim : b->ndim;
    for (int i = 0; i < n; i++) {
        int ia = i - (n - a->ndim), ib = i - (n - b->ndim);
        int64_t da = ia >= 0 ? a->shape[ia] : 1, db = ib >= 0 ? b->shape[ib] : 1;
        if (da != db && da != 1 && db != 1) return VEIL_ERR_GRAPH;
        shape[i] = da == 1 ? db : da;
    }
    *nd = n;
    return VEIL_OK;
}

/* Index into t of the broadcast element at multi-index idx (of an n-dim output). */
static inline int64_t bidx(const ml_tensor *t, const int64_t *tst, int n, const int64_t *idx)
{
    int64_t off = 0;
    for (int i = 0; i < t->ndim; i++) {
        int o = i + (n - t->ndim);
        if (t->shape[i] != 1) off += idx[o] * tst[i];
    }
    return off;
}

static inline void next_index(int n, const int64_t *shape, int64_t *idx)
{
    for (int i = n - 1; i >= 0; i--) {
        if (++idx[i] < shape[i]) return;
        idx[i] = 0;
    }
}

static inline double round_half_even(double x)
{
    return nearbyint(x); /* default rounding mode: to nearest, ties to even */
}

#endif
