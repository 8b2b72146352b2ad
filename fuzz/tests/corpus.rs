//! Every fuzz target's body over its seed corpus (`python3 fuzz/seed.py`) and over anything
//! a fuzz run added to it, as an ordinary test: the targets stay built and their bodies keep
//! passing on real inputs even where cargo-fuzz does not run.

use std::path::PathBuf;

fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target);
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) => panic!(
            "no seed corpus at {} ({e}): run `python3 fuzz/seed.py` first",
            dir.display()
        ),
    };
    let mut files: Vec<(PathBuf, Vec<u8>)> = entries
        .map(|e| {
            let path = e.expect("corpus entry").path();
            let data = std::fs::read(&path).expect("corpus file reads");
            (path, data)
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{} is empty", dir.display());
    files
}

fn run_all(target: &str, body: fn(&[u8])) {
    let files = corpus(target);
    for (path, data) in &files {
        let outcome = std::panic::catch_unwind(|| body(data));
        assert!(outcome.is_ok(), "{target} fails on {}", path.display());
    }
    eprintln!("{target}: {} inputs pass", files.len());
}

#[test]
fn read() {
    run_all("read", mzforge_fuzz_bodies::read);
}

#[test]
fn kernels() {
    run_all("kernels", mzforge_fuzz_bodies::kernels);
}

#[test]
fn deconvolve() {
    run_all("deconvolve", mzforge_fuzz_bodies::deconvolve);
}

#[test]
fn parquet_roundtrip() {
    run_all("parquet_roundtrip", mzforge_fuzz_bodies::parquet_roundtrip);
}

#[test]
fn events() {
    run_all("events", mzforge_fuzz_bodies::events);
}
