/* The benchmarks' mixed pattern: POOL_SLOTS live blocks of random sizes
 * 8..520 bytes, one freed and replaced at random each step, from a fixed
 * seed (bench_overhead times it, bench_instructions counts it). */
#ifndef ZM_BENCH_PATTERN_H
#define ZM_BENCH_PATTERN_H

#include <stddef.h>
#include <stdint.h>

#define POOL_SLOTS 1024 /* power of two: the slot is picked with a mask */
#define MIN_SIZE 8
#define SIZE_SPAN 513 /* sizes MIN_SIZE .. MIN_SIZE + SIZE_SPAN - 1 = 8 .. 520 */
#define SEED 0x9E3779B97F4A7C15ull

static inline uint64_t xorshift64(uint64_t *s) {
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

/* Maps r's high half onto [0, SIZE_SPAN) with a multiply: a modulo would cost
 * a division per step, more than the PRNG itself. */
static inline size_t pick_size(uint64_t r) {
    return MIN_SIZE + (size_t)(((r >> 32) * SIZE_SPAN) >> 32);
}

/* One step: free the block in a random slot, allocate a random size in its
 * place and touch it (a volatile store the compiler must keep). */
#define MIXED_STEP(pool, s, ALLOC, FREE)                                                   \
    do {                                                                                   \
        uint64_t r_ = xorshift64(&(s));                                                    \
        size_t slot_ = (size_t)r_ & (POOL_SLOTS - 1);                                      \
        FREE((pool)[slot_]);                                                               \
        void *p_ = ALLOC(pick_size(r_));                                                   \
        *(volatile char *)p_ = (char)r_;                                                   \
        (pool)[slot_] = p_;                                                                \
    } while (0)

#endif
