//! `mzforge run`: every input into its own atomic result directory.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use mzforge::output::{
    input_stem_of_path, InputRecord, ResultDir, RunRecord, FEATURES_FILE, PEAKS_FILE, RUN_FILE,
    SPECTRA_FILE,
};
use mzforge::wording::{count, spectra};
use mzforge::{CentroidMzMLWriter, MzmlPeaks, Pipeline, RunSummary, SpectrumReader};

/// File name of the optional centroided mzML.
pub const MZML_FILE: &str = "centroided.mzML";

use crate::cli::RunArgs;
use mzforge_batch_runner::fan_out::for_each_in_order;

pub fn run(args: RunArgs) -> Result<ExitCode> {
    let json = args.json;
    match run_all(args) {
        // Before any input ran (parameters, inputs, output names): one JSON line all the same.
        Err(error) if json => {
            let message = crate::chain(&error);
            println!("{}", json_error(&message));
            eprintln!("error: {message}");
            Ok(ExitCode::from(1))
        }
        outcome => outcome,
    }
}

/// The `--json` line of a failure that concerns no one input.
fn json_error(message: &str) -> serde_json::Value {
    serde_json::json!({ "status": "error", "error": message })
}

fn run_all(args: RunArgs) -> Result<ExitCode> {
    let params = args.params()?;
    let out = args.out.to_string_lossy().into_owned();
    if mzforge_batch_runner::remote::needs_object_storage(&args.inputs, &out) {
        use mzforge_batch_runner::remote::{run_cli, CliOptions};
        let mzml = args.mzml_output();
        let (inputs, json, quiet) = (args.inputs, args.json, args.quiet);
        let options = CliOptions {
            inputs,
            out,
            mzml,
            json,
            quiet,
            keep_folders: args.keep_folders,
            inputs_at_once: args.inputs_at_once.unwrap_or(1),
        };
        return Ok(match run_cli(params, options) {
            Ok(code) => ExitCode::from(code),
            // Before any input is processed (looking the inputs up): the same rule as for a
            // failed input, 75 when retrying is worth it, 1 otherwise.
            Err(error) => {
                if json {
                    let kind = error.kind();
                    let line = serde_json::json!({
                        "status": "error", "kind": kind, "retryable": kind.is_retryable(),
                        "error": error.chain(),
                    });
                    println!("{line}");
                }
                eprintln!("error: {}", error.chain());
                ExitCode::from(if error.kind().is_retryable() {
                    error.kind().exit_code()
                } else {
                    1
                })
            }
        });
    }
    // Said once, before anything runs: otherwise every input fails on its own with "cannot
    // write OUT/<stem>: File exists", which names neither --out nor what is wrong with it.
    if args.out.exists() && !args.out.is_dir() {
        bail!(
            "--out {} is a file, not a directory: results are directories under it",
            args.out.display()
        );
    }
    let found = expand_inputs(&args.inputs)?;
    let targets = output_targets(&found, &args.out, args.keep_folders)?;
    let inputs: Vec<PathBuf> = found.into_iter().map(|(input, _)| input).collect();
    let mzml = args.mzml_output();
    let pipeline = Pipeline::new(params.clone())?.keep_source_descriptions(mzml.is_some());
    let params_json = serde_json::to_string(&params)?;
    let progress = Progress::choose(args.quiet, args.json, std::io::stderr().is_terminal());

    let _signals = stop_on_signals()?;
    let jobs: Vec<(&PathBuf, &PathBuf)> = inputs.iter().zip(&targets).collect();
    let at_once = usize::from(args.inputs_at_once.unwrap_or(1));
    // Several inputs' bars at once are drawn together, and text printed meanwhile above them.
    let bars = (progress == Progress::Bar && at_once > 1).then(MultiProgress::new);
    let say = |line: &str| match &bars {
        Some(bars) => bars.suspend(|| eprintln!("{line}")),
        None => eprintln!("{line}"),
    };
    let run = RunOne {
        pipeline: &pipeline,
        params_json: &params_json,
        progress,
        bars: bars.as_ref(),
        mzml_peaks: mzml,
    };
    // After a stop signal, or once a report could not be written, no more inputs are started.
    let gave_up = AtomicBool::new(false);
    let work = |_, &(input, target): &(&PathBuf, &PathBuf)| {
        let go_on = STOP.load(Ordering::Relaxed) == 0 && !gave_up.load(Ordering::Relaxed);
        go_on.then(|| run_one(&run, input, target))
    };
    let mut failures = 0;
    let mut report = |i: usize, outcome: Option<Result<RunSummary>>| -> Result<()> {
        let (input, target) = jobs[i];
        let Some(outcome) = outcome else {
            return Ok(());
        };
        match outcome {
            Ok(summary) => {
                if args.json {
                    println!(
                        "{}",
                        serde_json::to_string(&serde_json::json!({
                            "input": input, "output": target, "status": "ok", "summary": summary,
                        }))?
                    );
                } else if !args.quiet {
                    say(&format!(
                        "{}: {} ({} profile, {} centroid), {} in {:.2} s -> {}",
                        input.display(),
                        spectra(summary.spectra_written),
                        summary.profile_spectra,
                        summary.centroid_spectra,
                        count(summary.peaks_written, "peak", "peaks"),
                        summary.elapsed_seconds,
                        target.display()
                    ));
                    for warning in &summary.warnings {
                        say(&format!("warning: {warning}"));
                    }
                    if summary.warnings_total > summary.warnings.len() as u64 {
                        say(&format!(
                            "warning: ... and {} more, counted in run.json (`warnings_total`)",
                            summary.warnings_total - summary.warnings.len() as u64
                        ));
                    }
                }
            }
            Err(error) => {
                failures += 1;
                let message = crate::chain(&error);
                if args.json {
                    println!(
                        "{}",
                        serde_json::json!({ "input": input, "status": "error", "error": message })
                    );
                }
                say(&format!("error: {message}"));
            }
        }
        Ok(())
    };
    let mut reported = Ok(());
    for_each_in_order(&jobs, at_once, work, |i, outcome| {
        if reported.is_ok() {
            reported = report(i, outcome);
            gave_up.store(reported.is_err(), Ordering::Relaxed);
        }
    });
    reported?;
    let stopped_by = STOP.load(Ordering::Relaxed);
    if stopped_by != 0 {
        // As a shell reports a process that the signal ended (128 + its number).
        return Ok(ExitCode::from(128 + stopped_by));
    }
    Ok(if failures == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// What every input of a `run` is processed with.
struct RunOne<'a> {
    pipeline: &'a Pipeline,
    params_json: &'a str,
    progress: Progress,
    /// Where the bars of inputs run side by side are drawn together.
    bars: Option<&'a MultiProgress>,
    mzml_peaks: Option<MzmlPeaks>,
}

/// Processes `input` into the result directory `target`.
fn run_one(run: &RunOne<'_>, input: &Path, target: &Path) -> Result<RunSummary> {
    let RunOne {
        pipeline,
        params_json,
        progress,
        bars,
        mzml_peaks,
    } = *run;
    let (reader, digest) = SpectrumReader::open_digested(input)?;
    let dir = ResultDir::create(target)?;
    let mut tables = dir.table_writers(params_json)?;
    let mut mzml = match mzml_peaks {
        Some(peaks) => Some(CentroidMzMLWriter::for_reader(
            &dir.file(MZML_FILE),
            &reader,
            peaks,
            &pipeline.params().ms_levels,
        )?),
        None => None,
    };
    let bar = progress_bar(progress, bars, reader.info().declared_spectrum_count, input);
    let mut last_log = Instant::now();
    let mut seen = 0u64;
    let summary = pipeline.run(reader, &mut |batch| {
        if STOP.load(Ordering::Relaxed) != 0 {
            return Err(mzforge::Error::Write {
                path: target.to_owned(),
                source: std::io::Error::new(
                    std::io::ErrorKind::Interrupted,
                    "stopped by a signal before the result was complete; nothing was written",
                ),
            });
        }
        tables.write(batch)?;
        if let Some(writer) = mzml.as_mut() {
            for spectrum in batch {
                if let Some(source) = &spectrum.source {
                    writer.write(source, &spectrum.peaks, spectrum.deconvolution.as_ref())?;
                }
            }
        }
        seen += batch.len() as u64;
        match &bar {
            Some(bar) => bar.set_position(seen),
            None if progress == Progress::LogLines && last_log.elapsed() > LOG_INTERVAL => {
                eprintln!("{}: {}", input.display(), spectra(seen));
                last_log = Instant::now();
            }
            None => {}
        }
        Ok(())
    })?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let (spectra, peaks, features) = tables.finish_all()?;
    if let Some(writer) = mzml {
        writer.finish()?;
    }
    // Flushed here, made durable by the directory's commit.
    for writer in [Some(spectra), Some(peaks), features].into_iter().flatten() {
        writer.into_inner().map_err(|e| e.into_error())?;
    }
    let input_record = InputRecord::of(input, &digest)
        .with_context(|| format!("cannot read {}", input.display()))?;
    let outputs = [SPECTRA_FILE, PEAKS_FILE, FEATURES_FILE]
        .into_iter()
        .chain(mzml_peaks.map(|_| MZML_FILE))
        .collect();
    let record = RunRecord::new(input_record, pipeline.params(), outputs, &summary);
    let run_json = dir.file(RUN_FILE);
    std::fs::write(&run_json, record.to_json()?)
        .with_context(|| format!("cannot write {}", run_json.display()))?;
    dir.commit()?;
    Ok(summary)
}

/// The number of the signal (SIGINT: Ctrl-C, or SIGTERM) that stopped the run, 0 before one.
/// The run stops at its next batch of spectra and unwinds, which removes the unfinished
/// result directory; a run killed outright leaves it behind, hidden, until a later run into
/// the same place clears it.
static STOP: AtomicU8 = AtomicU8::new(0);

/// Listens for SIGINT and SIGTERM (on a one-thread runtime, kept for the run) and sets
/// [`STOP`]; a second signal exits at once.
fn stop_on_signals() -> Result<Option<tokio::runtime::Runtime>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("mzforge-signals")
            .enable_io()
            .build()
            .context("cannot start the signal listener")?;
        for (kind, number) in [(SignalKind::interrupt(), 2), (SignalKind::terminate(), 15)] {
            let mut stream = {
                let _entered = runtime.enter();
                signal(kind).context("cannot listen for stop signals")?
            };
            runtime.spawn(async move {
                while stream.recv().await.is_some() {
                    let earlier = STOP.swap(number, Ordering::Relaxed);
                    if earlier != 0 {
                        eprintln!("error: second stop signal: exiting at once");
                        std::process::exit(128 + i32::from(earlier));
                    }
                    eprintln!(
                        "stopping: the unfinished result is removed (a second Ctrl-C exits at once)"
                    );
                }
            });
        }
        Ok(Some(runtime))
    }
    #[cfg(not(unix))]
    Ok(None)
}

