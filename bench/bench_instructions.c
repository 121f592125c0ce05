/* Runs N malloc(64)+free pairs, either the backend's own (raw) or through
 * zmalloc (zm), for scripts/instructions.sh to count under cachegrind: the
 * difference between two N gives the instructions per pair, start-up
 * excluded. Usage: bench_instructions raw|zm N */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
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

int main(int argc, char **argv) {
    if (argc != 3 || (strcmp(argv[1], "raw") != 0 && strcmp(argv[1], "zm") != 0)) {
        fprintf(stderr, "usage: %s raw|zm N\n", argv[0]);
        return 2;
    }
    long n = strtol(argv[2], NULL, 10);
    /* One pair of each first, so that both start with a warm thread cache and
     * a registered thread. */
    raw_pairs(1);
    zm_pairs(1);
    if (strcmp(argv[1], "raw") == 0) raw_pairs(n);
    else zm_pairs(n);
    return zm_used_memory() == 0 ? 0 : 1;
}
