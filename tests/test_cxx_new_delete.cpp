// The global operator new and delete routed through zmalloc
// (ZMALLOC_NEW_DELETE, include/zmalloc.hpp), C++17: every form counted
// exactly and back to the baseline after delete, aligned forms aligned,
// failures as std::bad_alloc (or nullptr from std::nothrow), the
// new-handler loop honoured, and the C OOM handler never called.
//
// Each case is its own ctest test (test_cxx_new_delete.<case>): with an
// argument the program runs only the case of that name. It prints
// "N passed, N failed" and exits non-zero when a check failed.
#define ZMALLOC_NEW_DELETE
#include "zmalloc.hpp"

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <new>
#include <string>
#include <thread>
#include <vector>

#if !defined(__cpp_aligned_new)
#error "this test is built as C++17 (aligned new)"
#endif
// The sized operator deletes, where the compiler has them (gcc: C++14 on).
#ifdef __cpp_sized_deallocation
#define ZX_SIZED(...) , __VA_ARGS__
#else
#define ZX_SIZED(...)
#endif

#include "zt_expected.h"

#include "zx_check.hpp"

static long long used_since(size_t base) { return (long long)zm_used_memory() - (long long)base; }

// Keeps the compiler from eliding a new/delete pair (C++14 allows it).
static void escape(const void *p) { __asm__ volatile("" : : "g"(p) : "memory"); }

static bool aligned_to(const void *p, size_t a) {
    return reinterpret_cast<std::uintptr_t>(p) % a == 0;
}

static int oom_calls;
static void record_oom(size_t) { oom_calls++; }

struct point {
    long x, y, z;
};
struct with_dtor {
    std::string s;
    with_dtor() : s(100, 'd') {}
};

static void scalar_new() {
    size_t base = zm_used_memory();
    int *i = new int(42);
    escape(i);
    ZX_CHECK_EQ(used_since(base), zm_size(i));
    ZX_CHECK_EQ(zm_size(i), zt_expected_size(i, sizeof(int)));
    point *pt = new point{1, 2, 3};
    escape(pt);
    ZX_CHECK_EQ(used_since(base), zm_size(i) + zm_size(pt));
    ZX_CHECK_EQ(zm_size(pt), zt_expected_size(pt, sizeof(point)));
    ZX_CHECK(aligned_to(pt, alignof(std::max_align_t)));
    delete i; /* sized delete (C++14) */
    ZX_CHECK_EQ(used_since(base), zm_size(pt));
    delete pt;
    ZX_CHECK_EQ(used_since(base), 0);
    // The unsized and nothrow forms, called directly.
    void *v = ::operator new(1000);
    escape(v);
    ZX_CHECK_EQ(used_since(base), zm_size(v));
    ZX_CHECK_EQ(zm_size(v), zt_expected_size(v, 1000));
    ::operator delete(v);
    v = ::operator new(0); /* unique and non-null */
    void *w = ::operator new(0);
    ZX_CHECK(v != nullptr && w != nullptr && v != w);
    ZX_CHECK_EQ(used_since(base), zm_size(v) + zm_size(w));
    ::operator delete(v ZX_SIZED(std::size_t(0)));
    ::operator delete(w);
    v = ::operator new(77, std::nothrow);
    ZX_CHECK(v != nullptr);
    ZX_CHECK_EQ(used_since(base), zm_size(v));
    ::operator delete(v, std::nothrow);
    point *pn = new (std::nothrow) point();
    ZX_CHECK(pn != nullptr);
    escape(pn);
    ZX_CHECK_EQ(used_since(base), zm_size(pn));
    delete pn;
    ZX_CHECK_EQ(used_since(base), 0);
}

