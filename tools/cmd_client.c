/* veil client: predictions through a veil server. The secret key stays here: the client fetches
 * the model's client bundle, makes keys once (kept in --keys DIR, the secret key with mode 0600),
 * uploads the evaluation keys once per server, then for each sample quantizes and encrypts,
 * posts, decrypts and dequantizes. */
#include <curl/curl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <time.h>

#include "../src/core/container.h"
#include "bench_util.h"
#include "cli.h"
#include "commands.h"
#include "veil/client.h"
#include "veil/npy.h"

typedef struct {
    uint8_t *data;
    size_t len, cap, max;
    int over;
} sink;

static size_t sink_write(char *p, size_t size, size_t n, void *ud)
{
    sink *s = ud;
    size_t add = size * n;
    if (s->len + add > s->max) {
        s->over = 1;
        return 0;
    }
    if (s->len + add > s->cap) {
        size_t cap = s->cap ? s->cap : 1 << 16;
        while (cap < s->len + add) cap *= 2;
        uint8_t *d = realloc(s->data, cap);
        if (!d) return 0;
        s->data = d;
        s->cap = cap;
    }
    memcpy(s->data + s->len, p, add);
    s->len += add;
    return add;
}

typedef struct {
    const char *cacert;
    int insecure, progress;
    double t0;
} http_opts;

static int upload_progress(void *ud, curl_off_t dlt, curl_off_t dln, curl_off_t ult, curl_off_t uln)
{
    (void)dlt, (void)dln;
    http_opts *o = ud;
    if (o->progress && ult > 0) cli_progress(1, (size_t)(uln >> 20), (size_t)(ult >> 20), bench_now_s() - o->t0);
    return 0;
}

/* One request; the answer body in *out (up to max bytes), the HTTP status returned (0: transport
 * error, message on stderr). Body from memory (body, len) or streamed from a file (f, len). */
static long http(const http_opts *o, const char *method, const char *url, const uint8_t *body, FILE *f, size_t len,
                 sink *out)
{
    CURL *c = curl_easy_init();
    if (!c) return 0;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 10L);
    if (o->cacert) curl_easy_setopt(c, CURLOPT_CAINFO, o->cacert);
    if (o->insecure) curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L), curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/octet-stream");
    h = curl_slist_append(h, "Expect:");
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    if (body || f) {
        curl_easy_setopt(c, CURLOPT_POST, 1L);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
        if (f) {
            curl_easy_setopt(c, CURLOPT_READDATA, f); /* default read function: fread */
            curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
            curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, upload_progress);
            curl_easy_setopt(c, CURLOPT_XFERINFODATA, (void *)o);
        } else {
            curl_easy_setopt(c, CURLOPT_POSTFIELDS, (const char *)body);
        }
    }
    CURLcode rc = curl_easy_perform(c);
    long code = 0;
    if (rc == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    else fprintf(stderr, "veil client: %s %s: %s\n", method, url, out->over ? "answer too large" : curl_easy_strerror(rc));
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return code;
}

/* The server's {"error": ...} or the raw text. */
static void server_error(const char *what, long code, const sink *s)
{
    json_t *j = json_loadb((const char *)s->data, s->len, 0, NULL);
    const char *msg = j ? json_string_value(json_object_get(j, "error")) : NULL;
    fprintf(stderr, "veil client: %s: HTTP %ld: %s\n", what, code, msg ? msg : "(no message)");
    json_decref(j);
}

static int file_exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0;
}

static int mkdirs(const char *dir)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s", dir);
    for (char *p = tmp + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            if (mkdir(tmp, 0700) != 0 && errno != EEXIST) return 0;
            *p = '/';
        }
    return mkdir(tmp, 0700) == 0 || errno == EEXIST;
}

static int write_text(const char *path, const char *s)
{
    return veil_file_write_atomic(path, (const uint8_t *)s, strlen(s), 0600) == VEIL_OK;
}

static char *read_text(const char *path)
{
    uint8_t *b;
    size_t len;
    if (veil_file_read_all(path, 1 << 20, &b, &len) != VEIL_OK) return NULL;
    char *s = malloc(len + 1);
    if (s) memcpy(s, b, len), s[len] = 0;
    veil_free(b);
    return s;
}

/* The prediction loop, shared by `concurrency` threads: each takes the next sample, encrypts,
 * posts (again after a pause while the server answers 503), decrypts. */
typedef struct {
    const veil_client *cl;
    const http_opts *ho;
    const char *url;
    const double *x;
    int64_t isz, osz, n;
    double *ys, *lat;
    atomic_llong next;
    atomic_int failed, busy;
    pthread_mutex_t print;
} job;

