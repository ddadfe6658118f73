/* Per-layer quantization: linear layers (Gemm, MatMul, Conv), pooling, pad, shape ops, Concat and
 * binary ops of two encrypted operands. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "quant_impl.h"

/* Calibration of a new QUANT/shape value: run node n on each sample with the dynamic operand at
 * `pos` taken from `src` and other operands from ins_const. */
veil_status mq_calibrate_node(qctx *Q, const ml_node *n, int pos, const qval *src, const ml_tensor *const *consts,
                              qval *dst)
{
    for (size_t s = 0; s < Q->ns && Q->st == VEIL_OK; s++) {
        const ml_tensor *ins[16];
        ml_tensor outs[8];
        for (int i = 0; i < n->nin && i < 16; i++) ins[i] = i == pos ? &src->cal[s] : consts[i];
        veil_status st = ml_run_node(n, ins, outs, Q->err, Q->errlen);
        if (st != VEIL_OK) return mq_failf(Q, st, "%s", Q->err);
        dst->cal[s] = outs[0];
        for (int j = 1; j < n->nout; j++) ml_tensor_free(&outs[j]);
    }
    return Q->st;
}

static int64_t *int_tensor(qctx *Q, const ml_tensor *t, const ml_quantizer *q)
{
    int64_t *r = veil_malloc(sizeof(int64_t) * (size_t)t->size + 1);
    if (!r) {
        mq_failf(Q, VEIL_ERR_NOMEM, "out of memory");
        return NULL;
    }
    for (int64_t i = 0; i < t->size; i++) {
        double v = ml_quantize_value(q, t->data[i]) - q->zp;
        if (!isfinite(v) || fabs(v) > 0x1p62) { /* a NaN weight or quantizer: no integer stands for it */
            veil_free(r);
            mq_failf(Q, VEIL_ERR_MALFORMED, "a constant or its quantizer is not finite (NaN or infinity)");
            return NULL;
        }
        r[i] = (int64_t)v;
    }
    return r;
}

/* weights of a linear layer: the model's own quantizer (QAT) or a calibrated one */
static int weight_q(qctx *Q, const ml_node *n, int wi, ml_quantizer *wq)
{
    const qval *w = &Q->qv[Q->vmap[n->in[wi]]];
    if (w->has_q) {
        *wq = w->cq;
        return 1;
    }
    if (Q->o->qat) {
        mq_failf(Q, VEIL_ERR_COMPILE, "node '%s' (%s): its weights are not quantized by a Quant node in a quantization-aware model",
                 n->name, ml_op_names[n->op]);
        return 0;
    }
    *wq = mq_weight_quantizer(&w->c, Q->o->n_bits.op_weights);
    return 1;
}

/* dequantized copy of a quantized constant (what the integer pipeline computes with) */
static veil_status dequantized(qctx *Q, const ml_tensor *t, const ml_quantizer *q, ml_tensor *out)
{
    if (ml_tensor_copy(out, t) != VEIL_OK) return mq_failf(Q, VEIL_ERR_NOMEM, "out of memory");
    for (int64_t i = 0; i < t->size; i++) out->data[i] = q->scale * (ml_quantize_value(q, t->data[i]) - q->zp);
    return VEIL_OK;
}

/* ---- linear layers ------------------------------------------------------------------------------- */

