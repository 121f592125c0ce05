//! zmalloc for Rust: a global allocator that knows, at every instant, how
//! many bytes of heap the program holds, over the C library's choice of
//! allocator (the C library's malloc, jemalloc, tcmalloc or mimalloc).
//!
//! What Rust's allocator API does not give, this crate does:
//! - the exact figure: [`used_memory()`] is the sum of
//!   [`accounted_size()`] over the live blocks, across threads and blocks
//!   freed by another thread than the one that allocated them;
//! - a hard limit: past [`set_limit()`], allocation fails, so
//!   `try_reserve` gives `Err` (and infallible growth ends in
//!   [`std::alloc::handle_alloc_error`]);
//! - usable sizes: [`try_malloc_usable()`] returns a slice as long as the
//!   block really is;
//! - the process figures: [`rss()`], [`fragmentation_ratio()`],
//!   [`allocator_stats()`], [`allocator()`].
//!
//! ```
//! use zmalloc::Zmalloc;
//!
//! #[global_allocator]
//! static GLOBAL: Zmalloc = Zmalloc;
//!
//! let before = zmalloc::used_memory();
//! let v = vec![0u8; 1 << 20];
//! assert!(zmalloc::used_memory() - before >= v.len());
//! drop(v);
//! println!("{} bytes in use, allocator {}", zmalloc::used_memory(), zmalloc::allocator());
//! ```
//!
//! Every function may be called from any thread at any time. The C library
//! is linked statically (see `build.rs` and docs/rust.md in the zmalloc
//! repository). Minimum Rust version: 1.63.
#![deny(missing_docs)]

use std::alloc::{GlobalAlloc, Layout};
use std::ffi::CStr;
use std::io;
use std::os::raw::{c_int, c_void};
use std::ptr::{self, NonNull};

mod ffi {
    use std::os::raw::{c_char, c_int, c_void};
    extern "C" {
        pub fn zm_try_malloc(size: usize) -> *mut c_void;
        pub fn zm_try_calloc(size: usize) -> *mut c_void;
        pub fn zm_try_realloc(ptr: *mut c_void, size: usize) -> *mut c_void;
        pub fn zm_try_malloc_aligned(align: usize, size: usize) -> *mut c_void;
        pub fn zm_try_malloc_usable(size: usize, usable: *mut usize) -> *mut c_void;
        pub fn zm_free(ptr: *mut c_void);
        pub fn zm_size(ptr: *const c_void) -> usize;
        pub fn zm_usable_size(ptr: *const c_void) -> usize;
        pub fn zm_used_memory() -> usize;
        pub fn zm_used_memory_peak() -> usize;
        pub fn zm_reset_peak();
        pub fn zm_set_limit(bytes: usize);
        pub fn zm_get_limit() -> usize;
        pub fn zm_get_rss() -> usize;
        pub fn zm_get_memory_size() -> usize;
        pub fn zm_get_memory_limit() -> usize;
        pub fn zm_get_allocator_info(
            allocated: *mut usize,
            active: *mut usize,
            resident: *mut usize,
            retained: *mut usize,
            muzzy: *mut usize,
            frag_smallbins_bytes: *mut usize,
        ) -> c_int;
        pub fn zm_purge() -> c_int;
        pub fn zm_version() -> *const c_char;
    }
}

/// The alignment every C block of this many bytes or more has
/// (`alignof(max_align_t)`), so smaller alignments need no aligned call.
#[cfg(any(target_arch = "x86_64", target_arch = "x86", target_arch = "aarch64"))]
const MIN_ALIGN: usize = 16;
#[cfg(not(any(target_arch = "x86_64", target_arch = "x86", target_arch = "aarch64")))]
const MIN_ALIGN: usize = 8;

/// Whether `layout` is served by the plain C calls: a block of `n` bytes is
/// aligned to every power of two up to `min(n, MIN_ALIGN)`.
#[inline]
fn plain(align: usize, size: usize) -> bool {
    align <= MIN_ALIGN && align <= size
}

