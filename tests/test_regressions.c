/* One test per defect an independent audit reproduced, each checked against
 * sizes the code under test did not compute (zt_expected_size). */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>

#include "zm_test.h"

#ifdef ZMALLOC_TESTING
#include "counter.h" /* zm__test_publish_hook */
#endif

enum { SMALL = 1000 };

/* ---- 1. fork inside a publish ------------------------------------------
 * Thread W allocates until its balance is published; inside the publish (a
 * testing-build hook) it has thread F fork, and the child checks the count
 * it inherited against the blocks W holds. */
#ifdef ZMALLOC_TESTING
static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int request, done, child_rc;
    long long expected;
} forker = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0, 0};
static atomic_int hook_armed;

static int child_checks(void *arg) {
    (void)arg;
    long long used = (long long)zm_used_memory();
    if (used != forker.expected) {
        fprintf(stderr, "fork child: used %lld, expected %lld\n", used, forker.expected);
        return 1;
    }
    return 0;
}

static void *forker_main(void *arg) {
    (void)arg;
    pthread_mutex_lock(&forker.mu);
    for (;;) {
        while (!forker.request) pthread_cond_wait(&forker.cv, &forker.mu);
        if (forker.request < 0) break;
        forker.child_rc = zt_fork_run(child_checks, NULL, 30);
        forker.request = 0;
        forker.done = 1;
        pthread_cond_broadcast(&forker.cv);
    }
    pthread_mutex_unlock(&forker.mu);
    return NULL;
}

/* Runs in W, between the slot's update and the shared estimate's. */
static void fork_in_publish(void) {
    if (!atomic_exchange(&hook_armed, 0)) return;
    pthread_mutex_lock(&forker.mu);
    forker.done = 0;
    forker.request = 1;
    pthread_cond_broadcast(&forker.cv);
    while (!forker.done) pthread_cond_wait(&forker.cv, &forker.mu);
    pthread_mutex_unlock(&forker.mu);
}

/* The hook runs inside the count of the block that passes a batch, so the
 * child must see that block counted (malloc side) or gone (free side). */
static void *publisher_main(void *arg) {
    long long base = *(long long *)arg;
    enum { N = 200 };
    static void *blocks[N];
    void *probe = zm_malloc(SMALL);
    long long one = (long long)zt_expected_size(probe, SMALL);
    zm_free(probe);
    long long held = 0;
    int n = 0;
    atomic_store(&hook_armed, 1);
    while (n < N && atomic_load(&hook_armed)) {
        forker.expected = base + held + one;
        blocks[n] = zm_malloc(SMALL);
        held += (long long)zt_expected_size(blocks[n++], SMALL);
    }
    int published_on_malloc = !atomic_load(&hook_armed);
    int rc_malloc = forker.child_rc;
    atomic_store(&hook_armed, 1);
    for (int i = 0; i < n && atomic_load(&hook_armed); i++) {
        forker.expected = base + held - one;
        held -= (long long)zt_expected_size(blocks[i], SMALL);
        zm_free(blocks[i]);
        blocks[i] = NULL;
    }
    int published_on_free = !atomic_load(&hook_armed);
    atomic_store(&hook_armed, 0);
    int rc_free = forker.child_rc;
    for (int i = 0; i < n; i++) zm_free(blocks[i]);
    /* cmocka's asserts belong to the main thread: report from there. */
    static int result[4];
    result[0] = published_on_malloc;
    result[1] = published_on_free;
    result[2] = rc_malloc;
    result[3] = rc_free;
    return result;
}

