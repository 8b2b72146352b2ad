//! Writing processed spectra back out as mzML: the centroids of every spectrum (with each
//! centroid's charge when deconvolution ran), or the deconvolved peak list (one peak per
//! isotopic envelope, at its monoisotopic m/z, with its charge).

use std::collections::HashSet;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use mzdata::meta::{DataProcessing, InstrumentConfiguration, ProcessingMethod, Software};
use mzdata::params::ControlledVocabulary;
use mzdata::prelude::*;
use mzdata::spectrum::bindata::{
    BinaryArrayMap, BinaryCompressionType, BinaryDataArrayType, DataArray,
};
use mzdata::spectrum::{ArrayType, RawSpectrum, SignalContinuity};
use serde::{Deserialize, Serialize};

use crate::deconvolve::Deconvolution;
use crate::error::{Error, Result};
use crate::io::{SourceDescription, SourceMetadata};
use crate::output::WritebackFile;
use crate::spectrum::PeakList;

mod mend;
use mend::MendingWriter;

/// What the peak list of each spectrum in a written mzML holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MzmlPeaks {
    /// Every centroid (m/z, intensity) and, when the spectrum was deconvolved, a charge array
    /// (MS:1000516) giving each centroid's envelope charge, 0 for centroids in no envelope.
    #[default]
    Centroids,
    /// One peak per isotopic envelope: monoisotopic m/z, summed intensity and charge, in m/z
    /// order. Spectra that were not deconvolved (MS levels left out) keep their centroids.
    Deconvolved,
}

impl MzmlPeaks {
    /// The names accepted by [`FromStr`], in order.
    pub const NAMES: [&'static str; 2] = ["centroids", "deconvolved"];
}

impl FromStr for MzmlPeaks {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "centroids" => Ok(MzmlPeaks::Centroids),
            "deconvolved" => Ok(MzmlPeaks::Deconvolved),
            other => Err(Error::InvalidParameter {
                name: "mzml_peaks",
                message: format!("must be \"centroids\" or \"deconvolved\", not {other:?}"),
            }),
        }
    }
}

impl std::fmt::Display for MzmlPeaks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            MzmlPeaks::Centroids => "centroids",
            MzmlPeaks::Deconvolved => "deconvolved",
        })
    }
}

type Writer = mzdata::io::mzml::MzMLWriterType<MendingWriter<BufWriter<WritebackFile>>>;

/// PSI-MS accessions of the spectrum representation term and its two children.
const SPECTRUM_REPRESENTATION: u32 = 1000525;
const CENTROID_SPECTRUM: u32 = 1000127;
const PROFILE_SPECTRUM: u32 = 1000128;
/// PSI-MS accessions of the file content terms for MS1 and MSn spectra.
const MS1_SPECTRUM: u32 = 1000579;
const MSN_SPECTRUM: u32 = 1000580;

/// The software and data-processing entries mzforge adds to the header of what it writes.
const SOFTWARE_ID: &str = "mzforge";
const PROCESSING_ID: &str = "mzforge_processing";

/// Writes processed spectra as indexed mzML 1.1 (zlib-compressed arrays), carrying each
/// input spectrum's description with its data marked as centroided, and the input's header
/// with mzforge added as software and data processing.
///
/// mzML states the spectrum count before the spectra; when the count is only known at the
/// end and differs from the hint given, [`CentroidMzMLWriter::finish`] copies the file once
/// with the right count.
pub struct CentroidMzMLWriter {
    path: PathBuf,
    peaks: MzmlPeaks,
    writer: Option<Writer>,
    expected: u64,
    written: u64,
}

impl std::fmt::Debug for CentroidMzMLWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CentroidMzMLWriter")
            .field("path", &self.path)
            .field("peaks", &self.peaks)
            .finish()
    }
}

fn write_error(path: &Path, source: std::io::Error) -> Error {
    Error::Write {
        path: path.to_owned(),
        source,
    }
}

