/* glibc's malloc as zmalloc reads it, apart from the backend that uses it
 * (libc.h) and the copies of its thread cache (glibc_tcache.h), which both
 * build on this: glibc's own functions (in the preload library, taken from
 * glibc itself), and the chunk header before each block, whose size word
 * gives the block's usable size for one load. glibc_chunks.c checks the
 * reads at load against glibc's malloc_usable_size(), heap and mmapped
 * chunks apart. */
#ifndef ZM_BACKEND_GLIBC_CHUNKS_H
#define ZM_BACKEND_GLIBC_CHUNKS_H

#include <malloc.h>
#include <stdint.h>
#include <stdlib.h>

#include "internal.h"

#ifdef ZM_PRELOAD
/* In the preload library our malloc is the program's: glibc's own is reached
 * under the second names glibc exports it by (__libc_malloc, ...), taken from
 * glibc itself at the first call (libc.c): tcmalloc and mimalloc export those
 * names too, and a program that links them would bind ours to theirs. The
 * chunk reads are on from the start (a preload library is built for glibc
 * only, without sanitizers), and libc.c checks them at load time against
 * glibc's malloc_usable_size() and stops the program if they disagree. */
typedef struct zm__glibc_fns {
    void *(*malloc)(size_t);
    void *(*calloc)(size_t, size_t);
    void *(*realloc)(void *, size_t);
    void *(*memalign)(size_t, size_t);
    void (*free)(void *);
    size_t (*usable_size)(void *);
} zm__glibc_fns;
extern ZM_HIDDEN zm__glibc_fns zm__glibc;
#define ZM_LIBC(name) zm__glibc.name
#else
#define ZM_LIBC(name) name
#endif

#if defined(__GLIBC__) && !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
#if defined(__has_feature)
#if !__has_feature(address_sanitizer) && !__has_feature(thread_sanitizer) && \
    !__has_feature(memory_sanitizer)
#define ZM_GLIBC_CHUNKS 1
#endif
#else
#define ZM_GLIBC_CHUNKS 1
#endif
#endif

#ifdef ZM_GLIBC_CHUNKS
/* The size-word bit that costs an mmapped chunk a second header word: 2
 * (IS_MMAPPED) where it does (glibc up to 2.42), 0 where an mmapped chunk's
 * usable size is the chunk less one word like a heap chunk's (2.43). Learnt
 * at load from a real mmapped block (libc.c); heap and mmapped chunks are
 * checked apart. */
extern ZM_HIDDEN size_t zm__glibc_mmap_bit;

/* glibc's chunk size word: size | NON_MAIN_ARENA 4 | IS_MMAPPED 2 | PREV_INUSE 1.
 * A heap chunk gives up one word to its header; an mmapped chunk one or two. */
static inline size_t zm__glibc_chunk_usable(const void *p) {
    /* The word is glibc's, outside the caller's block: hide where the pointer
     * came from so the compiler does not judge it against the block's bounds. */
    const size_t *at = p;
    __asm__("" : "+r"(at));
    size_t word = at[-1];
    return (word & ~(size_t)7) - sizeof(size_t) - (word & zm__glibc_mmap_bit) * (sizeof(size_t) / 2);
}
#endif

#ifdef ZM_GLIBC_CHUNKS
/* Tries the chunk reads on real blocks of both kinds: 1 if they agree with
 * glibc, else 0; malloc_is_glibcs: whether malloc is glibc's own (if not,
 * 0 at once). Notes the outcome. The backend keeps the switch (libc.c). */
ZM_HIDDEN int zm__glibc_chunks_try(int malloc_is_glibcs);
#endif

#endif