int mq_do_gemm_like(qctx *Q, const ml_node *n)
{
    int is_gemm = n->op == ML_OP_GEMM;
    int a = Q->vmap[n->in[0]], b = Q->vmap[n->in[1]];
    int a_dyn = Q->qv[a].kind != QV_CONST, b_dyn = Q->qv[b].kind != QV_CONST;
    if (is_gemm && ml_attr_int(n, "transA", 0) && a_dyn)
        return mq_failf(Q, VEIL_ERR_UNSUPPORTED, "node '%s': Gemm with transA on an encrypted operand", n->name), -1;
    double alpha = is_gemm ? ml_attr_float(n, "alpha", 1) : 1, beta = is_gemm ? ml_attr_float(n, "beta", 1) : 1;
    const ml_tensor *C = is_gemm && n->nin > 2 ? mq_const_of(Q, n->in[2]) : NULL;
    if (is_gemm && n->nin > 2 && n->in[2] >= 0 && !C)
        return mq_failf(Q, VEIL_ERR_UNSUPPORTED, "node '%s': Gemm with an encrypted C", n->name), -1;
    if (a_dyn && b_dyn) {
        if (is_gemm && ml_attr_int(n, "transB", 0))
            return mq_failf(Q, VEIL_ERR_UNSUPPORTED, "node '%s': Gemm with transB on an encrypted operand", n->name), -1;
        int qa = mq_as_quant(Q, a, n), qb = mq_as_quant(Q, b, n);
        if (qa < 0 || qb < 0) return -1;
        int node = veil_graph_matmul(Q->g, mq_centered(Q, &Q->qv[qa]), mq_centered(Q, &Q->qv[qb]));
        double sc = alpha * Q->qv[qa].scale * Q->qv[qb].scale;
        if (C) {
            ml_tensor bq;
            if (ml_tensor_copy(&bq, C) != VEIL_OK) return mq_failf(Q, VEIL_ERR_NOMEM, "out of memory"), -1;
            for (int64_t i = 0; i < bq.size; i++) bq.data[i] = nearbyint(beta * C->data[i] / sc);
            int64_t *bi = veil_malloc(sizeof(int64_t) * (size_t)bq.size + 1);
            for (int64_t i = 0; bi && i < bq.size; i++) bi[i] = (int64_t)bq.data[i];
            if (bi) node = veil_graph_add(Q->g, node, veil_graph_constant(Q->g, bq.ndim, bq.shape, bi));
            veil_free(bi);
            ml_tensor_free(&bq);
        }
        if (node < 0) return mq_graph_fail(Q, n), -1;
        int r = mq_quant_value(Q, node, sc, 0);
        if (r < 0) return -1;
        for (size_t s = 0; s < Q->ns && Q->st == VEIL_OK; s++) {
            const ml_tensor *ins[3] = {&Q->qv[qa].cal[s], &Q->qv[qb].cal[s], NULL};
            ml_tensor outs[1];
            ml_node plain = *n;
            plain.nin = 2;
            if (ml_run_node(&plain, ins, outs, Q->err, Q->errlen) != VEIL_OK) return mq_failf(Q, VEIL_ERR_GRAPH, "%s", Q->err), -1;
            for (int64_t i = 0; i < outs[0].size; i++) outs[0].data[i] = sc * nearbyint(outs[0].data[i] / sc);
            if (C)
                for (int64_t i = 0; i < outs[0].size; i++)
                    outs[0].data[i] += sc * nearbyint(beta * C->data[C->size == outs[0].size ? i : i % C->size] / sc);
            Q->qv[r].cal[s] = outs[0];
        }
        return r;
    }
    /* one constant operand: the weights */
    int xi = a_dyn ? 0 : 1, wi = 1 - xi;
    int qx = mq_as_quant(Q, Q->vmap[n->in[xi]], n);
    if (qx < 0) return -1;
    ml_quantizer wq;
    if (!weight_q(Q, n, wi, &wq)) return -1;
    const ml_tensor *W = &Q->qv[Q->vmap[n->in[wi]]].c;
    const qval *X = &Q->qv[qx];
    if (X->ndim > 2 || W->ndim > 2)
        return mq_failf(Q, VEIL_ERR_UNSUPPORTED, "node '%s' (%s): only 1-D and 2-D operands are supported", n->name,
                        ml_op_names[n->op]), -1;
    int64_t *wint = int_tensor(Q, W, &wq);
    if (!wint) return -1;
    int wnode = veil_graph_constant(Q->g, W->ndim, W->shape, wint);
    veil_free(wint);
    if (is_gemm && ml_attr_int(n, "transB", 0)) wnode = veil_graph_transpose(Q->g, wnode, NULL);
    if (is_gemm && ml_attr_int(n, "transA", 0)) wnode = veil_graph_transpose(Q->g, wnode, NULL);
    int xc = mq_centered(Q, X);
    int node = xi == 0 ? veil_graph_matmul(Q->g, xc, wnode) : veil_graph_matmul(Q->g, wnode, xc);
    double sc = alpha * X->scale * wq.scale;
    ml_tensor wdq = {0}, cdq = {0};
    if (dequantized(Q, W, &wq, &wdq) != VEIL_OK) return -1;
    if (C) {
        /* bias on the accumulator's scale */
        if (ml_tensor_copy(&cdq, C) != VEIL_OK) {
            ml_tensor_free(&wdq);
            return mq_failf(Q, VEIL_ERR_NOMEM, "out of memory"), -1;
        }
        int64_t *bi = veil_malloc(sizeof(int64_t) * (size_t)C->size + 1);
        if (!bi) {
            ml_tensor_free(&wdq), ml_tensor_free(&cdq);
            return mq_failf(Q, VEIL_ERR_NOMEM, "out of memory"), -1;
        }
        for (int64_t i = 0; i < C->size; i++) {
            double q = nearbyint(beta * C->data[i] / sc);
            bi[i] = (int64_t)q;
            cdq.data[i] = q * sc / beta;
        }
        node = veil_graph_add(Q->g, node, veil_graph_constant(Q->g, C->ndim, C->shape, bi));
        veil_free(bi);
    }
    if (node < 0) {
        ml_tensor_free(&wdq), ml_tensor_free(&cdq);
        return mq_graph_fail(Q, n), -1;
    }
    int r = mq_quant_value(Q, node, sc, 0);
    if (r >= 0) {
        const ml_tensor *consts[3] = {NULL, NULL, C ? &cdq : NULL};
        consts[wi] = &wdq;
        mq_calibrate_node(Q, n, xi, &Q->qv[qx], consts, &Q->qv[r]);
    }
    ml_tensor_free(&wdq);
    ml_tensor_free(&cdq);
    return Q->st == VEIL_OK ? r : -1;
}

