/* A free that reads the block's size inline, once a load-time check let the
 * backend do so (block_direct.h picks this file where the backend has such
 * a read but no copy of the allocator's free), and asks where it may not.
 * Counted first, so that the caller ends in a jump to the allocator's free.
 * Takes NULL (one compare covers NULL and "reads off"). */
#ifndef ZM_FREE_READ_H
#define ZM_FREE_READ_H

/* NULL, or a block whose size the inline read cannot give. */
__attribute__((noinline, cold)) static void free_asking(void *ptr) {
    if (ptr) free_impl(ptr, zm__blk_acct(ptr));
}

ZM_INLINE void free_unknown_size(void *ptr) {
    size_t acct;
    if (!zm__blk_sizes_inline_at(ptr) || (acct = zm__blk_acct_inline(ptr)) == 0) {
        free_asking(ptr);
        return;
    }
    free_impl(ptr, acct);
}

#endif
