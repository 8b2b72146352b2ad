//! Telling profile from centroid data by looking at the data, not only at the declaration.
//!
//! Two features, measured on the real files in `../shared/data`:
//! * **spacing regularity**: profile data are sampled on a smooth m/z grid, so consecutive
//!   spacings differ by a few percent (fraction of neighbouring spacing pairs within 5%: 0.5 to
//!   1.0 for profile spectra, at most 0.34 for peak lists);
//! * **points per local maximum**: each profile peak spans several points (4 to 6 non-zero
//!   points per maximum), while in a peak list about every third point is a maximum.
//!
//! A spectrum looks like profile data when its spacing is regular (≥ 0.5), or fairly regular
//! (≥ 0.3) with at least 4.5 points per maximum. Spectra with fewer than
//! [`MIN_POINTS_TO_CLASSIFY`] non-zero points are not classified.

use crate::simd::{self, Backend};
use crate::spectrum::SignalKind;

/// Spectra with fewer non-zero points than this are not classified from data.
pub const MIN_POINTS_TO_CLASSIFY: usize = 16;

/// The features the classifier uses.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SignalFeatures {
    /// Fraction of neighbouring m/z spacing pairs that differ by less than 5%.
    pub spacing_regularity: f64,
    /// Non-zero points per strict local maximum of intensity.
    pub points_per_maximum: f64,
}

/// Measures the classifier's features; `None` with too few points.
pub fn signal_features(
    mz: &[f64],
    intensity: &[f32],
    scratch: &mut Vec<u32>,
) -> Option<SignalFeatures> {
    let nonzero = intensity.iter().filter(|&&v| v > 0.0).count();
    if nonzero < MIN_POINTS_TO_CLASSIFY || mz.len() != intensity.len() {
        return None;
    }
    // Spacings within 5% of each other, |d1 / d0 - 1| < 0.05, without the division (the
    // loop's cost) and without a branch, so the compiler vectorizes it.
    let pairs = mz.len().saturating_sub(2);
    let regular = mz
        .windows(3)
        .map(|w| {
            let (d0, d1) = (w[1] - w[0], w[2] - w[1]);
            usize::from((d0 > 0.0) & ((d1 - d0).abs() < 0.05 * d0))
        })
        .sum::<usize>();
    scratch.clear();
    simd::local_maxima(Backend::detect(), intensity, scratch);
    Some(SignalFeatures {
        spacing_regularity: regular as f64 / pairs.max(1) as f64,
        points_per_maximum: nonzero as f64 / scratch.len().max(1) as f64,
    })
}

/// The signal kind the data look like, or `None` when there are too few points to tell.
pub fn detect_signal_kind(
    mz: &[f64],
    intensity: &[f32],
    scratch: &mut Vec<u32>,
) -> Option<SignalKind> {
    let f = signal_features(mz, intensity, scratch)?;
    let profile =
        f.spacing_regularity >= 0.5 || (f.spacing_regularity >= 0.3 && f.points_per_maximum >= 4.5);
    Some(if profile {
        SignalKind::Profile
    } else {
        SignalKind::Centroid
    })
}

/// The decision of the `auto` policy: the data's look, except that a declared peak list
/// without zero-intensity points stays a peak list. Returns the decision and the look.
pub fn decide_signal_kind(
    declared: Option<SignalKind>,
    mz: &[f64],
    intensity: &[f32],
    scratch: &mut Vec<u32>,
) -> (SignalKind, Option<SignalKind>) {
    let detected = detect_signal_kind(mz, intensity, scratch);
    let decision = match (declared, detected) {
        (Some(SignalKind::Centroid), Some(SignalKind::Profile)) if !intensity.contains(&0.0) => {
            SignalKind::Centroid
        }
        _ => detected.or(declared).unwrap_or(SignalKind::Centroid),
    };
    (decision, detected)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sampled_profile_looks_like_profile_and_its_peaks_like_centroids() {
        let mz: Vec<f64> = (0..2000).map(|i| 400.0 + i as f64 * 0.002).collect();
        let y: Vec<f32> = mz
            .iter()
            .map(|&x| (1e4 * (((x - 400.0) * 3.0).sin().powi(8)) + 1.0) as f32)
            .collect();
        let mut scratch = Vec::new();
        assert_eq!(
            detect_signal_kind(&mz, &y, &mut scratch),
            Some(SignalKind::Profile)
        );
        let peaks_mz: Vec<f64> = (0..40)
            .map(|i| 400.0 + i as f64 * 1.37 + (i * i % 7) as f64 * 0.11)
            .collect();
        let peaks_y: Vec<f32> = (0..40).map(|i| ((i * 7919) % 101) as f32 + 1.0).collect();
        assert_eq!(
            detect_signal_kind(&peaks_mz, &peaks_y, &mut scratch),
            Some(SignalKind::Centroid)
        );
        assert_eq!(
            detect_signal_kind(&peaks_mz[..5], &peaks_y[..5], &mut scratch),
            None
        );
    }
}