int mq_do_conv(qctx *Q, const ml_node *n)
{
    int qx = mq_as_quant(Q, Q->vmap[n->in[0]], n);
    if (qx < 0) return -1;
    if (n->nin < 2 || !mq_const_of(Q, n->in[1]))
        return mq_failf(Q, VEIL_ERR_UNSUPPORTED, "node '%s': Conv weights must be constant", n->name), -1;
    const ml_tensor *B = n->nin > 2 ? mq_const_of(Q, n->in[2]) : NULL;
    if (n->nin > 2 && n->in[2] >= 0 && !B)
        return mq_failf(Q, VEIL_ERR_UNSUPPORTED, "node '%s': Conv bias must be constant", n->name), -1;
    ml_quantizer wq;
    if (!weight_q(Q, n, 1, &wq)) return -1;
    const ml_tensor *W = &Q->qv[Q->vmap[n->in[1]]].c;
    /* geometry: run the float kernel once to validate and get pads from auto_pad */
    const qval *X = &Q->qv[qx];
    if (X->ndim != 4 || W->ndim != 4)
        return mq_failf(Q, VEIL_ERR_UNSUPPORTED, "node '%s': only 2-D Conv is supported", n->name), -1;
    veil_conv2d_opts co = VEIL_CONV2D_DEFAULT;
    const ml_attr *st = ml_attr_find(n, "strides"), *dl = ml_attr_find(n, "dilations"), *pd = ml_attr_find(n, "pads");
    for (int i = 0; i < 2; i++) {
        if (st && st->n == 2) co.strides[i] = st->ints[i];
        if (dl && dl->n == 2) co.dilations[i] = dl->ints[i];
    }
    if (pd && pd->n == 4) {
        /* ONNX pads: (top, left, bottom, right) = x1_begin, x2_begin, x1_end, x2_end */
        for (int i = 0; i < 4; i++) co.pads[i] = pd->ints[i];
    }
    const char *ap = ml_attr_string(n, "auto_pad", "NOTSET");
    if (strcmp(ap, "NOTSET") != 0 && strcmp(ap, "VALID") != 0) {
        for (int i = 0; i < 2; i++) {
            int64_t in = X->shape[2 + i], out = (in + co.strides[i] - 1) / co.strides[i];
            int64_t tot = (out - 1) * co.strides[i] + (W->shape[2 + i] - 1) * co.dilations[i] + 1 - in;
            if (tot < 0) tot = 0;
            int64_t small = tot / 2, big = tot - small;
            co.pads[i] = ap[5] == 'U' ? small : big;
            co.pads[i + 2] = ap[5] == 'U' ? big : small;
        }
    } else if (strcmp(ap, "VALID") == 0) {
        memset(co.pads, 0, sizeof co.pads);
    }
    co.groups = ml_attr_int(n, "group", 1);
    int64_t *wint = int_tensor(Q, W, &wq);
    if (!wint) return -1;
    int wnode = veil_graph_constant(Q->g, 4, W->shape, wint);
    veil_free(wint);
    double sc = X->scale * wq.scale;
    ml_tensor wdq = {0}, bdq = {0};
    int bnode = -1;
    if (dequantized(Q, W, &wq, &wdq) != VEIL_OK) return -1;
    if (B) {
        int64_t *bi = veil_malloc(sizeof(int64_t) * (size_t)B->size + 1);
        if (!bi || ml_tensor_copy(&bdq, B) != VEIL_OK) {
            veil_free(bi);
            ml_tensor_free(&wdq);
            return mq_failf(Q, VEIL_ERR_NOMEM, "out of memory"), -1;
        }
        for (int64_t i = 0; i < B->size; i++) bi[i] = (int64_t)nearbyint(B->data[i] / sc), bdq.data[i] = (double)bi[i] * sc;
        bnode = veil_graph_constant(Q->g, 1, (int64_t[]){B->size}, bi);
        veil_free(bi);
    }
    int node = veil_graph_conv2d(Q->g, mq_centered(Q, X), wnode, bnode, &co);
    if (node < 0) {
        ml_tensor_free(&wdq), ml_tensor_free(&bdq);
        return mq_graph_fail(Q, n), -1;
    }
    int r = mq_quant_value(Q, node, sc, 0);
    if (r >= 0) {
        const ml_tensor *consts[3] = {NULL, &wdq, B ? &bdq : NULL};
        mq_calibrate_node(Q, n, 0, &Q->qv[qx], consts, &Q->qv[r]);
    }
    ml_tensor_free(&wdq), ml_tensor_free(&bdq);
    return Q->st == VEIL_OK ? r : -1;
}

