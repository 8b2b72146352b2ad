//! The baseline of the end-to-end goal as a process of its own: mzdata reads and decodes every
//! spectrum of an mzML file on one thread (`mzforge_benches::mzdata_decode_all`, the `decode`
//! bench's peer), and prints `spectra points`. `scripts/compare_peers.py` times it beside
//! `mzforge run`.
//!
//! ```text
//! cargo run --release -p mzforge-benches --example mzdata_read -- FILE.mzML
//! ```

use std::path::PathBuf;

fn main() {
    let Some(path) = std::env::args().nth(1).map(PathBuf::from) else {
        eprintln!("usage: mzdata_read FILE.mzML");
        std::process::exit(2);
    };
    let (spectra, points) = mzforge_benches::mzdata_decode_all(&path);
    println!("{spectra} {points}");
}
