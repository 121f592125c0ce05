// zmalloc for C++ (C++11 or later): a standard allocator over the library,
// and an opt-in replacement of the global operator new and delete.
//
//   std::vector<int, zm::allocator<int>> v;   // counted in zm_used_memory()
//
//   // In exactly ONE translation unit of the program:
//   #define ZMALLOC_NEW_DELETE
//   #include <zmalloc.hpp>
//
// zm::allocator<T>
//   allocate(n) takes n * sizeof(T) bytes from zm_try_malloc() and throws
//   std::bad_alloc when it fails or when n * sizeof(T) would overflow; it
//   never calls the C OOM handler (zm_set_oom_handler). deallocate() is
//   zm_free(). Every block is counted in zm_used_memory() like any other.
//   A T aligned beyond alignof(std::max_align_t) gets an over-allocated,
//   aligned block (see "Over-aligned blocks" below). All zm::allocators
//   compare equal, whatever their T.
//
// ZMALLOC_NEW_DELETE
//   Defined before this header is included, in exactly one translation unit
//   of a program, it defines every replaceable global operator new and
//   delete, so that every new-expression of the program (the standard
//   library's containers included) is counted: new and new[] (throwing and
//   std::nothrow), delete and delete[] (plain, std::nothrow, and from C++14
//   sized), and from C++17 (__cpp_aligned_new) every std::align_val_t form.
//   Defining it in more than one translation unit is a link error (duplicate
//   definitions), as for any replacement of these functions.
//   - A throwing new that cannot allocate calls the std::get_new_handler()
//     handler and tries again, as the standard's own operator new does, and
//     throws std::bad_alloc when there is no handler. It takes its memory
//     from zm_try_malloc(), so the C OOM handler is never called, and a
//     limit set with zm_set_limit() shows up as std::bad_alloc (or nullptr
//     from the std::nothrow forms).
//   - Size 0 returns a unique, non-null pointer, as zm_try_malloc(0) does.
//   - The operator deletes call zm_free() (the sized forms ignore the size:
//     it is the requested size, not the block's usable size).
//   - Under valgrind's memcheck, run valgrind with
//     --soname-synonyms=somalloc=nouserintercepts: by default it replaces
//     the program's own operator new and delete too, so blocks that the
//     standard library allocates come from valgrind while the deletes the
//     compiler inlined into the program come here (a mismatch).
//
// Over-aligned blocks (aligned new, and zm::allocator<T> for an over-aligned
// T) come from zm_try_malloc_aligned(align, size), `align` a power of two
// (anything below alignof(std::max_align_t) is raised to it). They are
// blocks like any other: counted in zm_used_memory() for zm_size(p) bytes,
// freed by zm_free(p). The standard still wants a pointer from an aligned new
// released by an aligned delete.
#ifndef ZMALLOC_HPP
#define ZMALLOC_HPP

#if !defined(__cplusplus) || __cplusplus < 201103L
#error "zmalloc.hpp needs C++11 or later; C code includes zmalloc.h"
#endif

#include <cstddef>
#include <cstdint>
#include <limits>
#include <new>
#include <type_traits>

#include "zmalloc.h"

#if defined(__cpp_exceptions) || defined(__EXCEPTIONS)
#define ZM__THROW_BAD_ALLOC() throw std::bad_alloc()
#else
#include <cstdlib>
#define ZM__THROW_BAD_ALLOC() std::abort()
#endif

namespace zm {

// Largest byte count the library may grant: it fails every request of
// PTRDIFF_MAX bytes or more.
static const std::size_t max_request =
    static_cast<std::size_t>(std::numeric_limits<std::ptrdiff_t>::max()) - 1;

// Over-aligned blocks: see the comment at the top of this file.
// Returns nullptr when align is not a power of two or when the allocation
// fails (never calls the C OOM handler).
inline void *aligned_try_malloc(std::size_t size, std::size_t align) noexcept {
    if (align == 0 || (align & (align - 1)) != 0) return nullptr;
    if (align < alignof(std::max_align_t)) align = alignof(std::max_align_t);
    if (size > max_request) return nullptr; /* too big (and the compiler sees it) */
    return zm_try_malloc_aligned(align, size);
}
// The block zm_size() and zm_free() take for p, a pointer from
// aligned_try_malloc(): p itself (older versions kept the block elsewhere).
inline void *aligned_base(void *p) noexcept { return p; }
// Frees p from aligned_try_malloc(); nullptr does nothing.
inline void aligned_free(void *p) noexcept { zm_free(p); }

template <class T>
struct allocator {
    typedef T value_type;
    typedef T *pointer;
    typedef const T *const_pointer;
    typedef std::size_t size_type;
    typedef std::ptrdiff_t difference_type;
    typedef std::true_type propagate_on_container_move_assignment;
    typedef std::true_type is_always_equal;
    template <class U>
    struct rebind {
        typedef allocator<U> other;
    };

