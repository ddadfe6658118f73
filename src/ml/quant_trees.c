/* Tree ensembles (ONNX-ML TreeEnsembleClassifier/Regressor) in the GEMM form. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "quant_impl.h"
#include "tree.h"

/* ---- tree ensembles: the GEMM form (Concrete ML's "Hummingbird" form) --------------------------- */

/* Bits of a tree ensemble's quantized inputs (comparisons) and leaves: n_bits op_inputs and
 * op_weights, 6 each (Concrete ML's tree default) while n_bits is left at veil's default 8. */
int mq_tree_bits(int n) { return n == 8 ? 6 : n; }

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* samples of sorted xs[0..n) below v (strictly, or at most v when `le`) */
static size_t count_below(const double *xs, size_t n, double v, int le)
{
    size_t a = 0, b = n;
    while (a < b) {
        size_t c = a + (b - a) / 2;
        if (le ? xs[c] <= v : xs[c] < v) a = c + 1;
        else b = c;
    }
    return a;
}

/* Where the grid (q = round((x − lo)·s) in [0, M]) puts a threshold t: the samples of the bin
 * holding t are all sent one way, its table reading q ≤ T with T that bin (q_t) or the one below.
 * T goes with the bin's inputset samples: `below` of them on the float test's true side (x ≤ t,
 * or x < t when strict), `above` on its false side; with as many each way (none, say), the
 * nearest edge: T = round(t') (strict: ceil(t' + 1/2) − 1), t' = (t − lo)·s, within [−1, M].
 * A strict threshold at a value samples take (XGBoost splits at x < x_i) sends them to the false
 * side; the nearest edge would send every one of them the wrong way. */
static int64_t tree_T(double t, int strict, double lo, double s, double M, size_t below, size_t above)
{
    double tq = (t - lo) * s, qt = fmin(fmax(floor(tq + 0.5), 0), M);
    if (below != above) return (int64_t)(below > above ? qt : qt - 1);
    double T = strict ? ceil(tq + 0.5) - 1 : floor(tq + 0.5);
    return (int64_t)(T < -1 ? -1 : T > M ? M : T);
}

/* Comparisons of one feature (its nt thresholds tv, strict ones flagged) that its grid decides
 * otherwise than the float model on the sorted samples xs: at each node, the fewer of its bin's
 * samples on either side of its threshold (the bins below and above it are decided right). */
static size_t grid_mismatches(const double *tv, const uint8_t *strict, size_t nt, const double *xs, size_t n, double M,
                              double lo, double s)
{
    size_t miss = 0;
    for (size_t i = 0; i < nt; i++) {
        double t = tv[i], qt = fmin(fmax(floor((t - lo) * s + 0.5), 0), M);
        size_t b0 = qt > 0 ? count_below(xs, n, lo + (qt - 0.5) / s, 0) : 0;
        size_t b1 = qt < M ? count_below(xs, n, lo + (qt + 0.5) / s, 0) : n;
        size_t bt = count_below(xs, n, t, !strict[i]);
        bt = bt < b0 ? b0 : bt > b1 ? b1 : bt;
        miss += bt - b0 < b1 - bt ? bt - b0 : b1 - bt;
    }
    return miss;
}

/* The client's grid of one tree-ensemble feature: q = round((x − lo)·scale), clamped to [0, M].
 * Beyond its lowest and highest thresholds a feature decides nothing more, so the grid spans the
 * thresholds (one step of margin each side) within the inputset's range. A threshold inside a bin
 * sends part of that bin's samples the wrong way (tree_T): among grids whose M + 1 bins still span
 * that range (M − 6 to M − 1 steps between its ends, shifted by fractions of a step), the one that
 * decides the fewest of the inputset's comparisons otherwise than the float model is kept.
 * xs: the feature's n inputset values (sorted here). Returns those comparisons; *even: as many on
 * the grid spread evenly over the span. */
