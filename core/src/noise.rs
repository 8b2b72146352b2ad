//! Local noise estimation: the median intensity in a sliding m/z window, from a histogram.
//!
//! This is the estimator OpenMS calls `SignalToNoiseEstimatorMedian`, the one its
//! PeakPickerHiRes uses, so that `min_snr` means the same thing in both tools:
//!
//! * the histogram spans `0 ..= mean + 3·stdev` of the spectrum's intensities, in `bin_count`
//!   bins (each at least 1 intensity unit wide); values above fall in the last bin;
//! * the noise at a point is the centre of the histogram bin holding the median of all the
//!   points within `±window_mz / 2` (at least 1.0): points `i` and `j` (`mz[i] <= mz[j]`) are in
//!   each other's window when `mz[j] <= mz[i] + window_mz / 2`, a symmetric relation;
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
    every: EveryPoint,
}

/// The scratch of [`NoiseWindow::noise_all`], kept between spectra.
#[derive(Debug, Default)]
struct EveryPoint {
    /// The m/z values and each point's m/z plus half the window, each followed by a NaN (see
    /// [`count_at_most`]).
    values: Vec<f64>,
    limits: Vec<f64>,
    /// Each point's window: `first[i]..end[i]` are the points within half a window of point i.
    first: Vec<u32>,
    end: Vec<u32>,
    /// `up_to_bin[b][k]`: how many of the first `k` points lie in bins `0..=b`; built only for
    /// the bins a median reaches (one to four per spectrum on real runs).
    up_to_bin: Vec<Vec<u32>>,
    built: Vec<bool>,
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
        let mean = lane_sum(intensity, |v| v) / n;
        let variance = lane_sum(intensity, |v| (v - mean).powi(2)) / n;
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
        self.every.built.clear();
        self.every.built.resize(bins, false);
        if self.every.up_to_bin.len() < bins {
            self.every.up_to_bin.resize_with(bins, Vec::new);
        }
    }

    /// The noise level at point `centre`, by sliding the window and its histogram there:
    /// for the few points a centroiding pass asks about. Successive calls must not decrease
    /// `centre`; `mz` belongs to the spectrum given to [`NoiseWindow::reset`].
    pub(crate) fn noise_at(&mut self, mz: &[f64], centre: usize) -> f64 {
        let slide = &mut self.slide;
        let histogram = &mut self.histogram[..];
        let bins = &self.bins[..];
        let at = mz[centre];
        while slide.left < slide.right && mz[slide.left] + self.half_window < at {
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
        bin_noise(slide.median_bin, self.bin_size)
    }

    /// The noise level at every point of `mz` (ascending; the spectrum given to
    /// [`NoiseWindow::reset`]), into `out`; the values [`NoiseWindow::noise_at`] gives.
    ///
    /// Not by sliding: the loops that move the window's ends exit after a varying number of
    /// points, mispredicted at nearly every point, and cost more than all the rest. Instead
    /// each point's window end is counted by a branch-free merge ([`count_at_most`]); as the
    /// window relation is symmetric, point `j` lies before the window of every point from
    /// `end[j]` on, so the window starts are counts of the ends; and the
    /// median bin of a window `first..end` is the first bin `b` with
    /// `up_to_bin[b][end] - up_to_bin[b][first]` at least half the window: checked at each
    /// point for the previous point's median bin and the one below it, which nearly always
    /// settles it.
    pub(crate) fn noise_all(&mut self, mz: &[f64], out: &mut Vec<f64>) {
        let n = mz.len();
        debug_assert_eq!(n, self.bins.len(), "reset with this spectrum's intensities");
        out.clear();
        out.reserve(n);
        let every = &mut self.every;
        let values = &mut every.values;
        values.clear();
        values.extend_from_slice(mz);
        values.push(f64::NAN);
        let limits = &mut every.limits;
        limits.clear();
        limits.extend(mz.iter().map(|&at| at + self.half_window));
        limits.push(f64::NAN);
        count_at_most(values, limits, &mut every.end);
        // first[i]: how many points j have end[j] <= i.
        let first = &mut every.first;
        first.clear();
        first.resize(n + 1, 0);
        for &end in &every.end {
            first[end as usize] += 1;
        }
        let mut before = 0;
        for first in first.iter_mut() {
            before += *first;
            *first = before;
        }
        first.truncate(n);

        let last = self.histogram.len() - 1;
        let mut median = 0usize;
        while out.len() < n {
            // The points from here on whose median bin is `median`, until one's is not.
            for bin in [median.saturating_sub(1), median] {
                every.build_up_to_bin(bin, last, &self.bins);
            }
            // How many of the window's points lie in bins up to `bin`: the last holds them all.
            let up_to = |bin: usize| (bin < last).then(|| &every.up_to_bin[bin][..]);
            let (up_to_median, up_to_below) =
                (up_to(median), median.checked_sub(1).and_then(up_to));
            let noise = bin_noise(median, self.bin_size);
            for (&first, &end) in every.first[out.len()..].iter().zip(&every.end[out.len()..]) {
                let end = end as usize;
                // Ends from unsorted or NaN m/z may cross; sorted ones never do.
                let first = (first as usize).min(end);
                let in_window = end - first;
                if in_window < self.min_points {
                    out.push(SPARSE_WINDOW_NOISE);
                    continue;
                }
                let half = in_window.div_ceil(2) as u32;
                let at_most_median =
                    up_to_median.map_or(in_window as u32, |row| row[end] - row[first]);
                if at_most_median < half {
                    median += 1;
                    break;
                }
                if up_to_below.is_some_and(|row| row[end] - row[first] >= half) {
                    median -= 1;
                    break;
                }
                out.push(noise);
            }
        }
    }
}

