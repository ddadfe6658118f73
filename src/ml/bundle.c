/* A compiled model on disk (docs/format.md, "Model bundles"): DIR/client.veil holds what a client
 * needs (parameters, the circuit's interface and encoding, the quantizers, the client-side
 * post-processing, the report); DIR/server.veil holds what a server needs (parameters, the
 * circuit's interface and program, its listing). Both name the same model id, the first 16 bytes
 * of SHA-256 over the server's standalone circuit, so a client bundle is never paired with the
 * program of another compilation. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../compiler/circuit.h"
#include "../runtime/circuit_io.h"
#include "../core/strbuf.h"
#include "../tfhe/serialize.h"
#include "model_impl.h"

#define TAG_MODL VEIL_TAG('M', 'O', 'D', 'L')
#define TAG_RPRT VEIL_TAG('R', 'P', 'R', 'T')
#define TAG_MIOS VEIL_TAG('M', 'I', 'O', 'S')
#define TAG_POSX VEIL_TAG('P', 'O', 'S', 'X')
#define TAG_PREX VEIL_TAG('P', 'R', 'E', 'X')
#define MAX_BUNDLE_BYTES ((size_t)1 << 31)

static int get_shape(veil_cursor *c, int *ndim, int64_t *shape)
{
    return veil_cursor_shape(c, VEIL_MAX_DIMS, ndim, shape) >= 0;
}

static int64_t shape_size(int nd, const int64_t *s)
{
    int64_t n = 1;
    for (int d = 0; d < nd; d++) n *= s[d];
    return n;
}

static void put_text(veil_writer *w, uint32_t tag, const char *s)
{
    veil_writer_section(w, tag);
    if (s) veil_buf_put(&w->b, s, strlen(s));
}

static void put_in(veil_buf *b, const ml_in_info *in)
{
    veil_buf_put_f64(b, in->q.scale);
    veil_buf_put_f64(b, in->q.zp);
    veil_buf_put_f64(b, in->q.qmin);
    veil_buf_put_f64(b, in->q.qmax);
}

/* an output's circuit shape, model shape and post-processing */
static void put_out(veil_buf *b, const ml_out_info *o)
{
    veil_buf_put_shape(b, o->qndim, o->qshape);
    veil_buf_put_shape(b, o->ndim, o->shape);
    veil_buf_put_u32(b, (uint32_t)o->npost);
    for (int i = 0; i < o->npost; i++) {
        veil_buf_put_u32(b, (uint32_t)o->post[i].op);
        veil_buf_put_u64(b, (uint64_t)o->post[i].axis);
        veil_buf_put_u64(b, (uint64_t)o->post[i].keepdims);
        veil_buf_put_u64(b, (uint64_t)o->post[i].select_last);
    }
}

