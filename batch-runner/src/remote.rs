//! `mzforge run` when an input or the output is in object storage (local ↔ S3 in any
//! combination), and the one-input worker that AWS Batch and Lambda share.
//!
//! Each input gets `OUT/<stem>/` holding `spectra.parquet`, `peaks.parquet`, `run.json` (as
//! for local runs) and, on S3, `manifest.json`, **written last**: a result prefix without a
//! manifest is not a result. The tables are multipart uploads that are completed only after the
//! whole input was processed, so a broken input, a missing key or a stop signal (Spot
//! interruption) leaves no object at all; only a hard kill in the completion phase (a few
//! requests) can leave tables without a manifest, which the next run replaces.
//!
//! Re-running the same input with the same parameters is idempotent: when the manifest names the
//! same input (URL, size and ETag; SHA-256 for local files), the same parameters and the same
//! version, the input is skipped. Otherwise the old manifest is deleted first (the old result
//! stops being a result), with what the new one will not rewrite, then the new one is written.

use std::collections::BTreeMap;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use mzforge::digest::lower_hex;
use mzforge::output::{
    ResultDir, RunRecord, TableWriters, WritebackFile, FEATURES_FILE, PEAKS_FILE, RUN_FILE,
    SPECTRA_FILE,
};
use mzforge::wording::{count, spectra};
use mzforge::{CentroidMzMLWriter, MzmlPeaks, Pipeline, PipelineParams, SpectrumReader};
use object_store::ObjectMeta;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, FailureKind, Result};
use crate::storage::{s3_url, Location, ObjectInfo, ObjectWriter, ReadProgress, Storage};

/// File name of the optional centroided mzML (as in `mzforge run --mzml`).
pub const MZML_FILE: &str = "centroided.mzML";
/// File name of the object written last into a result prefix on S3.
pub const MANIFEST_FILE: &str = "manifest.json";
/// File name of the record an input that failed on its own (unreadable, broken, missing)
/// leaves in its result prefix on S3 instead of a result: the analysis goes on with its other
/// inputs, and postprocess lists it.
pub const INPUT_FAILURE_FILE: &str = "failure.json";
/// The longest cause an input's failure record keeps (a Lambda route's Map gathers them all
/// into a 256 KiB state).
const FAILURE_CAUSE_CHARS: usize = 1000;

/// Why one input of an analysis has no result: `<output>/<stem>/failure.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InputFailure {
    /// The input, `s3://bucket/key`.
    pub input: String,
    /// Step Functions error name (`Mzforge.BadInput`, `Mzforge.MissingInput`).
    pub error: String,
    /// What was wrong, for people (at most 1000 characters).
    pub cause: String,
    /// Seconds since the Unix epoch.
    pub failed_at: u64,
}

/// Whether `error` is the input's own (unreadable, broken or missing input): recorded for that
/// input while the analysis goes on with the others. Every other failure (transient,
/// configuration, internal) stops the step as before.
pub fn is_input_failure(error: &Error) -> bool {
    matches!(
        error.kind(),
        FailureKind::BadInput | FailureKind::MissingInput
    )
}

/// Records that `url` (result prefix `<out>/<stem>`) failed with `error`.
pub fn record_input_failure(
    storage: &Storage,
    out: &Location,
    stem: &str,
    url: &str,
    error: &Error,
) -> Result<InputFailure> {
    let Location::S3 { bucket, key } = out.join(stem) else {
        return Err(Error::Internal(
            "input failures are recorded on S3 only".into(),
        ));
    };
    let mut cause = error.chain();
    if let Some((cut, _)) = cause.char_indices().nth(FAILURE_CAUSE_CHARS) {
        cause.truncate(cut);
        cause.push('…');
    }
    let failure = InputFailure {
        input: url.to_string(),
        error: error.kind().error_name().to_string(),
        cause,
        failed_at: now_seconds(),
    };
    storage.put_json(&bucket, &format!("{key}/{INPUT_FAILURE_FILE}"), &failure)?;
    Ok(failure)
}
/// Extensions of the files a directory or prefix contributes (case-insensitive).
pub const INPUT_EXTENSIONS: [&str; 7] = [
    ".mzml",
    ".mgf",
    ".mzml.gz",
    ".mgf.gz",
    ".mzml.bz2",
    ".mgf.bz2",
    ".mzmlb",
];

/// The files that make a directory or prefix holding one an mzforge result (`run.json` of
/// `mzforge run`, `manifest.json` of the cloud runner): a listing leaves it out, or results
/// kept beside their inputs (`--out data/results`) would be run again, their
/// `centroided.mzML` as an input.
const RESULT_MARKERS: [&str; 2] = [RUN_FILE, MANIFEST_FILE];

