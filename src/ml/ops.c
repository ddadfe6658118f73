/* Float kernels of the imported operators (ONNX operator specifications, opsets 7–21), in
 * double precision. They serve the float forward pass (checked against onnxruntime) and the
 * calibration of the quantized model. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "ml.h"

#define ONNX_INT8 3
#define ONNX_UINT8 2
#define ONNX_INT16 5
#define ONNX_UINT16 4
#define ONNX_INT32 6
#define ONNX_INT64 7
#define ONNX_FLOAT 1


int ml_op_is_elementwise(ml_op op)
{
    switch (op) {
    case ML_OP_ADD: case ML_OP_SUB: case ML_OP_MUL: case ML_OP_DIV: case ML_OP_NEG: case ML_OP_RELU:
    case ML_OP_SIGMOID: case ML_OP_TANH: case ML_OP_LEAKY_RELU: case ML_OP_ELU: case ML_OP_SELU:
    case ML_OP_SOFTPLUS: case ML_OP_HARD_SIGMOID: case ML_OP_HARD_SWISH: case ML_OP_ERF: case ML_OP_CLIP:
    case ML_OP_ABS: case ML_OP_EXP: case ML_OP_LOG: case ML_OP_POW: case ML_OP_SQRT: case ML_OP_BATCH_NORM:
    case ML_OP_QUANT: case ML_OP_QUANTIZE_LINEAR: case ML_OP_DEQUANTIZE_LINEAR: case ML_OP_IDENTITY:
    case ML_OP_DROPOUT: case ML_OP_CAST: case ML_OP_SCALER:
        return 1;
    default:
        return 0;
    }
}

/* ---- helpers ---------------------------------------------------------------------------------- */

static int64_t norm_axis(int64_t a, int ndim) { return a < 0 ? a + ndim : a; }

static void strides_of(const ml_tensor *t, int64_t *st)
{
    int64_t s = 1;
    for (int i = t->ndim - 1; i >= 0; i--) st[i] = s, s *= t->shape[i];
}

/* NumPy broadcast of a and b into out's shape. */
static veil_status broadcast_shape(const ml_tensor *a, const ml_tensor *b, int *nd, int64_t *shape)
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
static int64_t bidx(const ml_tensor *t, const int64_t *tst, int n, const int64_t *idx)
{
    int64_t off = 0;
    for (int i = 0; i < t->ndim; i++) {
        int o = i + (n - t->ndim);
        if (t->shape[i] != 1) off += idx[o] * tst[i];
    }
    return off;
}

static void next_index(int n, const int64_t *shape, int64_t *idx)
{
    for (int i = n - 1; i >= 0; i--) {
        if (++idx[i] < shape[i]) return;
        idx[i] = 0;
    }
}

static double round_half_even(double x)
{
    return nearbyint(x); /* default rounding mode: to nearest, ties to even */
}

static double erf_d(double x) { return erf(x); }

/* ---- element-wise ------------------------------------------------------------------------------ */

static double unary(const ml_node *n, double x, double lo, double hi)
{
    switch (n->op) {
    case ML_OP_NEG: return -x;
    case ML_OP_RELU: return x > 0 ? x : 0;
    case ML_OP_SIGMOID: return 1.0 / (1.0 + exp(-x));
    case ML_OP_TANH: return tanh(x);
    case ML_OP_LEAKY_RELU: return x >= 0 ? x : ml_attr_float(n, "alpha", 0.01) * x;
    case ML_OP_ELU: return x >= 0 ? x : ml_attr_float(n, "alpha", 1.0) * (exp(x) - 1);
    case ML_OP_SELU: {
        double a = ml_attr_float(n, "alpha", 1.67326319217681884765625);
        double gm = ml_attr_float(n, "gamma", 1.05070102214813232421875);
        return x > 0 ? gm * x : gm * (a * exp(x) - a);
    }
    case ML_OP_SOFTPLUS: return x > 30 ? x : log1p(exp(x));
    case ML_OP_HARD_SIGMOID: {
        double v = ml_attr_float(n, "alpha", 0.2) * x + ml_attr_float(n, "beta", 0.5);
        return v < 0 ? 0 : v > 1 ? 1 : v;
    }
    case ML_OP_HARD_SWISH: {
        double v = x / 6.0 + 0.5;
        return x * (v < 0 ? 0 : v > 1 ? 1 : v);
    }
    case ML_OP_ERF: return erf_d(x);
    case ML_OP_CLIP: return x < lo ? lo : x > hi ? hi : x;
    case ML_OP_ABS: return fabs(x);
    case ML_OP_EXP: return exp(x);
    case ML_OP_LOG: return log(x);
    case ML_OP_SQRT: return sqrt(x);
    default: return x;
    }
}

static double binary(ml_op op, double a, double b)
{
    switch (op) {
    case ML_OP_ADD: return a + b;
    case ML_OP_SUB: return a - b;
    case ML_OP_MUL: return a * b;
    case ML_OP_DIV: return a / b;
    default: return pow(a, b);
    }
}

