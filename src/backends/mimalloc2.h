/* mimalloc 2.0's hot path, for Debian 12's build (mimalloc 2.0.9; mimalloc2.c
 * turns each part on only for that build, by mi_version() and GNU build ID,
 * and only after a trial against mimalloc itself): a block's size read from
 * its page, and copies of mi_malloc's pop and mi_free's push. */
#ifndef ZM_BACKEND_MIMALLOC2_H
#define ZM_BACKEND_MIMALLOC2_H

#include <stdint.h>
#include <string.h>

#include "internal.h"

#include ZM_MIMALLOC_API

extern ZM_HIDDEN int zm__mi_pages_ok; /* zm__mi_page_usable() agrees with mi_usable_size() */

/* A block's usable size read from its page, the way mimalloc 2.0's
 * mi_usable_size() finds it in Debian's 64-bit build (the layout is read off
 * its object code: 32 MiB segments, 64 KiB slices, a table of 80-byte slice
 * entries at offset 0x108 of the segment; in an entry, at +4, the distance
 * back to the page's first entry; in a page, bit 1 of the byte at +0x0e says
 * "has aligned blocks", and +0x1c is the block size, huge when above
 * 2^31 - 1). 0 where mi_usable_size() must be asked: an aligned block's page,
 * a huge block. */
/* The segment holding p, and the page: p's slice entry, less its distance
 * back to the page's first entry. */
static inline uintptr_t zm__mi_segment_of(const void *p) {
    return ((uintptr_t)p - 1) & ~(((uintptr_t)1 << 25) - 1);
}
static inline unsigned char *zm__mi_page_of(const void *p) {
    uintptr_t seg = zm__mi_segment_of(p);
    unsigned char *entry = (unsigned char *)seg + 0x108 + (((uintptr_t)p - seg) >> 16) * 80;
    uint32_t back;
    memcpy(&back, entry + 4, sizeof back);
    return entry - back;
}

static inline size_t zm__mi_page_usable(const void *p) {
    const unsigned char *page = zm__mi_page_of(p);
    int32_t size; /* negative: above 2^31 - 1, a huge block */
    if (page[0x0e] & 2) return 0;
    memcpy(&size, page + 0x1c, sizeof size);
    return size > 0 ? (size_t)size : 0;
}

static inline size_t zm__be_usable(const void *p) {
    if (zm_likely(zm__mi_pages_ok)) {
        size_t n = zm__mi_page_usable(p);
        if (zm_likely(n != 0)) return n;
    }
    return mi_usable_size(p);
}

/* A free that returns the size it freed (ZM_BE_FREE_COUNTED; the count
 * follows the free). With the copy of mi_free's local path on
 * (zm__mi_inline_floor 1: Debian 12's build, checked at load, see
 * mimalloc2.c), the page found for the size serves the free too: a block of
 * this thread's segment goes onto the page's local free list as mi_free()
 * puts it, and where that leaves the page with no block in use, mimalloc's
 * own page retire follows, as in mi_free(); another thread's block goes to
 * mi_free(). A page with flags (full, or holding aligned blocks), a huge
 * block, and NULL (the floor makes that one compare) go out of line. */
extern ZM_HIDDEN uintptr_t zm__mi_inline_floor; /* 1 once the local free is on, else UINTPTR_MAX */
extern ZM_HIDDEN void (*zm__mi_retire)(void *page); /* mimalloc's _mi_page_retire */
ZM_HIDDEN size_t zm__mi_free_other(void *p);        /* NULL too; returns the size freed */

#define ZM_BE_FREE_COUNTED 1
#define ZM_BE_FREE_TAKES_NULL 1

/* mimalloc's calls, out of line, so that the copy needs no frame. */
__attribute__((noinline)) static size_t zm__mi_retire_called(unsigned char *page, size_t size) {
    zm__mi_retire(page);
    return size;
}
__attribute__((noinline)) static size_t zm__mi_free_called(void *p, size_t size) {
    mi_free(p); /* another thread's block */
    return size;
}

/* The free past the floor: p is a block, the copy on (or on trial). */
static inline size_t zm__mi_free_local(void *p) {
    unsigned char *page = zm__mi_page_of(p);
    int32_t size;
    memcpy(&size, page + 0x1c, sizeof size);
    uintptr_t owner; /* the thread that owns the segment */
    memcpy(&owner, (const void *)(zm__mi_segment_of(p) + 0x100), sizeof owner);
    if (zm_unlikely(page[0x0e] != 0 || size <= 0)) return zm__mi_free_other(p);
    if (zm_unlikely(owner != (uintptr_t)__builtin_thread_pointer()))
        return zm__mi_free_called(p, (size_t)size);
    uint32_t used;
    memcpy(&used, page + 0x18, sizeof used);
    memcpy(p, page + 0x20, sizeof(void *)); /* block->next = page->local_free */
    memcpy(page + 0x20, &p, sizeof p);
    used--;
    memcpy(page + 0x18, &used, sizeof used);
    if (zm_unlikely(used == 0)) return zm__mi_retire_called(page, (size_t)size);
    return (size_t)size;
}

static inline size_t zm__be_free_counted(void *p) {
    if (zm_unlikely((uintptr_t)p < zm__mi_inline_floor)) return zm__mi_free_other(p);
    return zm__mi_free_local(p);
}

/* mimalloc's malloc fast path, copied: the thread's default heap (a TLS
 * word of libmimalloc.so), its page for the request's word count, a pop from
 * that page's free list; the block size comes with the page. The TLS offset
 * and the layout (heap: pages_free_direct at +8; page: free at +0x10, used at
 * +0x18) are those of Debian 12's libmimalloc.so.2.0 build (read off
 * mi_malloc's object code): mimalloc.c turns this on only for that very build
 * (its GNU build ID) and only if, at load, it pops exactly the blocks
 * mi_malloc pops. zm__mi_fast_bound: 1025 when on, 0 when off. */
extern ZM_HIDDEN size_t zm__mi_fast_bound;
extern ZM_HIDDEN intptr_t zm__mi_heap_tpoff;

typedef void *__attribute__((may_alias)) zm__mi_word;

#define ZM_BE_FAST_MALLOC 1
#define zm__be_fast_malloc zm__mi_fast_malloc
/* The calling thread's default heap, and its page for requests of `size`
 * (pages_free_direct, by word count). */
static inline unsigned char *zm__mi_heap(void) {
    return *(unsigned char *const *)((unsigned char *)__builtin_thread_pointer() + zm__mi_heap_tpoff);
}
static inline unsigned char *zm__mi_direct_page(const unsigned char *heap, size_t size) {
    return *(unsigned char *const *)(heap + 8 + ((size + 7) >> 3) * 8);
}

/* The pop, for any request up to 1 KiB. */
static inline int zm__mi_pop(size_t size, void **out, size_t *usable) {
    unsigned char *page = zm__mi_direct_page(zm__mi_heap(), size);
    zm__mi_word *block = *(zm__mi_word **)(page + 0x10);
    if (zm_unlikely(block == NULL)) return 0;
    *(zm__mi_word *)(page + 0x10) = *block;
    uint32_t used, bytes;
    memcpy(&used, page + 0x18, sizeof used);
    used++;
    memcpy(page + 0x18, &used, sizeof used);
    memcpy(&bytes, page + 0x1c, sizeof bytes);
    *out = (void *)block;
    *usable = bytes;
    return 1;
}

static inline int zm__mi_fast_malloc(size_t size, void **out, size_t *usable) {
    if (zm_unlikely(size >= zm__mi_fast_bound)) return 0;
    return zm__mi_pop(size, out, usable);
}

#endif
