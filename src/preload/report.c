/* The report: text for people, or one JSON object on one line for programs
 * (zmrun --compare reads it). Written in pieces through a stack buffer with
 * write(2): no stdio, no heap, no floating-point formatting, so that it can
 * run at exit, before an exec and in a signal handler. */
#include <errno.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "os.h"
#include "fast_path.h"
#include "preload/preload.h"
#include "zmalloc.h"

typedef struct out {
    int fd;
    size_t n;
    char buf[8192]; /* a whole report: one write, whole under O_APPEND */
} out;

static void flush(out *o) {
    size_t done = 0;
    while (done < o->n) {
        ssize_t w = write(o->fd, o->buf + done, o->n - done);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) break;
        done += (size_t)w;
    }
    o->n = 0;
}

static void put_bytes(out *o, const char *s, size_t len) {
    while (len) {
        if (o->n == sizeof o->buf) flush(o);
        size_t k = sizeof o->buf - o->n < len ? sizeof o->buf - o->n : len;
        memcpy(o->buf + o->n, s, k);
        o->n += k;
        s += k;
        len -= k;
    }
}

static void put(out *o, const char *s) { put_bytes(o, s, strlen(s)); }

size_t zm__format_u64(char *buf, uint64_t v) {
    char rev[ZM_U64_DIGITS];
    size_t n = 0;
    do rev[n++] = (char)('0' + v % 10);
    while ((v /= 10) != 0);
    for (size_t i = 0; i < n; i++) buf[i] = rev[n - 1 - i];
    return n;
}

uint64_t zm__now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int zm__expand_pid(const char *path, char *buf, size_t len) {
    char pid[ZM_U64_DIGITS];
    size_t npid = zm__format_u64(pid, (uint64_t)getpid());
    size_t n = 0;
    for (const char *c = path; *c; c++) {
        if (c[0] == '%' && c[1] == 'p') {
            if (n + npid >= len) return 0;
            memcpy(buf + n, pid, npid);
            n += npid;
            c++;
            continue;
        }
        if (n + 1 >= len) return 0;
        buf[n++] = *c;
    }
    buf[n] = '\0';
    return 1;
}

static void put_u64(out *o, uint64_t v) {
    char d[ZM_U64_DIGITS];
    put_bytes(o, d, zm__format_u64(d, v));
}

/* v / 1000 with three decimals. */
static void put_milli(out *o, uint64_t v) {
    put_u64(o, v / 1000);
    char d[4] = {'.', (char)('0' + v / 100 % 10), (char)('0' + v / 10 % 10), (char)('0' + v % 10)};
    put_bytes(o, d, 4);
}

/* Right-aligned in width columns. */
static void put_u64_w(out *o, uint64_t v, size_t width) {
    char d[ZM_U64_DIGITS];
    size_t n = zm__format_u64(d, v);
    for (size_t i = n; i < width; i++) put_bytes(o, " ", 1);
    put_bytes(o, d, n);
}

/* "12345678 (11.77 MiB)" */
static void put_size(out *o, uint64_t v) {
    put_u64(o, v);
    static const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int u = 0;
    while (u < 4 && v >= ((uint64_t)1024 << (10 * u))) u++;
    if (u == 0) {
        put(o, " bytes");
        return;
    }
    uint64_t scaled = (uint64_t)((unsigned __int128)v * 1000 >> (10 * u));
    put(o, " bytes (");
    put_milli(o, scaled);
    put(o, " ");
    put(o, units[u]);
    put(o, ")");
}

/* A JSON string body: quotes, backslashes and control characters escaped. */
static void put_json_string(out *o, const char *s) {
    put(o, "\"");
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            put_bytes(o, e, 2);
        } else if (c < 0x20) {
            static const char hex[] = "0123456789abcdef";
            char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            put_bytes(o, e, 6);
        } else {
            put_bytes(o, (const char *)&c, 1);
        }
    }
    put(o, "\"");
}

