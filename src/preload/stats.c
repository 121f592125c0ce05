/* The statistics of threads that no longer have a slot (folded at their
 * exit) or never had one, and the sum over every thread. */
#include <string.h>

#include "counter.h"
#include "preload/stats.h"

static zm__stats shared;

void zm__stats_fold(zm__slot *slot) {
    zm__stats *s = &zm__pl(slot)->stats;
    for (int i = 0; i < ZM_FN_COUNT; i++)
        atomic_fetch_add_explicit(&shared.calls[i], atomic_exchange(&s->calls[i], 0),
                                  memory_order_relaxed);
    for (int i = 0; i < ZM_HIST_BUCKETS; i++)
        atomic_fetch_add_explicit(&shared.hist[i], atomic_exchange(&s->hist[i], 0),
                                  memory_order_relaxed);
    atomic_fetch_add_explicit(&shared.failed, atomic_exchange(&s->failed, 0), memory_order_relaxed);
    atomic_fetch_add_explicit(&shared.requested, atomic_exchange(&s->requested, 0),
                              memory_order_relaxed);
    atomic_fetch_add_explicit(&shared.held, atomic_exchange(&s->held, 0), memory_order_relaxed);
}

void zm__stats_shared_alloc(enum zm__fn fn, size_t request, size_t held) {
    atomic_fetch_add_explicit(&shared.calls[fn], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&shared.hist[zm__size_bucket(request)], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&shared.requested, request, memory_order_relaxed);
    atomic_fetch_add_explicit(&shared.held, held, memory_order_relaxed);
}

void zm__stats_shared_call(enum zm__fn fn, int failed) {
    atomic_fetch_add_explicit(&shared.calls[fn], 1, memory_order_relaxed);
    if (failed) atomic_fetch_add_explicit(&shared.failed, 1, memory_order_relaxed);
}

void zm__stats_add(zm__stats_total *t, const zm__stats *s) {
    for (int i = 0; i < ZM_FN_COUNT; i++)
        t->calls[i] += atomic_load_explicit(&s->calls[i], memory_order_relaxed);
    for (int i = 0; i < ZM_HIST_BUCKETS; i++)
        t->hist[i] += atomic_load_explicit(&s->hist[i], memory_order_relaxed);
    t->failed += atomic_load_explicit(&s->failed, memory_order_relaxed);
    t->requested += atomic_load_explicit(&s->requested, memory_order_relaxed);
    t->held += atomic_load_explicit(&s->held, memory_order_relaxed);
}

static void add_slot(const zm__slot *s, void *total) {
    zm__stats_add(total, &((const zm__pl_slot *)(const void *)s->ext)->stats);
}

int zm__stats_sum(zm__stats_total *out, int64_t *used, int try_lock) {
    memset(out, 0, sizeof *out);
    if (zm__visit_slots(add_slot, out, try_lock, used) != 0) return -1;
    zm__stats_add(out, &shared);
    return 0;
}

static void clear(zm__stats *s) {
    for (int i = 0; i < ZM_FN_COUNT; i++) atomic_store(&s->calls[i], 0);
    for (int i = 0; i < ZM_HIST_BUCKETS; i++) atomic_store(&s->hist[i], 0);
    atomic_store(&s->failed, 0);
    atomic_store(&s->requested, 0);
    atomic_store(&s->held, 0);
}

/* Only the calling thread is left (a fork child): its own slot and the
 * shared totals start again from zero. */
void zm__stats_reset(void) {
    zm__slot *self = zm__tls_slot;
    if (self != &zm__placeholder) clear(&zm__pl(self)->stats);
    clear(&shared);
}
