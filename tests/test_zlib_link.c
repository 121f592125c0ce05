/* zlib's static library defines its own zcalloc/zcfree; ours is zm_calloc
 * behind a macro, so both link into one program and each does its own job. */
#include <string.h>
#include <zlib.h>

#include "zmalloc.h"

int main(void) {
    const char text[] = "zmalloc and zlib in one program, zmalloc and zlib in one program";
    unsigned char packed[256], unpacked[256];
    uLongf plen = sizeof packed, ulen = sizeof unpacked;
    if (compress(packed, &plen, (const Bytef *)text, sizeof text) != Z_OK) return 1;
    if (uncompress(unpacked, &ulen, packed, plen) != Z_OK) return 2;
    if (ulen != sizeof text || memcmp(unpacked, text, ulen) != 0) return 3;
    char *z = zcalloc(64);
    for (int i = 0; i < 64; i++)
        if (z[i]) return 4;
    size_t used = zmalloc_used_memory();
    zfree(z);
    return used >= 64 && zmalloc_used_memory() == 0 ? 0 : 5;
}
