/* No allocation fast path of its own: every allocation takes the generic
 * path (alloc_core.h), which the compiler inlines into each entry point. */
#ifndef ZM_ALLOC_FAST_NONE_H
#define ZM_ALLOC_FAST_NONE_H

#define ZM_ALLOC_FAST 0

ZM_INLINE int alloc_fast(size_t size, void **out, size_t *usable) {
    (void)size, (void)out, (void)usable;
    return 0;
}

#endif
