//! What a spectrum and its file say about themselves: the [`SpectrumMeta`] of a spectrum as
//! mzdata or the lean parser read it, the instrument models a header names, and the file's and
//! each spectrum's full description, kept to write a centroided mzML that says where its data
//! came from.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use mzdata::prelude::*;
use mzdata::spectrum::{ArrayType, MultiLayerSpectrum, ScanPolarity, SignalContinuity};

use super::decode::{mobility_array, mobility_array_type};
use super::mzml_lean::{IonValues, LeanSpectrum, WindowValues};
use super::{Inner, InputFormat, LeanParsed, Parser, RawSpectrum, SpectrumReader};
use crate::spectrum::{
    IonMobilityArrayInfo, IonMobilityKind, Polarity, Precursor, ScanMobility, ScanMobilityKind,
    SignalKind, SpectrumMeta,
};

/// PSI-MS accessions of the instrument configuration's parameters that name no model: the
/// bare "instrument model" term, which converters (OpenMS among them) write when the model is
/// unknown, and the attributes listed beside the model.
const INSTRUMENT_MODEL_UNKNOWN: u32 = 1000031;
const INSTRUMENT_ATTRIBUTES: [u32; 2] = [
    1000529, // instrument serial number
    1000032, // customization
];

/// The instrument models named by the instrument configurations' parameters (their shared
/// parameter groups included), each once, in file order: the model terms' names, and the
/// value of a bare "instrument model" term where it has one. Serial numbers and other
/// attributes are left out, as is a bare term without a value.
pub(super) fn instrument_models<'a>(
    params: impl Iterator<Item = &'a mzdata::Param>,
) -> Vec<String> {
    let mut models: Vec<String> = Vec::new();
    for param in params {
        if param.controlled_vocabulary != Some(mzdata::params::ControlledVocabulary::MS) {
            continue;
        }
        let name = match param.accession {
            Some(code) if INSTRUMENT_ATTRIBUTES.contains(&code) => continue,
            Some(INSTRUMENT_MODEL_UNKNOWN) => param.value.to_string().trim().to_owned(),
            _ => param.name.trim().to_owned(),
        };
        if !name.is_empty() && !models.contains(&name) {
            models.push(name);
        }
    }
    models
}

/// What [`SpectrumMeta`] is made of, as mzdata's spectrum holds it.
struct MetaParts<'a> {
    native_id: &'a str,
    ms_level: u8,
    /// The first scan's start time, `None` (or NaN, see [`meta_of`]) when the file gives none.
    start_time_minutes: Option<f64>,
    polarity: ScanPolarity,
    continuity: SignalContinuity,
    /// The first precursor: its first ion (m/z, intensity, charge), its isolation window
    /// (target, lower, upper), and the native id of the spectrum it was selected from.
    precursor: Option<(Option<IonValues>, WindowValues, Option<&'a str>)>,
    /// The first scan's first window (lower, upper).
    scan_window: Option<(f32, f32)>,
    /// The ion mobility array's kind and the unit its term names.
    mobility_array: Option<(IonMobilityKind, mzdata::params::Unit)>,
    /// The first scan's ion mobility value.
    scan_mobility: Option<(f64, ScanMobilityKind)>,
}

fn build_meta(index: u32, parts: MetaParts) -> SpectrumMeta {
    let polarity = match parts.polarity {
        ScanPolarity::Positive => Polarity::Positive,
        ScanPolarity::Negative => Polarity::Negative,
        _ => Polarity::Unknown,
    };
    let declared_signal = match parts.continuity {
        SignalContinuity::Profile => Some(SignalKind::Profile),
        SignalContinuity::Centroid => Some(SignalKind::Centroid),
        _ => None,
    };
    let precursor = parts
        .precursor
        .map(|(ion, (target, lower, upper), spectrum_ref)| {
            let finite_pos = |v: f32| (v.is_finite() && v > 0.0).then_some(v as f64);
            Precursor {
                mz: ion.map(|i| i.0).unwrap_or(f64::NAN),
                charge: ion.and_then(|i| i.2),
                intensity: ion.map(|i| i.1).filter(|v| v.is_finite() && *v > 0.0),
                isolation_target_mz: finite_pos(target),
                isolation_lower_mz: finite_pos(lower),
                isolation_upper_mz: finite_pos(upper),
                spectrum_ref: spectrum_ref.map(str::to_owned),
            }
        });
    let scan_window = parts
        .scan_window
        .filter(|(lower, upper)| upper > lower)
        .map(|(lower, upper)| (lower as f64, upper as f64));
    SpectrumMeta {
        index,
        native_id: parts.native_id.to_owned(),
        ms_level: parts.ms_level,
        rt_seconds: parts
            .start_time_minutes
            .map(|minutes| minutes * 60.0)
            .filter(|seconds| seconds.is_finite()),
        polarity,
        precursor,
        scan_window,
        declared_signal,
        ion_mobility_array: parts
            .mobility_array
            .map(|(kind, unit)| IonMobilityArrayInfo {
                kind,
                unit: match unit.for_param().1 {
                    "" => kind.default_unit().map(str::to_owned),
                    name => Some(name.to_owned()),
                },
            }),
        scan_ion_mobility: parts
            .scan_mobility
            .map(|(value, kind)| ScanMobility { value, kind }),
    }
}