static veil_status run_binary(const ml_node *n, const ml_tensor *a, const ml_tensor *b, ml_tensor *y, char *err,
                              size_t errlen)
{
    int nd;
    int64_t shape[VEIL_MAX_DIMS], idx[VEIL_MAX_DIMS] = {0}, sa[VEIL_MAX_DIMS], sb[VEIL_MAX_DIMS];
    if (broadcast_shape(a, b, &nd, shape) != VEIL_OK)
        return ml_errf(err, errlen, VEIL_ERR_GRAPH, "node '%s' (%s): operand shapes cannot be broadcast together", n->name,
                    ml_op_names[n->op]);
    veil_status st = ml_tensor_alloc(y, nd, shape);
    if (st != VEIL_OK) return st;
    strides_of(a, sa);
    strides_of(b, sb);
    for (int64_t i = 0; i < y->size; i++) {
        y->data[i] = binary(n->op, a->data[bidx(a, sa, nd, idx)], b->data[bidx(b, sb, nd, idx)]);
        next_index(nd, shape, idx);
    }
    return VEIL_OK;
}

/* Per-axis parameter p (scalar, or 1-D along `axis`) at element i of x. */
static double axis_param(const ml_tensor *p, const ml_tensor *x, int64_t axis, int64_t i, double def)
{
    if (!p) return def;
    if (p->size == 1) return p->data[0];
    int64_t st[VEIL_MAX_DIMS];
    strides_of(x, st);
    return p->data[(i / st[axis]) % x->shape[axis]];
}

static veil_status quant_range(const ml_node *n, const ml_tensor *zp, double *qmin, double *qmax, char *err,
                               size_t errlen)
{
    int dt = zp ? zp->elem_type : ONNX_UINT8;
    int64_t od = ml_attr_int(n, "output_dtype", 0);
    if (od) dt = (int)od;
    switch (dt) {
    case ONNX_UINT8: *qmin = 0, *qmax = 255; break;
    case ONNX_INT8: *qmin = -128, *qmax = 127; break;
    case ONNX_UINT16: *qmin = 0, *qmax = 65535; break;
    case ONNX_INT16: *qmin = -32768, *qmax = 32767; break;
    case ONNX_INT32: *qmin = -2147483648.0, *qmax = 2147483647.0; break;
    default:
        return ml_errf(err, errlen, VEIL_ERR_UNSUPPORTED, "node '%s': QuantizeLinear to data type %d is not supported",
                    n->name, dt);
    }
    return VEIL_OK;
}

/* QONNX Quant: bounds of the integer grid (qonnx.custom_op.general.quant: min_int, max_int). */
void ml_quant_bounds(int is_signed, int narrow, double bits, double *lo, double *hi);
void ml_quant_bounds(int is_signed, int narrow, double bits, double *lo, double *hi)
{
    if (is_signed) {
        *lo = -ldexp(1, (int)bits - 1) + (narrow ? 1 : 0);
        *hi = ldexp(1, (int)bits - 1) - 1;
    } else {
        *lo = 0;
        *hi = ldexp(1, (int)bits) - 1 - (narrow ? 1 : 0);
    }
}

double ml_quant_round(const char *mode, double v);
double ml_quant_round(const char *mode, double v)
{
    if (strcmp(mode, "ROUND_TO_ZERO") == 0) return trunc(v);
    if (strcmp(mode, "CEIL") == 0) return ceil(v);
    if (strcmp(mode, "FLOOR") == 0) return floor(v);
    return round_half_even(v); /* ROUND: NumPy's round, half to even */
}

