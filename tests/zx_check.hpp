// Checks for the C++ tests (which do not use cmocka): each failed check is
// printed and counted; main() reports the count.
#ifndef ZX_CHECK_HPP
#define ZX_CHECK_HPP

#include <cstdio>
#include <cstring>

static int zx_failures;
#define ZX_CHECK(cond)                                                                     \
    do {                                                                                   \
        if (!(cond)) {                                                                     \
            std::fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);  \
            zx_failures++;                                                                 \
        }                                                                                  \
    } while (0)
#define ZX_CHECK_EQ(a, b)                                                                  \
    do {                                                                                   \
        long long zx_a = (long long)(a), zx_b = (long long)(b);                            \
        if (zx_a != zx_b) {                                                                \
            std::fprintf(stderr, "%s:%d: check failed: %s == %s (%lld != %lld)\n", __FILE__, \
                         __LINE__, #a, #b, zx_a, zx_b);                                    \
            zx_failures++;                                                                 \
        }                                                                                  \
    } while (0)

// Runs the cases (all, or the one named by argv[1], as ctest does) and
// prints "N passed, N failed". Case: {name, fn}.
template <class Case, std::size_t N>
int zx_run(const Case (&cases)[N], int argc, char **argv) {
    int passed = 0, failed = 0, ran = 0;
    for (std::size_t i = 0; i < N; i++) {
        if (argc > 1 && std::strcmp(argv[1], cases[i].name) != 0) continue;
        ran++;
        int before = zx_failures;
        cases[i].fn();
        bool ok = zx_failures == before;
        std::printf("[%s] %s\n", ok ? "  OK  " : " FAIL ", cases[i].name);
        (ok ? passed : failed)++;
    }
    if (argc > 1 && ran == 0) {
        std::fprintf(stderr, "no test named %s\n", argv[1]);
        return 2;
    }
    std::printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}

#endif