/// The objects of the listing of `prefix` that are not inside an mzforge result below it (see
/// [`RESULT_MARKERS`]; a result named as the prefix itself is listed whole, as a local
/// directory given as the input is).
fn outside_results(prefix: &str, objects: Vec<ObjectMeta>) -> Vec<ObjectMeta> {
    let listed = format!("{}/", prefix.trim_end_matches('/'));
    let results: std::collections::HashSet<String> = objects
        .iter()
        .filter_map(|m| {
            let key = m.location.as_ref();
            let (parent, name) = key.rsplit_once('/')?;
            let parent = format!("{parent}/");
            (RESULT_MARKERS.contains(&name) && parent != listed).then_some(parent)
        })
        .collect();
    objects
        .into_iter()
        .filter(|m| {
            let key = m.location.as_ref();
            !key.match_indices('/')
                .any(|(at, _)| results.contains(&key[..=at]))
        })
        .collect()
}

/// Whether a file or object name has one of the [`INPUT_EXTENSIONS`].
fn is_input_name(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    INPUT_EXTENSIONS.iter().any(|ext| name.ends_with(ext))
}

/// An input, resolved: a local file or an object with its size and ETag.
#[derive(Debug, Clone)]
pub enum Input {
    /// A local file.
    Local(PathBuf),
    /// An S3 object.
    Object {
        /// The bucket.
        bucket: String,
        /// Key, size, ETag.
        meta: ObjectMeta,
    },
}

impl Input {
    /// Path or `s3://` URL.
    pub fn url(&self) -> String {
        match self {
            Input::Local(path) => path.display().to_string(),
            Input::Object { bucket, meta } => s3_url(bucket, meta.location.as_ref()),
        }
    }

    /// The file name.
    pub fn file_name(&self) -> String {
        match self {
            Input::Local(path) => path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            Input::Object { meta, .. } => meta.location.filename().unwrap_or_default().to_string(),
        }
    }

    /// Result directory name: the file name without `.gz` and format extension.
    pub fn stem(&self) -> String {
        mzforge::output::input_stem(&self.file_name())
    }

    /// Size in bytes, if known without reading.
    pub fn bytes(&self) -> Option<u64> {
        match self {
            Input::Local(path) => std::fs::metadata(path).ok().map(|m| m.len()),
            Input::Object { meta, .. } => Some(meta.size),
        }
    }
}

/// Expands paths, globs, `s3://` keys, `s3://bucket/prefix/` (every mzML/MGF under it; also
/// without the slash when no object has that key) and `s3://bucket/prefix/*.mzML` patterns (a
/// key holding `*`, `?` or `[` names that object too). A missing object or a pattern matching
/// nothing is an error. An input named twice (itself and a prefix holding it) is one input.
pub fn resolve_inputs(storage: Option<&Storage>, patterns: &[String]) -> Result<Vec<Input>> {
    Ok(resolve_inputs_in_folders(storage, patterns)?
        .into_iter()
        .map(|(input, _)| input)
        .collect())
}

/// [`resolve_inputs`], each input with its folder below the directory or prefix it was found
/// under (`plate1` for `s3://b/plates/plate1/A1.mzML` found under `s3://b/plates/`; empty for
/// inputs named themselves or by a pattern, and for those directly in the prefix), where it is
/// first named.
pub fn resolve_inputs_in_folders(
    storage: Option<&Storage>,
    patterns: &[String],
) -> Result<Vec<(Input, String)>> {
    let mut inputs = Vec::new();
    for pattern in patterns {
        match Location::parse(pattern)? {
            Location::Local(path) => {
                let text = path.display().to_string();
                inputs.extend(
                    expand_local_in_folders(&text)?
                        .into_iter()
                        .map(|(file, folder)| {
                            (Input::Local(file), folder.to_string_lossy().into_owned())
                        }),
                );
            }
            Location::S3 { bucket, key } => {
                let storage = storage.ok_or_else(|| Error::Internal("no storage".into()))?;
                let wildcard = key.find(['*', '?', '[']);
                // The prefix a listing was made under, when the pattern named one.
                let mut listed: Option<String> = None;
                let matched = if let Some(at) = wildcard {
                    let prefix = key[..at].rsplit_once('/').map_or("", |(p, _)| p);
                    let glob = glob::Pattern::new(&key)
                        .map_err(|e| Error::invalid("glob pattern", format!("{pattern:?}: {e}")));
                    let options = glob::MatchOptions {
                        require_literal_separator: true,
                        ..Default::default()
                    };
                    // An object whose name holds `*`, `?` or `[` (`run [rep1].mzML`) is itself.
                    let matched: Vec<_> = storage
                        .list(&bucket, prefix)?
                        .into_iter()
                        .filter(|m| {
                            let name = m.location.as_ref();
                            name == key
                                || glob.as_ref().is_ok_and(|g| g.matches_with(name, options))
                        })
                        .collect();
                    if matched.is_empty() {
                        // A pattern that does not parse names nothing but itself.
                        glob?;
                        return Err(Error::NothingMatches {
                            pattern: pattern.clone(),
                            what: "no object matches",
                        });
                    }
                    matched
                } else if pattern.ends_with('/') || key.is_empty() {
                    listed = Some(key.clone());
                    let matched = inputs_under(storage, &bucket, &key)?;
                    if matched.is_empty() {
                        return Err(Error::NothingMatches {
                            pattern: pattern.clone(),
                            what: "no mzML, mzMLb or MGF object under this prefix",
                        });
                    }
                    matched
                } else {
                    match storage.look_up_and_start(&bucket, &key) {
                        Ok(meta) => vec![meta],
                        // `s3://bucket/raw` for `s3://bucket/raw/`, as a local directory is
                        // named with or without its slash.
                        Err(missing @ Error::Missing { .. }) => {
                            listed = Some(key.clone());
                            let matched = inputs_under(storage, &bucket, &key).unwrap_or_default();
                            if matched.is_empty() {
                                return Err(missing);
                            }
                            matched
                        }
                        Err(error) => return Err(error),
                    }
                };
                inputs.extend(matched.into_iter().map(|meta| {
                    let folder = listed
                        .as_deref()
                        .map(|prefix| folder_below(prefix, meta.location.as_ref()))
                        .unwrap_or_default();
                    let input = Input::Object {
                        bucket: bucket.clone(),
                        meta,
                    };
                    (input, folder)
                }));
            }
        }
    }
    // An input named twice (itself and a prefix holding it; `a.mzML` and `./a.mzML`) is one
    // input, as `mzforge run` takes a local file named twice.
    let mut seen = std::collections::HashSet::new();
    inputs.retain(|(input, _)| {
        seen.insert(match input {
            Input::Local(path) => std::fs::canonicalize(path)
                .unwrap_or_else(|_| path.clone())
                .display()
                .to_string(),
            Input::Object { .. } => input.url(),
        })
    });
    Ok(inputs)
}

