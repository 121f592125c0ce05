/* The preload library's per-thread statistics: calls per function, a size
 * histogram, bytes requested and bytes the allocator gave. They live in the
 * extension area of the thread's registry slot (counter_registry.h), next to
 * its balance, and like it are written by the owner alone with plain relaxed
 * loads and stores; a retired slot's figures are folded into shared totals
 * (stats.c, called by the registry through the hooks lifecycle.c sets). */
#ifndef ZM_PRELOAD_STATS_H
#define ZM_PRELOAD_STATS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "counter_registry.h"
#include "internal.h"

enum zm__fn {
    ZM_FN_MALLOC,
    ZM_FN_CALLOC,
    ZM_FN_REALLOC,
    ZM_FN_REALLOCARRAY,
    ZM_FN_FREE,
    ZM_FN_POSIX_MEMALIGN,
    ZM_FN_ALIGNED_ALLOC,
    ZM_FN_MEMALIGN,
    ZM_FN_VALLOC,
    ZM_FN_PVALLOC,
    ZM_FN_USABLE_SIZE,
    ZM_FN_COUNT
};

/* Bucket k (1..64): sizes in [2^(k-1), 2^k), and 0 in bucket 1; bucket 0
 * stays empty. */
#define ZM_HIST_BUCKETS 65

/* Branch-free: 0 shares bucket 1 with 1. */
static inline unsigned zm__size_bucket(size_t size) {
    return 64u - (unsigned)__builtin_clzll((unsigned long long)size | 1u);
}

typedef struct zm__stats {
    _Atomic uint64_t calls[ZM_FN_COUNT];
    _Atomic uint64_t failed; /* allocating calls that returned NULL */
    _Atomic uint64_t requested, held; /* over every successful allocation */
    _Atomic uint64_t hist[ZM_HIST_BUCKETS];
} zm__stats;

/* Plain figures, summed over every thread that ever counted. */
typedef struct zm__stats_total {
    uint64_t calls[ZM_FN_COUNT], failed, requested, held, hist[ZM_HIST_BUCKETS];
} zm__stats_total;

/* The preload library's part of every registry slot. */
typedef struct zm__pl_slot {
    int64_t peak_mark; /* owner only: a balance above this may be a new peak */
    zm__stats stats;   /* owner writes, like balance */
} zm__pl_slot;
_Static_assert(sizeof(zm__pl_slot) == ZM_SLOT_EXT_BYTES, "ZM_SLOT_EXT_BYTES (cmake/zmrun.cmake)");

static inline zm__pl_slot *zm__pl(zm__slot *s) { return (zm__pl_slot *)(void *)s->ext; }

/* The registry's retire hook (lock held): adds the slot's figures to the
 * shared totals and zeroes them. */
ZM_HIDDEN void zm__stats_fold(zm__slot *s);
ZM_HIDDEN void zm__stats_add(zm__stats_total *t, const zm__stats *s);
/* Counts for a thread without a slot, with atomic adds. */
ZM_HIDDEN void zm__stats_shared_alloc(enum zm__fn fn, size_t request, size_t held);
ZM_HIDDEN void zm__stats_shared_call(enum zm__fn fn, int failed);
/* Every thread's figures and the exact heap in use; with try_lock (a signal
 * handler), returns -1 instead of waiting for the registry lock. */
ZM_HIDDEN int zm__stats_sum(zm__stats_total *out, int64_t *used, int try_lock);
/* Only the calling thread is left (a fork child): its own slot and the
 * shared totals start again from zero. */
ZM_HIDDEN void zm__stats_reset(void);

#endif
