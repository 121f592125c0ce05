/* Stress: thread churn with blocks that outlive their threads, cross-thread
 * frees through a producer/consumer queue, fork() while threads allocate, and
 * (ZMALLOC_SOAK_MINUTES=N) a timed multi-thread soak. The counter must be
 * exact after each, against zt_expected_size() of the blocks (not zm_size(),
 * the code under test). Counts shrink under sanitizers and valgrind
 * (ZMALLOC_UNDER_VALGRIND=1, or RUNNING_ON_VALGRIND); the counts used are
 * printed. */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "zm_test.h"

static int under_valgrind(void) { return zt_slow(); }

/* 1: full counts; larger: divide them. */
static int scale_down(void) {
    if (under_valgrind()) return 50;
#ifdef ZT_SANITIZED
    return 5;
#else
    return 1;
#endif
}

static unsigned rnd(unsigned *s) {
    *s = *s * 1103515245u + 12345u;
    return *s >> 8;
}

/* ---- thread churn ----------------------------------------------------- */

#define CHURN_BATCH 8
static void **churn_blocks;

static void *churn_thread(void *arg) {
    size_t i = (size_t)arg;
    churn_blocks[i] = zm_malloc(1 + (i * 37) % 700);
    memset(churn_blocks[i], (int)(i & 0xff), 1);
    return NULL;
}

/* 20,000 threads: the registry's slots are reused thousands of times over
 * (at most CHURN_BATCH live at once). 100,000 took 27 s (libc) to 94 s
 * (jemalloc, Debian 13) of each configuration's run, about a quarter of CI,
 * and found nothing that 20,000 does not. */
static void test_thread_churn(void **state) {
    (void)state;
    size_t n = 20000 / (size_t)scale_down();
    size_t base = zm_used_memory();
    churn_blocks = calloc(n, sizeof *churn_blocks);
    assert_non_null(churn_blocks);
    for (size_t i = 0; i < n; i += CHURN_BATCH) {
        pthread_t t[CHURN_BATCH];
        size_t k = n - i < CHURN_BATCH ? n - i : CHURN_BATCH;
        for (size_t j = 0; j < k; j++)
            assert_int_equal(pthread_create(&t[j], NULL, churn_thread, (void *)(i + j)), 0);
        for (size_t j = 0; j < k; j++) pthread_join(t[j], NULL);
    }
    size_t sum = 0;
    for (size_t i = 0; i < n; i++) {
        assert_non_null(churn_blocks[i]);
        sum += zt_expected_size(churn_blocks[i], 1 + (i * 37) % 700);
    }
    assert_int_equal(zt_used_since(base), (long long)sum);
    for (size_t i = 0; i < n; i++) zm_free(churn_blocks[i]);
    assert_int_equal(zt_used_since(base), 0);
    free(churn_blocks);
    printf("stress: %zu threads churned (batches of %d), each block freed by main, count exact\n",
           n, CHURN_BATCH);
}

/* ---- producer / consumer ---------------------------------------------- */

#define PC_BATCH 256
#define PC_QUEUE 64
#define PC_PRODUCERS 2
#define PC_CONSUMERS 2

typedef struct {
    void *p[PC_BATCH];
    size_t n;
} pc_batch;

static struct {
    pthread_mutex_t mu;
    pthread_cond_t not_empty, not_full;
    pc_batch *q[PC_QUEUE];
    size_t head, count;
    int producers_left;
    size_t per_producer;
    _Atomic size_t freed;
} pc = {.mu = PTHREAD_MUTEX_INITIALIZER,
        .not_empty = PTHREAD_COND_INITIALIZER,
        .not_full = PTHREAD_COND_INITIALIZER};

static void *producer(void *arg) {
    unsigned seed = (unsigned)(size_t)arg * 7919u + 1;
    size_t made = 0;
    while (made < pc.per_producer) {
        pc_batch *b = malloc(sizeof *b);
        b->n = 0;
        while (b->n < PC_BATCH && made < pc.per_producer) {
            size_t sz = rnd(&seed) % 4 == 0 ? rnd(&seed) % 8192 : rnd(&seed) % 256;
            void *p;
            switch (rnd(&seed) % 4) {
            case 0: p = zm_malloc(sz); break;
            case 1: p = zm_calloc(sz); break;
            case 2: p = zm_realloc(zm_malloc(sz / 2 + 1), sz + 1); break;
            default: p = zm_try_malloc(sz); break;
            }
            if (p) memset(p, 0x5a, sz ? 1 : 0);
            b->p[b->n++] = p;
            made++;
        }
        pthread_mutex_lock(&pc.mu);
        while (pc.count == PC_QUEUE) pthread_cond_wait(&pc.not_full, &pc.mu);
        pc.q[(pc.head + pc.count) % PC_QUEUE] = b;
        pc.count++;
        pthread_cond_signal(&pc.not_empty);
        pthread_mutex_unlock(&pc.mu);
    }
    pthread_mutex_lock(&pc.mu);
    pc.producers_left--;
    pthread_cond_broadcast(&pc.not_empty);
    pthread_mutex_unlock(&pc.mu);
    return NULL;
}

