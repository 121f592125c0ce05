/* Blocks are the backend's own: the backend reports their size. */
#ifndef ZM_BLOCK_DIRECT_H
#define ZM_BLOCK_DIRECT_H

static inline void *zm__blk_malloc(size_t size, size_t *acct) {
    return zm__fault_hit() ? NULL : zm__be_malloc(size, acct);
}
static inline void *zm__blk_calloc(size_t size, size_t *acct) {
    return zm__fault_hit() ? NULL : zm__be_calloc(size, acct);
}
static inline void *zm__blk_realloc(void *p, size_t size, size_t *acct) {
    return zm__fault_hit() ? NULL : zm__be_realloc(p, size, acct);
}
static inline void *zm__blk_malloc_no_tcache(size_t size, size_t *acct) {
    return zm__fault_hit() ? NULL : zm__be_malloc_no_tcache(size, acct);
}
#ifdef ZM_BE_MEMALIGN
#define ZM_BLK_MEMALIGN 1 /* aligned blocks: the preload library's memalign family */
static inline void *zm__blk_memalign(size_t align, size_t size, size_t *acct) {
    return zm__fault_hit() ? NULL : zm__be_memalign(align, size, acct);
}
#endif
static inline size_t zm__blk_acct(const void *p) { return zm__be_usable(p); }
static inline size_t zm__blk_usable(const void *p, size_t acct) {
    (void)p;
    return acct;
}
static inline size_t zm__blk_acct_of_usable(const void *p, size_t usable) {
    (void)p;
    return usable;
}
static inline void zm__blk_free(void *p, size_t acct) { zm__be_free_sized(p, acct); }
#ifdef ZM_BE_SIZES_CHECKED
/* The backend reads sizes inline once a load-time check passed: a caller
 * that asks first needs no call after the read. A read that gives 0 declines
 * that block, whose size must then be asked. */
#define ZM_BLK_SIZES_CHECKED 1
static inline int zm__blk_sizes_inline_at(const void *p) { return zm__be_sizes_inline_at(p); }
static inline size_t zm__blk_acct_inline(const void *p) { return zm__be_usable_inline(p); }
#else
/* No inline read (the preload library's copies ask glibc's chunk directly):
 * a free path that tries one declines at once. */
static inline int zm__blk_sizes_inline_at(const void *p) {
    (void)p;
    return 0;
}
static inline size_t zm__blk_acct_inline(const void *p) {
    (void)p;
    return 0;
}
#endif
#ifdef ZM_BE_FAST_MALLOC
/* An inline malloc fast path that calls nothing: 1 with the block and its
 * usable size, or 0 (nothing done). */
#define ZM_BLK_FAST_MALLOC 1
static inline int zm__blk_fast_malloc(size_t size, void **out, size_t *usable) {
    return zm__be_fast_malloc(size, out, usable);
}
#endif
#ifdef ZM_BE_FREE_COUNTED
#define ZM_BLK_FREE_COUNTED 1 /* the free itself tells the size: use it */
#endif
#ifdef ZM_BE_FREE_FAST
/* An inline free that calls nothing: the size it freed, or 0 (nothing done;
 * NULL among them), the block then going to zm__blk_free_counted(). */
#define ZM_BLK_FREE_FAST 1
static inline size_t zm__blk_free_fast(void *p) { return zm__be_free_fast(p); }
static inline size_t zm__blk_free_other(void *p) { return zm__be_free_other(p); }
#endif

/* The paths alloc_core.h takes, cheapest first: a fast path of the
 * allocator's own where the backend has a copy of it; for the size a free
 * counts, the copy's free, the free itself, an inline read after a load-time
 * check, or a question. ZM_BLK_FREE_TAKES_NULL: whether that free path
 * takes NULL (an inline read's one compare covers it; a backend may say its
 * free does). */
#if defined(ZM_JE_FAST)
#define ZM_BLK_ALLOC_FAST_PATH "alloc_fast_jemalloc.h"
#elif defined(ZM_BLK_FAST_MALLOC)
#define ZM_BLK_ALLOC_FAST_PATH "alloc_fast_copy.h"
#else
#define ZM_BLK_ALLOC_FAST_PATH "alloc_fast_none.h"
#endif
#if defined(ZM_BLK_FREE_FAST)
#define ZM_BLK_FREE_PATH "free_copy.h"
#elif defined(ZM_BLK_FREE_COUNTED)
#define ZM_BLK_FREE_PATH "free_told.h"
#elif defined(ZM_BLK_SIZES_CHECKED)
#define ZM_BLK_FREE_PATH "free_read.h"
#else
#define ZM_BLK_FREE_PATH "free_asked.h"
#endif
#if defined(ZM_BLK_SIZES_CHECKED) || defined(ZM_BE_FREE_TAKES_NULL)
#define ZM_BLK_FREE_TAKES_NULL 1
#else
#define ZM_BLK_FREE_TAKES_NULL 0
#endif
static inline size_t zm__blk_free_counted(void *p) { return zm__be_free_counted(p); }
static inline void zm__blk_free_no_tcache(void *p, size_t acct) { zm__be_free_no_tcache(p, acct); }

#endif
