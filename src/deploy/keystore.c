/* The server's key store: DATA/keys holds, per uploaded key set, ID.keys (the evaluation keys as
 * uploaded) and ID.meta (the model's name and id). A set is stored only when both are on disk:
 * the upload streams into .upload-*, is checked and fsync'ed, ID.meta is written atomically, then
 * the upload is renamed to ID.keys and the directory fsync'ed; only then is the upload
 * acknowledged. So `kill -9` at any moment leaves acknowledged sets whole, and anything else is
 * an unacknowledged leftover that the next start removes. Key sets load (map, expand, FFT:
 * seconds) outside keys_lock: the entry is marked loading and held, later requests for it wait on
 * keys_cond, every other request goes on. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "deploy.h"
#include "serve_impl.h"

int ks_hex_id_ok(const char *s)
{
    if (!s || strlen(s) != ID_HEX) return 0;
    for (int i = 0; i < ID_HEX; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) return 0;
    return 1;
}

void ks_path(const serve_state *s, char *out, size_t cap, const char *id, const char *ext)
{
    snprintf(out, cap, "%s/%s.%s", s->keys_dir, id, ext);
}

veil_status ks_map_file(const char *path, uint8_t **data, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return VEIL_ERR_IO;
    struct stat st;
    if (fstat(fd, &st) != 0 || st.st_size <= 0) {
        close(fd);
        return VEIL_ERR_IO;
    }
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (p == MAP_FAILED) return VEIL_ERR_IO;
    *data = p;
    *len = (size_t)st.st_size;
    return VEIL_OK;
}

static int find_model(const serve_state *s, const char *name)
{
    for (int i = 0; i < s->nmodels; i++)
        if (strcmp(s->models[i].name, name) == 0) return i;
    return -1;
}

static void sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
}

uint64_t ks_bytes_held_locked(const serve_state *s, int *count, int *loaded)
{
    uint64_t b = 0;
    int n = 0, l = 0;
    for (const key_entry *k = s->keys; k; k = k->next) b += k->bytes, n++, l += k->ek != NULL;
    if (count) *count = n;
    if (loaded) *loaded = l;
    return b;
}

key_entry *ks_find_locked(const serve_state *s, const char *id)
{
    key_entry *k = s->keys;
    while (k && strcmp(k->id, id) != 0) k = k->next;
    return k;
}

/* The model a stored pair ID.meta names, when this server serves it as compiled then (-1: no, -2:
 * no meta) */
static int meta_model(const serve_state *s, const char *meta_path)
{
    char name[64] = "", mid[ID_HEX + 1] = "";
    FILE *f = fopen(meta_path, "r");
    if (!f) return -2;
    if (fscanf(f, "model %63s\nmodel_id %32s", name, mid) != 2) name[0] = 0;
    fclose(f);
    int mi = find_model(s, name);
    return mi >= 0 && strcmp(mid, veil_server_model_id(s->models[mi].sm)) == 0 ? mi : -1;
}

static key_entry *adopt_locked(serve_state *s, const char *id, int mi, const struct stat *keys_st)
{
    key_entry *k = veil_calloc(1, sizeof *k);
    if (!k) return NULL;
    memcpy(k->id, id, sizeof k->id);
    k->model = mi;
    k->bytes = (uint64_t)keys_st->st_size;
    k->last_used = keys_st->st_mtime;
    k->next = s->keys;
    s->keys = k;
    return k;
}

key_entry *ks_lookup_locked(serve_state *s, const char *id)
{
    key_entry *k = ks_find_locked(s, id);
    if (!s->cfg.shared_store) return k;
    char mp[PATH_MAX + 64], kp[PATH_MAX + 64];
    ks_path(s, mp, sizeof mp, id, "meta");
    ks_path(s, kp, sizeof kp, id, "keys");
    struct stat ms, st;
    int there = stat(mp, &ms) == 0 && stat(kp, &st) == 0;
    if (k && !there && k->refs == 0 && !k->loading) { /* deleted (or expired) through another server */
        for (key_entry **pp = &s->keys; *pp; pp = &(*pp)->next)
            if (*pp == k) {
                *pp = k->next;
                break;
            }
        veil_eval_keys_free(k->ek);
        veil_free(k);
        return NULL;
    }
    if (!k && there) { /* uploaded through another server */
        int mi = meta_model(s, mp);
        if (mi >= 0) k = adopt_locked(s, id, mi, &st);
    }
    return k;
}

void ks_remove_locked(serve_state *s, key_entry *k)
{
    char p[PATH_MAX + 64];
    ks_path(s, p, sizeof p, k->id, "meta"); /* first: keys without meta are a leftover, swept at start */
    unlink(p);
    ks_path(s, p, sizeof p, k->id, "keys");
    unlink(p);
    for (key_entry **pp = &s->keys; *pp; pp = &(*pp)->next)
        if (*pp == k) {
            *pp = k->next;
            break;
        }
    veil_eval_keys_free(k->ek);
    veil_free(k);
}

