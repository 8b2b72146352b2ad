//! `mzforge inspect`: what is in a file, at a glance.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;
use mzforge::signal::decide_signal_kind;
use mzforge::wording::{spectra, spectra_with_verb};
use mzforge::{Error, FileInfo, SignalKind, SpectrumReader};
use serde::Serialize;

use crate::cli::InspectArgs;

#[derive(Debug, Default, Serialize)]
struct LevelSummary {
    spectra: u64,
    declared_profile: u64,
    declared_centroid: u64,
    undeclared: u64,
    looks_profile: u64,
    looks_centroid: u64,
    /// What `mzforge run` (`--signal auto`, the default) takes the spectra for: the look,
    /// except that a declared peak list without zero intensities stays one.
    run_profile: u64,
    run_centroid: u64,
    points: u64,
}

#[derive(Debug, Serialize)]
struct Inspection {
    path: String,
    /// "ok"; "error" (with `error`) when the file has spectra and none of them can be used,
    /// where `mzforge run` fails too, or for an input that cannot be read at all (an object
    /// with `path`, `status` and `error` only), as in `mzforge run --json`.
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    file: FileInfo,
    spectra: u64,
    levels: BTreeMap<u8, LevelSummary>,
    /// Scan start times of the mass spectra (non-MS traces left out, as `mzforge run` does)
    /// that have one; `null` when none has.
    rt_seconds: Option<(f64, f64)>,
    /// Mass spectra whose file gives no scan start time (null `rt_seconds` in what
    /// `mzforge run` writes), left out of the range.
    spectra_without_rt: u64,
    mz: Option<(f64, f64)>,
    precursor_charges: BTreeMap<String, u64>,
    /// Spectra without an m/z array (UV/PDA and other traces), which `mzforge run` leaves
    /// out: counted, not reported as bad.
    spectra_not_ms: u64,
    bad_spectra: Vec<String>,
}

/// Most bad spectra the text summary lists one by one (`--json` lists them all).
const BAD_SPECTRA_LISTED: usize = 10;

