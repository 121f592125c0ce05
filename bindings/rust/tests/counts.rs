//! Exact counts, without zmalloc as the global allocator: the process's own
//! allocations (libtest's among them) go to the system allocator, so every
//! byte [`zmalloc::used_memory()`] moves by is a block these tests made, and
//! each figure is checked against the C library's own size of each block
//! (`zm_size`, as [`zmalloc::accounted_size()`]). The tests share the C
//! library's counters, so they take turns (`serial()`).
use std::alloc::{GlobalAlloc, Layout};
use std::ptr::NonNull;
use std::sync::{mpsc, Mutex, MutexGuard};
use std::thread;

use zmalloc::Zmalloc;

static SERIAL: Mutex<()> = Mutex::new(());

/// One test at a time; a failed one leaves no limit behind.
fn serial() -> MutexGuard<'static, ()> {
    let guard = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    zmalloc::set_limit(None);
    guard
}

fn delta(base: usize) -> isize {
    zmalloc::used_memory() as isize - base as isize
}

fn size_of_block(p: *mut u8) -> usize {
    unsafe { zmalloc::accounted_size(NonNull::new(p).expect("a block")) }
}

const ALIGNS: [usize; 13] = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096];
const SIZES: [usize; 17] =
    [0, 1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 100, 1000, 4095, 4096, 4097, 100_000];

#[test]
fn usable_blocks_count_exactly() {
    let _s = serial();
    let base = zmalloc::used_memory();
    let mut blocks = Vec::new();
    let mut sum = 0isize;
    for size in (0..3000).step_by(37).chain([65_536, 1 << 20]) {
        let block = zmalloc::try_malloc_usable(size).expect("an allocation");
        let p = block.cast::<u8>();
        assert!(block.len() >= size);
        assert_eq!(block.len(), unsafe { zmalloc::usable_size(p) });
        assert!(size_of_block(p.as_ptr()) >= block.len());
        // The whole slice is the caller's.
        unsafe { std::ptr::write_bytes(p.as_ptr(), 0x5a, block.len()) };
        sum += size_of_block(p.as_ptr()) as isize;
        assert_eq!(delta(base), sum);
        blocks.push(p);
    }
    for p in blocks {
        sum -= size_of_block(p.as_ptr()) as isize;
        unsafe { zmalloc::free(p) };
        assert_eq!(delta(base), sum);
    }
    assert_eq!(zmalloc::used_memory(), base);
}

#[test]
fn zero_size() {
    let _s = serial();
    let base = zmalloc::used_memory();
    let a = zmalloc::try_malloc_usable(0).expect("zero bytes is not a failure");
    let b = zmalloc::try_malloc_usable(0).expect("zero bytes is not a failure");
    assert_ne!(a.cast::<u8>(), b.cast::<u8>(), "each zero-size block is unique");
    assert_eq!(a.len(), unsafe { zmalloc::usable_size(a.cast()) });
    let sum = size_of_block(a.cast::<u8>().as_ptr()) + size_of_block(b.cast::<u8>().as_ptr());
    assert_eq!(delta(base), sum as isize);
    unsafe {
        zmalloc::free(a.cast());
        zmalloc::free(b.cast());
    }
    // Zero-size layouts through GlobalAlloc too, at every alignment.
    for align in ALIGNS {
        let layout = Layout::from_size_align(0, align).unwrap();
        let p = unsafe { Zmalloc.alloc(layout) };
        assert!(!p.is_null() && p as usize % align == 0);
        assert_eq!(delta(base), size_of_block(p) as isize);
        unsafe { Zmalloc.dealloc(p, layout) };
    }
    assert_eq!(zmalloc::used_memory(), base);
}