static void array_new() {
    size_t base = zm_used_memory();
    int *a = new int[1000];
    escape(a);
    ZX_CHECK_EQ(used_since(base), zm_size(a));
    ZX_CHECK_EQ(zm_size(a), zt_expected_size(a, 1000 * sizeof(int)));
    ZX_CHECK(zm_size(a) >= 1000 * sizeof(int));
    delete[] a;
    ZX_CHECK_EQ(used_since(base), 0);
    char *c = new (std::nothrow) char[100];
    ZX_CHECK(c != nullptr);
    escape(c);
    ZX_CHECK_EQ(used_since(base), zm_size(c));
    delete[] c;
    // A class with a destructor: the array carries a cookie before the
    // elements, so the block starts before the pointer; each element owns
    // a string block too.
    with_dtor *d = new with_dtor[10];
    escape(d);
    ZX_CHECK(used_since(base) >= (long long)(10 * sizeof(with_dtor) + 10 * 101));
    delete[] d;
    ZX_CHECK_EQ(used_since(base), 0);
    void *raw = ::operator new[](333);
    ZX_CHECK_EQ(used_since(base), zm_size(raw));
    ::operator delete[](raw ZX_SIZED(std::size_t(333)));
    raw = ::operator new[](333, std::nothrow);
    ZX_CHECK_EQ(used_since(base), zm_size(raw));
    ::operator delete[](raw, std::nothrow);
    ZX_CHECK_EQ(used_since(base), 0);
}

struct alignas(64) line64 {
    char c[64];
};
struct alignas(256) block256 {
    int v;
};

static void aligned_new() {
    size_t base = zm_used_memory();
    line64 *l = new line64; /* operator new(size_t, align_val_t(64)) */
    escape(l);
    ZX_CHECK(aligned_to(l, 64));
    ZX_CHECK_EQ(used_since(base), zm_size(zm::aligned_base(l)));
#ifdef ZM_SIZE_HEADER
    ZX_CHECK_EQ(zm_size(l), sizeof(line64) + 64); /* the block lies 64 bytes into the backend's */
#else
    ZX_CHECK_EQ(zm_size(l), zt_expected_size(l, sizeof(line64)));
#endif
    delete l; /* sized aligned delete */
    ZX_CHECK_EQ(used_since(base), 0);

    line64 *la = new line64[7];
    escape(la);
    for (int i = 0; i < 7; i++) ZX_CHECK(aligned_to(&la[i], 64));
    ZX_CHECK_EQ(used_since(base), zm_size(zm::aligned_base(la)));
    ZX_CHECK(zm_size(zm::aligned_base(la)) >= 7 * sizeof(line64));
    delete[] la;
    ZX_CHECK_EQ(used_since(base), 0);

    block256 *b = new (std::nothrow) block256();
    ZX_CHECK(b != nullptr && aligned_to(b, 256));
    escape(b);
    ZX_CHECK_EQ(used_since(base), zm_size(zm::aligned_base(b)));
    delete b;
    ZX_CHECK_EQ(used_since(base), 0);

    // std::align_val_t(4096), every form.
    const std::align_val_t page = std::align_val_t(4096);
    void *p = ::operator new(5000, page);
    ZX_CHECK(aligned_to(p, 4096));
    std::memset(p, 0x5a, 5000);
    ZX_CHECK_EQ(used_since(base), zm_size(zm::aligned_base(p)));
    ZX_CHECK(zm_size(zm::aligned_base(p)) >= 5000);
    ::operator delete(p, page);
    ZX_CHECK_EQ(used_since(base), 0);
    p = ::operator new[](5000, page);
    ZX_CHECK(aligned_to(p, 4096));
    ZX_CHECK_EQ(used_since(base), zm_size(zm::aligned_base(p)));
    ::operator delete[](p ZX_SIZED(std::size_t(5000)), page);
    p = ::operator new(1, page, std::nothrow);
    ZX_CHECK(p != nullptr && aligned_to(p, 4096));
    ZX_CHECK_EQ(used_since(base), zm_size(zm::aligned_base(p)));
    ::operator delete(p, page, std::nothrow);
    p = ::operator new[](0, page, std::nothrow);
    ZX_CHECK(p != nullptr && aligned_to(p, 4096));
    ::operator delete[](p, page, std::nothrow);
    p = ::operator new(100, std::align_val_t(8)); /* below the default: still fine */
    ZX_CHECK(aligned_to(p, 8));
    ::operator delete(p ZX_SIZED(std::size_t(100)), std::align_val_t(8));
    ZX_CHECK_EQ(used_since(base), 0);

    // Inside containers (C++17: std::allocator uses aligned new).
    {
        std::vector<line64> v(100);
        ZX_CHECK(aligned_to(v.data(), 64));
        ZX_CHECK_EQ(used_since(base), zm_size(zm::aligned_base(v.data())));
    }
    ZX_CHECK_EQ(used_since(base), 0);
}

