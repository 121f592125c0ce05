/* A copy of glibc's thread-cache fast paths (malloc's tcache_get, free's
 * tcache_put), for the libc backend on x86-64. glibc's own malloc+free pair
 * is about 140 instructions, most of them hardening and set-up around a
 * pop from and a push onto a per-thread list; zmalloc needs the size at both
 * ends anyway, so it does the pop and the push itself.
 *
 * Nothing here is read off one build: glibc_tcache.c finds the thread's
 * `tcache` pointer in libc's TLS block, reads tcache_key and the bin limit
 * off real blocks, and turns the copies on only if, for every request size
 * they take, they pop and push exactly the blocks glibc pops and pushes and
 * glibc then pops the blocks they pushed. Under a sanitizer, valgrind's
 * memcheck or another malloc in front of glibc's, they stay off.
 *
 * Two layouts, each run only on the glibc releases this project verified it
 * in (glibc_tcache.c's list). glibc 2.34 to 2.41 (verified: 2.36, 2.41):
 * tcache_perthread_struct is 64 16-bit counts of the blocks each bin holds,
 * then 64 list heads, and the thread's pointer to it is NULL until set up.
 * glibc 2.42 on (verified: 2.43): 76 16-bit counts of the free slots each bin
 * has left (a bin is full at 0), then 76 list heads, of which the copies take
 * the first 64 (the small bins); the pointer is never NULL: before set-up and
 * after the thread's exit it points to a read-only struct of zeros, which
 * both copies decline (no slot, no head). In both, an entry's `next` word is
 * safe-linked, its `key` word tcache_key while it sits in a list. What glibc
 * checks on this path and aborts on (a misaligned entry, a double free), the
 * copies leave to glibc's own call. */
#ifndef ZM_BACKEND_GLIBC_TCACHE_H
#define ZM_BACKEND_GLIBC_TCACHE_H

#include <stddef.h>
#include <stdint.h>

#include "backends/glibc_chunks.h"
#include "internal.h"

#if defined(ZM_GLIBC_CHUNKS) && defined(__x86_64__) && !defined(ZM_NO_FAST_PATHS)
#define ZM_GLIBC_TCACHE 1

typedef uintptr_t __attribute__((may_alias)) zm__gtc_word;

typedef struct zm__gtc_bins {
    uint16_t counts[64];
    zm__gtc_word *entries[64];
} __attribute__((may_alias)) zm__gtc_bins;

typedef struct zm__gtc_slot_bins {
    uint16_t slots[76];
    zm__gtc_word *entries[76];
} __attribute__((may_alias)) zm__gtc_slot_bins;

/* What the copies need, in one cache line. The bounds and bins are 0 (every
 * request declined, and, with libc.h's floor, every free) until
 * glibc_tcache.c has checked them; it sets them last, for one layout only.
 * The held-count layout's are tested first, so that its paths pay nothing
 * for the other's. */
typedef struct zm__gtc_params {
    size_t bound;      /* requests below it take the malloc copy (held counts) */
    size_t bins;       /* chunks of a bin below it may take the free copy */
    uintptr_t key;     /* glibc's tcache_key */
    size_t count;      /* glibc's mp_.tcache_count, or less */
    intptr_t tpoff;    /* glibc's `tcache` TLS word, from the thread pointer */
    size_t slot_bound; /* bound and bins for the free-slot layout (2.42 on) */
    size_t slot_bins;
} zm__gtc_params;
extern ZM_HIDDEN zm__gtc_params zm__gtc;

/* The copies' free takes blocks at or above this floor: 1 once they are on,
 * UINTPTR_MAX before (one compare covers NULL and "off"). */
extern ZM_HIDDEN uintptr_t zm__glibc_inline_floor;

/* Turns the copies on where glibc's release is one verified and the trial
 * agrees (glibc_tcache.c; at load); chunks_ok: whether the chunk reads are
 * on (the copies need them). */
ZM_HIDDEN void zm__gtc_setup(int chunks_ok);

static inline zm__gtc_bins *zm__gtc_self(void) {
    return *(zm__gtc_bins *const *)((char *)__builtin_thread_pointer() + zm__gtc.tpoff);
}

static inline zm__gtc_slot_bins *zm__gtc_slot_self(void) {
    return (zm__gtc_slot_bins *)zm__gtc_self();
}

/* glibc's bin for a request: chunk size (request + 8, at least 32, in steps
 * of 16) / 16 - 2. */
static inline size_t zm__gtc_bin_of(size_t size) { return ((size > 9 ? size : 9) - 9) >> 4; }

/* tcache_get: 1 with the block and its usable size (the chunk less its size
 * word), or 0 (nothing done): an empty bin, no tcache yet, a misaligned head
 * (glibc aborts on it). size: at most 1032 (bin 63). */
