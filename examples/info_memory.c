/* A small multi-threaded key-value workload written against the Redis names
 * (zmalloc, zfree, zstrdup, zmalloc_used_memory, ...), then a report in the
 * format of Redis's INFO memory section, printed while the data is live and
 * again after teardown.
 *
 * Four workers each build a hash table of string keys and values: keys come
 * from zstrdup, the entry array and values grow with zrealloc, the index is
 * zcalloc'ed and rehashed. Teardown frees every worker's values from the
 * *next* worker's thread, the way a Redis lazyfree or I/O thread releases
 * memory it did not allocate, so the per-thread counters go negative and only
 * their sum is meaningful. That sum must come back to where it started, or
 * the program exits 1. */
#include <inttypes.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "zmalloc.h"

#define WORKERS 4
#define KEYS_PER_WORKER 25000
/* Key ids are drawn from a range a bit larger than the insert count, so some
 * inserts hit an existing key and overwrite (free + allocate) its value. */
#define KEY_SPACE (KEYS_PER_WORKER + KEYS_PER_WORKER / 4)

typedef struct {
    char *key;
    char *val;
    size_t len, alloc; /* alloc: usable bytes of val, as sds keeps it */
} entry;

typedef struct {
    entry *ents;
    size_t n, cap;
    uint32_t *index; /* open addressing; 1 + position in ents, 0 = empty */
    size_t nbuckets; /* a power of two */
    uint64_t rng;
    unsigned id;
    size_t overwrites, appends;
} shard;

static shard shards[WORKERS];
static pthread_barrier_t built, resume, values_freed;

static uint64_t next_rand(uint64_t *s) {
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

static uint64_t hash_str(const char *s) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    while (*s) h = (h ^ (unsigned char)*s++) * 1099511628211ull;
    return h;
}

/* Mostly small values with an occasional big one, like a typical cache. */
static size_t value_len(uint64_t r) {
    if ((r & 31) == 0) return 1024 + (size_t)((r >> 8) % 15360);
    return 16 + (size_t)((r >> 8) % 200);
}

static void set_value(entry *e, size_t len, int fill) {
    e->val = zmalloc_usable(len, &e->alloc);
    /* The usable room past len is ours: tell _FORTIFY_SOURCE so. */
    e->val = extend_to_usable(e->val, e->alloc);
    memset(e->val, fill, len);
    e->len = len;
}

/* Grows the value as sds's greedy append does: double while under 1 MiB, so
 * that repeated appends do not realloc every time. */
static void append_value(entry *e, size_t extra, int fill) {
    size_t need = e->len + extra;
    if (need > e->alloc) {
        size_t want = need < 1024 * 1024 ? need * 2 : need + 1024 * 1024;
        e->val = zrealloc_usable(e->val, want, &e->alloc);
        e->val = extend_to_usable(e->val, e->alloc);
    }
    memset(e->val + e->len, fill, extra);
    e->len = need;
}

static void rehash(shard *s, size_t nbuckets) {
    /* Redis's zcalloc takes a byte count (see build()); zcalloc_num is the
     * count * size form that checks the product for overflow. */
    uint32_t *index = zcalloc_num(nbuckets, sizeof *index);
    for (size_t i = 0; i < s->n; i++) {
        size_t b = hash_str(s->ents[i].key) & (nbuckets - 1);
        while (index[b]) b = (b + 1) & (nbuckets - 1);
        index[b] = (uint32_t)(i + 1);
    }
    zfree(s->index);
    s->index = index;
    s->nbuckets = nbuckets;
}

static entry *lookup_or_add(shard *s, const char *key, int *added) {
    size_t b = hash_str(key) & (s->nbuckets - 1);
    for (; s->index[b]; b = (b + 1) & (s->nbuckets - 1)) {
        entry *e = &s->ents[s->index[b] - 1];
        if (strcmp(e->key, key) == 0) {
            *added = 0;
            return e;
        }
    }
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 16;
        s->ents = zrealloc(s->ents, s->cap * sizeof *s->ents);
    }
    entry *e = &s->ents[s->n++];
    e->key = zstrdup(key);
    s->index[b] = (uint32_t)s->n;
    if (s->n * 2 > s->nbuckets) rehash(s, s->nbuckets * 2);
    *added = 1;
    return e;
}

