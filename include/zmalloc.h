/* zmalloc: a heap allocator wrapper that knows, at every instant, how many
 * bytes of heap its program holds.
 *
 * Every exported symbol is named zm_*. The Redis/Valkey names (zmalloc,
 * zfree, zmalloc_used_memory, ...) are macros over them, so code written
 * against Redis's or Valkey's zmalloc.h builds unchanged and still links next
 * to zlib, whose own zcalloc would otherwise collide. Define
 * ZMALLOC_NO_REDIS_NAMES before including this header to get the zm_* names
 * only.
 *
 * Thread-safety: every function may be called from any thread at any time,
 * unless its comment says otherwise. A block may be freed by a thread other
 * than the one that allocated it.
 *
 * This header depends on nothing included before it. */
#ifndef ZMALLOC_H
#define ZMALLOC_H

#include <stddef.h>

#include "zmalloc_config.h" /* ZMALLOC_VERSION_*, ZMALLOC_LIB, HAVE_MALLOC_SIZE: set at build time */

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) || defined(__clang__)
#define ZM_EXPORT __attribute__((visibility("default")))
#define ZM_ATTR_MALLOC __attribute__((malloc))
#define ZM_ATTR_ALLOC_SIZE(n) __attribute__((alloc_size(n)))
#define ZM_ATTR_ALLOC_SIZE2(n, m) __attribute__((alloc_size(n, m)))
#define ZM_ATTR_NOINLINE __attribute__((noinline))
#else
#define ZM_EXPORT
#define ZM_ATTR_MALLOC
#define ZM_ATTR_ALLOC_SIZE(n)
#define ZM_ATTR_ALLOC_SIZE2(n, m)
#define ZM_ATTR_NOINLINE
#endif

/* ------------------------------------------------------------------------
 * Version (docs/ABI.md)
 *
 * ZMALLOC_VERSION_MAJOR, _MINOR, _PATCH, _STRING (e.g. "1.1.0") and _NUMBER
 * (MAJOR * 10000 + MINOR * 100 + PATCH), from zmalloc_config.h, are the
 * version of this header.
 * ---------------------------------------------------------------------- */

/* The version of the library the program runs with, "MAJOR.MINOR.PATCH"
 * (a static string). It may be newer than ZMALLOC_VERSION_STRING, the
 * header's, within the same major. */
ZM_EXPORT const char *zm_version(void);

/* ------------------------------------------------------------------------
 * Allocation
 *
 * Accounting: every live block is counted for zm_size(ptr) bytes, from an
 * instant inside the allocating call until an instant inside the freeing
 * call: it is counted once the allocating call has returned, and no longer
 * once the freeing call has.
 *
 * Size rules shared by every allocating function:
 * - a size of 0 is legal and returns a unique, freeable, non-NULL block;
 * - a request that cannot be satisfied (the backend returns NULL, the size is
 *   PTRDIFF_MAX or more, a count * size product overflows, or the block would
 *   take used memory past zm_set_limit()) fails. Nothing is counted for a
 *   failed call.
 * - the zm_try* functions report failure by returning NULL with errno set to
 *   ENOMEM; the others call the OOM handler (see zm_set_oom_handler) with the
 *   requested size, and return NULL if the handler returns.
 * - every block of 16 bytes or more is aligned to alignof(max_align_t).
 *
 * The *_usable variants store the bytes the caller may use in *usable (which
 * may be NULL), and the caller may write all of them at once, as Redis's and
 * Valkey's sds and listpack code does. So they carry no alloc_size attribute:
 * under _FORTIFY_SOURCE the compiler must not believe such a block is only
 * the requested size. The other allocating functions do carry it, so FORTIFY
 * still catches a write past the requested size of their blocks; to use the
 * room zm_usable_size() reports there, pass the block through
 * zm_extend_to_usable() first.
 * ---------------------------------------------------------------------- */

