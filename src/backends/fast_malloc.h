/* A backend header's inline malloc (ZM_BE_FAST_MALLOC, zm__be_fast_malloc)
 * in zm__be_malloc()'s terms: 1 with the block in *out and its usable size
 * stored where asked, or 0 (nothing done: declined, or no inline malloc in
 * this build, where it folds away). Included by the backend header after it
 * has decided whether it has one. */
#ifndef ZM_BACKEND_FAST_MALLOC_H
#define ZM_BACKEND_FAST_MALLOC_H

#include <stddef.h>

#include "internal.h"

static inline int zm__be_fast_malloc_usable(size_t size, size_t *usable, void **out) {
#ifdef ZM_BE_FAST_MALLOC
    size_t got;
    if (zm_unlikely(!zm__be_fast_malloc(size, out, &got))) return 0;
    if (usable) *usable = got;
    return 1;
#else
    (void)size, (void)usable, (void)out;
    return 0;
#endif
}

#endif