// Under a limit: the throwing forms throw std::bad_alloc, the nothrow forms
// return nullptr, the process goes on, and the C OOM handler never runs.
static void limit_throws() {
    zm_set_oom_handler(record_oom);
    oom_calls = 0;
    size_t base = zm_used_memory();
    zm_set_limit(zm_used_memory() + 1000);
    int thrown = 0;
    try {
        char *p = new char[100000];
        escape(p);
        delete[] p;
    } catch (const std::bad_alloc &) {
        thrown++;
    }
    char *q = new (std::nothrow) char[100000];
    escape(q);
    ZX_CHECK(q == nullptr);
    delete[] q;
    try {
        void *p = ::operator new(100000);
        ::operator delete(p);
    } catch (const std::bad_alloc &) {
        thrown++;
    }
    void *n1 = ::operator new(100000, std::nothrow);
    escape(n1);
    ZX_CHECK(n1 == nullptr);
    try {
        void *p = ::operator new(100000, std::align_val_t(64));
        ::operator delete(p, std::align_val_t(64));
    } catch (const std::bad_alloc &) {
        thrown++;
    }
    void *n2 = ::operator new[](100000, std::align_val_t(4096), std::nothrow);
    escape(n2);
    ZX_CHECK(n2 == nullptr);
    try {
        std::vector<int> v(100000);
        escape(v.data());
    } catch (const std::bad_alloc &) {
        thrown++;
    }
    try {
        std::string s(100000, 's');
        escape(s.data());
    } catch (const std::bad_alloc &) {
        thrown++;
    }
    {
        int *small = new int(1); /* within the limit */
        escape(small);
        ZX_CHECK_EQ(used_since(base), zm_size(small));
        delete small;
    }
    zm_set_limit(0);
    ZX_CHECK_EQ(thrown, 5);
    ZX_CHECK_EQ(oom_calls, 0);
    ZX_CHECK_EQ(used_since(base), 0);
    // Without a limit the same requests succeed.
    char *r = new char[100000];
    escape(r);
    ZX_CHECK_EQ(used_since(base), zm_size(r));
    delete[] r;
    ZX_CHECK_EQ(used_since(base), 0);
    zm_set_oom_handler(nullptr);
}

// The standard's loop: on failure the new-handler runs, and the allocation
// is tried again; a handler that throws std::bad_alloc makes the nothrow
// forms return nullptr.
static int handler_calls;
static void lift_limit() {
    handler_calls++;
    zm_set_limit(0);
}
static void give_up() {
    handler_calls++;
    throw std::bad_alloc();
}
static void new_handler_loop() {
    zm_set_oom_handler(record_oom);
    oom_calls = 0;
    size_t base = zm_used_memory();
    std::new_handler old = std::set_new_handler(lift_limit);
    handler_calls = 0;
    zm_set_limit(zm_used_memory() + 1000);
    char *p = new char[100000]; /* fails, the handler lifts the limit, retried */
    escape(p);
    ZX_CHECK(p != nullptr);
    ZX_CHECK_EQ(handler_calls, 1);
    ZX_CHECK_EQ(zm_get_limit(), 0);
    ZX_CHECK_EQ(used_since(base), zm_size(p));
    delete[] p;
    handler_calls = 0;
    zm_set_limit(zm_used_memory() + 1000);
    void *a = ::operator new(100000, std::align_val_t(128), std::nothrow);
    ZX_CHECK(a != nullptr && aligned_to(a, 128));
    ZX_CHECK_EQ(handler_calls, 1);
    ::operator delete(a, std::align_val_t(128));

    std::set_new_handler(give_up);
    handler_calls = 0;
    zm_set_limit(zm_used_memory() + 1000);
    char *n1 = new (std::nothrow) char[100000];
    escape(n1);
    ZX_CHECK(n1 == nullptr);
    void *n2 = ::operator new(100000, std::align_val_t(64), std::nothrow);
    escape(n2);
    ZX_CHECK(n2 == nullptr);
    ZX_CHECK_EQ(handler_calls, 2);
    bool thrown = false;
    try {
        escape(::operator new(100000));
    } catch (const std::bad_alloc &) {
        thrown = true;
    }
    ZX_CHECK(thrown);
    ZX_CHECK_EQ(handler_calls, 3);
    zm_set_limit(0);
    std::set_new_handler(old);
    ZX_CHECK_EQ(oom_calls, 0);
    ZX_CHECK_EQ(used_since(base), 0);
    zm_set_oom_handler(nullptr);
}