/// How a run shows its progress on standard error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Progress {
    /// A progress bar per input: standard error is a terminal.
    Bar,
    /// A line every [`LOG_INTERVAL`] while an input runs: standard error is a log (a Batch
    /// job's, a pipe), or the summaries go to standard output as JSON.
    LogLines,
    /// Nothing: `--quiet`.
    Silent,
}

impl Progress {
    fn choose(quiet: bool, json: bool, stderr_is_terminal: bool) -> Progress {
        if quiet {
            Progress::Silent
        } else if stderr_is_terminal && !json {
            Progress::Bar
        } else {
            Progress::LogLines
        }
    }
}

/// How often a run without a progress bar says how far it has got.
const LOG_INTERVAL: Duration = Duration::from_secs(10);

/// The bar of `input`, if `progress` asks for bars: among `bars` when several inputs run at once.
fn progress_bar(
    progress: Progress,
    bars: Option<&MultiProgress>,
    total: Option<u64>,
    input: &Path,
) -> Option<ProgressBar> {
    if progress != Progress::Bar {
        return None;
    }
    let bar = match total {
        Some(n) => ProgressBar::new(n),
        None => ProgressBar::new_spinner(),
    };
    let style =
        ProgressStyle::with_template("{msg} [{elapsed_precise}] {wide_bar} {pos}/{len} spectra")
            .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar.set_message(
        input
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
    );
    Some(match bars {
        Some(bars) => bars.add(bar),
        None => bar,
    })
}

