#include <pthread.h>
#include <stdatomic.h>

#include "veil/core.h"

typedef struct {
    size_t n;
    atomic_size_t next;
    void (*fn)(void *, size_t, unsigned);
    void *ctx;
} job;

typedef struct {
    job *j;
    unsigned id;
} worker;

static void *run_worker(void *arg)
{
    worker *w = arg;
    job *j = w->j;
    for (;;) {
        size_t i = atomic_fetch_add(&j->next, 1);
        if (i >= j->n) break;
        j->fn(j->ctx, i, w->id);
    }
    return NULL;
}

unsigned veil_parallel_for(size_t n, unsigned threads, void (*fn)(void *ctx, size_t i, unsigned thread),
                           void *ctx)
{
    if (threads == 0) threads = veil_cpu_count();
    if (threads > 256) threads = 256;
    if (threads > n) threads = n ? (unsigned)n : 1;
    job j = {.n = n, .fn = fn, .ctx = ctx};
    atomic_init(&j.next, 0);
    worker ws[256];
    pthread_t tids[256];
    unsigned started = 1;
    for (unsigned t = 1; t < threads; t++) {
        ws[t] = (worker){&j, t};
        if (pthread_create(&tids[t], NULL, run_worker, &ws[t]) != 0) break;
        started++;
    }
    ws[0] = (worker){&j, 0};
    run_worker(&ws[0]); /* the caller works too; if a thread failed to start, the rest still run */
    for (unsigned t = 1; t < started; t++) pthread_join(tids[t], NULL);
    return started;
}
