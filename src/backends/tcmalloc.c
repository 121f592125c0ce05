/* tcmalloc's cold calls: statistics through MallocExtension, releasing free
 * memory to the OS. It has no background thread to switch. */
#include <string.h>

#include <gperftools/malloc_extension_c.h>

#include "backend.h"
#include "fast_path.h"
#include "os.h"

int zm__tc_classes_ok;

__attribute__((constructor)) static void probe_tcmalloc(void) {
    zm__tc_classes_ok = zm__tc_sizes_setup();
#ifdef ZM_TC_FAST
    zm__tcf_setup();
#else
    if (zm__fp_allowed(ZM_FP_TCMALLOC_COPIES)) zm__fp_note(ZM_FP_TCMALLOC_COPIES, "x86-64 only");
#endif
}

#ifdef ZM_TC_FAST
/* A block the free copy declined: its size from the page cache where that
 * knows it (a small class: exact), else asked; the size goes to tcmalloc
 * only where it cannot mislead it (zm__be_free_sized). */
size_t zm__tc_free_other(void *p) {
    if (!p) return 0;
    size_t n = zm__tc_inline_floor == 1 ? zm__tc_cached_usable(p) : 0;
    if (n != 0) {
        tc_free_sized(p, n);
        return n;
    }
    n = zm__be_usable(p);
    zm__be_free_sized(p, n);
    return n;
}

#endif

static int property(const char *name, size_t *value) {
    *value = 0;
    return MallocExtension_GetNumericProperty(name, value);
}

void zm__be_get_stats(zm__be_stats *out) {
    memset(out, 0, sizeof *out);
    size_t allocated, heap, free_bytes, unmapped;
    if (!property("generic.current_allocated_bytes", &allocated) ||
        !property("generic.heap_size", &heap) ||
        !property("tcmalloc.pageheap_free_bytes", &free_bytes) ||
        !property("tcmalloc.pageheap_unmapped_bytes", &unmapped))
        return;
    out->allocated = allocated;
    out->resident = heap - unmapped;            /* mapped and not given back */
    out->active = heap - unmapped - free_bytes; /* in spans that hold blocks or caches */
    out->retained = unmapped;                   /* mapped, released to the OS */
    out->have = ZM__BE_HAVE_ALLOCATED | ZM__BE_HAVE_ACTIVE | ZM__BE_HAVE_RESIDENT |
                ZM__BE_HAVE_RETAINED;
}

void zm__be_background_thread(int enable) { (void)enable; }

int zm__be_purge(void) {
    MallocExtension_ReleaseFreeMemory();
    return 0;
}
