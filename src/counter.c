/* Per-thread counters, the thread registry, fork handling, peak and limit.
 * See counter.h for the scheme. */
#include "counter.h"

#include <pthread.h>

#include "zmalloc.h"

__thread zm__tcounter zm__tls __attribute__((tls_model("initial-exec"))) = {.pending = ZM_NOT_LIVE};
_Atomic size_t zm__request_bound = PTRDIFF_MAX;
static _Atomic size_t limit_bytes;

/* Shared state. The fields written on hot-ish paths each get a cache line of
 * their own so that publishing threads do not slow each other's readers. */
static struct {
    _Alignas(64) _Atomic int64_t published; /* sum of published balances + retired */
    _Alignas(64) _Atomic int64_t retired;   /* balances of exited threads and slow-path counts */
    _Alignas(64) _Atomic int64_t peak;
    _Alignas(64) pthread_mutex_t lock;      /* guards head and every entry's links */
    zm__tcounter *head;
    _Atomic int64_t live; /* entries in the registry */
    pthread_key_t exit_key;
    int key_ok;
} g = {.lock = PTHREAD_MUTEX_INITIALIZER};

static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static void see_peak(int64_t v) {
    int64_t p = atomic_load_explicit(&g.peak, memory_order_relaxed);
    while (v > p && !atomic_compare_exchange_weak_explicit(&g.peak, &p, v, memory_order_relaxed,
                                                           memory_order_relaxed)) {
    }
}

/* Every change to the shared figure is a chance to see a new peak. */
static void add_published(int64_t delta) {
    see_peak(atomic_fetch_add_explicit(&g.published, delta, memory_order_relaxed) + delta);
}

static void add_shared(int64_t retired, int64_t published) {
    atomic_fetch_add_explicit(&g.retired, retired, memory_order_relaxed);
    add_published(published);
}

static void link_entry(zm__tcounter *t) {
    t->prev = NULL;
    t->next = g.head;
    if (g.head) g.head->prev = t;
    g.head = t;
    atomic_fetch_add_explicit(&g.live, 1, memory_order_relaxed);
}

static void unlink_entry(zm__tcounter *t) {
    if (t->prev) t->prev->next = t->next;
    else g.head = t->next;
    if (t->next) t->next->prev = t->prev;
    t->prev = t->next = NULL;
    atomic_fetch_sub_explicit(&g.live, 1, memory_order_relaxed);
}

/* Folds an entry's balance into the shared counters. Caller holds the lock
 * (or is the only thread, in a fork child). */
static void retire_entry(zm__tcounter *t) {
    int64_t base = atomic_load_explicit(&t->base, memory_order_relaxed);
    int64_t pending = atomic_load_explicit(&t->pending, memory_order_relaxed);
    add_shared(base + pending, pending);
    unlink_entry(t);
}

/* Key destructor: runs when a registered thread exits. */
static void thread_exit(void *arg) {
    zm__tcounter *t = arg;
    pthread_mutex_lock(&g.lock);
    retire_entry(t);
    pthread_mutex_unlock(&g.lock);
    /* Destructors that run after this one may still allocate or free: those
     * counts go to the shared counters. */
    atomic_store_explicit(&t->base, 0, memory_order_relaxed);
    atomic_store_explicit(&t->pending, ZM_NOT_LIVE, memory_order_relaxed);
    t->state = ZM_THREAD_DEAD;
}

static void fork_prepare(void) { pthread_mutex_lock(&g.lock); }
static void fork_parent(void) { pthread_mutex_unlock(&g.lock); }

/* Only the forking thread lives on in the child: fold the others' balances
 * (their blocks are still there, so they still count) and drop their entries,
 * whose memory glibc may reuse for the child's new threads. */
static void fork_child(void) {
    zm__tcounter *self = &zm__tls;
    for (zm__tcounter *t = g.head, *next; t; t = next) {
        next = t->next;
        if (t != self) retire_entry(t);
    }
    pthread_mutex_init(&g.lock, NULL);
}

static void init_once(void) {
    g.key_ok = pthread_key_create(&g.exit_key, thread_exit) == 0;
    pthread_atfork(fork_prepare, fork_parent, fork_child);
}

