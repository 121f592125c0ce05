/* The wrapper counts (counter.h): each thread's balance is a word of its
 * slot, changed with a plain relaxed load and store by its owner only (no
 * locked instruction), by the size of every block it allocates or frees. */
#ifndef ZM_COUNTER_WRAPPER_H
#define ZM_COUNTER_WRAPPER_H

#define ZM_COUNT_FREE_SIZES 1

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

static inline int zm__count_alloc(int64_t acct, zm__slot **s, int64_t *b) {
    return zm__count_update(acct, s, b);
}
static inline int zm__count_free(int64_t acct, zm__slot **s, int64_t *b) {
    return zm__count_update(-acct, s, b);
}
static inline void zm__count_freed(size_t acct) { zm__count(-(int64_t)acct); }

/* Counts delta after a large allocation (one that took the slow request
 * check): publishes at once and lets the peak see the exact sum. */
ZM_HIDDEN void zm__count_large(int64_t delta);

/* A request of a batch or more is counted through the large-allocation
 * path, so that the peak sees every single allocation of that size. (Such a
 * request always took the slow check: the request bound is at most a batch.) */
static inline void zm__count_checked(size_t request, int64_t delta) {
    if (request >= (size_t)ZM_PUBLISH_BATCH) zm__count_large(delta);
    else zm__count(delta);
}

static inline void zm__count_nothing(void) {}

/* The wrapper must know every realloc's old size. */
static inline int zm__realloc_counts_itself(size_t size) {
    (void)size;
    return 0;
}

#endif
