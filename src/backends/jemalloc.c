/* jemalloc's cold calls: statistics through mallctl, purging, the background
 * thread, and the load-time probes of jemalloc.h's fast paths. */
#include <dlfcn.h>
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "backend.h"
#include "fast_path.h"
#include "os.h"

#define ZM_STR(x) ZM_STR2(x)
#define ZM_STR2(x) #x
#define ARENAS_ALL ZM_STR(MALLCTL_ARENAS_ALL)

int zm__je_classes_ok;

/* Every call here may come from a thread without a slot (jemalloc_fast.h). */
static void after_mallctl(void) {
#ifdef ZM_JE_FAST
    zm__jef_after_uncounted_call();
#endif
}

#ifdef ZM_JE_PRIVATE
/* "thread.allocatedp" and "thread.deallocatedp" as MIBs, looked up at load
 * time (which also sets up jemalloc's mallctl tree before any fork). */
static size_t allocated_mib[2], deallocated_mib[2], counters_miblen;

int zm__be_thread_counters(const volatile uint64_t **allocated,
                           const volatile uint64_t **deallocated) {
    uint64_t *a = NULL, *d = NULL;
    size_t la = sizeof a, ld = sizeof d;
    int failed = counters_miblen == 0 ||
                 mallctlbymib(allocated_mib, counters_miblen, &a, &la, NULL, 0) != 0 ||
                 mallctlbymib(deallocated_mib, counters_miblen, &d, &ld, NULL, 0) != 0 || !a || !d;
    after_mallctl();
    if (failed) return -1;
    *allocated = a;
    *deallocated = d;
    return 0;
}

static void find_counters(void) {
    size_t n = 2, m = 2;
    if (mallctlnametomib("thread.allocatedp", allocated_mib, &n) == 0 &&
        mallctlnametomib("thread.deallocatedp", deallocated_mib, &m) == 0 && n == 2 && m == 2)
        counters_miblen = 2;
}
#else
static void *plain_mallocx(size_t size) { return mallocx(size, 0); }
static void plain_dallocx(void *p) { dallocx(p, 0); }

void *(*zm__je_malloc)(size_t) = plain_mallocx;
void (*zm__je_free)(void *) = plain_dallocx;
int zm__je_own_malloc;
__thread volatile uint64_t *zm__je_deallocated __attribute__((tls_model("initial-exec")));

/* "thread.deallocatedp" as a MIB, looked up at load time: that also sets up
 * jemalloc's mallctl tree before any fork (setting it up first in a fork
 * child hung under ASan), and saves the name lookup per thread. */
static size_t deallocated_mib[2], deallocated_miblen;

volatile uint64_t *zm__je_find_deallocated(void) {
    uint64_t *p = NULL;
    size_t len = sizeof p;
    if (deallocated_miblen == 0 ||
        mallctlbymib(deallocated_mib, deallocated_miblen, &p, &len, NULL, 0) != 0)
        return NULL;
    zm__je_deallocated = p;
    return p;
}

/* jemalloc's own malloc and free: the program's when it linked jemalloc ahead
 * of libc, else the ones in the library that holds mallocx (a static
 * jemalloc linked into the program has no such handle: mallocx stays). Not
 * under a valgrind tool that replaces malloc: it replaces jemalloc's too, and
 * sallocx() would then be asked about valgrind's blocks. */
static void find_own_malloc(void) {
    if (zm__os_valgrind_replaces_malloc()) return;
    Dl_info x;
    void *sym_mallocx = dlsym(RTLD_DEFAULT, "mallocx");
    if (!sym_mallocx || !dladdr(sym_mallocx, &x) || !x.dli_fname) return;
    void *lib = dlopen(x.dli_fname, RTLD_LAZY | RTLD_NOLOAD);
    if (!lib) return;
    void *sym_malloc = dlsym(lib, "malloc"), *sym_free = dlsym(lib, "free");
    Dl_info m, f;
    if (sym_malloc && sym_free && dladdr(sym_malloc, &m) && dladdr(sym_free, &f) &&
        m.dli_fbase == x.dli_fbase && f.dli_fbase == x.dli_fbase) {
        zm__je_malloc = (void *(*)(size_t))sym_malloc;
        zm__je_free = (void (*)(void *))sym_free;
        zm__je_own_malloc = 1;
    }
    dlclose(lib); /* RTLD_NOLOAD took a reference: the library stays loaded */
}

