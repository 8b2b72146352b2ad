//! The result tables: Arrow schemas defined once, record batches built from processed spectra,
//! and Parquet writers over any `Write`, plus atomic result directories on local disk.
//!
//! `spectra`: one row per spectrum. `peaks`: one row per centroid. `features`: one row per
//! isotopic envelope (`envelope_id` numbers them through the run, and `peaks.envelope_id`
//! points at them). The Parquet files are
//! zstd-compressed and carry the parameters as JSON in their key-value metadata
//! (`mzforge.params`) with the engine version (`mzforge.version`).

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;

use arrow::array::{
    ArrayRef, Float32Array, Float32Builder, Float64Array, Float64Builder, Int32Array, Int32Builder,
    RecordBatch, StringBuilder, UInt32Array, UInt32Builder, UInt8Builder,
};
use arrow::buffer::{BooleanBuffer, NullBuffer};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::errors::ParquetError;
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use parquet::schema::types::ColumnPath;

use serde::Serialize;

use crate::digest::InputDigest;
use crate::error::{Error, Result};
use crate::pipeline::{PipelineParams, ProcessedSpectrum, RunSummary};

/// File name of the spectrum table inside a result directory.
pub const SPECTRA_FILE: &str = "spectra.parquet";
/// File name of the peak table inside a result directory.
pub const PEAKS_FILE: &str = "peaks.parquet";
/// File name of the envelope table inside a result directory.
pub const FEATURES_FILE: &str = "features.parquet";
/// File name of the run record inside a result directory.
pub const RUN_FILE: &str = "run.json";

/// The name of an input's result directory: its file name without `.gz`/`.bz2` and format
/// extension (`run1.mzML.gz` → `run1`, `run2.mzMLb` → `run2`; `input` if nothing is left).
pub fn input_stem(file_name: &str) -> String {
    let mut name = file_name.to_string();
    for suffix in [".gz", ".bz2"] {
        if name.to_ascii_lowercase().ends_with(suffix) {
            name.truncate(name.len() - suffix.len());
        }
    }
    for suffix in [".mzml", ".mzmlb", ".mgf", ".xml"] {
        if name.to_ascii_lowercase().ends_with(suffix) {
            name.truncate(name.len() - suffix.len());
            break;
        }
    }
    if name.is_empty() {
        "input".into()
    } else {
        name
    }
}

/// The result directory name of each input of one analysis, given their file names in order:
/// each its [`input_stem`], except that an input whose stem an earlier input already has
/// (ignoring case: results are also copied to case-insensitive file systems) gets the stem with
/// the smallest suffix `-2`, `-3`, ... that no other input is named. So a plate per folder, a
/// well per file (`plate1/A1.mzML`, `plate2/A1.mzML`) gives `A1` and `A1-2`, and an input
/// really named `A1-2.mzML` keeps its own name whatever its position.
pub fn result_dir_names<S: AsRef<str>>(file_names: &[S]) -> Vec<String> {
    let stems: Vec<String> = file_names.iter().map(|f| input_stem(f.as_ref())).collect();
    let mut taken: std::collections::HashSet<String> =
        stems.iter().map(|s| s.to_lowercase()).collect();
    let mut first_seen = std::collections::HashSet::new();
    stems
        .into_iter()
        .map(|stem| {
            if first_seen.insert(stem.to_lowercase()) {
                return stem;
            }
            let name = (2..)
                .map(|n| format!("{stem}-{n}"))
                .find(|name| !taken.contains(&name.to_lowercase()))
                .expect("an unbounded range has a free name");
            taken.insert(name.to_lowercase());
            name
        })
        .collect()
}

/// [`input_stem`] of the file name of `path` (`a/b/run1.mzML.gz` → `run1`).
pub fn input_stem_of_path(path: &Path) -> String {
    input_stem(
        &path
            .file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default(),
    )
}

/// A result directory's `run.json`: the mzforge version, the input's identity (`I`: path,
/// size and SHA-256, and for an object its ETag), the full parameters, the files written and
/// the run's summary. One definition for `mzforge run`, the cloud runner and the Python
/// `process(out=...)`, so their records cannot drift apart.
#[derive(Debug, Serialize)]
pub struct RunRecord<'a, I> {
    mzforge_version: &'static str,
    input: I,
    params: &'a PipelineParams,
    outputs: Vec<&'static str>,
    summary: &'a RunSummary,
}

impl<'a, I: Serialize> RunRecord<'a, I> {
    /// The record of a run of this engine version.
    pub fn new(
        input: I,
        params: &'a PipelineParams,
        outputs: Vec<&'static str>,
        summary: &'a RunSummary,
    ) -> Self {
        RunRecord {
            mzforge_version: crate::VERSION,
            input,
            params,
            outputs,
            summary,
        }
    }

    /// The record as `run.json`'s bytes (indented JSON).
    pub fn to_json(&self) -> serde_json::Result<Vec<u8>> {
        serde_json::to_vec_pretty(self)
    }
}

/// A local input's identity in `run.json`.
#[derive(Debug, Clone, Serialize)]
pub struct InputRecord {
    /// The path as given.
    pub path: String,
    /// Size in bytes.
    pub bytes: u64,
    /// SHA-256 of the content, hexadecimal.
    pub sha256: String,
}

