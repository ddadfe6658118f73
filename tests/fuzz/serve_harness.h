/* The server's routes in-process, for the fuzz targets (fuzz_serve.c, fuzz_json.c): a serve_state
 * with the models of $VEIL_FUZZ_MODELS (directories of client.veil + server.veil, made by
 * tests/fuzz/run.sh with `veil compile`), its key store in a fresh temporary directory, and one
 * request at a time from method, URL, headers and body, in pieces, exactly as httpd.c feeds them. */
#ifndef VEIL_FUZZ_SERVE_HARNESS_H
#define VEIL_FUZZ_SERVE_HARNESS_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "deploy/serve_impl.h"

enum { H_MAX_HEADERS = 16, H_MAX_ARGS = 16 };
typedef struct {
    char *url;
    char *argk[H_MAX_ARGS], *argv[H_MAX_ARGS];
    int nargs;
    const char *hk[H_MAX_HEADERS], *hv[H_MAX_HEADERS];
    int nh;
} h_req;

static int h_hex(int c) { return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1; }

static void h_unescape(char *s) /* %XX and '+' as libmicrohttpd decodes query arguments */
{
    char *o = s;
    for (char *p = s; *p; p++) {
        if (*p == '+') *o++ = ' ';
        else if (*p == '%' && h_hex(p[1]) >= 0 && h_hex(p[2]) >= 0) *o++ = (char)(h_hex(p[1]) * 16 + h_hex(p[2])), p += 2;
        else *o++ = *p;
    }
    *o = 0;
}

static const char *h_lookup(void *ctx, int kind, const char *name)
{
    h_req *q = ctx;
    if (kind == 0) {
        for (int i = 0; i < q->nargs; i++)
            if (strcmp(q->argk[i], name) == 0) return q->argv[i];
        return NULL;
    }
    for (int i = 0; i < q->nh; i++)
        if (strcasecmp(q->hk[i], name) == 0) return q->hv[i];
    return NULL;
}

static serve_state *h_state;

static void h_init(void)
{
    veil_serve_config cfg;
    veil_serve_config_default(&cfg);
    static char data[] = "/tmp/veil_fuzz_serve_XXXXXX";
    if (!mkdtemp(data)) abort();
    cfg.data = data;
    cfg.allow_simulate = 1;
    cfg.workers = 1;
    cfg.queue = 0;
    cfg.threads = 1;
    cfg.quota = 64 << 20;
    cfg.max_body = 1 << 20;
    char err[512];
    if (!(h_state = serve_state_new(&cfg, err, sizeof err))) abort();
    h_state->quiet = 1;
    const char *dirs = getenv("VEIL_FUZZ_MODELS");
    if (!dirs) {
        fprintf(stderr, "VEIL_FUZZ_MODELS: directories of compiled models, ':'-separated (tests/fuzz/run.sh sets it)\n");
        abort();
    }
    char *all = strdup(dirs);
    for (char *d = strtok(all, ":"); d; d = strtok(NULL, ":"))
        if (!serve_load_model(h_state, d, err, sizeof err)) {
            fprintf(stderr, "fuzz: %s\n", err);
            abort();
        }
    free(all);
    if (!serve_open_store(h_state, err, sizeof err)) abort();
}

static void h_resp_free(serve_resp *o)
{
    if (o->free_fn) o->free_fn(o->data);
    *o = (serve_resp){0};
}

/* One request: method, URL (path?query), headers, then the body in the pieces cut at `cuts`. */
static unsigned h_request(const char *method, const char *url, const char *const *hk, const char *const *hv, int nh,
                          const uint8_t *body, size_t len, const size_t *cuts, int ncuts)
{
    h_req q = {0};
    q.url = strdup(url);
    char *qs = strchr(q.url, '?');
    if (qs) {
        *qs++ = 0;
        for (char *kv = strtok(qs, "&"); kv && q.nargs < H_MAX_ARGS; kv = strtok(NULL, "&")) {
            char *eq = strchr(kv, '=');
            if (eq) *eq++ = 0;
            h_unescape(kv);
            if (eq) h_unescape(eq);
            q.argk[q.nargs] = kv, q.argv[q.nargs++] = eq ? eq : (char *)"";
        }
    }
    for (int i = 0; i < nh && i < H_MAX_HEADERS; i++) q.hk[q.nh] = hk[i], q.hv[q.nh++] = hv[i];
    serve_req_view v = {.method = method, .url = q.url, .lookup = h_lookup, .ctx = &q};
    serve_resp o;
    unsigned code = 0;
    serve_request *r = serve_begin(h_state, &v, &o);
    if (!r) goto out;
    if (o.code) {
        code = o.code;
        h_resp_free(&o);
        serve_answered(r);
        serve_end(r, 1);
        goto out;
    }
    size_t at = 0;
    for (int i = 0; i <= ncuts; i++) {
        size_t end = i < ncuts && cuts[i] < len ? cuts[i] : len;
        if (end > at) serve_body(r, (const char *)body + at, end - at);
        if (end > at) at = end;
    }
    serve_finish(r, &v, &o);
    code = o.code;
    h_resp_free(&o);
    serve_answered(r);
    serve_end(r, 1);
out:
    free(q.url);
    return code;
}

#endif
