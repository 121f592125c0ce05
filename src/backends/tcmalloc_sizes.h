/* What zmalloc knows of tcmalloc's block sizes, learnt and checked at load
 * (tcmalloc_sizes.c): the size-class tables by request, tcmalloc's own size
 * lookup without its virtual call, and (in the builds whose layout was
 * read: Debian 12's, 13's and unstable's) tcmalloc's page -> class cache. The backend (tcmalloc.h) and the copies of tcmalloc's
 * fast paths (tcmalloc_fast.c) both build on it; it knows neither. */
#ifndef ZM_BACKEND_TCMALLOC_SIZES_H
#define ZM_BACKEND_TCMALLOC_SIZES_H

#include <gperftools/nallocx.h>
#include <gperftools/tcmalloc.h>
#include <stdint.h>

#include "fast_path.h"
#include "internal.h"

/* TCMallocImplementation::GetAllocatedSize(const void *) and its object,
 * found and checked against tc_malloc_size() at load time (tcmalloc.c);
 * NULL: ask tc_malloc_size(). */
extern ZM_HIDDEN size_t (*zm__tc_size_of)(void *self, const void *p);
extern ZM_HIDDEN void *zm__tc_self;

/* Usable sizes by request, as tcmalloc indexes its classes: 8-byte steps up
 * to 1 KiB, 128-byte steps up to 256 KiB (valid where zm__tc_sizes_setup()
 * said so: the backend's zm__tc_classes_ok). */
#define ZM_TC_SMALL_MAX 1024
#define ZM_TC_LARGE_MAX (256 * 1024)
extern ZM_HIDDEN uint32_t zm__tc_small[ZM_TC_SMALL_MAX / 8 + 1];
extern ZM_HIDDEN uint32_t zm__tc_large[ZM_TC_LARGE_MAX / 128 + 1];

/* A freed block's size without a call: tcmalloc's own cache of page ->
 * size class (a PackedCache, the first member of its page heap, which its
 * free reads first), then the class's size. The cache lives in
 * libtcmalloc_minimal.so at an offset read off each known build's tc_free;
 * tcmalloc_sizes.c turns the read on only for those very builds (GNU build
 * ID and tc_version()) and only if it agrees with tc_malloc_size() on real
 * blocks; it fills the class sizes from real blocks too. A miss, or a class not seen at load, declines (0):
 * the block is then asked. */
extern ZM_HIDDEN const volatile uint64_t *zm__tc_class_cache;
extern ZM_HIDDEN uintptr_t zm__tc_inline_floor; /* 1 once the read is on, else UINTPTR_MAX */
#define ZM_TC_CLASSES 128
extern ZM_HIDDEN uint32_t zm__tc_class_size[ZM_TC_CLASSES];

/* p's size class from the cache (8 KiB pages, 2^16 entries keyed by the
 * page's high bits): below ZM_TC_CLASSES on a hit. */
static inline uint64_t zm__tc_cached_class(const void *p) {
    uintptr_t page = (uintptr_t)p >> 13;
    return zm__tc_class_cache[page & 0xffff] ^ (page & ~(uintptr_t)0xffff);
}

static inline size_t zm__tc_cached_usable(const void *p) {
    uint64_t cl = zm__tc_cached_class(p);
    return zm_likely(cl < ZM_TC_CLASSES) ? zm__tc_class_size[cl] : 0;
}

/* Whether tc_version() is a gperftools release the private reads were
 * verified on; if not, notes why for fp (tcmalloc.c). */
ZM_HIDDEN int zm__tc_version_verified(enum zm__fp fp);

/* Learns all of the above (at load, before anything uses it). Returns 1 if
 * the class tables agreed with tc_nallocx() and real blocks at both ends of
 * every step, else -1 (the backend keeps the answer: zm__tc_classes_ok). */
ZM_HIDDEN int zm__tc_sizes_setup(void);
/* A gperftools build whose private layout was read off its object code
 * (offsets from its load address). */
typedef struct zm__tc_build {
    const char *version;        /* its tc_version(), e.g. "2.16" */
    unsigned char build_id[20]; /* its GNU build ID */
    uintptr_t class_cache;      /* the page heap's class cache entries */
    uintptr_t tpoff_got;        /* GOT slot: the thread cache's TLS offset */
    uintptr_t class_array;      /* request index -> size class */
    uintptr_t malloc_hooks;     /* non-zero: tc_malloc leaves its fast path */
    uintptr_t delete_hooks;     /* non-zero: tc_free leaves its fast path */
    size_t free_word;           /* free's TLS word, bytes after malloc's */
} zm__tc_build;

/* The build this tcmalloc is (build ID and tc_version() both), with its
 * load address in *base; NULL if it is none of those read. */
ZM_HIDDEN const zm__tc_build *zm__tc_known_build(uintptr_t *base);

#endif
