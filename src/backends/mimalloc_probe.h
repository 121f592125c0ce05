/* The load-time trials every mimalloc release's page read goes through
 * (mimalloc_probe.c, on public calls only), and the release's two probes
 * (mimalloc2.c or mimalloc3.c) that mimalloc.c's constructor calls after it
 * has learnt the bins and the size table. */
#ifndef ZM_BACKEND_MIMALLOC_PROBE_H
#define ZM_BACKEND_MIMALLOC_PROBE_H

#include <stddef.h>
#include <stdint.h>

#include "internal.h"

/* A page read: a block's usable size, or 0 (declined: ask mimalloc). */
typedef size_t zm__mi_read_fn(const void *p);

/* Blocks of every kind (small to huge, aligned, interior pointers): 1 if
 * `read` gives mi_usable_size()'s answer for each, or declines; plain
 * blocks must not be declined. */
ZM_HIDDEN int zm__mi_probe_pages(zm__mi_read_fn *read);

/* mi_version() as "major.minor.patch" (209: 2.0.9, 301: 3.0.1, 30600: 3.6.0). */
ZM_HIDDEN void zm__mi_version_string(char *out, size_t len);

/* Whether the page read may be tried: allowed, a release in `verified`,
 * 64-bit, not under valgrind (noted where not). The version goes to out. */
ZM_HIDDEN int zm__mi_page_read_allowed(const char *const *verified, char *version, size_t len);

/* Whether the instruction at `at` is a jmp (e9 rel32) to `target`: how a
 * release's probe checks, in the verified build's own code, the address of
 * the mimalloc function that mi_free() ends in. */
ZM_HIDDEN int zm__mi_jumps_to(uintptr_t at, uintptr_t target);

/* The release's probes (mimalloc2.c or mimalloc3.c): the page read, then
 * the copies; each notes its outcome (fast_path.h). */
ZM_HIDDEN void zm__mi_find_page_read(void);
ZM_HIDDEN void zm__mi_find_copies(void);

#endif
