/* The HTTP inference server behind `veil serve` (libmicrohttpd). Part of libveil_server, which
 * holds no secret-key code. One model per bundle directory, named after it; clients
 * upload evaluation keys once (streamed to disk, kept across restarts under --data, with a quota
 * and an idle expiry) and post encrypted inputs. Heavy requests (key uploads, predictions,
 * simulations) take one of --workers slots; when all are busy the answer is 503 at once. */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <microhttpd.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../core/container.h"
#include "deploy.h"
#include "veil/server.h"

#if MHD_VERSION < 0x00097002
typedef int MHD_Result_t;
#else
typedef enum MHD_Result MHD_Result_t;
#endif

enum { ID_HEX = 32, HEAD_BYTES = 512, NBUCKETS = 10, MAX_IO = 64 };

/* ---- configuration and state ------------------------------------------------------------------- */

typedef struct {
    char name[64];
    veil_server_model *sm;
    uint8_t *client; /* client.veil as served */
    size_t client_len;
    uint64_t key_bytes; /* compressed evaluation keys */
    uint64_t key_bytes_full;
} model;

typedef struct key_entry {
    char id[ID_HEX + 1];
    int model;
    uint64_t bytes;
    time_t last_used;
    veil_eval_keys *ek; /* loaded, or NULL */
    int refs;
    struct key_entry *next;
} key_entry;

static veil_serve_config cfg;
static model models[VEIL_SERVE_MAX_MODELS];
static int nmodels;
static char keys_dir[PATH_MAX];
static pthread_mutex_t keys_lock = PTHREAD_MUTEX_INITIALIZER;
static key_entry *keys;
/* Worker slots: `running` heavy requests at most cfg.workers; up to cfg.queue more wait for one in
 * arrival order (tickets); beyond that, 503 at once. */
static pthread_mutex_t slot_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t slot_cond = PTHREAD_COND_INITIALIZER;
static long running, waiting;
static unsigned long long next_ticket, serving;
static atomic_int in_flight; /* = running, readable without the lock */

static int slot_acquire(void)
{
    pthread_mutex_lock(&slot_lock);
    if (waiting >= cfg.queue && running >= cfg.workers) {
        pthread_mutex_unlock(&slot_lock);
        return 0;
    }
    unsigned long long mine = next_ticket++;
    waiting++;
    while (serving != mine || running >= cfg.workers) pthread_cond_wait(&slot_cond, &slot_lock);
    waiting--;
    serving++;
    running++;
    atomic_store(&in_flight, (int)running);
    pthread_cond_broadcast(&slot_cond); /* the next ticket may go too */
    pthread_mutex_unlock(&slot_lock);
    return 1;
}

static void slot_release(void)
{
    pthread_mutex_lock(&slot_lock);
    running--;
    atomic_store(&in_flight, (int)running);
    pthread_cond_broadcast(&slot_cond);
    pthread_mutex_unlock(&slot_lock);
}

/* metrics */
enum { R_HEALTH, R_METRICS, R_MODELS, R_CLIENT, R_KEYS_POST, R_KEY, R_PREDICT, R_SIMULATE, R_OTHER, R_COUNT };
static const char *const route_names[R_COUNT] = {"healthz", "metrics", "models", "client", "keys_upload",
                                                 "key", "predict", "simulate", "other"};
