//! Centroiding of real profile spectra, one thread, arrays decoded before timing:
//! `mzforge::Centroider::centroid_into` (default parameters, `min_snr` 0) with the best SIMD
//! backend and forced scalar, against mzsignal's `PeakPicker::default()` (no intensity or
//! signal-to-noise threshold, quadratic apex fit), the closest equivalent: every local maximum
//! with a fitted apex and no filtering.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use mzforge::simd::Backend;
use mzforge::{CentroidParams, Centroider, PeakList, Spectrum};
use mzforge_benches::{data_file, mzsignal_picker, profile_ms1, total_points, PROFILE_FILES};
use mzsignal::{FittedPeak, PeakPicker};

fn mzforge_all(centroider: &mut Centroider, spectra: &[Spectrum], out: &mut PeakList) -> usize {
    let mut peaks = 0;
    for s in spectra {
        centroider.centroid_into(black_box(&s.mz), black_box(&s.intensity), out);
        peaks += out.len();
    }
    peaks
}

fn mzsignal_all(picker: &PeakPicker, spectra: &[Spectrum], out: &mut Vec<FittedPeak>) -> usize {
    let mut peaks = 0;
    for s in spectra {
        out.clear();
        peaks += picker
            .discover_peaks(black_box(&s.mz), black_box(&s.intensity), out)
            .expect("mzsignal picks peaks");
    }
    peaks
}

fn centroid(c: &mut Criterion) {
    let params = CentroidParams::default();
    assert_eq!(params.min_snr, 0.0);
    for relative in PROFILE_FILES {
        let Some(path) = data_file(relative) else {
            continue;
        };
        let spectra = profile_ms1(&path);
        let points = total_points(&spectra);
        let name = relative.rsplit('/').next().unwrap_or(relative);

        let mut fast = Centroider::with_backend(params.clone(), Backend::best_supported());
        let mut scalar = Centroider::with_backend(params.clone(), Backend::Scalar);
        let picker = mzsignal_picker();
        let mut out = PeakList::default();
        let mut their_out = Vec::new();
        let ours = mzforge_all(&mut fast, &spectra, &mut out);
        let ours_scalar = mzforge_all(&mut scalar, &spectra, &mut out);
        let theirs = mzsignal_all(&picker, &spectra, &mut their_out);
        assert_eq!(
            ours, ours_scalar,
            "{name}: SIMD and scalar peak counts differ"
        );
        assert!(
            ours >= spectra.len() && theirs >= spectra.len(),
            "{name}: implausibly few peaks (mzforge {ours}, mzsignal {theirs})"
        );
        assert!(
            ours * 2 >= theirs && theirs * 2 >= ours,
            "{name}: peak counts differ by more than 2x (mzforge {ours}, mzsignal {theirs})"
        );
        eprintln!(
            "centroid/{name}: {} spectra, {points} points; peaks: mzforge {ours}, mzsignal {theirs}",
            spectra.len()
        );

        let mut group = c.benchmark_group(format!("centroid/{name}"));
        group.throughput(Throughput::Elements(points as u64));
        group.bench_function(
            format!("mzforge-{}", Backend::best_supported().name()),
            |b| b.iter(|| assert_eq!(mzforge_all(&mut fast, &spectra, &mut out), ours)),
        );
        group.bench_function("mzforge-scalar", |b| {
            b.iter(|| assert_eq!(mzforge_all(&mut scalar, &spectra, &mut out), ours))
        });
        group.bench_function("mzsignal", |b| {
            b.iter(|| assert_eq!(mzsignal_all(&picker, &spectra, &mut their_out), theirs))
        });
        group.finish();
    }
}

criterion_group!(benches, centroid);
criterion_main!(benches);
