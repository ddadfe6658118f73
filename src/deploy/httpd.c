/* The transport of `veil serve` (libmicrohttpd, one thread per connection) and its life: start-up,
 * connection caps and deadlines, a clean stop. Part of libveil_server, which holds no secret-key
 * code. One model per bundle directory, named after it; the routes are in routes.c and the key
 * store in keystore.c (serve_impl.h).
 *
 * Deadlines: libmicrohttpd's connection timeout only bounds idleness, so a client trickling one
 * header byte at a time would hold its connection for ever. Every connection is tracked from
 * accept to close with the time it entered its phase (waiting for headers, reading the body,
 * being answered); a watchdog shuts down the socket of one that waits for headers longer than
 * header_timeout_s or reads a body longer than body_timeout_s. */
#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../core/container.h"
#include "deploy.h"
#include "serve_impl.h"

#if MHD_VERSION < 0x00097002
typedef int MHD_Result_t;
#else
typedef enum MHD_Result MHD_Result_t;
#endif

double serve_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

void serve_log(const serve_state *s, const char *fmt, ...)
{
    if (s->quiet) return;
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

/* ---- state ---------------------------------------------------------------------------------- */
void veil_serve_config_default(veil_serve_config *c)
{
    *c = (veil_serve_config){.host = "127.0.0.1", .data = "veil-data", .port = 8080, .workers = 2, .queue = 4, .threads = 0,
                             .cache = 4, .timeout_s = 120, .max_body = 64000000, .quota = 16000000000LL,
                             .expiry_s = 604800, .max_connections = 256, .per_client = 32, .header_timeout_s = 10,
                             .body_timeout_s = 300, .grace_s = 30};
}

serve_state *serve_state_new(const veil_serve_config *config, char *err, size_t cap)
{
    const veil_serve_config *c = config;
    const char *bad = !c                                                     ? "no configuration"
                      : c->workers < 1 || c->workers > 256                   ? "workers must be in 1..256"
                      : c->queue < 0                                         ? "queue must be 0 or more"
                      : c->threads < 0                                       ? "threads must be 0 or more"
                      : c->cache < 0                                         ? "cache must be 0 or more"
                      : c->port < 0 || c->port > 65535                       ? "port must be in 0..65535"
                      : c->timeout_s < 1                                     ? "timeout must be 1 s or more"
                      : c->max_body < 1                                      ? "max_body must be 1 or more"
                      : c->quota < 0                                         ? "quota must be 0 or more"
                      : !(c->expiry_s > 0)                                   ? "key expiry must be over 0 s"
                      : c->max_connections < 1 || c->max_connections > 65536 ? "max connections must be in 1..65536"
                      : c->per_client < 1                                    ? "connections per client must be 1 or more"
                      : !(c->header_timeout_s > 0) || !(c->body_timeout_s > 0) ? "deadlines must be over 0 s"
                      : !(c->grace_s >= 0)                                   ? "grace period must be 0 s or more"
                      : !c->host || !c->data                                 ? "host and data directory needed"
                                                                             : NULL;
    if (bad) {
        snprintf(err, cap, "%s", bad);
        return NULL;
    }
    serve_state *s = veil_calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, cap, "out of memory");
        return NULL;
    }
    s->cfg = *c;
    if (s->cfg.threads == 0) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        s->cfg.threads = cores / s->cfg.workers > 0 ? cores / s->cfg.workers : 1;
    }
    pthread_mutex_init(&s->keys_lock, NULL);
    pthread_cond_init(&s->keys_cond, NULL);
    pthread_mutex_init(&s->slot_lock, NULL);
    pthread_cond_init(&s->slot_cond, NULL);
    return s;
}

void serve_state_free(serve_state *s)
{
    if (!s) return;
    ks_free_all(s);
    for (int i = 0; i < s->nmodels; i++) {
        veil_server_model_free(s->models[i].sm);
        veil_free(s->models[i].client);
    }
    pthread_mutex_destroy(&s->keys_lock);
    pthread_cond_destroy(&s->keys_cond);
    pthread_mutex_destroy(&s->slot_lock);
    pthread_cond_destroy(&s->slot_cond);
    veil_free(s);
}

