/* Post-training and quantization-aware quantization of an imported float graph into veil's
 * integer op-graph, as Concrete ML does it (Concrete ML docs, "Quantization"; Jacob et al.,
 * "Quantization and Training of Neural Networks for Efficient Integer-Arithmetic-Only Inference",
 * CVPR 2018, §2 for the affine scheme real = scale · (q − zero_point)).
 *
 * Each ONNX value becomes one of:
 *   CONST  a float tensor known at compile time (weights, shapes; folded);
 *   QUANT  an integer node of the veil graph with a per-tensor scale and zero point;
 *   FN     a QUANT value followed by a chain of element-wise float ops (activations, batch-norm,
 *          requantization, scaling) that is not yet computed: it becomes one table lookup per
 *          element when a linear layer, a shape change that mixes elements, or the output needs it.
 * Linear layers (Gemm, MatMul, Conv, pooling, pad, reshapes) act on the integers (q − zp) with
 * quantized weights; their scales multiply. Every value also carries its calibration: the real
 * values it takes on each inputset sample through the quantized pipeline, from which the next
 * quantizers are calibrated (min/max) and the integer ranges and tables are derived. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "quant_impl.h"
#include "tree.h"

/* ---- the walk ----------------------------------------------------------------------------------- */

static int const_value(qctx *Q, const ml_node *n, int j, ml_tensor *t)
{
    int r = mq_qv_new(Q, QV_CONST);
    if (r < 0) {
        ml_tensor_free(t);
        return -1;
    }
    qval *v = &Q->qv[r];
    v->c = *t;
    mq_qv_set_shape(v, t->ndim, t->shape);
    /* a quantizer applied to a constant: its grid defines the integer weights */
    if (j == 0 && n->op == ML_OP_QUANT) {
        const ml_tensor *s = mq_const_of(Q, n->in[1]), *z = mq_const_of(Q, n->in[2]), *b = mq_const_of(Q, n->in[3]);
        if (s && z && b && s->size == 1) {
            double lo, hi;
            ml_quant_bounds((int)ml_attr_int(n, "signed", 1), (int)ml_attr_int(n, "narrow", 0), b->data[0], &lo, &hi);
            v->has_q = 1;
            v->cq = (ml_quantizer){s->data[0], z->data[0], lo, hi};
        }
    } else if (j == 0 && n->op == ML_OP_DEQUANTIZE_LINEAR) {
        const ml_tensor *s = mq_const_of(Q, n->in[1]), *z = n->nin > 2 ? mq_const_of(Q, n->in[2]) : NULL;
        const ml_tensor *x = mq_const_of(Q, n->in[0]);
        if (s && s->size == 1 && (!z || z->size == 1) && x) {
            double lo = INFINITY, hi = -INFINITY;
            for (int64_t i = 0; i < x->size; i++) lo = fmin(lo, x->data[i]), hi = fmax(hi, x->data[i]);
            v->has_q = 1;
            v->cq = (ml_quantizer){s->data[0], z ? z->data[0] : 0, fmin(lo, -128), fmax(hi, 127)};
            int ut = x->elem_type == 2; /* uint8 */
            if (ut) v->cq.qmin = 0, v->cq.qmax = 255;
            else v->cq.qmin = -128, v->cq.qmax = 127;
            if (lo < v->cq.qmin || hi > v->cq.qmax) v->cq.qmin = lo, v->cq.qmax = hi;
        }
    }
    return r;
}

static int only_post_readers(const ml_graph *g, int value)
{
    for (int k = 0; k < g->nnodes; k++)
        for (int i = 0; i < g->nodes[k].nin; i++)
            if (g->nodes[k].in[i] == value && !ml_is_post_op(g->nodes[k].op)) return 0;
    return 1;
}

static int use_count(const ml_graph *g, int value)
{
    int c = 0;
    for (int k = 0; k < g->nnodes; k++)
        for (int i = 0; i < g->nodes[k].nin; i++) c += g->nodes[k].in[i] == value;
    for (int j = 0; j < g->noutputs; j++) c += g->outputs[j] == value;
    return c;
}

/* What the walk knows of a node's operands: the first encrypted one, how many there are, and the
 * value the first one is. */
typedef struct {
    int dyn, ndyn, x;
} walk_in;
/* A handler lowers one node on encrypted values: the value it makes, or -1 with Q->st set. */
typedef int (*walk_handler)(qctx *Q, const ml_node *n, const walk_in *w);
#define FAIL(...) (mq_failf(__VA_ARGS__), -1)

/* Gemm, MatMul */
static int h_gemm(qctx *Q, const ml_node *n, const walk_in *w)
{
    (void)w;
    return mq_do_gemm_like(Q, n);
}

/* Conv */
static int h_conv(qctx *Q, const ml_node *n, const walk_in *w)
{
    if (w->dyn != 0 || w->ndyn > 1) return FAIL(Q, VEIL_ERR_UNSUPPORTED, "node '%s': Conv weights must be constant", n->name);
    return mq_do_conv(Q, n);
}

/* AveragePool, GlobalAveragePool, MaxPool */
static int h_pool(qctx *Q, const ml_node *n, const walk_in *w)
{
    (void)w;
    return mq_do_pool(Q, n);
}

/* Pad */
static int h_pad(qctx *Q, const ml_node *n, const walk_in *w)
{
    (void)w;
    return mq_do_pad(Q, n);
}

/* Concat */
static int h_concat(qctx *Q, const ml_node *n, const walk_in *w)
{
    (void)w;
    return mq_do_concat(Q, n);
}

