//! `mzforge.open(path)`: spectra one at a time, with numpy arrays that own the decoded data
//! (moved from Rust, never copied).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};

use mzforge::io::Repairs;
use mzforge::{Error, RawSpectrum, SpectrumReader};
use numpy::{IntoPyArray, PyArray1, PyUntypedArrayMethods};
use pyo3::exceptions::{PyIndexError, PyKeyError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyInt, PyList, PySlice};

use crate::errors::{to_py, IntoPy};
use crate::index::OffsetIndex;

/// The precursor of an MSn spectrum, as the instrument recorded it.
#[pyclass(frozen, get_all, module = "mzforge._mzforge")]
#[derive(Debug, Clone)]
pub struct Precursor {
    /// Selected ion m/z (NaN when the file gives none).
    mz: f64,
    /// Charge state, if recorded.
    charge: Option<i32>,
    /// Selected ion intensity, if recorded.
    intensity: Option<f32>,
    /// Isolation window target m/z, if recorded.
    isolation_target_mz: Option<f64>,
    /// Isolation window lower bound (absolute m/z), if recorded.
    isolation_lower_mz: Option<f64>,
    /// Isolation window upper bound (absolute m/z), if recorded.
    isolation_upper_mz: Option<f64>,
    /// The native id of the spectrum the precursor was selected from (mzML's `spectrumRef`),
    /// if the file gives it.
    spectrum_ref: Option<String>,
}

#[pymethods]
impl Precursor {
    /// Pickling (a spectrum sent to a worker process takes its precursor along).
    fn __reduce__<'py>(&self, py: Python<'py>) -> PyResult<(Bound<'py, PyAny>, (PrecursorState,))> {
        let state = (
            self.mz,
            self.charge,
            self.intensity,
            self.isolation_target_mz,
            self.isolation_lower_mz,
            self.isolation_upper_mz,
            self.spectrum_ref.clone(),
        );
        Ok((rebuilder(py, "_rebuild_precursor")?, (state,)))
    }

    fn __repr__(&self) -> String {
        format!(
            "Precursor(mz={}, charge={})",
            self.mz,
            self.charge.map_or("None".into(), |z| z.to_string())
        )
    }
}

/// One decoded spectrum: metadata and numpy arrays (`mz` float64, `intensity` float32).
#[pyclass(frozen, module = "mzforge._mzforge")]
#[derive(Debug)]
pub struct Spectrum {
    /// Position in the file, from 0.
    #[pyo3(get)]
    index: u32,
    /// The file's id of the spectrum.
    #[pyo3(get)]
    native_id: String,
    /// MS level (1 for survey scans).
    #[pyo3(get)]
    ms_level: u8,
    /// Scan start time in seconds, or None when the file gives none.
    #[pyo3(get)]
    rt_seconds: Option<f64>,
    /// `"positive"`, `"negative"` or `"unknown"`.
    #[pyo3(get)]
    polarity: &'static str,
    /// `"profile"`, `"centroid"`, or None: what the file declares.
    #[pyo3(get)]
    signal_declared: Option<&'static str>,
    /// The first precursor, for MSn spectra.
    #[pyo3(get)]
    precursor: Option<Py<Precursor>>,
    /// The first scan window (lower, upper m/z), if declared.
    #[pyo3(get)]
    scan_window: Option<(f64, f64)>,
    /// m/z values, ascending (float64).
    #[pyo3(get)]
    mz: Py<PyArray1<f64>>,
    /// Intensities (float32).
    #[pyo3(get)]
    intensity: Py<PyArray1<f32>>,
    /// Ion mobility of each point (float64), or None when the spectrum has no per-point
    /// mobility array.
    #[pyo3(get)]
    ion_mobility: Option<Py<PyArray1<f64>>>,
    /// The mobility array's CV term (`"mean inverse reduced ion mobility array"`...), or None.
    #[pyo3(get)]
    ion_mobility_kind: Option<&'static str>,
    /// The mobility array's unit (`"volt-second per square centimeter"`...), or None.
    #[pyo3(get)]
    ion_mobility_unit: Option<String>,
    /// The first scan's ion mobility value (a PASEF precursor's 1/K0), or None.
    #[pyo3(get)]
    scan_ion_mobility: Option<f64>,
    /// What `scan_ion_mobility` measures (`"inverse reduced ion mobility"`...), or None.
    #[pyo3(get)]
    scan_ion_mobility_kind: Option<&'static str>,
    n_points: usize,
}

