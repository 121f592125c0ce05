/* Per-thread counters, the thread registry, fork handling, peak and limit.
 * See counter.h for the scheme. */
#include "counter.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#include "zmalloc.h"
#ifdef ZM_ALLOCATOR_COUNTS
#include "backend.h" /* zm__be_thread_counters(): the allocator's counters */
#endif

enum thread_state {
    THREAD_NEW = 0, /* TLS starts zeroed: not yet registered */
    THREAD_LIVE,    /* has a slot: counts into it */
    THREAD_BUSY,    /* registering: counts into the shared counters */
    THREAD_DEAD,    /* past its exit hook, or could not register: counts into the shared counters */
};

/* Far enough from any balance that b - mark always leaves the batch window. */
#define PLACEHOLDER_MARK (INT64_MIN / 2)

/* Threads without a slot of their own update this one's balance on the hot
 * path (racily, with relaxed atomics: nobody reads it) and always go on to
 * the slow path. */
#ifdef ZM_ALLOCATOR_COUNTS
static const uint64_t far_counter = UINT64_MAX / 2;
ZM_HIDDEN zm__slot zm__placeholder = {.mark = PLACEHOLDER_MARK,
                                      .window_low = PLACEHOLDER_MARK - ZM_PUBLISH_BATCH,
                                      .allocated = &far_counter};
__thread char zm__tls_slotted __attribute__((tls_model("initial-exec")));
/* Bumped by zm_set_limit() after it changes the limit, so that a thread
 * renewing its threshold meanwhile does not keep a stale one. */
static _Atomic uint64_t limit_generation;
#else
ZM_HIDDEN zm__slot zm__placeholder = {.mark = PLACEHOLDER_MARK,
                                      .window_low = PLACEHOLDER_MARK - ZM_PUBLISH_BATCH};
#endif

__thread zm__slot *zm__tls_slot __attribute__((tls_model("initial-exec"))) = &zm__placeholder;
static __thread int tls_state;
#ifdef ZM_ALLOCATOR_COUNTS
/* The thread's allocator counters, and how much of their balance a thread
 * without a slot has already counted into the shared figures. */
static __thread const volatile uint64_t *tls_allocated, *tls_deallocated;
static __thread int64_t tls_counted;
static __thread uint64_t tls_token; /* see zm__slot.token */
#endif
_Atomic size_t zm__request_bound = (size_t)ZM_PUBLISH_BATCH;
static _Atomic size_t limit_bytes;

#ifdef ZMALLOC_TESTING
void (*zm__test_publish_hook)(void);
#endif

/* Slots come from a static pool, then from mmap'd chunks (never the heap);
 * freed slots go to a free list. All under the registry lock. */
#define POOL_SLOTS 64
#define CHUNK_BYTES ((size_t)64 * 1024)
static zm__slot pool[POOL_SLOTS];

/* Shared state. The fields written on hot-ish paths each get a cache line of
 * their own so that publishing threads do not slow each other's readers. */
static struct {
    _Alignas(64) _Atomic int64_t published; /* retired + every live slot's mark */
    _Alignas(64) _Atomic int64_t retired;   /* exited threads' balances and slow-path counts */
    _Alignas(64) _Atomic int64_t peak;
    _Alignas(64) pthread_mutex_t lock;      /* guards the lists and slot reuse */
    zm__slot *head, *free;
    zm__slot *chunk;                        /* unused slots left in the current chunk */
    size_t chunk_left;
    _Atomic int64_t live; /* slots in the registry */
#ifdef ZM_ALLOCATOR_COUNTS
    uint64_t tokens; /* under the lock */
#endif
#ifdef ZM_PRELOAD
    _Atomic uint64_t seq; /* odd while "retired" or "live" changes: zm__peak_check reads both */
#endif
    pthread_key_t exit_key;
    int key_ok;
} g = {.lock = PTHREAD_MUTEX_INITIALIZER, .chunk = pool, .chunk_left = POOL_SLOTS};

static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static void see_peak(int64_t v) {
    int64_t p = atomic_load_explicit(&g.peak, memory_order_relaxed);
    while (v > p && !atomic_compare_exchange_weak_explicit(&g.peak, &p, v, memory_order_relaxed,
                                                           memory_order_relaxed)) {
    }
}