/// The folder of `key` below `prefix` (`plates/`, `plates` or the whole bucket): `plate1` for
/// `plates/plate1/A1.mzML`, empty for `plates/A1.mzML`.
fn folder_below(prefix: &str, key: &str) -> String {
    let prefix = prefix.trim_end_matches('/');
    let below = match prefix {
        "" => key,
        _ => key
            .strip_prefix(prefix)
            .and_then(|rest| rest.strip_prefix('/'))
            .unwrap_or(key),
    };
    below
        .rsplit_once('/')
        .map_or("", |(folder, _)| folder)
        .to_string()
}

/// The mzML, mzMLb and MGF objects under `prefix/` (recursively), leaving out earlier results.
fn inputs_under(storage: &Storage, bucket: &str, prefix: &str) -> Result<Vec<ObjectMeta>> {
    Ok(outside_results(prefix, storage.list(bucket, prefix)?)
        .into_iter()
        .filter(|m| is_input_name(m.location.as_ref()))
        .collect())
}

/// [`expand_local`], each file with its folder below `text` when `text` names a directory
/// (`plate1` for `plates/plate1/A1.mzML` under `plates/`; empty for files directly in it and
/// for files and patterns named themselves): where `--keep-folders` puts its result.
pub fn expand_local_in_folders(text: &str) -> Result<Vec<(PathBuf, PathBuf)>> {
    let root = Path::new(text);
    let from_directory = root.is_dir();
    Ok(expand_local(text)?
        .into_iter()
        .map(|file| {
            let folder = match (from_directory, file.parent()) {
                (true, Some(parent)) => parent.strip_prefix(root).unwrap_or(Path::new("")),
                _ => Path::new(""),
            };
            let folder = folder.to_path_buf();
            (file, folder)
        })
        .collect())
}

/// What to do about two inputs that would write one result, said the same by `mzforge run`
/// with local and with object storage.
pub fn same_result_hint(keep_folders: bool) -> &'static str {
    match keep_folders {
        true => "run them into different --out locations",
        false => {
            "run them into different --out locations, or keep the folders they are in with \
             --keep-folders"
        }
    }
}

/// Expands one local input: a glob pattern (every file it matches), a directory (every mzML,
/// mzMLb or MGF file under it, recursively, but for hidden entries and earlier mzforge
/// results, as an `s3://bucket/prefix/` input lists its objects) or one input (anything that
/// exists but a directory: a file, a named pipe, `/dev/stdin`); sorted. A pattern that matches
/// nothing, a directory without such a file and a missing path are errors naming what was
/// asked for.
pub fn expand_local(text: &str) -> Result<Vec<PathBuf>> {
    let mut matched = Vec::new();
    // A file whose name holds `*`, `?` or `[` (`run [rep1].mzML`) is itself, not a pattern.
    if text.contains(['*', '?', '[']) && !is_one_input(Path::new(text)) {
        matched = glob::glob(text)
            .map_err(|e| Error::invalid("glob pattern", format!("{text:?}: {e}")))?
            .filter_map(|entry| entry.ok())
            .filter(|p| p.is_file())
            .collect();
        if matched.is_empty() {
            return Err(Error::NothingMatches {
                pattern: text.into(),
                what: "no file matches",
            });
        }
    } else {
        let path = Path::new(text);
        if is_one_input(path) {
            return Ok(vec![path.to_path_buf()]);
        }
        if !path.is_dir() {
            return Err(Error::NoSuchFile { path: text.into() });
        }
        collect_input_files(path, &mut matched)?;
        if matched.is_empty() {
            return Err(Error::NothingMatches {
                pattern: text.into(),
                what: "no mzML, mzMLb or MGF file in this directory",
            });
        }
    }
    matched.sort();
    Ok(matched)
}

