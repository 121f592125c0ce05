/* The preload library's life in a process: the settings zmrun passes in the
 * environment (read once, at load), and the report at every way out: exit()
 * (a destructor), _exit() and _Exit(), the exec family, and the fatal
 * signals whose disposition was the default. A forked child starts its own
 * figures and writes its own report; a vfork child (which shares its parent's
 * memory until it execs) writes nothing.
 *
 * The environment (see zmrun(1)):
 *   ZMRUN_OUTPUT      report file, "%p" expands to the pid; unset: stderr
 *   ZMRUN_JSON        "1": one JSON object per report, on one line
 *   ZMRUN_LIMIT       bytes: allocations that would pass it fail (ENOMEM)
 *   ZMRUN_FAIL_AFTER  N: the Nth allocating call fails (ENOMEM)
 *   ZMRUN_CSV, ZMRUN_INTERVAL_MS   time series of heap and RSS
 *   ZMRUN_ROOT_PID    the process zmrun started: the only one that samples
 *                     unless ZMRUN_CSV holds "%p" */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "preload/preload.h"
#include "zmalloc.h"

#define ZM_PUBLIC __attribute__((visibility("default")))
#define PATH_BYTES 4096

static struct {
    char output[PATH_BYTES]; /* empty: stderr */
    int stderr_fd;           /* stderr as it was at load: programs close theirs at exit */
    int json;
    uint64_t start_ns;
    pid_t pid;               /* this process's, updated at fork: tells a vfork child */
    _Atomic int reported;
    long fail_after;
    _Atomic long allocations; /* counted only while --fail-after is armed */
} st = {.stderr_fd = STDERR_FILENO};

/* --fail-after: the registry's request gate. Set, it sends every request to
 * the slow check, which asks here; it goes after the failure. */
static int fail_now(void) {
    long n = atomic_fetch_add_explicit(&st.allocations, 1, memory_order_relaxed) + 1;
    if (n != st.fail_after) return 0;
    zm__set_request_gate(NULL);
    return 1;
}

/* A decimal number, all of the string; -1 if it is not one. */
static long long parse_number(const char *s) {
    if (!s || !*s) return -1;
    long long v = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9' || v > (__LONG_LONG_MAX__ - 9) / 10) return -1;
        v = v * 10 + (*s - '0');
    }
    return v;
}

static void say(const char *msg) {
    ssize_t ignored = write(st.stderr_fd, msg, strlen(msg));
    (void)ignored;
}

/* Once per process image; not in a vfork child, whose heap is its parent's. */
static void report(enum zm__end end, int code, int from_signal) {
    if (getpid() != st.pid) return;
    if (atomic_exchange(&st.reported, 1)) return;
    zm__sampler_final();
    int fd = st.stderr_fd, opened = 0;
    if (fcntl(fd, F_GETFD) < 0) fd = STDERR_FILENO; /* the program closed our copy */
    if (st.output[0]) {
        char path[PATH_BYTES];
        if (zm__expand_pid(st.output, path, sizeof path)) {
            fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
            opened = fd >= 0;
        }
        if (!opened) {
            say("zmrun: cannot open the report file; report follows on stderr\n");
        }
    }
    zm__report_opts o = {
        .fd = fd,
        .json = st.json,
        .end = end,
        .code = code,
        .try_lock = from_signal,
        .backend = ZM_PRELOAD_BACKEND,
        .run_ns = zm__now_ns() - st.start_ns,
    };
    zm__report_write(&o);
    if (opened) close(fd);
}

static const int fatal_signals[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT, SIGTERM};

static void on_fatal_signal(int sig) {
    int saved = errno;
    report(ZM_END_SIGNAL, sig, 1);
    errno = saved;
    /* SA_RESETHAND put the default back: the signal does what it would have. */
    raise(sig);
}

/* Only where the program's own disposition is the default, and only until
 * the program sets its own. */
static void catch_fatal_signals(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_fatal_signal;
    sa.sa_flags = SA_RESETHAND | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < sizeof fatal_signals / sizeof fatal_signals[0]; i++) {
        struct sigaction old;
        if (sigaction(fatal_signals[i], NULL, &old) == 0 && !(old.sa_flags & SA_SIGINFO) &&
            old.sa_handler == SIG_DFL)
            sigaction(fatal_signals[i], &sa, NULL);
    }
}

/* In a fork child, after the other threads' slots retired: it starts its own
 * figures. */
static void fork_child(void) {
    zm__stats_reset();
    zm__reset_peak();
    if (zm__tls_slot != &zm__placeholder) zm__pl(zm__tls_slot)->peak_mark = INT64_MIN;
    st.pid = getpid();
    st.start_ns = zm__now_ns();
    atomic_store(&st.reported, 0);
}

/* The C library's own functions behind the ones below. */
static struct {
    void (*exit_)(int);
    int (*execve)(const char *, char *const[], char *const[]);
    int (*execvpe)(const char *, char *const[], char *const[]);
    int (*fexecve)(int, char *const[], char *const[]);
} real;

static void find_real(void) {
    real.exit_ = (void (*)(int))dlsym(RTLD_NEXT, "_exit");
    real.execve = (int (*)(const char *, char *const[], char *const[]))dlsym(RTLD_NEXT, "execve");
    real.execvpe = (int (*)(const char *, char *const[], char *const[]))dlsym(RTLD_NEXT, "execvpe");
    real.fexecve = (int (*)(int, char *const[], char *const[]))dlsym(RTLD_NEXT, "fexecve");
}

