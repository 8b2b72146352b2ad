//! The four steps, synchronous (run on a blocking thread by [`super::handle`]).

use std::time::{Duration, Instant};

use mzforge::Pipeline;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::{Environment, Step};
use crate::analysis::{self, AnalysisInput, AnalysisManifest, Request};
use crate::error::{Error, Result};
use crate::fan_out;
use crate::remote::{
    self, InputFailure, Job, Qc, ResultManifest, INPUT_FAILURE_FILE, MANIFEST_FILE,
};
use crate::storage::{s3_url, Location};

/// Runs `step` on `payload`.
pub fn run(
    step: Step,
    env: &Environment,
    payload: Value,
    deadline: Option<Instant>,
) -> Result<Value> {
    match step {
        Step::Preprocess => preprocess(env, parse(payload)?, deadline),
        Step::Analyze => analyze(env, parse(payload)?, deadline),
        Step::Postprocess => postprocess(env, parse(payload)?),
        Step::RecordFailure => record_failure(env, payload),
    }
}

fn parse<T: serde::de::DeserializeOwned>(payload: Value) -> Result<T> {
    serde_json::from_value(payload).map_err(|e| Error::invalid("event", e))
}

/// Time left before `deadline`, less a share kept for publishing and answering.
fn budget(deadline: Option<Instant>, keep_fraction: f64, keep_min: Duration) -> Option<Instant> {
    deadline.map(|d| {
        let left = d.saturating_duration_since(Instant::now());
        let keep = left.mul_f64(keep_fraction).max(keep_min);
        Instant::now() + left.saturating_sub(keep)
    })
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RequestRef {
    bucket: String,
    key: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PreprocessEvent {
    analysis_id: String,
    request: RequestRef,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct PreprocessOutput {
    analysis_id: String,
    route: &'static str,
    inputs: Vec<AnalysisInput>,
    input_count: usize,
    manifest_key: String,
    results_bucket: String,
    output: String,
    params: mzforge::PipelineParams,
    mzml: bool,
    mzml_peaks: mzforge::MzmlPeaks,
    routing: analysis::Routing,
    total_bytes: u64,
}

fn preprocess(
    env: &Environment,
    event: PreprocessEvent,
    deadline: Option<Instant>,
) -> Result<Value> {
    analysis::check_analysis_id(&event.analysis_id)?;
    let storage = &env.storage;
    let results = env.results_bucket()?.to_string();
    let request_url = s3_url(&event.request.bucket, &event.request.key);
    let bytes = storage
        .get_bytes(&event.request.bucket, &event.request.key)?
        .ok_or(Error::Missing {
            url: request_url.clone(),
        })?;
    let request: Request = serde_json::from_slice(&bytes)
        .map_err(|e| Error::invalid(format!("request {request_url}"), e))?;
    let params = request.resolved_params()?;
    if request.inputs.is_empty() {
        return Err(Error::invalid("request", "no inputs"));
    }
    let patterns: Vec<String> = request
        .inputs
        .iter()
        .map(|i| {
            if Location::is_remote(i) {
                i.clone()
            } else {
                s3_url(&event.request.bucket, i.trim_start_matches('/'))
            }
        })
        .collect();
    let inputs = remote::resolve_inputs(Some(storage), &patterns)?;
    analysis::check_input_count(inputs.len())?;
    // Inputs of one name (a plate per folder, a well per file) get results of their own:
    // `A1`, `A1-2`.
    let file_names: Vec<String> = inputs.iter().map(remote::Input::file_name).collect();
    let names = mzforge::output::result_dir_names(&file_names);
    let probe_deadline = budget(deadline, 0.25, Duration::from_secs(5));
    let output = s3_url(&results, &analysis::results_prefix(&event.analysis_id));
    let out = Location::parse(&output)?;
    // An input that cannot be read is recorded as failed (its result prefix says why) and the
    // analysis goes on with the others; when none can be read the analysis fails here.
    let (probed, failures): (Vec<_>, Vec<_>) =
        fan_out::try_map(&inputs, fan_out::STEP_WORKERS, |i, input| {
            let name = &names[i];
            match analysis::probe(storage, input, i, name, &request.routing, probe_deadline) {
                Err(error) if remote::is_input_failure(&error) => {
                    remote::record_input_failure(storage, &out, name, &input.url(), &error)?;
                    Ok((analysis::failed_probe(input, i, name), Some(error)))
                }
                other => other.map(|found| (found, None)),
            }
        })?
        .into_iter()
        .unzip();
    if probed.iter().all(|i| i.scan == analysis::Scan::Failed) {
        if let Some(error) = failures.into_iter().flatten().next() {
            return Err(error);
        }
    }
    let route = analysis::route(&probed, &request.routing);
    let manifest = AnalysisManifest {
        analysis_id: event.analysis_id.clone(),
        params: params.clone(),
        mzml: request.mzml,
        mzml_peaks: request.mzml_peaks,
        output,
        route: route.to_string(),
        routing: request.routing.clone(),
        inputs: probed.clone(),
    };
    let manifest_key = analysis::manifest_key(&event.analysis_id);
    storage.put_json(&results, &manifest_key, &manifest)?;
    // The answer becomes the execution's state, capped at 256 KiB (going over fails the
    // execution past any Catch). The Lambda route's Map iterates `inputs` (at most
    // `MAP_MAX_INPUTS`); Batch jobs read them from analysis.json, so the batch route's answer
    // lists none: some 700 inputs would not fit.
    let output = PreprocessOutput {
        analysis_id: event.analysis_id,
        route,
        input_count: probed.len(),
        total_bytes: probed.iter().map(|i| i.bytes).sum(),
        inputs: if route == "lambda" {
            probed
        } else {
            Vec::new()
        },
        manifest_key,
        results_bucket: results,
        output: manifest.output,
        params,
        mzml: request.mzml,
        mzml_peaks: request.mzml_peaks,
        routing: request.routing,
    };
    serde_json::to_value(output).map_err(|e| Error::Internal(e.to_string()))
}

/// Warnings listed in analyze's answer (the count covers them all).
const ANSWER_WARNINGS: usize = 1;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AnalyzeEvent {
    analysis_id: String,
    /// The Map item: the input as preprocess returned it.
    input: AnalysisInput,
    /// The Map index (must agree with the input's).
    #[serde(default)]
    index: Option<usize>,
    #[serde(default)]
    manifest_key: Option<String>,
}

fn analyze(env: &Environment, event: AnalyzeEvent, deadline: Option<Instant>) -> Result<Value> {
    analysis::check_analysis_id(&event.analysis_id)?;
    let results = env.results_bucket()?;
    let key = event
        .manifest_key
        .unwrap_or_else(|| analysis::manifest_key(&event.analysis_id));
    let manifest = AnalysisManifest::load(&env.storage, results, &key)?;
    let index = event.index.unwrap_or(event.input.index);
    if index != event.input.index
        || manifest.inputs.get(index).map(|i| &i.url) != Some(&event.input.url)
    {
        return Err(Error::invalid(
            "event",
            format!(
                "input {} at index {index} is not the manifest's",
                event.input.url
            ),
        ));
    }
    let entry = &manifest.inputs[index];
    // Refuse up front what cannot finish: the estimate is the input's size at the assumed
    // throughput, plus start-up.
    if let Some(deadline) = deadline {
        let left = deadline
            .saturating_duration_since(Instant::now())
            .as_secs_f64();
        let needed =
            entry.bytes as f64 / manifest.routing.lambda_bytes_per_second.max(1) as f64 + 2.0;
        if needed > left * 0.8 {
            return Err(Error::TimeBudget {
                what: entry.url.clone(),
                seconds_left: left,
                reason: format!(
                    "{} bytes at {} bytes/s need about {needed:.0} s",
                    entry.bytes, manifest.routing.lambda_bytes_per_second
                ),
            });
        }
    }
    let pipeline = Pipeline::new(manifest.params.clone())?.keep_source_descriptions(manifest.mzml);
    let job = Job {
        pipeline: &pipeline,
        storage: Some(&env.storage),
        mzml: manifest.mzml_output(),
        deadline: budget(deadline, 0.1, Duration::from_secs(3)),
        force: false,
    };
    let out = manifest.output_location()?;
    let processed = manifest
        .input(&env.storage, index)
        .and_then(|input| remote::process(&job, &input, &out.join(&entry.stem)));
    let mut done = match processed {
        Ok(done) => done,
        // The input's own fault: recorded in its result prefix; the Map (and the analysis) goes
        // on with the other inputs, and postprocess lists it.
        Err(error) if remote::is_input_failure(&error) => {
            let failure =
                remote::record_input_failure(&env.storage, &out, &entry.stem, &entry.url, &error)?;
            return Ok(json!({
                "analysisId": manifest.analysis_id,
                "index": index,
                "input": entry.url,
                "stem": entry.stem,
                "status": "failed",
                "error": failure.error,
                "cause": failure.cause,
            }));
        }
        Err(error) => return Err(error),
    };
    // The Map gathers every answer into the execution's state, which Step Functions caps at
    // 256 KiB; going over fails the execution past any Catch, so not even failure.json is
    // written. Up to 100 warnings per input (a skipped spectrum each) would, so the answer
    // carries the first only; all of them are in the result's manifest.json and summary.json.
    done.qc.warnings.truncate(ANSWER_WARNINGS);
    Ok(json!({
        "analysisId": manifest.analysis_id,
        "index": index,
        "input": entry.url,
        "stem": entry.stem,
        "status": done.status,
        "output": done.output,
        "qc": done.qc,
        "elapsedSeconds": done.elapsed_seconds,
    }))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PostprocessEvent {
    analysis_id: String,
    #[serde(default)]
    manifest_key: Option<String>,
    /// The Batch task's answer, in the state when Batch analysed the inputs: also when the
    /// Lambda route handed them over (an input too slow for a Lambda).
    #[serde(default)]
    batch_job: Option<Value>,
}

/// An input of the analysis without a result, and why (its `failure.json`).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct FailedInput {
    index: usize,
    input: String,
    error: String,
    cause: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct InputSummary {
    index: usize,
    input: String,
    output: String,
    #[serde(flatten)]
    qc: Qc,
}

fn postprocess(env: &Environment, event: PostprocessEvent) -> Result<Value> {
    analysis::check_analysis_id(&event.analysis_id)?;
    let storage = &env.storage;
    let results = env.results_bucket()?;
    let key = event
        .manifest_key
        .unwrap_or_else(|| analysis::manifest_key(&event.analysis_id));
    let manifest = AnalysisManifest::load(storage, results, &key)?;
    let Location::S3 {
        bucket,
        key: prefix,
    } = manifest.output_location()?
    else {
        return Err(Error::Internal("output is not s3".into()));
    };
    // Each input's result manifest, or else the record of its failure.
    let published = fan_out::try_map(&manifest.inputs, fan_out::STEP_WORKERS, |_, entry| {
        let result_prefix = format!("{prefix}/{}", entry.stem);
        let result = storage
            .get_json::<ResultManifest>(&bucket, &format!("{result_prefix}/{MANIFEST_FILE}"))?;
        if result.as_ref().is_some_and(|r| r.complete) {
            return Ok((result, None));
        }
        let failure = storage
            .get_json::<InputFailure>(&bucket, &format!("{result_prefix}/{INPUT_FAILURE_FILE}"))?;
        Ok((None, failure))
    })?;
    let mut inputs = Vec::new();
    let mut failed = Vec::new();
    let mut missing = Vec::new();
    for (entry, published) in manifest.inputs.iter().zip(published) {
        match published {
            (Some(result), _) => inputs.push(InputSummary {
                index: entry.index,
                input: entry.url.clone(),
                output: s3_url(&bucket, &format!("{prefix}/{}", entry.stem)),
                qc: result.qc,
            }),
            (None, Some(failure)) => failed.push(FailedInput {
                index: entry.index,
                input: entry.url.clone(),
                error: failure.error,
                cause: failure.cause,
            }),
            (None, None) => missing.push(entry.url.clone()),
        }
    }
    if !missing.is_empty() {
        return Err(Error::Incomplete {
            analysis_id: manifest.analysis_id,
            missing,
        });
    }
    if inputs.is_empty() {
        // Nothing to show: the analysis failed, for the first input's reason (whose cause
        // names the input already, as the engine's errors do).
        let first =
            failed
                .first()
                .map_or_else(String::new, |f| match f.cause.starts_with(&f.input) {
                    true => f.cause.clone(),
                    false => format!("{}: {}", f.input, f.cause),
                });
        return Err(Error::NoInputUsable {
            count: failed.len(),
            first,
        });
    }
    let totals = json!({
        "spectra": inputs.iter().map(|i| i.qc.spectra_written).sum::<u64>(),
        "peaks": inputs.iter().map(|i| i.qc.peaks).sum::<u64>(),
        "tic": inputs.iter().map(|i| i.qc.tic_total).sum::<f64>(),
        "warnings": inputs.iter().map(|i| i.qc.warnings_total).sum::<u64>(),
    });
    let summary = json!({
        "analysisId": manifest.analysis_id,
        "status": "complete",
        "mzforgeVersion": mzforge::VERSION,
        "route": if event.batch_job.is_some() { "batch" } else { manifest.route.as_str() },
        "completedAt": std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default(),
        "params": manifest.params,
        "inputs": inputs,
        "failed": failed,
        "totals": totals,
    });
    let summary_key = analysis::summary_key(&manifest.analysis_id);
    storage.put_json(results, &summary_key, &summary)?;
    Ok(json!({
        "analysisId": manifest.analysis_id,
        "status": "complete",
        "summaryKey": summary_key,
        "inputCount": manifest.inputs.len(),
        "failedCount": failed.len(),
        "totals": totals,
    }))
}

/// Records a failure: always answers (a failing failure handler would hide the first error);
/// `recorded` says whether `failure.json` could be written.
fn record_failure(env: &Environment, payload: Value) -> Result<Value> {
    let analysis_id = payload
        .get("analysisId")
        .and_then(Value::as_str)
        .map(str::to_string);
    let error = payload.get("error").cloned().unwrap_or(Value::Null);
    let name = error
        .get("Error")
        .and_then(Value::as_str)
        .unwrap_or("Mzforge.Unknown")
        .to_string();
    // A Lambda error's Cause is the JSON of {errorType, errorMessage}; unwrap it for people.
    let cause_text = error
        .get("Cause")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let cause = serde_json::from_str::<Value>(&cause_text)
        .ok()
        .and_then(|c| {
            c.get("errorMessage")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .unwrap_or(cause_text);
    let retryable = name == crate::FailureKind::Transient.error_name();
    let record = json!({
        "analysisId": analysis_id,
        "status": "failed",
        "error": name,
        "cause": cause,
        "retryable": retryable,
        "failedAt": std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default(),
    });
    let mut recorded = false;
    let mut failure_key = Value::Null;
    let mut note = Value::Null;
    match (&analysis_id, env.results_bucket.as_deref()) {
        (Some(id), Some(bucket)) if analysis::check_analysis_id(id).is_ok() => {
            let key = analysis::failure_key(id);
            match env.storage.put_json(bucket, &key, &record) {
                Ok(_) => {
                    recorded = true;
                    failure_key = Value::String(key);
                }
                Err(e) => note = Value::String(e.chain()),
            }
        }
        _ => note = Value::String("no valid analysisId or results bucket".into()),
    }
    eprintln!(
        "{}",
        json!({"level": "error", "failure": record, "recorded": recorded})
    );
    Ok(json!({
        "analysisId": analysis_id,
        "status": "failed",
        "error": name,
        "cause": cause,
        "retryable": retryable,
        "recorded": recorded,
        "failureKey": failure_key,
        "note": note,
    }))
}