fn open_writer(path: &Path, source: &impl MSDataFileMetadata, count: u64) -> Result<Writer> {
    let file = WritebackFile::create(path).map_err(|e| write_error(path, e))?;
    let mut writer = Writer::new(MendingWriter::new(BufWriter::new(file)));
    writer.copy_metadata_from(source);
    for file in &mut writer.file_description_mut().source_files {
        file.location = as_uri(&file.location);
    }
    describe_content_as_centroided(&mut writer.file_description_mut().contents);
    if writer.instrument_configurations().is_empty() {
        // mzML requires one (the run and every scan refer to it); an MGF input names none.
        writer.instrument_configurations_mut().insert(
            0,
            InstrumentConfiguration {
                id: 0,
                params: vec![ControlledVocabulary::MS.param(1000031, "instrument model")],
                ..Default::default()
            },
        );
    }
    // A data processing with no method breaks the schema; mzdata reads none from an empty
    // `<processingMethod/>` element, leaving its data processing empty (MzMLFile_2_minimal).
    writer
        .data_processings_mut()
        .retain(|processing| !processing.methods.is_empty());
    let mut ids = make_header_ids_valid(&mut writer);
    let run_id = unique_id(&run_name(&writer), &mut ids);
    let start_time = writer.run.start_time.map(|t| t.to_rfc3339());
    let source_file = writer
        .file_description()
        .source_files
        .first()
        .map(|f| f.id.clone());
    writer
        .get_mut()
        .map_err(|e| write_error(path, e))?
        .describe_run(&run_id, start_time.as_deref(), source_file.as_deref());
    writer.set_spectrum_count(count);
    Ok(writer)
}

/// The file content of a centroided copy: every spectrum is centroided, whatever the input's
/// were ("profile spectrum" and the bare "spectrum representation" give way to "centroid
/// spectrum", stated once).
fn describe_content_as_centroided(contents: &mut Vec<mzdata::params::Param>) {
    let is_representation = |p: &mzdata::params::Param| {
        p.controlled_vocabulary == Some(ControlledVocabulary::MS)
            && matches!(
                p.accession,
                Some(SPECTRUM_REPRESENTATION | CENTROID_SPECTRUM | PROFILE_SPECTRUM)
            )
    };
    if let Some(first) = contents.iter().position(is_representation) {
        contents.retain(|p| !is_representation(p));
        let centroid = ControlledVocabulary::MS.param(CENTROID_SPECTRUM, "centroid spectrum");
        contents.insert(first.min(contents.len()), centroid);
    }
}

/// The input's run id; for an input without one (MGF), the name of its source file without
/// extension.
fn run_name(header: &impl MSDataFileMetadata) -> String {
    header
        .run_description()
        .and_then(|r| r.id.clone())
        .filter(|id| !id.is_empty())
        .or_else(|| {
            let name = &header.file_description().source_files.first()?.name;
            let stem = name.split_once('.').map_or(name.as_str(), |(stem, _)| stem);
            Some(stem.to_string()).filter(|s| !s.is_empty())
        })
        .unwrap_or_else(|| "run".into())
}

/// `name` as an `xs:ID` no other element has yet (`ids`), which it now has.
fn unique_id(name: &str, ids: &mut HashSet<String>) -> String {
    let id = mend::as_xml_id(name);
    let mut unique = id.clone();
    let mut n = 1;
    while !ids.insert(unique.clone()) {
        n += 1;
        unique = format!("{id}_{n}");
    }
    unique
}

