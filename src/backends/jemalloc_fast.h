/* jemalloc's malloc fast path, copied into zm_malloc (private jemalloc only).
 *
 * Why: the private jemalloc counts every byte itself, so all zm_malloc adds
 * is a call into jemalloc's malloc, a NULL check for the OOM handler, and the
 * publish threshold. Even a bare call-through wrapper costs 13-16% of
 * jemalloc's 75-instruction pair. With the fast path here, zm_malloc is
 * jemalloc's malloc plus one compare (the publish threshold), and jemalloc's
 * own slow path is reached through zmalloc's (alloc.c), which keeps the OOM
 * handler, the limit, registration and failure injection.
 *
 * What it does is exactly what jemalloc 5.3.0's imalloc_fastpath() does for a
 * request of at most 4 KiB (SC_LOOKUP_MAXCLASS): size class from the lookup
 * tables; the thread's allocated-bytes counter plus that size against
 * jemalloc's own next-event threshold (0 while the thread's TSD is not
 * nominal, so a thread not set up yet falls through); then a pop from the
 * thread cache's bin, whose low-water mark is kept as jemalloc keeps it.
 *
 * The TSD offsets below are those of Debian's 5.3.0 and 5.3.1 x86-64 builds
 * (read off their malloc's and free's object code). The private jemalloc is linked into
 * libzmalloc at build time, so its layout cannot change after that: the
 * build (cmake/jemalloc_private.cmake) runs jemalloc_fast_check.c against the
 * very object it links, and compiles this in (ZM_JE_FAST_OK) only if the
 * copies agree with jemalloc's own malloc and free for every size. */
#ifndef ZM_BACKEND_JEMALLOC_FAST_H
#define ZM_BACKEND_JEMALLOC_FAST_H

#if defined(ZM_JE_PRIVATE) && (defined(ZM_JE_FAST_OK) || defined(ZM_JEF_CHECK)) && \
    defined(__x86_64__) && !defined(ZM_PRELOAD)
#define ZM_JE_FAST 1

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "internal.h"

/* The jemalloc release whose layout this is, and where its thread data
 * (tsd_t) puts the fields read here: 5.3.1 has 0x70 bytes more ahead of all
 * of them. cmake/jemalloc_private.cmake passes ZM_JEF_RELEASE from the
 * header of the jemalloc it links; the build check then holds the release
 * to its exact version string. */
#if defined(ZM_JEF_RELEASE) && ZM_JEF_RELEASE == 531
#define ZM_JEF_VERSION "5.3.1-0-g81034ce1f1373e37dc865038e1bc8eeecf559ce8"
#define ZM_JEF_TSD 0x70
#else
#define ZM_JEF_VERSION "5.3.0-0-g54eaed1d8b56b1aa528be3bdd1877e59c56fa90c"
#define ZM_JEF_TSD 0
#endif

/* Offsets in jemalloc's tsd_t (Debian's x86-64 builds, read off their malloc's
 * and free's object code). */
#define ZM_JEF_ALLOCATED (0x338 + ZM_JEF_TSD)  /* thread_allocated: bytes allocated, ever */
#define ZM_JEF_NEXT_EVENT (0x340 + ZM_JEF_TSD) /* thread_allocated_next_event_fast */
#define ZM_JEF_BINS (0x360 + ZM_JEF_TSD)       /* tcache's cache_bin_t bins[], 24 bytes each */
#define ZM_JEF_BIN_BYTES 24
#define ZM_JEF_DEALLOCATED (0x348 + ZM_JEF_TSD)   /* thread_deallocated: bytes freed, ever */
#define ZM_JEF_DEALLOC_EVENT (0x350 + ZM_JEF_TSD) /* thread_deallocated_next_event_fast */
/* The rtree lookup cache: 16 entries of {leaf key, leaf}. A leaf holds one
 * element per 4 KiB page, in one of the two forms jemalloc 5.3.0 is built
 * with (the build check, cmake/jemalloc_private.cmake, finds which agrees):
 * - compact (Debian 12): 8-byte elements, a leaf per 1 GiB, the entry picked
 *   by address bits 30-33; size-class index in bits 48-63, "slab" in bit 0;
 * - wide (ZM_JEF_LEAF_WIDE; Debian 13, whose build leaves rtree leaves
 *   uncompacted): 16-byte elements {extent, metadata}, a leaf per 128 MiB,
 *   the entry picked by bits 27-30; in the metadata word "slab" in bit 0 and
 *   the size-class index from bit 5. */
