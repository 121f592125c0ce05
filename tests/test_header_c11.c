/* zmalloc.h first, nothing before it, strict C11: every declaration must
 * stand on its own (Valkey's changes meaning without <stdlib.h> first). */
#include "zmalloc.h"

int main(void) {
    void *p = zmalloc(24);
    void (*destructor)(void *) = zfree; /* Redis passes zfree as a callback */
    size_t n = zmalloc_size(p);
    destructor(p);
    return n >= 24 && zmalloc_used_memory() == 0 ? 0 : 1;
}
