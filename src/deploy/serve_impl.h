/* The HTTP inference server behind `veil serve`, in three parts that share this header (internal to
 * libveil_server):
 *   keystore.c  evaluation keys on disk and in memory: scan and sweep, atomic stores, a per-key
 *               loading state so that a key set loads (seconds) outside the global lock;
 *   routes.c    every request from its method, path, query, headers and body to an answer, with
 *               no knowledge of the transport (tests/fuzz drives it in-process);
 *   httpd.c     libmicrohttpd: connections, their deadlines and caps, start-up and a clean stop.
 * All state lives in one serve_state, so several servers may run in one process. */
#ifndef VEIL_DEPLOY_SERVE_IMPL_H
#define VEIL_DEPLOY_SERVE_IMPL_H

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "veil/server.h"

enum { ID_HEX = 32, HEAD_BYTES = 512, NBUCKETS = 10, MAX_IO = 64 };

/* routes, for metrics */
enum { R_HEALTH, R_METRICS, R_MODELS, R_CLIENT, R_KEYS_POST, R_KEY, R_PREDICT, R_SIMULATE, R_OTHER, R_COUNT };

typedef struct {
    char name[64];
    veil_server_model *sm;
    uint8_t *client; /* client.veil as served */
    size_t client_len;
    uint64_t key_bytes; /* compressed evaluation keys */
    uint64_t key_bytes_full;
    size_t pbs; /* per inference */
} serve_model;

typedef struct key_entry {
    char id[ID_HEX + 1];
    int model;
    uint64_t bytes;
    time_t last_used;
    veil_eval_keys *ek; /* loaded, or NULL */
    int refs;           /* requests holding (or waiting for) it: neither swept, unloaded nor deleted */
    int loading;        /* one request loads it outside the lock; the others wait on keys_cond */
    struct key_entry *next;
} key_entry;

typedef struct serve_state {
    veil_serve_config cfg;
    serve_model models[VEIL_SERVE_MAX_MODELS];
    int nmodels;
    char keys_dir[PATH_MAX];
    int quiet; /* no request log (the fuzz harness) */

    pthread_mutex_t keys_lock;
    pthread_cond_t keys_cond;
    key_entry *keys;

    /* Worker slots: `running` heavy requests at most cfg.workers; up to cfg.queue more wait for one
     * in arrival order (tickets); beyond that, 503 at once. */
    pthread_mutex_t slot_lock;
    pthread_cond_t slot_cond;
    long running, waiting;
    unsigned long long next_ticket, serving;
    atomic_int in_flight; /* = running, readable without the lock */
    atomic_int active;    /* requests begun and not ended (any route) */
    atomic_int stopping;  /* a signal came: new requests are refused */

    atomic_ullong m_requests[R_COUNT], m_errors4[R_COUNT], m_errors5[R_COUNT], m_pbs, m_busy, m_cut;
    atomic_ullong m_lat[R_COUNT][NBUCKETS + 1], m_lat_us[R_COUNT];
} serve_state;

/* ---- state (httpd.c) ---- */
/* A state with `config` checked (one line into err when refused); models are added with
 * serve_load_model, then serve_open_store reads the key store. */
serve_state *serve_state_new(const veil_serve_config *config, char *err, size_t cap);
int serve_load_model(serve_state *s, const char *dir, char *err, size_t cap);
int serve_open_store(serve_state *s, char *err, size_t cap);
void serve_state_free(serve_state *s); /* accepts NULL */
void serve_log(const serve_state *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
double serve_now(void);

/* ---- the key store (keystore.c); the _locked functions need keys_lock ---- */
int ks_hex_id_ok(const char *s);
void ks_path(const serve_state *s, char *out, size_t cap, const char *id, const char *ext);
/* Reads DATA/keys at start-up: temporaries of interrupted writes and half-stored sets are removed
 * (they were never acknowledged), sets of models served here are listed. */
void ks_scan(serve_state *s);
/* a shared store (cfg.shared_store): the index brought up to date with the directory (no-op otherwise) */
void ks_refresh_locked(serve_state *s);
/* ks_find_locked, and in a shared store: adopts a pair another server stored, forgets one it deleted */
key_entry *ks_lookup_locked(serve_state *s, const char *id);
void ks_sweep_locked(serve_state *s);
uint64_t ks_bytes_held_locked(const serve_state *s, int *count, int *loaded);
key_entry *ks_find_locked(const serve_state *s, const char *id);
void ks_remove_locked(serve_state *s, key_entry *k);
/* A reference to key `id` for model `model`, loaded: 0, or the HTTP status of the refusal with one
 * line in err (404 unknown, 403 another model's, 500 unreadable, 503 out of memory). */
int ks_acquire(serve_state *s, const char *id, int model, key_entry **out, char *err, size_t cap);
void ks_release(serve_state *s, key_entry *k);
/* Stores the checked upload at `tmp` (already fsync'ed) as a new key set of `model`, with `ek` its
 * loaded form (handed over). Returns 0 with the new id, or an HTTP status with err. */
int ks_store(serve_state *s, const char *tmp, int model, uint64_t bytes, veil_eval_keys *ek, char id[ID_HEX + 1],
             char *err, size_t cap);
void ks_free_all(serve_state *s);
/* a file (mapped, read-only) */
veil_status ks_map_file(const char *path, uint8_t **data, size_t *len);

/* ---- requests (routes.c), independent of the transport ---- */
typedef struct {
    const char *method, *url, *peer;
    /* a query argument (kind 0) or a header (kind 1), NULL when absent */
    const char *(*lookup)(void *ctx, int kind, const char *name);
    void *ctx;
} serve_req_view;

typedef struct {
    unsigned code; /* 0: no answer yet */
    const char *type;
    void *data;
    size_t len;
    void (*free_fn)(void *); /* for data; NULL when it is static or the state's */
    int close;               /* ask the client to close the connection */
} serve_resp;

typedef struct serve_request serve_request;
/* Headers are in: route, limits, a worker slot. NULL only when out of memory. When resp->code is
 * set, that answer goes at once and the body is not read. */
serve_request *serve_begin(serve_state *s, const serve_req_view *v, serve_resp *resp);
/* A piece of the body. */
void serve_body(serve_request *r, const char *data, size_t n);
/* The whole body is in: the answer. */
void serve_finish(serve_request *r, const serve_req_view *v, serve_resp *resp);
/* The answer is queued: the worker slot goes back (the next request may take it at once). */
void serve_answered(serve_request *r);
/* The request is over (sent, or the connection ended early): metrics, log, temporaries, freed. */
void serve_end(serve_request *r, int completed);

#endif
