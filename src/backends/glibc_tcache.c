/* Finds glibc's thread cache and checks the copies of its fast paths
 * (glibc_tcache.h) against glibc itself, at load time. Nothing is taken on
 * trust from a build: the `tcache` pointer is found in libc's TLS block by
 * the list head a free just set, tcache_key is read off a freed block, the
 * bin limit is counted, and every request size the copies take is tried
 * both ways (ours against glibc's, glibc's against ours). Anything amiss
 * leaves them off, and zmalloc calls malloc and free as before. */
#include <stdatomic.h>
#include <string.h>

#include "backend.h"
#include "os.h"

#ifdef ZM_GLIBC_TCACHE

zm__gtc_params zm__gtc;

/* Requests the copies take: glibc's 64 bins, chunks up to 1040 bytes. */
#define LARGEST_REQUEST 1032

/* Where in libc's TLS block the calling thread's `tcache` pointer sits: the
 * word pointing to a chunk of tcache_perthread_struct's size (0x290) whose
 * list head for `bin` is `head`. The other words of the block are libc's
 * other thread variables, which may point anywhere: each is read through
 * the kernel, which refuses an unreadable address instead of faulting. */
static int find_tcache_word(const void *head, size_t bin) {
    unsigned char *tls;
    size_t size;
    if (!zm__os_object_tls((const void *)&ZM_LIBC(free), (void **)&tls, &size)) return 0;
    for (size_t off = 0; off + sizeof(uintptr_t) <= size; off += sizeof(uintptr_t)) {
        uintptr_t t, word;
        const void *entry;
        memcpy(&t, tls + off, sizeof t);
        if (t < 4096 || (t & 15) != 0) continue;
        if (!zm__os_read_checked((const void *)(t - sizeof word), &word, sizeof word) ||
            (word & ~(uintptr_t)7) != 0x290)
            continue;
        if (!zm__os_read_checked((const void *)(t + offsetof(zm__gtc_bins, entries[bin])), &entry,
                                 sizeof entry) ||
            entry != head)
            continue;
        zm__gtc.tpoff = (intptr_t)((uintptr_t)(tls + off) - (uintptr_t)__builtin_thread_pointer());
        return zm__gtc_self() == (zm__gtc_bins *)t;
    }
    return 0;
}

/* glibc's own malloc and free, any number of times: leaves at least two
 * blocks in the bin of `n` (at most the limit, when that is below two, in
 * which case the copies are of no use). */
static void fill_two(size_t n) {
    void *x = ZM_LIBC(malloc)(n), *y = ZM_LIBC(malloc)(n);
    ZM_LIBC(free)(x);
    ZM_LIBC(free)(y);
}

/* The key word of a block at address a (the second word). */
static uintptr_t key_word(uintptr_t a) {
    uintptr_t k;
    memcpy(&k, (const void *)(a + sizeof(void *)), sizeof k);
    return k;
}

/* One request size, both ways. glibc pops h1 and h2 and pushes them back:
 * the bin's head is h1, linked to h2. The malloc copy must then pop h1 and
 * h2, clear their key words, count two fewer and give glibc's usable size;
 * the free copy must push them back, count two more and set the key; and
 * glibc's malloc must then pop h1 and h2 again, which checks the link the
 * copy wrote. The first call also finds the TLS word. */
