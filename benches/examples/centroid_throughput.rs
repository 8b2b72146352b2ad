//! Centroiding throughput of mzforge on the profile MS1 spectra of some mzML files, for
//! `scripts/compare_openms.py`: arrays are decoded before timing, one thread, `repeat` passes.
//!
//! ```text
//! cargo run --release -p mzforge-benches --example centroid_throughput -- \
//!     [--repeat N] [--scalar] FILE.mzML...
//! ```
//!
//! Prints one JSON object: `{"spectra", "points", "peaks", "seconds", "repeat", "backend"}`,
//! where `points` and `peaks` are per pass and `seconds` is the total of all passes.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use mzforge::simd::Backend;
use mzforge::{CentroidParams, Centroider, PeakList};
use mzforge_benches::{positive_count, profile_ms1, total_points};

fn main() -> ExitCode {
    let mut repeat = 5usize;
    let mut backend = Backend::best_supported();
    let mut files = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--repeat" => match positive_count("--repeat", args.next()) {
                Ok(n) => repeat = n,
                Err(message) => {
                    eprintln!("{message}");
                    return ExitCode::from(2);
                }
            },
            "--scalar" => backend = Backend::Scalar,
            _ => files.push(PathBuf::from(arg)),
        }
    }
    if files.is_empty() {
        eprintln!("usage: centroid_throughput [--repeat N] [--scalar] FILE.mzML...");
        return ExitCode::from(2);
    }

    let spectra: Vec<_> = files.iter().flat_map(|f| profile_ms1(f)).collect();
    let points = total_points(&spectra);
    let mut centroider = Centroider::with_backend(CentroidParams::default(), backend);
    let mut out = PeakList::default();
    let mut peaks = 0usize;
    let started = Instant::now();
    for _ in 0..repeat {
        peaks = 0;
        for s in &spectra {
            centroider.centroid_into(&s.mz, &s.intensity, &mut out);
            peaks += out.len();
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let report = serde_json::json!({
        "spectra": spectra.len(),
        "points": points,
        "peaks": peaks,
        "seconds": seconds,
        "repeat": repeat,
        "backend": backend.name(),
    });
    println!("{report}");
    ExitCode::SUCCESS
}
