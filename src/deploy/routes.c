/* Every request of `veil serve`, from its method, path, query, headers and body to an answer,
 * knowing nothing of the transport (httpd.c feeds it from libmicrohttpd, tests/fuzz in-process).
 * Routes (docs/format.md, README): GET /healthz, GET /metrics, GET /v1/models,
 * GET /v1/models/NAME/client, POST /v1/keys?model=NAME, GET|DELETE /v1/keys/ID,
 * POST /v1/models/NAME/predict[?key_id=ID], POST /v1/models/NAME/simulate.
 * Heavy requests (uploads, predictions, simulations) take one of --workers slots, in arrival order
 * behind at most --queue others; beyond that the answer is 503 at once. Bodies are counted as they
 * stream: a prediction's against --max-body, an upload's against its model's key size. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../core/strbuf.h"
#include "deploy.h"
#include "serve_impl.h"

static const char *const route_names[R_COUNT] = {"healthz", "metrics", "models", "client", "keys_upload",
                                                 "key", "predict", "simulate", "other"};
static const double buckets[NBUCKETS] = {0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};

struct serve_request {
    serve_state *s;
    int route, model, code;
    int get, post, del;
    int slot; /* 1: holds a worker slot; 2: held one, given back */
    double t0;
    char part2[128]; /* the path's third part: a model name or a key id */
    /* body */
    uint8_t *body;
    size_t len, cap;
    int too_big;
    /* key upload, streamed to a temporary file */
    int up_fd;
    uint64_t up_bytes, up_limit, held; /* held: stored key bytes when the upload began */
    char up_path[PATH_MAX + 64];
    uint8_t head[HEAD_BYTES];
    size_t head_len;
    char err[400];
    int err_code;
};

/* ---- answers ------------------------------------------------------------------------------------ */
static void answer(serve_request *r, serve_resp *o, unsigned code, const char *type, void *data, size_t len,
                   void (*free_fn)(void *))
{
    *o = (serve_resp){.code = code, .type = type, .data = data, .len = len, .free_fn = free_fn};
    r->code = (int)code;
    if (code >= 500) r->s->m_errors5[r->route]++;
    else if (code >= 400) r->s->m_errors4[r->route]++;
}

static void answer_json(serve_request *r, serve_resp *o, unsigned code, json_t *j)
{
    char *t = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (!t) {
        static const char oom[] = "{\"error\":\"out of memory\"}\n";
        answer(r, o, 503, "application/json", (void *)oom, sizeof oom - 1, NULL);
        return;
    }
    size_t n = strlen(t);
    t[n] = '\n'; /* replaces the NUL: the length is explicit */
    answer(r, o, code, "application/json", t, n + 1, free);
}

