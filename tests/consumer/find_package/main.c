/* A user of the installed package: built twice by CMakeLists.txt, against
 * zmalloc::zmalloc (shared) and zmalloc::zmalloc_static. Checks the version
 * the header, the library and the CMake package give, and one allocation's
 * accounting. */
#include <stdio.h>
#include <string.h>

#include <zmalloc.h>

int main(void) {
    int ok = 1;
    if (strcmp(zm_version(), ZMALLOC_VERSION_STRING) != 0) {
        fprintf(stderr, "zm_version() %s, header %s\n", zm_version(), ZMALLOC_VERSION_STRING);
        ok = 0;
    }
    if (strcmp(ZMALLOC_VERSION_STRING, EXPECTED_VERSION) != 0) {
        fprintf(stderr, "header %s, CMake package %s\n", ZMALLOC_VERSION_STRING, EXPECTED_VERSION);
        ok = 0;
    }
    if (strcmp(ZMALLOC_LIB, EXPECTED_LIB) != 0) {
        fprintf(stderr, "ZMALLOC_LIB %s, CMake package %s\n", ZMALLOC_LIB, EXPECTED_LIB);
        ok = 0;
    }
    char *s = zm_strdup("find_package");
    ok = ok && zm_used_memory() == zm_size(s);
    zm_free(s);
    ok = ok && zm_used_memory() == 0;
    printf("%s: zmalloc %s (%s) %s\n", LINKAGE, zm_version(), ZMALLOC_LIB, ok ? "ok" : "wrong");
    return ok ? 0 : 1;
}
