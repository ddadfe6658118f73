/* Bump allocator: many small allocations freed together (graph nodes and their attributes). */
#ifndef VEIL_CORE_ARENA_H
#define VEIL_CORE_ARENA_H

#include <stddef.h>

typedef struct veil_arena veil_arena;

veil_arena *veil_arena_new(void);             /* NULL when out of memory */
void *veil_arena_alloc(veil_arena *a, size_t n); /* zeroed, 16-byte aligned; NULL when out of memory */
void veil_arena_free(veil_arena *a);           /* accepts NULL */

#endif
