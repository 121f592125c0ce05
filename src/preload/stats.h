/* The preload library's per-thread statistics: calls per function, a size
 * histogram, bytes requested and bytes the allocator gave. They live in the
 * thread's registry slot (counter.h), next to its balance, and like it are
 * written by the owner alone with plain relaxed loads and stores; a retired
 * slot's figures are folded into shared totals (stats.c). */
#ifndef ZM_PRELOAD_STATS_H
#define ZM_PRELOAD_STATS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

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

/* Called by the accounting layer (counter.c), under its registry lock. */
ZM_HIDDEN void zm__stats_fold(zm__stats *s); /* adds s to the shared totals, zeroes s */
ZM_HIDDEN void zm__stats_add(zm__stats_total *t, const zm__stats *s);
/* In a fork child, after the other threads' slots were folded. */
ZM_HIDDEN void zm__preload_fork_child(void);

#endif
