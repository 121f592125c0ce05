/* A program of a project that builds zmalloc as part of itself
 * (add_subdirectory or FetchContent) and links zmalloc::zmalloc_static. */
#include <stdio.h>
#include <string.h>

#include "zmalloc.h"

int main(void) {
    void *p = zmalloc(100);
    int ok = zmalloc_used_memory() == zmalloc_size(p);
    zfree(p);
    ok = ok && zmalloc_used_memory() == 0 && strcmp(zm_version(), ZMALLOC_VERSION_STRING) == 0;
    printf("subproject: zmalloc %s (%s) %s\n", zm_version(), ZMALLOC_LIB, ok ? "ok" : "wrong");
    return ok ? 0 : 1;
}
