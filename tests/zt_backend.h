/* What the backend tests share (test_backend*.c): the backend's own size
 * call (OWN_SIZE) and name, and whether the C library's malloc is replaced
 * (a sanitizer or valgrind), where glibc's figures describe nothing. */
#ifndef ZT_BACKEND_H
#define ZT_BACKEND_H

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#ifdef __GLIBC__
#include <gnu/libc-version.h>
#endif
#include <string.h>
#include <unistd.h>

#include "backend.h" /* the backend header: which fast paths this build has */
#include "zm_test.h"

/* glibc's figures describe glibc's heap: under a sanitizer or valgrind, whose
 * malloc replaces it, the libc backend rightly reports none. */
static inline int libc_replaced(void) {
#if defined(ZM_TEST_BACKEND_libc)
#ifdef ZT_SANITIZED
    return 1;
#endif
    return zt_under_valgrind();
#else
    return 0;
#endif
}

#if defined(ZM_TEST_BACKEND_jemalloc)
#include "zt_jemalloc.h"
#define OWN_SIZE(p) sallocx((p), 0)
#define BACKEND_NAME "jemalloc-"
#elif defined(ZM_TEST_BACKEND_tcmalloc)
#include <gperftools/tcmalloc.h>
#define OWN_SIZE(p) tc_malloc_size(p)
#define BACKEND_NAME "tcmalloc-"
#elif defined(ZM_TEST_BACKEND_mimalloc)
#include <mimalloc.h>
#define OWN_SIZE(p) mi_usable_size(p)
#define BACKEND_NAME "mimalloc-"
#else
#include <malloc.h>
#define OWN_SIZE(p) malloc_usable_size(p)
#define BACKEND_NAME "libc"
#endif

#endif
