//! Whole-file processing: read → decode → classify → centroid, streaming and in parallel.
//!
//! One thread finds the spectra in the input and hands batches of them, unparsed, through a
//! bounded channel; a rayon pool parses, decodes and centroids up to `IN_FLIGHT_BATCHES`
//! batches at a time while the caller's thread finishes earlier ones and hands them, in input
//! order, to a caller-supplied sink. Memory is bounded by `batch_size × (QUEUE_BATCHES +
//! IN_FLIGHT_BATCHES + 1)` spectra, not by the file size.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Mutex;
use std::time::Instant;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::centroid::{CentroidParams, Centroider};
use crate::deconvolve::{Deconvolution, DeconvolveParams, Deconvolver, PatternCache};
use crate::error::{Error, Result};
use crate::io::{
    ChunkPool, FileInfo, RawSpectrum, ReadLimits, Repairs, SourceDescription, SpectrumReader,
    UnparsedSpectrum,
};
use crate::signal::{decide_signal_kind, MIN_POINTS_TO_CLASSIFY};
use crate::spectrum::{PeakList, SignalKind, SpectrumMeta};
use crate::wording::{agree, count, spectra, spectra_with_verb};

/// How to decide whether a spectrum is profile or centroid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum SignalPolicy {
    /// Check the declaration against the data; where they disagree, trust the data and report it.
    #[default]
    Auto,
    /// Trust the declaration (data are checked only for undeclared spectra).
    Declared,
    /// Treat every spectrum as profile.
    Profile,
    /// Treat every spectrum as centroid.
    Centroid,
}

/// What to do with a spectrum that cannot be read or decoded ([`Error::BadSpectrum`]: corrupt
/// arrays, a value that is not a number, a broken tag inside it, an MGF entry mzdata cannot
/// read). A file broken beyond one spectrum (cut short, a corrupt compressed stream, XML
/// outside any spectrum) stops the run whatever the policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum BadSpectrumPolicy {
    /// Report it in the warnings and go on without it. A file none of whose spectra can be
    /// decoded still fails ([`Error::NoUsableSpectrum`]): it has nothing to give.
    #[default]
    Skip,
    /// Stop with an error naming it.
    Fail,
}

/// Every setting of a run. Serialised into `run.json` and the Parquet metadata.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PipelineParams {
    /// MS levels to keep; empty keeps all. Default: all.
    pub ms_levels: Vec<u8>,
    /// Profile/centroid decision. Default `auto`.
    pub signal: SignalPolicy,
    /// Spectra that cannot be read or decoded. Default `skip`.
    pub on_bad_spectrum: BadSpectrumPolicy,
    /// Worker threads; 0 uses every core. Default 0.
    pub threads: usize,
    /// Spectra per batch handed to the workers. Default 64.
    pub batch_size: usize,
    /// Centroiding settings.
    pub centroid: CentroidParams,
    /// Deconvolution settings.
    pub deconvolve: DeconvolveParams,
    /// Bounds on what one input may make the reader allocate; going past one stops the run
    /// with [`Error::LimitExceeded`] whatever `on_bad_spectrum` says.
    pub limits: ReadLimits,
}

impl Default for PipelineParams {
    fn default() -> Self {
        PipelineParams {
            ms_levels: Vec::new(),
            signal: SignalPolicy::Auto,
            on_bad_spectrum: BadSpectrumPolicy::Skip,
            threads: 0,
            batch_size: 64,
            centroid: CentroidParams::default(),
            deconvolve: DeconvolveParams::default(),
            limits: ReadLimits::default(),
        }
    }
}

impl PipelineParams {
    /// Checks every setting.
    pub fn validate(&self) -> Result<()> {
        if self.batch_size == 0 || self.batch_size > 1_000_000 {
            return Err(Error::InvalidParameter {
                name: "batch_size",
                message: "must be between 1 and 1000000".into(),
            });
        }
        if self.threads > 4096 {
            return Err(Error::InvalidParameter {
                name: "threads",
                message: "must be at most 4096 (0 = all cores)".into(),
            });
        }
        if self.ms_levels.contains(&0) {
            return Err(Error::InvalidParameter {
                name: "ms_levels",
                message: "MS levels start at 1".into(),
            });
        }
        self.centroid.validate()?;
        self.limits.validate()?;
        self.deconvolve.validate()
    }
}

/// One spectrum after processing: its metadata, the signal decision and its peaks.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcessedSpectrum {
    /// Metadata as read.
    pub meta: SpectrumMeta,
    /// The decision used.
    pub signal: SignalKind,
    /// What the data look like, when there were enough points to tell.
    pub detected_signal: Option<SignalKind>,
    /// Number of points read.
    pub n_points: u32,
    /// Sum of the intensities read.
    pub tic: f64,
    /// The centroids (for centroid input: the points kept).
    pub peaks: PeakList,
    /// Isotopic envelopes, when the spectrum was deconvolved.
    pub deconvolution: Option<Deconvolution>,
    /// Charge and monoisotopic m/z of the precursor as mzforge sees them in the preceding
    /// survey scan (MSn spectra with a precursor only).
    pub precursor_check: Option<PrecursorCheck>,
    /// Position of this spectrum's first envelope in the run's envelope numbering.
    pub first_envelope_id: u32,
    /// The input's full description of the spectrum, kept only when the pipeline was asked
    /// to ([`Pipeline::keep_source_descriptions`]), to write mzML.
    pub source: Option<SourceDescription>,
}

