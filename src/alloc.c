/* The entry points: size checks, the limit, the OOM handler, then one call to
 * the block layer and one counter update. */
#include <errno.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alloc_core.h"
#include "zmalloc.h"

typedef void (*zm__oom_fn)(size_t);
static _Atomic(zm__oom_fn) oom_handler; /* NULL: default_oom */

/* Writes the message with write(2): stdio may allocate, and the heap is what
 * just failed. */
static void default_oom(size_t size) {
    char buf[80], digits[24];
    int n = 0;
    do digits[n++] = (char)('0' + size % 10);
    while ((size /= 10) != 0);
    static const char head[] = "zmalloc: out of memory trying to allocate ";
    static const char tail[] = " bytes\n";
    size_t len = sizeof head - 1;
    memcpy(buf, head, len);
    while (n) buf[len++] = digits[--n];
    memcpy(buf + len, tail, sizeof tail - 1);
    len += sizeof tail - 1;
    ssize_t ignored = write(STDERR_FILENO, buf, len);
    (void)ignored;
    abort();
}

__attribute__((noinline, cold)) static void *oom(size_t size) {
    zm__oom_fn handler = atomic_load_explicit(&oom_handler, memory_order_acquire);
    (handler ? handler : default_oom)(size);
    errno = ENOMEM;
    return NULL;
}

static inline void *or_oom(void *p, size_t size) { return zm_likely(p != NULL) ? p : oom(size); }

#if ZM_ALLOC_FAST
/* zm_malloc's and zm_malloc_usable's way when the fast path declines: the
 * OOM handler's call is in here too, so that the fast path needs no frame. */
__attribute__((noinline)) static void *malloc_slow(size_t size, size_t *usable) {
    return or_oom(alloc_generic(size, usable, ALLOC_PLAIN, ALIGN_NONE), size);
}

ZM_EXPORT void *zm_malloc(size_t size) {
    void *p;
    if (zm_likely(alloc_fast(size, &p, NULL))) return p;
    return malloc_slow(size, NULL);
}
ZM_EXPORT void *zm_malloc_usable(size_t size, size_t *usable) {
    void *p;
    if (zm_likely(alloc_fast(size, &p, usable))) return p;
    return malloc_slow(size, usable);
}
#else
ZM_EXPORT void *zm_malloc(size_t size) { return or_oom(alloc_impl(size, NULL, ALLOC_PLAIN), size); }
ZM_EXPORT void *zm_malloc_usable(size_t size, size_t *usable) {
    return or_oom(alloc_impl(size, usable, ALLOC_PLAIN), size);
}
#endif
ZM_EXPORT void *zm_calloc(size_t size) { return or_oom(alloc_impl(size, NULL, ALLOC_ZEROED), size); }
ZM_EXPORT void *zm_try_malloc(size_t size) { return alloc_impl(size, NULL, ALLOC_PLAIN); }
ZM_EXPORT void *zm_try_calloc(size_t size) { return alloc_impl(size, NULL, ALLOC_ZEROED); }

ZM_EXPORT void *zm_calloc_usable(size_t size, size_t *usable) {
    return or_oom(alloc_impl(size, usable, ALLOC_ZEROED), size);
}
ZM_EXPORT void *zm_try_malloc_usable(size_t size, size_t *usable) {
    return alloc_impl(size, usable, ALLOC_PLAIN);
}
ZM_EXPORT void *zm_try_calloc_usable(size_t size, size_t *usable) {
    return alloc_impl(size, usable, ALLOC_ZEROED);
}

#ifndef ZM_BLK_MEMALIGN
#error "the block layer has no aligned allocation (zm__blk_memalign)"
#endif

static int bad_alignment(size_t align) { return align == 0 || (align & (align - 1)) != 0; }

/* A block of n bytes is aligned to every power of two up to
 * min(n, alignof(max_align_t)): smaller alignments need only the size. */
ZM_INLINE void *aligned_impl(size_t align, size_t size) {
    if (align <= alignof(max_align_t)) return alloc_impl(size < align ? align : size, NULL, ALLOC_PLAIN);
    /* An alignment no block of this size can have within PTRDIFF_MAX fails
     * here, as an overflowing size does: not every allocator's memalign
     * answers it with NULL (AddressSanitizer's aborts). */
    if (zm_unlikely(size > (size_t)PTRDIFF_MAX || align > (size_t)PTRDIFF_MAX - size)) {
        errno = ENOMEM;
        return NULL;
    }
    return alloc_aligned_impl(size, NULL, ALLOC_ALIGNED, align);
}

__attribute__((cold)) static void *bad_alignment_fail(void) {
    errno = EINVAL;
    return NULL;
}

