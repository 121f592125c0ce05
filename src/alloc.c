/* The entry points: size checks, the limit, the OOM handler, then one call to
 * the block layer and one counter update. */
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "block.h"
#include "counter.h"
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

__attribute__((cold)) static void *fail(size_t *usable) {
    if (usable) *usable = 0;
    errno = ENOMEM;
    return NULL;
}

enum alloc_kind { ALLOC_PLAIN, ALLOC_ZEROED, ALLOC_NO_TCACHE };

ZM_INLINE void *blk_alloc(size_t size, size_t *acct, enum alloc_kind kind) {
    switch (kind) {
    case ALLOC_ZEROED: return zm__blk_calloc(size, acct);
    case ALLOC_NO_TCACHE: return zm__blk_malloc_no_tcache(size, acct);
    default: return zm__blk_malloc(size, acct);
    }
}

/* After the allocation, the count and the usable size. */
ZM_INLINE void *finish(void *p, size_t acct, size_t *usable) {
    if (usable) *usable = zm__blk_usable(p, acct);
    return p;
}

/* A request of a batch or more is counted through the large-allocation
 * path, so that the peak sees every single allocation of that size. (Such a
 * request always took the slow check: the request bound is at most a batch.) */
ZM_INLINE void count_growth(size_t request, int64_t delta) {
    if (request >= (size_t)ZM_PUBLISH_BATCH) zm__count_large(delta);
    else zm__count(delta);
}

/* Requests that take the slow check (a limit is set, or the request is a
 * batch or more), out of line so the hot path stays one compare. */
__attribute__((noinline)) static void *alloc_checked(size_t size, size_t *usable,
                                                     enum alloc_kind kind) {
    if (!zm__request_allowed(size)) return fail(usable);
    size_t acct;
    void *p = blk_alloc(size, &acct, kind);
    if (zm_unlikely(!p)) return fail(usable);
    count_growth(size, (int64_t)acct);
    return finish(p, acct, usable);
}

ZM_INLINE void *alloc_impl(size_t size, size_t *usable, enum alloc_kind kind) {
    if (zm_unlikely(!zm__request_small(size))) return alloc_checked(size, usable, kind);
    size_t acct;
    void *p = blk_alloc(size, &acct, kind);
    if (zm_unlikely(!p)) return fail(usable);
    zm__count((int64_t)acct);
    return finish(p, acct, usable);
}

/* Counting first lets the compiler end zm_free with a jump to the backend. */
ZM_INLINE void free_impl(void *ptr, size_t acct) {
    zm__count(-(int64_t)acct);
    zm__blk_free(ptr, acct);
}

/* NULL with size 0 means "freed", not a failure. Only growth is checked
 * against the limit: a realloc that does not raise used memory always may. */
ZM_INLINE void *realloc_impl(void *ptr, size_t size, size_t *usable) {
    if (!ptr) return alloc_impl(size, usable, ALLOC_PLAIN);
    size_t old = zm__blk_acct(ptr);
    if (size == 0) {
        free_impl(ptr, old);
        if (usable) *usable = 0;
        return NULL;
    }
    size_t growth = size > old ? size - old : 0;
    if (size >= (size_t)PTRDIFF_MAX || (!zm__request_small(growth) && !zm__request_allowed(growth)))
        return fail(usable);
    size_t acct;
    void *p = zm__blk_realloc(ptr, size, &acct);
    if (zm_unlikely(!p)) return fail(usable);
    count_growth(growth, (int64_t)acct - (int64_t)old);
    return finish(p, acct, usable);
}

static inline void *or_oom(void *p, size_t size) { return zm_likely(p != NULL) ? p : oom(size); }

ZM_EXPORT void *zm_malloc(size_t size) { return or_oom(alloc_impl(size, NULL, ALLOC_PLAIN), size); }
ZM_EXPORT void *zm_calloc(size_t size) { return or_oom(alloc_impl(size, NULL, ALLOC_ZEROED), size); }
ZM_EXPORT void *zm_try_malloc(size_t size) { return alloc_impl(size, NULL, ALLOC_PLAIN); }
ZM_EXPORT void *zm_try_calloc(size_t size) { return alloc_impl(size, NULL, ALLOC_ZEROED); }

ZM_EXPORT void *zm_malloc_usable(size_t size, size_t *usable) {
    return or_oom(alloc_impl(size, usable, ALLOC_PLAIN), size);
}
ZM_EXPORT void *zm_calloc_usable(size_t size, size_t *usable) {
    return or_oom(alloc_impl(size, usable, ALLOC_ZEROED), size);
}
ZM_EXPORT void *zm_try_malloc_usable(size_t size, size_t *usable) {
    return alloc_impl(size, usable, ALLOC_PLAIN);
}
ZM_EXPORT void *zm_try_calloc_usable(size_t size, size_t *usable) {
    return alloc_impl(size, usable, ALLOC_ZEROED);
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

/* Where the backend learns a block's size from the free itself, the block
 * stays counted until the free returns; elsewhere the size is looked up and
 * counted first, so that zm_free ends in a jump to the backend. */
ZM_EXPORT void zm_free(void *ptr) {
    if (!ptr) return;
#ifdef ZM_BLK_FREE_COUNTED
    zm__count(-(int64_t)zm__blk_free_counted(ptr));
#else
    free_impl(ptr, zm__blk_acct(ptr));
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
    size_t acct = zm__blk_acct(ptr);
    zm__count(-(int64_t)acct);
    zm__blk_free_no_tcache(ptr, acct);
}

ZM_EXPORT char *zm_strdup(const char *s) {
    size_t len = strlen(s) + 1;
    char *p = zm_malloc(len);
    if (p) memcpy(p, s, len);
    return p;
}

ZM_EXPORT void zm_libc_free(void *ptr) { free(ptr); }

ZM_EXPORT size_t zm_size(const void *ptr) { return ptr ? zm__blk_acct(ptr) : 0; }

ZM_EXPORT size_t zm_usable_size(const void *ptr) {
    return ptr ? zm__blk_usable(ptr, zm__blk_acct(ptr)) : 0;
}

ZM_EXPORT void *zm_extend_to_usable(void *ptr, size_t size) {
    (void)size;
    return ptr;
}

ZM_EXPORT void zm_set_oom_handler(void (*handler)(size_t size)) {
    atomic_store_explicit(&oom_handler, handler, memory_order_release);
}

ZM_EXPORT void zm_enable_thread_safeness(void) {}