/* Allocates size bytes (uninitialised). */
ZM_EXPORT ZM_ATTR_MALLOC ZM_ATTR_ALLOC_SIZE(1) void *zm_malloc(size_t size);
/* Allocates size zeroed bytes. */
ZM_EXPORT ZM_ATTR_MALLOC ZM_ATTR_ALLOC_SIZE(1) void *zm_calloc(size_t size);
/* Allocates num * size zeroed bytes. num or size may be 0 (a block is still
 * returned). An overflowing product fails and reports SIZE_MAX to the OOM
 * handler. */
ZM_EXPORT ZM_ATTR_MALLOC ZM_ATTR_ALLOC_SIZE2(1, 2) void *zm_calloc_num(size_t num, size_t size);
/* Resizes ptr to size bytes, keeping the leading contents. ptr NULL behaves
 * as zm_malloc(size); size 0 frees ptr and returns NULL. On failure the
 * original block is untouched, still valid and still counted. */
ZM_EXPORT ZM_ATTR_ALLOC_SIZE(2) void *zm_realloc(void *ptr, size_t size);
/* Frees a block from any zm_ allocation function. NULL does nothing. */
ZM_EXPORT void zm_free(void *ptr);
/* Duplicates the NUL-terminated string s (s must not be NULL). */
ZM_EXPORT ZM_ATTR_MALLOC char *zm_strdup(const char *s);

/* As above, but failure returns NULL (errno ENOMEM) instead of calling the
 * OOM handler. */
ZM_EXPORT ZM_ATTR_MALLOC ZM_ATTR_ALLOC_SIZE(1) void *zm_try_malloc(size_t size);
ZM_EXPORT ZM_ATTR_MALLOC ZM_ATTR_ALLOC_SIZE(1) void *zm_try_calloc(size_t size);
ZM_EXPORT ZM_ATTR_ALLOC_SIZE(2) void *zm_try_realloc(void *ptr, size_t size);

/* Allocates size bytes aligned to align, which must be a power of two (1
 * included). The block is counted, measured, resized and freed like any
 * other (zm_size, zm_realloc, zm_free). An align of alignof(max_align_t) or
 * less is a plain allocation of max(size, align) bytes (a block of n bytes is
 * aligned to every power of two up to min(n, alignof(max_align_t))); a larger
 * one is the backend's aligned allocation, or in size-header mode the
 * backend's aligned block of align + size bytes with the caller's block
 * align bytes into it, accounted for align + size. zm_realloc keeps only
 * alignof(max_align_t) of the alignment. A bad align (0, not a power of two)
 * returns NULL with errno EINVAL and does not call the OOM handler; other
 * failures follow the size rules above. */
ZM_EXPORT ZM_ATTR_MALLOC ZM_ATTR_ALLOC_SIZE(2) void *zm_malloc_aligned(size_t align, size_t size);
/* As zm_malloc_aligned(), but every failure returns NULL (errno ENOMEM, or
 * EINVAL for a bad align) instead of calling the OOM handler. */
ZM_EXPORT ZM_ATTR_MALLOC ZM_ATTR_ALLOC_SIZE(2) void *zm_try_malloc_aligned(size_t align,
                                                                        size_t size);

/* The *_usable families: as their plain twins, and report usable bytes
 * (0 when NULL is returned); the whole usable room may be written. */
ZM_EXPORT ZM_ATTR_MALLOC void *zm_malloc_usable(size_t size, size_t *usable);
ZM_EXPORT ZM_ATTR_MALLOC void *zm_calloc_usable(size_t size, size_t *usable);
ZM_EXPORT void *zm_realloc_usable(void *ptr, size_t size, size_t *usable);
ZM_EXPORT ZM_ATTR_MALLOC void *zm_try_malloc_usable(size_t size, size_t *usable);
ZM_EXPORT ZM_ATTR_MALLOC void *zm_try_calloc_usable(size_t size, size_t *usable);
ZM_EXPORT void *zm_try_realloc_usable(void *ptr, size_t size, size_t *usable);
/* Frees ptr and stores the usable size it had in *usable (0 for NULL).
 * usable may be NULL. */
