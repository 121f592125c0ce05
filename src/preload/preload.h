/* The preload library's parts, as interpose.c and each other see them:
 * statistics shared by threads without a slot (stats.c), the settings zmrun
 * passes in the environment and the process's life (lifecycle.c), the
 * report (report.c) and the sampling thread (sampler.c). */
#ifndef ZM_PRELOAD_H
#define ZM_PRELOAD_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "counter.h"
#include "preload/stats.h"

/* How the process ended, for the report. */
enum zm__end { ZM_END_EXIT, ZM_END__EXIT, ZM_END_EXEC, ZM_END_SIGNAL };

typedef struct zm__report_opts {
    int fd;          /* where to write */
    int json;        /* one JSON object on one line, else text */
    enum zm__end end;
    int code;        /* _exit's status or the signal number */
    int try_lock;    /* from a signal handler */
    const char *backend;
    uint64_t run_ns; /* since the library was loaded */
} zm__report_opts;

/* Writes the report with write(2) (no stdio, no heap). */
ZM_HIDDEN void zm__report_write(const zm__report_opts *o);

/* v in decimal at buf (room for ZM_U64_DIGITS), no NUL; returns its length.
 * For code that may not use stdio (report, sampler, file names). */
#define ZM_U64_DIGITS 20
ZM_HIDDEN size_t zm__format_u64(char *buf, uint64_t v);

/* Path with every "%p" replaced by the pid, into buf; 0 if it does not fit. */
ZM_HIDDEN int zm__expand_pid(const char *path, char *buf, size_t len);

/* The sampling thread (--interval/--csv): started once, in the first
 * process only. Returns 0, or -1 when it could not start. */
ZM_HIDDEN int zm__sampler_start(const char *csv_path, long interval_ms);
/* Writes one last sample (at exit) if the sampler runs. */
ZM_HIDDEN void zm__sampler_final(void);

ZM_HIDDEN uint64_t zm__now_ns(void);

#endif