/// The global allocator over zmalloc: every allocation of the program is
/// counted in [`used_memory()`], checked against [`set_limit()`], and freed
/// by any thread.
///
/// Every [`Layout`] is served: alignments up to 16 by the C library's plain
/// calls, larger ones by its aligned allocation (`zm_try_malloc_aligned`),
/// counted exactly like any other block. A failure (no memory, or the limit)
/// returns null, never calls the C library's OOM handler: Rust then gives
/// `Err` from `try_reserve` or calls [`std::alloc::handle_alloc_error`].
///
/// ```
/// use zmalloc::Zmalloc;
/// use std::collections::HashMap;
///
/// #[global_allocator]
/// static GLOBAL: Zmalloc = Zmalloc;
///
/// let base = zmalloc::used_memory();
/// let mut map: HashMap<String, Vec<u8>> = HashMap::new();
/// map.insert("key".to_string(), vec![7; 1000]);
/// assert!(zmalloc::used_memory() >= base + 1000);
/// drop(map);
/// ```
///
/// It may also be called directly, as any [`GlobalAlloc`]:
///
/// ```
/// use std::alloc::{GlobalAlloc, Layout};
/// use zmalloc::Zmalloc;
///
/// let layout = Layout::from_size_align(100, 4096).unwrap();
/// unsafe {
///     let p = Zmalloc.alloc(layout);
///     assert!(!p.is_null() && p as usize % 4096 == 0);
///     Zmalloc.dealloc(p, layout);
/// }
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct Zmalloc;

unsafe impl GlobalAlloc for Zmalloc {
    /// Allocates a block for `layout` (null on failure).
    ///
    /// ```
    /// use std::alloc::{GlobalAlloc, Layout};
    /// let layout = Layout::new::<[u64; 4]>();
    /// unsafe {
    ///     let p = zmalloc::Zmalloc.alloc(layout);
    ///     assert!(!p.is_null());
    ///     zmalloc::Zmalloc.dealloc(p, layout);
    /// }
    /// ```
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if plain(layout.align(), layout.size()) {
            ffi::zm_try_malloc(layout.size()) as *mut u8
        } else {
            ffi::zm_try_malloc_aligned(layout.align(), layout.size()) as *mut u8
        }
    }

    /// Allocates a zeroed block for `layout` (null on failure).
    ///
    /// ```
    /// use std::alloc::{GlobalAlloc, Layout};
    /// let layout = Layout::from_size_align(64, 64).unwrap();
    /// unsafe {
    ///     let p = zmalloc::Zmalloc.alloc_zeroed(layout);
    ///     assert!(std::slice::from_raw_parts(p, 64).iter().all(|&b| b == 0));
    ///     zmalloc::Zmalloc.dealloc(p, layout);
    /// }
    /// ```
    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if plain(layout.align(), layout.size()) {
            return ffi::zm_try_calloc(layout.size()) as *mut u8;
        }
        let p = ffi::zm_try_malloc_aligned(layout.align(), layout.size()) as *mut u8;
        if !p.is_null() {
            ptr::write_bytes(p, 0, layout.size());
        }
        p
    }

    /// Frees `ptr` (from any thread).
    ///
    /// ```
    /// use std::alloc::{GlobalAlloc, Layout};
    /// let layout = Layout::new::<u32>();
    /// unsafe { zmalloc::Zmalloc.dealloc(zmalloc::Zmalloc.alloc(layout), layout) };
    /// ```
    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        ffi::zm_free(ptr as *mut c_void);
    }

    /// Resizes `ptr` to `new_size` bytes, keeping the alignment of `layout`
    /// and the leading contents. On failure (null) the block is untouched.
    ///
    /// ```
    /// use std::alloc::{GlobalAlloc, Layout};
    /// let layout = Layout::from_size_align(8, 256).unwrap();
    /// unsafe {
    ///     let p = zmalloc::Zmalloc.alloc(layout);
    ///     *p = 42;
    ///     let q = zmalloc::Zmalloc.realloc(p, layout, 10_000);
    ///     assert_eq!((*q, q as usize % 256), (42, 0));
    ///     zmalloc::Zmalloc.dealloc(q, Layout::from_size_align(10_000, 256).unwrap());
    /// }
    /// ```
    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if plain(layout.align(), new_size) {
            return ffi::zm_try_realloc(ptr as *mut c_void, new_size) as *mut u8;
        }
        // The C realloc keeps only 16 bytes of alignment: move by hand.
        let new = self.alloc(Layout::from_size_align_unchecked(new_size, layout.align()));
        if !new.is_null() {
            ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
            ffi::zm_free(ptr as *mut c_void);
        }
        new
    }
}