ZM_EXPORT void zm_free_usable(void *ptr, size_t *usable);
/* Frees ptr whose usable size the caller already knows (the value reported by
 * zm_usable_size() or by a *_usable call), saving the size lookup and using
 * the backend's sized free where it has one. A wrong size is undefined
 * behaviour; builds with ZMALLOC_TESTING abort on it. */
ZM_EXPORT void zm_free_with_size(void *ptr, size_t size);
/* Frees memory that came from the C library's own malloc (e.g. from
 * backtrace_symbols), bypassing the backend and the counters. */
ZM_EXPORT void zm_libc_free(void *ptr);

/* ------------------------------------------------------------------------
 * Block sizes
 * ---------------------------------------------------------------------- */

/* Bytes ptr is accounted for (its share of zm_used_memory()). ptr must be a
 * live block from this library; NULL returns 0. */
ZM_EXPORT size_t zm_size(const void *ptr);
/* Bytes the caller may use in ptr (>= the requested size). Equal to zm_size()
 * when HAVE_MALLOC_SIZE is defined; the requested size in size-header mode.
 * NULL returns 0. */
ZM_EXPORT size_t zm_usable_size(const void *ptr);
/* Returns ptr, telling the compiler that ptr now holds size bytes, so that
 * _FORTIFY_SOURCE accepts writes into the usable room past the requested
 * size. size must not exceed zm_usable_size(ptr). */
ZM_EXPORT ZM_ATTR_ALLOC_SIZE(2) ZM_ATTR_NOINLINE void *zm_extend_to_usable(void *ptr, size_t size);

/* ------------------------------------------------------------------------
 * Accounting
 * ---------------------------------------------------------------------- */

/* Bytes held by live blocks: the exact sum of zm_size() over them whenever
 * no allocation is in flight in another thread. Each thread's share is one
 * word it wrote, so what a reader sees of each thread is a figure that thread
 * really had at some instant during the call. Cost: a lock and one read per
 * live thread that has allocated. */
ZM_EXPORT size_t zm_used_memory(void);
/* Highest used memory seen since start or the last zm_reset_peak(). It is
 * only ever set from the exact sum, so it never exceeds a figure that
 * happened. The sum is taken at every zm_used_memory() call, after every
 * single allocation (or realloc growth) of 64 KiB or more, and whenever the
 * shared estimate (within 64 KiB per live thread of the truth) passes the
 * peak at a thread's publish: so it may fall short of the true peak by at
 * most 128 KiB per live thread (a thread's balance may climb from 64 KiB
 * below its last published figure to 64 KiB above it without publishing),
 * and never misses a single allocation of 64 KiB or more. */
ZM_EXPORT size_t zm_used_memory_peak(void);
/* Sets the peak to the current used memory. */
ZM_EXPORT void zm_reset_peak(void);
/* Sets a hard cap on used memory (0 removes it). A request for n bytes fails
 * (zm_try* return NULL, the others call the OOM handler) when used memory + n
 * would exceed the cap. A request that does not raise used memory always
 * passes, even over the cap: n = 0, a realloc that shrinks or stays within
 * its block, and every free. Worst-case overshoot: the backend rounds n up to its
 * size class (the difference between zm_size() and n), plus requests that
 * other threads have in flight at the same instant, each of which may pass
 * the check before the others are counted. */
ZM_EXPORT void zm_set_limit(size_t bytes);
/* The cap set by zm_set_limit(), 0 when none. */
ZM_EXPORT size_t zm_get_limit(void);
/* Installs handler, called with the requested size when a non-try call
 * fails. NULL restores the default, which writes one line to stderr and
 * calls abort(). The handler runs with no lock held and the counters
 * settled, so it may return (the call then returns NULL), longjmp, or exit. */