static void answer_error(serve_request *r, serve_resp *o, unsigned code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void answer_error(serve_request *r, serve_resp *o, unsigned code, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    answer_json(r, o, code, json_pack("{s:s}", "error", msg));
}

/* ---- worker slots ----------------------------------------------------------------------------- */
static int slot_acquire(serve_state *s, long *running, long *waiting)
{
    pthread_mutex_lock(&s->slot_lock);
    if (s->waiting >= s->cfg.queue && s->running >= s->cfg.workers) {
        *running = s->running, *waiting = s->waiting; /* live counts, for the refusal */
        pthread_mutex_unlock(&s->slot_lock);
        return 0;
    }
    unsigned long long mine = s->next_ticket++;
    s->waiting++;
    while (s->serving != mine || s->running >= s->cfg.workers) pthread_cond_wait(&s->slot_cond, &s->slot_lock);
    s->waiting--;
    s->serving++;
    s->running++;
    atomic_store(&s->in_flight, (int)s->running);
    pthread_cond_broadcast(&s->slot_cond); /* the next ticket may go too */
    pthread_mutex_unlock(&s->slot_lock);
    return 1;
}

static void slot_release(serve_state *s)
{
    pthread_mutex_lock(&s->slot_lock);
    s->running--;
    atomic_store(&s->in_flight, (int)s->running);
    pthread_cond_broadcast(&s->slot_cond);
    pthread_mutex_unlock(&s->slot_lock);
}

/* ---- pieces ----------------------------------------------------------------------------------- */
static void body_append(serve_request *r, const char *data, size_t n)
{
    if (r->too_big) return;
    if (r->len + n > (size_t)r->s->cfg.max_body) {
        r->too_big = 1;
        veil_free(r->body);
        r->body = NULL;
        r->len = r->cap = 0;
        return;
    }
    if (r->len + n > r->cap) {
        size_t cap = r->cap ? r->cap : 4096;
        while (cap < r->len + n) cap *= 2;
        uint8_t *b = veil_malloc(cap);
        if (b && r->len) memcpy(b, r->body, r->len);
        if (b) veil_free(r->body);
        if (!b) {
            r->err_code = 503;
            snprintf(r->err, sizeof r->err, "out of memory");
            r->too_big = 1;
            return;
        }
        r->body = b;
        r->cap = cap;
    }
    memcpy(r->body + r->len, data, n);
    r->len += n;
}

/* The path split on '/': at most 6 parts of under 128 bytes; -1 beyond. */
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

static int find_model(const serve_state *s, const char *name)
{
    for (int i = 0; i < s->nmodels; i++)
        if (strcmp(s->models[i].name, name) == 0) return i;
    return -1;
}

/* a decimal Content-Length, or -1 when absent or not one */
static long long content_length(const char *cl)
{
    if (!cl) return -1;
    char *end;
    errno = 0;
    long long v = strtoll(cl, &end, 10);
    return errno || end == cl || *end || v < 0 ? -1 : v;
}

static json_t *model_json(const serve_state *s, int i)
{
    const veil_circuit *c = veil_server_model_circuit(s->models[i].sm);
    const veil_params *p = veil_circuit_params(c);
    char fp[17];
    snprintf(fp, sizeof fp, "%016llx", (unsigned long long)veil_params_fingerprint(p));
    return json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:b}", "name", s->models[i].name, "model_id",
                     veil_server_model_id(s->models[i].sm), "params", p->name, "params_fingerprint", fp, "inputs",
                     (json_int_t)veil_circuit_io_split(c, 0, NULL, NULL, SIZE_MAX), "outputs",
                     (json_int_t)veil_circuit_io_split(c, 1, NULL, NULL, SIZE_MAX), "pbs", (json_int_t)s->models[i].pbs,
                     "max_bit_width", (json_int_t)veil_circuit_max_bit_width(c), "eval_key_bytes",
                     (json_int_t)s->models[i].key_bytes, "eval_key_bytes_expanded",
                     (json_int_t)s->models[i].key_bytes_full, "simulate", s->cfg.allow_simulate);
}

