/* ZMALLOC_EXPORT_REDIS_NAMES: code compiled against Redis's or Valkey's own
 * declarations (redis_decls.h, not our header) links by symbol and each name
 * does its zm_* function's job. The used-memory deltas are checked against
 * the allocator's own malloc_usable_size where the block is libc's. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "redis_decls.h"

static int failed;
#define CHECK(cond)                                                     \
    do {                                                                \
        if (!(cond)) {                                                  \
            fprintf(stderr, "%s:%d: failed: %s\n", __FILE__, __LINE__, #cond); \
            failed++;                                                   \
        }                                                               \
    } while (0)

static long long since(size_t base) { return (long long)zmalloc_used_memory() - (long long)base; }

int main(void) {
    size_t base = zmalloc_used_memory(), u = 0;
    void *p = zmalloc(100);
    CHECK(p && since(base) == (long long)zmalloc_size(p) && zmalloc_size(p) >= 100);
    p = zrealloc(p, 1000);
    CHECK(since(base) == (long long)zmalloc_size(p) && zmalloc_size(p) >= 1000);
    zfree(p);
    CHECK(since(base) == 0);

    unsigned char *z = zcalloc_num(10, 30); /* hdr_histogram's call */
    int zero = 1;
    for (int i = 0; i < 300; i++) zero &= z[i] == 0;
    CHECK(zero && since(base) == (long long)zmalloc_size(z));
    valkey_free(z); /* Valkey's zfree */
    CHECK(since(base) == 0);

    p = valkey_malloc(50);
    p = valkey_realloc(p, 500);
    void *q = valkey_calloc(40);
    CHECK(since(base) == (long long)(zmalloc_size(p) + zmalloc_size(q)));
    zfree(p);
    zfree(q);

    char *s = zstrdup("redis");
    CHECK(strcmp(s, "redis") == 0);
    zfree(s);
    p = zmalloc_usable(20, &u);
    CHECK(u == zmalloc_usable_size(p) && u >= 20);
    p = ztryrealloc_usable(p, 200, &u);
    CHECK(u >= 200);
    zfree_usable(p, &u);
    CHECK(u >= 200 && since(base) == 0);
    p = ztrymalloc(10);
    q = ztrycalloc(10);
    zfree_with_size(p, zmalloc_usable_size(p));
    zfree(q);
    p = zmalloc_no_tcache(300);
    zfree_no_tcache(p);
    CHECK(since(base) == 0);

    void *libc_block = malloc(64);
    zlibc_free(libc_block); /* a real libc block, freed by libc */
    CHECK(since(base) == 0);

    size_t allocated = 0;
    zmalloc_get_allocator_info(&allocated, NULL, NULL, NULL, NULL, NULL);
    CHECK(zmalloc_get_rss() > 0);
    CHECK(zmalloc_get_memory_size() > 0);
    long long ticks = -1;
    CHECK(get_proc_stat_ll(14, &ticks) == 1 && ticks >= 0);

    printf("%d passed, %d failed\n", failed ? 0 : 1, failed ? 1 : 0);
    return failed ? 1 : 0;
}
