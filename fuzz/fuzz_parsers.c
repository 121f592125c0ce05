/* libFuzzer target for the /proc and cgroup parsers behind the OS queries
 * (the test seams of src/os.h). The first byte picks the parser; the rest is
 * copied to a heap buffer of exactly its size (no NUL) so that ASan catches
 * any read past the end. Checks beyond "no crash": the smaps summer gives the
 * same answer however the input is split, and a cgroup limit is always one of
 * the values in the temporary tree (or 0). */
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "os.h"

#define CHECK(c)                                                                        \
    do {                                                                                \
        if (!(c)) {                                                                     \
            fprintf(stderr, "fuzz_parsers: check failed at line %d: %s\n", __LINE__, #c); \
            abort();                                                                    \
        }                                                                               \
    } while (0)

static char tree[64];
static char v2_root[128], v1_root[128];

static void put_file(const char *dir, const char *rel, const char *text) {
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    FILE *f = fopen(path, "w");
    if (!f) abort();
    fputs(text, f);
    fclose(f);
}

static void make_dir(const char *dir, const char *rel) {
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    if (mkdir(path, 0755) != 0) abort();
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void remove_tree(void) {
    if (tree[0]) nftw(tree, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* v2: /memory.max 1 GiB, /a "max", /a/b 512 MiB, /c garbage.
 * v1: / unlimited (ignored), /a 256 MiB. */
int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    strcpy(tree, "/tmp/zm_fuzz_cgroup.XXXXXX");
    if (!mkdtemp(tree)) abort();
    atexit(remove_tree);
    snprintf(v2_root, sizeof v2_root, "%s/v2", tree);
    snprintf(v1_root, sizeof v1_root, "%s/v1", tree);
    make_dir(tree, "v2");
    make_dir(tree, "v2/a");
    make_dir(tree, "v2/a/b");
    make_dir(tree, "v2/c");
    make_dir(tree, "v1");
    make_dir(tree, "v1/a");
    put_file(tree, "v2/memory.max", "1073741824\n");
    put_file(tree, "v2/a/memory.max", "max\n");
    put_file(tree, "v2/a/b/memory.max", "536870912\n");
    put_file(tree, "v2/c/memory.max", "12x\n");
    put_file(tree, "v1/memory.limit_in_bytes", "9223372036854771712\n");
    put_file(tree, "v1/a/memory.limit_in_bytes", "268435456\n");
    return 0;
}

static const char *const fields[] = {"Rss:", "Rss", "Pss:", "Private_Dirty:", "Swap:",
                                     "AnonHugePages:", "Size", "R", "KernelPageSize:"};

static size_t smaps_sum(const char *field, const char *buf, size_t len, size_t split, int *found) {
    zm__smaps_sum s;
    zm__smaps_init(&s, field);
    zm__smaps_feed(&s, buf, split);
    zm__smaps_feed(&s, buf + split, len - split);
    return zm__smaps_result(&s, found);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 2) return 0;
    unsigned sel = data[0], arg = data[1];
    size_t len = size - 2;
    char *buf = malloc(len ? len : 1); /* exactly the input, no terminator */
    if (!buf) return 0;
    memcpy(buf, data + 2, len);
    switch (sel % 4) {
    case 0: {
        unsigned long long pages = 0;
        zm__parse_statm_resident(buf, len, &pages);
        break;
    }
    case 1: {
        long long v = 0;
        int i = (int)(int8_t)arg; /* -128..127: bad indexes too */
        int ok = zm__parse_stat_field(buf, len, i, &v);
        CHECK(!ok || i >= 1);
        break;
    }
    case 2: {
        const char *field = fields[(sel / 4) % (sizeof fields / sizeof fields[0])];
        size_t split = len ? (size_t)arg * len / 255 : 0;
        int f1 = 0, f2 = 0, f3 = 0;
        size_t a = smaps_sum(field, buf, len, 0, &f1);
        size_t b = smaps_sum(field, buf, len, split, &f2);
        CHECK(a == b && f1 == f2);
        if (len <= 512) { /* byte by byte */
            zm__smaps_sum s;
            zm__smaps_init(&s, field);
            for (size_t i = 0; i < len; i++) zm__smaps_feed(&s, buf + i, 1);
            CHECK(zm__smaps_result(&s, &f3) == a && f3 == f1);
        }
        break;
    }
    default: {
        size_t lim = zm__cgroup_limit(buf, len, v2_root, v1_root);
        CHECK(lim == 0 || lim == 1073741824u || lim == 536870912u || lim == 268435456u);
        break;
    }
    }
    free(buf);
    return 0;
}
