/* Learns tcmalloc's block sizes at load and checks each fact against
 * tcmalloc's own answers on real blocks (tcmalloc_sizes.h). */
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#include "backends/tcmalloc_sizes.h"
#include "os.h"

size_t (*zm__tc_size_of)(void *self, const void *p);
void *zm__tc_self;
uint32_t zm__tc_small[ZM_TC_SMALL_MAX / 8 + 1];
uint32_t zm__tc_large[ZM_TC_LARGE_MAX / 128 + 1];
const volatile uint64_t *zm__tc_class_cache;
uintptr_t zm__tc_inline_floor = UINTPTR_MAX;
uint32_t zm__tc_class_size[ZM_TC_CLASSES];

/* The builds whose private layout was read off their object code, each
 * held to its GNU build ID and its own tc_version(): the page heap's class
 * cache (tc_free's first read), and what the copies read (tc_malloc's and
 * tc_free's fast paths; tcmalloc_fast.h). 2.16 and 2.18 keep 2.10's layout
 * of both; their free reads the same TLS word as their malloc. */
static const zm__tc_build known_builds[] = {
    {"2.10", /* Debian 12: libtcmalloc_minimal.so.4.5.10, gperftools 2.10-1 */
     {0x39, 0xdf, 0xd4, 0xa5, 0x85, 0x57, 0x03, 0xfa, 0x6c, 0x24,
      0x69, 0x74, 0x92, 0x82, 0xf7, 0x5b, 0x18, 0xa1, 0xaa, 0x66},
     0x2ddc0, 0x28e58, 0x1d6f20, 0x298a0, 0x1d8260, 8},
    {"2.16", /* Debian 13: libtcmalloc_minimal.so.4.5.18, gperftools 2.16-1 */
     {0x19, 0x10, 0x28, 0x0b, 0x19, 0xfa, 0xdf, 0x99, 0x0c, 0xc6,
      0xaf, 0xbe, 0x50, 0x0a, 0xed, 0x23, 0xd2, 0xca, 0xf1, 0x0c},
     0x28c50, 0x27fe0, 0x1d1dc0, 0x28740, 0x1d3700, 0},
    {"2.18.1", /* Debian unstable: libtcmalloc_minimal.so.4.6.5 */
     {0x54, 0xee, 0xe9, 0x01, 0x80, 0x36, 0x29, 0xe6, 0x12, 0x3f,
      0x11, 0xc5, 0x8d, 0xec, 0xc1, 0xc5, 0x19, 0xa4, 0xcc, 0x69},
     0x27b50, 0x26fe0, 0x1d0cc0, 0x1d2640, 0x1d25e0, 0},
};

static const char *tc_version_string(char *buf, size_t len) {
    int major = 0, minor = 0;
    const char *patch = "";
    tc_version(&major, &minor, &patch);
    snprintf(buf, len, "%d.%d%s", major, minor, patch ? patch : "");
    return buf;
}

const zm__tc_build *zm__tc_known_build(uintptr_t *base) {
    char version[32];
    tc_version_string(version, sizeof version);
    for (size_t i = 0; i < sizeof known_builds / sizeof known_builds[0]; i++) {
        const zm__tc_build *b = &known_builds[i];
        if (strcmp(version, b->version) == 0 &&
            zm__os_object_has_build_id((const void *)&tc_free, b->build_id, sizeof b->build_id, base))
            return b;
    }
    return NULL;
}

/* The tables' size for request n (once filled, n <= ZM_TC_LARGE_MAX). */
static size_t table_size(size_t n) {
    return n <= ZM_TC_SMALL_MAX ? zm__tc_small[(n + 7) >> 3] : zm__tc_large[(n + 127) >> 7];
}

/* Turns the class-cache read on: the known build, class sizes learnt from
 * real blocks of every class (freed and taken again, so that tcmalloc's own
 * free has cached their page), and agreement with tc_malloc_size() on blocks
 * of many sizes. */
/* Whether this gperftools release is one the reads and copies were verified
 * on (its own tc_version(), before anything private is read); if not, notes
 * so for fp. */
int zm__tc_version_verified(enum zm__fp fp) {
    static const char *const verified[] = {"2.10", "2.16", "2.18.1", NULL};
    char version[32];
    return zm__fp_version(fp, "gperftools", tc_version_string(version, sizeof version), verified);
}

