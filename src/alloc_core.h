/* The allocation paths every entry point shares, zmalloc's (alloc.c) and the
 * preload library's (preload/interpose.c): the request check, one block-layer
 * call, one counter update. Each caller gets its own copy with its constant
 * arguments folded in. */
#ifndef ZM_ALLOC_CORE_H
#define ZM_ALLOC_CORE_H

#include <errno.h>
#include <stdalign.h>
#include <stddef.h>
#include <stdint.h>

#include "block.h"
#include "counter.h"

__attribute__((cold)) static void *fail(size_t *usable) {
    zm__count_nothing();
    if (usable) *usable = 0;
    errno = ENOMEM;
    return NULL;
}

/* ALLOC_ALIGNED (the preload library's memalign family) takes an alignment,
 * a power of two, which the other kinds ignore. */
enum alloc_kind { ALLOC_PLAIN, ALLOC_ZEROED, ALLOC_NO_TCACHE, ALLOC_ALIGNED };

/* The alignment passed with a kind that takes none. Any power of two would
 * do; 0 would not: glibc declares memalign with alloc_align, and clang 14
 * crashes (EarlyCSE, isKnownNonZero) on a memalign(0, n) it sees in a branch
 * the kind rules out. */
#define ALIGN_NONE alignof(max_align_t)

ZM_INLINE void *blk_alloc(size_t size, size_t *acct, enum alloc_kind kind, size_t align) {
    switch (kind) {
    case ALLOC_ZEROED: return zm__blk_calloc(size, acct);
    case ALLOC_NO_TCACHE: return zm__blk_malloc_no_tcache(size, acct);
    case ALLOC_ALIGNED: return zm__blk_memalign(align, size, acct);
    default: return zm__blk_malloc(size, acct);
    }
}

/* After the allocation, the count and the usable size. */
ZM_INLINE void *finish(void *p, size_t acct, size_t *usable) {
    if (usable) *usable = zm__blk_usable(p, acct);
    return p;
}

/* Requests that take the slow check (a limit is set, or the request is a
 * batch or more), out of line so the hot path stays one compare. */
__attribute__((noinline)) static void *alloc_checked(size_t size, size_t *usable,
                                                     enum alloc_kind kind, size_t align) {
    if (!zm__request_allowed(size)) return fail(usable);
    size_t acct;
    void *p = blk_alloc(size, &acct, kind, align);
    if (zm_unlikely(!p)) return fail(usable);
    zm__count_checked(size, (int64_t)acct);
    return finish(p, acct, usable);
}

/* The publish an allocation's count left to do, out of line: the fast path
 * then keeps nothing alive across a call. */
__attribute__((noinline, cold)) static void *publish_then_finish(void *p, zm__slot *s, int64_t b,
                                                                 size_t acct, size_t *usable) {
    zm__count_slow(s, b, (int64_t)acct);
    return finish(p, acct, usable);
}

ZM_INLINE void *alloc_generic(size_t size, size_t *usable, enum alloc_kind kind, size_t align) {
    if (zm_unlikely(!zm__request_small(size))) return alloc_checked(size, usable, kind, align);
    size_t acct;
    void *p = blk_alloc(size, &acct, kind, align);
    if (zm_unlikely(!p)) return fail(usable);
    zm__slot *s;
    int64_t b;
    if (zm__count_alloc((int64_t)acct, &s, &b)) return publish_then_finish(p, s, b, acct, usable);
    return finish(p, acct, usable);
}

/* The allocation fast path, where the build has one: the block layer's choice
 * of one file (ZM_BLK_ALLOC_FAST_PATH, block_direct.h says which and why):
 * alloc_fast_jemalloc.h (the private jemalloc's copy, with the publish
 * threshold), alloc_fast_copy.h (a backend's inline copy, then the count) or
 * alloc_fast_none.h. Each defines ZM_ALLOC_FAST (0 or 1) and
 * alloc_fast(size, &block, usable): 1 with the block, else 0 (nothing done). */
#include ZM_BLK_ALLOC_FAST_PATH

/* Where the fast path gives up, or (jemalloc) the thread's publish is due:
 * out of line, so that the fast path keeps nothing across a call (unused
 * where there is none). */
__attribute__((noinline, unused)) static void *alloc_plain_slow(size_t size, size_t *usable) {
    return alloc_generic(size, usable, ALLOC_PLAIN, ALIGN_NONE);
}

