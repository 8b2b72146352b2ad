//! Local noise estimation: the median intensity in a sliding m/z window, from a histogram.
//!
//! This is the estimator OpenMS calls `SignalToNoiseEstimatorMedian`, the one its
//! PeakPickerHiRes uses, so that `min_snr` means the same thing in both tools:
//!
//! * the histogram spans `0 ..= mean + 3·stdev` of the spectrum's intensities, in `bin_count`
//!   bins (each at least 1 intensity unit wide); values above fall in the last bin;
//! * the noise at a point is the centre of the histogram bin holding the median of all the
//!   points within `±window_mz / 2` (at least 1.0);
//! * a window with fewer than `min_points` points has no usable median: its noise is
//!   effectively infinite, so any signal-to-noise threshold above zero rejects the point.
//!
//! The signal-to-noise ratio of a point is its intensity divided by that noise.

use serde::{Deserialize, Serialize};

/// Settings of the noise estimator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NoiseParams {
    /// Width of the sliding window, in m/z units (Th). Default 200.
    pub window_mz: f64,
    /// Number of intensity histogram bins. Default 30.
    pub bin_count: usize,
    /// Windows with fewer points are "sparse": noise is infinite there. Default 10.
    pub min_points: usize,
    /// The histogram's upper end is `mean + max_stdev_factor · stdev`. Default 3.
    pub max_stdev_factor: f64,
}

impl Default for NoiseParams {
    fn default() -> Self {
        NoiseParams {
            window_mz: 200.0,
            bin_count: 30,
            min_points: 10,
            max_stdev_factor: 3.0,
        }
    }
}

/// Noise used for sparse windows: large enough that any positive threshold rejects the point.
pub const SPARSE_WINDOW_NOISE: f64 = 1e20;

/// A sliding-window median estimator over one spectrum. Query points in increasing index order.
#[derive(Debug, Default)]
pub(crate) struct NoiseWindow {
    histogram: Vec<u32>,
    /// Each point's histogram bin, computed once per spectrum.
    bins: Vec<u32>,
    bin_size: f64,
    half_window: f64,
    min_points: usize,
    left: usize,
    right: usize,
    in_window: usize,
}

impl NoiseWindow {
    /// Prepares the estimator for a spectrum.
    pub(crate) fn reset(&mut self, params: &NoiseParams, intensity: &[f32]) {
        let n = intensity.len().max(1) as f64;
        let mean = intensity.iter().map(|&v| v as f64).sum::<f64>() / n;
        let variance = intensity
            .iter()
            .map(|&v| (v as f64 - mean).powi(2))
            .sum::<f64>()
            / n;
        let max_intensity = mean + variance.sqrt() * params.max_stdev_factor;
        let bins = params.bin_count.max(3);
        self.bin_size = (max_intensity / bins as f64).max(1.0);
        self.histogram.clear();
        self.histogram.resize(bins, 0);
        let last = (bins - 1) as f64;
        let bin_size = self.bin_size;
        self.bins.clear();
        // Saturating float-to-int casts: NaN -> 0, clamped to the last bin. A loop the compiler
        // vectorizes (the division stays a division, so the bins are exactly the per-point ones).
        self.bins.extend(
            intensity
                .iter()
                .map(|&v| (v as f64 / bin_size).clamp(0.0, last) as u32),
        );
        self.half_window = params.window_mz / 2.0;
        self.min_points = params.min_points.max(1);
        self.left = 0;
        self.right = 0;
        self.in_window = 0;
    }

    /// The noise level at point `centre`. Successive calls must not decrease `centre`; `mz`
    /// belongs to the spectrum given to [`NoiseWindow::reset`].
    pub(crate) fn noise_at(&mut self, mz: &[f64], centre: usize) -> f64 {
        let at = mz[centre];
        while self.left < self.right && mz[self.left] < at - self.half_window {
            let bin = self.bins[self.left] as usize;
            self.histogram[bin] -= 1;
            self.in_window -= 1;
            self.left += 1;
        }
        while self.right < mz.len() && mz[self.right] <= at + self.half_window {
            let bin = self.bins[self.right] as usize;
            self.histogram[bin] += 1;
            self.in_window += 1;
            self.right += 1;
        }
        if self.in_window < self.min_points {
            return SPARSE_WINDOW_NOISE;
        }
        let half = self.in_window.div_ceil(2) as u32;
        let mut seen = 0u32;
        let last = self.histogram.len() - 1;
        let mut median_bin = 0;
        for (bin, &count) in self.histogram.iter().enumerate() {
            seen += count;
            median_bin = bin;
            if seen >= half || bin == last {
                break;
            }
        }
        ((median_bin as f64 + 0.5) * self.bin_size).max(1.0)
    }
}

/// Noise level at every point of a spectrum (m/z sorted).
pub fn estimate_noise(params: &NoiseParams, mz: &[f64], intensity: &[f32]) -> Vec<f64> {
    let mut window = NoiseWindow::default();
    window.reset(params, intensity);
    (0..mz.len()).map(|i| window.noise_at(mz, i)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flat_noise_gives_its_level_and_peaks_stand_out() {
        let mz: Vec<f64> = (0..1000).map(|i| 400.0 + i as f64 * 0.1).collect();
        let mut intensity: Vec<f32> = (0..1000).map(|i| 100.0 + (i % 7) as f32 * 10.0).collect();
        intensity[500] = 100_000.0;
        let noise = estimate_noise(&NoiseParams::default(), &mz, &intensity);
        assert!(
            noise[500] > 50.0 && noise[500] < 300.0,
            "noise {}",
            noise[500]
        );
        assert!(intensity[500] as f64 / noise[500] > 300.0);
    }

    #[test]
    fn sparse_windows_have_no_usable_noise() {
        let mz = [100.0, 500.0, 900.0];
        let intensity = [10.0, 20.0, 30.0];
        let noise = estimate_noise(&NoiseParams::default(), &mz, &intensity);
        assert!(noise.iter().all(|&n| n == SPARSE_WINDOW_NOISE));
    }
}
