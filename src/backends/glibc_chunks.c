/* Finds glibc's own functions (preload library) and checks the chunk
 * header reads against glibc's malloc_usable_size() on real blocks
 * (glibc_chunks.h). */
#include "backends/glibc_chunks.h"
#include "fast_path.h"
#include "os.h"

#ifdef ZM_PRELOAD
/* glibc's own functions, taken from glibc itself (zm__os_library_symbol, which
 * allocates nothing) at the first call of any of them: the first may come
 * from the dynamic loader, before any constructor. Where glibc cannot be
 * found (it always can, in a process that loaded this library), the
 * __libc_* references the linker bound stay. */
void *__libc_malloc(size_t);
void *__libc_calloc(size_t, size_t);
void *__libc_realloc(void *, size_t);
void *__libc_memalign(size_t, size_t);
void __libc_free(void *);

/* glibc exports its size call under one name only, which is also the
 * preload library's own: without glibc's, the chunk trial has nothing to
 * agree with, and the program stops at load (libc.c) rather than count
 * from unchecked reads. */
static size_t no_usable_size(void *p) {
    (void)p;
    return 0;
}

static void resolve(void) {
    static const char libc[] = "libc.so.6";
    zm__glibc_fns f = {
        (void *(*)(size_t))zm__os_library_symbol(libc, "__libc_malloc"),
        (void *(*)(size_t, size_t))zm__os_library_symbol(libc, "__libc_calloc"),
        (void *(*)(void *, size_t))zm__os_library_symbol(libc, "__libc_realloc"),
        (void *(*)(size_t, size_t))zm__os_library_symbol(libc, "__libc_memalign"),
        (void (*)(void *))zm__os_library_symbol(libc, "__libc_free"),
        (size_t(*)(void *))zm__os_library_symbol(libc, "malloc_usable_size"),
    };
    if (!f.malloc || !f.calloc || !f.realloc || !f.memalign || !f.free || !f.usable_size)
        f = (zm__glibc_fns){__libc_malloc, __libc_calloc, __libc_realloc, __libc_memalign,
                            __libc_free, no_usable_size};
    zm__glibc = f; /* the same values in every thread that races here */
}

static void *first_malloc(size_t n) {
    resolve();
    return zm__glibc.malloc(n);
}
static void *first_calloc(size_t n, size_t m) {
    resolve();
    return zm__glibc.calloc(n, m);
}
static void *first_realloc(void *p, size_t n) {
    resolve();
    return zm__glibc.realloc(p, n);
}
static void *first_memalign(size_t a, size_t n) {
    resolve();
    return zm__glibc.memalign(a, n);
}
static void first_free(void *p) {
    resolve();
    zm__glibc.free(p);
}
static size_t first_usable_size(void *p) {
    resolve();
    return zm__glibc.usable_size(p);
}

zm__glibc_fns zm__glibc = {first_malloc, first_calloc, first_realloc,
                           first_memalign, first_free, first_usable_size};

#define glibc_usable_size ZM_LIBC(usable_size)
#define glibc_malloc ZM_LIBC(malloc)
#define glibc_free ZM_LIBC(free)
#else
#define glibc_usable_size malloc_usable_size
#define glibc_malloc malloc
#define glibc_free free
#endif

#ifdef ZM_GLIBC_CHUNKS
size_t zm__glibc_mmap_bit = 2;

/* A block's chunk size word (glibc's, outside the block). */
static size_t size_word(const void *p) {
    const size_t *at = p;
    __asm__("" : "+r"(at));
    return at[-1];
}

/* Heap chunks: the smallest, odd sizes, and both sides of a page. */
static int heap_chunks_agree(void) {
    static const size_t sizes[] = {0, 1, 8, 24, 25, 100, 1000, 4096, 70000};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        void *p = glibc_malloc(sizes[i]);
        if (!p) return 0;
        size_t word = size_word(p), want = glibc_usable_size(p);
        int ok = (word & 2) == 0 && zm__glibc_chunk_usable(p) == want;
        glibc_free(p);
        if (!ok) {
            zm__fp_note(ZM_FP_GLIBC_HEAP_CHUNKS, "trial disagreed: request %zu", sizes[i]);
            return 0;
        }
    }
    zm__fp_note(ZM_FP_GLIBC_HEAP_CHUNKS, NULL);
    return 1;
}

/* Mmapped chunks: how many header words one gives up, learnt from a real
 * one and checked on two more. The blocks are larger than glibc's largest
 * dynamic mmap threshold (32 MiB on 64-bit, 16 MiB on 32-bit): freeing a
 * smaller mmapped chunk would raise the program's threshold to its size for
 * good. Untouched, they cost address space only. */
static int mmap_chunks_agree(void) {
    static const size_t sizes[] = {((size_t)64 << 20) + 8, ((size_t)64 << 20) + 4096 + 1,
                                   ((size_t)80 << 20) + 100};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        void *p = glibc_malloc(sizes[i]);
        if (!p) {
            zm__fp_note(ZM_FP_GLIBC_MMAP_CHUNKS, "no mmapped block to try");
            return 0;
        }
        size_t word = size_word(p), want = glibc_usable_size(p);
        size_t chunk = word & ~(size_t)7;
        if (i == 0 && (word & 2) && chunk - sizeof(size_t) == want) zm__glibc_mmap_bit = 0;
        int ok = (word & 2) && zm__glibc_chunk_usable(p) == want;
        glibc_free(p);
        if (!ok) {
            zm__fp_note(ZM_FP_GLIBC_MMAP_CHUNKS, "trial disagreed: chunk %zu, usable %zu", chunk, want);
            return 0;
        }
    }
    zm__fp_note(ZM_FP_GLIBC_MMAP_CHUNKS, NULL);
    return 1;
}

int zm__glibc_chunks_try(int malloc_is_glibcs) {
    if (!malloc_is_glibcs) {
        zm__fp_note(ZM_FP_GLIBC_HEAP_CHUNKS, "malloc is not glibc's");
        return 0;
    }
    /* Both kinds, or neither: the read has no branch per kind. */
    return heap_chunks_agree() && mmap_chunks_agree();
}
#endif