/// A pickled spectrum's ion mobility: the array, its kind and unit, and the scan's value with
/// its kind; words are `W`.
type MobilityState<W> = (
    Option<Py<PyArray1<f64>>>,
    Option<W>,
    Option<String>,
    Option<(f64, W)>,
);

type PrecursorState = (
    f64,
    Option<i32>,
    Option<f32>,
    Option<f64>,
    Option<f64>,
    Option<f64>,
    Option<String>,
);

/// A pickled spectrum's fields; its words (polarity, declared signal) are `W`.
type SpectrumState<W> = (
    u32,
    String,
    u8,
    Option<f64>,
    W,
    Option<W>,
    Option<Py<Precursor>>,
    Option<(f64, f64)>,
    Py<PyArray1<f64>>,
    Py<PyArray1<f32>>,
    MobilityState<W>,
);

/// The module function `__reduce__` names to rebuild a pickled object.
fn rebuilder<'py>(py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyAny>> {
    py.import("mzforge._mzforge")?.getattr(name)
}

/// Rebuilds a pickled [`Precursor`].
#[pyfunction]
pub fn _rebuild_precursor(state: PrecursorState) -> Precursor {
    let (
        mz,
        charge,
        intensity,
        isolation_target_mz,
        isolation_lower_mz,
        isolation_upper_mz,
        spectrum_ref,
    ) = state;
    Precursor {
        mz,
        charge,
        intensity,
        isolation_target_mz,
        isolation_lower_mz,
        isolation_upper_mz,
        spectrum_ref,
    }
}

/// Rebuilds a pickled [`Spectrum`]; the words are those `__reduce__` wrote.
#[pyfunction]
pub fn _rebuild_spectrum(py: Python<'_>, state: SpectrumState<String>) -> PyResult<Spectrum> {
    let (
        index,
        native_id,
        ms_level,
        rt_seconds,
        polarity,
        signal,
        precursor,
        scan_window,
        mz,
        intensity,
        (ion_mobility, mobility_kind, ion_mobility_unit, scan_mobility),
    ) = state;
    let word = |w: &str, words: &[&'static str]| {
        words
            .iter()
            .find(|known| **known == w)
            .copied()
            .ok_or_else(|| PyValueError::new_err(format!("not a pickled Spectrum: {w:?}")))
    };
    let n_points = PyUntypedArrayMethods::len(mz.bind(py));
    if PyUntypedArrayMethods::len(intensity.bind(py)) != n_points {
        return Err(PyValueError::new_err(
            "not a pickled Spectrum: m/z and intensity differ in length",
        ));
    }
    if let Some(mobility) = &ion_mobility {
        if PyUntypedArrayMethods::len(mobility.bind(py)) != n_points {
            return Err(PyValueError::new_err(
                "not a pickled Spectrum: m/z and ion mobility differ in length",
            ));
        }
    }
    let kinds = mzforge::IonMobilityKind::ALL.map(|k| k.as_str());
    let scan_kinds = mzforge::ScanMobilityKind::ALL.map(|k| k.as_str());
    let (scan_ion_mobility, scan_ion_mobility_kind) = match scan_mobility {
        Some((value, kind)) => (Some(value), Some(word(&kind, &scan_kinds)?)),
        None => (None, None),
    };
    Ok(Spectrum {
        index,
        native_id,
        ms_level,
        rt_seconds,
        polarity: word(&polarity, &["positive", "negative", "unknown"])?,
        signal_declared: signal
            .map(|s| word(&s, &["profile", "centroid"]))
            .transpose()?,
        precursor,
        scan_window,
        mz,
        intensity,
        ion_mobility,
        ion_mobility_kind: mobility_kind.map(|k| word(&k, &kinds)).transpose()?,
        ion_mobility_unit,
        scan_ion_mobility,
        scan_ion_mobility_kind,
        n_points,
    })
}