static const char *const fn_names[ZM_FN_COUNT] = {
    [ZM_FN_MALLOC] = "malloc",
    [ZM_FN_CALLOC] = "calloc",
    [ZM_FN_REALLOC] = "realloc",
    [ZM_FN_REALLOCARRAY] = "reallocarray",
    [ZM_FN_FREE] = "free",
    [ZM_FN_POSIX_MEMALIGN] = "posix_memalign",
    [ZM_FN_ALIGNED_ALLOC] = "aligned_alloc",
    [ZM_FN_MEMALIGN] = "memalign",
    [ZM_FN_VALLOC] = "valloc",
    [ZM_FN_PVALLOC] = "pvalloc",
    [ZM_FN_USABLE_SIZE] = "malloc_usable_size",
};

static const char *end_name(enum zm__end e) {
    switch (e) {
    case ZM_END__EXIT: return "_exit";
    case ZM_END_EXEC: return "exec";
    case ZM_END_SIGNAL: return "signal";
    default: return "exit";
    }
}

/* The figures a report gives, gathered once. */
typedef struct figures {
    zm__stats_total t;
    int64_t heap;
    int exact; /* 0: the registry was busy (a signal handler); heap is the estimate */
    uint64_t peak, rss, peak_rss, frag_milli;
} figures;

static void gather(figures *f, int try_lock) {
    f->exact = zm__stats_sum(&f->t, &f->heap, try_lock) == 0;
    if (!f->exact) f->heap = 0;
    if (f->heap < 0) f->heap = 0;
    f->peak = zm__used_memory_peak();
    f->rss = zm__os_rss();
    f->peak_rss = zm__os_status_bytes("VmHWM"); /* this process image's, unlike ru_maxrss */
    f->frag_milli = f->heap ? (uint64_t)((unsigned __int128)f->rss * 1000 / (uint64_t)f->heap) : 0;
}

static uint64_t bucket_low(int k) { return k <= 1 ? 0 : (uint64_t)1 << (k - 1); }
static uint64_t bucket_high(int k) { return k == 0 ? 0 : k == 64 ? UINT64_MAX : ((uint64_t)1 << k) - 1; }

static void write_json(out *o, const zm__report_opts *r, const figures *f) {
    put(o, "{\"pid\":");
    put_u64(o, (uint64_t)getpid());
    put(o, ",\"program\":");
    put_json_string(o, program_invocation_name ? program_invocation_name : "");
    put(o, ",\"backend\":");
    put_json_string(o, r->backend);
    char fast[512];
    zm__fp_format(fast, sizeof fast);
    put(o, ",\"fast_paths\":");
    put_json_string(o, fast);
    put(o, ",\"end\":\"");
    put(o, end_name(r->end));
    put(o, "\",\"code\":");
    put_u64(o, (uint64_t)r->code);
    put(o, ",\"exact\":");
    put(o, f->exact ? "true" : "false");
    put(o, ",\"run_time_s\":");
    put_milli(o, r->run_ns / 1000000);
    put(o, ",\"heap_final\":");
    put_u64(o, (uint64_t)f->heap);
    put(o, ",\"heap_peak\":");
    put_u64(o, f->peak);
    put(o, ",\"requested\":");
    put_u64(o, f->t.requested);
    put(o, ",\"held\":");
    put_u64(o, f->t.held);
    put(o, ",\"slack\":");
    put_u64(o, f->t.held - f->t.requested);
    put(o, ",\"rss_peak\":");
    put_u64(o, f->peak_rss);
    put(o, ",\"rss_final\":");
    put_u64(o, f->rss);
    put(o, ",\"fragmentation\":");
    put_milli(o, f->frag_milli);
    put(o, ",\"failed\":");
    put_u64(o, f->t.failed);
    put(o, ",\"calls\":{");
    for (int i = 0; i < ZM_FN_COUNT; i++) {
        put(o, i ? ",\"" : "\"");
        put(o, fn_names[i]);
        put(o, "\":");
        put_u64(o, f->t.calls[i]);
    }
    put(o, "},\"histogram\":[");
    int first = 1;
    for (int k = 0; k < ZM_HIST_BUCKETS; k++) {
        if (!f->t.hist[k]) continue;
        put(o, first ? "{\"from\":" : ",{\"from\":");
        first = 0;
        put_u64(o, bucket_low(k));
        put(o, ",\"to\":");
        put_u64(o, bucket_high(k));
        put(o, ",\"count\":");
        put_u64(o, f->t.hist[k]);
        put(o, "}");
    }
    put(o, "]}\n");
}

