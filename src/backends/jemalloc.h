/* jemalloc. Debian's jemalloc is unprefixed: its malloc is the program's
 * malloc only when the program links it ahead of libc. This backend uses
 * jemalloc's own malloc and free (their fast paths are much shorter than
 * mallocx's and dallocx's) through pointers that jemalloc.c finds at load
 * time in jemalloc's library, whether or not they are the program's malloc,
 * and otherwise only names jemalloc alone has (mallocx, sallocx, sdallocx).
 *
 * No size lookup on the hot path:
 * - a new block's usable size is its size class, computed inline from the
 *   request (jemalloc.c checks the formula against nallocx() at load time and
 *   falls back to nallocx() if they ever disagree);
 * - a freed block's usable size is what jemalloc's own per-thread counter of
 *   deallocated bytes ("thread.deallocatedp") moved during the free: exact
 *   for the block, whatever else the process does with jemalloc, since only
 *   this thread writes that counter. (Read through a volatile pointer: the
 *   compiler assumes free() writes no memory its caller can see.) */
#ifndef ZM_BACKEND_JEMALLOC_H
#define ZM_BACKEND_JEMALLOC_H

#include <stdint.h>

#include "internal.h"

#ifdef ZM_JE_PRIVATE
/* A private jemalloc inside libzmalloc (cmake/jemalloc_private.cmake): its
 * malloc and free are called directly, and jemalloc's own per-thread
 * counters are the accounting (counter.h), so the wrapper counts nothing. */
#include "backends/jemalloc_fast.h"
#include "backends/jemalloc_names.h"
#define zm__je_malloc zm__jep_malloc
#define zm__je_free zm__jep_free
/* The calling thread's jemalloc counters of allocated and deallocated bytes
 * (mallctl "thread.allocatedp" and "thread.deallocatedp"); 0 on success. */
ZM_HIDDEN int zm__be_thread_counters(const volatile uint64_t **allocated,
                                     const volatile uint64_t **deallocated);
static inline void zm__be_free(void *p) { zm__jep_free(p); }
#else
#include <jemalloc/jemalloc.h>
extern ZM_HIDDEN void *(*zm__je_malloc)(size_t);
extern ZM_HIDDEN void (*zm__je_free)(void *);
extern ZM_HIDDEN int zm__je_own_malloc; /* malloc/free above are jemalloc's own (not mallocx/dallocx) */
#endif
extern ZM_HIDDEN int zm__je_classes_ok;       /* zm__je_size_class() matches nallocx() */
/* jemalloc 5.3.1 gives a request above its small classes whole pages, not a
 * large size class (its opt.disable_large_size_classes, on by default; 5.3.0
 * has no such option). Read from jemalloc at load: its largest small class
 * and its page size less one there, SIZE_MAX and 0 where large classes stay. */
extern ZM_HIDDEN size_t zm__je_pages_above, zm__je_page_mask;

/* jemalloc's size classes for 16-byte quanta and four classes per doubling:
 * 8, then multiples of 16 up to 128, then steps of a quarter of the
 * power of two below (or, above zm__je_pages_above, whole pages). */
static inline size_t zm__je_size_class(size_t n) {
    if (n <= 8) return 8;
    if (n <= 128) return (n + 15) & ~(size_t)15;
    if (zm_unlikely(n > zm__je_pages_above)) return (n + zm__je_page_mask) & ~zm__je_page_mask;
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

/* mallocx(0) is undefined: ask for 1 (jemalloc's own malloc(0) does the same). */
static inline void *zm__be_malloc(size_t size, size_t *usable) {
#ifndef ZM_JE_PRIVATE
    size += size == 0;
#endif
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

/* The caller knows the size: jemalloc's sized free skips its own lookup. */
static inline void zm__be_free_sized(void *p, size_t size) { sdallocx(p, size, 0); }

#ifndef ZM_JE_PRIVATE
/* The calling thread's jemalloc counter of deallocated bytes: NULL until the
 * thread's first free looks it up. */
extern ZM_HIDDEN __thread volatile uint64_t *zm__je_deallocated
    __attribute__((tls_model("initial-exec")));
/* Looks it up (mallctl); NULL if jemalloc has none. */
ZM_HIDDEN volatile uint64_t *zm__je_find_deallocated(void);

#define ZM_BE_FREE_COUNTED 1
static inline size_t zm__be_free_counted(void *p) {
    volatile uint64_t *d = zm__je_deallocated;
    if (zm_unlikely(!d) && !(d = zm__je_find_deallocated())) {
        size_t size = sallocx(p, 0);
        sdallocx(p, size, 0);
        return size;
    }
    uint64_t before = *d;
    zm__je_free(p);
    return (size_t)(*d - before);
}
#endif

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

/* align: a power of two. */
#define ZM_BE_MEMALIGN 1
static inline void *zm__be_memalign(size_t align, size_t size, size_t *usable) {
    size += size == 0;
    void *p = mallocx(size, MALLOCX_ALIGN(align));
    if (usable && zm_likely(p != NULL)) *usable = zm__be_usable(p);
    return p;
}

static inline void *zm__be_raw_malloc(size_t size) { return zm__je_malloc(size); }
static inline void zm__be_raw_free(void *p) { zm__je_free(p); }

#endif