/// Gives the header's source files, software and data processing ids that are no `xs:ID`
/// (`id:2`, `ChromaTOF HRT`) or that an earlier element has too (a data processing named
/// as its software, `MSFragger`) valid, unique ones, and updates every reference to them.
/// Returns the ids the header now holds, mzforge's own among them.
fn make_header_ids_valid(writer: &mut Writer) -> HashSet<String> {
    // mzdata's writer names instrument configurations `IC<n + 1>`; mzforge adds its software
    // and, to a header without any, its data processing.
    let configurations = writer.instrument_configurations().keys();
    let own_processing = writer
        .data_processings()
        .is_empty()
        .then_some(PROCESSING_ID);
    let mut ids: HashSet<String> = (configurations.map(|id| format!("IC{}", u64::from(*id) + 1)))
        .chain(
            std::iter::once(SOFTWARE_ID)
                .chain(own_processing)
                .map(String::from),
        )
        .collect();
    let renamed = |id: &mut String, ids: &mut HashSet<String>| {
        let new = unique_id(id, ids);
        (new != *id).then(|| (std::mem::replace(id, new.clone()), new))
    };
    let files: Vec<_> = (writer.file_description_mut().source_files.iter_mut())
        .filter_map(|f| renamed(&mut f.id, &mut ids))
        .collect();
    let softwares: Vec<_> = (writer.softwares_mut().iter_mut())
        .filter(|s| s.id != SOFTWARE_ID)
        .filter_map(|s| renamed(&mut s.id, &mut ids))
        .collect();
    let processings: Vec<_> = (writer.data_processings_mut().iter_mut())
        .filter_map(|d| renamed(&mut d.id, &mut ids))
        .collect();
    for sample in writer.samples_mut() {
        // Samples are only listed (mzdata writes no `sampleRef`).
        renamed(&mut sample.id, &mut ids);
    }
    let follow = |reference: &mut String, renames: &[(String, String)]| {
        if let Some((_, new)) = renames.iter().find(|(old, _)| old == reference) {
            *reference = new.clone();
        }
    };
    for method in writer
        .data_processings_mut()
        .iter_mut()
        .flat_map(|d| &mut d.methods)
    {
        follow(&mut method.software_reference, &softwares);
    }
    for configuration in writer.instrument_configurations_mut().values_mut() {
        follow(&mut configuration.software_reference, &softwares);
    }
    for settings in writer.scan_settings_mut().into_iter().flatten() {
        for reference in &mut settings.source_file_refs {
            follow(reference, &files);
        }
    }
    if let Some(reference) = &mut writer.run.default_source_file_id {
        follow(reference, &files);
    }
    if let Some(reference) = &mut writer.run.default_data_processing_id {
        follow(reference, &processings);
    }
    ids
}

/// A source file's location as a URI: ProteoWizard and others write Windows paths as
/// `file://Z:/data` (a host `Z` with an empty port) or with backslashes; those become
/// `file:///Z:/data`.
fn as_uri(location: &str) -> String {
    let location = location.replace('\\', "/");
    match location.strip_prefix("file://") {
        Some(path)
            if path.as_bytes().first().is_some_and(u8::is_ascii_alphabetic)
                && path.as_bytes().get(1) == Some(&b':') =>
        {
            format!("file:///{path}")
        }
        _ => location,
    }
}

/// Adds mzforge to the header: a software entry and a data processing naming what was done.
fn describe_processing(writer: &mut Writer, peaks: MzmlPeaks) {
    let ms = ControlledVocabulary::MS;
    if !writer.softwares().iter().any(|s| s.id == SOFTWARE_ID) {
        writer.softwares_mut().push(Software {
            id: SOFTWARE_ID.into(),
            version: crate::VERSION.into(),
            params: vec![ms.param_val(1000799, "custom unreleased software tool", "mzforge")],
        });
    }
    let mut params = vec![ms.param(1000035, "peak picking")];
    if peaks == MzmlPeaks::Deconvolved {
        params.push(ms.param(1000033, "deisotoping"));
        params.push(ms.param(1000034, "charge deconvolution"));
    }
    let order = writer
        .data_processings()
        .iter()
        .flat_map(|dp| dp.methods.iter().map(|m| m.order))
        .max()
        .map_or(0, |o| o.saturating_add(1));
    let method = ProcessingMethod {
        order,
        software_reference: SOFTWARE_ID.into(),
        params,
    };
    // The spectra refer to the first data processing (mzdata's writer makes it the default):
    // mzforge's step is added to its methods, as ProteoWizard adds its own.
    match writer.data_processings_mut().first_mut() {
        Some(processing) => processing.methods.push(method),
        None => writer.data_processings_mut().push(DataProcessing {
            id: PROCESSING_ID.into(),
            methods: vec![method],
        }),
    }
}

