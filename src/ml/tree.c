/* ONNX-ML tree ensembles: attributes (onnx/docs/Operators-ml.md, TreeEnsembleClassifier and
 * TreeEnsembleRegressor) parsed into one flat node array, and their float evaluation, which follows
 * onnxruntime where the spec leaves room: a classifier of two labels whose weights all go to one
 * class has one score s, reported as [1 − s, s] without a post transform when no weight is
 * negative, else as [−s, s] before the transform. Missing-value tracking only decides where a NaN
 * goes; veil refuses non-finite inputs, so it never applies. BRANCH_EQ, BRANCH_NEQ and the MIN
 * and MAX aggregates are refused by name. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tree.h"

static const ml_attr *attr(const ml_node *n, const char *name, ml_attr_type type)
{
    const ml_attr *a = ml_attr_find(n, name);
    return a && a->type == type ? a : NULL;
}

/* a FLOATS attribute, or its *_as_tensor form */
static const double *floats(const ml_node *n, const char *name, size_t *len)
{
    const ml_attr *a = attr(n, name, ML_ATTR_FLOATS);
    if (a) {
        *len = a->n;
        return a->floats;
    }
    char tn[96];
    snprintf(tn, sizeof tn, "%s_as_tensor", name);
    a = attr(n, tn, ML_ATTR_TENSOR);
    if (a) {
        *len = (size_t)a->t.size;
        return a->t.data;
    }
    *len = 0;
    return NULL;
}

static const int64_t *ints(const ml_node *n, const char *name, size_t *len)
{
    const ml_attr *a = attr(n, name, ML_ATTR_INTS);
    *len = a ? a->n : 0;
    return a ? a->ints : NULL;
}

void ml_trees_free(ml_trees *t)
{
    veil_free(t->feature), veil_free(t->t), veil_free(t->f), veil_free(t->value), veil_free(t->mode);
    veil_free(t->roots), veil_free(t->w_node), veil_free(t->w_target), veil_free(t->w), veil_free(t->base);
    veil_free(t->labels);
    memset(t, 0, sizeof *t);
}

#define ML_TREE_MAX_NODES ((int64_t)1 << 16) /* of one ensemble */

/* (tree id, node id) → node index, by binary search in keys sorted by (tree, id) */
typedef struct {
    int64_t tree, id, index;
} node_key;

typedef struct {
    node_key *k;
    int64_t n;
} node_index;

static int by_tree_id(const void *a, const void *b)
{
    const node_key *x = a, *y = b;
    if (x->tree != y->tree) return x->tree < y->tree ? -1 : 1;
    if (x->id != y->id) return x->id < y->id ? -1 : 1;
    return x->index < y->index ? -1 : x->index > y->index;
}

static int64_t find_node(const node_index *x, int64_t tr, int64_t nid)
{
    int64_t lo = 0, hi = x->n;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        const node_key *k = &x->k[mid];
        if (k->tree < tr || (k->tree == tr && k->id < nid)) lo = mid + 1;
        else hi = mid;
    }
    return lo < x->n && x->k[lo].tree == tr && x->k[lo].id == nid ? x->k[lo].index : -1;
}

