//! An analysis: the request that starts it, the manifest that Batch and Lambda work from, the
//! per-input probe of `preprocess`, and where everything lives in the results bucket.
//!
//! ```text
//! uploads bucket  requests/<analysisId>.json               the request (written by the API)
//! results bucket  analyses/<analysisId>/analysis.json      the manifest (preprocess)
//!                 analyses/<analysisId>/results/<stem>/    one result per input (analyze / Batch)
//!                     spectra.parquet peaks.parquet run.json manifest.json(last)
//!                 analyses/<analysisId>/summary.json       QC per input (postprocess, last)
//!                 analyses/<analysisId>/failure.json       when it failed (record-failure)
//! ```
//!
//! The JSON forms are documented as JSON Schemas in `batch-runner/schemas/`.

use std::collections::BTreeMap;
use std::time::Instant;

use mzforge::signal::detect_signal_kind;
use mzforge::{PipelineParams, SignalKind, SpectrumReader};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::remote::Input;
use crate::storage::{Location, Storage};

/// Key of an analysis's manifest in the results bucket.
pub fn manifest_key(analysis_id: &str) -> String {
    format!("analyses/{analysis_id}/analysis.json")
}

/// Prefix of an analysis's per-input results in the results bucket.
pub fn results_prefix(analysis_id: &str) -> String {
    format!("analyses/{analysis_id}/results")
}

/// Key of an analysis's summary in the results bucket.
pub fn summary_key(analysis_id: &str) -> String {
    format!("analyses/{analysis_id}/summary.json")
}

/// Key of an analysis's failure record in the results bucket.
pub fn failure_key(analysis_id: &str) -> String {
    format!("analyses/{analysis_id}/failure.json")
}

/// Analysis ids are also Step Functions execution names and key segments.
pub fn check_analysis_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= 80
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            "analysisId",
            format!("{id:?}: 1-80 characters of A-Z a-z 0-9 - _"),
        ))
    }
}

/// Thresholds of the Lambda-or-Batch decision, and of the work Lambda accepts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct Routing {
    /// Largest input (bytes) analysed in Lambda. Default 128 MiB.
    pub lambda_max_bytes: u64,
    /// Most spectra in one input analysed in Lambda. Default 50 000.
    pub lambda_max_spectra: u64,
    /// Most inputs of an analysis run in Lambda (one invocation each). Default 100, which is
    /// also the most ([`MAP_MAX_INPUTS`]).
    pub lambda_max_inputs: usize,
    /// Inputs up to this size are read whole by preprocess (counts are exact); larger ones
    /// only at their head. Default 256 MiB.
    pub scan_max_bytes: u64,
    /// Throughput assumed by analyze's up-front time check (bytes per second). Default 8 MB/s.
    pub lambda_bytes_per_second: u64,
}

impl Default for Routing {
    fn default() -> Self {
        Routing {
            lambda_max_bytes: 128 << 20,
            lambda_max_spectra: 50_000,
            lambda_max_inputs: 100,
            scan_max_bytes: 256 << 20,
            lambda_bytes_per_second: 8_000_000,
        }
    }
}

/// `requests/<analysisId>.json`: what to analyse and how.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Request {
    /// Keys in the request's bucket, `s3://` URLs, prefixes ending in `/`, or key patterns.
    pub inputs: Vec<String>,
    /// Pipeline parameters (the names of `run.json`'s `params`); omitted ones take defaults.
    #[serde(default)]
    pub params: Option<serde_json::Value>,
    /// Also write `centroided.mzML` per input.
    #[serde(default)]
    pub mzml: bool,
    /// The peak list of `centroided.mzML`: `centroids` (default) or `deconvolved`.
    #[serde(default)]
    pub mzml_peaks: mzforge::MzmlPeaks,
    /// Routing thresholds.
    #[serde(default)]
    pub routing: Routing,
}

impl Request {
    /// Parameters: defaults overlaid with the request's, validated.
    pub fn resolved_params(&self) -> Result<PipelineParams> {
        let params: PipelineParams = match &self.params {
            None => PipelineParams::default(),
            Some(value) => serde_json::from_value(value.clone())
                .map_err(|e| Error::invalid("request params", e))?,
        };
        params
            .validate()
            .map_err(|e| Error::invalid("request params", e))?;
        Ok(params)
    }
}

/// How much of an input preprocess read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scan {
    /// The whole input: counts are exact.
    Full,
    /// Only its head (large input, or the time budget ran out): counts are a lower bound.
    Head,
    /// The input could not be read (unreadable, broken or missing): its failure is recorded
    /// in its result prefix and the analysis goes on with the others. Counts are 0.
    Failed,
}