static void test_fork_inside_publish(void **state) {
    (void)state;
    pthread_t f, w;
    pthread_create(&f, NULL, forker_main, NULL);
    long long base = (long long)zm_used_memory();
    zm__test_publish_hook = fork_in_publish;
    pthread_create(&w, NULL, publisher_main, &base);
    int *result;
    pthread_join(w, (void **)&result);
    zm__test_publish_hook = NULL;
    pthread_mutex_lock(&forker.mu);
    forker.request = -1;
    pthread_cond_broadcast(&forker.cv);
    pthread_mutex_unlock(&forker.mu);
    pthread_join(f, NULL);
    assert_true(result[0]); /* a publish happened on the malloc side */
#ifdef ZT_ALLOCATOR_COUNTS
    assert_false(result[1]); /* frees never publish: the allocator counts them */
#else
    assert_true(result[1]); /* and on the free side */
#endif
    assert_int_equal(result[2], 0); /* each child saw the exact count */
    assert_int_equal(result[3], 0);
    assert_int_equal(zt_used_since((size_t)base), 0);
}
#else
static void test_fork_inside_publish(void **state) {
    (void)state;
    zt_skip("needs the ZMALLOC_TESTING publish hook");
}
#endif

/* ---- 2. first count in the last round of TSD destructors --------------- */
static pthread_key_t late_key;
static void *late_blocks[8];
static int late_index;

static void late_destructor(void *arg) {
    intptr_t round = (intptr_t)arg;
    if (round < PTHREAD_DESTRUCTOR_ITERATIONS) {
        pthread_setspecific(late_key, (void *)(round + 1)); /* another round */
        return;
    }
    late_blocks[late_index] = zm_malloc(100); /* the thread's first zmalloc call */
}

static void *late_thread(void *arg) {
    (void)arg;
    pthread_setspecific(late_key, (void *)(intptr_t)1);
    return NULL;
}

static void *normal_thread(void *arg) {
    *(void **)arg = zm_malloc(100);
    return NULL;
}

/* A thread that keeps one block of 100 bytes in *kept, after a late one
 * (round r): the figure must then be *expect plus that block. 0 if not. */
static int normal_round(int r, void **kept, size_t base, long long *expect) {
    pthread_t t;
    pthread_create(&t, NULL, normal_thread, kept);
    pthread_join(t, NULL);
    *expect += (long long)zt_expected_size(*kept, 100);
    if (zt_used_since(base) == *expect) return 1;
    fprintf(stderr, "round %d: used %+lld, expected %+lld\n", r, zt_used_since(base), *expect);
    return 0;
}

/* In a child: a hang (the registry looping on itself) shows as SIGALRM. */
static int late_rounds(void *arg) {
    (void)arg;
    size_t base = zm_used_memory();
    long long expect = 0;
    void *normal[4] = {0};
    for (int r = 0; r < 4; r++) {
        pthread_t t;
        late_index = r;
        pthread_create(&t, NULL, late_thread, NULL);
        pthread_join(t, NULL);
        if (!late_blocks[r]) return 2;
        expect += (long long)zt_expected_size(late_blocks[r], 100);
        /* The next thread most likely reuses the late one's stack and TLS. */
        if (!normal_round(r, &normal[r], base, &expect)) return 1;
    }
    for (int r = 0; r < 4; r++) {
        zm_free(late_blocks[r]);
        zm_free(normal[r]);
    }
    return zt_used_since(base) == 0 ? 0 : 3;
}

/* Runs a late-thread case in a child, with the destructor key it needs. */
static void run_late_case(int (*late_case)(void *)) {
#if defined(__SANITIZE_THREAD__)
    zt_skip("TSan's own malloc crashes when called in the last round of TSD destructors");
#endif
    assert_int_equal(pthread_key_create(&late_key, late_destructor), 0);
    assert_int_equal(zt_fork_run(late_case, NULL, 60), 0);
}

static void test_first_count_in_last_destructor_round(void **state) {
    (void)state;
    run_late_case(late_rounds);
}

/* A late thread whose first and only calls free what they allocate
 * (zfree(zmalloc(32)) in the last round of destructors), and no reader
 * before the next thread takes its stack and TLS: nothing may stay counted.
 * (Where the allocator counts, the late slot's figure was the one last
 * read, the +32 of its registration.) */
