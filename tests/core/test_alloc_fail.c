/* Allocation-failure injection through the allocator hooks (veil_set_allocator): a counting
 * allocator fails the k-th allocation, for every k from 1 to the number of allocations the path
 * makes (or, past MAX_POINTS, a stride over them that keeps the first and last 64), over:
 *   keygen, evaluation-key loading, model import and compile (ONNX to circuit), a run (encrypt,
 *   evaluate, decrypt), bundle loading (model, client, server), and saving a model.
 * Each failure must return an error status (VEIL_ERR_NOMEM, or the caller's error that wraps it),
 * never crash; every block the path took through the hooks must be given back (no leak: the
 * allocator keeps the set of live blocks); a failed save leaves no file of the pair behind. The
 * sanitizer build (make asan) adds LeakSanitizer over libc's allocations too. A path that absorbs
 * a failure and still succeeds (a cache it can do without) must give the right answer. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "veil/client.h"
#include "veil/compiler.h"
#include "veil/model.h"
#include "veil/npy.h"
#include "veil/runtime.h"
#include "veil/server.h"

#ifndef VEIL_SOURCE_DIR
#define VEIL_SOURCE_DIR "."
#endif

enum { MAX_POINTS = 1500, SET_BITS = 20 };

/* ---- the failing allocator: a count, the failure point, and the live blocks ---- */
static atomic_long n_allocs, fail_at;
static pthread_mutex_t set_lock = PTHREAD_MUTEX_INITIALIZER;
static void **set; /* open addressing, 2^SET_BITS slots; (void *)1 marks a deleted slot */
static long *set_k; /* the allocation number of each live block (to name a leak) */
static long live, break_at;

/* VEIL_ALLOC_BREAK=K: a breakpoint here (gdb: break alloc_break) stops at allocation K */
__attribute__((noinline)) static void alloc_break(long k)
{
    __asm__ __volatile__("" : : "r"(k) : "memory");
}

static size_t slot_of(const void *p) { return (size_t)(((uintptr_t)p >> 6) * 0x9E3779B97F4A7C15ull >> (64 - SET_BITS)); }

static void set_add(void *p, long k)
{
    pthread_mutex_lock(&set_lock);
    size_t i = slot_of(p), mask = ((size_t)1 << SET_BITS) - 1;
    while (set[i] && set[i] != (void *)1) i = (i + 1) & mask;
    set[i] = p;
    set_k[i] = k;
    live++;
    pthread_mutex_unlock(&set_lock);
}

static int set_del(void *p)
{
    pthread_mutex_lock(&set_lock);
    size_t i = slot_of(p), mask = ((size_t)1 << SET_BITS) - 1;
    int found = 0;
    while (set[i]) {
        if (set[i] == p) {
            set[i] = (void *)1;
            live--;
            found = 1;
            break;
        }
        i = (i + 1) & mask;
    }
    pthread_mutex_unlock(&set_lock);
    return found;
}

static void *t_alloc(size_t size, size_t align, void *ctx)
{
    (void)ctx;
    long k = atomic_fetch_add(&n_allocs, 1) + 1;
    if (k == atomic_load(&fail_at)) return NULL;
    size_t r = (size + align - 1) / align * align;
    void *p = r >= size ? aligned_alloc(align, r) : NULL;
    if (p) set_add(p, k);
    if (k == break_at) alloc_break(k);
    return p;
}

static void t_free(void *p, void *ctx)
{
    (void)ctx;
    set_del(p); /* a block of the default allocator (made before the hooks) is freed the same way */
    free(p);
}

static void set_clear(void)
{
    memset(set, 0, sizeof(void *) << SET_BITS);
    live = 0;
}

/* ---- the sweep ---- */
typedef veil_status (*path_fn)(void *ctx, int *right);

