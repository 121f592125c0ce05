/* The private jemalloc's own controls, passed through for the public
 * functions of src/jemalloc_api.c: mallctl and its MIB forms, the statistics
 * report and nallocx. */
#include "backend.h"

/* A call into jemalloc that counts nothing may set up the calling thread's
 * TSD in full (jemalloc_fast.h says why that matters). */
static int done(int rc) {
#ifdef ZM_JE_FAST
    zm__jef_after_uncounted_call();
#endif
    return rc;
}

int zm__be_mallctl(const char *name, void *oldp, size_t *oldlenp, void *newp, size_t newlen) {
    return done(mallctl(name, oldp, oldlenp, newp, newlen));
}

int zm__be_mallctlnametomib(const char *name, size_t *mibp, size_t *miblenp) {
    return done(mallctlnametomib(name, mibp, miblenp));
}

int zm__be_mallctlbymib(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp, void *newp,
                        size_t newlen) {
    return done(mallctlbymib(mib, miblen, oldp, oldlenp, newp, newlen));
}

void zm__be_stats_print(void (*write_cb)(void *, const char *), void *cbopaque, const char *opts) {
    malloc_stats_print(write_cb, cbopaque, opts);
    done(0);
}

size_t zm__be_nallocx(size_t size, int flags) {
    size_t n = nallocx(size, flags);
    done(0);
    return n;
}
