/* The load-time trials that every mimalloc release's page read goes
 * through (mimalloc2.c, mimalloc3.c call them), on mimalloc's public calls
 * only: the read is passed in, so this room knows no release's layout. */
#include <stdio.h>
#include <string.h>

#include "internal.h"

#include ZM_MIMALLOC_API

#include "backends/mimalloc_probe.h"
#include "fast_path.h"
#include "os.h"

/* The read gives mi_usable_size()'s answer, or 0 (ask it). */
static int page_read_agrees(zm__mi_read_fn *read, const void *p) {
    size_t n = read(p);
    return n == 0 || n == mi_usable_size(p);
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
int zm__mi_probe_pages(zm__mi_read_fn *read) {
    enum { N = 64 };
    static const size_t sizes[] = {16, 64, 1000, 9000, 70000, 300000};
    static const size_t aligns[] = {64, 4096, (size_t)1 << 16, (size_t)1 << 22};
    int ok = 1;
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        void *b[N];
        for (int j = 0; j < N; j++) b[j] = mi_malloc(sizes[i]);
        for (int j = 0; j < N; j++) {
            ok = ok && b[j] && read(b[j]) != 0 && page_read_agrees(read, b[j]);
            mi_free(b[j]);
        }
    }
    for (size_t n = 1; n < ((size_t)8 << 20); n += n / 8 + 1) {
        void *p = mi_malloc(n);
        ok = ok && p && page_read_agrees(read, p);
        mi_free(p);
    }
    /* Aligned blocks in a heap of their own, destroyed after: a page that
     * held one keeps mimalloc's "aligned blocks" flag until it retires, and
     * every free in a flagged page of the program's heap would take the slow
     * way (mimalloc's and zmalloc's) for as long as the process runs. */
    mi_heap_t *heap = mi_heap_new();
    ok = ok && heap != NULL;
    for (size_t i = 0; heap && i < sizeof aligns / sizeof aligns[0]; i++) {
        void *a[] = {mi_heap_malloc_aligned(heap, 100, aligns[i]),
                     mi_heap_malloc_aligned(heap, 70000, aligns[i]),
                     mi_heap_malloc_aligned_at(heap, 200, aligns[i], 8)};
        for (size_t j = 0; j < sizeof a / sizeof a[0]; j++) {
            ok = ok && (a[j] == NULL || page_read_agrees(read, a[j])); /* _at may fail */
            mi_free(a[j]);
        }
    }
    if (heap) mi_heap_destroy(heap);
    void *huge = mi_malloc(HUGE_TRIAL);
    ok = ok && huge && page_read_agrees(read, huge);
    mi_free(huge);
    return ok;
}

/* mi_version() as "major.minor.patch": 209 is 2.0.9, 301 is 3.0.1 and 30600
 * 3.6.0. */
void zm__mi_version_string(char *out, size_t len) {
    int v = mi_version();
    if (v >= 10000) snprintf(out, len, "%d.%d.%d", v / 10000, v / 100 % 100, v % 100);
    else snprintf(out, len, "%d.%d.%d", v / 100, v / 10 % 10, v % 10);
}

/* Whether the page read may be tried: allowed, a verified release, 64-bit,
 * not under valgrind. */
int zm__mi_page_read_allowed(const char *const *verified, char *version, size_t len) {
    zm__mi_version_string(version, len);
    if (!zm__fp_allowed(ZM_FP_MIMALLOC_PAGES) ||
        !zm__fp_version(ZM_FP_MIMALLOC_PAGES, "mimalloc", version, verified))
        return 0;
    if (sizeof(void *) != 8 || zm__os_valgrind_replaces_malloc()) {
        zm__fp_note(ZM_FP_MIMALLOC_PAGES, "64-bit builds only, not under valgrind");
        return 0;
    }
    return 1;
}

int zm__mi_jumps_to(uintptr_t at, uintptr_t target) {
    const unsigned char *code = (const unsigned char *)at;
    int32_t rel;
    memcpy(&rel, code + 1, sizeof rel);
    return code[0] == 0xe9 && at + 5 + (uintptr_t)(intptr_t)rel == target;
}