#[pymethods]
impl Spectrum {
    /// Pickling, so spectra can be sent to worker processes (`multiprocessing`,
    /// `concurrent.futures`); the arrays go as numpy pickles them.
    fn __reduce__<'py>(
        &self,
        py: Python<'py>,
    ) -> PyResult<(Bound<'py, PyAny>, (SpectrumState<&'static str>,))> {
        let state = (
            self.index,
            self.native_id.clone(),
            self.ms_level,
            self.rt_seconds,
            self.polarity,
            self.signal_declared,
            self.precursor.as_ref().map(|p| p.clone_ref(py)),
            self.scan_window,
            self.mz.clone_ref(py),
            self.intensity.clone_ref(py),
            (
                self.ion_mobility.as_ref().map(|m| m.clone_ref(py)),
                self.ion_mobility_kind,
                self.ion_mobility_unit.clone(),
                self.scan_ion_mobility.zip(self.scan_ion_mobility_kind),
            ),
        );
        Ok((rebuilder(py, "_rebuild_spectrum")?, (state,)))
    }

    fn __len__(&self) -> usize {
        self.n_points
    }

    fn __repr__(&self) -> String {
        let rt_seconds = match self.rt_seconds {
            Some(rt) => format!("{rt:.3}"),
            None => "None".to_owned(),
        };
        format!(
            "Spectrum(index={}, native_id={:?}, ms_level={}, rt_seconds={rt_seconds}, points={})",
            self.index, self.native_id, self.ms_level, self.n_points
        )
    }
}

fn to_python(py: Python<'_>, spectrum: mzforge::Spectrum) -> PyResult<Spectrum> {
    let meta = spectrum.meta;
    let precursor = match meta.precursor {
        Some(p) => Some(Py::new(
            py,
            Precursor {
                mz: p.mz,
                charge: p.charge,
                intensity: p.intensity,
                isolation_target_mz: p.isolation_target_mz,
                isolation_lower_mz: p.isolation_lower_mz,
                isolation_upper_mz: p.isolation_upper_mz,
                spectrum_ref: p.spectrum_ref,
            },
        )?),
        None => None,
    };
    Ok(Spectrum {
        index: meta.index,
        native_id: meta.native_id,
        ms_level: meta.ms_level,
        rt_seconds: meta.rt_seconds,
        polarity: meta.polarity.as_str(),
        signal_declared: meta.declared_signal.map(|k| k.as_str()),
        precursor,
        scan_window: meta.scan_window,
        n_points: spectrum.mz.len(),
        mz: spectrum.mz.into_pyarray(py).unbind(),
        intensity: spectrum.intensity.into_pyarray(py).unbind(),
        ion_mobility: spectrum
            .ion_mobility
            .map(|values| values.into_pyarray(py).unbind()),
        ion_mobility_kind: meta.ion_mobility_array.as_ref().map(|a| a.kind.as_str()),
        ion_mobility_unit: meta.ion_mobility_array.and_then(|a| a.unit),
        scan_ion_mobility: meta.scan_ion_mobility.map(|m| m.value),
        scan_ion_mobility_kind: meta.scan_ion_mobility.map(|m| m.kind.as_str()),
    })
}

/// The warning for a spectrum whose ion mobility array could not be used and was left out
/// (its m/z and intensity are kept), naming the file and the spectrum.
fn mobility_warning(
    path: &Path,
    spectrum: &mzforge::Spectrum,
    repairs: &Repairs,
) -> Option<String> {
    let reason = repairs.ion_mobility_dropped.as_deref()?;
    Some(format!(
        "{}: spectrum {} ({}): its ion mobility array cannot be used and was left out: {reason}",
        path.display(),
        spectrum.meta.index,
        spectrum.meta.native_id
    ))
}

