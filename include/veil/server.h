/* veil/server.h — the server side of a deployed model: it holds the program and evaluation keys,
 * never a secret key (this part of libveil links no secret-key code; see veil-serve).
 *
 *     veil_server_model *m;   veil_server_model_load("digits/server.veil", &m);
 *     veil_eval_keys *ek;     veil_server_keys_load(m, key_bytes, key_len, &ek);   // once per client
 *     uint8_t *out; size_t n; veil_server_run(m, ek, request, request_len, 0, &out, &n);
 *
 * Every refusal (keys or ciphertexts of another model, truncated or corrupted bytes, a newer
 * format) returns a status and leaves one line saying which in veil_server_last_error().
 */
#ifndef VEIL_SERVER_H
#define VEIL_SERVER_H

#include "veil/runtime.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct veil_server_model veil_server_model;

const char *veil_server_last_error(void); /* the calling thread's, "" when none */

/* A server bundle (DIR/server.veil, written by veil_model_save / veil compile). */
VEIL_NODISCARD veil_status veil_server_model_load(const char *path, veil_server_model **out);
VEIL_NODISCARD veil_status veil_server_model_from_bytes(const uint8_t *buf, size_t len, veil_server_model **out);
void veil_server_model_free(veil_server_model *m); /* accepts NULL */
const veil_circuit *veil_server_model_circuit(const veil_server_model *m);
/* The model id shared by the client and server bundles of one compilation: 32 hex digits. */
const char *veil_server_model_id(const veil_server_model *m);

/* Evaluation keys, compressed or not, checked against the model's parameters; the compressed
 * masks are regenerated from their seed. */
VEIL_NODISCARD veil_status veil_server_keys_load(const veil_server_model *m, const uint8_t *buf, size_t len,
                                                 veil_eval_keys **out);
/* The first bytes of an upload (at least 12, more is better): kind, version and, when the
 * parameters section is among them, the parameters, so a wrong upload is refused before its
 * hundreds of megabytes arrive. VEIL_OK when nothing is wrong so far. */
VEIL_NODISCARD veil_status veil_server_keys_precheck(const veil_server_model *m, const uint8_t *head, size_t len);

/* Serialized input ciphertexts in, serialized output ciphertexts out (*out: veil_free). threads
 * 0: all cores. */
VEIL_NODISCARD veil_status veil_server_run(const veil_server_model *m, const veil_eval_keys *ek, const uint8_t *in,
                                           size_t in_len, unsigned threads, uint8_t **out, size_t *out_len);

/* ---- the HTTP server (veil serve) ------------------------------------------------------------ */
#define VEIL_SERVE_MAX_MODELS 32
typedef struct {
    const char *host;      /* IPv4 address to listen on (default 127.0.0.1) */
    const char *data;      /* uploaded keys live in DATA/keys, across restarts (default ./veil-data) */
    const char *tls_cert;  /* PEM files: serve HTTPS when both are set */
    const char *tls_key;
    const char *port_file; /* the port is written there once listening (useful with port 0) */
    long port;             /* default 8080; 0: a free one */
    long workers;          /* heavy requests (key uploads, predictions, simulations) at once */
    long queue;            /* more wait for a worker in arrival order (default 4); beyond: 503 at once */
    long threads;          /* threads per evaluation; 0: cores / workers */
    long cache;            /* key sets kept expanded in memory (least recently used go first) */
    long timeout_s;        /* idle connection timeout */
    long long max_body;    /* bytes of a prediction or simulation body; keys: their own size */
    long long quota;       /* bytes of stored keys */
    double expiry_s;       /* keys idle this long are deleted */
    int allow_simulate;    /* POST /v1/models/NAME/simulate (it sees clear data) */
    long max_connections;  /* open connections at once (default 256) */
    long per_client;       /* of which from one client address (default 32) */
    double header_timeout_s; /* a connection's request headers must be in within this (default 10) */
    double body_timeout_s;   /* and its body within this once the headers are in (default 300) */
    double grace_s;          /* on SIGTERM/SIGINT, requests in progress get this long to finish (default 30) */
    int shared_store;        /* the data directory is shared with other servers (a network file system):
                              * keys uploaded, used or deleted through any of them count for all; files
                              * of interrupted writes are swept only once older than body_timeout_s + 60 s */
} veil_serve_config;
void veil_serve_config_default(veil_serve_config *c);
/* Loads the models of `dirs` (client.veil + server.veil, each named after its directory), then
 * serves until SIGINT or SIGTERM (blocked in the calling thread, which waits for them). Returns the
 * process exit code; reasons go to stderr, one line each. Routes: docs/format.md and README.
 * On the signal it stops accepting, lets the requests in progress finish (new ones on open
 * connections get 503), then returns 0; when some are still running after grace_s it cuts the
 * transfers, and returns 1 if a computation still holds on after a second grace_s, leaving its
 * state to the exiting process. All state is per call. */
int veil_serve(const veil_serve_config *c, const char *const *dirs, int ndirs);

#ifdef __cplusplus
}
#endif
#endif