ZM_EXPORT void zm_set_oom_handler(void (*handler)(size_t size));
/* Kept for code written against older Redis: the counters are always
 * thread-safe, so this does nothing. */
ZM_EXPORT void zm_enable_thread_safeness(void);

/* ------------------------------------------------------------------------
 * Process figures (Linux /proc, sysfs). Functions returning size_t return 0
 * on failure and set errno; to tell a true 0 from a failure, set errno to 0
 * before the call.
 * ---------------------------------------------------------------------- */

/* Resident set size of this process in bytes. errno: from reading
 * /proc/self/statm. */
ZM_EXPORT size_t zm_get_rss(void);
/* rss / zm_used_memory(); 0 when used memory is 0. */
ZM_EXPORT float zm_get_fragmentation_ratio(size_t rss);
/* Sum of the smaps field (e.g. "Rss:", "Private_Dirty:"; the trailing colon
 * is optional) over all mappings of process pid (-1 for this process), in
 * bytes. errno: EINVAL for a NULL or empty field, ESRCH for a pid that does
 * not exist, EACCES when not allowed, ENOENT for a field no mapping has. */
ZM_EXPORT size_t zm_get_smap_bytes_by_field(const char *field, long pid);
/* zm_get_smap_bytes_by_field("Private_Dirty:", pid). */
ZM_EXPORT size_t zm_get_private_dirty(long pid);
/* Physical memory of the machine in bytes. */
ZM_EXPORT size_t zm_get_memory_size(void);
/* The memory limit that applies to this process: the smallest cgroup limit
 * on its path (cgroup v2, else v1), or zm_get_memory_size() when none. */
ZM_EXPORT size_t zm_get_memory_limit(void);
/* Reads field i (1-based, as in proc(5)) of /proc/self/stat as a number into
 * *res. Returns 1 on success, 0 on failure (errno EINVAL for a bad i, a NULL
 * res or a non-numeric field). */
ZM_EXPORT int zm_get_proc_stat_ll(int i, long long *res);

/* Bits of zm_get_allocator_info()'s result: which figures are real. */
#define ZMALLOC_INFO_ALLOCATED 0x01
#define ZMALLOC_INFO_ACTIVE 0x02
#define ZMALLOC_INFO_RESIDENT 0x04
#define ZMALLOC_INFO_RETAINED 0x08
#define ZMALLOC_INFO_MUZZY 0x10
#define ZMALLOC_INFO_FRAG_SMALLBINS 0x20
/* Fills the allocator's own statistics, in bytes: allocated (in live
 * blocks), active (in pages holding them), resident (mapped and resident),
 * retained (mapped but returned to the OS), muzzy (lazily purged) and
 * frag_smallbins_bytes (free room in partly used small-size slabs). Returns
 * the ZMALLOC_INFO_* bits of the figures the backend really has; the others
 * are stored as 0. So a result of 0 means "no figures", as in Redis. Any
 * pointer may be NULL. On libc the figures come from mallinfo2(). */
ZM_EXPORT int zm_get_allocator_info(size_t *allocated, size_t *active, size_t *resident,
                                    size_t *retained, size_t *muzzy,
                                    size_t *frag_smallbins_bytes);
/* Which of the allocator's fast paths run in this process, and why each
 * other one does not. A fast path reads the allocator's private memory (a
 * copy of its own malloc/free fast path, or a read of its block headers)
 * instead of calling it; each is chosen once at load, only for an allocator
 * version this project has verified and only after a trial against the
 * allocator agreed. ZMALLOC_FAST_PATHS=0 in the environment (read once, at
 * load) turns the copies off; -DZMALLOC_FAST_PATHS=OFF leaves them out of
 * the build. The portable tier (reads of long-stable headers, size tables
 * learnt from the allocator's public calls) is listed too.
 * Writes "name: on", "name: on (remark)" (the release it runs on, e.g.
 * "on (mimalloc 3.0.1)", or on in part, e.g. "on (for 6 bins: ...)" under
 * glibc's tunables) or "name: off (reason)" entries, separated by "; ", into
 * buf, NUL-terminated and cut to len bytes (buf may be NULL when len is 0),
 * e.g. "glibc-heap-chunks: on; glibc-tcache-copies: off (glibc 2.43 not
 * verified)". Returns the length of the whole report, as snprintf does.
 * Thread-safe; allocates nothing. */
