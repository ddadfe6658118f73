/* Graph builders and shape rules (NumPy broadcasting, matmul, convolution). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/arena.h"
#include "ir.h"

const char *const veil_op_names[VEIL_OP_COUNT] = {
    [VEIL_OP_INPUT] = "input",       [VEIL_OP_CONST] = "constant",       [VEIL_OP_ADD] = "add",
    [VEIL_OP_SUB] = "subtract",      [VEIL_OP_NEG] = "negative",         [VEIL_OP_MUL] = "multiply",
    [VEIL_OP_MATMUL] = "matmul",     [VEIL_OP_DOT] = "dot",              [VEIL_OP_SUM] = "sum",
    [VEIL_OP_RESHAPE] = "reshape",   [VEIL_OP_FLATTEN] = "flatten",      [VEIL_OP_TRANSPOSE] = "transpose",
    [VEIL_OP_CONCAT] = "concatenate", [VEIL_OP_SLICE] = "slice",         [VEIL_OP_CONV2D] = "conv2d",
    [VEIL_OP_AVGPOOL] = "avg_pool2d", [VEIL_OP_MAXPOOL] = "maxpool2d",   [VEIL_OP_TABLE] = "tlu",
    [VEIL_OP_APPLY] = "apply",       [VEIL_OP_RELU] = "relu",            [VEIL_OP_ABS] = "absolute",
    [VEIL_OP_CLIP] = "clip",         [VEIL_OP_LT] = "less",              [VEIL_OP_LE] = "less_equal",
    [VEIL_OP_GT] = "greater",        [VEIL_OP_GE] = "greater_equal",     [VEIL_OP_EQ] = "equal",
    [VEIL_OP_NE] = "not_equal",      [VEIL_OP_MIN] = "minimum",          [VEIL_OP_MAX] = "maximum",
    [VEIL_OP_ROUND] = "round_bit_pattern", [VEIL_OP_TRUNC] = "truncate_bit_pattern",
};
_Static_assert(sizeof(veil_op_names) / sizeof(veil_op_names[0]) == VEIL_OP_COUNT, "name every op");

veil_status veil_graph_new(veil_graph **out)
{
    if (!out) return VEIL_ERR_INVALID_ARG;
    *out = NULL;
    veil_graph *g = veil_calloc(1, sizeof *g);
    if (!g || !(g->arena = veil_arena_new())) {
        veil_free(g);
        return VEIL_ERR_NOMEM;
    }
    *out = g;
    return VEIL_OK;
}

void veil_graph_free(veil_graph *g)
{
    if (!g) return;
    veil_free(g->nodes);
    veil_free(g->inputs);
    veil_free(g->outputs);
    veil_arena_free(g->arena);
    veil_free(g);
}

veil_status veil_graph_status(const veil_graph *g) { return g ? g->status : VEIL_ERR_INVALID_ARG; }
const char *veil_graph_last_error(const veil_graph *g) { return g ? g->error : "no graph"; }
size_t veil_graph_node_count(const veil_graph *g) { return g ? g->count : 0; }
size_t veil_graph_input_count(const veil_graph *g) { return g ? g->ninputs : 0; }
int veil_graph_input_node(const veil_graph *g, size_t i) { return g && i < g->ninputs ? g->inputs[i] : -1; }
size_t veil_graph_output_count(const veil_graph *g) { return g ? g->noutputs : 0; }
int veil_graph_output_node(const veil_graph *g, size_t j) { return g && j < g->noutputs ? g->outputs[j] : -1; }

/* Records the first error; always returns -1 so builders can `return fail(...)`. */
static int fail(veil_graph *g, veil_status s, const char *fmt, ...)
{
    if (g->status == VEIL_OK) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(g->error, sizeof g->error, fmt, ap);
        va_end(ap);
        g->status = s;
    }
    return -1;
}

static int valid(veil_graph *g, int id) { return id >= 0 && (size_t)id < g->count; }

/* A new node with operands checked; NULL after recording an error. */
static veil_node_rec *new_node(veil_graph *g, veil_op op, int nin, const int *in)
{
    if (g->status != VEIL_OK) return NULL;
    for (int i = 0; i < nin; i++)
        if (!valid(g, in[i])) {
            fail(g, VEIL_ERR_GRAPH, "%s: operand %d is not a node of this graph", veil_op_names[op], in[i]);
            return NULL;
        }
    if (g->count == g->cap) {
        size_t cap = g->cap ? 2 * g->cap : 64;
        veil_node_rec *n = veil_malloc(cap * sizeof *n);
        if (!n) {
            fail(g, VEIL_ERR_NOMEM, "out of memory");
            return NULL;
        }
        if (g->count) memcpy(n, g->nodes, g->count * sizeof *n);
        veil_free(g->nodes);
        g->nodes = n;
        g->cap = cap;
    }
    int *ins = nin ? veil_arena_alloc(g->arena, sizeof(int) * (size_t)nin) : NULL;
    if (nin && !ins) {
        fail(g, VEIL_ERR_NOMEM, "out of memory");
        return NULL;
    }
    veil_node_rec *n = &g->nodes[g->count];
    memset(n, 0, sizeof *n);
    n->op = op;
    n->nin = nin;
    n->in = ins;
    for (int i = 0; i < nin; i++) {
        ins[i] = in[i];
        g->nodes[in[i]].users++;
        if (g->nodes[in[i]].enc) n->enc = 1;
    }
    n->size = 1;
    return n;
}

