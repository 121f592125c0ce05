/* mimalloc's cold calls. Its release builds keep no per-allocation
 * statistics, so the only allocator figure it has is the memory it has
 * committed (mi_process_info). It has no background thread to switch. */
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include <mimalloc.h>

#include "backend.h"
#include "fast_path.h"
#include "os.h"

size_t zm__mi_bins_max;
uint16_t zm__mi_table[ZM_MI_TABLE_MAX / 8 + 1];
size_t zm__mi_table_bound;

/* The page read gives mi_usable_size()'s answer, or 0 (ask it). */
static int page_read_agrees(const void *p) {
    size_t n = zm__mi_page_usable(p);
    return n == 0 || n == mi_usable_size(p);
}

/* Walks the bins up to 1 MiB with mimalloc's public calls only, checking
 * both ends of each against real blocks; stops at the first disagreement,
 * so zm__mi_bins_max only covers bins that agreed. */
static void probe_bins(void) {
    size_t n = 0;
    while (n < ((size_t)1 << 20)) {
        size_t lo = n + 1, hi = zm__mi_bin_size(lo);
        void *a = mi_malloc(lo), *b = mi_malloc(hi);
        int agree = a && b && mi_usable_size(a) == hi && mi_usable_size(b) == hi;
        mi_free(a);
        mi_free(b);
        if (!agree) break;
        n = hi;
    }
    zm__mi_bins_max = n;
}

/* A huge block for the trial. mimalloc 3.6 keeps what the trial frees
 * committed (mi_collect too) and hands it to the next large request: past
 * about 16 MiB in all, a program's first 32 MiB block would commit nothing,
 * and the trial would show in the process's figures. */
#if MI_MALLOC_VERSION < 300
#define HUGE_TRIAL ((size_t)64 << 20)
#else
#define HUGE_TRIAL ((size_t)12 << 20)
#endif

/* Blocks in many pages and slices (small, medium, large), aligned blocks and
 * a huge one: each page read must agree, and the plain ones must not need
 * mi_usable_size(). Also every bin up to 8 MiB, and blocks aligned up to 4
 * MiB, some at an offset (interior pointers): read or declined, never
 * wrong. */
static int probe_pages(void) {
    enum { N = 64 };
    static const size_t sizes[] = {16, 64, 1000, 9000, 70000, 300000};
    static const size_t aligns[] = {64, 4096, (size_t)1 << 16, (size_t)1 << 22};
    int ok = 1;
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        void *b[N];
        for (int j = 0; j < N; j++) b[j] = mi_malloc(sizes[i]);
        for (int j = 0; j < N; j++) {
            ok = ok && b[j] && zm__mi_page_usable(b[j]) != 0 && page_read_agrees(b[j]);
            mi_free(b[j]);
        }
    }
    for (size_t n = 1; n < ((size_t)8 << 20); n += n / 8 + 1) {
        void *p = mi_malloc(n);
        ok = ok && p && page_read_agrees(p);
        mi_free(p);
    }
    for (size_t i = 0; i < sizeof aligns / sizeof aligns[0]; i++) {
        void *a[] = {mi_malloc_aligned(100, aligns[i]), mi_malloc_aligned(70000, aligns[i]),
                     mi_malloc_aligned_at(200, aligns[i], 8)};
        for (size_t j = 0; j < sizeof a / sizeof a[0]; j++) {
            ok = ok && (a[j] == NULL || page_read_agrees(a[j])); /* _at may fail */
            mi_free(a[j]);
        }
    }
    void *huge = mi_malloc(HUGE_TRIAL);
    ok = ok && huge && page_read_agrees(huge);
    mi_free(huge);
    return ok;
}

/* The table, learnt from real blocks with public calls (any mimalloc
 * release, whatever its bins): both ends of each 8-byte step must get the
 * same usable size, at least the request. */