#ifdef ZM_ALLOCATOR_COUNTS
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
#else
/* Each term is one word its owner wrote. */
static int64_t slot_balance(zm__slot *s) {
    return atomic_load_explicit(&s->balance, memory_order_relaxed);
}
#endif

/* The exact figure: each term is a value that its thread's own sequence of
 * calls really produced. Caller holds the lock. */
static int64_t sum_locked(void) {
    int64_t sum = atomic_load_explicit(&g.retired, memory_order_relaxed);
    for (zm__slot *s = g.head; s; s = s->next) sum += slot_balance(s);
    return sum;
}

/* The exact figure, offered to the peak under the lock, so that a reset of
 * the peak and a sample taken before it cannot land out of order. */
static int64_t sample_exact(void) {
    pthread_mutex_lock(&g.lock);
    int64_t used = sum_locked();
    see_peak(used);
    pthread_mutex_unlock(&g.lock);
    return used;
}

/* The estimate moved by delta; only if it now passes the peak can the exact
 * figure have done so by more than the estimate's error.
 * Ordering: relaxed is enough on any CPU. The estimate orders nothing: it
 * only decides whether to take the lock (whose acquire and release order the
 * exact sum) and bounds the limit check, whose overshoot is documented. */
static void add_published(int64_t delta) {
    int64_t est = atomic_fetch_add_explicit(&g.published, delta, memory_order_relaxed) + delta;
    if (est > atomic_load_explicit(&g.peak, memory_order_relaxed)) sample_exact();
}

#ifdef ZM_PRELOAD
static void seq_bump(void) { atomic_fetch_add(&g.seq, 1); }
#else
static void seq_bump(void) {}
#endif

static void add_shared(int64_t delta) {
    seq_bump();
    atomic_fetch_add_explicit(&g.retired, delta, memory_order_relaxed);
    seq_bump();
    add_published(delta);
}

/* Ordering: the owner alone writes its mark and balance; readers of the
 * balance (under the lock) need only a value from its modification order. */
static void publish(zm__slot *s, int64_t balance) {
    int64_t delta = balance - s->mark;
    s->mark = balance;
    s->window_low = balance - ZM_PUBLISH_BATCH;
#ifdef ZM_ALLOCATOR_COUNTS
    atomic_store_explicit(&s->seen, balance, memory_order_relaxed);
#endif
#ifdef ZMALLOC_TESTING
    if (zm__test_publish_hook) zm__test_publish_hook();
#endif
    add_published(delta);
}

static zm__slot *take_slot(void) {
    zm__slot *s = g.free;
    if (s) {
        g.free = s->next;
        return s;
    }
    if (g.chunk_left == 0) {
        void *m = mmap(NULL, CHUNK_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m == MAP_FAILED) return NULL;
        g.chunk = m;
        g.chunk_left = CHUNK_BYTES / sizeof(zm__slot);
    }
    g.chunk_left--;
    return g.chunk++;
}

/* Back onto the free list. Caller holds the lock. */
static void put_slot(zm__slot *s) {
    s->prev = NULL;
    s->next = g.free;
    g.free = s;
}

static void link_slot(zm__slot *s) {
    s->prev = NULL;
    s->next = g.head;
    if (g.head) g.head->prev = s;
    g.head = s;
    seq_bump();
    atomic_fetch_add_explicit(&g.live, 1, memory_order_relaxed);
    seq_bump();
}

/* Folds a slot's balance into the shared counters and frees the slot. Its
 * owner is gone or past its last count. Caller holds the lock (or is the only
 * thread, in a fork child). The estimate gains what the slot had not
 * published; the exact figure does not change. */
static int64_t retire_slot(zm__slot *s) {
    int64_t balance = slot_balance(s);
    seq_bump();
    atomic_fetch_add_explicit(&g.retired, balance, memory_order_relaxed);
    atomic_fetch_add_explicit(&g.published, balance - s->mark, memory_order_relaxed);
    if (s->prev) s->prev->next = s->next;
    else g.head = s->next;
    if (s->next) s->next->prev = s->prev;
    atomic_fetch_sub_explicit(&g.live, 1, memory_order_relaxed);
    seq_bump();
#ifdef ZM_PRELOAD
    zm__stats_fold(&s->stats);
#endif
    put_slot(s);
    return balance;
}

