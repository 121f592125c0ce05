/* The C library's malloc. On glibc the usable size of a block sits in the
 * chunk header just before it; reading it inline costs a load, where a call to
 * malloc_usable_size() costs as much as the malloc itself. libc.c switches
 * that fast path on only after checking at load time that malloc really is
 * glibc's and that the header reads agree with malloc_usable_size(); under
 * sanitizers, valgrind or an interposed malloc it stays off. */
#ifndef ZM_BACKEND_LIBC_H
#define ZM_BACKEND_LIBC_H

#include <malloc.h>
#include <stdint.h>
#include <stdlib.h>

#include "internal.h"

#include "backends/glibc_chunks.h"

#ifdef ZM_GLIBC_CHUNKS
/* Whether the chunk reads are on (libc.c, at load: zm__glibc_chunks_try()).
 * Defined beside the load-time probe, so that a program that links the
 * static library and calls nothing but zm_malloc and zm_free still links
 * the probe. */
extern ZM_HIDDEN int zm__glibc_chunks_ok;
#ifndef ZM_PRELOAD
/* Whether p is a block (not NULL) whose size may be read inline: one compare
 * against a floor that is 1 once the chunk reads are on, UINTPTR_MAX before
 * (the copies' free has a floor of its own: they may be off while the reads
 * are on). */
extern ZM_HIDDEN uintptr_t zm__glibc_chunks_floor;
#endif
#endif

#ifdef ZM_PRELOAD
#ifndef ZM_GLIBC_CHUNKS
#error "the libc preload library reads glibc's chunk headers: glibc, no sanitizers"
#endif
static inline size_t zm__be_usable(const void *p) {
    return zm__glibc_chunk_usable(p); /* checked at load: libc.c stops the program otherwise */
}
#else
static inline size_t zm__be_usable(const void *p) {
#ifdef ZM_GLIBC_CHUNKS
    if (zm_likely(zm__glibc_chunks_ok)) return zm__glibc_chunk_usable(p);
#endif
    return malloc_usable_size((void *)p);
}
#endif

static inline void *zm__be_done(void *p, size_t *usable) {
    if (usable && zm_likely(p != NULL)) *usable = zm__be_usable(p);
    return p;
}

#include "backends/glibc_tcache.h"

#ifdef ZM_GLIBC_TCACHE
#define ZM_BE_FAST_MALLOC 1
#define zm__be_fast_malloc zm__gtc_malloc

/* A free that returns the size it freed (the count follows the free): the
 * copy, or 0 where it declines (one compare covers NULL and "copy off": the
 * floor is 1 once it is on, else UINTPTR_MAX); then glibc's free, out of
 * line. */
ZM_HIDDEN size_t zm__glibc_free_other(void *p); /* NULL too; returns the size freed */
#define ZM_BE_FREE_FAST 1
static inline size_t zm__be_free_fast(void *p) {
    if (zm_unlikely((uintptr_t)p < zm__glibc_inline_floor)) return 0;
    return zm__gtc_free(p);
}
#define zm__be_free_other zm__glibc_free_other
#endif

#include "backends/fast_malloc.h"

#if defined(ZM_GLIBC_CHUNKS) && !defined(ZM_PRELOAD)
/* The chunk reads, when they are on: the caller has asked
 * zm__be_sizes_inline() first (it is set once, at load time), so that no
 * call follows the allocation and the block need not be kept across one. */
#define ZM_BE_SIZES_CHECKED 1
static inline int zm__be_sizes_inline(void) { return zm_likely(zm__glibc_chunks_ok); }
static inline int zm__be_sizes_inline_at(const void *p) {
    return zm_likely((uintptr_t)p >= zm__glibc_chunks_floor);
}
static inline size_t zm__be_usable_inline(const void *p) {
    size_t n = zm__glibc_chunk_usable(p);
    if (n == 0) __builtin_unreachable(); /* a chunk holds at least 24 bytes: never declines */
    return n;
}

__attribute__((noinline, cold)) static void *zm__libc_malloc_asking(size_t size, size_t *usable) {
    return zm__be_done(malloc(size), usable);
}

static inline void *zm__be_malloc(size_t size, size_t *usable) {
    void *q;
    if (zm_likely(zm__be_fast_malloc_usable(size, usable, &q))) return q;
    if (usable && !zm__be_sizes_inline()) return zm__libc_malloc_asking(size, usable);
    void *p = malloc(size);
    if (usable && zm_likely(p != NULL)) *usable = zm__be_usable_inline(p);
    return p;
}
#else
static inline void *zm__be_malloc(size_t size, size_t *usable) {
    void *q;
    if (zm_likely(zm__be_fast_malloc_usable(size, usable, &q))) return q;
    return zm__be_done(ZM_LIBC(malloc)(size), usable);
}
#endif

static inline void *zm__be_calloc(size_t size, size_t *usable) {
    return zm__be_done(ZM_LIBC(calloc)(1, size), usable);
}

static inline void *zm__be_realloc(void *p, size_t size, size_t *usable) {
    return zm__be_done(ZM_LIBC(realloc)(p, size), usable);
}

/* The allocator's plain malloc and free, for benchmarks to compare against. */
static inline void *zm__be_raw_malloc(size_t size) { return ZM_LIBC(malloc)(size); }
static inline void zm__be_raw_free(void *p) { ZM_LIBC(free)(p); }

/* align: a power of two. */
#define ZM_BE_MEMALIGN 1
static inline void *zm__be_memalign(size_t align, size_t size, size_t *usable) {
    return zm__be_done(ZM_LIBC(memalign)(align, size), usable);
}

static inline void zm__be_free_sized(void *p, size_t size) {
    (void)size; /* glibc 2.36 has no free_sized() */
    ZM_LIBC(free)(p);
}

#endif