static void sweep(const char *name, path_fn fn, void *ctx)
{
    const veil_allocator a = {t_alloc, t_free, NULL};
    set_clear();
    veil_set_allocator(&a);
    atomic_store(&fail_at, 0);
    atomic_store(&n_allocs, 0);
    int right = 1;
    veil_status st = fn(ctx, &right);
    long total = atomic_load(&n_allocs), leaked = live;
    veil_set_allocator(NULL);
    CHECK(st == VEIL_OK && right, "%s: the path succeeds without failures (%s)", name, veil_status_str(st));
    CHECK(leaked == 0, "%s: %ld blocks left after a successful run", name, leaked);
    long stride = total <= MAX_POINTS ? 1 : (total - 128) / (MAX_POINTS - 128) + 1;
    long tried = 0, nomem = 0, other = 0, absorbed = 0, leaks = 0, wrong = 0;
    char first_other[64] = "";
    const char *only = getenv("VEIL_ALLOC_ONLY"); /* "PATH:K": that one failure point (to debug it) */
    long only_k = 0;
    if (only) {
        const char *colon = strrchr(only, ':');
        if (!colon || strncmp(only, name, (size_t)(colon - only)) != 0 || strlen(name) != (size_t)(colon - only)) return;
        only_k = atol(colon + 1);
    }
    for (long k = only_k ? only_k : 1; k <= (only_k ? only_k : total); k += (k <= 64 || k > total - 64) ? 1 : stride) {
        set_clear();
        veil_set_allocator(&a);
        atomic_store(&n_allocs, 0);
        atomic_store(&fail_at, k);
        right = 1;
        st = fn(ctx, &right);
        long l = live;
        veil_set_allocator(NULL);
        tried++;
        if (st == VEIL_ERR_NOMEM) nomem++;
        else if (st == VEIL_OK) absorbed++, wrong += !right;
        else {
            other++;
            if (!first_other[0]) snprintf(first_other, sizeof first_other, "%s", veil_status_str(st));
        }
        if (l) {
            if (!leaks) {
                fprintf(stderr, "%s: failing allocation %ld of %ld leaks %ld blocks, made by allocations", name, k, total, l);
                for (size_t i = 0, shown = 0; i < ((size_t)1 << SET_BITS) && shown < 8; i++)
                    if (set[i] && set[i] != (void *)1) fprintf(stderr, " %ld", set_k[i]), shown++;
                fprintf(stderr, " (VEIL_ALLOC_BREAK=N and gdb's break alloc_break show where)\n");
            }
            leaks++;
        }
    }
    printf("%-16s %6ld allocations, %5ld failure points (stride %ld): %ld out of memory, %ld other errors%s%s%s, %ld absorbed, "
           "%ld leaking\n",
           name, total, tried, stride, nomem, other, other ? " (" : "", first_other, other ? ")" : "", absorbed, leaks);
    CHECK(leaks == 0, "%s: %ld failure points leak", name, leaks);
    CHECK(wrong == 0, "%s: %ld absorbed failures gave a wrong answer", name, wrong);
    CHECK(nomem > 0, "%s: no failure reported out of memory", name);
}

/* ---- the paths ---- */
typedef struct {
    veil_circuit *c;
    veil_secret_key *sk;
    veil_eval_keys *ek;
    uint8_t *ekb;
    size_t ekl;
    const uint8_t *onnx;
    size_t onnx_len;
    const double *xs;
    size_t nsamples, sample;
    uint8_t *client, *server;
    size_t client_len, server_len;
    veil_model *m;
    char dir[64];
} ctx_t;

static veil_status p_keygen(void *v, int *right)
{
    ctx_t *x = v;
    (void)right;
    uint8_t seed[VEIL_SEED_BYTES] = {7};
    veil_rng *rng = NULL;
    veil_secret_key *sk = NULL;
    veil_eval_keys *ek = NULL;
    veil_status st = veil_rng_new_seeded(&rng, seed);
    if (st == VEIL_OK) st = veil_circuit_keygen(x->c, rng, &sk, &ek);
    veil_secret_key_free(sk);
    veil_eval_keys_free(ek);
    veil_rng_free(rng);
    return st;
}

static veil_status p_keyload(void *v, int *right)
{
    ctx_t *x = v;
    (void)right;
    veil_eval_keys *ek = NULL;
    veil_status st = veil_eval_keys_deserialize(x->ekb, x->ekl, NULL, &ek);
    veil_eval_keys_free(ek);
    return st;
}

static veil_status p_run(void *v, int *right)
{
    ctx_t *x = v;
    int64_t in[1] = {5}, out[1] = {-1};
    const int64_t *ins[1] = {in};
    int64_t *outs[1] = {out};
    veil_status st = veil_circuit_encrypt_run_decrypt(x->c, x->sk, x->ek, ins, outs);
    if (st == VEIL_OK) *right = out[0] == 5 * 5 % 11; /* the table below */
    return st;
}

static veil_status p_compile(void *v, int *right)
{
    ctx_t *x = v;
    (void)right;
    veil_model_options o;
    veil_model_options_default(&o);
    veil_model *m = NULL;
    veil_status st = veil_model_compile_buffer(x->onnx, x->onnx_len, x->xs, x->nsamples, x->sample, &o, &m);
    veil_model_free(m);
    return st;
}

static veil_status p_bundles(void *v, int *right)
{
    ctx_t *x = v;
    (void)right;
    veil_model *m = NULL;
    veil_client *c = NULL;
    veil_server_model *s = NULL;
    veil_status st = veil_model_deserialize(x->client, x->client_len, x->server, x->server_len, &m);
    if (st == VEIL_OK) st = veil_client_from_bytes(x->client, x->client_len, &c);
    if (st == VEIL_OK) st = veil_server_model_from_bytes(x->server, x->server_len, &s);
    veil_model_free(m);
    veil_client_free(c);
    veil_server_model_free(s);
    return st;
}

static int exists(const char *dir, const char *name)
{
    char p[128];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return access(p, F_OK) == 0;
}