/* Flatten, Reshape, Squeeze, Unsqueeze, Transpose, Identity, Dropout */
static int h_shape(qctx *Q, const ml_node *n, const walk_in *w)
{
    int r = -1;
    qval *v = &Q->qv[w->x];
    if (v->kind == QV_FN && mq_chain_uniform(Q, v) && n->op != ML_OP_IDENTITY && n->op != ML_OP_DROPOUT) {
        /* move the shape change before the chain: the same function on every element */
        int nb = mq_do_shape(Q, n, v->base);
        if (nb < 0) return -1;
        v = &Q->qv[w->x];
        r = mq_qv_new(Q, QV_FN);
        if (r < 0) return -1;
        v = &Q->qv[w->x];
        qval *f = &Q->qv[r];
        f->base = nb;
        f->nsteps = v->nsteps;
        f->steps = veil_malloc(sizeof(fn_step) * (size_t)v->nsteps + 1);
        if (!f->steps) return FAIL(Q, VEIL_ERR_NOMEM, "out of memory");
        memcpy(f->steps, v->steps, sizeof(fn_step) * (size_t)v->nsteps);
        mq_qv_set_shape(f, Q->qv[nb].ndim, Q->qv[nb].shape);
        if (!mq_cal_alloc(Q, f)) return -1;
        for (size_t s = 0; s < Q->ns && Q->st == VEIL_OK; s++)
            mq_chain_eval(Q, f->steps, f->nsteps, &Q->qv[nb].cal[s], &Q->qv[r].cal[s]);
    } else if (v->kind == QV_FN && (n->op == ML_OP_IDENTITY || n->op == ML_OP_DROPOUT)) {
        r = w->x;
    } else {
        int q = mq_as_quant(Q, w->x, n);
        if (q < 0) return -1;
        r = mq_do_shape(Q, n, q);
    }
    return r;
}

/* Quant (Brevitas) */
static int h_quant(qctx *Q, const ml_node *n, const walk_in *w)
{
    const ml_tensor *s = mq_const_of(Q, n->in[1]), *z = mq_const_of(Q, n->in[2]), *b = mq_const_of(Q, n->in[3]);
    if (w->dyn != 0 || !s || !z || !b || s->size != 1 || z->size != 1 || b->size != 1)
        return FAIL(Q, VEIL_ERR_UNSUPPORTED,
                    "node '%s': Quant on an encrypted value needs a per-tensor constant scale, zero point and bit width", n->name);
    double lo, hi;
    ml_quant_bounds((int)ml_attr_int(n, "signed", 1), (int)ml_attr_int(n, "narrow", 0), b->data[0], &lo, &hi);
    ml_quantizer q = {s->data[0], z->data[0], lo, hi};
    if (strcmp(ml_attr_string(n, "rounding_mode", "ROUND"), "ROUND") != 0)
        return FAIL(Q, VEIL_ERR_UNSUPPORTED, "node '%s': Quant rounding mode '%s' (ROUND only)", n->name,
                    ml_attr_string(n, "rounding_mode", ""));
    return mq_materialize(Q, w->x, &q, 0, n);
}

/* QuantizeLinear */
static int h_quantize_linear(qctx *Q, const ml_node *n, const walk_in *w)
{
    int r = -1;
    const ml_tensor *s = mq_const_of(Q, n->in[1]), *z = n->nin > 2 ? mq_const_of(Q, n->in[2]) : NULL;
    if (w->dyn != 0 || !s || s->size != 1 || (z && z->size != 1))
        return FAIL(Q, VEIL_ERR_UNSUPPORTED, "node '%s': QuantizeLinear on an encrypted value needs a per-tensor scale",
                    n->name);
    int ut = !z || z->elem_type == 2;
    ml_quantizer q = {s->data[0], z ? z->data[0] : 0, ut ? 0 : -128, ut ? 255 : 127};
    int m = mq_materialize(Q, w->x, &q, 0, n);
    if (m < 0) return -1;
    /* the ONNX value is the integer itself: scale 1, zero point 0 */
    r = mq_quant_value(Q, Q->qv[m].node, 1, 0);
    if (r < 0) return -1;
    for (size_t i = 0; i < Q->ns; i++) {
        if (ml_tensor_copy(&Q->qv[r].cal[i], &Q->qv[m].cal[i]) != VEIL_OK) return FAIL(Q, VEIL_ERR_NOMEM, "out of memory");
        for (int64_t e = 0; e < Q->qv[r].cal[i].size; e++)
            Q->qv[r].cal[i].data[e] = Q->qv[r].cal[i].data[e] / q.scale + q.zp;
    }
    return r;
}

/* DequantizeLinear */
static int h_dequantize_linear(qctx *Q, const ml_node *n, const walk_in *w)
{
    int r = -1;
    const ml_tensor *s = mq_const_of(Q, n->in[1]), *z = n->nin > 2 ? mq_const_of(Q, n->in[2]) : NULL;
    qval *v = &Q->qv[w->x];
    if (w->dyn == 0 && s && s->size == 1 && (!z || z->size == 1) && v->kind == QV_QUANT && v->scale == 1 && v->zp == 0) {
        r = mq_quant_value(Q, v->node, s->data[0], z ? z->data[0] : 0);
        if (r < 0) return -1;
        const ml_tensor *consts[3] = {NULL, s, z};
        mq_calibrate_node(Q, n, 0, &Q->qv[w->x], consts, &Q->qv[r]);
    } else if (w->dyn == 0) {
        r = mq_fn_append(Q, w->x, n, 0);
    } else {
        return FAIL(Q, VEIL_ERR_UNSUPPORTED, "node '%s': DequantizeLinear with an encrypted scale", n->name);
    }
    return r;
}

