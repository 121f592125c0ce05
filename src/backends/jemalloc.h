/* jemalloc. Debian's jemalloc is unprefixed: its malloc is the program's
 * malloc only when the program links it ahead of libc. So this backend calls
 * only names that jemalloc alone has (mallocx, sallocx, sdallocx), except
 * that it uses malloc and free, whose fast paths are much shorter than
 * mallocx's and sdallocx's, when jemalloc.c has found at load time that they
 * are jemalloc's.
 *
 * A new block's usable size is its size class, computed inline from the
 * request (jemalloc.c checks the formula against nallocx() at load time and
 * falls back to nallocx() if they ever disagree). Only a free needs the size
 * looked up in jemalloc's radix tree (sallocx). */
#ifndef ZM_BACKEND_JEMALLOC_H
#define ZM_BACKEND_JEMALLOC_H

#include <jemalloc/jemalloc.h>

#include "internal.h"

extern ZM_HIDDEN void *(*zm__je_malloc)(size_t);
extern ZM_HIDDEN void (*zm__je_free)(void *);
extern ZM_HIDDEN int zm__je_malloc_is_global; /* malloc/free above are jemalloc's */
extern ZM_HIDDEN int zm__je_classes_ok;       /* zm__je_size_class() matches nallocx() */

/* jemalloc's size classes for 16-byte quanta and four classes per doubling:
 * 8, then multiples of 16 up to 128, then steps of a quarter of the
 * power of two below. */
static inline size_t zm__je_size_class(size_t n) {
    if (n <= 8) return 8;
    if (n <= 128) return (n + 15) & ~(size_t)15;
    unsigned lg = 64 - (unsigned)__builtin_clzll((unsigned long long)(n - 1)); /* 2^(lg-1) < n <= 2^lg */
    size_t step = (size_t)1 << (lg - 3);
    return (n + step - 1) & ~(step - 1);
}

static inline size_t zm__je_usable_of_request(size_t n) {
    return zm_likely(zm__je_classes_ok) ? zm__je_size_class(n) : nallocx(n, 0);
}

static inline size_t zm__be_usable(const void *p) { return sallocx(p, 0); }

static inline void *zm__be_sized(void *p, size_t size, size_t *usable) {
    if (usable && zm_likely(p != NULL)) *usable = zm__je_usable_of_request(size);
    return p;
}

/* mallocx(0) is undefined: ask for 1. */
static inline void *zm__be_malloc(size_t size, size_t *usable) {
    size += size == 0;
    return zm__be_sized(zm__je_malloc(size), size, usable);
}

static inline void *zm__be_calloc(size_t size, size_t *usable) {
    size += size == 0;
    return zm__be_sized(mallocx(size, MALLOCX_ZERO), size, usable);
}

/* rallocx may keep the block where it is: ask for the size it ended with. */
static inline void *zm__be_realloc(void *p, size_t size, size_t *usable) {
    void *q = rallocx(p, size, 0);
    if (usable && zm_likely(q != NULL)) *usable = zm__be_usable(q);
    return q;
}

static inline void zm__be_free_sized(void *p, size_t size) {
    if (zm_likely(zm__je_malloc_is_global)) zm__je_free(p);
    else sdallocx(p, size, 0);
}

/* jemalloc can bypass its thread cache (Redis's defragmentation moves blocks
 * that way, so that the new copy comes from the arena's current slabs). */
#define ZM_BE_NO_TCACHE 1
static inline void *zm__be_malloc_no_tcache(size_t size, size_t *usable) {
    size += size == 0;
    return zm__be_sized(mallocx(size, MALLOCX_TCACHE_NONE), size, usable);
}
static inline void zm__be_free_no_tcache(void *p, size_t size) {
    sdallocx(p, size, MALLOCX_TCACHE_NONE);
}

static inline void *zm__be_raw_malloc(size_t size) { return zm__je_malloc(size); }
static inline void zm__be_raw_free(void *p) { zm__je_free(p); }

#endif
