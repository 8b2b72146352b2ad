//! Deconvolution throughput of mzforge on whole files: every spectrum is centroided first
//! (by the pipeline, default parameters, deconvolution off), then the spectra the default
//! deconvolution applies to are deconvolved one after the other, `repeat` passes, with one
//! `Deconvolver` kept across passes (as a pipeline worker keeps its own). With `--threads N`
//! (N > 1) the passes run inside a rayon pool of N threads, where spectra of
//! [`PARALLEL_FROM`](mzforge::deconvolve::PARALLEL_FROM) centroids or more are searched charge
//! by charge on the pool; by default everything runs on one thread.
//!
//! ```text
//! cargo run --release -p mzforge-benches --example deconvolve_throughput -- \
//!     [--repeat N] [--threads N] FILE...
//! ```
//!
//! Prints one JSON object per file: `{"file", "spectra", "peaks", "envelopes", "seconds",
//! "repeat", "threads", "walk_checksum"}`, where `peaks` and `envelopes` are per pass, `seconds` is the
//! best pass, and `walk_checksum` sums every envelope's mass and charge (equal before and
//! after a change that should not change the results).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use mzforge::deconvolve::Deconvolver;
use mzforge::{Pipeline, PipelineParams, ProcessedSpectrum};
use mzforge_benches::positive_count;

fn main() -> ExitCode {
    let mut repeat = 3usize;
    let mut threads = 1usize;
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
            "--threads" => match positive_count("--threads", args.next()) {
                Ok(n) => threads = n,
                Err(message) => {
                    eprintln!("{message}");
                    return ExitCode::from(2);
                }
            },
            _ => files.push(PathBuf::from(arg)),
        }
    }
    if files.is_empty() {
        eprintln!("usage: deconvolve_throughput [--repeat N] [--threads N] FILE...");
        return ExitCode::from(2);
    }
    let pool = match rayon::ThreadPoolBuilder::new().num_threads(threads).build() {
        Ok(pool) => pool,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    for file in files {
        let defaults = PipelineParams::default();
        let params = PipelineParams {
            threads: 1,
            deconvolve: mzforge::deconvolve::DeconvolveParams {
                enabled: false,
                ..defaults.deconvolve.clone()
            },
            ..defaults.clone()
        };
        let pipeline = match Pipeline::new(params) {
            Ok(pipeline) => pipeline,
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::FAILURE;
            }
        };
        let mut spectra: Vec<ProcessedSpectrum> = Vec::new();
        if let Err(e) = pipeline.run_path(&file, &mut |batch| {
            spectra.extend(batch.iter().cloned());
            Ok(())
        }) {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
        spectra.retain(|s| defaults.deconvolve.applies_to(s.meta.ms_level));
        let peaks: usize = spectra.iter().map(|s| s.peaks.len()).sum();
        let mut deconvolver = Deconvolver::new(defaults.deconvolve.clone());
        let (mut best, mut envelopes, mut checksum) = (f64::INFINITY, 0usize, 0f64);
        let mut pass = || {
            let started = Instant::now();
            (envelopes, checksum) = (0, 0.0);
            for s in &spectra {
                let negative = s.meta.polarity == mzforge::Polarity::Negative;
                let found = deconvolver.deconvolve(&s.peaks.mz, &s.peaks.intensity, negative);
                envelopes += found.envelopes.len();
                checksum += found
                    .envelopes
                    .iter()
                    .map(|e| e.neutral_mass + f64::from(e.charge))
                    .sum::<f64>();
            }
            best = best.min(started.elapsed().as_secs_f64());
        };
        for _ in 0..repeat {
            if threads > 1 {
                pool.install(&mut pass);
            } else {
                pass();
            }
        }
        let report = serde_json::json!({
            "file": file.display().to_string(),
            "spectra": spectra.len(),
            "peaks": peaks,
            "envelopes": envelopes,
            "seconds": best,
            "repeat": repeat,
            "threads": threads,
            "walk_checksum": checksum,
        });
        println!("{report}");
    }
    ExitCode::SUCCESS
}
