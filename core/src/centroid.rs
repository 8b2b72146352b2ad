//! Centroiding: profile spectra become peak lists.
//!
//! The algorithm is the one OpenMS's PeakPickerHiRes uses, so results compare one to one:
//! a vector kernel ([`crate::simd`]) finds the strict local maxima; each maximum with non-zero
//! neighbours and regular m/z spacing is extended left and right while intensities keep falling
//! and the spacing stays regular (allowing `max_missing` irregular points); a natural cubic
//! spline through those points gives the apex (by bisection on its derivative), the apex height
//! and the full width at half maximum. Maxima flanked by higher points on both sides
//! (oscillations) are skipped. With `min_snr > 0`, every point used must reach that
//! signal-to-noise ratio against the local noise of [`crate::noise`].

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::noise::{NoiseParams, NoiseWindow};
use crate::simd::{self, Backend};
use crate::spectrum::PeakList;
use crate::spline::NaturalSpline;

/// Centroiding settings. Defaults are OpenMS PeakPickerHiRes's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CentroidParams {
    /// Minimum signal-to-noise ratio of a peak's apex and of every point used to fit it;
    /// 0 keeps every local maximum. Default 0.
    pub min_snr: f32,
    /// Minimum apex intensity of a reported peak. Default 0. A peak of zero intensity is never
    /// reported: the zeros that pad some peak lists (OpenSwath's, FLASHDeconv's sample, merged
    /// timsTOF scans) are not peaks.
    pub min_intensity: f32,
    /// Extension stops where the gap to the next point exceeds this many times the apex's
    /// smaller neighbour spacing; 0 disables the check. Default 4.
    pub spacing_difference_gap: f64,
    /// A gap larger than this many times the apex's smaller neighbour spacing counts as a
    /// missing point; 0 disables the check. Default 1.5.
    pub spacing_difference: f64,
    /// Missing points tolerated on each side of a peak. Default 1.
    pub max_missing: usize,
    /// The noise estimator used for signal-to-noise.
    pub noise: NoiseParams,
}

impl Default for CentroidParams {
    fn default() -> Self {
        CentroidParams {
            min_snr: 0.0,
            min_intensity: 0.0,
            spacing_difference_gap: 4.0,
            spacing_difference: 1.5,
            max_missing: 1,
            noise: NoiseParams::default(),
        }
    }
}

impl CentroidParams {
    /// Checks every setting; the error names the offending one.
    pub fn validate(&self) -> Result<()> {
        let bad = |name, message: &str| Error::InvalidParameter {
            name,
            message: message.into(),
        };
        if !(self.min_snr >= 0.0 && self.min_snr.is_finite()) {
            return Err(bad("centroid.min_snr", "must be a finite number >= 0"));
        }
        if !(self.min_intensity >= 0.0 && self.min_intensity.is_finite()) {
            return Err(bad(
                "centroid.min_intensity",
                "must be a finite number >= 0",
            ));
        }
        if self.spacing_difference_gap.is_nan() || self.spacing_difference_gap < 0.0 {
            return Err(bad(
                "centroid.spacing_difference_gap",
                "must be >= 0 (0 disables the check)",
            ));
        }
        if self.spacing_difference.is_nan() || self.spacing_difference < 0.0 {
            return Err(bad(
                "centroid.spacing_difference",
                "must be >= 0 (0 disables the check)",
            ));
        }
        if !(self.noise.window_mz > 0.0 && self.noise.window_mz.is_finite()) {
            return Err(bad(
                "centroid.noise.window_mz",
                "must be a positive number of m/z units",
            ));
        }
        if self.noise.bin_count < 3 || self.noise.bin_count > 100_000 {
            return Err(bad(
                "centroid.noise.bin_count",
                "must be between 3 and 100000",
            ));
        }
        if self.noise.min_points == 0 {
            return Err(bad("centroid.noise.min_points", "must be at least 1"));
        }
        if self.noise.max_stdev_factor.is_nan() || self.noise.max_stdev_factor <= 0.0 {
            return Err(bad("centroid.noise.max_stdev_factor", "must be > 0"));
        }
        Ok(())
    }
}

