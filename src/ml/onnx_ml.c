/* ONNX-ML operators (domain ai.onnx.ml; "ONNX Operators: ai.onnx.ml", onnx/docs/Operators-ml.md):
 * their lowering at import and their float kernels.
 *
 * LinearClassifier(X) → (Y, Z) becomes Gemm(X, W, B, transB = 1) → S, the scores, then on the
 * client ScoresLabel(S) → Y (the label of the first highest score) and ScoresTransform(S) → Z (the
 * post transform). LinearRegressor(X) → Y becomes Gemm(X, W, B) → S and, when it has a post
 * transform, ScoresTransform(S) → Y. W has one row per class (per target), as the spec lays the
 * coefficients out; B holds the intercepts. A Scaler on a model input runs on the client before
 * quantization (quantize.c); elsewhere it is an element-wise function like BatchNormalization. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "ml.h"
#include "tree.h"

#define ONNX_INT64 7

/* ---- kernels ---------------------------------------------------------------------------------- */

static int64_t last_dim(const ml_tensor *x) { return x->ndim ? x->shape[x->ndim - 1] : 1; }

veil_status ml_scores_transform(int mode, const double *base, size_t nbase, const ml_tensor *x, ml_tensor *y)
{
    int post = mode & 15, binary = mode >> 4;
    int64_t E = last_dim(x);
    if (E <= 0 || (nbase && nbase != (size_t)E) || (binary && E != 1)) return VEIL_ERR_MALFORMED;
    int64_t shape[VEIL_MAX_DIMS];
    memcpy(shape, x->shape, sizeof shape);
    if (binary) shape[x->ndim - 1] = 2;
    veil_status st = ml_tensor_alloc(y, x->ndim, shape);
    if (st != VEIL_OK) return st;
    int64_t Y = binary ? 2 : E;
    for (int64_t r = 0; r < x->size / E; r++) {
        double *v = y->data + r * Y;
        for (int64_t e = 0; e < E; e++) v[binary ? 1 : e] = x->data[r * E + e] + (nbase ? base[e] : 0);
        /* one score s of two classes (onnxruntime's binary case): [1 − s, s] for non-negative
         * leaf weights without a transform, else [−s, s] */
        if (binary) v[0] = binary == ML_BINARY_ONE_MINUS ? 1 - v[1] : -v[1];
        if (post == ML_POST_LOGISTIC) {
            for (int64_t e = 0; e < Y; e++) v[e] = 1 / (1 + exp(-v[e]));
        } else if (post == ML_POST_SOFTMAX || post == ML_POST_SOFTMAX_ZERO) {
            int zero = post == ML_POST_SOFTMAX_ZERO;
            double mx = -INFINITY, sum = 0;
            for (int64_t e = 0; e < Y; e++)
                if (!zero || v[e] != 0) mx = fmax(mx, v[e]);
            for (int64_t e = 0; e < Y; e++) {
                v[e] = zero && v[e] == 0 ? 0 : exp(v[e] - mx);
                sum += v[e];
            }
            for (int64_t e = 0; e < Y && sum > 0; e++) v[e] /= sum;
        }
    }
    return VEIL_OK;
}

veil_status ml_scores_label(const double *labels, size_t nlabels, const ml_tensor *x, ml_tensor *y)
{
    int64_t E = last_dim(x);
    if (x->ndim < 1 || E < 1 || (size_t)E != nlabels) return VEIL_ERR_MALFORMED;
    veil_status st = ml_tensor_alloc(y, x->ndim - 1, x->shape);
    if (st != VEIL_OK) return st;
    y->elem_type = ONNX_INT64;
    for (int64_t r = 0; r < y->size; r++) {
        const double *v = x->data + r * E;
        int64_t best = 0;
        for (int64_t e = 1; e < E; e++)
            if (v[e] > v[best]) best = e;
        y->data[r] = labels[best];
    }
    return VEIL_OK;
}

