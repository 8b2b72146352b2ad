//! Parameters: built here from keyword arguments onto the engine's defaults (or a config
//! file's values), validated by the engine, so names, checks and messages are those of
//! `mzforge run` (with `--config`) and `run.json`.

use mzforge::isotopes::IsotopeModel;
use mzforge::pipeline::{BadSpectrumPolicy, SignalPolicy};
use mzforge::PipelineParams;
use pyo3::prelude::*;

use crate::errors::{to_py, Kind};

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

/// The parameters of a config file or mapping (`run.json`'s `params` layout), before the
/// keyword arguments override them; the message is the command line's for a bad `--config`.
fn config_params(text: &str, format: &str, origin: &str) -> PyResult<PipelineParams> {
    let parsed = match format {
        "toml" => toml::from_str::<PipelineParams>(text).map_err(|e| e.to_string()),
        "json" => serde_json::from_str::<PipelineParams>(text).map_err(|e| e.to_string()),
        other => return Err(Kind::Other.err(format!("unknown config format {other:?}"))),
    };
    parsed.map_err(|e| {
        Kind::InvalidParameter.err(format!("invalid config {origin}: {}", e.trim_end()))
    })
}

/// Builds and validates a parameter set: the engine's defaults, or the config (`config_text`
/// in `config_format`, named `config_origin` in messages) when one is given, then every
/// argument that is not None, as `mzforge run` applies its flags over `--config`.
#[pyfunction]
#[pyo3(signature = (
    *, config_text=None, config_format="toml", config_origin="<config>",
    threads=None, ms_levels=None, signal=None, on_bad_spectrum=None, batch_size=None,
    min_snr=None, min_intensity=None, noise_window=None, spacing_difference_gap=None,
    spacing_difference=None, max_missing=None,
    deconvolve=None, charge_range=None, isotope_model=None, tolerance_ppm=None, min_fit=None,
))]
#[allow(clippy::too_many_arguments)]
pub fn make_params(
    config_text: Option<&str>,
    config_format: &str,
    config_origin: &str,
    threads: Option<i64>,
    ms_levels: Option<Vec<i64>>,
    signal: Option<&str>,
    on_bad_spectrum: Option<&str>,
    batch_size: Option<i64>,
    min_snr: Option<f32>,
    min_intensity: Option<f32>,
    noise_window: Option<f64>,
    spacing_difference_gap: Option<f64>,
    spacing_difference: Option<f64>,
    max_missing: Option<i64>,
    deconvolve: Option<bool>,
    charge_range: Option<(i64, i64)>,
    isotope_model: Option<&str>,
    tolerance_ppm: Option<f64>,
    min_fit: Option<f64>,
) -> PyResult<Params> {
    let mut p = match config_text {
        Some(text) => config_params(text, config_format, config_origin)?,
        None => PipelineParams::default(),
    };
    if let Some(v) = threads {
        p.threads = non_negative("threads", v)?;
    }
    let ms_levels_given = ms_levels.is_some();
    if let Some(levels) = ms_levels {
        p.ms_levels = levels
            .into_iter()
            .map(|level| match level {
                0 => Err(invalid("ms_levels", "MS levels start at 1")),
                1..=255 => Ok(level as u8),
                _ => Err(invalid("ms_levels", "MS levels run from 1 to 255")),
            })
            .collect::<PyResult<_>>()?;
    }
    if let Some(v) = signal {
        p.signal = match v {
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
    }
    if let Some(v) = on_bad_spectrum {
        p.on_bad_spectrum = match v {
            "skip" => BadSpectrumPolicy::Skip,
            "fail" => BadSpectrumPolicy::Fail,
            other => {
                return Err(invalid(
                    "on_bad_spectrum",
                    format!("must be one of skip, fail, not {other:?}"),
                ))
            }
        };
    }
    if let Some(v) = batch_size {
        p.batch_size = non_negative("batch_size", v)?;
    }
    let c = &mut p.centroid;
    if let Some(v) = min_snr {
        c.min_snr = v;
    }
    if let Some(v) = min_intensity {
        c.min_intensity = v;
    }
    if let Some(v) = noise_window {
        c.noise.window_mz = v;
    }
    if let Some(v) = spacing_difference_gap {
        c.spacing_difference_gap = v;
    }
    if let Some(v) = spacing_difference {
        c.spacing_difference = v;
    }
    if let Some(v) = max_missing {
        c.max_missing = non_negative("max_missing", v)?;
    }
    let d = &mut p.deconvolve;
    if let Some(v) = deconvolve {
        d.enabled = v;
    }
    if let Some((low, high)) = charge_range {
        let charge = |v: i64| match u32::try_from(v) {
            Ok(z) => Ok(z),
            // Too large for any charge: the engine's check below names its limit.
            Err(_) if v > 0 => Ok(u32::MAX),
            Err(_) => Err(invalid("charge_range", "charges must be >= 0")),
        };
        d.charge_min = charge(low)?;
        d.charge_max = charge(high)?;
        d.auto_charge = false;
    }
    if let Some(v) = isotope_model {
        d.model = match v {
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
    }
    if let Some(v) = tolerance_ppm {
        d.tolerance_ppm = v;
    }
    if let Some(v) = min_fit {
        d.min_fit = v;
    }
    if let Err(error) = p.validate() {
        // Named as the caller gave it: by the keyword that set it, else by its path in the
        // config (the engine names the path alone).
        let keywords = [
            ("threads", "threads", threads.is_some()),
            ("ms_levels", "ms_levels", ms_levels_given),
            ("batch_size", "batch_size", batch_size.is_some()),
            ("centroid.min_snr", "min_snr", min_snr.is_some()),
            (
                "centroid.min_intensity",
                "min_intensity",
                min_intensity.is_some(),
            ),
            (
                "centroid.noise.window_mz",
                "noise_window",
                noise_window.is_some(),
            ),
            (
                "centroid.spacing_difference_gap",
                "spacing_difference_gap",
                spacing_difference_gap.is_some(),
            ),
            (
                "centroid.spacing_difference",
                "spacing_difference",
                spacing_difference.is_some(),
            ),
            (
                "deconvolve.charge_min",
                "charge_range",
                charge_range.is_some(),
            ),
            (
                "deconvolve.charge_max",
                "charge_range",
                charge_range.is_some(),
            ),
            (
                "deconvolve.tolerance_ppm",
                "tolerance_ppm",
                tolerance_ppm.is_some(),
            ),
            ("deconvolve.min_fit", "min_fit", min_fit.is_some()),
        ];
        let mzforge::Error::InvalidParameter { name, message } = &error else {
            return Err(to_py(error));
        };
        let keyword = keywords
            .iter()
            .find(|(path, _, given)| path == name && *given);
        return Err(match (keyword, config_text) {
            (Some((_, keyword, _)), _) => invalid(keyword, message),
            (None, Some(_)) => Kind::InvalidParameter.err(format!(
                "invalid parameter `{name}` in {config_origin}: {message}"
            )),
            (None, None) => to_py(error),
        });
    }
    Ok(Params(p))
}
