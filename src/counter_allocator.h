/* The allocator counts (a private jemalloc, cmake/jemalloc_private.cmake):
 * every thread's allocated and deallocated bytes are two words jemalloc keeps
 * in that thread's TLS on its own fast paths, and a slot's balance is their
 * difference, which readers read from there. The hot path only decides when
 * to publish (after an allocation) and whether the thread has a slot (after
 * a free); it never learns a block's size. */
#ifndef ZM_COUNTER_ALLOCATOR_H
#define ZM_COUNTER_ALLOCATOR_H

#include "backend.h" /* the private jemalloc's fast-path copies, where the build has them */

#define ZM_COUNT_FREE_SIZES 0

/* Nonzero while the calling thread has a slot of its own. */
extern ZM_HIDDEN __thread char zm__tls_slotted __attribute__((tls_model("initial-exec")));

/* Before an allocation of `request` bytes: whether it may go ahead without
 * the slow check. It may while the thread's allocated counter stays within its
 * threshold: a batch (less one byte) past the counter's value when the slot
 * last published, or 0 while a limit is set. So one compare sends to the
 * slow path a due publish, a request of a batch or more, a limit, and a
 * thread without a slot (the placeholder's counter is far past its
 * threshold), and (the sum overflowing) any absurd request. */
static inline int zm__request_small(size_t request) {
    zm__slot *s = zm__tls_slot;
    uint64_t end;
    return zm_likely(!__builtin_add_overflow(*s->allocated, (uint64_t)request, &end) &&
                     end <= atomic_load_explicit(&s->threshold, memory_order_relaxed));
}

/* The allocator has counted it, and zm__request_small() kept the publish. */
static inline int zm__count_alloc(int64_t acct, zm__slot **s, int64_t *b) {
    (void)acct, (void)s, (void)b;
    return 0;
}

/* Only a thread without a slot counts a free itself, once the block is gone
 * (zm__count_slow). Asked first, so that the common case ends in a jump to
 * the allocator. */
static inline int zm__count_free(int64_t acct, zm__slot **s, int64_t *b) {
    (void)acct;
    *s = NULL; /* zm__count_slow() needs neither */
    *b = 0;
    return zm_unlikely(zm__tls_slotted == 0);
}
static inline void zm__count_freed(size_t acct) {
    (void)acct;
    if (zm_unlikely(zm__tls_slotted == 0)) zm__count_slow(NULL, 0, 0);
}

/* After a call into the allocator that counted nothing (a failure, a size
 * lookup): a thread without a slot must keep the private jemalloc's free
 * fast path, which skips the count, closed. Only the copies need it. */
static inline void zm__count_nothing(void) {
#ifdef ZM_JE_FAST
    zm__jef_after_uncounted_call();
#endif
}

/* After an allocation that took the slow check (the allocator counted it):
 * registers or counts a thread without a slot, publishes when due, lets the
 * peak see a request of a batch or more, and renews the threshold. */
ZM_HIDDEN void zm__count_checked(size_t request, int64_t delta);

/* A size that may be allocated without a check grows the block by less than
 * that: no need to know the old size (the allocator counts the change). */
static inline int zm__realloc_counts_itself(size_t size) {
    return size != 0 && zm__request_small(size);
}

#endif