static veil_status run_elementwise(const ml_node *n, const ml_tensor *const *ins, ml_tensor *y, char *err,
                                   size_t errlen)
{
    const ml_tensor *x = ins[0];
    veil_status st;
    switch (n->op) {
    case ML_OP_ADD: case ML_OP_SUB: case ML_OP_MUL: case ML_OP_DIV: case ML_OP_POW:
        if (n->nin < 2 || !ins[1]) return ml_errf(err, errlen, VEIL_ERR_MALFORMED, "node '%s' needs two inputs", n->name);
        return run_binary(n, x, ins[1], y, err, errlen);
    case ML_OP_BATCH_NORM: {
        if (n->nin < 5 || !ins[1] || !ins[2] || !ins[3] || !ins[4] || x->ndim < 2)
            return ml_errf(err, errlen, VEIL_ERR_MALFORMED, "node '%s': BatchNormalization needs X (N,C,...), scale, B, mean, var",
                        n->name);
        int64_t C = x->shape[1];
        for (int k = 1; k < 5; k++)
            if (ins[k]->size != C)
                return ml_errf(err, errlen, VEIL_ERR_GRAPH, "node '%s': BatchNormalization parameters must have C=%lld values",
                            n->name, (long long)C);
        if ((st = ml_tensor_alloc(y, x->ndim, x->shape)) != VEIL_OK) return st;
        double eps = ml_attr_float(n, "epsilon", 1e-5);
        int64_t inner = x->size / x->shape[0] / C;
        for (int64_t i = 0; i < x->size; i++) {
            int64_t c = (i / inner) % C;
            y->data[i] = ins[1]->data[c] * (x->data[i] - ins[3]->data[c]) / sqrt(ins[4]->data[c] + eps) + ins[2]->data[c];
        }
        return VEIL_OK;
    }
    case ML_OP_QUANT: {
        if (n->nin < 4 || !ins[1] || !ins[2] || !ins[3])
            return ml_errf(err, errlen, VEIL_ERR_MALFORMED, "node '%s': Quant needs x, scale, zero point, bit width", n->name);
        if (ins[3]->size != 1 || ins[2]->size != 1 || (ins[1]->size != 1 && ins[1]->ndim == 0))
            return ml_errf(err, errlen, VEIL_ERR_UNSUPPORTED, "node '%s': Quant with a per-element zero point or bit width",
                        n->name);
        double bits = ins[3]->data[0], zp = ins[2]->data[0];
        if (!(bits >= 1 && bits <= 32))
            return ml_errf(err, errlen, VEIL_ERR_MALFORMED, "node '%s': Quant bit width %g out of range", n->name, bits);
        double lo, hi;
        ml_quant_bounds((int)ml_attr_int(n, "signed", 1), (int)ml_attr_int(n, "narrow", 0), bits, &lo, &hi);
        const char *mode = ml_attr_string(n, "rounding_mode", "ROUND");
        ml_tensor tmp;
        if ((st = run_binary(n, x, ins[1], &tmp, err, errlen)) != VEIL_OK) return st; /* shape of x op scale */
        int64_t ss[VEIL_MAX_DIMS], xs[VEIL_MAX_DIMS], idx[VEIL_MAX_DIMS] = {0};
        strides_of(ins[1], ss);
        strides_of(x, xs);
        for (int64_t i = 0; i < tmp.size; i++) {
            double s = ins[1]->data[bidx(ins[1], ss, tmp.ndim, idx)], v = x->data[bidx(x, xs, tmp.ndim, idx)];
            double q = ml_quant_round(mode, v / s + zp);
            q = q < lo ? lo : q > hi ? hi : q;
            tmp.data[i] = (q - zp) * s;
            next_index(tmp.ndim, tmp.shape, idx);
        }
        *y = tmp;
        return VEIL_OK;
    }
    case ML_OP_QUANTIZE_LINEAR: case ML_OP_DEQUANTIZE_LINEAR: {
        if (n->nin < 2 || !ins[1])
            return ml_errf(err, errlen, VEIL_ERR_MALFORMED, "node '%s' needs a scale", n->name);
        const ml_tensor *sc = ins[1], *zp = n->nin > 2 ? ins[2] : NULL;
        int64_t axis = norm_axis(ml_attr_int(n, "axis", 1), x->ndim);
        if (sc->size != 1 && (sc->ndim != 1 || axis < 0 || axis >= x->ndim || sc->size != x->shape[axis]))
            return ml_errf(err, errlen, VEIL_ERR_UNSUPPORTED, "node '%s': scale must be a scalar or 1-D along axis", n->name);
        if ((st = ml_tensor_alloc(y, x->ndim, x->shape)) != VEIL_OK) return st;
        double qmin = 0, qmax = 0;
        if (n->op == ML_OP_QUANTIZE_LINEAR) {
            if ((st = quant_range(n, zp, &qmin, &qmax, err, errlen)) != VEIL_OK) {
                ml_tensor_free(y);
                return st;
            }
            y->elem_type = zp ? zp->elem_type : ONNX_UINT8;
        }
        for (int64_t i = 0; i < x->size; i++) {
            double s = axis_param(sc, x, axis, i, 1), z = axis_param(zp, x, axis, i, 0);
            if (n->op == ML_OP_QUANTIZE_LINEAR) {
                double q = round_half_even(x->data[i] / s) + z;
                y->data[i] = q < qmin ? qmin : q > qmax ? qmax : q;
            } else {
                y->data[i] = (x->data[i] - z) * s;
            }
        }
        return VEIL_OK;
    }
    case ML_OP_CAST: {
        if ((st = ml_tensor_alloc(y, x->ndim, x->shape)) != VEIL_OK) return st;
        int64_t to = ml_attr_int(n, "to", ONNX_FLOAT);
        y->elem_type = (int)to;
        for (int64_t i = 0; i < x->size; i++) {
            double v = x->data[i];
            if (to == ONNX_FLOAT) v = (float)v;
            else if (to != 11 && to != 10 && to != 16) v = trunc(v);
            y->data[i] = v;
        }
        return VEIL_OK;
    }
    default: {
        double lo = -INFINITY, hi = INFINITY;
        if (n->op == ML_OP_CLIP) {
            if (ml_attr_find(n, "min") || ml_attr_find(n, "max")) {
                lo = ml_attr_float(n, "min", -INFINITY);
                hi = ml_attr_float(n, "max", INFINITY);
            }
            if (n->nin > 1 && ins[1]) lo = ins[1]->data[0];
            if (n->nin > 2 && ins[2]) hi = ins[2]->data[0];
        }
        if ((st = ml_tensor_alloc(y, x->ndim, x->shape)) != VEIL_OK) return st;
        y->elem_type = x->elem_type;
        for (int64_t i = 0; i < x->size; i++) y->data[i] = unary(n, x->data[i], lo, hi);
        return VEIL_OK;
    }
    }
}

