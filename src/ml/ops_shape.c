/* Float kernels, shape family: Flatten, Reshape, Squeeze, Unsqueeze, Transpose, Concat, Pad,
 * Constant, Gather, Shape, Identity, Dropout. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "ops_impl.h"


static veil_status reshaped(const ml_tensor *x, int nd, const int64_t *shape, ml_tensor *y)
{
    veil_status st = ml_tensor_alloc(y, nd, shape);
    if (st != VEIL_OK) return st;
    if (y->size != x->size) {
        ml_tensor_free(y);
        return VEIL_ERR_GRAPH;
    }
    memcpy(y->data, x->data, sizeof(double) * (size_t)x->size);
    y->elem_type = x->elem_type;
    return VEIL_OK;
}

/* axes from input 1 (newer opsets) or the `axes` attribute */
static int get_axes(const ml_node *n, const ml_tensor *const *ins, int64_t *axes)
{
    if (n->nin > 1 && ins[1]) {
        if (ins[1]->size > VEIL_MAX_DIMS) return -1;
        for (int64_t i = 0; i < ins[1]->size; i++) axes[i] = (int64_t)ins[1]->data[i];
        return (int)ins[1]->size;
    }
    const ml_attr *a = ml_attr_find(n, "axes");
    if (!a) return 0;
    if (a->n > VEIL_MAX_DIMS) return -1;
    for (size_t i = 0; i < a->n; i++) axes[i] = a->ints[i];
    return (int)a->n;
}

static veil_status run_shape_op(const ml_node *n, const ml_tensor *const *ins, ml_tensor *y, char *err, size_t errlen)
{
    const ml_tensor *x = ins[0];
    int64_t shape[VEIL_MAX_DIMS];
    veil_status st;
    switch (n->op) {
    case ML_OP_FLATTEN: {
        int64_t ax = norm_axis(ml_attr_int(n, "axis", 1), x->ndim), a = 1;
        if (ax < 0 || ax > x->ndim) return ml_errf(err, errlen, VEIL_ERR_GRAPH, "node '%s': bad Flatten axis", n->name);
        for (int i = 0; i < ax; i++) a *= x->shape[i];
        return reshaped(x, 2, (int64_t[]){a, a ? x->size / a : 0}, y);
    }
    case ML_OP_RESHAPE: {
        const ml_tensor *s = n->nin > 1 ? ins[1] : NULL;
        if (!s || s->size > VEIL_MAX_DIMS) return ml_errf(err, errlen, VEIL_ERR_GRAPH, "node '%s': bad Reshape shape", n->name);
        int allowzero = (int)ml_attr_int(n, "allowzero", 0), neg = -1;
        int64_t known = 1;
        for (int i = 0; i < s->size; i++) {
            int64_t d = (int64_t)s->data[i];
            if (d == 0 && !allowzero) d = i < x->ndim ? x->shape[i] : 0;
            if (d == -1) {
                if (neg >= 0) return ml_errf(err, errlen, VEIL_ERR_GRAPH, "node '%s': two -1 in Reshape", n->name);
                neg = i;
                d = 1;
            } else if (d < 0) {
                return ml_errf(err, errlen, VEIL_ERR_GRAPH, "node '%s': negative Reshape dimension", n->name);
            }
            shape[i] = d;
            known *= d;
        }
        if (neg >= 0) shape[neg] = known ? x->size / known : 0;
        if ((st = reshaped(x, (int)s->size, shape, y)) != VEIL_OK)
            return ml_errf(err, errlen, VEIL_ERR_GRAPH, "node '%s': cannot reshape %lld elements", n->name, (long long)x->size);
        return VEIL_OK;
    }
    case ML_OP_SQUEEZE: case ML_OP_UNSQUEEZE: {
        int64_t axes[VEIL_MAX_DIMS];
        int na = get_axes(n, ins, axes), nd = 0;
        if (na < 0) return ml_errf(err, errlen, VEIL_ERR_GRAPH, "node '%s': too many axes", n->name);
        if (n->op == ML_OP_SQUEEZE) {
            for (int i = 0; i < x->ndim; i++) {
                int drop = 0;
                for (int k = 0; k < na; k++) drop |= norm_axis(axes[k], x->ndim) == i;
                if (na == 0) drop = x->shape[i] == 1;
                if (drop && x->shape[i] != 1)
                    return ml_errf(err, errlen, VEIL_ERR_GRAPH, "node '%s': squeezed axis %d has size %lld", n->name, i,
                                (long long)x->shape[i]);
                if (!drop) shape[nd++] = x->shape[i];
            }
        } else {
            int out = x->ndim + na, src = 0;
            if (out > VEIL_MAX_DIMS) return ml_errf(err, errlen, VEIL_ERR_UNSUPPORTED, "node '%s': too many axes", n->name);
            for (int i = 0; i < out; i++) {
                int ins1 = 0;
                for (int k = 0; k < na; k++) ins1 |= norm_axis(axes[k], out) == i;
                shape[nd++] = ins1 ? 1 : x->shape[src++];
            }
            if (src != x->ndim) return ml_errf(err, errlen, VEIL_ERR_GRAPH, "node '%s': bad Unsqueeze axes", n->name);
        }
        return reshaped(x, nd, shape, y);
    }
    case ML_OP_TRANSPOSE: {
        const ml_attr *p = ml_attr_find(n, "perm");
        int64_t perm[VEIL_MAX_DIMS];
        for (int i = 0; i < x->ndim; i++) perm[i] = p ? (i < (int)p->n ? p->ints[i] : -1) : x->ndim - 1 - i;
        if (p && (int)p->n != x->ndim) return ml_errf(err, errlen, VEIL_ERR_GRAPH, "node '%s': bad perm", n->name);
        for (int i = 0; i < x->ndim; i++) {
            if (perm[i] < 0 || perm[i] >= x->ndim) return ml_errf(err, errlen, VEIL_ERR_GRAPH, "node '%s': bad perm", n->name);
            shape[i] = x->shape[perm[i]];
        }
        if ((st = ml_tensor_alloc(y, x->ndim, shape)) != VEIL_OK) return st;
        int64_t xs[VEIL_MAX_DIMS], idx[VEIL_MAX_DIMS] = {0};
        strides_of(x, xs);
        for (int64_t i = 0; i < y->size; i++) {
            int64_t off = 0;
            for (int d = 0; d < x->ndim; d++) off += idx[d] * xs[perm[d]];
            y->data[i] = x->data[off];
            next_index(y->ndim, y->shape, idx);
        }
        return VEIL_OK;
    }
    default: return VEIL_ERR_UNSUPPORTED;
    }
}