/* Mul, Div */
static int h_mul_div(qctx *Q, const ml_node *n, const walk_in *w)
{
    int r = -1;
    if (w->ndyn == 1) {
        const ml_tensor *c = mq_const_of(Q, n->in[1 - w->dyn]);
        qval *v = &Q->qv[w->x];
        if (v->kind == QV_QUANT && c && c->size == 1 && c->data[0] != 0 && (n->op == ML_OP_MUL || w->dyn == 0) &&
            c->ndim <= v->ndim) {
            /* a scalar factor only changes the scale */
            double f = n->op == ML_OP_MUL ? c->data[0] : 1 / c->data[0];
            r = mq_quant_value(Q, v->node, v->scale * f, v->zp);
            if (r < 0) return -1;
            const ml_tensor *consts[2] = {c, c};
            mq_calibrate_node(Q, n, w->dyn, &Q->qv[w->x], consts, &Q->qv[r]);
            return r;
        }
        return mq_fn_append(Q, w->x, n, w->dyn);
    }
    return mq_binary_dyn(Q, n);
}

/* Add, Sub */
static int h_add_sub(qctx *Q, const ml_node *n, const walk_in *w)
{
    int r = -1;
    if (w->ndyn == 1) {
        const ml_tensor *c = mq_const_of(Q, n->in[1 - w->dyn]);
        qval *v = &Q->qv[w->x];
        if (v->kind == QV_QUANT && v->zp == 0 && c && c->ndim <= v->ndim && w->dyn == 0 && fabs(v->scale) < 1e-3) {
            /* a bias on a fine accumulator: add it on the accumulator's scale */
            ml_tensor cq;
            if (ml_tensor_copy(&cq, c) != VEIL_OK) return FAIL(Q, VEIL_ERR_NOMEM, "out of memory");
            int64_t *ci = veil_malloc(sizeof(int64_t) * (size_t)c->size + 1);
            if (!ci) {
                ml_tensor_free(&cq);
                return FAIL(Q, VEIL_ERR_NOMEM, "out of memory");
            }
            for (int64_t i = 0; i < c->size; i++) ci[i] = (int64_t)nearbyint(c->data[i] / v->scale), cq.data[i] = (double)ci[i] * v->scale;
            int cn = veil_graph_constant(Q->g, c->ndim, c->shape, ci);
            int node = n->op == ML_OP_ADD ? veil_graph_add(Q->g, v->node, cn) : veil_graph_sub(Q->g, v->node, cn);
            veil_free(ci);
            if (node < 0) {
                ml_tensor_free(&cq);
                return (mq_graph_fail(Q, n), -1);
            }
            r = mq_quant_value(Q, node, v->scale, 0);
            if (r >= 0) {
                const ml_tensor *consts[2] = {&cq, &cq};
                mq_calibrate_node(Q, n, 0, &Q->qv[w->x], consts, &Q->qv[r]);
            }
            ml_tensor_free(&cq);
            return r;
        }
        return mq_fn_append(Q, w->x, n, w->dyn);
    }
    return mq_binary_dyn(Q, n);
}

/* Pow */
static int h_pow(qctx *Q, const ml_node *n, const walk_in *w)
{
    if (w->ndyn > 1 || w->dyn != 0) return FAIL(Q, VEIL_ERR_UNSUPPORTED, "node '%s': Pow with an encrypted exponent", n->name);
    return mq_fn_append(Q, w->x, n, 0);
}

/* Clip, BatchNormalization */
static int h_const_params(qctx *Q, const ml_node *n, const walk_in *w)
{
    if (w->ndyn > 1 || w->dyn != 0)
        return FAIL(Q, VEIL_ERR_UNSUPPORTED, "node '%s': %s parameters must be constant", n->name, ml_op_names[n->op]);
    return mq_fn_append(Q, w->x, n, 0);
}

/* Softmax, LogSoftmax, ArgMax, Normalizer, ZipMap, ScoresLabel, ScoresTransform: client-side only */
static int h_client_only(qctx *Q, const ml_node *n, const walk_in *w)
{
    (void)w;
    return FAIL(Q, VEIL_ERR_UNSUPPORTED,
                "node '%s': %s is only supported as the model's final operation (it runs on the client after decryption)",
                n->name, ml_op_names[n->op]);
}

/* Gather */
static int h_gather(qctx *Q, const ml_node *n, const walk_in *w)
{
    (void)w;
    return FAIL(Q, VEIL_ERR_UNSUPPORTED, "node '%s': Gather on an encrypted value is not supported", n->name);
}

/* tree ensembles (TreeScores) */
static int h_trees(qctx *Q, const ml_node *n, const walk_in *w)
{
    (void)w;
    int ii = -1;
    for (int i = 0; i < Q->fg->ninputs; i++)
        if (Q->fg->inputs[i] == n->in[0] && Q->out->in[i].npre > 0 && Q->out->in[i].q.scale == 1) ii = i;
    if (ii < 0)
        return FAIL(Q, VEIL_ERR_UNSUPPORTED, "node '%s': a tree ensemble must read a model input of at most %d features "
                    "directly", n->name, ML_PRE_MAX);
    return mq_do_trees(Q, n, ii);
}