/* ---- linear algebra ----------------------------------------------------------------------------- */

static veil_status run_gemm(const ml_node *n, const ml_tensor *const *ins, ml_tensor *y, char *err, size_t errlen)
{
    const ml_tensor *A = ins[0], *B = n->nin > 1 ? ins[1] : NULL, *C = n->nin > 2 ? ins[2] : NULL;
    if (!B || A->ndim != 2 || B->ndim != 2)
        return ml_errf(err, errlen, VEIL_ERR_GRAPH, "node '%s': Gemm needs 2-D A and B", n->name);
    int ta = (int)ml_attr_int(n, "transA", 0), tb = (int)ml_attr_int(n, "transB", 0);
    double alpha = ml_attr_float(n, "alpha", 1), beta = ml_attr_float(n, "beta", 1);
    int64_t M = ta ? A->shape[1] : A->shape[0], K = ta ? A->shape[0] : A->shape[1];
    int64_t K2 = tb ? B->shape[1] : B->shape[0], N = tb ? B->shape[0] : B->shape[1];
    if (K != K2)
        return ml_errf(err, errlen, VEIL_ERR_GRAPH, "node '%s': Gemm inner dimensions %lld and %lld differ", n->name,
                    (long long)K, (long long)K2);
    veil_status st = ml_tensor_alloc(y, 2, (int64_t[]){M, N});
    if (st != VEIL_OK) return st;
    int64_t cst[VEIL_MAX_DIMS], idx[2] = {0, 0};
    if (C) {
        ml_tensor probe = {.ndim = 2, .shape = {M, N}};
        int nd;
        int64_t sh[VEIL_MAX_DIMS];
        if (broadcast_shape(&probe, C, &nd, sh) != VEIL_OK || nd != 2 || sh[0] != M || sh[1] != N) {
            ml_tensor_free(y);
            return ml_errf(err, errlen, VEIL_ERR_GRAPH, "node '%s': Gemm C does not broadcast to (%lld, %lld)", n->name,
                        (long long)M, (long long)N);
        }
        strides_of(C, cst);
    }
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++) {
            double s = 0;
            for (int64_t k = 0; k < K; k++)
                s += A->data[ta ? k * M + i : i * K + k] * B->data[tb ? j * K + k : k * N + j];
            idx[0] = i, idx[1] = j;
            y->data[i * N + j] = alpha * s + (C ? beta * C->data[bidx(C, cst, 2, idx)] : 0);
        }
    return VEIL_OK;
}

static veil_status run_matmul(const ml_node *n, const ml_tensor *a0, const ml_tensor *b0, ml_tensor *y, char *err,
                              size_t errlen)
{
    ml_tensor a = *a0, b = *b0; /* shape views */
    int pa = 0, pb = 0;
    if (a.ndim == 1) { a.ndim = 2; a.shape[1] = a.shape[0]; a.shape[0] = 1; pa = 1; }
    if (b.ndim == 1) { b.ndim = 2; b.shape[1] = 1; pb = 1; }
    if (a.ndim < 2 || b.ndim < 2 || a.shape[a.ndim - 1] != b.shape[b.ndim - 2])
        return ml_errf(err, errlen, VEIL_ERR_GRAPH, "node '%s': MatMul shapes do not match", n->name);
    int64_t M = a.shape[a.ndim - 2], K = a.shape[a.ndim - 1], N = b.shape[b.ndim - 1];
    ml_tensor ab = a, bb = b;
    ab.ndim -= 2, bb.ndim -= 2;
    int nd;
    int64_t bs[VEIL_MAX_DIMS];
    if (broadcast_shape(&ab, &bb, &nd, bs) != VEIL_OK || nd + 2 > VEIL_MAX_DIMS)
        return ml_errf(err, errlen, VEIL_ERR_GRAPH, "node '%s': MatMul batch shapes cannot be broadcast", n->name);
    int64_t shape[VEIL_MAX_DIMS], nb = 1;
    for (int i = 0; i < nd; i++) shape[i] = bs[i], nb *= bs[i];
    shape[nd] = M, shape[nd + 1] = N;
    veil_status st = ml_tensor_alloc(y, nd + 2, shape);
    if (st != VEIL_OK) return st;
    int64_t sa[VEIL_MAX_DIMS], sb[VEIL_MAX_DIMS], idx[VEIL_MAX_DIMS] = {0};
    ab.size = 1, bb.size = 1;
    strides_of(&ab, sa);
    strides_of(&bb, sb);
    for (int64_t t = 0; t < nb; t++) {
        const double *A = a.data + bidx(&ab, sa, nd, idx) * M * K, *B = b.data + bidx(&bb, sb, nd, idx) * K * N;
        double *Y = y->data + t * M * N;
        for (int64_t i = 0; i < M; i++)
            for (int64_t j = 0; j < N; j++) {
                double s = 0;
                for (int64_t k = 0; k < K; k++) s += A[i * K + k] * B[k * N + j];
                Y[i * N + j] = s;
            }
        next_index(nd, bs, idx);
    }
    /* drop the axes added for 1-D operands */
    if (pa) {
        for (int i = y->ndim - 2; i < y->ndim - 1; i++) y->shape[i] = y->shape[i + 1];
        y->ndim--;
    }
    if (pb) y->ndim--;
    return VEIL_OK;
}

