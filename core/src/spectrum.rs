//! The engine's data model: spectra, their metadata, and peak lists. Plain Rust types with no
//! reader types inside, so they can cross any API boundary.

use serde::{Deserialize, Serialize};

/// Whether a spectrum's points sample a continuous profile or are already centroids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SignalKind {
    /// Continuous profile data: peaks are sampled by several points each.
    Profile,
    /// A peak list: one point per peak.
    Centroid,
}

impl SignalKind {
    /// `"profile"` or `"centroid"`, as written in the outputs.
    pub fn as_str(self) -> &'static str {
        match self {
            SignalKind::Profile => "profile",
            SignalKind::Centroid => "centroid",
        }
    }
}

/// Scan polarity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Polarity {
    /// Positive ions.
    Positive,
    /// Negative ions.
    Negative,
    /// Not declared.
    Unknown,
}

impl Polarity {
    /// `"positive"`, `"negative"` or `"unknown"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Polarity::Positive => "positive",
            Polarity::Negative => "negative",
            Polarity::Unknown => "unknown",
        }
    }
}

/// The precursor ion of an MSn spectrum, as the instrument recorded it.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Precursor {
    /// Selected ion m/z.
    pub mz: f64,
    /// Charge state, if recorded.
    pub charge: Option<i32>,
    /// Selected ion intensity, if recorded.
    pub intensity: Option<f32>,
    /// Isolation window target m/z, if recorded.
    pub isolation_target_mz: Option<f64>,
    /// Isolation window lower bound (absolute m/z), if recorded.
    pub isolation_lower_mz: Option<f64>,
    /// Isolation window upper bound (absolute m/z), if recorded.
    pub isolation_upper_mz: Option<f64>,
}

/// Everything about a spectrum except its arrays.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpectrumMeta {
    /// Position in the input file, from 0, in reading order.
    pub index: u32,
    /// The native id (`scan=42`, `controllerType=0 controllerNumber=1 scan=42`...).
    pub native_id: String,
    /// MS level (1 for survey scans). Spectra that do not declare one are read as level 1.
    pub ms_level: u8,
    /// Scan start time in seconds; `None` when the file gives none (no `scan start time` on
    /// the spectrum's first scan, no `RTINSECONDS` in an MGF entry), never a made-up 0.
    pub rt_seconds: Option<f64>,
    /// Polarity.
    pub polarity: Polarity,
    /// The first precursor, for MSn spectra.
    pub precursor: Option<Precursor>,
    /// The first scan window (lower, upper m/z), if declared.
    pub scan_window: Option<(f64, f64)>,
    /// What the file says the data are, if it says.
    pub declared_signal: Option<SignalKind>,
}

/// A decoded spectrum: metadata plus m/z (f64) and intensity (f32) arrays of equal length,
/// m/z ascending.
#[derive(Debug, Clone, PartialEq)]
pub struct Spectrum {
    /// The metadata.
    pub meta: SpectrumMeta,
    /// m/z values, ascending.
    pub mz: Vec<f64>,
    /// Intensities, one per m/z value.
    pub intensity: Vec<f32>,
}

/// Centroids in columns: m/z, apex intensity, signal-to-noise and full width at half maximum.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PeakList {
    /// Apex m/z.
    pub mz: Vec<f64>,
    /// Apex intensity.
    pub intensity: Vec<f32>,
    /// Apex intensity over the local noise level (see [`crate::noise`]).
    pub snr: Vec<f32>,
    /// Full width at half maximum in m/z units; NaN for peaks that came in as centroids.
    pub fwhm_mz: Vec<f32>,
}

impl PeakList {
    /// Number of peaks.
    pub fn len(&self) -> usize {
        self.mz.len()
    }

    /// Whether there are no peaks.
    pub fn is_empty(&self) -> bool {
        self.mz.is_empty()
    }

    /// Removes every peak.
    pub fn clear(&mut self) {
        self.mz.clear();
        self.intensity.clear();
        self.snr.clear();
        self.fwhm_mz.clear();
    }

    /// Makes room for `additional` more peaks.
    pub fn reserve(&mut self, additional: usize) {
        self.mz.reserve(additional);
        self.intensity.reserve(additional);
        self.snr.reserve(additional);
        self.fwhm_mz.reserve(additional);
    }

    /// Appends one peak.
    pub fn push(&mut self, mz: f64, intensity: f32, snr: f32, fwhm_mz: f32) {
        self.mz.push(mz);
        self.intensity.push(intensity);
        self.snr.push(snr);
        self.fwhm_mz.push(fwhm_mz);
    }
}