static veil_status bundle_bytes(const veil_model *m, int server, const uint8_t id[VEIL_MODEL_ID_BYTES], uint8_t **out,
                                size_t *len)
{
    veil_status st;
    veil_writer w;
    veil_writer_begin(&w, server ? VEIL_KIND_SERVER_BUNDLE : VEIL_KIND_CLIENT_BUNDLE, 0);
    if ((st = veil_circuit_write_sections(&w, m->circuit, server)) != VEIL_OK) {
        veil_buf_free(&w.b);
        return st;
    }
    veil_writer_section(&w, TAG_MDID);
    veil_buf_put(&w.b, id, VEIL_MODEL_ID_BYTES);
    if (m->opts.clear_inputs) { /* version 2: inputs sent in the clear, in both bundles */
        veil_writer_version(&w, 2);
        veil_writer_section(&w, TAG_CLRI);
        veil_buf_put_u32(&w.b, m->opts.clear_inputs);
    }
    if (!server) {
        veil_writer_section(&w, TAG_MODL);
        veil_buf *b = &w.b;
        const veil_model_options *o = &m->opts;
        veil_buf_put_u32(b, (uint32_t)o->n_bits.op_inputs);
        veil_buf_put_u32(b, (uint32_t)o->n_bits.op_weights);
        veil_buf_put_u32(b, (uint32_t)o->n_bits.model_inputs);
        veil_buf_put_u32(b, (uint32_t)o->n_bits.model_outputs);
        veil_buf_put_u32(b, (uint32_t)o->qat);
        veil_buf_put_u32(b, (uint32_t)o->rounding_bits);
        veil_buf_put_u32(b, (uint32_t)o->rounding_method | (uint32_t)o->auto_rounding << 8); /* bit 8: chosen automatically */
        veil_buf_put_f64(b, o->p_error);
        veil_buf_put_f64(b, o->global_p_error);
        put_in(b, &m->in[0]);
        veil_buf_put_f64(b, m->out[0].scale);
        veil_buf_put_f64(b, m->out[0].zp);
        veil_buf_put_shape(b, m->in[0].ndim, m->in[0].shape);
        put_out(b, &m->out[0]);
        veil_buf_put_u32(b, m->max_bits);
        if (m->nin > 1 || m->nout > 1) { /* version 2: every input and output */
            veil_writer_version(&w, 2);
            veil_writer_section(&w, TAG_MIOS);
            veil_buf_put_u32(b, (uint32_t)m->nin);
            veil_buf_put_u32(b, (uint32_t)m->nout);
            for (int i = 0; i < m->nin; i++) {
                put_in(b, &m->in[i]);
                veil_buf_put_shape(b, m->in[i].ndim, m->in[i].shape);
            }
            for (int j = 0; j < m->nout; j++) {
                veil_buf_put_u32(b, (uint32_t)strlen(m->out[j].name));
                veil_buf_put(b, m->out[j].name, strlen(m->out[j].name));
                veil_buf_put_f64(b, m->out[j].scale);
                veil_buf_put_f64(b, m->out[j].zp);
                put_out(b, &m->out[j]);
            }
        }
        int pre = 0;
        for (int i = 0; i < m->nin; i++) pre |= m->in[i].npre > 0;
        if (pre) { /* version 2: each input's client-side Scaler */
            veil_writer_version(&w, 2);
            veil_writer_section(&w, TAG_PREX);
            for (int i = 0; i < m->nin; i++) {
                veil_buf_put_u32(b, (uint32_t)m->in[i].npre);
                for (int f = 0; f < m->in[i].npre; f++) veil_buf_put_f64(b, m->in[i].pre_off[f]);
                for (int f = 0; f < m->in[i].npre; f++) veil_buf_put_f64(b, m->in[i].pre_scale[f]);
            }
        }
        int ext = 0;
        for (int j = 0; j < m->nout; j++)
            for (int i = 0; i < m->out[j].npost; i++) ext |= m->out[j].post[i].mode != 0 || m->out[j].post[i].nv != 0;
        if (ext) { /* version 2: the post-processing's modes and values (class labels) */
            veil_writer_version(&w, 2);
            veil_writer_section(&w, TAG_POSX);
            for (int j = 0; j < m->nout; j++)
                for (int i = 0; i < m->out[j].npost; i++) {
                    const ml_post_op *po = &m->out[j].post[i];
                    veil_buf_put_u64(b, (uint64_t)po->mode);
                    veil_buf_put_u32(b, (uint32_t)po->nv);
                    for (int k = 0; k < po->nv; k++) veil_buf_put_f64(b, po->v[k]);
                }
        }
    }
    put_text(&w, TAG_RPRT, m->report);
    return veil_writer_finish(&w, out, len);
}

/* Both bundles, or one (server 0 or 1), with the model id computed once. */
static veil_status bundles(const veil_model *m, int which, uint8_t **out, size_t *len)
{
    uint8_t id[VEIL_MODEL_ID_BYTES];
    veil_status st = veil_circuit_model_id(m->circuit, id);
    for (int s = 0; s < 2 && st == VEIL_OK; s++)
        if (which < 0 || which == s) st = bundle_bytes(m, s, id, &out[s], &len[s]);
    if (st == VEIL_ERR_UNSUPPORTED)
        return ml_model_fail(st, "this circuit keeps clear inputs that reach encrypted operations: it cannot be saved");
    if (st != VEIL_OK) return ml_model_fail(st, "writing the bundles: %s", veil_status_str(st));
    return VEIL_OK;
}

veil_status veil_model_serialize(const veil_model *m, int server, uint8_t **out, size_t *len)
{
    if (!m || !out || !len) return ml_model_fail(VEIL_ERR_INVALID_ARG, "no model or no output pointer");
    uint8_t *o[2] = {NULL, NULL};
    size_t l[2] = {0, 0};
    int s = server ? 1 : 0;
    veil_status st = bundles(m, s, o, l);
    *out = o[s], *len = l[s];
    return st;
}

