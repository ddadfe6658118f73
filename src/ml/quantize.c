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

#include "../core/strbuf.h"
#include "quant.h"
#include "tree.h"

#define MAX_TABLE_ENTRIES ((int64_t)1 << 17)
#define MAX_TABLE_CELLS ((int64_t)1 << 26)

typedef enum { QV_NONE, QV_CONST, QV_QUANT, QV_FN } qv_kind;

typedef struct {
    int node;  /* ML node index */
    int pos;   /* position of the chain's operand */
    int other; /* -1: the other operands are constants; else the qval (a QUANT value or a chain on
                * the same integer node as this chain's base) giving the other operand of a binary
                * op, as in GELU's x · Φ(x) */
    double oa, ob; /* the other's base value = oa · this chain's base value + ob (same integers,
                    * other scale and zero point) */
} fn_step;

typedef struct {
    qv_kind kind;
    int ndim;
    int64_t shape[VEIL_MAX_DIMS];
    int64_t size;
    /* CONST */
    ml_tensor c;
    int has_q; /* c lies on the grid of cq (a Quant / DequantizeLinear on a constant) */
    ml_quantizer cq;
    /* QUANT */
    int node;
    double scale, zp;
    /* FN */
    int base;
    fn_step *steps;
    int nsteps;
    /* QUANT and FN: real values per inputset sample */
    ml_tensor *cal;
} qval;

typedef struct {
    int64_t lo, step, K;
    int64_t *table;
} table_ctx;

typedef struct {
    const ml_graph *fg;
    const veil_model_options *o;
    size_t ns;
    qval *qv;
    int nqv, cap;
    int *vmap; /* ML value → qval index */
    veil_graph *g;
    ml_quantized *out;
    veil_sb rep;
    veil_sb rlog; /* one line per rounded lookup */
    int whole_range; /* 1: automatic rounding over the whole tensor's range, not per channel */
    unsigned max_bits;
    char *err;
    size_t errlen;
    veil_status st;
} qctx;

static veil_status failf(qctx *Q, veil_status st, const char *fmt, ...)
{
    if (Q->st != VEIL_OK) return Q->st;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(Q->err, Q->errlen, fmt, ap);
    va_end(ap);
    Q->st = st;
    return st;
}

static veil_status graph_fail(qctx *Q, const ml_node *n)
{
    return failf(Q, VEIL_ERR_GRAPH, "node '%s' (%s): %s", n->name, ml_op_names[n->op], veil_graph_last_error(Q->g));
}

double ml_quantize_value(const ml_quantizer *q, double x)
{
    double v = nearbyint(x / q->scale) + q->zp;
    return v < q->qmin ? q->qmin : v > q->qmax ? q->qmax : v;
}

/* Unsigned n-bit affine quantizer over [lo, hi] extended to contain 0. */
static ml_quantizer calibrated(double lo, double hi, int bits)
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

/* Weights: symmetric signed when the range straddles zero with neither side more than 4 times
 * the other, else unsigned affine (the zero point then becomes a constant correction). */
static ml_quantizer weight_quantizer(const ml_tensor *w, int bits)
{
    double lo = 0, hi = 0;
    for (int64_t i = 0; i < w->size; i++) lo = fmin(lo, w->data[i]), hi = fmax(hi, w->data[i]);
    double a = fmax(-lo, hi), b = fmin(-lo, hi);
    if (lo < 0 && hi > 0 && a <= 4 * b) {
        double m = ldexp(1, bits - 1) - 1;
        return (ml_quantizer){a / m, 0, -m, m};
    }
    return calibrated(lo, hi, bits);
}

static unsigned bits_of(int64_t lo, int64_t hi)
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