static veil_status run_concat(const ml_node *n, const ml_tensor *const *ins, ml_tensor *y, char *err, size_t errlen)
{
    const ml_tensor *x = ins[0];
    int64_t ax = norm_axis(ml_attr_int(n, "axis", 0), x->ndim);
    if (ax < 0 || ax >= x->ndim) return ml_errf(err, errlen, VEIL_ERR_GRAPH, "node '%s': bad Concat axis", n->name);
    int64_t shape[VEIL_MAX_DIMS];
    memcpy(shape, x->shape, sizeof shape);
    shape[ax] = 0;
    for (int k = 0; k < n->nin; k++) {
        if (!ins[k] || ins[k]->ndim != x->ndim) return ml_errf(err, errlen, VEIL_ERR_GRAPH, "node '%s': Concat ranks differ", n->name);
        for (int d = 0; d < x->ndim; d++)
            if (d != ax && ins[k]->shape[d] != x->shape[d])
                return ml_errf(err, errlen, VEIL_ERR_GRAPH, "node '%s': Concat shapes differ", n->name);
        shape[ax] += ins[k]->shape[ax];
    }
    veil_status st = ml_tensor_alloc(y, x->ndim, shape);
    if (st != VEIL_OK) return st;
    int64_t outer = 1, inner = 1;
    for (int d = 0; d < ax; d++) outer *= shape[d];
    for (int d = (int)ax + 1; d < x->ndim; d++) inner *= shape[d];
    int64_t pos = 0;
    for (int k = 0; k < n->nin; k++) {
        int64_t len = ins[k]->shape[ax] * inner;
        for (int64_t o = 0; o < outer; o++)
            memcpy(y->data + o * shape[ax] * inner + pos, ins[k]->data + o * len, sizeof(double) * (size_t)len);
        pos += len;
    }
    return VEIL_OK;
}

