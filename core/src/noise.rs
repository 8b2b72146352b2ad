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
    slide: Slide,
}

/// Where the window is, and where its median was last found.
#[derive(Debug, Default, Clone, Copy)]
struct Slide {
    left: usize,
    right: usize,
    in_window: usize,
    /// The bin the last median was found in, and how many window points lie in the bins
    /// below it: the median moves little from one point to the next, so it is searched for
    /// from there instead of from the first bin.
    median_bin: usize,
    below_median: u32,
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
        self.slide = Slide::default();
    }

    /// The noise level at point `centre`. Successive calls must not decrease `centre`; `mz`
    /// belongs to the spectrum given to [`NoiseWindow::reset`].
    pub(crate) fn noise_at(&mut self, mz: &[f64], centre: usize) -> f64 {
        let mut slide = self.slide;
        let noise = self.step(&mut slide, mz, centre);
        self.slide = slide;
        noise
    }

    /// The noise level at every point of `mz` (the spectrum given to
    /// [`NoiseWindow::reset`]), into `out`: [`NoiseWindow::noise_at`] for each point in turn,
    /// with the window's state kept in registers.
    pub(crate) fn noise_all(&mut self, mz: &[f64], out: &mut Vec<f64>) {
        out.clear();
        out.reserve(mz.len());
        let mut slide = self.slide;
        for centre in 0..mz.len() {
            out.push(self.step(&mut slide, mz, centre));
        }
        self.slide = slide;
    }

    #[inline(always)]
    fn step(&mut self, slide: &mut Slide, mz: &[f64], centre: usize) -> f64 {
        let histogram = &mut self.histogram[..];
        let bins = &self.bins[..];
        let at = mz[centre];
        while slide.left < slide.right && mz[slide.left] < at - self.half_window {
            let bin = bins[slide.left] as usize;
            histogram[bin] -= 1;
            slide.below_median -= u32::from(bin < slide.median_bin);
            slide.in_window -= 1;
            slide.left += 1;
        }
        while slide.right < mz.len() && mz[slide.right] <= at + self.half_window {
            let bin = bins[slide.right] as usize;
            histogram[bin] += 1;
            slide.below_median += u32::from(bin < slide.median_bin);
            slide.in_window += 1;
            slide.right += 1;
        }
        if slide.in_window < self.min_points {
            return SPARSE_WINDOW_NOISE;
        }
        // The median bin: the first whose cumulative count reaches half the window (or the
        // last bin). Invariant: `below_median` counts the points in bins before `median_bin`.
        let half = slide.in_window.div_ceil(2) as u32;
        let last = histogram.len() - 1;
        while slide.median_bin < last && slide.below_median + histogram[slide.median_bin] < half {
            slide.below_median += histogram[slide.median_bin];
            slide.median_bin += 1;
        }
        while slide.median_bin > 0 && slide.below_median >= half {
            slide.median_bin -= 1;
            slide.below_median -= histogram[slide.median_bin];
        }
        ((slide.median_bin as f64 + 0.5) * self.bin_size).max(1.0)
    }
}

/// Noise level at every point of a spectrum (m/z sorted).
pub fn estimate_noise(params: &NoiseParams, mz: &[f64], intensity: &[f32]) -> Vec<f64> {
    let mut window = NoiseWindow::default();
    window.reset(params, intensity);
    let mut noise = Vec::new();
    window.noise_all(mz, &mut noise);
    noise
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

    /// The median bin by a scan from the first bin, as the estimator defines it.
    fn noise_by_scan(params: &NoiseParams, mz: &[f64], intensity: &[f32]) -> Vec<f64> {
        let mut window = NoiseWindow::default();
        window.reset(params, intensity);
        let bins = window.bins.clone();
        (0..mz.len())
            .map(|i| {
                let (lo, hi) = (mz[i] - window.half_window, mz[i] + window.half_window);
                let mut histogram = vec![0u32; window.histogram.len()];
                let mut n = 0;
                for j in (0..mz.len()).filter(|&j| mz[j] >= lo && mz[j] <= hi) {
                    histogram[bins[j] as usize] += 1;
                    n += 1;
                }
                if n < window.min_points {
                    return SPARSE_WINDOW_NOISE;
                }
                let half = (n as u32).div_ceil(2);
                let mut seen = 0;
                let bin = (0..histogram.len())
                    .find(|&b| {
                        seen += histogram[b];
                        seen >= half
                    })
                    .unwrap_or(histogram.len() - 1);
                ((bin as f64 + 0.5) * window.bin_size).max(1.0)
            })
            .collect()
    }

    proptest::proptest! {
        #[test]
        fn the_sliding_median_equals_a_scan_from_the_first_bin(
            steps in proptest::collection::vec(0.01f64..40.0, 1..400),
            intensity in proptest::collection::vec(0.0f32..1e5, 400),
            bin_count in 3usize..40,
        ) {
            let mut mz = vec![100.0];
            for step in &steps[1..] {
                mz.push(mz.last().unwrap() + step);
            }
            let intensity = &intensity[..mz.len()];
            let params = NoiseParams { bin_count, ..NoiseParams::default() };
            proptest::prop_assert_eq!(
                estimate_noise(&params, &mz, intensity),
                noise_by_scan(&params, &mz, intensity)
            );
        }
    }

    #[test]
    fn sparse_windows_have_no_usable_noise() {
        let mz = [100.0, 500.0, 900.0];
        let intensity = [10.0, 20.0, 30.0];
        let noise = estimate_noise(&NoiseParams::default(), &mz, &intensity);
        assert!(noise.iter().all(|&n| n == SPARSE_WINDOW_NOISE));
    }
}