impl InputRecord {
    /// The identity of the file at `path` from the digest taken while it was read
    /// ([`crate::SpectrumReader::open_digested`]); what reading left unread is hashed from
    /// the file.
    pub fn of(path: &Path, digest: &InputDigest) -> std::io::Result<InputRecord> {
        let (bytes, sha256) = digest.finish_or_hash_file(path)?;
        Ok(InputRecord {
            path: path.display().to_string(),
            bytes,
            sha256,
        })
    }
}

pub use crate::digest::file_digest;

/// Schema of `spectra.parquet`.
pub fn spectra_schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            Arc::new(Schema::new(vec![
                Field::new("spectrum_index", DataType::UInt32, false),
                Field::new("native_id", DataType::Utf8, false),
                Field::new("ms_level", DataType::UInt8, false),
                Field::new("rt_seconds", DataType::Float64, true),
                Field::new("polarity", DataType::Utf8, false),
                Field::new("signal", DataType::Utf8, false),
                Field::new("signal_declared", DataType::Utf8, true),
                Field::new("signal_detected", DataType::Utf8, true),
                Field::new("n_points", DataType::UInt32, false),
                Field::new("n_peaks", DataType::UInt32, false),
                Field::new("tic", DataType::Float64, false),
                Field::new("base_peak_mz", DataType::Float64, true),
                Field::new("base_peak_intensity", DataType::Float32, true),
                Field::new("precursor_mz", DataType::Float64, true),
                Field::new("precursor_charge", DataType::Int32, true),
                Field::new("precursor_intensity", DataType::Float32, true),
                Field::new("isolation_lower_mz", DataType::Float64, true),
                Field::new("isolation_upper_mz", DataType::Float64, true),
                Field::new("scan_window_lower_mz", DataType::Float64, true),
                Field::new("scan_window_upper_mz", DataType::Float64, true),
                Field::new("n_features", DataType::UInt32, false),
                Field::new("precursor_charge_instrument", DataType::Int32, true),
                Field::new("precursor_charge_mzforge", DataType::Int32, true),
                Field::new("precursor_mono_mz_mzforge", DataType::Float64, true),
                Field::new("ion_mobility_kind", DataType::Utf8, true),
                Field::new("ion_mobility_unit", DataType::Utf8, true),
                Field::new("scan_ion_mobility", DataType::Float64, true),
                Field::new("scan_ion_mobility_kind", DataType::Utf8, true),
                Field::new("precursor_spectrum_ref", DataType::Utf8, true),
            ]))
        })
        .clone()
}

/// Schema of `peaks.parquet`.
pub fn peaks_schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            Arc::new(Schema::new(vec![
                Field::new("spectrum_index", DataType::UInt32, false),
                Field::new("mz", DataType::Float64, false),
                Field::new("intensity", DataType::Float32, false),
                Field::new("snr", DataType::Float32, false),
                Field::new("fwhm", DataType::Float32, true),
                Field::new("charge", DataType::Int32, true),
                Field::new("envelope_id", DataType::UInt32, true),
                // f64 as decoded: the files store mobility as 64-bit floats (the timsTOF
                // conversions do), and the table gives the file's values unrounded.
                Field::new("ion_mobility", DataType::Float64, true),
            ]))
        })
        .clone()
}

/// Schema of `features.parquet`: one row per isotopic envelope.
pub fn features_schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            Arc::new(Schema::new(vec![
                Field::new("spectrum_index", DataType::UInt32, false),
                Field::new("envelope_id", DataType::UInt32, false),
                Field::new("neutral_mass", DataType::Float64, false),
                Field::new("mz", DataType::Float64, false),
                Field::new("charge", DataType::Int32, false),
                Field::new("intensity", DataType::Float32, false),
                Field::new("score", DataType::Float32, false),
                Field::new("n_peaks", DataType::UInt32, false),
                Field::new("most_abundant_mass", DataType::Float64, false),
                Field::new("average_mass", DataType::Float64, false),
            ]))
        })
        .clone()
}

/// One `features` batch.
pub fn features_batch(spectra: &[ProcessedSpectrum]) -> Result<RecordBatch> {
    let n: usize = spectra
        .iter()
        .map(|s| s.deconvolution.as_ref().map_or(0, |d| d.envelopes.len()))
        .sum();
    let mut index = UInt32Builder::with_capacity(n);
    let mut id = UInt32Builder::with_capacity(n);
    let mut mass = Float64Builder::with_capacity(n);
    let mut mz = Float64Builder::with_capacity(n);
    let mut charge = Int32Builder::with_capacity(n);
    let mut intensity = Float32Builder::with_capacity(n);
    let mut score = Float32Builder::with_capacity(n);
    let mut n_peaks = UInt32Builder::with_capacity(n);
    let mut top = Float64Builder::with_capacity(n);
    let mut average = Float64Builder::with_capacity(n);
    for s in spectra {
        let Some(d) = &s.deconvolution else { continue };
        for (k, e) in d.envelopes.iter().enumerate() {
            index.append_value(s.meta.index);
            id.append_value(s.first_envelope_id + k as u32);
            mass.append_value(e.neutral_mass);
            mz.append_value(e.mz);
            charge.append_value(e.charge);
            intensity.append_value(e.intensity);
            score.append_value(e.score);
            n_peaks.append_value(e.n_peaks);
            top.append_value(e.most_abundant_mass);
            average.append_value(e.average_mass);
        }
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(index.finish()),
        Arc::new(id.finish()),
        Arc::new(mass.finish()),
        Arc::new(mz.finish()),
        Arc::new(charge.finish()),
        Arc::new(intensity.finish()),
        Arc::new(score.finish()),
        Arc::new(n_peaks.finish()),
        Arc::new(top.finish()),
        Arc::new(average.finish()),
    ];
    Ok(RecordBatch::try_new(features_schema(), columns)?)
}

