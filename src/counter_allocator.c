/* The allocator counts: see counter_allocator.h. Registration, the slow
 * paths, and reading another thread's counters for the registry. */
#include "counter.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/uio.h>
#include <unistd.h>

#include "backend.h" /* zm__be_thread_counters(): the allocator's counters */

/* Far enough from any balance that b - mark always leaves the batch window. */
#define PLACEHOLDER_MARK (INT64_MIN / 2)

/* Threads without a slot of their own see this one: its counter is so far
 * past its threshold (0) that every request takes the slow path. */
static const uint64_t far_counter = UINT64_MAX / 2;
ZM_HIDDEN zm__slot zm__placeholder = {.mark = PLACEHOLDER_MARK, .allocated = &far_counter};
__thread zm__slot *zm__tls_slot __attribute__((tls_model("initial-exec"))) = &zm__placeholder;
__thread char zm__tls_slotted __attribute__((tls_model("initial-exec")));
static __thread unsigned char tls_state;
/* The thread's allocator counters, and how much of their balance a thread
 * without a slot has already counted into the shared figures. */
static __thread const volatile uint64_t *tls_allocated, *tls_deallocated;
static __thread int64_t tls_counted;
static __thread uint64_t tls_token; /* see zm__slot.token */
/* Bumped by a limit change before it zeroes the thresholds, so that a thread
 * renewing its threshold meanwhile does not keep a stale one. */
static _Atomic uint64_t limit_generation;
static uint64_t tokens; /* under the registry lock */

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ volatile("yield");
#endif
}

static uint64_t load_counter(const volatile uint64_t *c) {
    return __atomic_load_n(c, __ATOMIC_ACQUIRE);
}

/* The calling thread's own balance: nobody else writes its counters. */
static int64_t own_balance(const volatile uint64_t *allocated, const volatile uint64_t *deallocated) {
    return (int64_t)(*allocated - *deallocated);
}

/* The owner is dead (it never ran its exit hook): its counters are frozen,
 * but its stack, which holds them, may be unmapped or already another
 * thread's. process_vm_readv() reads them without faulting; they count if the
 * token shows the TLS is still the owner's, else the balance last read does. */
static void read_dead_owner(zm__slot *s) {
    uint64_t token = 0, a = 0, d = 0;
    struct iovec local[3] = {{&token, sizeof token}, {&a, sizeof a}, {&d, sizeof d}};
    struct iovec remote[3] = {{(void *)s->token_at, sizeof token},
                              {(void *)s->allocated, sizeof a},
                              {(void *)s->deallocated, sizeof d}};
    if (process_vm_readv(getpid(), local, 3, remote, 3, 0) == (ssize_t)(3 * sizeof token) &&
        token == s->token)
        atomic_store_explicit(&s->seen, (int64_t)(a - d), memory_order_relaxed);
    s->owner_gone = 1;
}

/* Whether the slot's owner is alive; a dead one's final balance goes to seen.
 * Caller holds the lock. */
static int owner_alive(zm__slot *s) {
    if (s->owner_gone) return 0;
#ifdef __GLIBC__
    /* First without a locked instruction: a robust mutex's futex word holds
     * its owner's thread id, and the kernel sets bit 30 in it when the owner
     * dies holding it (the robust-futex ABI; glibc keeps the word in __lock). */
    int word = __atomic_load_n(&s->alive.__data.__lock, __ATOMIC_ACQUIRE);
    if (word != 0 && !(word & 0x40000000)) return 1;
#endif
    int rc = pthread_mutex_trylock(&s->alive);
    if (rc == EBUSY) return 1;
    if (rc == EOWNERDEAD) pthread_mutex_consistent(&s->alive);
    if (rc == 0 || rc == EOWNERDEAD) pthread_mutex_unlock(&s->alive);
    read_dead_owner(s);
    return 0;
}

static int owner_dead(zm__slot *s) { return !owner_alive(s); }

/* A slot's balance at one instant of its owner's sequence of calls: the
 * allocated counter read between two equal readings of the deallocated one
 * (both only grow, and they share a cache line, so a retry is rare). A slot
 * whose owner is gone without its exit hook gives its final balance, or the
 * one last read. Caller holds the lock, or is the owner. */
static int64_t slot_balance(zm__slot *s) {
    if (s == zm__tls_slot) return own_balance(s->allocated, s->deallocated);
    if (!owner_alive(s)) return atomic_load_explicit(&s->seen, memory_order_relaxed);
    for (;;) {
        if (load_counter(s->token_at) != s->token) break;
        uint64_t d = load_counter(s->deallocated);
        uint64_t a = load_counter(s->allocated);
        uint64_t d2 = load_counter(s->deallocated);
        if (load_counter(s->token_at) != s->token) break;
        if (d == d2) {
            int64_t b = (int64_t)(a - d);
            atomic_store_explicit(&s->seen, b, memory_order_relaxed);
            return b;
        }
        cpu_relax();
    }
    return atomic_load_explicit(&s->seen, memory_order_relaxed);
}

/* (In a fork child the owner's id changed: EPERM, and nothing to undo.) */
static void exiting(zm__slot *s) { pthread_mutex_unlock(&s->alive); }

static void exited(int64_t balance) {
    tls_counted = balance; /* what later calls add to it, they count themselves */
    zm__tls_slotted = 0;
    zm__count_nothing(); /* zm_free's fast path must not skip the count */
    zm__tls_slot = &zm__placeholder;
    tls_state = ZM_THREAD_DEAD;
}

/* Every thread takes the slow path once, which renews its threshold.
 * Ordering: see renew_threshold(). */