/// A path read as one input: an existing file, or a stream the engine reads as one (a named
/// pipe, `/dev/stdin`, a shell's `<(zcat run.mzML.gz)`): anything that exists but a directory.
fn is_one_input(path: &Path) -> bool {
    path.exists() && !path.is_dir()
}

/// Adds the files under `dir` (recursively) whose names have an [`INPUT_EXTENSIONS`] one,
/// leaving out hidden entries (a result directory's staging among them) and mzforge result
/// directories (see [`RESULT_MARKERS`]), and not following links to directories.
fn collect_input_files(dir: &Path, found: &mut Vec<PathBuf>) -> Result<()> {
    let io_error = |source| Error::Io {
        path: dir.display().to_string(),
        source,
    };
    for entry in std::fs::read_dir(dir).map_err(io_error)? {
        let entry = entry.map_err(io_error)?;
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let path = entry.path();
        // Symbolic links to directories are not followed (as `find` does not): a link to an
        // ancestor would never end.
        let is_directory = entry.file_type().map_err(io_error)?.is_dir();
        if is_directory {
            let is_result = RESULT_MARKERS
                .iter()
                .any(|marker| path.join(marker).is_file());
            if !is_result {
                collect_input_files(&path, found)?;
            }
        } else if path.is_file()
            && path
                .file_name()
                .is_some_and(|name| is_input_name(&name.to_string_lossy()))
        {
            found.push(path);
        }
    }
    Ok(())
}

/// What to do with one input.
#[derive(Debug, Clone)]
pub struct Job<'a> {
    /// The pipeline (parameters, worker pool).
    pub pipeline: &'a Pipeline,
    /// Storage, required for any `s3://` input or output.
    pub storage: Option<&'a Storage>,
    /// Also write `centroided.mzML`, with this peak list.
    pub mzml: Option<MzmlPeaks>,
    /// Stop (and publish nothing) when this instant is reached: Lambda's deadline less a margin.
    pub deadline: Option<Instant>,
    /// Process even if an identical result exists.
    pub force: bool,
}

/// Per-input quality-control figures, kept in the manifest and merged into `summary.json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Qc {
    /// Spectra read from the input.
    pub spectra_read: u64,
    /// Spectra written.
    pub spectra_written: u64,
    /// Spectra written per MS level, as (level, count).
    pub spectra_per_level: Vec<(u8, u64)>,
    /// Spectra processed as profile / centroid.
    pub profile_spectra: u64,
    /// Spectra processed as centroid.
    pub centroid_spectra: u64,
    /// Sum of every written spectrum's TIC.
    pub tic_total: f64,
    /// Centroids written.
    pub peaks: u64,
    /// Deconvoluted features written (null in results of versions without deconvolution).
    pub features: Option<u64>,
    /// Warnings raised, and the first of them.
    pub warnings_total: u64,
    /// The first warnings (at most 100).
    pub warnings: Vec<String>,
}

/// The input as recorded in `manifest.json` and `run.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputIdentity {
    /// Path or URL.
    pub path: String,
    /// Size.
    pub bytes: u64,
    /// ETag, for objects.
    #[serde(default)]
    pub e_tag: Option<String>,
    /// SHA-256 of the content.
    pub sha256: String,
}

/// `OUT/<stem>/manifest.json`: the object that makes a result visible.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResultManifest {
    /// Always true: a manifest is written only for a complete result.
    pub complete: bool,
    /// Engine version.
    pub mzforge_version: String,
    /// The input.
    pub input: InputIdentity,
    /// SHA-256 of the parameters that change results (threads and batch size excluded).
    pub params_sha256: String,
    /// The result's objects, with sizes and ETags.
    pub objects: Vec<ObjectInfo>,
    /// Quality-control figures.
    pub qc: Qc,
    /// Seconds since the Unix epoch.
    pub completed_at: u64,
}

/// The outcome of one input.
#[derive(Debug, Clone, Serialize)]
pub struct Done {
    /// `ok` or `skipped` (an identical result existed).
    pub status: &'static str,
    /// The result directory or prefix.
    pub output: String,
    /// QC figures.
    pub qc: Qc,
    /// Seconds spent.
    pub elapsed_seconds: f64,
}

/// SHA-256 of the parameters that change results.
pub fn params_fingerprint(params: &PipelineParams) -> String {
    let mut normal = params.clone();
    normal.threads = 0;
    normal.batch_size = PipelineParams::default().batch_size;
    let text = serde_json::to_string(&normal).unwrap_or_default();
    lower_hex(&Sha256::digest(text.as_bytes()))
}

