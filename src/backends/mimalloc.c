/* mimalloc's cold calls. Its release builds keep no per-allocation
 * statistics, so the only allocator figure it has is the memory it has
 * committed (mi_process_info). It has no background thread to switch. */
#include <string.h>

#include <mimalloc.h>

#include "backend.h"
#include "zmalloc.h"

size_t zm__mi_bins_max;

/* Walks the bins up to 1 MiB, checking both ends of each against real
 * blocks; stops at the first disagreement, so zm__mi_bins_max only covers
 * bins that agreed. */
__attribute__((constructor)) static void probe_bins(void) {
    size_t n = 0;
    while (n < ((size_t)1 << 20)) {
        size_t lo = n + 1, hi = zm__mi_bin_size(lo);
        void *a = mi_malloc(lo), *b = mi_malloc(hi);
        int agree = a && b && mi_usable_size(a) == hi && mi_usable_size(b) == hi;
        mi_free(a);
        mi_free(b);
        if (!agree) break;
        n = hi;
    }
    zm__mi_bins_max = n;
}

void zm__be_get_stats(zm__be_stats *out) {
    memset(out, 0, sizeof *out);
    size_t elapsed, user, sys, rss, peak_rss, commit = 0, peak_commit, faults;
    mi_process_info(&elapsed, &user, &sys, &rss, &peak_rss, &commit, &peak_commit, &faults);
    out->active = commit;
    out->have = ZMALLOC_INFO_ACTIVE;
}

void zm__be_background_thread(int enable) { (void)enable; }

int zm__be_purge(void) {
    mi_collect(true);
    return 0;
}
