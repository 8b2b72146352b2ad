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
    /// The native id of the spectrum the precursor was selected from (mzML's `spectrumRef`),
    /// if the file gives it.
    pub spectrum_ref: Option<String>,
}

/// What a spectrum's per-point ion mobility array holds, as its CV term names it (the terms
/// mzdata reads; the accession each comes from is in brackets).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IonMobilityKind {
    /// "mean ion mobility array" (MS:1002816): no implicit unit.
    MeanIonMobility,
    /// "mean ion mobility drift time array" (MS:1002477): milliseconds by default.
    MeanDriftTime,
    /// "mean inverse reduced ion mobility array" (MS:1003006), 1/K0: volt-second per square
    /// centimeter by default. What timsTOF conversions write.
    MeanInverseReducedIonMobility,
    /// "raw ion mobility array" (MS:1003007): no implicit unit.
    RawIonMobility,
    /// "raw ion mobility drift time array" (MS:1003153): milliseconds by default.
    RawDriftTime,
    /// "raw inverse reduced ion mobility array" (MS:1003008).
    RawInverseReducedIonMobility,
    /// "deconvoluted ion mobility drift time array" (MS:1003156; mzdata 0.68 also reads
    /// MS:1003154, "deconvoluted ion mobility array", as this kind, and so does mzforge).
    DeconvolutedDriftTime,
    /// "deconvoluted inverse reduced ion mobility array" (MS:1003155).
    DeconvolutedInverseReducedIonMobility,
    /// A "non-standard data array" (MS:1000786) named `Ion Mobility`, as OpenMS writes its
    /// per-point mobility: no unit.
    OpenMsIonMobility,
}

impl IonMobilityKind {
    /// Every kind.
    pub const ALL: [IonMobilityKind; 9] = [
        IonMobilityKind::MeanIonMobility,
        IonMobilityKind::MeanDriftTime,
        IonMobilityKind::MeanInverseReducedIonMobility,
        IonMobilityKind::RawIonMobility,
        IonMobilityKind::RawDriftTime,
        IonMobilityKind::RawInverseReducedIonMobility,
        IonMobilityKind::DeconvolutedDriftTime,
        IonMobilityKind::DeconvolutedInverseReducedIonMobility,
        IonMobilityKind::OpenMsIonMobility,
    ];

    /// The CV term's name (`"Ion Mobility"` for OpenMS's non-standard array), as written in
    /// the outputs.
    pub fn as_str(self) -> &'static str {
        match self {
            IonMobilityKind::MeanIonMobility => "mean ion mobility array",
            IonMobilityKind::MeanDriftTime => "mean ion mobility drift time array",
            IonMobilityKind::MeanInverseReducedIonMobility => {
                "mean inverse reduced ion mobility array"
            }
            IonMobilityKind::RawIonMobility => "raw ion mobility array",
            IonMobilityKind::RawDriftTime => "raw ion mobility drift time array",
            IonMobilityKind::RawInverseReducedIonMobility => {
                "raw inverse reduced ion mobility array"
            }
            IonMobilityKind::DeconvolutedDriftTime => "deconvoluted ion mobility drift time array",
            IonMobilityKind::DeconvolutedInverseReducedIonMobility => {
                "deconvoluted inverse reduced ion mobility array"
            }
            IonMobilityKind::OpenMsIonMobility => "Ion Mobility",
        }
    }

    /// The unit the term implies when the file names none (as mzdata's
    /// `ArrayType::preferred_unit`), as a unit name.
    pub fn default_unit(self) -> Option<&'static str> {
        match self {
            IonMobilityKind::MeanDriftTime
            | IonMobilityKind::RawDriftTime
            | IonMobilityKind::DeconvolutedDriftTime => Some("millisecond"),
            IonMobilityKind::MeanInverseReducedIonMobility
            | IonMobilityKind::RawInverseReducedIonMobility
            | IonMobilityKind::DeconvolutedInverseReducedIonMobility => {
                Some("volt-second per square centimeter")
            }
            IonMobilityKind::MeanIonMobility
            | IonMobilityKind::RawIonMobility
            | IonMobilityKind::OpenMsIonMobility => None,
        }
    }
}

/// The per-point ion mobility array a spectrum declares: its kind and unit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IonMobilityArrayInfo {
    /// What the array holds.
    pub kind: IonMobilityKind,
    /// The unit's name (`"volt-second per square centimeter"`, `"millisecond"`): the one the
    /// array's term names, else the one its kind implies, else none.
    pub unit: Option<String>,
}

/// What a scan-level ion mobility value measures (mzdata's scan ion mobility terms, in the
/// order it looks for them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScanMobilityKind {
    /// "ion mobility drift time" (MS:1002476), milliseconds.
    DriftTime,
    /// "inverse reduced ion mobility" (MS:1002815), volt-second per square centimeter: the
    /// PASEF precursor's 1/K0 on timsTOF MS2 scans.
    InverseReducedIonMobility,
    /// "FAIMS compensation voltage" (MS:1001581), volts.
    FaimsCompensationVoltage,
    /// "SELEXION compensation voltage" (MS:1003371), volts.
    SelexionCompensationVoltage,
}

impl ScanMobilityKind {
    /// The CV term's name, as written in the outputs.
    pub fn as_str(self) -> &'static str {
        match self {
            ScanMobilityKind::DriftTime => "ion mobility drift time",
            ScanMobilityKind::InverseReducedIonMobility => "inverse reduced ion mobility",
            ScanMobilityKind::FaimsCompensationVoltage => "FAIMS compensation voltage",
            ScanMobilityKind::SelexionCompensationVoltage => "SELEXION compensation voltage",
        }
    }

    /// The term's accession number in the MS vocabulary.
    pub fn accession(self) -> u32 {
        match self {
            ScanMobilityKind::DriftTime => 1002476,
            ScanMobilityKind::InverseReducedIonMobility => 1002815,
            ScanMobilityKind::FaimsCompensationVoltage => 1001581,
            ScanMobilityKind::SelexionCompensationVoltage => 1003371,
        }
    }

    /// Every kind, in the order mzdata looks for them on a scan (the first found is used).
    pub const ALL: [ScanMobilityKind; 4] = [
        ScanMobilityKind::DriftTime,
        ScanMobilityKind::InverseReducedIonMobility,
        ScanMobilityKind::FaimsCompensationVoltage,
        ScanMobilityKind::SelexionCompensationVoltage,
    ];
}

/// An ion mobility value of the whole scan (the first scan of the spectrum).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ScanMobility {
    /// The value, in the unit of its kind.
    pub value: f64,
    /// What it measures.
    pub kind: ScanMobilityKind,
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
    /// The per-point ion mobility array's kind and unit, when the spectrum has one.
    #[serde(default)]
    pub ion_mobility_array: Option<IonMobilityArrayInfo>,
    /// The first scan's ion mobility value (a PASEF precursor's 1/K0), when it has one.
    #[serde(default)]
    pub scan_ion_mobility: Option<ScanMobility>,
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
    /// Ion mobility, one per m/z value, when the spectrum has a per-point mobility array (its
    /// kind and unit in [`SpectrumMeta::ion_mobility_array`]). Decoded losslessly to `f64`.
    pub ion_mobility: Option<Vec<f64>>,
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
    /// Ion mobility of each peak, for centroids passed through from a spectrum with a
    /// per-point mobility array; `None` otherwise, and for peaks made by centroiding a profile
    /// (which merges points along m/z, so no one point's mobility is the peak's).
    pub ion_mobility: Option<Vec<f64>>,
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
        self.ion_mobility = None;
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