ZM_EXPORT size_t zm_fast_paths(char *buf, size_t len);
/* Enables or disables the allocator's background purging thread
 * (jemalloc's background_thread). A no-op on backends without one. */
ZM_EXPORT void zm_set_background_thread(int enable);
/* Returns freed memory to the OS now (jemalloc arena purge, mi_collect,
 * ReleaseFreeMemory, malloc_trim). Returns 0 on success, -1 on failure. */
ZM_EXPORT int zm_purge(void);
/* glibc's malloc_trim(0) on the C library heap; a no-op elsewhere. */
ZM_EXPORT void zm_libc_trim(void);
/* Tells the OS it may drop the whole pages inside the live block ptr: their
 * contents become zero. For a process (typically a fork child) that no longer
 * needs a large block's data but will free it later. NULL and blocks smaller
 * than a page do nothing. */
ZM_EXPORT void zm_madvise_dontneed(void *ptr);

/* As zm_malloc() and zm_free(), bypassing the allocator's thread cache where
 * it has one (jemalloc), so that a block moved by an active defragmenter
 * comes from the arena's current slabs. Elsewhere they are zm_malloc() and
 * zm_free(). zm_malloc_no_tcache() fails as zm_malloc() does (OOM handler);
 * zm_free_no_tcache() takes only blocks from zm_malloc_no_tcache(). Both
 * are counted exactly, as zm_malloc() and zm_free() are. */
ZM_EXPORT ZM_ATTR_MALLOC ZM_ATTR_ALLOC_SIZE(1) void *zm_malloc_no_tcache(size_t size);
ZM_EXPORT void zm_free_no_tcache(void *ptr);

/* ------------------------------------------------------------------------
 * Active defragmentation and jemalloc's own controls
 *
 * On the private jemalloc backend (the jemalloc backend's default),
 * zmalloc_config.h defines ZMALLOC_JEMALLOC and HAVE_DEFRAG, and these
 * functions reach that jemalloc (Debian's stock 5.3). Elsewhere they exist
 * too, and answer as each comment says.
 *
 * To defragment: for each live block p, if zm_defrag_hint(p), copy it into
 * q = zm_malloc_no_tcache(zm_size(p)), zm_free_no_tcache(p), and use q from
 * then on. Moving the blocks the hint names empties the least used slabs,
 * whose pages jemalloc can then give back (zm_purge() does it at once).
 * ---------------------------------------------------------------------- */

/* 1 when moving the live block ptr would likely help the allocator give
 * memory back, else 0. The rule is Redis's patched jemalloc's
 * (je_get_defrag_hint): ptr is a small block in a slab that is neither full
 * nor its bin's current slab (where new blocks come from), and that slab
 * holds no more blocks than the average non-full slab of its bin plus 12.5%.
 * Always 0 for NULL, for large blocks, and where HAVE_DEFRAG is not defined.
 * ptr must be a live block of this library. Thread-safe: it reads jemalloc's
 * figures under jemalloc's own locks, so the answer may be stale by the time
 * the caller acts on it (moving a block is always safe, only maybe useless). */
ZM_EXPORT int zm_defrag_hint(void *ptr);
/* jemalloc's mallctl(), mallctlnametomib() and mallctlbymib(), as its manual
 * describes them (read and write controls such as "arenas.page",
 * "stats.allocated", "thread.tcache.flush", "background_thread"). They return
 * 0 or an errno value: ENOENT for a name jemalloc does not have, and always
 * ENOENT where ZMALLOC_JEMALLOC is not defined. Thread-safe as jemalloc's
 * are. Controls that free or move blocks behind the caller's back
 * ("arena.<i>.reset", "arena.<i>.destroy") must not be used on arenas that
 * hold zmalloc's blocks: they would leave the accounting wrong. */