/// One `spectra` batch.
pub fn spectra_batch(spectra: &[ProcessedSpectrum]) -> Result<RecordBatch> {
    let n = spectra.len();
    let mut index = UInt32Builder::with_capacity(n);
    let mut native_id = StringBuilder::with_capacity(n, n * 24);
    let mut ms_level = UInt8Builder::with_capacity(n);
    let mut rt = Float64Builder::with_capacity(n);
    let mut polarity = StringBuilder::with_capacity(n, n * 8);
    let mut signal = StringBuilder::with_capacity(n, n * 8);
    let mut declared = StringBuilder::with_capacity(n, n * 8);
    let mut detected = StringBuilder::with_capacity(n, n * 8);
    let mut n_points = UInt32Builder::with_capacity(n);
    let mut n_peaks = UInt32Builder::with_capacity(n);
    let mut tic = Float64Builder::with_capacity(n);
    let mut bp_mz = Float64Builder::with_capacity(n);
    let mut bp_int = Float32Builder::with_capacity(n);
    let mut prec_mz = Float64Builder::with_capacity(n);
    let mut prec_z = Int32Builder::with_capacity(n);
    let mut prec_int = Float32Builder::with_capacity(n);
    let mut iso_lo = Float64Builder::with_capacity(n);
    let mut iso_hi = Float64Builder::with_capacity(n);
    let mut win_lo = Float64Builder::with_capacity(n);
    let mut win_hi = Float64Builder::with_capacity(n);
    let mut n_features = UInt32Builder::with_capacity(n);
    let mut z_instrument = Int32Builder::with_capacity(n);
    let mut z_ours = Int32Builder::with_capacity(n);
    let mut mono_ours = Float64Builder::with_capacity(n);
    let mut mobility_kind = StringBuilder::new();
    let mut mobility_unit = StringBuilder::new();
    let mut scan_mobility = Float64Builder::with_capacity(n);
    let mut scan_mobility_kind = StringBuilder::new();
    let mut precursor_ref = StringBuilder::new();
    for s in spectra {
        let m = &s.meta;
        index.append_value(m.index);
        native_id.append_value(&m.native_id);
        ms_level.append_value(m.ms_level);
        rt.append_option(m.rt_seconds);
        polarity.append_value(m.polarity.as_str());
        signal.append_value(s.signal.as_str());
        declared.append_option(m.declared_signal.map(|k| k.as_str()));
        detected.append_option(s.detected_signal.map(|k| k.as_str()));
        n_points.append_value(s.n_points);
        n_peaks.append_value(s.peaks.len() as u32);
        tic.append_value(s.tic);
        let base = s.base_peak();
        bp_mz.append_option(base.map(|b| b.0));
        bp_int.append_option(base.map(|b| b.1));
        let p = m.precursor.as_ref();
        prec_mz.append_option(p.map(|p| p.mz).filter(|v| v.is_finite()));
        prec_z.append_option(p.and_then(|p| p.charge));
        prec_int.append_option(p.and_then(|p| p.intensity));
        iso_lo.append_option(p.and_then(|p| p.isolation_lower_mz));
        iso_hi.append_option(p.and_then(|p| p.isolation_upper_mz));
        win_lo.append_option(m.scan_window.map(|w| w.0));
        win_hi.append_option(m.scan_window.map(|w| w.1));
        n_features.append_value(
            s.deconvolution
                .as_ref()
                .map_or(0, |d| d.envelopes.len() as u32),
        );
        z_instrument.append_option(p.and_then(|p| p.charge));
        z_ours.append_option(s.precursor_check.map(|c| c.charge));
        mono_ours.append_option(s.precursor_check.map(|c| c.mono_mz));
        let array = m.ion_mobility_array.as_ref();
        mobility_kind.append_option(array.map(|a| a.kind.as_str()));
        mobility_unit.append_option(array.and_then(|a| a.unit.as_deref()));
        scan_mobility.append_option(m.scan_ion_mobility.map(|v| v.value));
        scan_mobility_kind.append_option(m.scan_ion_mobility.map(|v| v.kind.as_str()));
        precursor_ref.append_option(p.and_then(|p| p.spectrum_ref.as_deref()));
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(index.finish()),
        Arc::new(native_id.finish()),
        Arc::new(ms_level.finish()),
        Arc::new(rt.finish()),
        Arc::new(polarity.finish()),
        Arc::new(signal.finish()),
        Arc::new(declared.finish()),
        Arc::new(detected.finish()),
        Arc::new(n_points.finish()),
        Arc::new(n_peaks.finish()),
        Arc::new(tic.finish()),
        Arc::new(bp_mz.finish()),
        Arc::new(bp_int.finish()),
        Arc::new(prec_mz.finish()),
        Arc::new(prec_z.finish()),
        Arc::new(prec_int.finish()),
        Arc::new(iso_lo.finish()),
        Arc::new(iso_hi.finish()),
        Arc::new(win_lo.finish()),
        Arc::new(win_hi.finish()),
        Arc::new(n_features.finish()),
        Arc::new(z_instrument.finish()),
        Arc::new(z_ours.finish()),
        Arc::new(mono_ours.finish()),
        Arc::new(mobility_kind.finish()),
        Arc::new(mobility_unit.finish()),
        Arc::new(scan_mobility.finish()),
        Arc::new(scan_mobility_kind.finish()),
        Arc::new(precursor_ref.finish()),
    ];
    Ok(RecordBatch::try_new(spectra_schema(), columns)?)
}

