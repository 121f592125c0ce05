/* Expected figures from sources that are not the code under test, shared by
 * the C tests (through zm_test.h) and the C++ tests. */
#ifndef ZT_EXPECTED_H
#define ZT_EXPECTED_H

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "zmalloc.h"

/* ZT_SANITIZED: built with ASan or TSan, by gcc (__SANITIZE_*__) or clang
 * (__has_feature). */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define ZT_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define ZT_SANITIZED 1
#endif
#endif

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define ZT_HAVE_VALGRIND_H 1
#endif
#endif

/* ZT_ALLOCATOR_COUNTS: the private jemalloc's own counters are the
 * accounting (src/counter.h), so frees never publish. */
#if defined(ZM_JE_PRIVATE) && !defined(ZM_SIZE_HEADER)
#define ZT_ALLOCATOR_COUNTS 1
#endif

/* Whether the test runs under valgrind: ZMALLOC_UNDER_VALGRIND=1 (set by the
 * "valgrind" configuration of scripts/test-all.sh) or RUNNING_ON_VALGRIND. */
static inline int zt_under_valgrind(void) {
    const char *e = getenv("ZMALLOC_UNDER_VALGRIND");
    if (e && *e && strcmp(e, "0") != 0) return 1;
#ifdef ZT_HAVE_VALGRIND_H
    if (RUNNING_ON_VALGRIND) return 1;
#endif
    return 0;
}

/* Whether the test runs under an emulator (qemu-user for a cross build: the
 * toolchain file's CMAKE_CROSSCOMPILING_EMULATOR sets ZMALLOC_UNDER_EMULATOR).
 * It runs 10-50x slower, and emulates some of Linux only in part. */
static inline int zt_under_emulator(void) {
    const char *e = getenv("ZMALLOC_UNDER_EMULATOR");
    return e && *e && strcmp(e, "0") != 0;
}

/* Valgrind or an emulator: stress counts are cut to keep run times sane. */
static inline int zt_slow(void) { return zt_under_valgrind() || zt_under_emulator(); }

/* The bytes a block of `requested` bytes must be accounted for, from a
 * source that is not the code under test: the allocator's own size function,
 * or (size-header mode) the request plus the header. */
#if defined(ZM_SIZE_HEADER)
#ifndef __cplusplus
#include <stdalign.h>
#endif
static inline size_t zt_expected_size(const void *p, size_t requested) {
    (void)p;
    return requested + alignof(max_align_t);
}
#elif defined(ZM_TEST_BACKEND_jemalloc)
#include "zt_jemalloc.h"
static inline size_t zt_expected_size(const void *p, size_t requested) {
    (void)requested;
    return sallocx((void *)p, 0);
}
#elif defined(ZM_TEST_BACKEND_tcmalloc)
#include <gperftools/tcmalloc.h>
static inline size_t zt_expected_size(const void *p, size_t requested) {
    (void)requested;
    return tc_malloc_size((void *)p);
}
#elif defined(ZM_TEST_BACKEND_mimalloc)
#include <mimalloc.h>
static inline size_t zt_expected_size(const void *p, size_t requested) {
    (void)requested;
    return mi_usable_size(p);
}
#else
#include <malloc.h>
static inline size_t zt_expected_size(const void *p, size_t requested) {
    (void)requested;
    return malloc_usable_size((void *)p);
}
#endif

/* What zm_usable_size() must report for a block of `requested` bytes: the
 * allocator's usable size, or in size-header mode the request itself. */
static inline size_t zt_expected_usable(const void *p, size_t requested) {
#ifdef ZM_SIZE_HEADER
    (void)p;
    return requested;
#else
    return zt_expected_size(p, requested);
#endif
}

/* The figures each backend really has (src/backends/<name>.c): glibc's
 * mallinfo2() gives allocated and active, jemalloc's mallctl all six,
 * tcmalloc's MallocExtension the four it reads, mimalloc only its committed
 * memory. On libc, none when malloc is not glibc's (a sanitizer's or
 * valgrind's replaces it, or the C library is not glibc). */
static inline int zt_expected_info_bits(void) {
#if defined(ZM_TEST_BACKEND_jemalloc)
    return ZMALLOC_INFO_ALLOCATED | ZMALLOC_INFO_ACTIVE | ZMALLOC_INFO_RESIDENT | ZMALLOC_INFO_RETAINED |
           ZMALLOC_INFO_MUZZY | ZMALLOC_INFO_FRAG_SMALLBINS;
#elif defined(ZM_TEST_BACKEND_tcmalloc)
    return ZMALLOC_INFO_ALLOCATED | ZMALLOC_INFO_ACTIVE | ZMALLOC_INFO_RESIDENT | ZMALLOC_INFO_RETAINED;
#elif defined(ZM_TEST_BACKEND_mimalloc)
    return ZMALLOC_INFO_ACTIVE;
#elif defined(ZT_SANITIZED) || !defined(__GLIBC__)
    return 0; /* mallinfo2() is glibc's, and describes only glibc's own malloc */
#else
    return zt_under_valgrind() ? 0 : ZMALLOC_INFO_ALLOCATED | ZMALLOC_INFO_ACTIVE;
#endif
}

#endif