/* Conv / pooling window geometry: 2-D spatial over (N, C, H, W). */
typedef struct {
    int64_t k[2], s[2], d[2], p[4]; /* kernel, strides, dilations, pads (top, left, bottom, right) */
    int64_t oh, ow;
} win2d;

static veil_status window_attrs(const ml_node *n, const ml_tensor *x, const int64_t *kdef, win2d *w, char *err,
                                size_t errlen)
{
    if (x->ndim != 4)
        return ml_errf(err, errlen, VEIL_ERR_UNSUPPORTED, "node '%s' (%s): only 2-D (N, C, H, W) inputs are supported",
                    n->name, ml_op_names[n->op]);
    const ml_attr *ks = ml_attr_find(n, "kernel_shape"), *st = ml_attr_find(n, "strides"),
                  *dl = ml_attr_find(n, "dilations"), *pd = ml_attr_find(n, "pads");
    for (int i = 0; i < 2; i++) {
        w->k[i] = ks && ks->n == 2 ? ks->ints[i] : kdef ? kdef[i] : 0;
        w->s[i] = st && st->n == 2 ? st->ints[i] : 1;
        w->d[i] = dl && dl->n == 2 ? dl->ints[i] : 1;
    }
    for (int i = 0; i < 4; i++) w->p[i] = pd && pd->n == 4 ? pd->ints[i] : 0;
    if (ml_attr_int(n, "ceil_mode", 0) != 0)
        return ml_errf(err, errlen, VEIL_ERR_UNSUPPORTED, "node '%s' (%s): ceil_mode=1 is not supported", n->name,
                    ml_op_names[n->op]);
    const char *ap = ml_attr_string(n, "auto_pad", "NOTSET");
    int64_t H = x->shape[2], W = x->shape[3];
    if (strcmp(ap, "VALID") == 0) {
        memset(w->p, 0, sizeof w->p);
    } else if (strcmp(ap, "SAME_UPPER") == 0 || strcmp(ap, "SAME_LOWER") == 0) {
        for (int i = 0; i < 2; i++) {
            int64_t in = i ? W : H, out = (in + w->s[i] - 1) / w->s[i];
            int64_t tot = (out - 1) * w->s[i] + (w->k[i] - 1) * w->d[i] + 1 - in;
            if (tot < 0) tot = 0;
            int64_t small = tot / 2, big = tot - small;
            w->p[i] = ap[5] == 'U' ? small : big;
            w->p[i + 2] = ap[5] == 'U' ? big : small;
        }
    } else if (strcmp(ap, "NOTSET") != 0) {
        return ml_errf(err, errlen, VEIL_ERR_UNSUPPORTED, "node '%s': auto_pad '%s' is not supported", n->name, ap);
    }
    for (int i = 0; i < 2; i++)
        if (w->k[i] < 1 || w->s[i] < 1 || w->d[i] < 1 || w->p[i] < 0 || w->p[i + 2] < 0)
            return ml_errf(err, errlen, VEIL_ERR_MALFORMED, "node '%s': bad kernel, stride, dilation or pad", n->name);
    w->oh = (H + w->p[0] + w->p[2] - (w->k[0] - 1) * w->d[0] - 1) / w->s[0] + 1;
    w->ow = (W + w->p[1] + w->p[3] - (w->k[1] - 1) * w->d[1] - 1) / w->s[1] + 1;
    if (w->oh < 1 || w->ow < 1)
        return ml_errf(err, errlen, VEIL_ERR_GRAPH, "node '%s': the window is larger than the padded input", n->name);
    return VEIL_OK;
}