/* Set up at load time so that no allocation path has to. */
__attribute__((constructor)) static void counter_init(void) { pthread_once(&g_once, init_once); }

static void register_thread(zm__tcounter *t) {
    t->state = ZM_THREAD_BUSY; /* pthread_setspecific may allocate: count that on the slow path */
    pthread_once(&g_once, init_once);
    if (!g.key_ok || pthread_setspecific(g.exit_key, t) != 0) {
        t->state = ZM_THREAD_DEAD; /* no exit hook: never enter the registry */
        return;
    }
    atomic_store_explicit(&t->base, 0, memory_order_relaxed);
    atomic_store_explicit(&t->pending, 0, memory_order_relaxed);
    pthread_mutex_lock(&g.lock);
    link_entry(t);
    pthread_mutex_unlock(&g.lock);
    t->state = ZM_THREAD_LIVE;
}

/* Moves the drift into base and the shared counter. A reader between the two
 * stores may count it twice: that is an allocation in flight. */
static void publish(zm__tcounter *t, int64_t pending) {
    atomic_store_explicit(&t->base, atomic_load_explicit(&t->base, memory_order_relaxed) + pending,
                          memory_order_relaxed);
    atomic_store_explicit(&t->pending, 0, memory_order_relaxed);
    add_published(pending);
}

/* Reached when the drift passed a batch, or when t is not LIVE (see
 * ZM_NOT_LIVE); pending already holds delta. */
void zm__count_slow(zm__tcounter *t, int64_t pending, int64_t delta) {
    if (zm_likely(t->state == ZM_THREAD_LIVE)) {
        publish(t, pending);
        return;
    }
    /* Not in the registry: nobody reads this counter, so take delta back. */
    atomic_store_explicit(&t->pending, pending - delta, memory_order_relaxed);
    if (t->state == ZM_THREAD_NEW) register_thread(t);
    if (t->state == ZM_THREAD_LIVE) publish(t, delta);
    else add_shared(delta, delta);
}

static int64_t used_exact(void) {
    pthread_mutex_lock(&g.lock);
    int64_t sum = atomic_load_explicit(&g.retired, memory_order_relaxed);
    for (zm__tcounter *t = g.head; t; t = t->next)
        sum += atomic_load_explicit(&t->base, memory_order_relaxed) +
               atomic_load_explicit(&t->pending, memory_order_relaxed);
    pthread_mutex_unlock(&g.lock);
    return sum;
}

int zm__request_allowed(size_t request) {
    if (request >= (size_t)PTRDIFF_MAX) return 0;
    size_t limit = atomic_load_explicit(&limit_bytes, memory_order_relaxed);
    if (limit == 0) return 1;
    /* The shared figure is at most one batch per live thread below the truth:
     * when even that bound fits, no need for the exact sum. */
    int64_t bound = atomic_load_explicit(&g.published, memory_order_relaxed) +
                    atomic_load_explicit(&g.live, memory_order_relaxed) * ZM_PUBLISH_BATCH;
    if (bound < 0) bound = 0;
    if ((uint64_t)bound <= limit && request <= limit - (uint64_t)bound) return 1;
    int64_t used = used_exact();
    if (used < 0) used = 0;
    return (uint64_t)used <= limit && request <= limit - (uint64_t)used;
}

ZM_EXPORT size_t zm_used_memory(void) {
    int64_t used = used_exact();
    see_peak(used);
    return used > 0 ? (size_t)used : 0;
}

ZM_EXPORT size_t zm_used_memory_peak(void) {
    int64_t p = atomic_load_explicit(&g.peak, memory_order_relaxed);
    return p > 0 ? (size_t)p : 0;
}

ZM_EXPORT void zm_reset_peak(void) {
    atomic_store_explicit(&g.peak, used_exact(), memory_order_relaxed);
}

ZM_EXPORT void zm_set_limit(size_t bytes) {
    atomic_store_explicit(&limit_bytes, bytes, memory_order_relaxed);
    atomic_store_explicit(&zm__request_bound, bytes ? 0 : (size_t)PTRDIFF_MAX, memory_order_relaxed);
}

ZM_EXPORT size_t zm_get_limit(void) {
    return atomic_load_explicit(&limit_bytes, memory_order_relaxed);
}
