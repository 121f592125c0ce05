/* mimalloc 3's load-time probes: the page read and the copies that
 * mimalloc3.h runs, each turned on only for a build whose layout was read off
 * its object code (below), by release and GNU build ID, and only after a
 * trial against mimalloc itself. The gates (floor, free_floor, fast_bound)
 * open last. */
#include <stdatomic.h>
#include <string.h>

#include "internal.h"

#include ZM_MIMALLOC_API

#include "backends/mimalloc3.h"
#include "backends/mimalloc_probe.h"
#include "fast_path.h"
#include "os.h"

#if MI_MALLOC_VERSION >= 300
struct zm__mi3_layout zm__mi3 = {.floor = UINTPTR_MAX, .free_floor = UINTPTR_MAX};

#ifdef ZM_MI3_RELEASE
/* The build whose layout mimalloc3.h has, by GNU build ID: Debian 13's
 * libmimalloc.so.3.0 (mimalloc 3.0.1), whose mi_usable_size() loads
 * _mi_page_map from 0x28600 (in .bss) and whose mi_malloc loads its theap's
 * TLS offset from the GOT slot at 0x21fd0; or unstable's libmimalloc.so.3.6
 * (3.6.0), slot 0x3afb0. RETIRE_JMP: where mi_free() jumps to the page
 * retire, at RETIRE, once the page has no block in use. */
#if MI_MALLOC_VERSION == 301
static const unsigned char build_id[20] = {0x75, 0xc5, 0x3b, 0x92, 0xe0, 0x91, 0x3b,
                                           0xe4, 0x72, 0x06, 0xc6, 0x17, 0x57, 0x2c,
                                           0x0c, 0xf9, 0xec, 0x48, 0xf6, 0xee};
#define PAGE_MAP_AT 0x28600
#define THEAP_GOT 0x21fd0
#define RETIRE_JMP 0x6c50 /* mi_free's jump to _mi_page_retire */
#define RETIRE 0x149e0
#else
static const unsigned char build_id[20] = {0x0c, 0xc9, 0xef, 0xce, 0x91, 0x27, 0xcc,
                                           0xca, 0xca, 0x2a, 0xf9, 0xd0, 0xa1, 0x73,
                                           0x70, 0x91, 0xad, 0x62, 0x9a, 0x1e};
#define THEAP_GOT 0x3afb0
#define RETIRE_JMP 0x1fede
#define RETIRE 0x1eeb0
#endif
static uintptr_t build_base; /* set once the build matched and the read is on */
static char version[32];

/* The read the trial checks. */
static size_t page_read(const void *p) { return zm__mi_page_usable(p); }

/* The page read: this header's release, running, its very build, then the
 * trial; the floor opens last. */
void zm__mi_find_page_read(void) {
    static const char *const verified[] = {"3.0.1", "3.6.0", NULL};
    if (!zm__mi_page_read_allowed(verified, version, sizeof version)) return;
    if (strcmp(version, ZM_MI3_RELEASE) != 0) {
        zm__fp_note(ZM_FP_MIMALLOC_PAGES, "built with mimalloc " ZM_MI3_RELEASE "'s header, running %s",
                    version);
        return;
    }
    uintptr_t base;
    if (!zm__os_object_has_build_id((const void *)&mi_malloc, build_id, sizeof build_id, &base)) {
        zm__fp_note(ZM_FP_MIMALLOC_PAGES, "build id differs");
        return;
    }
#ifdef PAGE_MAP_AT
    zm__mi3.page_map = (unsigned char ***const *)(base + PAGE_MAP_AT);
    if (*zm__mi3.page_map == NULL) {
        zm__fp_note(ZM_FP_MIMALLOC_PAGES, "trial disagreed: no page map");
        return;
    }
#endif
    if (!zm__mi_probe_pages(page_read)) {
        zm__fp_note(ZM_FP_MIMALLOC_PAGES, "trial disagreed");
        return;
    }
    build_base = base;
    atomic_signal_fence(memory_order_seq_cst); /* x86-64 keeps the stores in order */
    zm__mi3.floor = 1;
    zm__fp_note_on(ZM_FP_MIMALLOC_PAGES, "mimalloc %s", version);
}

size_t zm__mi_free_other(void *p) {
    if (!p) return 0;
    size_t n = zm__be_usable(p);
    mi_free(p);
    return n;
}

/* The pop against mi_malloc, for every request up to 1 KiB, four rounds:
 * mi_malloc must hand out the head of the free list the layout names and
 * move the count of used blocks by used_step; then the copy, on the next
 * head, must do the same and report mi_usable_size(). Every word count must
 * have been tried both ways at least once. */
static int pop_agrees(void) {
    static char tried[1024 / 8 + 1];
    for (int round = 0; round < 4; round++) {
        for (size_t n = 0; n <= 1024; n++) {
            unsigned char *page = zm__mi3_direct_page(n);
            void *head = *(void **)(page + ZM_MI3_FREE_AT);
            zm__mi3_used used = zm__mi3_used_of(page);
            void *a = mi_malloc(n);
            int ok = a != NULL;
            if (ok && head != NULL)
                ok = a == head && zm__mi3_used_of(page) == (zm__mi3_used)(used + ZM_MI3_USED_STEP);
            page = zm__mi3_direct_page(n); /* a full page is replaced */
            head = *(void **)(page + ZM_MI3_FREE_AT);
            used = zm__mi3_used_of(page);
            void *b = NULL;
            size_t usable = 0;
            if (ok && head != NULL && zm__mi3_pop(n, &b, &usable)) {
                ok = b == head && zm__mi3_used_of(page) == (zm__mi3_used)(used + ZM_MI3_USED_STEP) &&
                     usable == mi_usable_size(b) && usable >= n;
                tried[(n + 7) >> 3] = 1;
            }
            mi_free(b);
            mi_free(a);
            if (!ok) return 0;
        }
    }
    for (size_t w = 0; w <= 1024 / 8; w++)
        if (!tried[w]) return 0;
    return 1;
}

