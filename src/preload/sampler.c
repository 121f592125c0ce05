/* The time series: a thread that wakes every interval and appends one line
 * "time_ms,heap_bytes,rss_bytes" to the CSV file. It blocks every signal
 * (they stay the program's) and never allocates: the heap figure comes from
 * the registry, RSS from /proc with read(2), the line from write(2). */
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "os.h"
#include "preload/preload.h"
#include "zmalloc.h"

static struct {
    int fd;
    long interval_ms;
    uint64_t start_ns;
    pid_t pid; /* the process it samples: a fork child has no sampler */
    _Atomic int running;
} sm = {.fd = -1};

static void sample(void) {
    char line[96];
    size_t n = 0;
    n += zm__format_u64(line + n, (zm__now_ns() - sm.start_ns) / 1000000);
    line[n++] = ',';
    n += zm__format_u64(line + n, zm__used_memory());
    line[n++] = ',';
    n += zm__format_u64(line + n, zm__os_rss());
    line[n++] = '\n';
    ssize_t ignored = write(sm.fd, line, n);
    (void)ignored;
}

static void *sampler(void *arg) {
    (void)arg;
    struct timespec next;
    clock_gettime(CLOCK_MONOTONIC, &next);
    for (;;) {
        sample();
        next.tv_nsec += (sm.interval_ms % 1000) * 1000000;
        next.tv_sec += sm.interval_ms / 1000 + next.tv_nsec / 1000000000;
        next.tv_nsec %= 1000000000;
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL) != 0) {
        }
    }
    return NULL;
}

int zm__sampler_start(const char *csv_path, long interval_ms) {
    char path[4096];
    if (!zm__expand_pid(csv_path, path, sizeof path)) return -1;
    sm.fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
    if (sm.fd < 0) return -1;
    static const char header[] = "time_ms,heap_bytes,rss_bytes\n";
    ssize_t ignored = write(sm.fd, header, sizeof header - 1);
    (void)ignored;
    sm.interval_ms = interval_ms;
    sm.start_ns = zm__now_ns();
    sm.pid = getpid();
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 64 * 1024);
    pthread_t t;
    int err = pthread_create(&t, &attr, sampler, NULL);
    pthread_attr_destroy(&attr);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (err) {
        close(sm.fd);
        sm.fd = -1;
        return -1;
    }
    atomic_store(&sm.running, 1);
    return 0;
}

void zm__sampler_final(void) {
    if (getpid() == sm.pid && atomic_exchange(&sm.running, 0)) sample();
}
