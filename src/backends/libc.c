/* The C library backend's cold calls: statistics from mallinfo2(), trimming,
 * and the load-time check that enables the glibc chunk-header fast path. */
#include <dlfcn.h>
#include <errno.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "backend.h"
#include "os.h"
#include "zmalloc.h"

/* Whether malloc is glibc's own: not a sanitizer's, valgrind's or another
 * allocator's put in front of it. Only then do glibc's figures describe the
 * heap, and only then can its chunk headers be read. */
static int malloc_is_glibcs;

#ifdef __GLIBC__
#ifdef ZM_PRELOAD
/* Our malloc is the program's; glibc's own is the one reached by __libc_*. */
static int find_glibc_malloc(void) { return 1; }
#else
static int find_glibc_malloc(void) {
    Dl_info info;
    void *sym = dlsym(RTLD_DEFAULT, "malloc");
    if (!sym || !dladdr(sym, &info) || !info.dli_fname) return 0;
    if (!strstr(info.dli_fname, "/libc.so")) return 0;
    return !zm__os_valgrind_replaces_malloc();
}
#endif
#else
static int find_glibc_malloc(void) { return 0; }
#endif

#ifdef ZM_PRELOAD
/* glibc's malloc_usable_size(), found past ours at load time. */
static size_t usable_unknown(void *p) {
    (void)p;
    return 0;
}
static size_t (*glibc_usable_size)(void *) = usable_unknown;
#define glibc_malloc __libc_malloc
#define glibc_free __libc_free
#else
#define glibc_usable_size malloc_usable_size
#define glibc_malloc malloc
#define glibc_free free
#endif

#ifdef ZM_GLIBC_CHUNKS
int zm__glibc_chunks_ok;
#if !defined(ZM_PRELOAD) || defined(ZM_GLIBC_TCACHE)
uintptr_t zm__glibc_inline_floor = UINTPTR_MAX;
#endif

/* Both sides of the mmap threshold, the smallest chunk and odd sizes. The
 * mmapped probe is larger than glibc's largest dynamic mmap threshold (32 MiB
 * on 64-bit, 16 MiB on 32-bit): freeing a smaller mmapped chunk would raise
 * the program's threshold to its size for good. Untouched, it costs address
 * space only. */
static int chunk_reads_agree(void) {
    static const size_t sizes[] = {0, 1, 8, 24, 25, 100, 1000, 4096, 70000, ((size_t)64 << 20) + 8};
    int ok = 1;
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        void *p = glibc_malloc(sizes[i]);
        if (!p) return 0;
        ok &= zm__glibc_chunk_usable(p) == glibc_usable_size(p);
        glibc_free(p);
    }
    return ok;
}
#endif

__attribute__((constructor)) static void probe_malloc(void) {
#ifdef ZM_PRELOAD
    size_t (*usable)(void *) = (size_t(*)(void *))dlsym(RTLD_NEXT, "malloc_usable_size");
    if (usable) glibc_usable_size = usable;
#endif
    malloc_is_glibcs = find_glibc_malloc();
#ifdef ZM_GLIBC_CHUNKS
    zm__glibc_chunks_ok = malloc_is_glibcs && chunk_reads_agree();
#ifdef ZM_GLIBC_TCACHE
    if (!zm__os_valgrind_replaces_malloc()) zm__gtc_setup(); /* sets the floor: the free copy */
#elif !defined(ZM_PRELOAD)
    if (zm__glibc_chunks_ok) zm__glibc_inline_floor = 1;
#endif
#ifdef ZM_PRELOAD
    if (!zm__glibc_chunks_ok) {
        static const char msg[] = "zmalloc preload (libc): this glibc's chunk headers are not the "
                                  "layout zmalloc reads; it cannot count. Use another backend.\n";
        ssize_t ignored = write(STDERR_FILENO, msg, sizeof msg - 1);
        (void)ignored;
        syscall(SYS_exit_group, 127); /* not _exit: the preload library's own would report */
    }
#endif
#endif
}

void zm__be_get_stats(zm__be_stats *out) {
    memset(out, 0, sizeof *out);
#ifdef __GLIBC__
    if (!malloc_is_glibcs) return;
    struct mallinfo2 mi = mallinfo2();
    out->allocated = mi.uordblks + mi.hblkhd; /* in use: heap chunks + mmapped chunks */
    out->active = mi.arena + mi.hblkhd;       /* taken from the OS */
    out->have = ZMALLOC_INFO_ALLOCATED | ZMALLOC_INFO_ACTIVE;
#endif
}

void zm__be_background_thread(int enable) { (void)enable; }

int zm__be_purge(void) {
#ifdef __GLIBC__
    malloc_trim(0);
#endif
    return 0;
}
