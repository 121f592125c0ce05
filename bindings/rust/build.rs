//! Links the zmalloc C library statically.
//!
//! - Inside the zmalloc repository (the crate's `../..` holds its
//!   `CMakeLists.txt`), cmake builds `libzmalloc.a` into `OUT_DIR` for the
//!   backend chosen by a cargo feature (`jemalloc`, `tcmalloc`, `mimalloc`)
//!   or by `ZMALLOC_BACKEND` (`libc` by default).
//! - With `ZMALLOC_SYSTEM=1`, or outside the repository, the installed
//!   library is found with `pkg-config --libs zmalloc-static` (its backend is
//!   the one it was built with).
//!
//! Either way the link line is the one `zmalloc-static.pc` gives (the
//! archive, the backend library, `-pthread`, `-ldl`), and `ZMALLOC_LIB` from
//! `zmalloc_config.h` becomes [`allocator()`](crate::allocator)'s answer.
use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

const BACKENDS: [&str; 4] = ["libc", "jemalloc", "tcmalloc", "mimalloc"];

fn main() {
    for var in ["ZMALLOC_BACKEND", "ZMALLOC_SYSTEM", "PKG_CONFIG_PATH", "CC", "CFLAGS"] {
        println!("cargo:rerun-if-env-changed={}", var);
    }
    println!("cargo:rerun-if-changed=build.rs");
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let repo = manifest.join("../..");
    let in_repo = repo.join("CMakeLists.txt").is_file() && repo.join("include/zmalloc.h").is_file();
    let system = env::var("ZMALLOC_SYSTEM").map(|v| !v.is_empty() && v != "0").unwrap_or(false);
    let backend = backend();

    let (libs, include_dir) =
        if system || !in_repo { installed(&backend) } else { built_here(&repo, &backend) };
    for flag in libs {
        link(&flag);
    }
    let lib = allocator_string(&include_dir.join("zmalloc_config.h"));
    println!("cargo:rustc-env=ZMALLOC_LIB={}", lib);
    println!("cargo:include={}", include_dir.display());
}

/// The backend asked for: at most one feature, or ZMALLOC_BACKEND.
fn backend() -> String {
    let features: Vec<&str> = BACKENDS[1..]
        .iter()
        .copied()
        .filter(|b| env::var_os(format!("CARGO_FEATURE_{}", b.to_uppercase())).is_some())
        .collect();
    if features.len() > 1 {
        panic!("zmalloc: choose one backend feature, not {:?}", features);
    }
    let from_env = env::var("ZMALLOC_BACKEND").ok().filter(|s| !s.is_empty());
    match (features.first(), from_env) {
        (Some(f), Some(e)) if *f != e => {
            panic!("zmalloc: feature `{}` and ZMALLOC_BACKEND={} disagree", f, e)
        }
        (Some(f), _) => f.to_string(),
        (None, Some(e)) if BACKENDS.contains(&e.as_str()) => e,
        (None, Some(e)) => panic!("zmalloc: ZMALLOC_BACKEND={} is not one of {:?}", e, BACKENDS),
        (None, None) => "libc".to_string(),
    }
}

/// Builds libzmalloc.a with cmake into OUT_DIR; returns the link flags of its
/// zmalloc-static.pc (with the archive's real place) and its include folder.
fn built_here(repo: &Path, backend: &str) -> (Vec<String>, PathBuf) {
    for part in ["CMakeLists.txt", "src", "include", "cmake"] {
        println!("cargo:rerun-if-changed={}", repo.join(part).display());
    }
    let out = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR"));
    let build = out.join(format!("zmalloc-{}", backend));
    let configure = [
        format!("-DZMALLOC_BACKEND={}", backend),
        "-DCMAKE_BUILD_TYPE=Release".to_string(),
        "-DZMALLOC_BUILD_TESTS=OFF".to_string(),
        "-DZMALLOC_BUILD_BENCH=OFF".to_string(),
        "-DZMALLOC_BUILD_EXAMPLES=OFF".to_string(),
        "-DZMALLOC_BUILD_ZMRUN=OFF".to_string(),
        "-DZMALLOC_INSTALL=OFF".to_string(),
    ];
    run(Command::new("cmake").arg("-S").arg(repo).arg("-B").arg(&build).args(&configure));
    let jobs = env::var("NUM_JOBS").unwrap_or_else(|_| "2".to_string());
    run(Command::new("cmake").arg("--build").arg(&build).args([
        "--target",
        "zmalloc_static",
        "-j",
        &jobs,
    ]));
    let pc = fs::read_to_string(build.join("zmalloc-static.pc")).expect("zmalloc-static.pc");
    let line = pc
        .lines()
        .find_map(|l| l.strip_prefix("Libs:"))
        .expect("a Libs: line in zmalloc-static.pc");
    let libdir = build.display().to_string();
    let flags = line.replace("${libdir}", &libdir).split_whitespace().map(String::from).collect();
    (flags, build.join("include"))
}