/// Decodes `raw`, which is spectrum `index` of the file (a reader started mid-file counts
/// from 0, so positions and messages are corrected here).
fn decode_at(
    raw: &RawSpectrum,
    path: &Path,
    index: u32,
) -> Result<(mzforge::Spectrum, Repairs), Error> {
    match raw.decode(path) {
        Ok((mut spectrum, repairs)) => {
            spectrum.meta.index = index;
            Ok((spectrum, repairs))
        }
        Err(Error::BadSpectrum {
            path,
            native_id,
            message,
            ..
        }) => Err(Error::BadSpectrum {
            path,
            index,
            native_id,
            message,
        }),
        Err(Error::NotMassSpectrum {
            path, native_id, ..
        }) => Err(Error::NotMassSpectrum {
            path,
            index,
            native_id,
        }),
        Err(other) => Err(other),
    }
}

/// Random access for files that cannot seek: a sequential reader moved forward as needed
/// (and reopened to go back), remembering every native id it has passed (in `ids`, the first
/// position of each, and in `in_order`, one per position: ids may repeat).
#[derive(Debug, Default)]
struct Sequential {
    reader: Option<SpectrumReader>,
    next: u32,
    ids: HashMap<String, u32>,
    in_order: Vec<String>,
    count: Option<u32>,
}

impl Sequential {
    /// Spectrum `i`, or None past the end.
    fn get(&mut self, path: &Path, i: u32) -> Result<Option<RawSpectrum>, Error> {
        if self.reader.is_none() || i < self.next {
            self.reader = Some(SpectrumReader::open(path)?);
            self.next = 0;
        }
        while let Some(found) = self.advance()? {
            match found {
                Ok(raw) if raw.index() == i => return Ok(Some(raw)),
                Err(bad @ Error::BadSpectrum { index, .. }) if index == i => return Err(bad),
                _ => {}
            }
        }
        Ok(None)
    }

    /// The next spectrum, or the error of one that cannot be read (the reader goes on after
    /// it); `None` at the end.
    #[allow(clippy::type_complexity)]
    fn advance(&mut self) -> Result<Option<Result<RawSpectrum, Error>>, Error> {
        let Some(reader) = self.reader.as_mut() else {
            return Ok(None);
        };
        let mgf = reader.info().format == Some(mzforge::InputFormat::Mgf);
        let found = match reader.next_raw() {
            Ok(found) => found,
            Err(bad @ Error::BadSpectrum { .. }) => {
                if let Error::BadSpectrum {
                    index, native_id, ..
                } = &bad
                {
                    // Its position is taken; an MGF entry that cannot be read has no known id.
                    if *index as usize == self.in_order.len() {
                        self.in_order.push(if mgf {
                            String::new()
                        } else {
                            native_id.clone()
                        });
                    }
                    self.next = index + 1;
                }
                return Ok(Some(Err(bad)));
            }
            Err(e) => return Err(e),
        };
        match found {
            Some(raw) => {
                self.ids
                    .entry(raw.native_id().to_owned())
                    .or_insert(raw.index());
                if raw.index() as usize == self.in_order.len() {
                    self.in_order.push(raw.native_id().to_owned());
                }
                self.next = raw.index() + 1;
                Ok(Some(Ok(raw)))
            }
            None => {
                self.count = Some(self.next);
                self.reader = None;
                Ok(None)
            }
        }
    }

    fn position(&mut self, path: &Path, native_id: &str) -> Result<Option<u32>, Error> {
        if let Some(&i) = self.ids.get(native_id) {
            return Ok(Some(i));
        }
        if self.count.is_some() {
            return Ok(None);
        }
        if self.reader.is_none() {
            self.reader = Some(SpectrumReader::open(path)?);
            self.next = 0;
        }
        while let Some(found) = self.advance()? {
            match found {
                Ok(raw) if raw.native_id() == native_id => return Ok(Some(raw.index())),
                _ => {}
            }
        }
        Ok(None)
    }