/// One input of an analysis, as preprocess found it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AnalysisInput {
    /// Position in the analysis, from 0 (`AWS_BATCH_JOB_ARRAY_INDEX` picks it).
    pub index: usize,
    /// `s3://bucket/key`.
    pub url: String,
    /// Size in bytes.
    pub bytes: u64,
    /// ETag when probed.
    pub e_tag: Option<String>,
    /// Result directory name under the results prefix.
    pub stem: String,
    /// `mzml` or `mgf`.
    pub format: String,
    /// Whether the object is gzip-compressed.
    pub gzip: bool,
    /// How much was read.
    pub scan: Scan,
    /// Spectra seen.
    pub spectra: u64,
    /// Spectra seen per MS level (keys are levels).
    pub spectra_per_level: BTreeMap<String, u64>,
    /// Spectra whose data look like profile.
    pub profile_spectra: u64,
    /// Spectra whose data look like centroid.
    pub centroid_spectra: u64,
    /// The spectrum count the file declares, if any.
    pub declared_spectra: Option<u64>,
}

/// `analyses/<analysisId>/analysis.json`: what Batch jobs and Lambda analyses work from.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AnalysisManifest {
    /// The analysis.
    pub analysis_id: String,
    /// Resolved, validated parameters.
    pub params: PipelineParams,
    /// Also write `centroided.mzML`.
    pub mzml: bool,
    /// Its peak list.
    #[serde(default)]
    pub mzml_peaks: mzforge::MzmlPeaks,
    /// `s3://<results>/analyses/<id>/results`: each input gets `<output>/<stem>/`.
    pub output: String,
    /// `lambda` or `batch`.
    pub route: String,
    /// Thresholds used.
    pub routing: Routing,
    /// The inputs, in order.
    pub inputs: Vec<AnalysisInput>,
}

impl AnalysisManifest {
    /// The mzML each input gets, if any.
    pub fn mzml_output(&self) -> Option<mzforge::MzmlPeaks> {
        self.mzml.then_some(self.mzml_peaks)
    }

    /// Reads a manifest from `s3://bucket/key`.
    pub fn load(storage: &Storage, bucket: &str, key: &str) -> Result<AnalysisManifest> {
        let manifest: AnalysisManifest = storage.get_json(bucket, key)?.ok_or_else(|| {
            Error::invalid("manifest", format!("s3://{bucket}/{key} does not exist"))
        })?;
        manifest.check()?;
        Ok(manifest)
    }

    /// Inputs in order, each with the result name [`mzforge::output::result_dir_names`] gives
    /// it (so no two alike: array children run at once, two would write one prefix), and
    /// valid parameters.
    fn check(&self) -> Result<()> {
        let file_names = self
            .inputs
            .iter()
            .map(|input| Location::parse(&input.url).map(|l| l.file_name()))
            .collect::<Result<Vec<_>>>()?;
        let names = mzforge::output::result_dir_names(&file_names);
        for (i, (input, name)) in self.inputs.iter().zip(&names).enumerate() {
            if input.index != i {
                return Err(Error::invalid(
                    "manifest",
                    format!("input {i} has index {}", input.index),
                ));
            }
            if input.stem != *name {
                return Err(Error::invalid(
                    "manifest",
                    format!(
                        "input {i} ({}) has stem {:?}, but its result is written under {name:?}",
                        input.url, input.stem
                    ),
                ));
            }
        }
        self.params
            .validate()
            .map_err(|e| Error::invalid("manifest params", e))
    }

    /// The output prefix as a location.
    pub fn output_location(&self) -> Result<Location> {
        match Location::parse(&self.output)? {
            Location::Local(_) => Err(Error::invalid(
                "manifest",
                format!("output {:?} is not an s3:// prefix", self.output),
            )),
            location => Ok(location),
        }
    }

    /// Resolves input `index` to an object (it must still exist, with the same ETag); its
    /// download is started (see [`Storage::look_up_and_start`]).
    pub fn input(&self, storage: &Storage, index: usize) -> Result<Input> {
        let entry = self.inputs.get(index).ok_or_else(|| {
            Error::invalid(
                "array index",
                format!("{index} but the manifest has {} inputs", self.inputs.len()),
            )
        })?;
        let Location::S3 { bucket, key } = Location::parse(&entry.url)? else {
            return Err(Error::invalid(
                "manifest",
                format!("{} is not s3://", entry.url),
            ));
        };
        let meta = storage.look_up_and_start(&bucket, &key)?;
        if entry.e_tag.is_some() && meta.e_tag != entry.e_tag {
            storage.forget_started();
            return Err(Error::invalid(
                "input",
                format!("{} changed since the analysis was prepared", entry.url),
            ));
        }
        Ok(Input::Object { bucket, meta })
    }
}