/// Summarises every input in turn; one that cannot be read, or a pattern that names no file,
/// is reported (on standard error, and as an error object with `--json`) and the others are
/// still summarised. A file whose every mass spectrum is bad is summarised (its bad spectra
/// listed) and reported as an error, as `run` fails on it. The exit status is 1 if any failed.
pub fn inspect(args: InspectArgs) -> Result<ExitCode> {
    let failed = std::cell::Cell::new(false);
    let mut printed = false;
    let report_error = |path: &Path, message: String| {
        failed.set(true);
        if args.json {
            let line = serde_json::json!({ "path": path, "status": "error", "error": message });
            println!("{line}");
        }
        eprintln!("error: {message}");
    };
    for pattern in &args.inputs {
        let inputs = match mzforge_batch_runner::remote::expand_local(pattern) {
            Ok(inputs) => inputs,
            Err(error) => {
                report_error(Path::new(pattern), error.chain());
                continue;
            }
        };
        for input in &inputs {
            match inspect_one(input) {
                Ok(report) => {
                    if args.json {
                        println!("{}", serde_json::to_string(&report)?);
                    } else {
                        if printed {
                            println!();
                        }
                        printed = true;
                        print_text(&report);
                    }
                    // Summarised, and still a failure: `run` would have nothing to give.
                    if let Some(message) = &report.error {
                        failed.set(true);
                        eprintln!("error: {message}");
                    }
                }
                // The whole chain: "cannot read X" alone would hide the reason.
                Err(error) => report_error(input, crate::chain(&error.into())),
            }
        }
    }
    Ok(if failed.get() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn inspect_one(input: &Path) -> mzforge::Result<Inspection> {
    let mut reader = SpectrumReader::open(input)?;
    let mut report = Inspection {
        path: input.display().to_string(),
        status: "ok",
        error: None,
        file: reader.info().clone(),
        spectra: 0,
        levels: BTreeMap::new(),
        rt_seconds: None,
        spectra_without_rt: 0,
        mz: None,
        precursor_charges: BTreeMap::new(),
        spectra_not_ms: 0,
        bad_spectra: Vec::new(),
    };
    let mut scratch = Vec::new();
    let mut usable = 0u64;
    let mut first_bad = None;
    loop {
        let raw = match reader.next_raw() {
            Ok(Some(raw)) => raw,
            Ok(None) => break,
            // A spectrum that cannot be read (its level unknown): listed, and reading goes on.
            Err(e @ Error::BadSpectrum { .. }) => {
                report.spectra += 1;
                report.bad_spectra.push(e.to_string());
                first_bad.get_or_insert(e);
                continue;
            }
            Err(e) => return Err(e),
        };
        report.spectra += 1;
        let meta = raw.meta();
        let level = report.levels.entry(meta.ms_level).or_default();
        level.spectra += 1;
        match meta.declared_signal {
            Some(SignalKind::Profile) => level.declared_profile += 1,
            Some(SignalKind::Centroid) => level.declared_centroid += 1,
            None => level.undeclared += 1,
        }
        if let Some(p) = &meta.precursor {
            let key = p
                .charge
                .map(|z| z.to_string())
                .unwrap_or_else(|| "unknown".into());
            *report.precursor_charges.entry(key).or_default() += 1;
        }
        let decoded = raw.decode(reader.path());
        // The RT range is the mass spectra's, as `mzforge run` writes them: UV/PDA traces
        // (no m/z array) often span the whole LC gradient and would stretch it far beyond
        // the MS acquisition.
        if !matches!(decoded, Err(Error::NotMassSpectrum { .. })) {
            match meta.rt_seconds {
                Some(rt) => {
                    report.rt_seconds = Some(
                        report
                            .rt_seconds
                            .map_or((rt, rt), |(a, b)| (a.min(rt), b.max(rt))),
                    )
                }
                None => report.spectra_without_rt += 1,
            }
        }
        match decoded {
            Ok((spectrum, _)) => {
                usable += 1;
                level.points += spectrum.mz.len() as u64;
                let (decision, look) = decide_signal_kind(
                    meta.declared_signal,
                    &spectrum.mz,
                    &spectrum.intensity,
                    &mut scratch,
                );
                match look {
                    Some(SignalKind::Profile) => level.looks_profile += 1,
                    Some(SignalKind::Centroid) => level.looks_centroid += 1,
                    None => {}
                }
                match decision {
                    SignalKind::Profile => level.run_profile += 1,
                    SignalKind::Centroid => level.run_centroid += 1,
                }
                if let (Some(&lo), Some(&hi)) = (spectrum.mz.first(), spectrum.mz.last()) {
                    report.mz = Some(report.mz.map_or((lo, hi), |(a, b)| (a.min(lo), b.max(hi))));
                }
            }
            Err(Error::NotMassSpectrum { .. }) => report.spectra_not_ms += 1,
            Err(e) => {
                report.bad_spectra.push(e.to_string());
                first_bad.get_or_insert(e);
            }
        }
    }
    // As `mzforge run` fails on such a file (every mass spectrum skipped as bad), in its words.
    if let (0, Some(first)) = (usable, first_bad) {
        let error = Error::NoUsableSpectrum {
            path: reader.path().to_owned(),
            skipped: report.bad_spectra.len() as u64,
            first: Box::new(first),
        };
        report.status = "error";
        report.error = Some(error.to_string());
    }
    Ok(report)
}

fn print_text(r: &Inspection) {
    println!("{}", r.path);
    let format = r.file.format.map(|f| format!("{f:?}")).unwrap_or_default();
    println!(
        "  format       {format}{}",
        match (r.file.gzip, r.file.bzip2) {
            (true, _) => " (gzip)",
            (_, true) => " (bzip2)",
            _ => "",
        }
    );
    let instruments = match r.file.instruments.as_slice() {
        [] => "not named in the file".to_owned(),
        models => models.join(", "),
    };
    println!("  instrument   {instruments}");
    match r.file.declared_spectrum_count {
        Some(n) if n != r.spectra => {
            println!("  spectra      {} (the file declares {n})", r.spectra)
        }
        _ => println!("  spectra      {}", r.spectra),
    }
    for (level, s) in &r.levels {
        // Level 0: spectra that declare none (non-MS traces among them).
        let label = match level {
            0 => "no MS level".to_owned(),
            level => format!("MS{level}"),
        };
        println!(
            "  {label:<12} {}: declared {} profile / {} centroid / {} undeclared; data look {} profile / {} centroid; run takes {} profile / {} centroid",
            spectra(s.spectra), s.declared_profile, s.declared_centroid, s.undeclared, s.looks_profile, s.looks_centroid, s.run_profile, s.run_centroid
        );
    }
    let without_rt = match r.spectra_without_rt {
        0 => String::new(),
        n => format!(" ({} none)", spectra_with_verb(n, "has", "have")),
    };
    match r.rt_seconds {
        Some((a, b)) => println!("  RT           {a:.2} - {b:.2} s{without_rt}"),
        None if r.spectra_without_rt > 0 => {
            println!("  RT           none in the file{without_rt}")
        }
        None => {}
    }
    if let Some((a, b)) = r.mz {
        println!("  m/z          {a:.4} - {b:.4}");
    }
    if !r.precursor_charges.is_empty() {
        let charges: Vec<String> = r
            .precursor_charges
            .iter()
            .map(|(z, n)| format!("{z}: {n}"))
            .collect();
        println!("  precursor z  {}", charges.join(", "));
    }
    if r.spectra_not_ms > 0 {
        println!(
            "  not MS       {} without an m/z array (UV/PDA or other traces; `mzforge run` leaves them out)",
            spectra(r.spectra_not_ms)
        );
    }
    for bad in r.bad_spectra.iter().take(BAD_SPECTRA_LISTED) {
        println!("  bad spectrum {bad}");
    }
    if r.bad_spectra.len() > BAD_SPECTRA_LISTED {
        println!(
            "  bad spectra  {} more (`--json` lists every one)",
            r.bad_spectra.len() - BAD_SPECTRA_LISTED
        );
    }
}