#define ZM_JEF_RTREE_CACHE (0x1b0 + ZM_JEF_TSD)
#ifdef ZM_JEF_LEAF_WIDE
#define ZM_JEF_LEAF_BITS 27 /* log2 of the bytes a leaf covers */
#define ZM_JEF_ELM_SHIFT 4  /* log2 of an element's bytes */
#define ZM_JEF_ELM_META 8   /* the metadata word's offset in an element */
#define ZM_JEF_IND_SHIFT 5
typedef uint32_t __attribute__((may_alias)) zm__jef_meta; /* jemalloc's atomic_u_t */
#else
#define ZM_JEF_LEAF_BITS 30
#define ZM_JEF_ELM_SHIFT 3
#define ZM_JEF_ELM_META 0
#define ZM_JEF_IND_SHIFT 48
typedef uint64_t __attribute__((may_alias)) zm__jef_meta;
#endif
/* Offsets in cache_bin_t. */
#define ZM_JEF_BIN_HEAD 0x00      /* void **stack_head */
#define ZM_JEF_BIN_NREQUESTS 0x08 /* uint64_t: statistics */
#define ZM_JEF_BIN_LOW_WATER 0x10 /* uint16_t: low bits of the low-water head */
#define ZM_JEF_BIN_FULL 0x12      /* uint16_t: low bits of the head when full */
#define ZM_JEF_BIN_EMPTY 0x14     /* uint16_t: low bits of the head when empty */

extern ZM_HIDDEN __thread unsigned char zm__jep_tsd_tls[]
    __attribute__((tls_model("initial-exec")));
extern ZM_HIDDEN const uint8_t zm__jep_sz_size2index_tab[];
extern ZM_HIDDEN const size_t zm__jep_sz_index2size_tab[];

/* The largest request jemalloc's fast path serves (SC_LOOKUP_MAXCLASS). */
#define ZM_JEF_MAX_REQUEST 4096

/* The gates, opened by jemalloc.c at load (fast_path.h: unless switched off,
 * and only for the version checked at build time): requests up to
 * zm__jef_max take the malloc copy (ZM_JEF_MAX_REQUEST when open, else 0);
 * pointers at or above zm__jef_floor take the free copy (1 when open, else
 * UINTPTR_MAX: one compare covers NULL too). The build-time check runs the
 * copies with the gates open. */
#ifdef ZM_JEF_CHECK
#define zm__jef_max ((size_t)ZM_JEF_MAX_REQUEST)
#define zm__jef_floor ((uintptr_t)1)
#else
extern ZM_HIDDEN size_t zm__jef_max;
extern ZM_HIDDEN uintptr_t zm__jef_floor;
#endif

typedef uint64_t __attribute__((may_alias)) zm__jef_u64;
typedef uint16_t __attribute__((may_alias)) zm__jef_u16;
typedef void **__attribute__((may_alias)) zm__jef_head;

/* Puts a block of `size` bytes from the thread cache in *out and its size
 * class in *usable, and returns 1; or returns 0 where jemalloc's own fast
 * path would take its slow path, or where the thread's allocated bytes would
 * pass `threshold` (end <= threshold: fast). (A flag, not NULL: the compiler
 * cannot know that a popped block is never NULL.) The counter store is atomic
 * (relaxed: a plain store on x86-64) because readers in other threads load it. */
ZM_INLINE int zm__jef_malloc(size_t size, uint64_t threshold, void **out, size_t *usable) {
    if (zm_unlikely(size > zm__jef_max)) return 0;
    unsigned ind = zm__jep_sz_size2index_tab[(size + 7) >> 3];
    size_t usize = zm__jep_sz_index2size_tab[ind];
    unsigned char *tsd = zm__jep_tsd_tls;
    uint64_t after = *(zm__jef_u64 *)(tsd + ZM_JEF_ALLOCATED) + usize;
    if (zm_unlikely(after >= *(zm__jef_u64 *)(tsd + ZM_JEF_NEXT_EVENT) || after > threshold))
        return 0;
    unsigned char *bin = tsd + ZM_JEF_BINS + (size_t)ind * ZM_JEF_BIN_BYTES;
    void **head = *(zm__jef_head *)(bin + ZM_JEF_BIN_HEAD);
    void *ret = *head;
    uint16_t low = (uint16_t)(uintptr_t)head;
    if (zm_unlikely(low == *(zm__jef_u16 *)(bin + ZM_JEF_BIN_LOW_WATER))) {
        if (low == *(zm__jef_u16 *)(bin + ZM_JEF_BIN_EMPTY)) return 0;
        *(zm__jef_u16 *)(bin + ZM_JEF_BIN_LOW_WATER) = (uint16_t)(uintptr_t)(head + 1);
    }
    *(zm__jef_head *)(bin + ZM_JEF_BIN_HEAD) = head + 1;
    __atomic_store_n((zm__jef_u64 *)(tsd + ZM_JEF_ALLOCATED), after, __ATOMIC_RELAXED);
    *(zm__jef_u64 *)(bin + ZM_JEF_BIN_NREQUESTS) += 1;
    *usable = usize;
    *out = ret;
    return 1;
}

