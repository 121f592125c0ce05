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

zm__gtc_params zm__gtc __attribute__((aligned(64)));
uintptr_t zm__glibc_inline_floor = UINTPTR_MAX;

/* Requests the copies take: glibc's 64 bins, chunks up to 1040 bytes. */
#define LARGEST_REQUEST 1032

/* What the trial needs to know of a layout (glibc_tcache.h) besides its
 * copies: the size of the chunk that holds tcache_perthread_struct (2.43
 * sets it up from free, a 0x300-byte chunk, or from inside malloc, which
 * pads the request once more: 0x310), where the list heads start, and which
 * way glibc's count moves as its free pushes a block. */
typedef struct layout {
    size_t chunk_lo, chunk_hi;
    size_t heads;
    int push_step; /* +1: blocks held; -1: free slots left */
} layout;

static const layout held_counts = {0x290, 0x290, offsetof(zm__gtc_bins, entries), 1};
static const layout free_slots = {0x300, 0x310, offsetof(zm__gtc_slot_bins, entries), -1};

/* The release's layout, chosen by the version gate. */
static const layout *lay;

/* Where in libc's TLS block the calling thread's `tcache` pointer sits: the
 * word pointing to a chunk of tcache_perthread_struct's size whose list
 * head for `bin` is `head`. The other words of the block are libc's
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
            (word & ~(uintptr_t)7) < lay->chunk_lo || (word & ~(uintptr_t)7) > lay->chunk_hi)
            continue;
        if (!zm__os_read_checked((const void *)(t + lay->heads + bin * sizeof entry), &entry,
                                 sizeof entry) ||
            entry != head)
            continue;
        zm__gtc.tpoff = (intptr_t)((uintptr_t)(tls + off) - (uintptr_t)__builtin_thread_pointer());
        return zm__gtc_self() == (zm__gtc_bins *)t;
    }
    return 0;
}

/* A bin's count and list head as glibc left them (the counts come first in
 * both layouts). Read through volatile: the compiler takes malloc and free
 * for calls that change no memory it can see. */
static int count_of(size_t bin) {
    volatile uint16_t *counts = (volatile uint16_t *)zm__gtc_self();
    return counts[bin];
}

static uintptr_t head_of(size_t bin) {
    return *(volatile uintptr_t *)((char *)zm__gtc_self() + lay->heads + bin * sizeof(uintptr_t));
}

/* A bin's count when it is empty: 0 blocks held, or every slot free (the
 * limit); count_limit reads it off a drained bin. */
static int empty_count;

/* The blocks a bin holds by glibc's count, once count_limit has run. */
static int held(size_t bin) { return (count_of(bin) - empty_count) * lay->push_step; }

/* The release's malloc copy, called directly: the trial runs before the
 * bounds open. (The free copy picks its layout by the bins, which the trial
 * sets first.) */