/* One push by the copy, checked: 1 if it reported the size mi_usable_size()
 * gave and pushed p as mi_free() would (the head of the page's local free
 * list, linked to the former head, one block fewer in use; where that left
 * the page empty and retired it, the page is mimalloc's to reuse, and
 * push_agrees() checks what mimalloc hands out next). */
static int push_checked(void *p) {
    unsigned char *page = zm__mi3_page_of(p);
    zm__mi3_used used = zm__mi3_used_of(page);
    void *head = *(void **)(page + ZM_MI3_LOCAL_FREE_AT);
    size_t expect = mi_usable_size(p);
    if (zm__mi3_word(page, ZM_MI3_THREAD_AT) != (uintptr_t)__builtin_thread_pointer() ||
        zm__mi3_word(page, ZM_MI3_SIZE_AT) != expect)
        return 0;
    if (zm__mi3_push(page, p, expect) != expect) return 0;
    if ((uint16_t)used == 1) return 1; /* the page retired: mimalloc may have reused it */
    return zm__mi3_used_of(page) == (zm__mi3_used)(used - 1) &&
           *(void **)(page + ZM_MI3_LOCAL_FREE_AT) == p && *(void **)p == head;
}

/* The push on blocks of this thread whose page keeps another block in use,
 * for every word count up to 1 KiB; then a block alone in its page, whose
 * free retires the page (mimalloc must hand out blocks of that size after
 * it as before); and a block of a page with aligned blocks, which goes out
 * of line with mi_usable_size()'s answer. */
static int push_agrees(void) {
    for (size_t n = 8; n <= 1024; n += 8) {
        void *keep = mi_malloc(n), *p = mi_malloc(n);
        if (!keep || !p || !push_checked(p)) return 0; /* same page or not, both push */
        mi_free(keep);
    }
    for (int round = 0; round < 3; round++) {
        void *alone = mi_malloc(5000); /* a bin of its own: likely its page's only block */
        size_t usable = alone ? mi_usable_size(alone) : 0;
        if (alone == NULL || !push_checked(alone)) return 0;
        void *again = mi_malloc(5000);
        int ok = again != NULL && mi_usable_size(again) == usable;
        mi_free(again);
        if (!ok) return 0;
    }
    mi_heap_t *heap = mi_heap_new(); /* the flag stays on the page: not the program's heap */
    void *aligned = heap ? mi_heap_malloc_aligned_at(heap, 200, 64, 8) : NULL;
    int ok = aligned != NULL;
    if (ok && (zm__mi3_word(zm__mi3_page_of(aligned), ZM_MI3_THREAD_AT) & 2) != 0) {
        size_t expect = mi_usable_size(aligned);
        ok = zm__mi3_free_local(aligned) == expect; /* the copy's own path: asks, then mi_free */
    } else {
        mi_free(aligned);
    }
    if (heap) mi_heap_destroy(heap);
    return ok;
}

/* The copies: only where the page read is on (the known build), with the
 * theap's TLS offset from the build's GOT slot; the pop's and the push's
 * trials. */
void zm__mi_find_copies(void) {
    if (!zm__fp_allowed(ZM_FP_MIMALLOC_COPIES)) return;
    if (build_base == 0) {
        zm__fp_note(ZM_FP_MIMALLOC_COPIES, "needs the page read");
        return;
    }
    memcpy(&zm__mi3.theap_tpoff, (const void *)(build_base + THEAP_GOT), sizeof zm__mi3.theap_tpoff);
    if (!zm__mi_jumps_to(build_base + RETIRE_JMP, build_base + RETIRE)) {
        zm__fp_note(ZM_FP_MIMALLOC_COPIES, "trial disagreed: mi_free's page retire (mimalloc %s)", version);
        return;
    }
    zm__mi3.retire = (void (*)(void *))(build_base + RETIRE);
    mi_free(mi_malloc(8)); /* sets up this thread's theap */
    if (!pop_agrees()) {
        zm__fp_note(ZM_FP_MIMALLOC_COPIES, "trial disagreed: the malloc copy (mimalloc %s)", version);
        return;
    }
    if (!push_agrees()) {
        zm__fp_note(ZM_FP_MIMALLOC_COPIES, "trial disagreed: the free copy (mimalloc %s)", version);
        return;
    }
    atomic_signal_fence(memory_order_seq_cst); /* x86-64 keeps the stores in order */
    zm__mi3.fast_bound = 1025;
    zm__mi3.free_floor = 1;
    zm__fp_note_on(ZM_FP_MIMALLOC_COPIES, "mimalloc %s", version);
}
#else
/* No layout for this header's release: the note names the release running. */
static char version[32];

void zm__mi_find_page_read(void) {
    zm__mi_version_string(version, sizeof version);
    if (zm__fp_allowed(ZM_FP_MIMALLOC_PAGES))
        zm__fp_note(ZM_FP_MIMALLOC_PAGES, "not written for mimalloc %s's layout", version);
}
void zm__mi_find_copies(void) {
    if (zm__fp_allowed(ZM_FP_MIMALLOC_COPIES))
        zm__fp_note(ZM_FP_MIMALLOC_COPIES, "not written for mimalloc %s's layout", version);
}
#endif
#endif
