// The program zmrun's tests run under zmrun. Each case runs twice, "known"
// and "baseline": the same threads, forks and execs, with and without the
// allocations under test, so that the difference between the two reports is
// exactly what the test allocated, whatever the C and C++ runtimes allocate
// on their own. The expected difference comes from the allocator's own size
// function, looked up in its library (not from zmalloc):
//   zmrun_target CASE MODE BACKEND EXPECT_FILE [args]
// writes "name value" lines to EXPECT_FILE with write(2) (no stdio: its
// buffers would be allocations of their own).
#include <atomic>

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

namespace {

bool known;
size_t (*own_size)(void *);
int expect_fd = -1;

void die(const char *msg) {
    ssize_t ignored = write(2, msg, strlen(msg));
    (void)ignored;
    _exit(99);
}

// The backend's own usable-size function, from the library that holds it.
void find_own_size(const char *backend) {
    static const struct {
        const char *backend, *lib, *fn;
    } table[] = {
        {"libc", "libc.so.6", "malloc_usable_size"},
        {"jemalloc", "libjemalloc.so.2", "malloc_usable_size"},
        {"tcmalloc", "libtcmalloc_minimal.so.4", "tc_malloc_size"},
        {"mimalloc", "libmimalloc.so.2", "mi_usable_size"}, // mimalloc 2 (Debian 12)
        {"mimalloc", "libmimalloc.so.3", "mi_usable_size"}, // mimalloc 3 (Debian 13 on)
    };
    for (const auto &t : table) {
        if (strcmp(t.backend, backend) != 0) continue;
        void *h = dlopen(t.lib, RTLD_LAZY | RTLD_NOLOAD);
        if (!h) continue; /* another soname of the same allocator */
        own_size = reinterpret_cast<size_t (*)(void *)>(dlsym(h, t.fn));
        if (!own_size) die("zmrun_target: no size function\n");
        return;
    }
    die("zmrun_target: unknown backend, or its library is not loaded\n");
}

size_t usable(void *p) { return p ? own_size(p) : 0; }

void expect(const char *name, size_t value) {
    char line[96];
    int n = snprintf(line, sizeof line, "%s %zu\n", name, value);
    if (write(expect_fd, line, (size_t)n) != n) die("zmrun_target: cannot write\n");
}

void *alloc(size_t n) {
    if (!known) return nullptr;
    void *p = malloc(n);
    if (!p) die("zmrun_target: malloc failed\n");
    memset(p, 1, n);
    return p;
}

// --- exact: every function of the family, cross-thread frees, a peak ---
void *from_main;
void *from_thread, *kept_by_thread;

void *thread_body(void *) {
    free(from_main); // allocated by main
    from_thread = alloc(777);
    kept_by_thread = alloc(2222);
    return nullptr;
}

int case_exact() {
    size_t live = 0;
    void *b = nullptr, *c = nullptr, *d = nullptr, *r = nullptr, *v = nullptr;
    char *n = nullptr;
    if (known) {
        from_main = alloc(100);
        b = calloc(10, 33);
        if (posix_memalign(&c, 64, 1000) != 0) die("posix_memalign\n");
        d = aligned_alloc(256, 512);
        r = malloc(100);
        r = realloc(r, 5000); // growth
        r = realloc(r, 40);   // shrink
        v = valloc(300);
        n = new char[3000];
        if (!b || !d || !r || !v) die("zmrun_target: allocation failed\n");
    }
    pthread_t t;
    if (pthread_create(&t, nullptr, thread_body, nullptr) != 0) die("pthread_create\n");
    pthread_join(t, nullptr);
    free(from_thread); // allocated by the thread
    live = usable(b) + usable(c) + usable(d) + usable(r) + usable(v) + usable(n) +
           usable(kept_by_thread);
    void *big = alloc((size_t)8 << 20);
    expect("peak", live + usable(big));
    free(big);
    expect("final", live);
    return 0;
}

// --- forkexec: threads, fork, exec; three reports ---
void *keep_a[2];

void *fork_thread_body(void *arg) {
    keep_a[(long)arg] = alloc(5000 + 1000 * (size_t)(long)arg);
    return nullptr;
}

int case_forkexec(const char *self, const char *backend, const char *expect_path) {
    pthread_t t[2];
    for (long i = 0; i < 2; i++) pthread_create(&t[i], nullptr, fork_thread_body, (void *)i);
    for (auto &x : t) pthread_join(x, nullptr);
    size_t threads = usable(keep_a[0]) + usable(keep_a[1]);
    pid_t pid = fork();
    if (pid < 0) die("fork\n");
    if (pid == 0) {
        void *child = alloc(12345);
        expect("child_final", threads + usable(child));
        const char *args[] = {self, "leaf", known ? "known" : "baseline", backend, expect_path,
                              nullptr};
        execv(self, const_cast<char **>(args));
        die("execv\n");
    }
    int ws;
    waitpid(pid, &ws, 0);
    if (!WIFEXITED(ws) || WEXITSTATUS(ws) != 0) die("zmrun_target: the child failed\n");
    expect("parent_final", threads);
    return 0;
}

int case_leaf() {
    expect("leaf_final", usable(alloc(4321)));
    return 0;
}

// --- tsd: thread-specific-data destructors that free and allocate ---
pthread_key_t key;
void *from_destructor[4];
std::atomic<int> destructor_slot;

void tsd_destructor(void *p) {
    free(p);
    from_destructor[destructor_slot++] = alloc(640);
}

void *tsd_thread(void *) {
    void *p = alloc(100000);
    pthread_setspecific(key, p ? p : (void *)1);
    return nullptr;
}

int case_tsd() {
    pthread_key_create(&key, [](void *p) {
        if (p != (void *)1) tsd_destructor(p);
        else from_destructor[destructor_slot++] = nullptr;
    });
    pthread_t t[4];
    for (auto &x : t) pthread_create(&x, nullptr, tsd_thread, nullptr);
    for (auto &x : t) pthread_join(x, nullptr);
    size_t kept = 0;
    for (void *p : from_destructor) kept += usable(p);
    expect("final", kept);
    return 0;
}

// --- ctor: allocates before main, frees after it ---
void *before_main_big, *before_main_small;

__attribute__((constructor)) void before_main() {
    const char *mode = getenv("ZT_CTOR");
    if (!mode || strcmp(mode, "known") != 0) return;
    before_main_big = malloc(1 << 20);
    before_main_small = malloc(300);
    atexit([] { free(before_main_big); });
}

int case_ctor() {
    expect("peak_extra", usable(before_main_big) + usable(before_main_small));
    expect("final", usable(before_main_small));
    return 0;
}

// --- limit: allocate 64 KiB blocks until one fails ---
int case_limit() {
    size_t n = 0, total = 0;
    for (;;) {
        errno = 0;
        void *p = malloc(65536);
        if (!p) break;
        total += usable(p);
        n++;
        if (n > 100000) die("zmrun_target: the limit never came\n");
    }
    expect("errno_is_enomem", errno == ENOMEM);
    expect("blocks", n);
    expect("bytes", total);
    return 0;
}

// --- aligned: alignments of 16 and 64 KiB, each block freed but one of
// each kind (a sized free that the allocator trusts must get the exact size) ---
int case_aligned() {
    enum { N = 100 };
    static void *blocks[3][N];
    size_t peak = 0, kept = 0;
    for (int i = 0; known && i < N; i++) {
        blocks[0][i] = memalign(16384, 100);
        if (posix_memalign(&blocks[1][i], 16384, 100 + (size_t)i) != 0) die("posix_memalign\n");
        blocks[2][i] = aligned_alloc(65536, 65536);
        if (!blocks[0][i] || !blocks[2][i]) die("zmrun_target: allocation failed\n");
        if (((uintptr_t)blocks[0][i] | (uintptr_t)blocks[1][i]) % 16384 ||
            (uintptr_t)blocks[2][i] % 65536)
            die("zmrun_target: a block is not aligned\n");
    }
    for (auto &kind : blocks)
        for (void *p : kind) peak += usable(p);
    expect("peak", peak);
    for (auto &kind : blocks) {
        for (int i = 0; i < N - 1; i++) free(kind[i]);
        kept += usable(kind[N - 1]);
    }
    expect("final", kept);
    return 0;
}

// --- failafter: which of 10 allocations fail ---
// The blocks are never freed: each goes to a volatile global, or an optimizer
// that sees only a null test (g++ 16 at -O2) deletes the call.
void *volatile failafter_block;

int case_failafter() {
    for (int i = 1; i <= 10; i++) {
        errno = 0;
        void *p = i % 2 ? malloc(50) : calloc(1, 50);
        failafter_block = p;
        if (!p) {
            expect("failed_call", (size_t)i);
            expect("errno_is_enomem", errno == ENOMEM);
        }
    }
    return 0;
}

} // namespace

int main(int argc, char **argv) {
    if (argc < 5) die("usage: zmrun_target CASE known|baseline BACKEND EXPECT_FILE\n");
    const char *which = argv[1];
    known = strcmp(argv[2], "known") == 0;
    find_own_size(argv[3]);
    expect_fd = open(argv[4], O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (expect_fd < 0) die("zmrun_target: cannot open the expect file\n");
    if (!strcmp(which, "exact")) return case_exact();
    if (!strcmp(which, "forkexec")) return case_forkexec(argv[0], argv[3], argv[4]);
    if (!strcmp(which, "leaf")) return case_leaf();
    if (!strcmp(which, "tsd")) return case_tsd();
    if (!strcmp(which, "ctor")) return case_ctor();
    if (!strcmp(which, "limit")) return case_limit();
    if (!strcmp(which, "aligned")) return case_aligned();
    if (!strcmp(which, "failafter")) return case_failafter();
    if (!strcmp(which, "exit")) return atoi(argc > 5 ? argv[5] : "0");
    if (!strcmp(which, "_exit")) _exit(atoi(argc > 5 ? argv[5] : "0"));
    if (!strcmp(which, "abort")) abort();
    die("zmrun_target: unknown case\n");
}