static veil_status p_save(void *v, int *right)
{
    ctx_t *x = v;
    char p[128];
    snprintf(p, sizeof p, "%s/client.veil", x->dir), unlink(p);
    snprintf(p, sizeof p, "%s/server.veil", x->dir), unlink(p);
    veil_status st = veil_model_save(x->m, x->dir);
    int c = exists(x->dir, "client.veil"), s = exists(x->dir, "server.veil");
    int stray = exists(x->dir, "client.veil.new") || exists(x->dir, "server.veil.new");
    *right = st == VEIL_OK ? c && s && !stray : !c && !s && !stray; /* the pair whole, or nothing */
    if (st != VEIL_OK && !*right) {
        fprintf(stderr, "save failed (%s) leaving client %d server %d temporaries %d\n", veil_status_str(st), c, s, stray);
        return VEIL_OK; /* counted as a wrong answer */
    }
    return st;
}

int main(void)
{
    set = calloc((size_t)1 << SET_BITS, sizeof(void *));
    set_k = calloc((size_t)1 << SET_BITS, sizeof(long));
    if (!set || !set_k) return 1;
    if (getenv("VEIL_ALLOC_BREAK")) break_at = atol(getenv("VEIL_ALLOC_BREAK"));
    ctx_t x = {0};
    /* a tiny circuit: y = (x * x) mod 11 over 4-bit x, one lookup */
    veil_graph *g = NULL;
    CHECK_OK(veil_graph_new(&g));
    int in = veil_graph_input(g, "x", VEIL_ENCRYPTED, 1, (int64_t[]){1});
    int64_t table[16];
    for (int i = 0; i < 16; i++) table[i] = i * i % 11;
    CHECK_OK(veil_graph_output(g, veil_graph_table(g, in, 16, table)));
    int64_t samples[16];
    const int64_t *set_in[16];
    for (int i = 0; i < 16; i++) samples[i] = i, set_in[i] = &samples[i];
    veil_compile_config cfg;
    veil_compile_config_default(&cfg);
    CHECK_OK(veil_compile(g, set_in, 16, &cfg, &x.c));
    veil_graph_free(g);
    uint8_t seed[VEIL_SEED_BYTES] = {3};
    veil_rng *rng = NULL;
    CHECK_OK(veil_rng_new_seeded(&rng, seed));
    CHECK_OK(veil_circuit_keygen(x.c, rng, &x.sk, &x.ek));
    veil_rng_free(rng);
    CHECK_OK(veil_eval_keys_serialize(x.ek, 1, &x.ekb, &x.ekl));
    int dummy = 1;
    CHECK_OK(p_run(&x, &dummy)); /* warm: the circuit's lookup tables and the thread pool exist from here */
    CHECK(dummy, "the tiny circuit computes x*x mod 11");
    printf("tiny circuit: %s, evaluation keys %zu bytes compressed\n", veil_circuit_params(x.c)->name, x.ekl);

    /* a logistic regression (skl2onnx), its inputset, its bundles */
    uint8_t *onnx = NULL;
    CHECK_OK(veil_file_read_all(VEIL_SOURCE_DIR "/models/logreg_breast_cancer/model.onnx", 1 << 20, &onnx, &x.onnx_len));
    x.onnx = onnx;
    veil_array tr;
    CHECK_OK(veil_npy_load(VEIL_SOURCE_DIR "/models/logreg_breast_cancer/train.npy", &tr));
    x.xs = tr.data;
    x.nsamples = (size_t)tr.shape[0] < 64 ? (size_t)tr.shape[0] : 64;
    x.sample = (size_t)(tr.size / tr.shape[0]);
    veil_model_options o;
    veil_model_options_default(&o);
    CHECK_OK(veil_model_compile_buffer(x.onnx, x.onnx_len, x.xs, x.nsamples, x.sample, &o, &x.m));
    CHECK_OK(veil_model_serialize(x.m, 0, &x.client, &x.client_len));
    CHECK_OK(veil_model_serialize(x.m, 1, &x.server, &x.server_len));
    snprintf(x.dir, sizeof x.dir, "/tmp/veil_alloc_fail_XXXXXX");
    if (!mkdtemp(x.dir)) return 1;

    sweep("keygen", p_keygen, &x);
    sweep("key loading", p_keyload, &x);
    sweep("run", p_run, &x);
    sweep("import+compile", p_compile, &x);
    sweep("bundle loading", p_bundles, &x);
    sweep("save", p_save, &x);

    char p[128];
    snprintf(p, sizeof p, "%s/client.veil", x.dir), unlink(p);
    snprintf(p, sizeof p, "%s/server.veil", x.dir), unlink(p);
    rmdir(x.dir);
    veil_free(onnx);
    veil_array_free(&tr);
    veil_free(x.client), veil_free(x.server), veil_free(x.ekb);
    veil_model_free(x.m);
    veil_secret_key_free(x.sk);
    veil_eval_keys_free(x.ek);
    veil_circuit_free(x.c);
    free(set), free(set_k);
    return check_done("test_alloc_fail");
}