static int copy_pop(size_t n, void **out, size_t *usable) {
    return lay == &free_slots ? zm__gtc_slot_pop(n, out, usable) : zm__gtc_pop(n, out, usable);
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
 * h2, clear their key words, move the count back two and give glibc's
 * usable size; the free copy must push them back, move it two on, and set
 * the key; and glibc's malloc must then pop h1 and h2 again, which checks
 * the link the copy wrote. The first call also finds the TLS word. */
static const char *try_size(size_t n, int first) {
    size_t bin = zm__gtc_bin_of(n);
    int two = 2 * lay->push_step;
    fill_two(n);
    int filled = first ? 0 : count_of(bin);
    void *p1 = ZM_LIBC(malloc)(n), *p2 = ZM_LIBC(malloc)(n);
    if (!p1 || !p2) return "glibc's malloc failed";
    int popped = first ? 0 : count_of(bin);
    /* Addresses from here on: the blocks are glibc's free list's. */
    uintptr_t h1 = (uintptr_t)p1, h2 = (uintptr_t)p2;
    __asm__("" : "+r"(h1), "+r"(h2));
    ZM_LIBC(free)(p2);
    ZM_LIBC(free)(p1);
    if (first) {
        zm__gtc.key = key_word(h1);
        if (!find_tcache_word((const void *)h1, bin)) return "no tcache word in libc's TLS block";
    }
    int count = count_of(bin);
    if (head_of(bin) != h1 || (two > 0 && count < 2)) return "glibc's free did not push the block";
    /* The counts must run the layout's way: one step per block glibc's own
     * free pushes, one back per block its own malloc pops (up for blocks
     * held, down for free slots: a glibc that keeps the other runs the other
     * way). */
    if (!first && (filled - popped != two || count - popped != two))
        return "glibc's counts run another way";

    void *b1 = NULL, *b2 = NULL;
    size_t u1 = 0, u2 = 0;
    int ok = copy_pop(n, &b1, &u1) && copy_pop(n, &b2, &u2);
    if (!ok) { /* the bin held two: the copy took none, or one */
        ZM_LIBC(free)(b1);
        return "the malloc copy declined a bin of two";
    }
    ok = (uintptr_t)b1 == h1 && (uintptr_t)b2 == h2 && key_word(h1) == 0 && key_word(h2) == 0 &&
         count_of(bin) == count - two && u1 == zm__glibc_chunk_usable(b1) && u2 == u1 && u1 >= n;
    if (!ok) return "the malloc copy popped other blocks";

    size_t f2 = zm__gtc_free(b2), f1 = zm__gtc_free(b1);
    ok = f1 == u1 && f2 == u1 && count_of(bin) == count && head_of(bin) == h1 &&
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
    const char *why = NULL;
    void *got = NULL;
    size_t usable;
    if (held(bin) != 0 || head_of(bin) != 0) why = "glibc's malloc left a bin it drained nonempty";
    else if (copy_pop(SIZE, &got, &usable)) why = "the malloc copy popped from an empty bin";
    int last = n - 1; /* kept out until the bin is full */
    for (int i = 0; i < last; i++) ZM_LIBC(free)(b[i]);
    if (!why && held(bin) != (int)zm__gtc.count) why = "the bin did not fill to glibc's limit";
    else if (!why && n > 0 && zm__gtc_free(b[last]) != 0) why = "the free copy pushed onto a full bin";
    if (n > 0) ZM_LIBC(free)(b[last]);
    if (got) ZM_LIBC(free)(got);
    return why;
}

/* glibc's bin limit (mp_.tcache_count, 7 unless a tunable says otherwise;
 * 16 from 2.42): the blocks a bin stops at as blocks are freed into it,
 * counted from the bin drained, or the number freed if it has not stopped
 * by then (the copy then leaves the rest to glibc). */
static size_t count_limit(void) {
    enum { N = 64, SIZE = 24 };
    void *b[N];
    size_t bin = zm__gtc_bin_of(SIZE), most = 0;
    int n = 0;
    while (n < N && (b[n] = ZM_LIBC(malloc)(SIZE)) != NULL) n++;
    __asm__("" : : "r"(b) : "memory"); /* the blocks must exist: no elision */
    empty_count = count_of(bin);
    for (int i = 0; i < n; i++) {
        ZM_LIBC(free)(b[i]);
        int h = held(bin);
        if (h > 0 && (size_t)h > most) most = (size_t)h;
    }
    return most;
}

/* The glibc releases whose tcache this project has read (source and object
 * code) and tried, each with its layout: Debian 12's 2.36 and Debian 13's
 * 2.41 keep counts of blocks held; unstable's 2.43 keeps free slots (76 bins,
 * set up lazily). Another release keeps the copies off until its layout is
 * checked (docs/platforms.md). */
static const char *const verified[] = {"2.36", "2.41", "2.43", NULL};
static const layout *const verified_layout[] = {&held_counts, &held_counts, &free_slots};
_Static_assert(sizeof verified / sizeof *verified ==
                   sizeof verified_layout / sizeof *verified_layout + 1,
               "a layout for each release verified");

static const layout *layout_of(const char *version) {
    size_t i = 0;
    while (strcmp(verified[i], version) != 0) i++; /* the version gate let it through */
    return verified_layout[i];
}

/* Turns the copies on for the bins glibc caches (64, unless the
 * glibc.malloc.tcache_max tunable lowered it: a bin glibc never fills fails
 * the trial before the copies touch it, and the copies stop below it). */
void zm__gtc_setup(int chunks_ok) {
    if (!zm__fp_allowed(ZM_FP_GLIBC_TCACHE)) return;
    if (!chunks_ok || zm__os_valgrind_replaces_malloc()) {
        zm__fp_note(ZM_FP_GLIBC_TCACHE, "malloc is not glibc's own, or its chunks disagreed");
        return;
    }
    const char *version = gnu_get_libc_version();
    if (!zm__fp_version(ZM_FP_GLIBC_TCACHE, "glibc", version, verified)) return;
    lay = layout_of(version);
    /* The trial calls the pop and the push directly. Another thread (one a
     * constructor that ran before this one started) keeps calling glibc
     * meanwhile: the copies' gates, bound and the floor, open only at the
     * end, after everything they read. The trial pushes back only what it
     * popped, so no bin outgrows glibc's limit whatever the count says. The
     * free copy takes the layout whose bins are set. */
    size_t *bins_of_layout = lay == &free_slots ? &zm__gtc.slot_bins : &zm__gtc.bins;
    *bins_of_layout = 64;
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
    *bins_of_layout = bins;
    atomic_signal_fence(memory_order_seq_cst); /* the gates last (x86-64 keeps stores in order) */
    /* the largest request of bin b is 16 b + 24 */
    *(lay == &free_slots ? &zm__gtc.slot_bound : &zm__gtc.bound) = 16 * bins + 9;
    zm__glibc_inline_floor = 1;
    if (bins < 64) zm__fp_note_on(ZM_FP_GLIBC_TCACHE, "for %zu bins: %s (request %zu)", bins, stop, n);
    else zm__fp_note(ZM_FP_GLIBC_TCACHE, NULL);
}

#endif
