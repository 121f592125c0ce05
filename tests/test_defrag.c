/* Active defragmentation and jemalloc's controls (zmalloc.h): on the private
 * jemalloc, moving the blocks zm_defrag_hint() names compacts a fragmented
 * heap, judged by jemalloc's own statistics; elsewhere the hint names
 * nothing and the controls answer ENOENT. */
#include <errno.h>
#include <string.h>

#include "zm_test.h"
#ifdef ZMALLOC_JEMALLOC
#include "zt_jemalloc.h" /* jemalloc itself, to judge by figures zmalloc did not compute */
#endif

#define NBLOCKS 300000
#define FREED_PERCENT 80
#define MAX_PASSES 40

#ifdef HAVE_DEFRAG /* the heap to defragment: only where the hint exists */
static uint64_t rng = 0x9e3779b97f4a7c15u;
static uint64_t next_random(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* Each block holds its index, then bytes that depend on it. */
static void fill(unsigned char *p, size_t n, size_t i) {
    memcpy(p, &i, sizeof i);
    for (size_t k = sizeof i; k < n; k++) p[k] = (unsigned char)(i * 31 + k);
}
static int intact(const unsigned char *p, size_t n, size_t i) {
    size_t got;
    memcpy(&got, p, sizeof got);
    if (got != i) return 0;
    for (size_t k = sizeof i; k < n; k++)
        if (p[k] != (unsigned char)(i * 31 + k)) return 0;
    return 1;
}

#endif

#ifdef ZMALLOC_JEMALLOC
/* jemalloc's figure NAME (bytes), fresh, with this thread's cache flushed so
 * that the blocks it holds count as free. */
static size_t je_stat(const char *name) {
    uint64_t epoch = 1;
    size_t len = sizeof epoch, v = 0;
    assert_int_equal(mallctl("thread.tcache.flush", NULL, NULL, NULL, 0), 0);
    assert_int_equal(mallctl("epoch", &epoch, &len, &epoch, len), 0);
    len = sizeof v;
    assert_int_equal(mallctl(name, &v, &len, NULL, 0), 0);
    return v;
}

static double active_per_allocated(void) {
    assert_int_equal(zm_purge(), 0);
    return (double)je_stat("stats.active") / (double)je_stat("stats.allocated");
}
#endif

#ifdef HAVE_DEFRAG
typedef struct {
    unsigned char *p[NBLOCKS];
    size_t size[NBLOCKS]; /* requested */
    unsigned char moves[NBLOCKS];
    size_t live[NBLOCKS]; /* indices of the live blocks */
    size_t nlive;
} heap_t;

/* 300,000 small blocks of mixed sizes, 80% of them freed at random. */
static void fragment(heap_t *h) {
    static const size_t sizes[] = {24, 40, 64, 100, 200, 320, 500};
    for (size_t i = 0; i < NBLOCKS; i++) {
        h->size[i] = sizes[next_random() % (sizeof sizes / sizeof sizes[0])];
        h->p[i] = zm_malloc(h->size[i]);
        assert_non_null(h->p[i]);
        fill(h->p[i], h->size[i], i);
    }
    static size_t order[NBLOCKS]; /* 2.4 MB: not on the stack (valgrind gives the main thread less) */
    for (size_t i = 0; i < NBLOCKS; i++) order[i] = i;
    for (size_t i = NBLOCKS - 1; i > 0; i--) {
        size_t j = next_random() % (i + 1), t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    size_t nfree = (size_t)NBLOCKS * FREED_PERCENT / 100;
    for (size_t k = 0; k < nfree; k++) {
        zm_free(h->p[order[k]]);
        h->p[order[k]] = NULL;
    }
    h->nlive = 0;
    for (size_t i = 0; i < NBLOCKS; i++)
        if (h->p[i]) h->live[h->nlive++] = i;
}

/* One pass of what Redis's activeDefragAlloc() does to each block. */
static size_t defrag_pass(heap_t *h) {
    size_t moved = 0;
    for (size_t k = 0; k < h->nlive; k++) {
        size_t i = h->live[k];
        if (!zm_defrag_hint(h->p[i])) continue;
        size_t n = zm_size(h->p[i]);
        unsigned char *q = zm_malloc_no_tcache(n);
        assert_non_null(q);
        memcpy(q, h->p[i], n);
        zm_free_no_tcache(h->p[i]);
        h->p[i] = q;
        h->moves[i]++;
        moved++;
    }
    return moved;
}

static size_t named_now(const heap_t *h) {
    size_t n = 0;
    for (size_t k = 0; k < h->nlive; k++) n += zm_defrag_hint(h->p[h->live[k]]) != 0;
    return n;
}

#endif

static void test_defrag_heap(void **state) {
    (void)state;
#ifndef HAVE_DEFRAG
    zt_skip("HAVE_DEFRAG: the private jemalloc backend only");
#else
    static heap_t h;
    size_t used0 = zm_used_memory(), alloc0 = je_stat("stats.allocated");
    fragment(&h);
    double before = active_per_allocated();

    size_t passes = 0, moved = 0, m;
    while (passes < MAX_PASSES && (m = defrag_pass(&h)) > 0) {
        passes++;
        moved += m;
    }
    double after = active_per_allocated();
    size_t named = named_now(&h), most = 0, bytes = 0, je_bytes = 0;
    for (size_t k = 0; k < h.nlive; k++) {
        size_t i = h.live[k];
        if (h.moves[i] > most) most = h.moves[i];
        assert_true(intact(h.p[i], h.size[i], i));
        bytes += zm_size(h.p[i]);
        je_bytes += sallocx(h.p[i], 0);
    }
    fprintf(stderr,
            "defrag: %zu live of %d; active/allocated %.2f -> %.3f after %zu passes; %zu moves "
            "(%.3f per live block, at most %zu for one); %zu named afterwards\n",
            h.nlive, NBLOCKS, before, after, passes, moved, (double)moved / (double)h.nlive, most,
            named);
    assert_true(before > 4.0);
    assert_true(after < 1.10);
    assert_true(passes < MAX_PASSES);
    assert_true(most <= 2);
    assert_true(moved <= h.nlive + h.nlive / 10);
    assert_true(named <= h.nlive / 100);
    /* Counts: zmalloc's, jemalloc's sizes, and jemalloc's own total. */
    assert_int_equal(bytes, je_bytes);
    assert_int_equal(zm_used_memory() - used0, je_bytes);
    assert_int_equal(je_stat("stats.allocated") - alloc0, je_bytes);
    for (size_t k = 0; k < h.nlive; k++) zm_free(h.p[h.live[k]]);
    assert_int_equal(zm_used_memory(), used0);
#endif
}

/* The hint's edge cases: NULL, large blocks, full slabs, the current slab. */
static void test_defrag_hint_edges(void **state) {
    (void)state;
    assert_int_equal(zm_defrag_hint(NULL), 0);
    void *big = zm_malloc(1 << 20);
    assert_int_equal(zm_defrag_hint(big), 0);
    zm_free(big);
    /* A size class nothing else here uses: its bin's only slab is current. */
    void *q = zm_malloc_no_tcache(2560);
    assert_int_equal(zm_defrag_hint(q), 0);
    zm_free_no_tcache(q);
    /* A full slab: every region of several slabs in use. */
    enum { N = 4096 };
    static void *b[N];
    for (int i = 0; i < N; i++) b[i] = zm_malloc_no_tcache(48);
    size_t named = 0;
    for (int i = 0; i < N / 2; i++) named += zm_defrag_hint(b[i]) != 0;
    assert_int_equal(named, 0);
    for (int i = 0; i < N; i++) zm_free_no_tcache(b[i]);
}

/* The no-tcache pair is counted exactly. */
static void test_no_tcache_exact(void **state) {
    (void)state;
    size_t used0 = zm_used_memory();
    void *p[64];
    size_t sum = 0;
    for (int i = 0; i < 64; i++) {
        p[i] = zm_malloc_no_tcache((size_t)i * 97);
        sum += zm_size(p[i]);
        assert_int_equal(zm_used_memory() - used0, sum);
    }
    for (int i = 0; i < 64; i++) {
        sum -= zm_size(p[i]);
        zm_free_no_tcache(p[i]);
        assert_int_equal(zm_used_memory() - used0, sum);
    }
}

static void collect(void *out, const char *text) {
    size_t *n = out;
    *n += strlen(text);
    if (strstr(text, "Begin jemalloc statistics")) n[1] = 1;
}

static void test_jemalloc_controls(void **state) {
    (void)state;
    size_t page = 0, len = sizeof page, mib[2], miblen = 2, text[2] = {0, 0};
    void *p = zm_malloc(100);
    zm_malloc_stats_print(collect, text, NULL);
#ifdef ZMALLOC_JEMALLOC
    assert_int_equal(zm_mallctl("arenas.page", &page, &len, NULL, 0), 0);
    assert_int_equal(page, (size_t)sysconf(_SC_PAGESIZE));
    assert_int_equal(zm_mallctl("no.such.control", &page, &len, NULL, 0), ENOENT);
    assert_int_equal(zm_mallctlnametomib("arenas.page", mib, &miblen), 0);
    page = 0;
    assert_int_equal(zm_mallctlbymib(mib, miblen, &page, &len, NULL, 0), 0);
    assert_int_equal(page, (size_t)sysconf(_SC_PAGESIZE));
    assert_int_equal(zm_mallctl("thread.tcache.flush", NULL, NULL, NULL, 0), 0);
    assert_int_equal(zm_nallocx(100, 0), zm_size(p));
    assert_int_equal(zm_nallocx(100, 0), nallocx(100, 0));
    assert_true(text[0] > 1000 && text[1]); /* jemalloc's whole report */
#else
    assert_int_equal(zm_mallctl("arenas.page", &page, &len, NULL, 0), ENOENT);
    assert_int_equal(zm_mallctlnametomib("arenas.page", mib, &miblen), ENOENT);
    assert_int_equal(zm_mallctlbymib(mib, miblen, &page, &len, NULL, 0), ENOENT);
    assert_int_equal(zm_nallocx(100, 0), 0);
    assert_true(text[0] > 0 && !text[1]);
    assert_int_equal(zm_defrag_hint(p), 0);
#endif
    zm_free(p);
}

int main(int argc, char **argv) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defrag_heap),
        cmocka_unit_test(test_defrag_hint_edges),
        cmocka_unit_test(test_no_tcache_exact),
        cmocka_unit_test(test_jemalloc_controls),
    };
    return zt_run(tests, argc, argv, NULL, NULL);
}
