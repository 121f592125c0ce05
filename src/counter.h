/* The accounting layer: one signed balance per thread, on that thread's own
 * cache line, changed with plain (relaxed) loads and stores by its owner only.
 * A reader sums them under the registry lock. A thread's balance may go
 * negative when it frees blocks other threads allocated; only the sum means
 * anything.
 *
 * A balance is kept in two parts: `base`, already published into one shared
 * counter, and `pending`, the drift since. The hot path touches only pending;
 * when it passes 64 KiB either way it is published. The shared figure is thus
 * within 64 KiB per live thread of the truth: close enough to track the peak
 * and to pass most limit checks without the lock.
 *
 * Nothing in this layer allocates from the heap. */
#ifndef ZM_COUNTER_H
#define ZM_COUNTER_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "internal.h"

#define ZM_PUBLISH_BATCH ((int64_t)64 * 1024)

enum zm__thread_state {
    ZM_THREAD_NEW = 0, /* TLS starts zeroed: not yet in the registry */
    ZM_THREAD_LIVE,    /* in the registry: counts into its own counter */
    ZM_THREAD_BUSY,    /* registering: counts into the shared counters */
    ZM_THREAD_DEAD,    /* exited its registry entry: counts into the shared counters */
};

/* A thread that is not LIVE keeps `pending` here, so far out of range that
 * its every update takes the slow path: the hot path needs no state test. */
#define ZM_NOT_LIVE (INT64_MIN / 4)

typedef struct zm__tcounter {
    _Alignas(64) _Atomic int64_t pending; /* written by the owner only */
    _Atomic int64_t base;                 /* written by the owner only */
    int state;                            /* owner only */
    struct zm__tcounter *prev, *next;     /* registry links, under the registry lock */
} zm__tcounter;

extern ZM_HIDDEN __thread zm__tcounter zm__tls __attribute__((tls_model("initial-exec")));
/* Requests of this size or more take the slow check: PTRDIFF_MAX without a
 * limit, 0 with one, so that one compare covers both. */
extern ZM_HIDDEN _Atomic size_t zm__request_bound;

ZM_HIDDEN void zm__count_slow(zm__tcounter *t, int64_t pending, int64_t delta);
ZM_HIDDEN int zm__request_allowed(size_t request);

/* Adds delta to the calling thread's balance. */
static inline void zm__count(int64_t delta) {
    zm__tcounter *t = &zm__tls;
    int64_t p = atomic_load_explicit(&t->pending, memory_order_relaxed) + delta;
    atomic_store_explicit(&t->pending, p, memory_order_relaxed);
    /* One unsigned compare tests |p| > batch. */
    if (zm_unlikely((uint64_t)(p + ZM_PUBLISH_BATCH) > (uint64_t)(2 * ZM_PUBLISH_BATCH)))
        zm__count_slow(t, p, delta);
}

/* Whether a request for `request` more bytes may go ahead: below PTRDIFF_MAX
 * and within the limit. */
static inline int zm__request_ok(size_t request) {
    return zm_likely(request < atomic_load_explicit(&zm__request_bound, memory_order_relaxed)) ||
           zm__request_allowed(request);
}

#endif