    fn len(&mut self, path: &Path) -> Result<u32, Error> {
        if let Some(n) = self.count {
            return Ok(n);
        }
        if self.reader.is_none() {
            self.reader = Some(SpectrumReader::open(path)?);
            self.next = 0;
        }
        while self.advance()?.is_some() {}
        Ok(self.count.unwrap_or(self.next))
    }
}

#[derive(Debug)]
enum Access {
    Indexed(OffsetIndex),
    Sequential(Mutex<Sequential>),
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A reader's warnings, each listed once: every iteration starts from the beginning and meets
/// the same bad spectra again, which would otherwise be listed again on each pass.
#[derive(Debug, Default)]
struct Warnings {
    listed: Vec<String>,
    seen: HashSet<String>,
}

impl Warnings {
    fn push(&mut self, warning: String) {
        if self.seen.insert(warning.clone()) {
            self.listed.push(warning);
        }
    }
}

/// A reader of one mzML or MGF file (plain, gzip or bzip2). Iterating gives every mass spectrum in
/// file order; `reader[i]` and `reader["native id"]` read one spectrum.
#[pyclass(frozen, module = "mzforge._mzforge")]
#[derive(Debug)]
pub struct Reader {
    path: PathBuf,
    skip_bad: bool,
    info: mzforge::FileInfo,
    first: Mutex<Option<SpectrumReader>>,
    access: OnceLock<Access>,
    warnings: Arc<Mutex<Warnings>>,
    /// The open files of this reader's iterators, which `close()` closes too.
    iterators: Mutex<Vec<Weak<Mutex<Option<SpectrumReader>>>>>,
    closed: Arc<AtomicBool>,
}

impl Reader {
    fn check_open(&self) -> PyResult<()> {
        if self.closed.load(Ordering::Relaxed) {
            return Err(closed_error());
        }
        Ok(())
    }

    fn access(&self, py: Python<'_>) -> PyResult<&Access> {
        if let Some(access) = self.access.get() {
            return Ok(access);
        }
        let built = py
            .detach(|| OffsetIndex::build(&self.path))
            .py_err()?
            .map_or_else(|| Access::Sequential(Mutex::default()), Access::Indexed);
        Ok(self.access.get_or_init(|| {
            // Only the reader's first build reports it (threads may race to build).
            if let Access::Indexed(index) = &built {
                if let Some(problem) = index.embedded_index_problem() {
                    lock(&self.warnings).push(format!(
                        "{}: the file's index is wrong ({problem}); its spectra were found by \
                         scanning the file instead",
                        self.path.display()
                    ));
                }
            }
            built
        }))
    }

    fn len_inner(&self, py: Python<'_>) -> PyResult<u32> {
        match self.access(py)? {
            Access::Indexed(index) => Ok(index.len() as u32),
            Access::Sequential(seq) => py.detach(|| lock(seq).len(&self.path)).py_err(),
        }
    }

    /// Position of the first spectrum with this native id.
    fn position_of(&self, py: Python<'_>, native_id: &str) -> PyResult<Option<u32>> {
        match self.access(py)? {
            Access::Indexed(index) => Ok(index.position(native_id)),
            Access::Sequential(seq) => py
                .detach(|| lock(seq).position(&self.path, native_id))
                .py_err(),
        }
    }

    fn out_of_range(&self, index: &str, n: i64) -> PyErr {
        PyIndexError::new_err(format!(
            "{}: spectrum index {index} out of range ({})",
            self.path.display(),
            mzforge::wording::spectra(n.max(0) as u64)
        ))
    }

