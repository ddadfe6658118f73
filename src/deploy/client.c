/* The client side of a deployed model: a client bundle, the secret key (made, saved with mode
 * 0600, loaded), compressed evaluation keys, and one sample to and from ciphertext bytes. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../ml/model_impl.h"
#include "deploy.h"
#include "veil/client.h"

enum { MAX_BUNDLE_BYTES = 1 << 26, MAX_KEY_BYTES = 1 << 24 };

struct veil_client {
    veil_model *m; /* interface-only circuit; holds sk and ek after keygen */
    char id[2 * VEIL_MODEL_ID_BYTES + 1];
    uint8_t *pass; /* secret keys sealed under it when set (wiped with the client) */
    size_t pass_len;
};

static _Thread_local char client_err[400];
const char *veil_client_last_error(void) { return client_err; }
void veil_client_set_error(const char *msg) { snprintf(client_err, sizeof client_err, "%s", msg); }

static veil_status fail(veil_status st, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static veil_status fail(veil_status st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(client_err, sizeof client_err, fmt, ap);
    va_end(ap);
    return st;
}


static const veil_params *params(const veil_client *c) { return veil_circuit_params(c->m->circuit); }

veil_status veil_client_from_bytes(const uint8_t *buf, size_t len, veil_client **out)
{
    if (!buf || !out) return fail(VEIL_ERR_INVALID_ARG, "no bundle bytes");
    *out = NULL;
    client_err[0] = 0;
    veil_container cn;
    const uint8_t *id;
    size_t idl;
    veil_status st = veil_container_parse(buf, len, VEIL_KIND_CLIENT_BUNDLE, 0, &cn);
    if (st == VEIL_OK && ((st = veil_container_section(&cn, TAG_MDID, &id, &idl)) != VEIL_OK ||
                          idl != VEIL_MODEL_ID_BYTES))
        st = VEIL_ERR_MALFORMED;
    if (st != VEIL_OK) return veil_deploy_explain(buf, len, VEIL_KIND_CLIENT_BUNDLE, NULL, st,
                                                  client_err, sizeof client_err);
    veil_client *c = veil_calloc(1, sizeof *c);
    if (!c) return fail(VEIL_ERR_NOMEM, "out of memory");
    veil_hex(id, VEIL_MODEL_ID_BYTES, c->id);
    if ((st = veil_model_deserialize(buf, len, NULL, 0, &c->m)) != VEIL_OK) {
        veil_free(c);
        return fail(st, "%s", veil_model_last_error());
    }
    *out = c;
    return VEIL_OK;
}

static veil_status from_bytes(const uint8_t *buf, size_t len, void **out)
{
    return veil_client_from_bytes(buf, len, (veil_client **)out);
}

veil_status veil_client_load(const char *path, veil_client **out)
{
    if (!path || !out) return fail(VEIL_ERR_INVALID_ARG, "no path");
    *out = NULL;
    return veil_deploy_load(path, MAX_BUNDLE_BYTES, from_bytes, (void **)out, client_err, sizeof client_err);
}

void veil_client_free(veil_client *c)
{
    if (!c) return;
    veil_model_free(c->m); /* wipes the secret key */
    veil_free_secret(c->pass, c->pass_len);
    veil_free(c);
}

const veil_model *veil_client_model(const veil_client *c) { return c ? c->m : NULL; }
const char *veil_client_model_id(const veil_client *c) { return c ? c->id : ""; }
int veil_client_has_secret_key(const veil_client *c) { return c && c->m->sk; }

veil_status veil_client_keygen(veil_client *c, const uint8_t *seed)
{
    if (!c) return fail(VEIL_ERR_INVALID_ARG, "no client");
    veil_status st = veil_model_keygen(c->m, seed);
    return st == VEIL_OK ? VEIL_OK : fail(st, "%s", veil_model_last_error());
}

veil_status veil_client_save_secret_key(const veil_client *c, const char *path)
{
    if (!c || !path) return fail(VEIL_ERR_INVALID_ARG, "no client or path");
    if (!c->m->sk) return fail(VEIL_ERR_INVALID_ARG, "no secret key: call veil_client_keygen first");
    uint8_t *buf;
    size_t len;
    veil_status st = c->pass ? veil_secret_key_serialize_sealed(c->m->sk, c->pass, c->pass_len, &buf, &len)
                             : veil_secret_key_serialize(c->m->sk, &buf, &len);
    if (st != VEIL_OK) return fail(st, "cannot serialize the secret key: %s", veil_status_str(st));
    st = veil_file_write_atomic(path, buf, len, 0600);
    veil_free_secret(buf, len);
    return st == VEIL_OK ? VEIL_OK : fail(st, "%s: cannot write (%s)", path, veil_status_str(st));
}

veil_status veil_client_load_secret_key(veil_client *c, const char *path)
{
    if (!c || !path) return fail(VEIL_ERR_INVALID_ARG, "no client or path");
    uint8_t *buf;
    size_t len;
    veil_status st = veil_file_read_all(path, MAX_KEY_BYTES, &buf, &len);
    if (st != VEIL_OK) return fail(st, "%s: cannot read (%s)", path, veil_status_str(st));
    veil_secret_key *sk = NULL;
    st = veil_secret_key_deserialize_sealed(buf, len, params(c), c->pass ? c->pass : NULL, c->pass_len, &sk);
    if (st == VEIL_ERR_PASSPHRASE) {
        veil_free_secret(buf, len);
        return fail(st, c->pass ? "%s: wrong passphrase (or the file was altered)"
                                : "%s: protected by a passphrase: give it (veil_client_set_passphrase, --passphrase-file)",
                    path);
    }
    if (st != VEIL_OK) {
        char msg[400];
        veil_deploy_explain(buf, len, VEIL_KIND_SECRET_KEY, params(c), st, msg, sizeof msg);
        veil_free_secret(buf, len);
        return fail(st, "%s: %s", path, msg);
    }
    veil_free_secret(buf, len);
    veil_secret_key_free(c->m->sk);
    veil_eval_keys_free(c->m->ek); /* they belonged to the previous secret key */
    c->m->sk = sk;
    c->m->ek = NULL;
    return VEIL_OK;
}

veil_status veil_client_set_passphrase(veil_client *c, const char *pass, size_t len)
{
    if (!c || (!pass && len) || len > (1u << 20)) return fail(VEIL_ERR_INVALID_ARG, "no client, or a passphrase over 1 MiB");
    uint8_t *copy = NULL;
    if (pass && !(copy = veil_malloc(len + 1))) return fail(VEIL_ERR_NOMEM, "out of memory");
    if (copy) memcpy(copy, pass, len);
    veil_free_secret(c->pass, c->pass_len);
    c->pass = copy;
    c->pass_len = copy ? len : 0;
    return VEIL_OK;
}

int veil_client_needs_eval_keys(const veil_client *c)
{
    if (!c) return 1;
    veil_circuit_stats s;
    veil_circuit_get_stats(c->m->circuit, &s);
    return s.pbs_count > 0;
}

veil_status veil_client_eval_keys(const veil_client *c, uint8_t **out, size_t *len)
{
    if (!c || !out || !len) return fail(VEIL_ERR_INVALID_ARG, "no output");
    *out = NULL;
    if (!c->m->ek) {
        if (c->m->sk && !veil_client_needs_eval_keys(c))
            return fail(VEIL_ERR_UNSUPPORTED, "this model has no lookups: it needs no evaluation keys");
        return fail(VEIL_ERR_INVALID_ARG, "no evaluation keys in this process: call veil_client_keygen");
    }
    veil_status st = veil_eval_keys_serialize(c->m->ek, 1, out, len);
    return st == VEIL_OK ? VEIL_OK : fail(st, "cannot serialize the evaluation keys: %s", veil_status_str(st));
}

static int mkdirs(const char *dir)
{
    char tmp[2048];
    if (snprintf(tmp, sizeof tmp, "%s", dir) >= (int)sizeof tmp) return 0;
    for (char *p = tmp + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            if (mkdir(tmp, 0700) != 0 && errno != EEXIST) return 0;
            *p = '/';
        }
    return mkdir(tmp, 0700) == 0 || errno == EEXIST;
}

veil_status veil_client_save_keys(const veil_client *c, const char *dir)
{
    if (!c || !dir) return fail(VEIL_ERR_INVALID_ARG, "no client or directory");
    if (!mkdirs(dir)) return fail(VEIL_ERR_IO, "cannot create %s: %s", dir, strerror(errno));
    char p[2200], line[64];
    uint8_t *ek = NULL;
    size_t ekl = 0;
    veil_status st;
    snprintf(p, sizeof p, "%s/secret.key", dir);
    if ((st = veil_client_save_secret_key(c, p)) != VEIL_OK) return st;
    snprintf(p, sizeof p, "%s/eval.keys", dir);
    if (veil_client_needs_eval_keys(c)) {
        if ((st = veil_client_eval_keys(c, &ek, &ekl)) != VEIL_OK) return st;
        st = veil_file_write_atomic(p, ek, ekl, 0600);
        veil_free(ek);
        if (st != VEIL_OK) return fail(st, "%s: cannot write (%s)", p, veil_status_str(st));
    } else {
        unlink(p); /* a leveled model has none: no stale keys of an earlier compilation */
    }
    snprintf(p, sizeof p, "%s/model_id", dir);
    int n = snprintf(line, sizeof line, "%s\n", c->id);
    if ((st = veil_file_write_atomic(p, (const uint8_t *)line, (size_t)n, 0600)) != VEIL_OK)
        return fail(st, "%s: cannot write (%s)", p, veil_status_str(st));
    return VEIL_OK;
}

veil_status veil_client_load_keys(veil_client *c, const char *dir)
{
    if (!c || !dir) return fail(VEIL_ERR_INVALID_ARG, "no client or directory");
    char p[2200];
    snprintf(p, sizeof p, "%s/model_id", dir);
    char *id = veil_read_text(p);
    if (!id) return fail(VEIL_ERR_IO, "%s: no keys here (make them with veil keygen or veil client)", dir);
    int same = strncmp(id, c->id, 2 * VEIL_MODEL_ID_BYTES) == 0;
    if (!same) {
        id[strcspn(id, "\n")] = 0;
        veil_status st = fail(VEIL_ERR_PARAMS_MISMATCH, "%s: keys made for model %.32s, not for this one (%s)", dir, id,
                              c->id);
        veil_free(id);
        return st;
    }
    veil_free(id);
    snprintf(p, sizeof p, "%s/secret.key", dir);
    return veil_client_load_secret_key(c, p);
}

veil_status veil_client_quantize_encrypt_serialize(const veil_client *c, const double *x, uint8_t **out, size_t *len)
{
    if (!c || !x || !out || !len) return fail(VEIL_ERR_INVALID_ARG, "no input");
    *out = NULL;
    if (!c->m->sk) return fail(VEIL_ERR_INVALID_ARG, "no secret key: call veil_client_keygen or load one");
    int64_t n = veil_model_input_size(c->m);
    int64_t *q = veil_malloc(sizeof(int64_t) * (size_t)(n ? n : 1));
    if (!q) return fail(VEIL_ERR_NOMEM, "out of memory");
    veil_status st = veil_model_quantize_input(c->m, x, q);
    if (st != VEIL_OK) {
        veil_free(q);
        return fail(st, "%s", veil_model_last_error());
    }
    int64_t *ins[VEIL_MODEL_MAX_IO]; /* every input's elements, one input after another */
    veil_circuit_io_split(c->m->circuit, 0, q, ins, VEIL_MODEL_MAX_IO);
    st = veil_circuit_encrypt_serialize_mixed(c->m->circuit, c->m->sk, (const int64_t *const *)ins,
                                              c->m->opts.clear_inputs, NULL, out, len);
    veil_memzero(q, sizeof(int64_t) * (size_t)n);
    veil_free(q);
    return st == VEIL_OK ? VEIL_OK : fail(st, "encryption failed: %s", veil_status_str(st));
}

veil_status veil_client_deserialize_decrypt_dequantize(const veil_client *c, const uint8_t *buf, size_t len, double *y)
{
    if (!c || !buf || !y) return fail(VEIL_ERR_INVALID_ARG, "no bytes or output");
    if (!c->m->sk) return fail(VEIL_ERR_INVALID_ARG, "no secret key: call veil_client_keygen or load one");
    veil_ciphertexts *v = NULL;
    veil_status st = veil_ciphertexts_deserialize(c->m->circuit, 1, buf, len, &v);
    if (st == VEIL_ERR_MODEL_MISMATCH) return veil_deploy_model_mismatch(buf, len, c->id, client_err, sizeof client_err);
    if (st != VEIL_OK) return veil_deploy_explain(buf, len, VEIL_KIND_LWE_CIPHERTEXTS, params(c), st,
                                                  client_err, sizeof client_err);
    int64_t n = veil_model_quantized_output_size(c->m);
    int64_t *q = veil_malloc(sizeof(int64_t) * (size_t)(n ? n : 1));
    int64_t *outs[VEIL_MODEL_MAX_IO]; /* every output's elements, one output after another */
    veil_circuit_io_split(c->m->circuit, 1, q, outs, VEIL_MODEL_MAX_IO);
    st = q ? veil_circuit_decrypt(c->m->circuit, c->m->sk, v, outs) : VEIL_ERR_NOMEM;
    veil_ciphertexts_free(v);
    if (st == VEIL_OK && (st = veil_model_dequantize_output(c->m, q, y)) != VEIL_OK)
        fail(st, "%s", veil_model_last_error());
    else if (st != VEIL_OK)
        fail(st, "decryption failed: %s", veil_status_str(st));
    if (q) veil_memzero(q, sizeof(int64_t) * (size_t)n);
    veil_free(q);
    return st;
}
