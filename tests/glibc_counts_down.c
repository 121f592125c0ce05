/* A model of a glibc whose thread cache keeps free slots where glibc 2.36
 * keeps counts (glibc's development tree between April and June 2025 did),
 * preloaded by test_regressions.test_glibc_counts_run_downwards. Built as
 * .../model/libc.so.model: zmalloc takes malloc for glibc's only from an
 * object whose path holds "/libc.so".
 *
 * Everything else is glibc 2.36's shape, so that only the direction of the
 * counts tells it apart: a thread variable points to a block of 0x280 bytes
 * (a 0x290-byte chunk) holding 64 16-bit slot counts and then 64 list heads;
 * a free entry's first word is its safe-linked next, its second the key;
 * 7 blocks per bin. The blocks are real glibc chunks (__libc_malloc), so
 * their size words and malloc_usable_size() are glibc's own. It calls itself
 * glibc 2.36, a release the copies are verified on, so that the version gate
 * lets the trial meet it. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#define EXPORT __attribute__((visibility("default")))

void *__libc_malloc(size_t);
void *__libc_calloc(size_t, size_t);
void *__libc_realloc(void *, size_t);
void __libc_free(void *);

enum { BINS = 64, SLOTS = 7, LARGEST_REQUEST = 1032 };

struct cache {
    uint16_t slots[BINS]; /* free slots: SLOTS less the blocks the bin holds */
    uintptr_t *heads[BINS];
};

static __thread struct cache *cache;
static const uintptr_t key = 0x6d6f64656c6b6579; /* glibc's is random */

static struct cache *self(void) {
    if (!cache) {
        struct cache *c = __libc_malloc(sizeof *c);
        if (!c) return NULL;
        for (int i = 0; i < BINS; i++) {
            c->slots[i] = SLOTS;
            c->heads[i] = NULL;
        }
        cache = c;
    }
    return cache;
}

/* glibc's safe-linking, both ways: a next word stored at `at`. */
static uintptr_t *safe_link(const uintptr_t *at, uintptr_t word) {
    return (uintptr_t *)(((uintptr_t)at >> 12) ^ word);
}

EXPORT void *malloc(size_t n) {
    if (n <= LARGEST_REQUEST) {
        struct cache *c = self();
        size_t bin = ((n > 9 ? n : 9) - 9) >> 4;
        uintptr_t *e = c ? c->heads[bin] : NULL;
        if (e) {
            c->heads[bin] = safe_link(e, e[0]);
            c->slots[bin]++;
            e[1] = 0;
            return e;
        }
    }
    return __libc_malloc(n);
}

EXPORT void free(void *p) {
    if (!p) return;
    uintptr_t *e = p, word = e[-1];
    size_t chunk = word & ~(uintptr_t)7;
    struct cache *c = (word & 2) || chunk < 32 || chunk > 1040 ? NULL : self();
    if (c) {
        size_t bin = (chunk - 32) >> 4;
        if (e[1] == key) /* glibc's double-free check */
            for (uintptr_t *x = c->heads[bin]; x; x = safe_link(x, x[0]))
                if (x == e) abort();
        if (c->slots[bin] > 0) {
            e[0] = (uintptr_t)safe_link(e, (uintptr_t)c->heads[bin]);
            e[1] = key;
            c->heads[bin] = e;
            c->slots[bin]--;
            return;
        }
    }
    __libc_free(p);
}

EXPORT void *calloc(size_t n, size_t size) { return __libc_calloc(n, size); }

EXPORT void *realloc(void *p, size_t n) { return __libc_realloc(p, n); }

EXPORT const char *gnu_get_libc_version(void) { return "2.36"; }