size_t mq_tree_grid(const ml_trees *tr, int64_t f, double *xs, size_t n, double M, double *lo_out, double *scale_out,
                    size_t *even)
{
    double lo = INFINITY, hi = -INFINITY, tlo = INFINITY, thi = -INFINITY;
    for (size_t j = 0; j < n; j++) lo = fmin(lo, xs[j]), hi = fmax(hi, xs[j]);
    for (int64_t i = 0; i < tr->n; i++)
        if (tr->mode[i] != ML_TREE_LEAF && tr->feature[i] == f) tlo = fmin(tlo, tr->value[i]), thi = fmax(thi, tr->value[i]);
    double a = fmax(lo, tlo), b = fmin(hi, thi);
    if (tlo <= thi) {
        double h = thi > tlo ? (thi - tlo) / (M - 2) : fmax(fabs(tlo), 1) * 1e-3;
        lo = fmax(lo, tlo - h), hi = fmin(hi, thi + h);
        if (!(hi > lo)) lo = tlo - h, hi = thi + h;
    }
    *lo_out = isfinite(lo) ? lo : 0;
    *scale_out = isfinite(lo) && isfinite(hi) && hi > lo ? M / (hi - lo) : 1;
    qsort(xs, n, sizeof *xs, cmp_double);
    size_t nt = 0;
    for (int64_t i = 0; i < tr->n; i++) nt += tr->mode[i] != ML_TREE_LEAF && tr->feature[i] == f;
    double *tv = veil_malloc(sizeof(double) * nt + 1);
    uint8_t *strict = veil_malloc(nt + 1);
    if (!tv || !strict) { /* the even grid, uncounted */
        veil_free(tv), veil_free(strict);
        return *even = 0;
    }
    nt = 0;
    for (int64_t i = 0; i < tr->n; i++)
        if (tr->mode[i] != ML_TREE_LEAF && tr->feature[i] == f)
            tv[nt] = tr->value[i], strict[nt++] = tr->mode[i] == ML_TREE_LT || tr->mode[i] == ML_TREE_GTE;
    size_t best = grid_mismatches(tv, strict, nt, xs, n, M, *lo_out, *scale_out);
    *even = best;
    for (int ik = 0; ik <= 40 && best > 0 && tlo <= thi && b > a && M >= 8; ik++) {
        double k = (M - 1) - 5.0 * ik / 40, step = (b - a) / k;
        for (int ia = 0; ia < 40 && best > 0; ia++) {
            double l = a - step * (0.5 + (M - k - 0.5) * ia / 40.0);
            size_t c = grid_mismatches(tv, strict, nt, xs, n, M, l, 1 / step);
            if (c < best) best = c, *lo_out = l, *scale_out = 1 / step;
        }
    }
    veil_free(tv), veil_free(strict);
    return best;
}

/* TreeScores on model input `ii`, which the client quantizes per feature to [0, M] (its Scaler-like
 * pre-transform maps each feature's inputset range there). Each internal node i compares
 * q[feature_i] with its quantized threshold T_i: one lookup with a table of its own, [q ≤ T_i] (a
 * GTE or GT node reads the negation, folded into B); all the comparisons of one feature share one
 * blind rotation (src/compiler/multivalue.c). A node p with leaf children has the value
 * v_p = 2·S_p + u_p, S_p = Σ_i B[i,p]·c_i − L_p being 0 when p is reached (negative otherwise) and
 * u_p its branch bit: its true child is reached when v_p = 1, its false one when v_p = 0, two
 * lookups of one input that share one blind rotation as well (at depth 4, v_p reads 3 bits as the
 * per-leaf form did). The scores are a clear matrix of quantized leaf weights over the reached
 * leaves, summed over every tree, decrypted at full precision by the client. */
