/* mimalloc 3's hot path, per verified build (mimalloc3.c turns each part on
 * only for Debian 13's libmimalloc.so.3.0, mimalloc 3.0.1, and unstable's
 * libmimalloc.so.3.6, 3.6.0, by mi_version() and GNU build ID, and only
 * after a trial against mimalloc itself; the layout is read off each build's
 * mi_malloc, mi_free and mi_usable_size):
 *
 * - The page of a block: 3.0.1 keeps a two-level page map, a pointer in the
 *   library's data (_mi_page_map): [p >> 29][p >> 16 & 0x1fff] is the page.
 *   3.6.0 has no global: the 256 MiB-aligned region holding p starts with a
 *   table of 128-byte entries, one per 64 KiB slice, whose first word is the
 *   page.
 * - In a page: the owning thread's pointer with flags in its low bits (bit 1:
 *   the page has aligned blocks, whose size depends on where in the block p
 *   is), the free list, the local free list (where the owner's frees go), the
 *   block size, and a word whose low 16 bits count the blocks in use.
 * - The thread's heap ("theap"): a TLS word at an offset that a GOT slot of
 *   the library holds; in it, one page per request word count up to 1 KiB
 *   (pages_free_direct), an empty page's free list being NULL.
 *
 * The read gives a block's size for a free; the copies are mi_malloc's pop
 * (the page's free list head, one more in use) and mi_free's push of one of
 * the thread's own blocks onto its page's local free list. A copy declines,
 * before it changes anything, wherever mimalloc's own fast path would leave
 * it (an empty list, another thread's page, a page with flags), and
 * mimalloc's call does it all; a free that leaves its page empty calls
 * mimalloc's page retire, as mi_free() does. */
#ifndef ZM_BACKEND_MIMALLOC3_H
#define ZM_BACKEND_MIMALLOC3_H

#include <stdint.h>
#include <string.h>

#include "internal.h"

#include ZM_MIMALLOC_API

typedef void *__attribute__((may_alias)) zm__mi_word;

/* The layout, fixed at compile time by the release whose header this is
 * (constants, not loads, on the hot path): mimalloc3.c turns it on only
 * where the library loaded is that release's verified build. */
#if MI_MALLOC_VERSION == 301
#define ZM_MI3_RELEASE "3.0.1"
#define ZM_MI3_DIRECT_AT 0xd8 /* pages_free_direct in the theap */
#define ZM_MI3_THREAD_AT 0x00 /* in a page */
#define ZM_MI3_FREE_AT 0x08
#define ZM_MI3_LOCAL_FREE_AT 0x18
#define ZM_MI3_SIZE_AT 0x28
#define ZM_MI3_USED_AT 0x10
#define ZM_MI3_USED_STEP 1 /* what mi_malloc adds to the count at USED_AT */
typedef uint16_t zm__mi3_used; /* its width, as mimalloc's own loads and stores have it */
#define ZM_MI3_RETIRE_AT 0 /* none: the page's last free always retires it */
#elif MI_MALLOC_VERSION == 30600
#define ZM_MI3_RELEASE "3.6.0"
#define ZM_MI3_DIRECT_AT 0x00
#define ZM_MI3_THREAD_AT 0x08
#define ZM_MI3_FREE_AT 0x10
#define ZM_MI3_LOCAL_FREE_AT 0x18
#define ZM_MI3_SIZE_AT 0x20
#define ZM_MI3_USED_AT 0x28
#define ZM_MI3_USED_STEP 0x10001 /* two 16-bit counts in one word */
typedef uint64_t zm__mi3_used;
#define ZM_MI3_RETIRE_AT 0x3e    /* a byte, set once the page waits to be retired */
#endif

/* floor, free_floor and fast_bound keep each part off until mimalloc3.c has
 * checked it. */