ZM_EXPORT int zm_mallctl(const char *name, void *oldp, size_t *oldlenp, void *newp, size_t newlen);
ZM_EXPORT int zm_mallctlnametomib(const char *name, size_t *mibp, size_t *miblenp);
ZM_EXPORT int zm_mallctlbymib(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp,
                              void *newp, size_t newlen);
/* jemalloc's malloc_stats_print(): its statistics report, written through
 * write_cb(cbopaque, text) in pieces (to stderr when write_cb is NULL); opts
 * as in jemalloc's manual, NULL for all. Where ZMALLOC_JEMALLOC is not
 * defined it writes one line saying there are no such statistics (nothing
 * when write_cb is NULL). Thread-safe. */
ZM_EXPORT void zm_malloc_stats_print(void (*write_cb)(void *, const char *), void *cbopaque,
                                     const char *opts);
/* jemalloc's nallocx(): the usable size zm_malloc(size) would get (flags as
 * jemalloc's MALLOCX_* flags, 0 for none), so zm_size() of such a block.
 * Returns 0 for a size jemalloc cannot serve, and always 0 where
 * ZMALLOC_JEMALLOC is not defined. Thread-safe. */
ZM_EXPORT size_t zm_nallocx(size_t size, int flags);

/* ------------------------------------------------------------------------
 * The Redis / Valkey names.
 * ---------------------------------------------------------------------- */
#ifndef ZMALLOC_NO_REDIS_NAMES
#define zmalloc zm_malloc
#define zcalloc zm_calloc
#define zcalloc_num zm_calloc_num
#define zrealloc zm_realloc
#define zfree zm_free
#define zstrdup zm_strdup
#define ztrymalloc zm_try_malloc
#define ztrycalloc zm_try_calloc
#define ztryrealloc zm_try_realloc
#define zmalloc_usable zm_malloc_usable
#define zcalloc_usable zm_calloc_usable
#define zrealloc_usable zm_realloc_usable
#define ztrymalloc_usable zm_try_malloc_usable
#define ztrycalloc_usable zm_try_calloc_usable
#define ztryrealloc_usable zm_try_realloc_usable
#define zfree_usable zm_free_usable
#define zfree_with_size zm_free_with_size
#define zlibc_free zm_libc_free
#define zmalloc_size zm_size
#define zmalloc_usable_size zm_usable_size
#define extend_to_usable zm_extend_to_usable
#define zmalloc_used_memory zm_used_memory
#define zmalloc_used_memory_peak zm_used_memory_peak
#define zmalloc_reset_peak zm_reset_peak
#define zmalloc_set_limit zm_set_limit
#define zmalloc_get_limit zm_get_limit
#define zmalloc_set_oom_handler zm_set_oom_handler
#define zmalloc_enable_thread_safeness zm_enable_thread_safeness
#define zmalloc_get_rss zm_get_rss
#define zmalloc_get_fragmentation_ratio zm_get_fragmentation_ratio
#define zmalloc_get_private_dirty zm_get_private_dirty
#define zmalloc_get_smap_bytes_by_field zm_get_smap_bytes_by_field
#define zmalloc_get_memory_size zm_get_memory_size
#define zmalloc_get_memory_limit zm_get_memory_limit
#define get_proc_stat_ll zm_get_proc_stat_ll
/* Every released form of zmalloc_get_allocator_info, picked by the number
 * of arguments: Redis 6.2-7.2 and Valkey 7.2 pass (allocated, active,
 * resident); Valkey 8.1 adds (retained, muzzy); Valkey 8.0 passes the six of
 * zm_get_allocator_info(); Redis 7.4 and 8.0 put an int refresh_stats first
 * (the figures are always refreshed here). Each returns the ZMALLOC_INFO_*
 * bits. */