/// The installed library, through pkg-config.
fn installed(backend: &str) -> (Vec<String>, PathBuf) {
    let libs = pkg_config(&["--libs", "--static", "zmalloc-static"]);
    let include = pkg_config(&["--variable=includedir", "zmalloc-static"]);
    let include = PathBuf::from(include.trim());
    let lib = allocator_string(&include.join("zmalloc_config.h"));
    if backend != "libc" && !lib.starts_with(backend) {
        println!(
            "cargo:warning=zmalloc: the installed library is built for {}, not {}",
            lib, backend
        );
    }
    (libs.split_whitespace().map(String::from).collect(), include)
}

fn pkg_config(args: &[&str]) -> String {
    let out = Command::new("pkg-config").args(args).output().unwrap_or_else(|e| {
        panic!("zmalloc: cannot run pkg-config ({}); install pkg-config, or build inside the zmalloc repository", e)
    });
    if !out.status.success() {
        panic!(
            "zmalloc: pkg-config {:?} failed: {}(is zmalloc installed? PKG_CONFIG_PATH?)",
            args,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    String::from_utf8(out.stdout).expect("pkg-config output")
}

/// One flag of the .pc file's link line, told to cargo.
fn link(flag: &str) {
    if let Some(dir) = flag.strip_prefix("-L") {
        println!("cargo:rustc-link-search=native={}", dir);
    } else if let Some(name) = flag.strip_prefix("-l") {
        println!("cargo:rustc-link-lib={}", name);
    } else if flag == "-pthread" {
        println!("cargo:rustc-link-lib=pthread");
    } else if flag.ends_with(".a") {
        let path = Path::new(flag);
        let dir = path.parent().expect("archive folder");
        let stem = path.file_stem().and_then(|s| s.to_str()).expect("archive name");
        println!("cargo:rustc-link-search=native={}", dir.display());
        println!("cargo:rustc-link-lib=static={}", stem.trim_start_matches("lib"));
        println!("cargo:rerun-if-changed={}", path.display());
    } else if flag.ends_with(".so") || flag.contains(".so.") {
        println!("cargo:rustc-link-arg={}", flag);
    } else {
        println!("cargo:warning=zmalloc: link flag {} passed as it is", flag);
        println!("cargo:rustc-link-arg={}", flag);
    }
}

/// ZMALLOC_LIB's value in zmalloc_config.h ("libc", "jemalloc-5.3.0", ...).
fn allocator_string(config: &Path) -> String {
    let text = fs::read_to_string(config)
        .unwrap_or_else(|e| panic!("zmalloc: cannot read {}: {}", config.display(), e));
    text.lines()
        .find_map(|l| l.strip_prefix("#define ZMALLOC_LIB "))
        .map(|v| v.trim().trim_matches('"').to_string())
        .unwrap_or_else(|| panic!("zmalloc: no ZMALLOC_LIB in {}", config.display()))
}

fn run(cmd: &mut Command) {
    let status = cmd.status().unwrap_or_else(|e| {
        panic!("zmalloc: cannot run {:?} ({}); install cmake, or set ZMALLOC_SYSTEM=1", cmd, e)
    });
    if !status.success() {
        panic!("zmalloc: {:?} failed ({})", cmd, status);
    }
}
