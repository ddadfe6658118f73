/* Tree ensembles (ONNX-ML TreeEnsembleClassifier/Regressor) in the GEMM form. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "quant_impl.h"
#include "tree.h"

/* ---- tree ensembles: the GEMM form (Concrete ML's "Hummingbird" form) --------------------------- */

/* the leaf-equality lookup */
static int64_t eq_zero(int64_t d, void *ctx)
{
    (void)ctx;
    return d == 0;
}

/* Bits of a tree ensemble's quantized inputs (comparisons) and leaves: n_bits op_inputs and
 * op_weights, 6 each (Concrete ML's tree default) while n_bits is left at veil's default 8. */
int mq_tree_bits(int n) { return n == 8 ? 6 : n; }

/* TreeScores on model input `ii`, which the client quantizes per feature to [0, M] (its Scaler-like
 * pre-transform maps each feature's inputset range there). Each internal node i compares
 * q[feature_i] with its quantized threshold T_i: one lookup with a table of its own, [q ≤ T_i] (a
 * GTE or GT node reads the negation, folded into B); each leaf ℓ is reached when
 * Σ_i B[i,ℓ]·c_i equals its count of true branches: one lookup [· == 0]; the scores are a clear
 * matrix of quantized leaf weights over the reached leaves, summed over every tree, decrypted at
 * full precision by the client. */
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
    int *neg = NULL;
    ml_tensor Wr = {0};
    if (X->size != F || t.nfeatures > F || in->npre != F) {
        mq_failf(Q, VEIL_ERR_UNSUPPORTED, "node '%s': a tree ensemble reads one sample of %lld features", n->name,
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
        mq_failf(Q, VEIL_ERR_UNSUPPORTED, "node '%s': a tree ensemble without a comparison", n->name);
        goto out;
    }
    int64_t TT = t.ntargets;
    if (ni * nl > ((int64_t)1 << 24) || nl * TT > ((int64_t)1 << 24)) {
        mq_failf(Q, VEIL_ERR_UNSUPPORTED, "node '%s': a tree ensemble of %lld comparisons and %lld leaves is too large for "
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
    ml_quantizer wq = mq_weight_quantizer(&Wr, mq_tree_bits(Q->o->n_bits.op_weights));
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
        table_ctx *tc = mq_new_table(Q, 0, 1, M + 1, tab);
        if (tc) parts[k] = veil_graph_apply(Q->g, part, mq_table_fn, tc, "tree_compare");
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
        mq_graph_fail(Q, n);
        goto out;
    }
    r = mq_quant_value(Q, sc, wq.scale, 0);
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
    mq_report_value(Q, n, "compare", lo[0], hi[0]);
    mq_report_value(Q, n, "leaves", lo[1], hi[1]);
out:
    ml_trees_free(&t);
    free(T), free(neg), free(B), free(Lc), free(W), free(node_of), free(leaf_of), free(parent);
    ml_tensor_free(&Wr);
    return Q->st == VEIL_OK ? r : -1;
nomem:
    mq_failf(Q, VEIL_ERR_NOMEM, "out of memory");
    r = -1;
    goto out;
}

