/* Turns the copies of tcmalloc's fast paths (tcmalloc_fast.h) on, at load:
 * only in the builds their layout was read off, only with the page cache read
 * on (the free copy takes its class from it), and only if, for every request
 * size they take, they pop and push exactly the blocks tcmalloc's own malloc
 * and free pop and push, moving the list's length and the cache's byte
 * count as tcmalloc does, and tcmalloc then pops the blocks they pushed. */
#include <stdatomic.h>
#include <string.h>

#include "backends/tcmalloc_fast.h"
#include "backends/tcmalloc_sizes.h"
#include "fast_path.h"

#ifdef ZM_TC_FAST

zm__tcf_params zm__tcf = {0, UINTPTR_MAX, 0, 0, NULL, NULL, NULL};

#define LARGEST_REQUEST (256 * 1024)

/* One request size, both ways (the blocks as addresses once freed). */
static int try_size(size_t n) {
    size_t cl = zm__tcf.class_of[zm__tcf_index(n)];
    tc_free(tc_malloc(n)); /* the list now holds a block */
    void *p1 = tc_malloc(n), *p2 = tc_malloc(n);
    if (!p1 || !p2) return 0;
    uintptr_t h1 = (uintptr_t)p1, h2 = (uintptr_t)p2;
    __asm__("" : "+r"(h1), "+r"(h2));
    tc_free(p2);
    tc_free(p1);
    unsigned char *heap = zm__tcf_heap(zm__tcf.tpoff);
    if (heap == NULL || heap != zm__tcf_heap(zm__tcf.free_tpoff) || cl == 0 || cl >= ZM_TC_CLASSES)
        return 0;
    zm__tcf_list *l = zm__tcf_list_of(heap, cl);
    uint32_t length = l->length, bytes = *zm__tcf_bytes(heap);
    if ((uintptr_t)l->head != h1 || length < 2) return 0;

    void *b1 = NULL, *b2 = NULL;
    size_t u1 = 0, u2 = 0;
    if (!zm__tcf_pop(n, &b1, &u1) || !zm__tcf_pop(n, &b2, &u2)) {
        tc_free(b1);
        return 0;
    }
    int ok = (uintptr_t)b1 == h1 && (uintptr_t)b2 == h2 && l->length == length - 2 &&
             *zm__tcf_bytes(heap) == bytes - 2 * (uint32_t)u1 && u1 == tc_malloc_size(b1) &&
             u2 == u1 && u1 >= n && zm__tc_cached_class(b1) == cl;
    if (!ok) return 0;

    size_t f2 = zm__tcf_free(b2, cl), f1 = zm__tcf_free(b1, cl);
    ok = f1 == u1 && f2 == u1 && l->length == length && *zm__tcf_bytes(heap) == bytes &&
         (uintptr_t)l->head == h1;
    if (!ok) return 0;

    void *g1 = tc_malloc(n), *g2 = tc_malloc(n);
    ok = (uintptr_t)g1 == h1 && (uintptr_t)g2 == h2;
    tc_free(g2);
    tc_free(g1);
    return ok;
}

void zm__tcf_setup(void) {
    uintptr_t base;
    if (!zm__fp_allowed(ZM_FP_TCMALLOC_COPIES) || !zm__tc_version_verified(ZM_FP_TCMALLOC_COPIES))
        return;
    if (zm__tc_inline_floor != 1) {
        zm__fp_note(ZM_FP_TCMALLOC_COPIES, "needs the page cache read");
        return;
    }
    const zm__tc_build *build = zm__tc_known_build(&base);
    if (!build) {
        zm__fp_note(ZM_FP_TCMALLOC_COPIES, "build id differs");
        return;
    }
    memcpy(&zm__tcf.tpoff, (const void *)(base + build->tpoff_got), sizeof zm__tcf.tpoff);
    zm__tcf.free_tpoff = zm__tcf.tpoff + (intptr_t)build->free_word;
    zm__tcf.class_of = (const unsigned char *)(base + build->class_array);
    zm__tcf.malloc_hooks = (const volatile uintptr_t *)(base + build->malloc_hooks);
    zm__tcf.delete_hooks = (const volatile uintptr_t *)(base + build->delete_hooks);
    /* Every request up to 1 KiB, then one per 128-byte step (a step shares
     * its class). All or nothing: the free copy serves every class. The
     * trial calls the pop and the push directly; the gates (bound, floor)
     * open last, after everything the copies read. */
    size_t n = 0;
    while (n <= LARGEST_REQUEST && try_size(n)) n = n < 1024 ? n + 1 : n + 128;
    if (n <= LARGEST_REQUEST) {
        zm__fp_note(ZM_FP_TCMALLOC_COPIES, "trial disagreed (request %zu)", n);
        return;
    }
    atomic_signal_fence(memory_order_seq_cst); /* x86-64 keeps the stores in order */
    zm__tcf.bound = LARGEST_REQUEST + 1;
    zm__tcf.floor = 1;
    zm__fp_note(ZM_FP_TCMALLOC_COPIES, NULL);
}

#endif