/// Sets how the next spectrum's arrays are encoded: zlib, except that empty arrays are written
/// uncompressed (an empty `<binary/>`, as ProteoWizard and OpenMS write them): OpenMS cannot
/// read a zlib stream of no bytes ("Decompression error") and stops loading the file.
fn encode_next_spectrum_as(writer: &mut Writer, empty: bool) {
    writer.set_default_compression_method(if empty {
        BinaryCompressionType::NoCompression
    } else {
        BinaryCompressionType::Zlib
    });
}

/// A decoded array from values already in the machine's byte order, as mzdata expects.
fn array(name: ArrayType, dtype: BinaryDataArrayType, bytes: Vec<u8>) -> DataArray {
    DataArray::wrap(&name, dtype, bytes)
}

/// The binary arrays of one spectrum as `peaks` asks.
fn peak_arrays(
    peaks: MzmlPeaks,
    centroids: &PeakList,
    deconvolution: Option<&Deconvolution>,
    mobility_array: Option<&(ArrayType, mzdata::params::Unit)>,
) -> BinaryArrayMap {
    // The peaks' ion mobility, written under the input's term and unit, when the peak list
    // keeps it (centroids passed through from a spectrum with a mobility array).
    let mut mobility = None;
    let (mz, intensity, charge): (Vec<f64>, Vec<f32>, Option<Vec<i32>>) =
        match (peaks, deconvolution) {
            (MzmlPeaks::Deconvolved, Some(d)) => {
                let mut envelopes: Vec<_> = d.envelopes.iter().collect();
                envelopes.sort_by(|a, b| a.mz.total_cmp(&b.mz));
                (
                    envelopes.iter().map(|e| e.mz).collect(),
                    envelopes.iter().map(|e| e.intensity).collect(),
                    Some(envelopes.iter().map(|e| e.charge).collect()),
                )
            }
            (_, d) => {
                mobility = centroids.ion_mobility.as_ref().zip(mobility_array);
                (
                    centroids.mz.clone(),
                    centroids.intensity.clone(),
                    d.map(|d| {
                        (0..centroids.len())
                            .map(|i| d.peak_charge(i).unwrap_or(0))
                            .collect()
                    }),
                )
            }
        };
    let mut arrays = BinaryArrayMap::new();
    arrays.add(array(
        ArrayType::MZArray,
        BinaryDataArrayType::Float64,
        mz.iter().flat_map(|v| v.to_ne_bytes()).collect(),
    ));
    arrays.add(array(
        ArrayType::IntensityArray,
        BinaryDataArrayType::Float32,
        intensity.iter().flat_map(|v| v.to_ne_bytes()).collect(),
    ));
    if let Some(charge) = charge {
        arrays.add(array(
            ArrayType::ChargeArray,
            BinaryDataArrayType::Int32,
            charge.iter().flat_map(|v| v.to_ne_bytes()).collect(),
        ));
    }
    if let Some((values, (name, unit))) = mobility {
        let mut array = array(
            name.clone(),
            BinaryDataArrayType::Float64,
            values.iter().flat_map(|v| v.to_ne_bytes()).collect(),
        );
        array.unit = *unit;
        arrays.add(array);
    }
    arrays
}

/// Whether `id` has the form mzML requires of a spectrum id (a nativeID): `key=value` pairs
/// separated by single spaces (`\S+=\S+( \S+=\S+)*`).
fn is_native_id(id: &str) -> bool {
    !id.is_empty()
        && id.split(' ').all(|pair| {
            !pair.chars().any(char::is_whitespace)
                && pair
                    .match_indices('=')
                    .any(|(at, _)| at > 0 && at + 1 < pair.len())
        })
}

