/* Size-header mode, for allocators that cannot report a block's size: the
 * requested size is stored in a header in front of the caller's block. The
 * header is alignof(max_align_t) bytes, not sizeof(size_t), so the caller's
 * block keeps the backend's max_align_t alignment. A block is accounted for
 * its requested size plus the header. */
#ifndef ZM_BLOCK_SIZE_HEADER_H
#define ZM_BLOCK_SIZE_HEADER_H

#include <stdalign.h>
#include <stddef.h>

#define ZM_HEADER_SIZE alignof(max_align_t)
_Static_assert(ZM_HEADER_SIZE >= sizeof(size_t), "the header must hold a size_t");

static inline void *zm__hdr_base(const void *p) { return (char *)p - ZM_HEADER_SIZE; }

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
static inline void *zm__blk_realloc(void *p, size_t size, size_t *acct) {
    if (zm__fault_hit()) return NULL;
    return zm__hdr_store(zm__be_realloc(zm__hdr_base(p), size + ZM_HEADER_SIZE, NULL), size, acct);
}
static inline size_t zm__blk_acct(const void *p) {
    return *(const size_t *)zm__hdr_base(p) + ZM_HEADER_SIZE;
}
static inline size_t zm__blk_usable(const void *p, size_t acct) {
    (void)p;
    return acct - ZM_HEADER_SIZE;
}
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