    /// The spectra of a slice, in its order. They are read in file order (and reversed after
    /// for a negative step): a reader that cannot seek would reopen the file for every step
    /// backwards.
    fn read_slice<'py>(
        &self,
        py: Python<'py>,
        slice: &Bound<'py, PySlice>,
    ) -> PyResult<Bound<'py, PyList>> {
        let n = self.len_inner(py)?;
        let range = slice.indices(n as isize)?;
        let mut positions: Vec<u32> = (0..range.slicelength)
            .map(|k| (range.start + k as isize * range.step) as u32)
            .collect();
        let backwards = range.step < 0;
        if backwards {
            positions.reverse();
        }
        let mut spectra = positions
            .into_iter()
            .map(|i| Py::new(py, self.read_at(py, i)?))
            .collect::<PyResult<Vec<_>>>()?;
        if backwards {
            spectra.reverse();
        }
        PyList::new(py, spectra)
    }

    fn read_at(&self, py: Python<'_>, i: u32) -> PyResult<Spectrum> {
        let path = &self.path;
        let decoded = match self.access(py)? {
            Access::Indexed(index) => py.detach(|| {
                let raw = index.read(i as usize)?;
                decode_at(&raw, path, i)
            }),
            Access::Sequential(seq) => py.detach(|| {
                let raw = lock(seq).get(path, i)?;
                match raw {
                    Some(raw) => decode_at(&raw, path, i),
                    None => Err(Error::Malformed {
                        path: path.clone(),
                        location: format!("at spectrum {i}"),
                        message: "the file holds fewer spectra than it did".into(),
                    }),
                }
            }),
        };
        let (spectrum, repairs) = decoded.py_err()?;
        if let Some(warning) = mobility_warning(path, &spectrum, &repairs) {
            lock(&self.warnings).push(warning);
        }
        to_python(py, spectrum)
    }
}

#[pymethods]
impl Reader {
    /// Opens `path` (the format is sniffed from the content). `on_bad_spectrum` is `"skip"`
    /// (left out of iteration and listed in `warnings`, as `mzforge run` does) or `"fail"`.
    #[new]
    #[pyo3(signature = (path, on_bad_spectrum = "skip"))]
    fn new(py: Python<'_>, path: PathBuf, on_bad_spectrum: &str) -> PyResult<Reader> {
        let skip_bad = match on_bad_spectrum {
            "skip" => true,
            "fail" => false,
            other => {
                return Err(crate::errors::Kind::InvalidParameter.err(format!(
                "invalid parameter `on_bad_spectrum`: must be \"skip\" or \"fail\", not {other:?}"
            )))
            }
        };
        let reader = py.detach(|| SpectrumReader::open(&path)).py_err()?;
        Ok(Reader {
            info: reader.info().clone(),
            path,
            skip_bad,
            first: Mutex::new(Some(reader)),
            access: OnceLock::new(),
            warnings: Arc::default(),
            iterators: Mutex::default(),
            closed: Arc::default(),
        })
    }

    /// The path given when opening.
    #[getter]
    fn path(&self) -> PathBuf {
        self.path.clone()
    }