veil_status veil_model_save(const veil_model *m, const char *dir)
{
    if (!m || !dir) return ml_model_fail(VEIL_ERR_INVALID_ARG, "no model or no directory");
    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        return ml_model_fail(VEIL_ERR_IO, "%s: cannot create the directory (%s)", dir, strerror(errno));
    /* both files are made in memory first, then written whole beside their paths (NAME.new), then
     * renamed: a failure on the way leaves the directory as it was, never one new file of a pair */
    uint8_t *bytes[2] = {NULL, NULL};
    size_t len[2] = {0, 0};
    veil_status st = bundles(m, -1, bytes, len);
    static const char *const names[2] = {"client.veil", "server.veil"};
    char path[2][4096], tmp[2][4100];
    for (int s = 0; s < 2 && st == VEIL_OK; s++)
        if (snprintf(path[s], sizeof path[s], "%s/%s", dir, names[s]) >= (int)sizeof path[s] ||
            snprintf(tmp[s], sizeof tmp[s], "%s.new", path[s]) >= (int)sizeof tmp[s])
            st = ml_model_fail(VEIL_ERR_INVALID_ARG, "%s: directory name too long", dir);
    int written = 0;
    for (int s = 0; s < 2 && st == VEIL_OK; s++, written++)
        if ((st = veil_file_write_atomic(tmp[s], bytes[s], len[s], 0644)) != VEIL_OK)
            ml_model_fail(st, "%s: cannot write (%s)", path[s], veil_status_str(st));
    for (int s = 0; s < 2 && st == VEIL_OK; s++)
        if (rename(tmp[s], path[s]) != 0)
            st = ml_model_fail(VEIL_ERR_IO, "%s: cannot write (%s)", path[s], strerror(errno));
    if (st != VEIL_OK)
        for (int s = 0; s < written; s++) unlink(tmp[s]);
    veil_free(bytes[0]), veil_free(bytes[1]);
    return st;
}

/* ---- reading ---------------------------------------------------------------------------------- */

static veil_status read_id(const veil_container *cn, uint8_t id[VEIL_MODEL_ID_BYTES])
{
    const uint8_t *d;
    size_t len;
    veil_status st = veil_container_section(cn, TAG_MDID, &d, &len);
    if (st != VEIL_OK) return st;
    if (len != VEIL_MODEL_ID_BYTES) return VEIL_ERR_MALFORMED;
    memcpy(id, d, VEIL_MODEL_ID_BYTES);
    return VEIL_OK;
}

static veil_status read_text(const veil_container *cn, char **out)
{
    const uint8_t *d;
    size_t len;
    veil_status st = veil_container_section(cn, TAG_RPRT, &d, &len);
    if (st != VEIL_OK) return st;
    if (!(*out = veil_malloc(len + 1))) return VEIL_ERR_NOMEM;
    memcpy(*out, d, len);
    (*out)[len] = 0;
    return strlen(*out) == len ? VEIL_OK : VEIL_ERR_MALFORMED;
}

static int post_op_ok(const ml_post_op *p, int ndim)
{
    if (!ml_is_post_op(p->op)) return 0;
    return p->axis >= -ndim && p->axis < ndim && p->keepdims >= 0 && p->keepdims <= 1 && p->select_last >= 0 &&
           p->select_last <= 1;
}

/* a post op's mode and values (POSX) fit its kind */
static int post_values_ok(const ml_post_op *p)
{
    switch (p->op) {
    case ML_OP_SCORES_TRANSFORM:
        for (int k = 0; k < p->nv; k++)
            if (!isfinite(p->v[k])) return 0;
        return p->mode >= 0 && (p->mode & 15) < ML_POST_COUNT && (p->mode >> 4) < ML_BINARY_COUNT;
    case ML_OP_NORMALIZER: return p->mode >= 0 && p->mode < ML_NORM_COUNT && p->nv == 0;
    case ML_OP_CAST: return p->mode >= 0 && p->mode <= 16 && p->nv == 0;
    case ML_OP_SCORES_LABEL:
        for (int k = 0; k < p->nv; k++)
            if (!isfinite(p->v[k])) return 0;
        return p->mode == 0 && p->nv >= 1;
    default: return p->mode == 0 && p->nv == 0;
    }
}

