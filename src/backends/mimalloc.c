/* mimalloc's cold calls. Its release builds keep no per-allocation
 * statistics, so the only allocator figure it has is the memory it has
 * committed (mi_process_info). It has no background thread to switch. */
#include <string.h>

#include <mimalloc.h>

#include "backend.h"
#include "zmalloc.h"

size_t zm__mi_bins_max;
int zm__mi_pages_ok;
uintptr_t zm__mi_inline_floor = UINTPTR_MAX;
uint16_t zm__mi_table[ZM_MI_TABLE_MAX / 8 + 1];
size_t zm__mi_table_bound;

/* The page read gives mi_usable_size()'s answer, or 0 (ask it). */
static int page_read_agrees(const void *p) {
    size_t n = zm__mi_page_usable(p);
    return n == 0 || n == mi_usable_size(p);
}

/* Walks the bins up to 1 MiB, checking both ends of each against real
 * blocks; stops at the first disagreement, so zm__mi_bins_max only covers
 * bins that agreed. The page read is checked on the same blocks. */
static int probe_bins(void) {
    size_t n = 0;
    int pages = 1;
    while (n < ((size_t)1 << 20)) {
        size_t lo = n + 1, hi = zm__mi_bin_size(lo);
        void *a = mi_malloc(lo), *b = mi_malloc(hi);
        int agree = a && b && mi_usable_size(a) == hi && mi_usable_size(b) == hi;
        pages = pages && a && b && page_read_agrees(a) && page_read_agrees(b);
        mi_free(a);
        mi_free(b);
        if (!agree) break;
        n = hi;
    }
    zm__mi_bins_max = n;
    return pages && n > 0;
}

/* Blocks in many pages and slices (small, medium, large), aligned blocks and
 * a huge one: each page read must agree, and the plain ones must not need
 * mi_usable_size(). */
static int probe_pages(void) {
    enum { N = 64 };
    static const size_t sizes[] = {16, 64, 1000, 9000, 70000, 300000};
    static const size_t aligns[] = {64, 4096, (size_t)1 << 16};
    int ok = 1;
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        void *b[N];
        for (int j = 0; j < N; j++) b[j] = mi_malloc(sizes[i]);
        for (int j = 0; j < N; j++) {
            ok = ok && b[j] && zm__mi_page_usable(b[j]) != 0 && page_read_agrees(b[j]);
            mi_free(b[j]);
        }
    }
    for (size_t i = 0; i < sizeof aligns / sizeof aligns[0]; i++) {
        void *a = mi_malloc_aligned(100, aligns[i]);
        ok = ok && a && page_read_agrees(a);
        mi_free(a);
    }
    void *huge = mi_malloc((size_t)64 << 20);
    ok = ok && huge && page_read_agrees(huge);
    mi_free(huge);
    return ok;
}

/* The table, from the formula, once probe_bins() has checked the formula
 * against real blocks beyond the table's last entry. */
static void fill_table(void) {
    if (zm__mi_bins_max <= ZM_MI_TABLE_MAX) return;
    for (size_t w = 0; w <= ZM_MI_TABLE_MAX / 8; w++) zm__mi_table[w] = (uint16_t)zm__mi_bin_size(w * 8);
    zm__mi_table_bound = ZM_MI_TABLE_MAX + 1;
}

__attribute__((constructor)) static void probe_mimalloc(void) {
    int bins_pages = probe_bins();
    fill_table();
    /* Only the layout it was read from: mimalloc 2.0.9, 64-bit. */
    zm__mi_pages_ok = sizeof(void *) == 8 && mi_version() == 209 && bins_pages && probe_pages();
    if (zm__mi_pages_ok) zm__mi_inline_floor = 1;
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