static int try_size(size_t n, int first) {
    size_t bin = zm__gtc_bin_of(n);
    fill_two(n);
    void *p1 = ZM_LIBC(malloc)(n), *p2 = ZM_LIBC(malloc)(n);
    if (!p1 || !p2) return 0;
    /* Addresses from here on: the blocks are glibc's free list's. */
    uintptr_t h1 = (uintptr_t)p1, h2 = (uintptr_t)p2;
    __asm__("" : "+r"(h1), "+r"(h2));
    ZM_LIBC(free)(p2);
    ZM_LIBC(free)(p1);
    if (first) {
        zm__gtc.key = key_word(h1);
        if (!find_tcache_word((const void *)h1, bin)) return 0;
    }
    zm__gtc_bins *tc = zm__gtc_self();
    unsigned count = tc->counts[bin];
    if ((uintptr_t)tc->entries[bin] != h1 || count < 2) return 0;

    void *b1 = NULL, *b2 = NULL;
    size_t u1 = 0, u2 = 0;
    int ok = zm__gtc_pop(n, &b1, &u1) && zm__gtc_pop(n, &b2, &u2);
    if (!ok) { /* the bin held two: the copy took none, or one */
        ZM_LIBC(free)(b1);
        return 0;
    }
    ok = (uintptr_t)b1 == h1 && (uintptr_t)b2 == h2 && key_word(h1) == 0 && key_word(h2) == 0 &&
         tc->counts[bin] == count - 2 && u1 == zm__glibc_chunk_usable(b1) && u2 == u1 && u1 >= n;
    if (!ok) return 0;

    size_t f2 = zm__gtc_free(b2), f1 = zm__gtc_free(b1);
    ok = f1 == u1 && f2 == u1 && tc->counts[bin] == count && (uintptr_t)tc->entries[bin] == h1 &&
         key_word(h1) == zm__gtc.key;
    if (!ok) return 0;

    void *g1 = ZM_LIBC(malloc)(n), *g2 = ZM_LIBC(malloc)(n);
    ok = (uintptr_t)g1 == h1 && (uintptr_t)g2 == h2;
    ZM_LIBC(free)(g2);
    ZM_LIBC(free)(g1);
    return ok;
}

/* glibc's bin limit (mp_.tcache_count, 7 unless a tunable says otherwise):
 * the count a bin stops at as blocks are freed into it, or the number freed
 * if it has not stopped by then (the copy then leaves the rest to glibc). */
static size_t count_limit(void) {
    enum { N = 64, SIZE = 24 };
    void *b[N];
    size_t bin = zm__gtc_bin_of(SIZE), most = 0;
    int n = 0;
    while (n < N && (b[n] = ZM_LIBC(malloc)(SIZE)) != NULL) n++;
    zm__gtc_bins *tc = zm__gtc_self();
    for (int i = 0; i < n; i++) {
        ZM_LIBC(free)(b[i]);
        if (tc->counts[bin] > most) most = tc->counts[bin];
    }
    return most;
}

/* Turns the copies on for the bins glibc caches (64, unless the
 * glibc.malloc.tcache_max tunable lowered it: a bin glibc never fills fails
 * the trial before the copies touch it, and the copies stop below it). */
void zm__gtc_setup(void) {
    if (!zm__glibc_chunks_ok) return;
    /* The trial calls the pop and the push directly. Another thread (one a
     * constructor that ran before this one started) keeps calling glibc
     * meanwhile: the copies' gates, bound and the floor, open only at the
     * end, after everything they read. The trial pushes back only what it
     * popped, so no bin outgrows glibc's limit whatever the count says. */
    zm__gtc.bins = 64;
    zm__gtc.count = UINT16_MAX;
    size_t n = 0;
    while (n <= LARGEST_REQUEST && try_size(n, n == 0)) n++;
    size_t bins = n > LARGEST_REQUEST ? 64 : zm__gtc_bin_of(n); /* the bins wholly tried */
    if (bins > 0) zm__gtc.count = count_limit();
    if (bins == 0 || zm__gtc.count < 2) {
        memset(&zm__gtc, 0, sizeof zm__gtc);
        return;
    }
    zm__gtc.bins = bins;
    atomic_signal_fence(memory_order_seq_cst); /* the gates last (x86-64 keeps stores in order) */
    zm__gtc.bound = 16 * bins + 9; /* the largest request of bin b is 16 b + 24 */
    zm__glibc_inline_floor = 1;
}

size_t zm__glibc_free_other(void *p) {
    if (!p) return 0;
    size_t n = zm__be_usable(p);
    ZM_LIBC(free)(p);
    return n;
}

#endif