static int commit(veil_graph *g) { return (int)g->count++; }

static int set_shape(veil_graph *g, veil_node_rec *n, int ndim, const int64_t *shape)
{
    if (ndim < 0 || ndim > VEIL_MAX_DIMS || (ndim && !shape))
        return fail(g, VEIL_ERR_GRAPH, "%s: %d dimensions (at most %d)", veil_op_names[n->op], ndim, VEIL_MAX_DIMS);
    n->ndim = ndim;
    n->size = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] <= 0 || shape[i] > ((int64_t)1 << 32) || n->size > ((int64_t)1 << 32) / shape[i])
            return fail(g, VEIL_ERR_GRAPH, "%s: dimension %d of size %lld is out of range", veil_op_names[n->op], i,
                        (long long)shape[i]);
        n->shape[i] = shape[i];
        n->size *= shape[i];
    }
    return 0;
}

static void drop_node(veil_graph *g, veil_node_rec *n)
{
    for (int i = 0; i < n->nin; i++) g->nodes[n->in[i]].users--;
}

/* Finishes a node: on error undoes operand use counts. */
static int finish(veil_graph *g, veil_node_rec *n, int rc)
{
    if (rc < 0 || g->status != VEIL_OK) {
        drop_node(g, n);
        return -1;
    }
    return commit(g);
}

static int64_t *copy_i64(veil_graph *g, const int64_t *v, size_t n)
{
    int64_t *d = veil_arena_alloc(g->arena, sizeof(int64_t) * (n ? n : 1));
    if (!d) return NULL;
    if (n) memcpy(d, v, sizeof(int64_t) * n);
    return d;
}

static char *copy_str(veil_graph *g, const char *s)
{
    size_t len = strlen(s);
    char *d = veil_arena_alloc(g->arena, len + 1);
    if (d) memcpy(d, s, len + 1);
    return d;
}

int veil_graph_input(veil_graph *g, const char *name, veil_visibility vis, int ndim, const int64_t *shape)
{
    if (!g) return -1;
    if (!name || !*name || strlen(name) > 64) return fail(g, VEIL_ERR_GRAPH, "input: a name of 1 to 64 characters is required");
    for (size_t i = 0; i < g->ninputs; i++)
        if (strcmp(g->nodes[g->inputs[i]].name, name) == 0)
            return fail(g, VEIL_ERR_GRAPH, "input: the name '%s' is already used", name);
    veil_node_rec *n = new_node(g, VEIL_OP_INPUT, 0, NULL);
    if (!n) return -1;
    n->enc = vis == VEIL_ENCRYPTED;
    if (set_shape(g, n, ndim, shape) < 0) return -1;
    int *ins = veil_malloc(sizeof(int) * (g->ninputs + 1));
    if (!ins || !(n->name = copy_str(g, name))) {
        veil_free(ins);
        return fail(g, VEIL_ERR_NOMEM, "out of memory");
    }
    if (g->ninputs) memcpy(ins, g->inputs, sizeof(int) * g->ninputs);
    ins[g->ninputs] = (int)g->count;
    veil_free(g->inputs);
    g->inputs = ins;
    g->ninputs++;
    return commit(g);
}

int veil_graph_constant(veil_graph *g, int ndim, const int64_t *shape, const int64_t *values)
{
    if (!g) return -1;
    veil_node_rec *n = new_node(g, VEIL_OP_CONST, 0, NULL);
    if (!n) return -1;
    if (set_shape(g, n, ndim, shape) < 0) return -1;
    if (!values) return fail(g, VEIL_ERR_GRAPH, "constant: no values");
    if (!(n->data = copy_i64(g, values, (size_t)n->size))) return fail(g, VEIL_ERR_NOMEM, "out of memory");
    n->ndata = (size_t)n->size;
    n->lo = n->hi = values[0];
    for (int64_t i = 1; i < n->size; i++) {
        if (values[i] < n->lo) n->lo = values[i];
        if (values[i] > n->hi) n->hi = values[i];
    }
    n->has_bounds = 1;
    return commit(g);
}

