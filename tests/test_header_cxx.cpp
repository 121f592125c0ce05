// The header compiles as C++ and links with C linkage.
#include "zmalloc.h"

#include <cstring>

int main() {
    char *s = zstrdup("c++");
    size_t usable = 0;
    void *p = zmalloc_usable(100, &usable);
    bool ok = std::strcmp(s, "c++") == 0 && usable >= 100 && zmalloc_used_memory() >= usable;
    zfree(s);
    zfree_usable(p, nullptr);
    return ok && zmalloc_used_memory() == 0 ? 0 : 1;
}
