/* libzmalloc.so loaded with dlopen() by a program that does not link it.
 * Built on the private jemalloc, the library carries jemalloc's TLS, which
 * is initial-exec: glibc then either finds room in its static TLS surplus
 * and the library works, or refuses with its own message, "cannot allocate
 * memory in static TLS block" (GLIBC_TUNABLES=glibc.rtld.optional_static_tls
 * makes the room; docs/jemalloc.md). Usage: test_dlopen LIB either|works */
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv) {
    if (argc != 3) return 2;
    int must_work = strcmp(argv[2], "works") == 0;
    void *h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        const char *e = dlerror();
        printf("dlopen: %s\n", e);
        if (!must_work && strstr(e, "cannot allocate memory in static TLS block")) return 0;
        return 1;
    }
    void *(*zm_malloc)(size_t) = (void *(*)(size_t))dlsym(h, "zm_malloc");
    void (*zm_free)(void *) = (void (*)(void *))dlsym(h, "zm_free");
    size_t (*zm_used_memory)(void) = (size_t (*)(void))dlsym(h, "zm_used_memory");
    size_t (*zm_size)(const void *) = (size_t (*)(const void *))dlsym(h, "zm_size");
    if (!zm_malloc || !zm_free || !zm_used_memory || !zm_size) return 1;
    size_t base = zm_used_memory();
    void *p = zm_malloc(100);
    size_t held = zm_used_memory() - base;
    /* The block's accounted size (usable size, or request plus header). */
    int ok = p && held >= 100 && held == zm_size(p);
    zm_free(p);
    ok = ok && zm_used_memory() == base;
    printf("dlopen: loaded; zm_malloc(100) held %zu, back to %zu: %s\n", held, zm_used_memory(),
           ok ? "ok" : "WRONG");
    return ok ? 0 : 1;
}
