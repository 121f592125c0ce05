/* Build-time check (cmake/jemalloc_private.cmake runs it, linked with the
 * private jemalloc object about to go into libzmalloc): whether the copies of
 * jemalloc's malloc and free fast paths in jemalloc_fast.h agree with
 * jemalloc's own, for every request size they serve. Exit 0 and "agree" if
 * so; else exit 1 and the first disagreement, and the build leaves the
 * copies out.
 *
 * The copies read and write jemalloc's thread data at fixed offsets, so each
 * step first reads (never through an unchecked pointer), then writes only
 * once the reads made sense:
 * - the version, and the allocated/deallocated counters' addresses (mallctl
 *   "thread.allocatedp"/"thread.deallocatedp") against the offsets;
 * - malloc: jemalloc's malloc then free leave a block on top of its bin; the
 *   copy must pop that very block, move the allocated counter by its size
 *   class (sallocx confirms it), count one request, and keep the low-water
 *   mark between the head and the bin's end; jemalloc's malloc must then
 *   see the head the copy left;
 * - free: the copy's lookup must find the block's leaf in the cache, say
 *   "slab" and the size class sallocx gives; its push must move the
 *   deallocated counter by that size, and jemalloc's malloc must then hand
 *   the block back; a large block must be left to jemalloc;
 * - then a mixed run of both copies against sallocx. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/jemalloc_fast.h"
#include "backends/jemalloc_names.h"

#ifndef ZM_JE_FAST
#error "built with ZM_JEF_CHECK on x86-64 only"
#endif

static int fail(const char *what, size_t size) {
    printf("disagree: %s (request %zu)\n", what, size);
    return 1;
}

static const volatile uint64_t *allocated, *deallocated;

static unsigned char *bin_of(unsigned ind) {
    return zm__jep_tsd_tls + ZM_JEF_BINS + (size_t)ind * ZM_JEF_BIN_BYTES;
}

static int check_malloc(size_t size) {
    for (int attempt = 0; attempt < 4; attempt++) {
        void *p = zm__jep_malloc(size);
        if (!p) return fail("jemalloc's malloc failed", size);
        zm__jep_free(p);
        unsigned ind = zm__jep_sz_size2index_tab[(size + 7) >> 3];
        unsigned char *bin = bin_of(ind);
        uint64_t before = *allocated;
        uint64_t requests = *(zm__jef_u64 *)(bin + ZM_JEF_BIN_NREQUESTS);
        void *q;
        size_t usize;
        if (!zm__jef_malloc(size, UINT64_MAX, &q, &usize)) continue; /* a jemalloc event: retry */
        uint16_t head = (uint16_t)(uintptr_t)*(zm__jef_head *)(bin + ZM_JEF_BIN_HEAD);
        uint16_t low = *(zm__jef_u16 *)(bin + ZM_JEF_BIN_LOW_WATER);
        uint16_t end = *(zm__jef_u16 *)(bin + ZM_JEF_BIN_EMPTY);
        if (q != p) return fail("malloc copy popped another block", size);
        if (*allocated - before != usize) return fail("allocated counter", size);
        if (zm__jep_sallocx(q, 0) != usize || usize < (size ? size : 1)) return fail("size class", size);
        if ((uint16_t)(low - head) > (uint16_t)(end - head)) return fail("low-water mark", size);
        if (*(zm__jef_u64 *)(bin + ZM_JEF_BIN_NREQUESTS) != requests + 1) return fail("request count", size);
        zm__jep_free(q);
        void *again = zm__jep_malloc(size);
        zm__jep_free(again);
        return again == q ? 0 : fail("jemalloc's malloc did not see the popped head", size);
    }
    return fail("malloc copy never took the fast path", size);
}