/// Bytes held by live blocks: the exact sum of [`accounted_size()`] over them
/// whenever no allocation is in flight in another thread.
///
/// ```
/// let before = zmalloc::used_memory();
/// let block = zmalloc::try_malloc_usable(1000).unwrap();
/// let ptr = block.cast::<u8>();
/// assert_eq!(zmalloc::used_memory() - before, unsafe { zmalloc::accounted_size(ptr) });
/// unsafe { zmalloc::free(ptr) };
/// assert_eq!(zmalloc::used_memory(), before);
/// ```
pub fn used_memory() -> usize {
    unsafe { ffi::zm_used_memory() }
}

/// The highest [`used_memory()`] seen since the start or the last
/// [`reset_peak()`]. It never exceeds a figure that happened, and misses no
/// single allocation of 64 KiB or more (it may fall short of the true peak by
/// at most 128 KiB per live thread).
///
/// ```
/// zmalloc::reset_peak();
/// let block = zmalloc::try_malloc_usable(1 << 20).unwrap();
/// unsafe { zmalloc::free(block.cast()) };
/// assert!(zmalloc::peak() >= zmalloc::used_memory() + (1 << 20));
/// ```
pub fn peak() -> usize {
    unsafe { ffi::zm_used_memory_peak() }
}

/// Sets [`peak()`] to the current [`used_memory()`].
///
/// ```
/// zmalloc::reset_peak();
/// assert!(zmalloc::peak() >= zmalloc::used_memory());
/// ```
pub fn reset_peak() {
    unsafe { ffi::zm_reset_peak() }
}

/// Sets a hard cap on [`used_memory()`], or removes it (`None`).
///
/// Past the cap a request for `n` bytes fails when used memory + `n` would
/// exceed it: [`GlobalAlloc::alloc`] returns null, so `try_reserve` gives
/// `Err` and infallible growth (`push`, `vec![..]`) ends in
/// [`std::alloc::handle_alloc_error`]. A request that does not raise used
/// memory always passes: frees, shrinking reallocations. The cap may be
/// overshot by the allocator's rounding of a request up to its size class,
/// and by requests other threads have in flight at the same instant.
/// `Some(0)` is taken as `Some(1)` (the C library's 0 means "no cap").
///
/// ```
/// zmalloc::set_limit(Some(zmalloc::used_memory() + 4096));
/// assert!(zmalloc::try_malloc_usable(1 << 20).is_none());
/// zmalloc::set_limit(None);
/// let block = zmalloc::try_malloc_usable(1 << 20).unwrap();
/// unsafe { zmalloc::free(block.cast()) };
/// ```
pub fn set_limit(limit: Option<usize>) {
    let bytes = match limit {
        None => 0,
        Some(n) => n.max(1),
    };
    unsafe { ffi::zm_set_limit(bytes) }
}

/// The cap set by [`set_limit()`], `None` when there is none.
///
/// ```
/// zmalloc::set_limit(Some(1 << 40));
/// assert_eq!(zmalloc::limit(), Some(1 << 40));
/// zmalloc::set_limit(None);
/// assert_eq!(zmalloc::limit(), None);
/// ```
pub fn limit() -> Option<usize> {
    match unsafe { ffi::zm_get_limit() } {
        0 => None,
        n => Some(n),
    }
}

