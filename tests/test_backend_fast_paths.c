/* The backend's fast paths (src/fast_path.h): each copy on exactly where the
 * allocator is a release verified here and off, with its reason, elsewhere
 * (zm_fast_paths()); each agreeing with the allocator block for block, under
 * glibc's tunables too. Built against whichever backend this tree is
 * configured for. */
#include "zt_backend.h"


#if (defined(ZM_TEST_BACKEND_libc) && defined(ZM_GLIBC_TCACHE) ||                              \
     defined(ZM_TEST_BACKEND_tcmalloc) && defined(ZM_TC_FAST)) &&                              \
    !defined(ZM_SIZE_HEADER)
#include <signal.h>

#ifdef ZM_TEST_BACKEND_tcmalloc
#define OWN_MALLOC tc_malloc
#define OWN_FREE tc_free
#else
#define OWN_MALLOC malloc
#define OWN_FREE free
#endif

/* The copies of the allocator's thread-cache paths (glibc's tcache,
 * tcmalloc's free lists) behave as the allocator's own, judged by the
 * allocator: after it frees a block, zm_malloc of that size hands out that
 * very block (both caches are last in, first out); after zm_free pushes two
 * blocks, its malloc pops both, in that order, which it can only do if the
 * copy wrote the list link its way. Every count is the allocator's own
 * size. Past a list's limit, and for sizes the copies leave alone, the
 * counts stay exact. */
/* k blocks of `size` held at once, past every list limit, then freed:
 * counted as the allocator's own sizes say. */
static void many_counted_exactly(size_t size, int k) {
    static void *b[2000];
    assert_true(k <= 2000);
    size_t base = zm_used_memory(), held = 0;
    for (int i = 0; i < k; i++) held += OWN_SIZE(b[i] = zm_malloc(size));
    assert_int_equal(zm_used_memory(), base + held);
    for (int i = 0; i < k; i++) zm_free(b[i]);
    assert_int_equal(zm_used_memory(), base);
}

static void copies_agree(size_t largest) {
    for (size_t n = 0; n <= largest; n += n < 1100 ? 1 : 4093) {
        OWN_FREE(OWN_MALLOC(n)); /* the list now holds a block: the next malloc pops it */
        void *g = OWN_MALLOC(n);
        uintptr_t freed = (uintptr_t)g;
        OWN_FREE(g);
        size_t base = zm_used_memory();
        void *p1 = zm_malloc(n);
        assert_int_equal((uintptr_t)p1, freed);
        void *p2 = zm_malloc(n);
        assert_non_null(p2);
        assert_int_equal(zm_used_memory(), base + OWN_SIZE(p1) + OWN_SIZE(p2));
        zm_free(p2);
        zm_free(p1);
        assert_int_equal(zm_used_memory(), base);
        void *q1 = OWN_MALLOC(n), *q2 = OWN_MALLOC(n);
        assert_ptr_equal(q1, p1);
        assert_ptr_equal(q2, p2);
        OWN_FREE(q2);
        OWN_FREE(q1);
    }
    many_counted_exactly(200, 2000);
}
#endif

#if defined(ZM_TEST_BACKEND_libc) && defined(ZM_GLIBC_TCACHE) && !defined(ZM_SIZE_HEADER)
/* A double free still stops the program in glibc's own check. */
static int free_twice(void *arg) {
    (void)arg;
    void *p = zm_malloc(64);
    zm_free(p);
    zm_free(p); /* glibc's tcache check aborts: "double free detected" */
    return 0;
}

static void glibc_double_free_caught(void) {
    assert_int_equal(zt_fork_run(free_twice, NULL, 10), 100 + SIGABRT);
}
#endif

/* What zm_fast_paths() says of one fast path: 1 "on" (or "on (remark)", on in
 * part), 0 "off (reason)" with the reason in why, -1 not listed. */
static inline int fp_state(const char *name, char *why, size_t len) {
    char report[2048], key[64];
    assert_true(zm_fast_paths(report, sizeof report) < sizeof report);
    snprintf(key, sizeof key, "%s: ", name);
    const char *at = strstr(report, key);
    if (!at) return -1;
    at += strlen(key);
    if (strncmp(at, "on", 2) == 0 && (at[2] == '\0' || at[2] == ';' || at[2] == ' ')) return 1;
    assert_int_equal(strncmp(at, "off (", 5), 0);
    const char *end = strstr(at, ")");
    snprintf(why, len, "%.*s", (int)(end - at - 5), at + 5);
    return 0;
}