/* the rest: element-wise operators as steps of a lookup chain, or refused by name */
static int h_elementwise(qctx *Q, const ml_node *n, const walk_in *w)
{
    if (ml_op_is_elementwise(n->op)) {
        return mq_fn_append(Q, w->x, n, w->dyn);
    }
    return FAIL(Q, VEIL_ERR_UNSUPPORTED, "node '%s': %s on an encrypted value is not supported", n->name,
                ml_op_names[n->op]);
}

/* The handler of each operator on an encrypted value (h_elementwise for the rest). */
static const walk_handler handlers[ML_OP_COUNT] = {
    [ML_OP_GEMM] = h_gemm,
    [ML_OP_MATMUL] = h_gemm,
    [ML_OP_CONV] = h_conv,
    [ML_OP_AVERAGE_POOL] = h_pool,
    [ML_OP_GLOBAL_AVERAGE_POOL] = h_pool,
    [ML_OP_MAX_POOL] = h_pool,
    [ML_OP_PAD] = h_pad,
    [ML_OP_CONCAT] = h_concat,
    [ML_OP_FLATTEN] = h_shape,
    [ML_OP_RESHAPE] = h_shape,
    [ML_OP_SQUEEZE] = h_shape,
    [ML_OP_UNSQUEEZE] = h_shape,
    [ML_OP_TRANSPOSE] = h_shape,
    [ML_OP_IDENTITY] = h_shape,
    [ML_OP_DROPOUT] = h_shape,
    [ML_OP_QUANT] = h_quant,
    [ML_OP_QUANTIZE_LINEAR] = h_quantize_linear,
    [ML_OP_DEQUANTIZE_LINEAR] = h_dequantize_linear,
    [ML_OP_MUL] = h_mul_div,
    [ML_OP_DIV] = h_mul_div,
    [ML_OP_ADD] = h_add_sub,
    [ML_OP_SUB] = h_add_sub,
    [ML_OP_POW] = h_pow,
    [ML_OP_CLIP] = h_const_params,
    [ML_OP_BATCH_NORM] = h_const_params,
    [ML_OP_SOFTMAX] = h_client_only,
    [ML_OP_LOG_SOFTMAX] = h_client_only,
    [ML_OP_ARGMAX] = h_client_only,
    [ML_OP_NORMALIZER] = h_client_only,
    [ML_OP_ZIPMAP] = h_client_only,
    [ML_OP_SCORES_LABEL] = h_client_only,
    [ML_OP_SCORES_TRANSFORM] = h_client_only,
    [ML_OP_GATHER] = h_gather,
    [ML_OP_TREE_SCORES] = h_trees,
};

static int walk_node(qctx *Q, int k)
{
    const ml_node *n = &Q->fg->nodes[k];
    int dyn = -1, ndyn = 0;
    for (int i = 0; i < n->nin; i++) {
        if (n->in[i] < 0) continue;
        if (Q->qv[Q->vmap[n->in[i]]].kind != QV_CONST) {
            if (dyn < 0) dyn = i;
            ndyn++;
        }
    }
    if (ndyn == 0 || n->op == ML_OP_SHAPE) {
        /* constant folding; Shape needs only the shape */
        const ml_tensor *ins[64];
        ml_tensor outs[8], shp = {0};
        if (n->nin > 64 || n->nout > 8) return mq_failf(Q, VEIL_ERR_UNSUPPORTED, "node '%s': too many operands", n->name);
        for (int i = 0; i < n->nin; i++) ins[i] = mq_const_of(Q, n->in[i]);
        if (n->op == ML_OP_SHAPE && ndyn) {
            const qval *v = &Q->qv[Q->vmap[n->in[0]]];
            shp.ndim = v->ndim;
            memcpy(shp.shape, v->shape, sizeof shp.shape);
            shp.size = v->size;
            shp.data = v->cal[0].data;
            ins[0] = &shp;
        }
        veil_status st = ml_run_node(n, ins, outs, Q->err, Q->errlen);
        if (st != VEIL_OK) return mq_failf(Q, st, "%s", Q->err);
        for (int j = 0; j < n->nout; j++) {
            int r = const_value(Q, n, j, &outs[j]);
            if (r < 0) return Q->st;
            Q->vmap[n->out[j]] = r;
        }
        return VEIL_OK;
    }
    const walk_in w = {dyn, ndyn, Q->vmap[n->in[dyn]]};
    const walk_handler h = (unsigned)n->op < ML_OP_COUNT && handlers[n->op] ? handlers[n->op] : h_elementwise;
    const int r = h(Q, n, &w);
    if (r < 0) return Q->st != VEIL_OK ? Q->st : mq_failf(Q, VEIL_ERR_GRAPH, "node '%s' failed", n->name);
    Q->vmap[n->out[0]] = r;
    if (Q->qv[r].kind == QV_QUANT && n->op != ML_OP_QUANT && n->op != ML_OP_QUANTIZE_LINEAR) {
        int64_t lo, hi;
        mq_quant_range(Q, &Q->qv[r], &lo, &hi);
        mq_report_value(Q, n, "value", lo, hi);
    }
    for (int j = 1; j < n->nout; j++) Q->vmap[n->out[j]] = -1;
    return Q->st;
}

/* The Concat node that model input `ii` alone feeds when every operand of that Concat is a model
 * input read by nothing else (then one quantizer serves them all, and the Concat needs no
 * rescaling lookup); -1 otherwise. */