/* Keys idle longer than the expiry go; loaded keys beyond the cache size are unloaded (LRU). Keys
 * held by a request (or loading for one) stay. */
void ks_sweep_locked(serve_state *s)
{
    time_t now = time(NULL);
    for (key_entry *k = s->keys, *next; k; k = next) {
        next = k->next;
        if (s->cfg.shared_store && k->refs == 0 && !k->loading && difftime(now, k->last_used) > s->cfg.expiry_s) {
            char p[PATH_MAX + 64]; /* another server may have used it since: its mtime says */
            struct stat st;
            ks_path(s, p, sizeof p, k->id, "keys");
            if (stat(p, &st) == 0 && st.st_mtime > k->last_used) k->last_used = st.st_mtime;
        }
        if (k->refs == 0 && !k->loading && difftime(now, k->last_used) > s->cfg.expiry_s) {
            serve_log(s, "key %.8s… expired (idle %.0f s)", k->id, difftime(now, k->last_used));
            ks_remove_locked(s, k);
        }
    }
    for (;;) {
        int loaded = 0;
        key_entry *lru = NULL;
        for (key_entry *k = s->keys; k; k = k->next)
            if (k->ek) {
                loaded++;
                if (k->refs == 0 && (!lru || k->last_used < lru->last_used)) lru = k;
            }
        if (loaded <= s->cfg.cache || !lru) break;
        veil_eval_keys_free(lru->ek);
        lru->ek = NULL;
    }
}

int ks_acquire(serve_state *s, const char *id, int model, key_entry **out, char *err, size_t cap)
{
    *out = NULL;
    pthread_mutex_lock(&s->keys_lock);
    key_entry *k = ks_lookup_locked(s, id);
    if (!k) {
        pthread_mutex_unlock(&s->keys_lock);
        snprintf(err, cap, "unknown key id (expired, deleted, or never uploaded)");
        return 404;
    }
    if (k->model != model) {
        snprintf(err, cap, "key %s was uploaded for model '%s', not '%s'", id, s->models[k->model].name,
                 s->models[model].name);
        pthread_mutex_unlock(&s->keys_lock);
        return 403;
    }
    k->refs++; /* from here on, k stays */
    while (k->loading) pthread_cond_wait(&s->keys_cond, &s->keys_lock);
    int code = 0;
    if (!k->ek) {
        k->loading = 1;
        pthread_mutex_unlock(&s->keys_lock);
        char p[PATH_MAX + 64];
        uint8_t *d;
        size_t len;
        veil_eval_keys *ek = NULL;
        ks_path(s, p, sizeof p, k->id, "keys");
        veil_status st = ks_map_file(p, &d, &len);
        if (st == VEIL_OK) {
            st = veil_server_keys_load(s->models[model].sm, d, len, &ek);
            munmap(d, len);
            if (st != VEIL_OK) {
                code = st == VEIL_ERR_NOMEM ? 503 : 500;
                snprintf(err, cap, "stored keys unusable: %s", veil_server_last_error());
            }
        } else {
            code = 500;
            snprintf(err, cap, "stored keys unreadable");
        }
        pthread_mutex_lock(&s->keys_lock);
        k->loading = 0;
        k->ek = ek;
        pthread_cond_broadcast(&s->keys_cond);
    }
    if (code) {
        k->refs--;
        pthread_mutex_unlock(&s->keys_lock);
        return code;
    }
    k->last_used = time(NULL);
    pthread_mutex_unlock(&s->keys_lock);
    char p[PATH_MAX + 64];
    ks_path(s, p, sizeof p, k->id, "keys");
    utimensat(AT_FDCWD, p, NULL, 0); /* the idle clock survives a restart */
    *out = k;
    return 0;
}

void ks_release(serve_state *s, key_entry *k)
{
    if (!k) return;
    pthread_mutex_lock(&s->keys_lock);
    k->refs--;
    ks_sweep_locked(s);
    pthread_mutex_unlock(&s->keys_lock);
}

static int disk_full(int e) { return e == ENOSPC || e == EDQUOT; }