/* ZMALLOC_FAST_PATHS=0 in this run's environment (one CI configuration). */
static inline int fp_switched_off(void) {
    const char *s = getenv("ZMALLOC_FAST_PATHS");
    return s && strcmp(s, "0") == 0;
}

/* A copy the test expects on: it must be, and be reported so. One it
 * expects off (switched off, or an allocator release nobody verified) must
 * be reported off with that reason: a silent fallback would keep every test
 * green and double the cost, and a copy on where nobody verified the
 * release is the crash this gate exists for. Returns whether it is on. */
static inline int fp_expect(const char *name, int verified) {
    char why[256] = "";
    int st = fp_state(name, why, sizeof why);
    if (fp_switched_off()) {
        assert_int_equal(st, 0);
        assert_string_equal(why, "off by ZMALLOC_FAST_PATHS");
        return 0;
    }
    if (!verified) {
        assert_int_equal(st, 0);
        if (!strstr(why, "not verified") && !strstr(why, "build id differs") &&
            !strstr(why, "build-time check") && !strstr(why, "not written for") &&
            !strstr(why, "'s header, running"))
            fail_msg("%s off for an unexpected reason: %s", name, why);
        return 0;
    }
    if (st != 1) fail_msg("%s is off on a verified release: %s", name, why);
    return 1;
}

/* glibc's tunables change its thread cache: with glibc.malloc.tcache_max=100
 * it caches requests up to 104 bytes (bins 0-5), with tcache_count=3 three
 * blocks a bin. The copies follow (found at load, not assumed), and every
 * size is still counted as malloc_usable_size() says. Checked in a child
 * run with those tunables: glibc reads them at start-up only. */
#if defined(ZM_TEST_BACKEND_libc) && defined(ZM_GLIBC_TCACHE) && !defined(ZM_SIZE_HEADER)
/* This test again, in a new process with the tunables set. */
static int rerun_with_tunables(void *tunables) {
    setenv("GLIBC_TUNABLES", tunables, 1);
    execl("/proc/self/exe", "test_backend", "test_glibc_tunables", (char *)NULL);
    return 127;
}
#endif

static void test_glibc_tunables(void **state) {
    (void)state;
#if defined(ZM_TEST_BACKEND_libc) && defined(ZM_GLIBC_TCACHE) && !defined(ZM_SIZE_HEADER)
    if (libc_replaced()) skip(); /* no glibc malloc to follow */
    static const char tunables[] = "glibc.malloc.tcache_max=100:glibc.malloc.tcache_count=3";
    const char *mine = getenv("GLIBC_TUNABLES");
    if (!mine || strcmp(mine, tunables) != 0) {
        assert_int_equal(zt_fork_run(rerun_with_tunables, (void *)tunables, 60), 0);
        return;
    }
    /* The copies follow the tunables, where they run (not switched off, a
     * verified glibc: test_fast_paths_enabled checks which). */
    int on = fp_state("glibc-tcache-copies", NULL, 0) == 1;
    if (on) {
        assert_int_equal(zm__gtc.bins | zm__gtc.slot_bins, 6);
        assert_int_equal(zm__gtc.bound | zm__gtc.slot_bound, 105);
        assert_int_equal(zm__gtc.count, 3);
    }
    for (size_t n = 0; n <= 1100; n++) {
        size_t base = zm_used_memory();
        void *a = zm_malloc(n), *b = zm_malloc(n);
        assert_int_equal(zm_used_memory(), base + malloc_usable_size(a) + malloc_usable_size(b));
        zm_free(b);
        zm_free(a);
        assert_int_equal(zm_used_memory(), base);
        if (n > 104 || !on) continue;
        free(malloc(n));
        void *g = malloc(n);
        free(g);
        void *p = zm_malloc(n);
        assert_ptr_equal(p, g);
        zm_free(p);
    }
    many_counted_exactly(40, 10);
#else
    skip(); /* the libc backend's tcache copies are not in this build */
#endif
}