veil_status ml_normalize(int mode, const ml_tensor *x, ml_tensor *y)
{
    veil_status st = ml_tensor_copy(y, x);
    if (st != VEIL_OK) return st;
    int64_t E = last_dim(x);
    for (int64_t r = 0; E > 0 && r < x->size / E; r++) {
        double *v = y->data + r * E, d = mode == ML_NORM_MAX ? -INFINITY : 0;
        for (int64_t e = 0; e < E; e++)
            d = mode == ML_NORM_MAX ? fmax(d, v[e]) : mode == ML_NORM_L1 ? d + fabs(v[e]) : d + v[e] * v[e];
        if (mode == ML_NORM_L2) d = sqrt(d);
        if (d != 0)
            for (int64_t e = 0; e < E; e++) v[e] /= d;
    }
    return VEIL_OK;
}

static const ml_attr *floats_attr(const ml_node *n, const char *name)
{
    const ml_attr *a = ml_attr_find(n, name);
    return a && a->type == ML_ATTR_FLOATS ? a : NULL;
}

const char *const ml_post_names[ML_POST_COUNT] = {"NONE", "SOFTMAX", "LOGISTIC", "SOFTMAX_ZERO"};
const char *const ml_norm_names[ML_NORM_COUNT] = {"MAX", "L1", "L2"};

int ml_name_index(const char *const *names, int n, const char *s)
{
    for (int i = 0; i < n; i++)
        if (strcmp(s, names[i]) == 0) return i;
    return -1;
}

static int norm_mode(const char *s) { return ml_name_index(ml_norm_names, ML_NORM_COUNT, s); }

static veil_status run_scaler(const ml_node *n, const ml_tensor *x, ml_tensor *y, char *err, size_t errlen)
{
    const ml_attr *off = floats_attr(n, "offset"), *sc = floats_attr(n, "scale");
    int64_t F = last_dim(x);
    size_t no = off ? off->n : 0, ns = sc ? sc->n : 0;
    if ((no != 0 && no != 1 && no != (size_t)F) || (ns != 0 && ns != 1 && ns != (size_t)F))
        return ml_errf(err, errlen, VEIL_ERR_MALFORMED, "node '%s': Scaler has %zu offsets and %zu scales for %lld features",
                       n->name, no, ns, (long long)F);
    veil_status st = ml_tensor_alloc(y, x->ndim, x->shape);
    if (st != VEIL_OK) return st;
    for (int64_t i = 0; i < x->size; i++) {
        int64_t f = F ? i % F : 0;
        double o = no == 0 ? 0 : off->floats[no == 1 ? 0 : f], s = ns == 0 ? 1 : sc->floats[ns == 1 ? 0 : f];
        y->data[i] = (x->data[i] - o) * s;
    }
    return VEIL_OK;
}

veil_status ml_run_onnx_ml(const ml_node *n, const ml_tensor *const *ins, ml_tensor *outs, char *err, size_t errlen)
{
    const ml_tensor *x = ins[0];
    switch (n->op) {
    case ML_OP_SCALER: return run_scaler(n, x, &outs[0], err, errlen);
    case ML_OP_NORMALIZER: {
        int m = norm_mode(ml_attr_string(n, "norm", "MAX"));
        if (m < 0) return ml_errf(err, errlen, VEIL_ERR_UNSUPPORTED, "node '%s': Normalizer norm '%s' (MAX, L1 or L2)", n->name,
                                  ml_attr_string(n, "norm", ""));
        return ml_normalize(m, x, &outs[0]);
    }
    case ML_OP_ZIPMAP: return ml_tensor_copy(&outs[0], x);
    case ML_OP_TREE_SCORES: {
        ml_trees t;
        veil_status st = ml_trees_parse(n, &t, err, errlen);
        if (st != VEIL_OK) return st;
        int64_t F = last_dim(x), rows = F ? x->size / F : 0, shape[VEIL_MAX_DIMS];
        memcpy(shape, x->shape, sizeof shape);
        shape[x->ndim ? x->ndim - 1 : 0] = t.ntargets;
        if (F < t.nfeatures) st = ml_errf(err, errlen, VEIL_ERR_MALFORMED, "node '%s': the trees read feature %lld of %lld",
                                          n->name, (long long)t.nfeatures - 1, (long long)F);
        else st = ml_tensor_alloc(&outs[0], x->ndim ? x->ndim : 1, shape);
        for (int64_t r = 0; st == VEIL_OK && r < rows; r++) ml_trees_eval(&t, x->data + r * F, outs[0].data + r * t.ntargets);
        ml_trees_free(&t);
        return st;
    }
    case ML_OP_SCORES_TRANSFORM: {
        const ml_attr *b = floats_attr(n, "base");
        veil_status st = ml_scores_transform((int)ml_attr_int(n, "mode", 0), b ? b->floats : NULL, b ? b->n : 0, x, &outs[0]);
        if (st == VEIL_ERR_MALFORMED) ml_errf(err, errlen, st, "node '%s': the scores do not match the base values", n->name);
        return st;
    }
    case ML_OP_SCORES_LABEL: {
        const ml_attr *l = floats_attr(n, "labels");
        veil_status st = l ? ml_scores_label(l->floats, l->n, x, &outs[0]) : VEIL_ERR_MALFORMED;
        if (st == VEIL_ERR_MALFORMED)
            ml_errf(err, errlen, st, "node '%s': the scores do not match the class labels", n->name);
        return st;
    }
    default:
        return ml_errf(err, errlen, VEIL_ERR_UNSUPPORTED, "node '%s': %s has no float kernel of its own", n->name,
                       ml_op_names[n->op]);
    }
}

