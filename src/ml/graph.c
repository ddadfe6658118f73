/* The imported graph's data: operator names, float tensors, node attributes, and the graph edits
 * the ONNX-ML lowering makes (values, constants, nodes). No ONNX parsing here (onnx.c),
 * no kernels (ops.c): both build on this file. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ml.h"

const char *const ml_op_names[ML_OP_COUNT] = {
    "Gemm", "MatMul", "Add", "Sub", "Mul", "Div", "Neg", "Relu", "Sigmoid", "Tanh", "LeakyRelu", "Elu", "Selu",
    "Softplus", "HardSigmoid", "HardSwish", "Erf", "Clip", "Abs", "Exp", "Log", "Pow", "Sqrt", "Conv",
    "AveragePool", "GlobalAveragePool", "MaxPool", "BatchNormalization", "Pad", "Flatten", "Reshape", "Squeeze",
    "Unsqueeze", "Transpose", "Concat", "Identity", "Constant", "Dropout", "Quant", "QuantizeLinear",
    "DequantizeLinear", "Softmax", "LogSoftmax", "ArgMax", "Shape", "Gather", "Cast",
    "LinearClassifier", "LinearRegressor", "Scaler", "Normalizer", "ZipMap", "TreeEnsembleClassifier",
    "TreeEnsembleRegressor", "ScoresLabel", "ScoresTransform", "TreeScores",
};
_Static_assert(sizeof ml_op_names / sizeof *ml_op_names == ML_OP_COUNT, "one name per op");

veil_status ml_tensor_alloc(ml_tensor *t, int ndim, const int64_t *shape)
{
    memset(t, 0, sizeof *t);
    if (ndim < 0 || ndim > VEIL_MAX_DIMS) return VEIL_ERR_UNSUPPORTED;
    int64_t size = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0 || (shape[i] > 0 && size > ML_MAX_ELEMS / shape[i])) return VEIL_ERR_MALFORMED;
        size *= shape[i];
        t->shape[i] = shape[i];
    }
    t->ndim = ndim;
    t->size = size;
    t->data = veil_calloc((size_t)size + 1, sizeof(double));
    if (!t->data) {
        memset(t, 0, sizeof *t);
        return VEIL_ERR_NOMEM;
    }
    return VEIL_OK;
}

veil_status ml_tensor_copy(ml_tensor *dst, const ml_tensor *src)
{
    veil_status st = ml_tensor_alloc(dst, src->ndim, src->shape);
    if (st == VEIL_OK) memcpy(dst->data, src->data, sizeof(double) * (size_t)src->size);
    return st;
}

void ml_tensor_free(ml_tensor *t)
{
    if (!t) return;
    veil_free(t->data);
    memset(t, 0, sizeof *t);
}

int ml_same_shape(const ml_tensor *a, const ml_tensor *b)
{
    if (a->ndim != b->ndim) return 0;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i]) return 0;
    return 1;
}

char *ml_strdup(const char *s)
{
    size_t n = strlen(s ? s : "");
    char *d = veil_malloc(n + 1);
    if (d) memcpy(d, s ? s : "", n + 1);
    return d;
}

int ml_graph_find_value(const ml_graph *g, const char *name)
{
    if (!name) name = "";
    for (int i = g->nvalues - 1; i >= 0; i--)
        if (strcmp(g->values[i].name, name) == 0) return i;
    return -1;
}

int ml_graph_add_value(ml_graph *g, const char *name)
{
    if (g->nvalues == g->values_cap) {
        int nc = g->values_cap ? g->values_cap * 2 : 64;
        ml_value *nv = veil_realloc(g->values, sizeof(ml_value) * (size_t)g->nvalues, sizeof(ml_value) * (size_t)nc);
        if (!nv) return -1;
        g->values = nv;
        g->values_cap = nc;
    }
    ml_value *v = &g->values[g->nvalues];
    memset(v, 0, sizeof *v);
    v->producer = -1;
    if (!(v->name = ml_strdup(name))) return -1;
    return g->nvalues++;
}

const ml_attr *ml_attr_find(const ml_node *n, const char *name)
{
    for (int i = 0; i < n->nattrs; i++)
        if (strcmp(n->attrs[i].name, name) == 0) return &n->attrs[i];
    return NULL;
}

int64_t ml_attr_int(const ml_node *n, const char *name, int64_t def)
{
    const ml_attr *a = ml_attr_find(n, name);
    return a && a->type == ML_ATTR_INT ? a->i : def;
}

double ml_attr_float(const ml_node *n, const char *name, double def)
{
    const ml_attr *a = ml_attr_find(n, name);
    if (!a) return def;
    return a->type == ML_ATTR_FLOAT ? a->f : a->type == ML_ATTR_INT ? (double)a->i : def;
}

const char *ml_attr_string(const ml_node *n, const char *name, const char *def)
{
    const ml_attr *a = ml_attr_find(n, name);
    return a && a->type == ML_ATTR_STRING ? a->s : def;
}

void ml_node_free(ml_node *n)
{
    veil_free(n->name);
    veil_free(n->in);
    veil_free(n->out);
    for (int i = 0; i < n->nattrs; i++) {
        ml_attr *a = &n->attrs[i];
        veil_free(a->name);
        veil_free(a->ints);
        veil_free(a->floats);
        veil_free(a->s);
        for (size_t k = 0; a->strs && k < a->n; k++) veil_free(a->strs[k]);
        veil_free(a->strs);
        ml_tensor_free(&a->t);
    }
    veil_free(n->attrs);
    memset(n, 0, sizeof *n);
}

int ml_graph_add_const(ml_graph *g, const char *name, ml_tensor *t)
{
    int v = ml_graph_add_value(g, name);
    if (v < 0) {
        ml_tensor_free(t);
        return -1;
    }
    g->values[v].is_const = 1;
    g->values[v].value = *t;
    memset(t, 0, sizeof *t);
    return v;
}

veil_status ml_graph_insert_node(ml_graph *g, int at, ml_node *n)
{
    ml_node *nn = veil_malloc(sizeof(ml_node) * ((size_t)g->nnodes + 2));
    if (!nn) {
        ml_node_free(n);
        memset(n, 0, sizeof *n); /* freed: a caller's ml_node_free after the failure is a no-op */
        return VEIL_ERR_NOMEM;
    }
    if (at) memcpy(nn, g->nodes, sizeof(ml_node) * (size_t)at);
    nn[at] = *n;
    if (g->nnodes > at) memcpy(nn + at + 1, g->nodes + at, sizeof(ml_node) * (size_t)(g->nnodes - at));
    veil_free(g->nodes);
    g->nodes = nn;
    g->nnodes++;
    for (int i = 0; i < g->nvalues; i++)
        if (g->values[i].producer >= at) g->values[i].producer++;
    for (int j = 0; j < n->nout; j++) g->values[n->out[j]].producer = at;
    memset(n, 0, sizeof *n);
    return VEIL_OK;
}

void ml_graph_free(ml_graph *g)
{
    if (!g) return;
    for (int i = 0; i < g->nvalues; i++) {
        veil_free(g->values[i].name);
        ml_tensor_free(&g->values[i].value);
    }
    veil_free(g->values);
    for (int i = 0; i < g->nnodes; i++) ml_node_free(&g->nodes[i]);
    veil_free(g->nodes);
    veil_free(g->inputs);
    veil_free(g->outputs);
    veil_free(g->input_shapes);
    veil_free(g);
}

veil_status ml_errf(char *err, size_t errlen, veil_status st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return st;
}