static veil_status read_prex(const veil_container *cn, veil_model *m)
{
    const uint8_t *d;
    size_t len;
    for (int i = 0; i < m->nin; i++) m->in[i].npre = 0;
    if (veil_container_section(cn, TAG_PREX, &d, &len) != VEIL_OK) return VEIL_OK;
    if (cn->version < 2) return VEIL_ERR_MALFORMED;
    veil_cursor c = {d, len, 0};
    for (int i = 0; i < m->nin; i++) {
        ml_in_info *in = &m->in[i];
        uint32_t n = veil_cursor_u32(&c);
        int64_t F = in->ndim ? in->shape[in->ndim - 1] : 1;
        if (c.bad || (n != 0 && (int64_t)n != F) || n > ML_PRE_MAX) return VEIL_ERR_MALFORMED;
        in->npre = (int)n;
        for (uint32_t f = 0; f < n; f++) in->pre_off[f] = veil_cursor_f64(&c);
        for (uint32_t f = 0; f < n; f++) in->pre_scale[f] = veil_cursor_f64(&c);
        for (uint32_t f = 0; f < n; f++)
            if (!isfinite(in->pre_off[f]) || !isfinite(in->pre_scale[f])) return VEIL_ERR_MALFORMED;
    }
    return c.bad || c.left ? VEIL_ERR_MALFORMED : VEIL_OK;
}

static veil_status read_posx(const veil_container *cn, veil_model *m)
{
    veil_status st = read_prex(cn, m);
    if (st != VEIL_OK) return st;
    const uint8_t *d;
    size_t len;
    int have = veil_container_section(cn, TAG_POSX, &d, &len) == VEIL_OK;
    if (have && cn->version < 2) return VEIL_ERR_MALFORMED;
    veil_cursor c = {have ? d : NULL, have ? len : 0, 0};
    for (int j = 0; j < m->nout; j++)
        for (int i = 0; i < m->out[j].npost; i++) {
            ml_post_op *po = &m->out[j].post[i];
            po->mode = 0, po->nv = 0;
            if (have) {
                po->mode = (int64_t)veil_cursor_u64(&c);
                uint32_t nv = veil_cursor_u32(&c);
                if (c.bad || nv > ML_POST_MAX_VALUES) return VEIL_ERR_MALFORMED;
                po->nv = (int)nv;
                for (uint32_t k = 0; k < nv; k++) po->v[k] = veil_cursor_f64(&c);
            }
            if (c.bad || !post_values_ok(po)) return VEIL_ERR_MALFORMED;
        }
    return c.bad || c.left ? VEIL_ERR_MALFORMED : VEIL_OK;
}

static int get_in(veil_cursor *c, ml_in_info *in)
{
    in->q.scale = veil_cursor_f64(c);
    in->q.zp = veil_cursor_f64(c);
    in->q.qmin = veil_cursor_f64(c);
    in->q.qmax = veil_cursor_f64(c);
    return !c->bad && in->q.scale > 0 && isfinite(in->q.scale) && isfinite(in->q.zp) && in->q.qmin <= in->q.qmax &&
           fabs(in->q.qmin) <= 1e15 && fabs(in->q.qmax) <= 1e15;
}

static int get_out(veil_cursor *c, ml_out_info *o)
{
    if (!get_shape(c, &o->qndim, o->qshape) || !get_shape(c, &o->ndim, o->shape)) return 0;
    uint32_t np = veil_cursor_u32(c);
    if (c->bad || np > sizeof o->post / sizeof *o->post) return 0;
    o->npost = (int)np;
    for (uint32_t i = 0; i < np; i++) {
        uint32_t op = veil_cursor_u32(c);
        o->post[i].op = op < ML_OP_COUNT ? (ml_op)op : ML_OP_COUNT;
        o->post[i].axis = (int64_t)veil_cursor_u64(c);
        o->post[i].keepdims = (int64_t)veil_cursor_u64(c);
        o->post[i].select_last = (int64_t)veil_cursor_u64(c);
        if (c->bad || op >= ML_OP_COUNT || !post_op_ok(&o->post[i], o->qndim)) return 0;
    }
    return 1;
}