/* ---- lowering at import ----------------------------------------------------------------------- */

static veil_status post_mode(const ml_node *n, int *mode, char *err, size_t errlen)
{
    const char *s = ml_attr_string(n, "post_transform", "NONE");
    if ((*mode = ml_name_index(ml_post_names, ML_POST_COUNT, s)) >= 0) return VEIL_OK;
    return ml_errf(err, errlen, VEIL_ERR_UNSUPPORTED, "node '%s': %s post_transform '%s' is not supported (NONE, SOFTMAX, "
                   "LOGISTIC, SOFTMAX_ZERO)", n->name, ml_op_names[n->op], s);
}

/* a node of `nattrs` empty attributes reading `in` and writing `out` */
static veil_status make_node(ml_node *m, ml_op op, const char *name, int nin, const int *in, int nout, const int *out,
                             int nattrs)
{
    memset(m, 0, sizeof *m);
    m->op = op;
    size_t nl = strlen(name);
    m->name = veil_malloc(nl + 1);
    m->in = veil_malloc(sizeof(int) * (size_t)(nin + 1));
    m->out = veil_malloc(sizeof(int) * (size_t)(nout + 1));
    m->attrs = veil_calloc((size_t)nattrs + 1, sizeof(ml_attr));
    if (!m->name || !m->in || !m->out || !m->attrs) {
        ml_node_free(m);
        return VEIL_ERR_NOMEM;
    }
    memcpy(m->name, name, nl + 1);
    m->nin = nin, m->nout = nout;
    memcpy(m->in, in, sizeof(int) * (size_t)nin);
    memcpy(m->out, out, sizeof(int) * (size_t)nout);
    return VEIL_OK;
}

static veil_status set_attr_int(ml_node *m, int k, const char *name, int64_t v)
{
    ml_attr *a = &m->attrs[k];
    size_t nl = strlen(name);
    if (!(a->name = veil_malloc(nl + 1))) return VEIL_ERR_NOMEM;
    m->nattrs = k + 1; /* from here ml_node_free frees it */
    memcpy(a->name, name, nl + 1);
    a->type = ML_ATTR_INT;
    a->i = v;
    return VEIL_OK;
}

static veil_status set_attr_floats(ml_node *m, int k, const char *name, const double *v, size_t n)
{
    ml_attr *a = &m->attrs[k];
    size_t nl = strlen(name);
    if (!(a->name = veil_malloc(nl + 1))) return VEIL_ERR_NOMEM;
    m->nattrs = k + 1; /* from here ml_node_free frees what is set */
    if (!(a->floats = veil_malloc(sizeof(double) * (n + 1)))) return VEIL_ERR_NOMEM;
    memcpy(a->name, name, nl + 1);
    a->type = ML_ATTR_FLOATS;
    a->n = n;
    if (n) memcpy(a->floats, v, sizeof(double) * n);
    m->nattrs = k + 1;
    return VEIL_OK;
}

