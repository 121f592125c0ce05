/* The Redis and Valkey names as real symbols (ZMALLOC_EXPORT_REDIS_NAMES=ON),
 * for code compiled against their own zmalloc.h instead of ours: libraries
 * vendored in those servers (hdr_histogram calls zcalloc_num and, in Valkey,
 * valkey_free by symbol). Each forwards to the zm_* function; signatures are
 * those of the newest Redis and Valkey headers. Not in the default build: a
 * program that also links zlib statically has a zcalloc of its own. */
#define ZMALLOC_NO_REDIS_NAMES 1
#include <stddef.h>

#include "zmalloc.h"

#define ZM_FORWARD(ret, name, params, target, args) \
    ZM_EXPORT ret name params;                      \
    ret name params { return target args; }
#define ZM_FORWARD_VOID(name, params, target, args) \
    ZM_EXPORT void name params;                     \
    void name params { target args; }

/* Allocation */
ZM_FORWARD(void *, zmalloc, (size_t size), zm_malloc, (size))
ZM_FORWARD(void *, zcalloc, (size_t size), zm_calloc, (size))
ZM_FORWARD(void *, zcalloc_num, (size_t num, size_t size), zm_calloc_num, (num, size))
ZM_FORWARD(void *, zrealloc, (void *ptr, size_t size), zm_realloc, (ptr, size))
ZM_FORWARD_VOID(zfree, (void *ptr), zm_free, (ptr))
ZM_FORWARD(char *, zstrdup, (const char *s), zm_strdup, (s))
ZM_FORWARD(void *, ztrymalloc, (size_t size), zm_try_malloc, (size))
ZM_FORWARD(void *, ztrycalloc, (size_t size), zm_try_calloc, (size))
ZM_FORWARD(void *, ztryrealloc, (void *ptr, size_t size), zm_try_realloc, (ptr, size))
ZM_FORWARD(void *, zmalloc_usable, (size_t size, size_t *usable), zm_malloc_usable, (size, usable))
ZM_FORWARD(void *, zcalloc_usable, (size_t size, size_t *usable), zm_calloc_usable, (size, usable))
ZM_FORWARD(void *, zrealloc_usable, (void *ptr, size_t size, size_t *usable), zm_realloc_usable,
           (ptr, size, usable))
ZM_FORWARD(void *, ztrymalloc_usable, (size_t size, size_t *usable), zm_try_malloc_usable,
           (size, usable))
ZM_FORWARD(void *, ztrycalloc_usable, (size_t size, size_t *usable), zm_try_calloc_usable,
           (size, usable))
ZM_FORWARD(void *, ztryrealloc_usable, (void *ptr, size_t size, size_t *usable),
           zm_try_realloc_usable, (ptr, size, usable))
ZM_FORWARD_VOID(zfree_usable, (void *ptr, size_t *usable), zm_free_usable, (ptr, usable))
ZM_FORWARD_VOID(zfree_with_size, (void *ptr, size_t size), zm_free_with_size, (ptr, size))
ZM_FORWARD_VOID(zlibc_free, (void *ptr), zm_libc_free, (ptr))
ZM_FORWARD(void *, zmalloc_no_tcache, (size_t size), zm_malloc_no_tcache, (size))
ZM_FORWARD_VOID(zfree_no_tcache, (void *ptr), zm_free_no_tcache, (ptr))
/* Valkey 8 renames the four basic calls, to keep clear of other zmallocs. */
ZM_FORWARD(void *, valkey_malloc, (size_t size), zm_malloc, (size))
ZM_FORWARD(void *, valkey_calloc, (size_t size), zm_calloc, (size))
ZM_FORWARD(void *, valkey_realloc, (void *ptr, size_t size), zm_realloc, (ptr, size))
ZM_FORWARD_VOID(valkey_free, (void *ptr), zm_free, (ptr))

/* Sizes */
ZM_FORWARD(size_t, zmalloc_size, (void *ptr), zm_size, (ptr))
ZM_FORWARD(size_t, zmalloc_usable_size, (void *ptr), zm_usable_size, (ptr))
ZM_FORWARD(void *, extend_to_usable, (void *ptr, size_t size), zm_extend_to_usable, (ptr, size))

/* Accounting */
ZM_FORWARD(size_t, zmalloc_used_memory, (void), zm_used_memory, ())
ZM_FORWARD_VOID(zmalloc_set_oom_handler, (void (*oom_handler)(size_t)), zm_set_oom_handler,
                (oom_handler))
ZM_FORWARD_VOID(zmalloc_enable_thread_safeness, (void), zm_enable_thread_safeness, ())

/* Process and allocator figures */
ZM_FORWARD(size_t, zmalloc_get_rss, (void), zm_get_rss, ())
ZM_FORWARD(float, zmalloc_get_fragmentation_ratio, (size_t rss), zm_get_fragmentation_ratio, (rss))
ZM_FORWARD(size_t, zmalloc_get_private_dirty, (long pid), zm_get_private_dirty, (pid))
ZM_FORWARD(size_t, zmalloc_get_smap_bytes_by_field, (char *field, long pid),
           zm_get_smap_bytes_by_field, (field, pid))
ZM_FORWARD(size_t, zmalloc_get_memory_size, (void), zm_get_memory_size, ())
ZM_FORWARD(int, get_proc_stat_ll, (int i, long long *res), zm_get_proc_stat_ll, (i, res))
ZM_FORWARD(int, zmalloc_get_allocator_info,
           (size_t *allocated, size_t *active, size_t *resident, size_t *retained, size_t *muzzy,
            size_t *frag_smallbins_bytes),
           zm_get_allocator_info, (allocated, active, resident, retained, muzzy, frag_smallbins_bytes))
ZM_FORWARD_VOID(set_jemalloc_bg_thread, (int enable), zm_set_background_thread, (enable))
ZM_FORWARD(int, jemalloc_purge, (void), zm_purge, ())
ZM_FORWARD_VOID(zlibc_trim, (void), zm_libc_trim, ())
ZM_FORWARD_VOID(zmadvise_dontneed, (void *ptr), zm_madvise_dontneed, (ptr))
