//! The Step Functions steps of the `mzforge-lambda` binary: one JSON event in, one JSON result
//! out, or a typed error (`errorType` = the Step Functions `Error`, see
//! [`crate::FailureKind::error_name`]).
//!
//! | step | event | result | schema |
//! |---|---|---|---|
//! | `preprocess` | `{analysisId, request: {bucket, key}}` (from the trigger) | route, inputs, manifest | `preprocess-input.json` → `preprocess-output.json` |
//! | `analyze` | `{analysisId, input, index}` (a Map item) | one result's QC | `analyze-input.json` → `analyze-output.json` |
//! | `postprocess` | the state after the Map or the Batch job | `summary.json` written | `postprocess-input.json` → `postprocess-output.json` |
//! | `record-failure` | the state with `error: {Error, Cause}` | `failure.json` written (best effort) | `failure.json` |
//!
//! The step comes from `MZFORGE_STEP` (as the CDK app sets it), or else from the event's
//! `step` field. Buckets come from `MZFORGE_UPLOADS_BUCKET` / `MZFORGE_RESULTS_BUCKET`.
//! Nothing heavy happens at start-up: object stores are built on first use.

pub mod steps;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use crate::error::Error;
use crate::storage::Storage;

/// A step of the state machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Validate and size the inputs, decide the route, write the manifest.
    Preprocess,
    /// Analyse one input within Lambda's limits.
    Analyze,
    /// Merge the per-input results into `summary.json`.
    Postprocess,
    /// Record why an analysis failed.
    RecordFailure,
}

impl Step {
    /// From `preprocess`, `analyze`, `postprocess`, `record-failure`.
    pub fn parse(name: &str) -> Result<Step, Error> {
        match name {
            "preprocess" => Ok(Step::Preprocess),
            "analyze" => Ok(Step::Analyze),
            "postprocess" => Ok(Step::Postprocess),
            "record-failure" => Ok(Step::RecordFailure),
            other => Err(Error::invalid(
                "step",
                format!("{other:?}: expected preprocess, analyze, postprocess or record-failure"),
            )),
        }
    }

    /// The step's name.
    pub fn name(self) -> &'static str {
        match self {
            Step::Preprocess => "preprocess",
            Step::Analyze => "analyze",
            Step::Postprocess => "postprocess",
            Step::RecordFailure => "record-failure",
        }
    }
}

/// A failed step, as Lambda reports it to Step Functions.
#[derive(Debug)]
pub struct StepError(pub Error);

impl From<Error> for StepError {
    fn from(e: Error) -> Self {
        StepError(e)
    }
}

impl From<StepError> for lambda_runtime::Diagnostic {
    fn from(error: StepError) -> Self {
        lambda_runtime::Diagnostic {
            error_type: error.0.kind().error_name().to_string(),
            error_message: error.0.chain(),
        }
    }
}

/// What every invocation shares: storage and bucket names.
#[derive(Debug, Clone)]
pub struct Environment {
    /// Object stores on the Lambda runtime's tokio runtime.
    pub storage: Storage,
    /// `MZFORGE_UPLOADS_BUCKET`.
    pub uploads_bucket: Option<String>,
    /// `MZFORGE_RESULTS_BUCKET`.
    pub results_bucket: Option<String>,
    /// `MZFORGE_STEP`, if set.
    pub step: Option<Step>,
}

impl Environment {
    /// From the environment variables the CDK app sets.
    pub fn from_env(handle: tokio::runtime::Handle) -> Result<Environment, Error> {
        let var = |name| std::env::var(name).ok().filter(|v: &String| !v.is_empty());
        Ok(Environment {
            storage: Storage::new(handle),
            uploads_bucket: var("MZFORGE_UPLOADS_BUCKET"),
            results_bucket: var("MZFORGE_RESULTS_BUCKET"),
            step: var("MZFORGE_STEP").map(|s| Step::parse(&s)).transpose()?,
        })
    }

    /// The results bucket, required by every step but record-failure.
    pub fn results_bucket(&self) -> Result<&str, Error> {
        self.results_bucket
            .as_deref()
            .ok_or_else(|| Error::invalid("environment", "MZFORGE_RESULTS_BUCKET is not set"))
    }
}

/// Converts Lambda's deadline (ms since the epoch) to an instant.
pub fn deadline_from_epoch_ms(deadline_ms: u64) -> Option<Instant> {
    if deadline_ms == 0 {
        return None;
    }
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .ok()?
        .as_millis() as u64;
    Some(Instant::now() + Duration::from_millis(deadline_ms.saturating_sub(now_ms)))
}

/// Runs one event through its step (on a blocking thread: the engine's work is synchronous).
pub async fn handle(
    env: &Environment,
    payload: Value,
    deadline: Option<Instant>,
) -> Result<Value, StepError> {
    let step = match env.step {
        Some(step) => step,
        None => Step::parse(payload.get("step").and_then(Value::as_str).unwrap_or(""))?,
    };
    let env = env.clone();
    let started = Instant::now();
    let result = tokio::task::spawn_blocking(move || steps::run(step, &env, payload, deadline))
        .await
        .map_err(|e| Error::Internal(format!("step task failed: {e}")))?;
    let elapsed_ms = started.elapsed().as_millis() as u64;
    match &result {
        Ok(_) => eprintln!(
            "{}",
            serde_json::json!({"level": "info", "step": step.name(), "status": "ok", "elapsedMs": elapsed_ms})
        ),
        Err(e) => eprintln!(
            "{}",
            serde_json::json!({
                "level": "error", "step": step.name(), "status": "error",
                "error": e.kind().error_name(), "cause": e.chain(), "elapsedMs": elapsed_ms,
            })
        ),
    }
    Ok(result?)
}
