/* What zmalloc's accounting costs on top of the allocator it wraps.
 *
 * zm_malloc/zm_free are compared with the backend's own malloc/free
 * (zm__be_raw_malloc/zm__be_raw_free), so the ratio isolates the wrapper on
 * every backend rather than comparing jemalloc-with-accounting to glibc.
 *
 * A third variant calibrates: a plain call-through wrapper that counts
 * nothing (what any wrapper costs). Each round runs all three, in an order
 * that rotates every round: on a shared, noisy machine a burst of foreign load
 * then lands on every variant instead of biasing one. Each cell reports the
 * median of the per-round ratios, which a single disturbed round cannot move.
 *
 * Output is markdown, to paste into the README. Nothing here is asserted on
 * timings; the only failure is inexact accounting (exit 1). */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend.h"
#include "bench_pattern.h"
#include "zmalloc.h"

#ifdef HAVE_MALLOC_SIZE
#define HAVE_MALLOC_SIZE_STR "yes"
#else
#define HAVE_MALLOC_SIZE_STR "no"
#endif

#define MAX_WORKERS 64
#define MAX_ROUNDS 1000

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---------------------------------------------------------------- loops
 * One copy per variant, with the calls written out, so that neither variant
 * pays for an indirect call the other would not. */

#define DEFINE_LOOPS(name, ALLOC, FREE)                                                    \
    __attribute__((noinline)) static void name##_fixed(uint64_t iters) {                    \
        for (uint64_t i = 0; i < iters; i++) {                                              \
            void *p = ALLOC(64);                                                            \
            /* A volatile store the compiler must keep, so it cannot drop the pair. */      \
            *(volatile char *)p = (char)i;                                                  \
            FREE(p);                                                                        \
        }                                                                                   \
    }                                                                                       \
    static void name##_fill(void **pool, uint64_t *seed) {                                  \
        for (size_t i = 0; i < POOL_SLOTS; i++) {                                           \
            pool[i] = ALLOC(pick_size(xorshift64(seed)));                                   \
            *(volatile char *)pool[i] = 1;                                                  \
        }                                                                                   \
    }                                                                                       \
    __attribute__((noinline)) static void name##_mixed(void **pool, uint64_t *seed,         \
                                                       uint64_t iters) {                    \
        uint64_t s = *seed;                                                                 \
        for (uint64_t i = 0; i < iters; i++) MIXED_STEP(pool, s, ALLOC, FREE);              \
        *seed = s;                                                                          \
    }                                                                                       \
    static void name##_drain(void **pool) {                                                 \
        for (size_t i = 0; i < POOL_SLOTS; i++) FREE(pool[i]);                              \
    }

/* The calibration: a wrapper that does only what any wrapper must (a call,
 * a NULL check for the OOM path, a jump to free) and counts nothing. What
 * zmalloc costs beyond it is the accounting. noipa: compiled as an outside
 * function would be, with no knowledge of its registers at the call. */
__attribute__((noinline, noipa)) static void *through_malloc(size_t size) {
    void *p = zm__be_raw_malloc(size);
    if (__builtin_expect(p == NULL, 0)) abort();
    return p;
}
__attribute__((noinline, noipa)) static void through_free(void *p) { zm__be_raw_free(p); }

DEFINE_LOOPS(raw, zm__be_raw_malloc, zm__be_raw_free)
DEFINE_LOOPS(through, through_malloc, through_free)
DEFINE_LOOPS(wrapped, zm_malloc, zm_free)

/* ---------------------------------------------------------------- rounds */

enum workload { FIXED64, MIXED };
enum variant { RAW, THROUGH, WRAPPED };

typedef struct {
    enum workload workload;
    enum variant variant;
    uint64_t iters;
    unsigned index;
    pthread_barrier_t *start, *end;
} worker_arg;

static void *worker(void *argp) {
    worker_arg *a = argp;
    /* Each thread its own stream, but the same one for every variant. */
    uint64_t seed = SEED + a->index * 0x2545F4914F6CDD1Dull;
    void *pool[POOL_SLOTS];
    int mixed = a->workload == MIXED;

    /* Done before the start barrier, so a thread's first-allocation costs
     * (glibc arena and tcache set-up, zmalloc's thread registration) and the
     * pool fill stay out of the timed window. */
#define RUN_VARIANT(name)                                                                   \
    do {                                                                                   \
        name##_fixed(256);                                                                  \
        if (mixed) name##_fill(pool, &seed);                                                \
        pthread_barrier_wait(a->start);                                                     \
        if (mixed) name##_mixed(pool, &seed, a->iters);                                     \
        else name##_fixed(a->iters);                                                        \
        pthread_barrier_wait(a->end);                                                       \
        if (mixed) name##_drain(pool);                                                      \
    } while (0)
    switch (a->variant) {
    case RAW: RUN_VARIANT(raw); break;
    case THROUGH: RUN_VARIANT(through); break;
    case WRAPPED: RUN_VARIANT(wrapped); break;
    }
#undef RUN_VARIANT
    return NULL;
}

