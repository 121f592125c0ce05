/* Allocation-failure injection, for tests only: with ZMALLOC_TESTING the
 * block layer asks zm__fault_hit() before each backend allocation (malloc,
 * calloc, realloc) and fails it when told to. Release builds compile it out. */
#ifndef ZM_FAULT_H
#define ZM_FAULT_H

#include "internal.h"

#ifdef ZMALLOC_TESTING
/* From now on, backend allocation number nth (1-based) fails; with persist,
 * so does every one after it. nth 0 disarms. */
ZM_HIDDEN void zm__fault_arm(long nth, int persist);
/* Backend allocations attempted since the last zm__fault_arm(). */
ZM_HIDDEN long zm__fault_seen(void);
/* Failures injected since the last zm__fault_arm(). */
ZM_HIDDEN long zm__fault_injected(void);
ZM_HIDDEN int zm__fault_hit(void);
/* Whether a failure is armed: allocation paths that skip the block layer
 * (jemalloc_fast.h) must then take it. */
ZM_HIDDEN int zm__fault_armed(void);
#else
static inline int zm__fault_hit(void) { return 0; }
static inline int zm__fault_armed(void) { return 0; }
#endif

#endif