static void *consumer(void *arg) {
    unsigned seed = (unsigned)(size_t)arg + 99;
    for (;;) {
        pthread_mutex_lock(&pc.mu);
        while (pc.count == 0 && pc.producers_left > 0) pthread_cond_wait(&pc.not_empty, &pc.mu);
        if (pc.count == 0) {
            pthread_mutex_unlock(&pc.mu);
            return NULL;
        }
        pc_batch *b = pc.q[pc.head];
        pc.head = (pc.head + 1) % PC_QUEUE;
        pc.count--;
        pthread_cond_signal(&pc.not_full);
        pthread_mutex_unlock(&pc.mu);
        for (size_t i = 0; i < b->n; i++) {
            size_t u;
            switch (rnd(&seed) % 3) {
            case 0: zm_free(b->p[i]); break;
            case 1: zm_free_usable(b->p[i], &u); break;
            default: zm_free_with_size(b->p[i], zm_usable_size(b->p[i])); break;
            }
        }
        atomic_fetch_add(&pc.freed, b->n);
        free(b);
    }
}

static void test_producer_consumer(void **state) {
    (void)state;
    size_t total = 2000000 / (size_t)scale_down();
    size_t base = zm_used_memory();
    pc.per_producer = total / PC_PRODUCERS;
    pc.producers_left = PC_PRODUCERS;
    pc.head = pc.count = 0;
    atomic_store(&pc.freed, 0);
    pthread_t p[PC_PRODUCERS], c[PC_CONSUMERS];
    for (size_t i = 0; i < PC_CONSUMERS; i++) pthread_create(&c[i], NULL, consumer, (void *)i);
    for (size_t i = 0; i < PC_PRODUCERS; i++) pthread_create(&p[i], NULL, producer, (void *)i);
    for (size_t i = 0; i < PC_PRODUCERS; i++) pthread_join(p[i], NULL);
    for (size_t i = 0; i < PC_CONSUMERS; i++) pthread_join(c[i], NULL);
    assert_int_equal(atomic_load(&pc.freed), pc.per_producer * PC_PRODUCERS);
    assert_int_equal(zt_used_since(base), 0);
    printf("stress: %zu blocks passed from %d producer to %d consumer threads, count exact\n",
           pc.per_producer * PC_PRODUCERS, PC_PRODUCERS, PC_CONSUMERS);
}

/* ---- fork while threads allocate -------------------------------------- */

#ifndef ZT_SANITIZED
static atomic_int fork_stop;
static size_t fork_base;

/* Requests the workers choose from, and zt_expected_size() of a block of
 * each, taken before they start: a block being allocated at the fork has no
 * pointer yet to ask about. */
#define FORK_NSIZES 12
static const size_t fork_sizes[FORK_NSIZES] = {0, 1, 17, 100, 255, 256, 1000, 1500, 2047, 2999, 9000, 20000};
static size_t fork_expected[FORK_NSIZES];
/* Size classes and the size header depend on the request only; glibc may
 * hand out one 16-byte step more (a whole free chunk whose rest is too small
 * to split off), or less than the probe got. */
#if defined(ZM_TEST_BACKEND_libc) && !defined(ZM_SIZE_HEADER)
#define FORK_SIZE_STEP 16
#else
#define FORK_SIZE_STEP 0
#endif

/* Each worker's record of its live blocks and of its one operation in
 * flight, written in program order with seq_cst atomics, so that a fork child
 * (where the worker no longer exists) knows exactly what it held. */
#define FORK_WORKERS 3
#define FORK_SLOTS 16
enum { FOP_NONE = 0, FOP_MALLOC = 1 << 8, FOP_FREE = 2 << 8 };
static struct fork_rec {
    _Atomic(void *) live[FORK_SLOTS];
    _Atomic size_t bytes[FORK_SLOTS];
    atomic_int pending; /* FOP_* | slot */
} fork_recs[FORK_WORKERS];

static void fork_rec_free(struct fork_rec *r, int i) {
    void *p = atomic_load(&r->live[i]);
    if (!p) return;
    atomic_store(&r->pending, FOP_FREE | i);
    atomic_store(&r->live[i], NULL);
    zm_free(p);
    atomic_store(&r->pending, FOP_NONE);
}