/// Spectra read at most from an input's head when it is not read whole.
pub const HEAD_SPECTRA: u64 = 64;

/// Reads an input (whole, or its head when it is larger than `scan_max_bytes` or `deadline`
/// comes): it must be readable mzML/MGF. Counts spectra per level and profile/centroid (as the
/// data look).
pub fn probe(
    storage: &Storage,
    input: &Input,
    index: usize,
    result_name: &str,
    routing: &Routing,
    deadline: Option<Instant>,
) -> Result<AnalysisInput> {
    let Input::Object { bucket, meta } = input else {
        return Err(Error::Internal("probe of a local file".into()));
    };
    let object = storage.open_read(bucket, meta, 0)?;
    let progress = object.progress();
    let url = input.url();
    let broken = |e: mzforge::Error| match progress.failure() {
        Some(message) => Error::Download {
            url: url.clone(),
            message,
        },
        None => Error::Engine(e),
    };
    let mut reader = SpectrumReader::from_reader(&url, Box::new(object)).map_err(&broken)?;
    let whole = meta.size <= routing.scan_max_bytes;
    let info = reader.info().clone();
    let mut found = AnalysisInput {
        index,
        url: url.clone(),
        bytes: meta.size,
        e_tag: meta.e_tag.clone(),
        stem: result_name.to_string(),
        format: match info.format {
            Some(mzforge::InputFormat::Mgf) => "mgf".into(),
            _ => "mzml".into(),
        },
        gzip: info.gzip,
        scan: Scan::Full,
        spectra: 0,
        spectra_per_level: BTreeMap::new(),
        profile_spectra: 0,
        centroid_spectra: 0,
        declared_spectra: info.declared_spectrum_count,
    };
    let mut scratch = Vec::new();
    loop {
        if (!whole && found.spectra >= HEAD_SPECTRA)
            || deadline.is_some_and(|d| Instant::now() >= d)
        {
            found.scan = Scan::Head;
            break;
        }
        let raw = match reader.next_raw() {
            Ok(Some(raw)) => raw,
            Ok(None) => break,
            // A spectrum that cannot be read is the pipeline's business too (skipped and
            // reported by the run, as one that cannot be decoded): counted, and reading goes on.
            Err(mzforge::Error::BadSpectrum { .. }) => {
                found.spectra += 1;
                continue;
            }
            Err(e) => return Err(broken(e)),
        };
        found.spectra += 1;
        let meta = raw.meta();
        *found
            .spectra_per_level
            .entry(meta.ms_level.to_string())
            .or_default() += 1;
        // A spectrum that cannot be decoded is the pipeline's business (skip and report).
        if let Ok((spectrum, _)) = raw.decode(reader.path()) {
            match detect_signal_kind(&spectrum.mz, &spectrum.intensity, &mut scratch)
                .or(meta.declared_signal)
            {
                Some(SignalKind::Profile) => found.profile_spectra += 1,
                Some(SignalKind::Centroid) => found.centroid_spectra += 1,
                None => {}
            }
        }
    }
    Ok(found)
}

/// The entry of an input `probe` could not read: counts 0, [`Scan::Failed`].
pub fn failed_probe(input: &Input, index: usize, result_name: &str) -> AnalysisInput {
    let (bytes, e_tag) = match input {
        Input::Object { meta, .. } => (meta.size, meta.e_tag.clone()),
        Input::Local(_) => (0, None),
    };
    let url = input.url();
    let lower = url.to_ascii_lowercase();
    AnalysisInput {
        index,
        format: if lower.ends_with(".mgf") || lower.ends_with(".mgf.gz") {
            "mgf"
        } else {
            "mzml"
        }
        .into(),
        gzip: lower.ends_with(".gz"),
        url,
        bytes,
        e_tag,
        stem: result_name.to_string(),
        scan: Scan::Failed,
        spectra: 0,
        spectra_per_level: BTreeMap::new(),
        profile_spectra: 0,
        centroid_spectra: 0,
        declared_spectra: None,
    }
}

/// Most inputs the Lambda route takes, whatever `lambdaMaxInputs` says: its Map gathers every
/// input's entry (about 400 bytes) and analyze answer (about 800) into the execution's state,
/// which Step Functions caps at 256 KiB; going over fails the execution past any Catch.
pub const MAP_MAX_INPUTS: usize = 100;

/// Most inputs one analysis takes: an AWS Batch array job has at most 10,000 children, one
/// per input. Past it Batch's own refusal would come after every input was probed.
pub const MAX_INPUTS: usize = 10_000;

/// Refuses an analysis of more inputs than [`MAX_INPUTS`], in words.
pub fn check_input_count(count: usize) -> Result<()> {
    if count > MAX_INPUTS {
        return Err(Error::invalid(
            "request",
            format!(
                "{count} inputs; an analysis takes at most {MAX_INPUTS} (one AWS Batch array \
                 child each): split it into several analyses"
            ),
        ));
    }
    Ok(())
}