#[test]
fn alignments_1_to_4096() {
    let _s = serial();
    let base = zmalloc::used_memory();
    for align in ALIGNS {
        let mut live = Vec::new();
        let mut sum = 0isize;
        for (i, size) in SIZES.iter().copied().enumerate() {
            let layout = Layout::from_size_align(size, align).unwrap();
            let zeroed = i % 2 == 1;
            let p = unsafe {
                if zeroed {
                    Zmalloc.alloc_zeroed(layout)
                } else {
                    Zmalloc.alloc(layout)
                }
            };
            assert!(!p.is_null(), "{:?}", layout);
            assert_eq!(p as usize % align, 0, "{:?}", layout);
            let usable = unsafe { zmalloc::usable_size(NonNull::new(p).unwrap()) };
            assert!(usable >= size, "{:?}: usable {}", layout, usable);
            if zeroed {
                assert!(unsafe { std::slice::from_raw_parts(p, size) }.iter().all(|&b| b == 0));
            }
            unsafe { std::ptr::write_bytes(p, 0xa5, size) };
            sum += size_of_block(p) as isize;
            assert_eq!(delta(base), sum, "{:?}", layout);
            live.push((p, layout));
        }
        for (p, layout) in live {
            sum -= size_of_block(p) as isize;
            unsafe { Zmalloc.dealloc(p, layout) };
            assert_eq!(delta(base), sum);
        }
    }
    assert_eq!(zmalloc::used_memory(), base);
}

#[test]
fn realloc_grows_and_shrinks() {
    let _s = serial();
    let base = zmalloc::used_memory();
    for align in [1, 8, 16, 32, 64, 4096] {
        let mut layout = Layout::from_size_align(10, align).unwrap();
        let mut p = unsafe { Zmalloc.alloc(layout) };
        for i in 0..10 {
            unsafe { *p.add(i) = i as u8 };
        }
        for new_size in [100, 10_000, 1 << 20, 3 << 20, 5000, 50, 10] {
            p = unsafe { Zmalloc.realloc(p, layout, new_size) };
            assert!(!p.is_null());
            layout = Layout::from_size_align(new_size, align).unwrap();
            assert_eq!(p as usize % align, 0, "{:?}", layout);
            for i in 0..10 {
                assert_eq!(unsafe { *p.add(i) }, i as u8, "{:?}", layout);
            }
            assert!(unsafe { zmalloc::usable_size(NonNull::new(p).unwrap()) } >= new_size);
            assert_eq!(delta(base), size_of_block(p) as isize, "{:?}", layout);
        }
        unsafe { Zmalloc.dealloc(p, layout) };
        assert_eq!(zmalloc::used_memory(), base);
    }
}

/// A block's address and layout, sent between threads.
#[derive(Clone, Copy)]
struct Sent(usize, Layout);