#endif

size_t zm__je_pages_above = SIZE_MAX, zm__je_page_mask;

/* Where jemalloc rounds requests to pages (jemalloc.h): on only if it says
 * so and gives its largest small class ("arenas.bin.<nbins - 1>.size") and
 * its page size; otherwise size_classes_agree() finds the formula wrong, and
 * nallocx() answers. */
static void find_page_rounding(void) {
    bool on = false;
    unsigned nbins = 0;
    size_t mib[4], miblen = 4, small_max = 0, page = 0;
    size_t len = sizeof on;
    if (mallctl("opt.disable_large_size_classes", &on, &len, NULL, 0) != 0 || !on) return;
    len = sizeof nbins;
    if (mallctl("arenas.nbins", &nbins, &len, NULL, 0) != 0 || nbins == 0) return;
    if (mallctlnametomib("arenas.bin.0.size", mib, &miblen) != 0 || miblen != 4) return;
    mib[2] = nbins - 1;
    len = sizeof small_max;
    if (mallctlbymib(mib, miblen, &small_max, &len, NULL, 0) != 0) return;
    len = sizeof page;
    if (mallctl("arenas.page", &page, &len, NULL, 0) != 0 || page == 0 || (page & (page - 1))) return;
    zm__je_page_mask = page - 1;
    zm__je_pages_above = small_max;
}

/* Walks every size class up to 64 MiB, checking both ends of each. */
static int size_classes_agree(void) {
    for (size_t n = 1; n <= ((size_t)64 << 20); n = zm__je_size_class(n) + 1) {
        size_t c = zm__je_size_class(n);
        if (nallocx(n, 0) != c || nallocx(c, 0) != c) return 0;
    }
    return 1;
}

#ifdef ZM_JE_PRIVATE
#ifdef ZM_JE_FAST
size_t zm__jef_max;
uintptr_t zm__jef_floor = UINTPTR_MAX;

/* The copies were checked at build time against the very object linked in
 * (jemalloc_fast_check.c); at load only the switch and the version remain. */
static void open_fast_paths(void) {
    static const char *const verified[] = {ZM_JEF_VERSION, NULL};
    const char *version = NULL;
    size_t len = sizeof version;
    if (mallctl("version", &version, &len, NULL, 0) != 0) version = NULL;
    if (!zm__fp_allowed(ZM_FP_JEMALLOC_COPIES) ||
        !zm__fp_version(ZM_FP_JEMALLOC_COPIES, "jemalloc", version, verified))
        return;
    zm__jef_max = ZM_JEF_MAX_REQUEST;
    zm__jef_floor = 1;
    zm__fp_note(ZM_FP_JEMALLOC_COPIES, NULL);
}
#else
static void open_fast_paths(void) {
#ifdef ZM_JEF_BUILD_NOTE
    zm__fp_note(ZM_FP_JEMALLOC_COPIES, "%s", ZM_JEF_BUILD_NOTE);
#else
    zm__fp_note(ZM_FP_JEMALLOC_COPIES, "not built for this target");
#endif
}
#endif

__attribute__((constructor)) static void probe_jemalloc(void) {
    find_counters();
    find_page_rounding();
    zm__je_classes_ok = size_classes_agree();
    open_fast_paths();
    after_mallctl();
}
#else
__attribute__((constructor)) static void probe_jemalloc(void) {
    find_own_malloc();
    deallocated_miblen = sizeof deallocated_mib / sizeof deallocated_mib[0];
    if (mallctlnametomib("thread.deallocatedp", deallocated_mib, &deallocated_miblen) != 0)
        deallocated_miblen = 0;
    find_page_rounding();
    zm__je_classes_ok = size_classes_agree();
}
#endif

