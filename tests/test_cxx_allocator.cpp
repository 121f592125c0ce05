// zm::allocator (include/zmalloc.hpp) under the standard containers, C++11:
// every block a container takes is counted, exactly, and used memory is back
// at its baseline, to the byte, once the container is gone; failures throw
// std::bad_alloc and never reach the C OOM handler.
//
// Each case is its own ctest test (test_cxx_allocator.<case>): with an
// argument the program runs only the case of that name. It prints
// "N passed, N failed" and exits non-zero when a check failed.
#include "zmalloc.hpp"

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "zt_expected.h"

#include "zx_check.hpp"

static long long used_since(size_t base) { return (long long)zm_used_memory() - (long long)base; }

// The C OOM handler must never run: everything here reports failure by
// std::bad_alloc.
static int oom_calls;
static void record_oom(size_t) { oom_calls++; }

// zm::allocator plus a tally of zm_size() over the blocks it holds: used
// memory must grow by exactly the tally.
static long long tally;
template <class T>
struct tallied : zm::allocator<T> {
    template <class U>
    struct rebind {
        typedef tallied<U> other;
    };
    tallied() noexcept {}
    template <class U>
    tallied(const tallied<U> &) noexcept {}
    T *allocate(std::size_t n) {
        T *p = zm::allocator<T>::allocate(n);
        tally += (long long)zm_size(p);
        return p;
    }
    void deallocate(T *p, std::size_t n) noexcept {
        tally -= (long long)zm_size(p);
        zm::allocator<T>::deallocate(p, n);
    }
};
template <class T, class U>
bool operator==(const tallied<T> &, const tallied<U> &) noexcept {
    return true;
}
template <class T, class U>
bool operator!=(const tallied<T> &, const tallied<U> &) noexcept {
    return false;
}

// The allocator's promised traits, at compile time.
static_assert(std::is_same<zm::allocator<int>::value_type, int>::value, "value_type");
static_assert(zm::allocator<int>::propagate_on_container_move_assignment::value, "pocma");
static_assert(std::allocator_traits<zm::allocator<int> >::propagate_on_container_move_assignment::value,
              "pocma through allocator_traits");
static_assert(zm::allocator<int>::is_always_equal::value, "is_always_equal");
static_assert(std::is_same<std::allocator_traits<zm::allocator<int> >::rebind_alloc<double>,
                           zm::allocator<double> >::value,
              "rebind");
static_assert(std::is_same<zm::allocator<int>::rebind<long>::other, zm::allocator<long> >::value,
              "rebind member");

static void vector_growth() {
    size_t base = zm_used_memory();
    {
        std::vector<int, zm::allocator<int> > v;
        size_t cap = v.capacity();
        for (int i = 0; i < 100000; i++) {
            v.push_back(i);
            if (v.capacity() != cap) { /* it grew: one block, the new one */
                cap = v.capacity();
                ZX_CHECK_EQ(used_since(base), zm_size(v.data()));
                ZX_CHECK(zm_size(v.data()) >= cap * sizeof(int));
            }
        }
        ZX_CHECK(used_since(base) > 0);
        for (int i = 0; i < 100000; i++)
            if (v[(size_t)i] != i) {
                ZX_CHECK(v[(size_t)i] == i);
                break;
            }
        v.shrink_to_fit();
        ZX_CHECK_EQ(used_since(base), zm_size(v.data()));
    }
    ZX_CHECK_EQ(used_since(base), 0);
}