static veil_status read_modl(const veil_container *cn, veil_model *m)
{
    const uint8_t *d;
    size_t len;
    veil_status st = veil_container_section(cn, TAG_MODL, &d, &len);
    if (st != VEIL_OK) return st;
    veil_cursor c = {d, len, 0};
    veil_model_options *o = &m->opts;
    o->n_bits.op_inputs = (int)veil_cursor_u32(&c);
    o->n_bits.op_weights = (int)veil_cursor_u32(&c);
    o->n_bits.model_inputs = (int)veil_cursor_u32(&c);
    o->n_bits.model_outputs = (int)veil_cursor_u32(&c);
    o->qat = (int)veil_cursor_u32(&c);
    o->rounding_bits = (int)veil_cursor_u32(&c);
    uint32_t method = veil_cursor_u32(&c);
    o->auto_rounding = (int)(method >> 8 & 1);
    method &= 0xff;
    o->rounding_method = method < VEIL_ROUNDING_COUNT ? (veil_rounding_method)method : VEIL_ROUNDING_EXACT;
    o->p_error = veil_cursor_f64(&c);
    o->global_p_error = veil_cursor_f64(&c);
    ml_in_info *in = &m->in[0];
    ml_out_info *out = &m->out[0];
    if (!get_in(&c, in)) return VEIL_ERR_MALFORMED;
    out->scale = veil_cursor_f64(&c);
    out->zp = veil_cursor_f64(&c);
    if (c.bad || !isfinite(out->scale) || !isfinite(out->zp) || !get_shape(&c, &in->ndim, in->shape) ||
        !get_out(&c, out))
        return VEIL_ERR_MALFORMED;
    m->max_bits = veil_cursor_u32(&c);
    if (c.bad || c.left) return VEIL_ERR_MALFORMED;
    m->nin = m->nout = 1;
    /* several inputs or outputs (version 2) */
    if (veil_container_section(cn, TAG_MIOS, &d, &len) != VEIL_OK) return read_posx(cn, m);
    if (cn->version < 2) return VEIL_ERR_MALFORMED;
    c = (veil_cursor){d, len, 0};
    uint32_t ni = veil_cursor_u32(&c), no = veil_cursor_u32(&c);
    if (c.bad || ni < 1 || no < 1 || ni > ML_MAX_IO || no > ML_MAX_IO) return VEIL_ERR_MALFORMED;
    m->nin = (int)ni, m->nout = (int)no;
    for (uint32_t i = 0; i < ni; i++)
        if (!get_in(&c, &m->in[i]) || !get_shape(&c, &m->in[i].ndim, m->in[i].shape)) return VEIL_ERR_MALFORMED;
    for (uint32_t j = 0; j < no; j++) {
        ml_out_info *oi = &m->out[j];
        uint32_t nl = veil_cursor_u32(&c);
        if (c.bad || nl >= sizeof oi->name || !veil_cursor_bytes(&c, oi->name, nl)) return VEIL_ERR_MALFORMED;
        oi->name[nl] = 0;
        if (strlen(oi->name) != nl) return VEIL_ERR_MALFORMED;
        oi->scale = veil_cursor_f64(&c);
        oi->zp = veil_cursor_f64(&c);
        if (c.bad || !isfinite(oi->scale) || !isfinite(oi->zp) || !get_out(&c, oi)) return VEIL_ERR_MALFORMED;
    }
    return c.bad || c.left ? VEIL_ERR_MALFORMED : read_posx(cn, m);
}

/* The model's parts agree with each other and with its circuit; sizes filled. */
static int consistent(veil_model *m)
{
    const veil_circuit *c = m->circuit;
    if (veil_circuit_input_count(c) != (size_t)m->nin || veil_circuit_output_count(c) != (size_t)m->nout) return 0;
    for (int i = 0; i < m->nin; i++) {
        m->in[i].size = shape_size(m->in[i].ndim, m->in[i].shape);
        if (!veil_circuit_input_encrypted(c, (size_t)i) || veil_circuit_input_size(c, (size_t)i) != m->in[i].size)
            return 0;
    }
    for (int j = 0; j < m->nout; j++) {
        ml_out_info *o = &m->out[j];
        o->qsize = shape_size(o->qndim, o->qshape);
        o->size = shape_size(o->ndim, o->shape);
        if (veil_circuit_output_size(c, (size_t)j) != o->qsize) return 0;
        /* the post-processing must turn the circuit's output shape into the model's output shape */
        ml_tensor y, z;
        if (ml_tensor_alloc(&y, o->qndim, o->qshape) != VEIL_OK) return 0;
        int ok = ml_post_apply(o->post, o->npost, &y, &z) == VEIL_OK;
        ml_tensor_free(&y);
        if (ok) {
            ok = z.size == o->size;
            ml_tensor_free(&z);
        }
        if (!ok) return 0;
    }
    ml_model_totals(m);
    return 1;
}

