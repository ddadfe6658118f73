/* One-line reasons for refused deployment objects (bundles, keys, ciphertexts). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "../tfhe/serialize.h"
#include "deploy.h"

void veil_deploy_server_error(const uint8_t *body, size_t len, long code, char *out, size_t cap)
{
    json_t *j = body ? json_loadb((const char *)body, len, 0, NULL) : NULL;
    const char *msg = j ? json_string_value(json_object_get(j, "error")) : NULL;
    snprintf(out, cap, "HTTP %ld: %.300s", code, msg ? msg : "(no message)");
    json_decref(j);
}

int veil_deploy_key_id(const uint8_t *body, size_t len, char *out, size_t cap)
{
    json_t *j = body ? json_loadb((const char *)body, len, 0, NULL) : NULL;
    const char *kid = j ? json_string_value(json_object_get(j, "key_id")) : NULL;
    size_t n = kid ? strlen(kid) : 0;
    int ok = kid && n > 0 && n < cap && strspn(kid, "0123456789abcdef") == n;
    if (ok) memcpy(out, kid, n + 1);
    json_decref(j);
    return ok;
}

const char *veil_kind_name(veil_kind k)
{
    static const char *const names[] = {
        [VEIL_KIND_NONE] = "nothing", [VEIL_KIND_PARAMS] = "a parameter set",
        [VEIL_KIND_SECRET_KEY] = "a secret key", [VEIL_KIND_EVAL_KEYS] = "evaluation keys",
        [VEIL_KIND_LWE_CIPHERTEXTS] = "ciphertexts", [VEIL_KIND_CIRCUIT] = "a circuit",
        [VEIL_KIND_CLIENT_BUNDLE] = "a client bundle", [VEIL_KIND_SERVER_BUNDLE] = "a server bundle",
    };
    return (unsigned)k < VEIL_KIND_COUNT ? names[k] : "an unknown kind of object";
}

void veil_hex(const uint8_t *b, size_t n, char *out)
{
    static const char d[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) out[2 * i] = d[b[i] >> 4], out[2 * i + 1] = d[b[i] & 15];
    out[2 * n] = 0;
}

veil_status veil_deploy_model_mismatch(const uint8_t *buf, size_t len, const char *want_hex, char *msg, size_t cap)
{
    uint8_t id[VEIL_MODEL_ID_BYTES];
    char hex[2 * VEIL_MODEL_ID_BYTES + 1];
    if (veil_lwe_list_model_id(buf, len, id) == VEIL_OK) {
        veil_hex(id, sizeof id, hex);
        snprintf(msg, cap, "ciphertexts made for another model (model id %s; this model's is %s): encrypt with this "
                           "model's client bundle", hex, want_hex);
    } else {
        snprintf(msg, cap, "ciphertexts carry no model id (made by an older veil, or not by a client of this model "
                           "%s): encrypt with this model's client bundle", want_hex);
    }
    return VEIL_ERR_MODEL_MISMATCH;
}

veil_status veil_deploy_explain(const uint8_t *buf, size_t len, veil_kind want, const veil_params *expect,
                                veil_status st, char *msg, size_t cap)
{
    const char *what = veil_kind_name(want);
    unsigned version = 0, kind = 0;
    if (veil_container_peek(buf, len, &version, &kind) != VEIL_OK) version = kind = 0;
    veil_container c;
    veil_params p;
    switch (st) {
    case VEIL_ERR_BAD_VERSION:
        snprintf(msg, cap, "%s in format version %u; this build reads versions %u to %u%s", what, version,
                 VEIL_FORMAT_VERSION_MIN, VEIL_FORMAT_VERSION,
                 version > VEIL_FORMAT_VERSION ? " (made by newer software)" : "");
        return st;
    case VEIL_ERR_BAD_KIND:
        snprintf(msg, cap, "expected %s, got %s", what, veil_kind_name(kind < VEIL_KIND_COUNT ? (veil_kind)kind
                                                                                              : VEIL_KIND_COUNT));
        return st;
    case VEIL_ERR_PARAMS_MISMATCH:
        if (expect && veil_container_parse(buf, len, want, VEIL_FLAG_SEEDED, &c) == VEIL_OK &&
            veil_params_read_section(&c, NULL, &p) == VEIL_OK) {
            snprintf(msg, cap, "%s made for other parameters (fingerprint %016llx; this model's is %016llx): "
                     "keys or ciphertexts of another model", what, (unsigned long long)veil_params_fingerprint(&p),
                     (unsigned long long)veil_params_fingerprint(expect));
            return st;
        }
        break;
    case VEIL_ERR_TRUNCATED:
        snprintf(msg, cap, "%s truncated (%zu bytes)", what, len);
        return st;
    case VEIL_ERR_BAD_MAGIC:
        snprintf(msg, cap, "not %s: no veil header", what);
        return st;
    case VEIL_ERR_CHECKSUM:
        snprintf(msg, cap, "%s corrupted (checksum mismatch)", what);
        return st;
    case VEIL_ERR_MALFORMED:
        snprintf(msg, cap, "%s malformed: a field is out of bounds or does not fit this model", what);
        return st;
    default: break;
    }
    snprintf(msg, cap, "%s refused: %s", what, veil_status_str(st));
    return st;
}

veil_status veil_deploy_load(const char *path, size_t max_bytes, veil_status (*from)(const uint8_t *, size_t, void **),
                             void **out, char *err, size_t cap)
{
    uint8_t *buf;
    size_t len;
    veil_status st = veil_file_read_all(path, max_bytes, &buf, &len);
    if (st != VEIL_OK) {
        snprintf(err, cap, "%s: cannot read (%s)", path, veil_status_str(st));
        return st;
    }
    st = from(buf, len, out);
    veil_free(buf);
    if (st != VEIL_OK) {
        char reason[512];
        snprintf(reason, sizeof reason, "%s", err);
        snprintf(err, cap, "%s: %s", path, reason);
    }
    return st;
}

char *veil_read_text(const char *path)
{
    uint8_t *b;
    size_t len;
    if (veil_file_read_all(path, 1 << 20, &b, &len) != VEIL_OK) return NULL;
    char *s = veil_malloc(len + 1);
    if (s) memcpy(s, b, len), s[len] = 0;
    veil_free(b);
    return s;
}
