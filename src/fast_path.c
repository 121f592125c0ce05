/* The register of fast paths (fast_path.h). Written by the backends' load-time
 * probes (constructors, before main, single-threaded in practice: an entry is
 * published with a release store of its state so that a reader never sees a
 * half-written reason), read by zm_fast_paths(). */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fast_path.h"

static const char *const names[ZM_FP_COUNT] = {
    [ZM_FP_GLIBC_HEAP_CHUNKS] = "glibc-heap-chunks",
    [ZM_FP_GLIBC_MMAP_CHUNKS] = "glibc-mmap-chunks",
    [ZM_FP_GLIBC_TCACHE] = "glibc-tcache-copies",
    [ZM_FP_JEMALLOC_COPIES] = "jemalloc-copies",
    [ZM_FP_TCMALLOC_SIZES] = "tcmalloc-size-table",
    [ZM_FP_TCMALLOC_PAGE_CACHE] = "tcmalloc-page-cache",
    [ZM_FP_TCMALLOC_COPIES] = "tcmalloc-copies",
    [ZM_FP_MIMALLOC_SIZES] = "mimalloc-size-table",
    [ZM_FP_MIMALLOC_PAGES] = "mimalloc-page-read",
    [ZM_FP_MIMALLOC_COPIES] = "mimalloc-copies",
};

/* The portable tier: reads of long-stable facts or of tables learnt from
 * public calls, which the switch leaves alone. */
static int portable(enum zm__fp fp) {
    return fp == ZM_FP_GLIBC_HEAP_CHUNKS || fp == ZM_FP_GLIBC_MMAP_CHUNKS ||
           fp == ZM_FP_TCMALLOC_SIZES || fp == ZM_FP_MIMALLOC_SIZES;
}

enum { UNSEEN, ON, OFF };
static struct {
    _Atomic int state;
    char why[96];
} entries[ZM_FP_COUNT];

/* -1 unread, 0 off, 1 on. */
static _Atomic int env_allows = -1;

static int switched_on(void) {
    int v = atomic_load_explicit(&env_allows, memory_order_acquire);
    if (v < 0) {
        const char *s = getenv("ZMALLOC_FAST_PATHS");
        v = !(s && (strcmp(s, "0") == 0 || strcmp(s, "off") == 0 || strcmp(s, "no") == 0));
        atomic_store_explicit(&env_allows, v, memory_order_release);
    }
    return v;
}

static void note(enum zm__fp fp, int state, const char *why, va_list ap) {
    if ((unsigned)fp >= ZM_FP_COUNT) return;
    if (why) vsnprintf(entries[fp].why, sizeof entries[fp].why, why, ap);
    else entries[fp].why[0] = '\0';
    atomic_store_explicit(&entries[fp].state, state, memory_order_release);
}

void zm__fp_note(enum zm__fp fp, const char *why, ...) {
    va_list ap;
    va_start(ap, why);
    note(fp, why ? OFF : ON, why, ap);
    va_end(ap);
}

void zm__fp_note_on(enum zm__fp fp, const char *remark, ...) {
    va_list ap;
    va_start(ap, remark);
    note(fp, ON, remark, ap);
    va_end(ap);
}

int zm__fp_allowed(enum zm__fp fp) {
    if (portable(fp)) return 1;
#ifdef ZM_NO_FAST_PATHS
    zm__fp_note(fp, "left out of this build (ZMALLOC_FAST_PATHS=OFF)");
    return 0;
#else
    if (switched_on()) return 1;
    zm__fp_note(fp, "off by ZMALLOC_FAST_PATHS");
    return 0;
#endif
}

int zm__fp_version(enum zm__fp fp, const char *allocator, const char *version,
                   const char *const *verified) {
    for (; version && *verified; verified++)
        if (strcmp(version, *verified) == 0) return 1;
    zm__fp_note(fp, "%s %s not verified", allocator, version ? version : "(unknown version)");
    return 0;
}

int zm__fp_is_on(enum zm__fp fp) {
    return (unsigned)fp < ZM_FP_COUNT &&
           atomic_load_explicit(&entries[fp].state, memory_order_acquire) == ON;
}

/* Appends s to buf at *at, cut to len (the length still counts). */
static void append(char *buf, size_t len, size_t *at, const char *s) {
    for (; *s; s++, (*at)++)
        if (*at + 1 < len) buf[*at] = *s;
}

/* By hand, not snprintf: zmrun's preload library prints the report from a
 * signal handler too. */
size_t zm__fp_format(char *buf, size_t len) {
    size_t at = 0;
    for (int i = 0; i < ZM_FP_COUNT; i++) {
        int st = atomic_load_explicit(&entries[i].state, memory_order_acquire);
        if (st == UNSEEN) continue;
        if (at) append(buf, len, &at, "; ");
        append(buf, len, &at, names[i]);
        append(buf, len, &at, st == ON ? ": on" : ": off (");
        if (st == ON && entries[i].why[0]) append(buf, len, &at, " (");
        if (st == OFF || entries[i].why[0]) {
            append(buf, len, &at, entries[i].why);
            append(buf, len, &at, ")");
        }
    }
    if (len) buf[at < len ? at : len - 1] = '\0';
    return at;
}
