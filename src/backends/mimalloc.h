/* mimalloc. Its usable-size lookup is a mask and two loads (segment, page),
 * cheap enough to ask after every allocation; a free hands the size to
 * mi_free_size(). */
#ifndef ZM_BACKEND_MIMALLOC_H
#define ZM_BACKEND_MIMALLOC_H

#include <mimalloc.h>

#include "internal.h"

static inline size_t zm__be_usable(const void *p) { return mi_usable_size(p); }

static inline void *zm__be_done(void *p, size_t *usable) {
    if (usable && zm_likely(p != NULL)) *usable = mi_usable_size(p);
    return p;
}

static inline void *zm__be_malloc(size_t size, size_t *usable) {
    return zm__be_done(mi_malloc(size), usable);
}

static inline void *zm__be_calloc(size_t size, size_t *usable) {
    return zm__be_done(mi_zalloc(size), usable);
}

static inline void *zm__be_realloc(void *p, size_t size, size_t *usable) {
    return zm__be_done(mi_realloc(p, size), usable);
}

static inline void zm__be_free_sized(void *p, size_t size) { mi_free_size(p, size); }

static inline void *zm__be_raw_malloc(size_t size) { return mi_malloc(size); }
static inline void zm__be_raw_free(void *p) { mi_free(p); }

#endif