int mq_do_pool(qctx *Q, const ml_node *n)
{
    /* a max pool over one monotone lookup runs on the lookup's inputs (the compiler pools the
     * rounded values and looks the table up after): that needs one table for the whole tensor */
    Q->whole_range = n->op == ML_OP_MAX_POOL;
    int qx = mq_as_quant(Q, Q->vmap[n->in[0]], n);
    Q->whole_range = 0;
    if (qx < 0) return -1;
    const qval *X = &Q->qv[qx];
    if (X->ndim != 4) return mq_failf(Q, VEIL_ERR_UNSUPPORTED, "node '%s': only 2-D pooling is supported", n->name), -1;
    int64_t C = X->shape[1], kh, kw;
    veil_pool2d_opts po = {{1, 1}, {1, 1}, {0, 0, 0, 0}, {1, 1}};
    int node;
    double sc = X->scale;
    if (n->op == ML_OP_GLOBAL_AVERAGE_POOL) {
        kh = X->shape[2], kw = X->shape[3];
        node = veil_graph_sum(Q->g, mq_centered(Q, X), 2, (int[]){2, 3}, 1);
        sc /= (double)(kh * kw);
    } else {
        const ml_attr *ks = ml_attr_find(n, "kernel_shape"), *st = ml_attr_find(n, "strides"),
                      *dl = ml_attr_find(n, "dilations"), *pd = ml_attr_find(n, "pads");
        if (!ks || ks->n != 2) return mq_failf(Q, VEIL_ERR_UNSUPPORTED, "node '%s': pooling needs a 2-D kernel_shape", n->name), -1;
        if (strcmp(ml_attr_string(n, "auto_pad", "NOTSET"), "NOTSET") != 0 || ml_attr_int(n, "ceil_mode", 0))
            return mq_failf(Q, VEIL_ERR_UNSUPPORTED, "node '%s': auto_pad and ceil_mode are not supported in pooling", n->name), -1;
        for (int i = 0; i < 2; i++) {
            po.kernel[i] = ks->ints[i];
            if (st && st->n == 2) po.strides[i] = st->ints[i];
            if (dl && dl->n == 2) po.dilations[i] = dl->ints[i];
        }
        int padded = 0;
        if (pd && pd->n == 4)
            for (int i = 0; i < 4; i++) po.pads[i] = pd->ints[i], padded |= pd->ints[i] != 0;
        kh = po.kernel[0], kw = po.kernel[1];
        if (n->op == ML_OP_MAX_POOL) {
            int xc = mq_centered(Q, X);
            if (X->scale < 0) xc = veil_graph_negate(Q->g, xc), sc = -sc;
            node = veil_graph_max_pool2d(Q->g, xc, &po);
        } else {
            if (padded && !ml_attr_int(n, "count_include_pad", 0))
                return mq_failf(Q, VEIL_ERR_UNSUPPORTED,
                                "node '%s': AveragePool with padding needs count_include_pad=1 (a per-position divisor is not supported)",
                                n->name), -1;
            /* sum pooling: a depthwise convolution with ones; the 1/(kh·kw) goes into the scale */
            int64_t *ones = veil_malloc(sizeof(int64_t) * (size_t)(C * kh * kw) + 1);
            if (!ones) return mq_failf(Q, VEIL_ERR_NOMEM, "out of memory"), -1;
            for (int64_t i = 0; i < C * kh * kw; i++) ones[i] = 1;
            int w = veil_graph_constant(Q->g, 4, (int64_t[]){C, 1, kh, kw}, ones);
            veil_free(ones);
            veil_conv2d_opts co = {{po.strides[0], po.strides[1]},
                                   {po.pads[0], po.pads[1], po.pads[2], po.pads[3]},
                                   {po.dilations[0], po.dilations[1]},
                                   C};
            node = veil_graph_conv2d(Q->g, mq_centered(Q, X), w, -1, &co);
            sc /= (double)(kh * kw);
        }
    }
    if (node < 0) return mq_graph_fail(Q, n), -1;
    int r = mq_quant_value(Q, node, sc, 0);
    if (r >= 0) {
        const ml_tensor *consts[1] = {NULL};
        mq_calibrate_node(Q, n, 0, &Q->qv[qx], consts, &Q->qv[r]);
    }
    return Q->st == VEIL_OK ? r : -1;
}

