//! A Rust workload on zmalloc, and the Redis-INFO-style memory report of it:
//! four threads fill a `HashMap<String, Vec<u8>>` each, under a limit, then
//! the maps are dropped by other threads and the figure goes back to where
//! it started.
//!
//! ```sh
//! cargo run --release --example report                      # libc backend
//! cargo run --release --example report --features jemalloc  # jemalloc
//! ```
use std::collections::HashMap;
use std::thread;

use zmalloc::Zmalloc;

#[global_allocator]
static GLOBAL: Zmalloc = Zmalloc;

const THREADS: usize = 4;
const KEYS: usize = 50_000;

/// Redis's bytesToHuman().
fn human(n: usize) -> String {
    let units = ["K", "M", "G", "T", "P"];
    if n < 1024 {
        return format!("{}B", n);
    }
    let mut d = n as f64 / 1024.0;
    let mut unit = 0;
    while d >= 1024.0 && unit + 1 < units.len() {
        d /= 1024.0;
        unit += 1;
    }
    format!("{:.2}{}", d, units[unit])
}

fn field(name: &str, v: usize) {
    println!("{}:{}\n{}_human:{}", name, v, name, human(v));
}

fn figure(name: &str, v: Option<usize>) {
    match v {
        Some(v) => println!("{}:{}", name, v),
        None => println!("{}:n/a", name), // the backend has no such figure
    }
}

fn info_memory(when: &str) {
    let used = zmalloc::used_memory();
    println!("\n=== {} ===\n# Memory", when);
    field("used_memory", used);
    field("used_memory_peak", zmalloc::peak());
    field("used_memory_rss", zmalloc::rss());
    println!("mem_fragmentation_ratio:{:.2}", zmalloc::fragmentation_ratio());
    println!("mem_allocator:{}", zmalloc::allocator());
    println!("zmalloc_version:{}", zmalloc::version());
    let s = zmalloc::allocator_stats();
    figure("allocator_allocated", s.allocated);
    figure("allocator_active", s.active);
    figure("allocator_resident", s.resident);
    figure("allocator_retained", s.retained);
    figure("allocator_muzzy", s.muzzy);
    figure("allocator_frag_smallbins_bytes", s.frag_smallbins);
    field("total_system_memory", zmalloc::system_memory());
    field("memory_limit", zmalloc::memory_limit());
    field("maxmemory", zmalloc::limit().unwrap_or(0));
}

fn fill(shard: usize) -> HashMap<String, Vec<u8>> {
    let mut map = HashMap::new();
    for i in 0..KEYS {
        let k = shard * KEYS + i;
        map.insert(format!("shard:{}:user:{}", shard, k), vec![(k % 251) as u8; 16 + k % 500]);
    }
    map
}

fn main() {
    info_memory("start");
    // Read after the first report: printing set up stdout's buffer, which
    // stays for the life of the program.
    let base = zmalloc::used_memory();
    zmalloc::set_limit(Some(base + (1 << 30)));

    let maps: Vec<_> = (0..THREADS)
        .map(|t| thread::spawn(move || fill(t)))
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().unwrap())
        .collect();
    let keys: usize = maps.iter().map(|m| m.len()).sum();
    info_memory(&format!("mid-workload: {} threads built {} keys", THREADS, keys));

    // Past the limit, growth fails instead of taking the memory.
    let mut big: Vec<u8> = Vec::new();
    println!(
        "\ntry_reserve(2 GiB) under maxmemory {}: {}",
        human(zmalloc::limit().unwrap()),
        if big.try_reserve(2 << 30).is_err() { "Err (refused)" } else { "Ok" }
    );
    zmalloc::set_limit(None);

    // Each map dropped by a thread that did not build it.
    let droppers: Vec<_> = maps.into_iter().map(|m| thread::spawn(move || drop(m))).collect();
    for h in droppers {
        h.join().unwrap();
    }
    zmalloc::purge().expect("purge");
    info_memory("after the maps were dropped (and purge)");
    let end = zmalloc::used_memory();
    if end == base {
        println!("\naccounting: exact (used_memory back to {})", end);
    } else {
        println!("\naccounting: used_memory {} after starting at {}", end, base);
    }
}
