/* The accounting layer: one signed balance per thread, in a registry slot of
 * its own (one cache line), changed with plain (relaxed) loads and stores by
 * its owner only. A reader sums the balances under the registry lock; since
 * each balance is one word, every term of the sum is a figure its thread
 * really had. A balance may go negative when its thread frees blocks other
 * threads allocated; only the sum means anything.
 *
 * Slots live outside the threads (a static pool, then mmap'd chunks), and a
 * thread's TLS holds only a pointer to its slot. So a thread whose exit hook
 * never runs (one that first counts in the last round of thread-specific-data
 * destructors) leaves a slot that is still readable and still right, instead
 * of a registry entry inside TLS that the next thread's start re-initialises.
 *
 * Besides its balance a slot keeps `mark`, the balance last published into
 * one shared estimate. The hot path publishes when the balance drifts 64 KiB
 * from the mark either way, so the estimate is within 64 KiB per live thread
 * of the truth: close enough to decide most limit checks without the lock,
 * and to know when the exact sum may show a new peak.
 *
 * Nothing in this layer allocates from the heap. */
#ifndef ZM_COUNTER_H
#define ZM_COUNTER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "internal.h"
#ifdef ZM_PRELOAD
#include "preload/stats.h"
#endif

#define ZM_PUBLISH_BATCH ((int64_t)64 * 1024)

/* The allocator counts (a private jemalloc, cmake/jemalloc_private.cmake):
 * every thread's allocated and deallocated bytes are two words jemalloc keeps
 * in that thread's TLS on its own fast paths, and a slot's balance is their
 * difference, which readers read from there. The hot path only decides when
 * to publish (after an allocation) and whether the thread has a slot (after
 * a free); it never learns a block's size. */
#if defined(ZM_JE_PRIVATE) && !defined(ZM_PRELOAD)
#define ZM_ALLOCATOR_COUNTS 1
#endif

typedef struct zm__slot {
    /* Written by the owner only; read by anyone under the registry lock.
     * Relaxed is enough: a reader needs some value from the owner's own
     * modification order, which coherence guarantees on any CPU; the lock
     * orders slot reuse against readers. */
    _Alignas(64) _Atomic int64_t balance;
    int64_t mark;                   /* owner only: balance when last published */
    int64_t window_low;             /* owner only: mark - ZM_PUBLISH_BATCH */
    struct zm__slot *prev, *next;   /* registry or free-list links, under the lock */
    pthread_t owner;                /* under the lock */
#ifdef ZM_ALLOCATOR_COUNTS
    const volatile uint64_t *allocated, *deallocated; /* the owner's counters, in its TLS */
    uint64_t allocated_mark; /* owner only: *allocated when last published */
    /* See zm__request_small(). The owner renews it; zm_set_limit() zeroes it. */
    _Atomic uint64_t threshold;
    /* Whether the owner lives: it holds this robust mutex from registration
     * to its exit hook. A thread that registered too late for its exit hook
     * (in its last round of TSD destructors) dies holding it, and a reader's
     * trylock then says EOWNERDEAD: its stack may be gone, so its counters
     * are read once more with process_vm_readv(), which cannot fault. */
    pthread_mutex_t alive;
    /* A reader trusts the counters only while *token_at (a TLS word of the
     * owner) still holds token: the next thread may reuse a dead one's TLS. */
    const volatile uint64_t *token_at;
    uint64_t token;
    _Atomic int64_t seen; /* the balance last read: what such a slot retires with */
    int owner_gone;       /* under the lock: seen is final */
#endif
#ifdef ZM_PRELOAD
    int64_t peak_mark; /* owner only: a balance above this may be a new peak */
    zm__stats stats;   /* owner writes, like balance */
#endif
} zm__slot;

/* The calling thread's slot. Until the thread registers (and after its exit
 * hook) it points at a shared placeholder whose mark is so far out of range
 * that every update takes the slow path: the hot path needs no state test. */
extern ZM_HIDDEN __thread zm__slot *zm__tls_slot __attribute__((tls_model("initial-exec")));
/* Requests of this size or more take the slow check: ZM_PUBLISH_BATCH
 * without a limit, 0 with one, so that one compare covers both. */
extern ZM_HIDDEN _Atomic size_t zm__request_bound;

ZM_HIDDEN void zm__count_slow(zm__slot *s, int64_t balance, int64_t delta);
/* Whether a request for `request` more bytes may go ahead: below PTRDIFF_MAX
 * and within the limit. A request of 0 always may. */