static veil_status run_conv(const ml_node *n, const ml_tensor *const *ins, ml_tensor *y, char *err, size_t errlen)
{
    const ml_tensor *x = ins[0], *w = n->nin > 1 ? ins[1] : NULL, *b = n->nin > 2 ? ins[2] : NULL;
    if (!w || w->ndim != 4)
        return ml_errf(err, errlen, VEIL_ERR_UNSUPPORTED, "node '%s': only 2-D Conv (4-D weights) is supported", n->name);
    win2d g;
    veil_status st = window_attrs(n, x, w->shape + 2, &g, err, errlen);
    if (st != VEIL_OK) return st;
    int64_t N = x->shape[0], C = x->shape[1], H = x->shape[2], W = x->shape[3], F = w->shape[0];
    int64_t grp = ml_attr_int(n, "group", 1);
    if (grp < 1 || C % grp || F % grp || w->shape[1] != C / grp || g.k[0] != w->shape[2] || g.k[1] != w->shape[3] ||
        (b && b->size != F))
        return ml_errf(err, errlen, VEIL_ERR_GRAPH, "node '%s': Conv weights (%lld, %lld, %lld, %lld) do not fit input channels %lld, group %lld",
                    n->name, (long long)w->shape[0], (long long)w->shape[1], (long long)w->shape[2],
                    (long long)w->shape[3], (long long)C, (long long)grp);
    if ((st = ml_tensor_alloc(y, 4, (int64_t[]){N, F, g.oh, g.ow})) != VEIL_OK) return st;
    int64_t cg = C / grp, fg = F / grp;
    for (int64_t nn = 0; nn < N; nn++)
        for (int64_t f = 0; f < F; f++)
            for (int64_t oy = 0; oy < g.oh; oy++)
                for (int64_t ox = 0; ox < g.ow; ox++) {
                    double s = b ? b->data[f] : 0;
                    int64_t c0 = (f / fg) * cg;
                    for (int64_t c = 0; c < cg; c++)
                        for (int64_t ky = 0; ky < g.k[0]; ky++)
                            for (int64_t kx = 0; kx < g.k[1]; kx++) {
                                int64_t iy = oy * g.s[0] - g.p[0] + ky * g.d[0], ix = ox * g.s[1] - g.p[1] + kx * g.d[1];
                                if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                                s += x->data[((nn * C + c0 + c) * H + iy) * W + ix] *
                                     w->data[((f * cg + c) * g.k[0] + ky) * g.k[1] + kx];
                            }
                    y->data[((nn * F + f) * g.oh + oy) * g.ow + ox] = s;
                }
    return VEIL_OK;
}

static veil_status run_pool(const ml_node *n, const ml_tensor *x, ml_tensor *y, char *err, size_t errlen)
{
    win2d g;
    int global = n->op == ML_OP_GLOBAL_AVERAGE_POOL;
    if (global && x->ndim != 4)
        return ml_errf(err, errlen, VEIL_ERR_UNSUPPORTED, "node '%s': only 4-D GlobalAveragePool is supported", n->name);
    veil_status st;
    if (global) {
        memset(&g, 0, sizeof g);
        g.k[0] = x->shape[2], g.k[1] = x->shape[3], g.s[0] = g.s[1] = g.d[0] = g.d[1] = 1, g.oh = g.ow = 1;
    } else if ((st = window_attrs(n, x, NULL, &g, err, errlen)) != VEIL_OK) {
        return st;
    }
    int maxp = n->op == ML_OP_MAX_POOL;
    int include_pad = (int)ml_attr_int(n, "count_include_pad", 0);
    int64_t N = x->shape[0], C = x->shape[1], H = x->shape[2], W = x->shape[3];
    if ((st = ml_tensor_alloc(y, 4, (int64_t[]){N, C, g.oh, g.ow})) != VEIL_OK) return st;
    for (int64_t nc = 0; nc < N * C; nc++)
        for (int64_t oy = 0; oy < g.oh; oy++)
            for (int64_t ox = 0; ox < g.ow; ox++) {
                double s = maxp ? -INFINITY : 0;
                int64_t cnt = 0;
                for (int64_t ky = 0; ky < g.k[0]; ky++)
                    for (int64_t kx = 0; kx < g.k[1]; kx++) {
                        int64_t iy = oy * g.s[0] - g.p[0] + ky * g.d[0], ix = ox * g.s[1] - g.p[1] + kx * g.d[1];
                        int inside = iy >= 0 && iy < H && ix >= 0 && ix < W;
                        if (!inside) {
                            /* padded positions count in the divisor when count_include_pad, unless they
                             * lie beyond the pads */
                            if (include_pad && iy >= -g.p[0] && iy < H + g.p[2] && ix >= -g.p[1] && ix < W + g.p[3]) cnt++;
                            continue;
                        }
                        double v = x->data[(nc * H + iy) * W + ix];
                        if (maxp) s = v > s ? v : s;
                        else s += v;
                        cnt++;
                    }
                y->data[(nc * g.oh + oy) * g.ow + ox] = maxp ? s : s / (double)(cnt ? cnt : 1);
            }
    return VEIL_OK;
}

