/* libFuzzer target: the input is a program of allocation operations over a
 * pool of live blocks. After every step the counter must equal the baseline
 * plus the sum of zm_size() over the live blocks; each block holds a pattern
 * derived from its slot, and a realloc must keep the common prefix. Huge
 * sizes (SIZE_MAX, PTRDIFF_MAX, near-limits) must fail cleanly: NULL from
 * zm_try_*, the OOM handler (which returns) with the exact size from the
 * others, and nothing counted. Freeing everything restores the baseline. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "zmalloc.h"

/* ASan would abort on requests above its maximum instead of returning NULL. */
const char *__asan_default_options(void);
const char *__asan_default_options(void) { return "allocator_may_return_null=1"; }

#define POOL 64
#define FILL_CAP 65536

typedef struct {
    unsigned char *p;
    size_t len;
} slot_t;

static slot_t pool[POOL];
static size_t base;
static size_t oom_calls, oom_last;
static int limited; /* a zm_set_limit() cap is on: any request may fail */

/* Sizes >= PTRDIFF_MAX must fail; huge ones, or any under a cap, may. */
#define MUST_FAIL (req >= (size_t)PTRDIFF_MAX)
#define MAY_FAIL (is_huge || limited)

static void on_oom(size_t size) {
    oom_calls++;
    oom_last = size;
}