/// One `peaks` batch.
pub fn peaks_batch(spectra: &[ProcessedSpectrum]) -> Result<RecordBatch> {
    let n: usize = spectra.iter().map(|s| s.peaks.len()).sum();
    let mut index = UInt32Builder::with_capacity(n);
    let mut mz = Float64Builder::with_capacity(n);
    let mut intensity = Float32Builder::with_capacity(n);
    let mut snr = Float32Builder::with_capacity(n);
    // Whole columns first, their validity after (NaN widths and peaks in no envelope are
    // null): far cheaper than appending one optional value at a time.
    let mut fwhm: Vec<f32> = Vec::with_capacity(n);
    let mut charge: Vec<i32> = Vec::with_capacity(n);
    let mut envelope: Vec<u32> = Vec::with_capacity(n);
    let mut in_envelope: Vec<bool> = Vec::with_capacity(n);
    // Built only when some spectrum of the batch has mobility: all null otherwise.
    let with_mobility = spectra.iter().any(|s| s.peaks.ion_mobility.is_some());
    let mut mobility: Vec<f64> = Vec::with_capacity(if with_mobility { n } else { 0 });
    let mut has_mobility: Vec<bool> = Vec::with_capacity(if with_mobility { n } else { 0 });
    for s in spectra {
        let p = &s.peaks;
        if with_mobility {
            match &p.ion_mobility {
                Some(values) if values.len() == p.len() => {
                    mobility.extend_from_slice(values);
                    has_mobility.resize(has_mobility.len() + p.len(), true);
                }
                _ => {
                    mobility.resize(mobility.len() + p.len(), 0.0);
                    has_mobility.resize(has_mobility.len() + p.len(), false);
                }
            }
        }
        match &s.deconvolution {
            Some(d) => {
                for k in 0..p.len() {
                    let e = d.peak_envelope.get(k).copied().flatten();
                    charge.push(e.map_or(0, |e| d.envelopes[e as usize].charge));
                    envelope.push(e.map_or(0, |e| s.first_envelope_id + e));
                    in_envelope.push(e.is_some());
                }
            }
            None => {
                charge.resize(charge.len() + p.len(), 0);
                envelope.resize(envelope.len() + p.len(), 0);
                in_envelope.resize(in_envelope.len() + p.len(), false);
            }
        }
        index.append_value_n(s.meta.index, p.len());
        mz.append_slice(&p.mz);
        intensity.append_slice(&p.intensity);
        snr.append_slice(&p.snr);
        fwhm.extend_from_slice(&p.fwhm_mz);
    }
    let fwhm_valid = nulls(BooleanBuffer::collect_bool(n, |i| !fwhm[i].is_nan()));
    let in_envelope = nulls(BooleanBuffer::from(in_envelope));
    let columns: Vec<ArrayRef> = vec![
        Arc::new(index.finish()),
        Arc::new(mz.finish()),
        Arc::new(intensity.finish()),
        Arc::new(snr.finish()),
        Arc::new(Float32Array::new(fwhm.into(), fwhm_valid)),
        Arc::new(Int32Array::new(charge.into(), in_envelope.clone())),
        Arc::new(UInt32Array::new(envelope.into(), in_envelope)),
        Arc::new(if with_mobility {
            Float64Array::new(mobility.into(), nulls(BooleanBuffer::from(has_mobility)))
        } else {
            Float64Array::new_null(n)
        }),
    ];
    Ok(RecordBatch::try_new(peaks_schema(), columns)?)
}

/// A validity bitmap as a column's nulls: none when every value is valid.
fn nulls(valid: BooleanBuffer) -> Option<NullBuffer> {
    Some(NullBuffer::new(valid)).filter(|nulls| nulls.null_count() > 0)
}

/// Integer columns whose values never decrease down a table: stored as deltas
/// (`DELTA_BINARY_PACKED`, no dictionary), which makes `features.parquet` about 10% smaller
/// than a dictionary of nearly distinct ids.
const INCREASING_ID_COLUMNS: [&str; 2] = ["spectrum_index", "envelope_id"];