int serve_load_model(serve_state *s, const char *dir, char *err, size_t cap)
{
    if (s->nmodels == VEIL_SERVE_MAX_MODELS) {
        snprintf(err, cap, "at most %d models", VEIL_SERVE_MAX_MODELS);
        return 0;
    }
    serve_model *m = &s->models[s->nmodels];
    *m = (serve_model){0};
    char path[PATH_MAX];
    size_t dl = strlen(dir);
    while (dl > 1 && dir[dl - 1] == '/') dl--;
    const char *base = dir + dl;
    while (base > dir && base[-1] != '/') base--;
    snprintf(m->name, sizeof m->name, "%.*s", (int)(dir + dl - base), base);
    for (int i = 0; i < s->nmodels; i++)
        if (strcmp(s->models[i].name, m->name) == 0) {
            snprintf(err, cap, "two models named '%s'", m->name);
            return 0;
        }
    double t0 = serve_now();
    snprintf(path, sizeof path, "%.*s/server.veil", (int)dl, dir);
    if (veil_server_model_load(path, &m->sm) != VEIL_OK) {
        snprintf(err, cap, "%s", veil_server_last_error());
        return 0;
    }
    snprintf(path, sizeof path, "%.*s/client.veil", (int)dl, dir);
    veil_status st = veil_file_read_all(path, 1 << 26, &m->client, &m->client_len);
    veil_container cn;
    const uint8_t *id;
    size_t idl;
    const char *why = NULL;
    char hex[2 * VEIL_MODEL_ID_BYTES + 1];
    if (st != VEIL_OK || veil_container_parse(m->client, m->client_len, VEIL_KIND_CLIENT_BUNDLE, 0, &cn) != VEIL_OK ||
        veil_container_section(&cn, TAG_MDID, &id, &idl) != VEIL_OK || idl != VEIL_MODEL_ID_BYTES)
        why = "not a readable client bundle";
    else if (veil_hex(id, VEIL_MODEL_ID_BYTES, hex), strcmp(hex, veil_server_model_id(m->sm)) != 0)
        why = "client.veil and server.veil come from different compilations";
    if (why) {
        snprintf(err, cap, "%s: %s", path, why);
        veil_server_model_free(m->sm);
        veil_free(m->client);
        *m = (serve_model){0};
        return 0;
    }
    const veil_circuit *c = veil_server_model_circuit(m->sm);
    veil_circuit_stats cs;
    veil_circuit_get_stats(c, &cs); /* every parameter set's keys */
    m->key_bytes = cs.bsk_seeded_bytes + cs.ksk_seeded_bytes;
    m->key_bytes_full = cs.bsk_bytes + cs.ksk_bytes;
    m->pbs = cs.pbs_count;
    serve_log(s, "model %s loaded in %.3f s: max bit-width %u, %zu PBS per inference, parameters %s, evaluation keys "
                 "%.1f MB compressed (%.1f MB expanded)",
              m->name, serve_now() - t0, veil_circuit_max_bit_width(c), cs.pbs_count, veil_circuit_params(c)->name,
              (double)m->key_bytes / 1e6, (double)m->key_bytes_full / 1e6);
    s->nmodels++;
    return 1;
}

int serve_open_store(serve_state *s, char *err, size_t cap)
{
    snprintf(s->keys_dir, sizeof s->keys_dir, "%s/keys", s->cfg.data);
    if ((mkdir(s->cfg.data, 0700) != 0 && errno != EEXIST) || (mkdir(s->keys_dir, 0700) != 0 && errno != EEXIST)) {
        snprintf(err, cap, "cannot create %s: %s", s->keys_dir, strerror(errno));
        return 0;
    }
    ks_scan(s);
    pthread_mutex_lock(&s->keys_lock);
    ks_sweep_locked(s); /* keys that expired while the server was down */
    pthread_mutex_unlock(&s->keys_lock);
    return 1;
}

