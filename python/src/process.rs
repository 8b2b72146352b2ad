//! `process(path, params, out)`: a whole file through the engine's pipeline, on its own worker
//! pool with the GIL released; results as Arrow tables, and with `out` the same result
//! directory as `mzforge run --out`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::RecordBatch;
use arrow::datatypes::{Schema, SchemaRef};
use mzforge::output::{
    features_batch, features_schema, input_stem_of_path, peaks_batch, peaks_schema, spectra_batch,
    spectra_schema, table_metadata, InputRecord, ResultDir, RunRecord, FEATURES_FILE, PEAKS_FILE,
    RUN_FILE, SPECTRA_FILE,
};
use mzforge::{Pipeline, RunSummary};
use pyo3::prelude::*;

use crate::arrow_export::ArrowTable;
use crate::errors::{chain, to_py, IntoPy, Kind};
use crate::params::Params;

/// What a run produced. The Python `RunResult` wraps it.
#[pyclass(frozen, get_all, module = "mzforge._mzforge")]
#[derive(Debug)]
pub struct RunResult {
    /// One row per spectrum (None when the run wrote to a directory).
    spectra: Option<Py<ArrowTable>>,
    /// One row per centroid (None when the run wrote to a directory).
    peaks: Option<Py<ArrowTable>>,
    /// One row per isotopic envelope (None when the run wrote to a directory).
    features: Option<Py<ArrowTable>>,
    /// The full parameter set, as JSON.
    params_json: String,
    /// Counts and warnings, as JSON (the `summary` of `run.json`).
    summary_json: String,
    /// The result directory, when one was written.
    output: Option<PathBuf>,
}

/// The SIMD backend this CPU uses (`avx2`, `neon`, `scalar`).
#[pyfunction]
pub fn simd_backend() -> &'static str {
    mzforge::simd::Backend::detect().name()
}

/// The result directory name of each input of one analysis, from their file names in order
/// (`mzforge::output::result_dir_names`): the API names results as the cloud runner does.
#[pyfunction]
pub fn result_dir_names(file_names: Vec<String>) -> Vec<String> {
    mzforge::output::result_dir_names(&file_names)
}

/// Processes one file; see the Python `mzforge.process`.
#[pyfunction]
#[pyo3(signature = (path, params, out = None))]
pub fn process(
    py: Python<'_>,
    path: PathBuf,
    params: &Params,
    out: Option<PathBuf>,
) -> PyResult<RunResult> {
    let params = params.0.clone();
    // As `mzforge run` checks its inputs (a named pipe is accepted, as by the engine).
    if !path.exists() {
        return Err(Kind::InputRead.err(format!("cannot read {}: no such file", path.display())));
    }
    let params_json = serde_json::to_string(&params).map_err(|e| Kind::Other.err(e.to_string()))?;
    let pipeline = Pipeline::new(params).py_err()?;
    let mut interrupts = Interrupts::new(py, &path)?;
    match out {
        None => {
            let (spectra, peaks, features, summary) = py
                .detach(|| in_memory(&pipeline, &path, &mut interrupts))
                .map_err(|e| interrupts.or(to_py(e)))?;
            let metadata: HashMap<String, String> =
                table_metadata(&params_json).into_iter().collect();
            let table =
                |schema: SchemaRef, batches: Vec<RecordBatch>| -> PyResult<Py<ArrowTable>> {
                    let schema = Arc::new(Schema::clone(&schema).with_metadata(metadata.clone()));
                    let batches = batches
                        .into_iter()
                        .map(|b| RecordBatch::try_new(schema.clone(), b.columns().to_vec()))
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(|e| Kind::Other.err(e.to_string()))?;
                    Py::new(py, ArrowTable::new(schema, batches))
                };
            Ok(RunResult {
                spectra: Some(table(spectra_schema(), spectra)?),
                peaks: Some(table(peaks_schema(), peaks)?),
                features: Some(table(features_schema(), features)?),
                params_json,
                summary_json: summary_json(&summary)?,
                output: None,
            })
        }
        Some(out) => {
            let target = out.join(input_stem_of_path(&path));
            let summary = py
                .detach(|| run_to_dir(&pipeline, &params_json, &path, &target, &mut interrupts))
                .map_err(|e| interrupts.or(e.into_py()))?;
            Ok(RunResult {
                spectra: None,
                peaks: None,
                features: None,
                params_json,
                summary_json: summary_json(&summary)?,
                output: Some(target),
            })
        }
    }
}

/// How often, at most, a run looks for a Ctrl-C.
const INTERRUPT_CHECK_INTERVAL: Duration = Duration::from_millis(100);