/// Every local input: files as given, glob patterns and directories expanded (see
/// [`mzforge_batch_runner::remote::expand_local`]), in order, each with its folder below the
/// directory input it was found under (empty for files and patterns named on the command line,
/// and for files directly in it). A file named more than once (`data/*.mzML data/BSA1.mzML`,
/// `a.mzML ./a.mzML`) is run once, where it is first named.
fn expand_inputs(patterns: &[String]) -> Result<Vec<(PathBuf, PathBuf)>> {
    let mut inputs = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for pattern in patterns {
        for (input, folder) in mzforge_batch_runner::remote::expand_local_in_folders(pattern)? {
            let identity = std::fs::canonicalize(&input).unwrap_or_else(|_| input.clone());
            if seen.insert(identity) {
                inputs.push((input, folder));
            }
        }
    }
    Ok(inputs)
}

/// Each input's result directory: `out/<stem>`, or `out/<folder>/<stem>` with `keep_folders`.
/// Two inputs with one result directory are refused before anything runs.
fn output_targets(
    inputs: &[(PathBuf, PathBuf)],
    out: &Path,
    keep_folders: bool,
) -> Result<Vec<PathBuf>> {
    let mut seen: BTreeMap<PathBuf, &Path> = BTreeMap::new();
    let mut targets = Vec::new();
    for (input, folder) in inputs {
        let relative = match keep_folders {
            true => folder.join(input_stem_of_path(input)),
            false => PathBuf::from(input_stem_of_path(input)),
        };
        if let Some(previous) = seen.insert(relative.clone(), input) {
            let hint = mzforge_batch_runner::remote::same_result_hint(keep_folders);
            bail!(
                "{} and {} would both write {}; {hint}",
                previous.display(),
                input.display(),
                out.join(&relative).display()
            );
        }
        targets.push(out.join(relative));
    }
    Ok(targets)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quiet_silences_the_log_lines_too() {
        for (json, terminal) in [(false, false), (false, true), (true, false), (true, true)] {
            assert_eq!(Progress::choose(true, json, terminal), Progress::Silent);
        }
        assert_eq!(Progress::choose(false, false, true), Progress::Bar);
        assert_eq!(Progress::choose(false, false, false), Progress::LogLines);
        assert_eq!(Progress::choose(false, true, true), Progress::LogLines);
    }

    #[test]
    fn a_file_named_twice_is_run_once() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a.mzML"), dir.path().join("b.mzML"));
        std::fs::write(&a, "").unwrap();
        std::fs::write(&b, "").unwrap();
        let named = |p: &Path| p.to_str().unwrap().to_owned();
        let inputs = expand_inputs(&[
            named(&b),
            named(&dir.path().join("*.mzML")),
            named(&dir.path().join(".").join("a.mzML")),
        ])
        .unwrap();
        let paths: Vec<_> = inputs.into_iter().map(|(input, _)| input).collect();
        assert_eq!(paths, [b, a]);
    }

    #[test]
    fn duplicate_stems_are_refused_unless_their_folders_are_kept() {
        let inputs = vec![
            (PathBuf::from("d/a/run.mzML"), PathBuf::from("a")),
            (PathBuf::from("d/b/run.mzML.gz"), PathBuf::from("b")),
        ];
        let err = output_targets(&inputs, Path::new("out"), false).unwrap_err();
        assert!(err.to_string().contains("would both write"), "{err}");
        assert!(err.to_string().contains("--keep-folders"), "{err}");
        let targets = output_targets(&inputs, Path::new("out"), true).unwrap();
        assert_eq!(targets, [Path::new("out/a/run"), Path::new("out/b/run")]);
        // Kept folders that still meet are refused.
        let same = vec![
            (PathBuf::from("d/a/run.mzML"), PathBuf::from("a")),
            (PathBuf::from("e/a/run.mgf"), PathBuf::from("a")),
        ];
        assert!(output_targets(&same, Path::new("out"), true).is_err());
    }

    #[test]
    fn files_under_a_directory_input_know_their_folder() {
        let dir = tempfile::tempdir().unwrap();
        for rel in ["top.mzML", "plate1/A1.mzML", "plate2/deep/A1.mgf"] {
            let path = dir.path().join(rel);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, "").unwrap();
        }
        let named = |p: &Path| p.to_str().unwrap().to_owned();
        let loose = dir.path().join("plate1/A1.mzML");
        // A file named on its own has no folder, even when a directory input holds it too.
        let inputs = expand_inputs(&[named(&loose), named(dir.path())]).unwrap();
        let folders: Vec<_> = inputs
            .iter()
            .map(|(input, folder)| {
                let rel = input.strip_prefix(dir.path()).unwrap();
                (
                    rel.to_str().unwrap().to_owned(),
                    folder.to_str().unwrap().to_owned(),
                )
            })
            .collect();
        assert_eq!(
            folders,
            [
                ("plate1/A1.mzML".to_owned(), "".to_owned()),
                ("plate2/deep/A1.mgf".to_owned(), "plate2/deep".to_owned()),
                ("top.mzML".to_owned(), "".to_owned()),
            ]
        );
    }
}
