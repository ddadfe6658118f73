/* Float kernels, element-wise family (ONNX operator specifications, opsets 7–21): unary and
 * binary operators with NumPy broadcasting, QuantizeLinear/DequantizeLinear and Brevitas Quant,
 * Cast, BatchNormalization; and the per-axis activations Softmax, LogSoftmax, ArgMax. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "ops_impl.h"

static double erf_d(double x) { return erf(x); }


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

veil_status ml_kernel_elementwise(const ml_node *n, const ml_tensor *const *ins, ml_tensor *outs, char *err,
                                  size_t errlen)
{
    return run_elementwise(n, ins, &outs[0], err, errlen);
}

veil_status ml_kernel_softmax(const ml_node *n, const ml_tensor *const *ins, ml_tensor *outs, char *err, size_t errlen)
{
    veil_status st = run_softmax(n, ins[0], &outs[0], NULL);
    if (st != VEIL_OK && st != VEIL_ERR_NOMEM) ml_errf(err, errlen, st, "node '%s': bad axis", n->name);
    return st;
}