/* the value is read by a node or is a graph output */
static int is_read(const ml_graph *g, int v)
{
    if (v < 0) return 0;
    for (int j = 0; j < g->noutputs; j++)
        if (g->outputs[j] == v) return 1;
    for (int k = 0; k < g->nnodes; k++)
        for (int i = 0; i < g->nodes[k].nin; i++)
            if (g->nodes[k].in[i] == v) return 1;
    return 0;
}

/* Rewrites node k (a tree ensemble) into TreeScores → S (the node's attributes move with it), then
 * ScoresTransform(S) → probabilities (scores) and, for a classifier, ScoresLabel → label. */
static veil_status lower_trees(ml_graph *g, int k, int *added, char *err, size_t errlen)
{
    ml_node *n = &g->nodes[k];
    int cls = n->op == ML_OP_TREE_ENSEMBLE_CLASSIFIER;
    *added = 0;
    if (n->nin != 1 || n->in[0] < 0 || n->nout != (cls ? 2 : 1))
        return ml_errf(err, errlen, VEIL_ERR_MALFORMED, "node '%s': %s reads one input and writes %d outputs", n->name,
                       ml_op_names[n->op], cls ? 2 : 1);
    ml_trees t;
    veil_status st = ml_trees_parse(n, &t, err, errlen);
    if (st != VEIL_OK) return st;
    char nm[160], base[96];
    snprintf(base, sizeof base, "%s", n->name);
    int y = n->out[0], z = cls ? n->out[1] : n->out[0];
    int need_tr = cls || t.base;
    int sv = z;
    if (need_tr) {
        snprintf(nm, sizeof nm, "%s.scores", base);
        if ((sv = ml_graph_add_value(g, nm)) < 0) st = VEIL_ERR_NOMEM;
    }
    int pv = z; /* the transformed scores; a value of its own when only the label is read */
    if (st == VEIL_OK && cls && !is_read(g, z)) {
        snprintf(nm, sizeof nm, "%s.probabilities", base);
        if ((pv = ml_graph_add_value(g, nm)) < 0) st = VEIL_ERR_NOMEM;
    }
    n = &g->nodes[k];
    /* TreeScores takes the node's place and attributes */
    if (st == VEIL_OK) {
        n->op = ML_OP_TREE_SCORES;
        n->out[0] = sv;
        n->nout = 1;
        g->values[sv].producer = k;
    }
    if (st == VEIL_OK && need_tr) {
        ml_node tr;
        snprintf(nm, sizeof nm, "%s.transform", base);
        if ((st = make_node(&tr, ML_OP_SCORES_TRANSFORM, nm, 1, &sv, 1, &pv, 2)) == VEIL_OK) {
            st = set_attr_int(&tr, 0, "mode", t.post + 16 * t.binary);
            if (st == VEIL_OK && t.base) st = set_attr_floats(&tr, 1, "base", t.base, (size_t)t.ntargets);
            if (st == VEIL_OK) st = ml_graph_insert_node(g, k + 1 + *added, &tr);
            else ml_node_free(&tr);
            if (st == VEIL_OK) ++*added;
        }
    }
    if (st == VEIL_OK && cls && is_read(g, y)) {
        ml_node lab;
        snprintf(nm, sizeof nm, "%s.label", base);
        if ((st = make_node(&lab, ML_OP_SCORES_LABEL, nm, 1, &pv, 1, &y, 1)) == VEIL_OK) {
            st = set_attr_floats(&lab, 0, "labels", t.labels, (size_t)t.nlabels);
            if (st == VEIL_OK) st = ml_graph_insert_node(g, k + 1 + *added, &lab);
            else ml_node_free(&lab);
            if (st == VEIL_OK) ++*added;
        }
    }
    ml_trees_free(&t);
    return st;
}

/* Rewrites node k (LinearClassifier / LinearRegressor) in place into Gemm → scores, and inserts
 * its client-side parts after it; *added counts the inserted nodes. */
