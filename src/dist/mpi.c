/* The MPI engine of veil/dist.h: rank 0 spreads each lookup batch over the live ranks in proportion
 * to their measured speed; ranks > 0 run what they are sent. Every message is a 32-byte header
 * (tag HDR) and then its body in chunks (tag BODY) of at most 1 GiB; rank 0 waits on nothing
 * without a deadline, and nothing spins: waits poll with a growing sleep. */
#include <mpi.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "dist_impl.h"
#include "veil/dist.h"

enum { TAG_HDR = 7101, TAG_BODY = 7102 };
enum { K_BATCH = 1, K_RESULT = 2, K_KEYS = 3, K_STOP = 4 };
enum { NEED_KEYS = -1 }; /* a result's status: this rank does not hold the batch's key set */
#define CHUNK ((size_t)1 << 30)
#define MAX_KEYSETS 64
#define RATE_PARTS 8 /* partitions past the 8th share the 8th's rates */

typedef struct {
    uint32_t kind;
    int32_t status;
    uint64_t len; /* body bytes */
    uint64_t id;  /* K_KEYS, K_BATCH: the key set */
    double seconds; /* K_RESULT: the worker's compute time */
} msg_hdr;
_Static_assert(sizeof(msg_hdr) == 32, "msg_hdr is 32 bytes on the wire");

struct veil_dist {
    int rank, size;
    char host[MPI_MAX_PROCESSOR_NAME + 1];
    char (*hosts)[64]; /* rank 0: every rank's host name */
    double timeout_s;
    int equal_split; /* VEIL_MPI_SPLIT=equal: every live rank an equal share, whatever its speed */
    pthread_mutex_t lock;
    /* lookups per second of each rank on each partition's lookups (their costs differ by the
     * partition's N), 0 until measured */
    double rate[RATE_PARTS][VEIL_DIST_MAX_RANKS];
    int dead[VEIL_DIST_MAX_RANKS];
    double load_until[VEIL_DIST_MAX_RANKS]; /* a rank loading keys may be silent until then */
    uint64_t sent_keys[VEIL_DIST_MAX_RANKS][4]; /* key sets each worker was last sent (a hint) */
    uint64_t key_cache_id;                  /* rank 0: the last key set serialized, kept to send */
    uint8_t *key_cache;
    size_t key_cache_len;
    void **graveyard; /* send buffers a rank never took: MPI may still read them */
    size_t ngrave;
    veil_dist_stats stats;
    char failure[320]; /* the first batch that failed: why */
};

static __thread char last_error[320];

const char *veil_dist_last_error(void) { return last_error[0] ? last_error : "no error"; }

