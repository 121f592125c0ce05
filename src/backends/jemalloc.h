/* jemalloc. Allocation learns the usable size from nallocx(), a size-class
 * computation with no lookup; only a free needs the block's size looked up
 * (its radix tree), and hands it to sdallocx() so jemalloc need not look again.
 *
 * Debian's jemalloc is unprefixed: its malloc is the program's malloc only
 * when the program links it before libc. So every call here uses a name that
 * only jemalloc has (mallocx, sallocx, ...), except that malloc and free,
 * whose fast paths beat mallocx's, are used when jemalloc.c finds at load
 * time that they are jemalloc's. */
#ifndef ZM_BACKEND_JEMALLOC_H
#define ZM_BACKEND_JEMALLOC_H

#include <jemalloc/jemalloc.h>

#include "internal.h"

extern ZM_HIDDEN void *(*zm__je_malloc)(size_t);
extern ZM_HIDDEN void (*zm__je_free)(void *);

static inline size_t zm__be_usable(const void *p) { return sallocx(p, 0); }

static inline void *zm__be_sized(void *p, size_t size, size_t *usable) {
    if (usable && zm_likely(p != NULL)) *usable = nallocx(size, 0);
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

static inline void zm__be_free_sized(void *p, size_t size) { sdallocx(p, size, 0); }

static inline void *zm__be_raw_malloc(size_t size) { return zm__je_malloc(size); }
static inline void zm__be_raw_free(void *p) { zm__je_free(p); }

#endif
