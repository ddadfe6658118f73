/* Shared by the client and the server halves of deployment (src/deploy/): one-line reasons for a
 * refused object, the model id. Internal to libveil. */
#ifndef VEIL_DEPLOY_H
#define VEIL_DEPLOY_H

#include <stddef.h>
#include <stdint.h>

#include "../core/container.h"
#include "../runtime/circuit_io.h"
#include "../tfhe/serialize.h"
#include "veil/tfhe.h"


/* Why `buf` (meant to be a `want` made for parameters `expect`) was refused with `st`: which kind
 * it really is, which format version, which parameters. Writes one line into msg; returns st. */
veil_status veil_deploy_explain(const uint8_t *buf, size_t len, veil_kind want, const veil_params *expect, veil_status st,
                         char *msg, size_t cap);
const char *veil_kind_name(veil_kind k);
/* The client's reading of server answers (remote.c; fuzzed by tests/fuzz/fuzz_json.c): an error
 * {"error": "..."} as "HTTP CODE: ...", and an upload's {"key_id": "..."} (1 when it is there,
 * a string of under cap bytes of hex digits). */
void veil_deploy_server_error(const uint8_t *body, size_t len, long code, char *out, size_t cap);
int veil_deploy_key_id(const uint8_t *body, size_t len, char *out, size_t cap);
/* Why ciphertexts were refused with VEIL_ERR_MODEL_MISMATCH by the model of id `want_hex`. */
veil_status veil_deploy_model_mismatch(const uint8_t *buf, size_t len, const char *want_hex, char *msg, size_t cap);
/* Sets the calling thread's veil_client_last_error() (client.c; remote.c reports through it). */
void veil_client_set_error(const char *msg);
void veil_hex(const uint8_t *b, size_t n, char *out); /* 2n characters + NUL */
/* A whole file through `from` (a from_bytes function with its output pointer cast to void **);
 * failures leave "PATH: reason" in err (which `from` also writes its reason into). */
veil_status veil_deploy_load(const char *path, size_t max_bytes, veil_status (*from)(const uint8_t *, size_t, void **),
                             void **out, char *err, size_t cap);
/* A small text file, NUL-terminated (malloc'd; NULL when unreadable or over 1 MB). */
char *veil_read_text(const char *path);

#endif
