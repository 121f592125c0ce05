/* The allocation fast path of the private jemalloc (block_direct.h picks
 * this file where the build has jemalloc_fast.h's copy). */
#ifndef ZM_ALLOC_FAST_JEMALLOC_H
#define ZM_ALLOC_FAST_JEMALLOC_H

#define ZM_ALLOC_FAST 1

/* jemalloc's malloc fast path (jemalloc_fast.h), with the publish threshold
 * as one more bound: 0 for a thread without a slot, or while a limit is set
 * or a failure is armed, so that those go the generic way. 1 with the block
 * in *out, else 0. */
ZM_INLINE int alloc_fast(size_t size, void **out, size_t *usable) {
    uint64_t threshold =
        zm__fault_armed() ? 0 : atomic_load_explicit(&zm__tls_slot->threshold, memory_order_relaxed);
    size_t got;
    if (zm_unlikely(!zm__jef_malloc(size, threshold, out, &got))) return 0;
    if (usable) *usable = got;
    return 1;
}

#endif
