/* tcmalloc's cold calls: statistics through MallocExtension, releasing free
 * memory to the OS. It has no background thread to switch. */
#include <dlfcn.h>
#include <string.h>

#include <gperftools/malloc_extension_c.h>

#include "backend.h"
#include "os.h"
#include "zmalloc.h"

size_t (*zm__tc_size_of)(void *self, const void *p);
void *zm__tc_self;
uint32_t zm__tc_small[ZM_TC_SMALL_MAX / 8 + 1];
uint32_t zm__tc_large[ZM_TC_LARGE_MAX / 128 + 1];
int zm__tc_classes_ok;

/* Fills the class tables from tc_nallocx(): each step's largest request
 * gives the entry, and its smallest must give the same. */
static int fill_classes(void) {
    for (size_t i = 0; i < sizeof zm__tc_small / sizeof zm__tc_small[0]; i++) {
        size_t hi = i * 8, lo = i ? hi - 7 : 0, c = tc_nallocx(hi, 0);
        if (c != tc_nallocx(lo, 0) || c > UINT32_MAX) return 0;
        zm__tc_small[i] = (uint32_t)c;
    }
    for (size_t i = ZM_TC_SMALL_MAX / 128 + 1; i < sizeof zm__tc_large / sizeof zm__tc_large[0]; i++) {
        size_t hi = i * 128, lo = hi - 127 > ZM_TC_SMALL_MAX ? hi - 127 : ZM_TC_SMALL_MAX + 1;
        size_t c = tc_nallocx(hi, 0);
        if (c != tc_nallocx(lo, 0) || c > UINT32_MAX) return 0;
        zm__tc_large[i] = (uint32_t)c;
    }
    return 1;
}

/* tcmalloc's size lookup without the virtual call: the C++ member function
 * TCMallocImplementation::GetAllocatedSize (Itanium ABI: the object first),
 * with the object MallocExtension::instance() returns. Kept only if it gives
 * tc_malloc_size()'s answer for blocks of every kind, and not under a
 * valgrind tool that replaces malloc (tcmalloc's blocks are then not ours). */
static void find_size_lookup(void) {
    if (zm__os_valgrind_replaces_malloc()) return;
    void *(*instance)(void) = (void *(*)(void))dlsym(RTLD_DEFAULT, "_ZN15MallocExtension8instanceEv");
    size_t (*size_of)(void *, const void *) = (size_t (*)(void *, const void *))dlsym(
        RTLD_DEFAULT, "_ZN22TCMallocImplementation16GetAllocatedSizeEPKv");
    if (!instance || !size_of) return;
    void *self = instance();
    static const size_t sizes[] = {0, 1, 8, 64, 100, 1000, 1025, 5000, 40000, 300000, 5u << 20};
    int ok = self != NULL;
    for (size_t i = 0; ok && i < sizeof sizes / sizeof sizes[0]; i++) {
        void *p = tc_malloc(sizes[i]), *a = tc_memalign(4096, sizes[i] + 1);
        ok = p && a && size_of(self, p) == tc_malloc_size(p) && size_of(self, a) == tc_malloc_size(a);
        tc_free(p);
        tc_free(a);
    }
    if (ok) {
        zm__tc_self = self;
        zm__tc_size_of = size_of;
    }
}

__attribute__((constructor)) static void probe_tcmalloc(void) {
    zm__tc_classes_ok = fill_classes();
    find_size_lookup();
}

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