static void find_class_cache(int classes_ok) {
    if (!zm__fp_allowed(ZM_FP_TCMALLOC_PAGE_CACHE) || !zm__tc_version_verified(ZM_FP_TCMALLOC_PAGE_CACHE))
        return;
    if (zm__os_valgrind_replaces_malloc() || classes_ok <= 0) {
        zm__fp_note(ZM_FP_TCMALLOC_PAGE_CACHE, "needs tcmalloc's own blocks and the size table");
        return;
    }
    uintptr_t base;
    const zm__tc_build *build = zm__tc_known_build(&base);
    if (!build) {
        zm__fp_note(ZM_FP_TCMALLOC_PAGE_CACHE, "build id differs");
        return;
    }
    zm__tc_class_cache = (const volatile uint64_t *)(base + build->class_cache);
    for (size_t n = 0; n <= ZM_TC_LARGE_MAX; n = table_size(n) + 1) {
        void *p = tc_malloc(n);
        tc_free(p);
        p = tc_malloc(n);
        uint64_t cl = zm__tc_cached_class(p);
        size_t size = tc_malloc_size(p);
        tc_free(p);
        if (cl >= ZM_TC_CLASSES) continue; /* not cached (a large block): stays asked */
        if (cl == 0 || (zm__tc_class_size[cl] != 0 && zm__tc_class_size[cl] != size)) {
            zm__fp_note(ZM_FP_TCMALLOC_PAGE_CACHE, "trial disagreed: class of request %zu", n);
            return;
        }
        zm__tc_class_size[cl] = (uint32_t)size;
    }
    enum { N = 256 };
    static void *blocks[N];
    uint64_t seed = 0x9E3779B97F4A7C15ull;
    int ok = 1;
    for (int i = 0; i < N; i++) {
        seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
        blocks[i] = tc_malloc((size_t)(seed >> 40) % (i % 4 ? 1100 : 300000));
        size_t inline_size = zm__tc_cached_usable(blocks[i]);
        ok = ok && blocks[i] && (inline_size == 0 || inline_size == tc_malloc_size(blocks[i]));
    }
    for (int i = 0; i < N; i++) tc_free(blocks[i]);
    if (ok) zm__tc_inline_floor = 1;
    zm__fp_note(ZM_FP_TCMALLOC_PAGE_CACHE, ok ? NULL : "trial disagreed: sizes of random blocks");
}

/* Whether requests lo and hi both get blocks of c bytes, as tcmalloc's own
 * size call says of real blocks (tc_nallocx() alone can be wrong: the debug
 * allocator gives every block exactly its request). */
static int blocks_agree(size_t lo, size_t hi, size_t c) {
    void *a = tc_malloc(lo), *b = tc_malloc(hi);
    int ok = a && b && tc_malloc_size(a) == c && tc_malloc_size(b) == c;
    tc_free(a);
    tc_free(b);
    return ok;
}

/* Fills the class tables from tc_nallocx(): each step's largest request
 * gives the entry, its smallest must give the same, and real blocks at both
 * ends must have that size. */
static int fill_classes(void) {
    for (size_t i = 0; i < sizeof zm__tc_small / sizeof zm__tc_small[0]; i++) {
        size_t hi = i * 8, lo = i ? hi - 7 : 0, c = tc_nallocx(hi, 0);
        if (c != tc_nallocx(lo, 0) || c > UINT32_MAX || !blocks_agree(lo, hi, c)) {
            zm__fp_note(ZM_FP_TCMALLOC_SIZES, "trial disagreed: request %zu", hi);
            return 0;
        }
        zm__tc_small[i] = (uint32_t)c;
    }
    for (size_t i = ZM_TC_SMALL_MAX / 128 + 1; i < sizeof zm__tc_large / sizeof zm__tc_large[0]; i++) {
        size_t hi = i * 128, lo = hi - 127 > ZM_TC_SMALL_MAX ? hi - 127 : ZM_TC_SMALL_MAX + 1;
        size_t c = tc_nallocx(hi, 0);
        if (c != tc_nallocx(lo, 0) || c > UINT32_MAX || !blocks_agree(lo, hi, c)) {
            zm__fp_note(ZM_FP_TCMALLOC_SIZES, "trial disagreed: request %zu", hi);
            return 0;
        }
        zm__tc_large[i] = (uint32_t)c;
    }
    zm__fp_note(ZM_FP_TCMALLOC_SIZES, NULL);
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

int zm__tc_sizes_setup(void) {
    int classes_ok = fill_classes() ? 1 : -1;
    find_size_lookup();
    find_class_cache(classes_ok);
    return classes_ok;
}
