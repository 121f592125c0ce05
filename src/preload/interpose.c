/* The malloc family, taken over for a whole program (libzmalloc-preload-*.so,
 * loaded with LD_PRELOAD by zmrun). Each function keeps the C library's
 * contract (NULL and errno ENOMEM on failure, EINVAL for a bad alignment) and
 * goes through the same allocation paths as zmalloc itself (alloc_core.h):
 * the same exact per-thread counters, the same limit check. On top it counts
 * calls, sizes and slack in the thread's slot (stats.h).
 *
 * Nothing here needs initialising: every setting starts valid in static
 * storage, so the first call may come from the dynamic loader or from a
 * constructor that runs before ours. Nothing here allocates.
 *
 * C++'s operator new and delete are libstdc++'s, which call malloc and free
 * (the aligned forms: aligned_alloc and free), so they need no interposing. */
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "alloc_core.h"
#include "preload/preload.h"

/* The entry points. Each is named zm__pl_NAME here and takes the C
 * library's NAME only at link time (zmrun.cmake's --defsym, exported by
 * exports.map): no object of the library defines a C library name, so a
 * backend's call of the C library's malloc is never mistaken for a call up
 * into this layer, by the linker or by a reader of the object files. */
#define ZM_PUBLIC __attribute__((visibility("default")))

/* Adds n to a statistic of the calling thread's slot. Only the owner writes
 * it; readers load it atomically. On x86-64 one unlocked add to memory does
 * the relaxed load, add and store at once (compilers emit three instructions
 * for those, and this runs several times per malloc of any program). */
ZM_INLINE void bump(_Atomic uint64_t *x, uint64_t n) {
#if defined(__x86_64__)
    __asm__("addq %1, %0" : "+m"(*(uint64_t *)x) : "er"(n));
#else
    atomic_store_explicit(x, atomic_load_explicit(x, memory_order_relaxed) + n,
                          memory_order_relaxed);
#endif
}

/* A thread without a slot (not registered, or past its exit hook) counts in
 * the shared totals, out of line. */
__attribute__((noinline, cold)) static void note_free_shared(void *ptr) {
    zm__stats_shared_call(ZM_FN_FREE, 0);
    if (ptr) free_any_impl(ptr);
}

/* An allocation's statistics, in the slot s of the calling thread, whose
 * balance is now `balance`. */
ZM_INLINE void note_in_slot(zm__slot *s, int64_t balance, enum zm__fn fn, size_t request,
                            size_t held) {
    zm__pl_slot *x = zm__pl(s);
    bump(&x->stats.calls[fn], 1);
    bump(&x->stats.requested, request);
    bump(&x->stats.held, held);
    bump(&x->stats.hist[zm__size_bucket(request)], 1);
    if (zm_unlikely(balance > x->peak_mark)) x->peak_mark = zm__peak_offer(balance);
}

/* A thread with a slot counts in it; one without counts in the shared totals. */
ZM_INLINE void note_alloc(enum zm__fn fn, size_t request, size_t held) {
    zm__slot *s = zm__tls_slot;
    if (zm_unlikely(s == &zm__placeholder)) {
        zm__stats_shared_alloc(fn, request, held);
        return;
    }
    note_in_slot(s, atomic_load_explicit(&s->balance, memory_order_relaxed), fn, request, held);
}

ZM_INLINE void note_call(enum zm__fn fn) {
    zm__slot *s = zm__tls_slot;
    if (zm_unlikely(s == &zm__placeholder)) zm__stats_shared_call(fn, 0);
    else bump(&zm__pl(s)->stats.calls[fn], 1);
}

__attribute__((cold, noinline)) static void *note_failure(enum zm__fn fn) {
    zm__stats_shared_call(fn, 1);
    errno = ENOMEM;
    return NULL;
}

/* The allocations the fast path below leaves: a limit, a large request, an
 * armed --fail-after (the request gate), or a due publish. */
__attribute__((noinline)) static void *counted_checked(enum zm__fn fn, size_t size,
                                                       enum alloc_kind kind, size_t align) {
    size_t usable;
    void *p = alloc_checked(size, &usable, kind, align);
    if (zm_unlikely(!p)) return note_failure(fn);
    note_alloc(fn, size, usable);
    return p;
}

__attribute__((noinline, cold)) static void *counted_publish(enum zm__fn fn, size_t size, void *p,
                                                             zm__slot *s, int64_t balance,
                                                             size_t acct) {
    zm__count_slow(s, balance, (int64_t)acct);
    note_alloc(fn, size, zm__blk_usable(p, acct));
    return p;
}

/* alloc_aligned_impl()'s path with the statistics folded in: where the count
 * stays in the publish window, the slot is the thread's own (the
 * placeholder's window always fails), so nothing needs reloading. */
