/* The C library backend's cold calls: statistics from mallinfo2(), trimming,
 * and the load-time check that enables the glibc chunk-header fast path. */
#include <dlfcn.h>
#include <errno.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "backend.h"
#include "fast_path.h"
#include "os.h"

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

#ifdef ZM_GLIBC_CHUNKS
int zm__glibc_chunks_ok;
#ifndef ZM_PRELOAD
uintptr_t zm__glibc_chunks_floor = UINTPTR_MAX;
#endif
#endif

__attribute__((constructor)) static void probe_malloc(void) {
    malloc_is_glibcs = find_glibc_malloc();
#ifdef ZM_GLIBC_CHUNKS
    zm__glibc_chunks_ok = zm__glibc_chunks_try(malloc_is_glibcs);
#ifndef ZM_PRELOAD
    if (zm__glibc_chunks_ok) zm__glibc_chunks_floor = 1;
#endif
#ifdef ZM_GLIBC_TCACHE
    zm__gtc_setup(zm__glibc_chunks_ok); /* sets the copies' floor */
#elif defined(__x86_64__)
    zm__fp_allowed(ZM_FP_GLIBC_TCACHE); /* notes why not */
#else
    zm__fp_note(ZM_FP_GLIBC_TCACHE, "x86-64 only");
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

#ifdef ZM_GLIBC_TCACHE
size_t zm__glibc_free_other(void *p) {
    if (!p) return 0;
    size_t n = zm__be_usable(p);
    ZM_LIBC(free)(p);
    return n;
}

#endif

void zm__be_get_stats(zm__be_stats *out) {
    memset(out, 0, sizeof *out);
#ifdef __GLIBC__
    if (!malloc_is_glibcs) return;
    struct mallinfo2 mi = mallinfo2();
    out->allocated = mi.uordblks + mi.hblkhd; /* in use: heap chunks + mmapped chunks */
    out->active = mi.arena + mi.hblkhd;       /* taken from the OS */
    out->have = ZM__BE_HAVE_ALLOCATED | ZM__BE_HAVE_ACTIVE;
#endif
}

void zm__be_background_thread(int enable) { (void)enable; }

int zm__be_purge(void) {
#ifdef __GLIBC__
    malloc_trim(0);
#endif
    return 0;
}