static void do_metrics(serve_request *r, serve_resp *o)
{
    serve_state *s = r->s;
    veil_sb f = {0};
    int nk, loaded, loading = 0;
    pthread_mutex_lock(&s->keys_lock);
    uint64_t kb = ks_bytes_held_locked(s, &nk, &loaded);
    for (const key_entry *k = s->keys; k; k = k->next) loading += k->loading;
    pthread_mutex_unlock(&s->keys_lock);
    veil_sb_printf(&f, "# HELP veil_requests_total Requests received, by route.\n# TYPE veil_requests_total counter\n");
    for (int i = 0; i < R_COUNT; i++)
        veil_sb_printf(&f, "veil_requests_total{route=\"%s\"} %llu\n", route_names[i], (unsigned long long)s->m_requests[i]);
    veil_sb_printf(&f, "# HELP veil_errors_total Requests answered with an error, by route and class.\n"
               "# TYPE veil_errors_total counter\n");
    for (int i = 0; i < R_COUNT; i++) {
        veil_sb_printf(&f, "veil_errors_total{route=\"%s\",class=\"4xx\"} %llu\n", route_names[i],
                (unsigned long long)s->m_errors4[i]);
        veil_sb_printf(&f, "veil_errors_total{route=\"%s\",class=\"5xx\"} %llu\n", route_names[i],
                (unsigned long long)s->m_errors5[i]);
    }
    veil_sb_printf(&f, "# HELP veil_busy_total Requests refused with 503 because every worker was busy.\n"
               "# TYPE veil_busy_total counter\nveil_busy_total %llu\n", (unsigned long long)s->m_busy);
    veil_sb_printf(&f, "# HELP veil_connections_cut_total Connections closed for missing the header deadline (idle ones too) or the body deadline.\n"
               "# TYPE veil_connections_cut_total counter\nveil_connections_cut_total %llu\n",
            (unsigned long long)s->m_cut);
    veil_sb_printf(&f, "# HELP veil_pbs_total Programmable bootstrappings executed.\n# TYPE veil_pbs_total counter\n"
               "veil_pbs_total %llu\n", (unsigned long long)s->m_pbs);
    veil_sb_printf(&f, "# HELP veil_request_seconds Latency of heavy requests.\n# TYPE veil_request_seconds histogram\n");
    for (int i = R_KEYS_POST; i <= R_SIMULATE; i++) {
        if (i == R_KEY) continue;
        unsigned long long cum = 0;
        for (int b = 0; b <= NBUCKETS; b++) {
            cum += s->m_lat[i][b];
            if (b < NBUCKETS)
                veil_sb_printf(&f, "veil_request_seconds_bucket{route=\"%s\",le=\"%g\"} %llu\n", route_names[i], buckets[b], cum);
            else
                veil_sb_printf(&f, "veil_request_seconds_bucket{route=\"%s\",le=\"+Inf\"} %llu\n", route_names[i], cum);
        }
        veil_sb_printf(&f, "veil_request_seconds_sum{route=\"%s\"} %.6f\n", route_names[i], 1e-6 * (double)s->m_lat_us[i]);
        veil_sb_printf(&f, "veil_request_seconds_count{route=\"%s\"} %llu\n", route_names[i], cum);
    }
    veil_sb_printf(&f, "# HELP veil_keys_held Evaluation key sets stored.\n# TYPE veil_keys_held gauge\nveil_keys_held %d\n", nk);
    veil_sb_printf(&f, "# HELP veil_keys_loaded Evaluation key sets in memory.\n# TYPE veil_keys_loaded gauge\n"
               "veil_keys_loaded %d\n", loaded);
    veil_sb_printf(&f, "# HELP veil_keys_loading Evaluation key sets being loaded (outside the server's lock).\n"
               "# TYPE veil_keys_loading gauge\nveil_keys_loading %d\n", loading);
    veil_sb_printf(&f, "# HELP veil_key_bytes_held Bytes of stored evaluation keys.\n# TYPE veil_key_bytes_held gauge\n"
               "veil_key_bytes_held %llu\n", (unsigned long long)kb);
    veil_sb_printf(&f, "# HELP veil_in_flight Heavy requests in progress.\n# TYPE veil_in_flight gauge\nveil_in_flight %d\n",
            atomic_load(&s->in_flight));
    pthread_mutex_lock(&s->slot_lock);
    long q = s->waiting;
    pthread_mutex_unlock(&s->slot_lock);
    veil_sb_printf(&f, "# HELP veil_queued Heavy requests waiting for a worker.\n# TYPE veil_queued gauge\nveil_queued %ld\n", q);
    char *text = veil_sb_take(&f);
    if (!text) {
        answer_error(r, o, 503, "out of memory");
        return;
    }
    answer(r, o, 200, "text/plain; version=0.0.4", text, strlen(text), veil_free);
}

/* The upload is complete in r->up_path: check it fully, store it under a fresh key id. The file is
 * renamed or removed on every path. */
/* a failed run: the server's trouble (memory, a rank of an MPI run gone) is 503, try again; the
 * request's is 400 */
static unsigned run_code(veil_status st) { return st == VEIL_ERR_NOMEM || st == VEIL_ERR_REMOTE ? 503 : 400; }

