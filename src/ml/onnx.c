/* ONNX import: ModelProto (protobuf-c code generated at build time from Debian's onnx.proto) →
 * ml_graph. Every node must map to a known operator; an unknown one is refused by name. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ml.h"
#include "onnx.pb-c.h"

/* protobuf-c leaves an absent optional string NULL: every name read is read through this */
#define NAME(s) ((s) ? (s) : "")

/* protobuf-c allocates the unpacked message through veil's allocator hooks too */
static void *pb_alloc(void *data, size_t n)
{
    (void)data;
    return veil_malloc(n);
}
static void pb_free(void *data, void *p)
{
    (void)data;
    veil_free(p);
}
static ProtobufCAllocator pb_allocator = {pb_alloc, pb_free, NULL};

#define ONNX_MAX_BYTES ((size_t)1 << 31)

/* TensorProto → ml_tensor (doubles). Raw data is little-endian per the ONNX spec. */
static veil_status read_tensor(const Onnx__TensorProto *tp, ml_tensor *t, char *err, size_t errlen)
{
    const char *nm = tp->name ? tp->name : "";
    if (tp->n_dims > VEIL_MAX_DIMS)
        return ml_errf(err, errlen, VEIL_ERR_UNSUPPORTED, "tensor '%s' has %zu dimensions (at most %d)", nm, tp->n_dims,
                    VEIL_MAX_DIMS);
    if (tp->has_data_location && tp->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL)
        return ml_errf(err, errlen, VEIL_ERR_UNSUPPORTED, "tensor '%s' keeps its data in an external file", nm);
    int64_t shape[VEIL_MAX_DIMS];
    for (size_t i = 0; i < tp->n_dims; i++) shape[i] = tp->dims[i];
    veil_status st = ml_tensor_alloc(t, (int)tp->n_dims, shape);
    if (st != VEIL_OK) return ml_errf(err, errlen, st, "tensor '%s' has a bad shape or is too large", nm);
    int dt = tp->data_type;
    t->elem_type = dt;
    size_t es;
    switch (dt) {
    case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT: case ONNX__TENSOR_PROTO__DATA_TYPE__INT32:
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT32: es = 4; break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE: case ONNX__TENSOR_PROTO__DATA_TYPE__INT64:
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT64: es = 8; break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT8: case ONNX__TENSOR_PROTO__DATA_TYPE__INT8:
    case ONNX__TENSOR_PROTO__DATA_TYPE__BOOL: es = 1; break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT16: case ONNX__TENSOR_PROTO__DATA_TYPE__INT16:
    case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16: es = 2; break;
    default:
        ml_tensor_free(t);
        return ml_errf(err, errlen, VEIL_ERR_UNSUPPORTED, "tensor '%s' has unsupported data type %d", nm, dt);
    }
    size_t n = (size_t)t->size;
    if (tp->has_raw_data && tp->raw_data.len) {
        if (tp->raw_data.len != n * es) {
            ml_tensor_free(t);
            return ml_errf(err, errlen, VEIL_ERR_MALFORMED, "tensor '%s': raw data has %zu bytes, its shape needs %zu", nm,
                        tp->raw_data.len, n * es);
        }
        const uint8_t *p = tp->raw_data.data;
        for (size_t i = 0; i < n; i++, p += es) {
            uint64_t u = 0;
            for (size_t b = 0; b < es; b++) u |= (uint64_t)p[b] << (8 * b);
            double v;
            switch (dt) {
            case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT: { uint32_t w = (uint32_t)u; float f; memcpy(&f, &w, 4); v = f; break; }
            case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE: memcpy(&v, &u, 8); break;
            case ONNX__TENSOR_PROTO__DATA_TYPE__INT64: v = (double)(int64_t)u; break;
            case ONNX__TENSOR_PROTO__DATA_TYPE__UINT64: v = (double)u; break;
            case ONNX__TENSOR_PROTO__DATA_TYPE__INT32: v = (int32_t)(uint32_t)u; break;
            case ONNX__TENSOR_PROTO__DATA_TYPE__UINT32: v = (uint32_t)u; break;
            case ONNX__TENSOR_PROTO__DATA_TYPE__INT16: v = (int16_t)(uint16_t)u; break;
            case ONNX__TENSOR_PROTO__DATA_TYPE__UINT16: v = (uint16_t)u; break;
            case ONNX__TENSOR_PROTO__DATA_TYPE__INT8: v = (int8_t)(uint8_t)u; break;
            case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16: {
                int e = (int)(u >> 10) & 31, m = (int)(u & 1023);
                v = e == 0 ? ldexp(m, -24) : e == 31 ? (m ? NAN : INFINITY) : ldexp(m + 1024, e - 25);
                if (u & 0x8000) v = -v;
                break;
            }
            default: v = (double)u; break;
            }
            t->data[i] = v;
        }
        return VEIL_OK;
    }
    /* typed fields: float_data, int32_data (also 8/16-bit, bool, float16 bits), int64_data, ... */
    size_t have;
    switch (dt) {
    case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT: have = tp->n_float_data; break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE: have = tp->n_double_data; break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT64: have = tp->n_int64_data; break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT64: case ONNX__TENSOR_PROTO__DATA_TYPE__UINT32: have = tp->n_uint64_data; break;
    default: have = tp->n_int32_data; break;
    }
    if (have != n) {
        ml_tensor_free(t);
        return ml_errf(err, errlen, VEIL_ERR_MALFORMED, "tensor '%s' has %zu values, its shape needs %zu", nm, have, n);
    }
    for (size_t i = 0; i < n; i++) {
        switch (dt) {
        case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT: t->data[i] = tp->float_data[i]; break;
        case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE: t->data[i] = tp->double_data[i]; break;
        case ONNX__TENSOR_PROTO__DATA_TYPE__INT64: t->data[i] = (double)tp->int64_data[i]; break;
        case ONNX__TENSOR_PROTO__DATA_TYPE__UINT64: case ONNX__TENSOR_PROTO__DATA_TYPE__UINT32:
            t->data[i] = (double)tp->uint64_data[i]; break;
        case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16: {
            uint32_t u = (uint32_t)tp->int32_data[i];
            int e = (int)(u >> 10) & 31, m = (int)(u & 1023);
            double v = e == 0 ? ldexp(m, -24) : e == 31 ? (m ? NAN : INFINITY) : ldexp(m + 1024, e - 25);
            t->data[i] = (u & 0x8000) ? -v : v;
            break;
        }
        default: t->data[i] = tp->int32_data[i]; break;
        }
    }
    return VEIL_OK;
}

