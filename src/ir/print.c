/* The textual graph listing (DESIGN.md §3), in Concrete's layout:
 *   %3 = matmul(%1, %2)        # EncryptedScalar<uint3>        ∈ [0, 6]
 * columns separated by eight spaces after the longest entry; marks underline a node with ^. */
#include <stdio.h>
#include <string.h>

#include "core/strbuf.h"
#include "ir.h"

enum { CONST_MAX_CHARS = 45 };

static void fmt_tuple(veil_sb *b, int n, const int64_t *v)
{
    veil_sb_printf(b, "(");
    for (int i = 0; i < n; i++) veil_sb_printf(b, i ? ", %lld" : "%lld", (long long)v[i]);
    veil_sb_printf(b, n == 1 ? ",)" : ")");
}

static void fmt_axes(veil_sb *b, int n, const int *axes)
{
    int64_t ax[VEIL_MAX_DIMS];
    for (int i = 0; i < n; i++) ax[i] = axes[i];
    fmt_tuple(b, n, ax);
}

static void fmt_array(veil_sb *b, const int64_t *v, int ndim, const int64_t *shape, int64_t *pos)
{
    if (ndim == 0) {
        veil_sb_printf(b, "%lld", (long long)v[(*pos)++]);
        return;
    }
    veil_sb_printf(b, "[");
    for (int64_t i = 0; i < shape[0]; i++) {
        if (i) veil_sb_printf(b, " ");
        fmt_array(b, v, ndim - 1, shape + 1, pos);
    }
    veil_sb_printf(b, "]");
}

/* NumPy-style constant, cut to CONST_MAX_CHARS with "..." */
static void fmt_const(veil_sb *out, const int64_t *v, int ndim, const int64_t *shape)
{
    veil_sb t = {0};
    int64_t pos = 0;
    fmt_array(&t, v, ndim, shape, &pos);
    if (t.failed) {
        out->failed = 1;
    } else if (t.len > CONST_MAX_CHARS) {
        veil_sb_printf(out, "%.*s...", CONST_MAX_CHARS - 3, t.s);
    } else {
        veil_sb_printf(out, "%s", t.s);
    }
    veil_sb_free(&t);
}

static void fmt_expr(veil_sb *b, const veil_graph *g, const veil_node_rec *n)
{
    const int64_t *A = n->attr;
    switch (n->op) {
    case VEIL_OP_INPUT: veil_sb_printf(b, "%s", n->name); return;
    case VEIL_OP_CONST: fmt_const(b, n->data, n->ndim, n->shape); return;
    case VEIL_OP_SLICE: {
        const veil_node_rec *s = &g->nodes[n->in[0]];
        veil_sb_printf(b, "%%%d[", n->in[0]);
        for (int d = 0; d < s->ndim; d++) {
            const veil_slice *e = &n->slices[d];
            if (d) veil_sb_printf(b, ", ");
            if (e->index) veil_sb_printf(b, "%lld", (long long)e->start);
            else if (e->start == 0 && e->stop == s->shape[d] && e->step == 1) veil_sb_printf(b, ":");
            else if (e->step == 1) veil_sb_printf(b, "%lld:%lld", (long long)e->start, (long long)e->stop);
            else if (e->stop < 0) veil_sb_printf(b, "%lld::%lld", (long long)e->start, (long long)e->step);
            else veil_sb_printf(b, "%lld:%lld:%lld", (long long)e->start, (long long)e->stop, (long long)e->step);
        }
        veil_sb_printf(b, "]");
        return;
    }
    case VEIL_OP_APPLY: veil_sb_printf(b, "%s(%%%d)", n->name, n->in[0]); return;
    case VEIL_OP_CONCAT:
        veil_sb_printf(b, "concatenate((");
        for (int i = 0; i < n->nin; i++) veil_sb_printf(b, i ? ", %%%d" : "%%%d", n->in[i]);
        veil_sb_printf(b, "), axis=%lld)", (long long)A[VEIL_A_AXIS]);
        return;
    default: break;
    }
    veil_sb_printf(b, "%s(", veil_op_names[n->op]);
    for (int i = 0; i < n->nin; i++) veil_sb_printf(b, i ? ", %%%d" : "%%%d", n->in[i]);
    switch (n->op) {
    case VEIL_OP_SUM:
        if (!A[1]) {
            veil_sb_printf(b, ", axis=");
            if (n->naxes == 1) veil_sb_printf(b, "%d", n->axes[0]);
            else fmt_axes(b, n->naxes, n->axes);
        }
        if (A[VEIL_A_KEEPDIMS]) veil_sb_printf(b, ", keepdims=True");
        break;
    case VEIL_OP_RESHAPE: veil_sb_printf(b, ", newshape="); fmt_tuple(b, n->ndim, n->shape); break;
    case VEIL_OP_TRANSPOSE:
        if (A[0]) {
            veil_sb_printf(b, ", axes=");
            fmt_axes(b, n->naxes, n->axes);
        }
        break;
    case VEIL_OP_CLIP: veil_sb_printf(b, ", %lld, %lld", (long long)A[VEIL_A_LO], (long long)A[VEIL_A_HI]); break;
    case VEIL_OP_ROUND: case VEIL_OP_TRUNC:
        veil_sb_printf(b, ", lsbs_to_remove=%lld", (long long)A[VEIL_A_LSBS]);
        if (n->op == VEIL_OP_ROUND && A[VEIL_A_APPROX]) veil_sb_printf(b, ", exactness=approximate");
        break;
    case VEIL_OP_TABLE: {
        veil_sb_printf(b, ", table=");
        int64_t len = (int64_t)n->ndata;
        fmt_const(b, n->data, 1, &len);
        break;
    }
    case VEIL_OP_CONV2D: case VEIL_OP_AVGPOOL: case VEIL_OP_MAXPOOL:
        if (n->op != VEIL_OP_CONV2D) {
            veil_sb_printf(b, ", kernel_shape=");
            fmt_tuple(b, 2, A + VEIL_A_KERNEL);
        }
        veil_sb_printf(b, ", strides=");
        fmt_tuple(b, 2, A + VEIL_A_STRIDE);
        veil_sb_printf(b, ", pads=");
        fmt_tuple(b, 4, A + VEIL_A_PAD);
        veil_sb_printf(b, ", dilations=");
        fmt_tuple(b, 2, A + VEIL_A_DIL);
        if (n->op == VEIL_OP_CONV2D) veil_sb_printf(b, ", group=%lld", (long long)A[VEIL_A_GROUPS]);
        break;
    default: break;
    }
    veil_sb_printf(b, ")");
}

