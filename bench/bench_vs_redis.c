/* zmalloc against Redis 7.0's own zmalloc design on the same allocator: a
 * malloc followed by the allocator's size call and a relaxed atomic add to
 * one shared counter, and a free preceded by the size call and an atomic
 * subtract (what Redis's zmalloc.c does where HAVE_MALLOC_SIZE). The size
 * call is the backend's (zm__be_usable: glibc's malloc_usable_size, or
 * zmalloc's inline read where one is on, which favours the Redis design).
 * Both run the fixed 64-byte pair and the mixed pattern (bench_pattern.h) in
 * interleaved rounds; the table gives ns per pair and the median of the
 * per-round ratios, zmalloc over the Redis design. Nothing is asserted.
 * Usage: bench_vs_redis [--rounds N] */
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend.h"
#include "bench_pattern.h"
#include "zmalloc.h"

#define MAX_ROUNDS 101

static _Atomic size_t redis_used;

__attribute__((noinline)) static void *redis_malloc(size_t n) {
    void *p = zm__be_raw_malloc(n);
    if (!p) abort();
    atomic_fetch_add_explicit(&redis_used, zm__be_usable(p), memory_order_relaxed);
    return p;
}

__attribute__((noinline)) static void redis_free(void *p) {
    if (!p) return;
    atomic_fetch_sub_explicit(&redis_used, zm__be_usable(p), memory_order_relaxed);
    zm__be_raw_free(p);
}

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void *pool[POOL_SLOTS];

#define PAIRS(name, ALLOC, FREE)                                                   \
    __attribute__((noinline)) static double name(long n) {                         \
        uint64_t t = now_ns();                                                     \
        for (long i = 0; i < n; i++) {                                             \
            void *p = ALLOC(64);                                                   \
            *(volatile char *)p = (char)i;                                         \
            FREE(p);                                                               \
        }                                                                          \
        return (double)(now_ns() - t) / (double)n;                                 \
    }
#define MIXED(name, ALLOC, FREE)                                                   \
    __attribute__((noinline)) static double name(long n) {                         \
        uint64_t s = SEED;                                                         \
        for (size_t i = 0; i < POOL_SLOTS; i++) pool[i] = ALLOC(pick_size(xorshift64(&s))); \
        uint64_t t = now_ns();                                                     \
        for (long i = 0; i < n; i++) MIXED_STEP(pool, s, ALLOC, FREE);             \
        double ns = (double)(now_ns() - t) / (double)n;                            \
        for (size_t i = 0; i < POOL_SLOTS; i++) FREE(pool[i]);                     \
        return ns;                                                                 \
    }
PAIRS(redis_pairs, redis_malloc, redis_free)
PAIRS(zm_pairs, zm_malloc, zm_free)
MIXED(redis_mixed, redis_malloc, redis_free)
MIXED(zm_mixed, zm_malloc, zm_free)

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return v[n / 2];
}

static void cell(const char *name, double (*redis)(long), double (*zm)(long), long n, int rounds) {
    double r[MAX_ROUNDS], z[MAX_ROUNDS], ratio[MAX_ROUNDS];
    for (int i = 0; i < rounds; i++) {
        if (i & 1) {
            z[i] = zm(n);
            r[i] = redis(n);
        } else {
            r[i] = redis(n);
            z[i] = zm(n);
        }
        ratio[i] = z[i] / r[i];
    }
    printf("| %s | %s | %.1f | %.1f | %.3f |\n", ZMALLOC_LIB, name, median(r, rounds),
           median(z, rounds), median(ratio, rounds));
}

int main(int argc, char **argv) {
    int rounds = 15;
    if (argc == 3 && strcmp(argv[1], "--rounds") == 0) rounds = atoi(argv[2]);
    if (rounds < 1 || rounds > MAX_ROUNDS || (argc != 1 && argc != 3)) {
        fprintf(stderr, "usage: %s [--rounds N]   (N: 1 to %d)\n", argv[0], MAX_ROUNDS);
        return 2;
    }
    char fast[512];
    zm_fast_paths(fast, sizeof fast);
    printf("fast paths: %s\n\n", fast);
    printf("| backend | workload | Redis 7.0 design ns/pair | zmalloc ns/pair | zmalloc / Redis design (median of %d) |\n",
           rounds);
    printf("|---|---|---:|---:|---:|\n");
    cell("fixed64", redis_pairs, zm_pairs, 2000000, rounds);
    cell("mixed 8..520", redis_mixed, zm_mixed, 1000000, rounds);
    return 0;
}