static veil_status run_pad(const ml_node *n, const ml_tensor *const *ins, ml_tensor *y, char *err, size_t errlen)
{
    const ml_tensor *x = ins[0];
    const char *mode = ml_attr_string(n, "mode", "constant");
    if (strcmp(mode, "constant") != 0)
        return ml_errf(err, errlen, VEIL_ERR_UNSUPPORTED, "node '%s': Pad mode '%s' is not supported (constant only)",
                    n->name, mode);
    int64_t pads[2 * VEIL_MAX_DIMS] = {0}, axes[VEIL_MAX_DIMS];
    double value = ml_attr_float(n, "value", 0);
    int na = x->ndim;
    for (int i = 0; i < x->ndim; i++) axes[i] = i;
    const ml_tensor *p = n->nin > 1 ? ins[1] : NULL;
    if (n->nin > 3 && ins[3]) {
        na = (int)ins[3]->size;
        if (na > x->ndim) return ml_errf(err, errlen, VEIL_ERR_GRAPH, "node '%s': bad Pad axes", n->name);
        for (int i = 0; i < na; i++) axes[i] = norm_axis((int64_t)ins[3]->data[i], x->ndim);
    }
    int64_t raw[2 * VEIL_MAX_DIMS];
    if (p) {
        if (p->size != 2 * na) return ml_errf(err, errlen, VEIL_ERR_GRAPH, "node '%s': Pad needs %d pads", n->name, 2 * na);
        for (int i = 0; i < 2 * na; i++) raw[i] = (int64_t)p->data[i];
    } else {
        const ml_attr *a = ml_attr_find(n, "pads");
        if (!a || (int)a->n != 2 * na) return ml_errf(err, errlen, VEIL_ERR_GRAPH, "node '%s': Pad has no pads", n->name);
        for (int i = 0; i < 2 * na; i++) raw[i] = a->ints[i];
    }
    for (int i = 0; i < na; i++) {
        if (axes[i] < 0 || axes[i] >= x->ndim) return ml_errf(err, errlen, VEIL_ERR_GRAPH, "node '%s': bad Pad axis", n->name);
        pads[axes[i]] = raw[i], pads[x->ndim + axes[i]] = raw[na + i];
    }
    if (n->nin > 2 && ins[2] && ins[2]->size) value = ins[2]->data[0];
    int64_t shape[VEIL_MAX_DIMS];
    for (int d = 0; d < x->ndim; d++) {
        if (pads[d] < 0 || pads[x->ndim + d] < 0)
            return ml_errf(err, errlen, VEIL_ERR_UNSUPPORTED, "node '%s': negative pads are not supported", n->name);
        shape[d] = x->shape[d] + pads[d] + pads[x->ndim + d];
    }
    veil_status st = ml_tensor_alloc(y, x->ndim, shape);
    if (st != VEIL_OK) return st;
    int64_t idx[VEIL_MAX_DIMS] = {0}, xs[VEIL_MAX_DIMS];
    strides_of(x, xs);
    for (int64_t i = 0; i < y->size; i++) {
        int64_t off = 0;
        int in = 1;
        for (int d = 0; d < x->ndim; d++) {
            int64_t s = idx[d] - pads[d];
            if (s < 0 || s >= x->shape[d]) in = 0;
            off += s * xs[d];
        }
        y->data[i] = in ? x->data[off] : value;
        next_index(y->ndim, shape, idx);
    }
    return VEIL_OK;
}

static veil_status run_constant(const ml_node *n, ml_tensor *y, char *err, size_t errlen)
{
    const ml_attr *a = n->nattrs ? &n->attrs[0] : NULL;
    if (!a) return ml_errf(err, errlen, VEIL_ERR_MALFORMED, "node '%s': Constant has no value", n->name);
    veil_status st;
    if (a->type == ML_ATTR_TENSOR) return ml_tensor_copy(y, &a->t);
    if (a->type == ML_ATTR_FLOAT || a->type == ML_ATTR_INT) {
        if ((st = ml_tensor_alloc(y, 0, NULL)) != VEIL_OK) return st;
        y->data[0] = a->type == ML_ATTR_FLOAT ? a->f : (double)a->i;
        y->elem_type = a->type == ML_ATTR_INT ? ONNX_INT64 : ONNX_FLOAT;
        return VEIL_OK;
    }
    if (a->type == ML_ATTR_FLOATS || a->type == ML_ATTR_INTS) {
        if ((st = ml_tensor_alloc(y, 1, (int64_t[]){(int64_t)a->n})) != VEIL_OK) return st;
        for (size_t i = 0; i < a->n; i++) y->data[i] = a->type == ML_ATTR_FLOATS ? a->floats[i] : (double)a->ints[i];
        y->elem_type = a->type == ML_ATTR_INTS ? ONNX_INT64 : ONNX_FLOAT;
        return VEIL_OK;
    }
    return ml_errf(err, errlen, VEIL_ERR_UNSUPPORTED, "node '%s': Constant attribute '%s' is not supported", n->name, a->name);
}

