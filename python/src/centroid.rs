//! `centroid(mz, intensity, params)`: one profile spectrum from numpy arrays to columns.

use mzforge::{CentroidParams, Centroider, PeakList};
use numpy::{IntoPyArray, PyArray1, PyReadonlyArray1};
use pyo3::prelude::*;

use crate::errors::Kind;
use crate::params::Params;

/// Peak columns as numpy arrays (moved, not copied): m/z, intensity, signal-to-noise, FWHM.
pub type PeakArrays<'py> = (
    Bound<'py, PyArray1<f64>>,
    Bound<'py, PyArray1<f32>>,
    Bound<'py, PyArray1<f32>>,
    Bound<'py, PyArray1<f32>>,
);

/// The columns of a peak list, moved into numpy.
pub fn peak_arrays(py: Python<'_>, peaks: PeakList) -> PeakArrays<'_> {
    (
        peaks.mz.into_pyarray(py),
        peaks.intensity.into_pyarray(py),
        peaks.snr.into_pyarray(py),
        peaks.fwhm_mz.into_pyarray(py),
    )
}

/// Checks that two arrays can be one spectrum; the messages are the reader's.
pub fn check_arrays(mz: &[f64], intensity: &[f32]) -> PyResult<()> {
    if mz.len() != intensity.len() {
        return Err(Kind::InvalidInput.err(format!(
            "m/z array has {} values but intensity array has {}",
            mz.len(),
            intensity.len()
        )));
    }
    if let Some(i) = mz.iter().position(|v| !v.is_finite()) {
        return Err(Kind::InvalidInput.err(format!("m/z value {i} is not finite")));
    }
    if let Some(i) = intensity.iter().position(|v| !v.is_finite()) {
        return Err(Kind::InvalidInput.err(format!("intensity value {i} is not finite")));
    }
    if let Some(i) = mz.windows(2).position(|w| w[1] < w[0]) {
        return Err(Kind::InvalidInput.err(format!(
            "m/z values must be ascending (value {} is below value {i})",
            i + 1
        )));
    }
    Ok(())
}

/// Centroids one profile spectrum with the centroiding part of `params`.
#[pyfunction]
pub fn centroid<'py>(
    py: Python<'py>,
    mz: PyReadonlyArray1<'py, f64>,
    intensity: PyReadonlyArray1<'py, f32>,
    params: &Params,
) -> PyResult<PeakArrays<'py>> {
    let params: CentroidParams = params.0.centroid.clone();
    let (mz, intensity) = (mz.as_slice()?, intensity.as_slice()?);
    check_arrays(mz, intensity)?;
    let peaks = py.detach(|| {
        let mut peaks = PeakList::default();
        Centroider::new(params).centroid_into(mz, intensity, &mut peaks);
        peaks
    });
    Ok(peak_arrays(py, peaks))
}