/* Slots whose owner had the calling thread's identity: that thread is gone
 * without its exit hook having run (it registered during the last round of
 * thread-specific-data destructors), since no two live threads share one. */
static void retire_stale_slots(pthread_t self) {
    for (zm__slot *s = g.head, *next; s; s = next) {
        next = s->next;
#ifdef ZM_ALLOCATOR_COUNTS
        if (pthread_equal(s->owner, self) || !owner_alive(s)) retire_slot(s);
#else
        if (pthread_equal(s->owner, self)) retire_slot(s);
#endif
    }
}

/* Key destructor: runs when a registered thread exits. Counts after it (other
 * destructors may still allocate or free) go to the shared counters.
 * Ordering: the owner's last balance store precedes its lock acquire here,
 * so the fold under the lock reads it; "retired" changes under the lock or by
 * atomic adds, and every reader of it holds the lock. */
static void thread_exit(void *arg) {
    pthread_mutex_lock(&g.lock);
#ifdef ZM_ALLOCATOR_COUNTS
    /* (In a fork child the owner's id changed: EPERM, and nothing to undo.) */
    pthread_mutex_unlock(&((zm__slot *)arg)->alive);
#endif
    int64_t balance = retire_slot(arg);
    pthread_mutex_unlock(&g.lock);
#ifdef ZM_ALLOCATOR_COUNTS
    tls_counted = balance; /* what later calls add to it, they count themselves */
    zm__tls_slotted = 0;
#ifdef ZM_JE_FAST
    zm__jef_slow_frees(); /* zm_free's fast path must not skip the count */
#endif
#else
    (void)balance;
#endif
    zm__tls_slot = &zm__placeholder;
    tls_state = THREAD_DEAD;
}

static void fork_prepare(void) { pthread_mutex_lock(&g.lock); }
static void fork_parent(void) { pthread_mutex_unlock(&g.lock); }

/* Only the forking thread lives on in the child: fold the others' balances
 * (their blocks are still there, so they still count) and free their slots.
 * The estimate is rebuilt from its definition, so that a publish another
 * thread had half done when fork() ran leaves no trace. */
static void fork_child(void) {
    zm__slot *self = zm__tls_slot;
    for (zm__slot *s = g.head, *next; s; s = next) {
        next = s->next;
        if (s != self) retire_slot(s);
    }
    int64_t est = atomic_load_explicit(&g.retired, memory_order_relaxed);
    if (self != &zm__placeholder) est += self->mark;
    atomic_store_explicit(&g.published, est, memory_order_relaxed);
    pthread_mutex_init(&g.lock, NULL);
#ifdef ZM_PRELOAD
    zm__preload_fork_child();
#endif
}

static void init_once(void) {
    g.key_ok = pthread_key_create(&g.exit_key, thread_exit) == 0;
    pthread_atfork(fork_prepare, fork_parent, fork_child);
}

/* Set up at load time so that no allocation path has to. */
__attribute__((constructor)) static void counter_init(void) { pthread_once(&g_once, init_once); }

#ifdef ZM_ALLOCATOR_COUNTS
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
    if (delta) add_shared(delta);
#ifdef ZM_JE_FAST
    zm__jef_slow_frees(); /* jemalloc's slow path may have raised the bound */
#endif
}
#endif