int veil_graph_scalar(veil_graph *g, int64_t value) { return veil_graph_constant(g, 0, NULL, &value); }

veil_status veil_graph_output(veil_graph *g, int node)
{
    if (!g) return VEIL_ERR_INVALID_ARG;
    if (g->status != VEIL_OK) return g->status;
    if (!valid(g, node)) {
        fail(g, VEIL_ERR_GRAPH, "output: %d is not a node of this graph", node);
        return g->status;
    }
    if (g->noutputs == g->cap_out) {
        size_t cap = g->cap_out ? 2 * g->cap_out : 4;
        int *o = veil_malloc(sizeof(int) * cap);
        if (!o) {
            fail(g, VEIL_ERR_NOMEM, "out of memory");
            return g->status;
        }
        if (g->noutputs) memcpy(o, g->outputs, sizeof(int) * g->noutputs);
        veil_free(g->outputs);
        g->outputs = o;
        g->cap_out = cap;
    }
    g->outputs[g->noutputs++] = node;
    g->nodes[node].is_output = 1;
    return VEIL_OK;
}

/* ---- shapes -------------------------------------------------------------------------------- */
static void shape_str(const veil_node_rec *n, char *buf, size_t cap)
{
    size_t o = (size_t)snprintf(buf, cap, "(");
    for (int i = 0; i < n->ndim && o < cap; i++)
        o += (size_t)snprintf(buf + o, cap - o, i ? ", %lld" : "%lld", (long long)n->shape[i]);
    if (o < cap) snprintf(buf + o, cap - o, n->ndim == 1 ? ",)" : ")");
}

static int broadcast(veil_graph *g, veil_node_rec *n)
{
    const veil_node_rec *a = &g->nodes[n->in[0]], *b = &g->nodes[n->in[1]];
    int nd = a->ndim > b->ndim ? a->ndim : b->ndim;
    int64_t shape[VEIL_MAX_DIMS];
    for (int i = 0; i < nd; i++) {
        int ia = i - (nd - a->ndim), ib = i - (nd - b->ndim);
        int64_t da = ia >= 0 ? a->shape[ia] : 1, db = ib >= 0 ? b->shape[ib] : 1;
        if (da != db && da != 1 && db != 1) {
            char sa[128], sb[128];
            shape_str(a, sa, sizeof sa);
            shape_str(b, sb, sizeof sb);
            return fail(g, VEIL_ERR_GRAPH, "%s: shapes %s and %s cannot be broadcast together", veil_op_names[n->op], sa,
                        sb);
        }
        shape[i] = da > db ? da : db;
    }
    return set_shape(g, n, nd, shape);
}

static int binary(veil_graph *g, veil_op op, int a, int b)
{
    if (!g) return -1;
    int in[2] = {a, b};
    veil_node_rec *n = new_node(g, op, 2, in);
    if (!n) return -1;
    return finish(g, n, broadcast(g, n));
}

int veil_graph_add(veil_graph *g, int a, int b) { return binary(g, VEIL_OP_ADD, a, b); }
int veil_graph_sub(veil_graph *g, int a, int b) { return binary(g, VEIL_OP_SUB, a, b); }
int veil_graph_multiply(veil_graph *g, int a, int b) { return binary(g, VEIL_OP_MUL, a, b); }
int veil_graph_less(veil_graph *g, int a, int b) { return binary(g, VEIL_OP_LT, a, b); }
int veil_graph_less_equal(veil_graph *g, int a, int b) { return binary(g, VEIL_OP_LE, a, b); }
int veil_graph_greater(veil_graph *g, int a, int b) { return binary(g, VEIL_OP_GT, a, b); }
int veil_graph_greater_equal(veil_graph *g, int a, int b) { return binary(g, VEIL_OP_GE, a, b); }
int veil_graph_equal(veil_graph *g, int a, int b) { return binary(g, VEIL_OP_EQ, a, b); }
int veil_graph_not_equal(veil_graph *g, int a, int b) { return binary(g, VEIL_OP_NE, a, b); }
int veil_graph_minimum(veil_graph *g, int a, int b) { return binary(g, VEIL_OP_MIN, a, b); }
int veil_graph_maximum(veil_graph *g, int a, int b) { return binary(g, VEIL_OP_MAX, a, b); }

static int unary(veil_graph *g, veil_op op, int x, int64_t a0, int64_t a1)
{
    if (!g) return -1;
    veil_node_rec *n = new_node(g, op, 1, &x);
    if (!n) return -1;
    const veil_node_rec *s = &g->nodes[x];
    n->attr[0] = a0;
    n->attr[1] = a1;
    return finish(g, n, set_shape(g, n, s->ndim, s->shape));
}