impl ProcessedSpectrum {
    /// The most intense peak (m/z, intensity), if any.
    pub fn base_peak(&self) -> Option<(f64, f32)> {
        let p = &self.peaks;
        (0..p.len())
            .max_by(|&a, &b| p.intensity[a].total_cmp(&p.intensity[b]))
            .map(|i| (p.mz[i], p.intensity[i]))
    }
}

/// The precursor of an MSn spectrum as found in the preceding survey scan.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct PrecursorCheck {
    /// Charge of the envelope holding the precursor.
    pub charge: i32,
    /// Its monoisotopic m/z.
    pub mono_mz: f64,
}

/// The survey scans kept to check precursors in. In files where MS1 and MSn scans alternate,
/// the last [`RECENT_SURVEYS`] suffice; files that list every MS1 scan before the MSn scans
/// need them all, up to [`SURVEY_MEMORY_PEAKS`] centroids.
#[derive(Debug, Default)]
struct SurveyMemory {
    scans: VecDeque<SurveyScan>,
    peaks: usize,
    seen_msn: bool,
    interleaved: bool,
    /// The latest MSn scans' native ids and their precursors' `spectrumRef`, newest last: an
    /// MS3 scan names the MS2 scan it came from, which names the survey scan.
    msn_refs: VecDeque<(String, String)>,
}

impl SurveyMemory {
    /// The survey scans (of a lower MS level, the same polarity) acquired last before an MSn
    /// scan at `rt_seconds`, newest first. By retention time, as files sorted by MS level
    /// exist; when the MSn scan or one of those survey scans has no retention time, by
    /// position in the file instead (every survey scan remembered was read before it).
    /// The scan the precursor names (`spectrum_ref`), when remembered, comes first whatever
    /// the times say, and the others are those read before it: the file's own link, which
    /// also pairs files sorted by level without times. Without times, a named scan that is
    /// not remembered gives none.
    fn before(
        &self,
        rt_seconds: Option<f64>,
        level: u8,
        negative: bool,
        spectrum_ref: Option<&str>,
    ) -> Vec<&SurveyScan> {
        let referenced = spectrum_ref.and_then(|id| {
            (self.scans.iter()).rposition(|v| v.ms_level < level && v.native_id == id)
        });
        let read_by_then = referenced.map_or(self.scans.len(), |k| k + 1);
        let candidates = (self.scans.iter().take(read_by_then).rev())
            .filter(|v| v.ms_level < level && v.negative == negative);
        let by_rt: Option<Vec<(f64, &SurveyScan)>> = candidates
            .clone()
            .map(|v| Some((v.rt_seconds?, v)))
            .collect();
        let mut found: Vec<&SurveyScan> = match (rt_seconds, by_rt) {
            (Some(rt), Some(mut timed)) => {
                timed.retain(|(t, _)| *t <= rt + 1e-6);
                // Stable: of equal times, the one read last comes first.
                timed.sort_by(|a, b| b.0.total_cmp(&a.0));
                timed.into_iter().map(|(_, v)| v).collect()
            }
            // A named scan that is not remembered (not in the file, or long forgotten) leaves
            // no time to go by: the scans read last may be anything (in a file sorted by
            // level, the run's last).
            _ if spectrum_ref.is_some() && referenced.is_none() => Vec::new(),
            _ => candidates.collect(),
        };
        if let Some(k) = referenced {
            let named = &self.scans[k];
            found.retain(|v| !std::ptr::eq(*v, named));
            found.insert(0, named);
        }
        found
    }

    /// The survey scan a precursor's `spectrumRef` leads to: itself, or through the MSn scans
    /// it names (an MS3 scan's names its MS2 scan, whose names the survey scan).
    fn survey_ref<'a>(&'a self, mut spectrum_ref: &'a str) -> &'a str {
        for _ in 0..MAX_MSN_HOPS {
            match self
                .msn_refs
                .iter()
                .rev()
                .find(|(id, _)| id == spectrum_ref)
            {
                Some((_, parent)) => spectrum_ref = parent,
                None => break,
            }
        }
        spectrum_ref
    }

    /// An MSn scan and the scan its precursor names, for the MSn scans that name it.
    fn remember_msn(&mut self, native_id: &str, spectrum_ref: &str) {
        if self.msn_refs.len() == RECENT_MSN_REFS {
            self.msn_refs.pop_front();
        }
        self.msn_refs
            .push_back((native_id.to_owned(), spectrum_ref.to_owned()));
    }

    fn remember(&mut self, scan: SurveyScan) {
        if self.seen_msn {
            self.interleaved = true;
        }
        self.peaks += scan.mz.len();
        self.scans.push_back(scan);
        while self.peaks > SURVEY_MEMORY_PEAKS
            || (self.interleaved && self.scans.len() > RECENT_SURVEYS)
        {
            match self.scans.pop_front() {
                Some(old) => self.peaks -= old.mz.len(),
                None => break,
            }
        }
    }
}

/// A recent survey scan, to check the precursors of the MSn scans that follow it.
#[derive(Debug, Default)]
struct SurveyScan {
    native_id: String,
    rt_seconds: Option<f64>,
    ms_level: u8,
    negative: bool,
    mz: Vec<f64>,
    intensity: Vec<f32>,
    deconvolution: Option<Deconvolution>,
}