static void vector_reserve() {
    size_t base = zm_used_memory();
    const size_t ns[] = {1, 3, 4, 5, 100, 1000, 4096, 100000, 1000000};
    for (size_t k = 0; k < sizeof ns / sizeof ns[0]; k++) {
        size_t n = ns[k];
        {
            std::vector<int, zm::allocator<int> > v;
            v.reserve(n);
            ZX_CHECK_EQ(used_since(base), zm_size(v.data()));
            ZX_CHECK(zm_size(v.data()) >= n * sizeof(int));
            ZX_CHECK_EQ(zm_size(v.data()), zt_expected_size(v.data(), n * sizeof(int)));
            ZX_CHECK(reinterpret_cast<std::uintptr_t>(v.data()) % alignof(int) == 0);
            v.assign(n, 7);
            ZX_CHECK_EQ(used_since(base), zm_size(v.data()));
        }
        ZX_CHECK_EQ(used_since(base), 0);
    }
}

static void vector_move_and_swap() {
    size_t base = zm_used_memory();
    {
        typedef std::vector<int, zm::allocator<int> > vec;
        vec a(1000, 1), b(10, 2);
        long long both = (long long)(zm_size(a.data()) + zm_size(b.data()));
        ZX_CHECK_EQ(used_since(base), both);
        const int *ad = a.data();
        b = std::move(a); /* propagates: b takes a's block, frees its own */
        ZX_CHECK(b.data() == ad);
        ZX_CHECK_EQ(used_since(base), zm_size(b.data()));
        vec c(b); /* a copy: a block of its own */
        ZX_CHECK_EQ(used_since(base), zm_size(b.data()) + zm_size(c.data()));
        c.swap(b);
        ZX_CHECK_EQ(used_since(base), zm_size(b.data()) + zm_size(c.data()));
    }
    ZX_CHECK_EQ(used_since(base), 0);
}

static void map_counted() {
    size_t base = zm_used_memory();
    tally = 0;
    {
        typedef std::map<int, std::pair<int, int>, std::less<int>,
                         tallied<std::pair<const int, std::pair<int, int> > > >
            map_t;
        map_t m; /* rebinds to the node type */
        for (int i = 0; i < 5000; i++) {
            m[i * 7] = std::make_pair(i, -i);
            if (i % 997 == 0) ZX_CHECK_EQ(used_since(base), tally);
        }
        ZX_CHECK(tally > 0);
        ZX_CHECK_EQ(used_since(base), tally);
        for (int i = 0; i < 5000; i += 2) m.erase(i * 7);
        ZX_CHECK_EQ(used_since(base), tally);
        map_t m2;
        m2 = m; /* copy-assigned nodes */
        ZX_CHECK_EQ(used_since(base), tally);
        m.clear();
        ZX_CHECK_EQ(used_since(base), tally);
    }
    ZX_CHECK_EQ(tally, 0);
    ZX_CHECK_EQ(used_since(base), 0);
    {
        std::map<int, int, std::less<int>, zm::allocator<std::pair<const int, int> > > m;
        for (int i = 0; i < 1000; i++) m[i] = i;
        ZX_CHECK(used_since(base) > 0);
    }
    ZX_CHECK_EQ(used_since(base), 0);
}

static void list_counted() {
    size_t base = zm_used_memory();
    tally = 0;
    {
        std::list<std::string, tallied<std::string> > l;
        for (int i = 0; i < 1000; i++) l.push_back("short");
        ZX_CHECK(tally > 0);
        ZX_CHECK_EQ(used_since(base), tally);
        l.remove_if([](const std::string &) { return true; });
        ZX_CHECK_EQ(tally, 0);
        ZX_CHECK_EQ(used_since(base), 0);
    }
    ZX_CHECK_EQ(used_since(base), 0);
}

