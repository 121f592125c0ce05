/* Size-header mode, for allocators that cannot report a block's size: the
 * requested size is stored in a header in front of the caller's block. The
 * header is alignof(max_align_t) bytes, not sizeof(size_t), so the caller's
 * block keeps the backend's max_align_t alignment. A block is accounted for
 * its requested size plus the header.
 *
 * An aligned block (zm__blk_memalign, align above the header's size) lies
 * align bytes into the backend's aligned block of align + size bytes, and is
 * accounted for both. Its header's first word is the size with
 * ZM_HDR_ALIGNED set, its second word the offset align; the other blocks
 * leave the second word unwritten, and nothing reads it for them. */
#ifndef ZM_BLOCK_SIZE_HEADER_H
#define ZM_BLOCK_SIZE_HEADER_H

#include <stdalign.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define ZM_HEADER_SIZE alignof(max_align_t)
_Static_assert(ZM_HEADER_SIZE >= 2 * sizeof(size_t), "the header must hold two size_t");
/* Sizes stay below PTRDIFF_MAX, so their top bit is free. */
#define ZM_HDR_ALIGNED ((size_t)1 << (sizeof(size_t) * 8 - 1))

static inline const size_t *zm__hdr(const void *p) {
    return (const size_t *)((const char *)p - ZM_HEADER_SIZE);
}
/* The bytes from the backend block's start to the caller's. */
static inline size_t zm__hdr_offset(const void *p) {
    return zm_unlikely(zm__hdr(p)[0] & ZM_HDR_ALIGNED) ? zm__hdr(p)[1] : ZM_HEADER_SIZE;
}
static inline void *zm__hdr_base(const void *p) { return (char *)p - zm__hdr_offset(p); }

static inline void *zm__hdr_store(void *base, size_t size, size_t *acct) {
    if (zm_unlikely(!base)) return NULL;
    *(size_t *)base = size;
    *acct = size + ZM_HEADER_SIZE;
    return (char *)base + ZM_HEADER_SIZE;
}

static inline void *zm__blk_malloc(size_t size, size_t *acct) {
    if (zm__fault_hit()) return NULL;
    return zm__hdr_store(zm__be_malloc(size + ZM_HEADER_SIZE, NULL), size, acct);
}
static inline void *zm__blk_calloc(size_t size, size_t *acct) {
    if (zm__fault_hit()) return NULL;
    return zm__hdr_store(zm__be_calloc(size + ZM_HEADER_SIZE, NULL), size, acct);
}
static inline void *zm__blk_malloc_no_tcache(size_t size, size_t *acct) {
    if (zm__fault_hit()) return NULL;
    return zm__hdr_store(zm__be_malloc_no_tcache(size + ZM_HEADER_SIZE, NULL), size, acct);
}
static inline size_t zm__blk_acct(const void *p) {
    size_t word = zm__hdr(p)[0];
    if (zm_unlikely(word & ZM_HDR_ALIGNED)) return (word & ~ZM_HDR_ALIGNED) + zm__hdr(p)[1];
    return word + ZM_HEADER_SIZE;
}
static inline size_t zm__blk_usable(const void *p, size_t acct) {
    (void)acct;
    return zm__hdr(p)[0] & ~ZM_HDR_ALIGNED;
}
/* An aligned block moves to a plain one: the backend's realloc would keep
 * the offset's bytes in front of the data. */
__attribute__((noinline, cold)) static void *zm__hdr_realloc_aligned(void *p, size_t size,
                                                                     size_t *acct) {
    void *q = zm__hdr_store(zm__be_malloc(size + ZM_HEADER_SIZE, NULL), size, acct);
    if (!q) return NULL;
    size_t old = zm__blk_usable(p, 0);
    memcpy(q, p, old < size ? old : size);
    zm__be_free_sized(zm__hdr_base(p), zm__blk_acct(p));
    return q;
}
static inline void *zm__blk_realloc(void *p, size_t size, size_t *acct) {
    if (zm__fault_hit()) return NULL;
    if (zm_unlikely(zm__hdr(p)[0] & ZM_HDR_ALIGNED)) return zm__hdr_realloc_aligned(p, size, acct);
    return zm__hdr_store(zm__be_realloc((char *)p - ZM_HEADER_SIZE, size + ZM_HEADER_SIZE, NULL),
                         size, acct);
}
#ifdef ZM_BE_MEMALIGN
#define ZM_BLK_MEMALIGN 1
/* align: a power of two above ZM_HEADER_SIZE. */
static inline void *zm__blk_memalign(size_t align, size_t size, size_t *acct) {
    size_t total;
    if (zm__fault_hit() || __builtin_add_overflow(size, align, &total) || total >= (size_t)PTRDIFF_MAX)
        return NULL;
    char *base = zm__be_memalign(align, total, NULL);
    if (zm_unlikely(!base)) return NULL;
    size_t *hdr = (size_t *)(base + align - ZM_HEADER_SIZE);
    hdr[0] = size | ZM_HDR_ALIGNED;
    hdr[1] = align;
    *acct = total;
    return base + align;
}
#endif
/* No fast path of the allocator's own reaches a block behind a header, and
 * a free asks the header (alloc_core.h). */
#define ZM_BLK_ALLOC_FAST_PATH "alloc_fast_none.h"
#define ZM_BLK_FREE_PATH "free_asked.h"
#define ZM_BLK_FREE_TAKES_NULL 0
/* The header is the authority here; the caller's figure is not needed. */
static inline size_t zm__blk_acct_of_usable(const void *p, size_t usable) {
    (void)usable;
    return zm__blk_acct(p);
}
static inline void zm__blk_free(void *p, size_t acct) { zm__be_free_sized(zm__hdr_base(p), acct); }
static inline size_t zm__blk_free_counted(void *p) {
    size_t acct = zm__blk_acct(p);
    zm__blk_free(p, acct);
    return acct;
}
static inline void zm__blk_free_no_tcache(void *p, size_t acct) {
    zm__be_free_no_tcache(zm__hdr_base(p), acct);
}

#endif