static size_t read_size(const char *name) {
    size_t v = 0, len = sizeof v;
    return mallctl(name, &v, &len, NULL, 0) == 0 ? v : 0;
}

/* Free room in the slabs of small size classes, as Valkey computes it:
 * per bin, (regions per slab * slabs - regions in use) * region size. */
static size_t small_bins_free_bytes(void) {
    unsigned nbins = 0;
    size_t len = sizeof nbins;
    if (mallctl("arenas.nbins", &nbins, &len, NULL, 0) != 0) return 0;
    size_t size_mib[4], nregs_mib[4], curregs_mib[6], curslabs_mib[6];
    size_t n4 = 4, n4b = 4, n6 = 6, n6b = 6;
    if (mallctlnametomib("arenas.bin.0.size", size_mib, &n4) ||
        mallctlnametomib("arenas.bin.0.nregs", nregs_mib, &n4b) ||
        mallctlnametomib("stats.arenas.0.bins.0.curregs", curregs_mib, &n6) ||
        mallctlnametomib("stats.arenas.0.bins.0.curslabs", curslabs_mib, &n6b))
        return 0;
    curregs_mib[2] = curslabs_mib[2] = MALLCTL_ARENAS_ALL;
    size_t frag = 0;
    for (unsigned j = 0; j < nbins; j++) {
        size_t reg_size = 0, curregs = 0, curslabs = 0;
        uint32_t nregs = 0;
        size_t l1 = sizeof reg_size, l2 = sizeof nregs, l3 = sizeof curregs, l4 = sizeof curslabs;
        size_mib[2] = nregs_mib[2] = curregs_mib[4] = curslabs_mib[4] = j;
        if (mallctlbymib(size_mib, 4, &reg_size, &l1, NULL, 0) ||
            mallctlbymib(nregs_mib, 4, &nregs, &l2, NULL, 0) ||
            mallctlbymib(curregs_mib, 6, &curregs, &l3, NULL, 0) ||
            mallctlbymib(curslabs_mib, 6, &curslabs, &l4, NULL, 0))
            return 0;
        frag += ((size_t)nregs * curslabs - curregs) * reg_size;
    }
    return frag;
}

void zm__be_get_stats(zm__be_stats *out) {
    memset(out, 0, sizeof *out);
    uint64_t epoch = 1;
    size_t len = sizeof epoch;
    if (mallctl("epoch", &epoch, &len, &epoch, len) != 0) { /* refresh the stats */
        after_mallctl();
        return;
    }
    out->allocated = read_size("stats.allocated");
    out->active = read_size("stats.active");
    out->resident = read_size("stats.resident");
    out->retained = read_size("stats.retained");
    out->muzzy = read_size("stats.arenas." ARENAS_ALL ".pmuzzy") * read_size("arenas.page");
    out->frag_smallbins = small_bins_free_bytes();
    after_mallctl();
    out->have = ZM__BE_HAVE_ALLOCATED | ZM__BE_HAVE_ACTIVE | ZM__BE_HAVE_RESIDENT |
                ZM__BE_HAVE_RETAINED | ZM__BE_HAVE_MUZZY | ZM__BE_HAVE_FRAG_SMALLBINS;
}

void zm__be_background_thread(int enable) {
    bool on = enable != 0;
    mallctl("background_thread", NULL, NULL, &on, sizeof on);
    after_mallctl();
}

int zm__be_purge(void) {
    /* Flush this thread's cache first, or its free blocks stay out of reach. */
    mallctl("thread.tcache.flush", NULL, NULL, NULL, 0);
    int rc = mallctl("arena." ARENAS_ALL ".purge", NULL, NULL, NULL, 0);
    after_mallctl();
    if (rc == 0) return 0;
    errno = rc;
    return -1;
}
