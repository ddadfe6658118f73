/* Quantizers (calibrated min/max, weights), bit-widths and the values of the quantization walk. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "quant_impl.h"

veil_status mq_failf(qctx *Q, veil_status st, const char *fmt, ...)
{
    if (Q->st != VEIL_OK) return Q->st;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(Q->err, Q->errlen, fmt, ap);
    va_end(ap);
    Q->st = st;
    return st;
}

veil_status mq_graph_fail(qctx *Q, const ml_node *n)
{
    return mq_failf(Q, VEIL_ERR_GRAPH, "node '%s' (%s): %s", n->name, ml_op_names[n->op], veil_graph_last_error(Q->g));
}

double ml_quantize_value(const ml_quantizer *q, double x)
{
    double v = nearbyint(x / q->scale) + q->zp;
    return v < q->qmin ? q->qmin : v > q->qmax ? q->qmax : v;
}

/* Unsigned n-bit affine quantizer over [lo, hi] extended to contain 0. */
ml_quantizer mq_calibrated(double lo, double hi, int bits)
{
    ml_quantizer q = {1, 0, 0, ldexp(1, bits) - 1};
    if (lo > 0) lo = 0;
    if (hi < 0) hi = 0;
    if (hi - lo > 0) {
        q.scale = (hi - lo) / q.qmax;
        q.zp = nearbyint(-lo / q.scale);
    }
    return q;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The (1 − p) and p quantiles of the n values v (sorted in place), interpolated between
 * neighbours: the range a percentile calibration gives a quantizer. */
void mq_quantiles(double *v, size_t n, double p, double *lo, double *hi)
{
    qsort(v, n, sizeof *v, cmp_double);
    double t[2] = {(1 - p) * (double)(n - 1), p * (double)(n - 1)}, r[2];
    for (int k = 0; k < 2; k++) {
        size_t i = (size_t)t[k];
        double f = t[k] - (double)i;
        r[k] = i + 1 < n ? v[i] + f * (v[i + 1] - v[i]) : v[n - 1];
    }
    *lo = r[0], *hi = r[1];
}

/* Weights: symmetric signed when the range straddles zero with neither side more than 4 times
 * the other, else unsigned affine (the zero point then becomes a constant correction). */
ml_quantizer mq_weight_quantizer(const ml_tensor *w, int bits)
{
    double lo = 0, hi = 0;
    for (int64_t i = 0; i < w->size; i++) lo = fmin(lo, w->data[i]), hi = fmax(hi, w->data[i]);
    double a = fmax(-lo, hi), b = fmin(-lo, hi);
    if (lo < 0 && hi > 0 && a <= 4 * b) {
        double m = ldexp(1, bits - 1) - 1;
        return (ml_quantizer){a / m, 0, -m, m};
    }
    return mq_calibrated(lo, hi, bits);
}

unsigned mq_bits_of(int64_t lo, int64_t hi)
{
    unsigned b = 1;
    if (lo < 0) {
        while (b < 63 && (lo < -((int64_t)1 << (b - 1)) || hi >= ((int64_t)1 << (b - 1)))) b++;
    } else {
        while (b < 63 && hi >= ((int64_t)1 << b)) b++;
    }
    return b;
}

/* ---- values ------------------------------------------------------------------------------------- */

int mq_qv_new(qctx *Q, qv_kind kind)
{
    if (Q->nqv == Q->cap) {
        int nc = Q->cap ? 2 * Q->cap : 64;
        qval *n = veil_realloc(Q->qv, sizeof(qval) * (size_t)Q->nqv, sizeof(qval) * (size_t)nc);
        if (!n) {
            mq_failf(Q, VEIL_ERR_NOMEM, "out of memory");
            return -1;
        }
        Q->qv = n;
        Q->cap = nc;
    }
    qval *v = &Q->qv[Q->nqv];
    memset(v, 0, sizeof *v);
    v->kind = kind;
    v->node = -1;
    v->base = -1;
    return Q->nqv++;
}

void mq_qv_set_shape(qval *v, int ndim, const int64_t *shape)
{
    v->ndim = ndim;
    v->size = 1;
    for (int i = 0; i < ndim; i++) v->shape[i] = shape[i], v->size *= shape[i];
}

ml_tensor *mq_cal_alloc(qctx *Q, qval *v)
{
    v->cal = veil_calloc(Q->ns, sizeof(ml_tensor));
    if (!v->cal) mq_failf(Q, VEIL_ERR_NOMEM, "out of memory");
    return v->cal;
}

void mq_qv_free(qctx *Q, qval *v)
{
    ml_tensor_free(&v->c);
    veil_free(v->steps);
    if (v->cal)
        for (size_t s = 0; s < Q->ns; s++) ml_tensor_free(&v->cal[s]);
    veil_free(v->cal);
}

/* New QUANT value for integer node `node`; calibration filled by the caller. */
int mq_quant_value(qctx *Q, int node, double scale, double zp)
{
    int i = mq_qv_new(Q, QV_QUANT);
    if (i < 0) return -1;
    qval *v = &Q->qv[i];
    v->node = node;
    v->scale = scale;
    v->zp = zp;
    int64_t shape[VEIL_MAX_DIMS];
    int nd = veil_graph_shape(Q->g, node, shape);
    mq_qv_set_shape(v, nd < 0 ? 0 : nd, shape);
    if (!mq_cal_alloc(Q, v)) return -1;
    return i;
}

/* integer range of a QUANT value over the calibration */
void mq_quant_range(qctx *Q, const qval *v, int64_t *lo, int64_t *hi)
{
    *lo = INT64_MAX, *hi = INT64_MIN;
    for (size_t s = 0; s < Q->ns; s++)
        for (int64_t e = 0; e < v->cal[s].size; e++) {
            int64_t q = (int64_t)nearbyint(v->cal[s].data[e] / v->scale + v->zp);
            if (q < *lo) *lo = q;
            if (q > *hi) *hi = q;
        }
    if (*lo > *hi) *lo = *hi = 0;
}

/* the integer node (q − zp), the value a linear layer consumes */
int mq_centered(qctx *Q, const qval *v)
{
    if (v->zp == 0) return v->node;
    return veil_graph_sub(Q->g, v->node, veil_graph_scalar(Q->g, (int64_t)v->zp));
}

void mq_report_value(qctx *Q, const ml_node *n, const char *what, int64_t lo, int64_t hi)
{
    unsigned b = mq_bits_of(lo, hi);
    if (b > Q->max_bits) Q->max_bits = b;
    veil_sb_printf(&Q->rep, "%-28s %-18s %-10s [%lld, %lld]", n->name, ml_op_names[n->op], what, (long long)lo,
                   (long long)hi);
    veil_sb_pad(&Q->rep, 88);
    veil_sb_printf(&Q->rep, "%s%u\n", lo < 0 ? "int" : "uint", b);
}