/* Pad (constant mode) on integers: concatenate blocks of the padding value's integer. */
int mq_do_pad(qctx *Q, const ml_node *n)
{
    int qx = mq_as_quant(Q, Q->vmap[n->in[0]], n);
    if (qx < 0) return -1;
    /* reuse the float kernel on a shape probe to get the output shape and validate */
    const qval *X = &Q->qv[qx];
    const ml_tensor *ins[4] = {&X->cal[0], n->nin > 1 ? mq_const_of(Q, n->in[1]) : NULL,
                               n->nin > 2 ? mq_const_of(Q, n->in[2]) : NULL, n->nin > 3 ? mq_const_of(Q, n->in[3]) : NULL};
    ml_tensor probe[1];
    if (ml_run_node(n, ins, probe, Q->err, Q->errlen) != VEIL_OK) return mq_failf(Q, VEIL_ERR_UNSUPPORTED, "%s", Q->err), -1;
    double value = ml_attr_float(n, "value", 0);
    if (ins[2] && ins[2]->size) value = ins[2]->data[0];
    int64_t padv = (int64_t)nearbyint(value / X->scale);
    int node = mq_centered(Q, X);
    int64_t shape[VEIL_MAX_DIMS];
    memcpy(shape, X->shape, sizeof shape);
    /* pads before/after per axis = output − input, split by locating the input in the output */
    for (int d = 0; d < X->ndim && node >= 0; d++) {
        int64_t extra = probe[0].shape[d] - X->shape[d];
        if (!extra) continue;
        /* before = pads[d]: recompute from the attribute/input */
        int64_t before = 0;
        const ml_tensor *p = ins[1];
        const ml_attr *pa = ml_attr_find(n, "pads");
        if (p && !ins[3]) before = (int64_t)p->data[d];
        else if (pa && !ins[3]) before = pa->ints[d];
        else if (p && ins[3])
            for (int64_t k = 0; k < ins[3]->size; k++) {
                int64_t ax = (int64_t)ins[3]->data[k];
                if (ax < 0) ax += X->ndim;
                if (ax == d) before = (int64_t)p->data[k];
            }
        int64_t after = extra - before;
        int parts[3], np = 0;
        for (int side = 0; side < 2; side++) {
            int64_t len = side ? after : before;
            if (len <= 0) continue;
            int64_t bs[VEIL_MAX_DIMS];
            memcpy(bs, shape, sizeof bs);
            bs[d] = len;
            int64_t cnt = 1;
            for (int k = 0; k < X->ndim; k++) cnt *= bs[k];
            int64_t *vals = veil_malloc(sizeof(int64_t) * (size_t)cnt + 1);
            if (!vals) return mq_failf(Q, VEIL_ERR_NOMEM, "out of memory"), -1;
            for (int64_t k = 0; k < cnt; k++) vals[k] = padv;
            int blk = veil_graph_constant(Q->g, X->ndim, bs, vals);
            veil_free(vals);
            if (side == 0) parts[np++] = blk, parts[np++] = node;
            else parts[np++] = blk;
        }
        if (before <= 0) {
            memmove(parts + 1, parts, sizeof(int) * (size_t)np);
            parts[0] = node;
            np++;
        }
        node = veil_graph_concatenate(Q->g, np, parts, d);
        shape[d] = probe[0].shape[d];
    }
    ml_tensor_free(&probe[0]);
    if (node < 0) return mq_graph_fail(Q, n), -1;
    int r = mq_quant_value(Q, node, X->scale, 0);
    if (r >= 0) mq_calibrate_node(Q, n, 0, &Q->qv[qx], ins, &Q->qv[r]);
    return Q->st == VEIL_OK ? r : -1;
}