/* ---- shapes -------------------------------------------------------------------------------------- */

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

static veil_status run_softmax(const ml_node *n, const ml_tensor *x, ml_tensor *y, ml_tensor *argmax_out)
{
    (void)argmax_out;
    veil_status st;
    if (n->op == ML_OP_ARGMAX) {
        int64_t ax = norm_axis(ml_attr_int(n, "axis", 0), x->ndim);
        int keep = (int)ml_attr_int(n, "keepdims", 1), last = (int)ml_attr_int(n, "select_last_index", 0);
        if (ax < 0 || ax >= x->ndim) return VEIL_ERR_GRAPH;
        int64_t shape[VEIL_MAX_DIMS];
        int nd = 0;
        for (int d = 0; d < x->ndim; d++) {
            if (d == ax) {
                if (keep) shape[nd++] = 1;
            } else {
                shape[nd++] = x->shape[d];
            }
        }
        if ((st = ml_tensor_alloc(y, nd, shape)) != VEIL_OK) return st;
        int64_t inner = 1, L = x->shape[ax];
        for (int d = (int)ax + 1; d < x->ndim; d++) inner *= x->shape[d];
        for (int64_t o = 0; o < y->size; o++) {
            int64_t base = (o / inner) * L * inner + o % inner, best = 0;
            for (int64_t k = 1; k < L; k++) {
                double v = x->data[base + k * inner], b = x->data[base + best * inner];
                if (v > b || (last && v == b)) best = k;
            }
            y->data[o] = (double)best;
        }
        y->elem_type = ONNX_INT64;
        return VEIL_OK;
    }
    if ((st = ml_tensor_alloc(y, x->ndim, x->shape)) != VEIL_OK) return st;
    int64_t ax = norm_axis(ml_attr_int(n, "axis", -1), x->ndim);
    if (ax < 0 || ax >= x->ndim) {
        ml_tensor_free(y);
        return VEIL_ERR_GRAPH;
    }
    int64_t inner = 1, L = x->shape[ax];
    for (int d = (int)ax + 1; d < x->ndim; d++) inner *= x->shape[d];
    for (int64_t o = 0; o < x->size / (L ? L : 1); o++) {
        int64_t base = (o / inner) * L * inner + o % inner;
        double mx = -INFINITY, sum = 0;
        for (int64_t k = 0; k < L; k++) mx = fmax(mx, x->data[base + k * inner]);
        for (int64_t k = 0; k < L; k++) sum += exp(x->data[base + k * inner] - mx);
        for (int64_t k = 0; k < L; k++) {
            double v = x->data[base + k * inner] - mx;
            y->data[base + k * inner] = n->op == ML_OP_LOG_SOFTMAX ? v - log(sum) : exp(v) / sum;
        }
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

veil_status ml_run_node(const ml_node *n, const ml_tensor *const *ins, ml_tensor *outs, char *err, size_t errlen)
{
    for (int j = 0; j < n->nout; j++) memset(&outs[j], 0, sizeof outs[j]);
    if (errlen) err[0] = 0;
    if (n->op != ML_OP_CONSTANT && (n->nin < 1 || !ins[0]))
        return ml_errf(err, errlen, VEIL_ERR_MALFORMED, "node '%s' (%s) has no input", n->name, ml_op_names[n->op]);
    veil_status st;
    switch (n->op) {
    case ML_OP_GEMM: st = run_gemm(n, ins, &outs[0], err, errlen); break;
    case ML_OP_MATMUL:
        if (n->nin < 2 || !ins[1]) return ml_errf(err, errlen, VEIL_ERR_MALFORMED, "node '%s': MatMul needs two inputs", n->name);
        st = run_matmul(n, ins[0], ins[1], &outs[0], err, errlen);
        break;
    case ML_OP_CONV: st = run_conv(n, ins, &outs[0], err, errlen); break;
    case ML_OP_AVERAGE_POOL: case ML_OP_GLOBAL_AVERAGE_POOL: case ML_OP_MAX_POOL:
        if (n->op == ML_OP_MAX_POOL && n->nout > 1)
            return ml_errf(err, errlen, VEIL_ERR_UNSUPPORTED, "node '%s': MaxPool indices output is not supported", n->name);
        st = run_pool(n, ins[0], &outs[0], err, errlen);
        break;
    case ML_OP_PAD: st = run_pad(n, ins, &outs[0], err, errlen); break;
    case ML_OP_FLATTEN: case ML_OP_RESHAPE: case ML_OP_SQUEEZE: case ML_OP_UNSQUEEZE: case ML_OP_TRANSPOSE:
        st = run_shape_op(n, ins, &outs[0], err, errlen);
        break;
    case ML_OP_CONCAT: st = run_concat(n, ins, &outs[0], err, errlen); break;
    case ML_OP_IDENTITY: st = ml_tensor_copy(&outs[0], ins[0]); break;
    case ML_OP_DROPOUT:
        st = ml_tensor_copy(&outs[0], ins[0]);
        if (st == VEIL_OK && n->nout > 1 && (st = ml_tensor_alloc(&outs[1], ins[0]->ndim, ins[0]->shape)) == VEIL_OK)
            for (int64_t i = 0; i < outs[1].size; i++) outs[1].data[i] = 1;
        break;
    case ML_OP_CONSTANT: st = run_constant(n, &outs[0], err, errlen); break;
    case ML_OP_SOFTMAX: case ML_OP_LOG_SOFTMAX: case ML_OP_ARGMAX:
        st = run_softmax(n, ins[0], &outs[0], NULL);
        if (st != VEIL_OK) ml_errf(err, errlen, st, "node '%s': bad axis", n->name);
        break;
    case ML_OP_SHAPE: {
        const ml_tensor *x = ins[0];
        int64_t s = ml_attr_int(n, "start", 0), e = ml_attr_int(n, "end", x->ndim);
        if (s < 0) s += x->ndim;
        if (e < 0) e += x->ndim;
        s = s < 0 ? 0 : s > x->ndim ? x->ndim : s;
        e = e < s ? s : e > x->ndim ? x->ndim : e;
        if ((st = ml_tensor_alloc(&outs[0], 1, (int64_t[]){e - s})) == VEIL_OK) {
            for (int64_t i = s; i < e; i++) outs[0].data[i - s] = (double)x->shape[i];
            outs[0].elem_type = ONNX_INT64;
        }
        break;
    }
    case ML_OP_GATHER:
        if (n->nin < 2 || !ins[1]) return ml_errf(err, errlen, VEIL_ERR_MALFORMED, "node '%s': Gather needs indices", n->name);
        st = run_gather(n, ins[0], ins[1], &outs[0], err, errlen);
        break;
    case ML_OP_SCALER: case ML_OP_NORMALIZER: case ML_OP_ZIPMAP: case ML_OP_SCORES_LABEL: case ML_OP_SCORES_TRANSFORM:
    case ML_OP_LINEAR_CLASSIFIER: case ML_OP_LINEAR_REGRESSOR: case ML_OP_TREE_ENSEMBLE_CLASSIFIER:
    case ML_OP_TREE_ENSEMBLE_REGRESSOR: case ML_OP_TREE_SCORES:
        st = ml_run_onnx_ml(n, ins, outs, err, errlen);
        break;
    default: st = run_elementwise(n, ins, &outs[0], err, errlen); break;
    }
    if (st == VEIL_ERR_NOMEM) ml_errf(err, errlen, st, "node '%s': out of memory", n->name);
    else if (st != VEIL_OK && !*err) ml_errf(err, errlen, st, "node '%s' (%s) failed", n->name, ml_op_names[n->op]);
    return st;
}

veil_status ml_forward(const ml_graph *g, const ml_tensor *inputs, ml_tensor *outputs, char *err, size_t errlen)
{
    ml_tensor *vals = veil_calloc((size_t)g->nvalues + 1, sizeof(ml_tensor));
    const ml_tensor *ins[64];
    veil_status st = VEIL_OK;
    if (!vals) return VEIL_ERR_NOMEM;
    for (int i = 0; i < g->ninputs && st == VEIL_OK; i++) st = ml_tensor_copy(&vals[g->inputs[i]], &inputs[i]);
    for (int k = 0; k < g->nnodes && st == VEIL_OK; k++) {
        const ml_node *n = &g->nodes[k];
        if (n->nin > 64) {
            st = ml_errf(err, errlen, VEIL_ERR_UNSUPPORTED, "node '%s' has more than 64 inputs", n->name);
            break;
        }
        for (int i = 0; i < n->nin; i++) {
            int v = n->in[i];
            ins[i] = v < 0 ? NULL : g->values[v].is_const ? &g->values[v].value : vals[v].data ? &vals[v] : NULL;
            if (v >= 0 && !ins[i]) st = ml_errf(err, errlen, VEIL_ERR_MALFORMED, "node '%s' reads an unset value", n->name);
        }
        if (st != VEIL_OK) break;
        ml_tensor outs[8];
        if (n->nout > 8) {
            st = ml_errf(err, errlen, VEIL_ERR_UNSUPPORTED, "node '%s' has more than 8 outputs", n->name);
            break;
        }
        if ((st = ml_run_node(n, ins, outs, err, errlen)) != VEIL_OK) break;
        for (int j = 0; j < n->nout; j++) vals[n->out[j]] = outs[j];
    }
    for (int j = 0; j < g->noutputs && st == VEIL_OK; j++) {
        int v = g->outputs[j];
        st = ml_tensor_copy(&outputs[j], g->values[v].is_const ? &g->values[v].value : &vals[v]);
    }
    for (int i = 0; i < g->nvalues; i++) ml_tensor_free(&vals[i]);
    veil_free(vals);
    return st;
}