int mq_do_trees(qctx *Q, const ml_node *n, int ii)
{
    ml_trees t;
    veil_status st = ml_trees_parse(n, &t, Q->err, Q->errlen);
    if (st != VEIL_OK) return mq_failf(Q, st, "%s", Q->err), -1;
    const ml_in_info *in = &Q->out->in[ii];
    int qx = Q->vmap[n->in[0]];
    const qval *X = &Q->qv[qx];
    int64_t F = X->ndim ? X->shape[X->ndim - 1] : 1, M = (int64_t)in->q.qmax;
    int r = -1;
    int64_t *T = NULL, *B = NULL, *Lc = NULL, *W = NULL, *node_of = NULL, *leaf_of = NULL, *parent = NULL;
    int64_t *col_of = NULL, *pos_of = NULL, *cnz = NULL, *nzk = NULL, *nzv = NULL;
    int *leaf_parts = NULL;
    int *neg = NULL;
    ml_tensor Wr = {0};
    if (X->size != F || t.nfeatures > F || in->npre != F) {
        mq_failf(Q, VEIL_ERR_UNSUPPORTED, "node '%s': a tree ensemble reads one sample of %lld features", n->name,
                 (long long)t.nfeatures);
        goto out;
    }
    /* internal nodes and leaves, numbered */
    int64_t ni = 0, nl = 0;
    node_of = veil_calloc((size_t)t.n + 1, sizeof(int64_t));
    leaf_of = veil_calloc((size_t)t.n + 1, sizeof(int64_t));
    if (!node_of || !leaf_of) goto nomem;
    for (int64_t i = 0; i < t.n; i++) {
        node_of[i] = leaf_of[i] = -1;
        if (t.mode[i] == ML_TREE_LEAF) leaf_of[i] = nl++;
        else node_of[i] = ni++;
    }
    if (ni == 0 || nl == 0) {
        mq_failf(Q, VEIL_ERR_UNSUPPORTED, "node '%s': a tree ensemble without a comparison", n->name);
        goto out;
    }
    int64_t TT = t.ntargets;
    if (ni * nl > ((int64_t)1 << 24) || nl * TT > ((int64_t)1 << 24)) {
        mq_failf(Q, VEIL_ERR_UNSUPPORTED, "node '%s': a tree ensemble of %lld comparisons and %lld leaves is too large for "
                 "its GEMM form (at most 2^24 cells)", n->name, (long long)ni, (long long)nl);
        goto out;
    }
    T = veil_calloc((size_t)ni, sizeof(int64_t));
    neg = veil_calloc((size_t)ni, sizeof(int));
    W = veil_calloc((size_t)(nl * TT), sizeof(int64_t));
    if (!T || !neg || !W || ml_tensor_alloc(&Wr, 2, (int64_t[]){nl, TT}) != VEIL_OK) goto nomem;
    size_t xoff = 0; /* input ii's first value in an inputset row */
    for (int j = 0; j < ii; j++) xoff += (size_t)Q->fg->input_shapes[j].size;
    for (int64_t i = 0; i < t.n; i++) {
        int64_t k = node_of[i];
        if (k < 0) continue;
        int64_t f = t.feature[i];
        double lo = in->pre_off[f], s = in->pre_scale[f], tv = t.value[i];
        double qt = fmin(fmax(floor((tv - lo) * s + 0.5), 0), (double)M); /* the bin holding the threshold */
        int strict = t.mode[i] == ML_TREE_LT || t.mode[i] == ML_TREE_GTE; /* GTE and GT: negations of LT and LEQ */
        size_t below = 0, above = 0;
        for (size_t sm = 0; sm < Q->ns; sm++) {
            if (X->cal[sm].data[f] != qt) continue;
            double x = Q->inputset[sm * Q->stride + xoff + (size_t)f];
            if (strict ? x < tv : x <= tv) below++;
            else above++;
        }
        neg[k] = t.mode[i] == ML_TREE_GTE || t.mode[i] == ML_TREE_GT;
        T[k] = tree_T(tv, strict, lo, s, (double)M, below, above);
    }
    /* the nodes with leaf children ("leaf parents", one column each) and each leaf's place: true
     * children first, then false ones */
    parent = veil_malloc(sizeof(int64_t) * (size_t)(t.n + 1));
    col_of = veil_malloc(sizeof(int64_t) * (size_t)(t.n + 1));
    pos_of = veil_malloc(sizeof(int64_t) * (size_t)(t.n + 1));
    if (!parent || !col_of || !pos_of) goto nomem;
    for (int64_t i = 0; i < t.n; i++) parent[i] = col_of[i] = pos_of[i] = -1;
    for (int64_t i = 0; i < t.n; i++)
        if (t.mode[i] != ML_TREE_LEAF) parent[t.t[i]] = parent[t.f[i]] = i;
    int64_t np = 0, ntrue = 0, nfalse = 0, off;
    for (int64_t i = 0; i < t.n; i++) {
        if (leaf_of[i] < 0) continue;
        int64_t p = parent[i];
        if (p < 0) {
            mq_failf(Q, VEIL_ERR_UNSUPPORTED, "node '%s': a tree that is a single leaf", n->name);
            goto out;
        }
        if (col_of[p] < 0) col_of[p] = np++;
        if (t.t[p] == i) ntrue++;
        else nfalse++;
    }
    for (int64_t i = 0, a = 0, b = ntrue; i < t.n; i++)
        if (leaf_of[i] >= 0) pos_of[i] = t.t[parent[i]] == i ? a++ : b++;
    B = veil_calloc((size_t)(ni * np), sizeof(int64_t));
    Lc = veil_calloc((size_t)np, sizeof(int64_t));
    if (!B || !Lc) goto nomem;
    for (int64_t i = 0; i < t.n; i++) {
        int64_t j = col_of[i];
        if (j < 0) continue;
        /* S_p: the branches on p's path, walked up to the root; the path needs c_k = 1 (b = 1) or
         * 0 (b = −1); with c_k = 1 − le_k when negated, B reads le_k: b·(1 − le) = b − b·le */
        for (int64_t c = i, p = parent[c], steps = 0; p >= 0 && steps <= t.n; c = p, p = parent[c], steps++) {
            int64_t k = node_of[p], b = t.t[p] == c ? 1 : -1;
            B[k * np + j] += 2 * (neg[k] ? -b : b);
            Lc[j] += 2 * ((b > 0) - (neg[k] ? b : 0));
        }
        /* + u_p, the branch bit: le_k, or 1 − le_k when negated */
        int64_t k = node_of[i];
        B[k * np + j] += neg[k] ? -1 : 1;
        Lc[j] -= neg[k] ? 1 : 0;
    }
    /* every column offset by the same amount to be nonnegative (v + off in [0, 2·depth)), so the
     * lookups read unsigned values: at depth 4, [−6, 1] would take 4 bits, [0, 7] takes 3 */
    off = 0;
    for (int64_t j = 0; j < np; j++) {
        int64_t lo_j = -Lc[j];
        for (int64_t k = 0; k < ni; k++) lo_j += B[k * np + j] < 0 ? B[k * np + j] : 0;
        if (-lo_j > off) off = -lo_j;
    }
    for (int64_t j = 0; j < np; j++) Lc[j] -= off;
    for (int64_t w = 0; w < t.nw; w++) Wr.data[pos_of[t.w_node[w]] * TT + t.w_target[w]] += t.w[w];
    ml_quantizer wq = mq_weight_quantizer(&Wr, mq_tree_bits(Q->o->n_bits.op_weights));
    for (int64_t e = 0; e < nl * TT; e++) W[e] = (int64_t)(ml_quantize_value(&wq, Wr.data[e]) - wq.zp);
    /* the integer graph */
    /* node k's comparison: a lookup of its feature's integer, its own table [q ≤ T_k] (so it reads
     * the feature's bits alone, not a difference one bit wider) */
    int *parts = veil_malloc(sizeof(int) * (size_t)ni + 1);
    int64_t *tab = veil_malloc(sizeof(int64_t) * (size_t)(M + 1));
    if (!parts || !tab) {
        veil_free(parts), veil_free(tab);
        goto nomem;
    }
    for (int64_t i = 0, k; i < t.n && Q->st == VEIL_OK; i++) {
        if ((k = node_of[i]) < 0) continue;
        veil_slice sl[2] = {VEIL_SLICE_ALL, {t.feature[i], t.feature[i] + 1, 1, 0}};
        int part = veil_graph_slice(Q->g, X->node, 2, sl);
        for (int64_t q = 0; q <= M; q++) tab[q] = q <= T[k];
        table_ctx *tc = mq_new_table(Q, 0, 1, M + 1, tab);
        if (tc) parts[k] = veil_graph_apply(Q->g, part, mq_table_fn, tc, "tree_compare");
    }
    veil_free(tab);
    int le = Q->st == VEIL_OK ? veil_graph_concatenate(Q->g, (int)ni, parts, 1) : -1;
    veil_free(parts);
    if (Q->st != VEIL_OK) goto out;
    int v = veil_graph_sub(Q->g, veil_graph_matmul(Q->g, le, veil_graph_constant(Q->g, 2, (int64_t[]){ni, np}, B)),
                           veil_graph_constant(Q->g, 2, (int64_t[]){1, np}, Lc));
    /* each leaf reads its parent's column: [v == 1] for true children, [v == 0] for false ones */
    leaf_parts = veil_malloc(sizeof(int) * (size_t)nl + 1);
    if (!leaf_parts) goto nomem;
    for (int64_t i = 0; i < t.n; i++)
        if (leaf_of[i] >= 0) {
            int64_t j = col_of[parent[i]];
            veil_slice sl[2] = {VEIL_SLICE_ALL, {j, j + 1, 1, 0}};
            leaf_parts[pos_of[i]] = veil_graph_slice(Q->g, v, 2, sl);
        }
    /* the leaf lookups on v + off in [0, off + 1]: off + 1 reaches the true child, off the false one */
    table_ctx *tt = NULL, *tf = NULL;
    int64_t *ltab = veil_malloc(sizeof(int64_t) * (size_t)(off + 2));
    if (!ltab) goto nomem;
    for (int64_t q = 0; q <= off + 1; q++) ltab[q] = q == off + 1;
    if (ntrue) tt = mq_new_table(Q, 0, 1, off + 2, ltab);
    for (int64_t q = 0; q <= off + 1; q++) ltab[q] = q == off;
    if (nfalse) tf = mq_new_table(Q, 0, 1, off + 2, ltab);
    veil_free(ltab);
    if (Q->st != VEIL_OK) goto out;
    int lt = ntrue ? veil_graph_apply(Q->g, veil_graph_concatenate(Q->g, (int)ntrue, leaf_parts, 1), mq_table_fn, tt,
                                      "tree_leaf") : -1;
    int lf = nfalse ? veil_graph_apply(Q->g, veil_graph_concatenate(Q->g, (int)nfalse, leaf_parts + ntrue, 1),
                                       mq_table_fn, tf, "tree_leaf") : -1;
    int e = !nfalse ? lt : !ntrue ? lf : veil_graph_concatenate(Q->g, 2, (int[]){lt, lf}, 1);
    int sc = veil_graph_matmul(Q->g, e, veil_graph_constant(Q->g, 2, (int64_t[]){nl, TT}, W));
    if (sc < 0) {
        mq_graph_fail(Q, n);
        goto out;
    }
    r = mq_quant_value(Q, sc, wq.scale, 0);
    if (r < 0) goto out;
    /* calibration: the integer pipeline on each inputset sample */
    int64_t lo[3] = {INT64_MAX, INT64_MAX, INT64_MAX}, hi[3] = {INT64_MIN, INT64_MIN, INT64_MIN};
    int64_t *lev = veil_malloc(sizeof(int64_t) * (size_t)(ni + nl + 1));
    /* B by columns, its nonzeros alone (a column: the nodes on one path, at most the depth) */
    int64_t nnz = 0;
    for (int64_t z = 0; z < ni * np; z++) nnz += B[z] != 0;
    cnz = veil_calloc((size_t)np + 1, sizeof(int64_t));
    nzk = veil_malloc(sizeof(int64_t) * (size_t)nnz + 1);
    nzv = veil_malloc(sizeof(int64_t) * (size_t)nnz + 1);
    if (!lev || !cnz || !nzk || !nzv) {
        veil_free(lev);
        goto nomem;
    }
    for (int64_t k = 0; k < ni; k++)
        for (int64_t j = 0; j < np; j++) cnz[j + 1] += B[k * np + j] != 0;
    for (int64_t j = 0; j < np; j++) cnz[j + 1] += cnz[j];
    {
        int64_t *fill = veil_malloc(sizeof(int64_t) * (size_t)np + 1);
        if (!fill) {
            veil_free(lev);
            goto nomem;
        }
        memcpy(fill, cnz, sizeof(int64_t) * (size_t)np);
        for (int64_t k = 0; k < ni; k++)
            for (int64_t j = 0; j < np; j++)
                if (B[k * np + j]) nzk[fill[j]] = k, nzv[fill[j]++] = B[k * np + j];
        veil_free(fill);
    }
    for (size_t sm = 0; sm < Q->ns; sm++) {
        const double *xq = Q->qv[qx].cal[sm].data; /* scale 1, zero point 0: the integers */
        ml_tensor *c = &Q->qv[r].cal[sm];
        if (ml_tensor_alloc(c, 2, (int64_t[]){1, TT}) != VEIL_OK) {
            veil_free(lev);
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
        for (int64_t i = 0; i < t.n; i++) {
            if (leaf_of[i] < 0) continue;
            int64_t j = col_of[parent[i]], acc = -Lc[j];
            for (int64_t z = cnz[j]; z < cnz[j + 1]; z++) acc += nzv[z] * lev[nzk[z]];
            lo[1] = acc < lo[1] ? acc : lo[1], hi[1] = acc > hi[1] ? acc : hi[1];
            lev[ni + pos_of[i]] = acc == off + (t.t[parent[i]] == i ? 1 : 0);
        }
        for (int64_t k = 0; k < TT; k++) {
            int64_t acc = 0;
            for (int64_t l = 0; l < nl; l++) acc += lev[ni + l] ? W[l * TT + k] : 0;
            lo[2] = acc < lo[2] ? acc : lo[2], hi[2] = acc > hi[2] ? acc : hi[2];
            c->data[k] = wq.scale * (double)acc;
        }
    }
    veil_free(lev);
    mq_report_value(Q, n, "compare", lo[0], hi[0]);
    mq_report_value(Q, n, "leaves", lo[1], hi[1]);
out:
    ml_trees_free(&t);
    veil_free(T), veil_free(neg), veil_free(B), veil_free(Lc), veil_free(W), veil_free(node_of), veil_free(leaf_of), veil_free(parent);
    veil_free(col_of), veil_free(pos_of), veil_free(leaf_parts), veil_free(cnz), veil_free(nzk), veil_free(nzv);
    ml_tensor_free(&Wr);
    return Q->st == VEIL_OK ? r : -1;
nomem:
    mq_failf(Q, VEIL_ERR_NOMEM, "out of memory");
    r = -1;
    goto out;
}