/// Resident set size of the process in bytes (from `/proc/self/statm`); 0
/// when it cannot be read.
///
/// ```
/// assert!(zmalloc::rss() > 0);
/// ```
pub fn rss() -> usize {
    unsafe { ffi::zm_get_rss() }
}

/// [`rss()`] divided by [`used_memory()`], as Redis's
/// `mem_fragmentation_ratio`; 0 when used memory is 0.
///
/// ```
/// let block = zmalloc::try_malloc_usable(100).unwrap();
/// assert!(zmalloc::fragmentation_ratio() > 0.0);
/// unsafe { zmalloc::free(block.cast()) };
/// ```
pub fn fragmentation_ratio() -> f64 {
    let used = used_memory();
    if used == 0 {
        return 0.0;
    }
    rss() as f64 / used as f64
}

/// Physical memory of the machine in bytes.
///
/// ```
/// assert!(zmalloc::system_memory() >= zmalloc::rss());
/// ```
pub fn system_memory() -> usize {
    unsafe { ffi::zm_get_memory_size() }
}

/// The memory limit that applies to this process: the smallest cgroup limit
/// on its path (cgroup v2, else v1), or [`system_memory()`] when none.
///
/// ```
/// assert!(zmalloc::memory_limit() > 0);
/// ```
pub fn memory_limit() -> usize {
    unsafe { ffi::zm_get_memory_limit() }
}

/// The allocator behind the C library, with its version where known:
/// `"libc"`, `"jemalloc-5.3.0"`, `"tcmalloc-2.10"`, `"mimalloc-2.0.9"`
/// (`ZMALLOC_LIB` of the C library this crate was built with).
///
/// ```
/// let name = zmalloc::allocator();
/// assert!(["libc", "jemalloc", "tcmalloc", "mimalloc"].iter().any(|b| name.starts_with(b)));
/// ```
pub fn allocator() -> &'static str {
    env!("ZMALLOC_LIB")
}

/// The version of the C library, `"MAJOR.MINOR.PATCH"`.
///
/// ```
/// assert_eq!(zmalloc::version().split('.').count(), 3);
/// ```
pub fn version() -> &'static str {
    unsafe { CStr::from_ptr(ffi::zm_version()) }.to_str().unwrap_or("?")
}

/// The allocator's own statistics, in bytes; `None` for a figure the
/// backend does not have (see [`allocator_stats()`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AllocatorStats {
    /// Bytes in live blocks, as the allocator counts them.
    pub allocated: Option<usize>,
    /// Bytes in the pages that hold live blocks.
    pub active: Option<usize>,
    /// Bytes the allocator has mapped and resident.
    pub resident: Option<usize>,
    /// Bytes mapped but returned to the OS.
    pub retained: Option<usize>,
    /// Bytes lazily purged (jemalloc's muzzy pages).
    pub muzzy: Option<usize>,
    /// Free room in partly used small-size slabs.
    pub frag_smallbins: Option<usize>,
}

/// The allocator's statistics: jemalloc has all six figures, tcmalloc
/// `allocated`, `active`, `resident` and `retained`, mimalloc `active`,
/// glibc `allocated` and `active` (from `mallinfo2()`).
///
/// ```
/// let stats = zmalloc::allocator_stats();
/// if zmalloc::allocator().starts_with("jemalloc") {
///     assert!(stats.allocated.is_some() && stats.muzzy.is_some());
/// }
/// println!("{:?}", stats);
/// ```
pub fn allocator_stats() -> AllocatorStats {
    let mut v = [0usize; 6];
    let [a, b, c, d, e, f] = &mut v;
    let have = unsafe { ffi::zm_get_allocator_info(a, b, c, d, e, f) };
    let figure = |bit: c_int, value: usize| if have & bit != 0 { Some(value) } else { None };
    AllocatorStats {
        allocated: figure(0x01, v[0]),
        active: figure(0x02, v[1]),
        resident: figure(0x04, v[2]),
        retained: figure(0x08, v[3]),
        muzzy: figure(0x10, v[4]),
        frag_smallbins: figure(0x20, v[5]),
    }
}

