#include "arena.h"

#include <string.h>

#include "veil/core.h"

typedef struct chunk {
    struct chunk *next;
    size_t used, cap, pad; /* 32-byte header keeps data 16-byte aligned */
    unsigned char data[];
} chunk;

struct veil_arena {
    chunk *head;
};

enum { CHUNK_BYTES = 64 * 1024 };

veil_arena *veil_arena_new(void) { return veil_calloc(1, sizeof(veil_arena)); }

void *veil_arena_alloc(veil_arena *a, size_t n)
{
    if (!a || n > SIZE_MAX / 2) return NULL;
    n = (n + 15) & ~(size_t)15;
    chunk *c = a->head;
    if (!c || c->cap - c->used < n) {
        size_t cap = n > CHUNK_BYTES ? n : CHUNK_BYTES;
        chunk *nc = veil_malloc(sizeof(chunk) + cap);
        if (!nc) return NULL;
        nc->used = 0;
        nc->cap = cap;
        if (c && n > CHUNK_BYTES) { /* a big block goes behind the current chunk, which stays open */
            nc->next = c->next;
            c->next = nc;
        } else {
            nc->next = c;
            a->head = nc;
        }
        c = nc;
    }
    void *p = c->data + c->used;
    c->used += n;
    memset(p, 0, n);
    return p;
}

void veil_arena_free(veil_arena *a)
{
    if (!a) return;
    for (chunk *c = a->head; c;) {
        chunk *next = c->next;
        veil_free(c);
        c = next;
    }
    veil_free(a);
}
