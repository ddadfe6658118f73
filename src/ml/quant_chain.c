/* Element-wise float chains (FN values) fused into table lookups: the chain's evaluation, the
 * lookup grids (rounding, and automatic rounding per channel) and their tables. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "quant_impl.h"

/* ---- FN chains ---------------------------------------------------------------------------------- */

const ml_tensor *mq_const_of(qctx *Q, int value)
{
    if (value < 0) return NULL;
    const qval *v = &Q->qv[Q->vmap[value]];
    return v->kind == QV_CONST ? &v->c : NULL;
}

/* Run one node with its dynamic operand replaced by x. */

/* One step on the chain's current value x; base is the chain's input (for a step whose other
 * operand is another chain on the same base). */
veil_status mq_run_step(qctx *Q, const fn_step *s, const ml_tensor *x, const ml_tensor *base, ml_tensor *y)
{
    const ml_node *n = &Q->fg->nodes[s->node];
    const ml_tensor *ins[16];
    ml_tensor outs[8], other = {0};
    if (n->nin > 16 || n->nout > 8) return mq_failf(Q, VEIL_ERR_UNSUPPORTED, "node '%s': too many operands", n->name);
    veil_status st = VEIL_OK;
    if (s->other >= 0) {
        const qval *o = &Q->qv[s->other];
        ml_tensor ob;
        if ((st = ml_tensor_copy(&ob, base)) != VEIL_OK) return mq_failf(Q, st, "out of memory");
        for (int64_t e = 0; e < ob.size; e++) ob.data[e] = s->oa * ob.data[e] + s->ob;
        st = mq_chain_eval(Q, o->kind == QV_FN ? o->steps : NULL, o->kind == QV_FN ? o->nsteps : 0, &ob, &other);
        ml_tensor_free(&ob);
        if (st != VEIL_OK) return st;
    }
    for (int i = 0; i < n->nin; i++) ins[i] = i == s->pos ? x : s->other >= 0 ? &other : mq_const_of(Q, n->in[i]);
    st = ml_run_node(n, ins, outs, Q->err, Q->errlen);
    ml_tensor_free(&other);
    if (st != VEIL_OK) return mq_failf(Q, st, "%s", Q->err);
    *y = outs[0];
    for (int j = 1; j < n->nout; j++) ml_tensor_free(&outs[j]);
    return VEIL_OK;
}

veil_status mq_chain_eval(qctx *Q, const fn_step *steps, int nsteps, const ml_tensor *x, ml_tensor *y)
{
    ml_tensor cur;
    veil_status st = ml_tensor_copy(&cur, x);
    if (st != VEIL_OK) return mq_failf(Q, st, "out of memory");
    for (int k = 0; k < nsteps; k++) {
        ml_tensor nx;
        if ((st = mq_run_step(Q, &steps[k], &cur, x, &nx)) != VEIL_OK) {
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
int mq_chain_uniform(qctx *Q, const qval *v)
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
            if (!mq_chain_uniform(Q, &Q->qv[v->steps[k].other])) return 0;
            continue;
        }
        for (int i = 0; i < n->nin; i++) {
            const ml_tensor *c = i == v->steps[k].pos ? NULL : mq_const_of(Q, n->in[i]);
            if (c && c->size != 1 && !(n->op == ML_OP_QUANT && i > 0) && n->op != ML_OP_RESHAPE) return 0;
        }
    }
    return 1;
}

int64_t mq_table_fn(int64_t x, void *ctx)
{
    const table_ctx *t = ctx;
    int64_t d = x - t->lo, k = d >= 0 ? (d + t->step / 2) / t->step : -((-d + t->step / 2) / t->step);
    if (k < 0) k = 0;
    if (k >= t->K) k = t->K - 1;
    return t->table[k];
}