/// Returns freed memory to the OS now (jemalloc's arena purge, `mi_collect`,
/// tcmalloc's `ReleaseFreeMemory`, `malloc_trim`).
///
/// ```
/// zmalloc::purge().unwrap();
/// ```
pub fn purge() -> io::Result<()> {
    if unsafe { ffi::zm_purge() } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Allocates `size` bytes and returns the whole block: the slice's length
/// is its usable size (at least `size`; the caller may use all of it).
///
/// `None` means failure only (no memory, or the [`set_limit()`] cap): a
/// `size` of 0 gives `Some`, a unique block. Free it with [`free()`].
///
/// ```
/// let block = zmalloc::try_malloc_usable(100).unwrap();
/// assert!(block.len() >= 100);
/// unsafe {
///     std::ptr::write_bytes(block.cast::<u8>().as_ptr(), 0xa5, block.len());
///     assert_eq!(zmalloc::usable_size(block.cast()), block.len());
///     zmalloc::free(block.cast());
/// }
/// let empty = zmalloc::try_malloc_usable(0).unwrap();
/// unsafe { zmalloc::free(empty.cast()) };
/// ```
pub fn try_malloc_usable(size: usize) -> Option<NonNull<[u8]>> {
    let mut usable = 0usize;
    let p = unsafe { ffi::zm_try_malloc_usable(size, &mut usable) } as *mut u8;
    NonNull::new(ptr::slice_from_raw_parts_mut(p, usable))
}

/// The bytes the caller may use in the block `ptr` (at least the requested
/// size).
///
/// # Safety
/// `ptr` must be a live block from this crate ([`try_malloc_usable()`], or
/// [`Zmalloc`] as the global allocator or called directly).
///
/// ```
/// let block = zmalloc::try_malloc_usable(10).unwrap();
/// assert!(unsafe { zmalloc::usable_size(block.cast()) } >= 10);
/// unsafe { zmalloc::free(block.cast()) };
/// ```
pub unsafe fn usable_size(ptr: NonNull<u8>) -> usize {
    ffi::zm_usable_size(ptr.as_ptr() as *const c_void)
}

/// The bytes the block `ptr` is counted for in [`used_memory()`]: the
/// allocator's usable size, or in the C library's size-header mode the
/// requested size plus the header.
///
/// # Safety
/// As for [`usable_size()`].
///
/// ```
/// let before = zmalloc::used_memory();
/// let block = zmalloc::try_malloc_usable(50).unwrap();
/// assert_eq!(zmalloc::used_memory() - before, unsafe { zmalloc::accounted_size(block.cast()) });
/// unsafe { zmalloc::free(block.cast()) };
/// ```
pub unsafe fn accounted_size(ptr: NonNull<u8>) -> usize {
    ffi::zm_size(ptr.as_ptr() as *const c_void)
}

/// Frees the block `ptr`, from any thread.
///
/// # Safety
/// `ptr` must be a live block from [`try_malloc_usable()`] (or from
/// [`Zmalloc`], when the caller owns it), not used after this call.
///
/// ```
/// use std::ptr::NonNull;
///
/// let block = zmalloc::try_malloc_usable(32).unwrap();
/// let addr = block.cast::<u8>().as_ptr() as usize; // a pointer is not Send
/// std::thread::spawn(move || unsafe { zmalloc::free(NonNull::new(addr as *mut u8).unwrap()) })
///     .join()
///     .unwrap();
/// ```
pub unsafe fn free(ptr: NonNull<u8>) {
    ffi::zm_free(ptr.as_ptr() as *mut c_void)
}