static inline int zm__gtc_pop(size_t size, void **out, size_t *usable) {
    size_t bin = zm__gtc_bin_of(size);
    zm__gtc_bins *tc = zm__gtc_self();
    if (zm_unlikely(tc == NULL || tc->counts[bin] == 0)) return 0;
    zm__gtc_word *e = tc->entries[bin];
    if (zm_unlikely((uintptr_t)e & 15)) return 0;
    tc->entries[bin] = (zm__gtc_word *)(((uintptr_t)e >> 12) ^ e[0]); /* safe-linking */
    tc->counts[bin]--;
    e[1] = 0;
    *out = (void *)e;
    *usable = (bin << 4) + 24;
    return 1;
}

/* tcache_get in the free-slot layout: as zm__gtc_pop, but a bin is empty
 * when its head is NULL (glibc's own test: its count says only how many
 * more blocks fit), and taking a block frees a slot. */
static inline int zm__gtc_slot_pop(size_t size, void **out, size_t *usable) {
    size_t above = (size + 7) >> 4; /* bin + 1, or 0 for requests of bin 0 below 9 */
    size_t bin = (above ? above : 1) - 1;
    zm__gtc_slot_bins *tc = zm__gtc_slot_self();
    zm__gtc_word *e = tc->entries[bin];
    if (zm_unlikely(e == NULL || ((uintptr_t)e & 15))) return 0;
    tc->entries[bin] = (zm__gtc_word *)(((uintptr_t)e >> 12) ^ e[0]); /* safe-linking */
    tc->slots[bin]++;
    e[1] = 0;
    /* The block where zm_malloc returns it (rax), so that both pops meet the
     * caller's count with it in one register: otherwise gcc 12 and 16 keep
     * the other pop's in another and pay a move on its path. */
    __asm__("" : "+a"(e));
    *out = (void *)e;
    *usable = (bin << 4) + 24;
    return 1;
}

/* The malloc copy: the pop of the layout that passed the load-time check,
 * for the requests it passed. */
static inline int zm__gtc_malloc(size_t size, void **out, size_t *usable) {
    if (zm_unlikely(size >= zm__gtc.bound))
        return size < zm__gtc.slot_bound && zm__gtc_slot_pop(size, out, usable);
    return zm__gtc_pop(size, out, usable);
}

/* tcache_put in the free-slot layout, for zm__gtc_free: e, a block whose
 * chunk size word (flags cleared) and bin it has read and found aligned.
 * A full bin has no slot left. */
static inline size_t zm__gtc_slot_push(zm__gtc_word *e, size_t word, size_t bin) {
    if (zm_unlikely(bin >= zm__gtc.slot_bins)) return 0;
    if (word < 32) __builtin_unreachable(); /* bin < 64 implies it: the result is not 0 */
    zm__gtc_slot_bins *tc = zm__gtc_slot_self();
    if (zm_unlikely(e[1] == zm__gtc.key || tc->slots[bin] == 0)) return 0;
    e[1] = zm__gtc.key;
    e[0] = ((uintptr_t)e >> 12) ^ (uintptr_t)tc->entries[bin];
    tc->entries[bin] = e;
    tc->slots[bin]--;
    return word - 8;
}

/* tcache_put, in the layout whose bins are set: the usable size of the
 * block it took, or 0 (nothing done): an mmapped chunk (its flag makes the
 * size odd), a misaligned block or size, a chunk too large for the cache,
 * no tcache, a full bin, or a key word equal to tcache_key (glibc's free
 * then checks for a double free). p != NULL. */
static inline size_t zm__gtc_free(void *p) {
    zm__gtc_word *e = p;
    __asm__("" : "+r"(e)); /* the size word is glibc's, outside the block */
    size_t word = e[-1] & ~(size_t)5;
    size_t bin = (word - 17) >> 4;
    if (zm_unlikely(((word | (uintptr_t)p) & 15) != 0)) return 0;
    if (zm_unlikely(bin >= zm__gtc.bins)) return zm__gtc_slot_push(e, word, bin);
    if (word < 32) __builtin_unreachable(); /* bin < 64 implies it: the result is not 0 */
    zm__gtc_bins *tc = zm__gtc_self();
    if (zm_unlikely(tc == NULL || e[1] == zm__gtc.key || tc->counts[bin] >= zm__gtc.count)) return 0;
    e[1] = zm__gtc.key;
    e[0] = ((uintptr_t)e >> 12) ^ (uintptr_t)tc->entries[bin];
    tc->entries[bin] = e;
    tc->counts[bin]++;
    return word - 8;
}
#endif

#endif