pub(super) fn meta_of(index: u32, s: &MultiLayerSpectrum) -> SpectrumMeta {
    let precursor = s.precursor().map(|p| {
        let window = &p.isolation_window;
        (
            p.ions.first().map(|i| (i.mz, i.intensity, i.charge)),
            (window.target, window.lower_bound, window.upper_bound),
            p.precursor_id.as_deref(),
        )
    });
    let first_scan = s.acquisition().first_scan();
    let scan_window = first_scan
        .and_then(|scan| scan.scan_windows.first())
        .map(|w| (w.lower_bound, w.upper_bound));
    // As `IonMobilityMeasure::ion_mobility`, with the term it found.
    let scan_mobility = first_scan
        .and_then(|scan| scan.ion_mobility_type())
        .and_then(|param| {
            let kind = ScanMobilityKind::ALL
                .into_iter()
                .find(|kind| Some(kind.accession()) == param.accession)?;
            Some((param.value.to_f64().ok()?, kind))
        });
    let mobility_array = s
        .raw_arrays()
        .and_then(mobility_array)
        .map(|(array, kind)| (kind, array.unit));
    build_meta(
        index,
        MetaParts {
            native_id: s.id(),
            ms_level: s.ms_level(),
            // mzdata's model has no "unknown" start time (a scan without one reads as 0):
            // where mzforge reads it through mzdata, an unknown one is set to NaN
            // (`SpectrumXml::parse`, `MgfComments`).
            start_time_minutes: first_scan.map(|scan| scan.start_time),
            polarity: s.polarity(),
            continuity: s.signal_continuity(),
            precursor,
            scan_window,
            mobility_array,
            scan_mobility,
        },
    )
}

pub(super) fn lean_meta(index: u32, s: &LeanSpectrum) -> SpectrumMeta {
    build_meta(
        index,
        MetaParts {
            native_id: &s.native_id,
            ms_level: s.ms_level,
            start_time_minutes: s.start_time_minutes,
            polarity: s.polarity,
            continuity: s.continuity,
            precursor: s
                .precursor
                .as_ref()
                .map(|p| (p.ion, p.window, s.precursor_ref.as_deref())),
            scan_window: s.scan_window,
            mobility_array: s.mobility.as_ref().map(|(_, kind, unit)| (*kind, *unit)),
            scan_mobility: s.scan_mobility,
        },
    )
}

/// The header of the input file (instruments, software, data processing), kept to write a
/// centroided mzML that describes where its data came from.
#[derive(Clone)]
pub struct SourceMetadata(pub(crate) Arc<mzdata::meta::FileMetadataConfig>);

impl std::fmt::Debug for SourceMetadata {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SourceMetadata")
    }
}

/// The full description of one input spectrum (all its cvParams, scans, precursors), kept to
/// write it back out, with the kind and unit of its ion mobility array, if it has one (to
/// write the mobility of the peaks kept under the same term).
#[derive(Clone)]
pub struct SourceDescription(
    pub(crate) Box<mzdata::spectrum::SpectrumDescription>,
    pub(crate) Option<(ArrayType, mzdata::params::Unit)>,
);

impl std::fmt::Debug for SourceDescription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("SourceDescription")
            .field(&self.0.id)
            .finish()
    }
}

impl PartialEq for SourceDescription {
    fn eq(&self, other: &Self) -> bool {
        self.0.id == other.0.id && self.0.index == other.0.index
    }
}

