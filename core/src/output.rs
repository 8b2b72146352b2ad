//! The result tables: Arrow schemas defined once, record batches built from processed spectra,
//! and Parquet writers over any `Write`, plus atomic result directories on local disk.
//!
//! `spectra`: one row per spectrum. `peaks`: one row per centroid. Both Parquet files are
//! zstd-compressed and carry the parameters as JSON in their key-value metadata
//! (`mzforge.params`) with the engine version (`mzforge.version`).

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use arrow::array::{
    ArrayRef, Float32Builder, Float64Builder, Int32Builder, RecordBatch, StringBuilder,
    UInt32Builder, UInt8Builder,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;

use crate::error::{Error, Result};
use crate::pipeline::ProcessedSpectrum;

/// File name of the spectrum table inside a result directory.
pub const SPECTRA_FILE: &str = "spectra.parquet";
/// File name of the peak table inside a result directory.
pub const PEAKS_FILE: &str = "peaks.parquet";
/// File name of the run record inside a result directory.
pub const RUN_FILE: &str = "run.json";

/// Schema of `spectra.parquet`.
pub fn spectra_schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            Arc::new(Schema::new(vec![
                Field::new("spectrum_index", DataType::UInt32, false),
                Field::new("native_id", DataType::Utf8, false),
                Field::new("ms_level", DataType::UInt8, false),
                Field::new("rt_seconds", DataType::Float64, false),
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
            ]))
        })
        .clone()
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
    for s in spectra {
        let m = &s.meta;
        index.append_value(m.index);
        native_id.append_value(&m.native_id);
        ms_level.append_value(m.ms_level);
        rt.append_value(m.rt_seconds);
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
    let mut fwhm = Float32Builder::with_capacity(n);
    for s in spectra {
        let p = &s.peaks;
        index.append_value_n(s.meta.index, p.len());
        mz.append_slice(&p.mz);
        intensity.append_slice(&p.intensity);
        snr.append_slice(&p.snr);
        for &w in &p.fwhm_mz {
            fwhm.append_option((!w.is_nan()).then_some(w));
        }
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(index.finish()),
        Arc::new(mz.finish()),
        Arc::new(intensity.finish()),
        Arc::new(snr.finish()),
        Arc::new(fwhm.finish()),
    ];
    Ok(RecordBatch::try_new(peaks_schema(), columns)?)
}

fn writer_properties(params_json: &str) -> WriterProperties {
    WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(3).unwrap_or_default()))
        .set_max_row_group_row_count(Some(256 * 1024))
        .set_key_value_metadata(Some(vec![
            KeyValue::new("mzforge.params".to_string(), params_json.to_string()),
            KeyValue::new("mzforge.version".to_string(), crate::VERSION.to_string()),
        ]))
        .build()
}

/// Writers of the `spectra` and `peaks` tables to any pair of byte sinks.
pub struct TableWriters<W: Write + Send> {
    spectra: ArrowWriter<W>,
    peaks: ArrowWriter<W>,
}

impl<W: Write + Send> std::fmt::Debug for TableWriters<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TableWriters")
    }
}

impl<W: Write + Send> TableWriters<W> {
    /// Starts both tables; `params_json` goes into their metadata.
    pub fn new(spectra: W, peaks: W, params_json: &str) -> Result<Self> {
        let props = writer_properties(params_json);
        Ok(TableWriters {
            spectra: ArrowWriter::try_new(spectra, spectra_schema(), Some(props.clone()))?,
            peaks: ArrowWriter::try_new(peaks, peaks_schema(), Some(props))?,
        })
    }

    /// Appends a batch of processed spectra to both tables.
    pub fn write(&mut self, spectra: &[ProcessedSpectrum]) -> Result<()> {
        if spectra.is_empty() {
            return Ok(());
        }
        self.spectra.write(&spectra_batch(spectra)?)?;
        self.peaks.write(&peaks_batch(spectra)?)?;
        Ok(())
    }

    /// Finishes both files (footers) and returns the sinks.
    pub fn finish(self) -> Result<(W, W)> {
        Ok((self.spectra.into_inner()?, self.peaks.into_inner()?))
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
    /// Prepares `target` (its parent is created if needed).
    pub fn create(target: &Path) -> Result<ResultDir> {
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

    /// Moves the finished directory into place, replacing any previous result.
    pub fn commit(mut self) -> Result<PathBuf> {
        let write_err = |source| Error::Write {
            path: self.target.clone(),
            source,
        };
        // Make the files durable before they become visible.
        for entry in fs::read_dir(&self.staging).map_err(write_err)? {
            let entry = entry.map_err(write_err)?;
            fs::File::open(entry.path())
                .and_then(|f| f.sync_all())
                .map_err(write_err)?;
        }
        if self.target.exists() {
            let old = self.staging.with_extension("old");
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

impl Drop for ResultDir {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_dir_all(&self.staging);
        }
    }
}
