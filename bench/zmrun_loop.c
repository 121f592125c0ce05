/* zmrun_loop: an allocation-bound program for measuring what a malloc
 * interposer (zmrun, memusage, heaptrack) costs.
 *
 *   zmrun_loop MODE THREADS ITERATIONS
 *
 * MODE fixed: each thread does ITERATIONS malloc(64)+free pairs.
 * MODE mixed: each thread keeps a ring of 1024 live blocks of 8..520 bytes
 *             (sizes from a per-thread xorshift generator) and, ITERATIONS
 *             times, frees the oldest block and allocates a new one in its
 *             place.
 *
 * It prints one checksum line so that the compiler cannot drop the work.
 * Build: gcc -O2 -pthread -o zmrun_loop zmrun_loop.c */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RING 1024

typedef struct worker {
    pthread_t tid;
    int mixed;
    unsigned id;
    long long iterations;
    uint64_t sum;
} worker;

static uint64_t xorshift(uint64_t *s) {
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

static void *run_fixed(worker *w) {
    uint64_t sum = 0;
    for (long long i = 0; i < w->iterations; i++) {
        unsigned char *volatile p = malloc(64);
        if (!p) abort();
        p[0] = (unsigned char)i;
        sum += p[0] + ((uintptr_t)p & 0xff);
        free(p);
    }
    w->sum = sum;
    return NULL;
}

static void *run_mixed(worker *w) {
    unsigned char *ring[RING];
    uint64_t seed = 0x9e3779b97f4a7c15ull * (w->id + 1), sum = 0;
    for (int i = 0; i < RING; i++) {
        size_t n = 8 + xorshift(&seed) % 513;
        ring[i] = malloc(n);
        if (!ring[i]) abort();
        ring[i][0] = (unsigned char)n;
    }
    for (long long i = 0; i < w->iterations; i++) {
        unsigned slot = (unsigned)(i & (RING - 1));
        sum += ring[slot][0];
        free(ring[slot]);
        size_t n = 8 + xorshift(&seed) % 513;
        ring[slot] = malloc(n);
        if (!ring[slot]) abort();
        ring[slot][0] = (unsigned char)n;
        ring[slot][n - 1] = (unsigned char)i;
    }
    for (int i = 0; i < RING; i++) {
        sum += ring[i][0];
        free(ring[i]);
    }
    w->sum = sum;
    return NULL;
}

static void *run(void *arg) {
    worker *w = arg;
    return w->mixed ? run_mixed(w) : run_fixed(w);
}

int main(int argc, char **argv) {
    if (argc != 4 || (strcmp(argv[1], "fixed") && strcmp(argv[1], "mixed"))) {
        fprintf(stderr, "usage: %s fixed|mixed THREADS ITERATIONS_PER_THREAD\n", argv[0]);
        return 2;
    }
    int mixed = strcmp(argv[1], "mixed") == 0;
    int threads = atoi(argv[2]);
    long long iterations = atoll(argv[3]);
    if (threads < 1 || threads > 1024 || iterations < 1) {
        fprintf(stderr, "%s: THREADS must be 1..1024 and ITERATIONS positive\n", argv[0]);
        return 2;
    }
    worker *w = calloc((size_t)threads, sizeof *w);
    if (!w) return 1;
    for (int t = 0; t < threads; t++) {
        w[t] = (worker){.mixed = mixed, .id = (unsigned)t, .iterations = iterations};
        if (pthread_create(&w[t].tid, NULL, run, &w[t]) != 0) {
            fprintf(stderr, "%s: pthread_create failed\n", argv[0]);
            return 1;
        }
    }
    uint64_t sum = 0;
    for (int t = 0; t < threads; t++) {
        pthread_join(w[t].tid, NULL);
        sum += w[t].sum;
    }
    free(w);
    printf("checksum %llu\n", (unsigned long long)sum);
    return 0;
}