struct zm__mi3_layout {
    uintptr_t floor;                  /* the read: 1 once on, else UINTPTR_MAX */
    uintptr_t free_floor;             /* the free copy: 1 once on, else UINTPTR_MAX */
    size_t fast_bound;                /* the malloc copy: requests below it; 0 or 1025 */
    unsigned char ***const *page_map; /* 3.0.1: where _mi_page_map is */
    intptr_t theap_tpoff;             /* the thread's theap, from the thread pointer */
    void (*retire)(void *page);       /* mimalloc's own page retire (_mi_page_retire) */
};
extern ZM_HIDDEN struct zm__mi3_layout zm__mi3;

#ifdef ZM_MI3_RELEASE
static inline unsigned char *zm__mi3_page_of(const void *p) {
    uintptr_t a = (uintptr_t)p;
#if MI_MALLOC_VERSION == 301
    return (*zm__mi3.page_map)[a >> 29][(a >> 16) & 0x1fff];
#else
    uintptr_t entry = (a & ~(((uintptr_t)1 << 28) - 1)) | ((a >> 16 & 0xfff) << 7);
    return *(unsigned char *const *)entry;
#endif
}

static inline uintptr_t zm__mi3_word(const unsigned char *page, size_t at) {
    uintptr_t w;
    memcpy(&w, page + at, sizeof w);
    return w;
}

/* The count of used blocks, as wide as mimalloc reads and writes it: a
 * wider load just after mimalloc's narrower store (or the other way round)
 * could not take the stored value from the store buffer, and waits. */
static inline zm__mi3_used zm__mi3_used_of(const unsigned char *page) {
    zm__mi3_used n;
    memcpy(&n, page + ZM_MI3_USED_AT, sizeof n);
    return n;
}
static inline void zm__mi3_set_used(unsigned char *page, zm__mi3_used n) {
    memcpy(page + ZM_MI3_USED_AT, &n, sizeof n);
}

/* The size, or 0 where mi_usable_size() must be asked: no page, or a page
 * with aligned blocks. p: a block (not NULL). */
static inline size_t zm__mi_page_usable(const void *p) {
    const unsigned char *page = zm__mi3_page_of(p);
    if (zm_unlikely(page == NULL)) return 0;
    uintptr_t thread = zm__mi3_word(page, ZM_MI3_THREAD_AT);
    size_t size = zm__mi3_word(page, ZM_MI3_SIZE_AT);
    return zm_likely((thread & 2) == 0) ? size : 0;
}

static inline size_t zm__be_usable(const void *p) {
    if (zm_likely((uintptr_t)p >= zm__mi3.floor)) {
        size_t n = zm__mi_page_usable(p);
        if (zm_likely(n != 0)) return n;
    }
    return mi_usable_size(p);
}

/* What the copies decline (and NULL) reads the size inline where it can. */
#define ZM_BE_SIZES_CHECKED 1
/* Whether p is a block (not NULL) and the read is on: one compare. */
static inline int zm__be_sizes_inline_at(const void *p) {
    return zm_likely((uintptr_t)p >= zm__mi3.floor);
}
static inline size_t zm__be_usable_inline(const void *p) { return zm__mi_page_usable(p); }

/* The free, which returns the size it freed (ZM_BE_FREE_COUNTED; the count
 * follows the free). With the copy on, the page found for the size serves
 * the free too: a block of the thread's own page (no flags) goes onto the
 * page's local free list as mi_free() puts it, and where that leaves the
 * page with no block in use, mimalloc's own page retire follows, as in
 * mi_free() (3.0.1: always; 3.6.0: unless the page's retire byte is set).
 * Another thread's block goes to mi_free(); a page with aligned blocks and
 * NULL (the floor makes that one compare) go out of line. */
ZM_HIDDEN size_t zm__mi_free_other(void *p); /* NULL too; returns the size freed */

#define ZM_BE_FREE_COUNTED 1
#define ZM_BE_FREE_TAKES_NULL 1