static void fill_table(void) {
    for (size_t w = 0; w <= ZM_MI_TABLE_MAX / 8; w++) {
        void *lo = mi_malloc(w ? w * 8 - 7 : 0), *hi = mi_malloc(w * 8);
        size_t u = lo && hi ? mi_usable_size(hi) : 0;
        int ok = u != 0 && u == mi_usable_size(lo) && u >= w * 8 && u <= UINT16_MAX;
        mi_free(lo);
        mi_free(hi);
        if (!ok) {
            zm__fp_note(ZM_FP_MIMALLOC_SIZES, "trial disagreed: request %zu", w * 8);
            return;
        }
        zm__mi_table[w] = (uint16_t)u;
    }
    zm__mi_table_bound = ZM_MI_TABLE_MAX + 1;
    zm__fp_note(ZM_FP_MIMALLOC_SIZES, NULL);
}

/* mi_version() as "major.minor.patch": 209 is 2.0.9, 301 is 3.0.1 and 30600
 * 3.6.0. */
static void version_string(char *out, size_t len) {
    int v = mi_version();
    if (v >= 10000) snprintf(out, len, "%d.%d.%d", v / 10000, v / 100 % 100, v % 100);
    else snprintf(out, len, "%d.%d.%d", v / 100, v / 10 % 10, v % 10);
}

/* Whether the page read may be tried: allowed, a verified release, 64-bit,
 * not under valgrind. */
static int page_read_allowed(const char *const *verified, char *version, size_t len) {
    version_string(version, len);
    if (!zm__fp_allowed(ZM_FP_MIMALLOC_PAGES) ||
        !zm__fp_version(ZM_FP_MIMALLOC_PAGES, "mimalloc", version, verified))
        return 0;
    if (sizeof(void *) != 8 || zm__os_valgrind_replaces_malloc()) {
        zm__fp_note(ZM_FP_MIMALLOC_PAGES, "64-bit builds only, not under valgrind");
        return 0;
    }
    return 1;
}

#if MI_MALLOC_VERSION < 300
int zm__mi_pages_ok;
uintptr_t zm__mi_inline_floor = UINTPTR_MAX;
size_t zm__mi_fast_bound;
intptr_t zm__mi_heap_tpoff;

/* Turns zm__mi_fast_malloc() on: the known build, its TLS word giving the
 * thread's default heap, and, for every request size up to 1 KiB, the copy
 * popping exactly the block mi_malloc would have popped next (the head of
 * the page's free list, read before), moving the page's count of used blocks
 * by one and reporting mi_usable_size(). Every word count must have been
 * tried at least once. */
/* The build whose layout zm__mi_fast_malloc() reads: Debian 12's
 * libmimalloc.so.2.0 (mimalloc 2.0.9-3), where the GOT word at 0x1bfc0 holds
 * the thread-pointer offset of its default heap (read off mi_malloc). */
static const unsigned char known_build_id[20] = {
    0xd0, 0x7f, 0x4e, 0x7d, 0xc9, 0xa0, 0x39, 0xfc, 0xbe, 0x77,
    0x47, 0xf4, 0x16, 0x47, 0x6b, 0xd6, 0x5c, 0xb4, 0x8e, 0x8b};
#define KNOWN_HEAP_TPOFF_GOT 0x1bfc0