#if defined(ZM_TEST_BACKEND_mimalloc) && MI_MALLOC_VERSION >= 300 && !defined(ZM_SIZE_HEADER)
#include <pthread.h>

enum { MI3_N = 230 };
/* Blocks of every kind of page: small, medium, large, huge (1 byte to 4
 * MiB). */
static void *mi3_alloc(void *out) {
    void **b = out;
    for (int i = 0; i < MI3_N; i++) b[i] = zm_malloc((size_t)i + ((size_t)1 << (i % 23)));
    return NULL;
}

/* Each zm_free takes off exactly mi_usable_size(); with the read on, the
 * read gives that size itself. */
static void mi3_free_all(void **b, int on) {
    for (int i = 0; i < MI3_N; i++) {
        assert_non_null(b[i]);
        size_t size = mi_usable_size(b[i]), base = zm_used_memory();
        if (on) assert_int_equal(zm__mi_page_usable(b[i]), size);
        zm_free(b[i]);
        assert_int_equal(zm_used_memory(), base - size);
    }
}

/* mimalloc 3's page read, on blocks of this thread, of a thread that has
 * exited (its pages abandoned), and aligned ones: a read gives
 * mi_usable_size() or declines (0: an aligned block, where the size depends
 * on where in its block p is), and zm_free counts exactly either way. */
static void mi3_reads_agree(int on) {
    void *mine[MI3_N], *theirs[MI3_N];
    mi3_alloc(mine);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, mi3_alloc, theirs), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    mi3_free_all(mine, on);
    mi3_free_all(theirs, on);
    static const size_t aligns[] = {16, 64, 4096, (size_t)1 << 16, (size_t)1 << 22};
    for (size_t i = 0; i < sizeof aligns / sizeof aligns[0]; i++) {
        void *at = mi_malloc_aligned_at(200, aligns[i], 8);
        size_t n = at && on ? zm__mi_page_usable(at) : 0;
        assert_true(n == 0 || n == mi_usable_size(at));
        mi_free(at);
        for (size_t size = 24; size < 200000; size *= 7) {
            size_t base = zm_used_memory();
            void *p = zm_malloc_aligned(aligns[i], size);
            assert_non_null(p);
            n = on ? zm__mi_page_usable(p) : 0;
            assert_true(n == 0 || n == mi_usable_size(p));
            assert_int_equal(zm_used_memory(), base + mi_usable_size(p));
            zm_free(p);
            assert_int_equal(zm_used_memory(), base);
        }
    }
}
#endif

#if defined(ZM_TEST_BACKEND_mimalloc) && !defined(ZM_SIZE_HEADER)
/* Blocks of every word count up to 1 KiB, popped (by the malloc copy where
 * it is on) and pushed back (by the free copy, until a page's last block):
 * each counted exactly as mi_usable_size() says. */
static void mi_pops_and_pushes_exact(void) {
    for (size_t n = 8; n <= 1024; n += 8) {
        enum { K = 16 };
        void *b[K];
        size_t base = zm_used_memory(), held = 0;
        for (int i = 0; i < K; i++) {
            b[i] = zm_malloc(n);
            assert_non_null(b[i]);
            held += mi_usable_size(b[i]);
        }
        assert_int_equal(zm_used_memory(), base + held);
        for (int i = 0; i < K; i++) {
            held -= mi_usable_size(b[i]);
            zm_free(b[i]);
            assert_int_equal(zm_used_memory(), base + held);
        }
    }
}
#endif

/* The fast paths that the load-time checks switch on are on wherever the
 * allocator really is a release they were verified on, and off, with the
 * reason reported, everywhere else. */