ZM_INLINE void *counted(enum zm__fn fn, size_t size, enum alloc_kind kind, size_t align) {
    if (zm_unlikely(!zm__request_small(size))) return counted_checked(fn, size, kind, align);
    size_t acct;
    void *p = blk_alloc(size, &acct, kind, align);
    if (zm_unlikely(!p)) return note_failure(fn);
    zm__slot *s;
    int64_t b;
    if (zm_unlikely(zm__count_alloc((int64_t)acct, &s, &b)))
        return counted_publish(fn, size, p, s, b, acct);
    note_in_slot(s, b, fn, size, zm__blk_usable(p, acct));
    return p;
}

ZM_PUBLIC void *zm__pl_malloc(size_t size) { return counted(ZM_FN_MALLOC, size, ALLOC_PLAIN, ALIGN_NONE); }

ZM_PUBLIC void zm__pl_free(void *ptr) {
    zm__slot *s = zm__tls_slot;
    if (zm_unlikely(s == &zm__placeholder)) {
        note_free_shared(ptr);
        return;
    }
    bump(&zm__pl(s)->stats.calls[ZM_FN_FREE], 1);
    if (ptr) free_any_impl(ptr);
}

ZM_PUBLIC void *zm__pl_calloc(size_t num, size_t size) {
    size_t total;
    if (__builtin_mul_overflow(num, size, &total)) return note_failure(ZM_FN_CALLOC);
    return counted(ZM_FN_CALLOC, total, ALLOC_ZEROED, ALIGN_NONE);
}

/* realloc(p, 0) frees p and returns NULL, as glibc's does. An armed
 * --fail-after is asked by the request check, as for any allocation. */
ZM_INLINE void *resize(enum zm__fn fn, void *ptr, size_t size) {
    size_t usable;
    void *p = realloc_impl(ptr, size, &usable);
    if (p) note_alloc(fn, size, usable);
    else if (size || !ptr) return note_failure(fn);
    else note_call(fn);
    return p;
}

ZM_PUBLIC void *zm__pl_realloc(void *ptr, size_t size) { return resize(ZM_FN_REALLOC, ptr, size); }

ZM_PUBLIC void *zm__pl_reallocarray(void *ptr, size_t num, size_t size) {
    size_t total;
    if (__builtin_mul_overflow(num, size, &total)) return note_failure(ZM_FN_REALLOCARRAY);
    return resize(ZM_FN_REALLOCARRAY, ptr, total);
}

/* Alignments up to malloc's own (16 on 64-bit glibc, every backend here)
 * are plain allocations. */
#define NATURAL_ALIGN (2 * sizeof(size_t))

ZM_INLINE void *aligned(enum zm__fn fn, size_t align, size_t size) {
    if (align <= NATURAL_ALIGN) return counted(fn, size, ALLOC_PLAIN, ALIGN_NONE);
    return counted(fn, size, ALLOC_ALIGNED, align);
}

static int power_of_two(size_t x) { return x && !(x & (x - 1)); }

ZM_PUBLIC int zm__pl_posix_memalign(void **memptr, size_t align, size_t size) {
    if (!power_of_two(align) || align % sizeof(void *)) {
        note_call(ZM_FN_POSIX_MEMALIGN);
        return EINVAL;
    }
    int saved = errno;
    void *p = aligned(ZM_FN_POSIX_MEMALIGN, align, size);
    errno = saved;
    if (!p) return ENOMEM;
    *memptr = p;
    return 0;
}

ZM_PUBLIC void *zm__pl_aligned_alloc(size_t align, size_t size) {
    if (!power_of_two(align)) {
        note_call(ZM_FN_ALIGNED_ALLOC);
        errno = EINVAL;
        return NULL;
    }
    return aligned(ZM_FN_ALIGNED_ALLOC, align, size);
}

/* glibc's memalign rounds an alignment that is not a power of two up to one. */
static void *memalign_as(enum zm__fn fn, size_t align, size_t size) {
    if (align > (SIZE_MAX >> 1) + 1) {
        note_call(fn);
        errno = EINVAL;
        return NULL;
    }
    if (!power_of_two(align)) align = align ? (size_t)1 << (64 - __builtin_clzll(align)) : 1;
    return aligned(fn, align, size);
}

ZM_PUBLIC void *zm__pl_memalign(size_t align, size_t size) {
    return memalign_as(ZM_FN_MEMALIGN, align, size);
}

ZM_PUBLIC void *zm__pl_valloc(size_t size) {
    return memalign_as(ZM_FN_VALLOC, (size_t)sysconf(_SC_PAGESIZE), size);
}

ZM_PUBLIC void *zm__pl_pvalloc(size_t size) {
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t rounded;
    if (__builtin_add_overflow(size, page - 1, &rounded)) return note_failure(ZM_FN_PVALLOC);
    rounded &= ~(page - 1);
    return memalign_as(ZM_FN_PVALLOC, page, rounded ? rounded : page); /* glibc: 0 gives a page */
}

ZM_PUBLIC size_t zm__pl_malloc_usable_size(void *ptr) {
    note_call(ZM_FN_USABLE_SIZE);
    return ptr ? zm__blk_usable(ptr, zm__blk_acct(ptr)) : 0;
}