static void *fork_worker(void *arg) {
    struct fork_rec *r = &fork_recs[(size_t)arg];
    unsigned seed = (unsigned)(size_t)arg * 31 + 7;
    while (!atomic_load_explicit(&fork_stop, memory_order_relaxed)) {
        int i = (int)(rnd(&seed) % FORK_SLOTS), k = (int)(rnd(&seed) % FORK_NSIZES);
        fork_rec_free(r, i);
        atomic_store(&r->bytes[i], fork_expected[k]);
        atomic_store(&r->pending, FOP_MALLOC | i);
        void *p = zm_malloc(fork_sizes[k]);
        atomic_store(&r->bytes[i], zt_expected_size(p, fork_sizes[k]));
        atomic_store(&r->live[i], p);
        atomic_store(&r->pending, FOP_NONE);
    }
    for (int i = 0; i < FORK_SLOTS; i++) fork_rec_free(r, i);
    return NULL;
}

/* Whether target is one choice of each worker added up. */
static int fork_choices_sum(long long choice[][4], const int *nchoice, int w, long long target) {
    if (w == FORK_WORKERS) return target == 0;
    for (int c = 0; c < nchoice[w]; c++)
        if (fork_choices_sum(choice, nchoice, w + 1, target - choice[w][c])) return 1;
    return 0;
}

static int fork_child(void *arg) {
    (void)arg;
    /* The inherited figure: the base, every recorded block, and for each
     * worker 0 or the block of its operation in flight (counted or not yet;
     * within FORK_SIZE_STEP when it has no pointer yet). */
    long long used = zt_used_since(fork_base), known = 0, choice[FORK_WORKERS][4];
    int nchoice[FORK_WORKERS];
    for (int w = 0; w < FORK_WORKERS; w++) {
        struct fork_rec *r = &fork_recs[w];
        for (int i = 0; i < FORK_SLOTS; i++)
            if (atomic_load(&r->live[i])) known += (long long)atomic_load(&r->bytes[i]);
        int pend = atomic_load(&r->pending), i = pend & 0xff;
        choice[w][0] = 0;
        nchoice[w] = 1;
        if (pend == FOP_NONE || atomic_load(&r->live[i])) continue;
        long long b = (long long)atomic_load(&r->bytes[i]);
        choice[w][nchoice[w]++] = b;
        if ((pend & ~0xff) == FOP_MALLOC && FORK_SIZE_STEP) {
            choice[w][nchoice[w]++] = b - FORK_SIZE_STEP;
            choice[w][nchoice[w]++] = b + FORK_SIZE_STEP;
        }
    }
    if (!fork_choices_sum(choice, nchoice, 0, used - known)) {
        fprintf(stderr, "fork child: inherited %+lld, records %+lld + in flight %lld, %lld, %lld\n", used,
                known, choice[0][nchoice[0] - 1], choice[1][nchoice[1] - 1], choice[2][nchoice[2] - 1]);
        return 4;
    }
    size_t u0 = zm_used_memory();
    void *p[20];
    size_t sum = 0;
    for (int i = 0; i < 20; i++) {
        p[i] = zm_malloc((size_t)i * 100 + 1);
        if (!p[i]) return 1;
        sum += zt_expected_size(p[i], (size_t)i * 100 + 1);
        if (zm_used_memory() != u0 + sum) return 2;
    }
    for (int i = 0; i < 20; i++) zm_free(p[i]);
    /* The workers' recorded blocks can be freed here too. */
    for (int w = 0; w < FORK_WORKERS; w++)
        for (int i = 0; i < FORK_SLOTS; i++) {
            void *q = atomic_load(&fork_recs[w].live[i]);
            if (q) u0 -= atomic_load(&fork_recs[w].bytes[i]);
            zm_free(q);
        }
    return zm_used_memory() == u0 ? 0 : 3;
}

#endif

static void test_fork_while_allocating(void **state) {
    (void)state;
    if (zt_under_emulator()) zt_skip("qemu-user aborts when a process with running threads forks");
#ifdef ZT_SANITIZED
    zt_skip("sanitizer allocators deadlock in fork children of busy threads");
#else
    int rounds = under_valgrind() ? 20 : 200;
    for (int k = 0; k < FORK_NSIZES; k++) {
        void *p = zm_malloc(fork_sizes[k]);
        fork_expected[k] = zt_expected_size(p, fork_sizes[k]);
        zm_free(p);
    }
    fork_base = zm_used_memory();
    atomic_store(&fork_stop, 0);
    pthread_t t[FORK_WORKERS];
    for (size_t i = 0; i < FORK_WORKERS; i++) pthread_create(&t[i], NULL, fork_worker, (void *)i);
    for (int r = 0; r < rounds; r++) {
        int rc = zt_fork_run(fork_child, NULL, 10);
        if (rc != 0) fail_msg("fork round %d: child result %d", r, rc);
    }
    atomic_store(&fork_stop, 1);
    for (int i = 0; i < FORK_WORKERS; i++) pthread_join(t[i], NULL);
    assert_int_equal(zt_used_since(fork_base), 0);
    printf("stress: %d forks while %d threads allocate, every child exact\n", rounds, FORK_WORKERS);
#endif
}