table_ctx *mq_new_table(qctx *Q, int64_t lo, int64_t step, int64_t K, const int64_t *src)
{
    void **nc = veil_realloc(Q->out->ctxs, sizeof(void *) * Q->out->nctx, sizeof(void *) * (Q->out->nctx + 1));
    table_ctx *t = veil_calloc(1, sizeof *t);
    int64_t *tab = veil_malloc(sizeof(int64_t) * (size_t)K);
    if (nc) Q->out->ctxs = nc;
    if (!nc || !t || !tab) {
        veil_free(t);
        veil_free(tab);
        mq_failf(Q, VEIL_ERR_NOMEM, "out of memory");
        return NULL;
    }
    memcpy(tab, src, sizeof(int64_t) * (size_t)K);
    t->lo = lo, t->step = step, t->K = K, t->table = tab;
    Q->out->ctxs[Q->out->nctx++] = t;
    return t;
}

/* node with its l low bits rounded away (rounding_threshold_bits), or node itself when l = 0 */
int mq_rounded(qctx *Q, int node, unsigned l)
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
 * side so that a sample past the inputset's range still lands in the table, and centred on 0 by
 * `off` (centered_grid). */
typedef struct {
    int64_t off, lo, step, K; /* the lookup reads x - off, lo in that shifted range */
    unsigned l;
} grid;

static int shifted(qctx *Q, int node, int64_t off)
{
    return off ? veil_graph_sub(Q->g, node, veil_graph_scalar(Q->g, off)) : node;
}

static int64_t round_to(int64_t x, int64_t step) { return (int64_t)floor((double)x / (double)step + 0.5) * step; }

static void widened(int64_t lo, int64_t hi, int widen, int64_t *wlo, int64_t *whi)
{
    *wlo = widen ? lo - (hi - lo) / 32 : lo;
    *whi = widen ? hi + (hi - lo) / 32 : hi;
}

/* The grid's lo and K with l (and so step) kept and the range shifted by off: the lookup then
 * reads round(x - off), and x's nearest multiple of step is moved to off + a multiple. */
static void shift_grid(int64_t off, int64_t lo, int64_t hi, int widen, grid *gr)
{
    int64_t wlo, whi;
    widened(lo, hi, widen, &wlo, &whi);
    gr->off = off;
    gr->lo = round_to(wlo - off, gr->step);
    gr->K = (round_to(whi - off, gr->step) - gr->lo) / gr->step + 1;
}

static void make_grid(unsigned R, int64_t lo, int64_t hi, int widen, grid *gr)
{
    int64_t wlo, whi;
    widened(lo, hi, widen, &wlo, &whi);
    unsigned bb = mq_bits_of(wlo, whi);
    gr->l = R > 0 && bb > R ? bb - R : 0;
    gr->step = (int64_t)1 << gr->l;
    shift_grid(0, lo, hi, widen, gr);
}

/* Automatic rounding's grid for one channel: the lookup reads round(x - off), off a multiple of
 * the step near the middle of the widened range, so that an asymmetric range (a ReLU's
 * accumulator, mostly on one side of 0) spends its R signed bits on its width, not on a sign
 * bit's half it hardly reaches: up to one more bit of resolution; 0 stays on the grid. The step is
 * the smallest 2^l whose R bits hold the centred range with half a step to spare each side. */
static void centered_grid(unsigned R, int64_t lo, int64_t hi, grid *gr)
{
    int64_t wlo, whi;
    widened(lo, hi, 1, &wlo, &whi);
    const int64_t mid = wlo / 2 + whi / 2;
    unsigned l = 0;
    for (;; l++) {
        const int64_t step = (int64_t)1 << l, off = l ? round_to(mid, step) : 0;
        if (l == 0 ? mq_bits_of(wlo, whi) <= R : mq_bits_of(wlo - off - step / 2, whi - off + step / 2) <= R + l) break;
        if (l == 61) break;
    }
    gr->l = l;
    gr->step = (int64_t)1 << l;
    shift_grid(l ? round_to(mid, gr->step) : 0, lo, hi, 1, gr);
}

/* sum over the samples of channel c's elements of (rounded - exact)^2, the lookup reading
 * round(q - off) */
static double offset_error(qctx *Q, const qval *B, int64_t inner, int64_t nch, int64_t c, int64_t step, int64_t off)
{
    double err = 0;
    for (size_t s = 0; s < Q->ns; s++)
        for (int64_t e = c * inner; e < B->size; e += inner * nch)
            for (int64_t i = 0; i < inner; i++) {
                int64_t q = (int64_t)nearbyint(B->cal[s].data[e + i] / B->scale + B->zp);
                double d = (double)(round_to(q - off, step) + off - q);
                err += d * d;
            }
    return err;
}

