/* Blocks as the entry points see them: a backend block, or (size-header mode)
 * a backend block with the requested size stored in front of it. Each block
 * has an accounted size (its share of used memory) and a usable size (what
 * the caller may use); they differ only in size-header mode.
 *
 *   void  *zm__blk_malloc(size_t size, size_t *acct);             size 0: a unique block
 *   void  *zm__blk_calloc(size_t size, size_t *acct);             size 0: a unique block
 *   void  *zm__blk_malloc_no_tcache(size_t size, size_t *acct);    bypassing the thread cache
 *   void  *zm__blk_realloc(void *p, size_t size, size_t *acct);   p != NULL, size > 0
 *   size_t zm__blk_acct(const void *p);
 *   size_t zm__blk_usable(const void *p, size_t acct);
 *   size_t zm__blk_acct_of_usable(const void *p, size_t usable);  for zm_free_with_size
 *   void   zm__blk_free(void *p, size_t acct);
 *   size_t zm__blk_free_counted(void *p);                          frees, returns acct;
 *                                        ZM_BLK_FREE_COUNTED when that is cheaper
 *                                        than zm__blk_acct() then zm__blk_free()
 *   size_t zm__blk_free_fast(void *p);                             the inline part of it,
 *                                        calling nothing: acct, or 0 (declined, nothing
 *                                        done); ZM_BLK_FREE_FAST where there is one,
 *                                        with zm__blk_free_other(p) for what it declines
 *   void   zm__blk_free_no_tcache(void *p, size_t acct);
 * The allocating calls consult the failure injector (fault.h) first. */
#ifndef ZM_BLOCK_H
#define ZM_BLOCK_H

#include "backend.h"
#include "fault.h"

#ifdef ZM_SIZE_HEADER
#include "block_size_header.h"
#else
#include "block_direct.h"
#endif

#endif