/// Counts and warnings of a run, for `run.json`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RunSummary {
    /// File-level facts.
    pub file: FileInfo,
    /// Spectra read from the file.
    pub spectra_read: u64,
    /// Spectra written (read minus those filtered out by MS level, skipped or not MS).
    pub spectra_written: u64,
    /// Spectra skipped because they could not be decoded.
    pub spectra_skipped: u64,
    /// Spectra written per MS level, as (level, count).
    pub spectra_per_level: Vec<(u8, u64)>,
    /// Spectra left out because they have no m/z array (UV and other non-MS traces).
    pub spectra_not_ms: u64,
    /// Spectra whose m/z values were out of order, sorted (with their intensities).
    pub spectra_sorted: u64,
    /// Spectra that had points with NaN or infinite values, dropped.
    pub spectra_with_non_finite: u64,
    /// Points dropped for NaN or infinite values.
    pub points_dropped_non_finite: u64,
    /// Spectra written whose file gives no retention time (`rt_seconds` null).
    pub spectra_without_rt: u64,
    /// Spectra whose ion mobility array could not be used (an encoding mzforge cannot decode,
    /// broken data, another length than the m/z array): written without mobility.
    pub spectra_ion_mobility_dropped: u64,
    /// Spectra processed as profile.
    pub profile_spectra: u64,
    /// Spectra processed as centroid.
    pub centroid_spectra: u64,
    /// Spectra whose data contradict their declaration: declared profile but a peak list, or
    /// declared centroid but profile data (as the `auto` policy judges them, whatever `signal`
    /// the run used, so that a mislabelled file is reported also when the declaration or a
    /// forced kind was trusted).
    pub signal_disagreements: u64,
    /// Spectra with no declaration.
    pub signal_undeclared: u64,
    /// Centroids written.
    pub peaks_written: u64,
    /// Isotopic envelopes found.
    pub features_written: u64,
    /// MSn spectra whose precursor charge was checked against the survey scan.
    pub precursors_checked: u64,
    /// ... of which the instrument recorded a charge and mzforge found a different one.
    pub precursor_charge_disagreements: u64,
    /// Profile points read.
    pub points_read: u64,
    /// The SIMD backend used.
    pub simd_backend: String,
    /// Seconds spent.
    pub elapsed_seconds: f64,
    /// Human-readable warnings (at most [`MAX_WARNINGS`]; `warnings_total` counts all).
    pub warnings: Vec<String>,
    /// Warnings raised, including those not listed.
    pub warnings_total: u64,
}

/// Warnings listed individually in a summary; the rest are only counted.
pub const MAX_WARNINGS: usize = 100;

impl RunSummary {
    fn warn(&mut self, message: String) {
        self.warnings_total += 1;
        if self.warnings.len() < MAX_WARNINGS {
            self.warnings.push(message);
        }
    }
}

/// Runs [`PipelineParams`] over inputs.
#[derive(Debug)]
pub struct Pipeline {
    params: PipelineParams,
    pool: rayon::ThreadPool,
    keep_source: bool,
    patterns: PatternCache,
    /// The input's chunks, reused from input to input (the process's pool, shared with every
    /// other pipeline, as a Python `process()` call makes one): taking fresh memory for them
    /// cost ~1,400 page faults per run of `BSA1.mzML` (~2 ms of CPU).
    chunks: ChunkPool,
}

enum Outcome {
    /// Left out by `ms_levels`: its level.
    Filtered(u8),
    /// Processed, with the repairs made and what the `auto` policy takes it for (kept beside
    /// the kind used, which `signal` may have forced, to report mislabelled spectra).
    Done(Box<ProcessedSpectrum>, Repairs, SignalKind),
    Bad(Error),
}

/// The first spectrum a repair was made to, for the run's one warning about that repair.
#[derive(Default)]
struct FirstRepaired {
    sorted: Option<String>,
    non_finite: Option<String>,
    /// Not a repair: the first spectrum without a retention time, which is left unknown.
    without_rt: Option<String>,
    /// The first spectrum whose ion mobility array was left out, and why.
    ion_mobility_dropped: Option<String>,
}

/// Spectra whose declaration is missing or contradicted by their data, for the run's warnings
/// about them: a file that says nothing, or the wrong thing, is named, never handled silently.
#[derive(Default)]
struct SignalDeclarations {
    declared_profile_look_centroid: u64,
    declared_centroid_look_profile: u64,
    first_contradicted: Option<String>,
    undeclared_as_profile: u64,
    undeclared_as_centroid: u64,
    /// Undeclared spectra with too few points for their data to be judged.
    undeclared_unjudged: u64,
    first_undeclared: Option<String>,
}