static atomic_ullong m_requests[R_COUNT], m_errors4[R_COUNT], m_errors5[R_COUNT], m_pbs, m_busy;
static const double buckets[NBUCKETS] = {0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
static atomic_ullong m_lat[R_COUNT][NBUCKETS + 1], m_lat_us[R_COUNT];

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void logf_(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void logf_(const char *fmt, ...)
{
    char ts[32];
    time_t t = time(NULL);
    struct tm tm;
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", gmtime_r(&t, &tm));
    va_list ap;
    va_start(ap, fmt);
    flockfile(stderr);
    fprintf(stderr, "%s veil-serve: ", ts);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    funlockfile(stderr);
    va_end(ap);
}

/* ---- keys on disk ------------------------------------------------------------------------------- */
static int hex_id_ok(const char *s)
{
    if (strlen(s) != ID_HEX) return 0;
    for (int i = 0; i < ID_HEX; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) return 0;
    return 1;
}

static void key_path(char *out, size_t cap, const char *id, const char *ext)
{
    snprintf(out, cap, "%s/%s.%s", keys_dir, id, ext);
}

static int find_model(const char *name)
{
    for (int i = 0; i < nmodels; i++)
        if (strcmp(models[i].name, name) == 0) return i;
    return -1;
}

static uint64_t keys_bytes_held(int *count)
{
    uint64_t b = 0;
    int n = 0;
    for (key_entry *k = keys; k; k = k->next) b += k->bytes, n++;
    if (count) *count = n;
    return b;
}

static void key_remove_locked(key_entry *k)
{
    char p[PATH_MAX + 64];
    key_path(p, sizeof p, k->id, "keys");
    unlink(p);
    key_path(p, sizeof p, k->id, "meta");
    unlink(p);
    for (key_entry **pp = &keys; *pp; pp = &(*pp)->next)
        if (*pp == k) {
            *pp = k->next;
            break;
        }
    veil_eval_keys_free(k->ek);
    free(k);
}

/* Keys idle longer than the expiry go; loaded keys beyond the cache size are unloaded (LRU). */
static void keys_sweep_locked(void)
{
    time_t now = time(NULL);
    for (key_entry *k = keys, *next; k; k = next) {
        next = k->next;
        if (k->refs == 0 && difftime(now, k->last_used) > cfg.expiry_s) {
            logf_("key %.8s… expired (idle %.0f s)", k->id, difftime(now, k->last_used));
            key_remove_locked(k);
        }
    }
    for (;;) {
        int loaded = 0;
        key_entry *lru = NULL;
        for (key_entry *k = keys; k; k = k->next)
            if (k->ek) {
                loaded++;
                if (k->refs == 0 && (!lru || k->last_used < lru->last_used)) lru = k;
            }
        if (loaded <= cfg.cache || !lru) break;
        veil_eval_keys_free(lru->ek);
        lru->ek = NULL;
    }
}

static veil_status map_file(const char *path, uint8_t **data, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return VEIL_ERR_IO;
    struct stat st;
    if (fstat(fd, &st) != 0 || st.st_size <= 0) {
        close(fd);
        return VEIL_ERR_IO;
    }
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (p == MAP_FAILED) return VEIL_ERR_IO;
    *data = p;
    *len = (size_t)st.st_size;
    return VEIL_OK;
}

/* Loads the keys from disk (mapped, not copied) unless cached; the caller holds keys_lock and
 * takes a reference. */
static veil_status key_acquire_locked(key_entry *k, char *err, size_t cap)
{
    if (!k->ek) {
        char p[PATH_MAX + 64];
        uint8_t *d;
        size_t len;
        key_path(p, sizeof p, k->id, "keys");
        veil_status st = map_file(p, &d, &len);
        if (st == VEIL_OK) {
            st = veil_server_keys_load(models[k->model].sm, d, len, &k->ek);
            munmap(d, len);
            if (st != VEIL_OK) snprintf(err, cap, "stored keys unusable: %s", veil_server_last_error());
        } else {
            snprintf(err, cap, "stored keys unreadable");
        }
        if (st != VEIL_OK) return st;
    }
    k->refs++;
    k->last_used = time(NULL);
    char p[PATH_MAX + 64];
    key_path(p, sizeof p, k->id, "keys");
    utimensat(AT_FDCWD, p, NULL, 0); /* the idle clock survives a restart */
    return VEIL_OK;
}

static void keys_scan(void)
{
    DIR *d = opendir(keys_dir);
    if (!d) return;
    struct dirent *e;
    int kept = 0, dropped = 0;
    while ((e = readdir(d))) {
        char p[PATH_MAX + 300];
        size_t nl = strlen(e->d_name);
        if (strncmp(e->d_name, ".upload-", 8) == 0) { /* an upload cut short by a crash */
            snprintf(p, sizeof p, "%s/%s", keys_dir, e->d_name);
            unlink(p);
            continue;
        }
        if (nl != ID_HEX + 5 || strcmp(e->d_name + ID_HEX, ".meta") != 0) continue;
        char id[ID_HEX + 1];
        memcpy(id, e->d_name, ID_HEX);
        id[ID_HEX] = 0;
        if (!hex_id_ok(id)) continue;
        char name[64] = "", mid[ID_HEX + 1] = "";
        snprintf(p, sizeof p, "%s/%s", keys_dir, e->d_name);
        FILE *f = fopen(p, "r");
        if (f) {
            if (fscanf(f, "model %63s\nmodel_id %32s", name, mid) != 2) name[0] = 0;
            fclose(f);
        }
        int mi = find_model(name);
        struct stat st;
        key_path(p, sizeof p, id, "keys");
        if (mi < 0 || strcmp(mid, veil_server_model_id(models[mi].sm)) != 0 || stat(p, &st) != 0) {
            dropped++; /* another model, or a recompiled one: these keys cannot serve */
            continue;
        }
        key_entry *k = calloc(1, sizeof *k);
        if (!k) break;
        memcpy(k->id, id, sizeof k->id);
        k->model = mi;
        k->bytes = (uint64_t)st.st_size;
        k->last_used = st.st_mtime;
        k->next = keys;
        keys = k;
        kept++;
    }
    closedir(d);
    logf_("data %s: %d stored key set(s) kept, %d for models not served here left alone", cfg.data, kept, dropped);
}

/* ---- requests ----------------------------------------------------------------------------------- */
typedef struct {
    int route, model, status_hint;
    int slot; /* 1: holds a worker slot; 2: held one, given back */
    double t0;
    /* body */
    uint8_t *body;
    size_t len, cap;
    int too_big;
    /* key upload */
    FILE *up;
    char up_path[PATH_MAX + 64];
    uint8_t head[HEAD_BYTES];
    size_t head_len;
    char err[400];
    int err_code;
} request;

static MHD_Result_t send_bytes(struct MHD_Connection *c, request *r, unsigned code, const char *type, void *data,
                               size_t len, void (*free_fn)(void *))
{
    struct MHD_Response *resp = MHD_create_response_from_buffer_with_free_callback(len, data, free_fn);
    if (!resp) return MHD_NO;
    MHD_add_response_header(resp, "Content-Type", type);
    if (code == 503) MHD_add_response_header(resp, "Retry-After", "1");
    MHD_Result_t ret = MHD_queue_response(c, code, resp);
    MHD_destroy_response(resp);
    r->status_hint = (int)code;
    if (code >= 500) m_errors5[r->route]++;
    else if (code >= 400) m_errors4[r->route]++;
    return ret;
}

static MHD_Result_t send_json(struct MHD_Connection *c, request *r, unsigned code, json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    if (!s) return MHD_NO;
    size_t n = strlen(s);
    s[n] = '\n'; /* replaces the NUL: the length is explicit */
    return send_bytes(c, r, code, "application/json", s, n + 1, free);
}

static MHD_Result_t send_error(struct MHD_Connection *c, request *r, unsigned code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static MHD_Result_t send_error(struct MHD_Connection *c, request *r, unsigned code, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return send_json(c, r, code, json_pack("{s:s}", "error", msg));
}

static void body_append(request *r, const char *data, size_t n)
{
    if (r->too_big) return;
    if (r->len + n > (size_t)cfg.max_body) {
        r->too_big = 1;
        free(r->body);
        r->body = NULL;
        r->len = r->cap = 0;
        return;
    }
    if (r->len + n > r->cap) {
        size_t cap = r->cap ? r->cap : 4096;
        while (cap < r->len + n) cap *= 2;
        uint8_t *b = realloc(r->body, cap);
        if (!b) {
            r->too_big = 1;
            return;
        }
        r->body = b;
        r->cap = cap;
    }
    memcpy(r->body + r->len, data, n);
    r->len += n;
}

/* The path split on '/': at most 6 parts. */
static int split(const char *url, char parts[6][128])
{
    int n = 0;
    const char *p = url;
    while (*p == '/') p++;
    while (*p && n < 6) {
        const char *q = strchr(p, '/');
        size_t l = q ? (size_t)(q - p) : strlen(p);
        if (l >= 128) return -1;
        memcpy(parts[n], p, l);
        parts[n][l] = 0;
        n++;
        if (!q) break;
        p = q + 1;
    }
    return *p && n == 6 ? -1 : n;
}

static json_t *model_json(int i)
{
    const veil_circuit *c = veil_server_model_circuit(models[i].sm);
    veil_circuit_stats s;
    veil_circuit_get_stats(c, &s);
    const veil_params *p = veil_circuit_params(c);
    char fp[17];
    snprintf(fp, sizeof fp, "%016llx", (unsigned long long)veil_params_fingerprint(p));
    return json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:b}", "name", models[i].name, "model_id",
                     veil_server_model_id(models[i].sm), "params", p->name, "params_fingerprint", fp, "inputs",
                     (json_int_t)veil_circuit_io_split(c, 0, NULL, NULL, SIZE_MAX), "outputs",
                     (json_int_t)veil_circuit_io_split(c, 1, NULL, NULL, SIZE_MAX),
                     "pbs", (json_int_t)s.pbs_count, "max_bit_width", (json_int_t)veil_circuit_max_bit_width(c),
                     "eval_key_bytes", (json_int_t)models[i].key_bytes, "eval_key_bytes_expanded",
                     (json_int_t)models[i].key_bytes_full, "simulate", cfg.allow_simulate);
}

static MHD_Result_t do_metrics(struct MHD_Connection *c, request *r)
{
    char *buf = NULL;
    size_t blen = 0;
    FILE *f = open_memstream(&buf, &blen);
    if (!f) return MHD_NO;
    int nk;
    pthread_mutex_lock(&keys_lock);
    uint64_t kb = keys_bytes_held(&nk);
    int loaded = 0;
    for (key_entry *k = keys; k; k = k->next) loaded += k->ek != NULL;
    pthread_mutex_unlock(&keys_lock);
    fprintf(f, "# HELP veil_requests_total Requests received, by route.\n# TYPE veil_requests_total counter\n");
    for (int i = 0; i < R_COUNT; i++)
        fprintf(f, "veil_requests_total{route=\"%s\"} %llu\n", route_names[i], (unsigned long long)m_requests[i]);
    fprintf(f, "# HELP veil_errors_total Requests answered with an error, by route and class.\n"
               "# TYPE veil_errors_total counter\n");
    for (int i = 0; i < R_COUNT; i++) {
        fprintf(f, "veil_errors_total{route=\"%s\",class=\"4xx\"} %llu\n", route_names[i],
                (unsigned long long)m_errors4[i]);
        fprintf(f, "veil_errors_total{route=\"%s\",class=\"5xx\"} %llu\n", route_names[i],
                (unsigned long long)m_errors5[i]);
    }
    fprintf(f, "# HELP veil_busy_total Requests refused with 503 because every worker was busy.\n"
               "# TYPE veil_busy_total counter\nveil_busy_total %llu\n", (unsigned long long)m_busy);
    fprintf(f, "# HELP veil_pbs_total Programmable bootstrappings executed.\n# TYPE veil_pbs_total counter\n"
               "veil_pbs_total %llu\n", (unsigned long long)m_pbs);
    fprintf(f, "# HELP veil_request_seconds Latency of heavy requests.\n# TYPE veil_request_seconds histogram\n");
    for (int i = R_KEYS_POST; i <= R_SIMULATE; i++) {
        if (i == R_KEY) continue;
        unsigned long long cum = 0;
        for (int b = 0; b <= NBUCKETS; b++) {
            cum += m_lat[i][b];
            if (b < NBUCKETS)
                fprintf(f, "veil_request_seconds_bucket{route=\"%s\",le=\"%g\"} %llu\n", route_names[i], buckets[b], cum);
            else
                fprintf(f, "veil_request_seconds_bucket{route=\"%s\",le=\"+Inf\"} %llu\n", route_names[i], cum);
        }
        fprintf(f, "veil_request_seconds_sum{route=\"%s\"} %.6f\n", route_names[i], 1e-6 * (double)m_lat_us[i]);
        fprintf(f, "veil_request_seconds_count{route=\"%s\"} %llu\n", route_names[i], cum);
    }
    fprintf(f, "# HELP veil_keys_held Evaluation key sets stored.\n# TYPE veil_keys_held gauge\nveil_keys_held %d\n", nk);
    fprintf(f, "# HELP veil_keys_loaded Evaluation key sets in memory.\n# TYPE veil_keys_loaded gauge\n"
               "veil_keys_loaded %d\n", loaded);
    fprintf(f, "# HELP veil_key_bytes_held Bytes of stored evaluation keys.\n# TYPE veil_key_bytes_held gauge\n"
               "veil_key_bytes_held %llu\n", (unsigned long long)kb);
    fprintf(f, "# HELP veil_in_flight Heavy requests in progress.\n# TYPE veil_in_flight gauge\nveil_in_flight %d\n",
            atomic_load(&in_flight));
    pthread_mutex_lock(&slot_lock);
    long q = waiting;
    pthread_mutex_unlock(&slot_lock);
    fprintf(f, "# HELP veil_queued Heavy requests waiting for a worker.\n# TYPE veil_queued gauge\nveil_queued %ld\n", q);
    fclose(f);
    return send_bytes(c, r, 200, "text/plain; version=0.0.4", buf, blen, free);
}

/* The upload is complete in r->up_path: check it fully, store it under a fresh key id. */
static MHD_Result_t finish_upload(struct MHD_Connection *c, request *r)
{
    fflush(r->up);
    int bad = ferror(r->up) || fsync(fileno(r->up)) != 0;
    fclose(r->up);
    r->up = NULL;
    if (bad) {
        unlink(r->up_path);
        return send_error(c, r, 500, "cannot store the keys on the server's disk");
    }
    uint8_t *d;
    size_t len;
    veil_eval_keys *ek = NULL;
    veil_status st = map_file(r->up_path, &d, &len);
    if (st != VEIL_OK) {
        unlink(r->up_path);
        return send_error(c, r, 400, "evaluation keys: empty body");
    }
    st = veil_server_keys_load(models[r->model].sm, d, len, &ek);
    munmap(d, len);
    if (st != VEIL_OK) {
        unlink(r->up_path);
        return send_error(c, r, st == VEIL_ERR_NOMEM ? 503 : 400, "%s", veil_server_last_error());
    }
    uint8_t raw[16];
    veil_rng *rng = NULL;
    if (veil_rng_new_os(&rng) != VEIL_OK) {
        veil_eval_keys_free(ek);
        unlink(r->up_path);
        return send_error(c, r, 500, "no randomness for a key id");
    }
    veil_rng_bytes(rng, raw, sizeof raw);
    veil_rng_free(rng);
    key_entry *k = calloc(1, sizeof *k);
    if (!k) {
        veil_eval_keys_free(ek);
        unlink(r->up_path);
        return send_error(c, r, 503, "out of memory");
    }
    veil_hex(raw, sizeof raw, k->id);
    k->model = r->model;
    k->bytes = len;
    k->last_used = time(NULL);
    k->ek = ek;
    char kp[PATH_MAX + 64], mp[PATH_MAX + 64], meta[256];
    key_path(kp, sizeof kp, k->id, "keys");
    key_path(mp, sizeof mp, k->id, "meta");
    int ml = snprintf(meta, sizeof meta, "model %s\nmodel_id %s\n", models[r->model].name,
                      veil_server_model_id(models[r->model].sm));
    if (rename(r->up_path, kp) != 0 || veil_file_write_atomic(mp, (const uint8_t *)meta, (size_t)ml, 0600) != VEIL_OK) {
        unlink(r->up_path), unlink(kp);
        veil_eval_keys_free(ek);
        free(k);
        return send_error(c, r, 500, "cannot store the keys on the server's disk");
    }
    pthread_mutex_lock(&keys_lock);
    k->next = keys;
    keys = k;
    keys_sweep_locked();
    pthread_mutex_unlock(&keys_lock);
    logf_("keys %.8s… stored for model %s (%zu bytes)", k->id, models[r->model].name, len);
    return send_json(c, r, 201, json_pack("{s:s, s:s, s:I}", "key_id", k->id, "model", models[r->model].name, "bytes",
                                          (json_int_t)len));
}

static MHD_Result_t do_predict(struct MHD_Connection *c, request *r, const char *key_id)
{
    veil_circuit_stats cs;
    veil_circuit_get_stats(veil_server_model_circuit(models[r->model].sm), &cs);
    if (!key_id && cs.pbs_count == 0) { /* a leveled model: no evaluation keys */
        uint8_t *out = NULL;
        size_t olen = 0;
        veil_status st = veil_server_run(models[r->model].sm, NULL, r->body ? r->body : (const uint8_t *)"", r->len,
                                         (unsigned)cfg.threads, &out, &olen);
        if (st != VEIL_OK) return send_error(c, r, st == VEIL_ERR_NOMEM ? 503 : 400, "%s", veil_server_last_error());
        return send_bytes(c, r, 200, "application/octet-stream", out, olen, veil_free);
    }
    if (!key_id) return send_error(c, r, 400, "predict needs ?key_id=… (upload keys with POST /v1/keys?model=%s)",
                                   models[r->model].name);
    if (!hex_id_ok(key_id)) return send_error(c, r, 400, "malformed key id: 32 lowercase hex digits expected");
    char err[400] = "";
    pthread_mutex_lock(&keys_lock);
    key_entry *k = keys;
    while (k && strcmp(k->id, key_id) != 0) k = k->next;
    veil_status st = VEIL_OK;
    int other = -1;
    if (k && k->model != r->model) other = k->model;
    else if (k) st = key_acquire_locked(k, err, sizeof err);
    pthread_mutex_unlock(&keys_lock);
    if (!k) return send_error(c, r, 404, "unknown key id (expired, deleted, or never uploaded)");
    if (other >= 0)
        return send_error(c, r, 403, "key %s was uploaded for model '%s', not '%s'", key_id, models[other].name,
                          models[r->model].name);
    if (st != VEIL_OK) return send_error(c, r, 500, "%s", err);
    uint8_t *out = NULL;
    size_t olen = 0;
    unsigned threads = (unsigned)cfg.threads;
    st = veil_server_run(models[r->model].sm, k->ek, r->body ? r->body : (const uint8_t *)"", r->len, threads, &out,
                         &olen);
    if (st != VEIL_OK) snprintf(err, sizeof err, "%s", veil_server_last_error());
    pthread_mutex_lock(&keys_lock);
    k->refs--;
    keys_sweep_locked();
    pthread_mutex_unlock(&keys_lock);
    if (st != VEIL_OK) return send_error(c, r, st == VEIL_ERR_NOMEM ? 503 : 400, "%s", err);
    veil_circuit_stats s;
    veil_circuit_get_stats(veil_server_model_circuit(models[r->model].sm), &s);
    m_pbs += s.pbs_count;
    return send_bytes(c, r, 200, "application/octet-stream", out, olen, veil_free);
}

static MHD_Result_t do_simulate(struct MHD_Connection *c, request *r)
{
    json_error_t je;
    json_t *j = json_loadb((const char *)(r->body ? r->body : (uint8_t *)""), r->len, 0, &je);
    json_t *in = j ? json_object_get(j, "inputs") : NULL;
    const veil_circuit *circ = veil_server_model_circuit(models[r->model].sm);
    /* every input's elements, one input after another; likewise the outputs */
    int64_t n = veil_circuit_io_split(circ, 0, NULL, NULL, SIZE_MAX), no = veil_circuit_io_split(circ, 1, NULL, NULL, SIZE_MAX);
    if (!j) return send_error(c, r, 400, "bad JSON: %s (line %d)", je.text, je.line);
    if (!json_is_array(in) || (int64_t)json_array_size(in) != n) {
        json_decref(j);
        return send_error(c, r, 400, "simulate needs {\"inputs\": [%lld quantized integers]}", (long long)n);
    }
    int64_t *x = malloc(sizeof(int64_t) * (size_t)n), *y = malloc(sizeof(int64_t) * (size_t)no);
    int ok = x && y;
    for (int64_t i = 0; ok && i < n; i++) {
        json_t *v = json_array_get(in, (size_t)i);
        ok = json_is_integer(v);
        if (ok) x[i] = json_integer_value(v);
    }
    json_decref(j);
    veil_status st = VEIL_ERR_INVALID_ARG;
    int64_t *ins[MAX_IO], *outs[MAX_IO];
    if (ok && veil_circuit_io_split(circ, 0, x, ins, MAX_IO) >= 0 && veil_circuit_io_split(circ, 1, y, outs, MAX_IO) >= 0)
        st = veil_circuit_simulate(circ, (const int64_t *const *)ins, NULL, outs);
    else if (ok)
        st = VEIL_ERR_UNSUPPORTED;
    json_t *arr = json_array();
    for (int64_t i = 0; st == VEIL_OK && i < no; i++) json_array_append_new(arr, json_integer(y[i]));
    free(x), free(y);
    if (!ok) {
        json_decref(arr);
        return send_error(c, r, 400, "inputs must be integers (the client's quantized values)");
    }
    if (st != VEIL_OK) {
        json_decref(arr);
        return send_error(c, r, 400, "simulation failed: %s", veil_status_str(st));
    }
    return send_json(c, r, 200, json_pack("{s:o}", "outputs", arr));
}

static MHD_Result_t handle(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                            const char *version, const char *upload_data, size_t *upload_size, void **con_cls)
{
    (void)cls, (void)version;
    request *r = *con_cls;
    char parts[6][128];
    int np = split(url, parts);
    int get = strcmp(method, "GET") == 0, post = strcmp(method, "POST") == 0, del = strcmp(method, "DELETE") == 0;
    if (!r) { /* headers only: route, limits, a worker slot */
        if (!(r = calloc(1, sizeof *r))) return MHD_NO;
        *con_cls = r;
        r->t0 = now_s();
        r->model = -1;
        r->route = R_OTHER;
        if (np == 1 && strcmp(parts[0], "healthz") == 0) r->route = R_HEALTH;
        else if (np == 1 && strcmp(parts[0], "metrics") == 0) r->route = R_METRICS;
        else if (np == 2 && strcmp(parts[0], "v1") == 0 && strcmp(parts[1], "models") == 0) r->route = R_MODELS;
        else if (np == 4 && strcmp(parts[0], "v1") == 0 && strcmp(parts[1], "models") == 0) {
            r->model = find_model(parts[2]);
            r->route = strcmp(parts[3], "client") == 0    ? R_CLIENT
                       : strcmp(parts[3], "predict") == 0  ? R_PREDICT
                       : strcmp(parts[3], "simulate") == 0 ? R_SIMULATE
                                                           : R_OTHER;
        } else if (np == 2 && strcmp(parts[0], "v1") == 0 && strcmp(parts[1], "keys") == 0) r->route = R_KEYS_POST;
        else if (np == 3 && strcmp(parts[0], "v1") == 0 && strcmp(parts[1], "keys") == 0) r->route = R_KEY;
        m_requests[r->route]++;
        int heavy = r->route == R_PREDICT || r->route == R_SIMULATE || r->route == R_KEYS_POST;
        int want_post = heavy, want_del = r->route == R_KEY && !get;
        if (r->route == R_OTHER) return send_error(c, r, 404, "unknown route: %s %s", method, url);
        if ((want_post && !post) || (want_del && !del) || (!want_post && !want_del && !get))
            return send_error(c, r, 405, "%s is not allowed on %s", method, url);
        if ((r->route == R_CLIENT || r->route == R_PREDICT || r->route == R_SIMULATE) && r->model < 0)
            return send_error(c, r, 404, "unknown model '%s'", parts[2]);
        if (r->route == R_SIMULATE && !cfg.allow_simulate)
            return send_error(c, r, 403, "simulate is off: it sees clear data (start the server with --allow-simulate)");
        if (r->route == R_KEYS_POST) {
            const char *mn = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "model");
            if (!mn) return send_error(c, r, 400, "key upload needs ?model=NAME");
            if ((r->model = find_model(mn)) < 0) return send_error(c, r, 404, "unknown model '%s'", mn);
        }
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        long long limit = r->route == R_KEYS_POST ? (long long)models[r->model].key_bytes_full + (1 << 20)
                                                  : cfg.max_body;
        if (cl && atoll(cl) > limit)
            return send_error(c, r, 413, "body of %s bytes is over the limit of %lld", cl, limit);
        if (heavy) {
            if (!slot_acquire()) {
                m_busy++;
                return send_error(c, r, 503, "busy: %ld requests in progress and %ld waiting, try again",
                                  cfg.workers, cfg.queue);
            }
            r->slot = 1;
        }
        if (r->route == R_KEYS_POST) {
            pthread_mutex_lock(&keys_lock);
            keys_sweep_locked();
            uint64_t held = keys_bytes_held(NULL);
            pthread_mutex_unlock(&keys_lock);
            if ((long long)(held + (cl ? (uint64_t)atoll(cl) : 0)) > cfg.quota)
                return send_error(c, r, 507, "key storage quota reached (%llu of %lld bytes held)",
                                  (unsigned long long)held, cfg.quota);
            uint8_t raw[8];
            veil_rng *rng = NULL;
            if (veil_rng_new_os(&rng) == VEIL_OK) {
                veil_rng_bytes(rng, raw, sizeof raw);
                veil_rng_free(rng);
            }
            snprintf(r->up_path, sizeof r->up_path, "%s/.upload-%02x%02x%02x%02x%02x%02x%02x%02x", keys_dir, raw[0],
                     raw[1], raw[2], raw[3], raw[4], raw[5], raw[6], raw[7]);
            int fd = open(r->up_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
            if (fd < 0 || !(r->up = fdopen(fd, "wb"))) {
                if (fd >= 0) close(fd);
                return send_error(c, r, 500, "cannot store the keys on the server's disk");
            }
        }
        return MHD_YES;
    }
    if (r->status_hint) { /* answered at the headers already (an error): the body is not read */
        *upload_size = 0;
        return MHD_YES;
    }
    if (*upload_size) { /* a piece of the body */
        if (r->route == R_KEYS_POST) {
            if (!r->err_code) {
                size_t take = *upload_size < HEAD_BYTES - r->head_len ? *upload_size : HEAD_BYTES - r->head_len;
                memcpy(r->head + r->head_len, upload_data, take);
                r->head_len += take;
                if (veil_server_keys_precheck(models[r->model].sm, r->head, r->head_len) != VEIL_OK) {
                    r->err_code = 400;
                    snprintf(r->err, sizeof r->err, "%s", veil_server_last_error());
                } else if (fwrite(upload_data, 1, *upload_size, r->up) != *upload_size) {
                    r->err_code = 500;
                    snprintf(r->err, sizeof r->err, "cannot store the keys on the server's disk");
                } else if (ftell(r->up) > (long)models[r->model].key_bytes_full + (1 << 20)) {
                    r->err_code = 413;
                    snprintf(r->err, sizeof r->err, "evaluation keys over the limit of %llu bytes",
                             (unsigned long long)models[r->model].key_bytes_full + (1 << 20));
                }
            }
        } else {
            body_append(r, upload_data, *upload_size);
        }
        *upload_size = 0;
        return MHD_YES;
    }
    /* the whole request is in */
    switch (r->route) {
    case R_HEALTH:
        return send_json(c, r, 200, json_pack("{s:s, s:i, s:i}", "status", "ok", "models", nmodels, "in_flight",
                                              atomic_load(&in_flight)));
    case R_METRICS: return do_metrics(c, r);
    case R_MODELS: {
        json_t *arr = json_array();
        for (int i = 0; i < nmodels; i++) json_array_append_new(arr, model_json(i));
        return send_json(c, r, 200, json_pack("{s:o}", "models", arr));
    }
    case R_CLIENT: return send_bytes(c, r, 200, "application/octet-stream", models[r->model].client,
                                     models[r->model].client_len, NULL);
    case R_KEYS_POST:
        if (r->err_code) {
            fclose(r->up);
            r->up = NULL;
            unlink(r->up_path);
            return send_error(c, r, (unsigned)r->err_code, "%s", r->err);
        }
        return finish_upload(c, r);
    case R_KEY: {
        if (!hex_id_ok(parts[2])) return send_error(c, r, 400, "malformed key id: 32 lowercase hex digits expected");
        pthread_mutex_lock(&keys_lock);
        key_entry *k = keys;
        while (k && strcmp(k->id, parts[2]) != 0) k = k->next;
        if (get) { /* does the server still hold it, and for which model */
            json_t *j = k ? json_pack("{s:s, s:s, s:I, s:I}", "key_id", k->id, "model", models[k->model].name, "bytes",
                                      (json_int_t)k->bytes, "idle_s", (json_int_t)difftime(time(NULL), k->last_used))
                          : NULL;
            pthread_mutex_unlock(&keys_lock);
            return j ? send_json(c, r, 200, j) : send_error(c, r, 404, "unknown key id");
        }
        int busy = k && k->refs > 0;
        if (k && !busy) key_remove_locked(k);
        pthread_mutex_unlock(&keys_lock);
        if (!k) return send_error(c, r, 404, "unknown key id");
        if (busy) return send_error(c, r, 409, "key in use by a request in progress; retry");
        return send_json(c, r, 200, json_pack("{s:s}", "deleted", parts[2]));
    }
    case R_PREDICT:
    case R_SIMULATE:
        if (r->too_big) return send_error(c, r, 413, "body over the limit of %lld bytes", cfg.max_body);
        if (r->route == R_SIMULATE) return do_simulate(c, r);
        return do_predict(c, r, MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "key_id"));
    default: return send_error(c, r, 404, "unknown route");
    }
}