/// What makes two results the same: the parameters that change them and the mzML asked for
/// (none gives the parameters' fingerprint alone, as before the mzML was part of it).
fn result_fingerprint(params: &PipelineParams, mzml: Option<MzmlPeaks>) -> String {
    match mzml {
        None => params_fingerprint(params),
        Some(peaks) => {
            let text = format!("{}\nmzml={peaks}", params_fingerprint(params));
            lower_hex(&Sha256::digest(text.as_bytes()))
        }
    }
}

fn now_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

fn file_sha256(path: &Path) -> Result<(u64, String)> {
    mzforge::output::file_digest(path).map_err(|source| Error::Io {
        path: path.display().to_string(),
        source,
    })
}

/// A table sink: a local file or an object upload.
enum Sink {
    File(BufWriter<WritebackFile>),
    Object(Box<ObjectWriter>),
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Sink::File(f) => f.write(buf),
            Sink::Object(o) => o.write(buf),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Sink::File(f) => f.flush(),
            Sink::Object(o) => o.flush(),
        }
    }
}

/// Where the result goes while it is written.
enum Staging {
    Dir(ResultDir),
    Prefix {
        storage: Storage,
        bucket: String,
        key: String,
        scratch: tempfile::TempDir,
    },
}

impl Staging {
    fn sink(&self, name: &str) -> Result<Sink> {
        match self {
            Staging::Dir(dir) => {
                let path = dir.file(name);
                let file = WritebackFile::create(&path).map_err(|source| Error::Io {
                    path: path.display().to_string(),
                    source,
                })?;
                Ok(Sink::File(BufWriter::new(file)))
            }
            Staging::Prefix {
                storage,
                bucket,
                key,
                ..
            } => Ok(Sink::Object(Box::new(
                storage.create(bucket, &format!("{key}/{name}"))?,
            ))),
        }
    }

    fn local_file(&self, name: &str) -> PathBuf {
        match self {
            Staging::Dir(dir) => dir.file(name),
            Staging::Prefix { scratch, .. } => scratch.path().join(name),
        }
    }
}