static zm__slot *register_thread(void) {
    tls_state = THREAD_BUSY; /* pthread_setspecific may allocate: count that on the slow path */
    pthread_once(&g_once, init_once);
    pthread_t self = pthread_self();
    pthread_mutex_lock(&g.lock);
    retire_stale_slots(self);
    zm__slot *s = g.key_ok ? take_slot() : NULL;
    pthread_mutex_unlock(&g.lock);
    if (!s || pthread_setspecific(g.exit_key, s) != 0) {
        if (s) {
            pthread_mutex_lock(&g.lock);
            put_slot(s);
            pthread_mutex_unlock(&g.lock);
        }
        tls_state = THREAD_DEAD; /* no exit hook: never enter the registry */
        return NULL;
    }
#ifdef ZM_ALLOCATOR_COUNTS
    /* The counters hold the thread's whole history, this call included: the
     * slot starts at that balance, published at once. */
    find_own_counters();
    s->allocated = tls_allocated;
    s->deallocated = tls_deallocated;
    s->allocated_mark = *tls_allocated;
    atomic_store_explicit(&s->threshold, 0, memory_order_relaxed); /* renewed by the caller */
    int64_t balance = own_balance(tls_allocated, tls_deallocated);
    s->mark = balance;
    s->window_low = balance - ZM_PUBLISH_BATCH;
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
     * the slot, whose balance is its whole history: in the same hold of the
     * lock that readers sum under. */
    int64_t counted = tls_counted;
    pthread_mutex_lock(&g.lock);
    s->token = tls_token = ++g.tokens;
    s->owner = self;
    link_slot(s);
    seq_bump();
    atomic_fetch_sub_explicit(&g.retired, counted, memory_order_relaxed);
    seq_bump();
    pthread_mutex_unlock(&g.lock);
    tls_counted = 0;
    zm__tls_slot = s;
    zm__tls_slotted = 1;
    tls_state = THREAD_LIVE;
    add_published(balance - counted);
    return s;
#else
    /* Ordering: the zeroed balance is stored before the slot is linked under
     * the lock; a reader acquires that lock before it reads the slot, so on a
     * weakly ordered CPU too it sees 0 or later, never the slot's former
     * owner's last value. */
    atomic_store_explicit(&s->balance, 0, memory_order_relaxed);
    s->mark = 0;
    s->window_low = -ZM_PUBLISH_BATCH;
#ifdef ZM_PRELOAD
    s->peak_mark = 0;
#endif
    pthread_mutex_lock(&g.lock);
    s->owner = self;
    link_slot(s);
    pthread_mutex_unlock(&g.lock);
    zm__tls_slot = s;
    tls_state = THREAD_LIVE;
    return s;
#endif
}

#ifdef ZM_ALLOCATOR_COUNTS
static void publish_counted(zm__slot *s) {
    s->allocated_mark = *s->allocated;
    publish(s, own_balance(s->allocated, s->deallocated));
}

/* Ordering: zm_set_limit() stores the limit, bumps the generation, then
 * zeroes every threshold; a renewal that read the old limit either stored
 * before that zeroing or sees the new generation (seq_cst: the store and the
 * second load do not pass each other) and zeroes its own. */
static void renew_threshold(zm__slot *s) {
    uint64_t gen = atomic_load(&limit_generation);
    uint64_t t = atomic_load_explicit(&limit_bytes, memory_order_relaxed)
                     ? 0
                     : s->allocated_mark + (uint64_t)ZM_PUBLISH_BATCH - 1;
    atomic_store(&s->threshold, t);
    if (atomic_load(&limit_generation) != gen) atomic_store(&s->threshold, 0);
}

