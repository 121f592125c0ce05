/* The thread registry: every thread that counts owns a slot (a static pool,
 * then mmap'd chunks, never the heap), linked in one list under one lock, and
 * the shared figures the slots add up to: "retired" (the balances of threads
 * gone and the counts of threads without a slot), the published estimate,
 * the peak and the limit.
 *
 * Slots live outside the threads, and a thread's TLS holds only a pointer to
 * its slot. So a thread whose exit hook never runs (one that first counts in
 * the last round of thread-specific-data destructors) leaves a slot that is
 * still readable and still right, instead of a registry entry inside TLS that
 * the next thread's start re-initialises.
 *
 * How a slot's balance is kept is the counting strategy's (counter.h): the
 * registry asks it through the table it is started with, on cold paths only
 * (sums, a thread's exit, a stale slot, a new limit). A layer above (zmrun's
 * preload library) may keep figures of its own in each slot's extension area
 * and be told when a slot retires and when a fork child starts.
 *
 * Nothing in this layer allocates from the heap. */
#ifndef ZM_COUNTER_REGISTRY_H
#define ZM_COUNTER_REGISTRY_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "internal.h"

/* How far a slot's balance drifts from its mark before it is published. */
#define ZM_PUBLISH_BATCH ((int64_t)64 * 1024)

/* Bytes a layer above may keep in each slot: its build sets them (zmrun's
 * preload library, cmake/zmrun.cmake); libzmalloc's slots have none. */
#ifndef ZM_SLOT_EXT_BYTES
#define ZM_SLOT_EXT_BYTES 0
#endif

typedef struct zm__slot {
    /* The counting strategy's part: the one of the two that the build's
     * strategy keeps (counter_wrapper.c or counter_allocator.c). Its first
     * words are the only ones the hot path touches. */
    union {
        struct { /* the wrapper counts */
            /* Written by the owner only; read by anyone under the registry
             * lock. Relaxed is enough: a reader needs some value from the
             * owner's own modification order, which coherence guarantees on
             * any CPU; the lock orders slot reuse against readers. */
            _Alignas(64) _Atomic int64_t balance;
            int64_t window_low; /* owner only: mark - ZM_PUBLISH_BATCH */
        };
        struct { /* the allocator counts */
            _Alignas(64) const volatile uint64_t *allocated, *deallocated; /* in the owner's TLS */
            /* See zm__request_small(). The owner renews it; zm_set_limit()
             * zeroes it. */
            _Atomic uint64_t threshold;
            uint64_t allocated_mark; /* owner only: *allocated when last published */
            /* Whether the owner lives: it holds this robust mutex from
             * registration to its exit hook (counter_allocator.c). */
            pthread_mutex_t alive;
            /* A reader trusts the counters only while *token_at (a TLS word
             * of the owner) still holds token: the next thread may reuse a
             * dead one's TLS. */
            const volatile uint64_t *token_at;
            uint64_t token;
            _Atomic int64_t seen; /* the balance last read: what a dead owner's slot retires with */
            int owner_gone;       /* under the lock: seen is final */
        };
    };
    int64_t mark;                 /* owner only: balance when last published */
    struct zm__slot *prev, *next; /* registry or free-list links, under the lock */
    pthread_t owner;              /* under the lock */
    _Alignas(8) unsigned char ext[ZM_SLOT_EXT_BYTES]; /* the layer above's; zeroed for each owner */
} zm__slot;

/* What the registry asks the counting strategy, on cold paths only. */
typedef struct zm__strategy {
    /* A slot's balance at one instant of its owner's calls. Lock held. */
    int64_t (*balance)(zm__slot *s);
    /* Whether a registered slot's owner died without its exit hook (besides
     * a slot whose owner had the caller's identity). Lock held. */
    int (*owner_dead)(zm__slot *s);
    /* The owner's exit hook, before its slot retires (lock held) and after,
     * with the balance it retired with (lock free). */
    void (*exiting)(zm__slot *s);
    void (*exited)(int64_t balance);
    /* The limit changed: a live slot's cached checks are stale. Lock held. */
    void (*limit_changed)(zm__slot *s);
    /* The calling thread's own slot, or NULL. */
    zm__slot *(*own_slot)(void);
} zm__strategy;

