//! Deconvolution of real peptide MS1 spectra, one thread, centroids computed before timing:
//! `mzforge::Deconvolver` (averagine, charges 1–8, 10 ppm, no automatic high-charge
//! extension) against mzdeisotope's `deconvolute_peaks` (peptide averagine, charges 1–8,
//! 10 ppm, MS-Deconv scorer with mzdeisotoper's MS1 score threshold 20, one missed peak,
//! QuickCharge pruning on: the peer's fastest setting). Both get the same centroid lists and
//! start with warm isotope-pattern caches.
//!
//! Before timing, the bench checks that the two agree: of mzdeisotope's envelopes with at
//! least three peaks, most must be found by mzforge with the same charge and monoisotopic
//! mass within 20 ppm.
//!
//! `deconvolve/cold_start` measures what the isotope-pattern cache costs a fresh run: one
//! intact-protein spectrum (the first of `FLASHDeconv_sample_input.mzML`, default parameters,
//! so charges up to 60) deconvolved by a new `Deconvolver` with an empty cache, beside the same
//! spectrum on a warm one. Both must find 17989.07 Da as the most intense mass.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use mzdeisotope::isotopic_model::{
    CachingIsotopicModel, IsotopicModels, IsotopicPatternParams, PROTON,
};
use mzdeisotope::scorer::{MSDeconvScorer, MaximizingFitFilter};
use mzdeisotope::solution::DeconvolvedSolutionPeak;
use mzforge::deconvolve::{DeconvolveParams, Deconvolver};
use mzforge::signal::decide_signal_kind;
use mzforge::{CentroidParams, Centroider, PeakList, SignalKind, Spectrum};
use mzforge_benches::{data_file, read_all};
use mzpeaks::prelude::*;
use mzpeaks::{CentroidPeak, MZPeakSetType, MassPeakSetType, Tolerance};

/// Peptide runs whose first MS1 spectra are deconvolved.
const FILES: [&str; 2] = ["runs/BSA1.mzML", "runs/171103_PMA_TK_QC_04-4to5min.mzML"];
/// MS1 spectra taken from each file.
const SPECTRA_PER_FILE: usize = 8;

/// The spectrum's centroids: its own peaks if it is centroided (as the pipeline decides from
/// the declaration and the data), else ours.
fn centroids_of(spectrum: &Spectrum, centroider: &mut Centroider) -> PeakList {
    let mut out = PeakList::default();
    let (signal, _) = decide_signal_kind(
        spectrum.meta.declared_signal,
        &spectrum.mz,
        &spectrum.intensity,
        &mut Vec::new(),
    );
    if signal == SignalKind::Centroid {
        out.mz = spectrum.mz.clone();
        out.intensity = spectrum.intensity.clone();
    } else {
        centroider.centroid_into(&spectrum.mz, &spectrum.intensity, &mut out);
    }
    out
}

fn ms1_centroids(relative: &str) -> Option<Vec<PeakList>> {
    let path = data_file(relative)?;
    let mut centroider = Centroider::new(CentroidParams::default());
    let lists: Vec<PeakList> = read_all(&path)
        .into_iter()
        .filter(|s| s.meta.ms_level == 1)
        .take(SPECTRA_PER_FILE)
        .map(|s| centroids_of(&s, &mut centroider))
        .collect();
    assert!(!lists.is_empty(), "{relative}: no MS1 spectra");
    Some(lists)
}

fn mzforge_params() -> DeconvolveParams {
    DeconvolveParams {
        auto_charge: false,
        tolerance_ppm: 10.0,
        ..DeconvolveParams::default()
    }
}

fn mzforge_all(deconvolver: &mut Deconvolver, lists: &[PeakList]) -> Vec<Vec<(f64, i32)>> {
    lists
        .iter()
        .map(|p| {
            deconvolver
                .deconvolve(black_box(&p.mz), black_box(&p.intensity), false)
                .envelopes
                .iter()
                .map(|e| (e.neutral_mass, e.charge))
                .collect()
        })
        .collect()
}

fn peer_peaks(p: &PeakList) -> MZPeakSetType<CentroidPeak> {
    MZPeakSetType::new(
        p.mz.iter()
            .zip(&p.intensity)
            .enumerate()
            .map(|(i, (&mz, &intensity))| CentroidPeak::new(mz, intensity, i as u32))
            .collect(),
    )
}

fn peer_model() -> CachingIsotopicModel<'static> {
    let mut model = CachingIsotopicModel::from(IsotopicModels::Peptide);
    model.populate_cache_params(50.0, 3000.0, 1, 8, peer_isotopic_params());
    model
}

fn peer_isotopic_params() -> IsotopicPatternParams {
    IsotopicPatternParams::new(0.8, 0.001, None, PROTON)
}

fn peer_one(
    peaks: MZPeakSetType<CentroidPeak>,
    model: CachingIsotopicModel<'static>,
) -> MassPeakSetType<DeconvolvedSolutionPeak> {
    mzdeisotope::deconvolute_peaks(
        peaks,
        model,
        Tolerance::PPM(10.0),
        (1, 8),
        MSDeconvScorer::default(),
        MaximizingFitFilter::new(20.0),
        1,
        peer_isotopic_params(),
        true,
    )
    .expect("mzdeisotope deconvolves")
}