impl SignalDeclarations {
    /// The warnings, saying what was done under `policy`.
    fn warnings(&self, policy: SignalPolicy) -> Vec<String> {
        let mut warnings = Vec::new();
        let forced = |kind: &str| format!("processed as {kind} (`signal = {kind}`)");
        if let Some(first) = &self.first_contradicted {
            let what = match (
                self.declared_profile_look_centroid,
                self.declared_centroid_look_profile,
            ) {
                (n, 0) => format!(
                    "{} declared profile but {} a peak list",
                    spectra_with_verb(n, "is", "are"),
                    agree(n, "its data are", "their data are")
                ),
                (0, n) => format!(
                    "{} declared centroid but {} profile",
                    spectra_with_verb(n, "is", "are"),
                    agree(n, "its data are", "their data are")
                ),
                (a, b) => format!(
                    "{} spectra are mislabelled: {a} declared profile {} a peak list, {b} \
                     declared centroid {} profile data",
                    a + b,
                    agree(a, "is", "are"),
                    agree(b, "is", "are"),
                ),
            };
            let done = match policy {
                SignalPolicy::Auto => format!(
                    "processed as {} data look",
                    agree(
                        self.declared_profile_look_centroid + self.declared_centroid_look_profile,
                        "its",
                        "their"
                    )
                ),
                SignalPolicy::Declared => "processed as declared (`signal = declared`)".to_owned(),
                SignalPolicy::Profile => forced("profile"),
                SignalPolicy::Centroid => forced("centroid"),
            };
            warnings.push(format!("{what} (the first: {first}); {done}"));
        }
        if let Some(first) = &self.first_undeclared {
            let (profile, centroid) = (self.undeclared_as_profile, self.undeclared_as_centroid);
            let unjudged = self.undeclared_unjudged;
            let too_few = format!(
                "too few points to judge (under {MIN_POINTS_TO_CLASSIFY} non-zero), taken as \
                 centroid"
            );
            let done = match policy {
                SignalPolicy::Auto | SignalPolicy::Declared if profile + centroid == 0 => too_few,
                SignalPolicy::Auto | SignalPolicy::Declared => {
                    let looks = format!(
                        "processed as their data look: {profile} as profile, {centroid} as \
                         centroid"
                    );
                    match unjudged {
                        0 => looks,
                        n => format!("{looks}; {n} with {too_few}"),
                    }
                }
                SignalPolicy::Profile => forced("profile"),
                SignalPolicy::Centroid => forced("centroid"),
            };
            warnings.push(format!(
                "{} neither profile nor centroid (the first: {first}); {done}",
                spectra_with_verb(profile + centroid + unjudged, "declares", "declare")
            ));
        }
        warnings
    }
}

const QUEUE_BATCHES: usize = 4;

/// Batches the workers may be processing while the caller's thread finishes earlier ones.
const IN_FLIGHT_BATCHES: usize = 3;

/// Survey-scan centroids remembered to find MSn precursors in (about 16 bytes each): enough
/// for whole runs of usual size even when a file lists all MS1 scans before the MS2 scans;
/// beyond it the oldest survey scans are forgotten.
pub const SURVEY_MEMORY_PEAKS: usize = 2_000_000;

/// Survey scans kept when MS1 and MSn scans alternate.
const RECENT_SURVEYS: usize = 8;

/// MSn scans whose precursor links are remembered, to lead MSn+1 scans to their survey scan.
const RECENT_MSN_REFS: usize = 256;

/// Links followed from an MSn scan towards its survey scan (MS3 → MS2 → MS1 is two).
const MAX_MSN_HOPS: usize = 8;

/// Survey scans tried for one precursor, nearest in time first.
const SURVEYS_TRIED: usize = 3;

/// What one pool thread reuses from spectrum to spectrum.
struct WorkerState {
    centroider: Centroider,
    deconvolver: Deconvolver,
    scratch: Vec<u32>,
}

impl Pipeline {
    /// Validates the parameters and builds the worker pool.
    pub fn new(params: PipelineParams) -> Result<Pipeline> {
        params.validate()?;
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(params.threads)
            .thread_name(|i| format!("mzforge-worker-{i}"))
            .build()
            .map_err(|e| Error::InvalidParameter {
                name: "threads",
                message: e.to_string(),
            })?;
        Ok(Pipeline {
            params,
            pool,
            keep_source: false,
            patterns: PatternCache::shared(),
            chunks: ChunkPool::shared(),
        })
    }

    /// Keeps each input spectrum's full description in [`ProcessedSpectrum::source`] (needed
    /// to write mzML; costs a copy of the metadata per spectrum).
    pub fn keep_source_descriptions(mut self, keep: bool) -> Pipeline {
        self.keep_source = keep;
        self
    }

    /// The parameters.
    pub fn params(&self) -> &PipelineParams {
        &self.params
    }

    /// A new centroider and deconvolver (sharing the run's pattern cache) for a pool thread.
    fn worker_state(&self) -> WorkerState {
        WorkerState {
            centroider: Centroider::new(self.params.centroid.clone()),
            deconvolver: Deconvolver::with_cache(
                self.params.deconvolve.clone(),
                self.patterns.clone(),
            ),
            scratch: Vec::new(),
        }
    }

    /// Processes a local file; see [`Pipeline::run`].
    pub fn run_path(
        &self,
        path: &Path,
        sink: &mut dyn FnMut(&[ProcessedSpectrum]) -> Result<()>,
    ) -> Result<RunSummary> {
        self.run(SpectrumReader::open(path)?, sink)
    }

