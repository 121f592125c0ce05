/* Allocation-failure injection (ZMALLOC_TESTING builds only). */
#include "fault.h"

#ifdef ZMALLOC_TESTING
#include <stdatomic.h>

static _Atomic long armed_nth, seen, injected;
static atomic_int persist_after;

void zm__fault_arm(long nth, int persist) {
    atomic_store(&armed_nth, 0);
    atomic_store(&seen, 0);
    atomic_store(&injected, 0);
    atomic_store(&persist_after, persist);
    atomic_store(&armed_nth, nth);
}

long zm__fault_seen(void) { return atomic_load(&seen); }
long zm__fault_injected(void) { return atomic_load(&injected); }

int zm__fault_armed(void) { return atomic_load_explicit(&armed_nth, memory_order_relaxed) != 0; }

int zm__fault_hit(void) {
    long nth = atomic_load_explicit(&armed_nth, memory_order_relaxed);
    if (nth == 0) return 0;
    long n = atomic_fetch_add(&seen, 1) + 1;
    if (n == nth || (n > nth && atomic_load(&persist_after))) {
        atomic_fetch_add(&injected, 1);
        return 1;
    }
    return 0;
}
#endif