int ks_store(serve_state *s, const char *tmp, int model, uint64_t bytes, veil_eval_keys *ek, char id[ID_HEX + 1],
             char *err, size_t cap)
{
    uint8_t raw[16];
    veil_rng *rng = NULL;
    if (veil_rng_new_os(&rng) != VEIL_OK) {
        veil_eval_keys_free(ek);
        unlink(tmp);
        snprintf(err, cap, "no randomness for a key id");
        return 500;
    }
    veil_rng_bytes(rng, raw, sizeof raw);
    veil_rng_free(rng);
    key_entry *k = veil_calloc(1, sizeof *k);
    if (!k) {
        veil_eval_keys_free(ek);
        unlink(tmp);
        snprintf(err, cap, "out of memory");
        return 503;
    }
    veil_hex(raw, sizeof raw, k->id);
    k->model = model;
    k->bytes = bytes;
    k->last_used = time(NULL);
    k->ek = ek;
    char kp[PATH_MAX + 64], mp[PATH_MAX + 64], meta[256];
    ks_path(s, kp, sizeof kp, k->id, "keys");
    ks_path(s, mp, sizeof mp, k->id, "meta");
    int ml = snprintf(meta, sizeof meta, "model %s\nmodel_id %s\n", s->models[model].name,
                      veil_server_model_id(s->models[model].sm));
    errno = 0;
    int bad = veil_file_write_atomic(mp, (const uint8_t *)meta, (size_t)ml, 0600) != VEIL_OK;
    int e = errno;
    if (!bad && rename(tmp, kp) != 0) bad = 1, e = errno, unlink(mp);
    if (bad) {
        unlink(tmp);
        veil_eval_keys_free(ek);
        veil_free(k);
        snprintf(err, cap, disk_full(e) ? "the server's disk is full: keys not stored"
                                        : "cannot store the keys on the server's disk");
        return disk_full(e) ? 507 : 500;
    }
    sync_dir(s->keys_dir);
    pthread_mutex_lock(&s->keys_lock);
    k->next = s->keys;
    s->keys = k;
    ks_sweep_locked(s);
    pthread_mutex_unlock(&s->keys_lock);
    memcpy(id, k->id, ID_HEX + 1);
    return 0;
}

static int has_suffix(const char *name, const char *suf)
{
    size_t n = strlen(name), m = strlen(suf);
    return n == ID_HEX + m && strcmp(name + ID_HEX, suf) == 0;
}

/* Start-up (refresh 0) or, for a shared store, before a quota check (refresh 1): temporaries of
 * interrupted writes and half pairs are removed (in a shared store only once older than the body
 * deadline and a minute: another server may be writing them), complete pairs of the models served
 * here join the index, and (refresh) entries whose files are gone leave it. */
static void scan(serve_state *s, int refresh)
{
    DIR *d = opendir(s->keys_dir);
    if (!d) return;
    struct dirent *e;
    int kept = 0, dropped = 0, swept = 0, young = 0;
    const time_t now = time(NULL);
    const double guard = s->cfg.shared_store ? s->cfg.body_timeout_s + 60 : -1;
    char p[PATH_MAX + 300], q[PATH_MAX + 300];
    while ((e = readdir(d))) {
        const char *n = e->d_name;
        snprintf(p, sizeof p, "%s/%s", s->keys_dir, n);
        struct stat own;
        int stale = guard < 0 || (lstat(p, &own) == 0 && difftime(now, own.st_mtime) > guard);
        if (strncmp(n, ".upload-", 8) == 0 || strstr(n, ".tmp.")) { /* an upload or a write cut short */
            if (stale) swept += unlink(p) == 0;
            else young++;
            continue;
        }
        char id[ID_HEX + 1];
        int is_meta = has_suffix(n, ".meta"), is_keys = has_suffix(n, ".keys");
        if (!is_meta && !is_keys) continue;
        memcpy(id, n, ID_HEX);
        id[ID_HEX] = 0;
        if (!ks_hex_id_ok(id)) continue;
        struct stat st;
        ks_path(s, q, sizeof q, id, is_meta ? "keys" : "meta");
        if (stat(q, &st) != 0) { /* half stored or half deleted: never acknowledged, or gone */
            if (stale) swept += unlink(p) == 0;
            else young++;
            continue;
        }
        if (is_keys || ks_find_locked(s, id)) continue; /* listed through its meta; known */
        int mi = meta_model(s, p);
        if (mi < 0) {
            dropped++; /* another model, or a recompiled one: these keys cannot serve */
            continue;
        }
        if (!adopt_locked(s, id, mi, &st)) break;
        kept++;
    }
    closedir(d);
    if (swept) sync_dir(s->keys_dir);
    if (refresh) { /* what another server deleted */
        for (key_entry **pp = &s->keys; *pp;) {
            key_entry *k = *pp;
            ks_path(s, p, sizeof p, k->id, "meta");
            struct stat st;
            if (k->refs == 0 && !k->loading && stat(p, &st) != 0) {
                *pp = k->next;
                veil_eval_keys_free(k->ek);
                veil_free(k);
            } else
                pp = &k->next;
        }
        return;
    }
    serve_log(s, "data %s: %d stored key set(s) kept, %d for models not served here left alone, %d leftover file(s) of "
                 "interrupted writes removed%s",
              s->cfg.data, kept, dropped, swept,
              young ? " (some recent ones left: the store is shared, another server may be writing them)" : "");
}

void ks_scan(serve_state *s) { scan(s, 0); }

void ks_refresh_locked(serve_state *s)
{
    if (s->cfg.shared_store) scan(s, 1);
}

void ks_free_all(serve_state *s)
{
    for (key_entry *k = s->keys, *n; k; k = n) {
        n = k->next;
        veil_eval_keys_free(k->ek);
        veil_free(k);
    }
    s->keys = NULL;
}
