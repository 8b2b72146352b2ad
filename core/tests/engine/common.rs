#![allow(dead_code)]

use std::path::PathBuf;

use mzforge::{PeakList, Spectrum, SpectrumReader};

/// `../shared/data/<rel>`, or `None` (test skipped) when the data are absent outside CI.
pub fn shared(rel: &str) -> Option<PathBuf> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/data");
    let path = root.join(rel);
    if path.exists() {
        return Some(path);
    }
    if std::env::var_os("CI").is_some() {
        panic!(
            "{} is missing: tests need ../shared/data in CI",
            path.display()
        );
    }
    eprintln!("skipping: {} not found", path.display());
    None
}

/// A file in `fixtures/data/`.
pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/data")
        .join(name)
}

/// Every spectrum of a file, decoded.
pub fn read_all(path: &std::path::Path) -> Vec<Spectrum> {
    let mut reader = SpectrumReader::open(path).expect("open");
    let mut out = Vec::new();
    while let Some(raw) = reader.next_raw().expect("read") {
        out.push(raw.decode(path).expect("decode").0);
    }
    out
}

/// Asserts that `got` are the `expected` spectra, every field and array, naming the first
/// that differs.
pub fn assert_same_spectra(got: &[Spectrum], expected: &[Spectrum], what: &str) {
    assert_eq!(got.len(), expected.len(), "{what}: how many spectra");
    for (got, expected) in got.iter().zip(expected) {
        assert_eq!(
            got, expected,
            "{what}: spectrum {} ({})",
            expected.meta.index, expected.meta.native_id
        );
    }
}

/// Result of matching our peaks against reference peaks, spectrum by spectrum.
#[derive(Debug, Default)]
pub struct Match {
    pub reference: usize,
    pub ours: usize,
    pub found: usize,
    pub extra: usize,
    pub intensity_within_5pct: usize,
    pub ppm_errors: Vec<f64>,
}

impl Match {
    pub fn recall(&self) -> f64 {
        self.found as f64 / self.reference.max(1) as f64
    }
    pub fn extra_fraction(&self) -> f64 {
        self.extra as f64 / self.reference.max(1) as f64
    }
    pub fn intensity_fraction(&self) -> f64 {
        self.intensity_within_5pct as f64 / self.found.max(1) as f64
    }
    pub fn ppm_quantile(&self, q: f64) -> f64 {
        let mut e = self.ppm_errors.clone();
        e.sort_by(f64::total_cmp);
        e.get(((e.len() as f64 - 1.0) * q).round() as usize)
            .copied()
            .unwrap_or(f64::NAN)
    }

    /// Adds one spectrum: each reference peak is found if one of ours is within `tol_ppm`;
    /// each of ours with no reference peak within `tol_ppm` is extra.
    pub fn add(
        &mut self,
        reference_mz: &[f64],
        reference_int: &[f32],
        ours: &PeakList,
        tol_ppm: f64,
    ) {
        self.reference += reference_mz.len();
        self.ours += ours.len();
        let nearest = |sorted: &[f64], x: f64| -> Option<usize> {
            if sorted.is_empty() {
                return None;
            }
            let i = sorted.partition_point(|&v| v < x);
            let mut best = None;
            for j in [i.saturating_sub(1), i.min(sorted.len() - 1)] {
                if best.is_none_or(|b: usize| (sorted[j] - x).abs() < (sorted[b] - x).abs()) {
                    best = Some(j);
                }
            }
            best
        };
        for (k, &mz) in reference_mz.iter().enumerate() {
            if let Some(j) = nearest(&ours.mz, mz) {
                let ppm = (ours.mz[j] - mz) / mz * 1e6;
                if ppm.abs() <= tol_ppm {
                    self.found += 1;
                    self.ppm_errors.push(ppm.abs());
                    let ri = reference_int[k] as f64;
                    if ((ours.intensity[j] as f64 - ri) / ri).abs() <= 0.05 {
                        self.intensity_within_5pct += 1;
                    }
                }
            }
        }
        for &mz in &ours.mz {
            match nearest(reference_mz, mz) {
                Some(j) if ((reference_mz[j] - mz) / mz * 1e6).abs() <= tol_ppm => {}
                _ => self.extra += 1,
            }
        }
    }
}
