//! How close the cheaper peak pickers come to OpenMS PeakPickerHiRes, the issue's accuracy
//! reference: the context of the centroiding speed comparison in `benches/README.md`.
//!
//! ```text
//! cargo run --release -p mzforge-benches --example peer_accuracy
//! ```
//!
//! For each centroiding bench file, the profile MS1 spectra are centroided three ways and
//! matched against the OpenMS 3.6 centroids of `centroid-reference/openms-3.6/` (signal-to-noise
//! 0): mzforge with default settings (its natural cubic spline, OpenMS's algorithm); mzsignal's
//! `PeakPicker::default()` as benched (a parabola through the apex and its neighbours, the
//! apex's own intensity); and a three-point Gaussian apex (a parabola through the logarithms of
//! the same three intensities, its vertex and height), the cheapest fit that models a peak's
//! shape. Printed per file and method, one JSON object per line: OpenMS's centroids, the
//! method's, the fraction of OpenMS's found within 1 ppm (the issue's bar: 99%), the fraction of
//! the method's with no OpenMS centroid within 1 ppm (bar: 3%), the fraction of matches with
//! intensity within 5% (bar: 99%) and the median and 95th-percentile m/z error of the nearest
//! centroid, in ppm.

use std::collections::HashMap;

use mzforge::{CentroidParams, Centroider, PeakList};
use mzforge_benches::{data_file, mzsignal_picker, profile_ms1, read_all, PROFILE_FILES};

/// The issue's m/z tolerance for a match.
const TOLERANCE_PPM: f64 = 1.0;

/// Centroids as (m/z ascending, intensity).
type Centroids = Vec<(f64, f64)>;

#[derive(Default)]
struct Tally {
    reference: usize,
    ours: usize,
    found: usize,
    extra: usize,
    intensity_within_5pct: usize,
    errors_ppm: Vec<f64>,
}

impl Tally {
    fn add(&mut self, reference: &Centroids, ours: &Centroids) {
        self.reference += reference.len();
        self.ours += ours.len();
        for &(mz, intensity) in reference {
            let (their_mz, their_intensity) = nearest(ours, mz);
            let ppm = (their_mz - mz).abs() / mz * 1e6;
            self.errors_ppm.push(ppm);
            if ppm <= TOLERANCE_PPM {
                self.found += 1;
                if (their_intensity - intensity).abs() <= 0.05 * intensity {
                    self.intensity_within_5pct += 1;
                }
            }
        }
        for &(mz, _) in ours {
            if (nearest(reference, mz).0 - mz).abs() / mz * 1e6 > TOLERANCE_PPM {
                self.extra += 1;
            }
        }
    }

    fn report(mut self, file: &str, method: &str) -> serde_json::Value {
        self.errors_ppm.sort_by(f64::total_cmp);
        let quantile = |q: f64| {
            let last = self.errors_ppm.len().saturating_sub(1) as f64;
            self.errors_ppm
                .get((last * q).round() as usize)
                .copied()
                .unwrap_or(f64::NAN)
        };
        let fraction = |n: usize, of: usize| n as f64 / of.max(1) as f64;
        serde_json::json!({
            "file": file,
            "method": method,
            "openms_centroids": self.reference,
            "centroids": self.ours,
            "found_within_1ppm": fraction(self.found, self.reference),
            "extra": fraction(self.extra, self.ours),
            "intensity_within_5pct": fraction(self.intensity_within_5pct, self.found),
            "median_ppm": quantile(0.5),
            "p95_ppm": quantile(0.95),
        })
    }
}

/// The centroid of `sorted` nearest to `mz` (infinitely far when there is none).
fn nearest(sorted: &Centroids, mz: f64) -> (f64, f64) {
    let at = sorted.partition_point(|&(m, _)| m < mz);
    [at.checked_sub(1), Some(at)]
        .into_iter()
        .flatten()
        .filter_map(|i| sorted.get(i).copied())
        .min_by(|a, b| (a.0 - mz).abs().total_cmp(&(b.0 - mz).abs()))
        .unwrap_or((f64::INFINITY, 0.0))
}

/// The vertex of the parabola through (m/z, ln intensity) of points `i - 1 ..= i + 1`: a
/// Gaussian's apex and height when the three points lie on one.
fn gaussian_three_point(mz: &[f64], intensity: &[f32], i: usize) -> Option<(f64, f64)> {
    let ln = |j: usize| (intensity[j] as f64).ln();
    let (left, centre, right) = (ln(i - 1), ln(i), ln(i + 1));
    let (d_left, d_right) = (mz[i - 1] - mz[i], mz[i + 1] - mz[i]);
    let (slope_left, slope_right) = ((left - centre) / d_left, (right - centre) / d_right);
    let a = (slope_left - slope_right) / (d_left - d_right);
    let b = slope_left - a * d_left;
    let (apex, height) = (mz[i] - b / (2.0 * a), (centre - b * b / (4.0 * a)).exp());
    (a < 0.0 && apex.is_finite() && height.is_finite()).then_some((apex, height))
}

fn main() {
    let mut centroider = Centroider::new(CentroidParams::default());
    let picker = mzsignal_picker();
    let (mut peaks, mut fitted) = (PeakList::default(), Vec::new());
    for relative in PROFILE_FILES {
        let name = relative.rsplit('/').next().unwrap_or(relative);
        let stem = name.trim_end_matches(".mzML");
        let reference_path = format!("centroid-reference/openms-3.6/{stem}.sn0.mzML");
        let (Some(input), Some(reference)) = (data_file(relative), data_file(&reference_path))
        else {
            continue;
        };
        let openms: HashMap<String, Centroids> = read_all(&reference)
            .into_iter()
            .map(|s| {
                let centroids = s.mz.iter().zip(&s.intensity);
                let centroids = centroids.map(|(&m, &i)| (m, i as f64)).collect();
                (s.meta.native_id, centroids)
            })
            .collect();
        let mut tallies: [(&str, Tally); 3] = [
            ("mzforge", Tally::default()),
            ("mzsignal", Tally::default()),
            ("gaussian-3-point", Tally::default()),
        ];
        for s in profile_ms1(&input) {
            let reference = openms
                .get(&s.meta.native_id)
                .unwrap_or_else(|| panic!("{}: not in the reference", s.meta.native_id));
            centroider.centroid_into(&s.mz, &s.intensity, &mut peaks);
            let ours = peaks.mz.iter().zip(&peaks.intensity);
            tallies[0]
                .1
                .add(reference, &ours.map(|(&m, &i)| (m, i as f64)).collect());
            fitted.clear();
            picker
                .discover_peaks(&s.mz, &s.intensity, &mut fitted)
                .expect("mzsignal picks peaks");
            let theirs = fitted.iter().map(|p| (p.mz, p.intensity as f64)).collect();
            tallies[1].1.add(reference, &theirs);
            let mut gaussian: Centroids = fitted
                .iter()
                .map(|p| p.index as usize)
                .filter(|&i| i > 0 && i + 1 < s.mz.len())
                .filter_map(|i| gaussian_three_point(&s.mz, &s.intensity, i))
                .collect();
            gaussian.sort_by(|a, b| a.0.total_cmp(&b.0));
            tallies[2].1.add(reference, &gaussian);
        }
        for (method, tally) in tallies {
            println!("{}", tally.report(name, method));
        }
    }
}