static void test_fast_paths_enabled(void **state) {
    (void)state;
#if defined(ZM_TEST_BACKEND_libc) && defined(ZM_GLIBC_CHUNKS)
    extern int zm__glibc_chunks_ok;
    assert_int_equal(zm__glibc_chunks_ok, !libc_replaced());
    if (!libc_replaced()) {
        assert_int_equal(fp_state("glibc-heap-chunks", NULL, 0), 1);
        assert_int_equal(fp_state("glibc-mmap-chunks", NULL, 0), 1);
    }
#if defined(ZM_GLIBC_TCACHE)
    /* zm_malloc's and zm_free's copies of glibc's tcache paths are on
     * wherever glibc's own malloc is, in the releases verified
     * (glibc_tcache.h): Debian 12's 2.36 and Debian 13's 2.41 in the layout
     * of held counts (7 a bin), unstable's 2.43 in that of free slots (16). */
    extern uintptr_t zm__glibc_inline_floor;
    const char *v = gnu_get_libc_version();
    int slots = strcmp(v, "2.43") == 0;
    int verified = strcmp(v, "2.36") == 0 || strcmp(v, "2.41") == 0 || slots;
    int on = !libc_replaced() && fp_expect("glibc-tcache-copies", verified);
    assert_int_equal(zm__gtc.bound, on && !slots ? 1033 : 0);
    assert_int_equal(zm__gtc.slot_bound, on && slots ? 1033 : 0);
    assert_int_equal(zm__glibc_inline_floor, on ? 1 : UINTPTR_MAX);
    if (on && !getenv("GLIBC_TUNABLES")) assert_int_equal(zm__gtc.count, slots ? 16 : 7);
#ifndef ZM_SIZE_HEADER
    if (on) copies_agree(1100);
    if (!libc_replaced()) glibc_double_free_caught();
#endif
#endif
#elif defined(ZM_TEST_BACKEND_jemalloc) && defined(ZM_JE_PRIVATE) && !defined(ZM_SIZE_HEADER)
    extern int zm__je_classes_ok;
    assert_int_equal(zm__je_classes_ok, 1);
    /* The private jemalloc's own counters are the accounting: they exist and
     * move by exactly the block's size at zm_malloc and at zm_free. */
    const volatile uint64_t *a, *d;
    assert_int_equal(zm__be_thread_counters(&a, &d), 0);
    uint64_t a0 = *a, d0 = *d;
    void *p = zm_malloc(100);
    size_t size = sallocx(p, 0);
    assert_int_equal(*a - a0, size);
    zm_free(p);
    assert_int_equal(*d - d0, size);
#if defined(ZM_JE_FAST)
    fp_expect("jemalloc-copies", 1);
#else
    /* The build-time check left them out (another build of jemalloc). */
    fp_expect("jemalloc-copies", 0);
#endif
    /* zm_malloc's and zm_free's copies of jemalloc's fast paths (or jemalloc's
     * own calls, where they are off): every request moves the counters by
     * jemalloc's own size class for it, which zm_malloc_usable reports. */
    {
    for (size_t n = 0; n <= 4200; n++) {
        size_t usable = 0;
        uint64_t before = *a;
        void *q = zm_malloc_usable(n, &usable);
        assert_non_null(q);
        assert_int_equal(*a - before, nallocx(n ? n : 1, 0));
        assert_int_equal(usable, nallocx(n ? n : 1, 0));
        assert_int_equal(sallocx(q, 0), usable);
        before = *d;
        zm_free(q);
        assert_int_equal(*d - before, usable);
    }
    }
#elif defined(ZM_TEST_BACKEND_jemalloc)
    extern int zm__je_classes_ok, zm__je_own_malloc;
    assert_int_equal(zm__je_classes_ok, 1);
    /* jemalloc's malloc/free, not mallocx/dallocx; not under a valgrind tool,
     * which replaces them with its own */
    assert_int_equal(zm__je_own_malloc, !zt_under_valgrind());
    void *p = zm_malloc(100);
    zm_free(p);
    assert_non_null(zm__je_find_deallocated()); /* the free side's counter */
#elif defined(ZM_TEST_BACKEND_tcmalloc) && !defined(ZM_SIZE_HEADER)
    /* A free reads the block's size class from tcmalloc's page cache (on for
     * Debian's builds of gperftools 2.10, 2.16 and 2.18.1: Debian 12, 13 and
     * unstable): every free takes off exactly what tc_malloc_size() says the
     * block holds. */
    extern uintptr_t zm__tc_inline_floor;
    int major = 0, minor = 0;
    const char *patch = NULL;
    tc_version(&major, &minor, &patch);
    int verified = major == 2 && (minor == 10 || minor == 16 ||
                                  (minor == 18 && patch && strcmp(patch, ".1") == 0));
    assert_int_equal(fp_state("tcmalloc-size-table", NULL, 0), 1);
    int cache = fp_expect("tcmalloc-page-cache", verified);
    assert_int_equal(zm__tc_inline_floor, cache ? 1 : UINTPTR_MAX);
#ifdef ZM_TC_FAST
    /* zm_malloc's and zm_free's copies of tcmalloc's fast paths are on
     * (tcmalloc_fast.h), for requests up to 256 KiB. */
    if (fp_expect("tcmalloc-copies", verified)) {
        assert_int_equal(zm__tcf.bound, 256 * 1024 + 1);
        assert_int_equal(zm__tcf.floor, 1);
        copies_agree(256 * 1024);
    }
#endif
    for (size_t n = 0; n <= 300000; n += n < 2048 ? 1 : 4093) {
        size_t base = zm_used_memory();
        void *p = zm_malloc(n);
        assert_non_null(p);
        size_t held = tc_malloc_size(p);
        assert_int_equal(zm_used_memory(), base + held);
        zm_free(p);
        assert_int_equal(zm_used_memory(), base);
    }
#elif defined(ZM_TEST_BACKEND_mimalloc)
    extern size_t zm__mi_bins_max, zm__mi_table_bound;
    assert_true(zm__mi_bins_max >= 128 * 1024);
    assert_int_equal(zm__mi_table_bound, 4097); /* sizes from the table up to 4 KiB */
    assert_int_equal(fp_state("mimalloc-size-table", NULL, 0), 1);
#if MI_MALLOC_VERSION < 300
    /* zm_malloc's copy of mi_malloc's fast path is on (Debian 12's build), and
     * what it hands out is counted exactly as mi_usable_size() says. */
    extern size_t zm__mi_fast_bound;
    int verified = mi_version() == 209; /* Debian 12's mimalloc 2.0.9 */
    fp_expect("mimalloc-page-read", verified);
    int on = fp_expect("mimalloc-copies", verified);
    assert_int_equal(zm__mi_fast_bound, on ? 1025 : 0);
    /* zm_free's copy of mi_free's local path is on with it, and each free
     * takes off exactly what mi_usable_size() said, whether the block goes
     * onto its page's local free list (other blocks still in use) or to
     * mi_free(). */
    extern uintptr_t zm__mi_inline_floor;
    assert_int_equal(zm__mi_inline_floor, on ? 1 : UINTPTR_MAX);
#ifndef ZM_SIZE_HEADER
    mi_pops_and_pushes_exact();
    extern int zm__mi_pages_ok; /* a free reads the size from the block's page */
    assert_int_equal(zm__mi_pages_ok, fp_state("mimalloc-page-read", NULL, 0) == 1);
#endif
#else
    /* mimalloc 3: the page read and the copies of mi_malloc's pop and
     * mi_free's push are on for the builds of Debian 13 (3.0.1) and unstable
     * (3.6.0). */
    int verified = mi_version() == MI_MALLOC_VERSION && (mi_version() == 301 || mi_version() == 30600);
    int on = fp_expect("mimalloc-page-read", verified);
    int copies = fp_expect("mimalloc-copies", verified);
    assert_int_equal(zm__mi3.floor, on ? 1 : UINTPTR_MAX);
    assert_int_equal(zm__mi3.free_floor, copies ? 1 : UINTPTR_MAX);
    assert_int_equal(zm__mi3.fast_bound, copies ? 1025 : 0);
#ifndef ZM_SIZE_HEADER
    mi_pops_and_pushes_exact();
    mi3_reads_agree(on);
#endif
#endif
#ifndef ZM_SIZE_HEADER
    for (size_t n = 0; n <= 1100; n++) {
        size_t base = zm_used_memory(), usable = 0;
        void *p = zm_malloc_usable(n, &usable);
        assert_non_null(p);
        assert_int_equal(usable, mi_usable_size(p));
        assert_int_equal(zm_used_memory(), base + usable);
        zm_free(p);
        assert_int_equal(zm_used_memory(), base);
    }
#endif
#else
    zt_skip("no inline fast path on this backend or under a replaced malloc");
#endif
}

int main(int argc, char **argv) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fast_paths_enabled),
        cmocka_unit_test(test_glibc_tunables),
    };
    return zt_run(tests, argc, argv, NULL, NULL);
}