    /// File-level facts: format, gzip, declared spectrum count, instruments.
    #[getter]
    fn info<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let info = PyDict::new(py);
        info.set_item(
            "format",
            match self.info.format {
                Some(mzforge::InputFormat::MzML) => Some("mzml"),
                Some(mzforge::InputFormat::Mgf) => Some("mgf"),
                Some(mzforge::InputFormat::MzMLb) => Some("mzmlb"),
                None => None,
            },
        )?;
        info.set_item("gzip", self.info.gzip)?;
        info.set_item("bzip2", self.info.bzip2)?;
        info.set_item("declared_spectrum_count", self.info.declared_spectrum_count)?;
        info.set_item("instruments", self.info.instruments.clone())?;
        Ok(info)
    }

    /// Spectra skipped while iterating, with the reason (as in `run.json`), spectra read whose
    /// ion mobility array could not be used (left out, the spectrum kept), MGF entries whose
    /// charge line gives no single charge or whose retention time is a range (once iteration
    /// has read the whole file), and a wrong
    /// `<indexList>` found when random access first looked at it (the spectra are then found by
    /// scanning the file).
    #[getter]
    fn warnings(&self) -> Vec<String> {
        lock(&self.warnings).listed.clone()
    }

    /// Whether random access seeks (`True`: plain mzML, through an offset index) or scans
    /// (`False`: gzip or MGF). Builds the index on first use.
    #[getter]
    fn indexed(&self, py: Python<'_>) -> PyResult<bool> {
        self.check_open()?;
        Ok(matches!(self.access(py)?, Access::Indexed(_)))
    }

    /// Native ids of every spectrum, in file order (builds the index on first use); an empty
    /// string for an MGF entry that cannot be read.
    #[getter]
    fn native_ids(&self, py: Python<'_>) -> PyResult<Vec<String>> {
        self.check_open()?;
        match self.access(py)? {
            Access::Indexed(index) => {
                Ok((0..index.len()).map(|i| index.id(i).to_owned()).collect())
            }
            Access::Sequential(seq) => {
                py.detach(|| lock(seq).len(&self.path)).py_err()?;
                Ok(lock(seq).in_order.clone())
            }
        }
    }

    /// Number of spectra in the file (including non-MS traces, which iteration leaves out).
    fn __len__(&self, py: Python<'_>) -> PyResult<usize> {
        self.check_open()?;
        Ok(self.len_inner(py)? as usize)
    }

    /// `reader[i]` (negative counts from the end), `reader["native id"]`, or a slice
    /// (`reader[10:20]`, `reader[::-1]`): a list of spectra.
    fn __getitem__<'py>(
        &self,
        py: Python<'py>,
        key: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.check_open()?;
        if let Ok(i) = key.extract::<i64>() {
            let n = self.len_inner(py)? as i64;
            let k = if i < 0 { i + n } else { i };
            if k < 0 || k >= n {
                return Err(self.out_of_range(&i.to_string(), n));
            }
            return Ok(Bound::new(py, self.read_at(py, k as u32)?)?.into_any());
        }
        if key.is_instance_of::<PyInt>() {
            // Beyond i64: out of range whatever the file holds.
            let n = self.len_inner(py)? as i64;
            return Err(self.out_of_range(&key.to_string(), n));
        }
        if let Ok(slice) = key.cast::<PySlice>() {
            return Ok(self.read_slice(py, slice)?.into_any());
        }
        if let Ok(id) = key.extract::<String>() {
            return match self.position_of(py, &id)? {
                Some(i) => Ok(Bound::new(py, self.read_at(py, i)?)?.into_any()),
                None => Err(PyKeyError::new_err(format!(
                    "{}: no spectrum has the native id {id:?}",
                    self.path.display()
                ))),
            };
        }
        Err(PyTypeError::new_err(format!(
            "spectra are looked up by position (int), native id (str) or slice, not {}",
            key.get_type().name()?
        )))
    }

    /// `"native id" in reader`: whether the file holds a spectrum with that id. Without it,
    /// Python would answer by iterating and comparing each spectrum with the string: always
    /// False, after decoding the whole file.
    fn __contains__(&self, py: Python<'_>, key: &Bound<'_, PyAny>) -> PyResult<bool> {
        self.check_open()?;
        match key.extract::<String>() {
            Ok(id) => Ok(self.position_of(py, &id)?.is_some()),
            Err(_) => Err(PyTypeError::new_err(format!(
                "`in` looks up a native id (str), not {}; positions run from 0 to len(reader) - 1",
                key.get_type().name()?
            ))),
        }
    }

    /// Every mass spectrum in file order (each `iter()` starts from the beginning).
    fn __iter__(&self, py: Python<'_>) -> PyResult<SpectrumIterator> {
        self.check_open()?;
        let reader = match lock(&self.first).take() {
            Some(reader) => reader,
            None => py.detach(|| SpectrumReader::open(&self.path)).py_err()?,
        };
        let slot = Arc::new(Mutex::new(Some(reader)));
        let mut iterators = lock(&self.iterators);
        iterators.retain(|it| it.strong_count() > 0);
        iterators.push(Arc::downgrade(&slot));
        Ok(SpectrumIterator {
            path: self.path.clone(),
            skip_bad: self.skip_bad,
            reader: slot,
            warnings: self.warnings.clone(),
            closed: self.closed.clone(),
        })
    }

    /// Releases the open file handles, its iterators' too (which then raise `ValueError`, as
    /// the reader does).
    fn close(&self, py: Python<'_>) {
        self.closed.store(true, Ordering::Relaxed);
        // Without the GIL: another thread may be inside a read that holds one of these locks.
        py.detach(|| {
            lock(&self.first).take();
            for slot in lock(&self.iterators).drain(..) {
                if let Some(slot) = slot.upgrade() {
                    lock(&slot).take();
                }
            }
            if let Some(Access::Sequential(seq)) = self.access.get() {
                lock(seq).reader = None;
            }
        });
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(&self, py: Python<'_>, _args: &Bound<'_, pyo3::types::PyTuple>) -> bool {
        self.close(py);
        false
    }

    fn __repr__(&self) -> String {
        format!("<mzforge.Reader {:?}>", self.path.display().to_string())
    }
}