#[test]
fn counts_exact_across_threads_and_cross_thread_frees() {
    let _s = serial();
    let base = zmalloc::used_memory();
    const THREADS: usize = 4;
    const PER_THREAD: usize = 2000;
    // Each thread allocates; the blocks come back to this one.
    let makers: Vec<_> = (0..THREADS)
        .map(|t| {
            thread::spawn(move || {
                (0..PER_THREAD)
                    .map(|i| {
                        let align = ALIGNS[(i + t) % ALIGNS.len()];
                        let layout = Layout::from_size_align((i * 13) % 3000, align).unwrap();
                        let p = unsafe { Zmalloc.alloc(layout) };
                        assert!(!p.is_null() && p as usize % align == 0, "{:?}: {:?}", layout, p);
                        Sent(p as usize, layout)
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut all: Vec<Vec<Sent>> = makers.into_iter().map(|h| h.join().unwrap()).collect();
    let sum: usize = all.iter().flatten().map(|s| size_of_block(s.0 as *mut u8)).sum();
    assert_eq!(delta(base), sum as isize);

    // Each thread frees another thread's blocks, half of them sent to it
    // over a channel while it runs.
    let (senders, freers): (Vec<_>, Vec<_>) = (0..THREADS)
        .map(|t| {
            let (tx, rx) = mpsc::channel::<Sent>();
            let mine = std::mem::take(&mut all[(t + 1) % THREADS]);
            let handle = thread::spawn(move || {
                let (now, later) = mine.split_at(mine.len() / 2);
                for s in now.iter().copied().chain(later.iter().copied()) {
                    unsafe { Zmalloc.dealloc(s.0 as *mut u8, s.1) };
                }
                for s in rx {
                    unsafe { Zmalloc.dealloc(s.0 as *mut u8, s.1) };
                }
            });
            (tx, handle)
        })
        .unzip();
    for (t, tx) in senders.into_iter().enumerate() {
        // This thread allocates more and hands them over.
        for i in 0..100 {
            let layout = Layout::from_size_align(i * 7 + t, 64).unwrap();
            let p = unsafe { Zmalloc.alloc(layout) };
            tx.send(Sent(p as usize, layout)).unwrap();
        }
    }
    for h in freers {
        h.join().unwrap();
    }
    assert_eq!(zmalloc::used_memory(), base);
}

#[test]
fn limit_makes_allocation_fail() {
    let _s = serial();
    let base = zmalloc::used_memory();
    let keep = zmalloc::try_malloc_usable(1000).unwrap();
    zmalloc::set_limit(Some(zmalloc::used_memory() + (64 << 10)));
    assert_eq!(zmalloc::limit(), Some(zmalloc::used_memory() + (64 << 10)));
    assert!(zmalloc::try_malloc_usable(1 << 20).is_none());
    let big = Layout::from_size_align(1 << 20, 1).unwrap();
    let big_aligned = Layout::from_size_align(1 << 20, 4096).unwrap();
    unsafe {
        assert!(Zmalloc.alloc(big).is_null());
        assert!(Zmalloc.alloc_zeroed(big).is_null());
        assert!(Zmalloc.alloc(big_aligned).is_null());
        // A failed growth keeps the block, still counted.
        let p = keep.cast::<u8>().as_ptr();
        assert!(Zmalloc.realloc(p, Layout::from_size_align(1000, 1).unwrap(), 1 << 20).is_null());
        assert_eq!(delta(base), size_of_block(p) as isize);
    }
    // Under the cap, allocation goes on.
    let small = zmalloc::try_malloc_usable(1000).expect("under the limit");
    unsafe { zmalloc::free(small.cast()) };
    zmalloc::set_limit(None);
    assert_eq!(zmalloc::limit(), None);
    let block = zmalloc::try_malloc_usable(1 << 20).expect("no limit");
    unsafe {
        zmalloc::free(block.cast());
        zmalloc::free(keep.cast());
    }
    assert_eq!(zmalloc::used_memory(), base);
}

#[test]
fn peak_follows_and_resets() {
    let _s = serial();
    zmalloc::reset_peak();
    let base = zmalloc::used_memory();
    assert_eq!(zmalloc::peak(), base);
    let block = zmalloc::try_malloc_usable(4 << 20).unwrap();
    let size = size_of_block(block.cast::<u8>().as_ptr());
    unsafe { zmalloc::free(block.cast()) };
    assert_eq!(zmalloc::peak(), base + size);
    zmalloc::reset_peak();
    assert_eq!(zmalloc::peak(), base);
}

#[test]
fn process_and_allocator_figures() {
    let _s = serial();
    let block = zmalloc::try_malloc_usable(8 << 20).unwrap();
    unsafe { std::ptr::write_bytes(block.cast::<u8>().as_ptr(), 1, block.len()) };
    assert!(zmalloc::rss() > 0);
    assert!(zmalloc::system_memory() > zmalloc::rss());
    assert!(zmalloc::memory_limit() > 0);
    let ratio = zmalloc::fragmentation_ratio();
    let expected = zmalloc::rss() as f64 / zmalloc::used_memory() as f64;
    assert!(ratio > 0.0 && (ratio / expected - 1.0).abs() < 0.1, "{} vs {}", ratio, expected);
    assert_eq!(zmalloc::version().split('.').next(), Some(env!("CARGO_PKG_VERSION_MAJOR")));

    let lib = zmalloc::allocator();
    if let Ok(backend) = std::env::var("ZMALLOC_BACKEND") {
        assert!(lib.starts_with(&backend), "built for {}, asked for {}", lib, backend);
    }
    let s = zmalloc::allocator_stats();
    let have = |f: [bool; 6]| {
        [s.allocated, s.active, s.resident, s.retained, s.muzzy, s.frag_smallbins]
            .iter()
            .map(Option::is_some)
            .eq(f.iter().copied())
    };
    if lib.starts_with("jemalloc") {
        assert!(have([true; 6]), "{:?}", s);
        assert!(s.allocated.unwrap() >= 8 << 20 && s.resident.unwrap() >= s.active.unwrap());
    } else if lib.starts_with("tcmalloc") {
        assert!(have([true, true, true, true, false, false]), "{:?}", s);
    } else if lib.starts_with("mimalloc") {
        assert!(have([false, true, false, false, false, false]), "{:?}", s);
    } else {
        // glibc's mallinfo2(): the C library's own heap.
        assert!(have([true, true, false, false, false, false]), "{:?}", s);
    }
    unsafe { zmalloc::free(block.cast()) };
    zmalloc::purge().unwrap();
}