/// Lambda or Batch: Lambda when every input was read whole and is within the thresholds.
pub fn route(inputs: &[AnalysisInput], routing: &Routing) -> &'static str {
    // An input that could not be read costs nothing to route.
    let small = inputs.len() <= routing.lambda_max_inputs.min(MAP_MAX_INPUTS)
        && inputs.iter().filter(|i| i.scan != Scan::Failed).all(|i| {
            i.scan == Scan::Full
                && i.bytes <= routing.lambda_max_bytes
                && i.spectra <= routing.lambda_max_spectra
        });
    if small {
        "lambda"
    } else {
        "batch"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(bytes: u64, spectra: u64, scan: Scan) -> AnalysisInput {
        AnalysisInput {
            index: 0,
            url: "s3://b/k.mzML".into(),
            bytes,
            e_tag: None,
            stem: "k".into(),
            format: "mzml".into(),
            gzip: false,
            scan,
            spectra,
            spectra_per_level: BTreeMap::new(),
            profile_spectra: 0,
            centroid_spectra: 0,
            declared_spectra: None,
        }
    }

    #[test]
    fn routing_thresholds() {
        let r = Routing::default();
        assert_eq!(route(&[input(1 << 20, 100, Scan::Full)], &r), "lambda");
        assert_eq!(route(&[input(1 << 30, 100, Scan::Full)], &r), "batch");
        assert_eq!(route(&[input(1 << 20, 100_000, Scan::Full)], &r), "batch");
        assert_eq!(route(&[input(1 << 20, 10, Scan::Head)], &r), "batch");
        // More inputs than the Map's state can hold go to Batch, whatever the request says.
        let many = vec![input(1 << 10, 10, Scan::Full); MAP_MAX_INPUTS + 1];
        let generous = Routing {
            lambda_max_inputs: 10_000,
            ..Routing::default()
        };
        assert_eq!(route(&many, &generous), "batch");
        assert_eq!(route(&many[1..], &generous), "lambda");
    }

    #[test]
    fn more_inputs_than_a_batch_array_holds_are_refused_in_words() {
        assert!(check_input_count(MAX_INPUTS).is_ok());
        let message = check_input_count(MAX_INPUTS + 1).unwrap_err().to_string();
        assert!(
            message.contains("10001 inputs") && message.contains("at most 10000"),
            "{message}"
        );
    }

    fn manifest(inputs: Vec<AnalysisInput>) -> AnalysisManifest {
        AnalysisManifest {
            analysis_id: "a".into(),
            params: PipelineParams::default(),
            mzml: false,
            mzml_peaks: Default::default(),
            output: "s3://r/analyses/a/results".into(),
            route: "batch".into(),
            routing: Routing::default(),
            inputs,
        }
    }

    fn at(index: usize, url: &str, stem: &str) -> AnalysisInput {
        AnalysisInput {
            index,
            url: url.into(),
            stem: stem.into(),
            ..input(1, 1, Scan::Full)
        }
    }

    /// Two inputs with one result name would be written by two array children into one prefix
    /// at once, and postprocess would count both as done: a manifest names each input's result
    /// as `result_dir_names` does, or is refused.
    #[test]
    fn manifests_with_colliding_or_wrong_stems_are_refused() {
        let good = manifest(vec![
            at(0, "s3://b/x/run.mzML", "run"),
            at(1, "s3://b/y/other.mgf", "other"),
        ]);
        assert!(good.check().is_ok());
        let numbered = manifest(vec![
            at(0, "s3://b/plate1/A1.mzML", "A1"),
            at(1, "s3://b/plate2/A1.mzML.gz", "A1-2"),
        ]);
        assert!(numbered.check().is_ok());
        let collide = manifest(vec![
            at(0, "s3://b/x/run.mzML", "run"),
            at(1, "s3://b/y/run.mzML.gz", "run"),
        ]);
        let error = collide.check().unwrap_err();
        assert_eq!(error.kind().exit_code(), 78);
        assert!(
            error.to_string().contains("input 1") && error.to_string().contains("\"run-2\""),
            "{error}"
        );
        let wrong = manifest(vec![at(0, "s3://b/x/run.mzML", "other")]);
        assert!(wrong.check().is_err());
        let order = manifest(vec![at(1, "s3://b/x/run.mzML", "run")]);
        assert!(order.check().is_err());
    }

    #[test]
    fn analysis_ids() {
        assert!(check_analysis_id("a-1_B").is_ok());
        assert!(check_analysis_id("../x").is_err());
        assert!(check_analysis_id("").is_err());
    }
}
