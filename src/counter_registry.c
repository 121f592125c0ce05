/* The thread registry and the shared figures: see counter_registry.h. */
#include "counter_registry.h"

#include <string.h>
#include <sys/mman.h>

_Atomic size_t zm__request_bound = (size_t)ZM_PUBLISH_BATCH;
static _Atomic size_t limit_bytes;
static int (*_Atomic request_gate)(void);

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
    _Atomic int64_t live;  /* slots in the registry */
    _Atomic uint64_t seq;  /* odd while "retired" or "live" changes: zm__peak_offer reads both */
    pthread_key_t exit_key;
    int key_ok;
    const zm__strategy *_Atomic strategy;
    const zm__registry_hooks *_Atomic hooks;
} g = {.lock = PTHREAD_MUTEX_INITIALIZER, .chunk = pool, .chunk_left = POOL_SLOTS};

static pthread_once_t g_once = PTHREAD_ONCE_INIT;

/* Set by zm__registry_start() before the first slot is taken, so every path
 * that meets a slot finds it. */
static const zm__strategy *strategy(void) {
    return atomic_load_explicit(&g.strategy, memory_order_relaxed);
}

static void see_peak(int64_t v) {
    int64_t p = atomic_load_explicit(&g.peak, memory_order_relaxed);
    while (v > p && !atomic_compare_exchange_weak_explicit(&g.peak, &p, v, memory_order_relaxed,
                                                           memory_order_relaxed)) {
    }
}

/* The exact figure: each term is a value that its thread's own sequence of
 * calls really produced. Caller holds the lock. */
static int64_t sum_locked(void) {
    int64_t sum = atomic_load_explicit(&g.retired, memory_order_relaxed);
    for (zm__slot *s = g.head; s; s = s->next) sum += strategy()->balance(s);
    return sum;
}

/* The exact figure, offered to the peak under the lock, so that a reset of
 * the peak and a sample taken before it cannot land out of order. */
int64_t zm__sample_exact(void) {
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
    if (est > atomic_load_explicit(&g.peak, memory_order_relaxed)) zm__sample_exact();
}

/* Around every change of "retired" or "live": zm__peak_offer() reads both
 * without the lock. Cold paths only. */
static void seq_bump(void) { atomic_fetch_add(&g.seq, 1); }

void zm__add_shared(int64_t delta) {
    seq_bump();
    atomic_fetch_add_explicit(&g.retired, delta, memory_order_relaxed);
    seq_bump();
    add_published(delta);
}

/* Ordering: the owner alone writes its mark and balance; readers of the
 * balance (under the lock) need only a value from its modification order. */
