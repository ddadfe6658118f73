/* Clear evaluation of the op-graph on int64 tensors (wrapping arithmetic, no undefined behavior). */
#include <string.h>

#include "ir.h"

unsigned veil_ir_bits(int64_t lo, int64_t hi, int *is_signed)
{
    unsigned n = 1;
    if (lo >= 0) {
        *is_signed = 0;
        while (n < 64 && (uint64_t)hi >> n) n++;
        return n;
    }
    *is_signed = 1;
    /* smallest n with -2^(n-1) <= lo and hi < 2^(n-1) */
    while (n < 64 && (lo < -((int64_t)1 << (n - 1)) || hi >= ((int64_t)1 << (n - 1)))) n++;
    return n;
}


int64_t veil_ir_binary(veil_op op, int64_t a, int64_t b)
{
    switch (op) {
    case VEIL_OP_ADD: return veil_wadd(a, b);
    case VEIL_OP_SUB: return veil_wsub(a, b);
    case VEIL_OP_MUL: return veil_wmul(a, b);
    case VEIL_OP_LT: return a < b;
    case VEIL_OP_LE: return a <= b;
    case VEIL_OP_GT: return a > b;
    case VEIL_OP_GE: return a >= b;
    case VEIL_OP_EQ: return a == b;
    case VEIL_OP_NE: return a != b;
    case VEIL_OP_MIN: return a < b ? a : b;
    case VEIL_OP_MAX: return a > b ? a : b;
    default: return 0;
    }
}

/* ⌊x / 2^l⌋ for any sign */
static int64_t floor_shift(int64_t x, unsigned l) { return x >> l; }

int64_t veil_ir_unary(const veil_node_rec *n, int64_t x, int *ok)
{
    switch (n->op) {
    case VEIL_OP_TABLE: {
        int64_t len = (int64_t)n->ndata, i = x < 0 ? x + len : x;
        if (i < 0 || i >= len) {
            *ok = 0;
            return 0;
        }
        return n->data[i];
    }
    case VEIL_OP_APPLY: return n->fn(x, n->ctx);
    case VEIL_OP_RELU: return x > 0 ? x : 0;
    case VEIL_OP_ABS: return x < 0 ? veil_wsub(0, x) : x;
    case VEIL_OP_NEG: return veil_wsub(0, x);
    case VEIL_OP_CLIP: return x < n->attr[VEIL_A_LO] ? n->attr[VEIL_A_LO] : x > n->attr[VEIL_A_HI] ? n->attr[VEIL_A_HI] : x;
    case VEIL_OP_ROUND: {
        unsigned l = (unsigned)n->attr[VEIL_A_LSBS];
        return veil_wmul(floor_shift(veil_wadd(x, (int64_t)1 << (l - 1)), l), (int64_t)1 << l);
    }
    case VEIL_OP_TRUNC: {
        unsigned l = (unsigned)n->attr[VEIL_A_LSBS];
        return veil_wmul(floor_shift(x, l), (int64_t)1 << l);
    }
    default: *ok = 0; return 0;
    }
}

static void strides_of(const veil_node_rec *n, int64_t *st)
{
    int64_t s = 1;
    for (int i = n->ndim - 1; i >= 0; i--) {
        st[i] = s;
        s *= n->shape[i];
    }
}

/* Row-major walk over `shape` (nd axes, count elements): idx[e] = base + Σ_d ctr[d]·st[d]. */
static void walk(int nd, const int64_t *shape, const int64_t *st, int64_t base, int64_t count, int64_t *idx)
{
    int64_t ctr[VEIL_MAX_DIMS] = {0}, cur = base;
    for (int64_t e = 0; e < count; e++) {
        idx[e] = cur;
        for (int d = nd - 1; d >= 0; d--) { /* odometer */
            ctr[d]++;
            cur += st[d];
            if (ctr[d] < shape[d]) break;
            cur -= st[d] * ctr[d];
            ctr[d] = 0;
        }
    }
}

void veil_ir_broadcast_index(const veil_node_rec *out, const veil_node_rec *op, int64_t *idx)
{
    int64_t st[VEIL_MAX_DIMS], ost[VEIL_MAX_DIMS] = {0};
    strides_of(op, st);
    int off = out->ndim - op->ndim;
    for (int i = 0; i < op->ndim; i++) ost[i + off] = op->shape[i] == 1 ? 0 : st[i];
    walk(out->ndim, out->shape, ost, 0, out->size, idx);
}

