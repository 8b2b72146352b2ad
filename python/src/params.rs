//! Parameters: built here from keyword arguments onto the engine's defaults, validated by
//! the engine, so names, checks and messages are those of `mzforge run` and `run.json`.

use mzforge::isotopes::IsotopeModel;
use mzforge::pipeline::{BadSpectrumPolicy, SignalPolicy};
use mzforge::PipelineParams;
use pyo3::prelude::*;

use crate::errors::{IntoPy, Kind};

/// A validated parameter set.
#[pyclass(frozen, module = "mzforge._mzforge")]
#[derive(Debug, Clone)]
pub struct Params(pub PipelineParams);

#[pymethods]
impl Params {
    /// The parameters as JSON, in `run.json`'s layout.
    fn to_json(&self) -> PyResult<String> {
        to_json(&self.0)
    }
}

fn to_json(params: &PipelineParams) -> PyResult<String> {
    serde_json::to_string(params).map_err(|e| Kind::Other.err(e.to_string()))
}

/// The engine's default parameters, as JSON.
#[pyfunction]
pub fn default_params() -> PyResult<String> {
    to_json(&PipelineParams::default())
}

fn invalid(name: &str, message: impl std::fmt::Display) -> PyErr {
    Kind::InvalidParameter.err(format!("invalid parameter `{name}`: {message}"))
}

fn non_negative(name: &str, value: i64) -> PyResult<usize> {
    usize::try_from(value).map_err(|_| invalid(name, "must be >= 0"))
}

/// Builds and validates a parameter set; every argument is a `mzforge run` option.
#[pyfunction]
#[pyo3(signature = (
    *, threads, ms_levels, signal, on_bad_spectrum, batch_size,
    min_snr, min_intensity, noise_window, spacing_difference_gap, spacing_difference, max_missing,
    deconvolve, charge_range, isotope_model, tolerance_ppm, min_fit,
))]
#[allow(clippy::too_many_arguments)]
pub fn make_params(
    threads: i64,
    ms_levels: Vec<i64>,
    signal: &str,
    on_bad_spectrum: &str,
    batch_size: i64,
    min_snr: f32,
    min_intensity: f32,
    noise_window: f64,
    spacing_difference_gap: f64,
    spacing_difference: f64,
    max_missing: i64,
    deconvolve: bool,
    charge_range: Option<(i64, i64)>,
    isotope_model: &str,
    tolerance_ppm: f64,
    min_fit: f64,
) -> PyResult<Params> {
    let ms_levels = ms_levels
        .into_iter()
        .map(|level| match level {
            0 => Err(invalid("ms_levels", "MS levels start at 1")),
            1..=255 => Ok(level as u8),
            _ => Err(invalid("ms_levels", "MS levels run from 1 to 255")),
        })
        .collect::<PyResult<_>>()?;
    let signal = match signal {
        "auto" => SignalPolicy::Auto,
        "declared" => SignalPolicy::Declared,
        "profile" => SignalPolicy::Profile,
        "centroid" => SignalPolicy::Centroid,
        other => {
            return Err(invalid(
                "signal",
                format!("must be one of auto, declared, profile, centroid, not {other:?}"),
            ))
        }
    };
    let on_bad_spectrum = match on_bad_spectrum {
        "skip" => BadSpectrumPolicy::Skip,
        "fail" => BadSpectrumPolicy::Fail,
        other => {
            return Err(invalid(
                "on_bad_spectrum",
                format!("must be one of skip, fail, not {other:?}"),
            ))
        }
    };
    let mut p = PipelineParams {
        threads: non_negative("threads", threads)?,
        ms_levels,
        signal,
        on_bad_spectrum,
        batch_size: non_negative("batch_size", batch_size)?,
        ..PipelineParams::default()
    };
    p.centroid.min_snr = min_snr;
    p.centroid.min_intensity = min_intensity;
    p.centroid.noise.window_mz = noise_window;
    p.centroid.spacing_difference_gap = spacing_difference_gap;
    p.centroid.spacing_difference = spacing_difference;
    p.centroid.max_missing = non_negative("max_missing", max_missing)?;
    let d = &mut p.deconvolve;
    d.enabled = deconvolve;
    if let Some((low, high)) = charge_range {
        let charge =
            |v: i64| u32::try_from(v).map_err(|_| invalid("charge_range", "charges must be >= 0"));
        d.charge_min = charge(low)?;
        d.charge_max = charge(high)?;
        d.auto_charge = false;
    }
    d.model = match isotope_model {
        "averagine" => IsotopeModel::Averagine,
        "glycan" => IsotopeModel::Glycan,
        "glycopeptide" => IsotopeModel::Glycopeptide,
        "nucleotide" => IsotopeModel::Nucleotide,
        other => {
            return Err(invalid(
                "isotope_model",
                format!(
                    "must be one of averagine, glycan, glycopeptide, nucleotide, not {other:?}"
                ),
            ))
        }
    };
    d.tolerance_ppm = tolerance_ppm;
    d.min_fit = min_fit;
    p.validate().py_err()?;
    Ok(Params(p))
}
