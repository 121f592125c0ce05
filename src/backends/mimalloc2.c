/* mimalloc 2.0's load-time probes (Debian 12's build, mimalloc 2.0.9): the
 * page read and the copies that mimalloc2.h runs, each turned on only for the
 * build it was read off and only after a trial against mimalloc itself. */
#include <stdatomic.h>
#include <string.h>

#include "internal.h"

#include ZM_MIMALLOC_API

#include "backends/mimalloc2.h"
#include "backends/mimalloc_probe.h"
#include "fast_path.h"
#include "os.h"

#if MI_MALLOC_VERSION < 300
int zm__mi_pages_ok;
uintptr_t zm__mi_inline_floor = UINTPTR_MAX;
void (*zm__mi_retire)(void *page);
static uintptr_t build_base; /* the known build's, once found */
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
    build_base = base;
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

/* mi_free()'s jump to the page retire in the known build: an e9 rel32 at
 * 0x10f53 whose target is 0xff30 (_mi_page_retire, which it calls with the
 * page once the page has no block in use). */
#define RETIRE_JMP 0x10f53
#define RETIRE 0xff30

/* Turns zm__be_free_counted()'s copy of mi_free's local path on: only with
 * the malloc copy on (the known build), with mi_free's page retire found,
 * and only if, on blocks of this thread, it returns mi_usable_size(), puts
 * the block at the head of the page's local free list linked to the former
 * head, and counts one block fewer in use, for every word count up to 1 KiB;
 * and if, after it retired a page (a block alone in its page), mimalloc
 * hands out blocks of that size as before. */
static void find_local_free(uintptr_t base) {
    if (!zm__mi_jumps_to(base + RETIRE_JMP, base + RETIRE)) {
        zm__fp_note(ZM_FP_MIMALLOC_COPIES, "trial disagreed: mi_free's page retire");
        return;
    }
    zm__mi_retire = (void (*)(void *))(base + RETIRE);
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
        ok = keep && got == expect;
        if (ok && used > 1) { /* else the page retired: mimalloc's to reuse */
            memcpy(&used_after, page + 0x18, sizeof used_after);
            memcpy(&head_after, page + 0x20, sizeof head_after);
            memcpy(&next, p, sizeof next);
            ok = used_after == used - 1 && head_after == p && next == head;
        }
        mi_free(keep);
    }
    for (int round = 0; round < 3 && ok; round++) {
        void *alone = mi_malloc(5000); /* a bin of its own: likely its page's only block */
        size_t usable = alone ? mi_usable_size(alone) : 0;
        ok = alone && zm__mi_free_local(alone) == usable;
        void *again = ok ? mi_malloc(5000) : NULL;
        ok = ok && again && mi_usable_size(again) == usable;
        mi_free(again);
    }
    if (ok) zm__mi_inline_floor = 1;
    zm__fp_note(ZM_FP_MIMALLOC_COPIES, ok ? NULL : "trial disagreed: the free copy");
}

/* The read the trial checks. */
static size_t page_read(const void *p) { return zm__mi_page_usable(p); }

/* The page read, only on the layout it was read from (mimalloc 2.0.9,
 * 64-bit), checked before anything is read. */
void zm__mi_find_page_read(void) {
    static const char *const verified[] = {"2.0.9", NULL};
    char version[32];
    if (!zm__mi_page_read_allowed(verified, version, sizeof version)) return;
    zm__mi_pages_ok = zm__mi_probe_pages(page_read);
    zm__fp_note(ZM_FP_MIMALLOC_PAGES, zm__mi_pages_ok ? NULL : "trial disagreed");
}

void zm__mi_find_copies(void) {
    find_fast_malloc();
    if (zm__mi_fast_bound) find_local_free(build_base);
}
#endif