/* A rounded identity lookup (a wide linear output keeping its high bits): each channel's grid is
 * shifted so that its inputset values land nearest to the grid, sampled candidates being the
 * offsets that make one calibration value exact (a value the inputset takes often, such as a
 * bias alone behind dead ReLUs, then decrypts exactly rather than rounded to the grid: two
 * logits of one bias rounded to the same multiple would tie). A shift that would widen the
 * table is not taken. */
static void fit_offsets(qctx *Q, const qval *B, grid *gr, const int64_t *clo, const int64_t *chi, int64_t wlo,
                        int64_t whi, int widen)
{
    int axis = B->ndim >= 2 ? 1 : 0;
    int64_t inner = 1, nch = B->ndim ? B->shape[axis] : 1;
    for (int d = axis + 1; d < B->ndim; d++) inner *= B->shape[d];
    if (B->size == 0 || Q->ns == 0) return;
    for (int64_t c = 0; c < nch; c++) {
        const grid g0 = gr[c * inner];
        if (g0.l == 0) continue;
        int64_t lo = clo ? clo[c] : wlo, hi = chi ? chi[c] : whi; /* the channel's range, or the tensor's */
        int64_t best = 0;
        double best_err = offset_error(Q, B, inner, nch, c, g0.step, 0);
        /* about 64 candidates, spread over the samples and the channel's elements */
        int64_t per = (B->size / nch), total = (int64_t)Q->ns * per, stride = total / 64 > 0 ? total / 64 : 1;
        for (int64_t t = 0; t < total && best_err > 0; t += stride) {
            size_t s = (size_t)(t / per);
            int64_t k = t % per, e = (k / inner) * inner * nch + c * inner + k % inner;
            int64_t q = (int64_t)nearbyint(B->cal[s].data[e] / B->scale + B->zp);
            int64_t off = q - round_to(q, g0.step); /* in [-step/2, step/2] */
            grid g = g0;
            shift_grid(off + round_to(g0.off - off, g0.step), lo, hi, widen, &g); /* kept near a centred grid's */
            if (off == best || g.K > g0.K) continue;
            double err = offset_error(Q, B, inner, nch, c, g0.step, off);
            if (err < best_err) best_err = err, best = off;
        }
        if (best == 0) continue;
        best += round_to(g0.off - best, g0.step); /* the same rounding, near the grid's own offset */
        for (int64_t e = c * inner; e < B->size; e += inner * nch)
            for (int64_t i = 0; i < inner; i++) shift_grid(best, lo, hi, widen, &gr[e + i]);
    }
}

static veil_status element_grids(qctx *Q, const qval *B, grid *gr, int identity)
{
    int64_t lo, hi, size = B->size;
    mq_quant_range(Q, B, &lo, &hi);
    unsigned R = Q->o->rounding_bits > 0 ? (unsigned)Q->o->rounding_bits : 0;
    if (!(R > 0 && Q->o->auto_rounding && !Q->whole_range && mq_bits_of(lo, hi) > R)) {
        grid g1;
        make_grid(R, lo, hi, 0, &g1);
        for (int64_t e = 0; e < size; e++) gr[e] = g1;
        if (identity) fit_offsets(Q, B, gr, NULL, NULL, lo, hi, 0);
        return VEIL_OK;
    }
    int axis = B->ndim >= 2 ? 1 : 0;
    int64_t inner = 1, nch = B->ndim ? B->shape[axis] : 1;
    for (int d = axis + 1; d < B->ndim; d++) inner *= B->shape[d];
    int64_t *clo = veil_malloc(sizeof(int64_t) * (size_t)nch + 1), *chi = veil_malloc(sizeof(int64_t) * (size_t)nch + 1);
    if (!clo || !chi) {
        veil_free(clo);
        veil_free(chi);
        return mq_failf(Q, VEIL_ERR_NOMEM, "out of memory");
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
        centered_grid(R, clo[c], chi[c], &gr[e]);
    }
    if (identity) fit_offsets(Q, B, gr, clo, chi, 0, 0, 1);
    veil_free(clo);
    veil_free(chi);
    return VEIL_OK;
}

