//! zmalloc as the global allocator, with a limit: `try_reserve` gives
//! `Err` past it, and infallible growth ends in `handle_alloc_error` (checked
//! in a child process, which it aborts). The tests take turns (`serial()`),
//! so that one's limit never meets the other's allocations.
use std::collections::HashMap;
use std::env;
use std::os::unix::process::ExitStatusExt;
use std::process::Command;
use std::sync::{Mutex, MutexGuard};

use zmalloc::Zmalloc;

#[global_allocator]
static GLOBAL: Zmalloc = Zmalloc;

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    let guard = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    zmalloc::set_limit(None);
    guard
}

#[test]
fn try_reserve_fails_past_the_limit() {
    let _s = serial();
    let mut v: Vec<u8> = Vec::new();
    let mut s = String::new();
    let mut m: HashMap<u64, u64> = HashMap::new();
    zmalloc::set_limit(Some(zmalloc::used_memory() + (1 << 20)));
    assert!(v.try_reserve(4 << 20).is_err());
    assert!(v.try_reserve_exact(4 << 20).is_err());
    assert!(s.try_reserve(4 << 20).is_err());
    assert!(m.try_reserve(1 << 20).is_err());
    // Under the cap, growth goes on; a failure left the containers as they were.
    assert!(v.is_empty() && v.capacity() == 0);
    assert!(v.try_reserve(1000).is_ok() && v.capacity() >= 1000);
    let before = zmalloc::used_memory();
    assert!(v.try_reserve(4 << 20).is_err());
    assert_eq!(v.capacity() < 4 << 20, true);
    assert!(zmalloc::used_memory() <= before + 4096, "a failed reserve is not counted");
    zmalloc::set_limit(None);
    assert!(v.try_reserve(4 << 20).is_ok());
    assert!(m.try_reserve(1 << 20).is_ok());
}

const CHILD: &str = "ZMALLOC_TEST_LIMIT_CHILD";

#[test]
fn infallible_growth_past_the_limit_aborts() {
    let n = 8 << 20;
    if env::var_os(CHILD).is_some() {
        zmalloc::set_limit(Some(zmalloc::used_memory() + (1 << 20)));
        let v = vec![1u8; n];
        println!("allocated {} bytes past the limit", v[n / 2] as usize * v.len());
        return;
    }
    let _s = serial();
    let out = Command::new(env::current_exe().unwrap())
        .args(["--exact", "infallible_growth_past_the_limit_aborts", "--nocapture"])
        .env(CHILD, "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.signal(), Some(6), "SIGABRT expected; stderr: {}", stderr);
    let message = format!("memory allocation of {} bytes failed", n);
    assert!(stderr.contains(&message), "stderr: {}", stderr);
}
