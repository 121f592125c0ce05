/* A program that links the static library and calls nothing but zm_malloc
 * and zm_free still gets its backend's load-time probe: the linker takes an
 * object out of libzmalloc.a only for a symbol something needs, so the
 * object with the probe (a constructor) must define state the hot path
 * reads. Once it did not (libc.c, when the chunk reads' switch moved to
 * glibc_chunks.c): every pair then asked malloc_usable_size(), 91 -> 250
 * instructions, and no test saw it, because each also called a query that
 * pulled the probe in. The register of fast paths (fast_path.c, which the
 * probe notes into, and which pulls nothing in) shows whether it ran.
 * Exit 0: it ran; 1: it did not; 77: this build's backend notes nothing. */
#include <stdio.h>
#include <string.h>

#include "backend.h"
#include "fast_path.h"
#include "zmalloc.h"

#if defined(ZM_SIZE_HEADER)
/* The header holds every size: zm_malloc and zm_free need nothing the probe
 * learns, and a query that does (zm_get_allocator_info) links it. */
#elif defined(ZM_JE_PRIVATE)
#define FIRST_NOTE "jemalloc-copies"
#elif defined(ZM_BACKEND_TCMALLOC_H)
#define FIRST_NOTE "tcmalloc-size-table"
#elif defined(ZM_BACKEND_MIMALLOC_H)
#define FIRST_NOTE "mimalloc-size-table"
#elif defined(ZM_GLIBC_CHUNKS)
#define FIRST_NOTE "glibc-heap-chunks"
#endif

int main(void) {
    zm_free(zm_malloc(64));
#ifdef FIRST_NOTE
    char report[1024];
    zm__fp_format(report, sizeof report);
    if (strstr(report, FIRST_NOTE ":")) return 0;
    printf("the backend's load-time probe did not run (no \"%s\" in the report: \"%s\")\n", FIRST_NOTE,
           report);
    return 1;
#else
    puts("skipped: zm_malloc and zm_free need nothing from this build's probe (the size header), or "
         "its backend notes no fast path (a sanitizer build, another C library, the shared jemalloc)");
    return 77;
#endif
}