void zm__publish(zm__slot *s, int64_t balance) {
    int64_t delta = balance - s->mark;
    s->mark = balance;
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

/* Folds a slot's balance into the shared counters and frees the slot. Its
 * owner is gone or past its last count. Caller holds the lock (or is the only
 * thread, in a fork child). The estimate gains what the slot had not
 * published; the exact figure does not change. */
static int64_t retire_slot(zm__slot *s) {
    int64_t balance = strategy()->balance(s);
    seq_bump();
    atomic_fetch_add_explicit(&g.retired, balance, memory_order_relaxed);
    atomic_fetch_add_explicit(&g.published, balance - s->mark, memory_order_relaxed);
    if (s->prev) s->prev->next = s->next;
    else g.head = s->next;
    if (s->next) s->next->prev = s->prev;
    atomic_fetch_sub_explicit(&g.live, 1, memory_order_relaxed);
    seq_bump();
    const zm__registry_hooks *hooks = atomic_load_explicit(&g.hooks, memory_order_relaxed);
    if (hooks) hooks->retire(s);
    put_slot(s);
    return balance;
}

/* Slots whose owner had the calling thread's identity: that thread is gone
 * without its exit hook having run (it registered during the last round of
 * thread-specific-data destructors), since no two live threads share one. */
static void retire_stale_slots(pthread_t self) {
    for (zm__slot *s = g.head, *next; s; s = next) {
        next = s->next;
        if (pthread_equal(s->owner, self) || strategy()->owner_dead(s)) retire_slot(s);
    }
}

/* Key destructor: runs when a registered thread exits. Counts after it (other
 * destructors may still allocate or free) go to the shared counters.
 * Ordering: the owner's last balance store precedes its lock acquire here,
 * so the fold under the lock reads it; "retired" changes under the lock or by
 * atomic adds, and every reader of it holds the lock. */
static void thread_exit(void *arg) {
    pthread_mutex_lock(&g.lock);
    strategy()->exiting(arg);
    int64_t balance = retire_slot(arg);
    pthread_mutex_unlock(&g.lock);
    strategy()->exited(balance);
}

static void fork_prepare(void) { pthread_mutex_lock(&g.lock); }
static void fork_parent(void) { pthread_mutex_unlock(&g.lock); }

/* Only the forking thread lives on in the child: fold the others' balances
 * (their blocks are still there, so they still count) and free their slots.
 * The estimate is rebuilt from its definition, so that a publish another
 * thread had half done when fork() ran leaves no trace. */
static void fork_child(void) {
    zm__slot *self = g.head ? strategy()->own_slot() : NULL;
    for (zm__slot *s = g.head, *next; s; s = next) {
        next = s->next;
        if (s != self) retire_slot(s);
    }
    int64_t est = atomic_load_explicit(&g.retired, memory_order_relaxed);
    if (self) est += self->mark;
    atomic_store_explicit(&g.published, est, memory_order_relaxed);
    pthread_mutex_init(&g.lock, NULL);
    const zm__registry_hooks *hooks = atomic_load_explicit(&g.hooks, memory_order_relaxed);
    if (hooks) hooks->fork_child();
}

static void init_once(void) {
    g.key_ok = pthread_key_create(&g.exit_key, thread_exit) == 0;
    pthread_atfork(fork_prepare, fork_parent, fork_child);
}

void zm__registry_start(const zm__strategy *st) {
    atomic_store_explicit(&g.strategy, st, memory_order_relaxed);
    pthread_once(&g_once, init_once);
}

void zm__registry_set_hooks(const zm__registry_hooks *hooks) {
    atomic_store_explicit(&g.hooks, hooks, memory_order_relaxed);
}

zm__slot *zm__registry_join(void) {
    pthread_t self = pthread_self();
    pthread_mutex_lock(&g.lock);
    retire_stale_slots(self);
    zm__slot *s = g.key_ok ? take_slot() : NULL;
    pthread_mutex_unlock(&g.lock);
    if (!s) return NULL;
    if (pthread_setspecific(g.exit_key, s) != 0) {
        pthread_mutex_lock(&g.lock);
        put_slot(s);
        pthread_mutex_unlock(&g.lock);
        return NULL;
    }
    memset(s->ext, 0, sizeof s->ext);
    return s;
}

static void link_slot(zm__slot *s) {
    s->prev = NULL;
    s->next = g.head;
    if (g.head) g.head->prev = s;
    g.head = s;
    atomic_fetch_add_explicit(&g.live, 1, memory_order_relaxed);
}

void zm__registry_link(zm__slot *s, int64_t balance, int64_t counted,
                       void (*under_lock)(zm__slot *s)) {
    s->mark = balance;
    pthread_mutex_lock(&g.lock);
    if (under_lock) under_lock(s);
    s->owner = pthread_self();
    seq_bump();
    link_slot(s);
    atomic_fetch_sub_explicit(&g.retired, counted, memory_order_relaxed);
    seq_bump();
    pthread_mutex_unlock(&g.lock);
    if (balance != counted) add_published(balance - counted);
}

int zm__checks_all(void) {
    return atomic_load_explicit(&limit_bytes, memory_order_relaxed) != 0 ||
           atomic_load_explicit(&request_gate, memory_order_relaxed) != NULL;
}

/* After the limit or the gate changed: the bound, and every live slot's
 * cached checks (the strategy's). */
static void checks_changed(void) {
    atomic_store_explicit(&zm__request_bound, zm__checks_all() ? 0 : (size_t)ZM_PUBLISH_BATCH,
                          memory_order_relaxed);
    pthread_mutex_lock(&g.lock);
    for (zm__slot *s = g.head; s; s = s->next) strategy()->limit_changed(s);
    pthread_mutex_unlock(&g.lock);
}

void zm__set_request_gate(int (*gate)(void)) {
    atomic_store_explicit(&request_gate, gate, memory_order_relaxed);
    checks_changed();
}

int zm__request_allowed(size_t request) {
    int (*gate)(void) = atomic_load_explicit(&request_gate, memory_order_relaxed);
    if (zm_unlikely(gate != NULL) && gate()) return 0;
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
    int64_t used = zm__sample_exact();
    if (used < 0) used = 0;
    return (uint64_t)used <= limit && request <= limit - (uint64_t)used;
}

/* A seqlock read of "retired" and "live": with no other slot, retired plus
 * the caller's balance is the exact total at that instant. */
int64_t zm__peak_offer(int64_t balance) {
    uint64_t seq = atomic_load_explicit(&g.seq, memory_order_acquire);
    int64_t retired = atomic_load_explicit(&g.retired, memory_order_relaxed);
    int64_t live = atomic_load_explicit(&g.live, memory_order_relaxed);
    atomic_thread_fence(memory_order_acquire);
    if (!(seq & 1) && live == 1 && atomic_load_explicit(&g.seq, memory_order_relaxed) == seq) {
        see_peak(retired + balance);
        return balance;
    }
    zm__sample_exact();
    return balance + ZM_PUBLISH_BATCH;
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

size_t zm__used_memory(void) {
    int64_t used = zm__sample_exact();
    return used > 0 ? (size_t)used : 0;
}

size_t zm__used_memory_peak(void) {
    int64_t p = atomic_load_explicit(&g.peak, memory_order_relaxed);
    return p > 0 ? (size_t)p : 0;
}

void zm__reset_peak(void) {
    pthread_mutex_lock(&g.lock);
    atomic_store_explicit(&g.peak, sum_locked(), memory_order_relaxed);
    pthread_mutex_unlock(&g.lock);
}

void zm__set_limit(size_t bytes) {
    atomic_store_explicit(&limit_bytes, bytes, memory_order_relaxed);
    checks_changed();
}

size_t zm__get_limit(void) {
    return atomic_load_explicit(&limit_bytes, memory_order_relaxed);
}