static void late_pair_destructor(void *arg) {
    intptr_t round = (intptr_t)arg;
    if (round < PTHREAD_DESTRUCTOR_ITERATIONS) {
        pthread_setspecific(late_key, (void *)(round + 1));
        return;
    }
    zm_free(zm_malloc(32));
}

static int late_pairs(void *arg) {
    (void)arg;
    pthread_key_t key;
    if (pthread_key_create(&key, late_pair_destructor) != 0) return 4;
    late_key = key;
    size_t base = zm_used_memory();
    long long expect = 0;
    void *normal[4] = {0};
    for (int r = 0; r < 4; r++) {
        pthread_t t;
        pthread_create(&t, NULL, late_thread, NULL);
        pthread_join(t, NULL);
        /* The next thread most likely reuses the late one's stack and TLS;
         * no reader ran in between. */
        if (!normal_round(r, &normal[r], base, &expect)) return 1;
    }
    for (int r = 0; r < 4; r++) zm_free(normal[r]);
    return zt_used_since(base) == 0 ? 0 : 3;
}

static void test_last_round_pair_leaves_nothing(void **state) {
    (void)state;
    run_late_case(late_pairs);
}

/* The same late thread on a stack of the test's own, unmapped once it is
 * joined: its TLS (at the top of that stack) is gone, and readers must
 * neither fault on it nor lose its block. */