static int qv_new(qctx *Q, qv_kind kind)
{
    if (Q->nqv == Q->cap) {
        int nc = Q->cap ? 2 * Q->cap : 64;
        qval *n = realloc(Q->qv, sizeof(qval) * (size_t)nc);
        if (!n) {
            failf(Q, VEIL_ERR_NOMEM, "out of memory");
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

static void qv_set_shape(qval *v, int ndim, const int64_t *shape)
{
    v->ndim = ndim;
    v->size = 1;
    for (int i = 0; i < ndim; i++) v->shape[i] = shape[i], v->size *= shape[i];
}

static ml_tensor *cal_alloc(qctx *Q, qval *v)
{
    v->cal = calloc(Q->ns, sizeof(ml_tensor));
    if (!v->cal) failf(Q, VEIL_ERR_NOMEM, "out of memory");
    return v->cal;
}

static void qv_free(qctx *Q, qval *v)
{
    ml_tensor_free(&v->c);
    free(v->steps);
    if (v->cal)
        for (size_t s = 0; s < Q->ns; s++) ml_tensor_free(&v->cal[s]);
    free(v->cal);
}

/* New QUANT value for integer node `node`; calibration filled by the caller. */
static int quant_value(qctx *Q, int node, double scale, double zp)
{
    int i = qv_new(Q, QV_QUANT);
    if (i < 0) return -1;
    qval *v = &Q->qv[i];
    v->node = node;
    v->scale = scale;
    v->zp = zp;
    int64_t shape[VEIL_MAX_DIMS];
    int nd = veil_graph_shape(Q->g, node, shape);
    qv_set_shape(v, nd < 0 ? 0 : nd, shape);
    if (!cal_alloc(Q, v)) return -1;
    return i;
}

/* integer range of a QUANT value over the calibration */
static void quant_range(qctx *Q, const qval *v, int64_t *lo, int64_t *hi)
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
static int centered(qctx *Q, const qval *v)
{
    if (v->zp == 0) return v->node;
    return veil_graph_sub(Q->g, v->node, veil_graph_scalar(Q->g, (int64_t)v->zp));
}

static void report_value(qctx *Q, const ml_node *n, const char *what, int64_t lo, int64_t hi)
{
    unsigned b = bits_of(lo, hi);
    if (b > Q->max_bits) Q->max_bits = b;
    veil_sb_printf(&Q->rep, "%-28s %-18s %-10s [%lld, %lld]", n->name, ml_op_names[n->op], what, (long long)lo,
                   (long long)hi);
    veil_sb_pad(&Q->rep, 88);
    veil_sb_printf(&Q->rep, "%s%u\n", lo < 0 ? "int" : "uint", b);
}

/* ---- FN chains ---------------------------------------------------------------------------------- */

static const ml_tensor *const_of(qctx *Q, int value)
{
    if (value < 0) return NULL;
    const qval *v = &Q->qv[Q->vmap[value]];
    return v->kind == QV_CONST ? &v->c : NULL;
}

/* Run one node with its dynamic operand replaced by x. */
static veil_status chain_eval(qctx *Q, const fn_step *steps, int nsteps, const ml_tensor *x, ml_tensor *y);

/* One step on the chain's current value x; base is the chain's input (for a step whose other
 * operand is another chain on the same base). */
static veil_status run_step(qctx *Q, const fn_step *s, const ml_tensor *x, const ml_tensor *base, ml_tensor *y)
{
    const ml_node *n = &Q->fg->nodes[s->node];
    const ml_tensor *ins[16];
    ml_tensor outs[8], other = {0};
    if (n->nin > 16 || n->nout > 8) return failf(Q, VEIL_ERR_UNSUPPORTED, "node '%s': too many operands", n->name);
    veil_status st = VEIL_OK;
    if (s->other >= 0) {
        const qval *o = &Q->qv[s->other];
        ml_tensor ob;
        if ((st = ml_tensor_copy(&ob, base)) != VEIL_OK) return failf(Q, st, "out of memory");
        for (int64_t e = 0; e < ob.size; e++) ob.data[e] = s->oa * ob.data[e] + s->ob;
        st = chain_eval(Q, o->kind == QV_FN ? o->steps : NULL, o->kind == QV_FN ? o->nsteps : 0, &ob, &other);
        ml_tensor_free(&ob);
        if (st != VEIL_OK) return st;
    }
    for (int i = 0; i < n->nin; i++) ins[i] = i == s->pos ? x : s->other >= 0 ? &other : const_of(Q, n->in[i]);
    st = ml_run_node(n, ins, outs, Q->err, Q->errlen);
    ml_tensor_free(&other);
    if (st != VEIL_OK) return failf(Q, st, "%s", Q->err);
    *y = outs[0];
    for (int j = 1; j < n->nout; j++) ml_tensor_free(&outs[j]);
    return VEIL_OK;
}

static veil_status chain_eval(qctx *Q, const fn_step *steps, int nsteps, const ml_tensor *x, ml_tensor *y)
{
    ml_tensor cur;
    veil_status st = ml_tensor_copy(&cur, x);
    if (st != VEIL_OK) return failf(Q, st, "out of memory");
    for (int k = 0; k < nsteps; k++) {
        ml_tensor nx;
        if ((st = run_step(Q, &steps[k], &cur, x, &nx)) != VEIL_OK) {
            ml_tensor_free(&cur);
            return st;
        }
        ml_tensor_free(&cur);
        cur = nx;
    }
    *y = cur;
    return VEIL_OK;
}

/* Is the chain the same function for every element (all constant operands scalars)? */
static int chain_uniform(qctx *Q, const qval *v)
{
    for (int k = 0; k < v->nsteps; k++) {
        const ml_node *n = &Q->fg->nodes[v->steps[k].node];
        if (n->op == ML_OP_BATCH_NORM) return 0;
        if (n->op == ML_OP_SCALER) {
            const ml_attr *o = ml_attr_find(n, "offset"), *sc = ml_attr_find(n, "scale");
            if ((o && o->n > 1) || (sc && sc->n > 1)) return 0;
            continue;
        }
        if (v->steps[k].other >= 0) {
            if (!chain_uniform(Q, &Q->qv[v->steps[k].other])) return 0;
            continue;
        }
        for (int i = 0; i < n->nin; i++) {
            const ml_tensor *c = i == v->steps[k].pos ? NULL : const_of(Q, n->in[i]);
            if (c && c->size != 1 && !(n->op == ML_OP_QUANT && i > 0) && n->op != ML_OP_RESHAPE) return 0;
        }
    }
    return 1;
}

static int64_t table_fn(int64_t x, void *ctx)
{
    const table_ctx *t = ctx;
    int64_t d = x - t->lo, k = d >= 0 ? (d + t->step / 2) / t->step : -((-d + t->step / 2) / t->step);
    if (k < 0) k = 0;
    if (k >= t->K) k = t->K - 1;
    return t->table[k];
}

static table_ctx *new_table(qctx *Q, int64_t lo, int64_t step, int64_t K, const int64_t *src)
{
    void **nc = realloc(Q->out->ctxs, sizeof(void *) * (Q->out->nctx + 1));
    table_ctx *t = calloc(1, sizeof *t);
    int64_t *tab = malloc(sizeof(int64_t) * (size_t)K);
    if (nc) Q->out->ctxs = nc;
    if (!nc || !t || !tab) {
        free(t);
        free(tab);
        failf(Q, VEIL_ERR_NOMEM, "out of memory");
        return NULL;
    }
    memcpy(tab, src, sizeof(int64_t) * (size_t)K);
    t->lo = lo, t->step = step, t->K = K, t->table = tab;
    Q->out->ctxs[Q->out->nctx++] = t;
    return t;
}

/* node with its l low bits rounded away (rounding_threshold_bits), or node itself when l = 0 */
static int rounded(qctx *Q, int node, unsigned l)
{
    if (l == 0) return node;
    return Q->o->rounding_method == VEIL_ROUNDING_APPROXIMATE ? veil_graph_round_bit_pattern_approx(Q->g, node, l)
                                                              : veil_graph_round_bit_pattern(Q->g, node, l);
}

/* The lookup grid of each element of B: its range rounded to multiples of step = 2^l, l the low
 * bits rounded away (rounding_threshold_bits), K = the table's entries. Without rounding every
 * element reads the whole range; with rounding_bits R, elements read their range's high R bits:
 * the whole tensor's range (explicit rounding), or in automatic rounding each channel's own range
 * (axis 1, the axis after the batch one; each element for a 1-D value), widened by 1/32 on each
 * side so that a sample past the inputset's range still lands in the table. */
typedef struct {
    int64_t off, lo, step, K; /* the lookup reads x - off, lo in that shifted range */
    unsigned l;
} grid;

static int shifted(qctx *Q, int node, int64_t off)
{
    return off ? veil_graph_sub(Q->g, node, veil_graph_scalar(Q->g, off)) : node;
}

static int64_t round_to(int64_t x, int64_t step) { return (int64_t)floor((double)x / (double)step + 0.5) * step; }

static void make_grid(unsigned R, int64_t lo, int64_t hi, int widen, grid *gr)
{
    int64_t wlo = lo, whi = hi;
    gr->off = 0;
    if (widen) wlo = lo - (hi - lo) / 32, whi = hi + (hi - lo) / 32;
    unsigned bb = bits_of(wlo, whi);
    gr->l = R > 0 && bb > R ? bb - R : 0;
    gr->step = (int64_t)1 << gr->l;
    gr->lo = round_to(wlo, gr->step);
    gr->K = (round_to(whi, gr->step) - gr->lo) / gr->step + 1;
}

static veil_status element_grids(qctx *Q, const qval *B, grid *gr)
{
    int64_t lo, hi, size = B->size;
    quant_range(Q, B, &lo, &hi);
    unsigned R = Q->o->rounding_bits > 0 ? (unsigned)Q->o->rounding_bits : 0;
    if (!(R > 0 && Q->o->auto_rounding && !Q->whole_range && bits_of(lo, hi) > R)) {
        grid g1;
        make_grid(R, lo, hi, 0, &g1);
        for (int64_t e = 0; e < size; e++) gr[e] = g1;
        return VEIL_OK;
    }
    int axis = B->ndim >= 2 ? 1 : 0;
    int64_t inner = 1, nch = B->ndim ? B->shape[axis] : 1;
    for (int d = axis + 1; d < B->ndim; d++) inner *= B->shape[d];
    int64_t *clo = malloc(sizeof(int64_t) * (size_t)nch + 1), *chi = malloc(sizeof(int64_t) * (size_t)nch + 1);
    if (!clo || !chi) {
        free(clo);
        free(chi);
        return failf(Q, VEIL_ERR_NOMEM, "out of memory");
    }
    for (int64_t c = 0; c < nch; c++) clo[c] = INT64_MAX, chi[c] = INT64_MIN;
    for (size_t s = 0; s < Q->ns; s++)
        for (int64_t e = 0; e < size; e++) {
            int64_t q = (int64_t)nearbyint(B->cal[s].data[e] / B->scale + B->zp), c = (e / inner) % nch;
            if (q < clo[c]) clo[c] = q;
            if (q > chi[c]) chi[c] = q;
        }
    for (int64_t e = 0; e < size; e++) {
        int64_t c = (e / inner) % nch;
        make_grid(R, clo[c], chi[c], 1, &gr[e]);
    }
    free(clo);
    free(chi);
    return VEIL_OK;
}

/* Turns value qi (FN, or QUANT to requantize) into a QUANT value through one table lookup per
 * element. The output quantizer is `forced`, or calibrated with `bits` on the chain's outputs. */
static int materialize(qctx *Q, int qi, const ml_quantizer *forced, int bits, const ml_node *at)
{
    if (Q->st != VEIL_OK) return -1;
    const qval *v = &Q->qv[qi];
    int bi = v->kind == QV_FN ? v->base : qi;
    const fn_step *steps = v->kind == QV_FN ? v->steps : NULL;
    int nsteps = v->kind == QV_FN ? v->nsteps : 0;
    const qval *B = &Q->qv[bi];
    /* name the lookup after the last element-wise op it computes */
    if (nsteps > 0) at = &Q->fg->nodes[steps[nsteps - 1].node];
    int64_t lo, hi, size = B->size;
    quant_range(Q, B, &lo, &hi);
    unsigned bb = bits_of(lo, hi);
    grid *gr = malloc(sizeof(grid) * (size_t)size + 1);
    if (!gr) {
        failf(Q, VEIL_ERR_NOMEM, "out of memory");
        return -1;
    }
    if (element_grids(Q, B, gr) != VEIL_OK) {
        free(gr);
        return -1;
    }
    int64_t K = 0, glo = INT64_MAX, ghi = INT64_MIN;
    unsigned lmin = 63, lmax = 0;
    for (int64_t e = 0; e < size; e++) {
        if (gr[e].K > K) K = gr[e].K;
        if (gr[e].off + gr[e].lo < glo) glo = gr[e].off + gr[e].lo;
        if (gr[e].off + gr[e].lo + (gr[e].K - 1) * gr[e].step > ghi) ghi = gr[e].off + gr[e].lo + (gr[e].K - 1) * gr[e].step;
        if (gr[e].l < lmin) lmin = gr[e].l;
        if (gr[e].l > lmax) lmax = gr[e].l;
    }
    if (size == 0) lmin = 0;
    report_value(Q, at, lmax > 0 ? (lmin == lmax ? "lookup(r)" : "lookup(rc)") : "lookup", glo, ghi);
    if (lmax > 0) {
        unsigned rb = bits_of(gr[0].lo, gr[0].lo + (gr[0].K - 1) * gr[0].step) - gr[0].l;
        for (int64_t e = 1; e < size; e++) {
            unsigned b = bits_of(gr[e].lo, gr[e].lo + (gr[e].K - 1) * gr[e].step) - gr[e].l;
            if (b > rb) rb = b;
        }
        Q->out->nrounded++;
        if (lmin == lmax)
            veil_sb_printf(&Q->rlog, "node '%s' (%s): its %u-bit accumulator rounded to %u bits\n", at->name,
                           ml_op_names[at->op], bb, rb);
        else
            veil_sb_printf(&Q->rlog,
                           "node '%s' (%s): its %u-bit accumulator rounded to %u bits, each channel over its own "
                           "range (%u to %u low bits dropped)\n",
                           at->name, ml_op_names[at->op], bb, rb, lmin, lmax);
    }
    if (K > MAX_TABLE_ENTRIES || K * size > MAX_TABLE_CELLS) {
        failf(Q, VEIL_ERR_COMPILE,
              "node '%s' (%s): its table lookup reads a %u-bit value (range [%lld, %lld]); lower n_bits or set "
              "rounding_threshold_bits",
              at->name, ml_op_names[at->op], bits_of(lo, hi), (long long)lo, (long long)hi);
        free(gr);
        return -1;
    }
    /* calibration of the output quantizer: the chain on the (rounded) calibration inputs */
    double rlo = INFINITY, rhi = -INFINITY;
    ml_tensor *outs = calloc(Q->ns, sizeof(ml_tensor));
    ml_tensor probe = {0};
    int64_t *T = malloc(sizeof(int64_t) * (size_t)(K * size) + 1);
    int *gid = malloc(sizeof(int) * (size_t)size + 1);
    int *rep = malloc(sizeof(int) * (size_t)size + 1);
    int res = -1;
    if (!outs || !T || !gid || !rep || ml_tensor_alloc(&probe, B->ndim, B->shape) != VEIL_OK) {
        failf(Q, VEIL_ERR_NOMEM, "out of memory");
        goto done;
    }
    for (size_t s = 0; s < Q->ns; s++) {
        for (int64_t e = 0; e < size; e++) {
            int64_t q = round_to((int64_t)nearbyint(B->cal[s].data[e] / B->scale + B->zp) - gr[e].off, gr[e].step);
            probe.data[e] = B->scale * ((double)(q + gr[e].off) - B->zp);
        }
        if (chain_eval(Q, steps, nsteps, &probe, &outs[s]) != VEIL_OK) goto done;
        if (outs[s].size != size) {
            failf(Q, VEIL_ERR_UNSUPPORTED, "node '%s' (%s): an element-wise operation changes the shape", at->name,
                  ml_op_names[at->op]);
            goto done;
        }
        for (int64_t e = 0; e < size; e++) rlo = fmin(rlo, outs[s].data[e]), rhi = fmax(rhi, outs[s].data[e]);
    }
    if (!(rlo <= rhi) || !isfinite(rlo) || !isfinite(rhi)) {
        failf(Q, VEIL_ERR_COMPILE, "node '%s' (%s): non-finite values on the inputset", at->name, ml_op_names[at->op]);
        goto done;
    }
    ml_quantizer oq = forced ? *forced : calibrated(rlo, rhi, bits);
    /* the tables: T[e·K + k] = quantized f_e(lo_e + k·step_e), padded with the last entry */
    for (int64_t k = 0; k < K; k++) {
        for (int64_t e = 0; e < size; e++) {
            int64_t kk = k < gr[e].K ? k : gr[e].K - 1;
            probe.data[e] = B->scale * ((double)(gr[e].off + gr[e].lo + kk * gr[e].step) - B->zp);
        }
        ml_tensor y;
        if (chain_eval(Q, steps, nsteps, &probe, &y) != VEIL_OK) goto done;
        for (int64_t e = 0; e < size; e++) {
            double f = y.data[e];
            T[e * K + k] = isfinite(f) ? (int64_t)ml_quantize_value(&oq, f) : (int64_t)(f > 0 ? oq.qmax : oq.qmin);
        }
        ml_tensor_free(&y);
    }
    /* group identical tables on identical grids */
    int ngroups = 0;
    for (int64_t e = 0; e < size; e++) {
        int g = -1;
        for (int k = 0; k < ngroups && g < 0; k++) {
            const grid *a = &gr[rep[k]], *b = &gr[e];
            if (a->off == b->off && a->lo == b->lo && a->step == b->step && a->K == b->K &&
                memcmp(&T[(int64_t)rep[k] * K], &T[e * K], sizeof(int64_t) * (size_t)K) == 0)
                g = k;
        }
        if (g < 0) rep[g = ngroups++] = (int)e;
        gid[e] = g;
    }
    int node = -1;
    if (ngroups == 1) {
        table_ctx *t = new_table(Q, gr[0].lo, gr[0].step, gr[0].K, T);
        if (t) node = veil_graph_apply(Q->g, rounded(Q, shifted(Q, B->node, gr[0].off), gr[0].l), table_fn, t, at->name);
    } else {
        /* one axis decides the table (per-channel batch-norm or rounding, ...): slice along it;
         * otherwise one lookup node per element */
        int64_t st_[VEIL_MAX_DIMS], s = 1;
        for (int d = B->ndim - 1; d >= 0; d--) st_[d] = s, s *= B->shape[d];
        int axis = -1;
        for (int d = 0; d < B->ndim && axis < 0; d++) {
            int ok = 1;
            for (int64_t e = 0; e < size && ok; e++) {
                int64_t i = (e / st_[d]) % B->shape[d];
                ok = gid[e] == gid[i * st_[d]];
            }
            if (ok) axis = d;
        }
        /* each slice is rounded right before its lookup, so that the compiler reads the rounding
         * and the lookup as one narrow bootstrapping */
        int x = B->node, nparts = 0, along = axis;
        int64_t nslices = axis >= 0 ? B->shape[axis] : size;
        if (axis < 0) {
            x = veil_graph_reshape(Q->g, B->node, 1, (int64_t[]){size});
            along = 0;
        }
        int *parts = malloc(sizeof(int) * (size_t)nslices + 1);
        if (!parts) {
            failf(Q, VEIL_ERR_NOMEM, "out of memory");
            goto done;
        }
        for (int64_t i = 0; i < nslices && Q->st == VEIL_OK; i++) {
            veil_slice sl[VEIL_MAX_DIMS];
            for (int d = 0; d <= along; d++) sl[d] = VEIL_SLICE_ALL;
            sl[along] = (veil_slice){i, i + 1, 1, 0};
            int part = veil_graph_slice(Q->g, x, along + 1, sl);
            int64_t e0 = axis >= 0 ? i * st_[axis] : i;
            table_ctx *t = new_table(Q, gr[e0].lo, gr[e0].step, gr[e0].K, &T[e0 * K]);
            if (!t) break;
            parts[nparts++] =
                veil_graph_apply(Q->g, rounded(Q, shifted(Q, part, gr[e0].off), gr[e0].l), table_fn, t, at->name);
        }
        node = veil_graph_concatenate(Q->g, nparts, parts, along);
        if (axis < 0) node = veil_graph_reshape(Q->g, node, B->ndim, B->shape);
        free(parts);
    }
    if (Q->st != VEIL_OK) goto done;
    if (node < 0) {
        graph_fail(Q, at);
        goto done;
    }
    res = quant_value(Q, node, oq.scale, oq.zp);
    if (res < 0) goto done;
    B = &Q->qv[bi]; /* qv may have moved */
    for (size_t s = 0; s < Q->ns && Q->st == VEIL_OK; s++) {
        ml_tensor *c = &Q->qv[res].cal[s];
        if (ml_tensor_alloc(c, B->ndim, B->shape) != VEIL_OK) {
            failf(Q, VEIL_ERR_NOMEM, "out of memory");
            break;
        }
        for (int64_t e = 0; e < size; e++) {
            int64_t q = (int64_t)nearbyint(B->cal[s].data[e] / B->scale + B->zp);
            int64_t k = (int64_t)floor(((double)(q - gr[e].off) - (double)gr[e].lo) / (double)gr[e].step + 0.5);
            k = k < 0 ? 0 : k >= gr[e].K ? gr[e].K - 1 : k;
            c->data[e] = oq.scale * ((double)T[e * K + k] - oq.zp);
        }
    }
done:
    if (outs)
        for (size_t s = 0; s < Q->ns; s++) ml_tensor_free(&outs[s]);
    free(outs);
    ml_tensor_free(&probe);
    free(T);
    free(gid);
    free(rep);
    free(gr);
    return Q->st == VEIL_OK ? res : -1;
}

/* QUANT value of qi: itself, or its FN materialized with n_bits op_inputs. */
static int as_quant(qctx *Q, int qi, const ml_node *at)
{
    if (qi < 0 || Q->st != VEIL_OK) return -1;
    if (Q->qv[qi].kind == QV_QUANT) return qi;
    if (Q->qv[qi].kind != QV_FN) {
        failf(Q, VEIL_ERR_UNSUPPORTED, "node '%s' (%s): operand is not an encrypted value", at->name, ml_op_names[at->op]);
        return -1;
    }
    if (Q->o->qat) {
        failf(Q, VEIL_ERR_COMPILE,
              "node '%s' (%s): its input is not quantized by a Quant node, as a quantization-aware model needs",
              at->name, ml_op_names[at->op]);
        return -1;
    }
    return materialize(Q, qi, NULL, Q->o->n_bits.op_inputs, at);
}

/* Calibration of a new QUANT/shape value: run node n on each sample with the dynamic operand at
 * `pos` taken from `src` and other operands from ins_const. */
static veil_status calibrate_node(qctx *Q, const ml_node *n, int pos, const qval *src, const ml_tensor *const *consts,
                                  qval *dst)
{
    for (size_t s = 0; s < Q->ns && Q->st == VEIL_OK; s++) {
        const ml_tensor *ins[16];
        ml_tensor outs[8];
        for (int i = 0; i < n->nin && i < 16; i++) ins[i] = i == pos ? &src->cal[s] : consts[i];
        veil_status st = ml_run_node(n, ins, outs, Q->err, Q->errlen);
        if (st != VEIL_OK) return failf(Q, st, "%s", Q->err);
        dst->cal[s] = outs[0];
        for (int j = 1; j < n->nout; j++) ml_tensor_free(&outs[j]);
    }
    return Q->st;
}

static int64_t *int_tensor(qctx *Q, const ml_tensor *t, const ml_quantizer *q)
{
    int64_t *r = malloc(sizeof(int64_t) * (size_t)t->size + 1);
    if (!r) {
        failf(Q, VEIL_ERR_NOMEM, "out of memory");
        return NULL;
    }
    for (int64_t i = 0; i < t->size; i++) r[i] = (int64_t)(ml_quantize_value(q, t->data[i]) - q->zp);
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
        failf(Q, VEIL_ERR_COMPILE, "node '%s' (%s): its weights are not quantized by a Quant node in a quantization-aware model",
              n->name, ml_op_names[n->op]);
        return 0;
    }
    *wq = weight_quantizer(&w->c, Q->o->n_bits.op_weights);
    return 1;
}

/* dequantized copy of a quantized constant (what the integer pipeline computes with) */
static veil_status dequantized(qctx *Q, const ml_tensor *t, const ml_quantizer *q, ml_tensor *out)
{
    if (ml_tensor_copy(out, t) != VEIL_OK) return failf(Q, VEIL_ERR_NOMEM, "out of memory");
    for (int64_t i = 0; i < t->size; i++) out->data[i] = q->scale * (ml_quantize_value(q, t->data[i]) - q->zp);
    return VEIL_OK;
}

/* ---- linear layers ------------------------------------------------------------------------------- */

static int do_gemm_like(qctx *Q, const ml_node *n)
{
    int is_gemm = n->op == ML_OP_GEMM;
    int a = Q->vmap[n->in[0]], b = Q->vmap[n->in[1]];
    int a_dyn = Q->qv[a].kind != QV_CONST, b_dyn = Q->qv[b].kind != QV_CONST;
    if (is_gemm && ml_attr_int(n, "transA", 0) && a_dyn)
        return failf(Q, VEIL_ERR_UNSUPPORTED, "node '%s': Gemm with transA on an encrypted operand", n->name), -1;
    double alpha = is_gemm ? ml_attr_float(n, "alpha", 1) : 1, beta = is_gemm ? ml_attr_float(n, "beta", 1) : 1;
    const ml_tensor *C = is_gemm && n->nin > 2 ? const_of(Q, n->in[2]) : NULL;
    if (is_gemm && n->nin > 2 && n->in[2] >= 0 && !C)
        return failf(Q, VEIL_ERR_UNSUPPORTED, "node '%s': Gemm with an encrypted C", n->name), -1;
    if (a_dyn && b_dyn) {
        if (is_gemm && ml_attr_int(n, "transB", 0))
            return failf(Q, VEIL_ERR_UNSUPPORTED, "node '%s': Gemm with transB on an encrypted operand", n->name), -1;
        int qa = as_quant(Q, a, n), qb = as_quant(Q, b, n);
        if (qa < 0 || qb < 0) return -1;
        int node = veil_graph_matmul(Q->g, centered(Q, &Q->qv[qa]), centered(Q, &Q->qv[qb]));
        double sc = alpha * Q->qv[qa].scale * Q->qv[qb].scale;
        if (C) {
            ml_tensor bq;
            if (ml_tensor_copy(&bq, C) != VEIL_OK) return failf(Q, VEIL_ERR_NOMEM, "out of memory"), -1;
            for (int64_t i = 0; i < bq.size; i++) bq.data[i] = nearbyint(beta * C->data[i] / sc);
            int64_t *bi = malloc(sizeof(int64_t) * (size_t)bq.size + 1);
            for (int64_t i = 0; bi && i < bq.size; i++) bi[i] = (int64_t)bq.data[i];
            if (bi) node = veil_graph_add(Q->g, node, veil_graph_constant(Q->g, bq.ndim, bq.shape, bi));
            free(bi);
            ml_tensor_free(&bq);
        }
        if (node < 0) return graph_fail(Q, n), -1;
        int r = quant_value(Q, node, sc, 0);
        if (r < 0) return -1;
        for (size_t s = 0; s < Q->ns && Q->st == VEIL_OK; s++) {
            const ml_tensor *ins[3] = {&Q->qv[qa].cal[s], &Q->qv[qb].cal[s], NULL};
            ml_tensor outs[1];
            ml_node plain = *n;
            plain.nin = 2;
            if (ml_run_node(&plain, ins, outs, Q->err, Q->errlen) != VEIL_OK) return failf(Q, VEIL_ERR_GRAPH, "%s", Q->err), -1;
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
    int qx = as_quant(Q, Q->vmap[n->in[xi]], n);
    if (qx < 0) return -1;
    ml_quantizer wq;
    if (!weight_q(Q, n, wi, &wq)) return -1;
    const ml_tensor *W = &Q->qv[Q->vmap[n->in[wi]]].c;
    const qval *X = &Q->qv[qx];
    if (X->ndim > 2 || W->ndim > 2)
        return failf(Q, VEIL_ERR_UNSUPPORTED, "node '%s' (%s): only 1-D and 2-D operands are supported", n->name,
                     ml_op_names[n->op]), -1;
    int64_t *wint = int_tensor(Q, W, &wq);
    if (!wint) return -1;
    int wnode = veil_graph_constant(Q->g, W->ndim, W->shape, wint);
    free(wint);
    if (is_gemm && ml_attr_int(n, "transB", 0)) wnode = veil_graph_transpose(Q->g, wnode, NULL);
    if (is_gemm && ml_attr_int(n, "transA", 0)) wnode = veil_graph_transpose(Q->g, wnode, NULL);
    int xc = centered(Q, X);
    int node = xi == 0 ? veil_graph_matmul(Q->g, xc, wnode) : veil_graph_matmul(Q->g, wnode, xc);
    double sc = alpha * X->scale * wq.scale;
    ml_tensor wdq = {0}, cdq = {0};
    if (dequantized(Q, W, &wq, &wdq) != VEIL_OK) return -1;
    if (C) {
        /* bias on the accumulator's scale */
        if (ml_tensor_copy(&cdq, C) != VEIL_OK) {
            ml_tensor_free(&wdq);
            return failf(Q, VEIL_ERR_NOMEM, "out of memory"), -1;
        }
        int64_t *bi = malloc(sizeof(int64_t) * (size_t)C->size + 1);
        if (!bi) {
            ml_tensor_free(&wdq), ml_tensor_free(&cdq);
            return failf(Q, VEIL_ERR_NOMEM, "out of memory"), -1;
        }
        for (int64_t i = 0; i < C->size; i++) {
            double q = nearbyint(beta * C->data[i] / sc);
            bi[i] = (int64_t)q;
            cdq.data[i] = q * sc / beta;
        }
        node = veil_graph_add(Q->g, node, veil_graph_constant(Q->g, C->ndim, C->shape, bi));
        free(bi);
    }
    if (node < 0) {
        ml_tensor_free(&wdq), ml_tensor_free(&cdq);
        return graph_fail(Q, n), -1;
    }
    int r = quant_value(Q, node, sc, 0);
    if (r >= 0) {
        const ml_tensor *consts[3] = {NULL, NULL, C ? &cdq : NULL};
        consts[wi] = &wdq;
        calibrate_node(Q, n, xi, &Q->qv[qx], consts, &Q->qv[r]);
    }
    ml_tensor_free(&wdq);
    ml_tensor_free(&cdq);
    return Q->st == VEIL_OK ? r : -1;
}

static int do_conv(qctx *Q, const ml_node *n)
{
    int qx = as_quant(Q, Q->vmap[n->in[0]], n);
    if (qx < 0) return -1;
    if (n->nin < 2 || !const_of(Q, n->in[1]))
        return failf(Q, VEIL_ERR_UNSUPPORTED, "node '%s': Conv weights must be constant", n->name), -1;
    const ml_tensor *B = n->nin > 2 ? const_of(Q, n->in[2]) : NULL;
    if (n->nin > 2 && n->in[2] >= 0 && !B)
        return failf(Q, VEIL_ERR_UNSUPPORTED, "node '%s': Conv bias must be constant", n->name), -1;
    ml_quantizer wq;
    if (!weight_q(Q, n, 1, &wq)) return -1;
    const ml_tensor *W = &Q->qv[Q->vmap[n->in[1]]].c;
    /* geometry: run the float kernel once to validate and get pads from auto_pad */
    const qval *X = &Q->qv[qx];
    if (X->ndim != 4 || W->ndim != 4)
        return failf(Q, VEIL_ERR_UNSUPPORTED, "node '%s': only 2-D Conv is supported", n->name), -1;
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
    free(wint);
    double sc = X->scale * wq.scale;
    ml_tensor wdq = {0}, bdq = {0};
    int bnode = -1;
    if (dequantized(Q, W, &wq, &wdq) != VEIL_OK) return -1;
    if (B) {
        int64_t *bi = malloc(sizeof(int64_t) * (size_t)B->size + 1);
        if (!bi || ml_tensor_copy(&bdq, B) != VEIL_OK) {
            free(bi);
            ml_tensor_free(&wdq);
            return failf(Q, VEIL_ERR_NOMEM, "out of memory"), -1;
        }
        for (int64_t i = 0; i < B->size; i++) bi[i] = (int64_t)nearbyint(B->data[i] / sc), bdq.data[i] = (double)bi[i] * sc;
        bnode = veil_graph_constant(Q->g, 1, (int64_t[]){B->size}, bi);
        free(bi);
    }
    int node = veil_graph_conv2d(Q->g, centered(Q, X), wnode, bnode, &co);
    if (node < 0) {
        ml_tensor_free(&wdq), ml_tensor_free(&bdq);
        return graph_fail(Q, n), -1;
    }
    int r = quant_value(Q, node, sc, 0);
    if (r >= 0) {
        const ml_tensor *consts[3] = {NULL, &wdq, B ? &bdq : NULL};
        calibrate_node(Q, n, 0, &Q->qv[qx], consts, &Q->qv[r]);
    }
    ml_tensor_free(&wdq), ml_tensor_free(&bdq);
    return Q->st == VEIL_OK ? r : -1;
}

static int do_pool(qctx *Q, const ml_node *n)
{
    /* a max pool over one monotone lookup runs on the lookup's inputs (the compiler pools the
     * rounded values and looks the table up after): that needs one table for the whole tensor */
    Q->whole_range = n->op == ML_OP_MAX_POOL;
    int qx = as_quant(Q, Q->vmap[n->in[0]], n);
    Q->whole_range = 0;
    if (qx < 0) return -1;
    const qval *X = &Q->qv[qx];
    if (X->ndim != 4) return failf(Q, VEIL_ERR_UNSUPPORTED, "node '%s': only 2-D pooling is supported", n->name), -1;
    int64_t C = X->shape[1], kh, kw;
    veil_pool2d_opts po = {{1, 1}, {1, 1}, {0, 0, 0, 0}, {1, 1}};
    int node;
    double sc = X->scale;
    if (n->op == ML_OP_GLOBAL_AVERAGE_POOL) {
        kh = X->shape[2], kw = X->shape[3];
        node = veil_graph_sum(Q->g, centered(Q, X), 2, (int[]){2, 3}, 1);
        sc /= (double)(kh * kw);
    } else {
        const ml_attr *ks = ml_attr_find(n, "kernel_shape"), *st = ml_attr_find(n, "strides"),
                      *dl = ml_attr_find(n, "dilations"), *pd = ml_attr_find(n, "pads");
        if (!ks || ks->n != 2) return failf(Q, VEIL_ERR_UNSUPPORTED, "node '%s': pooling needs a 2-D kernel_shape", n->name), -1;
        if (strcmp(ml_attr_string(n, "auto_pad", "NOTSET"), "NOTSET") != 0 || ml_attr_int(n, "ceil_mode", 0))
            return failf(Q, VEIL_ERR_UNSUPPORTED, "node '%s': auto_pad and ceil_mode are not supported in pooling", n->name), -1;
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
            int xc = centered(Q, X);
            if (X->scale < 0) xc = veil_graph_negate(Q->g, xc), sc = -sc;
            node = veil_graph_max_pool2d(Q->g, xc, &po);
        } else {
            if (padded && !ml_attr_int(n, "count_include_pad", 0))
                return failf(Q, VEIL_ERR_UNSUPPORTED,
                             "node '%s': AveragePool with padding needs count_include_pad=1 (a per-position divisor is not supported)",
                             n->name), -1;
            /* sum pooling: a depthwise convolution with ones; the 1/(kh·kw) goes into the scale */
            int64_t *ones = malloc(sizeof(int64_t) * (size_t)(C * kh * kw) + 1);
            if (!ones) return failf(Q, VEIL_ERR_NOMEM, "out of memory"), -1;
            for (int64_t i = 0; i < C * kh * kw; i++) ones[i] = 1;
            int w = veil_graph_constant(Q->g, 4, (int64_t[]){C, 1, kh, kw}, ones);
            free(ones);
            veil_conv2d_opts co = {{po.strides[0], po.strides[1]},
                                   {po.pads[0], po.pads[1], po.pads[2], po.pads[3]},
                                   {po.dilations[0], po.dilations[1]},
                                   C};
            node = veil_graph_conv2d(Q->g, centered(Q, X), w, -1, &co);
            sc /= (double)(kh * kw);
        }
    }
    if (node < 0) return graph_fail(Q, n), -1;
    int r = quant_value(Q, node, sc, 0);
    if (r >= 0) {
        const ml_tensor *consts[1] = {NULL};
        calibrate_node(Q, n, 0, &Q->qv[qx], consts, &Q->qv[r]);
    }
    return Q->st == VEIL_OK ? r : -1;
}

/* Pad (constant mode) on integers: concatenate blocks of the padding value's integer. */
static int do_pad(qctx *Q, const ml_node *n)
{
    int qx = as_quant(Q, Q->vmap[n->in[0]], n);
    if (qx < 0) return -1;
    /* reuse the float kernel on a shape probe to get the output shape and validate */
    const qval *X = &Q->qv[qx];
    const ml_tensor *ins[4] = {&X->cal[0], n->nin > 1 ? const_of(Q, n->in[1]) : NULL,
                               n->nin > 2 ? const_of(Q, n->in[2]) : NULL, n->nin > 3 ? const_of(Q, n->in[3]) : NULL};
    ml_tensor probe[1];
    if (ml_run_node(n, ins, probe, Q->err, Q->errlen) != VEIL_OK) return failf(Q, VEIL_ERR_UNSUPPORTED, "%s", Q->err), -1;
    double value = ml_attr_float(n, "value", 0);
    if (ins[2] && ins[2]->size) value = ins[2]->data[0];
    int64_t padv = (int64_t)nearbyint(value / X->scale);
    int node = centered(Q, X);
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
            int64_t *vals = malloc(sizeof(int64_t) * (size_t)cnt + 1);
            if (!vals) return failf(Q, VEIL_ERR_NOMEM, "out of memory"), -1;
            for (int64_t k = 0; k < cnt; k++) vals[k] = padv;
            int blk = veil_graph_constant(Q->g, X->ndim, bs, vals);
            free(vals);
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
    if (node < 0) return graph_fail(Q, n), -1;
    int r = quant_value(Q, node, X->scale, 0);
    if (r >= 0) calibrate_node(Q, n, 0, &Q->qv[qx], ins, &Q->qv[r]);
    return Q->st == VEIL_OK ? r : -1;
}

/* Reshape, Flatten, Squeeze, Unsqueeze, Transpose, Identity, Dropout on a QUANT value */
static int do_shape(qctx *Q, const ml_node *n, int qi)
{
    const qval *X = &Q->qv[qi];
    const ml_tensor *ins[4] = {&X->cal[0], n->nin > 1 ? const_of(Q, n->in[1]) : NULL, NULL, NULL};
    ml_tensor probe[2];
    if (ml_run_node(n, ins, probe, Q->err, Q->errlen) != VEIL_OK) return failf(Q, VEIL_ERR_GRAPH, "%s", Q->err), -1;
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
    if (node < 0) return graph_fail(Q, n), -1;
    int r = quant_value(Q, node, X->scale, X->zp);
    if (r >= 0) calibrate_node(Q, n, 0, &Q->qv[qi], ins, &Q->qv[r]);
    return Q->st == VEIL_OK ? r : -1;
}

/* a common scale for several QUANT operands: requantize the others to the first's scale */
static int rescaled_centered(qctx *Q, int qi, const qval *ref, const ml_node *at, int *qout)
{
    const qval *v = &Q->qv[qi];
    if (v->scale == ref->scale) {
        *qout = qi;
        return centered(Q, v);
    }
    ml_quantizer rq = {ref->scale, 0, -INFINITY, INFINITY};
    int r = materialize(Q, qi, &rq, 0, at);
    if (r < 0) return -1;
    *qout = r;
    return Q->qv[r].node;
}

static int do_concat(qctx *Q, const ml_node *n)
{
    int q[64], nodes[64];
    if (n->nin > 64) return failf(Q, VEIL_ERR_UNSUPPORTED, "node '%s': too many inputs", n->name), -1;
    int first = -1;
    for (int i = 0; i < n->nin; i++) {
        const qval *v = &Q->qv[Q->vmap[n->in[i]]];
        if (v->kind == QV_CONST) return failf(Q, VEIL_ERR_UNSUPPORTED, "node '%s': Concat of a constant with encrypted values", n->name), -1;
        if ((q[i] = as_quant(Q, Q->vmap[n->in[i]], n)) < 0) return -1;
        if (first < 0) first = q[i];
    }
    qval ref = Q->qv[first];
    for (int i = 0; i < n->nin; i++)
        if ((nodes[i] = rescaled_centered(Q, q[i], &ref, n, &q[i])) < 0) return -1;
    int axis = (int)ml_attr_int(n, "axis", 0);
    if (axis < 0) axis += ref.ndim;
    int node = veil_graph_concatenate(Q->g, n->nin, nodes, axis);
    if (node < 0) return graph_fail(Q, n), -1;
    int r = quant_value(Q, node, ref.scale, 0);
    if (r < 0) return -1;
    for (size_t s = 0; s < Q->ns && Q->st == VEIL_OK; s++) {
        const ml_tensor *ins[64];
        ml_tensor outs[1];
        for (int i = 0; i < n->nin; i++) ins[i] = &Q->qv[q[i]].cal[s];
        if (ml_run_node(n, ins, outs, Q->err, Q->errlen) != VEIL_OK) return failf(Q, VEIL_ERR_GRAPH, "%s", Q->err), -1;
        Q->qv[r].cal[s] = outs[0];
    }
    return Q->st == VEIL_OK ? r : -1;
}

/* Add / Sub / Mul of two encrypted values */
static int do_binary_dyn(qctx *Q, const ml_node *n)
{
    if (n->op != ML_OP_ADD && n->op != ML_OP_SUB && n->op != ML_OP_MUL)
        return failf(Q, VEIL_ERR_UNSUPPORTED, "node '%s': %s of two encrypted values is not supported", n->name,
                     ml_op_names[n->op]), -1;
    int qa = as_quant(Q, Q->vmap[n->in[0]], n), qb = as_quant(Q, Q->vmap[n->in[1]], n);
    if (qa < 0 || qb < 0) return -1;
    int node;
    double sc;
    if (n->op == ML_OP_MUL) {
        node = veil_graph_multiply(Q->g, centered(Q, &Q->qv[qa]), centered(Q, &Q->qv[qb]));
        sc = Q->qv[qa].scale * Q->qv[qb].scale;
    } else {
        qval ref = Q->qv[qa];
        int xa = centered(Q, &ref), xb = rescaled_centered(Q, qb, &ref, n, &qb);
        if (xb < 0) return -1;
        node = n->op == ML_OP_ADD ? veil_graph_add(Q->g, xa, xb) : veil_graph_sub(Q->g, xa, xb);
        sc = ref.scale;
    }
    if (node < 0) return graph_fail(Q, n), -1;
    int r = quant_value(Q, node, sc, 0);
    if (r < 0) return -1;
    for (size_t s = 0; s < Q->ns && Q->st == VEIL_OK; s++) {
        const ml_tensor *ins[2] = {&Q->qv[qa].cal[s], &Q->qv[qb].cal[s]};
        ml_tensor outs[1];
        if (ml_run_node(n, ins, outs, Q->err, Q->errlen) != VEIL_OK) return failf(Q, VEIL_ERR_GRAPH, "%s", Q->err), -1;
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
    int r = qv_new(Q, QV_FN);
    if (r < 0) return -1;
    v = &Q->qv[qi];
    qval *f = &Q->qv[r];
    f->base = base;
    f->nsteps = (v->kind == QV_FN ? v->nsteps : 0) + 1;
    f->steps = malloc(sizeof(fn_step) * (size_t)f->nsteps);
    if (!f->steps) return failf(Q, VEIL_ERR_NOMEM, "out of memory"), -1;
    if (v->kind == QV_FN) memcpy(f->steps, v->steps, sizeof(fn_step) * (size_t)v->nsteps);
    fn_step st = {(int)(n - Q->fg->nodes), pos, other, 1, 0};
    if (other >= 0) {
        const qval *A = &Q->qv[base], *B = &Q->qv[Q->qv[other].kind == QV_FN ? Q->qv[other].base : other];
        st.oa = B->scale / A->scale;
        st.ob = B->scale * (A->zp - B->zp);
    }
    f->steps[f->nsteps - 1] = st;
    qv_set_shape(f, v->ndim, v->shape);
    if (!cal_alloc(Q, f)) return -1;
    for (size_t s = 0; s < Q->ns && Q->st == VEIL_OK; s++)
        if (run_step(Q, &f->steps[f->nsteps - 1], &Q->qv[qi].cal[s], &Q->qv[base].cal[s], &Q->qv[r].cal[s]) == VEIL_OK &&
            !ml_same_shape(&Q->qv[r].cal[s], &Q->qv[qi].cal[s]))
            failf(Q, VEIL_ERR_UNSUPPORTED,
                  "node '%s' (%s): a constant operand broadcasts the encrypted value to a larger shape", n->name,
                  ml_op_names[n->op]);
    return Q->st == VEIL_OK ? r : -1;
}

static int fn_append(qctx *Q, int qi, const ml_node *n, int pos) { return fn_append2(Q, qi, n, pos, -1); }

/* The integer graph node under a QUANT or FN value (-1 for others). */
static int base_of(const qctx *Q, int qi)
{
    const qval *v = &Q->qv[qi];
    return v->kind == QV_QUANT ? v->node : v->kind == QV_FN ? Q->qv[v->base].node : -1;
}

/* Binary op on two encrypted values: one element-wise chain when both come from the same value
 * (x · sigmoid(x), GELU), else the integer operation. */
static int binary_dyn(qctx *Q, const ml_node *n)
{
    int a = Q->vmap[n->in[0]], b = Q->vmap[n->in[1]];
    if (base_of(Q, a) >= 0 && base_of(Q, a) == base_of(Q, b) && ml_same_shape(&Q->qv[a].cal[0], &Q->qv[b].cal[0]))
        return fn_append2(Q, a, n, 0, b);
    return do_binary_dyn(Q, n);
}

/* ---- the walk ----------------------------------------------------------------------------------- */

static int const_value(qctx *Q, const ml_node *n, int j, ml_tensor *t)
{
    int r = qv_new(Q, QV_CONST);
    if (r < 0) {
        ml_tensor_free(t);
        return -1;
    }
    qval *v = &Q->qv[r];
    v->c = *t;
    qv_set_shape(v, t->ndim, t->shape);
    /* a quantizer applied to a constant: its grid defines the integer weights */
    if (j == 0 && n->op == ML_OP_QUANT) {
        const ml_tensor *s = const_of(Q, n->in[1]), *z = const_of(Q, n->in[2]), *b = const_of(Q, n->in[3]);
        if (s && z && b && s->size == 1) {
            double lo, hi;
            ml_quant_bounds((int)ml_attr_int(n, "signed", 1), (int)ml_attr_int(n, "narrow", 0), b->data[0], &lo, &hi);
            v->has_q = 1;
            v->cq = (ml_quantizer){s->data[0], z->data[0], lo, hi};
        }
    } else if (j == 0 && n->op == ML_OP_DEQUANTIZE_LINEAR) {
        const ml_tensor *s = const_of(Q, n->in[1]), *z = n->nin > 2 ? const_of(Q, n->in[2]) : NULL;
        const ml_tensor *x = const_of(Q, n->in[0]);
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

/* ---- tree ensembles: the GEMM form (Concrete ML's "Hummingbird" form) --------------------------- */

/* the leaf-equality lookup */
static int64_t eq_zero(int64_t d, void *ctx)
{
    (void)ctx;
    return d == 0;
}

/* Bits of a tree ensemble's quantized inputs (comparisons) and leaves: n_bits op_inputs and
 * op_weights, 6 each (Concrete ML's tree default) while n_bits is left at veil's default 8. */
static int tree_bits(int n) { return n == 8 ? 6 : n; }

/* TreeScores on model input `ii`, which the client quantizes per feature to [0, M] (its Scaler-like
 * pre-transform maps each feature's inputset range there). Each internal node i compares
 * q[feature_i] with its quantized threshold T_i: one lookup with a table of its own, [q ≤ T_i] (a
 * GTE or GT node reads the negation, folded into B); each leaf ℓ is reached when
 * Σ_i B[i,ℓ]·c_i equals its count of true branches: one lookup [· == 0]; the scores are a clear
 * matrix of quantized leaf weights over the reached leaves, summed over every tree, decrypted at
 * full precision by the client. */
static int do_trees(qctx *Q, const ml_node *n, int ii)
{
    ml_trees t;
    veil_status st = ml_trees_parse(n, &t, Q->err, Q->errlen);
    if (st != VEIL_OK) return failf(Q, st, "%s", Q->err), -1;
    const ml_in_info *in = &Q->out->in[ii];
    int qx = Q->vmap[n->in[0]];
    const qval *X = &Q->qv[qx];
    int64_t F = X->ndim ? X->shape[X->ndim - 1] : 1, M = (int64_t)in->q.qmax;
    int r = -1;
    int64_t *T = NULL, *B = NULL, *Lc = NULL, *W = NULL, *node_of = NULL, *leaf_of = NULL, *parent = NULL;
    int *neg = NULL;
    ml_tensor Wr = {0};
    if (X->size != F || t.nfeatures > F || in->npre != F) {
        failf(Q, VEIL_ERR_UNSUPPORTED, "node '%s': a tree ensemble reads one sample of %lld features", n->name,
              (long long)t.nfeatures);
        goto out;
    }
    /* internal nodes and leaves, numbered */
    int64_t ni = 0, nl = 0;
    node_of = calloc((size_t)t.n + 1, sizeof(int64_t));
    leaf_of = calloc((size_t)t.n + 1, sizeof(int64_t));
    if (!node_of || !leaf_of) goto nomem;
    for (int64_t i = 0; i < t.n; i++) {
        node_of[i] = leaf_of[i] = -1;
        if (t.mode[i] == ML_TREE_LEAF) leaf_of[i] = nl++;
        else node_of[i] = ni++;
    }
    if (ni == 0 || nl == 0) {
        failf(Q, VEIL_ERR_UNSUPPORTED, "node '%s': a tree ensemble without a comparison", n->name);
        goto out;
    }
    int64_t TT = t.ntargets;
    if (ni * nl > ((int64_t)1 << 24) || nl * TT > ((int64_t)1 << 24)) {
        failf(Q, VEIL_ERR_UNSUPPORTED, "node '%s': a tree ensemble of %lld comparisons and %lld leaves is too large for "
              "its GEMM form (at most 2^24 cells)", n->name, (long long)ni, (long long)nl);
        goto out;
    }
    T = calloc((size_t)ni, sizeof(int64_t));
    neg = calloc((size_t)ni, sizeof(int));
    B = calloc((size_t)(ni * nl), sizeof(int64_t));
    Lc = calloc((size_t)nl, sizeof(int64_t));
    W = calloc((size_t)(nl * TT), sizeof(int64_t));
    if (!T || !neg || !B || !Lc || !W || ml_tensor_alloc(&Wr, 2, (int64_t[]){nl, TT}) != VEIL_OK) goto nomem;
    for (int64_t i = 0; i < t.n; i++) {
        int64_t k = node_of[i];
        if (k < 0) continue;
        int64_t f = t.feature[i];
        double tq = (t.value[i] - in->pre_off[f]) * in->pre_scale[f]; /* the threshold on the client's grid */
        int strict = t.mode[i] == ML_TREE_LT || t.mode[i] == ML_TREE_GTE; /* x < t is q ≤ ceil(t' + 1/2) − 1 */
        double Tq = strict ? ceil(tq + 0.5) - 1 : floor(tq + 0.5);
        neg[k] = t.mode[i] == ML_TREE_GTE || t.mode[i] == ML_TREE_GT;
        T[k] = Tq < -1 ? -1 : Tq > (double)M ? M : (int64_t)Tq;
    }
    /* leaves: the branches on their paths, walked up to the root */
    parent = malloc(sizeof(int64_t) * (size_t)(t.n + 1));
    if (!parent) goto nomem;
    for (int64_t i = 0; i < t.n; i++) parent[i] = -1;
    for (int64_t i = 0; i < t.n; i++)
        if (t.mode[i] != ML_TREE_LEAF) parent[t.t[i]] = parent[t.f[i]] = i;
    for (int64_t i = 0; i < t.n; i++) {
        int64_t l = leaf_of[i];
        if (l < 0) continue;
        for (int64_t c = i, p = parent[c], steps = 0; p >= 0 && steps <= t.n; c = p, p = parent[c], steps++) {
            int64_t k = node_of[p], b = t.t[p] == c ? 1 : -1;
            /* the path needs c_k = 1 (b = 1) or 0 (b = −1); with c_k = 1 − le_k when negated, B
             * reads le_k: b·(1 − le) = b − b·le */
            B[k * nl + l] += neg[k] ? -b : b;
            Lc[l] += (b > 0) - (neg[k] ? b : 0);
        }
    }
    for (int64_t w = 0; w < t.nw; w++) Wr.data[leaf_of[t.w_node[w]] * TT + t.w_target[w]] += t.w[w];
    ml_quantizer wq = weight_quantizer(&Wr, tree_bits(Q->o->n_bits.op_weights));
    for (int64_t e = 0; e < nl * TT; e++) W[e] = (int64_t)(ml_quantize_value(&wq, Wr.data[e]) - wq.zp);
    /* the integer graph */
    /* node k's comparison: a lookup of its feature's integer, its own table [q ≤ T_k] (so it reads
     * the feature's bits alone, not a difference one bit wider) */
    int *parts = malloc(sizeof(int) * (size_t)ni + 1);
    int64_t *tab = malloc(sizeof(int64_t) * (size_t)(M + 1));
    if (!parts || !tab) {
        free(parts), free(tab);
        goto nomem;
    }
    for (int64_t i = 0, k; i < t.n && Q->st == VEIL_OK; i++) {
        if ((k = node_of[i]) < 0) continue;
        veil_slice sl[2] = {VEIL_SLICE_ALL, {t.feature[i], t.feature[i] + 1, 1, 0}};
        int part = veil_graph_slice(Q->g, X->node, 2, sl);
        for (int64_t q = 0; q <= M; q++) tab[q] = q <= T[k];
        table_ctx *tc = new_table(Q, 0, 1, M + 1, tab);
        if (tc) parts[k] = veil_graph_apply(Q->g, part, table_fn, tc, "tree_compare");
    }
    free(tab);
    int le = Q->st == VEIL_OK ? veil_graph_concatenate(Q->g, (int)ni, parts, 1) : -1;
    free(parts);
    if (Q->st != VEIL_OK) goto out;
    int m = veil_graph_matmul(Q->g, le, veil_graph_constant(Q->g, 2, (int64_t[]){ni, nl}, B));
    int e = veil_graph_apply(Q->g, veil_graph_sub(Q->g, m, veil_graph_constant(Q->g, 2, (int64_t[]){1, nl}, Lc)), eq_zero,
                             NULL, "tree_leaf");
    int sc = veil_graph_matmul(Q->g, e, veil_graph_constant(Q->g, 2, (int64_t[]){nl, TT}, W));
    if (sc < 0) {
        graph_fail(Q, n);
        goto out;
    }
    r = quant_value(Q, sc, wq.scale, 0);
    if (r < 0) goto out;
    /* calibration: the integer pipeline on each inputset sample */
    int64_t lo[3] = {INT64_MAX, INT64_MAX, INT64_MAX}, hi[3] = {INT64_MIN, INT64_MIN, INT64_MIN};
    int64_t *lev = malloc(sizeof(int64_t) * (size_t)(ni + nl + 1));
    if (!lev) goto nomem;
    for (size_t sm = 0; sm < Q->ns; sm++) {
        const double *xq = Q->qv[qx].cal[sm].data; /* scale 1, zero point 0: the integers */
        ml_tensor *c = &Q->qv[r].cal[sm];
        if (ml_tensor_alloc(c, 2, (int64_t[]){1, TT}) != VEIL_OK) {
            free(lev);
            goto nomem;
        }
        for (int64_t k = 0; k < ni; k++) lev[k] = 0;
        for (int64_t i = 0; i < t.n; i++) {
            int64_t k = node_of[i];
            if (k < 0) continue;
            int64_t qk = (int64_t)xq[t.feature[i]];
            lo[0] = qk < lo[0] ? qk : lo[0], hi[0] = qk > hi[0] ? qk : hi[0];
            lev[k] = qk <= T[k];
        }
        for (int64_t l = 0; l < nl; l++) {
            int64_t acc = -Lc[l];
            for (int64_t k = 0; k < ni; k++) acc += B[k * nl + l] * lev[k];
            lo[1] = acc < lo[1] ? acc : lo[1], hi[1] = acc > hi[1] ? acc : hi[1];
            lev[ni + l] = acc == 0;
        }
        for (int64_t k = 0; k < TT; k++) {
            int64_t acc = 0;
            for (int64_t l = 0; l < nl; l++) acc += lev[ni + l] * W[l * TT + k];
            lo[2] = acc < lo[2] ? acc : lo[2], hi[2] = acc > hi[2] ? acc : hi[2];
            c->data[k] = wq.scale * (double)acc;
        }
    }
    free(lev);
    report_value(Q, n, "compare", lo[0], hi[0]);
    report_value(Q, n, "leaves", lo[1], hi[1]);
out:
    ml_trees_free(&t);
    free(T), free(neg), free(B), free(Lc), free(W), free(node_of), free(leaf_of), free(parent);
    ml_tensor_free(&Wr);
    return Q->st == VEIL_OK ? r : -1;
nomem:
    failf(Q, VEIL_ERR_NOMEM, "out of memory");
    r = -1;
    goto out;
}

int ml_is_post_op(ml_op op)
{
    return op == ML_OP_SOFTMAX || op == ML_OP_LOG_SOFTMAX || op == ML_OP_ARGMAX || op == ML_OP_SIGMOID ||
           op == ML_OP_CAST || op == ML_OP_NORMALIZER || op == ML_OP_ZIPMAP || op == ML_OP_SCORES_LABEL ||
           op == ML_OP_SCORES_TRANSFORM || op == ML_OP_IDENTITY;
}

/* every reader of the value is a node that may run on the client */
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
        if (n->nin > 64 || n->nout > 8) return failf(Q, VEIL_ERR_UNSUPPORTED, "node '%s': too many operands", n->name);
        for (int i = 0; i < n->nin; i++) ins[i] = const_of(Q, n->in[i]);
        if (n->op == ML_OP_SHAPE && ndyn) {
            const qval *v = &Q->qv[Q->vmap[n->in[0]]];
            shp.ndim = v->ndim;
            memcpy(shp.shape, v->shape, sizeof shp.shape);
            shp.size = v->size;
            shp.data = v->cal[0].data;
            ins[0] = &shp;
        }
        veil_status st = ml_run_node(n, ins, outs, Q->err, Q->errlen);
        if (st != VEIL_OK) return failf(Q, st, "%s", Q->err);
        for (int j = 0; j < n->nout; j++) {
            int r = const_value(Q, n, j, &outs[j]);
            if (r < 0) return Q->st;
            Q->vmap[n->out[j]] = r;
        }
        return VEIL_OK;
    }
    int r = -1, x = Q->vmap[n->in[dyn]];
    switch (n->op) {
    case ML_OP_GEMM: case ML_OP_MATMUL: r = do_gemm_like(Q, n); break;
    case ML_OP_CONV:
        if (dyn != 0 || ndyn > 1) return failf(Q, VEIL_ERR_UNSUPPORTED, "node '%s': Conv weights must be constant", n->name);
        r = do_conv(Q, n);
        break;
    case ML_OP_AVERAGE_POOL: case ML_OP_GLOBAL_AVERAGE_POOL: case ML_OP_MAX_POOL: r = do_pool(Q, n); break;
    case ML_OP_PAD: r = do_pad(Q, n); break;
    case ML_OP_CONCAT: r = do_concat(Q, n); break;
    case ML_OP_FLATTEN: case ML_OP_RESHAPE: case ML_OP_SQUEEZE: case ML_OP_UNSQUEEZE: case ML_OP_TRANSPOSE:
    case ML_OP_IDENTITY: case ML_OP_DROPOUT: {
        qval *v = &Q->qv[x];
        if (v->kind == QV_FN && chain_uniform(Q, v) && n->op != ML_OP_IDENTITY && n->op != ML_OP_DROPOUT) {
            /* move the shape change before the chain: the same function on every element */
            int nb = do_shape(Q, n, v->base);
            if (nb < 0) return Q->st;
            v = &Q->qv[x];
            r = qv_new(Q, QV_FN);
            if (r < 0) return Q->st;
            v = &Q->qv[x];
            qval *f = &Q->qv[r];
            f->base = nb;
            f->nsteps = v->nsteps;
            f->steps = malloc(sizeof(fn_step) * (size_t)v->nsteps + 1);
            if (!f->steps) return failf(Q, VEIL_ERR_NOMEM, "out of memory");
            memcpy(f->steps, v->steps, sizeof(fn_step) * (size_t)v->nsteps);
            qv_set_shape(f, Q->qv[nb].ndim, Q->qv[nb].shape);
            if (!cal_alloc(Q, f)) return Q->st;
            for (size_t s = 0; s < Q->ns && Q->st == VEIL_OK; s++)
                chain_eval(Q, f->steps, f->nsteps, &Q->qv[nb].cal[s], &Q->qv[r].cal[s]);
        } else if (v->kind == QV_FN && (n->op == ML_OP_IDENTITY || n->op == ML_OP_DROPOUT)) {
            r = x;
        } else {
            int q = as_quant(Q, x, n);
            if (q < 0) return Q->st;
            r = do_shape(Q, n, q);
        }
        break;
    }
    case ML_OP_QUANT: {
        const ml_tensor *s = const_of(Q, n->in[1]), *z = const_of(Q, n->in[2]), *b = const_of(Q, n->in[3]);
        if (dyn != 0 || !s || !z || !b || s->size != 1 || z->size != 1 || b->size != 1)
            return failf(Q, VEIL_ERR_UNSUPPORTED,
                         "node '%s': Quant on an encrypted value needs a per-tensor constant scale, zero point and bit width", n->name);
        double lo, hi;
        ml_quant_bounds((int)ml_attr_int(n, "signed", 1), (int)ml_attr_int(n, "narrow", 0), b->data[0], &lo, &hi);
        ml_quantizer q = {s->data[0], z->data[0], lo, hi};
        if (strcmp(ml_attr_string(n, "rounding_mode", "ROUND"), "ROUND") != 0)
            return failf(Q, VEIL_ERR_UNSUPPORTED, "node '%s': Quant rounding mode '%s' (ROUND only)", n->name,
                         ml_attr_string(n, "rounding_mode", ""));
        r = materialize(Q, x, &q, 0, n);
        break;
    }
    case ML_OP_QUANTIZE_LINEAR: {
        const ml_tensor *s = const_of(Q, n->in[1]), *z = n->nin > 2 ? const_of(Q, n->in[2]) : NULL;
        if (dyn != 0 || !s || s->size != 1 || (z && z->size != 1))
            return failf(Q, VEIL_ERR_UNSUPPORTED, "node '%s': QuantizeLinear on an encrypted value needs a per-tensor scale",
                         n->name);
        int ut = !z || z->elem_type == 2;
        ml_quantizer q = {s->data[0], z ? z->data[0] : 0, ut ? 0 : -128, ut ? 255 : 127};
        int m = materialize(Q, x, &q, 0, n);
        if (m < 0) return Q->st;
        /* the ONNX value is the integer itself: scale 1, zero point 0 */
        r = quant_value(Q, Q->qv[m].node, 1, 0);
        if (r < 0) return Q->st;
        for (size_t i = 0; i < Q->ns; i++) {
            if (ml_tensor_copy(&Q->qv[r].cal[i], &Q->qv[m].cal[i]) != VEIL_OK) return failf(Q, VEIL_ERR_NOMEM, "out of memory");
            for (int64_t e = 0; e < Q->qv[r].cal[i].size; e++)
                Q->qv[r].cal[i].data[e] = Q->qv[r].cal[i].data[e] / q.scale + q.zp;
        }
        break;
    }
    case ML_OP_DEQUANTIZE_LINEAR: {
        const ml_tensor *s = const_of(Q, n->in[1]), *z = n->nin > 2 ? const_of(Q, n->in[2]) : NULL;
        qval *v = &Q->qv[x];
        if (dyn == 0 && s && s->size == 1 && (!z || z->size == 1) && v->kind == QV_QUANT && v->scale == 1 && v->zp == 0) {
            r = quant_value(Q, v->node, s->data[0], z ? z->data[0] : 0);
            if (r < 0) return Q->st;
            const ml_tensor *consts[3] = {NULL, s, z};
            calibrate_node(Q, n, 0, &Q->qv[x], consts, &Q->qv[r]);
        } else if (dyn == 0) {
            r = fn_append(Q, x, n, 0);
        } else {
            return failf(Q, VEIL_ERR_UNSUPPORTED, "node '%s': DequantizeLinear with an encrypted scale", n->name);
        }
        break;
    }
    case ML_OP_MUL: case ML_OP_DIV:
        if (ndyn == 1) {
            const ml_tensor *c = const_of(Q, n->in[1 - dyn]);
            qval *v = &Q->qv[x];
            if (v->kind == QV_QUANT && c && c->size == 1 && c->data[0] != 0 && (n->op == ML_OP_MUL || dyn == 0) &&
                c->ndim <= v->ndim) {
                /* a scalar factor only changes the scale */
                double f = n->op == ML_OP_MUL ? c->data[0] : 1 / c->data[0];
                r = quant_value(Q, v->node, v->scale * f, v->zp);
                if (r < 0) return Q->st;
                const ml_tensor *consts[2] = {c, c};
                calibrate_node(Q, n, dyn, &Q->qv[x], consts, &Q->qv[r]);
                break;
            }
            r = fn_append(Q, x, n, dyn);
            break;
        }
        r = binary_dyn(Q, n);
        break;
    case ML_OP_ADD: case ML_OP_SUB:
        if (ndyn == 1) {
            const ml_tensor *c = const_of(Q, n->in[1 - dyn]);
            qval *v = &Q->qv[x];
            if (v->kind == QV_QUANT && v->zp == 0 && c && c->ndim <= v->ndim && dyn == 0 && fabs(v->scale) < 1e-3) {
                /* a bias on a fine accumulator: add it on the accumulator's scale */
                ml_tensor cq;
                if (ml_tensor_copy(&cq, c) != VEIL_OK) return failf(Q, VEIL_ERR_NOMEM, "out of memory");
                int64_t *ci = malloc(sizeof(int64_t) * (size_t)c->size + 1);
                if (!ci) {
                    ml_tensor_free(&cq);
                    return failf(Q, VEIL_ERR_NOMEM, "out of memory");
                }
                for (int64_t i = 0; i < c->size; i++) ci[i] = (int64_t)nearbyint(c->data[i] / v->scale), cq.data[i] = (double)ci[i] * v->scale;
                int cn = veil_graph_constant(Q->g, c->ndim, c->shape, ci);
                int node = n->op == ML_OP_ADD ? veil_graph_add(Q->g, v->node, cn) : veil_graph_sub(Q->g, v->node, cn);
                free(ci);
                if (node < 0) {
                    ml_tensor_free(&cq);
                    return graph_fail(Q, n);
                }
                r = quant_value(Q, node, v->scale, 0);
                if (r >= 0) {
                    const ml_tensor *consts[2] = {&cq, &cq};
                    calibrate_node(Q, n, 0, &Q->qv[x], consts, &Q->qv[r]);
                }
                ml_tensor_free(&cq);
                break;
            }
            r = fn_append(Q, x, n, dyn);
            break;
        }
        r = binary_dyn(Q, n);
        break;
    case ML_OP_POW:
        if (ndyn > 1 || dyn != 0) return failf(Q, VEIL_ERR_UNSUPPORTED, "node '%s': Pow with an encrypted exponent", n->name);
        r = fn_append(Q, x, n, 0);
        break;
    case ML_OP_CLIP: case ML_OP_BATCH_NORM:
        if (ndyn > 1 || dyn != 0)
            return failf(Q, VEIL_ERR_UNSUPPORTED, "node '%s': %s parameters must be constant", n->name, ml_op_names[n->op]);
        r = fn_append(Q, x, n, 0);
        break;
    case ML_OP_SOFTMAX: case ML_OP_LOG_SOFTMAX: case ML_OP_ARGMAX: case ML_OP_NORMALIZER: case ML_OP_ZIPMAP:
    case ML_OP_SCORES_LABEL: case ML_OP_SCORES_TRANSFORM:
        return failf(Q, VEIL_ERR_UNSUPPORTED,
                     "node '%s': %s is only supported as the model's final operation (it runs on the client after decryption)",
                     n->name, ml_op_names[n->op]);
    case ML_OP_GATHER:
        return failf(Q, VEIL_ERR_UNSUPPORTED, "node '%s': Gather on an encrypted value is not supported", n->name);
    case ML_OP_TREE_SCORES: {
        int ii = -1;
        for (int i = 0; i < Q->fg->ninputs; i++)
            if (Q->fg->inputs[i] == n->in[0] && Q->out->in[i].npre > 0 && Q->out->in[i].q.scale == 1) ii = i;
        if (ii < 0)
            return failf(Q, VEIL_ERR_UNSUPPORTED, "node '%s': a tree ensemble must read a model input of at most %d features "
                         "directly", n->name, ML_PRE_MAX);
        r = do_trees(Q, n, ii);
        break;
    }
    default:
        if (ml_op_is_elementwise(n->op)) {
            r = fn_append(Q, x, n, dyn);
            break;
        }
        return failf(Q, VEIL_ERR_UNSUPPORTED, "node '%s': %s on an encrypted value is not supported", n->name,
                     ml_op_names[n->op]);
    }
    if (r < 0) return Q->st != VEIL_OK ? Q->st : failf(Q, VEIL_ERR_GRAPH, "node '%s' failed", n->name);
    Q->vmap[n->out[0]] = r;
    if (Q->qv[r].kind == QV_QUANT && n->op != ML_OP_QUANT && n->op != ML_OP_QUANTIZE_LINEAR) {
        int64_t lo, hi;
        quant_range(Q, &Q->qv[r], &lo, &hi);
        report_value(Q, n, "value", lo, hi);
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
        return failf(&Q, VEIL_ERR_UNSUPPORTED, "the model has %d inputs and %d outputs; at most %d of each are supported",
                     fg->ninputs, fg->noutputs, ML_MAX_IO);
    out->nin = fg->ninputs;
    out->nout = fg->noutputs;
    if (nsamples == 0) return failf(&Q, VEIL_ERR_INVALID_ARG, "the inputset is empty");
    int *absorbed = calloc((size_t)fg->nnodes + 1, sizeof(int));
    Q.vmap = malloc(sizeof(int) * (size_t)fg->nvalues + 1);
    if (!absorbed || !Q.vmap || veil_graph_new(&Q.g) != VEIL_OK) {
        free(absorbed);
        free(Q.vmap);
        return failf(&Q, VEIL_ERR_NOMEM, "out of memory");
    }
    for (int i = 0; i < fg->nvalues; i++) Q.vmap[i] = -1;
    /* constants */
    for (int i = 0; i < fg->nvalues && Q.st == VEIL_OK; i++) {
        if (!fg->values[i].is_const) continue;
        int r = qv_new(&Q, QV_CONST);
        if (r < 0) break;
        if (ml_tensor_copy(&Q.qv[r].c, &fg->values[i].value) != VEIL_OK) {
            failf(&Q, VEIL_ERR_NOMEM, "out of memory");
            break;
        }
        qv_set_shape(&Q.qv[r], Q.qv[r].c.ndim, Q.qv[r].c.shape);
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
                    failf(&Q, VEIL_ERR_UNSUPPORTED, "node '%s': more than %d base values", pn->name, ML_POST_MAX_VALUES);
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
                    failf(&Q, VEIL_ERR_UNSUPPORTED, "node '%s': a classifier of more than %d classes is not supported",
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
    out->inputset_q = malloc(sizeof(int64_t) * nsamples * (size_t)total + 1);
    if (!out->inputset_q) failf(&Q, VEIL_ERR_NOMEM, "out of memory");
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
        /* an input that only a tree ensemble reads: quantized per feature, each feature's inputset
         * range mapped to [0, 2^bits − 1] on the client (Concrete ML quantizes tree inputs per
         * feature) */
        for (int k = 0; k < fg->nnodes && ish->size == F; k++) {
            const ml_node *n = &fg->nodes[k];
            if (n->op != ML_OP_TREE_SCORES || n->in[0] != fg->inputs[ii]) continue;
            int64_t total_in = 0, off = 0;
            for (int j = 0; j < fg->ninputs; j++) total_in += fg->input_shapes[j].size, off += j < ii ? fg->input_shapes[j].size : 0;
            double M = ldexp(1, tree_bits(o->n_bits.op_inputs)) - 1;
            ml_trees tr;
            if (ml_trees_parse(n, &tr, err, errlen) != VEIL_OK) break; /* refused again, with its reason, by the walk */
            for (int64_t f = 0; f < F; f++) {
                double lo = INFINITY, hi = -INFINITY, tlo = INFINITY, thi = -INFINITY;
                for (size_t sm = 0; sm < nsamples; sm++) {
                    double v = inputset[sm * (size_t)total_in + (size_t)off + (size_t)f];
                    lo = fmin(lo, v), hi = fmax(hi, v);
                }
                for (int64_t i = 0; i < tr.n; i++)
                    if (tr.mode[i] != ML_TREE_LEAF && tr.feature[i] == f) tlo = fmin(tlo, tr.value[i]), thi = fmax(thi, tr.value[i]);
                /* beyond its lowest and highest thresholds a feature decides nothing more: the
                 * grid spans the thresholds (one step of margin each side) within the inputset's range */
                if (tlo <= thi) {
                    double h = thi > tlo ? (thi - tlo) / (M - 2) : fmax(fabs(tlo), 1) * 1e-3;
                    lo = fmax(lo, tlo - h), hi = fmin(hi, thi + h);
                    if (!(hi > lo)) lo = tlo - h, hi = thi + h;
                }
                in->pre_off[f] = isfinite(lo) ? lo : 0;
                in->pre_scale[f] = isfinite(lo) && isfinite(hi) && hi > lo ? M / (hi - lo) : 1;
            }
            ml_trees_free(&tr);
            in->npre = (int)F;
            tree_in[ii] = (int)M;
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
                const ml_tensor *s = const_of(&Q, n->in[1]), *z = const_of(&Q, n->in[2]), *b = const_of(&Q, n->in[3]);
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
                failf(&Q, VEIL_ERR_INVALID_ARG, "the inputset holds non-finite values (input '%s')", fg->values[inv].name);
                break;
            }
            in->q = calibrated(lo, hi, o->n_bits.model_inputs);
        }
        int node = veil_graph_input(Q.g, fg->values[inv].name, VEIL_ENCRYPTED, ish->ndim, ish->shape);
        int qi = node < 0 ? -1 : quant_value(&Q, node, in->q.scale, in->q.zp);
        if (qi < 0) {
            if (Q.st == VEIL_OK) failf(&Q, VEIL_ERR_GRAPH, "input '%s': %s", fg->values[inv].name, veil_graph_last_error(Q.g));
            break;
        }
        for (size_t sm = 0; sm < nsamples && Q.st == VEIL_OK; sm++) {
            ml_tensor *c = &Q.qv[qi].cal[sm];
            if (ml_tensor_alloc(c, ish->ndim, ish->shape) != VEIL_OK) {
                failf(&Q, VEIL_ERR_NOMEM, "out of memory");
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
        quant_range(&Q, &Q.qv[qi], &lo, &hi);
        veil_sb_printf(&Q.rep, "%-28s %-18s %-10s [%lld, %lld]", fg->values[inv].name, "input", "value", (long long)lo,
                       (long long)hi);
        veil_sb_pad(&Q.rep, 88);
        veil_sb_printf(&Q.rep, "%s%u\n", lo < 0 ? "int" : "uint", bits_of(lo, hi));
        if (bits_of(lo, hi) > Q.max_bits) Q.max_bits = bits_of(lo, hi);
    }
    for (int k = 0; k < fg->nnodes && Q.st == VEIL_OK; k++) {
        if (absorbed[k]) continue;
        const ml_node *n = &fg->nodes[k];
        int reachable = 1;
        for (int i = 0; i < n->nin; i++)
            if (n->in[i] >= 0 && Q.vmap[n->in[i]] < 0) reachable = 0;
        if (!reachable) {
            failf(&Q, VEIL_ERR_UNSUPPORTED, "node '%s' (%s) reads a value veil does not compute", n->name,
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
            failf(&Q, VEIL_ERR_UNSUPPORTED, "the model's output '%s' does not depend on its inputs", oi->name);
            break;
        }
        if (Q.qv[r].kind == QV_FN) {
            int ob = o->n_bits.model_outputs;
            r = last ? materialize(&Q, r, NULL, ob, last) : -1;
        } else if (o->rounding_bits > 0 && last) {
            /* a wide output accumulator: decrypting all its bits needs noise below its last
             * bit; the other choice keeps its rounded high bits through one lookup per
             * element (the caller compiles both and keeps the cheaper) */
            int64_t lo, hi;
            quant_range(&Q, &Q.qv[r], &lo, &hi);
            if (bits_of(lo, hi) > (unsigned)o->rounding_bits) {
                out->output_choice = 1;
                if (output_lookup) {
                    ml_quantizer id = {Q.qv[r].scale, Q.qv[r].zp, -INFINITY, INFINITY};
                    r = materialize(&Q, r, &id, 0, last);
                }
            }
        }
        if (r < 0) {
            if (Q.st == VEIL_OK) failf(&Q, VEIL_ERR_GRAPH, "output '%s' failed", oi->name);
            break;
        }
        const qval *v = &Q.qv[r];
        oi->scale = v->scale;
        oi->zp = v->zp;
        oi->qndim = v->ndim;
        memcpy(oi->qshape, v->shape, sizeof oi->qshape);
        oi->qsize = 1;
        for (int d = 0; d < v->ndim; d++) oi->qsize *= v->shape[d];
        if (veil_graph_output(Q.g, v->node) != VEIL_OK) failf(&Q, VEIL_ERR_GRAPH, "%s", veil_graph_last_error(Q.g));
        /* the final output shape after post-processing */
        ml_tensor y = {0}, z = {0};
        if (Q.st == VEIL_OK && ml_tensor_copy(&y, &v->cal[0]) == VEIL_OK &&
            ml_post_apply(oi->post, oi->npost, &y, &z) == VEIL_OK) {
            oi->ndim = z.ndim;
            oi->size = z.size;
            memcpy(oi->shape, z.shape, sizeof oi->shape);
        } else if (Q.st == VEIL_OK) {
            failf(&Q, VEIL_ERR_UNSUPPORTED, "output '%s': its post-processing fails", oi->name);
        }
        ml_tensor_free(&y);
        ml_tensor_free(&z);
    }
    if (Q.st == VEIL_OK && veil_graph_status(Q.g) != VEIL_OK)
        failf(&Q, VEIL_ERR_GRAPH, "integer graph: %s", veil_graph_last_error(Q.g));
    veil_sb_printf(&Q.rep, "max bit-width: %u\n", Q.max_bits);
    out->report = veil_sb_take(&Q.rep);
    out->rounding_log = veil_sb_take(&Q.rlog);
    out->max_bits = Q.max_bits;
    out->g = Q.g;
    for (int i = 0; i < Q.nqv; i++) qv_free(&Q, &Q.qv[i]);
    free(Q.qv);
    free(Q.vmap);
    free(absorbed);
    veil_sb_free(&Q.rep);
    veil_sb_free(&Q.rlog);
    if (Q.st != VEIL_OK) ml_quantized_free(out);
    return Q.st;
}

void ml_quantized_free(ml_quantized *q)
{
    if (!q) return;
    veil_graph_free(q->g);
    free(q->inputset_q);
    veil_free(q->report);
    veil_free(q->rounding_log);
    for (size_t i = 0; i < q->nctx; i++) {
        table_ctx *t = q->ctxs[i];
        free(t->table);
        free(t);
    }
    free(q->ctxs);
    memset(q, 0, sizeof *q);
}

veil_status ml_post_apply(const ml_post_op *p, int npost, const ml_tensor *y, ml_tensor *out)
{
    veil_status st = ml_tensor_copy(out, y);
    for (int i = 0; i < npost && st == VEIL_OK; i++) {
        ml_tensor r[1];
        switch (p[i].op) {
        case ML_OP_SCORES_TRANSFORM: st = ml_scores_transform((int)p[i].mode, p[i].v, (size_t)p[i].nv, out, &r[0]); break;
        case ML_OP_SCORES_LABEL: st = ml_scores_label(p[i].v, (size_t)p[i].nv, out, &r[0]); break;
        case ML_OP_NORMALIZER: st = ml_normalize((int)p[i].mode, out, &r[0]); break;
        case ML_OP_ZIPMAP: st = ml_tensor_copy(&r[0], out); break;
        default: {
            ml_attr attrs[4] = {{.name = "axis", .type = ML_ATTR_INT, .i = p[i].axis},
                                {.name = "keepdims", .type = ML_ATTR_INT, .i = p[i].keepdims},
                                {.name = "select_last_index", .type = ML_ATTR_INT, .i = p[i].select_last},
                                {.name = "to", .type = ML_ATTR_INT, .i = p[i].mode}};
            int in = 0, o = 0;
            ml_node n = {.op = p[i].op, .name = "post", .nin = 1, .nout = 1, .in = &in, .out = &o, .nattrs = 4, .attrs = attrs};
            const ml_tensor *ins[1] = {out};
            char err[160];
            st = ml_run_node(&n, ins, r, err, sizeof err);
        }
        }
        if (st == VEIL_OK) {
            ml_tensor_free(out);
            *out = r[0];
        }
    }
    if (st != VEIL_OK) ml_tensor_free(out);
    return st;
}
