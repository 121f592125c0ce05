/* A free through the backend's inline copy of the allocator's free, which
 * returns the size it freed (block_direct.h picks this file where the backend
 * has one: glibc's tcache_put, tcmalloc's list push). Takes NULL. */
#ifndef ZM_FREE_COPY_H
#define ZM_FREE_COPY_H

/* What the copy declined (NULL too): its size read inline where that works
 * (the copy is off on this allocator release, or declined a block it could
 * read), else asked; counted first, so that this ends in a jump to the
 * allocator's free, as where there is no copy. */
__attribute__((noinline)) static void free_declined(void *ptr) {
    if (!ptr) return;
    size_t acct;
    if (zm__blk_sizes_inline_at(ptr) && (acct = zm__blk_acct_inline(ptr)) != 0) {
        free_impl(ptr, acct);
        return;
    }
    free_impl(ptr, zm__blk_acct(ptr));
}

/* Declined: out of line, a tail call, so that the copy needs no frame. */
ZM_INLINE void free_unknown_size(void *ptr) {
    size_t n = zm__blk_free_fast(ptr);
    if (zm_unlikely(n == 0)) {
        free_declined(ptr);
        return;
    }
    zm__count_freed(n);
}

#endif