static int input_concat(const ml_graph *g, int ii)
{
    int v = g->inputs[ii];
    if (use_count(g, v) != 1) return -1;
    for (int k = 0; k < g->nnodes; k++) {
        const ml_node *n = &g->nodes[k];
        int reads = 0;
        for (int i = 0; i < n->nin; i++) reads |= n->in[i] == v;
        if (!reads) continue;
        if (n->op != ML_OP_CONCAT) return -1;
        for (int i = 0; i < n->nin; i++) {
            int w = n->in[i], is_input = 0;
            for (int j = 0; j < g->ninputs; j++) is_input |= g->inputs[j] == w;
            if (!is_input || use_count(g, w) != 1) return -1;
        }
        return k;
    }
    return -1;
}

veil_status ml_quantize(const ml_graph *fg, const double *inputset, size_t nsamples, const veil_model_options *o,
                        int output_lookup, ml_quantized *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    qctx Q = {.fg = fg, .o = o, .ns = nsamples, .out = out, .err = err, .errlen = errlen, .st = VEIL_OK};
    if (fg->ninputs > ML_MAX_IO || fg->noutputs > ML_MAX_IO)
        return mq_failf(&Q, VEIL_ERR_UNSUPPORTED, "the model has %d inputs and %d outputs; at most %d of each are supported",
                        fg->ninputs, fg->noutputs, ML_MAX_IO);
    out->nin = fg->ninputs;
    out->nout = fg->noutputs;
    if (nsamples == 0) return mq_failf(&Q, VEIL_ERR_INVALID_ARG, "the inputset is empty");
    int *absorbed = veil_calloc((size_t)fg->nnodes + 1, sizeof(int));
    Q.vmap = veil_malloc(sizeof(int) * (size_t)fg->nvalues + 1);
    if (!absorbed || !Q.vmap || veil_graph_new(&Q.g) != VEIL_OK) {
        veil_free(absorbed);
        veil_free(Q.vmap);
        return mq_failf(&Q, VEIL_ERR_NOMEM, "out of memory");
    }
    for (int i = 0; i < fg->nvalues; i++) Q.vmap[i] = -1;
    /* constants */
    for (int i = 0; i < fg->nvalues && Q.st == VEIL_OK; i++) {
        if (!fg->values[i].is_const) continue;
        int r = mq_qv_new(&Q, QV_CONST);
        if (r < 0) break;
        if (ml_tensor_copy(&Q.qv[r].c, &fg->values[i].value) != VEIL_OK) {
            mq_failf(&Q, VEIL_ERR_NOMEM, "out of memory");
            break;
        }
        mq_qv_set_shape(&Q.qv[r], Q.qv[r].c.ndim, Q.qv[r].c.shape);
        Q.vmap[i] = r;
    }
    /* client-side post-processing: each output's trailing Softmax / LogSoftmax / ArgMax / Sigmoid /
     * Cast and ONNX-ML parts; two outputs may read the same scores (a classifier's label and
     * probabilities) */
    int outv[ML_MAX_IO];
    for (int j = 0; j < fg->noutputs && Q.st == VEIL_OK; j++) {
        ml_out_info *oi = &out->out[j];
        snprintf(oi->name, sizeof oi->name, "%s", fg->values[fg->outputs[j]].name);
        outv[j] = fg->outputs[j];
        int post_nodes[8], npost = 0;
        while (npost < 8) {
            int p = fg->values[outv[j]].producer;
            if (p < 0 || !ml_is_post_op(fg->nodes[p].op) || fg->nodes[p].nin < 1 || fg->nodes[p].in[0] < 0) break;
            int src = fg->nodes[p].in[0];
            if (fg->values[src].is_const || (use_count(fg, src) != 1 && !only_post_readers(fg, src))) break;
            if (fg->nodes[p].op == ML_OP_CAST && fg->values[src].producer < 0) break;
            post_nodes[npost++] = p;
            absorbed[p] = 1;
            outv[j] = src;
        }
        for (int i = npost - 1, k = 0; i >= 0; i--, k++) {
            const ml_node *pn = &fg->nodes[post_nodes[i]];
            ml_post_op *po = &oi->post[k];
            po->op = pn->op;
            po->axis = ml_attr_int(pn, "axis", pn->op == ML_OP_ARGMAX ? 0 : -1);
            po->keepdims = ml_attr_int(pn, "keepdims", 1);
            po->select_last = ml_attr_int(pn, "select_last_index", 0);
            if (pn->op == ML_OP_SCORES_TRANSFORM) {
                po->mode = ml_attr_int(pn, "mode", 0);
                const ml_attr *b = ml_attr_find(pn, "base");
                if (b && (b->type != ML_ATTR_FLOATS || b->n > ML_POST_MAX_VALUES)) {
                    mq_failf(&Q, VEIL_ERR_UNSUPPORTED, "node '%s': more than %d base values", pn->name, ML_POST_MAX_VALUES);
                    break;
                }
                po->nv = b ? (int)b->n : 0;
                if (b) memcpy(po->v, b->floats, sizeof(double) * b->n);
            }
            if (pn->op == ML_OP_CAST) po->mode = ml_attr_int(pn, "to", 1);
            if (pn->op == ML_OP_NORMALIZER) /* an unknown norm is refused at import */
                po->mode = ml_name_index(ml_norm_names, ML_NORM_COUNT, ml_attr_string(pn, "norm", "MAX"));
            if (pn->op == ML_OP_SCORES_LABEL) {
                const ml_attr *l = ml_attr_find(pn, "labels");
                if (!l || l->type != ML_ATTR_FLOATS || l->n > ML_POST_MAX_VALUES) {
                    mq_failf(&Q, VEIL_ERR_UNSUPPORTED, "node '%s': a classifier of more than %d classes is not supported",
                             pn->name, ML_POST_MAX_VALUES);
                    break;
                }
                po->nv = (int)l->n;
                memcpy(po->v, l->floats, sizeof(double) * l->n);
            }
        }
        oi->npost = npost;
    }
    /* the inputs: quantized by the client, each with the model's own first Quant node when there is one */
    int64_t total = 0;
    for (int i = 0; i < fg->ninputs; i++) total += fg->input_shapes[i].size;
    Q.inputset = inputset, Q.stride = (size_t)total;
    out->inputset_q = veil_malloc(sizeof(int64_t) * nsamples * (size_t)total + 1);
    if (!out->inputset_q) mq_failf(&Q, VEIL_ERR_NOMEM, "out of memory");
    veil_sb_printf(&Q.rep, "%-28s %-18s %-10s %s", "node", "op", "what", "range");
    veil_sb_pad(&Q.rep, 88);
    veil_sb_printf(&Q.rep, "bit-width\n");
    /* a Scaler that alone reads a model input runs on the client, before quantization (as a
     * scikit-learn pipeline's StandardScaler runs in the clear before Concrete ML's quantizers) */
    int pre_node[ML_MAX_IO], tree_in[ML_MAX_IO]; /* tree_in: 2^bits − 1 for a tree ensemble's input */
    for (int ii = 0; ii < fg->ninputs; ii++) {
        ml_in_info *in = &out->in[ii];
        const ml_tensor *ish = &fg->input_shapes[ii];
        int64_t F = ish->ndim ? ish->shape[ish->ndim - 1] : 1;
        pre_node[ii] = -1;
        tree_in[ii] = 0;
        if (use_count(fg, fg->inputs[ii]) != 1 || F > ML_PRE_MAX) continue;
        /* an input that only a tree ensemble reads: quantized per feature on the client, each
         * feature on a grid of 2^bits levels chosen for its thresholds (mq_tree_grid; Concrete ML
         * quantizes tree inputs per feature over their range) */
        for (int k = 0; k < fg->nnodes && ish->size == F; k++) {
            const ml_node *n = &fg->nodes[k];
            if (n->op != ML_OP_TREE_SCORES || n->in[0] != fg->inputs[ii]) continue;
            int64_t total_in = 0, off = 0;
            for (int j = 0; j < fg->ninputs; j++) total_in += fg->input_shapes[j].size, off += j < ii ? fg->input_shapes[j].size : 0;
            double M = ldexp(1, mq_tree_bits(o->n_bits.op_inputs)) - 1;
            ml_trees tr;
            if (ml_trees_parse(n, &tr, err, errlen) != VEIL_OK) break; /* refused again, with its reason, by the walk */
            double *xs = veil_malloc(sizeof(double) * nsamples + 1);
            if (!xs) {
                ml_trees_free(&tr);
                mq_failf(&Q, VEIL_ERR_NOMEM, "out of memory");
                break;
            }
            size_t miss = 0, even = 0, ncmp = 0;
            for (int64_t f = 0; f < F; f++) {
                size_t e = 0;
                for (size_t sm = 0; sm < nsamples; sm++) xs[sm] = inputset[sm * (size_t)total_in + (size_t)off + (size_t)f];
                miss += mq_tree_grid(&tr, f, xs, nsamples, M, &in->pre_off[f], &in->pre_scale[f], &e);
                even += e;
            }
            for (int64_t i = 0; i < tr.n; i++) ncmp += tr.mode[i] != ML_TREE_LEAF;
            veil_sb_printf(&Q.rlog,
                           "input '%s': %lld features on %d-bit grids aligned to the trees' thresholds: %zu of %zu "
                           "inputset comparisons go the other way than in the float model (%zu on even grids)\n",
                           fg->values[fg->inputs[ii]].name, (long long)F, mq_tree_bits(o->n_bits.op_inputs), miss,
                           ncmp * nsamples, even);
            veil_free(xs);
            ml_trees_free(&tr);
            in->npre = (int)F;
            tree_in[ii] = (int)M;
            out->tree_bits = mq_tree_bits(o->n_bits.op_inputs);
            break;
        }
        if (tree_in[ii]) continue;
        for (int k = 0; k < fg->nnodes; k++) {
            const ml_node *n = &fg->nodes[k];
            if (n->op != ML_OP_SCALER || n->nin != 1 || n->in[0] != fg->inputs[ii]) continue;
            const ml_attr *oa = ml_attr_find(n, "offset"), *sa = ml_attr_find(n, "scale");
            size_t no = oa && oa->type == ML_ATTR_FLOATS ? oa->n : 0, ns = sa && sa->type == ML_ATTR_FLOATS ? sa->n : 0;
            if ((no > 1 && no != (size_t)F) || (ns > 1 && ns != (size_t)F)) break;
            in->npre = (int)F;
            for (int64_t f = 0; f < F; f++) {
                in->pre_off[f] = no ? oa->floats[no == 1 ? 0 : f] : 0;
                in->pre_scale[f] = ns ? sa->floats[ns == 1 ? 0 : f] : 1;
            }
            pre_node[ii] = k;
            absorbed[k] = 1;
            break;
        }
    }
    for (int ii = 0, off = 0; ii < fg->ninputs && Q.st == VEIL_OK; off += (int)fg->input_shapes[ii].size, ii++) {
        ml_in_info *in = &out->in[ii];
        const ml_tensor *ish = &fg->input_shapes[ii];
        int64_t isz = ish->size;
        in->ndim = ish->ndim;
        in->size = isz;
        memcpy(in->shape, ish->shape, sizeof in->shape);
        int inv = fg->inputs[ii], in_quant_node = -1;
        for (int k = 0; k < fg->nnodes && pre_node[ii] < 0 && !tree_in[ii]; k++) {
            const ml_node *n = &fg->nodes[k];
            if (n->op == ML_OP_QUANT && n->nin == 4 && n->in[0] == inv && use_count(fg, inv) == 1) {
                const ml_tensor *s = mq_const_of(&Q, n->in[1]), *z = mq_const_of(&Q, n->in[2]), *b = mq_const_of(&Q, n->in[3]);
                if (s && z && b && s->size == 1 && z->size == 1 && b->size == 1 &&
                    strcmp(ml_attr_string(n, "rounding_mode", "ROUND"), "ROUND") == 0) {
                    double lo, hi;
                    ml_quant_bounds((int)ml_attr_int(n, "signed", 1), (int)ml_attr_int(n, "narrow", 0), b->data[0], &lo,
                                    &hi);
                    in->q = (ml_quantizer){s->data[0], z->data[0], lo, hi};
                    in_quant_node = k;
                    absorbed[k] = 1;
                }
            }
        }
        if (tree_in[ii]) {
            in->q = (ml_quantizer){1, 0, 0, (double)tree_in[ii]};
        } else if (in_quant_node < 0) {
            /* calibrated on its own values, or on those of every input of the Concat it feeds */
            double lo = INFINITY, hi = -INFINITY;
            int cat = input_concat(fg, ii);
            for (int jj = 0, joff = 0; jj < fg->ninputs; joff += (int)fg->input_shapes[jj].size, jj++) {
                if (jj != ii && (cat < 0 || input_concat(fg, jj) != cat)) continue;
                for (size_t sm = 0; sm < nsamples; sm++)
                    for (int64_t e = 0; e < fg->input_shapes[jj].size; e++) {
                        double v = ml_input_pre(&out->in[jj], e, inputset[sm * (size_t)total + (size_t)joff + (size_t)e]);
                        lo = fmin(lo, v), hi = fmax(hi, v);
                    }
            }
            if (!isfinite(lo) || !isfinite(hi)) {
                mq_failf(&Q, VEIL_ERR_INVALID_ARG, "the inputset holds non-finite values (input '%s')", fg->values[inv].name);
                break;
            }
            double pc = o->input_clip;
            if (pc > 0 && pc < 1) {
                /* percentile calibration over the same values */
                size_t nall = 0, nv = 0, k = 0;
                for (int jj = 0; jj < fg->ninputs; jj++)
                    if (jj == ii || (cat >= 0 && input_concat(fg, jj) == cat)) nall += nsamples * (size_t)fg->input_shapes[jj].size;
                size_t stride = (nall + MQ_CLIP_MAX_VALUES - 1) / MQ_CLIP_MAX_VALUES;
                double *vals = veil_malloc(sizeof(double) * (nall / stride + 1));
                if (!vals) {
                    mq_failf(&Q, VEIL_ERR_NOMEM, "out of memory");
                    break;
                }
                for (int jj = 0, joff = 0; jj < fg->ninputs; joff += (int)fg->input_shapes[jj].size, jj++) {
                    if (jj != ii && (cat < 0 || input_concat(fg, jj) != cat)) continue;
                    for (size_t sm = 0; sm < nsamples; sm++)
                        for (int64_t e = 0; e < fg->input_shapes[jj].size; e++, k++)
                            if (k % stride == 0)
                                vals[nv++] = ml_input_pre(&out->in[jj], e, inputset[sm * (size_t)total + (size_t)joff + (size_t)e]);
                }
                mq_quantiles(vals, nv, pc, &lo, &hi);
                veil_free(vals);
            }
            in->q = mq_calibrated(lo, hi, o->n_bits.model_inputs);
        }
        int node = veil_graph_input(Q.g, fg->values[inv].name, VEIL_ENCRYPTED, ish->ndim, ish->shape);
        int qi = node < 0 ? -1 : mq_quant_value(&Q, node, in->q.scale, in->q.zp);
        if (qi < 0) {
            if (Q.st == VEIL_OK) mq_failf(&Q, VEIL_ERR_GRAPH, "input '%s': %s", fg->values[inv].name, veil_graph_last_error(Q.g));
            break;
        }
        for (size_t sm = 0; sm < nsamples && Q.st == VEIL_OK; sm++) {
            ml_tensor *c = &Q.qv[qi].cal[sm];
            if (ml_tensor_alloc(c, ish->ndim, ish->shape) != VEIL_OK) {
                mq_failf(&Q, VEIL_ERR_NOMEM, "out of memory");
                break;
            }
            for (int64_t e = 0; e < isz; e++) {
                size_t at = sm * (size_t)total + (size_t)off + (size_t)e;
                double q = ml_quantize_value(&in->q, ml_input_pre(in, e, inputset[at]));
                out->inputset_q[at] = (int64_t)q;
                c->data[e] = in->q.scale * (q - in->q.zp);
            }
        }
        if (Q.st != VEIL_OK) break;
        Q.vmap[inv] = qi;
        if (in_quant_node >= 0) Q.vmap[fg->nodes[in_quant_node].out[0]] = qi;
        if (pre_node[ii] >= 0) Q.vmap[fg->nodes[pre_node[ii]].out[0]] = qi;
        int64_t lo, hi;
        mq_quant_range(&Q, &Q.qv[qi], &lo, &hi);
        veil_sb_printf(&Q.rep, "%-28s %-18s %-10s [%lld, %lld]", fg->values[inv].name, "input", "value", (long long)lo,
                       (long long)hi);
        veil_sb_pad(&Q.rep, 88);
        veil_sb_printf(&Q.rep, "%s%u\n", lo < 0 ? "int" : "uint", mq_bits_of(lo, hi));
        if (mq_bits_of(lo, hi) > Q.max_bits) Q.max_bits = mq_bits_of(lo, hi);
    }
    for (int k = 0; k < fg->nnodes && Q.st == VEIL_OK; k++) {
        if (absorbed[k]) continue;
        const ml_node *n = &fg->nodes[k];
        int reachable = 1;
        for (int i = 0; i < n->nin; i++)
            if (n->in[i] >= 0 && Q.vmap[n->in[i]] < 0) reachable = 0;
        if (!reachable) {
            mq_failf(&Q, VEIL_ERR_UNSUPPORTED, "node '%s' (%s) reads a value veil does not compute", n->name,
                     ml_op_names[n->op]);
            break;
        }
        walk_node(&Q, k);
    }
    /* the outputs */
    for (int j = 0; j < fg->noutputs && Q.st == VEIL_OK; j++) {
        ml_out_info *oi = &out->out[j];
        int r = Q.vmap[outv[j]];
        const ml_node *last = fg->values[outv[j]].producer >= 0 ? &fg->nodes[fg->values[outv[j]].producer] : NULL;
        if (r < 0 || Q.qv[r].kind == QV_CONST) {
            mq_failf(&Q, VEIL_ERR_UNSUPPORTED, "the model's output '%s' does not depend on its inputs", oi->name);
            break;
        }
        if (Q.qv[r].kind == QV_FN) {
            int ob = o->n_bits.model_outputs;
            r = last ? mq_materialize(&Q, r, NULL, ob, last) : -1;
        } else if (o->rounding_bits > 0 && last) {
            /* a wide output accumulator: decrypting all its bits needs noise below its last
             * bit; the other choice keeps its rounded high bits through one lookup per
             * element (the caller compiles both and keeps the cheaper) */
            int64_t lo, hi;
            mq_quant_range(&Q, &Q.qv[r], &lo, &hi);
            if (mq_bits_of(lo, hi) > (unsigned)o->rounding_bits) {
                out->output_choice = 1;
                if (output_lookup) {
                    ml_quantizer id = {Q.qv[r].scale, Q.qv[r].zp, -INFINITY, INFINITY};
                    r = mq_materialize(&Q, r, &id, 0, last);
                }
            }
        }
        if (r < 0) {
            if (Q.st == VEIL_OK) mq_failf(&Q, VEIL_ERR_GRAPH, "output '%s' failed", oi->name);
            break;
        }
        const qval *v = &Q.qv[r];
        oi->scale = v->scale;
        oi->zp = v->zp;
        oi->qndim = v->ndim;
        memcpy(oi->qshape, v->shape, sizeof oi->qshape);
        oi->qsize = 1;
        for (int d = 0; d < v->ndim; d++) oi->qsize *= v->shape[d];
        if (veil_graph_output(Q.g, v->node) != VEIL_OK) mq_failf(&Q, VEIL_ERR_GRAPH, "%s", veil_graph_last_error(Q.g));
        /* the final output shape after post-processing */
        ml_tensor y = {0}, z = {0};
        if (Q.st == VEIL_OK && ml_tensor_copy(&y, &v->cal[0]) == VEIL_OK &&
            ml_post_apply(oi->post, oi->npost, &y, &z) == VEIL_OK) {
            oi->ndim = z.ndim;
            oi->size = z.size;
            memcpy(oi->shape, z.shape, sizeof oi->shape);
        } else if (Q.st == VEIL_OK) {
            mq_failf(&Q, VEIL_ERR_UNSUPPORTED, "output '%s': its post-processing fails", oi->name);
        }
        ml_tensor_free(&y);
        ml_tensor_free(&z);
    }
    if (Q.st == VEIL_OK && veil_graph_status(Q.g) != VEIL_OK)
        mq_failf(&Q, VEIL_ERR_GRAPH, "integer graph: %s", veil_graph_last_error(Q.g));
    veil_sb_printf(&Q.rep, "max bit-width: %u\n", Q.max_bits);
    out->report = veil_sb_take(&Q.rep);
    out->rounding_log = veil_sb_take(&Q.rlog);
    out->max_bits = Q.max_bits;
    out->g = Q.g;
    for (int i = 0; i < Q.nqv; i++) mq_qv_free(&Q, &Q.qv[i]);
    veil_free(Q.qv);
    veil_free(Q.vmap);
    veil_free(absorbed);
    veil_sb_free(&Q.rep);
    veil_sb_free(&Q.rlog);
    if (Q.st != VEIL_OK) ml_quantized_free(out);
    return Q.st;
}

void ml_quantized_free(ml_quantized *q)
{
    if (!q) return;
    veil_graph_free(q->g);
    veil_free(q->inputset_q);
    veil_free(q->report);
    veil_free(q->rounding_log);
    for (size_t i = 0; i < q->nctx; i++) {
        table_ctx *t = q->ctxs[i];
        veil_free(t->table);
        veil_free(t);
    }
    veil_free(q->ctxs);
    memset(q, 0, sizeof *q);
}