static int late_on_unmapped_stack(void *arg) {
    (void)arg;
    size_t base = zm_used_memory();
    size_t stack_size = (size_t)1 << 20;
    void *stack = mmap(NULL, stack_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (stack == MAP_FAILED) return 2;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstack(&attr, stack, stack_size);
    pthread_t t;
    late_index = 0;
    late_blocks[0] = NULL;
    if (pthread_create(&t, &attr, late_thread, NULL) != 0) return 2;
    pthread_join(t, NULL);
    pthread_attr_destroy(&attr);
    if (!late_blocks[0]) return 2;
    munmap(stack, stack_size);
    long long expect = (long long)zt_expected_size(late_blocks[0], 100);
    if (zt_used_since(base) != expect) {
        fprintf(stderr, "used %+lld, expected %+lld\n", zt_used_since(base), expect);
        return 1;
    }
    zm_free(late_blocks[0]);
    return zt_used_since(base) == 0 ? 0 : 3;
}

static void test_late_thread_stack_unmapped(void **state) {
    (void)state;
    run_late_case(late_on_unmapped_stack);
}

/* ---- 4. the glibc probe leaves malloc's thresholds alone ---------------- */
#if defined(ZM_TEST_BACKEND_libc) && defined(__GLIBC__) && !defined(ZT_SANITIZED)
#include <malloc.h>
/* glibc mmaps a request above its mmap threshold (128 KiB until a free of an
 * mmapped chunk raises it): such a request moves hblkhd by its size. */
static int comes_from_mmap(size_t size) {
    size_t before = mallinfo2().hblkhd;
    void *p = malloc(size);
    __asm__ volatile("" : : "r"(p) : "memory"); /* or gcc drops the pair */
    size_t after = mallinfo2().hblkhd;
    free(p);
    return after >= before + size;
}
static void test_probe_keeps_mmap_threshold(void **state) {
    (void)state;
    if (zt_under_valgrind()) zt_skip("valgrind's malloc has no mmap threshold");
    /* This process has run zmalloc's load-time probe. Each free of an mmapped
     * chunk raises the threshold to that chunk's size, so go upwards. */
    assert_true(comes_from_mmap((size_t)200 << 10));
    assert_true(comes_from_mmap((size_t)1 << 20));
    assert_true(comes_from_mmap((size_t)2 << 20));
}
#else
static void test_probe_keeps_mmap_threshold(void **state) {
    (void)state;
    zt_skip("glibc's own malloc only");
}
#endif

/* ---- 5. over the limit, requests that do not grow always pass ---------- */
static size_t oom_calls, oom_last;
static void counting_oom(size_t size) {
    oom_calls++;
    oom_last = size;
}

static void test_shrink_over_limit(void **state) {
    (void)state;
    oom_calls = 0;
    zm_set_oom_handler(counting_oom);
    size_t base = zm_used_memory();
    char *buf = zm_malloc(100000);
    memset(buf, 5, 100000);
    zm_set_limit(base + 1); /* already far over it, and still after the shrinks */
    char *small = zm_try_realloc(buf, 10);
    assert_non_null(small);
    assert_int_equal(small[9], 5);
    char *smaller = zm_realloc(small, 5);
    assert_non_null(smaller);
    void *zero = zm_try_malloc(0);
    assert_non_null(zero);
    assert_null(zm_try_malloc(1)); /* growth is still refused */
    assert_int_equal(oom_calls, 0);
    zm_free(zero);
    zm_free(smaller);
    zm_set_limit(0);
    zm_set_oom_handler(NULL);
    assert_int_equal(zt_used_since(base), 0);
}

/* ---- 6. a single allocation of 64 KiB or more is always in the peak ----- */
struct drift_arg {
    pthread_barrier_t *ready, *go;
    int sign;
};

/* Leaves this thread's unpublished drift near -60 KiB (sign < 0) or
 * +60 KiB (sign > 0), then waits. */
static void *drifting_thread(void *arg) {
    struct drift_arg *d = arg;
    enum { N = 130 };
    void *b[N];
    for (int i = 0; i < N; i++) b[i] = zm_malloc(SMALL); /* publishes near +64 KiB */
    int keep = d->sign < 0 ? 10 : 70;
    for (int i = keep; i < N; i++) zm_free(b[i]);
    pthread_barrier_wait(d->ready);
    pthread_barrier_wait(d->go);
    for (int i = 0; i < keep; i++) zm_free(b[i]);
    return NULL;
}

static void test_large_allocation_always_in_peak(void **state) {
    (void)state;
    pthread_barrier_t ready, go;
    pthread_barrier_init(&ready, NULL, 4);
    pthread_barrier_init(&go, NULL, 4);
    struct drift_arg args[3] = {{&ready, &go, -1}, {&ready, &go, -1}, {&ready, &go, 1}};
    pthread_t t[3];
    for (int i = 0; i < 3; i++) pthread_create(&t[i], NULL, drifting_thread, &args[i]);
    pthread_barrier_wait(&ready);
    /* This thread, too, with a negative drift. */
    enum { N = 130 };
    void *b[N];
    for (int i = 0; i < N; i++) b[i] = zm_malloc(SMALL);
    for (int i = 10; i < N; i++) zm_free(b[i]);
    zm_reset_peak();
    size_t before = zm_used_memory();
    void *big = zm_malloc(65536);
    size_t expect = before + zt_expected_size(big, 65536);
    assert_int_equal(zm_used_memory_peak(), expect);
    zm_free(big);
    for (int i = 0; i < 10; i++) zm_free(b[i]);
    pthread_barrier_wait(&go);
    for (int i = 0; i < 3; i++) pthread_join(t[i], NULL);
    pthread_barrier_destroy(&ready);
    pthread_barrier_destroy(&go);
}

/* ---- 7. zmalloc_no_tcache calls the OOM handler ------------------------ */
static void test_no_tcache_failure_reaches_oom_handler(void **state) {
    (void)state;
    oom_calls = 0;
    zm_set_oom_handler(counting_oom);
    errno = 0;
    assert_null(zmalloc_no_tcache(zt_opaque(SIZE_MAX)));
    assert_int_equal(errno, ENOMEM);
    assert_int_equal(oom_calls, 1);
    assert_int_equal(oom_last, SIZE_MAX);
    zm_set_oom_handler(NULL);
}

/* ---- readers see only figures that happened ----------------------------
 * One thread keeps between 0 and 24 blocks of 4,000 bytes; every reading of
 * another thread must lie in that range, and so must the peak. */
enum { RACE_BLOCKS = 24, RACE_SIZE = 4000 };
static atomic_int race_stop;

static void *race_mutator(void *arg) {
    void **b = arg;
    while (!atomic_load_explicit(&race_stop, memory_order_relaxed)) {
        for (int i = 0; i < RACE_BLOCKS; i++) b[i] = zm_malloc(RACE_SIZE);
        for (int i = 0; i < RACE_BLOCKS; i++) zm_free(b[i]);
    }
    return NULL;
}

static void test_reader_never_sees_a_figure_that_did_not_happen(void **state) {
    (void)state;
    static void *blocks[RACE_BLOCKS];
    void *probe = zm_malloc(RACE_SIZE);
    size_t one = zt_expected_size(probe, RACE_SIZE);
    zm_free(probe);
    size_t base = zm_used_memory();
    zm_reset_peak();
    size_t hi = base + RACE_BLOCKS * one;
    atomic_store(&race_stop, 0);
    pthread_t t;
    pthread_create(&t, NULL, race_mutator, blocks);
    long reads = zt_slow() ? 20000 : 2000000, bad = 0;
    size_t worst = base;
    for (long i = 0; i < reads; i++) {
        size_t v = zm_used_memory();
        if (v < base || v > hi) bad++;
        if (v > worst) worst = v;
    }
    atomic_store(&race_stop, 1);
    pthread_join(t, NULL);
    if (bad) fprintf(stderr, "%ld of %ld reads out of [%zu, %zu]; highest %zu\n", bad, reads, base, hi, worst);
    assert_int_equal(bad, 0);
    assert_true(zm_used_memory_peak() <= hi);
    assert_int_equal(zm_used_memory(), base);
}

/* ---- a thread's first zmalloc calls count nothing; then it frees --------
 * A thread that first asks for allocator statistics, purges or asks a
 * block's size, then frees blocks that another thread allocated: the frees
 * count, exactly. (With the private jemalloc such calls set up jemalloc's
 * thread data in full, which opened zm_free's copy of jemalloc's free fast
 * path to a thread without a slot, whose frees then went uncounted.) */
enum { QUIET_BLOCKS = 8 };
struct quiet_case {
    int kind;
    void *blocks[QUIET_BLOCKS];
};

static void *quiet_then_free(void *arg) {
    struct quiet_case *c = arg;
    size_t a;
    switch (c->kind) {
    case 0: (void)zm_get_allocator_info(&a, NULL, NULL, NULL, NULL, NULL); break;
    case 1: (void)zm_purge(); break;
    default: (void)zm_size(c->blocks[0]); break;
    }
    for (int i = 0; i < QUIET_BLOCKS; i++) zm_free(c->blocks[i]);
    return NULL;
}

static void test_frees_after_quiet_first_calls(void **state) {
    (void)state;
    for (int kind = 0; kind < 3; kind++) {
        struct quiet_case c = {.kind = kind};
        size_t base = zm_used_memory(), held = 0;
        for (int i = 0; i < QUIET_BLOCKS; i++) {
            c.blocks[i] = zm_malloc(100 + 300 * (size_t)i);
            held += zt_expected_size(c.blocks[i], 100 + 300 * (size_t)i);
        }
        assert_int_equal(zm_used_memory(), base + held);
        pthread_t t;
        assert_int_equal(pthread_create(&t, NULL, quiet_then_free, &c), 0);
        assert_int_equal(pthread_join(t, NULL), 0);
        if (zm_used_memory() != base) fail_msg("first call kind %d: used %zu, expected %zu", kind, zm_used_memory(), base);
    }
}

/* ---- tests in a child with a library preloaded -------------------------
 * Some defects show only with another library in front of the ones this
 * program links. Such a test runs this program again, as `test_regressions
 * TEST`, with LD_PRELOAD=LIB and ZT_PRELOADED=TEST, and passes if the child
 * passed; in the child, preloaded_child(TEST) is true and the test checks. */
static inline int preloaded_child(const char *test) {
    const char *e = getenv("ZT_PRELOADED");
    return e && strcmp(e, test) == 0;
}

static inline void run_preloaded(const char *test, const char *lib) {
    if (zt_under_valgrind() || zt_under_emulator())
        zt_skip("re-runs this program natively with a library preloaded");
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        setenv("LD_PRELOAD", lib, 1);
        setenv("ZT_PRELOADED", test, 1);
        unsetenv("ZMALLOC_FAST_PATHS"); /* the test is about the load-time checks */
        alarm(120);                     /* a hang shows as SIGALRM */
        execl("/proc/self/exe", "test_regressions", test, (char *)NULL);
        _exit(126);
    }
    assert_true(pid > 0);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (WIFSIGNALED(status))
        fail_msg("%s with %s preloaded: killed by signal %d", test, lib, WTERMSIG(status));
    if (WEXITSTATUS(status) == 77) zt_skip("the preloaded child skipped");
    if (WEXITSTATUS(status) != 0)
        fail_msg("%s with %s preloaded: exit status %d (its output is above)", test, lib,
                 WEXITSTATUS(status));
}

