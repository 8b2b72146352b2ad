//! Writing the result tables: `mzforge::output::TableWriters` (Arrow batches, zstd Parquet)
//! for every processed spectrum (default parameters) of `profile/small.mzML` and of
//! `runs/BSA1.mzML` (479k peaks: the `peaks` table is the longest single thread of a whole
//! `mzforge run --no-deconvolve` on it), into in-memory buffers.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use mzforge::output::TableWriters;
use mzforge::{Pipeline, PipelineParams, ProcessedSpectrum};
use mzforge_benches::data_file;

fn write_all(spectra: &[ProcessedSpectrum], batch: usize, params_json: &str) -> (usize, usize) {
    let mut writers = TableWriters::new(Vec::new(), Vec::new(), params_json).expect("writers");
    for chunk in spectra.chunks(batch) {
        writers.write(chunk).expect("write");
    }
    let (spectra_bytes, peaks_bytes) = writers.finish().expect("finish");
    (spectra_bytes.len(), peaks_bytes.len())
}

const INPUTS: [&str; 2] = ["profile/small.mzML", "runs/BSA1.mzML"];

fn write(c: &mut Criterion) {
    for input in INPUTS {
        if let Some(path) = data_file(input) {
            write_input(c, &path);
        }
    }
}

fn write_input(c: &mut Criterion, path: &std::path::Path) {
    let name = path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let params = PipelineParams {
        threads: 1,
        ..Default::default()
    };
    let batch = params.batch_size;
    let params_json = serde_json::to_string(&params).expect("params serialise");
    let pipeline = Pipeline::new(params).expect("valid params");
    let mut processed: Vec<ProcessedSpectrum> = Vec::new();
    pipeline
        .run_path(path, &mut |done| {
            processed.extend_from_slice(done);
            Ok(())
        })
        .expect("the input processes");
    let peaks: usize = processed.iter().map(|s| s.peaks.len()).sum();
    assert!(!processed.is_empty() && peaks > 0, "nothing to write");

    let (spectra_bytes, peaks_bytes) = write_all(&processed, batch, &params_json);
    assert!(spectra_bytes > 0 && peaks_bytes > 0, "empty output");
    eprintln!(
        "write/{name}: {} spectra, {peaks} peaks -> {spectra_bytes} + {peaks_bytes} bytes",
        processed.len()
    );

    let mut group = c.benchmark_group(format!("write/{name}"));
    group.throughput(Throughput::Elements(peaks as u64));
    group.bench_function("parquet-tables", |b| {
        b.iter(|| {
            let (s, p) = write_all(&processed, batch, &params_json);
            assert!(s > 0 && p > 0, "empty output");
        })
    });
    group.finish();
}

criterion_group!(benches, write);
criterion_main!(benches);