/* ---- connections and their deadlines ---------------------------------------------------------- */
enum { PH_HEADERS, PH_BODY, PH_ANSWER, PH_CUT };
typedef struct conn {
    int fd, phase;
    double since;
    struct conn *prev, *next;
} conn;

typedef struct {
    serve_state *s;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    conn *conns;
    int stop;
} conn_table;

static void conn_phase(conn_table *t, struct MHD_Connection *c, int phase)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    conn *k = ci ? (conn *)ci->socket_context : NULL;
    if (!k) return;
    pthread_mutex_lock(&t->lock);
    if (k->phase != PH_CUT) k->phase = phase, k->since = serve_now();
    pthread_mutex_unlock(&t->lock);
}

static void notify_conn(void *cls, struct MHD_Connection *c, void **socket_context, enum MHD_ConnectionNotificationCode code)
{
    conn_table *t = cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        conn *k = ci ? veil_calloc(1, sizeof *k) : NULL;
        *socket_context = k;
        if (!k) return; /* untracked: still bounded by the idle timeout */
        k->fd = ci->connect_fd;
        k->phase = PH_HEADERS;
        k->since = serve_now();
        pthread_mutex_lock(&t->lock);
        k->next = t->conns;
        if (t->conns) t->conns->prev = k;
        t->conns = k;
        pthread_mutex_unlock(&t->lock);
    } else { /* closed: called before the socket is closed, so a shutdown by the watchdog never hits a reused fd */
        conn *k = *socket_context;
        if (!k) return;
        pthread_mutex_lock(&t->lock);
        if (k->prev) k->prev->next = k->next;
        else t->conns = k->next;
        if (k->next) k->next->prev = k->prev;
        pthread_mutex_unlock(&t->lock);
        veil_free(k);
        *socket_context = NULL;
    }
}

/* Cuts the connections past their deadline (all of them but those being answered when `all`). */
static int conns_cut(conn_table *t, int all)
{
    double now = serve_now();
    int n = 0;
    pthread_mutex_lock(&t->lock);
    for (conn *k = t->conns; k; k = k->next) {
        double lim = k->phase == PH_HEADERS ? t->s->cfg.header_timeout_s : k->phase == PH_BODY ? t->s->cfg.body_timeout_s : -1;
        if (lim < 0 || (!all && now - k->since <= lim)) continue;
        shutdown(k->fd, SHUT_RDWR);
        k->phase = PH_CUT;
        n++;
    }
    pthread_mutex_unlock(&t->lock);
    return n;
}

static void *watchdog(void *arg)
{
    conn_table *t = arg;
    pthread_mutex_lock(&t->lock);
    while (!t->stop) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 200000000;
        if (ts.tv_nsec >= 1000000000) ts.tv_sec++, ts.tv_nsec -= 1000000000;
        pthread_cond_timedwait(&t->wake, &t->lock, &ts);
        if (t->stop) break;
        pthread_mutex_unlock(&t->lock);
        int n = conns_cut(t, 0);
        if (n) {
            t->s->m_cut += (unsigned long long)n;
            serve_log(t->s, "%d connection(s) closed: request headers not in within %g s (idle ones too), or a body not "
                            "within %g s", n, t->s->cfg.header_timeout_s, t->s->cfg.body_timeout_s);
        }
        pthread_mutex_lock(&t->lock);
    }
    pthread_mutex_unlock(&t->lock);
    return NULL;
}

/* ---- libmicrohttpd's side ------------------------------------------------------------------- */
static const char *mhd_lookup(void *ctx, int kind, const char *name)
{
    return MHD_lookup_connection_value(ctx, kind ? MHD_HEADER_KIND : MHD_GET_ARGUMENT_KIND, name);
}

