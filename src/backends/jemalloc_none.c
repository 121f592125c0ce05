/* jemalloc's controls and the defragmentation hint where the backend is not
 * the private jemalloc: nothing to control, nothing worth moving. */
#include <errno.h>

#include "backend.h"
#include "zmalloc_config.h" /* ZMALLOC_LIB */

int zm__be_defrag_hint(const void *p) {
    (void)p;
    return 0;
}

int zm__be_mallctl(const char *name, void *oldp, size_t *oldlenp, void *newp, size_t newlen) {
    (void)name, (void)oldp, (void)oldlenp, (void)newp, (void)newlen;
    return ENOENT;
}

int zm__be_mallctlnametomib(const char *name, size_t *mibp, size_t *miblenp) {
    (void)name, (void)mibp, (void)miblenp;
    return ENOENT;
}

int zm__be_mallctlbymib(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp, void *newp,
                        size_t newlen) {
    (void)mib, (void)miblen, (void)oldp, (void)oldlenp, (void)newp, (void)newlen;
    return ENOENT;
}

void zm__be_stats_print(void (*write_cb)(void *, const char *), void *cbopaque, const char *opts) {
    (void)opts;
    if (write_cb) write_cb(cbopaque, "zmalloc: no jemalloc statistics on this backend ("
                                     ZMALLOC_LIB ")\n");
}

size_t zm__be_nallocx(size_t size, int flags) {
    (void)size, (void)flags;
    return 0;
}