fn closed_error() -> PyErr {
    PyValueError::new_err("I/O operation on a closed reader")
}

/// Iteration over a [`Reader`]; closing the reader closes it too.
#[pyclass(frozen, module = "mzforge._mzforge")]
#[derive(Debug)]
pub struct SpectrumIterator {
    path: PathBuf,
    skip_bad: bool,
    /// None once exhausted or closed.
    reader: Arc<Mutex<Option<SpectrumReader>>>,
    warnings: Arc<Mutex<Warnings>>,
    /// The reader's.
    closed: Arc<AtomicBool>,
}

#[pymethods]
impl SpectrumIterator {
    fn __iter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __next__(&self, py: Python<'_>) -> PyResult<Option<Spectrum>> {
        if self.closed.load(Ordering::Relaxed) {
            return Err(closed_error());
        }
        let next = py.detach(|| -> Result<Option<mzforge::Spectrum>, Error> {
            let mut slot = lock(&self.reader);
            loop {
                let Some(reader) = slot.as_mut() else {
                    return Ok(None);
                };
                let raw = match reader.next_raw() {
                    Ok(Some(raw)) => raw,
                    Ok(None) => {
                        // What reading mended in the file (MGF charge and time lines), once read.
                        for warning in reader.notes().warnings() {
                            lock(&self.warnings)
                                .push(format!("{}: {warning}", self.path.display()));
                        }
                        *slot = None;
                        return Ok(None);
                    }
                    // A spectrum that cannot be read: the next ones still can.
                    Err(e @ Error::BadSpectrum { .. }) if self.skip_bad => {
                        lock(&self.warnings).push(format!("skipped: {e}"));
                        continue;
                    }
                    Err(e @ Error::BadSpectrum { .. }) => return Err(e),
                    Err(e) => {
                        *slot = None;
                        return Err(e);
                    }
                };
                match raw.decode(&self.path) {
                    Ok((spectrum, repairs)) => {
                        if let Some(warning) = mobility_warning(&self.path, &spectrum, &repairs) {
                            lock(&self.warnings).push(warning);
                        }
                        return Ok(Some(spectrum));
                    }
                    Err(Error::NotMassSpectrum { .. }) => continue,
                    Err(e) if self.skip_bad => {
                        lock(&self.warnings).push(format!("skipped: {e}"));
                    }
                    Err(e) => return Err(e),
                }
            }
        });
        match next.map_err(to_py)? {
            Some(spectrum) => Ok(Some(to_python(py, spectrum)?)),
            None => Ok(None),
        }
    }
}
