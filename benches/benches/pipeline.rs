//! The whole engine end to end: `mzforge::Pipeline::run_path` on `runs/BSA1.mzML` with 2
//! worker threads, against plain mzdata reading + decoding on one thread (the `decode` bench's
//! baseline), to show the ratio; the pipeline on 1 thread shows how it scales. Two settings:
//! the default (read, decode, classify, centroid, deconvolve every spectrum) and without
//! deconvolution (the engine of issue 2: read, decode, classify, centroid). BSA1's spectra are
//! all centroids, so centroiding is the signal-to-noise of every point
//! (`filter_centroids`).

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use mzforge::{Pipeline, PipelineParams};
use mzforge_benches::{data_file, mzdata_decode_all};

fn pipeline(c: &mut Criterion) {
    let Some(path) = data_file("runs/BSA1.mzML") else {
        return;
    };
    let with_threads = |threads, deconvolve: bool| {
        let mut params = PipelineParams {
            threads,
            ..Default::default()
        };
        params.deconvolve.enabled = deconvolve;
        Pipeline::new(params).expect("valid params")
    };
    let (two, one) = (with_threads(2, true), with_threads(1, true));
    let (two_plain, one_plain) = (with_threads(2, false), with_threads(1, false));
    let run = |pipeline: &Pipeline, path: &std::path::Path| {
        let mut peaks = 0usize;
        let summary = pipeline
            .run_path(path, &mut |done| {
                peaks += done.iter().map(|s| s.peaks.len()).sum::<usize>();
                Ok(())
            })
            .expect("BSA1 processes");
        (
            summary.spectra_read as usize,
            summary.points_read as usize,
            peaks,
        )
    };
    let (spectra, points, peaks) = run(&two, &path);
    for other in [&one, &two_plain, &one_plain] {
        assert_eq!(
            run(other, &path),
            (spectra, points, peaks),
            "threads or deconvolution change the centroids"
        );
    }
    let baseline = mzdata_decode_all(&path);
    assert_eq!(spectra, baseline.0, "spectrum counts differ");
    assert_eq!(points, baseline.1, "point counts differ");
    assert!(peaks > 0, "no peaks");
    let bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);

    let mut group = c.benchmark_group("pipeline/BSA1");
    group.sample_size(10);
    group.throughput(Throughput::Bytes(bytes));
    group.bench_function("mzforge-pipeline-2-threads", |b| {
        b.iter(|| assert_eq!(run(&two, black_box(&path)), (spectra, points, peaks)))
    });
    group.bench_function("mzforge-pipeline-1-thread", |b| {
        b.iter(|| assert_eq!(run(&one, black_box(&path)), (spectra, points, peaks)))
    });
    group.bench_function("mzforge-no-deconvolution-2-threads", |b| {
        b.iter(|| assert_eq!(run(&two_plain, black_box(&path)), (spectra, points, peaks)))
    });
    group.bench_function("mzforge-no-deconvolution-1-thread", |b| {
        b.iter(|| assert_eq!(run(&one_plain, black_box(&path)), (spectra, points, peaks)))
    });
    group.bench_function("mzdata-decode-1-thread", |b| {
        b.iter(|| assert_eq!(mzdata_decode_all(black_box(&path)), baseline))
    });
    group.finish();
}

criterion_group!(benches, pipeline);
criterion_main!(benches);