/* ---- tcmalloc's debug allocator: sizes from real blocks -----------------
 * libtcmalloc_minimal_debug.so.4 answers tc_nallocx() with the release
 * build's class sizes, but gives every block exactly its request and guards
 * the bytes past it. The size table came from tc_nallocx() alone: 100 bytes
 * counted as 112 (12 left counted after the free), zmalloc_usable said 112,
 * and writing that many aborted in the debug allocator ("memory stomping"). */
#if defined(ZM_TEST_BACKEND_tcmalloc) && !defined(ZM_SIZE_HEADER) && !defined(ZT_SANITIZED)
#include <dlfcn.h>
#include <gperftools/tcmalloc.h>

/* The file tc_malloc comes from in this process. */
static const char *tcmalloc_file(void) {
    Dl_info info;
    if (!dladdr((const void *)&tc_malloc, &info) || !info.dli_fname) return "";
    return info.dli_fname;
}

static void test_tcmalloc_debug_sizes(void **state) {
    (void)state;
    static const char test[] = "test_tcmalloc_debug_sizes";
    if (!preloaded_child(test)) {
        /* The debug build beside the library linked: libtcmalloc_minimal.so.4
         * -> libtcmalloc_minimal_debug.so.4. */
        const char *linked = tcmalloc_file(), *so = strstr(linked, ".so");
        char lib[4096];
        int n = snprintf(lib, sizeof lib, "%.*s_debug%s", so ? (int)(so - linked) : 0, linked,
                         so ? so : "");
        if (!so || n <= 0 || (size_t)n >= sizeof lib || access(lib, R_OK) != 0)
            fail_msg("tcmalloc's debug allocator is not installed beside %s (looked for %s): "
                     "apt-get install libtcmalloc-minimal4, which ships it",
                     linked, lib);
        run_preloaded(test, lib);
        return;
    }
    if (!strstr(tcmalloc_file(), "_debug"))
        fail_msg("tc_malloc is %s's, not the debug allocator's", tcmalloc_file());
    static const size_t sizes[] = {100, 1, 1000, 5000, 100000};
    size_t base = zm_used_memory();
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        zm_free(zm_malloc(sizes[i]));
        if (zm_used_memory() != base)
            fail_msg("zmalloc(%zu); zfree(): used %zu, expected %zu", sizes[i], zm_used_memory(),
                     base);
        size_t usable = 0;
        char *p = zm_malloc_usable(sizes[i], &usable);
        assert_non_null(p);
        if (usable != tc_malloc_size(p))
            fail_msg("zmalloc_usable(%zu): usable %zu, tcmalloc says %zu", sizes[i], usable,
                     tc_malloc_size(p));
        assert_int_equal(zm_used_memory(), base + usable);
        memset(p, 7, usable); /* the debug allocator checks the bytes past the block at its free */
        zm_free(p);
        for (int k = 0; k < 100; k++) zm_free(zm_malloc(sizes[i]));
        assert_int_equal(zm_used_memory(), base);
    }
}
#else
static void test_tcmalloc_debug_sizes(void **state) {
    (void)state;
    zt_skip("the tcmalloc backend only (no size header, no sanitizer)");
}
#endif

