/* zmrun: runs a program with the zmalloc preload library in front of its
 * malloc, and reports its exact heap. See man/zmrun.1.
 *
 * Exit status: the program's (128 + N when signal N killed it); 2 for a
 * usage error, 126 for a program that cannot be run or is statically linked,
 * 127 for one that is not found. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "compare.h"
#include "program.h"
#include "svg.h"

#ifndef ZMRUN_REL_LIBDIR
#define ZMRUN_REL_LIBDIR "../lib/zmalloc"
#endif
#ifndef ZMRUN_VERSION
#define ZMRUN_VERSION "unknown"
#endif

#define EXIT_USAGE 2
#define EXIT_CANNOT_RUN 126
#define EXIT_NOT_FOUND 127

static const char *const backends[] = {"libc", "jemalloc", "tcmalloc", "mimalloc"};
#define N_BACKENDS (sizeof backends / sizeof backends[0])

typedef struct opts {
    const char *output, *backend, *csv, *svg;
    long long interval_ms, limit, fail_after;
    int json, compare;
    char **argv; /* the program and its arguments */
} opts;

static void usage(FILE *f) {
    fputs("usage: zmrun [options] [--] program [args...]\n"
          "Runs program with zmalloc in front of its malloc and reports its exact heap.\n"
          "  -o, --output FILE    write the report to FILE (\"%p\": the pid) instead of stderr\n"
          "      --json           the report as JSON, one object per line per process\n"
          "  -b, --backend NAME   libc (default), jemalloc, tcmalloc or mimalloc\n"
          "      --interval MS    sample heap and RSS every MS milliseconds (default 100\n"
          "                       with --csv or --svg)\n"
          "      --csv FILE       write the samples to FILE (time_ms,heap_bytes,rss_bytes)\n"
          "      --svg FILE       draw the samples as an SVG chart\n"
          "      --limit BYTES    allocations that would take the heap past BYTES fail with\n"
          "                       ENOMEM (suffixes K, M, G: powers of 1024)\n"
          "      --fail-after N   the Nth allocating call fails with ENOMEM\n"
          "      --compare        run the program once per backend and print one table\n"
          "      --list-backends  say which backends are installed\n"
          "  -h, --help           this text\n"
          "      --version        zmrun's version\n",
          f);
}

static _Noreturn void usage_error(const char *fmt, const char *arg) {
    fputs("zmrun: ", stderr);
    fprintf(stderr, fmt, arg);
    fputs("\nTry 'zmrun --help'.\n", stderr);
    exit(EXIT_USAGE);
}

/* A non-negative decimal with an optional K/M/G suffix (powers of 1024). */
static long long parse_amount(const char *s, int suffixes, const char *what) {
    char *end;
    errno = 0;
    if (!*s || *s == '-' || *s == '+') usage_error(what, s);
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s) usage_error(what, s);
    unsigned shift = 0;
    if (suffixes && *end) {
        switch (*end) {
        case 'k': case 'K': shift = 10; break;
        case 'm': case 'M': shift = 20; break;
        case 'g': case 'G': shift = 30; break;
        default: usage_error(what, s);
        }
        end++;
        if (*end == 'i' && end[1] == 'B') end += 2;
        else if (*end == 'B') end++;
    }
    if (*end || v > (unsigned long long)LLONG_MAX >> shift) usage_error(what, s);
    return (long long)(v << shift);
}