/// Ctrl-C during a run. Python runs signal handlers only on its main thread and only when it
/// has the GIL, which a run has released; so between batches (at most every
/// [`INTERRUPT_CHECK_INTERVAL`], and only for a call from the main thread) the run takes the
/// GIL to run pending handlers. An exception from one (`KeyboardInterrupt`) stops the run,
/// which deletes its unfinished result directory, and is raised instead of the run's error.
struct Interrupts {
    main_thread: bool,
    last_check: Option<Instant>,
    path: PathBuf,
    raised: Option<PyErr>,
}

impl Interrupts {
    fn new(py: Python<'_>, path: &Path) -> PyResult<Interrupts> {
        let threading = py.import("threading")?;
        let main_thread = threading
            .call_method0("current_thread")?
            .is(&threading.call_method0("main_thread")?);
        Ok(Interrupts {
            main_thread,
            last_check: None,
            path: path.to_owned(),
            raised: None,
        })
    }

    /// Runs pending signal handlers (with the GIL); an error stops the run.
    fn check(&mut self) -> mzforge::Result<()> {
        if !self.main_thread
            || self
                .last_check
                .is_some_and(|t| t.elapsed() < INTERRUPT_CHECK_INTERVAL)
        {
            return Ok(());
        }
        self.last_check = Some(Instant::now());
        match Python::attach(|py| py.check_signals()) {
            Ok(()) => Ok(()),
            Err(raised) => {
                self.raised = Some(raised);
                Err(mzforge::Error::Io {
                    path: self.path.clone(),
                    source: std::io::ErrorKind::Interrupted.into(),
                })
            }
        }
    }

    /// The exception that stopped the run: a signal handler's, else `error`.
    fn or(&mut self, error: PyErr) -> PyErr {
        self.raised.take().unwrap_or(error)
    }
}

fn summary_json(summary: &RunSummary) -> PyResult<String> {
    serde_json::to_string(summary).map_err(|e| Kind::Other.err(e.to_string()))
}

type Tables = (
    Vec<RecordBatch>,
    Vec<RecordBatch>,
    Vec<RecordBatch>,
    RunSummary,
);

fn in_memory(
    pipeline: &Pipeline,
    path: &Path,
    interrupts: &mut Interrupts,
) -> mzforge::Result<Tables> {
    let mut spectra = Vec::new();
    let mut peaks = Vec::new();
    let mut features = Vec::new();
    let summary = pipeline.run_path(path, &mut |batch| {
        interrupts.check()?;
        if !batch.is_empty() {
            spectra.push(spectra_batch(batch)?);
            peaks.push(peaks_batch(batch)?);
            features.push(features_batch(batch)?);
        }
        Ok(())
    })?;
    Ok((spectra, peaks, features, summary))
}

/// A failure of a run into a directory, with the command line's message.
enum DirError {
    Engine(mzforge::Error),
    Io(String),
}

impl DirError {
    fn into_py(self) -> PyErr {
        match self {
            DirError::Engine(e) => to_py(e),
            DirError::Io(message) => Kind::Output.err(message),
        }
    }
}

impl From<mzforge::Error> for DirError {
    fn from(e: mzforge::Error) -> Self {
        DirError::Engine(e)
    }
}

fn io_context(what: impl std::fmt::Display) -> impl FnOnce(std::io::Error) -> DirError {
    move |e| DirError::Io(format!("{what}: {}", chain(&e)))
}

/// `process(path, out=DIR)`: writes what `mzforge run --out DIR` writes (the Python tests
/// compare the two), with the same result directory, tables and `run.json` record from
/// `mzforge::output`.
fn run_to_dir(
    pipeline: &Pipeline,
    params_json: &str,
    input: &Path,
    target: &Path,
    interrupts: &mut Interrupts,
) -> Result<RunSummary, DirError> {
    let (reader, digest) = mzforge::SpectrumReader::open_digested(input)?;
    let dir = ResultDir::create(target)?;
    let mut tables = dir.table_writers(params_json)?;
    let summary = pipeline.run(reader, &mut |batch| {
        interrupts.check()?;
        tables.write(batch)
    })?;
    let (spectra, peaks, features) = tables.finish_all()?;
    for writer in [Some(spectra), Some(peaks), features].into_iter().flatten() {
        // Flushed here, made durable by the directory's commit.
        writer
            .into_inner()
            .map_err(|e| e.into_error())
            .map_err(io_context(format!("cannot write {}", target.display())))?;
    }
    let input_record = InputRecord::of(input, &digest)
        .map_err(io_context(format!("cannot read {}", input.display())))?;
    let outputs = vec![SPECTRA_FILE, PEAKS_FILE, FEATURES_FILE];
    let record = RunRecord::new(input_record, pipeline.params(), outputs, &summary);
    let run_json = dir.file(RUN_FILE);
    let bytes = record.to_json().map_err(|e| DirError::Io(e.to_string()))?;
    std::fs::write(&run_json, bytes)
        .map_err(io_context(format!("cannot write {}", run_json.display())))?;
    dir.commit()?;
    Ok(summary)
}