static void string_counted() {
    typedef std::basic_string<char, std::char_traits<char>, zm::allocator<char> > zstring;
    typedef std::basic_string<char, std::char_traits<char>, tallied<char> > tstring;
    size_t base = zm_used_memory();
    {
        zstring s(1000, 'x'); /* past any small-string buffer */
        ZX_CHECK(used_since(base) > 0);
        ZX_CHECK(used_since(base) >= 1001);
        s += s;
        ZX_CHECK(s.size() == 2000);
        ZX_CHECK(used_since(base) >= 2001);
    }
    ZX_CHECK_EQ(used_since(base), 0);
    tally = 0;
    {
        tstring s;
        for (int i = 0; i < 20000; i++) {
            s.push_back((char)('a' + i % 26));
            if (i % 1001 == 0) ZX_CHECK_EQ(used_since(base), tally);
        }
        ZX_CHECK(tally > 20000);
        ZX_CHECK_EQ(used_since(base), tally);
        tstring t = s.substr(100, 5000);
        ZX_CHECK_EQ(used_since(base), tally);
        s.clear();
        s.shrink_to_fit();
        ZX_CHECK_EQ(used_since(base), tally);
        ZX_CHECK(t.size() == 5000);
    }
    ZX_CHECK_EQ(tally, 0);
    ZX_CHECK_EQ(used_since(base), 0);
}

static void shared_ptr_counted() {
    size_t base = zm_used_memory();
    tally = 0;
    {
        std::shared_ptr<std::vector<int> > p =
            std::allocate_shared<std::vector<int> >(tallied<std::vector<int> >(), 10, 5);
        ZX_CHECK(tally > 0);
        ZX_CHECK_EQ(used_since(base), tally); /* the inner vector uses std::allocator */
        ZX_CHECK(p->size() == 10);
    }
    ZX_CHECK_EQ(tally, 0);
    ZX_CHECK_EQ(used_since(base), 0);
}

struct alignas(64) cache_line {
    int v[16];
};

static void over_aligned() {
    size_t base = zm_used_memory();
    {
        std::vector<cache_line, zm::allocator<cache_line> > v(10);
        ZX_CHECK(reinterpret_cast<std::uintptr_t>(v.data()) % 64 == 0);
        void *raw = zm::aligned_base(v.data());
        ZX_CHECK_EQ(used_since(base), zm_size(raw));
        ZX_CHECK(zm_size(raw) >= 10 * sizeof(cache_line));
        ZX_CHECK(raw == v.data()); /* zm_try_malloc_aligned's own block */
        for (int i = 0; i < 1000; i++) {
            v.push_back(cache_line());
            ZX_CHECK(reinterpret_cast<std::uintptr_t>(v.data()) % 64 == 0);
        }
        ZX_CHECK_EQ(used_since(base), zm_size(zm::aligned_base(v.data())));
    }
    ZX_CHECK_EQ(used_since(base), 0);
    // The helper itself, at large alignments; non powers of two fail.
    const size_t aligns[] = {1, 2, 8, 16, 32, 64, 4096, 65536};
    for (size_t k = 0; k < sizeof aligns / sizeof aligns[0]; k++) {
        void *p = zm::aligned_try_malloc(100, aligns[k]);
        ZX_CHECK(p != nullptr);
        ZX_CHECK(reinterpret_cast<std::uintptr_t>(p) % aligns[k] == 0);
        ZX_CHECK(reinterpret_cast<std::uintptr_t>(p) % alignof(std::max_align_t) == 0);
        ZX_CHECK_EQ(used_since(base), zm_size(zm::aligned_base(p)));
        std::memset(p, 0xa5, 100);
        zm::aligned_free(p);
        ZX_CHECK_EQ(used_since(base), 0);
    }
    ZX_CHECK(zm::aligned_try_malloc(100, 0) == nullptr);
    ZX_CHECK(zm::aligned_try_malloc(100, 48) == nullptr);
    ZX_CHECK(zm::aligned_try_malloc(SIZE_MAX - 10, 64) == nullptr);
    ZX_CHECK(zm::aligned_try_malloc(100, (SIZE_MAX >> 1) + 1) == nullptr); /* the top bit */
    zm::aligned_free(nullptr);
    ZX_CHECK_EQ(used_since(base), 0);
}