    /// Reads every spectrum of `reader`, processes it, and hands the results to `sink` in
    /// input order, one batch at a time. A broken file stops the run with an error; a broken
    /// spectrum is skipped and reported (or stops the run, by [`BadSpectrumPolicy`]).
    pub fn run(
        &self,
        mut reader: SpectrumReader,
        sink: &mut dyn FnMut(&[ProcessedSpectrum]) -> Result<()>,
    ) -> Result<RunSummary> {
        let started = Instant::now();
        let notes = reader.notes();
        reader.set_limits(self.params.limits);
        // Keeping every spectrum's full description takes mzdata's parse anyway.
        reader.set_lean_parsing(!self.keep_source);
        reader.share_chunks(&self.chunks);
        let path = reader.path().to_owned();
        let batch_size = self.params.batch_size;
        let mut summary = RunSummary {
            file: reader.info().clone(),
            simd_backend: crate::simd::Backend::detect().name().into(),
            ..Default::default()
        };
        let mut per_level = [0u64; 256];
        let mut surveys = SurveyMemory::default();
        let mut survey_deconvolver =
            Deconvolver::with_cache(self.params.deconvolve.clone(), self.patterns.clone());
        let mut next_envelope_id = 0u32;
        // Kept for the error when no spectrum at all could be used.
        let mut first_skipped: Option<Error> = None;
        let mut levels_left_out: std::collections::BTreeMap<u8, u64> = Default::default();
        let mut first_repaired = FirstRepaired::default();
        let mut declarations = SignalDeclarations::default();

        let mut spectra_read = 0u64;
        let result = std::thread::scope(|scope| -> Result<()> {
            // The reader thread only finds the spectra; the workers parse them.
            let (sender, receiver) = sync_channel::<Result<Vec<UnparsedSpectrum>>>(QUEUE_BATCHES);
            scope.spawn(move || {
                let mut batch = Vec::with_capacity(batch_size);
                loop {
                    match reader.next_unparsed() {
                        Ok(Some(found)) => {
                            batch.push(found);
                            if batch.len() == batch_size {
                                let full =
                                    std::mem::replace(&mut batch, Vec::with_capacity(batch_size));
                                if sender.send(Ok(full)).is_err() {
                                    return;
                                }
                            }
                        }
                        Ok(None) => {
                            if !batch.is_empty() {
                                let _ = sender.send(Ok(batch));
                            }
                            return;
                        }
                        Err(e) => {
                            if !batch.is_empty() {
                                let _ = sender.send(Ok(std::mem::take(&mut batch)));
                            }
                            let _ = sender.send(Err(e));
                            return;
                        }
                    }
                }
            });

            // Centroiders and deconvolvers kept for the whole run (rayon's `map_init` would make
            // new ones for every split of every batch, throwing away their scratch buffers and
            // pattern copies): one per pool thread to begin with, each taken out of the shelf
            // while a spectrum is processed and put back after. Nothing stays locked while a
            // spectrum is processed: a thread that waits inside one (a dense spectrum's
            // deconvolution runs its charges on the pool) may be handed another spectrum,
            // which then takes a state of its own (a new one if the shelf is empty).
            let shelf: Mutex<Vec<WorkerState>> = Mutex::new(
                (0..self.pool.current_num_threads().max(1))
                    .map(|_| self.worker_state())
                    .collect(),
            );
            let process_batch = |batch: Vec<UnparsedSpectrum>| -> Vec<Outcome> {
                let shelved = || {
                    shelf
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                };
                batch
                    .into_par_iter()
                    .map(|unparsed| {
                        let raw = match unparsed.parse() {
                            Ok(raw) => raw,
                            Err(e) => return Outcome::Bad(e),
                        };
                        let taken = shelved().pop();
                        let mut state = taken.unwrap_or_else(|| self.worker_state());
                        let outcome = self.process(&path, &raw, &mut state);
                        shelved().push(state);
                        outcome
                    })
                    .collect()
            };
            // This thread gathers the results in input order (the precursor checks need the
            // survey scans before them) and hands them to the sink, while the pool works on
            // the next batches: up to `IN_FLIGHT_BATCHES` at a time.
            let mut done = Vec::with_capacity(batch_size);
            let mut finish_batch = |outcomes: Vec<Outcome>| -> Result<()> {
                done.clear();
                for outcome in outcomes {
                    match outcome {
                        Outcome::Filtered(level) => *levels_left_out.entry(level).or_default() += 1,
                        Outcome::Done(spectrum, repairs, looks) => {
                            let name = || {
                                let meta = &spectrum.meta;
                                format!("spectrum {} ({})", meta.index, meta.native_id)
                            };
                            match (spectrum.meta.declared_signal, looks) {
                                (None, _) => {
                                    match (spectrum.detected_signal, spectrum.signal) {
                                        (None, _) => declarations.undeclared_unjudged += 1,
                                        (Some(_), SignalKind::Profile) => {
                                            declarations.undeclared_as_profile += 1
                                        }
                                        (Some(_), SignalKind::Centroid) => {
                                            declarations.undeclared_as_centroid += 1
                                        }
                                    }
                                    declarations.first_undeclared.get_or_insert_with(name);
                                }
                                (Some(SignalKind::Profile), SignalKind::Centroid) => {
                                    declarations.declared_profile_look_centroid += 1;
                                    declarations.first_contradicted.get_or_insert_with(name);
                                }
                                (Some(SignalKind::Centroid), SignalKind::Profile) => {
                                    declarations.declared_centroid_look_profile += 1;
                                    declarations.first_contradicted.get_or_insert_with(name);
                                }
                                _ => {}
                            }
                            if repairs.sorted {
                                summary.spectra_sorted += 1;
                                first_repaired.sorted.get_or_insert_with(name);
                            }
                            if repairs.dropped_non_finite > 0 {
                                summary.spectra_with_non_finite += 1;
                                summary.points_dropped_non_finite +=
                                    repairs.dropped_non_finite as u64;
                                first_repaired.non_finite.get_or_insert_with(name);
                            }
                            if spectrum.meta.rt_seconds.is_none() {
                                summary.spectra_without_rt += 1;
                                first_repaired.without_rt.get_or_insert_with(name);
                            }
                            if let Some(reason) = &repairs.ion_mobility_dropped {
                                summary.spectra_ion_mobility_dropped += 1;
                                first_repaired
                                    .ion_mobility_dropped
                                    .get_or_insert_with(|| format!("{}: {reason}", name()));
                            }
                            done.push(*spectrum);
                        }
                        Outcome::Bad(Error::NotMassSpectrum { .. }) => summary.spectra_not_ms += 1,
                        // A broken file (its XML) or a limit stops the run, as in the reader.
                        Outcome::Bad(
                            error @ (Error::LimitExceeded { .. } | Error::Malformed { .. }),
                        ) => return Err(error),
                        Outcome::Bad(error) => match self.params.on_bad_spectrum {
                            BadSpectrumPolicy::Fail => return Err(error),
                            BadSpectrumPolicy::Skip => {
                                summary.spectra_skipped += 1;
                                summary.warn(format!("skipped: {error}"));
                                first_skipped.get_or_insert(error);
                            }
                        },
                    }
                }
                for s in done.iter_mut() {
                    self.check_precursor(s, &mut surveys, &mut survey_deconvolver);
                    s.first_envelope_id = next_envelope_id;
                    let found = s
                        .deconvolution
                        .as_ref()
                        .map_or(0, |d| d.envelopes.len() as u32);
                    next_envelope_id += found;
                    summary.features_written += found as u64;
                    if let (Some(check), Some(p)) = (&s.precursor_check, &s.meta.precursor) {
                        summary.precursors_checked += 1;
                        if p.charge.is_some_and(|z| z != check.charge) {
                            summary.precursor_charge_disagreements += 1;
                        }
                    }
                }
                for s in &done {
                    per_level[s.meta.ms_level as usize] += 1;
                    summary.points_read += s.n_points as u64;
                    summary.peaks_written += s.peaks.len() as u64;
                    match s.signal {
                        SignalKind::Profile => summary.profile_spectra += 1,
                        SignalKind::Centroid => summary.centroid_spectra += 1,
                    }
                    if s.meta.declared_signal.is_none() {
                        summary.signal_undeclared += 1;
                    }
                }
                summary.spectra_written += done.len() as u64;
                sink(&done)
            };
            self.pool.in_place_scope(|scope| -> Result<()> {
                // One single-use channel per batch in flight, oldest first.
                let mut in_flight = VecDeque::new();
                // Finishes the oldest batches until at most `keep` are in flight. False when
                // a batch's task panicked: it sent nothing, and the scope re-raises its panic
                // once this closure returns, which it then does without reading further.
                let mut finish_until = |in_flight: &mut VecDeque<Receiver<Vec<Outcome>>>,
                                        keep: usize|
                 -> Result<bool> {
                    while in_flight.len() > keep {
                        match in_flight.pop_front().map(|batch| batch.recv()) {
                            Some(Ok(outcomes)) => finish_batch(outcomes)?,
                            Some(Err(_)) => return Ok(false),
                            None => break,
                        }
                    }
                    Ok(true)
                };
                for batch in receiver {
                    let batch = match batch {
                        Ok(batch) => batch,
                        // The spectra before a broken part of the file are finished first: an
                        // error among them comes first in the file, and is the one reported.
                        Err(error) => {
                            return match finish_until(&mut in_flight, 0)? {
                                true => Err(error),
                                false => Ok(()),
                            }
                        }
                    };
                    spectra_read += batch.len() as u64;
                    let (outcomes, result) = sync_channel(1);
                    let process_batch = &process_batch;
                    scope.spawn(move |_| {
                        let _ = outcomes.send(process_batch(batch));
                    });
                    in_flight.push_back(result);
                    if !finish_until(&mut in_flight, IN_FLIGHT_BATCHES - 1)? {
                        return Ok(());
                    }
                }
                finish_until(&mut in_flight, 0)?;
                Ok(())
            })
        });
        self.chunks.keep_usual();
        result?;
        summary.spectra_read = spectra_read;
        for warning in notes.warnings() {
            summary.warn(warning);
        }
        if summary.spectra_written == 0 {
            if let Some(first) = first_skipped {
                return Err(Error::NoUsableSpectrum {
                    path,
                    skipped: summary.spectra_skipped,
                    first: Box::new(first),
                });
            }
        }

        if summary.spectra_written == 0 && !levels_left_out.is_empty() {
            let held: Vec<String> = levels_left_out
                .iter()
                .map(|(level, n)| match level {
                    0 => format!("no MS level: {n}"),
                    level => format!("MS{level}: {n}"),
                })
                .collect();
            summary.warn(format!(
                "no spectrum is of the MS levels asked for (ms_levels {:?}); the file holds {}",
                self.params.ms_levels,
                held.join(", ")
            ));
        }
        if let Some(declared) = summary.file.declared_spectrum_count {
            if declared != summary.spectra_read {
                summary.warn(format!(
                    "the file declares {} but holds {}; the declaration was ignored",
                    spectra(declared),
                    summary.spectra_read
                ));
            }
        }
        if summary.spectra_not_ms > 0 {
            summary.warn(format!(
                "{} no m/z array (UV/PDA or other non-MS traces) and {} left out",
                spectra_with_verb(summary.spectra_not_ms, "has", "have"),
                agree(summary.spectra_not_ms, "was", "were")
            ));
        }
        if let Some(first) = first_repaired.sorted {
            summary.warn(format!(
                "{} had m/z values out of order and {} sorted (the first: {first})",
                spectra(summary.spectra_sorted),
                agree(summary.spectra_sorted, "was", "were")
            ));
        }
        if let Some(first) = first_repaired.non_finite {
            summary.warn(format!(
                "{} with NaN or infinite values {} dropped from {} (the first: {first})",
                count(summary.points_dropped_non_finite, "point", "points"),
                agree(summary.points_dropped_non_finite, "was", "were"),
                spectra(summary.spectra_with_non_finite)
            ));
        }
        if let Some(first) = first_repaired.without_rt {
            summary.warn(format!(
                "{} no retention time (the first: {first}): rt_seconds is null there",
                spectra_with_verb(summary.spectra_without_rt, "gives", "give")
            ));
        }
        if let Some(first) = first_repaired.ion_mobility_dropped {
            let n = summary.spectra_ion_mobility_dropped;
            summary.warn(format!(
                "{} an ion mobility array that cannot be used, left out: {} no \
                 ion_mobility (the first: {first})",
                spectra_with_verb(n, "has", "have"),
                agree(n, "its peaks have", "their peaks have")
            ));
        }
        summary.signal_disagreements = declarations.declared_profile_look_centroid
            + declarations.declared_centroid_look_profile;
        for warning in declarations.warnings(self.params.signal) {
            summary.warn(warning);
        }
        summary.spectra_per_level = per_level
            .iter()
            .enumerate()
            .filter(|(_, &n)| n > 0)
            .map(|(l, &n)| (l as u8, n))
            .collect();
        summary.elapsed_seconds = started.elapsed().as_secs_f64();
        Ok(summary)
    }