static void *worker(void *vj)
{
    job *j = vj;
    sink s = {.max = 1u << 30};
    for (int64_t i; !j->failed && (i = atomic_fetch_add(&j->next, 1)) < j->n;) {
        uint8_t *req = NULL;
        size_t rl = 0;
        double t0 = bench_now_s();
        if (veil_client_quantize_encrypt_serialize(j->cl, j->x + i * j->isz, &req, &rl) != VEIL_OK) {
            fprintf(stderr, "veil client: %s\n", veil_client_last_error());
            j->failed = 1;
            break;
        }
        long code;
        for (int attempt = 0;; attempt++) {
            s.len = 0;
            code = http(j->ho, "POST", j->url, req, NULL, rl, &s);
            if (code != 503 || attempt == 200) break;
            j->busy++;
            usleep(50000u * (unsigned)(1 + attempt % 8));
        }
        veil_free(req);
        if (code != 200) {
            if (code) server_error("prediction", code, &s);
            j->failed = 1;
            break;
        }
        if (veil_client_deserialize_decrypt_dequantize(j->cl, s.data, s.len, j->ys + i * j->osz) != VEIL_OK) {
            fprintf(stderr, "veil client: the server's answer to sample %lld: %s\n", (long long)i,
                    veil_client_last_error());
            j->failed = 1;
            break;
        }
        j->lat[i] = bench_now_s() - t0;
        pthread_mutex_lock(&j->print);
        fprintf(stderr, "sample %lld: %.3f s\n", (long long)i, j->lat[i]);
        pthread_mutex_unlock(&j->print);
    }
    free(s.data);
    return NULL;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: veil client --url URL --model NAME --input X.npy [-o Y.npy] [options]\n"
               "  Predicts through a veil server; the secret key never leaves this machine.\n"
               "  --keys DIR       where keys are made once and kept (default veil-keys/NAME): secret.key\n"
               "                   (mode 0600), eval.keys (compressed, uploaded once per server), key ids\n"
               "  --limit N        only the first N samples\n"
               "  --concurrency C  requests in flight at once (default 1); prints throughput and latency\n"
               "                   percentiles, retrying when the server answers 503 (busy)\n"
               "  --labels Y.npy   print accuracy=… (argmax against these labels)\n"
               "  --cacert PEM     trust this certificate (HTTPS);  --insecure  trust any\n"
               "  --progress       upload progress even when stderr is not a terminal\n");
}

int veil_cmd_client(int argc, char **argv)
{
    const char *url = NULL, *name = NULL, *keys = NULL, *input = NULL, *output = NULL, *labels = NULL;
    long limit = 0, concurrency = 1;
    http_opts ho = {0};
    ho.progress = isatty(2);
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        }
#define V(dst)                                               \
    do {                                                     \
        if (!(dst = cli_value("client", argc, argv, &i))) return 2; \
    } while (0)
        if (!strcmp(a, "--url")) V(url);
        else if (!strcmp(a, "--model")) V(name);
        else if (!strcmp(a, "--keys")) V(keys);
        else if (!strcmp(a, "--input")) V(input);
        else if (!strcmp(a, "-o") || !strcmp(a, "--output")) V(output);
        else if (!strcmp(a, "--labels")) V(labels);
        else if (!strcmp(a, "--cacert")) V(ho.cacert);
        else if (!strcmp(a, "--insecure")) ho.insecure = 1;
        else if (!strcmp(a, "--progress")) ho.progress = 1;
        else if (!strcmp(a, "--concurrency")) {
            const char *v;
            V(v);
            if (!cli_int("client", a, v, 1, 64, &concurrency)) return 2;
        } else if (!strcmp(a, "--limit")) {
            const char *v;
            V(v);
            if (!cli_int("client", a, v, 1, 1L << 40, &limit)) return 2;
        } else {
            fprintf(stderr, "veil client: unknown argument '%s'\n", a);
            usage(stderr);
            return 2;
        }
