/* mimalloc's cold calls. Its release builds keep no per-allocation
 * statistics, so the only allocator figure it has is the memory it has
 * committed (mi_process_info). It has no background thread to switch. */
#include <string.h>

#include <mimalloc.h>

#include "backend.h"
#include "zmalloc.h"

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
