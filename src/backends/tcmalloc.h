/* tcmalloc (gperftools). Allocation learns the usable size from a table of
 * tcmalloc's size classes, filled from tc_nallocx() at load time; a free
 * looks the size up once and passes it to tc_free_sized(). The lookup calls
 * tcmalloc's own implementation of it directly: tc_malloc_size() reaches the
 * same function through MallocExtension::instance() and a virtual call. */
#ifndef ZM_BACKEND_TCMALLOC_H
#define ZM_BACKEND_TCMALLOC_H

#include <gperftools/nallocx.h>
#include <gperftools/tcmalloc.h>
#include <stdint.h>

#include "internal.h"

#include "backends/tcmalloc_sizes.h"

/* 1 once the class tables agreed with tcmalloc (tcmalloc_sizes.h), -1 where
 * they did not, 0 before the load-time probe. Defined beside the probe
 * (tcmalloc.c), so that a program that links the static library and calls
 * nothing but zm_malloc and zm_free still links the probe. */
extern ZM_HIDDEN int zm__tc_classes_ok;

static inline size_t zm__be_usable(const void *p) {
    if (zm_likely(zm__tc_size_of != NULL)) return zm__tc_size_of(zm__tc_self, p);
    return tc_malloc_size((void *)p);
}

/* The usable size of p, a new block of n bytes: from the tables where they
 * agreed with real blocks; else asked of the block (e.g. under tcmalloc's
 * debug allocator, whose blocks are exactly the request); before the probe,
 * tc_nallocx() (tc_malloc_size() may allocate then, and the preload
 * library's malloc would come back here). */
static inline size_t zm__tc_usable_of_request(const void *p, size_t n) {
    if (zm_likely(zm__tc_classes_ok > 0)) {
        if (n <= ZM_TC_SMALL_MAX) return zm__tc_small[(n + 7) >> 3];
        if (n <= ZM_TC_LARGE_MAX) return zm__tc_large[(n + 127) >> 7];
    }
    return zm__tc_classes_ok == 0 ? tc_nallocx(n, 0) : zm__be_usable(p);
}

#include "backends/tcmalloc_fast.h"

#ifdef ZM_TC_FAST
ZM_HIDDEN size_t zm__tc_free_other(void *p); /* NULL too; returns the size freed */

#define ZM_BE_FAST_MALLOC 1
#define zm__be_fast_malloc zm__tcf_malloc

/* The free copy, its class from the page cache: the size freed, or 0
 * (declined: NULL and "copy off" in one compare, a cache miss, a class the
 * copy leaves to tcmalloc); then zm__tc_free_other(), out of line. */
#define ZM_BE_FREE_FAST 1
static inline size_t zm__be_free_fast(void *p) {
    if (zm_unlikely((uintptr_t)p < zm__tcf.floor)) return 0;
    uint64_t cl = zm__tc_cached_class(p);
    if (zm_unlikely(cl - 1 >= ZM_TC_CLASSES - 1)) return 0;
    return zm__tcf_free(p, cl);
}
#define zm__be_free_other zm__tc_free_other
#endif

#include "backends/fast_malloc.h"

#define ZM_BE_SIZES_CHECKED 1
/* Whether p is a block (not NULL) and the cache read is on: one compare. */
static inline int zm__be_sizes_inline_at(const void *p) {
    return zm_likely((uintptr_t)p >= zm__tc_inline_floor);
}
static inline size_t zm__be_usable_inline(const void *p) { return zm__tc_cached_usable(p); }

static inline void *zm__be_sized(void *p, size_t size, size_t *usable) {
    if (usable && zm_likely(p != NULL)) *usable = zm__tc_usable_of_request(p, size);
    return p;
}

static inline void *zm__be_malloc(size_t size, size_t *usable) {
    void *p;
    if (zm_likely(zm__be_fast_malloc_usable(size, usable, &p))) return p;
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

/* tcmalloc trusts a size hint: it takes the size class from it. A block
 * that memalign put in a span of its own (alignment of a page or more) has a
 * whole number of pages, which a size class of the same size would be
 * mistaken for: such a size goes unsaid. */
static inline void zm__be_free_sized(void *p, size_t size) {
    if (zm_unlikely((size & 8191) == 0)) tc_free(p);
    else tc_free_sized(p, size);
}

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