/* Reshape, Flatten, Squeeze, Unsqueeze, Transpose, Identity, Dropout on a QUANT value */
int mq_do_shape(qctx *Q, const ml_node *n, int qi)
{
    const qval *X = &Q->qv[qi];
    const ml_tensor *ins[4] = {&X->cal[0], n->nin > 1 ? mq_const_of(Q, n->in[1]) : NULL, NULL, NULL};
    ml_tensor probe[2];
    if (ml_run_node(n, ins, probe, Q->err, Q->errlen) != VEIL_OK) return mq_failf(Q, VEIL_ERR_GRAPH, "%s", Q->err), -1;
    int node;
    if (n->op == ML_OP_TRANSPOSE) {
        const ml_attr *p = ml_attr_find(n, "perm");
        int perm[VEIL_MAX_DIMS];
        for (int i = 0; i < X->ndim; i++) perm[i] = p ? (int)p->ints[i] : X->ndim - 1 - i;
        node = veil_graph_transpose(Q->g, X->node, perm);
    } else if (n->op == ML_OP_IDENTITY || n->op == ML_OP_DROPOUT) {
        node = X->node;
    } else {
        node = veil_graph_reshape(Q->g, X->node, probe[0].ndim, probe[0].shape);
    }
    for (int j = 0; j < n->nout; j++) ml_tensor_free(&probe[j]);
    if (node < 0) return mq_graph_fail(Q, n), -1;
    int r = mq_quant_value(Q, node, X->scale, X->zp);
    if (r >= 0) mq_calibrate_node(Q, n, 0, &Q->qv[qi], ins, &Q->qv[r]);
    return Q->st == VEIL_OK ? r : -1;
}

