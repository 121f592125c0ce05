/* mimalloc. A new block's usable size is its bin size, computed inline from
 * the request; mimalloc.c checks at load time that the formula agrees with
 * real blocks for every bin up to zm__mi_bins_max, and beyond it (or if the
 * formula ever disagrees) the block is asked (mi_usable_size). A free reads
 * the size inline from the block's page, as mi_usable_size() itself does
 * (checked at load time the same way), and calls mi_free(). The page read
 * and the copies are written per major release: 2.0's segments (with copies
 * of mi_malloc's pop and mi_free's push) and 3's page map (the read only). */
#ifndef ZM_BACKEND_MIMALLOC_H
#define ZM_BACKEND_MIMALLOC_H

#include <mimalloc.h>
#include <stdint.h>
#include <string.h>

#include "internal.h"

#if MI_MALLOC_VERSION < 300
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
 * mimalloc.c), the page found for the size serves the free too: a block of
 * this thread's segment whose page keeps other blocks in use goes onto the
 * page's local free list as mi_free() puts it; the page's last block, or
 * another thread's, goes to mi_free(). A page with flags (full, or holding
 * aligned blocks), a huge block, and NULL (the floor makes that one compare)
 * go out of line. */
extern ZM_HIDDEN uintptr_t zm__mi_inline_floor; /* 1 once the local free is on, else UINTPTR_MAX */
ZM_HIDDEN size_t zm__mi_free_other(void *p);     /* NULL too; returns the size freed */

#define ZM_BE_FREE_COUNTED 1
#define ZM_BE_FREE_TAKES_NULL 1
/* The free past the floor: p is a block, the copy on (or on trial). */
static inline size_t zm__mi_free_local(void *p) {
    unsigned char *page = zm__mi_page_of(p);
    uint32_t used;
    int32_t size;
    memcpy(&size, page + 0x1c, sizeof size);
    memcpy(&used, page + 0x18, sizeof used);
    uintptr_t owner; /* the thread that owns the segment */
    memcpy(&owner, (const void *)(zm__mi_segment_of(p) + 0x100), sizeof owner);
    if (zm_unlikely(page[0x0e] != 0 || size <= 0)) return zm__mi_free_other(p);
    if (zm_likely(used > 1 && owner == (uintptr_t)__builtin_thread_pointer())) {
        memcpy(p, page + 0x20, sizeof(void *)); /* block->next = page->local_free */
        memcpy(page + 0x20, &p, sizeof p);
        used--;
        memcpy(page + 0x18, &used, sizeof used);
    } else {
        mi_free(p); /* the page's last block in use (mimalloc retires the page), or another thread's */
    }
    return (size_t)size;
}

static inline size_t zm__be_free_counted(void *p) {
    if (zm_unlikely((uintptr_t)p < zm__mi_inline_floor)) return zm__mi_free_other(p);
    return zm__mi_free_local(p);
}

#else
/* mimalloc 3: a block's usable size read from its page, the way
 * mi_usable_size() and mi_free() find the page in Debian's builds (read off
 * their object code; mimalloc.c turns the read on only for those builds,
 * after a trial). 3.0.1 (Debian 13) keeps a two-level page map, a pointer in
 * the library's data (_mi_page_map): [p >> 29][p >> 16 & 0x1fff] is the
 * page. 3.6.0 (unstable) has no global: the 256 MiB-aligned region holding p
 * starts with a table of 128-byte entries, one per 64 KiB slice, whose first
 * word is the page. In the page, a word holds the owning thread with flags in
 * its low bits (bit 1: the page has aligned blocks, whose size depends on
 * where in the block p is) at +0 (3.0.1) or +8 (3.6.0), and the block size
 * is at +0x28 (3.0.1) or +0x20 (3.6.0). */
struct zm__mi3_read {
    uintptr_t floor;                       /* 1 once the read is on, else UINTPTR_MAX */
    unsigned char ***const *page_map;      /* 3.0.1: where _mi_page_map is; NULL: 3.6.0 */
    size_t thread_at, size_at;             /* in the page */
};
extern ZM_HIDDEN struct zm__mi3_read zm__mi3;

static inline const unsigned char *zm__mi3_page_of(const void *p) {
    uintptr_t a = (uintptr_t)p;
    if (zm__mi3.page_map != NULL) return (*zm__mi3.page_map)[a >> 29][(a >> 16) & 0x1fff];
    uintptr_t entry = (a & ~(((uintptr_t)1 << 28) - 1)) | ((a >> 16 & 0xfff) << 7);
    return *(unsigned char *const *)entry;
}

/* The size, or 0 where mi_usable_size() must be asked: no page, or a page
 * with aligned blocks. p: a block (not NULL). */
static inline size_t zm__mi_page_usable(const void *p) {
    const unsigned char *page = zm__mi3_page_of(p);
    if (zm_unlikely(page == NULL)) return 0;
    uintptr_t thread;
    size_t size;
    memcpy(&thread, page + zm__mi3.thread_at, sizeof thread);
    memcpy(&size, page + zm__mi3.size_at, sizeof size);
    return zm_likely((thread & 2) == 0) ? size : 0;
}

static inline size_t zm__be_usable(const void *p) {
    if (zm_likely((uintptr_t)p >= zm__mi3.floor)) {
        size_t n = zm__mi_page_usable(p);
        if (zm_likely(n != 0)) return n;
    }
    return mi_usable_size(p);
}

/* A free counts what the read gives, then ends in mi_free() (free_read.h). */
#define ZM_BE_SIZES_CHECKED 1
/* Whether p is a block (not NULL) and the read is on: one compare. */
static inline int zm__be_sizes_inline_at(const void *p) {
    return zm_likely((uintptr_t)p >= zm__mi3.floor);
}
static inline size_t zm__be_usable_inline(const void *p) { return zm__mi_page_usable(p); }
#endif

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

__attribute__((noinline)) static void *zm__mi_malloc_called(size_t size, size_t *usable) {
    return zm__be_sized(mi_malloc(size), size, usable);
}

#include "backends/fast_malloc.h"

static inline void *zm__be_malloc(size_t size, size_t *usable) {
    void *p;
    if (zm_likely(zm__be_fast_malloc_usable(size, usable, &p))) return p;
    return zm__mi_malloc_called(size, usable);
}

#else
/* No copy of mimalloc 3's malloc: mi_malloc() and the table, inline. */
static inline void *zm__be_malloc(size_t size, size_t *usable) {
    return zm__be_sized(mi_malloc(size), size, usable);
}
#endif

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