static const char *what(int server) { return server ? "server bundle" : "client bundle"; }


/* One bundle from bytes: kind, circuit (with its program for a server bundle), id, and for a
 * client bundle the quantizers. */
static veil_status read_bundle(const uint8_t *buf, size_t len, int server, veil_circuit **c, uint8_t id[16],
                               veil_model *m)
{
    veil_container cn;
    veil_status st = veil_container_parse(buf, len, server ? VEIL_KIND_SERVER_BUNDLE : VEIL_KIND_CLIENT_BUNDLE, 0, &cn);
    if (st == VEIL_ERR_BAD_KIND) {
        veil_container other;
        if (veil_container_parse(buf, len, server ? VEIL_KIND_CLIENT_BUNDLE : VEIL_KIND_SERVER_BUNDLE, 0, &other) ==
            VEIL_OK)
            return ml_model_fail(st, "this is a %s, not a %s", what(!server), what(server));
    }
    if (st == VEIL_OK) st = veil_circuit_read_sections(&cn, server, c);
    if (st == VEIL_OK) st = read_id(&cn, id);
    if (st == VEIL_OK) veil_circuit_bind_model(*c, id);
    if (st == VEIL_OK && m && !server) st = read_modl(&cn, m);
    if (st == VEIL_OK && m && !server) st = veil_bundle_read_clear_mask(&cn, veil_circuit_input_count(*c), &m->opts.clear_inputs);
    if (st == VEIL_OK && m && !m->report) st = read_text(&cn, &m->report);
    if (st != VEIL_OK) return ml_model_fail(st, "%s: %s", what(server), veil_status_str(st));
    return VEIL_OK;
}

static veil_status read_file(const char *dir, const char *name, uint8_t **buf, size_t *len)
{
    char path[4096];
    if (snprintf(path, sizeof path, "%s/%s", dir, name) >= (int)sizeof path)
        return ml_model_fail(VEIL_ERR_INVALID_ARG, "%s: directory name too long", dir);
    veil_status st = veil_file_read_all(path, MAX_BUNDLE_BYTES, buf, len);
    if (st != VEIL_OK) return ml_model_fail(st, "%s: cannot read (%s)", path, veil_status_str(st));
    return VEIL_OK;
}

veil_status veil_model_deserialize(const uint8_t *client, size_t client_len, const uint8_t *server, size_t server_len,
                                   veil_model **out)
{
    if (!out) return ml_model_fail(VEIL_ERR_INVALID_ARG, "no output pointer");
    *out = NULL;
    if (!client) return ml_model_fail(VEIL_ERR_INVALID_ARG, "no bundle bytes");
    veil_model *m = veil_calloc(1, sizeof *m);
    if (!m) return ml_model_fail(VEIL_ERR_NOMEM, "out of memory");
    veil_circuit *cc = NULL;
    uint8_t cid[VEIL_MODEL_ID_BYTES], sid[VEIL_MODEL_ID_BYTES];
    veil_status st = read_bundle(client, client_len, 0, &cc, cid, m);
    if (st == VEIL_OK && !server) { /* a client's model: it quantizes, encrypts, decrypts, never runs */
        m->circuit = cc;
        cc = NULL;
        memcpy(sid, cid, sizeof cid);
    } else if (st == VEIL_OK) {
        st = read_bundle(server, server_len, 1, &m->circuit, sid, NULL);
    }
    if (st == VEIL_OK && cc && veil_params_fingerprint(veil_circuit_params(cc)) !=
                             veil_params_fingerprint(veil_circuit_params(m->circuit)))
        st = ml_model_fail(VEIL_ERR_PARAMS_MISMATCH, "client and server bundles are made for other parameters");
    else if (st == VEIL_OK && memcmp(cid, sid, sizeof cid) != 0)
        st = ml_model_fail(VEIL_ERR_PARAMS_MISMATCH, "client and server bundles come from different compilations");
    else if (st == VEIL_OK && !consistent(m))
        st = ml_model_fail(VEIL_ERR_MALFORMED, "client bundle: quantizers and circuit interface disagree");
    veil_circuit_free(cc);
    if (st != VEIL_OK) {
        veil_model_free(m);
        return st;
    }
    *out = m;
    return VEIL_OK;
}