static void containers() {
    size_t base = zm_used_memory();
    {
        std::vector<int> v;
        for (int i = 0; i < 100000; i++) v.push_back(i);
        ZX_CHECK_EQ(used_since(base), zm_size(v.data()));
        std::map<int, std::string> m;
        for (int i = 0; i < 1000; i++) m[i] = std::string(50, (char)('a' + i % 26));
        ZX_CHECK(used_since(base) > (long long)(zm_size(v.data()) + 1000 * 51));
        std::string s(100000, 'x');
        auto sp = std::make_shared<std::vector<double>>(1000);
        std::unique_ptr<point[]> up(new point[10]);
        escape(up.get());
        ZX_CHECK(used_since(base) > (long long)(100000 + 1000 * sizeof(double)));
    }
    ZX_CHECK_EQ(used_since(base), 0);
}

// Blocks made by new in one thread, deleted in another, and the threads'
// own state (std::thread allocates it with new).
static void threads() {
    std::vector<int *> made(1000);
    size_t base = zm_used_memory();
    std::thread t([&made] {
        for (auto &p : made) p = new int[25];
    });
    t.join();
    ZX_CHECK(used_since(base) >= (long long)(1000 * 25 * sizeof(int)));
    long long sum = 0;
    for (int *p : made) sum += (long long)zm_size(p);
    ZX_CHECK_EQ(used_since(base), sum);
    std::thread u([&made] {
        for (int *p : made) delete[] p;
    });
    u.join();
    ZX_CHECK_EQ(used_since(base), 0);
}

// Whether a tool has replaced this program's operator new and delete with
// its own: valgrind's memcheck does, unless run with
// --soname-synonyms=somalloc=nouserintercepts. Then only the new-expressions
// the compiler inlined come here, the standard library's do not, and the
// checks above cannot hold. Called through pointers, so that nothing is
// inlined.
static bool operators_replaced_by_a_tool() {
    void *(*volatile op_new)(std::size_t) = &::operator new;
    void (*volatile op_delete)(void *) = &::operator delete;
    size_t base = zm_used_memory();
    void *p = op_new(64);
    bool ours = zm_used_memory() != base;
    op_delete(p);
    return !ours;
}

#define ZX_ENTRY(name) {#name, name}
static const struct {
    const char *name;
    void (*fn)();
} cases[] = {
    ZX_ENTRY(scalar_new),
    ZX_ENTRY(array_new),
    ZX_ENTRY(aligned_new),
    ZX_ENTRY(limit_throws),
    ZX_ENTRY(new_handler_loop),
    ZX_ENTRY(containers),
    ZX_ENTRY(threads),
};

int main(int argc, char **argv) {
    if (operators_replaced_by_a_tool()) {
        std::printf("skipped: operator new/delete are replaced by a tool (valgrind: run it with "
                    "--soname-synonyms=somalloc=nouserintercepts)\n");
        return 77;
    }
    return zx_run(cases, argc, argv);
}
