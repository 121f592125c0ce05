/* tcmalloc's cold calls: statistics through MallocExtension, releasing free
 * memory to the OS. It has no background thread to switch. */
#include <string.h>

#include <gperftools/malloc_extension_c.h>

#include "backend.h"
#include "zmalloc.h"

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
    out->have = ZMALLOC_INFO_ALLOCATED | ZMALLOC_INFO_ACTIVE | ZMALLOC_INFO_RESIDENT |
                ZMALLOC_INFO_RETAINED;
}

void zm__be_background_thread(int enable) { (void)enable; }

int zm__be_purge(void) {
    MallocExtension_ReleaseFreeMemory();
    return 0;
}
