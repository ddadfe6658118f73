/* veil/client.h — the client side of a deployed model: it holds the secret key, quantizes and
 * encrypts inputs, decrypts and dequantizes results. The server only ever sees the evaluation
 * keys and ciphertexts this produces.
 *
 *     veil_client *c;        veil_client_load("digits/client.veil", &c);
 *     veil_client_keygen(c, NULL);                                  // CSPRNG
 *     veil_client_save_secret_key(c, "keys/secret.key");            // mode 0600
 *     uint8_t *ek; size_t ekl;  veil_client_eval_keys(c, &ek, &ekl); // compressed: send once
 *     uint8_t *req; size_t rl;  veil_client_quantize_encrypt_serialize(c, x, &req, &rl);
 *     ... the server answers `resp` ...
 *     veil_client_deserialize_decrypt_dequantize(c, resp, resp_len, y);
 *
 * Every refusal returns a status and leaves one line in veil_client_last_error().
 */
#ifndef VEIL_CLIENT_H
#define VEIL_CLIENT_H

#include "veil/model.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct veil_client veil_client;

const char *veil_client_last_error(void); /* the calling thread's, "" when none */

/* A client bundle (DIR/client.veil), from a file or bytes. */
VEIL_NODISCARD veil_status veil_client_load(const char *path, veil_client **out);
VEIL_NODISCARD veil_status veil_client_from_bytes(const uint8_t *buf, size_t len, veil_client **out);
void veil_client_free(veil_client *c); /* wipes the secret key; accepts NULL */
/* Shapes, quantizers, parameters (veil_model_describe, veil_model_input_size, ...). */
const veil_model *veil_client_model(const veil_client *c);
const char *veil_client_model_id(const veil_client *c); /* 32 hex digits, as the server's */

/* Secret and evaluation keys. seed NULL: the operating system's CSPRNG; a seed is for tests only. */
VEIL_NODISCARD veil_status veil_client_keygen(veil_client *c, const uint8_t *seed);
int veil_client_has_secret_key(const veil_client *c);
/* The secret key file is written beside `path` with mode 0600, then renamed: never half written,
 * never readable by others. Loading checks that it was made for this model's parameters. */
VEIL_NODISCARD veil_status veil_client_save_secret_key(const veil_client *c, const char *path);
VEIL_NODISCARD veil_status veil_client_load_secret_key(veil_client *c, const char *path);
/* A passphrase (len bytes, copied; wiped with the client): secret keys saved from then on are
 * sealed under it (scrypt + AES-256-GCM, veil_secret_key_serialize_sealed), and sealed keys are
 * read with it (VEIL_ERR_PASSPHRASE when it is missing or wrong). NULL: none again (the default:
 * keys are stored unsealed, mode 0600). */
VEIL_NODISCARD veil_status veil_client_set_passphrase(veil_client *c, const char *pass, size_t len);
/* The evaluation keys in their compressed form (mask seed + bodies), to upload once. Only after
 * veil_client_keygen in this process (they are not kept with the secret key). *out: veil_free. */
VEIL_NODISCARD veil_status veil_client_eval_keys(const veil_client *c, uint8_t **out, size_t *len);
/* 0 for a model without lookups (a linear model: leveled, the server needs no evaluation keys and
 * predicts without a key id), else 1. */
int veil_client_needs_eval_keys(const veil_client *c);

/* A key directory, as veil client and veil keygen keep it: secret.key (mode 0600), eval.keys
 * (compressed; none for a model without lookups), model_id (the compilation the keys belong to). Saving needs veil_client_keygen in
 * this process; loading refuses keys of another compilation of the model ("made for model …"). */
VEIL_NODISCARD veil_status veil_client_save_keys(const veil_client *c, const char *dir);
VEIL_NODISCARD veil_status veil_client_load_keys(veil_client *c, const char *dir);

/* One sample (veil_model_input_size doubles) → compressed input ciphertexts (*out: veil_free). */
VEIL_NODISCARD veil_status veil_client_quantize_encrypt_serialize(const veil_client *c, const double *x,
                                                                  uint8_t **out, size_t *len);
/* The server's answer → veil_model_output_size doubles (dequantized, client post-processing). */
VEIL_NODISCARD veil_status veil_client_deserialize_decrypt_dequantize(const veil_client *c, const uint8_t *buf,
                                                                      size_t len, double *y);

/* ---- through a veil server (HTTP, libcurl) ------------------------------------------------------- */
typedef struct {
    const char *url;      /* "http://127.0.0.1:8080" */
    const char *model;    /* the model's name on the server */
    const char *keys_dir; /* keys made once and kept here: secret.key (0600), eval.keys, key ids */
    const char *passphrase; /* optional: secret.key sealed under it (passphrase_len bytes) */
    size_t passphrase_len;
    const char *cacert;   /* HTTPS: trust this certificate (NULL: the system's) */
    int insecure;         /* HTTPS: trust any certificate */
    /* optional: upload progress (bytes sent, total), one finished sample (index, seconds) */
    void (*on_upload)(void *ctx, uint64_t sent, uint64_t total);
    void (*on_sample)(void *ctx, int64_t i, double seconds);
    void (*on_note)(void *ctx, const char *line); /* "new keys in …", "evaluation keys uploaded …" */
    void *ctx;
} veil_remote_options;

typedef struct {
    int keys_made, keys_uploaded; /* in this session */
    int busy_retries;             /* 503 answers waited out */
    double seconds;               /* wall time of the predictions */
} veil_remote_stats;

typedef struct veil_remote veil_remote;
/* Fetches the client bundle, loads the keys of keys_dir or makes them (for this model's
 * compilation), and makes sure the server holds the evaluation keys (uploading them, streamed from
 * keys_dir/eval.keys, when it has none or forgot them). One-line reasons in
 * veil_client_last_error(). */
VEIL_NODISCARD veil_status veil_remote_open(const veil_remote_options *o, veil_remote **out);
void veil_remote_close(veil_remote *r); /* accepts NULL */
const veil_client *veil_remote_client(const veil_remote *r); /* shapes: veil_client_model */
/* n samples (veil_model_input_size doubles each) → n outputs (veil_model_output_size each), with
 * `concurrency` requests in flight (1..64); a 503 is waited out and sent again. latency[i]: the
 * seconds of sample i (may be NULL). */
VEIL_NODISCARD veil_status veil_remote_predict(veil_remote *r, const double *x, int64_t n, int concurrency, double *y,
                                               double *latency, veil_remote_stats *stats);

#ifdef __cplusplus
}
#endif
#endif