static void store_upload(serve_request *r, serve_resp *o)
{
    serve_state *s = r->s;
    int e = fsync(r->up_fd) != 0 ? errno : 0;
    if (close(r->up_fd) != 0 && !e) e = errno;
    r->up_fd = -1;
    if (e) {
        unlink(r->up_path);
        if (e == ENOSPC || e == EDQUOT) answer_error(r, o, 507, "the server's disk is full: keys not stored");
        else answer_error(r, o, 500, "cannot store the keys on the server's disk");
        return;
    }
    uint8_t *d;
    size_t len;
    veil_eval_keys *ek = NULL;
    if (ks_map_file(r->up_path, &d, &len) != VEIL_OK) {
        unlink(r->up_path);
        answer_error(r, o, 400, "evaluation keys: empty body");
        return;
    }
    veil_status st = veil_server_keys_load(s->models[r->model].sm, d, len, &ek);
    munmap(d, len);
    if (st != VEIL_OK) {
        unlink(r->up_path);
        answer_error(r, o, run_code(st), "%s", veil_server_last_error());
        return;
    }
    char id[ID_HEX + 1], err[200];
    int code = ks_store(s, r->up_path, r->model, len, ek, id, err, sizeof err);
    if (code) {
        answer_error(r, o, (unsigned)code, "%s", err);
        return;
    }
    serve_log(s, "keys %.8s… stored for model %s (%zu bytes)", id, s->models[r->model].name, len);
    answer_json(r, o, 201, json_pack("{s:s, s:s, s:I}", "key_id", id, "model", s->models[r->model].name, "bytes",
                                     (json_int_t)len));
}

static void finish_upload(serve_request *r, serve_resp *o)
{
    store_upload(r, o);
    r->up_path[0] = 0;
}

static void do_predict(serve_request *r, serve_resp *o, const char *key_id)
{
    serve_state *s = r->s;
    const serve_model *m = &s->models[r->model];
    const uint8_t *in = r->body ? r->body : (const uint8_t *)"";
    uint8_t *out = NULL;
    size_t olen = 0;
    if (!key_id && m->pbs == 0) { /* a leveled model: no evaluation keys */
        veil_status st = veil_server_run(m->sm, NULL, in, r->len, (unsigned)s->cfg.threads, &out, &olen);
        if (st != VEIL_OK) answer_error(r, o, run_code(st), "%s", veil_server_last_error());
        else answer(r, o, 200, "application/octet-stream", out, olen, veil_free);
        return;
    }
    if (!key_id) {
        answer_error(r, o, 400, "predict needs ?key_id=… (upload keys with POST /v1/keys?model=%s)", m->name);
        return;
    }
    if (!ks_hex_id_ok(key_id)) {
        answer_error(r, o, 400, "malformed key id: 32 lowercase hex digits expected");
        return;
    }
    char err[400] = "";
    key_entry *k = NULL;
    int code = ks_acquire(s, key_id, r->model, &k, err, sizeof err);
    if (code) {
        answer_error(r, o, (unsigned)code, "%s", err);
        return;
    }
    veil_status st = veil_server_run(m->sm, k->ek, in, r->len, (unsigned)s->cfg.threads, &out, &olen);
    if (st != VEIL_OK) snprintf(err, sizeof err, "%s", veil_server_last_error());
    ks_release(s, k);
    if (st != VEIL_OK) {
        answer_error(r, o, run_code(st), "%s", err);
        return;
    }
    s->m_pbs += m->pbs;
    answer(r, o, 200, "application/octet-stream", out, olen, veil_free);
}

static void do_simulate(serve_request *r, serve_resp *o)
{
    json_error_t je;
    json_t *j = json_loadb((const char *)(r->body ? r->body : (uint8_t *)""), r->len, 0, &je);
    json_t *in = j ? json_object_get(j, "inputs") : NULL;
    const veil_circuit *circ = veil_server_model_circuit(r->s->models[r->model].sm);
    /* every input's elements, one input after another; likewise the outputs */
    int64_t n = veil_circuit_io_split(circ, 0, NULL, NULL, SIZE_MAX), no = veil_circuit_io_split(circ, 1, NULL, NULL, SIZE_MAX);
    if (!j) {
        answer_error(r, o, 400, "bad JSON: %s (line %d)", je.text, je.line);
        return;
    }
    if (!json_is_array(in) || (int64_t)json_array_size(in) != n) {
        json_decref(j);
        answer_error(r, o, 400, "simulate needs {\"inputs\": [%lld quantized integers]}", (long long)n);
        return;
    }
    int64_t *x = veil_malloc(sizeof(int64_t) * (size_t)(n ? n : 1)), *y = veil_malloc(sizeof(int64_t) * (size_t)(no ? no : 1));
    int ok = x && y;
    for (int64_t i = 0; ok && i < n; i++) {
        json_t *v = json_array_get(in, (size_t)i);
        ok = json_is_integer(v);
        if (ok) x[i] = json_integer_value(v);
    }
    json_decref(j);
    veil_status st = x && y ? VEIL_ERR_INVALID_ARG : VEIL_ERR_NOMEM;
    int64_t *ins[MAX_IO], *outs[MAX_IO];
    if (ok && veil_circuit_io_split(circ, 0, x, ins, MAX_IO) >= 0 && veil_circuit_io_split(circ, 1, y, outs, MAX_IO) >= 0)
        st = veil_circuit_simulate(circ, (const int64_t *const *)ins, NULL, outs);
    else if (ok)
        st = VEIL_ERR_UNSUPPORTED;
    json_t *arr = st == VEIL_OK ? json_array() : NULL;
    for (int64_t i = 0; arr && i < no; i++)
        if (json_array_append_new(arr, json_integer(y[i])) != 0) json_decref(arr), arr = NULL;
    veil_free(x), veil_free(y);
    if (st == VEIL_ERR_NOMEM || (st == VEIL_OK && !arr)) answer_error(r, o, 503, "out of memory");
    else if (!ok) answer_error(r, o, 400, "inputs must be integers (the client's quantized values)");
    else if (st != VEIL_OK) answer_error(r, o, 400, "simulation failed: %s", veil_status_str(st));
    else answer_json(r, o, 200, json_pack("{s:o}", "outputs", arr));
}