static const zm__registry_hooks hooks = {zm__stats_fold, fork_child};

__attribute__((constructor(101))) static void preload_init(void) {
    zm__registry_set_hooks(&hooks);
    st.start_ns = zm__now_ns();
    st.pid = getpid();
    /* Out of the way of the fds the program expects to get, and not passed
     * on by exec. Coreutils close stderr in an atexit handler. */
    st.stderr_fd = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 200);
    if (st.stderr_fd < 0) st.stderr_fd = STDERR_FILENO;
    find_real();
    const char *out = getenv("ZMRUN_OUTPUT");
    if (out && strlen(out) < sizeof st.output) strcpy(st.output, out);
    const char *json = getenv("ZMRUN_JSON");
    st.json = json && strcmp(json, "1") == 0;
    long long limit = parse_number(getenv("ZMRUN_LIMIT"));
    if (limit > 0) zm__set_limit((size_t)limit);
    long long nth = parse_number(getenv("ZMRUN_FAIL_AFTER"));
    if (nth > 0) {
        /* Calls made before this constructor ran count too. */
        zm__stats_total t;
        int64_t used;
        zm__stats_sum(&t, &used, 0);
        long made = 0;
        for (int i = 0; i < ZM_FN_COUNT; i++)
            if (i != ZM_FN_FREE && i != ZM_FN_USABLE_SIZE) made += (long)t.calls[i];
        atomic_store(&st.allocations, made);
        st.fail_after = (long)nth;
        zm__set_request_gate(fail_now);
    }
    const char *csv = getenv("ZMRUN_CSV");
    long long interval = parse_number(getenv("ZMRUN_INTERVAL_MS"));
    long long root = parse_number(getenv("ZMRUN_ROOT_PID"));
    if (csv && *csv && interval > 0 && (strstr(csv, "%p") || root == (long long)st.pid) &&
        zm__sampler_start(csv, (long)interval) != 0)
        say("zmrun: cannot start the sampling thread; no time series\n");
    catch_fatal_signals();
}

__attribute__((destructor)) static void preload_fini(void) { report(ZM_END_EXIT, 0, 0); }

ZM_PUBLIC void _exit(int status) {
    report(ZM_END__EXIT, status, 0);
    if (real.exit_) real.exit_(status);
    syscall(SYS_exit_group, status);
    __builtin_unreachable();
}

/* glibc's _Exit is its _exit. */
ZM_PUBLIC void _Exit(int status) { _exit(status); }

/* Reports, then calls the C library's exec; if that returns, the exec failed
 * and the process goes on: its report is still to come. */
#define REPORTED_EXEC(fn, ...)                                                                     \
    do {                                                                                           \
        if (!real.fn) find_real();                                                                 \
        report(ZM_END_EXEC, 0, 0);                                                                 \
        int r_ = real.fn(__VA_ARGS__);                                                             \
        atomic_store(&st.reported, 0);                                                             \
        return r_;                                                                                 \
    } while (0)

ZM_PUBLIC int execve(const char *path, char *const argv[], char *const envp[]) {
    REPORTED_EXEC(execve, path, argv, envp);
}

ZM_PUBLIC int execvpe(const char *file, char *const argv[], char *const envp[]) {
    REPORTED_EXEC(execvpe, file, argv, envp);
}

ZM_PUBLIC int fexecve(int fd, char *const argv[], char *const envp[]) {
    REPORTED_EXEC(fexecve, fd, argv, envp);
}

extern char **environ;

ZM_PUBLIC int execv(const char *path, char *const argv[]) { return execve(path, argv, environ); }

ZM_PUBLIC int execvp(const char *file, char *const argv[]) {
    return execvpe(file, argv, environ);
}

/* The list forms gather their arguments on the stack (no heap). */
#define GATHER_ARGS(first, ap, argv, extra)                                                        \
    size_t n_ = 1;                                                                                 \
    va_start(ap, first);                                                                           \
    while (va_arg(ap, char *)) n_++;                                                               \
    va_end(ap);                                                                                    \
    char *argv[n_ + 1];                                                                            \
    va_start(ap, first);                                                                           \
    argv[0] = (char *)(first);                                                                     \
    for (size_t i_ = 1; i_ <= n_; i_++) argv[i_] = i_ < n_ ? va_arg(ap, char *) : NULL;            \
    (void)va_arg(ap, char *);                                                                      \
    extra;                                                                                         \
    va_end(ap)

ZM_PUBLIC int execl(const char *path, const char *arg, ...) {
    va_list ap;
    GATHER_ARGS(arg, ap, argv, (void)0);
    return execve(path, argv, environ);
}

ZM_PUBLIC int execlp(const char *file, const char *arg, ...) {
    va_list ap;
    GATHER_ARGS(arg, ap, argv, (void)0);
    return execvpe(file, argv, environ);
}

ZM_PUBLIC int execle(const char *path, const char *arg, ...) {
    va_list ap;
    char *const *envp;
    GATHER_ARGS(arg, ap, argv, envp = va_arg(ap, char *const *));
    return execve(path, argv, envp);
}