void zm__after_slow_alloc(size_t request) {
    zm__slot *s = zm__tls_slot;
    if (s == &zm__placeholder) {
        zm__count_unslotted();
        s = zm__tls_slot;
    } else if (request >= (size_t)ZM_PUBLISH_BATCH ||
               *s->allocated - s->allocated_mark > (uint64_t)ZM_PUBLISH_BATCH) {
        publish_counted(s);
    }
    /* The peak sees every single allocation of a batch or more. */
    if (request >= (size_t)ZM_PUBLISH_BATCH) sample_exact();
    if (s != &zm__placeholder) renew_threshold(s);
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

void zm__count_unslotted(void) {
    if (tls_state == THREAD_BUSY) return; /* registration reads the counters after */
    if (tls_state == THREAD_NEW && ++tls_unslotted_calls >= ZM_REGISTER_AFTER && register_thread())
        return;
    count_unslotted();
}
#else
/* Reached when the balance drifted a batch from the mark, or when the thread
 * has no slot (the placeholder's mark sends every update here). */
void zm__count_slow(zm__slot *s, int64_t balance, int64_t delta) {
    if (zm_likely(s != &zm__placeholder)) {
        publish(s, balance);
        return;
    }
    if (tls_state == THREAD_NEW && (s = register_thread()) != NULL) {
        zm__count(delta);
        return;
    }
    add_shared(delta);
}

void zm__count_large(int64_t delta) {
    zm__count(delta);
    zm__slot *s = zm__tls_slot;
    int64_t balance = atomic_load_explicit(&s->balance, memory_order_relaxed);
    if (s != &zm__placeholder && balance != s->mark) publish(s, balance);
    sample_exact();
}
#endif

int zm__request_allowed(size_t request) {
    if (request == 0) return 1;
    if (request >= (size_t)PTRDIFF_MAX) return 0;
    size_t limit = atomic_load_explicit(&limit_bytes, memory_order_relaxed);
    if (limit == 0) return 1;
    /* The estimate is at most one batch per live thread below the truth:
     * when even that bound fits, no need for the exact sum. */
    int64_t bound = atomic_load_explicit(&g.published, memory_order_relaxed) +
                    atomic_load_explicit(&g.live, memory_order_relaxed) * ZM_PUBLISH_BATCH;
    if (bound < 0) bound = 0;
    if ((uint64_t)bound <= limit && request <= limit - (uint64_t)bound) return 1;
    int64_t used = sample_exact();
    if (used < 0) used = 0;
    return (uint64_t)used <= limit && request <= limit - (uint64_t)used;
}

#ifdef ZM_PRELOAD
/* A seqlock read of "retired" and "live": with no other slot, retired plus
 * the caller's balance is the exact total at that instant. */
void zm__peak_check(zm__slot *s) {
    int64_t b = atomic_load_explicit(&s->balance, memory_order_relaxed);
    uint64_t seq = atomic_load_explicit(&g.seq, memory_order_acquire);
    int64_t retired = atomic_load_explicit(&g.retired, memory_order_relaxed);
    int64_t live = atomic_load_explicit(&g.live, memory_order_relaxed);
    atomic_thread_fence(memory_order_acquire);
    if (!(seq & 1) && live == 1 && atomic_load_explicit(&g.seq, memory_order_relaxed) == seq) {
        see_peak(retired + b);
        s->peak_mark = b;
        return;
    }
    sample_exact();
    s->peak_mark = b + ZM_PUBLISH_BATCH;
}

int zm__visit_slots(void (*visit)(const zm__slot *, void *), void *arg, int try_lock,
                    int64_t *used) {
    if (try_lock) {
        if (pthread_mutex_trylock(&g.lock) != 0) return -1;
    } else {
        pthread_mutex_lock(&g.lock);
    }
    *used = sum_locked();
    see_peak(*used);
    for (zm__slot *s = g.head; s; s = s->next) visit(s, arg);
    pthread_mutex_unlock(&g.lock);
    return 0;
}
#endif

ZM_EXPORT size_t zm_used_memory(void) {
    int64_t used = sample_exact();
    return used > 0 ? (size_t)used : 0;
}

ZM_EXPORT size_t zm_used_memory_peak(void) {
    int64_t p = atomic_load_explicit(&g.peak, memory_order_relaxed);
    return p > 0 ? (size_t)p : 0;
}

ZM_EXPORT void zm_reset_peak(void) {
    pthread_mutex_lock(&g.lock);
    atomic_store_explicit(&g.peak, sum_locked(), memory_order_relaxed);
    pthread_mutex_unlock(&g.lock);
}

ZM_EXPORT void zm_set_limit(size_t bytes) {
    atomic_store_explicit(&limit_bytes, bytes, memory_order_relaxed);
    atomic_store_explicit(&zm__request_bound, bytes ? 0 : (size_t)ZM_PUBLISH_BATCH,
                          memory_order_relaxed);
#ifdef ZM_ALLOCATOR_COUNTS
    /* Every thread takes the slow path once, which renews its threshold. */
    atomic_fetch_add(&limit_generation, 1);
    pthread_mutex_lock(&g.lock);
    for (zm__slot *s = g.head; s; s = s->next) atomic_store(&s->threshold, 0);
    pthread_mutex_unlock(&g.lock);
#endif
}

ZM_EXPORT size_t zm_get_limit(void) {
    return atomic_load_explicit(&limit_bytes, memory_order_relaxed);
}