/// A reusable centroider: owns its scratch buffers, so one per thread centroids any number of
/// spectra without allocating.
#[derive(Debug)]
pub struct Centroider {
    params: CentroidParams,
    backend: Backend,
    candidates: Vec<u32>,
    noise: Vec<f64>,
    window: NoiseWindow,
    spline: NaturalSpline,
}

impl Centroider {
    /// A centroider using the best SIMD backend of this CPU.
    pub fn new(params: CentroidParams) -> Centroider {
        Centroider::with_backend(params, Backend::detect())
    }

    /// A centroider using a given kernel backend (falls back to scalar if unsupported).
    pub fn with_backend(params: CentroidParams, backend: Backend) -> Centroider {
        Centroider {
            params,
            backend,
            candidates: Vec::new(),
            noise: Vec::new(),
            window: NoiseWindow::default(),
            spline: NaturalSpline::default(),
        }
    }

    /// The settings.
    pub fn params(&self) -> &CentroidParams {
        &self.params
    }

    /// Centroids one profile spectrum (m/z ascending) into `out`, replacing its contents.
    pub fn centroid_into(&mut self, mz: &[f64], intensity: &[f32], out: &mut PeakList) {
        out.clear();
        let n = mz.len().min(intensity.len());
        let (mz, y) = (&mz[..n], &intensity[..n]);
        if n < 5 {
            return;
        }
        let p = &self.params;
        let gap_factor = if p.spacing_difference_gap > 0.0 {
            p.spacing_difference_gap
        } else {
            f64::INFINITY
        };
        let spacing_factor = if p.spacing_difference > 0.0 {
            p.spacing_difference
        } else {
            f64::INFINITY
        };
        let check_spacings = gap_factor.is_finite() || spacing_factor.is_finite();
        let min_snr = p.min_snr as f64;
        let use_snr = min_snr > 0.0;

        self.window.reset(&p.noise, y);
        if use_snr {
            self.window.noise_all(&mz[..n], &mut self.noise);
        }
        let noise = &self.noise;
        let snr_ok = |j: usize| !use_snr || y[j] as f64 / noise[j] >= min_snr;

        self.candidates.clear();
        simd::local_maxima(self.backend, y, &mut self.candidates);

        let mut next_allowed = 2usize;
        for ci in 0..self.candidates.len() {
            let i = self.candidates[ci] as usize;
            if i < next_allowed || i + 2 >= n {
                continue;
            }
            let (left_int, right_int) = (y[i - 1] as f64, y[i + 1] as f64);
            if left_int.abs() < f64::EPSILON || right_int.abs() < f64::EPSILON {
                continue;
            }
            let left_to_centre = mz[i] - mz[i - 1];
            let centre_to_right = mz[i + 1] - mz[i];
            let min_spacing = left_to_centre.min(centre_to_right);
            let regular = |gap: f64, factor: f64| !check_spacings || gap < factor * min_spacing;
            let core_ok = snr_ok(i)
                && snr_ok(i - 1)
                && snr_ok(i + 1)
                && regular(left_to_centre, spacing_factor)
                && regular(centre_to_right, spacing_factor);
            if !core_ok {
                continue;
            }
            // Oscillation: both neighbours are lower than the points beyond them.
            if y[i - 1] < y[i - 2]
                && y[i + 1] < y[i + 2]
                && snr_ok(i - 2)
                && snr_ok(i + 2)
                && regular(mz[i - 1] - mz[i - 2], spacing_factor)
                && regular(mz[i + 2] - mz[i + 1], spacing_factor)
            {
                next_allowed = i + 2;
                continue;
            }

            // Extend to the left while intensities fall and spacing stays regular.
            let mut first = i - 1;
            let mut missing = 0;
            let mut k = 2;
            let mut previous_zero = false;
            while k <= i
                && !previous_zero
                && missing <= p.max_missing
                && y[i - k] <= y[first]
                && regular(mz[first] - mz[i - k], gap_factor)
            {
                let j = i - k;
                let mut include = snr_ok(j) && regular(mz[first] - mz[j], spacing_factor);
                if !include {
                    missing += 1;
                    include = missing <= p.max_missing;
                }
                if include {
                    first = j;
                }
                previous_zero = y[j] == 0.0;
                k += 1;
            }
            // And to the right.
            let mut last = i + 1;
            let mut missing = 0;
            let mut k = 2;
            let mut previous_zero = false;
            while i + k < n
                && !previous_zero
                && missing <= p.max_missing
                && y[i + k] <= y[last]
                && regular(mz[i + k] - mz[last], gap_factor)
            {
                let j = i + k;
                let mut include = snr_ok(j) && regular(mz[j] - mz[last], spacing_factor);
                if !include {
                    missing += 1;
                    include = missing <= p.max_missing;
                }
                if include {
                    last = j;
                }
                previous_zero = y[j] == 0.0;
                k += 1;
            }
            next_allowed = i + k;

            self.spline
                .fit(&mz[first..=last], y[first..=last].iter().map(|&v| v as f64));
            let (apex_mz, apex_int) = self.spline.maximum_between(i - 1 - first, i + 1 - first);
            if apex_int < p.min_intensity as f64 {
                continue;
            }
            let noise_here = if use_snr {
                noise[i]
            } else {
                self.window.noise_at(mz, i)
            };
            let snr = apex_int / noise_here;
            if use_snr && snr < min_snr {
                continue;
            }
            let fwhm = self.spline.fwhm(apex_mz, apex_int);
            out.push(apex_mz, apex_int as f32, snr as f32, fwhm as f32);
        }
    }

