/* The backend seam. Exactly one backend is compiled in, chosen by CMake
 * (ZMALLOC_BACKEND): its hot path is the header src/backends/<name>.h,
 * included here so that it inlines into the entry points, and its cold calls
 * live in src/backends/<name>.c.
 *
 * The hot path, static inline in the backend header:
 *   void  *zm__be_malloc(size_t size, size_t *usable);   size 0 gives a unique block
 *   void  *zm__be_calloc(size_t size, size_t *usable);   zeroed; size 0 as above
 *   void  *zm__be_realloc(void *p, size_t size, size_t *usable);  p != NULL, size > 0
 *   size_t zm__be_usable(const void *p);                 the allocator's usable size
 *   void   zm__be_free_sized(void *p, size_t size);      size: anything from the
 *                                                        requested to the usable size
 *   size_t zm__be_free_counted(void *p);                 frees p, returns its usable
 *                                                        size; a backend that learns it
 *                                                        more cheaply than by looking it
 *                                                        up first defines
 *                                                        ZM_BE_FREE_COUNTED
 *   size_t zm__be_free_fast(void *p);                    the part of it that calls
 *                                                        nothing: the size, or 0
 *                                                        (declined: NULL, or a block
 *                                                        for zm__be_free_counted);
 *                                                        ZM_BE_FREE_FAST if it has one,
 *                                                        with zm__be_free_other(p) for
 *                                                        the rest (below)
 *   int    zm__be_fast_malloc(size_t size, void **out, size_t *usable);  a malloc
 *                                                        that calls nothing: 1, or 0
 *                                                        (nothing done);
 *                                                        ZM_BE_FAST_MALLOC if it has one
 *   void  *zm__be_malloc_no_tcache(size_t size, size_t *usable);  bypassing the
 *   void   zm__be_free_no_tcache(void *p, size_t size);           thread cache, for
 *                                                        defragmentation; a backend
 *                                                        without a way to bypass it
 *                                                        leaves them out and gets
 *                                                        its plain malloc and free
 *   void  *zm__be_memalign(size_t align, size_t size, size_t *usable);  align a power
 *                                                        of two; freed like any block
 *                                                        (ZM_BE_MEMALIGN; the preload
 *                                                        library's memalign family)
 *   void  *zm__be_raw_malloc(size_t size);               the allocator's plain malloc and
 *   void   zm__be_raw_free(void *p);                     free, for benchmarks to compare with
 * The allocating calls store the block's usable size in *usable when usable
 * is not NULL (left alone on failure). A failing call returns NULL and keeps
 * any block it was given.
 *
 * The cold calls, declared below. */
#ifndef ZM_BACKEND_H
#define ZM_BACKEND_H

#include <stddef.h>

#include "internal.h"

#include ZM_BACKEND_HEADER

#ifdef ZM_BE_FREE_FAST
/* A backend with an inline free (zm__be_free_fast) names what frees the
 * blocks it declines, NULL included, zm__be_free_other(p): it returns the
 * size freed too. */
#define ZM_BE_FREE_COUNTED 1
#define ZM_BE_FREE_TAKES_NULL 1
static inline size_t zm__be_free_counted(void *p) {
    size_t n = zm__be_free_fast(p);
    return zm_likely(n != 0) ? n : zm__be_free_other(p);
}
#endif

#ifndef ZM_BE_FREE_COUNTED
static inline size_t zm__be_free_counted(void *p) {
    size_t size = zm__be_usable(p);
    zm__be_free_sized(p, size);
    return size;
}
#endif

#ifndef ZM_BE_NO_TCACHE
static inline void *zm__be_malloc_no_tcache(size_t size, size_t *usable) {
    return zm__be_malloc(size, usable);
}
static inline void zm__be_free_no_tcache(void *p, size_t size) { zm__be_free_sized(p, size); }
#endif

/* Allocator statistics in bytes; `have` holds the ZM__BE_HAVE_* bits of the
 * figures that are real. They are the public ZMALLOC_INFO_* bits (figures.c
 * checks that at compile time), named here so that a backend needs nothing
 * from the public header. */
enum {
    ZM__BE_HAVE_ALLOCATED = 0x01,
    ZM__BE_HAVE_ACTIVE = 0x02,
    ZM__BE_HAVE_RESIDENT = 0x04,
    ZM__BE_HAVE_RETAINED = 0x08,
    ZM__BE_HAVE_MUZZY = 0x10,
    ZM__BE_HAVE_FRAG_SMALLBINS = 0x20,
};
typedef struct zm__be_stats {
    size_t allocated, active, resident, retained, muzzy, frag_smallbins;
    int have;
} zm__be_stats;

ZM_HIDDEN void zm__be_get_stats(zm__be_stats *out);
ZM_HIDDEN void zm__be_background_thread(int enable);
/* Returns 0 on success, -1 (errno set) on failure. */
ZM_HIDDEN int zm__be_purge(void);

/* jemalloc's own controls and the defragmentation hint, for the public
 * functions of src/jemalloc_api.c. The private jemalloc has them
 * (backends/jemalloc_ctl.c, backends/jemalloc_defrag.c); every other backend
 * gets backends/jemalloc_none.c, where the controls answer ENOENT, the hint 0
 * and nallocx 0. */
ZM_HIDDEN int zm__be_defrag_hint(const void *p);
ZM_HIDDEN int zm__be_mallctl(const char *name, void *oldp, size_t *oldlenp, void *newp,
                             size_t newlen);
ZM_HIDDEN int zm__be_mallctlnametomib(const char *name, size_t *mibp, size_t *miblenp);
ZM_HIDDEN int zm__be_mallctlbymib(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp,
                                  void *newp, size_t newlen);
ZM_HIDDEN void zm__be_stats_print(void (*write_cb)(void *, const char *), void *cbopaque,
                                  const char *opts);
ZM_HIDDEN size_t zm__be_nallocx(size_t size, int flags);

#endif