veil_status veil_model_load(const char *dir, veil_model **out)
{
    if (!out) return ml_model_fail(VEIL_ERR_INVALID_ARG, "no output pointer");
    *out = NULL;
    if (!dir) return ml_model_fail(VEIL_ERR_INVALID_ARG, "no directory");
    uint8_t *cb = NULL, *sb = NULL;
    size_t cl = 0, sl = 0;
    veil_status st = read_file(dir, "client.veil", &cb, &cl);
    if (st == VEIL_OK) st = read_file(dir, "server.veil", &sb, &sl);
    if (st == VEIL_OK) {
        st = veil_model_deserialize(cb, cl, sb, sl, out);
        if (st != VEIL_OK) {
            char tmp[400];
            snprintf(tmp, sizeof tmp, "%s", veil_model_last_error());
            ml_model_fail(st, "%s: %s", dir, tmp);
        }
    }
    veil_free(cb), veil_free(sb);
    return st;
}

/* ---- description ------------------------------------------------------------------------------ */

static void sb_shape(veil_sb *b, int nd, const int64_t *s)
{
    veil_sb_printf(b, "(");
    for (int d = 0; d < nd; d++) veil_sb_printf(b, "%s%lld", d ? ", " : "", (long long)s[d]);
    veil_sb_printf(b, nd == 1 ? ",)" : ")");
}