/* Sets up the registry (once; any thread, any time): the strategy's first
 * registration and its constructor both call it. */
ZM_HIDDEN void zm__registry_start(const zm__strategy *strategy);
/* Takes a slot for the calling thread and arms its exit hook (which calls
 * the strategy's exiting and exited); NULL when there is none. */
ZM_HIDDEN zm__slot *zm__registry_join(void);
/* Links the calling thread's slot, whose balance starts at `balance`, of
 * which `counted` bytes were already counted into the shared figures: they
 * move into the slot in the same hold of the lock that readers sum under.
 * `under_lock`, if not NULL, runs first in that hold. */
ZM_HIDDEN void zm__registry_link(zm__slot *s, int64_t balance, int64_t counted,
                                 void (*under_lock)(zm__slot *s));

/* The slot's owner publishes its balance into the estimate. */
ZM_HIDDEN void zm__publish(zm__slot *s, int64_t balance);
/* A count of a thread without a slot, into the shared figures. */
ZM_HIDDEN void zm__add_shared(int64_t delta);
/* The exact figure, offered to the peak. */
ZM_HIDDEN int64_t zm__sample_exact(void);
/* Whether the limit (or a request gate) wants every request checked. */
ZM_HIDDEN int zm__checks_all(void);

/* zmalloc.h's zm_used_memory(), zm_used_memory_peak(), zm_reset_peak(),
 * zm_set_limit() and zm_get_limit(), which alloc.c exports. */
ZM_HIDDEN size_t zm__used_memory(void);
ZM_HIDDEN size_t zm__used_memory_peak(void);
ZM_HIDDEN void zm__reset_peak(void);
ZM_HIDDEN void zm__set_limit(size_t bytes);
ZM_HIDDEN size_t zm__get_limit(void);

/* Requests of this size or more take the slow check: ZM_PUBLISH_BATCH
 * without a limit or gate, 0 with one, so that one compare covers both. */
extern ZM_HIDDEN _Atomic size_t zm__request_bound;
/* Whether a request for `request` more bytes may go ahead: below PTRDIFF_MAX,
 * let through by the gate, and within the limit. A request of 0 always may
 * (the gate still sees it). */
ZM_HIDDEN int zm__request_allowed(size_t request);

/* The layer above's part (zmrun's preload library). */
typedef struct zm__registry_hooks {
    void (*retire)(zm__slot *s); /* a slot retires: fold its ext. Lock held */
    void (*fork_child)(void);    /* in a fork child, after the other threads' slots retired */
} zm__registry_hooks;
/* Set before any thread exits or forks: from a constructor. */
ZM_HIDDEN void zm__registry_set_hooks(const zm__registry_hooks *hooks);
/* With a gate set every request takes the slow check, which asks it first:
 * nonzero refuses (zmrun --fail-after). NULL removes it. */
ZM_HIDDEN void zm__set_request_gate(int (*gate)(void));
/* The calling thread's balance is `balance`: offers the exact total to the
 * peak, without the lock while the thread is the only one counting (a seqlock
 * read of "retired" and "live"), so that the peak of a single-threaded
 * program is exact; otherwise sampled under the lock. Returns the balance
 * above which the next offer is worth making. */
ZM_HIDDEN int64_t zm__peak_offer(int64_t balance);
/* Takes the registry lock (or, with try_lock, gives up with -1 when it is
 * held: for a signal handler), offers the exact used figure to the peak,
 * stores it in *used, and calls visit on every live slot. Returns 0. */
ZM_HIDDEN int zm__visit_slots(void (*visit)(const zm__slot *, void *), void *arg, int try_lock,
                              int64_t *used);

#ifdef ZMALLOC_TESTING
/* Called inside a publish, between the slot's mark and the shared estimate
 * being updated: tests fork there. */
extern ZM_HIDDEN void (*zm__test_publish_hook)(void);
#endif

#endif
