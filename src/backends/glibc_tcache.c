/* Finds glibc's thread cache and checks the copies of its fast paths
 * (glibc_tcache.h) against glibc itself, at load time. Nothing is taken on
 * trust from a build: the `tcache` pointer is found in libc's TLS block by
 * the list head a free just set, tcache_key is read off a freed block, the
 * bin limit is counted, and every request size the copies take is tried
 * both ways (ours against glibc's, glibc's against ours). Anything amiss
 * leaves them off, and zmalloc calls malloc and free as before. */
#include <stdatomic.h>
#include <string.h>

#include "backends/glibc_tcache.h"
#include "fast_path.h"
#include "os.h"

#ifdef ZM_GLIBC_TCACHE
#include <gnu/libc-version.h> /* glibc only: the copies are built for it alone */

zm__gtc_params zm__gtc;
uintptr_t zm__glibc_inline_floor = UINTPTR_MAX;

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
    if (!zm__os_object_tls((const void *)ZM_LIBC(free), (void **)&tls, &size)) return 0;
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

/* A bin's count as glibc left it. Read through volatile: the compiler takes
 * malloc and free for calls that change no memory it can see. */
static unsigned counts_of(size_t bin) {
    volatile zm__gtc_bins *tc = zm__gtc_self();
    return tc->counts[bin];
}

/* glibc's own malloc and free, any number of times: leaves at least two
 * blocks in the bin of `n` (at most the limit, when that is below two, in
 * which case the copies are of no use). */
