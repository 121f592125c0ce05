/* The private jemalloc (ZMALLOC_JEMALLOC_PRIVATE) beside the system one: this
 * program links libzmalloc.so and, ahead of the C library, Debian's
 * libjemalloc.so.2, so its own malloc is the system jemalloc. Two jemallocs
 * live in one process and neither sees the other's blocks. The independent
 * figure is the system jemalloc's nallocx(): both copies are the same
 * version, with the same size classes. */
#include <jemalloc/jemalloc.h>
#include <pthread.h>
#include <stdint.h>

#include "zm_test.h"

static volatile uint64_t *counter(const char *name) {
    uint64_t *p = NULL;
    size_t len = sizeof p;
    assert_int_equal(mallctl(name, &p, &len, NULL, 0), 0);
    return p;
}

/* Under valgrind the program's malloc is valgrind's, not the system jemalloc. */
static void need_system_jemalloc_as_malloc(void) {
    if (zt_under_valgrind()) zt_skip("valgrind replaces the program's malloc (not jemalloc's here)");
}

static void test_program_malloc_is_not_counted(void **state) {
    (void)state;
    need_system_jemalloc_as_malloc();
    volatile uint64_t *sys_alloc = counter("thread.allocatedp");
    size_t base = zm_used_memory();
    uint64_t a0 = *sys_alloc;
    void *x = malloc(1000); /* the program's malloc: the system jemalloc */
    __asm__ volatile("" : : "r"(x) : "memory");
    assert_int_equal(*sys_alloc - a0, nallocx(1000, 0));
    assert_int_equal(zm_used_memory(), base);
    free(x);
    assert_int_equal(zm_used_memory(), base);
}

static void test_zmalloc_leaves_system_jemalloc_alone(void **state) {
    (void)state;
    volatile uint64_t *sys_alloc = counter("thread.allocatedp");
    volatile uint64_t *sys_dealloc = counter("thread.deallocatedp");
    size_t base = zm_used_memory();
    uint64_t a0 = *sys_alloc, d0 = *sys_dealloc;
    void *z = zm_malloc(1000);
    void *c = zm_calloc(3000);
    z = zm_realloc(z, 5000);
    assert_int_equal(zm_used_memory() - base, nallocx(5000, 0) + nallocx(3000, 0));
    zm_free(z);
    zm_free(c);
    assert_int_equal(zm_used_memory(), base);
    assert_int_equal(*sys_alloc, a0);
    assert_int_equal(*sys_dealloc, d0);
}

/* zlibc_free() frees what the program's own malloc gave. */
static void test_libc_free_frees_program_blocks(void **state) {
    (void)state;
    need_system_jemalloc_as_malloc();
    volatile uint64_t *sys_dealloc = counter("thread.deallocatedp");
    size_t base = zm_used_memory();
    void *x = malloc(50);
    uint64_t d0 = *sys_dealloc;
    zm_libc_free(x);
    assert_int_equal(*sys_dealloc - d0, nallocx(50, 0));
    assert_int_equal(zm_used_memory(), base);
}

/* A block crosses threads: allocated by one, freed by another that never
 * allocated through zmalloc, which then exits. */
static void *free_it(void *p) {
    zm_free(p);
    return NULL;
}

static void test_cross_thread_free(void **state) {
    (void)state;
    size_t base = zm_used_memory();
    void *p = zm_malloc(700);
    assert_int_equal(zm_used_memory() - base, nallocx(700, 0));
    pthread_t t;
    pthread_create(&t, NULL, free_it, p);
    pthread_join(t, NULL);
    assert_int_equal(zm_used_memory(), base);
}

int main(int argc, char **argv) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_program_malloc_is_not_counted),
        cmocka_unit_test(test_zmalloc_leaves_system_jemalloc_alone),
        cmocka_unit_test(test_libc_free_frees_program_blocks),
        cmocka_unit_test(test_cross_thread_free),
    };
    return zt_run(tests, argc, argv, NULL, NULL);
}