static veil_status lower_linear(ml_graph *g, int k, int *added, char *err, size_t errlen)
{
    ml_node *n = &g->nodes[k];
    int cls = n->op == ML_OP_LINEAR_CLASSIFIER;
    const ml_attr *coef = floats_attr(n, "coefficients"), *icp = floats_attr(n, "intercepts");
    const ml_attr *li = ml_attr_find(n, "classlabels_ints");
    int mode = ML_POST_NONE;
    veil_status st = post_mode(n, &mode, err, errlen);
    if (st != VEIL_OK) return st;
    if (!coef || coef->n == 0)
        return ml_errf(err, errlen, VEIL_ERR_MALFORMED, "node '%s': %s has no coefficients", n->name, ml_op_names[n->op]);
    if (n->nin != 1 || n->in[0] < 0)
        return ml_errf(err, errlen, VEIL_ERR_MALFORMED, "node '%s': %s reads one input", n->name, ml_op_names[n->op]);
    int64_t E;
    if (cls) {
        if (ml_attr_find(n, "classlabels_strings"))
            return ml_errf(err, errlen, VEIL_ERR_UNSUPPORTED,
                           "node '%s': LinearClassifier classlabels_strings (string class labels) are not supported; "
                           "train with integer labels", n->name);
        if (!li || li->type != ML_ATTR_INTS || li->n == 0)
            return ml_errf(err, errlen, VEIL_ERR_MALFORMED, "node '%s': LinearClassifier has no classlabels_ints", n->name);
        E = (int64_t)li->n;
        if (n->nout < 1 || n->nout > 2)
            return ml_errf(err, errlen, VEIL_ERR_MALFORMED, "node '%s': LinearClassifier writes a label and scores", n->name);
        if (icp && icp->n == 1 && E == 2)
            return ml_errf(err, errlen, VEIL_ERR_UNSUPPORTED,
                           "node '%s': LinearClassifier with one score for two classes is not supported", n->name);
    } else {
        /* the spec applies it; onnxruntime ignores every transform but PROBIT: neither is safe */
        if (mode != ML_POST_NONE)
            return ml_errf(err, errlen, VEIL_ERR_UNSUPPORTED, "node '%s': LinearRegressor post_transform '%s' is not "
                           "supported (NONE only)", n->name, ml_attr_string(n, "post_transform", ""));
        E = ml_attr_int(n, "targets", 1);
        if (n->nout != 1)
            return ml_errf(err, errlen, VEIL_ERR_MALFORMED, "node '%s': LinearRegressor writes one output", n->name);
    }
    if (E < 1 || coef->n % (size_t)E != 0 || (icp && icp->n != (size_t)E))
        return ml_errf(err, errlen, VEIL_ERR_MALFORMED, "node '%s': %s has %zu coefficients and %zu intercepts for %lld %s",
                       n->name, ml_op_names[n->op], coef->n, icp ? icp->n : 0, (long long)E, cls ? "classes" : "targets");
    int64_t F = (int64_t)coef->n / E;
    ml_tensor W, B = {0};
    char nm[160];
    if (ml_tensor_alloc(&W, 2, (int64_t[]){E, F}) != VEIL_OK) return VEIL_ERR_NOMEM;
    memcpy(W.data, coef->floats, sizeof(double) * coef->n);
    snprintf(nm, sizeof nm, "%s.coefficients", n->name);
    int wv = ml_graph_add_const(g, nm, &W), bv = -1;
    if (wv < 0) return VEIL_ERR_NOMEM;
    if (icp) {
        if (ml_tensor_alloc(&B, 1, (int64_t[]){E}) != VEIL_OK) return VEIL_ERR_NOMEM;
        memcpy(B.data, icp->floats, sizeof(double) * icp->n);
        snprintf(nm, sizeof nm, "%s.intercepts", n->name);
        if ((bv = ml_graph_add_const(g, nm, &B)) < 0) return VEIL_ERR_NOMEM;
    }
    /* the scores: a value of its own unless a regressor's output is the Gemm's */
    int needs_post = cls || mode != ML_POST_NONE;
    int sv = n->out[0];
    if (needs_post) {
        snprintf(nm, sizeof nm, "%s.scores", n->name);
        if ((sv = ml_graph_add_value(g, nm)) < 0) return VEIL_ERR_NOMEM;
        n = &g->nodes[k];
    }
    int outs[2] = {n->out[0], n->nout > 1 ? n->out[1] : -1};
    double labels[4096];
    if (cls && li->n > sizeof labels / sizeof *labels)
        return ml_errf(err, errlen, VEIL_ERR_UNSUPPORTED, "node '%s': more than %zu classes", n->name,
                       sizeof labels / sizeof *labels);
    for (size_t i = 0; cls && i < li->n; i++) labels[i] = (double)li->ints[i];
    char base[96];
    snprintf(base, sizeof base, "%s", n->name);
    ml_node gemm;
    int gin[3] = {n->in[0], wv, bv};
    if ((st = make_node(&gemm, ML_OP_GEMM, base, bv >= 0 ? 3 : 2, gin, 1, &sv, 1)) != VEIL_OK) return st;
    if ((st = set_attr_int(&gemm, 0, "transB", 1)) != VEIL_OK) {
        ml_node_free(&gemm);
        return st;
    }
    ml_node_free(&g->nodes[k]);
    g->nodes[k] = gemm;
    g->values[sv].producer = k;
    *added = 0;
    if (cls && is_read(g, outs[0])) {
        ml_node lab;
        snprintf(nm, sizeof nm, "%s.label", base);
        if ((st = make_node(&lab, ML_OP_SCORES_LABEL, nm, 1, &sv, 1, &outs[0], 1)) != VEIL_OK) return st;
        if ((st = set_attr_floats(&lab, 0, "labels", labels, (size_t)E)) != VEIL_OK ||
            (st = ml_graph_insert_node(g, k + 1 + *added, &lab)) != VEIL_OK) {
            ml_node_free(&lab);
            return st;
        }
        ++*added;
    }
    int zout = cls ? outs[1] : outs[0];
    if (needs_post && is_read(g, zout)) {
        ml_node tr;
        snprintf(nm, sizeof nm, "%s.transform", base);
        if ((st = make_node(&tr, ML_OP_SCORES_TRANSFORM, nm, 1, &sv, 1, &zout, 1)) != VEIL_OK) return st;
        if ((st = set_attr_int(&tr, 0, "mode", mode)) != VEIL_OK ||
            (st = ml_graph_insert_node(g, k + 1 + *added, &tr)) != VEIL_OK) {
            ml_node_free(&tr);
            return st;
        }
        ++*added;
    }
    return VEIL_OK;
}