static veil_status fail(veil_status st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    return st;
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void nap(unsigned *us)
{
    struct timespec t = {0, (long)*us * 1000};
    nanosleep(&t, NULL);
    if (*us < 1000) *us *= 2;
}

/* every request done (1), or the deadline passed first (0; deadline < 0: none) */
static int wait_all(MPI_Request *rq, int n, double deadline)
{
    unsigned us = 2;
    for (;;) {
        int done = 0;
        if (MPI_Testall(n, rq, &done, MPI_STATUSES_IGNORE) != MPI_SUCCESS) return 0;
        if (done) return 1;
        if (deadline >= 0 && now_s() > deadline) return 0;
        nap(&us);
    }
}

static void bury(veil_dist *d, void *p)
{
    void **g = realloc(d->graveyard, sizeof(void *) * (d->ngrave + 1));
    if (g) {
        d->graveyard = g;
        d->graveyard[d->ngrave++] = p;
    } /* else: leaked, which is what burying does anyway */
}

/* header + body to dst; the body buffer is the caller's (buried by the caller on failure) */
static int send_msg(veil_dist *d, int dst, msg_hdr h, const uint8_t *body, double deadline)
{
    size_t nchunks = h.len ? (h.len + CHUNK - 1) / CHUNK : 0;
    MPI_Request *rq = malloc(sizeof(MPI_Request) * (nchunks + 1));
    msg_hdr *hp = malloc(sizeof h);
    if (!rq || !hp) {
        free(rq), free(hp);
        return 0;
    }
    *hp = h;
    MPI_Isend(hp, (int)sizeof h, MPI_BYTE, dst, TAG_HDR, MPI_COMM_WORLD, &rq[0]);
    for (size_t c = 0; c < nchunks; c++) {
        size_t n = h.len - c * CHUNK < CHUNK ? h.len - c * CHUNK : CHUNK;
        MPI_Isend(body + c * CHUNK, (int)n, MPI_BYTE, dst, TAG_BODY, MPI_COMM_WORLD, &rq[c + 1]);
    }
    int ok = wait_all(rq, (int)nchunks + 1, deadline);
    free(rq);
    if (ok) free(hp);
    else bury(d, hp);
    return ok;
}

/* the next message from src: its header, and its body in *body (malloc'd) */
static int recv_msg(int src, msg_hdr *h, uint8_t **body, double deadline, size_t max_len)
{
    *body = NULL;
    MPI_Request rq;
    MPI_Irecv(h, (int)sizeof *h, MPI_BYTE, src, TAG_HDR, MPI_COMM_WORLD, &rq);
    if (!wait_all(&rq, 1, deadline)) {
        MPI_Cancel(&rq);
        MPI_Request_free(&rq);
        return 0;
    }
    if (h->len > max_len) return 0;
    size_t nchunks = h->len ? (h->len + CHUNK - 1) / CHUNK : 0;
    uint8_t *b = malloc(h->len ? h->len : 1);
    MPI_Request *rqs = malloc(sizeof(MPI_Request) * (nchunks ? nchunks : 1));
    if (!b || !rqs) {
        free(b), free(rqs);
        return 0;
    }
    for (size_t c = 0; c < nchunks; c++) {
        size_t n = h->len - c * CHUNK < CHUNK ? h->len - c * CHUNK : CHUNK;
        MPI_Irecv(b + c * CHUNK, (int)n, MPI_BYTE, src, TAG_BODY, MPI_COMM_WORLD, &rqs[c]);
    }
    int ok = wait_all(rqs, (int)nchunks, deadline);
    if (!ok) {
        for (size_t c = 0; c < nchunks; c++) {
            MPI_Cancel(&rqs[c]);
            MPI_Request_free(&rqs[c]);
        }
        free(rqs);
        return 0; /* b stays: a cancelled receive may still be written to */
    }
    free(rqs);
    *body = b;
    return 1;
}

/* ---- set-up -------------------------------------------------------------------------------- */
veil_status veil_dist_init(int *argc, char ***argv, veil_dist **out)
{
    *out = NULL;
    int provided = 0;
    if (MPI_Init_thread(argc, argv, MPI_THREAD_SERIALIZED, &provided) != MPI_SUCCESS)
        return fail(VEIL_ERR_UNSUPPORTED, "MPI did not start (MPI_Init_thread failed)");
    if (provided < MPI_THREAD_SERIALIZED) {
        MPI_Finalize();
        return fail(VEIL_ERR_UNSUPPORTED, "this MPI cannot take calls from several threads in turn (MPI_THREAD_SERIALIZED)");
    }
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    veil_dist *d = calloc(1, sizeof *d);
    if (!d) {
        MPI_Finalize();
        return VEIL_ERR_NOMEM;
    }
    MPI_Comm_rank(MPI_COMM_WORLD, &d->rank);
    MPI_Comm_size(MPI_COMM_WORLD, &d->size);
    if (d->size > VEIL_DIST_MAX_RANKS) {
        free(d);
        MPI_Finalize();
        return fail(VEIL_ERR_UNSUPPORTED, "at most %d ranks", VEIL_DIST_MAX_RANKS);
    }
    int hl = 0;
    MPI_Get_processor_name(d->host, &hl);
    char mine[64];
    snprintf(mine, sizeof mine, "%.63s", d->host);
    if (d->rank == 0 && !(d->hosts = calloc((size_t)d->size, sizeof *d->hosts))) {
        free(d);
        MPI_Finalize();
        return VEIL_ERR_NOMEM;
    }
    MPI_Gather(mine, 64, MPI_CHAR, d->rank == 0 ? (void *)d->hosts : NULL, 64, MPI_CHAR, 0, MPI_COMM_WORLD);
    const char *t = getenv("VEIL_MPI_TIMEOUT");
    char *end;
    d->timeout_s = t && *t ? strtod(t, &end) : 120;
    if (!(d->timeout_s > 0) || d->timeout_s > 1e6) d->timeout_s = 120;
    const char *sp = getenv("VEIL_MPI_SPLIT");
    d->equal_split = sp && !strcmp(sp, "equal");
    if (sp && *sp && strcmp(sp, "equal") && strcmp(sp, "speed") && d->rank == 0)
        fprintf(stderr, "veil: MPI: VEIL_MPI_SPLIT=%s is neither 'speed' nor 'equal': splitting by speed\n", sp);
    pthread_mutex_init(&d->lock, NULL);
    d->stats.ranks = d->size;
    *out = d;
    return VEIL_OK;
}

int veil_dist_rank(const veil_dist *d) { return d ? d->rank : 0; }
int veil_dist_size(const veil_dist *d) { return d ? d->size : 1; }
const char *veil_dist_host(const veil_dist *d) { return d ? d->host : ""; }
const char *veil_dist_rank_host(const veil_dist *d, int r)
{
    return d && d->hosts && r >= 0 && r < d->size ? d->hosts[r] : "";
}
const char *veil_dist_failure(const veil_dist *d) { return d && d->failure[0] ? d->failure : NULL; }

void veil_dist_get_stats(const veil_dist *d, veil_dist_stats *s)
{
    pthread_mutex_lock((pthread_mutex_t *)&d->lock);
    *s = d->stats;
    for (int r = 0; r < d->size; r++) {
        s->rank_rate[r] = d->rate[0][r];
        s->rank_dead[r] = d->dead[r];
    }
    pthread_mutex_unlock((pthread_mutex_t *)&d->lock);
}

void veil_dist_reset_stats(veil_dist *d)
{
    pthread_mutex_lock(&d->lock);
    memset(&d->stats, 0, sizeof d->stats);
    d->stats.ranks = d->size;
    pthread_mutex_unlock(&d->lock);
}

/* ---- rank 0 ---------------------------------------------------------------------------------- */
/* How long rank r may stay silent from now: the timeout, past the end of a key load it was given
 * (a minute plus a minute per GB of keys: reading, expanding the masks, the FFTs) */
static double deadline(const veil_dist *d, int r, double extra)
{
    double t = now_s(), from = d->load_until[r] > t ? d->load_until[r] : t;
    return from + d->timeout_s + extra;
}

static void loading(veil_dist *d, int r, size_t bytes) { d->load_until[r] = now_s() + 60 + 60 * (double)bytes / 1e9; }

static int has_keys(const veil_dist *d, int r, uint64_t id)
{
    for (int i = 0; i < 4; i++)
        if (d->sent_keys[r][i] == id) return 1;
    return 0;
}

static void note_keys(veil_dist *d, int r, uint64_t id, int has)
{
    for (int i = 0; i < 4; i++)
        if (d->sent_keys[r][i] == id) d->sent_keys[r][i] = 0;
    if (!has) return;
    memmove(&d->sent_keys[r][1], &d->sent_keys[r][0], sizeof(uint64_t) * 3);
    d->sent_keys[r][0] = id;
}

static veil_status send_keys(veil_dist *d, int r, const veil_eval_keys *ek, uint64_t id)
{
    if (d->key_cache_id != id) {
        veil_free(d->key_cache);
        d->key_cache = NULL;
        d->key_cache_id = 0;
        /* compressed when the keys still hold their seed and bodies, else as held in memory */
        veil_status st = veil_eval_keys_serialize(ek, 1, &d->key_cache, &d->key_cache_len);
        if (st == VEIL_ERR_UNSUPPORTED) st = veil_eval_keys_serialize(ek, 0, &d->key_cache, &d->key_cache_len);
        if (st != VEIL_OK) return fail(st, "cannot serialize the evaluation keys for the other ranks: %s", veil_status_str(st));
        d->key_cache_id = id;
    }
    msg_hdr h = {K_KEYS, 0, d->key_cache_len, id, 0};
    if (!send_msg(d, r, h, d->key_cache, deadline(d, r, 0))) {
        bury(d, d->key_cache); /* MPI may still read it */
        d->key_cache = NULL;
        d->key_cache_id = 0;
        d->dead[r] = 1;
        return fail(VEIL_ERR_REMOTE, "rank %d of %d did not take the evaluation keys within %.0f s: left out from now on", r,
                    d->size, d->timeout_s);
    }
    d->stats.key_bytes += d->key_cache_len;
    d->stats.bytes_sent += d->key_cache_len;
    note_keys(d, r, id, 1);
    loading(d, r, d->key_cache_len);
    return VEIL_OK;
}

static veil_status send_batch(veil_dist *d, int r, const dist_buf *msg, uint64_t id)
{
    msg_hdr h = {K_BATCH, 0, msg->len, id, 0};
    if (!send_msg(d, r, h, msg->p, deadline(d, r, 0))) {
        d->dead[r] = 1;
        return fail(VEIL_ERR_REMOTE, "rank %d of %d did not take its lookups within %.0f s: left out from now on", r, d->size,
                    d->timeout_s);
    }
    d->stats.bytes_sent += msg->len;
    return VEIL_OK;
}

static veil_status spread(void *ctx, const veil_spread_batch *b)
{
    veil_dist *d = ctx;
    const veil_eval_keys *part = veil_eval_keys_part(b->ek, b->part);
    if (!part) return VEIL_ERR_INVALID_ARG;
    pthread_mutex_lock(&d->lock);
    const double t_start = now_s();
    const uint64_t id = veil_eval_keys_id(b->ek), sent0 = d->stats.bytes_sent, recv0 = d->stats.bytes_received;
    const int R = d->size;
    double *rate = d->rate[b->part < RATE_PARTS ? b->part : RATE_PARTS - 1];
    double w[VEIL_DIST_MAX_RANKS];
    size_t first[VEIL_DIST_MAX_RANKS + 1];
    /* weights: the measured rates; a rank not measured yet counts as fast as the average of those
     * that are (all equal at first) */
    double sum = 0;
    int nm = 0;
    for (int r = 0; r < R; r++)
        if (!d->dead[r] && rate[r] > 0) sum += rate[r], nm++;
    for (int r = 0; r < R; r++) w[r] = d->dead[r] ? 0 : d->equal_split ? 1 : rate[r] > 0 ? rate[r] : nm ? sum / nm : 1;
    dist_split(b->njobs, R, w, first);
    dist_buf msg[VEIL_DIST_MAX_RANKS];
    memset(msg, 0, sizeof(dist_buf) * (size_t)R);
    veil_status st = VEIL_OK;
    double wait = 0, t, r0_s = 0;
    /* the workers' shares out first, so that they compute while rank 0 does its own */
    for (int r = 1; r < R && st == VEIL_OK; r++) {
        if (first[r + 1] == first[r]) continue;
        if ((st = dist_batch_encode(b, id, first[r], first[r + 1], &msg[r])) != VEIL_OK) break;
        t = now_s();
        if (!has_keys(d, r, id)) st = send_keys(d, r, b->ek, id);
        if (st == VEIL_OK) st = send_batch(d, r, &msg[r], id);
        wait += now_s() - t;
        if (st != VEIL_OK) first[r + 1] = first[r]; /* nothing to collect from it */
    }
    if (st == VEIL_OK && first[1] > first[0]) {
        t = now_s();
        st = veil_ks_pbs_jobs(part, b->jobs + first[0], first[1] - first[0], b->threads);
        double dt = now_s() - t;
        if (st == VEIL_OK && dt > 0) {
            double now_rate = (double)(first[1] - first[0]) / dt;
            rate[0] = rate[0] > 0 ? 0.5 * rate[0] + 0.5 * now_rate : now_rate;
        }
        r0_s = dt;
        d->stats.rank_lookups[0] += first[1] - first[0];
        d->stats.rank_compute_s[0] += dt;
    }
    /* then every share back, in rank order (each rank's outputs are a contiguous range) */
    for (int r = 1; r < R; r++) {
        if (first[r + 1] == first[r]) continue;
        const size_t n = first[r + 1] - first[r], words = dist_out_words(b, first[r], first[r + 1]);
        const double expect = rate[r] > 0 ? (double)n / rate[r] : 0;
        msg_hdr h;
        uint8_t *body = NULL;
        int tries = 0;
        t = now_s();
        for (;;) {
            const double until = deadline(d, r, 20 * expect);
            if (!recv_msg(r, &h, &body, until, words * 8 + 64) || h.kind != K_RESULT) {
                free(body);
                d->dead[r] = 1;
                if (st == VEIL_OK)
                    st = fail(VEIL_ERR_REMOTE, "rank %d of %d did not answer within %.0f s: left out from now on", r, d->size,
                              until - t);
                break;
            }
            d->load_until[r] = 0; /* it answered: whatever it loaded is loaded */
            if (h.status == NEED_KEYS && tries++ == 0) { /* it dropped them: again, with the keys */
                free(body);
                body = NULL;
                note_keys(d, r, id, 0);
                veil_status s2 = send_keys(d, r, b->ek, id);
                if (s2 == VEIL_OK) s2 = send_batch(d, r, &msg[r], id);
                if (s2 == VEIL_OK) continue;
                if (st == VEIL_OK) st = s2;
                break;
            }
            if (h.status != VEIL_OK) {
                if (st == VEIL_OK)
                    st = fail(VEIL_ERR_REMOTE, "rank %d of %d could not run its lookups: %s", r, d->size,
                              h.status == NEED_KEYS ? "it does not hold the evaluation keys"
                                                    : veil_status_str((veil_status)h.status));
                free(body);
                break;
            }
            if (h.len != words * 8) {
                free(body);
                if (st == VEIL_OK) st = fail(VEIL_ERR_REMOTE, "rank %d of %d answered %llu bytes for %zu", r, d->size,
                                             (unsigned long long)h.len, words * 8);
                break;
            }
            if (st == VEIL_OK) {
                /* body is malloc'd: suitably aligned for the words */
                dist_outputs_apply(b, first[r], first[r + 1], (const uint64_t *)(void *)body);
            }
            d->stats.bytes_received += h.len;
            d->stats.rank_lookups[r] += n;
            d->stats.rank_compute_s[r] += h.seconds;
            if (h.seconds > 0) {
                double now_rate = (double)n / h.seconds;
                rate[r] = rate[r] > 0 ? 0.5 * rate[r] + 0.5 * now_rate : now_rate;
            }
            free(body);
            break;
        }
        wait += now_s() - t;
    }
    for (int r = 0; r < R; r++) {
        if (d->dead[r] && msg[r].p) bury(d, msg[r].p); /* MPI may still read it */
        else dist_buf_free(&msg[r]);
    }
    if (st != VEIL_OK) {
        fprintf(stderr, "veil: MPI: %s\n", last_error); /* the server's log; the command's last words */
        if (!d->failure[0]) snprintf(d->failure, sizeof d->failure, "%s", last_error);
    }
    if (d->stats.nlog < VEIL_DIST_LOG) {
        __typeof__(d->stats.log[0]) *L = &d->stats.log[d->stats.nlog++];
        L->lookups = (uint32_t)b->njobs;
        L->part = b->part;
        L->sent = d->stats.bytes_sent - sent0;
        L->received = d->stats.bytes_received - recv0;
        L->wall_s = now_s() - t_start;
        L->wait_s = wait;
        L->rank0_lookups = (uint32_t)(first[1] - first[0]);
        L->rank0_s = r0_s;
    }
    d->stats.batches++;
    d->stats.lookups += b->njobs;
    d->stats.wait_s += wait;
    d->stats.wall_s += now_s() - t_start;
    pthread_mutex_unlock(&d->lock);
    return st;
}

veil_status veil_dist_share_keys_file(veil_dist *d, const veil_eval_keys *ek, const char *path)
{
    if (!d || !ek || !path) return VEIL_ERR_INVALID_ARG;
    if (d->rank != 0 || d->size < 2) return VEIL_OK;
    char abs[4096];
    struct stat sb;
    if (!realpath(path, abs) || stat(abs, &sb) != 0) return fail(VEIL_ERR_IO, "%s: cannot resolve the path", path);
    const off_t size = sb.st_size;
    pthread_mutex_lock(&d->lock);
    const uint64_t id = veil_eval_keys_id(ek);
    veil_status st = VEIL_OK;
    for (int r = 1; r < d->size && st == VEIL_OK; r++) {
        if (d->dead[r]) continue;
        msg_hdr h = {K_KEYS, 1, strlen(abs) + 1, id, 0};
        if (!send_msg(d, r, h, (const uint8_t *)abs, deadline(d, r, 0))) {
            d->dead[r] = 1;
            st = fail(VEIL_ERR_REMOTE, "rank %d of %d did not take the key file's name: left out from now on", r, d->size);
        } else {
            note_keys(d, r, id, 1); /* a hint: a rank that cannot read it asks for the bytes */
            loading(d, r, (size_t)size);
        }
    }
    pthread_mutex_unlock(&d->lock);
    return st;
}

void veil_dist_install(veil_dist *d)
{
    if (d && d->rank == 0 && d->size > 1) veil_runtime_set_spread(spread, d);
}

void veil_dist_finish(veil_dist *d)
{
    if (!d) return;
    if (d->rank == 0) {
        veil_runtime_set_spread(NULL, NULL);
        for (int r = 1; r < d->size; r++)
            if (!d->dead[r]) {
                msg_hdr h = {K_STOP, 0, 0, 0, 0};
                if (!send_msg(d, r, h, NULL, now_s() + 10)) d->dead[r] = 1;
            }
    }
    int dead = 0;
    for (int r = 0; r < d->size; r++) dead |= d->dead[r];
    /* MPI_Finalize would wait for a rank that left: without it, this process's exit status is
     * what mpirun reports */
    if (!dead) MPI_Finalize();
    veil_free(d->key_cache);
    for (size_t i = 0; i < d->ngrave; i++) free(d->graveyard[i]);
    free(d->graveyard);
    free(d->hosts);
    pthread_mutex_destroy(&d->lock);
    free(d);
}

/* ---- ranks > 0 ------------------------------------------------------------------------------- */
typedef struct {
    uint64_t id;
    veil_eval_keys *ek;
    veil_status st; /* why it could not be loaded (ek NULL) */
    uint64_t used;
} keyset;

veil_status veil_dist_worker(veil_dist *d, unsigned threads)
{
    if (!d || d->rank == 0) return VEIL_ERR_INVALID_ARG;
    const char *env = getenv("VEIL_MPI_KEYSETS");
    int cap = env && *env ? atoi(env) : 4;
    if (cap < 1 || cap > MAX_KEYSETS) cap = 4;
    keyset ks[MAX_KEYSETS];
    memset(ks, 0, sizeof ks);
    uint64_t tick = 0;
    veil_status ret = VEIL_OK;
    for (;;) {
        msg_hdr h;
        uint8_t *body = NULL;
        if (!recv_msg(0, &h, &body, -1, SIZE_MAX / 2)) {
            ret = fail(VEIL_ERR_REMOTE, "rank %d: lost rank 0", d->rank);
            break;
        }
        if (h.kind == K_STOP) {
            free(body);
            break;
        }
        if (h.kind == K_KEYS) {
            int slot = 0; /* the same id again, a free slot, or the least recently used */
            for (int i = 0; i < cap; i++) {
                if (ks[i].id == h.id) {
                    slot = i;
                    break;
                }
                if (ks[i].used < ks[slot].used) slot = i;
            }
            veil_eval_keys_free(ks[slot].ek);
            ks[slot] = (keyset){h.id, NULL, VEIL_OK, ++tick};
            if (h.status == 1) { /* a file every rank can read: its bytes from there */
                uint8_t *kb = NULL;
                size_t kl = 0;
                veil_status st = h.len && body[h.len - 1] == 0 ? veil_file_read_all((const char *)body, (size_t)1 << 40, &kb, &kl)
                                                               : VEIL_ERR_MALFORMED;
                if (st == VEIL_OK) st = veil_eval_keys_deserialize(kb, kl, NULL, &ks[slot].ek);
                veil_free(kb);
                if (st != VEIL_OK) ks[slot].id = 0; /* not here: the next batch asks rank 0 for the bytes */
            } else
                ks[slot].st = veil_eval_keys_deserialize(body, h.len, NULL, &ks[slot].ek);
            if (ks[slot].ek) veil_eval_keys_compact(ks[slot].ek);
            free(body);
            continue;
        }
        if (h.kind != K_BATCH) {
            free(body);
            continue; /* not ours to answer */
        }
        keyset *k = NULL;
        for (int i = 0; i < cap; i++)
            if (ks[i].id && ks[i].id == h.id) k = &ks[i];
        msg_hdr a = {K_RESULT, NEED_KEYS, 0, h.id, 0};
        uint64_t *outs = NULL;
        size_t nw = 0;
        if (k && !k->ek) a.status = k->st;
        else if (k) {
            k->used = ++tick;
            double t0 = now_s();
            veil_status st = dist_batch_run(body, h.len, k->ek, threads, &outs, &nw);
            a.seconds = now_s() - t0;
            a.status = st;
            if (st == VEIL_OK) a.len = nw * 8;
        }
        free(body);
        int ok = send_msg(d, 0, a, (const uint8_t *)outs, -1);
        veil_free(outs);
        if (!ok) {
            ret = fail(VEIL_ERR_REMOTE, "rank %d: cannot answer rank 0", d->rank);
            break;
        }
    }
    for (int i = 0; i < cap; i++) veil_eval_keys_free(ks[i].ek);
    return ret;
}