/// Fraction of the peer's envelopes (three peaks or more) that mzforge also reports.
fn agreement(
    ours: &[Vec<(f64, i32)>],
    theirs: &[MassPeakSetType<DeconvolvedSolutionPeak>],
) -> (usize, usize) {
    let mut matched = 0;
    let mut total = 0;
    for (ours, theirs) in ours.iter().zip(theirs) {
        for peak in theirs.iter().filter(|p| p.envelope.len() >= 3) {
            total += 1;
            let found = ours.iter().any(|&(mass, charge)| {
                charge == peak.charge
                    && ((mass - peak.neutral_mass) / peak.neutral_mass).abs() <= 20e-6
            });
            matched += found as usize;
        }
    }
    (matched, total)
}

fn deconvolve(c: &mut Criterion) {
    for relative in FILES {
        let Some(lists) = ms1_centroids(relative) else {
            continue;
        };
        let name = relative.rsplit('/').next().unwrap_or(relative);
        let peaks: usize = lists.iter().map(PeakList::len).sum();

        let mut deconvolver = Deconvolver::new(mzforge_params());
        let ours = mzforge_all(&mut deconvolver, &lists);
        let model = peer_model();
        let theirs: Vec<_> = lists
            .iter()
            .map(|p| peer_one(peer_peaks(p), model.clone()))
            .collect();
        let (n_ours, n_theirs) = (
            ours.iter().map(Vec::len).sum::<usize>(),
            theirs.iter().map(|t| t.len()).sum::<usize>(),
        );
        let (matched, total) = agreement(&ours, &theirs);
        eprintln!(
            "deconvolve/{name}: {} spectra, {peaks} centroids; envelopes: mzforge {n_ours}, \
             mzdeisotope {n_theirs}; mzdeisotope's (>= 3 peaks) found by mzforge: {matched}/{total}",
            lists.len()
        );
        assert!(n_ours > 0 && total > 0, "{name}: no envelopes to compare");
        assert!(
            matched * 2 >= total,
            "{name}: mzforge finds only {matched} of mzdeisotope's {total} envelopes"
        );

        let mut group = c.benchmark_group(format!("deconvolve/{name}"));
        group.throughput(Throughput::Elements(peaks as u64));
        group.bench_function("mzforge", |b| {
            b.iter(|| assert_eq!(mzforge_all(&mut deconvolver, &lists).len(), lists.len()))
        });
        group.bench_function("mzdeisotope", |b| {
            b.iter_batched(
                || {
                    lists
                        .iter()
                        .map(|p| (peer_peaks(p), model.clone()))
                        .collect::<Vec<_>>()
                },
                |inputs| {
                    let found: usize = inputs
                        .into_iter()
                        .map(|(peaks, model)| peer_one(peaks, model).len())
                        .sum();
                    assert_eq!(found, n_theirs);
                },
                BatchSize::LargeInput,
            )
        });
        group.finish();
    }
}

/// The intact protein of `FLASHDeconv_sample_input.mzML` (its README's reference mass).
const SAMPLE_MASS: f64 = 17989.07;

fn most_intense_mass(deconvolver: &mut Deconvolver, peaks: &PeakList) -> f64 {
    let result = deconvolver.deconvolve(black_box(&peaks.mz), black_box(&peaks.intensity), false);
    let best = result
        .envelopes
        .iter()
        .max_by(|a, b| a.intensity.total_cmp(&b.intensity))
        .expect("an envelope");
    best.neutral_mass
}

fn cold_start(c: &mut Criterion) {
    let Some(path) = data_file("deconvolution/FLASHDeconv_sample_input.mzML") else {
        return;
    };
    let spectrum = read_all(&path).into_iter().next().expect("a spectrum");
    let peaks = centroids_of(&spectrum, &mut Centroider::new(CentroidParams::default()));
    let check = |mass: f64| {
        let ppm = (mass - SAMPLE_MASS).abs() / SAMPLE_MASS * 1e6;
        assert!(
            ppm <= 10.0,
            "most intense mass {mass} is {ppm:.1} ppm from {SAMPLE_MASS}"
        );
    };
    let mut warm = Deconvolver::new(DeconvolveParams::default());
    check(most_intense_mass(&mut warm, &peaks));

    let mut group = c.benchmark_group("deconvolve/cold_start");
    group.throughput(Throughput::Elements(peaks.len() as u64));
    group.bench_function("new_deconvolver", |b| {
        b.iter(|| {
            check(most_intense_mass(
                &mut Deconvolver::new(DeconvolveParams::default()),
                &peaks,
            ))
        })
    });
    group.bench_function("warm_deconvolver", |b| {
        b.iter(|| check(most_intense_mass(&mut warm, &peaks)))
    });
    group.finish();
}

criterion_group!(benches, deconvolve, cold_start);
criterion_main!(benches);