/* ---- soak ---------------------------------------------------------------- */

#define SOAK_THREADS 4
#define SOAK_SLOTS 1024
static atomic_int soak_stop;

typedef struct {
    void *live[SOAK_SLOTS];
    size_t req[SOAK_SLOTS]; /* requested size of live[i] */
    size_t held; /* sum of zt_expected_size over live */
    unsigned seed;
    size_t ops;
} soak_state;

static void *soak_thread(void *arg) {
    soak_state *s = arg;
    while (!atomic_load_explicit(&soak_stop, memory_order_relaxed)) {
        unsigned i = rnd(&s->seed) % SOAK_SLOTS;
        size_t sz = rnd(&s->seed) % 16 == 0 ? rnd(&s->seed) % 200000 : rnd(&s->seed) % 512;
        void *p = s->live[i];
        size_t req = s->req[i];
        if (p) s->held -= zt_expected_size(p, req);
        switch (rnd(&s->seed) % 6) {
        case 0: zm_free(p); p = zm_malloc(req = sz); break;
        case 1: zm_free(p); p = zm_calloc(req = sz); break;
        case 2: p = zm_realloc(p, req = sz); break;
        case 3: {
            void *q = zm_try_realloc(p, sz);
            if (q || sz == 0) {
                p = q;
                req = sz;
            }
            break;
        }
        case 4:
            zm_free_with_size(p, zm_usable_size(p));
            p = zm_calloc_num(sz % 64, 8);
            req = (sz % 64) * 8;
            break;
        default: zm_free(p); p = NULL; break;
        }
        s->live[i] = p;
        s->req[i] = req;
        if (p) s->held += zt_expected_size(p, req);
        s->ops++;
    }
    return NULL;
}

static void test_soak(void **state) {
    (void)state;
    const char *env = getenv("ZMALLOC_SOAK_MINUTES");
    if (!env || atoi(env) <= 0) zt_skip("soak runs only with ZMALLOC_SOAK_MINUTES set");
    int minutes = atoi(env);
    size_t base = zm_used_memory();
    static soak_state st[SOAK_THREADS];
    pthread_t t[SOAK_THREADS];
    long long worst = 0;
    time_t end = time(NULL) + (time_t)minutes * 60;
    size_t ops = 0;
    memset(st, 0, sizeof st);
    for (int i = 0; i < SOAK_THREADS; i++) st[i].seed = 1234u + (unsigned)i;
    while (time(NULL) < end) {
        /* Rounds of 10 s: stop, check the count exactly, go on. */
        atomic_store(&soak_stop, 0);
        for (int i = 0; i < SOAK_THREADS; i++) pthread_create(&t[i], NULL, soak_thread, &st[i]);
        time_t stop = time(NULL) + 10 < end ? time(NULL) + 10 : end;
        while (time(NULL) < stop) sleep(1);
        atomic_store(&soak_stop, 1);
        for (int i = 0; i < SOAK_THREADS; i++) pthread_join(t[i], NULL);
        size_t expected = base;
        for (int i = 0; i < SOAK_THREADS; i++) expected += st[i].held;
        long long drift = (long long)zm_used_memory() - (long long)expected;
        if (drift != 0 && worst == 0) worst = drift;
    }
    for (int i = 0; i < SOAK_THREADS; i++) {
        ops += st[i].ops;
        for (int j = 0; j < SOAK_SLOTS; j++) zm_free(st[i].live[j]);
    }
    long long final_drift = zt_used_since(base);
    if (worst == 0) worst = final_drift;
    printf("soak: %d minutes, drift %lld bytes (%zu operations on %d threads)\n", minutes, worst, ops,
           SOAK_THREADS);
    assert_int_equal(worst, 0);
}

int main(int argc, char **argv) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_thread_churn),
        cmocka_unit_test(test_producer_consumer),
        cmocka_unit_test(test_fork_while_allocating),
        cmocka_unit_test(test_soak),
    };
    return zt_run(tests, argc, argv, NULL, NULL);
}