static void build(shard *s) {
    s->nbuckets = 64;
    s->index = zcalloc(s->nbuckets * sizeof *s->index);
    char key[48];
    for (int i = 0; i < KEYS_PER_WORKER; i++) {
        uint64_t r = next_rand(&s->rng);
        snprintf(key, sizeof key, "shard:%u:user:%" PRIu64, s->id, r % KEY_SPACE);
        int added;
        entry *e = lookup_or_add(s, key, &added);
        int fill = 'a' + (int)(r % 26);
        if (added) {
            set_value(e, value_len(r >> 16), fill);
        } else if (r & 0x100000) {
            append_value(e, 8 + (size_t)((r >> 24) % 64), fill);
            s->appends++;
        } else {
            zfree(e->val);
            set_value(e, value_len(r >> 16), fill);
            s->overwrites++;
        }
    }
}

static void *worker(void *arg) {
    shard *mine = arg;
    shard *next = &shards[(mine->id + 1) % WORKERS];

    build(mine);
    pthread_barrier_wait(&built);  /* main reports on the live data set */
    pthread_barrier_wait(&resume);

    /* Another thread's values: freed here, counted against this thread. */
    for (size_t i = 0; i < next->n; i++) zfree(next->ents[i].val);
    pthread_barrier_wait(&values_freed);

    for (size_t i = 0; i < mine->n; i++) zfree(mine->ents[i].key);
    zfree(mine->ents);
    zfree(mine->index);
    return NULL;
}

/* ---------------------------------------------------------------- report */

/* Redis's bytesToHuman(). */
static void bytes_to_human(char *s, size_t size, unsigned long long n) {
    double d;
    if (n < 1024) {
        snprintf(s, size, "%lluB", n);
    } else if (n < (1024ull << 10)) {
        d = (double)n / 1024;
        snprintf(s, size, "%.2fK", d);
    } else if (n < (1024ull << 20)) {
        d = (double)n / (1024ull << 10);
        snprintf(s, size, "%.2fM", d);
    } else if (n < (1024ull << 30)) {
        d = (double)n / (1024ull << 20);
        snprintf(s, size, "%.2fG", d);
    } else if (n < (1024ull << 40)) {
        d = (double)n / (1024ull << 30);
        snprintf(s, size, "%.2fT", d);
    } else {
        d = (double)n / (1024ull << 40);
        snprintf(s, size, "%.2fP", d);
    }
}

static void field(const char *name, size_t v) {
    char human[32];
    bytes_to_human(human, sizeof human, v);
    printf("%s:%zu\n%s_human:%s\n", name, v, name, human);
}

static void info_memory(const char *when) {
    size_t used = zmalloc_used_memory();
    size_t peak = zmalloc_used_memory_peak();
    size_t rss = zmalloc_get_rss();

    printf("\n=== %s ===\n# Memory\n", when);
    field("used_memory", used);
    field("used_memory_peak", peak);
    field("used_memory_rss", rss);
    printf("mem_fragmentation_ratio:%.2f\n", zmalloc_get_fragmentation_ratio(rss));
    printf("mem_allocator:%s\n", ZMALLOC_LIB);
    char fast[1024];
    zm_fast_paths(fast, sizeof fast);
    printf("zmalloc_fast_paths:%s\n", fast);

    static const struct {
        const char *name;
        int bit;
    } figs[] = {
        {"allocator_allocated", ZMALLOC_INFO_ALLOCATED},
        {"allocator_active", ZMALLOC_INFO_ACTIVE},
        {"allocator_resident", ZMALLOC_INFO_RESIDENT},
        {"allocator_retained", ZMALLOC_INFO_RETAINED},
        {"allocator_muzzy", ZMALLOC_INFO_MUZZY},
        {"allocator_frag_smallbins_bytes", ZMALLOC_INFO_FRAG_SMALLBINS},
    };
    size_t v[6];
    int have = zmalloc_get_allocator_info(&v[0], &v[1], &v[2], &v[3], &v[4], &v[5]);
    /* A figure the backend does not keep is stored as 0; printing that 0
     * would read as a measurement. */
    for (size_t i = 0; i < sizeof figs / sizeof figs[0]; i++) {
        if (have & figs[i].bit) printf("%s:%zu\n", figs[i].name, v[i]);
        else printf("%s:n/a\n", figs[i].name);
    }

    size_t total = zmalloc_get_memory_size();
    size_t limit = zmalloc_get_memory_limit();
    field("total_system_memory", total);
    field("memory_limit", limit);
    printf("memory_limit_source:%s\n", limit != 0 && limit < total ? "cgroup" : "physical");
    field("maxmemory", zmalloc_get_limit());
    fflush(stdout);
}

