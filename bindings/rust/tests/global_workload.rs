//! zmalloc as the global allocator of a whole test program: a
//! `HashMap<String, Vec<u8>>` workload, built in several threads and dropped
//! in others, is counted while it lives and leaves used memory at its base
//! figure once dropped.
//!
//! This program holds this one test, so libtest's own thread only waits for
//! its result while it measures: every byte that moves is the workload's.
use std::collections::HashMap;
use std::mem::size_of;
use std::ptr::NonNull;
use std::thread;

use zmalloc::Zmalloc;

#[global_allocator]
static GLOBAL: Zmalloc = Zmalloc;

type Map = HashMap<String, Vec<u8>>;

fn workload(seed: usize, n: usize) -> Map {
    let mut map = Map::new();
    for i in 0..n {
        let k = seed * n + i;
        map.insert(format!("key:{:08}", k), vec![(k % 251) as u8; k % 700]);
    }
    map
}

/// The C library's size of every String and Vec block of the map (not its
/// table, whose address the map does not give).
fn blocks(map: &Map) -> usize {
    let size = |p: *const u8, cap: usize| {
        if cap == 0 {
            0 // no block: an empty Vec holds a dangling pointer
        } else {
            unsafe { zmalloc::accounted_size(NonNull::new(p as *mut u8).unwrap()) }
        }
    };
    map.iter().map(|(k, v)| size(k.as_ptr(), k.capacity()) + size(v.as_ptr(), v.capacity())).sum()
}

#[test]
fn hashmap_workload_counted_and_back_to_base() {
    const THREADS: usize = 4;
    const PER_THREAD: usize = 5000;
    // The same shape once first, so that the one-time allocations of the
    // runtime are made before the base is read: thread bookkeeping and lazily
    // created statics, and those made only when threads meet (on a loaded
    // machine about 930 bytes more stayed allocated for good when the warm-up
    // was one thread: a join that had to wait, threads starting at once).
    // Its threads linger, so that the joins wait as they may below.
    let warm: Vec<_> = (0..THREADS)
        .map(|t| {
            thread::spawn(move || {
                let m = workload(90 + t, 100);
                thread::sleep(std::time::Duration::from_millis(20));
                m
            })
        })
        .collect();
    let warm: Vec<Map> = warm.into_iter().map(|h| h.join().unwrap()).collect();
    let droppers: Vec<_> = warm.into_iter().map(|m| thread::spawn(move || drop(m))).collect();
    for h in droppers {
        h.join().unwrap();
    }

    let base = zmalloc::used_memory();
    let maps: Vec<Map> = (0..THREADS)
        .map(|t| thread::spawn(move || workload(t, PER_THREAD)))
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().unwrap())
        .collect();
    let used = zmalloc::used_memory() - base;
    let in_blocks: usize = maps.iter().map(blocks).sum();
    let tables: usize =
        maps.iter().map(|m| m.capacity() * size_of::<(String, Vec<u8>)>()).sum::<usize>()
            + size_of::<Map>() * THREADS; // the Vec<Map> itself
                                          // Every block is counted; the rest is the tables, at their size or a
                                          // little more (control bytes, the allocator's rounding).
    assert!(used >= in_blocks + tables, "used {} < blocks {} + tables {}", used, in_blocks, tables);
    assert!(
        used <= in_blocks + 2 * tables,
        "used {} > blocks {} + 2 * {}",
        used,
        in_blocks,
        tables
    );

    // Dropped by other threads than those that built them.
    let droppers: Vec<_> = maps.into_iter().map(|m| thread::spawn(move || drop(m))).collect();
    for h in droppers {
        h.join().unwrap();
    }
    assert_eq!(zmalloc::used_memory(), base);
}