int veil_graph_negate(veil_graph *g, int a) { return unary(g, VEIL_OP_NEG, a, 0, 0); }
int veil_graph_relu(veil_graph *g, int x) { return unary(g, VEIL_OP_RELU, x, 0, 0); }
int veil_graph_abs(veil_graph *g, int x) { return unary(g, VEIL_OP_ABS, x, 0, 0); }

int veil_graph_clip(veil_graph *g, int x, int64_t lo, int64_t hi)
{
    if (g && lo > hi) return fail(g, VEIL_ERR_GRAPH, "clip: lower bound %lld above upper bound %lld", (long long)lo, (long long)hi);
    return unary(g, VEIL_OP_CLIP, x, lo, hi);
}

int veil_graph_round_bit_pattern(veil_graph *g, int x, unsigned lsbs)
{
    if (g && (lsbs < 1 || lsbs > 62)) return fail(g, VEIL_ERR_GRAPH, "round_bit_pattern: lsbs_to_remove must be in [1, 62]");
    return unary(g, VEIL_OP_ROUND, x, lsbs, 0);
}

int veil_graph_round_bit_pattern_approx(veil_graph *g, int x, unsigned lsbs)
{
    if (g && (lsbs < 1 || lsbs > 62)) return fail(g, VEIL_ERR_GRAPH, "round_bit_pattern: lsbs_to_remove must be in [1, 62]");
    return unary(g, VEIL_OP_ROUND, x, lsbs, 1);
}

int veil_graph_truncate_bit_pattern(veil_graph *g, int x, unsigned lsbs)
{
    if (g && (lsbs < 1 || lsbs > 62)) return fail(g, VEIL_ERR_GRAPH, "truncate_bit_pattern: lsbs_to_remove must be in [1, 62]");
    return unary(g, VEIL_OP_TRUNC, x, lsbs, 0);
}

int veil_graph_table(veil_graph *g, int x, size_t len, const int64_t *table)
{
    if (!g) return -1;
    if (!table || len == 0 || len > ((size_t)1 << 24)) return fail(g, VEIL_ERR_GRAPH, "tlu: a table of 1 to 2^24 entries is required");
    int id = unary(g, VEIL_OP_TABLE, x, 0, 0);
    if (id < 0) return -1;
    veil_node_rec *n = &g->nodes[id];
    if (!(n->data = copy_i64(g, table, len))) return fail(g, VEIL_ERR_NOMEM, "out of memory");
    n->ndata = len;
    return id;
}

int veil_graph_apply(veil_graph *g, int x, veil_unary_fn fn, void *ctx, const char *name)
{
    if (!g) return -1;
    if (!fn) return fail(g, VEIL_ERR_GRAPH, "apply: no function");
    int id = unary(g, VEIL_OP_APPLY, x, 0, 0);
    if (id < 0) return -1;
    veil_node_rec *n = &g->nodes[id];
    n->fn = fn;
    n->ctx = ctx;
    if (!(n->name = copy_str(g, name && *name ? name : "apply"))) return fail(g, VEIL_ERR_NOMEM, "out of memory");
    return id;
}

/* ---- linear algebra -------------------------------------------------------------------------- */
static int matmul_like(veil_graph *g, veil_op op, int a, int b)
{
    if (!g) return -1;
    int in[2] = {a, b};
    veil_node_rec *n = new_node(g, op, 2, in);
    if (!n) return -1;
    const veil_node_rec *x = &g->nodes[a], *y = &g->nodes[b];
    char sa[128], sb[128];
    shape_str(x, sa, sizeof sa);
    shape_str(y, sb, sizeof sb);
    int rc;
    if (op == VEIL_OP_DOT && (x->ndim != 1 || y->ndim != 1)) {
        rc = fail(g, VEIL_ERR_GRAPH, "dot: 1-D operands are required, got %s and %s", sa, sb);
    } else if (x->ndim < 1 || x->ndim > 2 || y->ndim < 1 || y->ndim > 2) {
        rc = fail(g, VEIL_ERR_GRAPH, "matmul: 1-D or 2-D operands are required, got %s and %s", sa, sb);
    } else {
        int64_t kx = x->shape[x->ndim - 1], ky = y->shape[0];
        if (kx != ky) {
            rc = fail(g, VEIL_ERR_GRAPH, "%s: shapes %s and %s are not aligned (%lld != %lld)", veil_op_names[op], sa,
                      sb, (long long)kx, (long long)ky);
        } else {
            int64_t shape[2];
            int nd = 0;
            if (x->ndim == 2) shape[nd++] = x->shape[0];
            if (y->ndim == 2) shape[nd++] = y->shape[1];
            rc = set_shape(g, n, nd, shape);
        }
    }
    return finish(g, n, rc);
}

