//! SIMD local-maximum detection (`mzforge::simd::local_maxima`), scalar reference against the
//! best backend of this CPU, on the intensity arrays of every profile MS1 spectrum of
//! `profile/small.mzML` (decoded once, outside the timing loop).

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use mzforge::simd::{local_maxima, Backend};
use mzforge_benches::{data_file, profile_ms1, total_points};

fn maxima_of_all(backend: Backend, arrays: &[Vec<f32>], out: &mut Vec<u32>) -> usize {
    out.clear();
    for y in arrays {
        local_maxima(backend, black_box(y), out);
    }
    out.len()
}

fn detect(c: &mut Criterion) {
    let Some(path) = data_file("profile/small.mzML") else {
        return;
    };
    let spectra = profile_ms1(&path);
    let points = total_points(&spectra);
    let arrays: Vec<Vec<f32>> = spectra.into_iter().map(|s| s.intensity).collect();

    let best = Backend::best_supported();
    let mut scalar_out = Vec::new();
    let mut best_out = Vec::new();
    maxima_of_all(Backend::Scalar, &arrays, &mut scalar_out);
    maxima_of_all(best, &arrays, &mut best_out);
    assert!(
        scalar_out.len() > arrays.len(),
        "too few maxima: {}",
        scalar_out.len()
    );
    assert_eq!(scalar_out, best_out, "{best:?} and scalar disagree");
    let expected = scalar_out.len();

    let mut group = c.benchmark_group("detect/small.mzML");
    group.throughput(Throughput::Elements(points as u64));
    let mut out = Vec::with_capacity(expected);
    group.bench_function("scalar", |b| {
        b.iter(|| assert_eq!(maxima_of_all(Backend::Scalar, &arrays, &mut out), expected))
    });
    group.bench_function(best.name(), |b| {
        b.iter(|| assert_eq!(maxima_of_all(best, &arrays, &mut out), expected))
    });
    group.finish();
}

criterion_group!(benches, detect);
criterion_main!(benches);