static void parse_options(int argc, char **argv, opts *o) {
    enum { O_JSON = 256, O_INTERVAL, O_CSV, O_SVG, O_LIMIT, O_FAIL_AFTER, O_COMPARE, O_LIST, O_VERSION };
    static const struct option longs[] = {
        {"output", required_argument, NULL, 'o'},
        {"json", no_argument, NULL, O_JSON},
        {"backend", required_argument, NULL, 'b'},
        {"interval", required_argument, NULL, O_INTERVAL},
        {"csv", required_argument, NULL, O_CSV},
        {"svg", required_argument, NULL, O_SVG},
        {"limit", required_argument, NULL, O_LIMIT},
        {"fail-after", required_argument, NULL, O_FAIL_AFTER},
        {"compare", no_argument, NULL, O_COMPARE},
        {"list-backends", no_argument, NULL, O_LIST},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, O_VERSION},
        {NULL, 0, NULL, 0},
    };
    memset(o, 0, sizeof *o);
    o->backend = "libc";
    o->interval_ms = -1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "+:o:b:h", longs, NULL)) != -1) {
        switch (c) {
        case 'o': o->output = optarg; break;
        case O_JSON: o->json = 1; break;
        case 'b': o->backend = optarg; break;
        case O_INTERVAL:
            o->interval_ms = parse_amount(optarg, 0, "--interval wants milliseconds (a positive number), not '%s'");
            if (o->interval_ms == 0) usage_error("--interval wants a positive number, not '%s'", optarg);
            break;
        case O_CSV: o->csv = optarg; break;
        case O_SVG: o->svg = optarg; break;
        case O_LIMIT:
            o->limit = parse_amount(optarg, 1, "--limit wants bytes (e.g. 1048576 or 64M), not '%s'");
            if (o->limit == 0) usage_error("--limit wants a positive size, not '%s'", optarg);
            break;
        case O_FAIL_AFTER:
            o->fail_after = parse_amount(optarg, 0, "--fail-after wants a positive count, not '%s'");
            if (o->fail_after == 0) usage_error("--fail-after wants a positive count, not '%s'", optarg);
            break;
        case O_COMPARE: o->compare = 1; break;
        case O_LIST: o->compare = -1; break;
        case 'h': usage(stdout); exit(0);
        case O_VERSION: printf("zmrun %s\n", ZMRUN_VERSION); exit(0);
        case ':': usage_error("option '%s' needs a value", argv[optind - 1]);
        default: usage_error("unknown option '%s'", argv[optind - 1]);
        }
    }
    o->argv = argv + optind;
    int known = 0;
    for (size_t i = 0; i < N_BACKENDS; i++) known |= strcmp(o->backend, backends[i]) == 0;
    if (!known) usage_error("unknown backend '%s' (libc, jemalloc, tcmalloc or mimalloc)", o->backend);
    if (o->compare > 0 && (o->csv || o->svg))
        usage_error("--compare draws no time series (drop --csv and --svg)%s", "");
    if (o->interval_ms > 0 && !o->csv && !o->svg)
        usage_error("--interval needs --csv FILE or --svg FILE%s", "");
    if ((o->csv || o->svg) && o->interval_ms < 0) o->interval_ms = 100;
    if (o->compare >= 0 && !o->argv[0]) usage_error("no program to run%s", "");
}

/* Where the preload libraries are: $ZMRUN_PRELOAD_DIR, else next to this
 * program as installed (ZMRUN_REL_LIBDIR), else in its build tree. */
static void preload_path(const char *backend, char *out, size_t len) {
    const char *dir = getenv("ZMRUN_PRELOAD_DIR");
    if (dir && *dir) {
        snprintf(out, len, "%s/libzmalloc-preload-%s.so", dir, backend);
        return;
    }
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) n = 0;
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (slash) *slash = '\0';
    snprintf(out, len, "%s/%s/libzmalloc-preload-%s.so", exe, ZMRUN_REL_LIBDIR, backend);
    if (access(out, R_OK) == 0) return;
    snprintf(out, len, "%s/preload/libzmalloc-preload-%s.so", exe, backend);
    if (access(out, R_OK) == 0) return;
    snprintf(out, len, "%s/%s/libzmalloc-preload-%s.so", exe, ZMRUN_REL_LIBDIR, backend);
}