veil_status ml_trees_parse(const ml_node *n, ml_trees *t, char *err, size_t errlen)
{
    memset(t, 0, sizeof *t);
    int cls = ml_attr_find(n, "classlabels_int64s") || ml_attr_find(n, "classlabels_strings") ||
              ml_attr_find(n, "class_ids");
    const char *op = cls ? "TreeEnsembleClassifier" : "TreeEnsembleRegressor";
    if (ml_attr_find(n, "classlabels_strings"))
        return ml_errf(err, errlen, VEIL_ERR_UNSUPPORTED,
                       "node '%s': %s classlabels_strings (string class labels) are not supported; train with integer "
                       "labels", n->name, op);
    size_t nn, k;
    const int64_t *tree = ints(n, "nodes_treeids", &nn), *id = ints(n, "nodes_nodeids", &k);
    size_t kf, kt, kfa, km, kv;
    const int64_t *feat = ints(n, "nodes_featureids", &kf), *tru = ints(n, "nodes_truenodeids", &kt);
    const int64_t *fal = ints(n, "nodes_falsenodeids", &kfa);
    const ml_attr *modes = attr(n, "nodes_modes", ML_ATTR_STRINGS);
    km = modes ? modes->n : 0;
    const double *val = floats(n, "nodes_values", &kv);
    if (!tree || nn == 0 || k != nn || kf != nn || kt != nn || kfa != nn || km != nn || kv != nn)
        return ml_errf(err, errlen, VEIL_ERR_MALFORMED, "node '%s': %s node attributes of different lengths", n->name, op);
    if ((int64_t)nn > ML_TREE_MAX_NODES)
        return ml_errf(err, errlen, VEIL_ERR_UNSUPPORTED, "node '%s': %s has %zu nodes (at most %lld)", n->name, op, nn,
                       (long long)ML_TREE_MAX_NODES);
    const char *agg = ml_attr_string(n, "aggregate_function", "SUM");
    if (strcmp(agg, "SUM") != 0 && strcmp(agg, "AVERAGE") != 0)
        return ml_errf(err, errlen, VEIL_ERR_UNSUPPORTED, "node '%s': %s aggregate_function '%s' is not supported (SUM, "
                       "AVERAGE)", n->name, op, agg);
    const char *pt = ml_attr_string(n, "post_transform", "NONE");
    t->post = ml_name_index(ml_post_names, ML_POST_COUNT, pt);
    if (t->post < 0 || (!cls && t->post != ML_POST_NONE))
        return ml_errf(err, errlen, VEIL_ERR_UNSUPPORTED, "node '%s': %s post_transform '%s' is not supported (%s)", n->name,
                       op, pt, cls ? "NONE, LOGISTIC, SOFTMAX, SOFTMAX_ZERO" : "NONE");
    t->n = (int64_t)nn;
    t->feature = veil_malloc(sizeof(int64_t) * nn);
    t->t = veil_malloc(sizeof(int64_t) * nn);
    t->f = veil_malloc(sizeof(int64_t) * nn);
    t->value = veil_malloc(sizeof(double) * nn);
    t->mode = veil_malloc(nn);
    t->roots = veil_malloc(sizeof(int64_t) * (nn + 1));
    node_index ix = {veil_malloc(sizeof(node_key) * (nn + 1)), (int64_t)nn};
    uint8_t *is_child = veil_calloc(nn + 1, 1);
    if (!t->feature || !t->t || !t->f || !t->value || !t->mode || !t->roots || !ix.k || !is_child) {
        veil_free(ix.k), veil_free(is_child);
        goto nomem;
    }
    for (size_t i = 0; i < nn; i++) ix.k[i] = (node_key){tree[i], id[i], (int64_t)i};
    qsort(ix.k, nn, sizeof(node_key), by_tree_id);
    for (size_t i = 1; i < nn; i++)
        if (ix.k[i].tree == ix.k[i - 1].tree && ix.k[i].id == ix.k[i - 1].id) {
            veil_status st = ml_errf(err, errlen, VEIL_ERR_MALFORMED, "node '%s': %s has two nodes %lld in tree %lld",
                                     n->name, op, (long long)ix.k[i].id, (long long)ix.k[i].tree);
            veil_free(ix.k), veil_free(is_child);
            ml_trees_free(t);
            return st;
        }
    for (size_t i = 0; i < nn; i++) {
        const char *m = modes->strs[i];
        t->mode[i] = !strcmp(m, "LEAF") ? ML_TREE_LEAF : !strcmp(m, "BRANCH_LEQ") ? ML_TREE_LEQ
                     : !strcmp(m, "BRANCH_LT") ? ML_TREE_LT : !strcmp(m, "BRANCH_GTE") ? ML_TREE_GTE
                     : !strcmp(m, "BRANCH_GT") ? ML_TREE_GT : 255;
        if (t->mode[i] == 255) {
            veil_free(ix.k), veil_free(is_child);
            veil_status st = ml_errf(err, errlen, VEIL_ERR_UNSUPPORTED, "node '%s': %s mode '%s' is not supported (LEAF, "
                                     "BRANCH_LEQ, BRANCH_LT, BRANCH_GTE, BRANCH_GT)", n->name, op, m);
            ml_trees_free(t);
            return st;
        }
        t->feature[i] = feat[i];
        t->value[i] = (double)(float)val[i];
        t->t[i] = t->f[i] = -1;
        if (t->mode[i] != ML_TREE_LEAF) {
            t->t[i] = find_node(&ix, tree[i], tru[i]);
            t->f[i] = find_node(&ix, tree[i], fal[i]);
            if (t->t[i] < 0 || t->f[i] < 0 || feat[i] < 0 || feat[i] > (1 << 20) || !isfinite(t->value[i])) {
                veil_free(ix.k), veil_free(is_child);
                ml_trees_free(t);
                return ml_errf(err, errlen, VEIL_ERR_MALFORMED, "node '%s': %s node %zu has a bad child, feature or threshold",
                               n->name, op, i);
            }
            if (feat[i] + 1 > t->nfeatures) t->nfeatures = feat[i] + 1;
        }
    }
    /* roots: per tree id (in sorted order), its first node that no node points to */
    for (size_t i = 0; i < nn; i++)
        if (t->mode[i] != ML_TREE_LEAF) is_child[t->t[i]] = is_child[t->f[i]] = 1;
    for (size_t a = 0; a < nn; a++) {
        int64_t i = ix.k[a].index;
        if (is_child[i] || (t->ntrees && tree[t->roots[t->ntrees - 1]] == tree[i])) continue;
        t->roots[t->ntrees++] = i;
    }
    /* leaf weights */
    size_t nw, a2, a3, a4;
    const int64_t *wt = ints(n, cls ? "class_treeids" : "target_treeids", &nw);
    const int64_t *wn = ints(n, cls ? "class_nodeids" : "target_nodeids", &a2);
    const int64_t *wi = ints(n, cls ? "class_ids" : "target_ids", &a3);
    const double *ww = floats(n, cls ? "class_weights" : "target_weights", &a4);
    if (!wt || nw == 0 || a2 != nw || a3 != nw || a4 != nw) {
        veil_free(ix.k), veil_free(is_child);
        ml_trees_free(t);
        return ml_errf(err, errlen, VEIL_ERR_MALFORMED, "node '%s': %s has no leaf weights, or weight attributes of "
                       "different lengths", n->name, op);
    }
    if (nw > (size_t)(64 * ML_TREE_MAX_NODES)) {
        veil_free(ix.k), veil_free(is_child);
        ml_trees_free(t);
        return ml_errf(err, errlen, VEIL_ERR_UNSUPPORTED, "node '%s': %s has %zu leaf weights", n->name, op, nw);
    }
    t->nw = (int64_t)nw;
    t->w_node = veil_malloc(sizeof(int64_t) * nw);
    t->w_target = veil_malloc(sizeof(int64_t) * nw);
    t->w = veil_malloc(sizeof(double) * nw);
    if (!t->w_node || !t->w_target || !t->w) {
        veil_free(ix.k), veil_free(is_child);
        goto nomem;
    }
    int64_t maxid = 0, minid = INT64_MAX;
    int negative = 0;
    for (size_t i = 0; i < nw; i++) {
        t->w_node[i] = find_node(&ix, wt[i], wn[i]);
        t->w_target[i] = wi[i];
        t->w[i] = (double)(float)ww[i];
        if (t->w_node[i] < 0 || t->mode[t->w_node[i]] != ML_TREE_LEAF || wi[i] < 0 || wi[i] > 4096 || !isfinite(t->w[i])) {
            veil_free(ix.k), veil_free(is_child);
            ml_trees_free(t);
            return ml_errf(err, errlen, VEIL_ERR_MALFORMED, "node '%s': %s weight %zu names no leaf or a bad target",
                           n->name, op, i);
        }
        maxid = wi[i] > maxid ? wi[i] : maxid;
        minid = wi[i] < minid ? wi[i] : minid;
        negative |= t->w[i] < 0;
    }
    veil_free(ix.k), veil_free(is_child);
    if (!strcmp(agg, "AVERAGE"))
        for (size_t i = 0; i < nw; i++) t->w[i] /= (double)t->ntrees;
    if (cls) {
        size_t nl;
        const int64_t *lab = ints(n, "classlabels_int64s", &nl);
        if (!lab || nl == 0 || nl > 4096) {
            ml_trees_free(t);
            return ml_errf(err, errlen, VEIL_ERR_MALFORMED, "node '%s': %s has no classlabels_int64s", n->name, op);
        }
        t->nlabels = (int64_t)nl;
        if (!(t->labels = veil_malloc(sizeof(double) * nl))) goto nomem;
        for (size_t i = 0; i < nl; i++) t->labels[i] = (double)lab[i];
        if (nl == 2 && minid == maxid) {
            t->ntargets = 1;
            t->binary = t->post == ML_POST_NONE && !negative ? ML_BINARY_ONE_MINUS : ML_BINARY_NEGATE;
            for (size_t i = 0; i < nw; i++) t->w_target[i] = 0;
        } else {
            t->ntargets = (int64_t)nl;
            if (maxid >= t->ntargets) {
                ml_trees_free(t);
                return ml_errf(err, errlen, VEIL_ERR_MALFORMED, "node '%s': %s class id %lld of %zu classes", n->name, op,
                               (long long)maxid, nl);
            }
        }
    } else {
        t->ntargets = ml_attr_int(n, "n_targets", maxid + 1);
        if (t->ntargets < maxid + 1 || t->ntargets > 4096) {
            ml_trees_free(t);
            return ml_errf(err, errlen, VEIL_ERR_MALFORMED, "node '%s': %s target id %lld of %lld targets", n->name, op,
                           (long long)maxid, (long long)t->ntargets);
        }
    }
    size_t nb;
    const double *bv = floats(n, "base_values", &nb);
    if (bv && nb) {
        if (nb != (size_t)t->ntargets) {
            ml_trees_free(t);
            return ml_errf(err, errlen, VEIL_ERR_MALFORMED, "node '%s': %s has %zu base values for %lld scores", n->name,
                           op, nb, (long long)t->ntargets);
        }
        if (!(t->base = veil_malloc(sizeof(double) * nb))) goto nomem;
        for (size_t i = 0; i < nb; i++) t->base[i] = (double)(float)bv[i];
    }
    return VEIL_OK;
nomem:
    ml_trees_free(t);
    return ml_errf(err, errlen, VEIL_ERR_NOMEM, "node '%s': out of memory", n->name);
}

void ml_trees_eval(const ml_trees *t, const double *x, double *scores)
{
    for (int64_t k = 0; k < t->ntargets; k++) scores[k] = 0;
    for (int64_t r = 0; r < t->ntrees; r++) {
        int64_t i = t->roots[r];
        for (int64_t steps = 0; t->mode[i] != ML_TREE_LEAF && steps <= t->n; steps++) {
            float v = (float)x[t->feature[i]], th = (float)t->value[i];
            int go = t->mode[i] == ML_TREE_LEQ ? v <= th : t->mode[i] == ML_TREE_LT ? v < th
                     : t->mode[i] == ML_TREE_GTE ? v >= th : v > th;
            i = go ? t->t[i] : t->f[i];
        }
        for (int64_t w = 0; w < t->nw; w++)
            if (t->w_node[w] == i) scores[t->w_target[w]] += t->w[w];
    }
}
