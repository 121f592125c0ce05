/* mimalloc. A new block's usable size is its bin size, computed inline from
 * the request; mimalloc.c checks at load time that the formula agrees with
 * real blocks for every bin up to zm__mi_bins_max, and beyond it (or if the
 * formula ever disagrees) the block is asked (mi_usable_size). A free looks
 * the size up once (for the count) and calls mi_free(). */
#ifndef ZM_BACKEND_MIMALLOC_H
#define ZM_BACKEND_MIMALLOC_H

#include <mimalloc.h>

#include "internal.h"

static inline size_t zm__be_usable(const void *p) { return mi_usable_size(p); }

extern ZM_HIDDEN size_t zm__mi_bins_max; /* zm__mi_bin_size() is exact below this (0: never) */

/* mimalloc's bins in 8-byte words, as Debian builds it (MI_ALIGN2W): one
 * word, then even word counts up to 8, then four bins per doubling. */
static inline size_t zm__mi_bin_size(size_t n) {
    size_t w = (n + 7) >> 3;
    if (w <= 1) return 8;
    if (w <= 8) return ((w + 1) & ~(size_t)1) << 3;
    unsigned b = 63 - (unsigned)__builtin_clzll((unsigned long long)(w - 1)); /* 2^b < w <= 2^(b+1) */
    size_t step = (size_t)1 << (b - 2);
    return ((w + step - 1) & ~(step - 1)) << 3;
}

static inline void *zm__be_done(void *p, size_t *usable) {
    if (usable && zm_likely(p != NULL)) *usable = mi_usable_size(p);
    return p;
}

static inline void *zm__be_sized(void *p, size_t size, size_t *usable) {
    if (usable && zm_likely(p != NULL))
        *usable = zm_likely(size < zm__mi_bins_max) ? zm__mi_bin_size(size) : mi_usable_size(p);
    return p;
}

static inline void *zm__be_malloc(size_t size, size_t *usable) {
    return zm__be_sized(mi_malloc(size), size, usable);
}

static inline void *zm__be_calloc(size_t size, size_t *usable) {
    return zm__be_sized(mi_zalloc(size), size, usable);
}

static inline void *zm__be_realloc(void *p, size_t size, size_t *usable) {
    return zm__be_done(mi_realloc(p, size), usable);
}

/* mi_free_size() only checks the size in mimalloc's debug builds, and valgrind
 * takes it for a sized operator delete[]: plain mi_free() does the same job. */
static inline void zm__be_free_sized(void *p, size_t size) {
    (void)size;
    mi_free(p);
}

/* align: a power of two. */
#define ZM_BE_MEMALIGN 1
static inline void *zm__be_memalign(size_t align, size_t size, size_t *usable) {
    return zm__be_done(mi_malloc_aligned(size, align), usable);
}

static inline void *zm__be_raw_malloc(size_t size) { return mi_malloc(size); }
static inline void zm__be_raw_free(void *p) { mi_free(p); }

#endif
