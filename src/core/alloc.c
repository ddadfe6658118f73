#include <stdlib.h>
#include <string.h>

#include "veil/core.h"

#define VEIL_ALIGN 64

static void *default_alloc(size_t size, size_t align, void *ctx)
{
    (void)ctx;
    size_t rounded = (size + align - 1) / align * align;
    if (rounded < size) return NULL;
    return aligned_alloc(align, rounded);
}

static void default_free(void *p, void *ctx)
{
    (void)ctx;
    free(p);
}

static veil_allocator current = {default_alloc, default_free, NULL};

void veil_set_allocator(const veil_allocator *a)
{
    if (a && a->alloc && a->free) current = *a;
    else current = (veil_allocator){default_alloc, default_free, NULL};
}

void *veil_malloc(size_t size)
{
    if (size == 0) size = 1;
    if (size > SIZE_MAX - VEIL_ALIGN) return NULL;
    return current.alloc(size, VEIL_ALIGN, current.ctx);
}

void *veil_calloc(size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size) return NULL;
    void *p = veil_malloc(n * size);
    if (p) memset(p, 0, n * size);
    return p;
}

void veil_free(void *p)
{
    if (p) current.free(p, current.ctx);
}

void *veil_realloc(void *p, size_t old_size, size_t new_size)
{
    void *q = veil_malloc(new_size);
    if (!q) return NULL;
    if (p) memcpy(q, p, old_size < new_size ? old_size : new_size);
    veil_free(p);
    return q;
}

void veil_memzero(void *p, size_t n)
{
    if (!p || !n) return;
    /* explicit_bzero is in glibc >= 2.25; the barrier keeps other compilers from eliding it. */
    explicit_bzero(p, n);
    __asm__ __volatile__("" : : "r"(p) : "memory");
}

void veil_free_secret(void *p, size_t n)
{
    veil_memzero(p, n);
    veil_free(p);
}