void veil_ir_gather_index(const veil_graph *g, const veil_node_rec *n, int64_t *idx)
{
    const veil_node_rec *s = &g->nodes[n->in[0]];
    int64_t st[VEIL_MAX_DIMS];
    strides_of(s, st);
    switch (n->op) {
    case VEIL_OP_RESHAPE:
    case VEIL_OP_FLATTEN:
        for (int64_t e = 0; e < n->size; e++) idx[e] = e;
        return;
    case VEIL_OP_TRANSPOSE: {
        /* the output walked with the source's strides permuted */
        int64_t pst[VEIL_MAX_DIMS];
        for (int i = 0; i < n->ndim; i++) pst[i] = st[n->axes[i]];
        walk(n->ndim, n->shape, pst, 0, n->size, idx);
        return;
    }
    case VEIL_OP_SLICE: {
        /* iterate over the kept axes; index axes contribute a fixed offset */
        int64_t base = 0, kst[VEIL_MAX_DIMS], klen[VEIL_MAX_DIMS];
        int nk = 0;
        for (int d = 0; d < s->ndim; d++) {
            const veil_slice *e = &n->slices[d];
            base += e->start * st[d];
            if (!e->index) {
                kst[nk] = e->step * st[d];
                klen[nk] = n->shape[nk];
                nk++;
            }
        }
        walk(nk, klen, kst, base, n->size, idx);
        return;
    }
    case VEIL_OP_CONCAT: {
        int axis = (int)n->attr[VEIL_A_AXIS];
        int64_t outer = 1, inner = 1;
        for (int d = 0; d < axis; d++) outer *= n->shape[d];
        for (int d = axis + 1; d < n->ndim; d++) inner *= n->shape[d];
        int64_t e = 0;
        for (int64_t o = 0; o < outer; o++)
            for (int k = 0; k < n->nin; k++) {
                int64_t chunk = g->nodes[n->in[k]].shape[axis] * inner;
                for (int64_t j = 0; j < chunk; j++) idx[e++] = ((int64_t)k << 40) | (o * chunk + j);
            }
        return;
    }
    default: return;
    }
}

/* Sum: output element for each input element (the reduced axes dropped). */
void veil_ir_sum_index(const veil_node_rec *s, const veil_node_rec *n, int64_t *idx)
{
    int reduce[VEIL_MAX_DIMS] = {0};
    for (int i = 0; i < n->naxes; i++) reduce[n->axes[i]] = 1;
    int64_t ost[VEIL_MAX_DIMS], acc = 1;
    for (int d = s->ndim - 1; d >= 0; d--) {
        ost[d] = reduce[d] ? 0 : acc;
        if (!reduce[d]) acc *= s->shape[d];
    }
    walk(s->ndim, s->shape, ost, 0, s->size, idx);
}

void veil_ir_windows(const veil_graph *g, const veil_node_rec *n, const veil_ir_window_cb *cb)
{
    const veil_node_rec *X = &g->nodes[n->in[0]];
    const int64_t *A = n->attr;
    const int conv = n->op == VEIL_OP_CONV2D;
    const veil_node_rec *W = conv ? &g->nodes[n->in[1]] : NULL;
    int64_t C = X->shape[1], H = X->shape[2], Wd = X->shape[3], OH = n->shape[2], OW = n->shape[3];
    int64_t F = n->shape[1], CG = conv ? W->shape[1] : 1, FG = conv ? F / A[VEIL_A_GROUPS] : 1;
    int64_t KH = conv ? W->shape[2] : A[VEIL_A_KERNEL], KW = conv ? W->shape[3] : A[VEIL_A_KERNEL + 1];
    int64_t o = 0;
    for (int64_t bn = 0; bn < n->shape[0]; bn++)
        for (int64_t f = 0; f < F; f++)
            for (int64_t oy = 0; oy < OH; oy++)
                for (int64_t ox = 0; ox < OW; ox++, o++) {
                    /* a convolution reads CG channels of its group; a pool reads channel f */
                    int64_t c0 = conv ? f / FG * CG : f, taps = 0;
                    for (int64_t c = 0; c < CG; c++)
                        for (int64_t ky = 0; ky < KH; ky++) {
                            int64_t iy = oy * A[VEIL_A_STRIDE] - A[VEIL_A_PAD] + ky * A[VEIL_A_DIL];
                            if (iy < 0 || iy >= H) continue;
                            for (int64_t kx = 0; kx < KW; kx++) {
                                int64_t ix = ox * A[VEIL_A_STRIDE + 1] - A[VEIL_A_PAD + 1] + kx * A[VEIL_A_DIL + 1];
                                if (ix < 0 || ix >= Wd) continue;
                                int64_t in = ((bn * C + c0 + c) * H + iy) * Wd + ix;
                                int64_t w = conv ? ((f * CG + c) * KH + ky) * KW + kx : ky * KW + kx;
                                cb->tap(cb->ctx, o, in, w);
                                taps++;
                            }
                        }
                    cb->end(cb->ctx, o, taps);
                }
}