/* ---- a glibc whose tcache counts run downwards --------------------------
 * A glibc that keeps the 0x290-byte thread cache but stores free slots
 * where 2.36 stores counts (tests/glibc_counts_down.c models it, preloaded)
 * passed the copies' load-time trial: zmalloc then took a bin's slots for
 * blocks and popped its NULL head at the third zmalloc(100) in a row. The
 * trial must see the counts run the other way and leave the copies off. */
#ifdef ZT_GLIBC_MODEL
static void test_glibc_counts_run_downwards(void **state) {
    (void)state;
    static const char test[] = "test_glibc_counts_run_downwards";
    if (!preloaded_child(test)) {
        run_preloaded(test, ZT_GLIBC_MODEL);
        return;
    }
    /* Blocks held several at a time in each bin size, then freed. */
    enum { HELD = 20 };
    static const size_t sizes[] = {0, 24, 100, 200, 1000, 1032, 5000};
    size_t base = zm_used_memory();
    for (int round = 0; round < 50; round++) {
        for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
            void *p[HELD];
            size_t held = 0;
            for (int k = 0; k < HELD; k++) {
                p[k] = zm_malloc(sizes[i]);
                assert_non_null(p[k]);
                held += zt_expected_size(p[k], sizes[i]);
            }
            if (zm_used_memory() != base + held)
                fail_msg("%d blocks of %zu: used %zu, expected %zu", HELD, sizes[i],
                         zm_used_memory(), base + held);
            for (int k = 0; k < HELD; k++) zm_free(p[k]);
            assert_int_equal(zm_used_memory(), base);
        }
    }
    for (int i = 0; i < 1000; i++) zm_free(zm_malloc(100));
    assert_int_equal(zm_used_memory(), base);
    char report[1024];
    zm_fast_paths(report, sizeof report);
    if (strstr(report, "left out of this build")) zt_skip("fast paths left out of this build");
    if (!strstr(report, "glibc-tcache-copies: off (trial disagreed: "))
        fail_msg("the copies did not refuse the model: %s", report);
    fprintf(stderr, "fast paths under the model: %s\n", report);
}
#else
static void test_glibc_counts_run_downwards(void **state) {
    (void)state;
    zt_skip("the libc backend on x86-64 glibc only, without sanitizers (the copies' trial)");
}
#endif