/* mimalloc's page retire (a function of the verified build, at the address
 * mi_free() jumps to), out of line so that the copy needs no frame. */
__attribute__((noinline)) static size_t zm__mi3_retire(unsigned char *page, size_t size) {
    zm__mi3.retire(page);
    return size;
}

/* The push: page is p's, owned by this thread, without flags. Returns size. */
static inline size_t zm__mi3_push(unsigned char *page, void *p, size_t size) {
    zm__mi3_used used = (zm__mi3_used)(zm__mi3_used_of(page) - 1);
    *(zm__mi_word *)p = *(zm__mi_word *)(page + ZM_MI3_LOCAL_FREE_AT);
    *(zm__mi_word *)(page + ZM_MI3_LOCAL_FREE_AT) = p;
    zm__mi3_set_used(page, used);
    if (zm_unlikely((uint16_t)used == 0) && (ZM_MI3_RETIRE_AT == 0 || page[ZM_MI3_RETIRE_AT] == 0))
        return zm__mi3_retire(page, size);
    return size;
}

/* mi_free(), out of line, so that the copy needs no frame. */
__attribute__((noinline)) static size_t zm__mi3_free_called(void *p, size_t size) {
    mi_free(p);
    return size;
}

/* The free past the floor: p is a block, the copy on (or on trial). */
static inline size_t zm__mi3_free_local(void *p) {
    unsigned char *page = zm__mi3_page_of(p); /* a block's page: never NULL, as mi_free() knows */
    uintptr_t thread = zm__mi3_word(page, ZM_MI3_THREAD_AT);
    size_t size = zm__mi3_word(page, ZM_MI3_SIZE_AT);
    if (zm_likely(thread == (uintptr_t)__builtin_thread_pointer())) return zm__mi3_push(page, p, size);
    if (zm_unlikely(thread & 2)) return zm__mi_free_other(p); /* aligned: the size depends on p */
    return zm__mi3_free_called(p, size);
}

static inline size_t zm__be_free_counted(void *p) {
    if (zm_unlikely((uintptr_t)p < zm__mi3.free_floor)) return zm__mi_free_other(p);
    return zm__mi3_free_local(p);
}

/* The calling thread's page for requests of `size` (at most 1 KiB). */
static inline unsigned char *zm__mi3_direct_page(size_t size) {
    const unsigned char *theap =
        *(unsigned char *const *)((unsigned char *)__builtin_thread_pointer() + zm__mi3.theap_tpoff);
    return *(unsigned char *const *)(theap + ZM_MI3_DIRECT_AT + ((size + 7) >> 3) * 8);
}

/* The pop, for any request up to 1 KiB: 1 with the block and its usable size
 * (the page's block size), or 0 (nothing done). */
static inline int zm__mi3_pop(size_t size, void **out, size_t *usable) {
    unsigned char *page = zm__mi3_direct_page(size);
    zm__mi_word *block = *(zm__mi_word **)(page + ZM_MI3_FREE_AT);
    if (zm_unlikely(block == NULL)) return 0;
    *(zm__mi_word *)(page + ZM_MI3_FREE_AT) = *block;
    zm__mi3_set_used(page, (zm__mi3_used)(zm__mi3_used_of(page) + ZM_MI3_USED_STEP));
    *usable = zm__mi3_word(page, ZM_MI3_SIZE_AT);
    *out = (void *)block;
    return 1;
}

#define ZM_BE_FAST_MALLOC 1
#define zm__be_fast_malloc zm__mi3_fast_malloc
static inline int zm__mi3_fast_malloc(size_t size, void **out, size_t *usable) {
    if (zm_unlikely(size >= zm__mi3.fast_bound)) return 0;
    return zm__mi3_pop(size, out, usable);
}
#else
/* No layout for this release: mimalloc's public calls and the size table. */
static inline size_t zm__be_usable(const void *p) { return mi_usable_size(p); }
#endif

#endif