/// The sum of `term` over `values` (as f64), in eight running sums: one sum is a chain of
/// dependent additions (the set-up of the window, these sums among it, was ~4% of a 2-thread
/// run's samples on `BSA1.mzML`); eight are vectorized and overlap.
fn lane_sum(values: &[f32], term: impl Fn(f64) -> f64) -> f64 {
    const LANES: usize = 8;
    let mut sums = [0.0f64; LANES];
    let mut chunks = values.chunks_exact(LANES);
    for chunk in &mut chunks {
        for (sum, &v) in sums.iter_mut().zip(chunk) {
            *sum += term(f64::from(v));
        }
    }
    let tail: f64 = chunks.remainder().iter().map(|&v| term(f64::from(v))).sum();
    sums.iter().sum::<f64>() + tail
}

/// The noise level of a median in `bin`: the bin's centre, at least 1.
fn bin_noise(bin: usize, bin_size: f64) -> f64 {
    ((bin as f64 + 0.5) * bin_size).max(1.0)
}

impl EveryPoint {
    /// Builds `up_to_bin[bin]` for the points' `bins` unless it is built (or is the last bin,
    /// which holds every point).
    fn build_up_to_bin(&mut self, bin: usize, last: usize, bins: &[u32]) {
        if bin == last || self.built[bin] {
            return;
        }
        let row = &mut self.up_to_bin[bin];
        row.clear();
        row.reserve(bins.len() + 1);
        row.push(0);
        let mut count = 0;
        row.extend(bins.iter().map(|&b| {
            count += u32::from(b as usize <= bin);
            count
        }));
        self.built[bin] = true;
    }
}

/// Independent merges [`count_at_most`] interleaves.
const LANES: usize = 4;

