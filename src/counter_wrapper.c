/* The wrapper counts: see counter_wrapper.h. Registration, the slow path and
 * the registry's questions about a slot. */
#include "counter.h"

/* Far enough from any balance that b - mark always leaves the batch window. */
#define PLACEHOLDER_MARK (INT64_MIN / 2)

/* Threads without a slot of their own update this one's balance on the hot
 * path (racily, with relaxed atomics: nobody reads it) and always go on to
 * the slow path. */
ZM_HIDDEN zm__slot zm__placeholder = {.mark = PLACEHOLDER_MARK,
                                      .window_low = PLACEHOLDER_MARK - ZM_PUBLISH_BATCH};
__thread zm__slot *zm__tls_slot __attribute__((tls_model("initial-exec"))) = &zm__placeholder;
static __thread unsigned char tls_state;

/* Each term is one word its owner wrote. */
static int64_t slot_balance(zm__slot *s) {
    return atomic_load_explicit(&s->balance, memory_order_relaxed);
}

/* A slot's owner is never found dead here: a thread without its exit hook
 * is retired when the next thread with its identity registers. */
static int owner_dead(zm__slot *s) {
    (void)s;
    return 0;
}

static void exiting(zm__slot *s) { (void)s; }

static void exited(int64_t balance) {
    (void)balance;
    zm__tls_slot = &zm__placeholder;
    tls_state = ZM_THREAD_DEAD;
}

static void limit_changed(zm__slot *s) { (void)s; } /* the request bound says it all */

static zm__slot *own_slot(void) {
    return zm__tls_slot != &zm__placeholder ? zm__tls_slot : NULL;
}

static const zm__strategy strategy = {slot_balance, owner_dead, exiting, exited, limit_changed,
                                      own_slot};

/* Set up at load time so that no allocation path has to. */
__attribute__((constructor)) static void counter_init(void) { zm__registry_start(&strategy); }

static void publish(zm__slot *s, int64_t balance) {
    s->window_low = balance - ZM_PUBLISH_BATCH;
    zm__publish(s, balance);
}

static zm__slot *register_thread(void) {
    zm__slot *s = zm__strategy_join(&strategy, &tls_state);
    if (!s) return NULL;
    /* Ordering: the zeroed balance is stored before the slot is linked under
     * the lock; a reader acquires that lock before it reads the slot, so on a
     * weakly ordered CPU too it sees 0 or later, never the slot's former
     * owner's last value. */
    atomic_store_explicit(&s->balance, 0, memory_order_relaxed);
    s->window_low = -ZM_PUBLISH_BATCH;
    zm__registry_link(s, 0, 0, NULL);
    zm__tls_slot = s;
    tls_state = ZM_THREAD_LIVE;
    return s;
}

void zm__count_slow(zm__slot *s, int64_t balance, int64_t delta) {
    if (zm_likely(s != &zm__placeholder)) {
        publish(s, balance);
        return;
    }
    if (tls_state == ZM_THREAD_NEW && register_thread() != NULL) {
        zm__count(delta);
        return;
    }
    zm__add_shared(delta);
}

void zm__count_large(int64_t delta) {
    zm__count(delta);
    zm__slot *s = zm__tls_slot;
    int64_t balance = atomic_load_explicit(&s->balance, memory_order_relaxed);
    if (s != &zm__placeholder && balance != s->mark) publish(s, balance);
    zm__sample_exact();
}
