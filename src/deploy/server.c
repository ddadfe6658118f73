/* The server side of a deployed model: a server bundle's program, evaluation keys from their
 * bytes, and one evaluation from serialized inputs to serialized outputs. No secret-key code. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "../runtime/circuit_io.h"
#include "../tfhe/serialize.h"
#include "deploy.h"
#include "veil/server.h"

enum { MAX_BUNDLE_BYTES = 1 << 30 };

struct veil_server_model {
    veil_circuit *circuit;
    uint32_t clear_inputs; /* inputs sent in the clear (run as trivial ciphertexts) */
    char id[2 * VEIL_MODEL_ID_BYTES + 1];
};

static _Thread_local char server_err[400];
const char *veil_server_last_error(void) { return server_err; }

static veil_status fail(veil_status st, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static veil_status fail(veil_status st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(server_err, sizeof server_err, fmt, ap);
    va_end(ap);
    return st;
}


veil_status veil_server_model_from_bytes(const uint8_t *buf, size_t len, veil_server_model **out)
{
    if (!buf || !out) return fail(VEIL_ERR_INVALID_ARG, "no bundle bytes");
    *out = NULL;
    server_err[0] = 0;
    veil_container cn;
    veil_status st = veil_container_parse(buf, len, VEIL_KIND_SERVER_BUNDLE, 0, &cn);
    if (st != VEIL_OK) return veil_deploy_explain(buf, len, VEIL_KIND_SERVER_BUNDLE, NULL, st,
                                                  server_err, sizeof server_err);
    veil_server_model *m = veil_calloc(1, sizeof *m);
    if (!m) return fail(VEIL_ERR_NOMEM, "out of memory");
    const uint8_t *id;
    size_t idl;
    if ((st = veil_circuit_read_sections(&cn, 1, &m->circuit)) != VEIL_OK ||
        (st = veil_container_section(&cn, TAG_MDID, &id, &idl)) != VEIL_OK || idl != VEIL_MODEL_ID_BYTES ||
        (st = veil_bundle_read_clear_mask(&cn, veil_circuit_input_count(m->circuit), &m->clear_inputs)) != VEIL_OK) {
        veil_server_model_free(m);
        return veil_deploy_explain(buf, len, VEIL_KIND_SERVER_BUNDLE, NULL, st != VEIL_OK ? st : VEIL_ERR_MALFORMED,
                                   server_err, sizeof server_err);
    }
    veil_hex(id, VEIL_MODEL_ID_BYTES, m->id);
    veil_circuit_bind_model(m->circuit, id);
    *out = m;
    return VEIL_OK;
}

static veil_status from_bytes(const uint8_t *buf, size_t len, void **out)
{
    return veil_server_model_from_bytes(buf, len, (veil_server_model **)out);
}

veil_status veil_server_model_load(const char *path, veil_server_model **out)
{
    if (!path || !out) return fail(VEIL_ERR_INVALID_ARG, "no path");
    *out = NULL;
    return veil_deploy_load(path, MAX_BUNDLE_BYTES, from_bytes, (void **)out, server_err, sizeof server_err);
}

void veil_server_model_free(veil_server_model *m)
{
    if (!m) return;
    veil_circuit_free(m->circuit);
    veil_free(m);
}

const veil_circuit *veil_server_model_circuit(const veil_server_model *m) { return m ? m->circuit : NULL; }
const char *veil_server_model_id(const veil_server_model *m) { return m ? m->id : ""; }

veil_status veil_server_keys_precheck(const veil_server_model *m, const uint8_t *head, size_t len)
{
    if (!m || !head) return fail(VEIL_ERR_INVALID_ARG, "no bytes");
    server_err[0] = 0;
    if (len < VEIL_CONTAINER_HEADER_BYTES) return VEIL_OK; /* nothing to say yet */
    unsigned version, kind;
    veil_status st = veil_container_peek(head, len, &version, &kind);
    if (st == VEIL_OK && (version < VEIL_FORMAT_VERSION_MIN || version > VEIL_FORMAT_VERSION)) st = VEIL_ERR_BAD_VERSION;
    else if (st == VEIL_OK && kind != VEIL_KIND_EVAL_KEYS) st = VEIL_ERR_BAD_KIND;
    if (st != VEIL_OK) return veil_deploy_explain(head, len, VEIL_KIND_EVAL_KEYS, NULL, st,
                                                  server_err, sizeof server_err);
    /* the parameters come first: check them as soon as their section is in */
    size_t off = VEIL_CONTAINER_HEADER_BYTES;
    if (len < off + 12) return VEIL_OK;
    uint32_t tag = 0;
    uint64_t sl = 0;
    for (int i = 0; i < 4; i++) tag |= (uint32_t)head[off + i] << (8 * i);
    for (int i = 0; i < 8; i++) sl |= (uint64_t)head[off + 4 + i] << (8 * i);
    if (tag != TAG_PARAMS || sl > len - off - 12) return VEIL_OK;
    veil_container c = {.version = version, .nsections = 1, .tags = {TAG_PARAMS}, .sec = {head + off + 12}, .sec_len = {sl}};
    veil_params p;
    const veil_params *want = veil_circuit_params(m->circuit);
    st = veil_params_read_section(&c, want, &p);
    if (st == VEIL_ERR_PARAMS_MISMATCH)
        return fail(st, "evaluation keys made for other parameters (fingerprint %016llx; this model's is %016llx): "
                        "keys of another model",
                    (unsigned long long)veil_params_fingerprint(&p), (unsigned long long)veil_params_fingerprint(want));
    if (st != VEIL_OK) return fail(st, "evaluation keys: malformed parameters section");
    return VEIL_OK;
}

veil_status veil_server_keys_load(const veil_server_model *m, const uint8_t *buf, size_t len, veil_eval_keys **out)
{
    if (!m || !buf || !out) return fail(VEIL_ERR_INVALID_ARG, "no key bytes");
    *out = NULL;
    server_err[0] = 0;
    const veil_params *want = veil_circuit_params(m->circuit);
    veil_status st = veil_eval_keys_deserialize(buf, len, want, out);
    if (st != VEIL_OK) return veil_deploy_explain(buf, len, VEIL_KIND_EVAL_KEYS, want, st,
                                                  server_err, sizeof server_err);
    /* the server only evaluates: the Fourier key and the KSK remain (kept whole when other ranks
     * get the keys from this process, compressed: veil/dist.h) */
    if (!veil_runtime_spread_active()) veil_eval_keys_compact(*out);
    return VEIL_OK;
}

veil_status veil_server_run(const veil_server_model *m, const veil_eval_keys *ek, const uint8_t *in, size_t in_len,
                            unsigned threads, uint8_t **out, size_t *out_len)
{
    if (!m || !in || !out || !out_len) return fail(VEIL_ERR_INVALID_ARG, "no input bytes");
    *out = NULL;
    server_err[0] = 0;
    const veil_params *P = veil_circuit_params(m->circuit);
    if (ek && veil_params_fingerprint(veil_eval_keys_params(ek)) != veil_params_fingerprint(P))
        return fail(VEIL_ERR_PARAMS_MISMATCH, "these evaluation keys belong to another model's parameters");
    veil_ciphertexts *x = NULL, *y = NULL;
    veil_status st = veil_ciphertexts_deserialize_mixed(m->circuit, m->clear_inputs, in, in_len, &x);
    if (st == VEIL_ERR_MALFORMED && m->clear_inputs) {
        int64_t ne = 0, nc = 0;
        for (size_t i = 0; i < veil_circuit_input_count(m->circuit); i++)
            *(m->clear_inputs >> i & 1 ? &nc : &ne) += veil_circuit_input_size(m->circuit, i);
        return fail(st, "the request does not fit this model's inputs: %lld ciphertexts and %lld clear values (within "
                        "the encoding's message bits) expected",
                    (long long)ne, (long long)nc);
    }
    if (st == VEIL_ERR_MODEL_MISMATCH) return veil_deploy_model_mismatch(in, in_len, m->id, server_err, sizeof server_err);
    if (st != VEIL_OK) return veil_deploy_explain(in, in_len, VEIL_KIND_LWE_CIPHERTEXTS, P, st,
                                                  server_err, sizeof server_err);
    st = veil_circuit_run(m->circuit, ek, x, threads, &y);
    if (st == VEIL_OK) st = veil_ciphertexts_serialize(m->circuit, y, out, out_len);
    veil_ciphertexts_free(x);
    veil_ciphertexts_free(y);
    if (st != VEIL_OK) return fail(st, "evaluation failed: %s", veil_status_str(st));
    return VEIL_OK;
}
