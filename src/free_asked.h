/* A free that asks the block's size first (the size header, or a backend
 * with no cheaper way), counts it, and ends in a jump to the allocator's
 * free. NULL must not reach it (ZM_BLK_FREE_TAKES_NULL 0). */
#ifndef ZM_FREE_ASKED_H
#define ZM_FREE_ASKED_H

ZM_INLINE void free_unknown_size(void *ptr) { free_impl(ptr, zm__blk_acct(ptr)); }

#endif