static void fill_two(size_t n) {
    void *x = ZM_LIBC(malloc)(n), *y = ZM_LIBC(malloc)(n);
    __asm__("" : : "r"(x), "r"(y) : "memory"); /* the pair must happen: no elision */
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
static const char *try_size(size_t n, int first) {
    size_t bin = zm__gtc_bin_of(n);
    fill_two(n);
    unsigned filled = first ? 0 : counts_of(bin);
    void *p1 = ZM_LIBC(malloc)(n), *p2 = ZM_LIBC(malloc)(n);
    if (!p1 || !p2) return "glibc's malloc failed";
    unsigned popped = first ? 0 : counts_of(bin);
    /* Addresses from here on: the blocks are glibc's free list's. */
    uintptr_t h1 = (uintptr_t)p1, h2 = (uintptr_t)p2;
    __asm__("" : "+r"(h1), "+r"(h2));
    ZM_LIBC(free)(p2);
    ZM_LIBC(free)(p1);
    if (first) {
        zm__gtc.key = key_word(h1);
        if (!find_tcache_word((const void *)h1, bin)) return "no tcache word in libc's TLS block";
    }
    volatile zm__gtc_bins *tc = zm__gtc_self();
    unsigned count = tc->counts[bin];
    if ((uintptr_t)tc->entries[bin] != h1 || count < 2) return "glibc's free did not push the block";
    /* The counts must run the copies' way: up by one per block glibc's own
     * free pushes, down by one per block its own malloc pops (a glibc that
     * counts free slots instead runs the other way). */
    if (!first && (popped + 2 != filled || count != popped + 2)) return "glibc's counts run another way";

    void *b1 = NULL, *b2 = NULL;
    size_t u1 = 0, u2 = 0;
    int ok = zm__gtc_pop(n, &b1, &u1) && zm__gtc_pop(n, &b2, &u2);
    if (!ok) { /* the bin held two: the copy took none, or one */
        ZM_LIBC(free)(b1);
        return "the malloc copy declined a bin of two";
    }
    ok = (uintptr_t)b1 == h1 && (uintptr_t)b2 == h2 && key_word(h1) == 0 && key_word(h2) == 0 &&
         tc->counts[bin] == count - 2 && u1 == zm__glibc_chunk_usable(b1) && u2 == u1 && u1 >= n;
    if (!ok) return "the malloc copy popped other blocks";

    size_t f2 = zm__gtc_free(b2), f1 = zm__gtc_free(b1);
    ok = f1 == u1 && f2 == u1 && tc->counts[bin] == count && (uintptr_t)tc->entries[bin] == h1 &&
         key_word(h1) == zm__gtc.key;
    if (!ok) return "the free copy pushed otherwise";

    void *g1 = ZM_LIBC(malloc)(n), *g2 = ZM_LIBC(malloc)(n);
    ok = (uintptr_t)g1 == h1 && (uintptr_t)g2 == h2;
    ZM_LIBC(free)(g2);
    ZM_LIBC(free)(g1);
    return ok ? NULL : "glibc did not pop what the free copy pushed";
}

/* An empty bin and a full one, with glibc's own calls: once glibc's malloc
 * has emptied a bin, the malloc copy must decline it; once glibc's free has
 * filled one to the limit, the free copy must decline a block of it. */
static const char *try_empty_and_full(void) {
    enum { N = 64, SIZE = 24 };
    void *b[N];
    size_t bin = zm__gtc_bin_of(SIZE);
    int n = 0;
    while (n < N && (b[n] = ZM_LIBC(malloc)(SIZE)) != NULL) n++;
    __asm__("" : : "r"(b) : "memory"); /* the blocks must exist: no elision */
    volatile zm__gtc_bins *tc = zm__gtc_self();
    const char *why = NULL;
    void *got = NULL;
    size_t usable;
    if (tc->counts[bin] != 0) why = "glibc's malloc left a bin it drained nonempty";
    else if (zm__gtc_pop(SIZE, &got, &usable)) why = "the malloc copy popped from an empty bin";
    int last = n - 1; /* kept out until the bin is full */
    for (int i = 0; i < last; i++) ZM_LIBC(free)(b[i]);
    if (!why && tc->counts[bin] != zm__gtc.count) why = "the bin did not fill to glibc's limit";
    else if (!why && n > 0 && zm__gtc_free(b[last]) != 0) why = "the free copy pushed onto a full bin";
    if (n > 0) ZM_LIBC(free)(b[last]);
    if (got) ZM_LIBC(free)(got);
    return why;
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
    __asm__("" : : "r"(b) : "memory"); /* the blocks must exist: no elision */
    volatile zm__gtc_bins *tc = zm__gtc_self();
    for (int i = 0; i < n; i++) {
        ZM_LIBC(free)(b[i]);
        if (tc->counts[bin] > most) most = tc->counts[bin];
    }
    return most;
}

/* The glibc releases whose tcache this project has read and tried: Debian
 * 12's 2.36 and Debian 13's 2.41. Another release keeps the copies off
 * until its layout is checked (docs/platforms.md): glibc 2.42 moved to 76
 * bins whose counts hold free slots and run down, and 2.43 (Debian
 * unstable) sets the tcache up lazily; the trial refuses both ("no tcache
 * word", "counts run another way") even past this list. */
static const char *const verified[] = {"2.36", "2.41", NULL};

/* Turns the copies on for the bins glibc caches (64, unless the
 * glibc.malloc.tcache_max tunable lowered it: a bin glibc never fills fails
 * the trial before the copies touch it, and the copies stop below it). */
void zm__gtc_setup(int chunks_ok) {
    if (!zm__fp_allowed(ZM_FP_GLIBC_TCACHE)) return;
    if (!chunks_ok || zm__os_valgrind_replaces_malloc()) {
        zm__fp_note(ZM_FP_GLIBC_TCACHE, "malloc is not glibc's own, or its chunks disagreed");
        return;
    }
    if (!zm__fp_version(ZM_FP_GLIBC_TCACHE, "glibc", gnu_get_libc_version(), verified)) return;
    /* The trial calls the pop and the push directly. Another thread (one a
     * constructor that ran before this one started) keeps calling glibc
     * meanwhile: the copies' gates, bound and the floor, open only at the
     * end, after everything they read. The trial pushes back only what it
     * popped, so no bin outgrows glibc's limit whatever the count says. */
    zm__gtc.bins = 64;
    zm__gtc.count = UINT16_MAX;
    size_t n = 0;
    const char *stop = NULL; /* why the walk stopped, where it did */
    while (n <= LARGEST_REQUEST && (stop = try_size(n, n == 0)) == NULL) n++;
    size_t bins = n > LARGEST_REQUEST ? 64 : zm__gtc_bin_of(n); /* the bins wholly tried */
    const char *why = bins == 0 ? stop : NULL;
    if (!why) {
        zm__gtc.count = count_limit();
        why = zm__gtc.count < 2 ? "glibc's bin limit is below two" : try_empty_and_full();
    }
    if (why) {
        zm__fp_note(ZM_FP_GLIBC_TCACHE, "trial disagreed: %s (request %zu)", why, n);
        memset(&zm__gtc, 0, sizeof zm__gtc);
        return;
    }
    zm__gtc.bins = bins;
    atomic_signal_fence(memory_order_seq_cst); /* the gates last (x86-64 keeps stores in order) */
    zm__gtc.bound = 16 * bins + 9; /* the largest request of bin b is 16 b + 24 */
    zm__glibc_inline_floor = 1;
    if (bins < 64) zm__fp_note(ZM_FP_GLIBC_TCACHE, "on for %zu bins: %s (request %zu)", bins, stop, n);
    else zm__fp_note(ZM_FP_GLIBC_TCACHE, NULL);
}

#endif