/// For each of the ascending `limits`, how many of the ascending `values` are at most it, into
/// `counts`. Both slices end with a NaN, which passes no comparison, so the merge needs no
/// bounds of its own.
///
/// A merge of the two sequences without data-dependent branches. A merge is a chain of loads,
/// each waiting on the step before, so [`LANES`] stretches of `limits` are merged side by side
/// (each started by a binary search) for the processor to overlap. Out-of-order input gives
/// some counts, not a panic.
fn count_at_most(values: &[f64], limits: &[f64], counts: &mut Vec<u32>) {
    debug_assert!(values.last().is_some_and(|v| v.is_nan()));
    debug_assert!(limits.last().is_some_and(|l| l.is_nan()));
    let n = limits.len().saturating_sub(1);
    counts.clear();
    // One more slot per lane, written by the lane's steps once its stretch is done.
    counts.resize(n + LANES, 0);
    let mut at = [0; LANES];
    let mut end = [0; LANES];
    let mut count = [0; LANES];
    for lane in 0..LANES {
        at[lane] = n * lane / LANES;
        end[lane] = n * (lane + 1) / LANES;
        let limit = limits[at[lane]];
        count[lane] = values.partition_point(|&value| value <= limit);
    }
    let slots = &mut counts[..];
    while (0..LANES).any(|lane| at[lane] < end[lane]) {
        for _ in 0..16 {
            for lane in 0..LANES {
                let step = usize::from(values[count[lane]] <= limits[at[lane]]);
                let slot = if at[lane] < end[lane] {
                    at[lane]
                } else {
                    n + lane
                };
                slots[slot] = count[lane] as u32;
                count[lane] += step;
                at[lane] = (at[lane] + 1 - step).min(end[lane]);
            }
        }
    }
    counts.truncate(n);
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
                let h = window.half_window;
                let mut histogram = vec![0u32; window.histogram.len()];
                let mut n = 0;
                for j in (0..mz.len()).filter(|&j| mz[j] + h >= mz[i] && mz[j] <= mz[i] + h) {
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

    /// m/z steps: arbitrary ones, and repeated m/z values and multiples of 12.5, which put
    /// points exactly on other points' window edges (a window holds its edges).
    fn mz_steps() -> impl proptest::strategy::Strategy<Value = Vec<f64>> {
        use proptest::prelude::*;
        proptest::collection::vec(
            prop_oneof![
                0.01f64..40.0,
                Just(0.0),
                Just(12.5),
                Just(25.0),
                Just(100.0)
            ],
            1..400,
        )
    }

    use proptest::strategy::Strategy as _;

    proptest::proptest! {
        #[test]
        fn both_estimators_equal_a_scan_from_the_first_bin(
            steps in mz_steps(),
            intensity in proptest::collection::vec(0.0f32..1e5, 400),
            bin_count in 3usize..40,
            min_points in 1usize..20,
        ) {
            let mut mz = vec![100.0];
            for step in &steps[1..] {
                mz.push(mz.last().unwrap() + step);
            }
            let intensity = &intensity[..mz.len()];
            let params = NoiseParams { bin_count, min_points, ..NoiseParams::default() };
            let by_scan = noise_by_scan(&params, &mz, intensity);
            proptest::prop_assert_eq!(&estimate_noise(&params, &mz, intensity), &by_scan);
            let mut window = NoiseWindow::default();
            window.reset(&params, intensity);
            let one_by_one: Vec<f64> = (0..mz.len()).map(|i| window.noise_at(&mz, i)).collect();
            proptest::prop_assert_eq!(&one_by_one, &by_scan);
        }

        #[test]
        fn merged_counts_equal_binary_searches(
            mut values in proptest::collection::vec(
                proptest::prop_oneof![0.0f64..100.0, (0u8..20).prop_map(f64::from)], 0..300),
            mut limits in proptest::collection::vec(
                proptest::prop_oneof![-10.0f64..110.0, (0u8..20).prop_map(f64::from)], 0..300),
        ) {
            values.sort_by(f64::total_cmp);
            limits.sort_by(f64::total_cmp);
            let with_nan = |v: &[f64]| [v, &[f64::NAN]].concat();
            let (padded_values, padded_limits) = (with_nan(&values), with_nan(&limits));
            let mut counts = Vec::new();
            count_at_most(&padded_values, &padded_limits, &mut counts);
            let expected: Vec<u32> =
                limits.iter().map(|&l| values.partition_point(|&v| v <= l) as u32).collect();
            proptest::prop_assert_eq!(&counts, &expected);
        }

        /// The public centroiding functions take any arrays: out of order or NaN m/z give
        /// some noise level for every point, never a panic.
        #[test]
        fn unsorted_or_nan_mz_give_a_level_for_every_point(
            mz in proptest::collection::vec(
                proptest::prop_oneof![0.0f64..1000.0, proptest::strategy::Just(f64::NAN)], 0..200),
            intensity in proptest::collection::vec(0.0f32..1e5, 200),
        ) {
            let noise = estimate_noise(&NoiseParams::default(), &mz, &intensity[..mz.len()]);
            proptest::prop_assert_eq!(noise.len(), mz.len());
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