    allocator() noexcept {}
    template <class U>
    allocator(const allocator<U> &) noexcept {}

    // n objects' worth of uninitialised storage; throws std::bad_alloc.
    T *allocate(std::size_t n) {
        if (n > max_size()) ZM__THROW_BAD_ALLOC(); /* n * sizeof(T) overflows */
        void *p = over_aligned ? aligned_try_malloc(n * sizeof(T), alignof(T))
                               : zm_try_malloc(n * sizeof(T));
        if (p == nullptr) ZM__THROW_BAD_ALLOC();
        return static_cast<T *>(p);
    }
    void deallocate(T *p, std::size_t) noexcept {
        if (over_aligned)
            aligned_free(p);
        else
            zm_free(p);
    }
    std::size_t max_size() const noexcept { return max_request / sizeof(T); }

  private:
    static const bool over_aligned = alignof(T) > alignof(std::max_align_t);
};

template <class T, class U>
inline bool operator==(const allocator<T> &, const allocator<U> &) noexcept {
    return true;
}
template <class T, class U>
inline bool operator!=(const allocator<T> &, const allocator<U> &) noexcept {
    return false;
}

namespace detail {
// operator new's loop: try, else call the new-handler and try again; with no
// handler left, throw std::bad_alloc (or, for the nothrow forms, return
// nullptr, as also when the handler throws). align 0: no extra alignment.
inline void *try_block(std::size_t size, std::size_t align) noexcept {
    return align ? aligned_try_malloc(size, align) : zm_try_malloc(size);
}
inline void *new_or_throw(std::size_t size, std::size_t align = 0) {
    for (;;) {
        void *p = try_block(size, align);
        if (p != nullptr) return p;
        std::new_handler handler = std::get_new_handler();
        if (handler == nullptr) ZM__THROW_BAD_ALLOC();
        handler();
    }
}
inline void *new_or_null(std::size_t size, std::size_t align = 0) noexcept {
    for (;;) {
        void *p = try_block(size, align);
        if (p != nullptr) return p;
        std::new_handler handler = std::get_new_handler();
        if (handler == nullptr) return nullptr;
#if defined(__cpp_exceptions) || defined(__EXCEPTIONS)
        try {
            handler();
        } catch (const std::bad_alloc &) {
            return nullptr;
        }
#else
        handler();
#endif
    }
}
} // namespace detail

} // namespace zm

#ifdef ZMALLOC_NEW_DELETE
// The replacements (not inline: the standard forbids it). The throwing forms
// carry no exception specification, as in <new> since C++11.
void *operator new(std::size_t size) { return zm::detail::new_or_throw(size); }
void *operator new[](std::size_t size) { return zm::detail::new_or_throw(size); }
void *operator new(std::size_t size, const std::nothrow_t &) noexcept {
    return zm::detail::new_or_null(size);
}
void *operator new[](std::size_t size, const std::nothrow_t &) noexcept {
    return zm::detail::new_or_null(size);
}
void operator delete(void *p) noexcept { zm_free(p); }
void operator delete[](void *p) noexcept { zm_free(p); }
void operator delete(void *p, const std::nothrow_t &) noexcept { zm_free(p); }
void operator delete[](void *p, const std::nothrow_t &) noexcept { zm_free(p); }
#if __cplusplus >= 201402L || defined(__cpp_sized_deallocation)
void operator delete(void *p, std::size_t) noexcept { zm_free(p); }
void operator delete[](void *p, std::size_t) noexcept { zm_free(p); }
#endif
#if defined(__cpp_aligned_new)
void *operator new(std::size_t size, std::align_val_t align) {
    return zm::detail::new_or_throw(size, static_cast<std::size_t>(align));
}
void *operator new[](std::size_t size, std::align_val_t align) {
    return zm::detail::new_or_throw(size, static_cast<std::size_t>(align));
}
void *operator new(std::size_t size, std::align_val_t align, const std::nothrow_t &) noexcept {
    return zm::detail::new_or_null(size, static_cast<std::size_t>(align));
}
void *operator new[](std::size_t size, std::align_val_t align, const std::nothrow_t &) noexcept {
    return zm::detail::new_or_null(size, static_cast<std::size_t>(align));
}
void operator delete(void *p, std::align_val_t) noexcept { zm::aligned_free(p); }
void operator delete[](void *p, std::align_val_t) noexcept { zm::aligned_free(p); }
void operator delete(void *p, std::size_t, std::align_val_t) noexcept { zm::aligned_free(p); }
void operator delete[](void *p, std::size_t, std::align_val_t) noexcept { zm::aligned_free(p); }
void operator delete(void *p, std::align_val_t, const std::nothrow_t &) noexcept {
    zm::aligned_free(p);
}
void operator delete[](void *p, std::align_val_t, const std::nothrow_t &) noexcept {
    zm::aligned_free(p);
}
#endif
#endif /* ZMALLOC_NEW_DELETE */

#endif /* ZMALLOC_HPP */
