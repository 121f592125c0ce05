/* The defragmentation hint on the private jemalloc (HAVE_DEFRAG): whether
 * moving a live block elsewhere would help jemalloc give memory back. The
 * rule is the one Redis's patched jemalloc applies in je_get_defrag_hint():
 *  - only a block in a slab (a small size class) is worth moving;
 *  - not one in a full slab, nor one in its bin's current slab, which is
 *    where new blocks (the moved copies) go;
 *  - one whose slab holds fewer blocks than the average of its bin's other
 *    non-full slabs plus 12.5%: the bias keeps slabs of equal use draining
 *    into each other instead of stalling.
 *
 * Stock jemalloc 5.3 answers most of that, live and under the bin's lock,
 * through "experimental.utilization.query": the slab's free and total
 * regions and its size, the bin's regions in use and in all (over all its
 * slabs, full ones too), and the address of the bin's current slab. It does
 * not say how many of the bin's slabs are full: the statistics do (curslabs
 * minus nonfull_slabs, which counts the current slab too), as of the last
 * "epoch". So this file keeps that count per arena and bin, copied from the
 * statistics whenever their epoch has moved (looked at every CHECK_NS);
 * "arenas.lookup" names a block's arena. Redis and Valkey move the epoch on
 * every cron tick (zmalloc_get_allocator_info); only when nobody has for
 * OWN_EPOCH_NS does the hint move it itself, because moving it waits for
 * jemalloc's background threads to finish purging, which may take tens of
 * milliseconds inside a defragmentation cycle. A count that lags counts
 * slabs filled since as non-full, which raises the average: the hint then
 * names more blocks, but never one in a full slab, so a moved block stays
 * put. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#include "backend.h"

#define CHECK_NS 10000000L       /* 10 ms */
#define OWN_EPOCH_NS 1000000000L /* 1 s */
#define MAX_ARENAS 256       /* arenas past these use a count of 0 (all slabs) */
#define MAX_BINS 64          /* small size classes: 36 with 4 KiB pages */

/* experimental.utilization.query's answer for one pointer. */
typedef struct {
    void *slabcur;    /* the bin's current slab (else its first non-full one) */
    size_t nfree;     /* free regions in the pointer's slab */
    size_t nregs;     /* regions per slab; 1 for a large block */
    size_t size;      /* bytes of the slab (nregs * region size) or block */
    size_t bin_nfree; /* free regions in all the bin's slabs; 0 for a large block */
    size_t bin_nregs; /* regions in all the bin's slabs */
} util_t;

static struct {
    size_t query[3], lookup[2], epoch[1], curslabs[6], nonfull[6];
    unsigned nbins;
    size_t region[MAX_BINS]; /* each bin's region size, ascending */
    int ok;
} ctl;

/* Full slabs (the current one included) per arena and bin, as of epoch. */
static _Atomic uint32_t full_slabs[MAX_ARENAS][MAX_BINS];
static uint64_t epoch = UINT64_MAX; /* under refreshing; UINT64_MAX: never looked */
static int64_t epoch_moved;         /* under refreshing: when the hint saw it move */
static _Atomic int64_t checked = INT64_MIN;
static pthread_mutex_t refreshing = PTHREAD_MUTEX_INITIALIZER;

static int done(int rc) {
#ifdef ZM_JE_FAST
    zm__jef_after_uncounted_call();
#endif
    return rc;
}

static int mib(const char *name, size_t *out, size_t want) {
    size_t len = want;
    return mallctlnametomib(name, out, &len) == 0 && len == want;
}

static void find_controls(void) {
    size_t len = sizeof ctl.nbins;
    if (!mib("experimental.utilization.query", ctl.query, 3) || !mib("arenas.lookup", ctl.lookup, 2) ||
        !mib("epoch", ctl.epoch, 1) || !mib("stats.arenas.0.bins.0.curslabs", ctl.curslabs, 6) ||
        !mib("stats.arenas.0.bins.0.nonfull_slabs", ctl.nonfull, 6) ||
        mallctl("arenas.nbins", &ctl.nbins, &len, NULL, 0) != 0 || ctl.nbins > MAX_BINS)
        return;
    size_t size_mib[4];
    if (!mib("arenas.bin.0.size", size_mib, 4)) return;
    for (unsigned j = 0; j < ctl.nbins; j++) {
        size_mib[2] = j;
        len = sizeof ctl.region[j];
        if (mallctlbymib(size_mib, 4, &ctl.region[j], &len, NULL, 0) != 0) return;
    }
    ctl.ok = 1;
}