    /// Passes a centroided spectrum through, computing signal-to-noise and applying the
    /// intensity and signal-to-noise thresholds; points of zero intensity are left out (their
    /// noise counts, as it does for profile spectra). FWHM is unknown (NaN). The arrays become the
    /// peak list's m/z and intensity columns (filtered in place): no copy.
    pub fn filter_centroids(&mut self, mz: Vec<f64>, intensity: Vec<f32>) -> PeakList {
        self.filter_centroids_with_mobility(mz, intensity, None)
    }

    /// [`Centroider::filter_centroids`], with each point's ion mobility: the peaks kept keep
    /// theirs, in the peak list's `ion_mobility` column (filtered in place, in step with the
    /// other columns).
    pub fn filter_centroids_with_mobility(
        &mut self,
        mut mz: Vec<f64>,
        mut intensity: Vec<f32>,
        mut ion_mobility: Option<Vec<f64>>,
    ) -> PeakList {
        let n = mz.len().min(intensity.len());
        mz.truncate(n);
        intensity.truncate(n);
        if let Some(mobility) = &mut ion_mobility {
            // Decoding checks the lengths; a caller's arrays that disagree lose the mobility.
            if mobility.len() < n {
                ion_mobility = None;
            } else {
                mobility.truncate(n);
            }
        }
        let p = &self.params;
        self.window.reset(&p.noise, &intensity);
        self.window.noise_all(&mz, &mut self.noise);
        let snr = |(&value, &noise): (&f32, &f64)| value as f64 / noise;
        let kept = |point: (&f32, &f64)| {
            let value = *point.0;
            value > 0.0
                && value >= p.min_intensity
                && (p.min_snr <= 0.0 || snr(point) >= p.min_snr as f64)
        };
        if !intensity.iter().zip(&self.noise).all(kept) {
            let mut snrs = Vec::with_capacity(n);
            let mut k = 0;
            for i in 0..n {
                let point = (&intensity[i], &self.noise[i]);
                if kept(point) {
                    snrs.push(snr(point) as f32);
                    mz[k] = mz[i];
                    intensity[k] = intensity[i];
                    if let Some(mobility) = &mut ion_mobility {
                        mobility[k] = mobility[i];
                    }
                    k += 1;
                }
            }
            mz.truncate(k);
            intensity.truncate(k);
            if let Some(mobility) = &mut ion_mobility {
                mobility.truncate(k);
            }
            return PeakList {
                mz,
                intensity,
                snr: snrs,
                fwhm_mz: vec![f32::NAN; k],
                ion_mobility,
            };
        }
        // Every point kept, as with the default thresholds: whole columns.
        let snr = intensity
            .iter()
            .zip(&self.noise)
            .map(|point| snr(point) as f32)
            .collect();
        PeakList {
            mz,
            intensity,
            snr,
            fwhm_mz: vec![f32::NAN; n],
            ion_mobility,
        }
    }
}