void veil_ir_type_str(const veil_graph *g, int i, char *buf, size_t cap)
{
    const veil_node_rec *n = &g->nodes[i];
    veil_sb b = {0};
    char dtype[16] = "?";
    if (n->has_bounds) {
        int sg;
        unsigned bits = veil_ir_bits(n->lo, n->hi, &sg);
        snprintf(dtype, sizeof dtype, "%s%u", sg ? "int" : "uint", bits);
    }
    veil_sb_printf(&b, "%s%s<%s", n->enc ? "Encrypted" : "Clear", n->ndim ? "Tensor" : "Scalar", dtype);
    if (n->ndim) {
        veil_sb_printf(&b, ", shape=");
        fmt_tuple(&b, n->ndim, n->shape);
    }
    veil_sb_printf(&b, ">");
    snprintf(buf, cap, "%s", b.failed ? "?" : b.s);
    veil_sb_free(&b);
}

static size_t utf8_len(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xC0) != 0x80) n++;
    return n;
}

#define PRINT_COLUMN_CAP 120

char *veil_ir_format(const veil_graph *g, int show_bounds, const veil_ir_mark *marks, int nmarks)
{
    if (!g) return NULL;
    size_t count = g->count;
    char **left = veil_calloc(count ? count : 1, sizeof(char *));
    char **type = veil_calloc(count ? count : 1, sizeof(char *));
    veil_sb out = {0};
    int ok = 0;
    if (!left || !type) goto done;
    size_t wl = 0, wt = 0;
    for (size_t i = 0; i < count; i++) {
        veil_sb b = {0};
        veil_sb_printf(&b, "%%%zu = ", i);
        fmt_expr(&b, g, &g->nodes[i]);
        char t[256];
        veil_ir_type_str(g, (int)i, t, sizeof t);
        left[i] = veil_sb_take(&b);
        veil_sb_printf(&b, "# %s", t);
        type[i] = veil_sb_take(&b);
        if (!left[i] || !type[i]) goto done;
        /* the columns line up on the widest expression, up to PRINT_COLUMN_CAP characters: a
         * longer one (a concatenation of hundreds of operands) takes its own width rather than
         * pushing every other line's type far to the right */
        if (utf8_len(left[i]) > wl && utf8_len(left[i]) <= PRINT_COLUMN_CAP) wl = utf8_len(left[i]);
        if (utf8_len(type[i]) > wt) wt = utf8_len(type[i]);
    }
    for (size_t i = 0; i < count; i++) {
        const veil_node_rec *n = &g->nodes[i];
        veil_sb_printf(&out, "%s", left[i]);
        const size_t lw = utf8_len(left[i]), lcol = lw > wl ? lw + 8 : wl + 8;
        veil_sb_pad(&out, lcol);
        veil_sb_printf(&out, "%s", type[i]);
        if (show_bounds && n->has_bounds) {
            veil_sb_pad(&out, lcol + wt + 8);
            veil_sb_printf(&out, "∈ [%lld, %lld]", (long long)n->lo, (long long)n->hi);
        }
        veil_sb_printf(&out, "\n");
        for (int m = 0; m < nmarks; m++) {
            if (marks[m].node != (int)i) continue;
            size_t w = utf8_len(left[i]);
            for (size_t c = 0; c < w; c++) veil_sb_printf(&out, "^");
            const char *msg = marks[m].message;
            while (msg) {
                const char *nl = strchr(msg, '\n');
                int len = nl ? (int)(nl - msg) : (int)strlen(msg);
                veil_sb_pad(&out, w + 1);
                veil_sb_printf(&out, "%.*s\n", len, msg);
                msg = nl ? nl + 1 : NULL;
            }
        }
    }
    veil_sb_printf(&out, "return ");
    for (size_t j = 0; j < g->noutputs; j++) veil_sb_printf(&out, j ? ", %%%d" : "%%%d", g->outputs[j]);
    veil_sb_printf(&out, "\n");
    ok = 1;
done:
    for (size_t i = 0; left && i < count; i++) veil_free(left[i]);
    for (size_t i = 0; type && i < count; i++) veil_free(type[i]);
    veil_free(left);
    veil_free(type);
    if (!ok) {
        veil_sb_free(&out);
        return NULL;
    }
    return veil_sb_take(&out);
}

char *veil_graph_format(const veil_graph *g) { return veil_ir_format(g, 0, NULL, 0); }
