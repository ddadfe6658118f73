/* The persistent thread pool behind veil_parallel_for: every index runs exactly once, thread ids
 * stay below the returned count, loops run from several threads at once (as a server's workers
 * do) and nested in each other, and the pool keeps its threads between loops. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "veil/core.h"

typedef struct {
    atomic_int *hits;
    unsigned threads;
    atomic_int bad_id;
    atomic_uint seen_ids; /* bit t: thread id t ran something */
} loop_ctx;

static void count_one(void *vc, size_t i, unsigned t)
{
    loop_ctx *c = vc;
    atomic_fetch_add(&c->hits[i], 1);
    if (t >= c->threads) atomic_fetch_add(&c->bad_id, 1);
    else atomic_fetch_or(&c->seen_ids, 1u << (t & 31));
    volatile double x = 0; /* some work, so that helpers get a chance to join */
    for (int k = 0; k < 2000; k++) x += (double)k * 1e-9;
}

static int run_loop(size_t n, unsigned threads, unsigned *used)
{
    atomic_int *hits = calloc(n ? n : 1, sizeof *hits);
    loop_ctx c = {.hits = hits, .threads = threads ? (threads > 256 ? 256 : threads) : veil_cpu_count()};
    atomic_init(&c.bad_id, 0);
    atomic_init(&c.seen_ids, 0);
    unsigned u = veil_parallel_for(n, threads, count_one, &c);
    int ok = atomic_load(&c.bad_id) == 0;
    for (size_t i = 0; i < n; i++) ok &= atomic_load(&hits[i]) == 1;
    size_t want = n < c.threads ? (n ? n : 1) : c.threads;
    ok &= u == want;
    if (used) *used = (unsigned)__builtin_popcount(atomic_load(&c.seen_ids));
    free(hits);
    return ok;
}

static void *concurrent(void *arg)
{
    int *ok = arg;
    for (int r = 0; r < 20; r++) *ok &= run_loop(300 + (size_t)r, 3, NULL);
    return NULL;
}

typedef struct {
    atomic_int inner_ok;
} nest_ctx;

static void nested(void *vc, size_t i, unsigned t)
{
    (void)i;
    (void)t;
    nest_ctx *c = vc;
    if (!run_loop(50, 2, NULL)) atomic_store(&c->inner_ok, 0);
}

int main(void)
{
    const size_t sizes[] = {0, 1, 2, 7, 64, 1000};
    const unsigned threads[] = {0, 1, 2, 3, 8, 300};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++)
        for (size_t t = 0; t < sizeof threads / sizeof threads[0]; t++)
            CHECK(run_loop(sizes[s], threads[t], NULL), "n=%zu threads=%u: every index once, ids in range",
                  sizes[s], threads[t]);
    /* helpers do join: a long loop on 4 threads sees more than one thread id */
    unsigned used = 0;
    CHECK(run_loop(20000, 4, &used), "long loop");
    CHECK(used >= 2, "a long loop on 4 threads ran on %u thread(s)", used);
    /* four callers at once */
    pthread_t th[4];
    int oks[4] = {1, 1, 1, 1};
    for (int i = 0; i < 4; i++) pthread_create(&th[i], NULL, concurrent, &oks[i]);
    for (int i = 0; i < 4; i++) pthread_join(th[i], NULL);
    for (int i = 0; i < 4; i++) CHECK(oks[i], "concurrent caller %d", i);
    /* a loop inside a loop finishes (the caller always works on its own job) */
    nest_ctx nc;
    atomic_init(&nc.inner_ok, 1);
    veil_parallel_for(8, 2, nested, &nc);
    CHECK(atomic_load(&nc.inner_ok), "nested loops");
    return check_done("test_parallel");
}
