/* Stress: thread churn with blocks that outlive their threads, cross-thread
 * frees through a producer/consumer queue, fork() while threads allocate, and
 * (ZMALLOC_SOAK_MINUTES=N) a timed multi-thread soak. The counter must be
 * exact after each. Counts shrink under sanitizers and valgrind
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

static int under_valgrind(void) { return zt_under_valgrind(); }

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

static void test_thread_churn(void **state) {
    (void)state;
    size_t n = 100000 / (size_t)scale_down();
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
        sum += zm_size(churn_blocks[i]);
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

static void *fork_worker(void *arg) {
    unsigned seed = (unsigned)(size_t)arg * 31 + 7;
    void *live[16] = {0};
    while (!atomic_load_explicit(&fork_stop, memory_order_relaxed)) {
        unsigned i = rnd(&seed) % 16;
        zm_free(live[i]);
        live[i] = zm_malloc(rnd(&seed) % 3000);
    }
    for (int i = 0; i < 16; i++) zm_free(live[i]);
    return NULL;
}

static int fork_child(void *arg) {
    (void)arg;
    size_t u0 = zm_used_memory();
    void *p[20];
    size_t sum = 0;
    for (int i = 0; i < 20; i++) {
        p[i] = zm_malloc((size_t)i * 100 + 1);
        if (!p[i]) return 1;
        sum += zm_size(p[i]);
        if (zm_used_memory() != u0 + sum) return 2;
    }
    for (int i = 0; i < 20; i++) zm_free(p[i]);
    return zm_used_memory() == u0 ? 0 : 3;
}

#endif

static void test_fork_while_allocating(void **state) {
    (void)state;
#ifdef ZT_SANITIZED
    zt_skip("sanitizer allocators deadlock in fork children of busy threads");
#else
    int rounds = under_valgrind() ? 20 : 200;
    size_t base = zm_used_memory();
    atomic_store(&fork_stop, 0);
    pthread_t t[3];
    for (size_t i = 0; i < 3; i++) pthread_create(&t[i], NULL, fork_worker, (void *)i);
    for (int r = 0; r < rounds; r++) {
        int rc = zt_fork_run(fork_child, NULL, 10);
        if (rc != 0) fail_msg("fork round %d: child result %d", r, rc);
    }
    atomic_store(&fork_stop, 1);
    for (int i = 0; i < 3; i++) pthread_join(t[i], NULL);
    assert_int_equal(zt_used_since(base), 0);
    printf("stress: %d forks while 3 threads allocate, every child exact\n", rounds);
#endif
}

/* ---- soak ---------------------------------------------------------------- */

#define SOAK_THREADS 4
#define SOAK_SLOTS 1024
static atomic_int soak_stop;

typedef struct {
    void *live[SOAK_SLOTS];
    size_t held; /* sum of zm_size over live */
    unsigned seed;
    size_t ops;
} soak_state;

static void *soak_thread(void *arg) {
    soak_state *s = arg;
    while (!atomic_load_explicit(&soak_stop, memory_order_relaxed)) {
        unsigned i = rnd(&s->seed) % SOAK_SLOTS;
        size_t sz = rnd(&s->seed) % 16 == 0 ? rnd(&s->seed) % 200000 : rnd(&s->seed) % 512;
        void *p = s->live[i];
        s->held -= zm_size(p);
        switch (rnd(&s->seed) % 6) {
        case 0: zm_free(p); p = zm_malloc(sz); break;
        case 1: zm_free(p); p = zm_calloc(sz); break;
        case 2: p = zm_realloc(p, sz); break;
        case 3: {
            void *q = zm_try_realloc(p, sz);
            if (q || sz == 0) p = q;
            break;
        }
        case 4: zm_free_with_size(p, zm_usable_size(p)); p = zm_calloc_num(sz % 64, 8); break;
        default: zm_free(p); p = NULL; break;
        }
        s->live[i] = p;
        s->held += zm_size(p);
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
