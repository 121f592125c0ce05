/* A free that learns the block's size from the allocator's free itself
 * (block_direct.h picks this file where the backend's free returns it:
 * mimalloc's page, jemalloc's thread counter). The block stays counted
 * until the free returns. Takes NULL where the backend's does
 * (ZM_BLK_FREE_TAKES_NULL). */
#ifndef ZM_FREE_TOLD_H
#define ZM_FREE_TOLD_H

ZM_INLINE void free_unknown_size(void *ptr) { zm__count_freed(zm__blk_free_counted(ptr)); }

#endif