static void find_fast_malloc(void) {
    if (!zm__fp_allowed(ZM_FP_MIMALLOC_COPIES)) return;
    if (!zm__mi_pages_ok) {
        zm__fp_note(ZM_FP_MIMALLOC_COPIES, "needs the page read");
        return;
    }
    uintptr_t base;
    if (!zm__os_object_has_build_id((const void *)&mi_malloc, known_build_id, sizeof known_build_id,
                                    &base)) {
        zm__fp_note(ZM_FP_MIMALLOC_COPIES, "build id differs");
        return;
    }
    memcpy(&zm__mi_heap_tpoff, (const void *)(base + KNOWN_HEAP_TPOFF_GOT), sizeof zm__mi_heap_tpoff);
    mi_free(mi_malloc(8)); /* sets up this thread's heap */
    unsigned char *heap = zm__mi_heap();
    if (heap != (unsigned char *)mi_heap_get_default()) {
        zm__mi_heap_tpoff = 0;
        zm__fp_note(ZM_FP_MIMALLOC_COPIES, "trial disagreed: the default heap");
        return;
    }
    /* The trial calls the pop directly; the gate (zm__mi_fast_bound) opens
     * only once every size agreed, after everything the copy reads. */
    static char tried[1024 / 8 + 1];
    int ok = 1;
    for (int round = 0; round < 4 && ok; round++) {
        for (size_t n = 0; n <= 1024 && ok; n++) {
            void *a = mi_malloc(n);
            unsigned char *page = zm__mi_direct_page(heap, n);
            void *expect;
            uint32_t used, used_after;
            memcpy(&expect, page + 0x10, sizeof expect);
            memcpy(&used, page + 0x18, sizeof used);
            void *b = NULL;
            size_t usable = 0;
            if (expect && zm__mi_pop(n, &b, &usable)) {
                memcpy(&used_after, page + 0x18, sizeof used_after);
                ok = b == expect && used_after == used + 1 && usable == mi_usable_size(b) &&
                     usable >= n && zm__mi_page_usable(b) == usable;
                tried[(n + 7) >> 3] = 1;
            }
            mi_free(b);
            mi_free(a);
        }
    }
    for (size_t w = 0; w <= 1024 / 8; w++) ok = ok && tried[w];
    if (!ok) {
        zm__mi_heap_tpoff = 0;
        zm__fp_note(ZM_FP_MIMALLOC_COPIES, "trial disagreed: the malloc copy");
        return;
    }
    atomic_signal_fence(memory_order_seq_cst); /* x86-64 keeps the stores in order */
    zm__mi_fast_bound = 1025;
}

size_t zm__mi_free_other(void *p) {
    if (!p) return 0;
    size_t n = zm__mi_pages_ok ? zm__mi_page_usable(p) : 0;
    if (n == 0) n = mi_usable_size(p);
    mi_free(p);
    return n;
}

/* Turns zm__be_free_counted()'s copy of mi_free's local path on: only with
 * the malloc copy on (the known build), and only if, on blocks of this
 * thread, it returns mi_usable_size(), puts the block at the head of the
 * page's local free list linked to the former head, and counts one block
 * fewer in use, for every word count up to 1 KiB. */
static void find_local_free(void) {
    int ok = 1;
    for (size_t n = 8; n <= 1024 && ok; n += 8) {
        void *keep = mi_malloc(n), *p = mi_malloc(n); /* keep: the page has another block in use */
        unsigned char *page = zm__mi_page_of(p);
        uint32_t used, used_after;
        void *head, *head_after, *next;
        memcpy(&used, page + 0x18, sizeof used);
        memcpy(&head, page + 0x20, sizeof head);
        size_t expect = mi_usable_size(p);
        size_t got = zm__mi_free_local(p); /* the copy itself: the floor stays shut */
        memcpy(&used_after, page + 0x18, sizeof used_after);
        memcpy(&head_after, page + 0x20, sizeof head_after);
        memcpy(&next, p, sizeof next);
        ok = keep && got == expect && used_after == used - 1 && head_after == p && next == head;
        mi_free(keep);
    }
    if (ok) zm__mi_inline_floor = 1;
    zm__fp_note(ZM_FP_MIMALLOC_COPIES, ok ? NULL : "trial disagreed: the free copy");
}

/* The page read, only on the layout it was read from (mimalloc 2.0.9,
 * 64-bit), checked before anything is read. */
static void find_page_read(void) {
    static const char *const verified[] = {"2.0.9", NULL};
    char version[32];
    if (!page_read_allowed(verified, version, sizeof version)) return;
    zm__mi_pages_ok = probe_pages();
    zm__fp_note(ZM_FP_MIMALLOC_PAGES, zm__mi_pages_ok ? NULL : "trial disagreed");
}

