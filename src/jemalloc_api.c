/* The public face of the allocator's own controls (jemalloc's mallctl,
 * statistics report and nallocx) and of the defragmentation hint: each
 * backend answers through the seam (backend.h). */
#include "backend.h"
#include "zmalloc.h"

ZM_EXPORT int zm_defrag_hint(void *ptr) { return zm__be_defrag_hint(ptr); }

ZM_EXPORT int zm_mallctl(const char *name, void *oldp, size_t *oldlenp, void *newp, size_t newlen) {
    return zm__be_mallctl(name, oldp, oldlenp, newp, newlen);
}

ZM_EXPORT int zm_mallctlnametomib(const char *name, size_t *mibp, size_t *miblenp) {
    return zm__be_mallctlnametomib(name, mibp, miblenp);
}

ZM_EXPORT int zm_mallctlbymib(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp,
                              void *newp, size_t newlen) {
    return zm__be_mallctlbymib(mib, miblen, oldp, oldlenp, newp, newlen);
}

ZM_EXPORT void zm_malloc_stats_print(void (*write_cb)(void *, const char *), void *cbopaque,
                                     const char *opts) {
    zm__be_stats_print(write_cb, cbopaque, opts);
}

ZM_EXPORT size_t zm_nallocx(size_t size, int flags) { return zm__be_nallocx(size, flags); }