/// The metadata every result table carries, in its Parquet key-value entries and on its Arrow
/// schema (which is where pyarrow looks): the parameters (`mzforge.params`, as JSON) and the
/// engine version (`mzforge.version`). The Python wheel's in-memory tables carry the same. In
/// this order, so that a file's bytes are the same from one run to the next.
pub fn table_metadata(params_json: &str) -> [(String, String); 2] {
    [
        ("mzforge.params".to_string(), params_json.to_string()),
        ("mzforge.version".to_string(), crate::VERSION.to_string()),
    ]
}

/// The Parquet settings of one table: zstd level 1 (on `BSA1.mzML`'s tables 0.5% larger than
/// level 3, and the whole `mzforge run --no-deconvolve` 7% faster), bounded row groups, the
/// parameters in the metadata, and every floating-point column stored `BYTE_STREAM_SPLIT`
/// without a dictionary.
/// Measured values (m/z, intensities, signal-to-noise, widths) are almost all distinct, so the
/// default dictionary grows to the page's size before falling back, which on `BSA1.mzML`'s
/// 479k peaks made `peaks.parquet` 9.3 MB in 70 ms; split into byte planes, zstd finds their
/// shared exponents and leading bytes: 5.8 MB in 23 ms (benches/README.md, 2026-12-05).
fn writer_properties(schema: &Schema, params_json: &str) -> WriterProperties {
    let key_values = table_metadata(params_json)
        .into_iter()
        .map(|(key, value)| KeyValue::new(key, value))
        .collect();
    let mut builder = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(1).unwrap_or_default()))
        .set_max_row_group_row_count(Some(256 * 1024))
        .set_key_value_metadata(Some(key_values));
    for field in schema.fields() {
        let encoding = if field.data_type().is_floating() {
            Encoding::BYTE_STREAM_SPLIT
        } else if INCREASING_ID_COLUMNS.contains(&field.name().as_str()) {
            Encoding::DELTA_BINARY_PACKED
        } else {
            continue;
        };
        let column = ColumnPath::from(field.name().as_str());
        builder = builder
            .set_column_dictionary_enabled(column.clone(), false)
            .set_column_encoding(column, encoding);
    }
    builder.build()
}

/// A Parquet failure while writing `table`: the sink's own I/O errors (a full disk, a lost
/// upload connection) are failures to write that file, which may be worth retrying; the rest
/// are the encoder's.
fn table_error(table: &'static str) -> impl Fn(ParquetError) -> Error {
    move |e| match e {
        ParquetError::External(source) => match source.downcast::<std::io::Error>() {
            Ok(io) => Error::Write {
                path: table.into(),
                source: *io,
            },
            Err(other) => Error::Parquet(ParquetError::External(other)),
        },
        other => Error::Parquet(other),
    }
}

/// Most memory one table's row group in progress may hold (buffered values, dictionaries,
/// encoded pages) before it is written out, whatever its row count: what keeps a run's memory
/// flat as the input grows (a row group of 256k `spectra` rows, with their native ids, would
/// otherwise hold tens of megabytes).
const ROW_GROUP_MEMORY_BYTES: usize = 4 << 20;

/// Writes `batch` and flushes the row group once it holds [`ROW_GROUP_MEMORY_BYTES`].
fn write_bounded<W: Write + Send>(
    writer: &mut ArrowWriter<W>,
    batch: &RecordBatch,
    table: &'static str,
) -> Result<()> {
    writer.write(batch).map_err(table_error(table))?;
    if writer.memory_size() > ROW_GROUP_MEMORY_BYTES {
        writer.flush().map_err(table_error(table))?;
    }
    Ok(())
}

/// What a table's writer thread is sent.
enum TableMessage {
    Batch(RecordBatch),
    /// Write the footer and hand the sink back.
    Finish,
}

/// Batches a table's writer thread may hold queued: enough to ride out one slow batch.
const QUEUED_TABLE_BATCHES: usize = 2;

/// One table's Parquet encoding on a thread of its own, so that encoding (zstd, most of a
/// run's output cost) overlaps the caller's next batches instead of holding up the run.
struct TableThread<W> {
    table: &'static str,
    sender: Option<SyncSender<TableMessage>>,
    thread: Option<JoinHandle<Result<Option<W>>>>,
}