/* The program may change directory before it writes: hand it absolute paths. */
static char *absolute(const char *path) {
    if (!path || path[0] == '/') return path ? strdup(path) : NULL;
    char cwd[PATH_MAX];
    if (!getcwd(cwd, sizeof cwd)) return strdup(path);
    size_t len = strlen(cwd) + strlen(path) + 2;
    char *out = malloc(len);
    if (out) snprintf(out, len, "%s/%s", cwd, path);
    return out;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void set_number(const char *name, long long v) {
    char buf[32];
    snprintf(buf, sizeof buf, "%lld", v);
    setenv(name, buf, 1);
}

typedef struct run_result {
    int status; /* zmrun's exit status for it */
    double wall_s;
    long pid;
} run_result;

/* Runs the program once with the given preload library. */
static int run_once(const opts *o, const char *path, const char *lib, const char *report,
                    int json, const char *csv, run_result *r) {
    fflush(NULL);
    double start = now_s();
    pid_t pid = fork();
    if (pid < 0) {
        perror("zmrun: fork");
        return -1;
    }
    if (pid == 0) {
        const char *old = getenv("LD_PRELOAD");
        size_t len = strlen(lib) + (old ? strlen(old) + 1 : 0) + 1;
        char *preload = malloc(len);
        if (!preload) _exit(EXIT_CANNOT_RUN);
        snprintf(preload, len, "%s%s%s", lib, old && *old ? " " : "", old && *old ? old : "");
        setenv("LD_PRELOAD", preload, 1);
        if (report) setenv("ZMRUN_OUTPUT", report, 1);
        else unsetenv("ZMRUN_OUTPUT");
        setenv("ZMRUN_JSON", json ? "1" : "0", 1);
        if (o->limit > 0) set_number("ZMRUN_LIMIT", o->limit);
        if (o->fail_after > 0) set_number("ZMRUN_FAIL_AFTER", o->fail_after);
        if (csv) {
            setenv("ZMRUN_CSV", csv, 1);
            set_number("ZMRUN_INTERVAL_MS", o->interval_ms);
        }
        set_number("ZMRUN_ROOT_PID", (long long)getpid());
        execv(path, o->argv);
        int err = errno;
        fprintf(stderr, "zmrun: cannot run %s: %s\n", path, strerror(err));
        _exit(err == ENOENT ? EXIT_NOT_FOUND : EXIT_CANNOT_RUN);
    }
    /* Like a shell waiting for its job: ^C and ^\ are the program's to act on. */
    struct sigaction ign = {.sa_handler = SIG_IGN}, old_int, old_quit;
    sigaction(SIGINT, &ign, &old_int);
    sigaction(SIGQUIT, &ign, &old_quit);
    int ws;
    while (waitpid(pid, &ws, 0) < 0 && errno == EINTR) {
    }
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGQUIT, &old_quit, NULL);
    r->wall_s = now_s() - start;
    r->pid = pid;
    if (WIFEXITED(ws)) {
        r->status = WEXITSTATUS(ws);
    } else {
        int sig = WTERMSIG(ws);
        fprintf(stderr, "zmrun: %s was killed by signal %d (%s)\n", o->argv[0], sig, strsignal(sig));
        r->status = 128 + sig;
    }
    return 0;
}

/* A file of our own in $TMPDIR, for a report or samples nobody asked to keep. */
static char *temp_file(const char *what) {
    const char *dir = getenv("TMPDIR");
    if (!dir || !*dir) dir = "/tmp";
    size_t len = strlen(dir) + 32;
    char *path = malloc(len);
    if (!path) return NULL;
    snprintf(path, len, "%s/zmrun-%s-XXXXXX", dir, what);
    int fd = mkstemp(path);
    if (fd < 0) {
        free(path);
        return NULL;
    }
    close(fd);
    return path;
}

/* "12.34 MiB" */
static const char *human(double bytes, char *buf, size_t len) {
    static const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int u = 0;
    while (u < 4 && bytes >= 1024) {
        bytes /= 1024;
        u++;
    }
    snprintf(buf, len, u ? "%.2f %s" : "%.0f %s", bytes, units[u]);
    return buf;
}

static int compare(const opts *o, const char *path) {
    zmrun_figures f[N_BACKENDS];
    run_result r[N_BACKENDS];
    int installed[N_BACKENDS], failed[N_BACKENDS], status = 0;
    char libs[N_BACKENDS][PATH_MAX + 64];
    for (size_t i = 0; i < N_BACKENDS; i++) {
        char *lib = libs[i];
        preload_path(backends[i], lib, sizeof libs[i]);
        installed[i] = access(lib, R_OK) == 0;
        failed[i] = 0;
        if (!installed[i]) continue;
        char *report = temp_file("report");
        if (!report) {
            perror("zmrun: temporary file");
            return EXIT_CANNOT_RUN;
        }
        fprintf(stderr, "zmrun: running %s on %s\n", o->argv[0], backends[i]);
        failed[i] = run_once(o, path, lib, report, 1, NULL, &r[i]) != 0 ||
                    zmrun_read_report(report, r[i].pid, &f[i]) != 0;
        unlink(report);
        free(report);
        if (!failed[i] && r[i].status && !status) status = r[i].status;
    }
    printf("%-9s %10s %14s %14s %14s %14s %7s %5s\n", "backend", "wall s", "peak heap",
           "heap at exit", "peak RSS", "RSS at exit", "RSS/heap", "exit");
    for (size_t i = 0; i < N_BACKENDS; i++) {
        if (!installed[i]) {
            printf("%-9s not installed (no %s)\n", backends[i], libs[i]);
            continue;
        }
        if (failed[i]) {
            printf("%-9s no report (the program ran but wrote none: see above)\n", backends[i]);
            continue;
        }
        char a[32], b[32], c[32], d[32];
        printf("%-9s %10.3f %14s %14s %14s %14s %7.2f %5d\n", backends[i], r[i].wall_s,
               human(f[i].heap_peak, a, sizeof a), human(f[i].heap_final, b, sizeof b),
               human(f[i].rss_peak, c, sizeof c), human(f[i].rss_final, d, sizeof d), f[i].frag,
               r[i].status);
    }
    return status;
}