static MHD_Result_t queue(struct MHD_Connection *c, serve_resp *o)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer_with_free_callback(o->len, o->data, o->free_fn);
    if (!resp) {
        if (o->free_fn) o->free_fn(o->data);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type", o->type);
    if (o->code == 503) MHD_add_response_header(resp, "Retry-After", "1");
    if (o->close) MHD_add_response_header(resp, "Connection", "close");
    MHD_Result_t ret = MHD_queue_response(c, o->code, resp);
    MHD_destroy_response(resp);
    return ret;
}

typedef struct {
    serve_state *s;
    conn_table *t;
} daemon_ctx;

/* The request's worker slot goes back as soon as its answer is queued, so that a client sending
 * its next request at once does not find it still taken. */
static MHD_Result_t handler(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                            const char *version, const char *upload_data, size_t *upload_size, void **con_cls)
{
    (void)version;
    daemon_ctx *d = cls;
    serve_request *r = *con_cls;
    serve_req_view v = {.method = method, .url = url, .lookup = mhd_lookup, .ctx = c};
    serve_resp o;
    if (!r) { /* the headers */
        if (!(r = serve_begin(d->s, &v, &o))) return MHD_NO;
        *con_cls = r;
        conn_phase(d->t, c, PH_BODY);
        if (!o.code) return MHD_YES;
        conn_phase(d->t, c, PH_ANSWER);
        MHD_Result_t ret = queue(c, &o);
        serve_answered(r);
        return ret;
    }
    if (*upload_size) {
        serve_body(r, upload_data, *upload_size);
        *upload_size = 0;
        return MHD_YES;
    }
    conn_phase(d->t, c, PH_ANSWER);
    serve_finish(r, &v, &o);
    MHD_Result_t ret = o.code ? queue(c, &o) : MHD_YES; /* no code: answered at the headers already */
    serve_answered(r);
    return ret;
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe)
{
    daemon_ctx *d = cls;
    serve_end(*con_cls, toe == MHD_REQUEST_TERMINATED_COMPLETED_OK);
    *con_cls = NULL;
    conn_phase(d->t, c, PH_HEADERS); /* a kept-alive connection waits for its next request's headers */
}

