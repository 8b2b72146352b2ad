//! Centroid accuracy against OpenMS PeakPickerHiRes.

use mzforge::signal::detect_signal_kind;
use mzforge::{CentroidParams, Centroider, PeakList, SignalKind};

use crate::common::{read_all, shared, Match};

/// Centroids `input` (spectra at `levels`) and matches against the OpenMS output `reference`.
fn compare(input: &str, reference: &str, levels: &[u8], params: CentroidParams) -> Option<Match> {
    let input = shared(input)?;
    let reference = shared(reference)?;
    let ours = read_all(&input);
    let theirs = read_all(&reference);
    assert_eq!(ours.len(), theirs.len(), "spectrum counts differ");
    let mut centroider = Centroider::new(params);
    let mut peaks = PeakList::default();
    let mut m = Match::default();
    let mut scratch = Vec::new();
    for (a, b) in ours.iter().zip(&theirs) {
        assert_eq!(a.meta.native_id, b.meta.native_id);
        let looks =
            detect_signal_kind(&a.mz, &a.intensity, &mut scratch).or(a.meta.declared_signal);
        if !levels.contains(&a.meta.ms_level) || looks != Some(SignalKind::Profile) {
            continue;
        }
        centroider.centroid_into(&a.mz, &a.intensity, &mut peaks);
        m.add(&b.mz, &b.intensity, &peaks, 1.0);
    }
    eprintln!(
        "{}: reference {} ours {} recall {:.4} extra {:.4} intensity<5% {:.4} median {:.4} ppm p95 {:.4} ppm",
        input.file_name().unwrap().to_string_lossy(),
        m.reference,
        m.ours,
        m.recall(),
        m.extra_fraction(),
        m.intensity_fraction(),
        m.ppm_quantile(0.5),
        m.ppm_quantile(0.95)
    );
    Some(m)
}

fn assert_openms_bar(input: &str, reference: &str, levels: &[u8]) {
    let Some(m) = compare(input, reference, levels, CentroidParams::default()) else {
        return;
    };
    assert!(m.reference > 0);
    assert!(m.recall() >= 0.99, "recall {:.4} < 0.99", m.recall());
    assert!(
        m.extra_fraction() <= 0.03,
        "extra {:.4} > 0.03",
        m.extra_fraction()
    );
    assert!(
        m.intensity_fraction() >= 0.99,
        "intensities within 5%: {:.4}",
        m.intensity_fraction()
    );
}

#[test]
fn openms_sn0_small() {
    assert_openms_bar(
        "profile/small.mzML",
        "centroid-reference/openms-3.6/small.sn0.mzML",
        &[1],
    );
}

#[test]
fn openms_sn0_three_test_scans() {
    assert_openms_bar(
        "profile/three_test_scans.mzML",
        "centroid-reference/openms-3.6/three_test_scans.sn0.mzML",
        &[1, 2],
    );
}

#[test]
fn openms_sn0_feature_finder_metabo_ident() {
    assert_openms_bar(
        "profile/FeatureFinderMetaboIdent_1_input.mzML",
        "centroid-reference/openms-3.6/FeatureFinderMetaboIdent_1_input.sn0.mzML",
        &[1, 2],
    );
}

#[test]
fn openms_sn0_feature_finder_multiplex() {
    assert_openms_bar(
        "profile/FeatureFinderMultiplex_1_input.mzML",
        "centroid-reference/openms-3.6/FeatureFinderMultiplex_1_input.sn0.mzML",
        &[1, 2],
    );
}

#[test]
fn openms_sn0_gc_orbi() {
    assert_openms_bar(
        "profile/gc_orbi_profile_21scans.mzML",
        "centroid-reference/openms-3.6/gc_orbi_profile_21scans.sn0.mzML",
        &[1, 2],
    );
}

#[test]
fn openms_sn0_peak_picker_hires_input() {
    assert_openms_bar(
        "centroid-reference/PeakPickerHiRes_input.mzML",
        "centroid-reference/openms-3.6/PeakPickerHiRes_input.sn0.mzML",
        &[1],
    );
}

/// With the `.ini`'s signal-to-noise 1, OpenMS 3.6 finds 426 of the older output's 451
/// centroids (94.5%) and adds none; we must do at least as well.
#[test]
fn snr1_matches_or_beats_openms_36_against_the_older_output() {
    let params = CentroidParams {
        min_snr: 1.0,
        ..Default::default()
    };
    let Some(m) = compare(
        "centroid-reference/PeakPickerHiRes_input.mzML",
        "centroid-reference/PeakPickerHiRes_output.mzML",
        &[1],
        params,
    ) else {
        return;
    };
    assert_eq!(m.reference, 451);
    assert!(m.found >= 426, "found {} of 451", m.found);
    assert_eq!(m.extra, 0, "extra centroids: {}", m.extra);
}