static void allocate_direct() {
    size_t base = zm_used_memory();
    zm::allocator<double> a;
    zm::allocator<char> c(a); /* rebinding copy */
    ZX_CHECK(a == c);
    ZX_CHECK(!(a != c));
    zm::allocator<double> a2;
    a2 = a; /* copyable and assignable, like every allocator */
    ZX_CHECK(a2 == a);
    double *d = a.allocate(3);
    ZX_CHECK_EQ(used_since(base), zm_size(d));
    ZX_CHECK_EQ(zm_size(d), zt_expected_size(d, 3 * sizeof(double)));
    char *z = c.allocate(0); /* a unique, freeable block */
    ZX_CHECK(z != nullptr);
    ZX_CHECK(z != (char *)d);
    ZX_CHECK_EQ(used_since(base), zm_size(d) + zm_size(z));
    c.deallocate(z, 0);
    a.deallocate(d, 3);
    ZX_CHECK_EQ(used_since(base), 0);
    ZX_CHECK(a.max_size() == (size_t)(PTRDIFF_MAX - 1) / sizeof(double));
}

// n * sizeof(T) overflowing, a request the library refuses, and a limit:
// std::bad_alloc each time, never the OOM handler, nothing counted.
static void failures_throw() {
    zm_set_oom_handler(record_oom);
    oom_calls = 0;
    size_t base = zm_used_memory();
    zm::allocator<int> a;
    int thrown = 0;
    /* (Sizes the allocator refuses itself: a size the backend is asked for
     * and refuses would stop a sanitizer build, whose malloc aborts on it.) */
    const size_t huge[] = {a.max_size() + 1, SIZE_MAX / 2, SIZE_MAX / sizeof(int) + 2, SIZE_MAX};
    for (size_t k = 0; k < sizeof huge / sizeof huge[0]; k++) {
        try {
            int *p = a.allocate(huge[k]);
            a.deallocate(p, huge[k]); /* not reached */
        } catch (const std::bad_alloc &) {
            thrown++;
        }
    }
    ZX_CHECK_EQ(thrown, 4);
    ZX_CHECK_EQ(used_since(base), 0);

    zm_set_limit(zm_used_memory() + 1000);
    thrown = 0;
    try {
        std::vector<int, zm::allocator<int> > v;
        v.reserve(100000);
        ZX_CHECK(!"reserve past the limit succeeded");
    } catch (const std::bad_alloc &) {
        thrown++;
    }
    try {
        std::basic_string<char, std::char_traits<char>, zm::allocator<char> > s(100000, 'y');
        ZX_CHECK(s.empty()); /* not reached */
    } catch (const std::bad_alloc &) {
        thrown++;
    }
    try {
        std::vector<cache_line, zm::allocator<cache_line> > v(10000);
        ZX_CHECK(v.empty()); /* not reached */
    } catch (const std::bad_alloc &) {
        thrown++;
    }
    { /* under the limit, small blocks still come */
        std::vector<int, zm::allocator<int> > v(10, 1);
        ZX_CHECK(v.size() == 10);
    }
    zm_set_limit(0);
    ZX_CHECK_EQ(thrown, 3);
    ZX_CHECK_EQ(oom_calls, 0);
    ZX_CHECK_EQ(used_since(base), 0);
    zm_set_oom_handler(nullptr);
}

#define ZX_ENTRY(name) {#name, name}
static const struct {
    const char *name;
    void (*fn)();
} cases[] = {
    ZX_ENTRY(vector_growth),
    ZX_ENTRY(vector_reserve),
    ZX_ENTRY(vector_move_and_swap),
    ZX_ENTRY(map_counted),
    ZX_ENTRY(list_counted),
    ZX_ENTRY(string_counted),
    ZX_ENTRY(shared_ptr_counted),
    ZX_ENTRY(over_aligned),
    ZX_ENTRY(allocate_direct),
    ZX_ENTRY(failures_throw),
};

int main(int argc, char **argv) {
    return zx_run(cases, argc, argv);
}