/// Closes the document mzdata's writer has written into `path`, then ends it with the index
/// and checksum of its mended bytes.
fn close(mut writer: Writer, path: &Path) -> Result<()> {
    writer.close().map_err(|e| write_error(path, e.into()))?;
    writer
        .get_mut()
        .and_then(MendingWriter::finish)
        .map_err(|e| write_error(path, e))
}

/// Whether a spectrum's arrays hold no point.
fn has_no_points(arrays: &BinaryArrayMap) -> bool {
    arrays
        .get(&ArrayType::MZArray)
        .is_none_or(|mz| mz.data_len().is_ok_and(|n| n == 0))
}

impl CentroidMzMLWriter {
    /// Starts `path`, expecting about `expected_count` spectra, each written as `peaks` says.
    pub fn create(
        path: &Path,
        source: &SourceMetadata,
        expected_count: u64,
        peaks: MzmlPeaks,
    ) -> Result<Self> {
        let mut writer = open_writer(path, source.0.as_ref(), expected_count)?;
        describe_processing(&mut writer, peaks);
        Ok(CentroidMzMLWriter {
            path: path.to_owned(),
            peaks,
            writer: Some(writer),
            expected: expected_count,
            written: 0,
        })
    }

    /// Starts `path` for the spectra `reader` gives (its header, its declared count), each
    /// written as `peaks` says, of the MS `levels` kept (all if empty).
    pub fn for_reader(
        path: &Path,
        reader: &crate::SpectrumReader,
        peaks: MzmlPeaks,
        levels: &[u8],
    ) -> Result<Self> {
        let expected = reader.info().declared_spectrum_count.unwrap_or(0);
        let writer = Self::create(path, &reader.source_metadata(), expected, peaks)?;
        Ok(writer.for_ms_levels(levels))
    }

    /// States in the file content only the spectra of `levels` (the MS levels kept, all if
    /// empty): "MS1 spectrum" and "MSn spectrum" go when no spectrum of theirs is written.
    fn for_ms_levels(mut self, levels: &[u8]) -> Self {
        if let (Some(writer), false) = (self.writer.as_mut(), levels.is_empty()) {
            let ms1 = levels.contains(&1);
            let msn = levels.iter().any(|&level| level >= 2);
            writer.file_description_mut().contents.retain(|p| {
                p.controlled_vocabulary != Some(ControlledVocabulary::MS)
                    || match p.accession {
                        Some(MS1_SPECTRUM) => ms1,
                        Some(MSN_SPECTRUM) => msn,
                        _ => true,
                    }
            });
        }
        self
    }

    /// Appends one spectrum: its centroids and, if it was deconvolved, its deconvolution.
    pub fn write(
        &mut self,
        description: &SourceDescription,
        centroids: &PeakList,
        deconvolution: Option<&Deconvolution>,
    ) -> Result<()> {
        let mut desc = (*description.0).clone();
        desc.signal_continuity = SignalContinuity::Centroid;
        // The writer states the continuity from `signal_continuity`; a representation term
        // kept from the input would contradict it (OpenSwath's inputs carry the bare
        // "spectrum representation", which OpenMS then reads as an unknown type).
        desc.params.retain(|p| {
            !matches!(
                p.accession,
                Some(SPECTRUM_REPRESENTATION | CENTROID_SPECTRUM | PROFILE_SPECTRUM)
            ) || p.controlled_vocabulary != Some(ControlledVocabulary::MS)
        });
        desc.index = self.written as usize;
        if !is_native_id(&desc.id) {
            // An MGF title (or any id that is no nativeID): written as ProteoWizard does, with
            // the position as id and the title kept as the spectrum's title.
            let title = std::mem::replace(&mut desc.id, format!("index={}", self.written));
            // Before any userParam: mzML lists a spectrum's cvParams first.
            let title = ControlledVocabulary::MS.param_val(1000796, "spectrum title", title);
            desc.params.insert(0, title);
        }
        let arrays = peak_arrays(self.peaks, centroids, deconvolution, description.1.as_ref());
        let empty = has_no_points(&arrays);
        let spectrum = RawSpectrum::new(desc, arrays);
        let writer = self.writer.as_mut().ok_or_else(|| {
            write_error(&self.path, std::io::Error::other("writer already finished"))
        })?;
        encode_next_spectrum_as(writer, empty);
        writer
            .write(&spectrum)
            .map_err(|e| write_error(&self.path, e))?;
        self.written += 1;
        Ok(())
    }