    /// Remembers survey scans, and checks each MSn precursor against the survey scans taken
    /// just before it: the envelope holding the precursor peak gives its charge and
    /// monoisotopic m/z.
    fn check_precursor(
        &self,
        s: &mut ProcessedSpectrum,
        surveys: &mut SurveyMemory,
        deconvolver: &mut Deconvolver,
    ) {
        if !self.params.deconvolve.enabled {
            // Nothing to check precursors with: no survey scan is kept (copying every survey
            // scan's peaks cost ~1 ms of the gathering thread on BSA1.mzML).
            return;
        }
        let level = s.meta.ms_level;
        let negative = s.meta.polarity == crate::spectrum::Polarity::Negative;
        if let Some(precursor) = &s.meta.precursor {
            if precursor.mz.is_finite() {
                let tolerance = precursor.mz * 2.0 * self.params.deconvolve.tolerance_ppm * 1e-6;
                let survey_ref = (precursor.spectrum_ref.as_deref()).map(|r| surveys.survey_ref(r));
                let before = surveys.before(s.meta.rt_seconds, level, negative, survey_ref);
                for survey in before.into_iter().take(SURVEYS_TRIED) {
                    let held = survey.deconvolution.as_ref().and_then(|d| {
                        let from = survey.mz.partition_point(|&m| m < precursor.mz - tolerance);
                        (from..survey.mz.len())
                            .take_while(|&k| survey.mz[k] <= precursor.mz + tolerance)
                            .filter_map(|k| d.peak_envelope[k])
                            .map(|e| &d.envelopes[e as usize])
                            .max_by(|a, b| a.intensity.total_cmp(&b.intensity))
                            .cloned()
                    });
                    let envelope = held.or_else(|| {
                        deconvolver.envelope_at(
                            &survey.mz,
                            &survey.intensity,
                            precursor.mz,
                            negative,
                        )
                    });
                    if let Some(e) = envelope {
                        s.precursor_check = Some(PrecursorCheck {
                            charge: e.charge,
                            mono_mz: e.mz,
                        });
                        break;
                    }
                }
            }
        }
        if s.meta.precursor.is_none() || level == 1 {
            surveys.remember(SurveyScan {
                native_id: s.meta.native_id.clone(),
                rt_seconds: s.meta.rt_seconds,
                ms_level: level,
                negative,
                mz: s.peaks.mz.clone(),
                intensity: s.peaks.intensity.clone(),
                deconvolution: s.deconvolution.clone(),
            });
        } else {
            surveys.seen_msn = true;
            if let Some(spectrum_ref) = s
                .meta
                .precursor
                .as_ref()
                .and_then(|p| p.spectrum_ref.as_deref())
            {
                surveys.remember_msn(&s.meta.native_id, spectrum_ref);
            }
        }
    }