/// Processes one input into its result location `target` (`<out>/<result name>`). On S3 the
/// result is published by its manifest; see the module docs. Errors carry their
/// [`FailureKind`].
pub fn process(job: &Job<'_>, input: &Input, target: &Location) -> Result<Done> {
    let started = Instant::now();
    let params = job.pipeline.params();
    let params_json = serde_json::to_string(params)
        .map_err(|e| Error::Internal(format!("cannot serialise parameters: {e}")))?;
    let fingerprint = result_fingerprint(params, job.mzml);
    let storage = || {
        job.storage
            .ok_or_else(|| Error::Internal("object storage is not configured".into()))
    };

    // What the input is, before reading it (for the idempotency check).
    let local_identity = match input {
        Input::Local(path) => {
            let (bytes, sha256) = file_sha256(path)?;
            Some(InputIdentity {
                path: input.url(),
                bytes,
                e_tag: None,
                sha256,
            })
        }
        Input::Object { .. } => None,
    };

    let staging = match target {
        Location::Local(dir) => Staging::Dir(ResultDir::create(dir)?),
        Location::S3 { bucket, key } => {
            let storage = storage()?;
            let manifest_key = format!("{key}/{MANIFEST_FILE}");
            let old = match storage.get_json::<ResultManifest>(bucket, &manifest_key) {
                Ok(old) => old,
                // A manifest that does not parse (damaged, or of another version) marks no
                // result: it goes, and the new result replaces whatever is there.
                Err(Error::Invalid { .. }) => {
                    storage.delete(bucket, &manifest_key)?;
                    None
                }
                Err(error) => return Err(error),
            };
            if let Some(old) = old {
                let same_input = match (&local_identity, input) {
                    (Some(id), _) => old.input.sha256 == id.sha256 && old.input.bytes == id.bytes,
                    (None, Input::Object { meta, .. }) => {
                        old.input.path == input.url()
                            && old.input.bytes == meta.size
                            && old.input.e_tag.is_some()
                            && old.input.e_tag == meta.e_tag
                    }
                    _ => false,
                };
                if !job.force
                    && old.complete
                    && same_input
                    && old.params_sha256 == fingerprint
                    && old.mzforge_version == mzforge::VERSION
                {
                    storage.forget_started();
                    return Ok(Done {
                        status: "skipped",
                        output: target.to_string(),
                        qc: old.qc,
                        elapsed_seconds: started.elapsed().as_secs_f64(),
                    });
                }
                // The old result stops being a result before anything of the new one is written,
                // and what it had that the new one will not (a `centroided.mzML` no longer asked
                // for) goes, so that the prefix holds one result only.
                storage.delete(bucket, &manifest_key)?;
                let rewritten = |name: &str| {
                    [SPECTRA_FILE, PEAKS_FILE, FEATURES_FILE, RUN_FILE].contains(&name)
                        || (name == MZML_FILE && job.mzml.is_some())
                };
                for object in &old.objects {
                    if let Ok(Location::S3 {
                        bucket: old_bucket,
                        key: old_key,
                    }) = Location::parse(&object.url)
                    {
                        let name = old_key.strip_prefix(&format!("{key}/"));
                        if old_bucket == *bucket && name.is_some_and(|n| !rewritten(n)) {
                            storage.delete(bucket, &old_key)?;
                        }
                    }
                }
            }
            Staging::Prefix {
                storage: storage.clone(),
                bucket: bucket.clone(),
                key: key.clone(),
                scratch: tempfile::Builder::new()
                    .prefix("mzforge-")
                    .tempdir()
                    .map_err(|source| Error::Io {
                        path: std::env::temp_dir().display().to_string(),
                        source,
                    })?,
            }
        }
    };

    // Open the input: a local file, or a download streamed into the parser.
    let mut progress: Option<std::sync::Arc<ReadProgress>> = None;
    let reader = match input {
        Input::Local(path) => SpectrumReader::open(path)?,
        Input::Object { bucket, meta } => {
            let object = storage()?.open_read(bucket, meta, 0)?;
            progress = Some(object.progress());
            let opened = SpectrumReader::from_reader(input.url(), Box::new(object));
            opened.map_err(|e| classify_read_error(e, input, job.storage, progress.as_deref()))?
        }
    };

    let mut tables = TableWriters::with_features(
        staging.sink(SPECTRA_FILE)?,
        staging.sink(PEAKS_FILE)?,
        staging.sink(FEATURES_FILE)?,
        &params_json,
    )?;
    let mut mzml = match job.mzml {
        Some(peaks) => Some(CentroidMzMLWriter::for_reader(
            &staging.local_file(MZML_FILE),
            &reader,
            peaks,
            &job.pipeline.params().ms_levels,
        )?),
        None => None,
    };
    let mut tic_total = 0.0f64;
    let deadline = job.deadline;
    let outcome = job.pipeline.run(reader, &mut |batch| {
        if crate::signals::stop_requested() || deadline.is_some_and(|d| Instant::now() >= d) {
            return Err(mzforge::Error::Write {
                path: "result".into(),
                source: std::io::Error::other("stopped"),
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
        tic_total += batch.iter().map(|s| s.tic).sum::<f64>();
        Ok(())
    });
    let summary = match outcome {
        Ok(summary) => summary,
        Err(e) => {
            if crate::signals::stop_requested() {
                return Err(Error::Interrupted);
            }
            if let Some(d) = deadline.filter(|&d| Instant::now() >= d) {
                let _ = d;
                return Err(Error::TimeBudget {
                    what: input.url(),
                    seconds_left: 0.0,
                    reason: "processing was stopped at the invocation's deadline".into(),
                });
            }
            return Err(classify_read_error(
                e,
                input,
                job.storage,
                progress.as_deref(),
            ));
        }
    };
    let (spectra_sink, peaks_sink, features_sink) = tables.finish_all()?;
    let sinks: Vec<Sink> = [Some(spectra_sink), Some(peaks_sink), features_sink]
        .into_iter()
        .flatten()
        .collect();
    if let Some(writer) = mzml {
        writer.finish()?;
    }

    // The input's identity: the hash of what was read (and of any tail the parser left).
    let identity = match (local_identity, input) {
        (Some(identity), _) => identity,
        (None, Input::Object { bucket, meta }) => {
            let progress = progress.ok_or_else(|| Error::Internal("no read progress".into()))?;
            read_rest(storage()?, bucket, meta, &progress)?;
            // Nothing is published from bytes that differ from what the object says it holds.
            progress.verify(&input.url())?;
            InputIdentity {
                path: input.url(),
                bytes: meta.size,
                e_tag: meta.e_tag.clone(),
                sha256: progress.sha256_hex(),
            }
        }
        (None, Input::Local(_)) => return Err(Error::Internal("local input without hash".into())),
    };

    let mut outputs = vec![SPECTRA_FILE, PEAKS_FILE, FEATURES_FILE];
    if job.mzml.is_some() {
        outputs.push(MZML_FILE);
    }
    let run_json = RunRecord::new(&identity, params, outputs.clone(), &summary)
        .to_json()
        .map_err(|e| Error::Internal(format!("cannot serialise run.json: {e}")))?;
    let qc = Qc {
        spectra_read: summary.spectra_read,
        spectra_written: summary.spectra_written,
        spectra_per_level: summary.spectra_per_level.clone(),
        profile_spectra: summary.profile_spectra,
        centroid_spectra: summary.centroid_spectra,
        tic_total,
        peaks: summary.peaks_written,
        features: Some(summary.features_written),
        warnings_total: summary.warnings_total,
        warnings: summary.warnings.clone(),
    };

    // Publish. Past this point a stop signal is ignored: the few requests left finish faster
    // than a Spot reclaim (two minutes), and stopping half-way would leave tables without a
    // manifest.
    match staging {
        Staging::Dir(dir) => {
            for sink in sinks {
                // Flushed here, made durable by the directory's commit.
                if let Sink::File(file) = sink {
                    file.into_inner().map_err(|e| Error::Io {
                        path: target.to_string(),
                        source: e.into_error(),
                    })?;
                }
            }
            let path = dir.file(RUN_FILE);
            std::fs::write(&path, &run_json).map_err(|source| Error::Io {
                path: path.display().to_string(),
                source,
            })?;
            dir.commit()?;
        }
        Staging::Prefix {
            storage,
            bucket,
            key,
            scratch,
        } => {
            // The mzML was written locally; upload it (multipart) before completing anything.
            let mzml_upload = if job.mzml.is_some() {
                let mut writer = storage.create(&bucket, &format!("{key}/{MZML_FILE}"))?;
                writer.write_file(&scratch.path().join(MZML_FILE))?;
                Some(writer)
            } else {
                None
            };
            let mut objects = Vec::new();
            for sink in sinks {
                if let Sink::Object(writer) = sink {
                    objects.push(writer.complete()?);
                }
            }
            if let Some(writer) = mzml_upload {
                objects.push(writer.complete()?);
            }
            objects.push(storage.put_bytes(&bucket, &format!("{key}/{RUN_FILE}"), run_json)?);
            let manifest = ResultManifest {
                complete: true,
                mzforge_version: mzforge::VERSION.to_string(),
                input: identity,
                params_sha256: fingerprint,
                objects,
                qc: qc.clone(),
                completed_at: now_seconds(),
            };
            storage.put_json(&bucket, &format!("{key}/{MANIFEST_FILE}"), &manifest)?;
            // An earlier run's record of this input failing is no longer true.
            storage.delete(&bucket, &format!("{key}/{INPUT_FAILURE_FILE}"))?;
        }
    }
    Ok(Done {
        status: "ok",
        output: target.to_string(),
        qc,
        elapsed_seconds: started.elapsed().as_secs_f64(),
    })
}

/// A parser error caused by a broken download is a transient failure, not a broken file.
/// Feeds what the parser left of `meta`'s object (from `progress.bytes()` on) into `progress`,
/// so that its count and hash cover the whole object.
fn read_rest(
    storage: &Storage,
    bucket: &str,
    meta: &ObjectMeta,
    progress: &ReadProgress,
) -> Result<()> {
    if progress.bytes() >= meta.size {
        return Ok(());
    }
    let mut rest = storage.open_read(bucket, meta, progress.bytes())?;
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let n = rest.read(&mut buffer).map_err(|e| Error::Download {
            url: rest.url().to_owned(),
            message: e.to_string(),
        })?;
        if n == 0 {
            return Ok(());
        }
        progress.update(&buffer[..n]);
    }
}

/// Tells a broken input (permanent) from a broken download (worth a retry): the download
/// failed, or the object declares a SHA-256 that the bytes read do not have.
fn classify_read_error(
    error: mzforge::Error,
    input: &Input,
    storage: Option<&Storage>,
    progress: Option<&ReadProgress>,
) -> Error {
    if crate::signals::stop_requested() {
        return Error::Interrupted;
    }
    let Some(progress) = progress else {
        return Error::Engine(error);
    };
    if let Some(message) = progress.failure() {
        return Error::Download {
            url: input.url(),
            message,
        };
    }
    // A file that does not parse may have been damaged on the way: when the object says what
    // its bytes are, check them all before calling the input bad.
    if let (Input::Object { bucket, meta }, Some(storage), Some(_)) =
        (input, storage, progress.expected_sha256())
    {
        if let Err(damaged) =
            read_rest(storage, bucket, meta, progress).and_then(|()| progress.verify(&input.url()))
        {
            return damaged;
        }
    }
    Error::Engine(error)
}

/// Options of [`run_cli`], from `mzforge run`'s flags.
#[derive(Debug, Clone)]
pub struct CliOptions {
    /// Inputs as given.
    pub inputs: Vec<String>,
    /// `--out`.
    pub out: String,
    /// `--mzml`, `--mzml-peaks`.
    pub mzml: Option<MzmlPeaks>,
    /// `--json`.
    pub json: bool,
    /// `--quiet`.
    pub quiet: bool,
    /// `--keep-folders`: each result under the input's folder below the prefix it was found
    /// under (`OUT/plate1/A1/`).
    pub keep_folders: bool,
    /// `--inputs-at-once`: inputs processed at the same time (at least 1).
    pub inputs_at_once: u16,
}

/// Whether `mzforge run` needs object storage for these arguments.
pub fn needs_object_storage(inputs: &[String], out: &str) -> bool {
    Location::is_remote(out) || inputs.iter().any(|i| Location::is_remote(i))
}

/// A small runtime for object-store I/O (two threads: the engine's pool does the work).
pub fn io_runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("mzforge-io")
        .enable_all()
        .build()
        .map_err(|source| Error::Io {
            path: "tokio runtime".into(),
            source,
        })
}

/// `mzforge run` with object storage. Exit code: 0 when every input is done (or was already
/// done), 1 when an input failed permanently (bad, missing), 75 when the only failures are
/// transient (network, throttling, stop signal), so a retry is worth it.
pub fn run_cli(params: PipelineParams, options: CliOptions) -> Result<u8> {
    let runtime = io_runtime()?;
    crate::signals::install(runtime.handle());
    let storage = Storage::new(runtime.handle().clone());
    let out = Location::parse(&options.out)?;
    let found = resolve_inputs_in_folders(Some(&storage), &options.inputs)?;
    let mut targets = BTreeMap::new();
    let mut inputs = Vec::new();
    for (input, folder) in found {
        let name = match options.keep_folders && !folder.is_empty() {
            true => format!("{folder}/{}", input.stem()),
            false => input.stem(),
        };
        if let Some(previous) = targets.insert(name.clone(), input.url()) {
            let hint = same_result_hint(options.keep_folders);
            return Err(Error::invalid(
                "inputs",
                format!(
                    "{previous} and {} would both write {}; {hint}",
                    input.url(),
                    out.join(&name)
                ),
            ));
        }
        inputs.push((input, name));
    }
    let pipeline = Pipeline::new(params)?.keep_source_descriptions(options.mzml.is_some());
    let job = Job {
        pipeline: &pipeline,
        storage: Some(&storage),
        mzml: options.mzml,
        deadline: None,
        force: false,
    };
    let (mut permanent, mut transient) = (0, 0);
    // After a stop signal no more inputs are started; those left count as transient failures.
    let work = |_, (input, name): &(Input, String)| {
        (!crate::signals::stop_requested()).then(|| process(&job, input, &out.join(name)))
    };
    let report = |i: usize, outcome: Option<Result<Done>>| {
        let input = &inputs[i].0;
        let Some(outcome) = outcome else {
            transient += 1;
            return;
        };
        match outcome {
            Ok(done) => {
                if options.json {
                    println!(
                        "{}",
                        serde_json::json!({
                            "input": input.url(), "output": done.output, "status": done.status,
                            "qc": done.qc, "elapsed_seconds": done.elapsed_seconds,
                        })
                    );
                } else if !options.quiet {
                    let verb = if done.status == "skipped" {
                        "already done (same input, parameters and version)"
                    } else {
                        "done"
                    };
                    eprintln!(
                        "{}: {}, {}, {verb} -> {}",
                        input.url(),
                        spectra(done.qc.spectra_written),
                        count(done.qc.peaks, "peak", "peaks"),
                        done.output
                    );
                    for warning in &done.qc.warnings {
                        eprintln!("warning: {warning}");
                    }
                }
            }
            Err(error) => {
                let kind = error.kind();
                if kind.is_retryable() {
                    transient += 1;
                } else {
                    permanent += 1;
                }
                let message = error.chain();
                if options.json {
                    println!(
                        "{}",
                        serde_json::json!({
                            "input": input.url(), "status": "error", "kind": kind,
                            "retryable": kind.is_retryable(), "error": message,
                        })
                    );
                }
                eprintln!("error: {message}");
            }
        }
    };
    let at_once = usize::from(options.inputs_at_once.max(1));
    crate::fan_out::for_each_in_order(&inputs, at_once, work, report);
    Ok(match (permanent, transient) {
        (0, 0) => 0,
        (0, _) => FailureKind::Transient.exit_code(),
        _ => 1,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threads_do_not_change_the_fingerprint() {
        let a = PipelineParams::default();
        let mut b = a.clone();
        b.threads = 7;
        assert_eq!(params_fingerprint(&a), params_fingerprint(&b));
        b.centroid.min_snr = 3.0;
        assert_ne!(params_fingerprint(&a), params_fingerprint(&b));
    }

    /// `run [rep1].mzML` is a file name that is also a glob pattern (matching `runr.mzML`...).
    #[test]
    fn a_file_named_like_a_pattern_is_that_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("run [rep1].mzML");
        std::fs::write(&file, b"x").unwrap();
        let named = expand_local(&file.display().to_string()).unwrap();
        assert_eq!(named, vec![file.clone()]);
        // Patterns are still patterns.
        let pattern = dir.path().join("*.mzML").display().to_string();
        assert_eq!(expand_local(&pattern).unwrap(), vec![file]);
    }

    #[test]
    fn asking_for_an_mzml_changes_the_result_fingerprint() {
        let params = PipelineParams::default();
        let kinds = [
            None,
            Some(MzmlPeaks::Centroids),
            Some(MzmlPeaks::Deconvolved),
        ];
        let prints: std::collections::BTreeSet<_> = kinds
            .iter()
            .map(|&mzml| result_fingerprint(&params, mzml))
            .collect();
        assert_eq!(prints.len(), 3);
        // Results written before the mzML was part of the fingerprint stay reusable.
        assert_eq!(
            result_fingerprint(&params, None),
            params_fingerprint(&params)
        );
    }
}
