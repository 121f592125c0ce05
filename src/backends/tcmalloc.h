/* tcmalloc (gperftools). Allocation learns the usable size from
 * tc_nallocx(), a size-class computation; a free looks the size up once
 * (tc_malloc_size) and passes it to tc_free_sized(). */
#ifndef ZM_BACKEND_TCMALLOC_H
#define ZM_BACKEND_TCMALLOC_H

#include <gperftools/nallocx.h>
#include <gperftools/tcmalloc.h>

#include "internal.h"

static inline size_t zm__be_usable(const void *p) { return tc_malloc_size((void *)p); }

static inline void *zm__be_sized(void *p, size_t size, size_t *usable) {
    if (usable && zm_likely(p != NULL)) *usable = tc_nallocx(size, 0);
    return p;
}

static inline void *zm__be_malloc(size_t size, size_t *usable) {
    return zm__be_sized(tc_malloc(size), size, usable);
}

static inline void *zm__be_calloc(size_t size, size_t *usable) {
    return zm__be_sized(tc_calloc(1, size), size, usable);
}

/* tc_realloc keeps a block that still fits: ask for the size it ended with. */
static inline void *zm__be_realloc(void *p, size_t size, size_t *usable) {
    void *q = tc_realloc(p, size);
    if (usable && zm_likely(q != NULL)) *usable = zm__be_usable(q);
    return q;
}

static inline void zm__be_free_sized(void *p, size_t size) { tc_free_sized(p, size); }

/* align: a power of two. */
#define ZM_BE_MEMALIGN 1
static inline void *zm__be_memalign(size_t align, size_t size, size_t *usable) {
    void *p = tc_memalign(align, size);
    if (usable && zm_likely(p != NULL)) *usable = zm__be_usable(p);
    return p;
}

static inline void *zm__be_raw_malloc(size_t size) { return tc_malloc(size); }
static inline void zm__be_raw_free(void *p) { tc_free(p); }

#endif