    /// Closes the document (index and checksum included).
    pub fn finish(mut self) -> Result<()> {
        if let Some(writer) = self.writer.take() {
            close(writer, &self.path)?;
        }
        if self.written == self.expected {
            return Ok(());
        }
        // Copy once with the true count: the bytes pass through a mending writer that states
        // it and writes the index of the copy.
        let draft = self.path.with_extension("draft.mzML");
        std::fs::rename(&self.path, &draft).map_err(|e| write_error(&self.path, e))?;
        let file = WritebackFile::create(&self.path).map_err(|e| write_error(&self.path, e))?;
        let mut copy = MendingWriter::new(BufWriter::new(file));
        copy.count_spectra_as(self.written);
        let mut reader = std::fs::File::open(&draft).map_err(|e| write_error(&draft, e))?;
        std::io::copy(&mut reader, &mut copy)
            .and_then(|_| copy.finish())
            .map_err(|e| write_error(&self.path, e))?;
        std::fs::remove_file(&draft).map_err(|e| write_error(&draft, e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_content_of_a_centroided_copy_is_centroid_spectra() {
        let ms = ControlledVocabulary::MS;
        let mut contents = vec![
            ms.param(1000580, "MSn spectrum"),
            ms.param(PROFILE_SPECTRUM, "profile spectrum"),
            ms.param(CENTROID_SPECTRUM, "centroid spectrum"),
            ms.param(1000579, "MS1 spectrum"),
        ];
        describe_content_as_centroided(&mut contents);
        let names: Vec<&str> = contents.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["MSn spectrum", "centroid spectrum", "MS1 spectrum"]);

        let mut without = vec![ms.param(1000579, "MS1 spectrum")];
        describe_content_as_centroided(&mut without);
        assert_eq!(without.len(), 1, "no representation stated, none added");
    }

    #[test]
    fn windows_paths_become_file_uris() {
        for (location, uri) in [
            ("file://Z:/html/run", "file:///Z:/html/run"),
            (
                "file://E:\\Data\\Bruker\\run.d",
                "file:///E:/Data/Bruker/run.d",
            ),
            (
                "file:///R:/Nic/Chimera Validation",
                "file:///R:/Nic/Chimera Validation",
            ),
            ("file:///data/runs", "file:///data/runs"),
            ("s3://bucket/runs", "s3://bucket/runs"),
            ("file://host/share", "file://host/share"),
        ] {
            assert_eq!(as_uri(location), uri);
        }
    }

    #[test]
    fn native_ids_are_key_value_pairs_separated_by_single_spaces() {
        for id in [
            "scan=1",
            "controllerType=0 controllerNumber=1 scan=42",
            "index=0",
            "a=b=c",
            "sample=1 period=1 cycle=2 experiment=1",
            "é=ü",
        ] {
            assert!(is_native_id(id), "{id:?}");
        }
        for id in [
            "",
            "small.3.3.",
            "=1",
            "scan=",
            "scan=1  index=2",
            "scan=1 ",
            "scan=1\tindex=2",
            "title with spaces",
            "é",
        ] {
            assert!(!is_native_id(id), "{id:?}");
        }
    }
}
