/* Exactness across threads: cross-thread frees, thousands of short-lived
 * threads whose blocks outlive them, and readers racing writers. Every figure
 * is checked against zt_expected_size() of the blocks, a source that is not
 * the code under test. */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "zm_test.h"

#define CHURN_THREADS 5000

typedef struct {
    void **slots;
    size_t n;
    size_t bytes; /* zt_expected_size() sum of what this thread allocated */
} batch;

static void *alloc_batch(void *arg) {
    batch *b = arg;
    b->bytes = 0;
    for (size_t i = 0; i < b->n; i++) {
        size_t n = (i % 3) ? i * 7 + 1 : i + 1;
        b->slots[i] = (i % 3) ? zm_malloc(n) : zm_calloc(n);
        b->bytes += zt_expected_size(b->slots[i], n);
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
        for (int j = 0; j < 4; j++) sum += zt_expected_size(left[i + j], 100);
        assert_int_equal(zt_used_since(base), sum);
    }
    for (int i = 0; i < CHURN_THREADS; i++) zm_free(left[i]);
    assert_int_equal(zt_used_since(base), 0);
}

#define DETACHED 200
#define DETACHED_BLOCKS 80 /* of 1,000 bytes: past a 64 KiB batch, so published */

typedef struct {
    atomic_int done;     /* set just before the thread returns */
    void *left;          /* a block it leaves for the main thread to free */
    void *from_main;     /* a block of the main thread's that it frees */
    size_t left_bytes;   /* zt_expected_size() of left */
} detached_rec;

static void *detached_alloc(void *arg) {
    detached_rec *r = arg;
    void *b[DETACHED_BLOCKS];
    for (int i = 0; i < DETACHED_BLOCKS; i++) b[i] = zm_malloc(1000);
    for (int i = 0; i < DETACHED_BLOCKS; i++) zm_free(b[i]);
    zm_free(r->from_main); /* this thread's balance goes negative... */
    r->left = zm_malloc(300); /* ...and then up by a block it never frees */
    r->left_bytes = zt_expected_size(r->left, 300);
    atomic_store_explicit(&r->done, 1, memory_order_release);
    return NULL;
}

/* Detached threads exit without a join; whatever balance each had (here
 * +left - from_main, after publishing batches both ways) must still be in the
 * figure, exactly, whether its exit hook has run yet or not. */
static void test_detached_threads(void **state) {
    (void)state;
    static detached_rec rec[DETACHED];
    size_t base = zm_used_memory();
    long long held = 0;
    for (int i = 0; i < DETACHED; i++) {
        atomic_store(&rec[i].done, 0);
        rec[i].left = NULL;
        rec[i].from_main = zm_malloc(500 + (size_t)i);
        held += (long long)zt_expected_size(rec[i].from_main, 500 + (size_t)i);
    }
    assert_int_equal(zt_used_since(base), held);
    for (int i = 0; i < DETACHED; i++) {
        pthread_t t;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        assert_int_equal(pthread_create(&t, &attr, detached_alloc, &rec[i]), 0);
        pthread_attr_destroy(&attr);
    }
    /* Each flag is the thread's last store: after it, its blocks are final. */
    held = 0;
    for (int i = 0; i < DETACHED; i++) {
        while (!atomic_load_explicit(&rec[i].done, memory_order_acquire)) sched_yield();
        held += (long long)rec[i].left_bytes;
    }
    assert_int_equal(zt_used_since(base), held);
    for (int i = 0; i < DETACHED; i++) zm_free(rec[i].left);
    assert_int_equal(zt_used_since(base), 0);
}

#define PAIRS 4
#define ROUNDS 20000

typedef struct {
    _Atomic(void *) box[64];
    atomic_int stop;
} mailbox;

/* Each block records its own requested size in its first bytes, so that the
 * bytes still in the boxes at the end can be summed from zt_expected_size(). */
static void *producer(void *arg) {
    mailbox *m = arg;
    unsigned seed = 1;
    for (int r = 0; r < ROUNDS; r++) {
        seed = seed * 1103515245u + 12345u;
        size_t n = sizeof(size_t) + seed % 700;
        void *p = zm_malloc(n);
        memcpy(p, &n, sizeof n);
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
        for (int j = 0; j < 64; j++) {
            void *p = atomic_load(&m[i].box[j]);
            size_t n;
            if (!p) continue;
            memcpy(&n, p, sizeof n);
            held += zt_expected_size(p, n);
        }
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
