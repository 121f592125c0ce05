/* Shared by the test programs: cmocka, and a tally of live blocks whose
 * zm_size() sum must always equal the used-memory counter's growth. */
#ifndef ZM_TEST_H
#define ZM_TEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
/* cmocka.h after its prerequisites */
#include <cmocka.h>

#include "zmalloc.h"

/* Used memory as an exact signed difference from a baseline. */
static inline long long zt_used_since(size_t base) {
    return (long long)zm_used_memory() - (long long)base;
}

/* Hides a constant from the compiler, so that deliberately huge sizes reach
 * the library instead of being rejected at compile time. */
static inline size_t zt_opaque(size_t x) {
    __asm__("" : "+r"(x));
    return x;
}

#endif