impl SpectrumReader {
    /// The file header, for [`CentroidMzMLWriter`](crate::CentroidMzMLWriter).
    pub fn source_metadata(&self) -> SourceMetadata {
        let mut config = match &self.parser {
            Parser::MzML(reader) | Parser::Split { header: reader, .. } => {
                mzdata::meta::FileMetadataConfig::from(reader.as_ref())
            }
            Parser::Mgf { reader, .. } => mzdata::meta::FileMetadataConfig::from(reader.as_ref()),
            Parser::Finished => mzdata::meta::FileMetadataConfig::default(),
        };
        if config.file_description().source_files.is_empty() {
            config
                .file_description_mut()
                .source_files
                .push(self.input_as_source_file());
        }
        SourceMetadata(Arc::new(config))
    }

    /// The input itself as an mzML `sourceFile`, for a header that names no source file (MGF
    /// has no header; an mzML may leave its `sourceFileList` out): its name, its directory as a
    /// URI, and its format.
    fn input_as_source_file(&self) -> mzdata::meta::SourceFile {
        use mzdata::params::ControlledVocabulary;
        let ms = ControlledVocabulary::MS;
        let text = self.path.to_string_lossy();
        let (directory, name) = match text.rsplit_once('/') {
            Some((directory, name)) => (directory.to_string(), name.to_string()),
            None => (".".to_string(), text.to_string()),
        };
        let location = if directory.contains("://") {
            directory
        } else {
            let absolute = std::fs::canonicalize(if directory.is_empty() {
                "/"
            } else {
                &directory
            })
            .map_or(directory, |p| p.to_string_lossy().into_owned());
            format!("file://{absolute}")
        };
        let (file_format, id_format) = match self.info.format {
            Some(InputFormat::Mgf) => (
                Some(ms.param(1001062, "Mascot MGF format")),
                Some(ms.param(1000774, "multiple peak list nativeID format")),
            ),
            Some(InputFormat::MzMLb) => (Some(ms.param(1002838, "mzMLb format")), None),
            Some(InputFormat::MzML) | None => (Some(ms.param(1000584, "mzML format")), None),
        };
        mzdata::meta::SourceFile {
            name,
            location,
            id: "mzforge_input".into(),
            file_format,
            id_format,
            ..Default::default()
        }
    }
}

impl RawSpectrum {
    /// The full description, for [`CentroidMzMLWriter`](crate::CentroidMzMLWriter). A
    /// spectrum the lean parser read is parsed again, by mzdata, for it (the pipeline asks
    /// for mzdata's parse up front when it keeps every description).
    pub fn source_description(&self) -> SourceDescription {
        let (description, mobility) = match &self.inner {
            Inner::Mzdata(spectrum) => (
                spectrum.description().clone(),
                spectrum
                    .raw_arrays()
                    .and_then(mobility_array)
                    .map(|(array, _)| (array.name.clone(), array.unit)),
            ),
            Inner::Lean(lean) => (
                lean.full_description(self.index),
                lean.spectrum
                    .mobility
                    .as_ref()
                    .map(|(_, kind, unit)| (mobility_array_type(*kind), *unit)),
            ),
        };
        SourceDescription(Box::new(description), mobility)
    }
}

impl LeanParsed {
    /// mzdata's description of the element. The lean parser accepts only elements mzdata
    /// parses too; should mzdata fail all the same, what the lean parser read stands in.
    fn full_description(&self, index: u32) -> mzdata::spectrum::SpectrumDescription {
        match catch_unwind(AssertUnwindSafe(|| self.xml.parse(&self.context))) {
            Ok(Ok(spectrum)) => spectrum.description,
            _ => {
                let lean = &self.spectrum;
                mzdata::spectrum::SpectrumDescription {
                    id: lean.native_id.clone(),
                    index: index as usize,
                    ms_level: lean.ms_level,
                    polarity: lean.polarity,
                    signal_continuity: lean.continuity,
                    ..Default::default()
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instrument_models_leave_out_attributes_repeats_and_the_bare_model_term() {
        use mzdata::params::ControlledVocabulary::{MS, UO};
        let params = [
            MS.param(1000448u32, "LTQ FT"),
            MS.param_val(1000529u32, "instrument serial number", "SN06061F"),
            MS.param(1000032u32, "customization"),
            // A second configuration sharing the first one's parameter group.
            MS.param(1000448u32, "LTQ FT"),
            MS.param(1000031u32, "instrument model"),
            MS.param_val(1000031u32, "instrument model", " Orbitrap Astral "),
            UO.param(31u32, "minute"),
            mzdata::Param::new_key_value("instrument", "a user's name for it"),
        ];
        assert_eq!(
            instrument_models(params.iter()),
            ["LTQ FT", "Orbitrap Astral"]
        );
        assert!(instrument_models([MS.param(1000031u32, "instrument model")].iter()).is_empty());
    }
}