int veil_graph_matmul(veil_graph *g, int a, int b) { return matmul_like(g, VEIL_OP_MATMUL, a, b); }
int veil_graph_dot(veil_graph *g, int a, int b) { return matmul_like(g, VEIL_OP_DOT, a, b); }

static int norm_axis(int axis, int ndim) { return axis < 0 ? axis + ndim : axis; }

int veil_graph_sum(veil_graph *g, int x, int naxes, const int *axes, int keepdims)
{
    if (!g) return -1;
    veil_node_rec *n = new_node(g, VEIL_OP_SUM, 1, &x);
    if (!n) return -1;
    const veil_node_rec *s = &g->nodes[x];
    int reduce[VEIL_MAX_DIMS] = {0}, rc = 0;
    if (naxes < 0 || naxes > s->ndim || (naxes && !axes)) {
        rc = fail(g, VEIL_ERR_GRAPH, "sum: %d axes for a %d-D operand", naxes, s->ndim);
    } else {
        for (int i = 0; i < naxes && rc == 0; i++) {
            int a = norm_axis(axes[i], s->ndim);
            if (a < 0 || a >= s->ndim || reduce[a])
                rc = fail(g, VEIL_ERR_GRAPH, "sum: axis %d is out of range or repeated for a %d-D operand", axes[i], s->ndim);
            else
                reduce[a] = 1;
        }
        if (naxes == 0)
            for (int i = 0; i < s->ndim; i++) reduce[i] = 1;
    }
    if (rc == 0) {
        int64_t shape[VEIL_MAX_DIMS];
        int nd = 0;
        n->naxes = 0;
        for (int i = 0; i < s->ndim; i++) {
            if (reduce[i]) n->axes[n->naxes++] = i;
            if (!reduce[i]) shape[nd++] = s->shape[i];
            else if (keepdims) shape[nd++] = 1;
        }
        n->attr[VEIL_A_KEEPDIMS] = keepdims != 0;
        n->attr[1] = naxes == 0; /* printed without axis= */
        rc = set_shape(g, n, nd, shape);
    }
    return finish(g, n, rc);
}

int veil_graph_reshape(veil_graph *g, int x, int ndim, const int64_t *shape)
{
    if (!g) return -1;
    veil_node_rec *n = new_node(g, VEIL_OP_RESHAPE, 1, &x);
    if (!n) return -1;
    const veil_node_rec *s = &g->nodes[x];
    int64_t sh[VEIL_MAX_DIMS];
    int rc = 0, minus = -1;
    int64_t known = 1;
    if (ndim < 0 || ndim > VEIL_MAX_DIMS || (ndim && !shape)) {
        rc = fail(g, VEIL_ERR_GRAPH, "reshape: %d dimensions (at most %d)", ndim, VEIL_MAX_DIMS);
    } else {
        for (int i = 0; i < ndim && rc == 0; i++) {
            sh[i] = shape[i];
            if (shape[i] == -1 && minus < 0) minus = i;
            else if (shape[i] <= 0) rc = fail(g, VEIL_ERR_GRAPH, "reshape: bad dimension %lld", (long long)shape[i]);
            else if (known > ((int64_t)1 << 40) / shape[i]) rc = fail(g, VEIL_ERR_GRAPH, "reshape: shape too large");
            else known *= shape[i];
        }
        if (rc == 0 && minus >= 0) {
            if (s->size % known) rc = fail(g, VEIL_ERR_GRAPH, "reshape: cannot infer -1 for size %lld", (long long)s->size);
            else sh[minus] = s->size / known, known = s->size;
        }
        if (rc == 0 && known != s->size)
            rc = fail(g, VEIL_ERR_GRAPH, "reshape: cannot reshape %lld elements into %lld", (long long)s->size,
                      (long long)known);
        if (rc == 0) rc = set_shape(g, n, ndim, sh);
    }
    return finish(g, n, rc);
}

int veil_graph_flatten(veil_graph *g, int x)
{
    if (!g) return -1;
    veil_node_rec *n = new_node(g, VEIL_OP_FLATTEN, 1, &x);
    if (!n) return -1;
    int64_t size = g->nodes[x].size;
    return finish(g, n, set_shape(g, n, 1, &size));
}

int veil_graph_transpose(veil_graph *g, int x, const int *perm)
{
    if (!g) return -1;
    veil_node_rec *n = new_node(g, VEIL_OP_TRANSPOSE, 1, &x);
    if (!n) return -1;
    const veil_node_rec *s = &g->nodes[x];
    int seen[VEIL_MAX_DIMS] = {0}, rc = 0;
    int64_t shape[VEIL_MAX_DIMS];
    n->naxes = s->ndim;
    n->attr[0] = perm != NULL;
    for (int i = 0; i < s->ndim && rc == 0; i++) {
        int a = perm ? norm_axis(perm[i], s->ndim) : s->ndim - 1 - i;
        if (a < 0 || a >= s->ndim || seen[a]) rc = fail(g, VEIL_ERR_GRAPH, "transpose: axes are not a permutation");
        else seen[a] = 1, n->axes[i] = a, shape[i] = s->shape[a];
    }
    if (rc == 0) rc = set_shape(g, n, s->ndim, shape);
    return finish(g, n, rc);
}