/* Frees a block into the thread cache as jemalloc 5.3.0's free_fastpath()
 * does and returns 1; or returns 0 where that would take jemalloc's slow path:
 * the block's leaf not in the lookup cache, a block not from a slab, a full
 * bin, or the thread's freed bytes reaching jemalloc's threshold, which is 0
 * while the TSD is not nominal and, by counter.c, while the thread has no
 * slot (so its frees reach zm__count_unslotted()). */
/* ptr's element in jemalloc's rtree through the thread's lookup cache, in
 * *bits; 0 when its leaf is not cached (only then is nothing read through the
 * cached leaf pointer). */
ZM_INLINE int zm__jef_leaf_bits(const void *ptr, uint64_t *bits) {
    uintptr_t a = (uintptr_t)ptr;
    unsigned char *entry = zm__jep_tsd_tls + ZM_JEF_RTREE_CACHE + ((a >> (ZM_JEF_LEAF_BITS - 4)) & 0xf0);
    if (zm_unlikely(*(zm__jef_u64 *)entry != (a & ~(((uintptr_t)1 << ZM_JEF_LEAF_BITS) - 1)))) return 0;
    size_t page = (a >> 12) & (((size_t)1 << (ZM_JEF_LEAF_BITS - 12)) - 1);
    const unsigned char *leaf = *(unsigned char *const *)(entry + 8);
    *bits = *(const zm__jef_meta *)(leaf + (page << ZM_JEF_ELM_SHIFT) + ZM_JEF_ELM_META);
    return 1;
}

ZM_INLINE int zm__jef_free(void *ptr) {
    unsigned char *tsd = zm__jep_tsd_tls;
    uint64_t bits;
    if (zm_unlikely((uintptr_t)ptr < zm__jef_floor)) return 0;
    if (zm_unlikely(!zm__jef_leaf_bits(ptr, &bits) || !(bits & 1))) return 0;
    unsigned ind = (unsigned)(bits >> ZM_JEF_IND_SHIFT);
    uint64_t after = *(zm__jef_u64 *)(tsd + ZM_JEF_DEALLOCATED) + zm__jep_sz_index2size_tab[ind];
    if (zm_unlikely(after >= *(zm__jef_u64 *)(tsd + ZM_JEF_DEALLOC_EVENT))) return 0;
    unsigned char *bin = tsd + ZM_JEF_BINS + (size_t)ind * ZM_JEF_BIN_BYTES;
    void **head = *(zm__jef_head *)(bin + ZM_JEF_BIN_HEAD);
    if (zm_unlikely((uint16_t)(uintptr_t)head == *(zm__jef_u16 *)(bin + ZM_JEF_BIN_FULL))) return 0;
    head--;
    *(zm__jef_head *)(bin + ZM_JEF_BIN_HEAD) = head;
    *head = ptr;
    __atomic_store_n((zm__jef_u64 *)(tsd + ZM_JEF_DEALLOCATED), after, __ATOMIC_RELAXED);
    return 1;
}

/* Sends the calling thread's next frees to the slow path (see above). */
static inline void zm__jef_slow_frees(void) {
    *(zm__jef_u64 *)(zm__jep_tsd_tls + ZM_JEF_DEALLOC_EVENT) = 0;
}

/* Nonzero while the calling thread has a slot (counter.h). */
extern ZM_HIDDEN __thread char zm__tls_slotted __attribute__((tls_model("initial-exec")));

/* After a call into jemalloc that counts nothing (mallctl, sallocx, a failed
 * allocation): any of them may set up the thread's TSD in full, which
 * reopens jemalloc's free fast path; a thread without a slot closes it
 * again. */
static inline void zm__jef_after_uncounted_call(void) {
    if (zm_unlikely(!zm__tls_slotted)) zm__jef_slow_frees();
}

#endif
#endif