typedef struct {
    const veil_node_rec *n;
    const int64_t *x, *w, *bias;
    int64_t *out, acc, any;
} window_eval;

static void window_tap(void *ctx, int64_t o, int64_t in, int64_t w)
{
    (void)o;
    window_eval *e = ctx;
    int64_t v = e->x[in];
    if (e->n->op == VEIL_OP_CONV2D) e->acc = veil_wadd(e->acc, veil_wmul(v, e->w[w]));
    else if (e->n->op == VEIL_OP_AVGPOOL) e->acc = veil_wadd(e->acc, v);
    else if (!e->any || v > e->acc) e->acc = v;
    e->any = 1;
}

static void window_end(void *ctx, int64_t o, int64_t taps)
{
    (void)taps;
    window_eval *e = ctx;
    const veil_node_rec *n = e->n;
    int64_t acc = e->acc;
    if (n->op == VEIL_OP_CONV2D && e->bias) acc = veil_wadd(acc, e->bias[o / (n->shape[2] * n->shape[3]) % n->shape[1]]);
    if (n->op == VEIL_OP_AVGPOOL) { /* floor division by the whole kernel (count_include_pad) */
        int64_t cnt = n->attr[VEIL_A_KERNEL] * n->attr[VEIL_A_KERNEL + 1], q = acc / cnt;
        if (acc % cnt != 0 && acc < 0) q--;
        acc = q;
    }
    e->out[o] = acc;
    e->acc = 0;
    e->any = 0;
}

static veil_status eval_node(const veil_graph *g, int id, int64_t **vals)
{
    const veil_node_rec *n = &g->nodes[id];
    int64_t *out = vals[id];
    const int64_t *a = n->nin > 0 ? vals[n->in[0]] : NULL, *b = n->nin > 1 ? vals[n->in[1]] : NULL;
    veil_status st = VEIL_OK;
    int64_t *ia = NULL, *ib = NULL;
    switch (n->op) {
    case VEIL_OP_INPUT: return VEIL_OK; /* filled by the caller */
    case VEIL_OP_CONST: return VEIL_OK; /* vals[id] is the node's own data (eval_some) */
    case VEIL_OP_ADD: case VEIL_OP_SUB: case VEIL_OP_MUL: case VEIL_OP_LT: case VEIL_OP_LE: case VEIL_OP_GT:
    case VEIL_OP_GE: case VEIL_OP_EQ: case VEIL_OP_NE: case VEIL_OP_MIN: case VEIL_OP_MAX:
        ia = veil_malloc(sizeof(int64_t) * (size_t)n->size);
        ib = veil_malloc(sizeof(int64_t) * (size_t)n->size);
        if (!ia || !ib) {
            st = VEIL_ERR_NOMEM;
            break;
        }
        veil_ir_broadcast_index(n, &g->nodes[n->in[0]], ia);
        veil_ir_broadcast_index(n, &g->nodes[n->in[1]], ib);
        for (int64_t e = 0; e < n->size; e++) out[e] = veil_ir_binary(n->op, a[ia[e]], b[ib[e]]);
        break;
    case VEIL_OP_NEG: case VEIL_OP_TABLE: case VEIL_OP_APPLY: case VEIL_OP_RELU: case VEIL_OP_ABS: case VEIL_OP_CLIP:
    case VEIL_OP_ROUND: case VEIL_OP_TRUNC:
        for (int64_t e = 0; e < n->size; e++) {
            int ok = 1;
            out[e] = veil_ir_unary(n, a[e], &ok);
            if (!ok) return VEIL_ERR_EVAL;
        }
        break;
    case VEIL_OP_MATMUL: case VEIL_OP_DOT: {
        const veil_node_rec *x = &g->nodes[n->in[0]], *y = &g->nodes[n->in[1]];
        int64_t M = x->ndim == 2 ? x->shape[0] : 1, K = y->shape[0], P = y->ndim == 2 ? y->shape[1] : 1;
        /* row by row of b, skipping a's zeros (a tree ensemble's comparisons and leaves are mostly
         * 0): the same wrapping sums in another order */
        for (int64_t i = 0; i < M; i++) {
            int64_t *o = out + i * P;
            for (int64_t j = 0; j < P; j++) o[j] = 0;
            for (int64_t k = 0; k < K; k++) {
                const int64_t v = a[i * K + k], *row = b + k * P;
                if (v == 0) continue;
                for (int64_t j = 0; j < P; j++) o[j] = veil_wadd(o[j], veil_wmul(v, row[j]));
            }
        }
        break;
    }
    case VEIL_OP_SUM: {
        const veil_node_rec *s = &g->nodes[n->in[0]];
        if (!(ia = veil_malloc(sizeof(int64_t) * (size_t)s->size))) return VEIL_ERR_NOMEM;
        veil_ir_sum_index(s, n, ia);
        memset(out, 0, sizeof(int64_t) * (size_t)n->size);
        for (int64_t e = 0; e < s->size; e++) out[ia[e]] = veil_wadd(out[ia[e]], a[e]);
        break;
    }
    case VEIL_OP_RESHAPE: case VEIL_OP_FLATTEN: case VEIL_OP_TRANSPOSE: case VEIL_OP_SLICE: case VEIL_OP_CONCAT:
        if (!(ia = veil_malloc(sizeof(int64_t) * (size_t)n->size))) return VEIL_ERR_NOMEM;
        veil_ir_gather_index(g, n, ia);
        for (int64_t e = 0; e < n->size; e++) {
            if (n->op == VEIL_OP_CONCAT) out[e] = vals[n->in[ia[e] >> 40]][ia[e] & (((int64_t)1 << 40) - 1)];
            else out[e] = a[ia[e]];
        }
        break;
    case VEIL_OP_CONV2D: case VEIL_OP_AVGPOOL: case VEIL_OP_MAXPOOL: {
        window_eval w = {n, a, b, n->nin > 2 ? vals[n->in[2]] : NULL, out, 0, 0};
        veil_ir_window_cb cb = {window_tap, window_end, &w};
        veil_ir_windows(g, n, &cb);
        break;
    }
    default: st = VEIL_ERR_UNSUPPORTED; break;
    }
    veil_free(ia);
    veil_free(ib);
    return st;
}