/* a common scale for several QUANT operands: requantize the others to the first's scale */
static int rescaled_centered(qctx *Q, int qi, const qval *ref, const ml_node *at, int *qout)
{
    const qval *v = &Q->qv[qi];
    if (v->scale == ref->scale) {
        *qout = qi;
        return mq_centered(Q, v);
    }
    ml_quantizer rq = {ref->scale, 0, -INFINITY, INFINITY};
    int r = mq_materialize(Q, qi, &rq, 0, at);
    if (r < 0) return -1;
    *qout = r;
    return Q->qv[r].node;
}

int mq_do_concat(qctx *Q, const ml_node *n)
{
    int q[64], nodes[64];
    if (n->nin > 64) return mq_failf(Q, VEIL_ERR_UNSUPPORTED, "node '%s': too many inputs", n->name), -1;
    int first = -1;
    for (int i = 0; i < n->nin; i++) {
        const qval *v = &Q->qv[Q->vmap[n->in[i]]];
        if (v->kind == QV_CONST) return mq_failf(Q, VEIL_ERR_UNSUPPORTED, "node '%s': Concat of a constant with encrypted values", n->name), -1;
        if ((q[i] = mq_as_quant(Q, Q->vmap[n->in[i]], n)) < 0) return -1;
        if (first < 0) first = q[i];
    }
    qval ref = Q->qv[first];
    for (int i = 0; i < n->nin; i++)
        if ((nodes[i] = rescaled_centered(Q, q[i], &ref, n, &q[i])) < 0) return -1;
    int axis = (int)ml_attr_int(n, "axis", 0);
    if (axis < 0) axis += ref.ndim;
    int node = veil_graph_concatenate(Q->g, n->nin, nodes, axis);
    if (node < 0) return mq_graph_fail(Q, n), -1;
    int r = mq_quant_value(Q, node, ref.scale, 0);
    if (r < 0) return -1;
    for (size_t s = 0; s < Q->ns && Q->st == VEIL_OK; s++) {
        const ml_tensor *ins[64];
        ml_tensor outs[1];
        for (int i = 0; i < n->nin; i++) ins[i] = &Q->qv[q[i]].cal[s];
        if (ml_run_node(n, ins, outs, Q->err, Q->errlen) != VEIL_OK) return mq_failf(Q, VEIL_ERR_GRAPH, "%s", Q->err), -1;
        Q->qv[r].cal[s] = outs[0];
    }
    return Q->st == VEIL_OK ? r : -1;
}

/* Add / Sub / Mul of two encrypted values */
static int do_binary_dyn(qctx *Q, const ml_node *n)
{
    if (n->op != ML_OP_ADD && n->op != ML_OP_SUB && n->op != ML_OP_MUL)
        return mq_failf(Q, VEIL_ERR_UNSUPPORTED, "node '%s': %s of two encrypted values is not supported", n->name,
                        ml_op_names[n->op]), -1;
    int qa = mq_as_quant(Q, Q->vmap[n->in[0]], n), qb = mq_as_quant(Q, Q->vmap[n->in[1]], n);
    if (qa < 0 || qb < 0) return -1;
    int node;
    double sc;
    if (n->op == ML_OP_MUL) {
        node = veil_graph_multiply(Q->g, mq_centered(Q, &Q->qv[qa]), mq_centered(Q, &Q->qv[qb]));
        sc = Q->qv[qa].scale * Q->qv[qb].scale;
    } else {
        qval ref = Q->qv[qa];
        int xa = mq_centered(Q, &ref), xb = rescaled_centered(Q, qb, &ref, n, &qb);
        if (xb < 0) return -1;
        node = n->op == ML_OP_ADD ? veil_graph_add(Q->g, xa, xb) : veil_graph_sub(Q->g, xa, xb);
        sc = ref.scale;
    }
    if (node < 0) return mq_graph_fail(Q, n), -1;
    int r = mq_quant_value(Q, node, sc, 0);
    if (r < 0) return -1;
    for (size_t s = 0; s < Q->ns && Q->st == VEIL_OK; s++) {
        const ml_tensor *ins[2] = {&Q->qv[qa].cal[s], &Q->qv[qb].cal[s]};
        ml_tensor outs[1];
        if (ml_run_node(n, ins, outs, Q->err, Q->errlen) != VEIL_OK) return mq_failf(Q, VEIL_ERR_GRAPH, "%s", Q->err), -1;
        Q->qv[r].cal[s] = outs[0];
    }
    return Q->st == VEIL_OK ? r : -1;
}

