//! `mzforge batch`: one AWS Batch job (or one child of an array job) of an analysis.
//!
//! The job reads the analysis manifest (`--manifest s3://bucket/key`, or
//! `s3://$MZFORGE_RESULTS_BUCKET/$MZFORGE_MANIFEST_KEY` as the state machine passes them), picks
//! input `AWS_BATCH_JOB_ARRAY_INDEX` (a job without it, i.e. not an array child, runs every input
//! in turn) and writes `<output>/<stem>/` with the manifest last; an input already done with
//! the same parameters is skipped, so a retried job only redoes what is missing. An input that
//! fails on its own (unreadable, broken, missing) is recorded in
//! `<output>/<stem>/failure.json` instead and the job exits 0, so that an array job, and the
//! analysis, go on with the other inputs; postprocess lists it.
//!
//! Exit codes (sysexits.h), for the job definition's retry strategy:
//!
//! | code | meaning | retry? |
//! |---|---|---|
//! | 0 | done, or already done | — |
//! | 75 | transient: network, throttling, 5xx, input changed mid-read, SIGTERM (Spot interruption) | yes |
//! | 66 | the analysis manifest does not exist | no |
//! | 78 | configuration: manifest, index, parameters, environment, access denied | no |
//! | 70 | internal error (a bug) | no |

use std::process::ExitCode;

use clap::Args;
use mzforge::wording::{count, spectra};
use mzforge::Pipeline;

use crate::analysis::AnalysisManifest;
use crate::error::{Error, FailureKind, Result};
use crate::remote::{self, Job};
use crate::storage::{Location, Storage};

/// Arguments of `mzforge batch`.
#[derive(Debug, Args)]
pub struct BatchArgs {
    /// The analysis manifest, `s3://bucket/key` [default: s3://$MZFORGE_RESULTS_BUCKET/$MZFORGE_MANIFEST_KEY].
    #[arg(long, env = "MZFORGE_MANIFEST_URL", value_name = "URL")]
    pub manifest: Option<String>,

    /// Which input to process [default: $AWS_BATCH_JOB_ARRAY_INDEX; without it, every input].
    #[arg(long, env = "AWS_BATCH_JOB_ARRAY_INDEX", value_name = "N")]
    pub index: Option<usize>,

    /// Worker threads [default: all cores].
    #[arg(long, short = 'j', value_name = "N")]
    pub threads: Option<usize>,
}

fn manifest_location(args: &BatchArgs) -> Result<(String, String)> {
    let text = match &args.manifest {
        Some(url) => url.clone(),
        None => {
            let bucket = std::env::var("MZFORGE_RESULTS_BUCKET").map_err(|_| {
                Error::invalid(
                    "environment",
                    "set --manifest, or MZFORGE_RESULTS_BUCKET and MZFORGE_MANIFEST_KEY",
                )
            })?;
            let key = std::env::var("MZFORGE_MANIFEST_KEY")
                .map_err(|_| Error::invalid("environment", "MZFORGE_MANIFEST_KEY is not set"))?;
            format!("s3://{bucket}/{key}")
        }
    };
    match Location::parse(&text)? {
        Location::S3 { bucket, key } => Ok((bucket, key)),
        Location::Local(_) => Err(Error::invalid(
            "manifest",
            format!("{text} is not an s3:// URL"),
        )),
    }
}

/// One input's outcome: its JSON line, or its index, URL and error.
type Outcome = std::result::Result<serde_json::Value, (usize, String, Error)>;