static int list_backends(void) {
    char lib[PATH_MAX + 64];
    for (size_t i = 0; i < N_BACKENDS; i++) {
        preload_path(backends[i], lib, sizeof lib);
        printf("%-9s %s\n", backends[i], access(lib, R_OK) == 0 ? lib : "not installed");
    }
    return 0;
}

int main(int argc, char **argv) {
    opts o;
    parse_options(argc, argv, &o);
    o.output = absolute(o.output);
    o.csv = absolute(o.csv);
    if (o.compare < 0) return list_backends();
    char path[PATH_MAX];
    int err = zmrun_find_program(o.argv[0], path, sizeof path);
    if (err) {
        fprintf(stderr, "zmrun: %s: %s\n", o.argv[0],
                err == -ENOENT ? "program not found" : err == -EACCES ? "not an executable file" : strerror(-err));
        return err == -ENOENT ? EXIT_NOT_FOUND : EXIT_CANNOT_RUN;
    }
    enum zmrun_kind kind = zmrun_program_kind(path);
    if (kind == ZMRUN_FOREIGN) {
        fprintf(stderr, "zmrun: %s is a %d-bit program and zmrun's preload libraries are %d-bit: "
                        "the loader would ignore them. Use a zmrun built for it.\n",
                path, sizeof(void *) == 8 ? 32 : 64, (int)sizeof(void *) * 8);
        return EXIT_CANNOT_RUN;
    }
    struct stat sb;
    if (stat(path, &sb) == 0 && (sb.st_mode & (S_ISUID | S_ISGID)) &&
        (((sb.st_mode & S_ISUID) && sb.st_uid != geteuid()) ||
         ((sb.st_mode & S_ISGID) && sb.st_gid != getegid()))) {
        fprintf(stderr, "zmrun: %s is set-user-ID or set-group-ID: the loader ignores LD_PRELOAD "
                        "for it, so zmrun cannot measure it.\n", path);
        return EXIT_CANNOT_RUN;
    }
    if (kind == ZMRUN_STATIC) {
        fprintf(stderr, "zmrun: %s is statically linked: it has no dynamic loader, so zmrun cannot "
                        "take over its malloc. Run it without zmrun.\n", path);
        return EXIT_CANNOT_RUN;
    }
    if (o.compare) return compare(&o, path);

    char lib[PATH_MAX + 64];
    preload_path(o.backend, lib, sizeof lib);
    if (access(lib, R_OK) != 0) {
        fprintf(stderr, "zmrun: backend %s is not installed (no %s)\n", o.backend, lib);
        return EXIT_CANNOT_RUN;
    }
    /* Every process appends its report: start the file empty, unless each
     * process gets a file of its own. */
    if (o.output && !strstr(o.output, "%p")) {
        FILE *f = fopen(o.output, "w");
        if (!f) {
            fprintf(stderr, "zmrun: cannot write %s: %s\n", o.output, strerror(errno));
            return EXIT_USAGE;
        }
        fclose(f);
    }
    char *csv = (char *)o.csv, *temp_csv = NULL;
    if (o.svg && !csv) {
        csv = temp_csv = temp_file("samples");
        if (!csv) {
            perror("zmrun: temporary file");
            return EXIT_CANNOT_RUN;
        }
    }
    run_result r;
    if (run_once(&o, path, lib, o.output, o.json, csv, &r) != 0) return EXIT_CANNOT_RUN;
    if (o.svg) {
        char title[512];
        snprintf(title, sizeof title, "zmrun: heap and RSS of %s (%s)", o.argv[0], o.backend);
        if (strstr(csv, "%p")) {
            fprintf(stderr, "zmrun: --svg draws one process: give --csv without %%p\n");
        } else if (zmrun_svg(csv, o.svg, title) != 0) {
            fprintf(stderr, "zmrun: cannot draw %s: %s\n", o.svg,
                    errno == ENODATA ? "no samples (the program ended before the first one?)" : strerror(errno));
            if (!r.status) r.status = EXIT_CANNOT_RUN;
        }
    }
    if (temp_csv) {
        unlink(temp_csv);
        free(temp_csv);
    }
    return r.status;
}