/* append an element-wise op to an FN chain (a QUANT value starts a new chain); other: -1, or the
 * qval of the op's other operand, on the same base */
static int fn_append2(qctx *Q, int qi, const ml_node *n, int pos, int other)
{
    const qval *v = &Q->qv[qi];
    int base = v->kind == QV_FN ? v->base : qi;
    int r = mq_qv_new(Q, QV_FN);
    if (r < 0) return -1;
    v = &Q->qv[qi];
    qval *f = &Q->qv[r];
    f->base = base;
    f->nsteps = (v->kind == QV_FN ? v->nsteps : 0) + 1;
    f->steps = veil_malloc(sizeof(fn_step) * (size_t)f->nsteps);
    if (!f->steps) return mq_failf(Q, VEIL_ERR_NOMEM, "out of memory"), -1;
    if (v->kind == QV_FN) memcpy(f->steps, v->steps, sizeof(fn_step) * (size_t)v->nsteps);
    fn_step st = {(int)(n - Q->fg->nodes), pos, other, 1, 0};
    if (other >= 0) {
        const qval *A = &Q->qv[base], *B = &Q->qv[Q->qv[other].kind == QV_FN ? Q->qv[other].base : other];
        st.oa = B->scale / A->scale;
        st.ob = B->scale * (A->zp - B->zp);
    }
    f->steps[f->nsteps - 1] = st;
    mq_qv_set_shape(f, v->ndim, v->shape);
    if (!mq_cal_alloc(Q, f)) return -1;
    for (size_t s = 0; s < Q->ns && Q->st == VEIL_OK; s++)
        if (mq_run_step(Q, &f->steps[f->nsteps - 1], &Q->qv[qi].cal[s], &Q->qv[base].cal[s], &Q->qv[r].cal[s]) == VEIL_OK &&
            !ml_same_shape(&Q->qv[r].cal[s], &Q->qv[qi].cal[s]))
            mq_failf(Q, VEIL_ERR_UNSUPPORTED,
                     "node '%s' (%s): a constant operand broadcasts the encrypted value to a larger shape", n->name,
                     ml_op_names[n->op]);
    return Q->st == VEIL_OK ? r : -1;
}

int mq_fn_append(qctx *Q, int qi, const ml_node *n, int pos) { return fn_append2(Q, qi, n, pos, -1); }

/* The integer graph node under a QUANT or FN value (-1 for others). */
static int base_of(const qctx *Q, int qi)
{
    const qval *v = &Q->qv[qi];
    return v->kind == QV_QUANT ? v->node : v->kind == QV_FN ? Q->qv[v->base].node : -1;
}

/* Binary op on two encrypted values: one element-wise chain when both come from the same value
 * (x · sigmoid(x), GELU), else the integer operation. */
int mq_binary_dyn(qctx *Q, const ml_node *n)
{
    int a = Q->vmap[n->in[0]], b = Q->vmap[n->in[1]];
    if (base_of(Q, a) >= 0 && base_of(Q, a) == base_of(Q, b) && ml_same_shape(&Q->qv[a].cal[0], &Q->qv[b].cal[0]))
        return fn_append2(Q, a, n, 0, b);
    return do_binary_dyn(Q, n);
}