static void find_copies(void) {
    find_fast_malloc();
    if (zm__mi_fast_bound) find_local_free();
}
#else
struct zm__mi3_read zm__mi3 = {UINTPTR_MAX, NULL, 0, 0};

/* The builds whose layout zm__mi_page_usable() reads (see mimalloc.h), by
 * release and GNU build ID: Debian 13's libmimalloc.so.3.0 (mimalloc 3.0.1),
 * whose mi_usable_size() loads _mi_page_map from 0x28600 (in .bss), and
 * unstable's libmimalloc.so.3.6 (3.6.0). */
static const struct mi3_build {
    const char *version;
    unsigned char id[20];
    uintptr_t page_map; /* _mi_page_map's offset in the library; 0: none */
    size_t thread_at, size_at;
} mi3_builds[] = {
    {"3.0.1",
     {0x75, 0xc5, 0x3b, 0x92, 0xe0, 0x91, 0x3b, 0xe4, 0x72, 0x06,
      0xc6, 0x17, 0x57, 0x2c, 0x0c, 0xf9, 0xec, 0x48, 0xf6, 0xee},
     0x28600, 0, 0x28},
    {"3.6.0",
     {0x0c, 0xc9, 0xef, 0xce, 0x91, 0x27, 0xcc, 0xca, 0xca, 0x2a,
      0xf9, 0xd0, 0xa1, 0x73, 0x70, 0x91, 0xad, 0x62, 0x9a, 0x1e},
     0, 8, 0x20},
};

/* The page read: a verified release, its very build, then the trial; the
 * floor opens last. */
static void find_page_read(void) {
    static const char *const verified[] = {"3.0.1", "3.6.0", NULL};
    char version[32];
    if (!page_read_allowed(verified, version, sizeof version)) return;
    const struct mi3_build *b = &mi3_builds[strcmp(version, "3.0.1") == 0 ? 0 : 1];
    uintptr_t base;
    if (!zm__os_object_has_build_id((const void *)&mi_malloc, b->id, sizeof b->id, &base)) {
        zm__fp_note(ZM_FP_MIMALLOC_PAGES, "build id differs");
        return;
    }
    zm__mi3.page_map = b->page_map ? (unsigned char ***const *)(base + b->page_map) : NULL;
    zm__mi3.thread_at = b->thread_at;
    zm__mi3.size_at = b->size_at;
    if (zm__mi3.page_map != NULL && *zm__mi3.page_map == NULL) {
        zm__fp_note(ZM_FP_MIMALLOC_PAGES, "trial disagreed: no page map");
        return;
    }
    if (!probe_pages()) {
        zm__fp_note(ZM_FP_MIMALLOC_PAGES, "trial disagreed");
        return;
    }
    atomic_signal_fence(memory_order_seq_cst); /* x86-64 keeps the stores in order */
    zm__mi3.floor = 1;
    zm__fp_note(ZM_FP_MIMALLOC_PAGES, NULL);
}

/* mimalloc 3 moved the thread's heap and the page's fields: no copy. The
 * note names the release (users and tests tell 3.0 from 3.6 by it). */
static void find_copies(void) {
    char version[32];
    version_string(version, sizeof version);
    if (zm__fp_allowed(ZM_FP_MIMALLOC_COPIES))
        zm__fp_note(ZM_FP_MIMALLOC_COPIES, "not written for mimalloc %s's layout", version);
}
#endif

__attribute__((constructor)) static void probe_mimalloc(void) {
    probe_bins();
    fill_table();
    find_page_read();
    find_copies();
}

void zm__be_get_stats(zm__be_stats *out) {
    memset(out, 0, sizeof *out);
    size_t elapsed, user, sys, rss, peak_rss, commit = 0, peak_commit, faults;
    mi_process_info(&elapsed, &user, &sys, &rss, &peak_rss, &commit, &peak_commit, &faults);
    out->active = commit;
    out->have = ZM__BE_HAVE_ACTIVE;
}

void zm__be_background_thread(int enable) { (void)enable; }

int zm__be_purge(void) {
    mi_collect(true);
    return 0;
}