impl<W: Write + Send + 'static> TableThread<W> {
    fn start(table: &'static str, sink: W, schema: SchemaRef, params_json: &str) -> Result<Self> {
        let props = writer_properties(&schema, params_json);
        // The same entries on the Arrow schema the file embeds: pyarrow takes a table's
        // metadata from that schema alone when the file has one, so with the Parquet
        // key-value entries only, `pq.read_table(path).schema.metadata` was None.
        let metadata: std::collections::HashMap<_, _> =
            table_metadata(params_json).into_iter().collect();
        let schema = Arc::new(Schema::clone(&schema).with_metadata(metadata));
        let mut writer =
            ArrowWriter::try_new(sink, schema, Some(props)).map_err(table_error(table))?;
        let (sender, receiver) = sync_channel(QUEUED_TABLE_BATCHES);
        let thread = std::thread::Builder::new()
            .name(format!("mzforge-{table}"))
            .spawn(move || -> Result<Option<W>> {
                for message in receiver {
                    match message {
                        TableMessage::Batch(batch) => write_bounded(&mut writer, &batch, table)?,
                        TableMessage::Finish => {
                            return writer.into_inner().map(Some).map_err(table_error(table))
                        }
                    }
                }
                // Abandoned (the run failed): no footer, nothing more written.
                Ok(None)
            })
            .map_err(|source| Error::Write {
                path: table.into(),
                source,
            })?;
        Ok(TableThread {
            table,
            sender: Some(sender),
            thread: Some(thread),
        })
    }

    fn send(&mut self, message: TableMessage) -> Result<()> {
        let sent = self.sender.as_ref().map(|s| s.send(message));
        match sent {
            Some(Ok(())) => Ok(()),
            // The thread stopped early: its error says why.
            _ => {
                self.join()?;
                Err(self.stopped())
            }
        }
    }

    fn write(&mut self, batch: RecordBatch) -> Result<()> {
        self.send(TableMessage::Batch(batch))
    }

    /// Writes the footer and returns the sink.
    fn finish(mut self) -> Result<W> {
        self.send(TableMessage::Finish)?;
        self.join()?.ok_or_else(|| self.stopped())
    }

    /// Waits for the thread; its error, if it failed.
    fn join(&mut self) -> Result<Option<W>> {
        self.sender = None;
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(result)) => result,
            Some(Err(panic)) => std::panic::resume_unwind(panic),
            None => Ok(None),
        }
    }

    fn stopped(&self) -> Error {
        Error::Write {
            path: self.table.into(),
            source: std::io::Error::other("the table's writer stopped"),
        }
    }
}

impl<W> Drop for TableThread<W> {
    /// Abandons the table: the thread stops without writing a footer, and is waited for, so
    /// that it never outlives the sink's owner's clean-up.
    fn drop(&mut self) {
        self.sender = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Writers of the `spectra`, `peaks` and `features` tables to any three byte sinks, each
/// encoded on its own thread.
pub struct TableWriters<W: Write + Send + 'static> {
    spectra: TableThread<W>,
    peaks: TableThread<W>,
    features: Option<TableThread<W>>,
}

impl<W: Write + Send + 'static> std::fmt::Debug for TableWriters<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TableWriters")
    }
}

impl<W: Write + Send + 'static> TableWriters<W> {
    /// Starts the `spectra` and `peaks` tables; `params_json` goes into their metadata.
    pub fn new(spectra: W, peaks: W, params_json: &str) -> Result<Self> {
        Ok(TableWriters {
            spectra: TableThread::start(SPECTRA_FILE, spectra, spectra_schema(), params_json)?,
            peaks: TableThread::start(PEAKS_FILE, peaks, peaks_schema(), params_json)?,
            features: None,
        })
    }

    /// Starts the three tables, `features` included.
    pub fn with_features(spectra: W, peaks: W, features: W, params_json: &str) -> Result<Self> {
        let mut writers = TableWriters::new(spectra, peaks, params_json)?;
        writers.features = Some(TableThread::start(
            FEATURES_FILE,
            features,
            features_schema(),
            params_json,
        )?);
        Ok(writers)
    }

    /// Appends a batch of processed spectra to the tables. The batch is encoded on the
    /// tables' threads; a write error may be reported by a later call or by
    /// [`finish_all`](TableWriters::finish_all).
    pub fn write(&mut self, spectra: &[ProcessedSpectrum]) -> Result<()> {
        if spectra.is_empty() {
            return Ok(());
        }
        self.spectra.write(spectra_batch(spectra)?)?;
        self.peaks.write(peaks_batch(spectra)?)?;
        if let Some(features) = &mut self.features {
            features.write(features_batch(spectra)?)?;
        }
        Ok(())
    }

    /// Finishes the `spectra` and `peaks` files (footers) and returns their sinks; a
    /// `features` table is finished and its sink dropped.
    pub fn finish(self) -> Result<(W, W)> {
        let (spectra, peaks, _) = self.finish_all()?;
        Ok((spectra, peaks))
    }

    /// Finishes every file and returns the sinks: spectra, peaks and, if started, features.
    pub fn finish_all(self) -> Result<(W, W, Option<W>)> {
        let features = self.features.map(TableThread::finish).transpose()?;
        Ok((self.spectra.finish()?, self.peaks.finish()?, features))
    }
}

/// Bytes a [`WritebackFile`] lets accumulate before it hands them to the kernel to write back.
const WRITEBACK_STEP: u64 = 1 << 20;

/// A result file (the tables, the centroided mzML) written front to back whose bytes are
/// handed to the kernel for writing back as they accumulate (every MiB, Linux's
/// `sync_file_range` without waiting), so that the `fsync` of [`ResultDir::commit`] at the
/// end of a run waits for the last bytes only, not for the whole table: on a 542 MB input
/// the final `fsync` of its 232 MB `peaks.parquet` took 90–137 ms after the run, 1 ms with
/// this. The writing thread does not wait for the disk; write errors surface in that
/// `fsync`. Elsewhere than Linux it is a plain file.
#[derive(Debug)]
pub struct WritebackFile {
    file: File,
    /// Bytes written so far.
    written: u64,
    /// Bytes already handed to the kernel to write back.
    handed: u64,
}