static veil_status read_attr(const Onnx__AttributeProto *ap, ml_attr *a, char *err, size_t errlen)
{
    memset(a, 0, sizeof *a);
    if (!(a->name = ml_strdup(ap->name))) return VEIL_ERR_NOMEM;
    switch (ap->type) {
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT: a->type = ML_ATTR_INT; a->i = ap->i; break;
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT: a->type = ML_ATTR_FLOAT; a->f = ap->f; break;
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING: {
        a->type = ML_ATTR_STRING;
        if (!(a->s = veil_malloc(ap->s.len + 1))) return VEIL_ERR_NOMEM;
        if (ap->s.len) memcpy(a->s, ap->s.data, ap->s.len);
        a->s[ap->s.len] = 0;
        break;
    }
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS:
        a->type = ML_ATTR_INTS;
        a->n = ap->n_ints;
        if (!(a->ints = veil_malloc(sizeof(int64_t) * (a->n + 1)))) return VEIL_ERR_NOMEM;
        if (a->n) memcpy(a->ints, ap->ints, sizeof(int64_t) * a->n);
        break;
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS:
        a->type = ML_ATTR_FLOATS;
        a->n = ap->n_floats;
        if (!(a->floats = veil_malloc(sizeof(double) * (a->n + 1)))) return VEIL_ERR_NOMEM;
        for (size_t i = 0; i < a->n; i++) a->floats[i] = ap->floats[i];
        break;
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRINGS:
        a->type = ML_ATTR_STRINGS;
        if (!(a->strs = veil_calloc(ap->n_strings + 1, sizeof(char *)))) return VEIL_ERR_NOMEM;
        for (size_t i = 0; i < ap->n_strings; i++) {
            if (!(a->strs[i] = veil_malloc(ap->strings[i].len + 1))) return VEIL_ERR_NOMEM;
            a->n = i + 1;
            if (ap->strings[i].len) memcpy(a->strs[i], ap->strings[i].data, ap->strings[i].len);
            a->strs[i][ap->strings[i].len] = 0;
        }
        a->n = ap->n_strings;
        break;
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR:
        a->type = ML_ATTR_TENSOR;
        if (!ap->t) return ml_errf(err, errlen, VEIL_ERR_MALFORMED, "attribute '%s' has no tensor", NAME(ap->name));
        return read_tensor(ap->t, &a->t, err, errlen);
    default:
        return ml_errf(err, errlen, VEIL_ERR_UNSUPPORTED, "attribute '%s' has unsupported type %d", NAME(ap->name), (int)ap->type);
    }
    return VEIL_OK;
}

