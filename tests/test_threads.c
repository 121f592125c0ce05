/* Exactness across threads: cross-thread frees, thousands of short-lived
 * threads whose blocks outlive them, and readers racing writers. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "zm_test.h"

#define CHURN_THREADS 5000

typedef struct {
    void **slots;
    size_t n;
    size_t bytes; /* zm_size() sum of what this thread allocated */
} batch;

static void *alloc_batch(void *arg) {
    batch *b = arg;
    b->bytes = 0;
    for (size_t i = 0; i < b->n; i++) {
        b->slots[i] = (i % 3) ? zm_malloc(i * 7 + 1) : zm_calloc(i + 1);
        b->bytes += zm_size(b->slots[i]);
    }
    return NULL;
}

static void *free_batch(void *arg) {
    batch *b = arg;
    for (size_t i = 0; i < b->n; i++) zm_free(b->slots[i]);
    return NULL;
}

/* One thread allocates, another frees: each counter goes far from zero,
 * the sum stays exact. */
static void test_cross_thread_free(void **state) {
    (void)state;
    size_t base = zm_used_memory();
    void *slots[2000];
    batch b = {slots, 2000, 0};
    pthread_t t;
    pthread_create(&t, NULL, alloc_batch, &b);
    pthread_join(t, NULL);
    assert_int_equal(zt_used_since(base), b.bytes);
    pthread_create(&t, NULL, free_batch, &b);
    pthread_join(t, NULL);
    assert_int_equal(zt_used_since(base), 0);
}

static void *alloc_one_and_exit(void *arg) {
    void **slot = arg;
    *slot = zm_malloc(100);
    void *tmp = zm_malloc(50); /* allocated and freed by the same short life */
    zm_free(tmp);
    return NULL;
}

/* Thousands of threads in a row, each leaving a block behind: no fixed table
 * fills up, and every exited thread's balance is kept. */
static void test_thread_churn(void **state) {
    (void)state;
    size_t base = zm_used_memory();
    static void *left[CHURN_THREADS];
    size_t sum = 0;
    for (int i = 0; i < CHURN_THREADS; i += 4) {
        pthread_t t[4];
        for (int j = 0; j < 4; j++) pthread_create(&t[j], NULL, alloc_one_and_exit, &left[i + j]);
        for (int j = 0; j < 4; j++) pthread_join(t[j], NULL);
        for (int j = 0; j < 4; j++) sum += zm_size(left[i + j]);
        assert_int_equal(zt_used_since(base), sum);
    }
    for (int i = 0; i < CHURN_THREADS; i++) zm_free(left[i]);
    assert_int_equal(zt_used_since(base), 0);
}

static void *detached_alloc(void *arg) {
    atomic_int *done = arg;
    void *p = zm_malloc(64);
    zm_free(p);
    atomic_fetch_add(done, 1);
    return NULL;
}

/* Detached threads exit without a join; their entries must still go. */
static void test_detached_threads(void **state) {
    (void)state;
    size_t base = zm_used_memory();
    atomic_int done = 0;
    for (int i = 0; i < 500; i++) {
        pthread_t t;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        pthread_create(&t, &attr, detached_alloc, &done);
        pthread_attr_destroy(&attr);
    }
    while (atomic_load(&done) < 500) sched_yield();
    assert_int_equal(zt_used_since(base), 0);
}

#define PAIRS 4
#define ROUNDS 20000

typedef struct {
    _Atomic(void *) box[64];
    atomic_int stop;
} mailbox;

static void *producer(void *arg) {
    mailbox *m = arg;
    unsigned seed = 1;
    for (int r = 0; r < ROUNDS; r++) {
        seed = seed * 1103515245u + 12345u;
        void *p = zm_malloc(seed % 700);
        void *old = atomic_exchange(&m->box[seed % 64], p);
        zm_free(old); /* frees what the consumer or another round put there */
    }
    return NULL;
}

static void *consumer(void *arg) {
    mailbox *m = arg;
    unsigned i = 0;
    while (!atomic_load(&m->stop)) {
        void *p = atomic_exchange(&m->box[i++ % 64], NULL);
        zm_free(p);
    }
    return NULL;
}

static void *reader(void *arg) {
    mailbox *m = arg;
    while (!atomic_load(&m->stop)) (void)zm_used_memory();
    return NULL;
}

/* Producers and consumers trade blocks while a reader sums: afterwards the
 * counter is exactly the bytes still in the boxes. */
static void test_producer_consumer(void **state) {
    (void)state;
    size_t base = zm_used_memory();
    static mailbox m[PAIRS];
    pthread_t p[PAIRS], c[PAIRS], rd;
    for (int i = 0; i < PAIRS; i++) {
        pthread_create(&p[i], NULL, producer, &m[i]);
        pthread_create(&c[i], NULL, consumer, &m[i]);
    }
    pthread_create(&rd, NULL, reader, &m[0]);
    for (int i = 0; i < PAIRS; i++) pthread_join(p[i], NULL);
    for (int i = 0; i < PAIRS; i++) atomic_store(&m[i].stop, 1);
    for (int i = 0; i < PAIRS; i++) pthread_join(c[i], NULL);
    pthread_join(rd, NULL);
    size_t held = 0;
    for (int i = 0; i < PAIRS; i++)
        for (int j = 0; j < 64; j++) held += zm_size(atomic_load(&m[i].box[j]));
    assert_int_equal(zt_used_since(base), held);
    for (int i = 0; i < PAIRS; i++)
        for (int j = 0; j < 64; j++) zm_free(atomic_exchange(&m[i].box[j], NULL));
    assert_int_equal(zt_used_since(base), 0);
}

static pthread_key_t late_key;

/* Runs after (or before) the library's own exit hook: its frees still count. */
static void late_destructor(void *p) { zm_free(p); }

static void *alloc_in_destructor(void *arg) {
    (void)arg;
    pthread_setspecific(late_key, zm_malloc(300));
    return NULL;
}

static void test_allocations_in_thread_destructors(void **state) {
    (void)state;
    size_t base = zm_used_memory();
    pthread_key_create(&late_key, late_destructor);
    for (int i = 0; i < 200; i++) {
        pthread_t t;
        pthread_create(&t, NULL, alloc_in_destructor, NULL);
        pthread_join(t, NULL);
    }
    assert_int_equal(zt_used_since(base), 0);
    pthread_key_delete(late_key);
}

int main(int argc, char **argv) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cross_thread_free),
        cmocka_unit_test(test_thread_churn),
        cmocka_unit_test(test_detached_threads),
        cmocka_unit_test(test_producer_consumer),
        cmocka_unit_test(test_allocations_in_thread_destructors),
    };
    return zt_run(tests, argc, argv, NULL, NULL);
}
