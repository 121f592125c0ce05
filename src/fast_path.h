/* The register of fast paths: the places where zmalloc reads an allocator's
 * private memory (a copy of its fast path, a read of its headers or tables)
 * instead of calling it. Like glibc's ifunc variants, each is chosen once at
 * load, only after the allocator's own version is one this project has
 * verified and a trial against the allocator itself agreed; each can be
 * taken away from the environment (ZMALLOC_FAST_PATHS=0) or from the build
 * (-DZMALLOC_FAST_PATHS=OFF); and each says whether it runs and, if not,
 * why (zm_fast_paths()).
 *
 * Backends call this from their load-time probes, in this order:
 *   if (!zm__fp_allowed(ZM_FP_X)) return;            (switched off: noted)
 *   if (!zm__fp_version(ZM_FP_X, "glibc", v, list)) return;   (noted)
 *   ... trial ...
 *   zm__fp_note(ZM_FP_X, NULL) or zm__fp_note(ZM_FP_X, "trial disagreed: %s", what);
 * It calls nothing that allocates (the probes run inside allocators). */
#ifndef ZM_FAST_PATH_H
#define ZM_FAST_PATH_H

#include "internal.h"

enum zm__fp {
    ZM_FP_GLIBC_HEAP_CHUNKS,  /* glibc: a heap chunk's size word, read inline (portable tier) */
    ZM_FP_GLIBC_MMAP_CHUNKS,  /* glibc: an mmapped chunk's size word (portable tier) */
    ZM_FP_GLIBC_TCACHE,       /* glibc: copies of tcache_get/tcache_put */
    ZM_FP_JEMALLOC_COPIES,    /* private jemalloc: copies of its malloc/free fast paths */
    ZM_FP_TCMALLOC_SIZES,     /* tcmalloc: size classes learnt from real blocks (portable) */
    ZM_FP_TCMALLOC_PAGE_CACHE,/* tcmalloc: a block's class read from its page cache */
    ZM_FP_TCMALLOC_COPIES,    /* tcmalloc: copies of its free-list pop and push */
    ZM_FP_MIMALLOC_SIZES,     /* mimalloc: bin sizes learnt from real blocks (portable) */
    ZM_FP_MIMALLOC_PAGES,     /* mimalloc: a block's size read from its page */
    ZM_FP_MIMALLOC_COPIES,    /* mimalloc: copies of mi_malloc's pop and mi_free's push */
    ZM_FP_COUNT
};

/* Whether fast path `fp` may be tried: the build has them and
 * ZMALLOC_FAST_PATHS (read once) is not "0". If not, notes why. The portable
 * tier's entries (sizes, chunk words) are not copies and are always allowed. */
ZM_HIDDEN int zm__fp_allowed(enum zm__fp fp);

/* Whether `version` of `allocator` is in `verified` (NULL-terminated): if
 * not, notes "<allocator> <version> not verified" and returns 0. */
ZM_HIDDEN int zm__fp_version(enum zm__fp fp, const char *allocator, const char *version,
                             const char *const *verified);

/* Records the outcome: why == NULL for "on", else a printf-style reason
 * (plain %s, %d, %u, %zu, %x only). */
ZM_HIDDEN void zm__fp_note(enum zm__fp fp, const char *why, ...)
    __attribute__((format(printf, 2, 3)));

/* Records "on", with a remark: on in part ("on for 6 bins: ..."). */
ZM_HIDDEN void zm__fp_note_on(enum zm__fp fp, const char *remark, ...)
    __attribute__((format(printf, 2, 3)));

/* Whether the last note for fp said "on". */
ZM_HIDDEN int zm__fp_is_on(enum zm__fp fp);

/* The report: "name: on" or "name: off (reason)" per path that the backend
 * registered, separated by "; ". Written into buf (NUL-terminated, cut to
 * len); returns the length it needed. */
ZM_HIDDEN size_t zm__fp_format(char *buf, size_t len);

#endif