int veil_graph_concatenate(veil_graph *g, int count, const int *xs, int axis)
{
    if (!g) return -1;
    if (count < 1 || !xs) return fail(g, VEIL_ERR_GRAPH, "concatenate: at least one operand is required");
    veil_node_rec *n = new_node(g, VEIL_OP_CONCAT, count, xs);
    if (!n) return -1;
    const veil_node_rec *f = &g->nodes[xs[0]];
    int a = norm_axis(axis, f->ndim), rc = 0;
    int64_t shape[VEIL_MAX_DIMS];
    if (f->ndim == 0 || a < 0 || a >= f->ndim) {
        rc = fail(g, VEIL_ERR_GRAPH, "concatenate: axis %d is out of range for %d-D operands", axis, f->ndim);
    } else {
        memcpy(shape, f->shape, sizeof shape);
        shape[a] = 0;
        for (int i = 0; i < count && rc == 0; i++) {
            const veil_node_rec *o = &g->nodes[xs[i]];
            if (o->ndim != f->ndim) {
                rc = fail(g, VEIL_ERR_GRAPH, "concatenate: operand %d has %d dimensions, operand 0 has %d", i, o->ndim,
                          f->ndim);
                break;
            }
            for (int d = 0; d < f->ndim; d++)
                if (d != a && o->shape[d] != f->shape[d]) {
                    rc = fail(g, VEIL_ERR_GRAPH, "concatenate: operand %d differs in dimension %d", i, d);
                    break;
                }
            shape[a] += o->shape[a];
        }
    }
    n->attr[VEIL_A_AXIS] = a;
    if (rc == 0) rc = set_shape(g, n, f->ndim, shape);
    return finish(g, n, rc);
}

int veil_graph_slice(veil_graph *g, int x, int count, const veil_slice *sl)
{
    if (!g) return -1;
    veil_node_rec *n = new_node(g, VEIL_OP_SLICE, 1, &x);
    if (!n) return -1;
    const veil_node_rec *s = &g->nodes[x];
    int rc = 0, nd = 0;
    int64_t shape[VEIL_MAX_DIMS];
    veil_slice *ns = s->ndim ? veil_arena_alloc(g->arena, sizeof(veil_slice) * (size_t)s->ndim) : NULL;
    if (count < 0 || count > s->ndim || (count && !sl)) {
        rc = fail(g, VEIL_ERR_GRAPH, "slice: %d entries for a %d-D operand", count, s->ndim);
    } else if (s->ndim && !ns) {
        rc = fail(g, VEIL_ERR_NOMEM, "out of memory");
    } else {
        for (int d = 0; d < s->ndim && rc == 0; d++) {
            veil_slice e = d < count ? sl[d] : VEIL_SLICE_ALL;
            int64_t dim = s->shape[d];
            if (e.index) {
                int64_t i = e.start < 0 ? e.start + dim : e.start;
                if (i < 0 || i >= dim) {
                    rc = fail(g, VEIL_ERR_GRAPH, "slice: index %lld is out of bounds for axis %d with size %lld",
                              (long long)e.start, d, (long long)dim);
                    break;
                }
                ns[d] = (veil_slice){i, i + 1, 1, 1};
                continue;
            }
            if (e.step == 0) {
                rc = fail(g, VEIL_ERR_GRAPH, "slice: step cannot be zero");
                break;
            }
            /* Python's slice.indices */
            int64_t lo = e.step < 0 ? -1 : 0, hi = e.step < 0 ? dim - 1 : dim;
            int64_t st = e.start, sp = e.stop;
            if (st == VEIL_SLICE_END) st = e.step < 0 ? hi : lo;
            else if (st < 0) st = st + dim < lo ? lo : st + dim;
            else if (st > hi) st = hi;
            if (sp == VEIL_SLICE_END) sp = e.step < 0 ? lo : hi;
            else if (sp < 0) sp = sp + dim < lo ? lo : sp + dim;
            else if (sp > hi) sp = hi;
            int64_t len = e.step > 0 ? (sp > st ? (sp - st + e.step - 1) / e.step : 0)
                                     : (st > sp ? (st - sp - e.step - 1) / (-e.step) : 0);
            if (len == 0) {
                rc = fail(g, VEIL_ERR_GRAPH, "slice: axis %d would be empty", d);
                break;
            }
            ns[d] = (veil_slice){st, sp, e.step, 0};
            shape[nd++] = len;
        }
    }
    n->slices = ns;
    if (rc == 0) rc = set_shape(g, n, nd, shape);
    return finish(g, n, rc);
}

