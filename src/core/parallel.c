/* One persistent thread pool for every parallel loop of the library (DESIGN §4). Workers start
 * once, on the first loop that wants them, and then sleep on a condition variable between loops.
 * Several loops may run at once (a server's workers each run one): each loop is a job on a list,
 * the pool's idle workers join the jobs that still want helpers, and the caller always works on
 * its own job, so a loop finishes even when every pool worker is busy elsewhere. */
#include <pthread.h>
#include <stdatomic.h>

#include "veil/core.h"

enum { MAX_THREADS = 256 };

typedef struct job {
    size_t n;
    atomic_size_t next;
    void (*fn)(void *, size_t, unsigned);
    void *ctx;
    unsigned helpers_max; /* threads - 1 */
    unsigned helpers;     /* joined so far: helper ids are 1 … helpers_max */
    unsigned active;      /* helpers still working on it */
    int listed;
    pthread_cond_t idle;  /* signalled when active drops to 0 after the job left the list */
    struct job *link;
} job;

static struct {
    pthread_mutex_t lock;
    pthread_cond_t work;
    job *jobs; /* jobs that still want helpers */
    unsigned workers;
} pool = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, NULL, 0};

static void drain(job *j, unsigned id)
{
    for (;;) {
        size_t i = atomic_fetch_add(&j->next, 1);
        if (i >= j->n) break;
        j->fn(j->ctx, i, id);
    }
}

static job *wanting_job(void)
{
    for (job *j = pool.jobs; j; j = j->link)
        if (j->helpers < j->helpers_max && atomic_load(&j->next) < j->n) return j;
    return NULL;
}

static void *worker_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&pool.lock);
    for (;;) {
        job *j;
        while (!(j = wanting_job())) pthread_cond_wait(&pool.work, &pool.lock);
        unsigned id = ++j->helpers;
        j->active++;
        pthread_mutex_unlock(&pool.lock);
        drain(j, id);
        pthread_mutex_lock(&pool.lock);
        if (--j->active == 0 && !j->listed) pthread_cond_signal(&j->idle);
    }
    return NULL;
}

/* Grows the pool to `want` workers (under the lock); a worker that fails to start is not fatal:
 * the callers work on their own jobs. */
static void grow(unsigned want)
{
    while (pool.workers < want) {
        pthread_t t;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        int rc = pthread_create(&t, &attr, worker_main, NULL);
        pthread_attr_destroy(&attr);
        if (rc != 0) break;
        pool.workers++;
    }
}

unsigned veil_parallel_for(size_t n, unsigned threads, void (*fn)(void *ctx, size_t i, unsigned thread),
                           void *ctx)
{
    if (threads == 0) threads = veil_cpu_count();
    if (threads > MAX_THREADS) threads = MAX_THREADS;
    if (threads > n) threads = n ? (unsigned)n : 1;
    job j = {.n = n, .fn = fn, .ctx = ctx, .helpers_max = threads - 1};
    atomic_init(&j.next, 0);
    if (threads == 1) {
        drain(&j, 0);
        return 1;
    }
    pthread_cond_init(&j.idle, NULL);
    pthread_mutex_lock(&pool.lock);
    /* sized to the cores once, larger only for a caller that asks for more threads */
    unsigned cores = veil_cpu_count();
    grow((threads - 1 > cores - 1 ? threads - 1 : cores - 1));
    j.link = pool.jobs;
    pool.jobs = &j;
    j.listed = 1;
    pthread_cond_broadcast(&pool.work);
    pthread_mutex_unlock(&pool.lock);

    drain(&j, 0);

    pthread_mutex_lock(&pool.lock);
    for (job **pp = &pool.jobs; *pp; pp = &(*pp)->link)
        if (*pp == &j) {
            *pp = j.link;
            break;
        }
    j.listed = 0;
    while (j.active) pthread_cond_wait(&j.idle, &pool.lock);
    pthread_mutex_unlock(&pool.lock);
    pthread_cond_destroy(&j.idle);
    return threads;
}