static int lookup_op(const char *type, const char *domain, int *op)
{
    int custom_ok = !domain || !*domain || strcmp(domain, "ai.onnx") == 0;
    int is_ml = domain && strcmp(domain, "ai.onnx.ml") == 0;
    for (int i = 0; i < ML_OP_FIRST_INTERNAL; i++) {
        if (strcmp(ml_op_names[i], type) != 0) continue;
        if (i >= ML_OP_FIRST_ONNX_ML) {
            if (!is_ml) return 0;
            *op = i;
            return 1;
        }
        /* ai.onnx.ml also holds Cast-like operators of its own; only its own names match there */
        if (is_ml) return 0;
        if (i == ML_OP_QUANT) {
            if (domain && (strcmp(domain, "qonnx.custom_op.general") == 0 || strcmp(domain, "onnx.brevitas") == 0 ||
                           strcmp(domain, "finn.custom_op.general") == 0)) {
                *op = i;
                return 1;
            }
            return 0;
        }
        if (!custom_ok) return 0;
        *op = i;
        return 1;
    }
    return 0;
}

veil_status ml_onnx_read(const uint8_t *buf, size_t len, ml_graph **out, char *err, size_t errlen)
{
    *out = NULL;
    if (!buf || len == 0) return ml_errf(err, errlen, VEIL_ERR_TRUNCATED, "empty ONNX model");
    if (len > ONNX_MAX_BYTES) return ml_errf(err, errlen, VEIL_ERR_UNSUPPORTED, "ONNX model larger than 2 GiB");
    Onnx__ModelProto *m = onnx__model_proto__unpack(&pb_allocator, len, buf);
    if (!m) return ml_errf(err, errlen, VEIL_ERR_MALFORMED, "not an ONNX model (protobuf parse failed)");
    veil_status st = VEIL_OK;
    ml_graph *g = veil_calloc(1, sizeof *g);
    if (!g) {
        st = VEIL_ERR_NOMEM;
        goto done;
    }
    g->opset = 0;
    for (size_t i = 0; i < m->n_opset_import; i++) {
        const char *d = m->opset_import[i]->domain;
        if (!d || !*d || strcmp(d, "ai.onnx") == 0) g->opset = m->opset_import[i]->version;
    }
    const Onnx__GraphProto *gp = m->graph;
    if (!gp) {
        st = ml_errf(err, errlen, VEIL_ERR_MALFORMED, "ONNX model has no graph");
        goto done;
    }
    for (size_t i = 0; i < gp->n_initializer; i++) {
        int v = ml_graph_add_value(g, NAME(gp->initializer[i]->name));
        if (v < 0) { st = VEIL_ERR_NOMEM; goto done; }
        g->values[v].is_const = 1;
        if ((st = read_tensor(gp->initializer[i], &g->values[v].value, err, errlen)) != VEIL_OK) goto done;
    }
    /* graph inputs that are not initializers are the model's inputs */
    g->inputs = veil_malloc(sizeof(int) * (gp->n_input + 1));
    g->input_shapes = veil_calloc(gp->n_input + 1, sizeof(ml_tensor));
    if (!g->inputs || !g->input_shapes) { st = VEIL_ERR_NOMEM; goto done; }
    for (size_t i = 0; i < gp->n_input; i++) {
        const Onnx__ValueInfoProto *vi = gp->input[i];
        if (ml_graph_find_value(g, NAME(vi->name)) >= 0) continue;
        int v = ml_graph_add_value(g, NAME(vi->name));
        if (v < 0) { st = VEIL_ERR_NOMEM; goto done; }
        ml_tensor *s = &g->input_shapes[g->ninputs];
        if (!vi->type || vi->type->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE || !vi->type->tensor_type->shape) {
            st = ml_errf(err, errlen, VEIL_ERR_UNSUPPORTED, "input '%s' is not a tensor of known rank", NAME(vi->name));
            goto done;
        }
        const Onnx__TensorShapeProto *sp = vi->type->tensor_type->shape;
        if (sp->n_dim > VEIL_MAX_DIMS) {
            st = ml_errf(err, errlen, VEIL_ERR_UNSUPPORTED, "input '%s' has %zu dimensions", NAME(vi->name), sp->n_dim);
            goto done;
        }
        s->ndim = (int)sp->n_dim;
        s->size = 1;
        for (size_t d = 0; d < sp->n_dim; d++) {
            const Onnx__TensorShapeProto__Dimension *dm = sp->dim[d];
            int known = dm->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE && dm->dim_value > 0;
            if (!known && d != 0) {
                st = ml_errf(err, errlen, VEIL_ERR_UNSUPPORTED,
                          "input '%s': dimension %zu is symbolic (only the batch axis may be)", NAME(vi->name), d);
                goto done;
            }
            /* veil evaluates one sample at a time: the batch axis is 1 */
            s->shape[d] = d == 0 ? 1 : dm->dim_value;
            if (s->shape[d] > ML_MAX_ELEMS / s->size) {
                st = ml_errf(err, errlen, VEIL_ERR_UNSUPPORTED, "input '%s' is too large", NAME(vi->name));
                goto done;
            }
            s->size *= s->shape[d];
        }
        g->inputs[g->ninputs++] = v;
    }
    if (g->ninputs == 0) {
        st = ml_errf(err, errlen, VEIL_ERR_MALFORMED, "ONNX graph has no input");
        goto done;
    }
    g->nodes = veil_calloc(gp->n_node + 1, sizeof(ml_node));
    if (!g->nodes) { st = VEIL_ERR_NOMEM; goto done; }
    for (size_t i = 0; i < gp->n_node; i++) {
        const Onnx__NodeProto *np = gp->node[i];
        ml_node *n = &g->nodes[g->nnodes];
        char nm[96];
        if (np->name && *np->name) snprintf(nm, sizeof nm, "%s", np->name);
        else snprintf(nm, sizeof nm, "%s_%zu", np->op_type ? np->op_type : "?", i);
        int op;
        if (!np->op_type || !lookup_op(np->op_type, np->domain, &op)) {
            st = ml_errf(err, errlen, VEIL_ERR_UNSUPPORTED, "unsupported operator '%s%s%s' (node '%s')",
                      np->domain && *np->domain ? np->domain : "", np->domain && *np->domain ? "." : "",
                      np->op_type ? np->op_type : "?", nm);
            goto done;
        }
        g->nnodes++;
        n->op = (ml_op)op;
        n->name = ml_strdup(nm);
        n->nin = (int)np->n_input;
        n->nout = (int)np->n_output;
        n->in = veil_malloc(sizeof(int) * (np->n_input + 1));
        n->out = veil_malloc(sizeof(int) * (np->n_output + 1));
        n->attrs = veil_calloc(np->n_attribute + 1, sizeof(ml_attr));
        if (!n->name || !n->in || !n->out || !n->attrs) { st = VEIL_ERR_NOMEM; goto done; }
        for (size_t a = 0; a < np->n_attribute; a++) {
            n->nattrs++;
            if ((st = read_attr(np->attribute[a], &n->attrs[a], err, errlen)) != VEIL_OK) {
                char why[200];
                snprintf(why, sizeof why, "%s", err);
                ml_errf(err, errlen, st, "node '%s': %s", nm, why);
                goto done;
            }
        }
        for (size_t k = 0; k < np->n_input; k++) {
            if (!np->input[k] || !*np->input[k]) {
                n->in[k] = -1;
                continue;
            }
            n->in[k] = ml_graph_find_value(g, np->input[k]);
            if (n->in[k] < 0) {
                st = ml_errf(err, errlen, VEIL_ERR_MALFORMED, "node '%s' reads '%s', which no earlier node produces", nm,
                          np->input[k]);
                goto done;
            }
        }
        for (size_t k = 0; k < np->n_output; k++) {
            int v = ml_graph_add_value(g, np->output[k] ? np->output[k] : "");
            if (v < 0) { st = VEIL_ERR_NOMEM; goto done; }
            g->values[v].producer = g->nnodes - 1;
            n->out[k] = v;
        }
    }
    g->outputs = veil_malloc(sizeof(int) * (gp->n_output + 1));
    if (!g->outputs) { st = VEIL_ERR_NOMEM; goto done; }
    for (size_t i = 0; i < gp->n_output; i++) {
        int v = ml_graph_find_value(g, NAME(gp->output[i]->name));
        if (v < 0) {
            st = ml_errf(err, errlen, VEIL_ERR_MALFORMED, "graph output '%s' is produced by no node", NAME(gp->output[i]->name));
            goto done;
        }
        g->outputs[g->noutputs++] = v;
    }
    if (g->noutputs == 0) st = ml_errf(err, errlen, VEIL_ERR_MALFORMED, "ONNX graph has no output");
    else st = ml_onnx_ml_lower(g, err, errlen);
done:
    onnx__model_proto__free_unpacked(m, &pb_allocator);
    if (st != VEIL_OK) {
        if (st == VEIL_ERR_NOMEM) ml_errf(err, errlen, st, "out of memory reading the ONNX model");
        ml_graph_free(g);
        return st;
    }
    *out = g;
    return VEIL_OK;
}
