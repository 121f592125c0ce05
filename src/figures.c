/* Process and allocator figures: the public face of the OS-query layer and of
 * the backend's statistics. */
#include <stdlib.h> /* defines __GLIBC__ on glibc */
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "backend.h"
#include "fast_path.h"
#include "os.h"
#include "zmalloc.h"

ZM_EXPORT size_t zm_get_rss(void) { return zm__os_rss(); }

ZM_EXPORT float zm_get_fragmentation_ratio(size_t rss) {
    size_t used = zm_used_memory();
    return used ? (float)rss / (float)used : 0.0f;
}

ZM_EXPORT size_t zm_get_smap_bytes_by_field(const char *field, long pid) {
    return zm__os_smap_bytes(field, pid);
}

ZM_EXPORT size_t zm_get_private_dirty(long pid) { return zm__os_smap_bytes("Private_Dirty:", pid); }

ZM_EXPORT size_t zm_get_memory_size(void) { return zm__os_memory_size(); }

ZM_EXPORT size_t zm_get_memory_limit(void) { return zm__os_memory_limit(); }

ZM_EXPORT int zm_get_proc_stat_ll(int i, long long *res) { return zm__os_proc_stat_ll(i, res); }

static void put(size_t *dst, size_t value) {
    if (dst) *dst = value;
}

/* The backend's statistics bits are the public ones, passed on as they are. */
_Static_assert(ZM__BE_HAVE_ALLOCATED == ZMALLOC_INFO_ALLOCATED && ZM__BE_HAVE_ACTIVE == ZMALLOC_INFO_ACTIVE &&
                   ZM__BE_HAVE_RESIDENT == ZMALLOC_INFO_RESIDENT &&
                   ZM__BE_HAVE_RETAINED == ZMALLOC_INFO_RETAINED && ZM__BE_HAVE_MUZZY == ZMALLOC_INFO_MUZZY &&
                   ZM__BE_HAVE_FRAG_SMALLBINS == ZMALLOC_INFO_FRAG_SMALLBINS,
               "backend.h's ZM__BE_HAVE_* bits are zmalloc.h's ZMALLOC_INFO_* bits");

ZM_EXPORT int zm_get_allocator_info(size_t *allocated, size_t *active, size_t *resident,
                                    size_t *retained, size_t *muzzy,
                                    size_t *frag_smallbins_bytes) {
    zm__be_stats s;
    zm__be_get_stats(&s);
    put(allocated, s.allocated);
    put(active, s.active);
    put(resident, s.resident);
    put(retained, s.retained);
    put(muzzy, s.muzzy);
    put(frag_smallbins_bytes, s.frag_smallbins);
    return s.have;
}

ZM_EXPORT size_t zm_fast_paths(char *buf, size_t len) {
    if (!buf) len = 0;
    return zm__fp_format(buf, len);
}

ZM_EXPORT void zm_set_background_thread(int enable) { zm__be_background_thread(enable); }

ZM_EXPORT int zm_purge(void) { return zm__be_purge(); }

ZM_EXPORT void zm_libc_trim(void) {
#ifdef __GLIBC__
    malloc_trim(0);
#endif
}

ZM_EXPORT void zm_madvise_dontneed(void *ptr) {
    if (ptr) zm__os_dontneed(ptr, zm_usable_size(ptr));
}