/* ---- convolution and pooling ---------------------------------------------------------------- */
static int64_t out_dim(int64_t in, int64_t k, int64_t stride, int64_t pad_a, int64_t pad_b, int64_t dil)
{
    int64_t eff = dil * (k - 1) + 1, span = in + pad_a + pad_b - eff;
    return span < 0 ? 0 : span / stride + 1;
}

int veil_graph_conv2d(veil_graph *g, int x, int w, int bias, const veil_conv2d_opts *o)
{
    if (!g) return -1;
    veil_conv2d_opts d = o ? *o : VEIL_CONV2D_DEFAULT;
    int in[3] = {x, w, bias};
    veil_node_rec *n = new_node(g, VEIL_OP_CONV2D, bias >= 0 ? 3 : 2, in);
    if (!n) return -1;
    const veil_node_rec *X = &g->nodes[x], *W = &g->nodes[w];
    int rc = 0;
    if (X->ndim != 4 || W->ndim != 4) {
        rc = fail(g, VEIL_ERR_GRAPH, "conv2d: input (N, C, H, W) and weight (F, C/groups, KH, KW) must be 4-D");
    } else if (d.groups < 1 || d.strides[0] < 1 || d.strides[1] < 1 || d.dilations[0] < 1 || d.dilations[1] < 1 ||
               d.pads[0] < 0 || d.pads[1] < 0 || d.pads[2] < 0 || d.pads[3] < 0) {
        rc = fail(g, VEIL_ERR_GRAPH, "conv2d: strides, dilations and groups must be positive and pads non-negative");
    } else if (X->shape[1] % d.groups || W->shape[0] % d.groups || W->shape[1] * d.groups != X->shape[1]) {
        rc = fail(g, VEIL_ERR_GRAPH, "conv2d: %lld input channels do not match weight of %lld channels x %lld groups",
                  (long long)X->shape[1], (long long)W->shape[1], (long long)d.groups);
    } else if (bias >= 0 && (g->nodes[bias].ndim != 1 || g->nodes[bias].shape[0] != W->shape[0])) {
        rc = fail(g, VEIL_ERR_GRAPH, "conv2d: bias must have shape (%lld,)", (long long)W->shape[0]);
    } else {
        int64_t oh = out_dim(X->shape[2], W->shape[2], d.strides[0], d.pads[0], d.pads[2], d.dilations[0]);
        int64_t ow = out_dim(X->shape[3], W->shape[3], d.strides[1], d.pads[1], d.pads[3], d.dilations[1]);
        if (oh < 1 || ow < 1) rc = fail(g, VEIL_ERR_GRAPH, "conv2d: the kernel is larger than the padded input");
        int64_t shape[4] = {X->shape[0], W->shape[0], oh, ow};
        if (rc == 0) rc = set_shape(g, n, 4, shape);
    }
    for (int i = 0; i < 2; i++) n->attr[VEIL_A_STRIDE + i] = d.strides[i], n->attr[VEIL_A_DIL + i] = d.dilations[i];
    for (int i = 0; i < 4; i++) n->attr[VEIL_A_PAD + i] = d.pads[i];
    n->attr[VEIL_A_GROUPS] = d.groups;
    return finish(g, n, rc);
}

