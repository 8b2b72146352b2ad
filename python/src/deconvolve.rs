//! `deconvolve(mz, intensity, params, negative)`: one centroided spectrum from numpy arrays to
//! envelope columns, with the engine's deconvolver and the settings `mzforge run` would use.
//! A dense spectrum is searched on a pool of `params.threads` built for the call and dropped
//! before it returns, like a whole-file run's.

use mzforge::deconvolve::{Deconvolver, PatternCache, PARALLEL_FROM};
use mzforge::Error;
use numpy::{IntoPyArray, PyArray1, PyReadonlyArray1};
use pyo3::prelude::*;

use crate::centroid::check_arrays;
use crate::params::Params;

/// Envelope columns (neutral mass, monoisotopic m/z, charge, intensity, score, observed
/// peaks, most-abundant mass, average mass), then per input peak its envelope's charge (0: in
/// no envelope) and envelope index (-1: none).
pub type EnvelopeArrays<'py> = (
    Bound<'py, PyArray1<f64>>,
    Bound<'py, PyArray1<f64>>,
    Bound<'py, PyArray1<i32>>,
    Bound<'py, PyArray1<f32>>,
    Bound<'py, PyArray1<f32>>,
    Bound<'py, PyArray1<u32>>,
    Bound<'py, PyArray1<f64>>,
    Bound<'py, PyArray1<f64>>,
    Bound<'py, PyArray1<i32>>,
    Bound<'py, PyArray1<i64>>,
);

/// Deconvolves one centroided spectrum with the deconvolution part of `params` (its
/// `enabled` and MS-level filter concern whole-file runs and are ignored here).
#[pyfunction]
pub fn deconvolve<'py>(
    py: Python<'py>,
    mz: PyReadonlyArray1<'py, f64>,
    intensity: PyReadonlyArray1<'py, f32>,
    params: &Params,
    negative: bool,
) -> PyResult<EnvelopeArrays<'py>> {
    let (settings, threads) = (params.0.deconvolve.clone(), params.0.threads);
    let (mz, intensity) = (mz.as_slice()?, intensity.as_slice()?);
    check_arrays(mz, intensity)?;
    let found = py
        .detach(|| {
            // The process's patterns, shared by every call and every `process`: a loop over
            // spectra computes each pattern once, as a whole-file run does.
            let mut deconvolver = Deconvolver::with_cache(settings, PatternCache::shared());
            if mz.len() < PARALLEL_FROM || threads == 1 {
                return Ok(deconvolver.deconvolve(mz, intensity, negative));
            }
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .thread_name(|i| format!("mzforge-deconvolve-{i}"))
                .build()
                .map_err(|e| Error::InvalidParameter {
                    name: "threads",
                    message: e.to_string(),
                })?;
            Ok(pool.install(|| deconvolver.deconvolve(mz, intensity, negative)))
        })
        .map_err(crate::errors::to_py)?;
    let envelopes = &found.envelopes;
    let column = |f: fn(&mzforge::deconvolve::Envelope) -> f64| -> Vec<f64> {
        envelopes.iter().map(f).collect()
    };
    let peak_charge: Vec<i32> = (0..found.peak_envelope.len())
        .map(|k| found.peak_charge(k).unwrap_or(0))
        .collect();
    let peak_envelope: Vec<i64> = found
        .peak_envelope
        .iter()
        .map(|e| e.map_or(-1, i64::from))
        .collect();
    Ok((
        column(|e| e.neutral_mass).into_pyarray(py),
        column(|e| e.mz).into_pyarray(py),
        envelopes
            .iter()
            .map(|e| e.charge)
            .collect::<Vec<_>>()
            .into_pyarray(py),
        envelopes
            .iter()
            .map(|e| e.intensity)
            .collect::<Vec<_>>()
            .into_pyarray(py),
        envelopes
            .iter()
            .map(|e| e.score)
            .collect::<Vec<_>>()
            .into_pyarray(py),
        envelopes
            .iter()
            .map(|e| e.n_peaks)
            .collect::<Vec<_>>()
            .into_pyarray(py),
        column(|e| e.most_abundant_mass).into_pyarray(py),
        column(|e| e.average_mass).into_pyarray(py),
        peak_charge.into_pyarray(py),
        peak_envelope.into_pyarray(py),
    ))
}