/* MHD's entry: the request's worker slot is given back as soon as its answer is queued, so that a
 * client sending its next request at once does not find it still taken. */
static MHD_Result_t handler(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                            const char *version, const char *upload_data, size_t *upload_size, void **con_cls)
{
    request *before = *con_cls;
    int final = before && *upload_size == 0;
    MHD_Result_t ret = handle(cls, c, url, method, version, upload_data, upload_size, con_cls);
    if (final && before->slot == 1) {
        slot_release();
        before->slot = 2; /* released; the latency is still recorded at completion */
    }
    return ret;
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe)
{
    (void)cls, (void)c;
    request *r = *con_cls;
    if (!r) return;
    double dt = now_s() - r->t0;
    if (r->slot) {
        if (r->slot == 1) slot_release();
        int b = 0;
        while (b < NBUCKETS && dt > buckets[b]) b++;
        m_lat[r->route][b]++;
        m_lat_us[r->route] += (unsigned long long)(dt * 1e6);
    }
    if (r->up) {
        fclose(r->up);
        unlink(r->up_path);
    }
    if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK && !r->status_hint) m_errors4[r->route]++;
    if (r->route != R_HEALTH && r->route != R_METRICS)
        logf_("%s %d %.3f s%s", route_names[r->route], r->status_hint, dt,
              toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : " (connection ended early)");
    free(r->body);
    free(r);
    *con_cls = NULL;
}

