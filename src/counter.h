/* The accounting layer's seam: one signed balance per thread, in a registry
 * slot of its own (counter_registry.h), summed under the registry lock by a
 * reader; a balance may go negative when its thread frees blocks other
 * threads allocated, and only the sum means anything.
 *
 * Who keeps a thread's balance is a strategy, chosen by which file the build
 * compiles (cmake/backend.cmake), as the backend is:
 *   counter_wrapper.{h,c}    the wrapper counts every block it hands out
 *   counter_allocator.{h,c}  the allocator counts (a private jemalloc): the
 *                            balance is read from its own per-thread counters
 * Each strategy's header (ZM_COUNTER_HEADER) gives the same inline calls:
 *
 *   int  zm__request_small(size_t request);   may go ahead without the slow check
 *   int  zm__count_alloc(int64_t acct, zm__slot **s, int64_t *b);
 *   int  zm__count_free(int64_t acct, zm__slot **s, int64_t *b);
 *        after an allocation / before a free that took no slow check: nonzero
 *        when zm__count_slow(*s, *b, +-acct) must follow (out of line; for a
 *        free, after the block is gone)
 *   void zm__count_freed(size_t acct);         after a free that told its size
 *   void zm__count_checked(size_t request, int64_t delta);
 *        after an allocation (or a realloc's growth) that took the slow check
 *   int  zm__realloc_counts_itself(size_t size);
 *        the allocator counts this realloc: no old size needed
 *   void zm__count_nothing(void);              after an allocator call that counted nothing
 *   ZM_COUNT_FREE_SIZES                        whether a free must learn its size
 *
 * Besides its balance a slot keeps `mark`, the balance last published into
 * one shared estimate. The hot path publishes when the balance drifts 64 KiB
 * from the mark either way, so the estimate is within 64 KiB per live thread
 * of the truth: close enough to decide most limit checks without the lock,
 * and to know when the exact sum may show a new peak. */
#ifndef ZM_COUNTER_H
#define ZM_COUNTER_H

#include "counter_registry.h"

/* The calling thread's slot. Until the thread registers (and after its exit
 * hook) it points at a shared placeholder that sends every update to the
 * strategy's slow path: the hot path needs no state test. Both are the
 * strategy's. */
extern ZM_HIDDEN __thread zm__slot *zm__tls_slot __attribute__((tls_model("initial-exec")));
extern ZM_HIDDEN zm__slot zm__placeholder;

/* Where a thread stands with the registry (each strategy keeps it in TLS). */
enum zm__thread_state {
    ZM_THREAD_NEW = 0, /* TLS starts zeroed: not yet registered */
    ZM_THREAD_LIVE,    /* has a slot: counts into it */
    ZM_THREAD_BUSY,    /* registering: counts into the shared counters */
    ZM_THREAD_DEAD,    /* past its exit hook, or could not register: counts into the shared counters */
};

/* A strategy's registration starts here: a slot for the calling thread, or
 * NULL (the thread is then DEAD). */
static inline zm__slot *zm__strategy_join(const zm__strategy *strategy, unsigned char *state) {
    *state = ZM_THREAD_BUSY; /* pthread_setspecific may allocate: count that on the slow path */
    zm__registry_start(strategy);
    zm__slot *s = zm__registry_join();
    if (!s) *state = ZM_THREAD_DEAD; /* no exit hook: never enter the registry */
    return s;
}

/* Reached when a count leaves the publish window, or when the thread has no
 * slot (the placeholder sends every update here). */
ZM_HIDDEN void zm__count_slow(zm__slot *s, int64_t balance, int64_t delta);

#include ZM_COUNTER_HEADER

#endif
