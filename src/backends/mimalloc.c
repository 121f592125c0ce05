/* mimalloc's cold calls. Its release builds keep no per-allocation
 * statistics, so the only allocator figure it has is the memory it has
 * committed (mi_process_info). It has no background thread to switch. */
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include <mimalloc.h>

#include "backend.h"
#include "fast_path.h"
#include "backends/mimalloc_probe.h"
#include "os.h"

size_t zm__mi_bins_max;
uint16_t zm__mi_table[ZM_MI_TABLE_MAX / 8 + 1];
size_t zm__mi_table_bound;

/* Walks the bins up to 1 MiB with mimalloc's public calls only, checking
 * both ends of each against real blocks; stops at the first disagreement,
 * so zm__mi_bins_max only covers bins that agreed. */
static void probe_bins(void) {
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

/* The table, learnt from real blocks with public calls (any mimalloc
 * release, whatever its bins): both ends of each 8-byte step must get the
 * same usable size, at least the request. */
static void fill_table(void) {
    for (size_t w = 0; w <= ZM_MI_TABLE_MAX / 8; w++) {
        void *lo = mi_malloc(w ? w * 8 - 7 : 0), *hi = mi_malloc(w * 8);
        size_t u = lo && hi ? mi_usable_size(hi) : 0;
        int ok = u != 0 && u == mi_usable_size(lo) && u >= w * 8 && u <= UINT16_MAX;
        mi_free(lo);
        mi_free(hi);
        if (!ok) {
            zm__fp_note(ZM_FP_MIMALLOC_SIZES, "trial disagreed: request %zu", w * 8);
            return;
        }
        zm__mi_table[w] = (uint16_t)u;
    }
    zm__mi_table_bound = ZM_MI_TABLE_MAX + 1;
    zm__fp_note(ZM_FP_MIMALLOC_SIZES, NULL);
}

__attribute__((constructor)) static void probe_mimalloc(void) {
    probe_bins();
    fill_table();
    zm__mi_find_page_read();
    zm__mi_find_copies();
}

void zm__be_get_stats(zm__be_stats *out) {
    memset(out, 0, sizeof *out);
    size_t elapsed, user, sys, rss, peak_rss, commit = 0, peak_commit, faults;
    mi_process_info(&elapsed, &user, &sys, &rss, &peak_rss, &commit, &peak_commit, &faults);
    out->active = commit;
    out->have = ZM__BE_HAVE_ACTIVE;
}

void zm__be_background_thread(int enable) { (void)enable; }

int zm__be_purge(void) {
    mi_collect(true);
    return 0;
}