ZM_INLINE void *alloc_aligned_impl(size_t size, size_t *usable, enum alloc_kind kind,
                                   size_t align) {
    if (ZM_ALLOC_FAST && kind == ALLOC_PLAIN) {
        void *p;
        if (zm_likely(alloc_fast(size, &p, usable))) return p;
        return alloc_plain_slow(size, usable);
    }
    return alloc_generic(size, usable, kind, align);
}

ZM_INLINE void *alloc_impl(size_t size, size_t *usable, enum alloc_kind kind) {
    return alloc_aligned_impl(size, usable, kind, ALIGN_NONE);
}

/* Which free: sized, the allocator's plain one (the size unknown: where the
 * allocator counts, ZM_COUNT_FREE_SIZES 0), or bypassing the thread cache. */
enum free_kind { FREE_SIZED, FREE_PLAIN, FREE_NO_TCACHE };

ZM_INLINE void blk_free(void *ptr, size_t acct, enum free_kind kind) {
    switch (kind) {
#if !ZM_COUNT_FREE_SIZES /* only where the allocator counts; its backend has a plain free */
    case FREE_PLAIN: zm__be_free(ptr); break;
#endif
    case FREE_NO_TCACHE: zm__blk_free_no_tcache(ptr, acct); break;
    default: zm__blk_free(ptr, acct); break;
    }
}

/* The count a free left to the slow path, after the free, out of line. */
__attribute__((noinline, cold)) static void free_then_count(void *ptr, size_t acct,
                                                            enum free_kind kind, zm__slot *s,
                                                            int64_t b) {
    blk_free(ptr, acct, kind);
    zm__count_slow(s, b, -(int64_t)acct);
}

/* Counting first lets the compiler end zm_free with a jump to the backend. */
ZM_INLINE void free_counted(void *ptr, size_t acct, enum free_kind kind) {
    zm__slot *s;
    int64_t b;
    if (zm_unlikely(zm__count_free((int64_t)acct, &s, &b))) {
        free_then_count(ptr, acct, kind, s, b);
        return;
    }
    blk_free(ptr, acct, kind);
}

ZM_INLINE void free_impl(void *ptr, size_t acct) { free_counted(ptr, acct, FREE_SIZED); }

/* The sized part of every free: how it learns the block's size is the block
 * layer's choice of one file (ZM_BLK_FREE_PATH, block_direct.h and
 * block_size_header.h say which and why): free_copy.h (an inline copy of
 * the allocator's free), free_told.h (the free itself returns the size),
 * free_read.h (the size read inline, after a load-time check) or
 * free_asked.h (the size asked first). Each defines free_unknown_size(ptr) (not
 * free_sized: C23's <stdlib.h>, glibc 2.43's among them, declares that), which
 * takes NULL where ZM_BLK_FREE_TAKES_NULL is 1. */
#include ZM_BLK_FREE_PATH

ZM_INLINE void free_any_impl(void *ptr) {
    if (!ZM_COUNT_FREE_SIZES) {
        free_counted(ptr, 0, FREE_PLAIN); /* the allocator's free takes NULL, and so does the count */
        return;
    }
    free_unknown_size(ptr);
}

/* free(ptr), ptr possibly NULL. */
ZM_INLINE void free_maybe_null_impl(void *ptr) {
    if (ptr || ZM_BLK_FREE_TAKES_NULL || !ZM_COUNT_FREE_SIZES) free_any_impl(ptr);
}

/* NULL with size 0 means "freed", not a failure. Only growth is checked
 * against the limit: a realloc that does not raise used memory always may. */
ZM_INLINE void *realloc_impl(void *ptr, size_t size, size_t *usable) {
    if (!ptr) return alloc_impl(size, usable, ALLOC_PLAIN);
    if (zm__realloc_counts_itself(size)) {
        void *q = zm__blk_realloc(ptr, size, usable);
        return zm_likely(q != NULL) ? q : fail(usable);
    }
    size_t old = zm__blk_acct(ptr);
    if (size == 0) {
        free_impl(ptr, old);
        if (usable) *usable = 0;
        return NULL;
    }
    size_t growth = size > old ? size - old : 0;
    if (size >= (size_t)PTRDIFF_MAX || (!zm__request_small(growth) && !zm__request_allowed(growth)))
        return fail(usable);
    size_t acct;
    void *p = zm__blk_realloc(ptr, size, &acct);
    if (zm_unlikely(!p)) return fail(usable);
    zm__count_checked(growth, (int64_t)acct - (int64_t)old);
    return finish(p, acct, usable);
}

#endif