static void limit_changed(zm__slot *s) {
    atomic_fetch_add(&limit_generation, 1);
    atomic_store(&s->threshold, 0);
}

static zm__slot *own_slot(void) {
    return zm__tls_slot != &zm__placeholder ? zm__tls_slot : NULL;
}

static const zm__strategy strategy = {slot_balance, owner_dead, exiting, exited, limit_changed,
                                      own_slot};

/* Set up at load time so that no allocation path has to. */
__attribute__((constructor)) static void counter_init(void) { zm__registry_start(&strategy); }

/* The calling thread's counters; a jemalloc without them cannot count at
 * all, which the build's own tests rule out: say so and stop. */
static void find_own_counters(void) {
    if (tls_allocated) return;
    if (zm__be_thread_counters(&tls_allocated, &tls_deallocated) != 0) {
        static const char msg[] = "zmalloc: the private jemalloc has no thread.allocatedp counters\n";
        ssize_t ignored = write(STDERR_FILENO, msg, sizeof msg - 1);
        (void)ignored;
        abort();
    }
}

/* What the thread's allocator counters moved since it last counted, into
 * the shared figures: for a thread without a slot, after each call. */
static void count_unslotted(void) {
    find_own_counters();
    int64_t b = own_balance(tls_allocated, tls_deallocated);
    int64_t delta = b - tls_counted;
    tls_counted = b;
    if (delta) zm__add_shared(delta);
    zm__count_nothing(); /* jemalloc's slow path may have reopened the fast path */
}

static void take_token(zm__slot *s) { s->token = tls_token = ++tokens; }

static zm__slot *register_thread(void) {
    zm__slot *s = zm__strategy_join(&strategy, &tls_state);
    if (!s) return NULL;
    /* The counters hold the thread's whole history, this call included: the
     * slot starts at that balance, published at once. */
    find_own_counters();
    s->allocated = tls_allocated;
    s->deallocated = tls_deallocated;
    s->allocated_mark = *tls_allocated;
    atomic_store_explicit(&s->threshold, 0, memory_order_relaxed); /* renewed by the caller */
    int64_t balance = own_balance(tls_allocated, tls_deallocated);
    atomic_store_explicit(&s->seen, balance, memory_order_relaxed);
    s->token_at = &tls_token;
    s->owner_gone = 0;
    pthread_mutexattr_t robust;
    pthread_mutexattr_init(&robust);
    pthread_mutexattr_setrobust(&robust, PTHREAD_MUTEX_ROBUST);
    pthread_mutex_init(&s->alive, &robust);
    pthread_mutexattr_destroy(&robust);
    pthread_mutex_lock(&s->alive); /* held until the exit hook */
    /* What the thread counted unslotted moves from the shared figure into
     * the slot, whose balance is its whole history. */
    zm__registry_link(s, balance, tls_counted, take_token);
    tls_counted = 0;
    zm__tls_slot = s;
    zm__tls_slotted = 1;
    tls_state = ZM_THREAD_LIVE;
    return s;
}

static void publish_counted(zm__slot *s) {
    s->allocated_mark = *s->allocated;
    int64_t balance = own_balance(s->allocated, s->deallocated);
    atomic_store_explicit(&s->seen, balance, memory_order_relaxed);
    zm__publish(s, balance);
}

/* Ordering: a limit change stores the limit, then per slot bumps the
 * generation and zeroes the threshold; a renewal that read the old limit
 * either stored before that zeroing or sees the new generation (seq_cst: the
 * store and the second load do not pass each other) and zeroes its own. */
static void renew_threshold(zm__slot *s) {
    uint64_t gen = atomic_load(&limit_generation);
    uint64_t t = zm__checks_all() ? 0 : s->allocated_mark + (uint64_t)ZM_PUBLISH_BATCH - 1;
    atomic_store(&s->threshold, t);
    if (atomic_load(&limit_generation) != gen) atomic_store(&s->threshold, 0);
}

/* A thread registers at its ZM_REGISTER_AFTER-th counted call, not its
 * first: until then each call is counted exactly into the shared figure. Its
 * slot would be exact only while the thread lives or once its exit hook
 * ran: a thread whose first calls come in the last round of
 * thread-specific-data destructors gets no exit hook, its frees go through
 * jemalloc's own fast path unseen, and a reader after the next thread took
 * its TLS would find only the balance last read. Such a thread makes a few
 * calls, and they all count. */
#define ZM_REGISTER_AFTER 16
static __thread unsigned tls_unslotted_calls;

/* A thread without a slot: what its call moved, once the allocator counted
 * it (the arguments are the wrapper's). */
void zm__count_slow(zm__slot *s, int64_t balance, int64_t delta) {
    (void)s, (void)balance, (void)delta;
    if (tls_state == ZM_THREAD_BUSY) return; /* registration reads the counters after */
    if (tls_state == ZM_THREAD_NEW && ++tls_unslotted_calls >= ZM_REGISTER_AFTER &&
        register_thread())
        return;
    count_unslotted();
}

void zm__count_checked(size_t request, int64_t delta) {
    (void)delta;
    zm__slot *s = zm__tls_slot;
    if (s == &zm__placeholder) {
        zm__count_slow(s, 0, 0);
        s = zm__tls_slot;
    } else if (request >= (size_t)ZM_PUBLISH_BATCH ||
               *s->allocated - s->allocated_mark > (uint64_t)ZM_PUBLISH_BATCH) {
        publish_counted(s);
    }
    /* The peak sees every single allocation of a batch or more. */
    if (request >= (size_t)ZM_PUBLISH_BATCH) zm__sample_exact();
    if (s != &zm__placeholder) renew_threshold(s);
}