    fn process(&self, path: &Path, raw: &RawSpectrum, worker: &mut WorkerState) -> Outcome {
        let WorkerState {
            centroider,
            deconvolver,
            scratch,
        } = worker;
        let ms_level = raw.ms_level();
        if !self.params.ms_levels.is_empty() && !self.params.ms_levels.contains(&ms_level) {
            return Outcome::Filtered(ms_level);
        }
        let (mut spectrum, repairs) = match raw.decode(path) {
            Ok(decoded) => decoded,
            Err(e) => return Outcome::Bad(e),
        };
        let declared = spectrum.meta.declared_signal;
        let (auto, detected) =
            decide_signal_kind(declared, &spectrum.mz, &spectrum.intensity, scratch);
        let signal = match self.params.signal {
            SignalPolicy::Profile => SignalKind::Profile,
            SignalPolicy::Centroid => SignalKind::Centroid,
            SignalPolicy::Declared => declared.unwrap_or(auto),
            SignalPolicy::Auto => auto,
        };
        let n_points = spectrum.mz.len() as u32;
        let tic = spectrum.intensity.iter().map(|&v| v as f64).sum();
        let peaks = match signal {
            SignalKind::Profile => {
                let mut peaks = PeakList::default();
                centroider.centroid_into(&spectrum.mz, &spectrum.intensity, &mut peaks);
                peaks
            }
            SignalKind::Centroid => centroider.filter_centroids_with_mobility(
                std::mem::take(&mut spectrum.mz),
                std::mem::take(&mut spectrum.intensity),
                spectrum.ion_mobility.take(),
            ),
        };
        let meta = &spectrum.meta;
        let deconvolution = self.params.deconvolve.applies_to(meta.ms_level).then(|| {
            let negative = meta.polarity == crate::spectrum::Polarity::Negative;
            deconvolver.deconvolve(&peaks.mz, &peaks.intensity, negative)
        });
        Outcome::Done(
            Box::new(ProcessedSpectrum {
                n_points,
                meta: spectrum.meta,
                signal,
                detected_signal: detected,
                tic,
                peaks,
                deconvolution,
                precursor_check: None,
                first_envelope_id: 0,
                source: self.keep_source.then(|| raw.source_description()),
            }),
            repairs,
            auto,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pipelines_share_the_process_isotope_patterns_and_read_chunks() {
        let one = Pipeline::new(PipelineParams::default()).unwrap();
        let other = Pipeline::new(PipelineParams {
            threads: 1,
            ..Default::default()
        })
        .unwrap();
        assert!(one.patterns.is_same_cache(&other.patterns));
        assert!(one.patterns.is_same_cache(&PatternCache::shared()));
        assert!(!one.patterns.is_same_cache(&PatternCache::default()));
        // And one pool of read chunks.
        assert!(one.chunks.is_same_pool(&other.chunks));
        assert!(!one.chunks.is_same_pool(&ChunkPool::default()));
    }

    fn survey(rt_seconds: Option<f64>, ms_level: u8) -> SurveyScan {
        SurveyScan {
            rt_seconds,
            ms_level,
            mz: vec![rt_seconds.unwrap_or(-1.0)],
            ..Default::default()
        }
    }

    fn order(memory: &SurveyMemory, rt: Option<f64>) -> Vec<f64> {
        referenced_first(memory, rt, None)
    }

    fn referenced_first(memory: &SurveyMemory, rt: Option<f64>, id: Option<&str>) -> Vec<f64> {
        (memory.before(rt, 2, false, id).iter())
            .map(|s| s.mz[0])
            .collect()
    }

    /// Undeclared spectra too short to judge are said to be taken as centroid, not to have
    /// been processed "as their data look" (they used to be counted among those).
    #[test]
    fn undeclared_spectra_too_short_to_judge_are_named_as_such() {
        let first = Some("spectrum 0 (scan=1)".to_owned());
        let short = SignalDeclarations {
            undeclared_unjudged: 3,
            first_undeclared: first.clone(),
            ..Default::default()
        };
        assert_eq!(
            short.warnings(SignalPolicy::Auto),
            [
                "3 spectra declare neither profile nor centroid (the first: spectrum 0 (scan=1)); \
              too few points to judge (under 16 non-zero), taken as centroid"
            ]
        );
        let mixed = SignalDeclarations {
            undeclared_as_profile: 2,
            undeclared_as_centroid: 1,
            ..short
        };
        assert_eq!(
            mixed.warnings(SignalPolicy::Declared),
            [
                "6 spectra declare neither profile nor centroid (the first: spectrum 0 (scan=1)); \
              processed as their data look: 2 as profile, 1 as centroid; 3 with too few points \
              to judge (under 16 non-zero), taken as centroid"
            ]
        );
        assert_eq!(
            mixed.warnings(SignalPolicy::Profile),
            [
                "6 spectra declare neither profile nor centroid (the first: spectrum 0 (scan=1)); \
              processed as profile (`signal = profile`)"
            ]
        );
    }

    #[test]
    fn survey_scans_before_an_msn_scan_by_time_or_else_by_file_order() {
        let mut memory = SurveyMemory::default();
        // A file sorted by MS level: the times, not the order, say which came last.
        for rt in [30.0, 10.0, 20.0, 40.0] {
            memory.remember(survey(Some(rt), 1));
        }
        memory.remember(survey(Some(15.0), 2));
        assert_eq!(order(&memory, Some(25.0)), [20.0, 10.0]);
        // Without a time for the MSn scan: the order the surveys were read in, last first.
        assert_eq!(order(&memory, None), [40.0, 20.0, 10.0, 30.0]);
        // One survey scan without a time: file order too (no time to compare it by).
        memory.remember(survey(None, 1));
        assert_eq!(order(&memory, Some(25.0)), [-1.0, 40.0, 20.0, 10.0, 30.0]);
    }

    /// The survey scan a precursor's `spectrumRef` names is tried first, whatever the times
    /// or the order say; a reference to a scan not remembered (or of the MSn scan's own
    /// level) changes nothing.
    #[test]
    fn the_referenced_survey_scan_comes_first() {
        let mut memory = SurveyMemory::default();
        for (rt, id) in [(10.0, "scan=1"), (20.0, "scan=2"), (30.0, "scan=3")] {
            memory.remember(SurveyScan {
                native_id: id.into(),
                ..survey(Some(rt), 1)
            });
        }
        memory.remember(SurveyScan {
            native_id: "scan=4".into(),
            ..survey(Some(35.0), 2)
        });
        assert_eq!(order(&memory, Some(25.0)), [20.0, 10.0]);
        let first = |id| referenced_first(&memory, Some(25.0), Some(id));
        // The named scan, then those acquired before it.
        assert_eq!(first("scan=1"), [10.0]);
        assert_eq!(first("scan=2"), [20.0, 10.0]);
        // Named by the file though its time is later than the MSn scan's.
        assert_eq!(first("scan=3"), [30.0, 20.0, 10.0]);
        assert_eq!(first("scan=9"), [20.0, 10.0]);
        assert_eq!(first("scan=4"), [20.0, 10.0]);
        // Without any times (a file sorted by level): the named scan, then those read
        // before it, newest first.
        let untimed = |id| referenced_first(&memory, None, Some(id));
        assert_eq!(untimed("scan=2"), [20.0, 10.0]);
        // A scan named but not remembered: nothing to go by.
        assert!(untimed("scan=9").is_empty());
        assert_eq!(order(&memory, None), [30.0, 20.0, 10.0]);
    }
}