#define CHECK(c)                                                                     \
    do {                                                                             \
        if (!(c)) {                                                                  \
            fprintf(stderr, "fuzz_alloc: check failed at line %d: %s\n", __LINE__, #c); \
            abort();                                                                 \
        }                                                                            \
    } while (0)

typedef struct {
    const uint8_t *d;
    size_t n, i;
} reader;

static unsigned byte(reader *r) { return r->i < r->n ? r->d[r->i++] : 0; }

/* BIG: from here up an allocation may fail (64-bit: 2 TiB; 32-bit: 256 MiB).
 * It may also succeed: an allocator that reserves with MAP_NORESERVE gets
 * 2 TiB, and mimalloc 3.0.1 (Debian 13) then zeroes a calloc block page by
 * page (5 s a GiB): a 2 TiB one ran until it was killed (186 s, SIGKILL).
 * So the 64-bit huge sizes stay out of every address space: from 2^56 up,
 * the largest user one (x86-64 with five-level paging) cannot hold them. */
#if SIZE_MAX > 0xffffffffu
#define BIG ((size_t)1 << 41)
static const size_t huge[] = {
    SIZE_MAX,         SIZE_MAX - 1,          SIZE_MAX - 4096,     (size_t)PTRDIFF_MAX,
    (size_t)PTRDIFF_MAX - 1, (size_t)PTRDIFF_MAX + 1, SIZE_MAX / 2, (size_t)1 << 62,
    (size_t)1 << 56,  ((size_t)1 << 57) + 17,
};
#else
#define BIG ((size_t)1 << 28)
static const size_t huge[] = {
    SIZE_MAX,         SIZE_MAX - 1,          SIZE_MAX - 4096,     (size_t)PTRDIFF_MAX,
    (size_t)PTRDIFF_MAX - 1, (size_t)PTRDIFF_MAX + 1, SIZE_MAX / 2, (size_t)1 << 30,
    (size_t)3 << 29,  ((size_t)1 << 31) + 17,
};
#endif

/* A size: mostly small, sometimes 0, medium, up to 1 MiB, or huge. */
static size_t size_of(reader *r, int *is_huge) {
    unsigned k = byte(r);
    *is_huge = 0;
    switch (k >> 5) {
    case 0: return 0;
    case 1:
    case 2:
    case 3: return byte(r);
    case 4:
    case 5: return byte(r) | (size_t)byte(r) << 8;
    case 6: return (byte(r) | (size_t)byte(r) << 8 | (size_t)(byte(r) & 0x0f) << 16);
    default: *is_huge = 1; return huge[k % (sizeof huge / sizeof huge[0])];
    }
}

static unsigned char pat(int s, size_t j) { return (unsigned char)(s * 13 + j * 251 + 7); }

static void fill(int s) {
    size_t n = pool[s].len < FILL_CAP ? pool[s].len : FILL_CAP;
    for (size_t j = 0; j < n; j++) pool[s].p[j] = pat(s, j);
}

static void check_prefix(int s, const unsigned char *p, size_t len) {
    size_t n = len < FILL_CAP ? len : FILL_CAP;
    for (size_t j = 0; j < n; j++) CHECK(p[j] == pat(s, j));
}

static void check_count(void) {
    size_t sum = 0;
    for (int i = 0; i < POOL; i++) sum += zm_size(pool[i].p);
    CHECK(zm_used_memory() == base + sum);
}

/* After an allocating call: ok == the call succeeded. */
static void settle(int s, void *p, size_t req, size_t usable, int has_usable) {
    CHECK(p != NULL);
    CHECK(zm_usable_size(p) >= req);
    if (has_usable) {
        CHECK(usable == zm_usable_size(p));
        /* The room past the request is the caller's too. */
        if (usable > req) ((unsigned char *)zm_extend_to_usable(p, usable))[usable - 1] = 0xa5;
    }
    pool[s].p = p;
    pool[s].len = req;
    fill(s);
}

static void release(int s, unsigned how) {
    void *p = pool[s].p;
    if (!p) return;
    check_prefix(s, p, pool[s].len);
    pool[s].p = NULL;
    size_t u = 1;
    switch (how % 3) {
    case 0: zm_free(p); break;
    case 1:
        u = zm_usable_size(p);
        {
            size_t got = 0;
            zm_free_usable(p, &got);
            CHECK(got == u);
        }
        break;
    default: zm_free_with_size(p, zm_usable_size(p)); break;
    }
}

static void step(reader *r) {
    unsigned op = byte(r), s = byte(r) % POOL;
    int is_huge = 0;
    size_t req = size_of(r, &is_huge), u = 12345;
    size_t calls = oom_calls;
    void *p;
    switch (op % 16) {
    case 0: /* zmalloc */
    case 1:
        release((int)s, op >> 4);
        p = zm_malloc(req);
        if (!p) {
            CHECK(MAY_FAIL && oom_calls == calls + 1 && oom_last == req);
        } else {
            CHECK(!MUST_FAIL);
            settle((int)s, p, req, 0, 0);
        }
        break;
    case 2: /* zcalloc */
        release((int)s, op >> 4);
        p = zm_calloc(req);
        if (!p) {
            CHECK(oom_calls == calls + 1 && oom_last == req);
            CHECK(MAY_FAIL);
        } else {
            CHECK(!MUST_FAIL);
            size_t n = req < FILL_CAP ? req : FILL_CAP;
            for (size_t j = 0; j < n; j++) CHECK(((unsigned char *)p)[j] == 0);
            settle((int)s, p, req, 0, 0);
        }
        break;
    case 3: { /* zcalloc_num */
        release((int)s, op >> 4);
        /* A small count, or one at the overflow boundary. */
        size_t num = byte(r) % 17, d = req ? req : 1;
        if (op & 0x80) {
            const size_t big[] = {SIZE_MAX / d, SIZE_MAX / d + 1, SIZE_MAX, SIZE_MAX / 2 + 1};
            num = big[(op >> 5) & 3];
        }
        size_t total;
        int ovf = __builtin_mul_overflow(num, req, &total);
        p = zm_calloc_num(num, req);
        if (!p) {
            CHECK(oom_calls == calls + 1 && oom_last == (ovf ? SIZE_MAX : total));
            CHECK(ovf || total >= BIG || limited);
        } else {
            CHECK(!ovf && total < (size_t)PTRDIFF_MAX);
            settle((int)s, p, total, 0, 0);
        }
        break;
    }
    case 4: /* zrealloc: grow, shrink, NULL, to 0 */
    case 5: {
        unsigned char *old = pool[s].p;
        size_t oldlen = pool[s].len;
        p = zm_realloc(old, req);
        if (req == 0 && old) {
            CHECK(p == NULL && oom_calls == calls);
            pool[s].p = NULL;
        } else if (!p) {
            CHECK(oom_calls == calls + 1 && oom_last == req && MAY_FAIL);
            if (old) check_prefix((int)s, old, oldlen); /* untouched */
        } else {
            if (old) check_prefix((int)s, p, oldlen < req ? oldlen : req);
            settle((int)s, p, req, 0, 0);
        }
        break;
    }
    case 6: { /* zstrdup */
        release((int)s, op >> 4);
        char buf[300];
        size_t n = req % sizeof buf;
        memset(buf, 'a' + (int)(s % 26), n);
        buf[n] = '\0';
        char *d = zm_strdup(buf);
        if (!d) {
            CHECK(limited && oom_calls == calls + 1 && oom_last == n + 1);
            break;
        }
        CHECK(strcmp(d, buf) == 0);
        settle((int)s, d, n + 1, 0, 0);
        break;
    }
    case 7: /* ztrymalloc / ztrycalloc */
    case 8:
        release((int)s, op >> 4);
        errno = 0;
        p = op % 16 == 7 ? zm_try_malloc(req) : zm_try_calloc(req);
        CHECK(oom_calls == calls);
        if (!p) {
            CHECK(errno == ENOMEM && MAY_FAIL);
        } else {
            settle((int)s, p, req, 0, 0);
        }
        break;
    case 9: { /* ztryrealloc */
        unsigned char *old = pool[s].p;
        size_t oldlen = pool[s].len;
        p = zm_try_realloc(old, req);
        CHECK(oom_calls == calls);
        if (req == 0 && old) {
            CHECK(p == NULL);
            pool[s].p = NULL;
        } else if (!p) {
            CHECK(MAY_FAIL);
            if (old) check_prefix((int)s, old, oldlen);
        } else {
            if (old) check_prefix((int)s, p, oldlen < req ? oldlen : req);
            settle((int)s, p, req, 0, 0);
        }
        break;
    }
    case 10: /* the *_usable allocators */
    case 11: {
        release((int)s, op >> 4);
        unsigned which = (op >> 4) % 4;
        p = which == 0   ? zm_malloc_usable(req, &u)
            : which == 1 ? zm_calloc_usable(req, &u)
            : which == 2 ? zm_try_malloc_usable(req, &u)
                         : zm_try_calloc_usable(req, &u);
        if (!p) {
            CHECK(u == 0 && MAY_FAIL);
            CHECK(oom_calls == calls + (which < 2));
        } else {
            settle((int)s, p, req, u, 1);
        }
        break;
    }
    case 12: { /* the realloc *_usable pair */
        unsigned char *old = pool[s].p;
        size_t oldlen = pool[s].len;
        int try = (op >> 4) & 1;
        p = try ? zm_try_realloc_usable(old, req, &u) : zm_realloc_usable(old, req, &u);
        if (req == 0 && old) {
            CHECK(p == NULL && u == 0 && oom_calls == calls);
            pool[s].p = NULL;
        } else if (!p) {
            CHECK(u == 0 && MAY_FAIL && oom_calls == calls + !try);
            if (old) check_prefix((int)s, old, oldlen);
        } else {
            if (old) check_prefix((int)s, p, oldlen < req ? oldlen : req);
            settle((int)s, p, req, u, 1);
        }
        break;
    }
    case 13: /* the frees */
    case 14: release((int)s, op >> 4); break;
    default: /* a limit just above current use, or none */
        limited = (op & 0x10) != 0;
        zm_set_limit(limited ? zm_used_memory() + req % 100000 + 1 : 0);
        return;
    }
    check_count();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static int init;
    if (!init) {
        zm_set_oom_handler(on_oom);
        init = 1;
    }
    base = zm_used_memory();
    reader r = {data, size, 0};
    while (r.i < r.n) step(&r);
    zm_set_limit(0);
    limited = 0;
    for (int s = 0; s < POOL; s++) release(s, (unsigned)s);
    CHECK(zm_used_memory() == base);
    return 0;
}