/* Small stacks: the used_memory test starts 64 threads at once. */
static void start_thread(pthread_t *t, void *(*fn)(void *), void *arg) {
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    int rc = pthread_create(t, &attr, fn, arg);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        fprintf(stderr, "pthread_create: %s\n", strerror(rc));
        exit(2);
    }
}

/* Wall time of one round: from the moment every worker is released to the
 * moment the last one finishes. The main thread only waits. */
static uint64_t run_round(enum workload w, enum variant v, unsigned nthreads, uint64_t iters) {
    if (nthreads > MAX_WORKERS) abort(); /* also tells gcc the arrays below are big enough */
    pthread_barrier_t start, end;
    pthread_barrier_init(&start, NULL, nthreads + 1);
    pthread_barrier_init(&end, NULL, nthreads + 1);
    pthread_t tid[MAX_WORKERS];
    worker_arg args[MAX_WORKERS];
    for (unsigned i = 0; i < nthreads; i++) {
        args[i] = (worker_arg){w, v, iters, i, &start, &end};
        start_thread(&tid[i], worker, &args[i]);
    }
    pthread_barrier_wait(&start);
    uint64_t t0 = now_ns();
    pthread_barrier_wait(&end);
    uint64_t t1 = now_ns();
    for (unsigned i = 0; i < nthreads; i++) pthread_join(tid[i], NULL);
    pthread_barrier_destroy(&start);
    pthread_barrier_destroy(&end);
    return t1 - t0;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, unsigned n) {
    qsort(v, n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* One cell: the three variants each round, in an order that rotates every
 * round, so that a burst of foreign load lands on all of them alike. */
static void bench_cell(enum workload w, unsigned nthreads, unsigned rounds, uint64_t iters) {
    double ns[3][MAX_ROUNDS], ratio[MAX_ROUNDS], through_ratio[MAX_ROUNDS];
    double lo = 1e300, hi = 0;
    for (unsigned r = 0; r < rounds; r++) {
        uint64_t t[3];
        for (unsigned k = 0; k < 3; k++) {
            enum variant v = (enum variant)((r + k) % 3);
            t[v] = run_round(w, v, nthreads, iters);
        }
        for (unsigned v = 0; v < 3; v++) ns[v][r] = (double)t[v] / (double)iters;
        ratio[r] = (double)t[WRAPPED] / (double)t[RAW];
        through_ratio[r] = (double)t[THROUGH] / (double)t[RAW];
        if (ratio[r] < lo) lo = ratio[r];
        if (ratio[r] > hi) hi = ratio[r];
    }
    printf("| %s | %s | %u | %.1f | %.1f | %.3f | %.3f .. %.3f | %.3f |\n", ZMALLOC_LIB,
           w == FIXED64 ? "fixed64" : "mixed 8..520", nthreads, median(ns[RAW], rounds),
           median(ns[WRAPPED], rounds), median(ratio, rounds), lo, hi,
           median(through_ratio, rounds));
    fflush(stdout);
}

/* ------------------------------------------------------- used_memory cost
 * zm_used_memory() walks one counter per registered thread under a lock, so
 * its cost grows with the threads that have allocated. Those threads are kept
 * alive, each holding a block, but blocked, so that they neither compete for
 * the CPU nor change their counters while the main thread measures. */

typedef struct {
    pthread_barrier_t *ready;
    pthread_mutex_t *mu;
    pthread_cond_t *cv;
    int *release;
} parked_arg;

static void *parked(void *argp) {
    parked_arg *a = argp;
    void *held = zm_malloc(64);
    *(volatile char *)held = 1;
    pthread_barrier_wait(a->ready);
    pthread_mutex_lock(a->mu);
    while (!*a->release) pthread_cond_wait(a->cv, a->mu);
    pthread_mutex_unlock(a->mu);
    zm_free(held);
    return NULL;
}

static volatile size_t sink;

/* Median over batches of the per-call cost, in ns. */
static double time_used_memory(unsigned batches, unsigned calls) {
    double per[64];
    if (batches > 64) batches = 64;
    for (unsigned b = 0; b < batches; b++) {
        uint64_t t0 = now_ns();
        for (unsigned i = 0; i < calls; i++) sink = zm_used_memory();
        per[b] = (double)(now_ns() - t0) / calls;
    }
    return median(per, batches);
}

static void bench_used_memory(unsigned nparked, unsigned batches, unsigned calls) {
    pthread_barrier_t ready;
    pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
    int release = 0;
    pthread_barrier_init(&ready, NULL, nparked + 1);
    parked_arg arg = {&ready, &mu, &cv, &release};
    pthread_t tid[64];
    for (unsigned i = 0; i < nparked; i++) start_thread(&tid[i], parked, &arg);
    pthread_barrier_wait(&ready);

    double ns = time_used_memory(batches, calls);
    printf("| zm_used_memory() | %u parked + main | %.1f ns |\n", nparked, ns);
    fflush(stdout);

    pthread_mutex_lock(&mu);
    release = 1;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
    for (unsigned i = 0; i < nparked; i++) pthread_join(tid[i], NULL);
    pthread_barrier_destroy(&ready);
}

static void bench_rss(unsigned calls) {
    uint64_t t0 = now_ns();
    for (unsigned i = 0; i < calls; i++) sink = zm_get_rss();
    double us = (double)(now_ns() - t0) / calls / 1000.0;
    printf("| zm_get_rss() | main | %.2f us |\n", us);
}

/* ---------------------------------------------------------------- main */

static void usage(const char *argv0) {
    fprintf(stderr, "usage: %s [--quick] [--rounds N] [--threads N,N,...]\n", argv0);
    exit(2);
}

int main(int argc, char **argv) {
    int quick = 0;
    long rounds = 25;
    int rounds_set = 0;
    unsigned threads[16] = {1, 2}, nthread_counts = 2;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0) {
            quick = 1;
        } else if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc) {
            char *end;
            errno = 0;
            rounds = strtol(argv[++i], &end, 10);
            if (errno || *end || rounds < 1 || rounds > MAX_ROUNDS) usage(argv[0]);
            rounds_set = 1;
        } else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc) {
            /* e.g. 1,2,4,8,16 on a machine with that many cores */
            char *p = argv[++i], *end;
            nthread_counts = 0;
            while (*p && nthread_counts < 16) {
                errno = 0;
                long t = strtol(p, &end, 10);
                if (errno || end == p || t < 1 || t > MAX_WORKERS) usage(argv[0]);
                threads[nthread_counts++] = (unsigned)t;
                p = *end == ',' ? end + 1 : end;
                if (*end && *end != ',') usage(argv[0]);
            }
        } else {
            usage(argv[0]);
        }
    }
    if (quick && !rounds_set) rounds = 3;

    /* Sized for rounds of roughly 0.1 s (0.005 s with --quick) on a current
     * x86 core: long enough that timer and thread start-up noise are lost in
     * them, short enough for 9 rounds of everything to stay well under 60 s. */
    uint64_t fixed_iters = quick ? 200000 : 2000000;
    uint64_t mixed_iters = quick ? 100000 : 1000000;

    /* The main thread registers now, so that it is one of the live threads
     * in every used_memory measurement and its first allocation is not. */
    void *mine = zm_malloc(16);
    zm_free(mine);
    size_t used_before = zm_used_memory();

    printf("zmalloc bench_overhead: ZMALLOC_LIB=%s HAVE_MALLOC_SIZE=%s rounds=%ld%s\n", ZMALLOC_LIB,
           HAVE_MALLOC_SIZE_STR, rounds, quick ? " (quick)" : "");
    printf("iterations per thread per round: fixed64 %" PRIu64 ", mixed %" PRIu64
           "; ns/pair = round wall time / iterations per thread\n\n",
           fixed_iters, mixed_iters);
    printf("| backend | workload | threads | raw ns/pair | zmalloc ns/pair | ratio (median) | ratio "
           "min .. max | call-through ratio (median) |\n");
    printf("|---|---|---|---:|---:|---:|---:|---:|\n");
    fflush(stdout);
    for (unsigned i = 0; i < nthread_counts; i++) {
        bench_cell(FIXED64, threads[i], (unsigned)rounds, fixed_iters);
        bench_cell(MIXED, threads[i], (unsigned)rounds, mixed_iters);
    }

    printf("\n| call | threads registered | cost per call |\n");
    printf("|---|---|---:|\n");
    static const unsigned parked_counts[] = {1, 2, 64};
    for (size_t i = 0; i < sizeof parked_counts / sizeof parked_counts[0]; i++)
        bench_used_memory(parked_counts[i], quick ? 5 : 15, quick ? 2000 : 20000);
    bench_rss(quick ? 200 : 2000);

    size_t used_after = zm_used_memory();
    if (used_after != used_before) {
        printf("\naccounting: NOT exact (used_memory %zu before, %zu after)\n", used_before,
               used_after);
        return 1;
    }
    printf("\naccounting: exact (used_memory %zu before and after)\n", used_after);
    return 0;
}