void veil_ir_vals_free(const veil_graph *g, int64_t **vals)
{
    if (!vals) return;
    for (size_t i = 0; i < g->count; i++)
        if (vals[i] != g->nodes[i].data) veil_free(vals[i]); /* a constant's values are borrowed */
    veil_free(vals);
}

static veil_status eval_some(const veil_graph *g, const int64_t *const *inputs, int clear_only, int64_t ***out,
                             int *bad_node)
{
    *out = NULL;
    *bad_node = -1;
    int64_t **vals = veil_calloc(g->count ? g->count : 1, sizeof *vals);
    if (!vals) return VEIL_ERR_NOMEM;
    veil_status st = VEIL_OK;
    /* a constant is not copied for each evaluation (a tree ensemble's matrices reach 10^7 entries):
     * its values are the node's own, read only */
    for (size_t i = 0; i < g->count && st == VEIL_OK; i++) {
        const veil_node_rec *n = &g->nodes[i];
        if (n->op == VEIL_OP_CONST && n->data) vals[i] = n->data;
        else if (!(vals[i] = veil_calloc((size_t)n->size, sizeof(int64_t)))) st = VEIL_ERR_NOMEM;
    }
    for (size_t i = 0; i < g->ninputs && st == VEIL_OK; i++) {
        const veil_node_rec *n = &g->nodes[g->inputs[i]];
        if (clear_only && n->enc) continue;
        if (!inputs[i]) st = VEIL_ERR_INVALID_ARG;
        else memcpy(vals[g->inputs[i]], inputs[i], sizeof(int64_t) * (size_t)n->size);
    }
    for (size_t i = 0; i < g->count && st == VEIL_OK; i++) {
        if (clear_only && g->nodes[i].enc) continue;
        st = eval_node(g, (int)i, vals);
        if (st != VEIL_OK) *bad_node = (int)i;
    }
    if (st != VEIL_OK) {
        veil_ir_vals_free(g, vals);
        return st;
    }
    *out = vals;
    return VEIL_OK;
}

veil_status veil_ir_eval_all(const veil_graph *g, const int64_t *const *inputs, int64_t ***out, int *bad_node)
{
    return eval_some(g, inputs, 0, out, bad_node);
}

veil_status veil_ir_eval_clear(const veil_graph *g, const int64_t *const *inputs, int64_t ***out, int *bad_node)
{
    return eval_some(g, inputs, 1, out, bad_node);
}

veil_status veil_graph_eval(const veil_graph *g, const int64_t *const *inputs, int64_t *const *outputs)
{
    if (!g || (!inputs && g->ninputs) || (!outputs && g->noutputs)) return VEIL_ERR_INVALID_ARG;
    if (g->status != VEIL_OK) return g->status;
    int64_t **vals;
    int bad;
    veil_status st = veil_ir_eval_all(g, inputs, &vals, &bad);
    if (st != VEIL_OK) return st;
    for (size_t j = 0; j < g->noutputs; j++)
        memcpy(outputs[j], vals[g->outputs[j]], sizeof(int64_t) * (size_t)g->nodes[g->outputs[j]].size);
    veil_ir_vals_free(g, vals);
    return VEIL_OK;
}