/* ---- the server's life ---------------------------------------------------------------------- */
int veil_serve(const veil_serve_config *config, const char *const *dirs, int ndirs)
{
    char err[512];
    int rc = 1, watching = 0, leave = 0;
    char *cert = NULL, *key = NULL;
    struct MHD_Daemon *d = NULL;
    conn_table t = {0};
    pthread_t wd;
    pthread_mutex_init(&t.lock, NULL);
    pthread_cond_init(&t.wake, NULL);
    serve_state *s = serve_state_new(config, err, sizeof err);
    if (!s) {
        fprintf(stderr, "veil serve: %s\n", err);
        rc = 2;
        goto done;
    }
    t.s = s;
    daemon_ctx dc = {s, &t};
    for (int i = 0; i < ndirs; i++)
        if (!serve_load_model(s, dirs[i], err, sizeof err)) {
            fprintf(stderr, "veil serve: %s\n", err);
            goto done;
        }
    if (!serve_open_store(s, err, sizeof err)) {
        fprintf(stderr, "veil serve: %s\n", err);
        goto done;
    }
    const veil_serve_config *cfg = &s->cfg;
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)cfg->port)};
    if (inet_pton(AF_INET, cfg->host, &addr.sin_addr) != 1) {
        fprintf(stderr, "veil serve: --host must be an IPv4 address (got '%s')\n", cfg->host);
        rc = 2;
        goto done;
    }
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL); /* MHD's threads inherit the mask; this one waits below */
    signal(SIGPIPE, SIG_IGN);
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_ERROR_LOG | MHD_USE_ITC;
    if (cfg->tls_cert) {
        if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
            fprintf(stderr, "veil serve: this libmicrohttpd has no TLS support\n");
            goto done;
        }
        if (!(cert = veil_read_text(cfg->tls_cert)) || !(key = veil_read_text(cfg->tls_key))) {
            fprintf(stderr, "veil serve: cannot read %s or %s\n", cfg->tls_cert, cfg->tls_key);
            goto done;
        }
        flags |= MHD_USE_TLS;
    }
    struct MHD_OptionItem opts[] = {
        {MHD_OPTION_SOCK_ADDR, 0, &addr},
        {MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)completed, &dc},
        {MHD_OPTION_NOTIFY_CONNECTION, (intptr_t)notify_conn, &t},
        {MHD_OPTION_CONNECTION_TIMEOUT, (intptr_t)cfg->timeout_s, NULL},
        {MHD_OPTION_CONNECTION_LIMIT, (intptr_t)cfg->max_connections, NULL},
        {MHD_OPTION_PER_IP_CONNECTION_LIMIT, (intptr_t)cfg->per_client, NULL},
        {cert ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, 0, cert},
        {cert ? MHD_OPTION_HTTPS_MEM_KEY : MHD_OPTION_END, 0, key},
        {MHD_OPTION_END, 0, NULL},
    };
    d = MHD_start_daemon(flags, 0, NULL, NULL, handler, &dc, MHD_OPTION_ARRAY, opts, MHD_OPTION_END);
    if (!d) {
        fprintf(stderr, "veil serve: cannot listen on %s:%ld (in use, or not allowed)\n", cfg->host, cfg->port);
        goto done;
    }
    if (pthread_create(&wd, NULL, watchdog, &t) == 0) watching = 1;
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    unsigned port = info ? info->port : (unsigned)cfg->port;
    serve_log(s, "listening on %s://%s:%u (%d model(s), %ld workers, %ld threads each, queue %ld, simulate %s)",
              cert ? "https" : "http", cfg->host, port, s->nmodels, cfg->workers, cfg->threads, cfg->queue,
              cfg->allow_simulate ? "on" : "off");
    if (cfg->port_file) {
        char pb[16];
        int pl = snprintf(pb, sizeof pb, "%u\n", port);
        if (veil_file_write_atomic(cfg->port_file, (const uint8_t *)pb, (size_t)pl, 0644) != VEIL_OK)
            serve_log(s, "cannot write %s", cfg->port_file);
    }
    int sig = 0;
    sigwait(&set, &sig);
    /* a clean stop: no new connections, new requests on open ones refused, those in progress finish */
    atomic_store(&s->stopping, 1);
    MHD_socket ls = MHD_quiesce_daemon(d);
    if (ls != MHD_INVALID_SOCKET) close(ls);
    int busy = atomic_load(&s->active);
    serve_log(s, "signal %d: stopping (%d request(s) in progress, grace period %.0f s)", sig, busy, cfg->grace_s);
    double t0 = serve_now();
    while (atomic_load(&s->active) > 0 && serve_now() - t0 < cfg->grace_s) usleep(20000);
    if (atomic_load(&s->active) > 0) {
        int n = conns_cut(&t, 1);
        serve_log(s, "grace period over: %d transfer(s) cut, %d request(s) still in progress", n, atomic_load(&s->active));
        t0 = serve_now();
        while (atomic_load(&s->active) > 0 && serve_now() - t0 < cfg->grace_s) usleep(20000);
        if (atomic_load(&s->active) > 0) {
            serve_log(s, "%d computation(s) still running: exiting without them", atomic_load(&s->active));
            leave = 1; /* their threads use the state: it goes with the process */
            rc = 1;
            goto done;
        }
    }
    MHD_stop_daemon(d);
    d = NULL;
    serve_log(s, "stopped: every request in progress finished");
    rc = 0;
done:
    if (watching) {
        pthread_mutex_lock(&t.lock);
        t.stop = 1;
        pthread_cond_signal(&t.wake);
        pthread_mutex_unlock(&t.lock);
        pthread_join(wd, NULL);
    }
    if (leave) return rc;
    if (d) MHD_stop_daemon(d);
    serve_state_free(s);
    veil_free(cert), veil_free(key);
    pthread_mutex_destroy(&t.lock);
    pthread_cond_destroy(&t.wake);
    return rc;
}
