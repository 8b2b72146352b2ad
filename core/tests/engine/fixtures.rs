//! Centroiding the simulator's profile spectra against their ground truth (known apexes).
//! The simulated noise has sigma 50 on a baseline of 100 (the simulator's defaults).

use mzforge::{CentroidParams, Centroider, PeakList};
use mzforge_fixtures::{data_dir, read_truth_tsv};

use crate::common::read_all;

#[test]
fn simulated_peaks_are_found_where_they_are() {
    let spectra = read_all(&data_dir().join("sim_profile.mzML"));
    let truth = read_truth_tsv(std::io::BufReader::new(
        std::fs::File::open(data_dir().join("sim_profile.truth.tsv")).unwrap(),
    ))
    .unwrap();
    let mut centroider = Centroider::new(CentroidParams::default());
    let mut peaks = PeakList::default();
    let (mut strong, mut found, mut height_ok) = (0, 0, 0);
    let mut errors_ppm = Vec::new();
    let mut extras = 0;
    for (index, spectrum) in spectra.iter().enumerate() {
        centroider.centroid_into(&spectrum.mz, &spectrum.intensity, &mut peaks);
        let expected: Vec<_> = truth
            .iter()
            .filter(|t| t.spectrum_index == index && t.snr() >= 10.0)
            .collect();
        for t in &expected {
            strong += 1;
            let nearest = peaks
                .mz
                .iter()
                .enumerate()
                .min_by(|a, b| (a.1 - t.mz).abs().total_cmp(&(b.1 - t.mz).abs()));
            if let Some((j, &mz)) = nearest {
                // Noise moves a weak apex: allow a quarter width, and a tenth of a width for
                // strong peaks.
                let tolerance = if t.snr() >= 100.0 { 0.1 } else { 0.25 } * t.fwhm_mz;
                if (mz - t.mz).abs() <= tolerance {
                    found += 1;
                    errors_ppm.push(((mz - t.mz) / t.mz * 1e6).abs());
                    // Measured apex = baseline (100) + Gaussian height, +- noise.
                    let measured = peaks.intensity[j] as f64 - 100.0;
                    if (measured - t.height).abs() <= 0.05 * t.height + 3.0 * t.noise_sigma {
                        height_ok += 1;
                    }
                }
            }
        }
        // Strong centroids (10 sigma above the baseline) that no true peak explains.
        for (k, &mz) in peaks.mz.iter().enumerate() {
            let strong_peak = peaks.intensity[k] as f64 > 100.0 + 10.0 * 50.0;
            let explained = truth
                .iter()
                .any(|t| t.spectrum_index == index && (t.mz - mz).abs() <= t.fwhm_mz);
            if strong_peak && !explained {
                extras += 1;
            }
        }
    }
    errors_ppm.sort_by(f64::total_cmp);
    let recall = found as f64 / strong as f64;
    eprintln!(
        "simulated: {strong} true peaks at SNR>=10, recall {recall:.4}, heights ok {height_ok}, extras {extras}, median {:.3} ppm, p95 {:.3} ppm",
        errors_ppm[errors_ppm.len() / 2],
        errors_ppm[errors_ppm.len() * 95 / 100]
    );
    assert!(strong > 1000);
    assert!(recall >= 0.99, "recall {recall}");
    assert!(
        height_ok as f64 >= 0.95 * found as f64,
        "heights {height_ok} of {found}"
    );
    assert!(extras as f64 <= 0.01 * strong as f64, "extras {extras}");
    assert!(errors_ppm[errors_ppm.len() / 2] < 0.5);
    assert!(errors_ppm[errors_ppm.len() * 95 / 100] < 3.0);
}