/// Runs the job: a failure before any input (manifest, index, parameters) is an error; each
/// input's failure is its outcome, so that a job running every input in turn reports a broken
/// one and goes on with the others.
fn run_job(args: &BatchArgs) -> Result<Vec<Outcome>> {
    let runtime = remote::io_runtime()?;
    crate::signals::install(runtime.handle());
    let storage = Storage::new(runtime.handle().clone());
    let (bucket, key) = manifest_location(args)?;
    let manifest = AnalysisManifest::load(&storage, &bucket, &key)?;
    let mut params = manifest.params.clone();
    if let Some(threads) = args.threads {
        params.threads = threads;
    }
    let pipeline = Pipeline::new(params)?.keep_source_descriptions(manifest.mzml);
    let job = Job {
        pipeline: &pipeline,
        storage: Some(&storage),
        mzml: manifest.mzml_output(),
        deadline: None,
        force: false,
    };
    let out = manifest.output_location()?;
    let indices: Vec<usize> = match args.index {
        Some(i) => vec![i],
        None => (0..manifest.inputs.len()).collect(),
    };
    if let Some(&index) = indices.iter().find(|&&i| i >= manifest.inputs.len()) {
        return Err(Error::invalid(
            "array index",
            format!(
                "{index} but the manifest has {} inputs",
                manifest.inputs.len()
            ),
        ));
    }
    let mut outcomes = Vec::new();
    for index in indices {
        if crate::signals::stop_requested() {
            outcomes.push(Err((
                index,
                manifest.inputs[index].url.clone(),
                Error::Interrupted,
            )));
            continue;
        }
        let entry = &manifest.inputs[index];
        let processed = manifest.input(&storage, index).and_then(|input| {
            Ok((
                remote::process(&job, &input, &out.join(&entry.stem))?,
                input,
            ))
        });
        let (result, input) = match processed {
            Ok(done) => done,
            // The input's own fault: recorded in its result prefix, and the job (and the
            // analysis) goes on; postprocess lists it.
            Err(error) if remote::is_input_failure(&error) => {
                let recorded =
                    remote::record_input_failure(&storage, &out, &entry.stem, &entry.url, &error);
                outcomes.push(match recorded {
                    Ok(failure) => {
                        eprintln!(
                            "{}: failed ({}): {}",
                            entry.url, failure.error, failure.cause
                        );
                        Ok(serde_json::json!({
                            "analysisId": manifest.analysis_id, "index": index,
                            "input": entry.url, "status": "failed", "error": failure.error,
                            "cause": failure.cause,
                        }))
                    }
                    Err(not_recorded) => Err((index, entry.url.clone(), not_recorded)),
                });
                continue;
            }
            Err(error) => {
                outcomes.push(Err((index, entry.url.clone(), error)));
                continue;
            }
        };
        eprintln!(
            "{}: {} -> {} ({}, {})",
            input.url(),
            result.status,
            result.output,
            spectra(result.qc.spectra_written),
            count(result.qc.peaks, "peak", "peaks")
        );
        outcomes.push(Ok(serde_json::json!({
            "analysisId": manifest.analysis_id, "index": index, "input": input.url(),
            "status": result.status, "output": result.output,
        })));
    }
    Ok(outcomes)
}

/// Prints a failure: a line for people on stderr, a JSON line on stdout.
fn report(error: &Error, input: Option<(usize, &str)>) -> FailureKind {
    let kind: FailureKind = error.kind();
    eprintln!(
        "error ({}, {}): {}",
        kind.error_name(),
        if kind.is_retryable() {
            "retryable"
        } else {
            "permanent"
        },
        error.chain()
    );
    let mut line = serde_json::json!({
        "status": "error", "error": kind.error_name(), "kind": kind,
        "retryable": kind.is_retryable(), "cause": error.chain(),
    });
    if let Some((index, url)) = input {
        line["index"] = index.into();
        line["input"] = url.into();
    }
    println!("{line}");
    kind
}

/// Runs the job; the exit code says whether AWS Batch should retry (see the module docs). When
/// several inputs fail, any transient failure makes it 75 (a retry redoes only what is not
/// done), else the first failure's code.
pub fn run(args: BatchArgs) -> ExitCode {
    let outcomes = match run_job(&args) {
        Ok(outcomes) => outcomes,
        Err(error) => return ExitCode::from(report(&error, None).exit_code()),
    };
    let mut failed: Option<FailureKind> = None;
    for outcome in outcomes {
        match outcome {
            Ok(line) => println!("{line}"),
            Err((index, url, error)) => {
                let kind = report(&error, Some((index, &url)));
                if failed.is_none() || kind.is_retryable() {
                    failed = Some(kind);
                }
            }
        }
    }
    match failed {
        None => ExitCode::SUCCESS,
        Some(kind) => ExitCode::from(kind.exit_code()),
    }
}