veil_status ml_onnx_ml_lower(ml_graph *g, char *err, size_t errlen)
{
    veil_status st = VEIL_OK;
    for (int k = 0; k < g->nnodes && st == VEIL_OK; k++) {
        const ml_node *n = &g->nodes[k];
        switch (n->op) {
        case ML_OP_LINEAR_CLASSIFIER: case ML_OP_LINEAR_REGRESSOR: {
            int added = 0;
            st = lower_linear(g, k, &added, err, errlen);
            k += added;
            break;
        }
        case ML_OP_TREE_ENSEMBLE_CLASSIFIER: case ML_OP_TREE_ENSEMBLE_REGRESSOR: {
            int added = 0;
            st = lower_trees(g, k, &added, err, errlen);
            k += added;
            break;
        }
        case ML_OP_NORMALIZER:
            if (norm_mode(ml_attr_string(n, "norm", "MAX")) < 0)
                return ml_errf(err, errlen, VEIL_ERR_UNSUPPORTED, "node '%s': Normalizer norm '%s' is not supported "
                               "(MAX, L1, L2)", n->name, ml_attr_string(n, "norm", ""));
            break;
        case ML_OP_ZIPMAP:
            if (ml_attr_find(n, "classlabels_strings"))
                return ml_errf(err, errlen, VEIL_ERR_UNSUPPORTED,
                               "node '%s': ZipMap classlabels_strings (string class labels) are not supported", n->name);
            break;
        default: break;
        }
    }
    if (st == VEIL_ERR_NOMEM) ml_errf(err, errlen, st, "out of memory lowering the ONNX-ML operators");
    return st;
}