static void line(out *o, const char *label) {
    put(o, "  ");
    put(o, label);
    for (size_t i = strlen(label); i < 22; i++) put(o, " ");
}

static void write_text(out *o, const zm__report_opts *r, const figures *f) {
    put(o, "zmrun: pid ");
    put_u64(o, (uint64_t)getpid());
    put(o, " (");
    put(o, program_invocation_name ? program_invocation_name : "?");
    put(o, "), ended by ");
    put(o, end_name(r->end));
    if (r->end == ZM_END_SIGNAL || r->end == ZM_END__EXIT) {
        put(o, " ");
        put_u64(o, (uint64_t)r->code);
    }
    put(o, ", backend ");
    put(o, r->backend);
    put(o, "\n");
    line(o, "run time");
    put_milli(o, r->run_ns / 1000000);
    put(o, " s\n");
    char fast[512];
    zm__fp_format(fast, sizeof fast);
    line(o, "fast paths");
    put(o, fast);
    put(o, "\n");
    line(o, "heap at exit");
    if (f->exact) put_size(o, (uint64_t)f->heap);
    else put(o, "unknown (the registry was busy when the signal came)");
    put(o, "\n");
    line(o, "heap peak");
    put_size(o, f->peak);
    put(o, "\n");
    line(o, "requested");
    put_size(o, f->t.requested);
    put(o, " over all allocations\n");
    line(o, "held");
    put_size(o, f->t.held);
    put(o, ", slack ");
    put_u64(o, f->t.held - f->t.requested);
    if (f->t.held) {
        put(o, " (");
        put_milli(o, (uint64_t)((unsigned __int128)(f->t.held - f->t.requested) * 100000 / f->t.held));
        put(o, "%)");
    }
    put(o, "\n");
    line(o, "peak RSS");
    put_size(o, f->peak_rss);
    put(o, "\n");
    line(o, "RSS at exit");
    put_size(o, f->rss);
    put(o, "\n");
    line(o, "fragmentation");
    put_milli(o, f->frag_milli);
    put(o, " (RSS / heap at exit)\n");
    line(o, "calls");
    int any = 0;
    for (int i = 0; i < ZM_FN_COUNT; i++) {
        if (!f->t.calls[i]) continue;
        if (any) put(o, ", ");
        any = 1;
        put(o, fn_names[i]);
        put(o, " ");
        put_u64(o, f->t.calls[i]);
    }
    if (!any) put(o, "none");
    put(o, "\n");
    line(o, "failed allocations");
    put_u64(o, f->t.failed);
    put(o, "\n  requested size         allocations\n");
    for (int k = 0; k < ZM_HIST_BUCKETS; k++) {
        if (!f->t.hist[k]) continue;
        put(o, "  ");
        put_u64_w(o, bucket_low(k), 9);
        put(o, " .. ");
        put_u64_w(o, bucket_high(k), 9);
        put(o, " ");
        put_u64_w(o, f->t.hist[k], 12);
        put(o, "\n");
    }
}

void zm__report_write(const zm__report_opts *r) {
    figures f;
    gather(&f, r->try_lock);
    out o = {.fd = r->fd, .n = 0};
    if (r->json) write_json(&o, r, &f);
    else write_text(&o, r, &f);
    flush(&o);
}