static veil_status run_gather(const ml_node *n, const ml_tensor *x, const ml_tensor *ind, ml_tensor *y, char *err,
                              size_t errlen)
{
    int64_t ax = norm_axis(ml_attr_int(n, "axis", 0), x->ndim);
    if (ax < 0 || ax >= x->ndim || x->ndim + ind->ndim - 1 > VEIL_MAX_DIMS)
        return ml_errf(err, errlen, VEIL_ERR_GRAPH, "node '%s': bad Gather axis", n->name);
    int64_t shape[VEIL_MAX_DIMS];
    int nd = 0;
    for (int d = 0; d < ax; d++) shape[nd++] = x->shape[d];
    for (int d = 0; d < ind->ndim; d++) shape[nd++] = ind->shape[d];
    for (int d = (int)ax + 1; d < x->ndim; d++) shape[nd++] = x->shape[d];
    veil_status st = ml_tensor_alloc(y, nd, shape);
    if (st != VEIL_OK) return st;
    y->elem_type = x->elem_type;
    int64_t outer = 1, inner = 1, L = x->shape[ax];
    for (int d = 0; d < ax; d++) outer *= x->shape[d];
    for (int d = (int)ax + 1; d < x->ndim; d++) inner *= x->shape[d];
    for (int64_t o = 0; o < outer; o++)
        for (int64_t j = 0; j < ind->size; j++) {
            int64_t k = (int64_t)ind->data[j];
            if (k < 0) k += L;
            if (k < 0 || k >= L) {
                ml_tensor_free(y);
                return ml_errf(err, errlen, VEIL_ERR_GRAPH, "node '%s': Gather index out of range", n->name);
            }
            memcpy(y->data + (o * ind->size + j) * inner, x->data + (o * L + k) * inner, sizeof(double) * (size_t)inner);
        }
    return VEIL_OK;
}

veil_status ml_kernel_shape_op(const ml_node *n, const ml_tensor *const *ins, ml_tensor *outs, char *err,
                               size_t errlen)
{
    return run_shape_op(n, ins, &outs[0], err, errlen);
}

veil_status ml_kernel_concat(const ml_node *n, const ml_tensor *const *ins, ml_tensor *outs, char *err, size_t errlen)
{
    return run_concat(n, ins, &outs[0], err, errlen);
}

veil_status ml_kernel_pad(const ml_node *n, const ml_tensor *const *ins, ml_tensor *outs, char *err, size_t errlen)
{
    return run_pad(n, ins, &outs[0], err, errlen);
}

veil_status ml_kernel_constant(const ml_node *n, const ml_tensor *const *ins, ml_tensor *outs, char *err,
                               size_t errlen)
{
    (void)ins;
    return run_constant(n, &outs[0], err, errlen);
}

veil_status ml_kernel_gather(const ml_node *n, const ml_tensor *const *ins, ml_tensor *outs, char *err, size_t errlen)
{
    if (n->nin < 2 || !ins[1]) return ml_errf(err, errlen, VEIL_ERR_MALFORMED, "node '%s': Gather needs indices", n->name);
    return run_gather(n, ins[0], ins[1], &outs[0], err, errlen);
}

/* Shape: the dimensions [start, end) of its input, as int64 */
veil_status ml_kernel_shape(const ml_node *n, const ml_tensor *const *ins, ml_tensor *outs, char *err, size_t errlen)
{
    (void)err, (void)errlen;
    const ml_tensor *x = ins[0];
    int64_t s = ml_attr_int(n, "start", 0), e = ml_attr_int(n, "end", x->ndim);
    if (s < 0) s += x->ndim;
    if (e < 0) e += x->ndim;
    s = s < 0 ? 0 : s > x->ndim ? x->ndim : s;
    e = e < s ? s : e > x->ndim ? x->ndim : e;
    veil_status st = ml_tensor_alloc(&outs[0], 1, (int64_t[]){e - s});
    if (st == VEIL_OK) {
        for (int64_t i = s; i < e; i++) outs[0].data[i - s] = (double)x->shape[i];
        outs[0].elem_type = ONNX_INT64;
    }
    return st;
}

veil_status ml_kernel_identity(const ml_node *n, const ml_tensor *const *ins, ml_tensor *outs, char *err,
                               size_t errlen)
{
    (void)n, (void)err, (void)errlen;
    return ml_tensor_copy(&outs[0], ins[0]);
}

/* Dropout at inference: the identity, and a mask of ones when asked for */
veil_status ml_kernel_dropout(const ml_node *n, const ml_tensor *const *ins, ml_tensor *outs, char *err,
                              size_t errlen)
{
    (void)err, (void)errlen;
    veil_status st = ml_tensor_copy(&outs[0], ins[0]);
    if (st == VEIL_OK && n->nout > 1 && (st = ml_tensor_alloc(&outs[1], ins[0]->ndim, ins[0]->shape)) == VEIL_OK)
        for (int64_t i = 0; i < outs[1].size; i++) outs[1].data[i] = 1;
    return st;
}
