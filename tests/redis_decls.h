/* The declarations a program compiled against Redis's or Valkey's own
 * zmalloc.h sees: plain functions, no macros onto zm_*. Written for this test
 * from their published signatures; deliberately not our header. */
#ifndef REDIS_DECLS_H
#define REDIS_DECLS_H
#include <stddef.h>

void *zmalloc(size_t size);
void *zcalloc(size_t size);
void *zcalloc_num(size_t num, size_t size);
void *zrealloc(void *ptr, size_t size);
void zfree(void *ptr);
char *zstrdup(const char *s);
void *ztrymalloc(size_t size);
void *ztrycalloc(size_t size);
void *ztryrealloc(void *ptr, size_t size);
void *zmalloc_usable(size_t size, size_t *usable);
void *zcalloc_usable(size_t size, size_t *usable);
void *zrealloc_usable(void *ptr, size_t size, size_t *usable);
void *ztrymalloc_usable(size_t size, size_t *usable);
void *ztrycalloc_usable(size_t size, size_t *usable);
void *ztryrealloc_usable(void *ptr, size_t size, size_t *usable);
void zfree_usable(void *ptr, size_t *usable);
void zfree_with_size(void *ptr, size_t size);
void zlibc_free(void *ptr);
void *zmalloc_no_tcache(size_t size);
void zfree_no_tcache(void *ptr);
void *valkey_malloc(size_t size);
void *valkey_calloc(size_t size);
void *valkey_realloc(void *ptr, size_t size);
void valkey_free(void *ptr);
size_t zmalloc_size(void *ptr);
size_t zmalloc_usable_size(void *ptr);
void *extend_to_usable(void *ptr, size_t size);
size_t zmalloc_used_memory(void);
void zmalloc_set_oom_handler(void (*oom_handler)(size_t));
void zmalloc_enable_thread_safeness(void);
size_t zmalloc_get_rss(void);
float zmalloc_get_fragmentation_ratio(size_t rss);
size_t zmalloc_get_private_dirty(long pid);
size_t zmalloc_get_smap_bytes_by_field(char *field, long pid);
size_t zmalloc_get_memory_size(void);
int get_proc_stat_ll(int i, long long *res);
int zmalloc_get_allocator_info(size_t *allocated, size_t *active, size_t *resident,
                               size_t *retained, size_t *muzzy, size_t *frag_smallbins_bytes);
void set_jemalloc_bg_thread(int enable);
int jemalloc_purge(void);
void zlibc_trim(void);
void zmadvise_dontneed(void *ptr);
#endif
