/* Copies of tcmalloc's malloc and free fast paths (gperftools 2.10, 2.16,
 * 2.18): a pop from and a push onto the thread cache's free list for the
 * block's size class. tcmalloc's own pair is about 77 instructions; zmalloc
 * needs the block's size at both ends, which the list holds, so it does the
 * pop and the push itself instead of calling tcmalloc and then looking the
 * size up.
 *
 * The layout is read off each known build's tc_malloc and tc_free (the
 * offsets: tcmalloc_sizes.c's known builds): the thread's cache (a TLS word
 * whose offset is in a GOT slot; 2.10 has a second word, 8 bytes on, that
 * free reads), each class's free list 32 bytes at heap + 32 * class (head,
 * length, low-water mark, maximum length, overages, object size), the
 * cache's byte count at heap + 0x1000 and its limit at + 0x1004, the
 * request -> class array, and the malloc and delete hook words that send
 * tcmalloc's own calls the slow way while non-zero. tcmalloc_fast.c turns
 * the copies on for those builds only (GNU build ID and tc_version()) and
 * only if they pop and push exactly the blocks tcmalloc pops and pushes.
 * Whatever would take tcmalloc off its own fast path (an empty list, a list
 * or cache over its limit, a hook, a thread without a cache) the copies
 * decline, before changing anything, and tcmalloc's call does it all. */
#ifndef ZM_BACKEND_TCMALLOC_FAST_H
#define ZM_BACKEND_TCMALLOC_FAST_H

#include <stddef.h>
#include <stdint.h>

#include "internal.h"

#if defined(__x86_64__) && !defined(ZM_NO_FAST_PATHS)
#define ZM_TC_FAST 1

typedef struct zm__tcf_list {
    void *head;
    uint32_t length, lowater, max_length, overages;
    uint32_t object_size, pad;
} __attribute__((may_alias)) zm__tcf_list;

typedef void *__attribute__((may_alias)) zm__tcf_word;

/* bound and floor keep the copies off (every request and free declined)
 * until tcmalloc_fast.c has checked them. */
typedef struct zm__tcf_params {
    size_t bound;    /* requests below it take the malloc copy: 0 or 256 KiB + 1 */
    uintptr_t floor; /* frees of blocks at or above it take the free copy: UINTPTR_MAX or 1 */
    intptr_t tpoff;      /* malloc's thread cache word, from the thread pointer */
    intptr_t free_tpoff; /* free's */
    const unsigned char *class_of;            /* tcmalloc's request -> class array */
    const volatile uintptr_t *malloc_hooks;   /* non-zero: a new hook is set */
    const volatile uintptr_t *delete_hooks;   /* non-zero: a delete hook is set */
} zm__tcf_params;
extern ZM_HIDDEN zm__tcf_params zm__tcf;

/* Turns the copies on where they prove themselves (tcmalloc_fast.c). */
ZM_HIDDEN void zm__tcf_setup(void);

/* The thread's cache at TLS offset tpoff (zm__tcf.tpoff: malloc's;
 * zm__tcf.free_tpoff: free's); NULL without one. */
static inline unsigned char *zm__tcf_heap(intptr_t tpoff) {
    return *(unsigned char *const *)((unsigned char *)__builtin_thread_pointer() + tpoff);
}

/* tcmalloc's index into its class array: 8-byte steps to 1 KiB, then
 * 128-byte steps. */
static inline size_t zm__tcf_index(size_t size) {
    return size <= 1024 ? (size + 7) >> 3 : (size + 127 + (120 << 7)) >> 7;
}

static inline zm__tcf_list *zm__tcf_list_of(unsigned char *heap, size_t cl) {
    return (zm__tcf_list *)(heap + cl * 32);
}

/* The cache's byte count (signed in tcmalloc; kept unsigned here, where it
 * wraps the way tcmalloc's 32-bit arithmetic does). */
static inline uint32_t *zm__tcf_bytes(unsigned char *heap) {
    return (uint32_t *)(void *)(heap + 0x1000);
}

/* The pop: 1 with the block and its usable size (the class's object size),
 * or 0 (nothing done). size: at most 256 KiB. */
static inline int zm__tcf_pop(size_t size, void **out, size_t *usable) {
    size_t cl = zm__tcf.class_of[zm__tcf_index(size)];
    unsigned char *heap = zm__tcf_heap(zm__tcf.tpoff);
    if (zm_unlikely(heap == NULL || *zm__tcf.malloc_hooks != 0)) return 0;
    zm__tcf_list *l = zm__tcf_list_of(heap, cl);
    zm__tcf_word *block = l->head;
    uint32_t bytes = l->object_size; /* read once: the stores below may alias it */
    if (zm_unlikely(block == NULL)) return 0;
    l->head = *block;
    uint32_t length = l->length - 1;
    l->length = length;
    if (length < l->lowater) l->lowater = length;
    *zm__tcf_bytes(heap) -= bytes;
    *out = (void *)block;
    *usable = bytes;
    return 1;
}

/* The malloc copy: the pop, for the requests the load-time check passed. */
static inline int zm__tcf_malloc(size_t size, void **out, size_t *usable) {
    if (zm_unlikely(size >= zm__tcf.bound)) return 0;
    return zm__tcf_pop(size, out, usable);
}

/* The push of a block whose class the page cache gave (cl, 1..127): the
 * usable size, or 0 (nothing done) where tcmalloc's free would go past a
 * limit or has no cache or a hook to call. */
static inline size_t zm__tcf_free(void *p, size_t cl) {
    unsigned char *heap = zm__tcf_heap(zm__tcf.free_tpoff);
    if (zm_unlikely(heap == NULL || *zm__tcf.delete_hooks != 0)) return 0;
    zm__tcf_list *l = zm__tcf_list_of(heap, cl);
    uint32_t size = l->object_size; /* not 0 once pushed: 0 means "declined" */
    uint32_t length = l->length + 1;
    uint32_t bytes = *zm__tcf_bytes(heap) + size;
    if (zm_unlikely(size == 0 || length > l->max_length ||
                    (int32_t)bytes > *(const int32_t *)(const void *)(heap + 0x1004)))
        return 0;
    *(zm__tcf_word *)p = l->head;
    l->head = p;
    l->length = length;
    *zm__tcf_bytes(heap) = bytes;
    return size;
}
#endif

#endif