/// Centroids one profile spectrum with the given settings (one-shot convenience; reuse a
/// [`Centroider`] when processing many spectra).
pub fn centroid(mz: &[f64], intensity: &[f32], params: &CentroidParams) -> PeakList {
    let mut out = PeakList::default();
    Centroider::new(params.clone()).centroid_into(mz, intensity, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gaussian_profile(
        centres: &[(f64, f64)],
        sigma: f64,
        from: f64,
        to: f64,
        step: f64,
    ) -> (Vec<f64>, Vec<f32>) {
        let n = ((to - from) / step) as usize;
        let mz: Vec<f64> = (0..n).map(|i| from + i as f64 * step).collect();
        let y = mz
            .iter()
            .map(|&x| {
                centres
                    .iter()
                    .map(|&(c, h)| h * (-(x - c).powi(2) / (2.0 * sigma * sigma)).exp())
                    .sum::<f64>() as f32
            })
            .collect();
        (mz, y)
    }

    #[test]
    fn recovers_apexes_of_separated_peaks() {
        let truth = [(400.1234, 1e5), (400.3456, 5e4), (401.0, 2e3)];
        let (mz, y) = gaussian_profile(&truth, 0.002, 399.9, 401.2, 0.0013);
        let peaks = centroid(&mz, &y, &CentroidParams::default());
        assert_eq!(peaks.len(), 3, "{peaks:?}");
        for ((c, h), (m, i)) in truth.iter().zip(peaks.mz.iter().zip(&peaks.intensity)) {
            assert!(((m - c) / c).abs() < 1e-6, "{m} vs {c}");
            assert!(((*i as f64 - h) / h).abs() < 0.02, "{i} vs {h}");
        }
        for w in &peaks.fwhm_mz {
            assert!((*w as f64 - 2.3548 * 0.002).abs() < 0.001, "fwhm {w}");
        }
    }

    #[test]
    fn scalar_and_vector_backends_agree() {
        let truth: Vec<(f64, f64)> = (0..50)
            .map(|k| (300.0 + k as f64 * 0.37, 1e3 + k as f64 * 97.0))
            .collect();
        let (mz, y) = gaussian_profile(&truth, 0.003, 299.0, 320.0, 0.0011);
        let mut a = PeakList::default();
        let mut b = PeakList::default();
        Centroider::with_backend(CentroidParams::default(), Backend::Scalar)
            .centroid_into(&mz, &y, &mut a);
        Centroider::with_backend(CentroidParams::default(), Backend::best_supported())
            .centroid_into(&mz, &y, &mut b);
        assert_eq!(a, b);
        assert_eq!(a.len(), 50);
    }

    #[test]
    fn tiny_and_degenerate_inputs_give_no_peaks() {
        let p = CentroidParams::default();
        assert!(centroid(&[], &[], &p).is_empty());
        assert!(centroid(&[1.0, 2.0, 3.0], &[0.0, 5.0, 0.0], &p).is_empty());
        let mz = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0];
        assert!(centroid(&mz, &[f32::NAN; 7], &p).is_empty());
        assert!(centroid(&mz, &[0.0; 7], &p).is_empty());
    }

    #[test]
    fn snr_threshold_drops_noise_peaks() {
        let (mz, mut y) = gaussian_profile(&[(500.0, 1e6)], 0.003, 450.0, 550.0, 0.001);
        for (i, v) in y.iter_mut().enumerate() {
            *v += 100.0 + ((i * 7919) % 13) as f32 * 10.0; // deterministic ripple
        }
        let all = centroid(&mz, &y, &CentroidParams::default());
        let strict = centroid(
            &mz,
            &y,
            &CentroidParams {
                min_snr: 3.0,
                ..Default::default()
            },
        );
        assert!(all.len() > 100);
        assert_eq!(strict.len(), 1);
        assert!((strict.mz[0] - 500.0).abs() < 1e-4);
        assert!(strict.snr[0] > 1000.0);
    }

    #[test]
    fn centroids_pass_through_in_their_own_columns_or_filtered_in_place() {
        let mz: Vec<f64> = (0..400).map(|i| 300.0 + i as f64 * 0.37).collect();
        let intensity: Vec<f32> = (0..400)
            .map(|i| 50.0 + ((i * 7919) % 101) as f32 * 40.0)
            .collect();
        let params = CentroidParams::default();
        let noise = crate::noise::estimate_noise(&params.noise, &mz, &intensity);
        let snr = |i: usize| (intensity[i] as f64 / noise[i]) as f32;

        // Defaults keep every point: the arrays become the columns, without a copy.
        let (mz_at, intensity_at) = (mz.as_ptr(), intensity.as_ptr());
        let all = Centroider::new(params.clone()).filter_centroids(mz.clone(), intensity.clone());
        assert_eq!((all.mz.len(), all.intensity.len()), (400, 400));
        let kept = Centroider::new(params.clone()).filter_centroids(mz, intensity.clone());
        assert_eq!(kept.mz.as_ptr(), mz_at);
        assert_ne!(kept.intensity.as_ptr(), intensity_at, "a clone was passed");
        assert!(kept.mz == all.mz && kept.intensity == all.intensity && kept.snr == all.snr);
        assert!(kept.fwhm_mz.len() == 400 && kept.fwhm_mz.iter().all(|w| w.is_nan()));
        assert!((0..400).all(|i| kept.snr[i] == snr(i)));

        // Thresholds keep exactly the points that pass both, in order.
        let strict = CentroidParams {
            min_snr: 1.5,
            min_intensity: 1000.0,
            ..params
        };
        let passing: Vec<usize> = (0..400)
            .filter(|&i| intensity[i] >= 1000.0 && snr(i) as f64 >= 1.5)
            .collect();
        assert!(
            !passing.is_empty() && passing.len() < 300,
            "{}",
            passing.len()
        );
        let filtered = Centroider::new(strict).filter_centroids(kept.mz.clone(), intensity.clone());
        assert_eq!(filtered.len(), passing.len());
        for (k, &i) in passing.iter().enumerate() {
            assert_eq!(filtered.mz[k], kept.mz[i]);
            assert_eq!(filtered.intensity[k], kept.intensity[i]);
            assert_eq!(filtered.snr[k], snr(i));
        }
        assert_eq!(filtered.fwhm_mz.len(), passing.len());
    }

    /// Zeros padding a peak list (around each peak, as some writers do) are not peaks: they
    /// are left out at any threshold, and the peaks keep the signal-to-noise the whole list
    /// gives them.
    #[test]
    fn zeros_padding_a_peak_list_are_not_peaks() {
        let mz: Vec<f64> = (0..300).map(|i| 400.0 + i as f64 * 0.01).collect();
        let intensity: Vec<f32> = (0..300)
            .map(|i| if i % 3 == 1 { 100.0 + i as f32 } else { 0.0 })
            .collect();
        let params = CentroidParams::default();
        let noise = crate::noise::estimate_noise(&params.noise, &mz, &intensity);
        let peaks = Centroider::new(params).filter_centroids(mz.clone(), intensity.clone());
        let expected: Vec<usize> = (0..300).filter(|i| i % 3 == 1).collect();
        assert_eq!(peaks.len(), expected.len());
        for (k, &i) in expected.iter().enumerate() {
            assert_eq!((peaks.mz[k], peaks.intensity[k]), (mz[i], intensity[i]));
            assert_eq!(peaks.snr[k], (intensity[i] as f64 / noise[i]) as f32);
        }
    }

    #[test]
    fn invalid_params_are_named() {
        let err = CentroidParams {
            min_snr: -1.0,
            ..Default::default()
        }
        .validate()
        .unwrap_err();
        assert!(err.to_string().contains("min_snr"));
    }
}
