/* The client through a veil server (HTTP with libcurl): fetch the client bundle, make or load the
 * keys in keys_dir, make sure the server holds the evaluation keys, then encrypted predictions
 * with several requests in flight. The secret key never leaves this process and keys_dir. */
#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "deploy.h"
#include "veil/client.h"

enum { MAX_ANSWER = 1 << 30, KEY_ID_CAP = 64 };

struct veil_remote {
    veil_remote_options o;
    veil_client *cl;
    char base[2048], key_id[KEY_ID_CAP], kidp[2600];
    veil_remote_stats stats;
};

static veil_status fail(veil_status st, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static veil_status fail(veil_status st, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    veil_client_set_error(msg);
    return st;
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void note(const veil_remote *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(const veil_remote *r, const char *fmt, ...)
{
    if (!r->o.on_note) return;
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    r->o.on_note(r->o.ctx, msg);
}

/* ---- HTTP ---------------------------------------------------------------------------------------- */
typedef struct {
    uint8_t *data;
    size_t len, cap;
    int over;
} sink;

static size_t sink_write(char *p, size_t size, size_t n, void *ud)
{
    sink *s = ud;
    size_t add = size * n;
    if (s->len + add > MAX_ANSWER) {
        s->over = 1;
        return 0;
    }
    if (s->len + add > s->cap) {
        size_t cap = s->cap ? s->cap : 1 << 16;
        while (cap < s->len + add) cap *= 2;
        uint8_t *d = veil_realloc(s->data, s->len, cap);
        if (!d) return 0;
        s->data = d;
        s->cap = cap;
    }
    memcpy(s->data + s->len, p, add);
    s->len += add;
    return add;
}

static int upload_progress(void *ud, curl_off_t dlt, curl_off_t dln, curl_off_t ult, curl_off_t uln)
{
    (void)dlt, (void)dln;
    const veil_remote *r = ud;
    if (r->o.on_upload && ult > 0) r->o.on_upload(r->o.ctx, (uint64_t)uln, (uint64_t)ult);
    return 0;
}

/* One request; the answer in *out; returns the HTTP status, or 0 after a transport error (its
 * reason in *err). The body comes from memory or is streamed from a file. */
static long http(const veil_remote *r, const char *method, const char *url, const uint8_t *body, FILE *f, size_t len,
                 sink *out, char *err, size_t errcap)
{
    out->len = 0;
    out->over = 0;
    CURL *c = curl_easy_init();
    if (!c) {
        snprintf(err, errcap, "libcurl failed to start");
        return 0;
    }
    char cerr[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, cerr);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 10L);
    if (r->o.cacert) curl_easy_setopt(c, CURLOPT_CAINFO, r->o.cacert);
    if (r->o.insecure) {
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/octet-stream");
    h = curl_slist_append(h, "Expect:");
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    if (body || f) {
        curl_easy_setopt(c, CURLOPT_POST, 1L);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
        if (f) {
            curl_easy_setopt(c, CURLOPT_READDATA, f); /* the default read function: fread */
            curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
            curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, upload_progress);
            curl_easy_setopt(c, CURLOPT_XFERINFODATA, (void *)r);
        } else {
            curl_easy_setopt(c, CURLOPT_POSTFIELDS, (const char *)body);
        }
    }
    CURLcode rc = curl_easy_perform(c);
    long code = 0;
    if (rc == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    else snprintf(err, errcap, "%s %s: %s", method, url, out->over ? "answer too large" : cerr[0] ? cerr : curl_easy_strerror(rc));
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return code;
}

static void server_error(const sink *s, long code, char *out, size_t cap)
{
    veil_deploy_server_error(s->data, s->len, code, out, cap);
}

/* ---- files in keys_dir ------------------------------------------------------------------------- */


static int write_text(const char *path, const char *s)
{
    return veil_file_write_atomic(path, (const uint8_t *)s, strlen(s), 0600) == VEIL_OK;
}

/* ---- open: bundle, keys, upload ----------------------------------------------------------------- */
static veil_status upload(veil_remote *r, const char *ekp)
{
    FILE *f = fopen(ekp, "rb");
    struct stat st;
    if (!f || fstat(fileno(f), &st) != 0) {
        if (f) fclose(f);
        return fail(VEIL_ERR_IO, "cannot read %s", ekp);
    }
    char u[2200], err[600] = "";
    snprintf(u, sizeof u, "%s/v1/keys?model=%s", r->base, r->o.model);
    sink s = {0};
    double t0 = now_s();
    long code = http(r, "POST", u, NULL, f, (size_t)st.st_size, &s, err, sizeof err);
    fclose(f);
    char kid[KEY_ID_CAP];
    veil_status rc = VEIL_OK;
    if (code != 201 || !veil_deploy_key_id(s.data, s.len, kid, sizeof kid)) {
        if (code) server_error(&s, code, err, sizeof err);
        rc = fail(VEIL_ERR_IO, "uploading the evaluation keys: %s", err);
    } else {
        snprintf(r->key_id, sizeof r->key_id, "%s", kid);
        r->stats.keys_uploaded++;
        note(r, "evaluation keys uploaded (%.1f MB in %.1f s): key id %.8s…", (double)st.st_size / 1e6,
             now_s() - t0, r->key_id);
        /* one line per server: "URL KEY_ID" */
        char *old = veil_read_text(r->kidp), *all = NULL;
        size_t need = (old ? strlen(old) : 0) + strlen(r->base) + KEY_ID_CAP + 4, used = 0;
        if ((all = veil_malloc(need))) {
            all[0] = 0;
            for (char *line = old ? strtok(old, "\n") : NULL; line; line = strtok(NULL, "\n")) {
                char *sp = strrchr(line, ' ');
                if (sp && (size_t)(sp - line) == strlen(r->base) && strncmp(line, r->base, strlen(r->base)) == 0)
                    continue; /* this server's previous id */
                used += (size_t)snprintf(all + used, need - used, "%s\n", line);
            }
            snprintf(all + used, need - used, "%s %s\n", r->base, r->key_id);
            if (!write_text(r->kidp, all)) note(r, "cannot write %s", r->kidp);
        }
        veil_free(all), veil_free(old);
    }
    veil_free(s.data);
    return rc;
}

veil_status veil_remote_open(const veil_remote_options *o, veil_remote **out)
{
    if (!o || !o->url || !o->model || !o->keys_dir || !out) return fail(VEIL_ERR_INVALID_ARG, "url, model and keys directory needed");
    *out = NULL;
    for (const char *p = o->model; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || strchr("-_.", *p)))
            return fail(VEIL_ERR_INVALID_ARG, "model name '%s': letters, digits, '-', '_' and '.' only", o->model);
    veil_remote *r = veil_calloc(1, sizeof *r);
    if (!r) return fail(VEIL_ERR_NOMEM, "out of memory");
    curl_global_init(CURL_GLOBAL_DEFAULT); /* reference-counted; thread-safe in libcurl >= 7.84 */
    r->o = *o;
    size_t ul = strlen(o->url);
    while (ul && o->url[ul - 1] == '/') ul--;
    snprintf(r->base, sizeof r->base, "%.*s", (int)ul, o->url);
    char u[2200], err[600] = "", ekp[2600], midp[2600];
    snprintf(ekp, sizeof ekp, "%s/eval.keys", o->keys_dir);
    snprintf(midp, sizeof midp, "%s/model_id", o->keys_dir);
    snprintf(r->kidp, sizeof r->kidp, "%s/key_ids", o->keys_dir);
    sink s = {0};
    veil_status st = VEIL_OK;
    /* 1. the client bundle */
    snprintf(u, sizeof u, "%s/v1/models/%s/client", r->base, o->model);
    long code = http(r, "GET", u, NULL, NULL, 0, &s, err, sizeof err);
    if (code != 200) {
        if (code) server_error(&s, code, err, sizeof err);
        st = fail(VEIL_ERR_IO, "fetching the client bundle: %s", err);
        goto done;
    }
    if ((st = veil_client_from_bytes(s.data, s.len, &r->cl)) != VEIL_OK) {
        char tmp[400];
        snprintf(tmp, sizeof tmp, "%s", veil_client_last_error());
        st = fail(st, "the server's client bundle: %s", tmp);
        goto done;
    }
    /* 2. keys, made once per compilation of the model */
    struct stat fs;
    int keyless = !veil_client_needs_eval_keys(r->cl);
    if (o->passphrase && (st = veil_client_set_passphrase(r->cl, o->passphrase, o->passphrase_len)) != VEIL_OK) goto done;
    veil_status ls = veil_client_load_keys(r->cl, o->keys_dir);
    if (ls == VEIL_ERR_PASSPHRASE) { /* never replaced by new keys: they would overwrite it */
        st = fail(ls, "%s", veil_client_last_error());
        goto done;
    }
    int have = ls == VEIL_OK && (keyless || stat(ekp, &fs) == 0);
    if (!have && stat(midp, &fs) == 0) note(r, "%s; making new keys", veil_client_last_error());
    if (!have) {
        double t0 = now_s();
        if ((st = veil_client_keygen(r->cl, NULL)) != VEIL_OK || (st = veil_client_save_keys(r->cl, o->keys_dir)) != VEIL_OK)
            goto done;
        unlink(r->kidp); /* ids of the previous keys */
        r->stats.keys_made = 1;
        note(r, "new keys in %s (%.1f s): secret.key (mode 0600), eval.keys %.1f MB", o->keys_dir, now_s() - t0,
             (stat(ekp, &fs) == 0 ? (double)fs.st_size : 0.0) / 1e6);
    }
    /* 3. the server's key id: stored and still held, or a new upload (none for a leveled model) */
    if (keyless) {
        note(r, "this model has no lookups: no evaluation keys to upload");
        goto done;
    }
    char *ids = veil_read_text(r->kidp);
    for (char *line = ids ? strtok(ids, "\n") : NULL; line; line = strtok(NULL, "\n")) {
        char *sp = strrchr(line, ' ');
        if (sp && (size_t)(sp - line) == strlen(r->base) && strncmp(line, r->base, strlen(r->base)) == 0 &&
            strlen(sp + 1) < KEY_ID_CAP)
            snprintf(r->key_id, sizeof r->key_id, "%s", sp + 1);
    }
    veil_free(ids);
    if (r->key_id[0]) {
        snprintf(u, sizeof u, "%s/v1/keys/%s", r->base, r->key_id);
        code = http(r, "GET", u, NULL, NULL, 0, &s, err, sizeof err);
        if (code == 404) note(r, "the server no longer holds key %.8s…; uploading again", r->key_id);
        if (code != 200) r->key_id[0] = 0;
    }
    if (!r->key_id[0]) st = upload(r, ekp);
done:
    veil_free(s.data);
    if (st != VEIL_OK) {
        veil_remote_close(r);
        return st;
    }
    *out = r;
    return VEIL_OK;
}

void veil_remote_close(veil_remote *r)
{
    if (!r) return;
    veil_client_free(r->cl);
    veil_free(r);
    curl_global_cleanup();
}

const veil_client *veil_remote_client(const veil_remote *r) { return r ? r->cl : NULL; }

/* ---- predictions ---------------------------------------------------------------------------------- */
typedef struct {
    veil_remote *r;
    const char *url;
    const double *x;
    int64_t isz, osz, n;
    double *y, *lat;
    atomic_llong next;
    atomic_int failed, busy;
    pthread_mutex_t lock; /* the first failure's message; on_sample calls */
    char err[800];
} job;

static void job_fail(job *j, const char *msg)
{
    pthread_mutex_lock(&j->lock);
    if (!j->failed) snprintf(j->err, sizeof j->err, "%s", msg);
    j->failed = 1;
    pthread_mutex_unlock(&j->lock);
}

static void *worker(void *vj)
{
    job *j = vj;
    sink s = {0};
    char err[600], msg[700];
    for (int64_t i; !j->failed && (i = atomic_fetch_add(&j->next, 1)) < j->n;) {
        uint8_t *req = NULL;
        size_t rl = 0;
        double t0 = now_s();
        if (veil_client_quantize_encrypt_serialize(j->r->cl, j->x + i * j->isz, &req, &rl) != VEIL_OK) {
            job_fail(j, veil_client_last_error());
            break;
        }
        long code;
        for (int attempt = 0;; attempt++) {
            code = http(j->r, "POST", j->url, req, NULL, rl, &s, err, sizeof err);
            if (code != 503 || attempt == 600) break;
            j->busy++;
            usleep(50000u * (unsigned)(1 + attempt % 8)); /* the server is busy: wait and send again */
        }
        veil_free(req);
        if (code != 200) {
            if (code) server_error(&s, code, err, sizeof err);
            snprintf(msg, sizeof msg, "prediction of sample %lld: %s", (long long)i, err);
            job_fail(j, msg);
            break;
        }
        if (veil_client_deserialize_decrypt_dequantize(j->r->cl, s.data, s.len, j->y + i * j->osz) != VEIL_OK) {
            snprintf(msg, sizeof msg, "the server's answer to sample %lld: %s", (long long)i, veil_client_last_error());
            job_fail(j, msg);
            break;
        }
        double dt = now_s() - t0;
        if (j->lat) j->lat[i] = dt;
        if (j->r->o.on_sample) {
            pthread_mutex_lock(&j->lock);
            j->r->o.on_sample(j->r->o.ctx, i, dt);
            pthread_mutex_unlock(&j->lock);
        }
    }
    veil_free(s.data);
    return NULL;
}

veil_status veil_remote_predict(veil_remote *r, const double *x, int64_t n, int concurrency, double *y,
                                double *latency, veil_remote_stats *stats)
{
    if (!r || (!x && n) || (!y && n) || n < 0 || concurrency < 1 || concurrency > 64)
        return fail(VEIL_ERR_INVALID_ARG, "samples, outputs and a concurrency in 1..64 needed");
    const veil_model *m = veil_client_model(r->cl);
    char u[2300];
    if (r->key_id[0]) snprintf(u, sizeof u, "%s/v1/models/%s/predict?key_id=%s", r->base, r->o.model, r->key_id);
    else snprintf(u, sizeof u, "%s/v1/models/%s/predict", r->base, r->o.model);
    job j = {.r = r, .url = u, .x = x, .isz = veil_model_input_size(m), .osz = veil_model_output_size(m), .n = n,
             .y = y, .lat = latency, .lock = PTHREAD_MUTEX_INITIALIZER};
    pthread_t th[64];
    int started = 0;
    double t0 = now_s();
    for (int t = 0; t < concurrency && t < n; t++) started += pthread_create(&th[started], NULL, worker, &j) == 0;
    if (!started && n) worker(&j);
    for (int t = 0; t < started; t++) pthread_join(th[t], NULL);
    r->stats.seconds = now_s() - t0;
    r->stats.busy_retries = j.busy;
    if (stats) *stats = r->stats;
    if (j.failed) {
        veil_client_set_error(j.err);
        return VEIL_ERR_IO;
    }
    return VEIL_OK;
}
