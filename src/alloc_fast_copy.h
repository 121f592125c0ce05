/* The allocation fast path of a backend with an inline copy of its
 * allocator's malloc (block_direct.h picks this file: glibc's tcache_get,
 * tcmalloc's list pop, mimalloc's page pop). */
#ifndef ZM_ALLOC_FAST_COPY_H
#define ZM_ALLOC_FAST_COPY_H

#define ZM_ALLOC_FAST 1

/* The backend's inline malloc fast path (it calls nothing), then the
 * count; a publish the count leaves to do is out of line. 1 with the block in
 * *out, else 0 (nothing done). A request that takes the slow check, or an
 * armed failure, goes the generic way. */
ZM_INLINE int alloc_fast(size_t size, void **out, size_t *usable) {
    size_t got;
    if (zm_unlikely(!zm__request_small(size) || zm__fault_armed() ||
                    !zm__blk_fast_malloc(size, out, &got)))
        return 0;
    zm__slot *s;
    int64_t b;
    if (zm_unlikely(zm__count_alloc((int64_t)got, &s, &b)))
        *out = publish_then_finish(*out, s, b, got, usable);
    else if (usable)
        *usable = got;
    return 1;
}

#endif