/* ---- the request's life ----------------------------------------------------------------------- */
serve_request *serve_begin(serve_state *s, const serve_req_view *v, serve_resp *o)
{
    serve_request *r = veil_calloc(1, sizeof *r);
    if (!r) return NULL;
    *o = (serve_resp){0};
    r->s = s;
    r->t0 = serve_now();
    r->model = -1;
    r->route = R_OTHER;
    r->up_fd = -1;
    atomic_fetch_add(&s->active, 1);
    const char *method = v->method ? v->method : "", *url = v->url ? v->url : "";
    char parts[6][128];
    int np = split(url, parts);
    r->get = strcmp(method, "GET") == 0, r->post = strcmp(method, "POST") == 0, r->del = strcmp(method, "DELETE") == 0;
    if (np == 1 && strcmp(parts[0], "healthz") == 0) r->route = R_HEALTH;
    else if (np == 1 && strcmp(parts[0], "metrics") == 0) r->route = R_METRICS;
    else if (np == 2 && strcmp(parts[0], "v1") == 0 && strcmp(parts[1], "models") == 0) r->route = R_MODELS;
    else if (np == 4 && strcmp(parts[0], "v1") == 0 && strcmp(parts[1], "models") == 0) {
        r->model = find_model(s, parts[2]);
        r->route = strcmp(parts[3], "client") == 0    ? R_CLIENT
                   : strcmp(parts[3], "predict") == 0  ? R_PREDICT
                   : strcmp(parts[3], "simulate") == 0 ? R_SIMULATE
                                                       : R_OTHER;
    } else if (np == 2 && strcmp(parts[0], "v1") == 0 && strcmp(parts[1], "keys") == 0) r->route = R_KEYS_POST;
    else if (np == 3 && strcmp(parts[0], "v1") == 0 && strcmp(parts[1], "keys") == 0) r->route = R_KEY;
    if (np >= 3) memcpy(r->part2, parts[2], sizeof r->part2);
    s->m_requests[r->route]++;
    int heavy = r->route == R_PREDICT || r->route == R_SIMULATE || r->route == R_KEYS_POST;
    int want_post = heavy, want_del = r->route == R_KEY && !r->get;
    if (atomic_load(&s->stopping)) {
        answer_error(r, o, 503, "the server is stopping");
        o->close = 1;
        return r;
    }
    if (r->route == R_OTHER) {
        answer_error(r, o, 404, "unknown route: %.32s %.200s", method, url);
        return r;
    }
    if ((want_post && !r->post) || (want_del && !r->del) || (!want_post && !want_del && !r->get)) {
        answer_error(r, o, 405, "%.32s is not allowed on %.200s", method, url);
        return r;
    }
    if ((r->route == R_CLIENT || r->route == R_PREDICT || r->route == R_SIMULATE) && r->model < 0) {
        answer_error(r, o, 404, "unknown model '%s'", parts[2]);
        return r;
    }
    if (r->route == R_SIMULATE && !s->cfg.allow_simulate) {
        answer_error(r, o, 403, "simulate is off: it sees clear data (start the server with --allow-simulate)");
        return r;
    }
    if (r->route == R_KEYS_POST) {
        const char *mn = v->lookup(v->ctx, 0, "model");
        if (!mn) {
            answer_error(r, o, 400, "key upload needs ?model=NAME");
            return r;
        }
        if ((r->model = find_model(s, mn)) < 0) {
            answer_error(r, o, 404, "unknown model '%.100s'", mn);
            return r;
        }
    }
    const char *clh = heavy ? v->lookup(v->ctx, 1, "Content-Length") : NULL;
    long long cl = content_length(clh);
    if (clh && cl < 0) {
        answer_error(r, o, 400, "Content-Length is not a byte count");
        return r;
    }
    long long limit = r->route == R_KEYS_POST ? (long long)s->models[r->model].key_bytes_full + (1 << 20) : s->cfg.max_body;
    if (cl > limit) {
        answer_error(r, o, 413, "body of %lld bytes is over the limit of %lld", cl, limit);
        return r;
    }
    if (!heavy) return r;
    long run = 0, wait = 0;
    if (!slot_acquire(s, &run, &wait)) {
        s->m_busy++;
        answer_error(r, o, 503, "busy: %ld requests in progress and %ld waiting, try again", run, wait);
        return r;
    }
    r->slot = 1;
    if (r->route == R_KEYS_POST) {
        pthread_mutex_lock(&s->keys_lock);
        ks_refresh_locked(s); /* a shared store: what the other servers hold counts too */
        ks_sweep_locked(s);
        uint64_t held = ks_bytes_held_locked(s, NULL, NULL);
        pthread_mutex_unlock(&s->keys_lock);
        if ((long long)held + (cl > 0 ? cl : 0) > s->cfg.quota) {
            answer_error(r, o, 507, "key storage quota reached (%llu of %lld bytes held)", (unsigned long long)held,
                         s->cfg.quota);
            return r;
        }
        r->up_limit = (uint64_t)limit;
        r->held = held;
        uint8_t raw[8] = {0};
        veil_rng *rng = NULL;
        if (veil_rng_new_os(&rng) == VEIL_OK) {
            veil_rng_bytes(rng, raw, sizeof raw);
            veil_rng_free(rng);
        }
        char hex[17];
        veil_hex(raw, sizeof raw, hex);
        snprintf(r->up_path, sizeof r->up_path, "%s/.upload-%s", s->keys_dir, hex);
        r->up_fd = open(r->up_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (r->up_fd < 0) {
            r->up_path[0] = 0;
            answer_error(r, o, errno == ENOSPC || errno == EDQUOT ? 507 : 500,
                         "cannot store the keys on the server's disk");
        }
    }
    return r;
}

void serve_body(serve_request *r, const char *data, size_t n)
{
    if (r->code || !n) return; /* answered at the headers already (an error): the body is not kept */
    if (r->route != R_KEYS_POST) {
        body_append(r, data, n);
        return;
    }
    if (r->err_code) return;
    serve_state *s = r->s;
    size_t take = n < HEAD_BYTES - r->head_len ? n : HEAD_BYTES - r->head_len;
    memcpy(r->head + r->head_len, data, take);
    r->head_len += take;
    if (veil_server_keys_precheck(s->models[r->model].sm, r->head, r->head_len) != VEIL_OK) {
        r->err_code = 400;
        snprintf(r->err, sizeof r->err, "%s", veil_server_last_error());
        return;
    }
    if (r->up_bytes + n > r->up_limit) {
        r->err_code = 413;
        snprintf(r->err, sizeof r->err, "evaluation keys over the limit of %llu bytes", (unsigned long long)r->up_limit);
        return;
    }
    if (r->up_bytes + n + r->held > (uint64_t)s->cfg.quota) {
        r->err_code = 507;
        snprintf(r->err, sizeof r->err, "key storage quota reached");
        return;
    }
    for (size_t done = 0; done < n;) {
        ssize_t w = write(r->up_fd, data + done, n - done);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            int full = w < 0 && (errno == ENOSPC || errno == EDQUOT);
            r->err_code = full ? 507 : 500;
            snprintf(r->err, sizeof r->err, full ? "the server's disk is full: keys not stored"
                                                 : "cannot store the keys on the server's disk");
            return;
        }
        done += (size_t)w;
    }
    r->up_bytes += n;
}