/* Turns value qi (FN, or QUANT to requantize) into a QUANT value through one table lookup per
 * element. The output quantizer is `forced`, or calibrated with `bits` on the chain's outputs. */
int mq_materialize(qctx *Q, int qi, const ml_quantizer *forced, int bits, const ml_node *at)
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
    mq_quant_range(Q, B, &lo, &hi);
    unsigned bb = mq_bits_of(lo, hi);
    grid *gr = veil_malloc(sizeof(grid) * (size_t)size + 1);
    if (!gr) {
        mq_failf(Q, VEIL_ERR_NOMEM, "out of memory");
        return -1;
    }
    if (element_grids(Q, B, gr, forced && nsteps == 0) != VEIL_OK) {
        veil_free(gr);
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
    mq_report_value(Q, at, lmax > 0 ? (lmin == lmax ? "lookup(r)" : "lookup(rc)") : "lookup", glo, ghi);
    if (lmax > 0) {
        unsigned rb = mq_bits_of(gr[0].lo, gr[0].lo + (gr[0].K - 1) * gr[0].step) - gr[0].l;
        for (int64_t e = 1; e < size; e++) {
            unsigned b = mq_bits_of(gr[e].lo, gr[e].lo + (gr[e].K - 1) * gr[e].step) - gr[e].l;
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
        mq_failf(Q, VEIL_ERR_COMPILE,
                 "node '%s' (%s): its table lookup reads a %u-bit value (range [%lld, %lld]); lower n_bits or set "
                 "rounding_threshold_bits",
                 at->name, ml_op_names[at->op], mq_bits_of(lo, hi), (long long)lo, (long long)hi);
        veil_free(gr);
        return -1;
    }
    /* calibration of the output quantizer: the chain on the (rounded) calibration inputs */
    double rlo = INFINITY, rhi = -INFINITY;
    ml_tensor *outs = veil_calloc(Q->ns, sizeof(ml_tensor));
    ml_tensor probe = {0};
    int64_t *T = veil_malloc(sizeof(int64_t) * (size_t)(K * size) + 1);
    int *gid = veil_malloc(sizeof(int) * (size_t)size + 1);
    int *rep = veil_malloc(sizeof(int) * (size_t)size + 1);
    int res = -1;
    if (!outs || !T || !gid || !rep || ml_tensor_alloc(&probe, B->ndim, B->shape) != VEIL_OK) {
        mq_failf(Q, VEIL_ERR_NOMEM, "out of memory");
        goto done;
    }
    for (size_t s = 0; s < Q->ns; s++) {
        for (int64_t e = 0; e < size; e++) {
            int64_t q = round_to((int64_t)nearbyint(B->cal[s].data[e] / B->scale + B->zp) - gr[e].off, gr[e].step);
            probe.data[e] = B->scale * ((double)(q + gr[e].off) - B->zp);
        }
        if (mq_chain_eval(Q, steps, nsteps, &probe, &outs[s]) != VEIL_OK) goto done;
        if (outs[s].size != size) {
            mq_failf(Q, VEIL_ERR_UNSUPPORTED, "node '%s' (%s): an element-wise operation changes the shape", at->name,
                     ml_op_names[at->op]);
            goto done;
        }
        for (int64_t e = 0; e < size; e++) rlo = fmin(rlo, outs[s].data[e]), rhi = fmax(rhi, outs[s].data[e]);
    }
    if (!(rlo <= rhi) || !isfinite(rlo) || !isfinite(rhi)) {
        mq_failf(Q, VEIL_ERR_COMPILE, "node '%s' (%s): non-finite values on the inputset", at->name, ml_op_names[at->op]);
        goto done;
    }
    double pc = Q->o->activation_clip;
    if (!forced && pc > 0 && pc < 1) {
        /* percentile calibration: the range between the (1 − p) and p quantiles of the values */
        size_t total = Q->ns * (size_t)size, stride = (total + MQ_CLIP_MAX_VALUES - 1) / MQ_CLIP_MAX_VALUES, nv = 0;
        double *vals = veil_malloc(sizeof(double) * (total / stride + 1));
        if (!vals) {
            mq_failf(Q, VEIL_ERR_NOMEM, "out of memory");
            goto done;
        }
        for (size_t i = 0; i < total; i += stride) vals[nv++] = outs[i / (size_t)size].data[i % (size_t)size];
        mq_quantiles(vals, nv, pc, &rlo, &rhi);
        veil_free(vals);
    }
    ml_quantizer oq = forced ? *forced : mq_calibrated(rlo, rhi, bits);
    /* the tables: T[e·K + k] = quantized f_e(lo_e + k·step_e), padded with the last entry */
    for (int64_t k = 0; k < K; k++) {
        for (int64_t e = 0; e < size; e++) {
            int64_t kk = k < gr[e].K ? k : gr[e].K - 1;
            probe.data[e] = B->scale * ((double)(gr[e].off + gr[e].lo + kk * gr[e].step) - B->zp);
        }
        ml_tensor y;
        if (mq_chain_eval(Q, steps, nsteps, &probe, &y) != VEIL_OK) goto done;
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
        table_ctx *t = mq_new_table(Q, gr[0].lo, gr[0].step, gr[0].K, T);
        if (t) node = veil_graph_apply(Q->g, mq_rounded(Q, shifted(Q, B->node, gr[0].off), gr[0].l), mq_table_fn, t, at->name);
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
        int *parts = veil_malloc(sizeof(int) * (size_t)nslices + 1);
        if (!parts) {
            mq_failf(Q, VEIL_ERR_NOMEM, "out of memory");
            goto done;
        }
        for (int64_t i = 0; i < nslices && Q->st == VEIL_OK; i++) {
            veil_slice sl[VEIL_MAX_DIMS];
            for (int d = 0; d <= along; d++) sl[d] = VEIL_SLICE_ALL;
            sl[along] = (veil_slice){i, i + 1, 1, 0};
            int part = veil_graph_slice(Q->g, x, along + 1, sl);
            int64_t e0 = axis >= 0 ? i * st_[axis] : i;
            table_ctx *t = mq_new_table(Q, gr[e0].lo, gr[e0].step, gr[e0].K, &T[e0 * K]);
            if (!t) break;
            parts[nparts++] =
                veil_graph_apply(Q->g, mq_rounded(Q, shifted(Q, part, gr[e0].off), gr[e0].l), mq_table_fn, t, at->name);
        }
        node = veil_graph_concatenate(Q->g, nparts, parts, along);
        if (axis < 0) node = veil_graph_reshape(Q->g, node, B->ndim, B->shape);
        veil_free(parts);
    }
    if (Q->st != VEIL_OK) goto done;
    if (node < 0) {
        mq_graph_fail(Q, at);
        goto done;
    }
    res = mq_quant_value(Q, node, oq.scale, oq.zp);
    if (res < 0) goto done;
    B = &Q->qv[bi]; /* qv may have moved */
    for (size_t s = 0; s < Q->ns && Q->st == VEIL_OK; s++) {
        ml_tensor *c = &Q->qv[res].cal[s];
        if (ml_tensor_alloc(c, B->ndim, B->shape) != VEIL_OK) {
            mq_failf(Q, VEIL_ERR_NOMEM, "out of memory");
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
    veil_free(outs);
    ml_tensor_free(&probe);
    veil_free(T);
    veil_free(gid);
    veil_free(rep);
    veil_free(gr);
    return Q->st == VEIL_OK ? res : -1;
}

/* QUANT value of qi: itself, or its FN materialized with n_bits op_inputs. */
int mq_as_quant(qctx *Q, int qi, const ml_node *at)
{
    if (qi < 0 || Q->st != VEIL_OK) return -1;
    if (Q->qv[qi].kind == QV_QUANT) return qi;
    if (Q->qv[qi].kind != QV_FN) {
        mq_failf(Q, VEIL_ERR_UNSUPPORTED, "node '%s' (%s): operand is not an encrypted value", at->name, ml_op_names[at->op]);
        return -1;
    }
    if (Q->o->qat) {
        mq_failf(Q, VEIL_ERR_COMPILE,
                 "node '%s' (%s): its input is not quantized by a Quant node, as a quantization-aware model needs",
                 at->name, ml_op_names[at->op]);
        return -1;
    }
    return mq_materialize(Q, qi, NULL, Q->o->n_bits.op_inputs, at);
}