ZM_EXPORT void *zm_malloc_aligned(size_t align, size_t size) {
    if (zm_unlikely(bad_alignment(align))) return bad_alignment_fail();
    return or_oom(aligned_impl(align, size), size);
}
ZM_EXPORT void *zm_try_malloc_aligned(size_t align, size_t size) {
    if (zm_unlikely(bad_alignment(align))) return bad_alignment_fail();
    return aligned_impl(align, size);
}

ZM_EXPORT void *zm_calloc_num(size_t num, size_t size) {
    size_t total;
    if (__builtin_mul_overflow(num, size, &total)) return oom(SIZE_MAX);
    return or_oom(alloc_impl(total, NULL, ALLOC_ZEROED), total);
}

ZM_EXPORT void *zm_realloc_usable(void *ptr, size_t size, size_t *usable) {
    void *p = realloc_impl(ptr, size, usable);
    /* NULL with size 0 means "freed" only when there was a block to free. */
    return p || (size == 0 && ptr) ? p : oom(size);
}
ZM_EXPORT void *zm_realloc(void *ptr, size_t size) { return zm_realloc_usable(ptr, size, NULL); }
ZM_EXPORT void *zm_try_realloc_usable(void *ptr, size_t size, size_t *usable) {
    return realloc_impl(ptr, size, usable);
}
ZM_EXPORT void *zm_try_realloc(void *ptr, size_t size) { return realloc_impl(ptr, size, NULL); }

#ifdef ZM_JE_FAST
/* Where jemalloc's free fast path gives up, or the thread has no slot. */
__attribute__((noinline)) static void free_slow(void *ptr) { free_any_impl(ptr); }
#endif

ZM_EXPORT void zm_free(void *ptr) {
#if defined(ZM_JE_FAST)
    if (zm_likely(zm__jef_free(ptr))) return;
    free_slow(ptr);
#else
    free_maybe_null_impl(ptr);
#endif
}

ZM_EXPORT void zm_free_usable(void *ptr, size_t *usable) {
    size_t acct = ptr ? zm__blk_acct(ptr) : 0;
    if (usable) *usable = ptr ? zm__blk_usable(ptr, acct) : 0;
    if (ptr) free_impl(ptr, acct);
}

ZM_EXPORT void zm_free_with_size(void *ptr, size_t size) {
    if (!ptr) return;
#ifdef ZMALLOC_TESTING
    if (size != zm__blk_usable(ptr, zm__blk_acct(ptr))) abort();
#endif
    free_impl(ptr, zm__blk_acct_of_usable(ptr, size));
}

/* As zm_malloc/zm_free, bypassing the allocator's thread cache where it has
 * one (see backend.h), for callers that move blocks to defragment. */
ZM_EXPORT void *zm_malloc_no_tcache(size_t size) {
    return or_oom(alloc_impl(size, NULL, ALLOC_NO_TCACHE), size);
}

ZM_EXPORT void zm_free_no_tcache(void *ptr) {
    if (!ptr) return;
    free_counted(ptr, zm__blk_acct(ptr), FREE_NO_TCACHE);
}

ZM_EXPORT char *zm_strdup(const char *s) {
    size_t len = strlen(s) + 1;
    char *p = zm_malloc(len);
    if (p) memcpy(p, s, len);
    return p;
}

ZM_EXPORT void zm_libc_free(void *ptr) { free(ptr); }

ZM_EXPORT size_t zm_size(const void *ptr) {
    if (!ptr) return 0;
    size_t size = zm__blk_acct(ptr);
    zm__count_nothing(); /* a size lookup */
    return size;
}

ZM_EXPORT size_t zm_usable_size(const void *ptr) {
    if (!ptr) return 0;
    size_t size = zm__blk_usable(ptr, zm__blk_acct(ptr));
    zm__count_nothing(); /* a size lookup */
    return size;
}

ZM_EXPORT void *zm_extend_to_usable(void *ptr, size_t size) {
    (void)size;
    return ptr;
}

ZM_EXPORT void zm_set_oom_handler(void (*handler)(size_t size)) {
    atomic_store_explicit(&oom_handler, handler, memory_order_release);
}

ZM_EXPORT void zm_enable_thread_safeness(void) {}

ZM_EXPORT size_t zm_used_memory(void) { return zm__used_memory(); }
ZM_EXPORT size_t zm_used_memory_peak(void) { return zm__used_memory_peak(); }
ZM_EXPORT void zm_reset_peak(void) { zm__reset_peak(); }
ZM_EXPORT void zm_set_limit(size_t bytes) { zm__set_limit(bytes); }
ZM_EXPORT size_t zm_get_limit(void) { return zm__get_limit(); }
