/* Runs N malloc(64)+free pairs, either the backend's own (raw) or through
 * zmalloc (zm), for scripts/instructions.sh to count under cachegrind: the
 * difference between two N gives the instructions per pair, start-up
 * excluded. With "mixed", N steps of the mixed pattern instead
 * (bench_pattern.h: free a random one of 1024 live blocks, allocate 8..520
 * bytes in its place). Usage: bench_instructions raw|zm N [mixed] */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "bench_pattern.h"
#include "zmalloc.h"

__attribute__((noinline)) static void raw_pairs(long n) {
    for (long i = 0; i < n; i++) {
        void *p = zm__be_raw_malloc(64);
        *(volatile char *)p = (char)i;
        zm__be_raw_free(p);
    }
}

__attribute__((noinline)) static void zm_pairs(long n) {
    for (long i = 0; i < n; i++) {
        void *p = zm_malloc(64);
        *(volatile char *)p = (char)i;
        zm_free(p);
    }
}

static void *pool[POOL_SLOTS];

#define MIXED_STEPS(name, ALLOC, FREE)                                                     \
    __attribute__((noinline)) static void name(long n) {                                    \
        uint64_t s = SEED;                                                                  \
        for (size_t i = 0; i < POOL_SLOTS; i++) pool[i] = ALLOC(pick_size(xorshift64(&s))); \
        for (long i = 0; i < n; i++) MIXED_STEP(pool, s, ALLOC, FREE);                      \
        for (size_t i = 0; i < POOL_SLOTS; i++) FREE(pool[i]);                              \
    }
MIXED_STEPS(raw_mixed, zm__be_raw_malloc, zm__be_raw_free)
MIXED_STEPS(zm_mixed, zm_malloc, zm_free)

int main(int argc, char **argv) {
    int mixed = argc == 4 && strcmp(argv[3], "mixed") == 0;
    if ((argc != 3 && !mixed) || (strcmp(argv[1], "raw") != 0 && strcmp(argv[1], "zm") != 0)) {
        fprintf(stderr, "usage: %s raw|zm N [mixed]\n", argv[0]);
        return 2;
    }
    long n = strtol(argv[2], NULL, 10);
    int raw = strcmp(argv[1], "raw") == 0;
    /* One pair of each first, so that both start with a warm thread cache and
     * a registered thread. */
    raw_pairs(1);
    zm_pairs(1);
    if (mixed) (raw ? raw_mixed : zm_mixed)(n);
    else (raw ? raw_pairs : zm_pairs)(n);
    return zm_used_memory() == 0 ? 0 : 1;
}