ZM_HIDDEN int zm__request_allowed(size_t request);
/* Counts delta after a large allocation (one that took the slow request
 * check): publishes at once and lets the peak see the exact sum. */
ZM_HIDDEN void zm__count_large(int64_t delta);

#ifdef ZM_ALLOCATOR_COUNTS
/* Threads without a slot (not yet registered, or past their exit hook) see
 * this one: its counter is so far past its threshold that every request
 * takes the slow path. */
extern ZM_HIDDEN zm__slot zm__placeholder;
/* Nonzero while the calling thread has a slot of its own. */
extern ZM_HIDDEN __thread char zm__tls_slotted __attribute__((tls_model("initial-exec")));

/* Before an allocation of `request` bytes: whether it may go ahead without
 * the slow check. It may while the thread's allocated counter stays within its
 * threshold: a batch (less one byte) past the counter's value when the slot
 * last published, or 0 while a limit is set. So one compare sends to the
 * slow path a due publish, a request of a batch or more, a limit, and a
 * thread without a slot, and (the sum overflowing) any absurd request. */
static inline int zm__request_small(size_t request) {
    zm__slot *s = zm__tls_slot;
    uint64_t end;
    return zm_likely(!__builtin_add_overflow(*s->allocated, (uint64_t)request, &end) &&
                     end <= atomic_load_explicit(&s->threshold, memory_order_relaxed));
}
/* After an allocation that took the slow path (the allocator counted it):
 * registers or counts a thread without a slot, publishes when due, lets the
 * peak see a request of a batch or more, and renews the threshold. */
ZM_HIDDEN void zm__after_slow_alloc(size_t request);
/* Before a free: whether the thread must count it itself (it has no slot);
 * if so it calls zm__count_unslotted() once the block is freed. */
static inline int zm__free_needs_count(void) { return zm_unlikely(zm__tls_slotted == 0); }
ZM_HIDDEN void zm__count_unslotted(void);
#else
/* Adds delta to the calling thread's balance; nonzero when the balance left
 * the publish window, and the caller must call zm__count_slow(*slot,
 * *balance, delta). (Split so that an allocation path can leave the slow
 * call to a cold function that also returns its block: the fast path then
 * keeps nothing across a call.) */
static inline int zm__count_update(int64_t delta, zm__slot **slot, int64_t *balance) {
    zm__slot *s = zm__tls_slot;
    int64_t b = atomic_load_explicit(&s->balance, memory_order_relaxed) + delta;
    atomic_store_explicit(&s->balance, b, memory_order_relaxed);
    *slot = s;
    *balance = b;
    /* One unsigned compare tests |b - mark| > batch (unsigned: no overflow). */
    return zm_unlikely((uint64_t)b - (uint64_t)s->window_low > (uint64_t)(2 * ZM_PUBLISH_BATCH));
}

/* Adds delta to the calling thread's balance. */
static inline void zm__count(int64_t delta) {
    zm__slot *s;
    int64_t b;
    if (zm__count_update(delta, &s, &b)) zm__count_slow(s, b, delta);
}

/* Whether a request may go ahead without the slow check. Ordering: relaxed;
 * a thread that reads the bound just before zm_set_limit() changes it lets
 * one request pass unchecked, which the limit's documented overshoot (requests
 * in flight) covers. */
static inline int zm__request_small(size_t request) {
    return zm_likely(request < atomic_load_explicit(&zm__request_bound, memory_order_relaxed));
}
#endif

#ifdef ZM_PRELOAD
/* Threads without a slot (not yet registered, or past their exit hook) count
 * through this one; their statistics must go to shared totals instead. */
extern ZM_HIDDEN zm__slot zm__placeholder;
/* Takes the registry lock (or, with try_lock, gives up with -1 when it is
 * held: for a signal handler), offers the exact used figure to the peak,
 * stores it in *used, and calls visit on every live slot. Returns 0. */
/* The owner's balance passed its peak_mark: offers the exact total to the
 * peak. While the thread is the only one counting, that needs no lock, so
 * the peak of a single-threaded program is exact; otherwise it is sampled
 * under the lock at most once per batch of growth. */
ZM_HIDDEN void zm__peak_check(zm__slot *s);
ZM_HIDDEN int zm__visit_slots(void (*visit)(const zm__slot *, void *), void *arg, int try_lock,
                              int64_t *used);
#endif

#ifdef ZMALLOC_TESTING
/* Called inside a publish, between the slot's mark and the shared estimate
 * being updated: tests fork there. */
extern ZM_HIDDEN void (*zm__test_publish_hook)(void);
#endif

#endif