/* ---- start-up ------------------------------------------------------------------------------------ */
static int load_model(const char *dir)
{
    if (nmodels == VEIL_SERVE_MAX_MODELS) {
        fprintf(stderr, "veil serve: at most %d models\n", VEIL_SERVE_MAX_MODELS);
        return 0;
    }
    model *m = &models[nmodels];
    char path[PATH_MAX];
    size_t dl = strlen(dir);
    while (dl > 1 && dir[dl - 1] == '/') dl--;
    const char *base = dir + dl;
    while (base > dir && base[-1] != '/') base--;
    snprintf(m->name, sizeof m->name, "%.*s", (int)(dir + dl - base), base);
    for (int i = 0; i < nmodels; i++)
        if (strcmp(models[i].name, m->name) == 0) {
            fprintf(stderr, "veil serve: two models named '%s'\n", m->name);
            return 0;
        }
    double t0 = now_s();
    snprintf(path, sizeof path, "%.*s/server.veil", (int)dl, dir);
    if (veil_server_model_load(path, &m->sm) != VEIL_OK) {
        fprintf(stderr, "veil serve: %s\n", veil_server_last_error());
        return 0;
    }
    snprintf(path, sizeof path, "%.*s/client.veil", (int)dl, dir);
    veil_status st = veil_file_read_all(path, 1 << 26, &m->client, &m->client_len);
    veil_container cn;
    const uint8_t *id;
    size_t idl;
    if (st != VEIL_OK || veil_container_parse(m->client, m->client_len, VEIL_KIND_CLIENT_BUNDLE, 0, &cn) != VEIL_OK ||
        veil_container_section(&cn, TAG_MDID, &id, &idl) != VEIL_OK || idl != VEIL_MODEL_ID_BYTES) {
        fprintf(stderr, "veil serve: %s: not a readable client bundle\n", path);
        return 0;
    }
    char hex[2 * VEIL_MODEL_ID_BYTES + 1];
    veil_hex(id, VEIL_MODEL_ID_BYTES, hex);
    if (strcmp(hex, veil_server_model_id(m->sm)) != 0) {
        fprintf(stderr, "veil serve: %.*s: client.veil and server.veil come from different compilations\n", (int)dl, dir);
        return 0;
    }
    const veil_circuit *c = veil_server_model_circuit(m->sm);
    veil_circuit_stats s;
    veil_circuit_get_stats(c, &s); /* every parameter set's keys */
    m->key_bytes = s.bsk_seeded_bytes + s.ksk_seeded_bytes;
    m->key_bytes_full = s.bsk_bytes + s.ksk_bytes;
    logf_("model %s loaded in %.3f s: max bit-width %u, %zu PBS per inference, parameters %s, evaluation keys "
          "%.1f MB compressed (%.1f MB expanded)",
          m->name, now_s() - t0, veil_circuit_max_bit_width(c), s.pbs_count, veil_circuit_params(c)->name,
          (double)m->key_bytes / 1e6, (double)m->key_bytes_full / 1e6);
    nmodels++;
    return 1;
}