#define zmalloc_get_allocator_info(...)                                                         \
    ZM__ARG8(__VA_ARGS__, zm__allocator_info7, zm_get_allocator_info, zm__allocator_info5,      \
             zm__allocator_info_bad4, zm__allocator_info3, zm__allocator_info_bad2,             \
             zm__allocator_info_bad1)(__VA_ARGS__)
#define ZM__ARG8(a1, a2, a3, a4, a5, a6, a7, a8, ...) a8
static inline int zm__allocator_info3(size_t *allocated, size_t *active, size_t *resident) {
    return zm_get_allocator_info(allocated, active, resident, NULL, NULL, NULL);
}
static inline int zm__allocator_info5(size_t *allocated, size_t *active, size_t *resident,
                                      size_t *retained, size_t *muzzy) {
    return zm_get_allocator_info(allocated, active, resident, retained, muzzy, NULL);
}
static inline int zm__allocator_info7(int refresh_stats, size_t *allocated, size_t *active,
                                      size_t *resident, size_t *retained, size_t *muzzy,
                                      size_t *frag_smallbins_bytes) {
    (void)refresh_stats;
    return zm_get_allocator_info(allocated, active, resident, retained, muzzy,
                                 frag_smallbins_bytes);
}
/* Redis 7.4 and 8.0: one jemalloc arena's figures. Arenas are not exposed
 * here: every figure is 0 and the result is 0 ("no figures"). */
static inline int zmalloc_get_allocator_info_by_arena(unsigned int arena, int refresh_stats,
                                                      size_t *allocated, size_t *active,
                                                      size_t *resident,
                                                      size_t *frag_smallbins_bytes) {
    (void)arena;
    (void)refresh_stats;
    if (allocated) *allocated = 0;
    if (active) *active = 0;
    if (resident) *resident = 0;
    if (frag_smallbins_bytes) *frag_smallbins_bytes = 0;
    return 0;
}
#define set_jemalloc_bg_thread zm_set_background_thread
#define jemalloc_purge zm_purge
#define zlibc_trim zm_libc_trim
#define zmadvise_dontneed zm_madvise_dontneed
#define zmalloc_no_tcache zm_malloc_no_tcache
#define zfree_no_tcache zm_free_no_tcache
/* Redis's and Valkey's defrag.c declare and call je_get_defrag_hint() where
 * HAVE_DEFRAG is defined. */
#define je_get_defrag_hint zm_defrag_hint
#ifdef USE_JEMALLOC
/* The opt-in: a server built with USE_JEMALLOC defined (and MALLOC=libc, so
 * that it links no jemalloc of its own) calls jemalloc by these names for
 * DEBUG MALLCTL, MEMORY MALLOC-STATS and sds's size classes. */
#define je_mallctl zm_mallctl
#define je_mallctlnametomib zm_mallctlnametomib
#define je_mallctlbymib zm_mallctlbymib
#define je_malloc_stats_print zm_malloc_stats_print
#define je_nallocx zm_nallocx
#endif
/* Valkey 8.1 names the four basic calls so. */
#define valkey_malloc zm_malloc
#define valkey_calloc zm_calloc
#define valkey_realloc zm_realloc
#define valkey_free zm_free
#if defined(REDIS_TEST) || defined(SERVER_TEST)
/* Redis's test registry (redis-server test zmalloc) expects this entry. */
static inline int zmalloc_test(int argc, char **argv, int flags) {
    (void)argc;
    (void)argv;
    (void)flags;
    size_t before = zm_used_memory();
    void *p = zm_malloc(123);
    int ok = p != NULL && zm_used_memory() - before == zm_size(p);
    zm_free(p);
    return ok && zm_used_memory() == before ? 0 : 1;
}
#endif
#endif /* ZMALLOC_NO_REDIS_NAMES */

#ifdef __cplusplus
}
#endif

#endif /* ZMALLOC_H */
