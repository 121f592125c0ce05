/* jemalloc's API as the private copy names it (cmake/jemalloc_private.cmake
 * renames malloc to zm__jep_malloc, and so on). jemalloc.h is read for its
 * constants only (MALLOCX_*, MALLCTL_ARENAS_ALL): its functions keep their
 * je_ names and are never called. The calls below are hidden, so that
 * libzmalloc.so exports none of them. */
#ifndef ZM_BACKEND_JEMALLOC_NAMES_H
#define ZM_BACKEND_JEMALLOC_NAMES_H

#include <stddef.h>

#define JEMALLOC_NO_RENAME
#include <jemalloc/jemalloc.h>

#include "internal.h"

#ifdef __cplusplus
extern "C" {
#endif
ZM_HIDDEN void *zm__jep_malloc(size_t size);
ZM_HIDDEN void zm__jep_free(void *p);
ZM_HIDDEN void *zm__jep_mallocx(size_t size, int flags);
ZM_HIDDEN void *zm__jep_rallocx(void *p, size_t size, int flags);
ZM_HIDDEN size_t zm__jep_sallocx(const void *p, int flags);
ZM_HIDDEN void zm__jep_sdallocx(void *p, size_t size, int flags);
ZM_HIDDEN __attribute__((pure)) size_t zm__jep_nallocx(size_t size, int flags);
ZM_HIDDEN int zm__jep_mallctl(const char *name, void *oldp, size_t *oldlenp, void *newp,
                              size_t newlen);
ZM_HIDDEN int zm__jep_mallctlnametomib(const char *name, size_t *mibp, size_t *miblenp);
ZM_HIDDEN int zm__jep_mallctlbymib(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp,
                                   void *newp, size_t newlen);
ZM_HIDDEN void zm__jep_malloc_stats_print(void (*write_cb)(void *, const char *), void *cbopaque,
                                          const char *opts);
#ifdef __cplusplus
}
#endif

#define mallocx zm__jep_mallocx
#define rallocx zm__jep_rallocx
#define sallocx zm__jep_sallocx
#define sdallocx zm__jep_sdallocx
#define nallocx zm__jep_nallocx
#define mallctl zm__jep_mallctl
#define mallctlnametomib zm__jep_mallctlnametomib
#define mallctlbymib zm__jep_mallctlbymib
#define malloc_stats_print zm__jep_malloc_stats_print

#endif