static int check_free(size_t size) {
    for (int attempt = 0; attempt < 4; attempt++) {
        void *p = zm__jep_malloc(size);
        if (!p) return fail("jemalloc's malloc failed", size);
        zm__jep_free(p); /* jemalloc's lookup caches the block's leaf */
        void *q = zm__jep_malloc(size);
        if (q != p) {
            zm__jep_free(q);
            continue;
        }
        uint64_t bits;
        if (!zm__jef_leaf_bits(p, &bits)) {
            zm__jep_free(p);
            return fail("leaf not in the lookup cache", size);
        }
        size_t usize = zm__jep_sallocx(p, 0);
        unsigned ind = (unsigned)(bits >> ZM_JEF_IND_SHIFT);
        if (!(bits & 1) || ind != zm__jep_sz_size2index_tab[(size + 7) >> 3] ||
            zm__jep_sz_index2size_tab[ind] != usize) {
            zm__jep_free(p);
            return fail("leaf element", size);
        }
        unsigned char *bin = bin_of(ind);
        uint16_t head = (uint16_t)(uintptr_t)*(zm__jef_head *)(bin + ZM_JEF_BIN_HEAD);
        uint16_t full = *(zm__jef_u16 *)(bin + ZM_JEF_BIN_FULL);
        uint16_t end = *(zm__jef_u16 *)(bin + ZM_JEF_BIN_EMPTY);
        if ((uint16_t)(head - full) > (uint16_t)(end - full) || (uint16_t)(end - full) % 8) {
            zm__jep_free(p);
            return fail("bin bounds", size);
        }
        uint64_t before = *deallocated;
        if (!zm__jef_free(p)) {
            zm__jep_free(p); /* a jemalloc event: retry */
            continue;
        }
        if (*deallocated - before != usize) return fail("deallocated counter", size);
        void *again = zm__jep_malloc(size);
        zm__jep_free(again);
        return again == p ? 0 : fail("jemalloc's malloc did not get the pushed block back", size);
    }
    return fail("free copy never took the fast path", size);
}

/* Both copies together, against sallocx and the counters. */
static int check_mixed(void) {
    enum { SLOTS = 512 };
    static void *held[SLOTS];
    static size_t held_size[SLOTS];
    uint64_t seed = 0x9E3779B97F4A7C15ull;
    for (int i = 0; i < 200000; i++) {
        seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
        size_t k = seed % SLOTS, size = (seed >> 32) % 4097;
        if (held[k]) {
            uint64_t before = *deallocated;
            if (!zm__jef_free(held[k])) zm__jep_free(held[k]);
            if (*deallocated - before != held_size[k]) return fail("mixed: deallocated counter", size);
        }
        uint64_t before = *allocated;
        size_t usize;
        if (!zm__jef_malloc(size, UINT64_MAX, &held[k], &usize)) {
            held[k] = zm__jep_malloc(size);
            usize = zm__jep_sallocx(held[k], 0);
        }
        if (!held[k] || zm__jep_sallocx(held[k], 0) != usize || *allocated - before != usize)
            return fail("mixed: allocated counter", size);
        memset(held[k], 0xa5, size);
        held_size[k] = usize;
    }
    for (int k = 0; k < SLOTS; k++) zm__jep_free(held[k]);
    return 0;
}

int main(void) {
    const char *version = NULL;
    size_t len = sizeof version;
    if (zm__jep_mallctl("version", &version, &len, NULL, 0) != 0 || !version)
        return fail("no version", 0);
    if (strcmp(version, ZM_JEF_VERSION) != 0) {
        printf("jemalloc %s, not %s\n", version, ZM_JEF_VERSION);
        return 1;
    }
    zm__jep_free(zm__jep_malloc(1)); /* sets up this thread's TSD */
    uint64_t *a = NULL, *d = NULL;
    size_t la = sizeof a, ld = sizeof d;
    if (zm__jep_mallctl("thread.allocatedp", &a, &la, NULL, 0) != 0 ||
        zm__jep_mallctl("thread.deallocatedp", &d, &ld, NULL, 0) != 0)
        return fail("no thread counters", 0);
    if ((unsigned char *)a != zm__jep_tsd_tls + ZM_JEF_ALLOCATED ||
        (unsigned char *)d != zm__jep_tsd_tls + ZM_JEF_DEALLOCATED)
        return fail("counters elsewhere in the TSD", 0);
    allocated = a;
    deallocated = d;
    for (size_t size = 0; size <= ZM_JEF_MAX_REQUEST; size++)
        if (check_malloc(size) || check_free(size)) return 1;
    void *large = zm__jep_malloc((size_t)1 << 20);
    if (zm__jef_free(large)) return fail("free copy took a large block", (size_t)1 << 20);
    zm__jep_free(large);
    if (check_mixed()) return 1;
    printf("agree, jemalloc %s\n", version);
    return 0;
}