#undef V
    }
    if (!url || !name || !input) {
        usage(stderr);
        return 2;
    }
    char kdir[2048], u[4096];
    if (keys) snprintf(kdir, sizeof kdir, "%s", keys);
    else snprintf(kdir, sizeof kdir, "veil-keys/%s", name);
    size_t ul = strlen(url);
    while (ul && url[ul - 1] == '/') ul--;
    if (!mkdirs(kdir)) {
        fprintf(stderr, "veil client: cannot create %s: %s\n", kdir, strerror(errno));
        return 1;
    }
    veil_array x = {0}, lab = {0};
    if (veil_npy_load(input, &x) != VEIL_OK) {
        fprintf(stderr, "veil client: %s: %s\n", input, veil_npy_last_error());
        return 1;
    }
    if (labels && veil_npy_load(labels, &lab) != VEIL_OK) {
        fprintf(stderr, "veil client: %s: %s\n", labels, veil_npy_last_error());
        veil_array_free(&x);
        return 1;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    int rc = 1;
    veil_client *cl = NULL;
    sink s = {.max = 1u << 30};
    double *ys = NULL;
    /* 1. the client bundle */
    snprintf(u, sizeof u, "%.*s/v1/models/%s/client", (int)ul, url, name);
    long code = http(&ho, "GET", u, NULL, NULL, 0, &s);
    if (code != 200) {
        if (code) server_error("fetching the client bundle", code, &s);
        goto done;
    }
    if (veil_client_from_bytes(s.data, s.len, &cl) != VEIL_OK) {
        fprintf(stderr, "veil client: the server's client bundle: %s\n", veil_client_last_error());
        goto done;
    }
    const char *mid = veil_client_model_id(cl);
    const veil_model *m = veil_client_model(cl);
    int64_t isz = veil_model_input_size(m), osz = veil_model_output_size(m);
    if (x.ndim < 1 || x.size != x.shape[0] * isz) {
        fprintf(stderr, "veil client: %s: expected shape (N, ...) with %lld values per sample\n", input,
                (long long)isz);
        goto done;
    }
    /* 2. keys: made once per model compilation */
    char skp[2600], ekp[2600], midp[2600], kidp[2600];
    snprintf(skp, sizeof skp, "%s/secret.key", kdir);
    snprintf(ekp, sizeof ekp, "%s/eval.keys", kdir);
    snprintf(midp, sizeof midp, "%s/model_id", kdir);
    snprintf(kidp, sizeof kidp, "%s/key_ids", kdir);
    char *stored = read_text(midp);
    int fresh = !stored || strncmp(stored, mid, 32) != 0 || !file_exists(skp) || !file_exists(ekp);
    free(stored);
    if (!fresh && veil_client_load_secret_key(cl, skp) != VEIL_OK) {
        fprintf(stderr, "veil client: %s; making new keys\n", veil_client_last_error());
        fresh = 1;
    }
    if (fresh) {
        double t0 = bench_now_s();
        uint8_t *ek = NULL;
        size_t ekl = 0;
        if (veil_client_keygen(cl, NULL) != VEIL_OK || veil_client_save_secret_key(cl, skp) != VEIL_OK ||
            veil_client_eval_keys(cl, &ek, &ekl) != VEIL_OK) {
            fprintf(stderr, "veil client: %s\n", veil_client_last_error());
            goto done;
        }
        veil_status st = veil_file_write_atomic(ekp, ek, ekl, 0600);
        veil_free(ek);
        unlink(kidp); /* ids of the old keys */
        char line[64];
        snprintf(line, sizeof line, "%s\n", mid);
        if (st != VEIL_OK || !write_text(midp, line)) {
            fprintf(stderr, "veil client: cannot write the keys into %s\n", kdir);
            goto done;
        }
        fprintf(stderr, "veil client: new keys in %s (%.1f s): secret.key (mode 0600), eval.keys %.1f MB\n", kdir,
                bench_now_s() - t0, (double)ekl / 1e6);
    }
    /* 3. the key id for this server, checked with the server, or an upload */
    char key_id[64] = "";
    char *ids = read_text(kidp);
    for (char *line = ids ? strtok(ids, "\n") : NULL; line; line = strtok(NULL, "\n")) {
        char *sp = strrchr(line, ' ');
        if (sp && (size_t)(sp - line) == ul && strncmp(line, url, ul) == 0 && strlen(sp + 1) < sizeof key_id)
            snprintf(key_id, sizeof key_id, "%s", sp + 1);
    }
    free(ids);
    if (key_id[0]) {
        snprintf(u, sizeof u, "%.*s/v1/keys/%s", (int)ul, url, key_id);
        s.len = 0;
        code = http(&ho, "GET", u, NULL, NULL, 0, &s);
        if (code == 404) fprintf(stderr, "veil client: the server no longer holds key %.8s…; uploading again\n", key_id);
        if (code != 200) key_id[0] = 0;
    }
    if (!key_id[0]) {
        FILE *f = fopen(ekp, "rb");
        struct stat st;
        if (!f || fstat(fileno(f), &st) != 0) {
            fprintf(stderr, "veil client: cannot read %s\n", ekp);
            if (f) fclose(f);
            goto done;
        }
        snprintf(u, sizeof u, "%.*s/v1/keys?model=%s", (int)ul, url, name);
        s.len = 0;
        ho.t0 = bench_now_s();
        code = http(&ho, "POST", u, NULL, f, (size_t)st.st_size, &s);
        fclose(f);
        if (ho.progress) fputc('\n', stderr);
        json_t *j = code == 201 ? json_loadb((const char *)s.data, s.len, 0, NULL) : NULL;
        const char *kid = j ? json_string_value(json_object_get(j, "key_id")) : NULL;
        if (!kid || strlen(kid) >= sizeof key_id) {
            json_decref(j);
            if (code) server_error("uploading the evaluation keys", code, &s);
            goto done;
        }
        snprintf(key_id, sizeof key_id, "%s", kid);
        json_decref(j);
        fprintf(stderr, "veil client: evaluation keys uploaded (%.1f MB in %.1f s): key id %.8s…\n",
                (double)st.st_size / 1e6, bench_now_s() - ho.t0, key_id);
        char *old = read_text(kidp);
        size_t need = (old ? strlen(old) : 0) + ul + 80;
        char *all = malloc(need);
        if (all) {
            snprintf(all, need, "%s%.*s %s\n", old ? old : "", (int)ul, url, key_id);
            if (!write_text(kidp, all)) fprintf(stderr, "veil client: cannot write %s\n", kidp);
        }
        free(all), free(old);
    }
    /* 4. predictions, `concurrency` at a time */
    int64_t n = x.shape[0];
    if (limit && n > limit) n = limit;
    ys = malloc(sizeof(double) * (size_t)(n * osz));
    double *lat = malloc(sizeof(double) * (size_t)(n ? n : 1));
    if (!ys || !lat) goto done;
    snprintf(u, sizeof u, "%.*s/v1/models/%s/predict?key_id=%s", (int)ul, url, name, key_id);
    job jb = {.cl = cl, .ho = &ho, .url = u, .x = x.data, .isz = isz, .osz = osz, .n = n, .ys = ys, .lat = lat,
              .print = PTHREAD_MUTEX_INITIALIZER};
    pthread_t th[64];
    double t_all = bench_now_s();
    int started = 0;
    for (long t = 0; t < concurrency; t++) started += pthread_create(&th[t], NULL, worker, &jb) == 0;
    if (!started) worker(&jb);
    for (int t = 0; t < started; t++) pthread_join(th[t], NULL);
    t_all = bench_now_s() - t_all;
    if (jb.failed) {
        free(lat);
        goto done;
    }
    int correct = 0;
    for (int64_t i = 0; labels && i < n && i < lab.size; i++) { /* argmax against the label */
        int a = 0;
        for (int64_t k = 1; k < osz; k++)
            if (ys[i * osz + k] > ys[i * osz + a]) a = (int)k;
        correct += a == (int)lab.data[i];
    }
    /* 5. results */
    double p90 = 0, p99 = 0, med = n ? bench_median(lat, (int)n) : 0; /* sorts lat */
    if (n) p90 = lat[(n * 90 + 99) / 100 - 1], p99 = lat[(n * 99 + 99) / 100 - 1];
    printf("samples=%lld ok=%lld lost=0 busy_retries=%d concurrency=%ld throughput_per_s=%.3f latency_median_s=%.3f "
           "latency_p90_s=%.3f latency_p99_s=%.3f",
           (long long)n, (long long)n, jb.busy, concurrency, t_all > 0 ? (double)n / t_all : 0.0, med, p90, p99);
    if (labels) printf(" accuracy=%.4f", n ? (double)correct / (double)n : 0.0);
    printf("\n");
    free(lat);
    if (output) {
        veil_array y = {.data = ys, .size = n * osz};
        y.ndim = veil_model_output_shape(m, y.shape);
        y.shape[0] = n; /* the batch axis of size 1 becomes the sample axis */
        if (veil_npy_save(output, &y, VEIL_NPY_F64) != VEIL_OK) {
            fprintf(stderr, "veil client: %s: %s\n", output, veil_npy_last_error());
            goto done;
        }
    }
    rc = 0;
done:
    free(ys);
    free(s.data);
    veil_client_free(cl);
    veil_array_free(&x);
    veil_array_free(&lab);
    curl_global_cleanup();
    return rc;
}