impl WritebackFile {
    /// Creates (or truncates) the file at `path`.
    pub fn create(path: &Path) -> std::io::Result<WritebackFile> {
        Ok(WritebackFile {
            file: File::create(path)?,
            written: 0,
            handed: 0,
        })
    }

    /// Starts writing back the bytes written since the last call (advisory: the kernel may
    /// decline, and the final `fsync` still writes whatever is left).
    fn hand_to_kernel(&mut self) {
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::AsRawFd;
            let (Ok(offset), Ok(len)) = (
                i64::try_from(self.handed),
                i64::try_from(self.written - self.handed),
            ) else {
                return;
            };
            // SAFETY: the descriptor is this open file's; the call reads no memory of ours
            // and only schedules the range's dirty pages for writing.
            unsafe {
                libc::sync_file_range(
                    self.file.as_raw_fd(),
                    offset,
                    len,
                    libc::SYNC_FILE_RANGE_WRITE,
                );
            }
        }
        self.handed = self.written;
    }
}

impl Write for WritebackFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.file.write(buf)?;
        self.written += n as u64;
        if self.written - self.handed >= WRITEBACK_STEP {
            self.hand_to_kernel();
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

/// A result directory that appears atomically: written under a hidden temporary name beside
/// its final place, then renamed into place by [`ResultDir::commit`]. Dropped without
/// commit, it removes itself, so no half-written result is ever where a result is expected.
#[derive(Debug)]
pub struct ResultDir {
    staging: PathBuf,
    target: PathBuf,
    committed: bool,
}

impl ResultDir {
    /// Prepares `target` (its parent is created if needed). What is at `target` already must
    /// be an earlier result (a directory holding a `run.json`) or an empty directory: anything
    /// else is the user's, and is refused rather than replaced.
    pub fn create(target: &Path) -> Result<ResultDir> {
        check_replaceable(target)?;
        let parent = target
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let write_err = |source| Error::Write {
            path: target.to_owned(),
            source,
        };
        fs::create_dir_all(parent).map_err(write_err)?;
        let name = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "result".into());
        remove_abandoned_staging(parent, &name);
        let staging = parent.join(format!(".{name}.partial-{}", std::process::id()));
        if staging.exists() {
            fs::remove_dir_all(&staging).map_err(write_err)?;
        }
        fs::create_dir(&staging).map_err(write_err)?;
        Ok(ResultDir {
            staging,
            target: target.to_owned(),
            committed: false,
        })
    }

    /// Path of a file inside the staging directory.
    pub fn file(&self, name: &str) -> PathBuf {
        self.staging.join(name)
    }

    /// The three result tables (`spectra`, `peaks`, `features`), created buffered in the
    /// staging directory, with `params_json` in their metadata.
    pub fn table_writers(
        &self,
        params_json: &str,
    ) -> Result<TableWriters<BufWriter<WritebackFile>>> {
        let open = |name: &str| {
            let path = self.file(name);
            WritebackFile::create(&path)
                .map(BufWriter::new)
                .map_err(|source| Error::Write { path, source })
        };
        TableWriters::with_features(
            open(SPECTRA_FILE)?,
            open(PEAKS_FILE)?,
            open(FEATURES_FILE)?,
            params_json,
        )
    }

    /// Makes every file in the directory durable (`fsync`) and moves the directory into
    /// place, replacing any previous result. Its writers need only be flushed before.
    pub fn commit(mut self) -> Result<PathBuf> {
        let write_err = |source| Error::Write {
            path: self.target.clone(),
            source,
        };
        // Make the files durable before they become visible, all at once: the file system
        // commits its journal once for the lot instead of once per file.
        let files = fs::read_dir(&self.staging)
            .and_then(|entries| {
                entries
                    .map(|e| e.map(|e| e.path()))
                    .collect::<std::io::Result<Vec<_>>>()
            })
            .map_err(write_err)?;
        std::thread::scope(|scope| {
            let syncs: Vec<_> = files
                .iter()
                .map(|path| {
                    std::thread::Builder::new()
                        .spawn_scoped(scope, move || File::open(path).and_then(|f| f.sync_all()))
                })
                .collect();
            syncs.into_iter().try_for_each(|sync| {
                sync?
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
        })
        .map_err(write_err)?;
        // Checked again: something may have appeared there while the result was written.
        check_replaceable(&self.target)?;
        if self.target.exists() {
            // `.<name>.partial-<pid>.old`: per process, and removed by a later run if this
            // one is killed between the two renames.
            let mut old_name = self.staging.as_os_str().to_owned();
            old_name.push(".old");
            let old = PathBuf::from(old_name);
            fs::rename(&self.target, &old).map_err(write_err)?;
            fs::rename(&self.staging, &self.target).map_err(write_err)?;
            let _ = fs::remove_dir_all(&old);
        } else {
            fs::rename(&self.staging, &self.target).map_err(write_err)?;
        }
        self.committed = true;
        Ok(self.target.clone())
    }
}

/// Whether [`ResultDir::commit`] may replace what is at `target`: nothing, an empty directory
/// or an earlier result (a directory holding a `run.json`). A directory of the user's own
/// files (an input's folder named as its stem, say) or a file is refused, never removed.
fn check_replaceable(target: &Path) -> Result<()> {
    if fs::symlink_metadata(target).is_err() {
        return Ok(());
    }
    let replaceable = target.is_dir()
        && (target.join(RUN_FILE).is_file()
            || fs::read_dir(target).is_ok_and(|mut entries| entries.next().is_none()));
    if replaceable {
        return Ok(());
    }
    Err(Error::InvalidParameter {
        name: "out",
        message: format!(
            "{} exists and is not an mzforge result (no {RUN_FILE} in it); mzforge replaces only \
             its own results: choose another output directory or move it away",
            target.display()
        ),
    })
}

/// Removes the staging directories (`.<name>.partial-<pid>`, and `.old` ones) that runs killed
/// before they could clean up left beside `target`, when their process is gone. Only where
/// that can be told (Linux `/proc`); a live process's staging directory is never touched.
fn remove_abandoned_staging(parent: &Path, name: &str) {
    if !cfg!(target_os = "linux") {
        return;
    }
    let prefix = format!(".{name}.partial-");
    let Ok(entries) = fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let file_name = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = file_name.strip_prefix(&prefix) else {
            continue;
        };
        let pid = rest.strip_suffix(".old").unwrap_or(rest);
        let Ok(pid) = pid.parse::<u32>() else {
            continue;
        };
        if pid != std::process::id() && !Path::new("/proc").join(pid.to_string()).exists() {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

impl Drop for ResultDir {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_dir_all(&self.staging);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writeback_files_hand_each_step_to_the_kernel_and_keep_every_byte() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("table");
        let mut file = WritebackFile::create(&path).unwrap();
        let chunk: Vec<u8> = (0..8192u32).map(|i| (i * 7 % 251) as u8).collect();
        let chunks = (3 * WRITEBACK_STEP as usize + 4096) / chunk.len();
        for _ in 0..chunks {
            file.write_all(&chunk).unwrap();
            // Handed on at each whole step, never ahead of what was written.
            assert!(file.handed <= file.written);
            assert!(file.written - file.handed < WRITEBACK_STEP);
        }
        assert_eq!(file.handed, 3 * WRITEBACK_STEP);
        file.flush().unwrap();
        let written = fs::read(&path).unwrap();
        assert_eq!(written.len(), chunks * chunk.len());
        assert!(written.chunks(chunk.len()).all(|c| c == chunk));
    }

    #[test]
    fn stems_drop_directories_compression_and_format_extensions() {
        assert_eq!(input_stem_of_path(Path::new("a/b/run1.mzML.gz")), "run1");
        assert_eq!(input_stem_of_path(Path::new("x.mgf")), "x");
        assert_eq!(input_stem("x.MGF"), "x");
        assert_eq!(input_stem_of_path(Path::new("y.mzMLb")), "y");
        assert_eq!(
            input_stem_of_path(Path::new("MzMLFile_6_uncompresscor.MzML.gz")),
            "MzMLFile_6_uncompresscor"
        );
        assert_eq!(input_stem_of_path(Path::new("plain")), "plain");
        assert_eq!(input_stem_of_path(Path::new(".mzML")), "input");
    }

    #[test]
    fn result_dir_names_number_repeated_stems_and_keep_real_names() {
        let names = result_dir_names(&[
            "A1.mzML",
            "B1.mzML.gz",
            "a1.mzML",
            "A1.mgf",
            "A1-2.mzML",
            "B1.mzML",
        ]);
        assert_eq!(names, ["A1", "B1", "a1-3", "A1-4", "A1-2", "B1-2"]);
        let unique: std::collections::HashSet<String> =
            names.iter().map(|n| n.to_lowercase()).collect();
        assert_eq!(unique.len(), names.len());
        assert_eq!(result_dir_names(&["x.mzML", "y.mzML"]), ["x", "y"]);
        assert!(result_dir_names::<&str>(&[]).is_empty());
    }

    /// `run.json`'s fields, in the order every producer writes them.
    #[test]
    fn run_records_hold_version_input_params_outputs_and_summary_in_order() {
        let params = PipelineParams::default();
        let summary = RunSummary::default();
        let input = InputRecord {
            path: "in/a.mzML".into(),
            bytes: 3,
            sha256: "abc".into(),
        };
        let record = RunRecord::new(input, &params, vec![SPECTRA_FILE, PEAKS_FILE], &summary);
        let text = String::from_utf8(record.to_json().unwrap()).unwrap();
        let at = |key: &str| {
            text.find(&format!("\n  \"{key}\":"))
                .unwrap_or_else(|| panic!("no top-level {key} in {text}"))
        };
        let keys = ["mzforge_version", "input", "params", "outputs", "summary"];
        assert!(
            keys.windows(2).all(|pair| at(pair[0]) < at(pair[1])),
            "{text}"
        );
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["mzforge_version"], crate::VERSION);
        assert_eq!(value["input"]["sha256"], "abc");
        assert_eq!(value["input"]["bytes"], 3);
        assert_eq!(
            value["outputs"],
            serde_json::json!(["spectra.parquet", "peaks.parquet"])
        );
        assert_eq!(value["params"], serde_json::to_value(&params).unwrap());
    }
}