static int pool(veil_graph *g, veil_op op, int x, const veil_pool2d_opts *o)
{
    if (!g) return -1;
    veil_node_rec *n = new_node(g, op, 1, &x);
    if (!n) return -1;
    const veil_node_rec *X = &g->nodes[x];
    int rc = 0;
    if (!o) {
        rc = fail(g, VEIL_ERR_GRAPH, "%s: options with the kernel shape are required", veil_op_names[op]);
    } else if (X->ndim != 4) {
        rc = fail(g, VEIL_ERR_GRAPH, "%s: the input must be 4-D (N, C, H, W)", veil_op_names[op]);
    } else {
        for (int i = 0; i < 2; i++) {
            n->attr[VEIL_A_KERNEL + i] = o->kernel[i];
            n->attr[VEIL_A_STRIDE + i] = o->strides[i] ? o->strides[i] : o->kernel[i];
            n->attr[VEIL_A_DIL + i] = o->dilations[i] ? o->dilations[i] : 1;
        }
        for (int i = 0; i < 4; i++) n->attr[VEIL_A_PAD + i] = o->pads[i];
        const int64_t *A = n->attr;
        if (A[VEIL_A_KERNEL] < 1 || A[VEIL_A_KERNEL + 1] < 1 || A[VEIL_A_STRIDE] < 1 || A[VEIL_A_STRIDE + 1] < 1 ||
            A[VEIL_A_DIL] < 1 || A[VEIL_A_DIL + 1] < 1 || o->pads[0] < 0 || o->pads[1] < 0 || o->pads[2] < 0 ||
            o->pads[3] < 0 || o->pads[0] >= o->kernel[0] || o->pads[2] >= o->kernel[0] || o->pads[1] >= o->kernel[1] ||
            o->pads[3] >= o->kernel[1]) {
            rc = fail(g, VEIL_ERR_GRAPH, "%s: kernel, strides and dilations must be positive, pads in [0, kernel)",
                      veil_op_names[op]);
        } else {
            int64_t oh = out_dim(X->shape[2], A[VEIL_A_KERNEL], A[VEIL_A_STRIDE], A[VEIL_A_PAD], A[VEIL_A_PAD + 2],
                                 A[VEIL_A_DIL]);
            int64_t ow = out_dim(X->shape[3], A[VEIL_A_KERNEL + 1], A[VEIL_A_STRIDE + 1], A[VEIL_A_PAD + 1],
                                 A[VEIL_A_PAD + 3], A[VEIL_A_DIL + 1]);
            if (oh < 1 || ow < 1) rc = fail(g, VEIL_ERR_GRAPH, "%s: the kernel is larger than the padded input", veil_op_names[op]);
            int64_t shape[4] = {X->shape[0], X->shape[1], oh, ow};
            if (rc == 0) rc = set_shape(g, n, 4, shape);
        }
    }
    return finish(g, n, rc);
}

int veil_graph_avg_pool2d(veil_graph *g, int x, const veil_pool2d_opts *o) { return pool(g, VEIL_OP_AVGPOOL, x, o); }
int veil_graph_max_pool2d(veil_graph *g, int x, const veil_pool2d_opts *o) { return pool(g, VEIL_OP_MAXPOOL, x, o); }

/* ---- inspection ---------------------------------------------------------------------------- */
int veil_graph_shape(const veil_graph *g, int node, int64_t shape[VEIL_MAX_DIMS])
{
    if (!g || node < 0 || (size_t)node >= g->count) return -1;
    const veil_node_rec *n = &g->nodes[node];
    if (shape) memcpy(shape, n->shape, sizeof(int64_t) * (size_t)n->ndim);
    return n->ndim;
}

int veil_graph_is_encrypted(const veil_graph *g, int node)
{
    if (!g || node < 0 || (size_t)node >= g->count) return 0;
    return g->nodes[node].enc;
}

veil_status veil_ir_clone(const veil_graph *g, veil_graph **out)
{
    *out = NULL;
    veil_graph *c;
    veil_status st = veil_graph_new(&c);
    if (st != VEIL_OK) return st;
    c->nodes = veil_malloc(sizeof(veil_node_rec) * (g->count ? g->count : 1));
    c->inputs = veil_malloc(sizeof(int) * (g->ninputs ? g->ninputs : 1));
    c->outputs = veil_malloc(sizeof(int) * (g->noutputs ? g->noutputs : 1));
    if (!c->nodes || !c->inputs || !c->outputs) goto nomem;
    c->count = c->cap = g->count;
    c->ninputs = g->ninputs;
    c->noutputs = c->cap_out = g->noutputs;
    if (g->ninputs) memcpy(c->inputs, g->inputs, sizeof(int) * g->ninputs);
    if (g->noutputs) memcpy(c->outputs, g->outputs, sizeof(int) * g->noutputs);
    c->status = g->status;
    memcpy(c->error, g->error, sizeof c->error);
    for (size_t i = 0; i < g->count; i++) {
        const veil_node_rec *s = &g->nodes[i];
        veil_node_rec *d = &c->nodes[i];
        *d = *s;
        if (s->nin && !(d->in = veil_arena_alloc(c->arena, sizeof(int) * (size_t)s->nin))) goto nomem;
        if (s->nin) memcpy(d->in, s->in, sizeof(int) * (size_t)s->nin);
        if (s->data && !(d->data = copy_i64(c, s->data, s->ndata))) goto nomem;
        if (s->name && !(d->name = copy_str(c, s->name))) goto nomem;
        if (s->slices) {
            const veil_node_rec *src = &g->nodes[s->in[0]];
            size_t bytes = sizeof(veil_slice) * (size_t)src->ndim;
            if (!(d->slices = veil_arena_alloc(c->arena, bytes))) goto nomem;
            memcpy(d->slices, s->slices, bytes);
        }
    }
    *out = c;
    return VEIL_OK;
nomem:
    veil_graph_free(c);
    return VEIL_ERR_NOMEM;
}