void veil_serve_config_default(veil_serve_config *c)
{
    *c = (veil_serve_config){.host = "127.0.0.1", .data = "veil-data", .port = 8080, .workers = 2, .queue = 4, .threads = 0,
                             .cache = 4, .timeout_s = 120, .max_body = 64000000, .quota = 16000000000LL,
                             .expiry_s = 604800};
}


int veil_serve(const veil_serve_config *config, const char *const *dirs, int ndirs)
{
    cfg = *config;
    if (cfg.threads == 0) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        cfg.threads = cores / cfg.workers > 0 ? cores / cfg.workers : 1;
    }
    for (int i = 0; i < ndirs; i++)
        if (!load_model(dirs[i])) return 1;
    snprintf(keys_dir, sizeof keys_dir, "%s/keys", cfg.data);
    if ((mkdir(cfg.data, 0700) != 0 && errno != EEXIST) || (mkdir(keys_dir, 0700) != 0 && errno != EEXIST)) {
        fprintf(stderr, "veil serve: cannot create %s: %s\n", keys_dir, strerror(errno));
        return 1;
    }
    keys_scan();
    pthread_mutex_lock(&keys_lock);
    keys_sweep_locked(); /* keys that expired while the server was down */
    pthread_mutex_unlock(&keys_lock);

    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL); /* MHD's threads inherit the mask; main waits below */
    signal(SIGPIPE, SIG_IGN);

    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)cfg.port)};
    if (inet_pton(AF_INET, cfg.host, &addr.sin_addr) != 1) {
        fprintf(stderr, "veil serve: --host must be an IPv4 address (got '%s')\n", cfg.host);
        return 2;
    }
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_ERROR_LOG;
    char *cert = NULL, *key = NULL;
    if (cfg.tls_cert) {
        if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
            fprintf(stderr, "veil serve: this libmicrohttpd has no TLS support\n");
            return 1;
        }
        if (!(cert = veil_read_text(cfg.tls_cert)) || !(key = veil_read_text(cfg.tls_key))) {
            fprintf(stderr, "veil serve: cannot read %s or %s\n", cfg.tls_cert, cfg.tls_key);
            return 1;
        }
        flags |= MHD_USE_TLS;
    }
    struct MHD_Daemon *d;
    if (cert)
        d = MHD_start_daemon(flags, 0, NULL, NULL, handler, NULL, MHD_OPTION_SOCK_ADDR,
                             (struct sockaddr *)&addr, MHD_OPTION_NOTIFY_COMPLETED, completed, NULL,
                             MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)cfg.timeout_s, MHD_OPTION_CONNECTION_LIMIT,
                             (unsigned)(cfg.workers * 8 + 32), MHD_OPTION_HTTPS_MEM_CERT, cert,
                             MHD_OPTION_HTTPS_MEM_KEY, key, MHD_OPTION_END);
    else
        d = MHD_start_daemon(flags, 0, NULL, NULL, handler, NULL, MHD_OPTION_SOCK_ADDR,
                             (struct sockaddr *)&addr, MHD_OPTION_NOTIFY_COMPLETED, completed, NULL,
                             MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)cfg.timeout_s, MHD_OPTION_CONNECTION_LIMIT,
                             (unsigned)(cfg.workers * 8 + 32), MHD_OPTION_END);
    if (!d) {
        fprintf(stderr, "veil serve: cannot listen on %s:%ld (in use, or not allowed)\n", cfg.host, cfg.port);
        return 1;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    unsigned port = info ? info->port : (unsigned)cfg.port;
    logf_("listening on %s://%s:%u (%d model(s), %ld workers, %ld threads each, queue %ld, simulate %s)",
          cert ? "https" : "http", cfg.host, port, nmodels, cfg.workers, cfg.threads, cfg.queue,
          cfg.allow_simulate ? "on" : "off");
    if (cfg.port_file) {
        char pb[16];
        int pl = snprintf(pb, sizeof pb, "%u\n", port);
        if (veil_file_write_atomic(cfg.port_file, (const uint8_t *)pb, (size_t)pl, 0644) != VEIL_OK)
            logf_("cannot write %s", cfg.port_file);
    }
    int sig = 0;
    sigwait(&set, &sig);
    logf_("signal %d: stopping", sig);
    MHD_stop_daemon(d);
    for (key_entry *k = keys, *n; k; k = n) {
        n = k->next;
        veil_eval_keys_free(k->ek);
        free(k);
    }
    for (int i = 0; i < nmodels; i++) {
        veil_server_model_free(models[i].sm);
        veil_free(models[i].client);
    }
    free(cert), free(key);
    return 0;
}