void serve_finish(serve_request *r, const serve_req_view *v, serve_resp *o)
{
    serve_state *s = r->s;
    *o = (serve_resp){0};
    if (r->code) return;
    switch (r->route) {
    case R_HEALTH:
        answer_json(r, o, 200, json_pack("{s:s, s:i, s:i}", "status", "ok", "models", s->nmodels, "in_flight",
                                         atomic_load(&s->in_flight)));
        return;
    case R_METRICS: do_metrics(r, o); return;
    case R_MODELS: {
        json_t *arr = json_array();
        for (int i = 0; arr && i < s->nmodels; i++)
            if (json_array_append_new(arr, model_json(s, i)) != 0) json_decref(arr), arr = NULL;
        if (!arr) answer_error(r, o, 503, "out of memory");
        else answer_json(r, o, 200, json_pack("{s:o}", "models", arr));
        return;
    }
    case R_CLIENT:
        answer(r, o, 200, "application/octet-stream", s->models[r->model].client, s->models[r->model].client_len, NULL);
        return;
    case R_KEYS_POST:
        if (r->err_code) {
            answer_error(r, o, (unsigned)r->err_code, "%s", r->err);
            return;
        }
        finish_upload(r, o);
        return;
    case R_KEY: {
        if (!ks_hex_id_ok(r->part2)) {
            answer_error(r, o, 400, "malformed key id: 32 lowercase hex digits expected");
            return;
        }
        pthread_mutex_lock(&s->keys_lock);
        key_entry *k = ks_lookup_locked(s, r->part2);
        if (r->get) { /* does the server still hold it, and for which model */
            json_t *j = k ? json_pack("{s:s, s:s, s:I, s:I}", "key_id", k->id, "model", s->models[k->model].name, "bytes",
                                      (json_int_t)k->bytes, "idle_s", (json_int_t)difftime(time(NULL), k->last_used))
                          : NULL;
            pthread_mutex_unlock(&s->keys_lock);
            if (j) answer_json(r, o, 200, j);
            else answer_error(r, o, 404, "unknown key id");
            return;
        }
        int busy = k && (k->refs > 0 || k->loading);
        if (k && !busy) ks_remove_locked(s, k);
        pthread_mutex_unlock(&s->keys_lock);
        if (!k) answer_error(r, o, 404, "unknown key id");
        else if (busy) answer_error(r, o, 409, "key in use by a request in progress; retry");
        else answer_json(r, o, 200, json_pack("{s:s}", "deleted", r->part2));
        return;
    }
    case R_PREDICT:
    case R_SIMULATE:
        if (r->err_code) answer_error(r, o, (unsigned)r->err_code, "%s", r->err);
        else if (r->too_big) answer_error(r, o, 413, "body over the limit of %lld bytes", s->cfg.max_body);
        else if (r->route == R_SIMULATE) do_simulate(r, o);
        else do_predict(r, o, v->lookup(v->ctx, 0, "key_id"));
        return;
    default: answer_error(r, o, 404, "unknown route"); return;
    }
}

void serve_answered(serve_request *r)
{
    if (r && r->slot == 1) {
        slot_release(r->s);
        r->slot = 2; /* released; the latency is still recorded at the end */
    }
}

void serve_end(serve_request *r, int completed)
{
    if (!r) return;
    serve_state *s = r->s;
    double dt = serve_now() - r->t0;
    if (r->slot) {
        if (r->slot == 1) slot_release(s);
        int b = 0;
        while (b < NBUCKETS && dt > buckets[b]) b++;
        s->m_lat[r->route][b]++;
        s->m_lat_us[r->route] += (unsigned long long)(dt * 1e6);
    }
    if (r->up_fd >= 0) close(r->up_fd);
    if (r->up_path[0]) unlink(r->up_path); /* stored uploads were renamed away: this is a leftover */
    if (!completed && !r->code) s->m_errors4[r->route]++;
    if (r->route != R_HEALTH && r->route != R_METRICS)
        serve_log(s, "%s %d %.3f s%s", route_names[r->route], r->code, dt, completed ? "" : " (connection ended early)");
    veil_free(r->body);
    veil_free(r);
    atomic_fetch_sub(&s->active, 1);
}
