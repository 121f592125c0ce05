/* mimalloc. A new block's usable size is its bin size, computed inline from
 * the request; mimalloc.c checks at load time that the formula agrees with
 * real blocks for every bin up to zm__mi_bins_max, and beyond it (or if the
 * formula ever disagrees) the block is asked (mi_usable_size). A free reads
 * the size inline from the block's page, as mi_usable_size() itself does
 * (checked at load time the same way), and calls mi_free(). The page read
 * and the copies of mi_malloc's pop and mi_free's push are written per major
 * release: 2.0's segments (mimalloc2.h) and 3's page map (mimalloc3.h). */
#ifndef ZM_BACKEND_MIMALLOC_H
#define ZM_BACKEND_MIMALLOC_H

#include <mimalloc.h>
#include <stdint.h>
#include <string.h>

#include "internal.h"

extern ZM_HIDDEN size_t zm__mi_bins_max; /* zm__mi_bin_size() is exact below this (0: never) */

/* mimalloc's bins in 8-byte words, as Debian builds it (MI_ALIGN2W): one
 * word, then even word counts up to 8, then four bins per doubling. Without
 * branches: a request of random size would mispredict them. Even counts up
 * to 8 words are the same rounding as four per doubling with a floor of 2. */
static inline size_t zm__mi_bin_size(size_t n) {
    size_t w = (n + 7) >> 3;
    unsigned b = 63 - (unsigned)__builtin_clzll((unsigned long long)((w - 1) | 1)); /* 2^b <= w-1 */
    unsigned shift = (b > 3 ? b : 3) - 2;
    size_t step = (size_t)1 << shift;
    size_t words = (w + step - 1) & ~(step - 1);
    return (w <= 1 ? 1 : words) << 3;
}

/* zm__mi_bin_size() of requests up to ZM_MI_TABLE_MAX bytes, by (n + 7) / 8:
 * one load instead of a dozen instructions on the most common path. Filled
 * at load time; until then zm__mi_table_bound is 0 and nothing reads it. */
#define ZM_MI_TABLE_MAX 4096
extern ZM_HIDDEN uint16_t zm__mi_table[ZM_MI_TABLE_MAX / 8 + 1];
extern ZM_HIDDEN size_t zm__mi_table_bound; /* ZM_MI_TABLE_MAX + 1 once filled and checked */

static inline size_t zm__mi_usable_of_request(const void *p, size_t size) {
    if (zm_likely(size < zm__mi_table_bound)) return zm__mi_table[(size + 7) >> 3];
    return zm_likely(size < zm__mi_bins_max) ? zm__mi_bin_size(size) : mi_usable_size(p);
}

static inline void *zm__be_done(void *p, size_t *usable) {
    if (usable && zm_likely(p != NULL)) *usable = mi_usable_size(p);
    return p;
}

static inline void *zm__be_sized(void *p, size_t size, size_t *usable) {
    if (usable && zm_likely(p != NULL)) *usable = zm__mi_usable_of_request(p, size);
    return p;
}

#if MI_MALLOC_VERSION < 300
#include "backends/mimalloc2.h"
#else
#include "backends/mimalloc3.h"
#endif
#include "backends/fast_malloc.h"

/* Past the copy (declined, or off): mimalloc's call, out of line, so that
 * the copy needs no frame. */
__attribute__((noinline)) static void *zm__mi_malloc_called(size_t size, size_t *usable) {
    return zm__be_sized(mi_malloc(size), size, usable);
}

static inline void *zm__be_malloc(size_t size, size_t *usable) {
    void *p;
    if (zm_likely(zm__be_fast_malloc_usable(size, usable, &p))) return p;
    return zm__mi_malloc_called(size, usable);
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

/* align: a power of two. mimalloc 2.0.9's mi_malloc_aligned() may return a
 * block that is not aligned when size is a multiple of align (it then takes
 * a plain block, trusting its size classes to be naturally aligned, which a
 * page's first blocks need not be): such a block goes back, and size + 1,
 * no multiple, takes its over-allocating path. */
#define ZM_BE_MEMALIGN 1
static inline void *zm__be_memalign(size_t align, size_t size, size_t *usable) {
    void *p = mi_malloc_aligned(size, align);
    if (zm_unlikely(p != NULL && ((uintptr_t)p & (align - 1)) != 0)) {
        mi_free(p);
        p = mi_malloc_aligned(size + 1, align);
    }
    return zm__be_done(p, usable);
}

static inline void *zm__be_raw_malloc(size_t size) { return mi_malloc(size); }
static inline void zm__be_raw_free(void *p) { mi_free(p); }

#endif