static int64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static size_t stat_of(size_t *m, unsigned arena, unsigned bin) {
    size_t v = 0, len = sizeof v;
    m[2] = arena;
    m[4] = bin;
    return mallctlbymib(m, 6, &v, &len, NULL, 0) == 0 ? v : 0;
}

static void copy_counts(void) {
    unsigned narenas = 0;
    size_t len = sizeof narenas, curslabs[6], nonfull[6];
    if (mallctl("arenas.narenas", &narenas, &len, NULL, 0) != 0) return;
    for (int k = 0; k < 6; k++) curslabs[k] = ctl.curslabs[k], nonfull[k] = ctl.nonfull[k];
    for (unsigned i = 0; i < narenas && i < MAX_ARENAS; i++)
        for (unsigned j = 0; j < ctl.nbins; j++) {
            size_t all = stat_of(curslabs, i, j), open = stat_of(nonfull, i, j);
            atomic_store_explicit(&full_slabs[i][j], (uint32_t)(all > open ? all - open : 0),
                                  memory_order_relaxed);
        }
}

/* One thread looks; the others go on with the counts they find. */
static void refresh(int64_t t) {
    if (pthread_mutex_trylock(&refreshing) != 0) return;
    uint64_t e = 0;
    size_t len = sizeof e;
    int read = mallctlbymib(ctl.epoch, 1, &e, &len, NULL, 0) == 0;
    if (read && (epoch == UINT64_MAX || (e == epoch && t - epoch_moved >= OWN_EPOCH_NS)))
        read = mallctlbymib(ctl.epoch, 1, &e, &len, &e, len) == 0; /* moves it */
    if (read && e != epoch) {
        copy_counts();
        epoch = e;
        epoch_moved = t;
    }
    atomic_store_explicit(&checked, t, memory_order_relaxed);
    pthread_mutex_unlock(&refreshing);
}

static uint32_t full_slabs_of(unsigned arena, size_t region) {
    unsigned lo = 0, hi = ctl.nbins;
    while (lo < hi) { /* the bin whose region size this is */
        unsigned mid = (lo + hi) / 2;
        if (ctl.region[mid] < region) lo = mid + 1;
        else hi = mid;
    }
    if (arena >= MAX_ARENAS || lo == ctl.nbins || ctl.region[lo] != region) return 0;
    return atomic_load_explicit(&full_slabs[arena][lo], memory_order_relaxed);
}

/* The rule, on the bin's figures less its full slabs. */
static int below_average(const util_t *u, uint32_t full) {
    size_t slabs = u->bin_nregs / u->nregs, in_use = u->bin_nregs - u->bin_nfree;
    /* A count from before slabs were freed may no longer fit: then all slabs. */
    if (full >= slabs || (size_t)full * u->nregs > in_use) full = 0;
    size_t open = slabs - full, open_used = in_use - (size_t)full * u->nregs;
    size_t used = u->nregs - u->nfree;
    /* used / nregs <= 1.125 * open_used / (open * nregs) */
    return 8 * used * open <= 9 * open_used;
}

static pthread_once_t found = PTHREAD_ONCE_INIT;

int zm__be_defrag_hint(const void *p) {
    if (!p) return 0;
    pthread_once(&found, find_controls);
    if (!ctl.ok) return done(0);
    util_t u;
    size_t len = sizeof u;
    if (mallctlbymib(ctl.query, 3, &u, &len, (void *)&p, sizeof p) != 0 || len != sizeof u)
        return done(0);
    uintptr_t at = (uintptr_t)p, cur = (uintptr_t)u.slabcur;
    if (u.bin_nregs == 0 || u.nregs < 2 || u.nfree == 0 || (cur <= at && at - cur < u.size))
        return done(0);
    unsigned arena = 0;
    len = sizeof arena;
    if (mallctlbymib(ctl.lookup, 2, &arena, &len, (void *)&p, sizeof p) != 0) return done(0);
    int64_t t = now_ns();
    int64_t last = atomic_load_explicit(&checked, memory_order_relaxed);
    if (last == INT64_MIN || t - last >= CHECK_NS) refresh(t); /* INT64_MIN: never (no overflow) */
    return done(below_average(&u, full_slabs_of(arena, u.size / u.nregs)));
}