int main(int argc, char **argv) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_probe_keeps_mmap_threshold, zt_reset_settings),
        cmocka_unit_test_teardown(test_fork_inside_publish, zt_reset_settings),
        cmocka_unit_test_teardown(test_first_count_in_last_destructor_round, zt_reset_settings),
        cmocka_unit_test_teardown(test_late_thread_stack_unmapped, zt_reset_settings),
        cmocka_unit_test_teardown(test_last_round_pair_leaves_nothing, zt_reset_settings),
        cmocka_unit_test_teardown(test_shrink_over_limit, zt_reset_settings),
        cmocka_unit_test_teardown(test_large_allocation_always_in_peak, zt_reset_settings),
        cmocka_unit_test_teardown(test_no_tcache_failure_reaches_oom_handler, zt_reset_settings),
        cmocka_unit_test_teardown(test_reader_never_sees_a_figure_that_did_not_happen, zt_reset_settings),
        cmocka_unit_test_teardown(test_frees_after_quiet_first_calls, zt_reset_settings),
        cmocka_unit_test_teardown(test_tcmalloc_debug_sizes, zt_reset_settings),
        cmocka_unit_test_teardown(test_glibc_counts_run_downwards, zt_reset_settings),
    };
    return zt_run(tests, argc, argv, NULL, NULL);
}
