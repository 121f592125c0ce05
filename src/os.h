/* The OS-query layer: the only code that knows about /proc, sysfs and
 * sysconf. Nothing here allocates from the heap or uses stdio: these
 * functions may run inside a program whose malloc is being interposed.
 * Each size_t query returns 0 and sets errno on failure, and leaves errno as
 * it was on success, so that a caller can set errno to 0 to tell a true 0
 * from a failure. */
#ifndef ZM_OS_H
#define ZM_OS_H

#include <stddef.h>
#include <stdint.h>

#include "internal.h"

/* Resident pages of this process (/proc/self/statm) in bytes. errno: from
 * open/pread, EIO for content that does not parse. */
ZM_HIDDEN size_t zm__os_rss(void);
/* Sum of an smaps field given in kB ("Rss:" or "Rss"; the whole name must
 * match) over the mappings of pid (-1: this process), in bytes, saturating.
 * errno: EINVAL for a NULL, empty or overlong field or a pid below -1, ESRCH
 * for no such process, EACCES when not allowed, ENOENT when no line carries
 * the field. */
ZM_HIDDEN size_t zm__os_smap_bytes(const char *field, long pid);
/* A field given in kB in /proc/self/status ("VmHWM"), in bytes; errors as
 * zm__os_smap_bytes. */
ZM_HIDDEN size_t zm__os_status_bytes(const char *field);
/* Physical memory in bytes. */
ZM_HIDDEN size_t zm__os_memory_size(void);
/* The cgroup limit (see zm__cgroup_limit), or zm__os_memory_size() when there
 * is none or it is larger. */
ZM_HIDDEN size_t zm__os_memory_limit(void);
/* Field i (1-based, as in proc(5)) of /proc/self/stat. Returns 1, or 0 with
 * errno EINVAL for i < 1, a NULL res, a field past the end or one that is not
 * a number fitting a long long (comm, state, rsslim when unlimited). */
ZM_HIDDEN int zm__os_proc_stat_ll(int i, long long *res);
/* Whether valgrind runs a tool that replaces the allocator's functions
 * (memcheck, helgrind, drd, massif, dhat: each preloads vgpreload_<tool>)
 * without changing their symbols' addresses; its core alone (cachegrind,
 * callgrind) leaves them alone. Reads the environment: call at load time. */
ZM_HIDDEN int zm__os_valgrind_replaces_malloc(void);
/* Whether the shared object that holds `symbol` carries the GNU build ID
 * `id` (len bytes), with its load address in *base: a backend reads an
 * allocator's unexported data only in the one build whose layout it knows.
 * 0 otherwise (no such note, another ID, no object found). */
ZM_HIDDEN int zm__os_object_has_build_id(const void *symbol, const unsigned char *id, size_t len,
                                         uintptr_t *base);
/* The calling thread's TLS block of the shared object that holds `symbol`
 * (its PT_TLS segment, as dl_iterate_phdr gives it), and its size. 0 if the
 * object has none or none is set up for this thread. */
ZM_HIDDEN int zm__os_object_tls(const void *symbol, void **block, size_t *size);
/* The address of the dynamic symbol `name` defined in the loaded library
 * whose file name is `soname` (e.g. "libc.so.6"), looked up in that library
 * alone (a symbol lookup by name would find the first definition in the
 * process: tcmalloc and mimalloc define glibc's __libc_malloc too). NULL if
 * the library is not loaded or does not define it. Allocates nothing. */
ZM_HIDDEN void *zm__os_library_symbol(const char *soname, const char *name);
/* Copies len bytes (at most a pipe's capacity) from addr to buf through the
 * kernel, which refuses an unreadable address where a load would fault.
 * Load-time probes only: it opens a pipe. 1, or 0 (unreadable, no pipe). */
ZM_HIDDEN int zm__os_read_checked(const void *addr, void *buf, size_t len);
/* madvise(MADV_DONTNEED) the whole pages inside [p, p + size). */
ZM_HIDDEN void zm__os_dontneed(void *p, size_t size);

/* Test seams: the pure parsers behind the queries above, fed from buffers so
 * that tests and fuzzers can give them any bytes. Each returns 1 on success
 * and 0 when the input does not hold what is asked for. */
ZM_HIDDEN int zm__parse_statm_resident(const char *buf, size_t len, unsigned long long *pages);
ZM_HIDDEN int zm__parse_stat_field(const char *buf, size_t len, int i, long long *res);

/* Incremental smaps summer: feed the file in chunks of any size (lines may
 * be split anywhere). Lines longer than line[] are ignored. */
typedef struct zm__smaps_sum {
    const char *field; /* with or without the trailing ':' */
    size_t field_len; /* the name without the ':' */
    unsigned long long kb;
    int found;
    size_t line_len; /* bytes of the current (partial) line held in line[] */
    int line_overflow;
    char line[128];
} zm__smaps_sum;
ZM_HIDDEN void zm__smaps_init(zm__smaps_sum *s, const char *field);
ZM_HIDDEN void zm__smaps_feed(zm__smaps_sum *s, const char *buf, size_t len);
/* Bytes found so far (kB * 1024, saturating); *found (may be NULL) says
 * whether any line carried the field. A last line without '\n' counts. */
ZM_HIDDEN size_t zm__smaps_result(const zm__smaps_sum *s, int *found);

/* The cgroup memory limit seen from a /proc/self/cgroup text (len bytes, not
 * NUL-terminated), looking under the given v2 and v1 mount points: the
 * smallest limit from the process's cgroup up to the mount point, cgroup v2
 * first, v1 only when v2 sets none. Returns 0 when no limit applies. */
ZM_HIDDEN size_t zm__cgroup_limit(const char *proc_cgroup, size_t len, const char *v2_root,
                                  const char *v1_memory_root);

#endif