static void oom(size_t size) {
    fprintf(stderr, "info_memory: out of memory allocating %zu bytes (maxmemory %zu)\n", size,
            zmalloc_get_limit());
    exit(1);
}

int main(int argc, char **argv) {
    if (argc == 2 && strcmp(argv[1], "--fast-paths") == 0) {
        /* Only which fast paths run here, and why the others do not. */
        char fast[1024];
        zm_fast_paths(fast, sizeof fast);
        printf("%s: %s\n", ZMALLOC_LIB, fast);
        return 0;
    }
    zmalloc_set_oom_handler(oom);
    /* A hard cap the workload stays far below (it peaks around 40 MB); it is
     * what the report shows as maxmemory. */
    zmalloc_set_limit((size_t)256 << 20);

    /* Long-lived state, like a server's config: allocated before the
     * baseline, so the baseline is not trivially 0. */
    char *config[3] = {zstrdup("maxmemory-policy noeviction"), zstrdup("io-threads 4"),
                       zstrdup("lazyfree-lazy-user-del yes")};
    size_t baseline = zmalloc_used_memory();

    if (pthread_barrier_init(&built, NULL, WORKERS + 1) ||
        pthread_barrier_init(&resume, NULL, WORKERS + 1) ||
        pthread_barrier_init(&values_freed, NULL, WORKERS)) {
        fprintf(stderr, "pthread_barrier_init failed\n");
        return 2;
    }
    pthread_t tid[WORKERS];
    for (unsigned i = 0; i < WORKERS; i++) {
        shards[i].id = i;
        shards[i].rng = 0x9E3779B97F4A7C15ull * (i + 1);
        if (pthread_create(&tid[i], NULL, worker, &shards[i]) != 0) {
            fprintf(stderr, "pthread_create failed\n");
            return 2;
        }
    }

    pthread_barrier_wait(&built);
    size_t keys = 0, overwrites = 0, appends = 0;
    for (unsigned i = 0; i < WORKERS; i++) {
        keys += shards[i].n;
        overwrites += shards[i].overwrites;
        appends += shards[i].appends;
    }
    char title[128];
    snprintf(title, sizeof title, "mid-workload: %d threads holding %zu keys (%zu overwrites, %zu appends)",
             WORKERS, keys, overwrites, appends);
    info_memory(title);
    pthread_barrier_wait(&resume);

    for (unsigned i = 0; i < WORKERS; i++) pthread_join(tid[i], NULL);
    info_memory("after teardown (values freed by a different thread than allocated them)");

    /* Freed memory is still in the allocator's caches until it is returned. */
    jemalloc_purge();
    size_t rss = zmalloc_get_rss();
    char human[32];
    bytes_to_human(human, sizeof human, rss);
    printf("\nafter jemalloc_purge(): used_memory_rss:%zu used_memory_rss_human:%s\n", rss, human);

    size_t end = zmalloc_used_memory();
    for (int i = 0; i < 3; i++) zfree(config[i]);
    if (end != baseline) {
        printf("accounting: NOT exact (used_memory %zu, started at %zu)\n", end, baseline);
        return 1;
    }
    printf("accounting: exact (used_memory back to %zu)\n", end);
    return 0;
}