char *veil_model_describe(const veil_model *m)
{
    if (!m) return NULL;
    veil_sb b = {0};
    const veil_model_options *o = &m->opts;
    for (int i = 0; i < m->nin; i++) {
        const ml_in_info *in = &m->in[i];
        if (m->nin > 1) veil_sb_printf(&b, "input '%s' ", veil_model_input_name(m, (size_t)i));
        else veil_sb_printf(&b, "input  ");
        sb_shape(&b, in->ndim, in->shape);
        veil_sb_printf(&b, "  quantized as round(x / %.6g) + %.6g, clipped to [%.0f, %.0f]%s\n", in->q.scale,
                       in->q.zp + 0.0, in->q.qmin, in->q.qmax,
                       i < 32 && (o->clear_inputs >> i & 1) ? ", sent in the clear (not encrypted)" : "");
    }
    for (int j = 0; j < m->nout; j++) {
        const ml_out_info *oi = &m->out[j];
        if (m->nout > 1) veil_sb_printf(&b, "output '%s' ", oi->name);
        else veil_sb_printf(&b, "output ");
        sb_shape(&b, oi->ndim, oi->shape);
        veil_sb_printf(&b, "  dequantized as %.6g * (q - %.6g)", oi->scale, oi->zp + 0.0);
        for (int i = 0; i < oi->npost; i++) {
            const ml_post_op *po = &oi->post[i];
            veil_sb_printf(&b, "%s%s", i ? ", " : ", then on the client: ", ml_op_names[po->op]);
            if (po->op == ML_OP_SCORES_LABEL) veil_sb_printf(&b, "(%d classes)", po->nv);
            else if (po->op == ML_OP_SCORES_TRANSFORM)
                veil_sb_printf(&b, "(%s%s%s)", ml_post_names[po->mode & 15], po->nv ? ", base values" : "",
                               po->mode >> 4 ? ", one score of two classes" : "");
            else if (po->op == ML_OP_NORMALIZER) veil_sb_printf(&b, "(%s)", ml_norm_names[po->mode]);
            else if (po->op == ML_OP_CAST) veil_sb_printf(&b, "(to=%lld)", (long long)po->mode);
            else if (po->op != ML_OP_ZIPMAP && po->op != ML_OP_IDENTITY) veil_sb_printf(&b, "(axis=%lld)", (long long)po->axis);
        }
        veil_sb_printf(&b, "\n");
    }
    veil_sb_printf(&b, "options: %s, n_bits {op_inputs %d, op_weights %d, model_inputs %d, model_outputs %d}, ",
                   o->qat ? "quantization-aware" : "post-training", o->n_bits.op_inputs, o->n_bits.op_weights,
                   o->n_bits.model_inputs, o->n_bits.model_outputs);
    if (o->rounding_bits)
        veil_sb_printf(&b, "%s to %d bits (%s%s), ", o->auto_rounding ? "automatic rounding" : "rounding",
                       o->rounding_bits, o->rounding_method == VEIL_ROUNDING_EXACT ? "exact" : "approximate",
                       o->auto_rounding ? ", each channel over its own range" : "");
    else
        veil_sb_printf(&b, o->auto_rounding ? "automatic rounding: none needed, " : "no rounding, ");
    if (o->global_p_error > 0) veil_sb_printf(&b, "global_p_error %.3g\n", o->global_p_error);
    else veil_sb_printf(&b, "p_error %.3g (2^%.1f)\n", o->p_error, log2(o->p_error));
    const veil_circuit *c = m->circuit;
    const veil_params *p = veil_circuit_params(c);
    veil_circuit_stats s;
    veil_circuit_get_stats(c, &s);
    if (s.partitions <= 1)
        veil_sb_printf(&b,
                       "parameters %s: n %u, k %u, N 2^%u, PBS base 2^%u x %u levels, key switch base 2^%u x %u "
                       "levels, fingerprint %016llx\n",
                       p->name, p->n, p->k, p->log2_N, p->pbs_base_log, p->pbs_levels, p->ks_base_log, p->ks_levels,
                       (unsigned long long)veil_params_fingerprint(p));
    else {
        veil_sb_printf(&b,
                       "parameters: %zu sets (precision partitions) sharing one key (n %u, k·N %u), fingerprint "
                       "%016llx; %zu cross-partition key switches per inference; cost %.3g (single precision %.3g)\n",
                       s.partitions, p->n, veil_params_big_lwe_dim(p), (unsigned long long)veil_params_fingerprint(p),
                       s.cross_ks_count, s.cost, s.single_cost);
        for (size_t j = 0; j < s.partitions; j++) {
            veil_partition_stats q;
            if (veil_circuit_get_partition(c, j, &q) != VEIL_OK) break;
            const veil_params *x = &q.params;
            veil_sb_printf(&b,
                           "  partition %zu, %s: %zu lookups of up to %u bits, n %u, k %u, N 2^%u, PBS base 2^%u x %u, "
                           "key switch base 2^%u x %u from k·N %u; keys %.1f MB (%.1f MB compressed); p_error %.3g\n",
                           j, x->name, q.pbs_count, q.lookup_bits, x->n, x->k, x->log2_N, x->pbs_base_log,
                           x->pbs_levels, x->ks_base_log, x->ks_levels, veil_params_ks_dim(x),
                           (double)(q.bsk_bytes + q.ksk_bytes) / 1e6,
                           (double)(q.bsk_seeded_bytes + q.ksk_seeded_bytes) / 1e6, q.p_error);
        }
    }
    if (s.ks_count && s.ks_count < s.pbs_count) /* multi-value lookups share their input's bootstrapping */
        veil_sb_printf(&b,
                       "statistics: max bit-width %u, encoding precision %u bits, lookups read %u bits, %zu lookups in "
                       "%zu PBS and %zu key switches per inference (multi-value bootstrapping), %zu linear terms\n",
                       m->max_bits, s.precision, s.lookup_bits, s.pbs_count, s.ks_count, s.ks_count, s.linear_terms);
    else
        veil_sb_printf(&b,
                       "statistics: max bit-width %u, encoding precision %u bits, lookups read %u bits, %zu PBS and %zu "
                       "key switches per inference, %zu linear terms\n",
                       m->max_bits, s.precision, s.lookup_bits, s.pbs_count, s.ks_count, s.linear_terms);
    veil_sb_printf(&b,
                   "keys and ciphertexts: bootstrapping key %.1f MB, key-switching key %.1f MB (%.1f MB in all, "
                   "%.1f MB compressed), inputs %.1f kB, outputs %.1f kB per inference\n",
                   (double)s.bsk_bytes / 1e6, (double)s.ksk_bytes / 1e6, (double)(s.bsk_bytes + s.ksk_bytes) / 1e6,
                   (double)(s.bsk_seeded_bytes + s.ksk_seeded_bytes) / 1e6,
                   (double)s.input_bytes / 1e3, (double)s.output_bytes / 1e3);
    veil_sb_printf(&b, "error probability: %.3g per lookup (worst), %.3g per inference\n", s.p_error,
                   s.global_p_error);
    return veil_sb_take(&b);
}
